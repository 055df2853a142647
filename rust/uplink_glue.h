/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's uplink abstraction (rust/uplink.rs is the Rust half): a
 * host net_device taken as a port of a software switch, the way a bridge
 * takes its ports. Every frame it receives is taken from the stack (an
 * rx_handler) and handed to the switch from a work item, in process
 * context; the switch sends frames out of it.
 */
#ifndef RVIO_UPLINK_GLUE_H
#define RVIO_UPLINK_GLUE_H

#include <linux/types.h>

struct rvio_uplink;

struct rvio_uplink_ops {
	/* One received frame (@len bytes from its Ethernet header, the
	 * 802.1Q tag removed: @vlan, 0 if it had none) with its offloads in
	 * @meta (a little-endian struct virtio_net_hdr_v1, 12 bytes). Process
	 * context (the uplink's work), one call at a time. */
	void (*rx)(void *priv, const void *meta, const void *frame, unsigned int len, u16 vlan);
};

/* Counters of an uplink. */
struct rvio_uplink_stats {
	u64 rx_frames;	/* handed to @rx */
	u64 rx_dropped;	/* queue full, unsupported offloads, too long */
	u64 tx_frames;	/* sent */
	u64 tx_dropped;	/* bad offloads, no memory, the device refused */
};

/*
 * Takes the net_device named @ifname (in the initial network namespace)
 * as an uplink: its received frames go to @ops->rx (with @priv), frames up
 * to @max_frame bytes. Returns it or an ERR_PTR(): -ENODEV no such device,
 * -EBUSY it has an rx_handler already (a bridge port, a bond slave,
 * another uplink), -EINVAL a loopback or non-Ethernet device, -ENOMEM.
 * Process context; takes RTNL.
 */
struct rvio_uplink *rvio_uplink_attach(const char *ifname, const struct rvio_uplink_ops *ops,
				       void *priv, unsigned int max_frame);
/* Lets go of the device; no @rx runs after it returns. Process context;
 * takes RTNL; not from @rx. */
void rvio_uplink_detach(struct rvio_uplink *u);
/*
 * Sends one frame (@len bytes from its Ethernet header, with offloads
 * @meta as for @rx) out of the uplink, tagged with @vlan unless it is 0.
 * Returns 0 or -errno (counted as tx_dropped). Process context.
 */
int rvio_uplink_xmit(struct rvio_uplink *u, const void *meta, const void *frame, unsigned int len,
		     u16 vlan);
/* Whether the device is still taken: an uplink lets go of a device that is
 * unregistered or moved to another namespace (then xmit says -ENODEV). */
bool rvio_uplink_attached(struct rvio_uplink *u);
/* The device's name (for logs and sysfs), NUL-terminated, at most 16 bytes. */
const char *rvio_uplink_name(struct rvio_uplink *u);
/* Reads the counters. */
void rvio_uplink_stats(struct rvio_uplink *u, struct rvio_uplink_stats *st);

#endif /* RVIO_UPLINK_GLUE_H */
