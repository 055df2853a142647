/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's Ethernet net_device abstraction (rust/netdev.rs is the
 * Rust half): a registered net_device whose driver is Rust, with NAPI and
 * GRO on receive, a transmit queue drained in process context, the
 * standard counters (`ip -s link`) and ethtool's driver info and `-S`.
 *
 * Context rules: ndo_start_xmit (softirq, must not sleep) only queues the
 * skb; the driver's @xmit runs from a work item, in process context, so it
 * may use process-context APIs (VMPI's in-kernel ports). Received frames
 * come from process context too and reach the stack through NAPI.
 */
#ifndef RVIO_NETDEV_GLUE_H
#define RVIO_NETDEV_GLUE_H

#include <linux/types.h>

struct rvio_netdev;

struct rvio_netdev_vtable {
	/* `ethtool -i`'s driver name. */
	const char *driver;
	/* `ethtool -S`: names (ETH_GSTRING_LEN at most) of the driver's
	 * @n_stats counters, filled by @get_stats. */
	const char *const *stat_names;
	unsigned int n_stats;
	/* ndo_open, under RTNL. */
	int (*open)(void *priv);
	/* ndo_stop, under RTNL, after the queue and the transmit work have
	 * stopped. */
	void (*stop)(void *priv);
	/* Bytes before each frame in @xmit's buffer, for the driver's own
	 * header. */
	unsigned int tx_headroom;
	/* One frame to send with its offloads in @meta (a little-endian
	 * struct virtio_net_hdr_v1, 12 bytes: checksum to complete, TSO):
	 * @buf holds @tx_headroom bytes the driver may write, then the
	 * frame's @len bytes (copied once out of the skb); it is the
	 * device's, valid during the call. From the transmit work: process
	 * context, one call at a time. Returns 0 (sent), -EAGAIN (no room:
	 * the frame is retried after rvio_netdev_wake_tx()), or another errno
	 * (dropped, counted as tx_dropped). */
	int (*xmit)(void *priv, const void *meta, void *buf, unsigned int len);
	/* Fills @vals with the @n_stats counters; process context. */
	void (*get_stats)(void *priv, u64 *vals);
};

/*
 * Allocates and registers an Ethernet device named @name (a pattern like
 * "env%d" or a name) with a random MAC, MTU 1500 (68 to @max_mtu), carrier
 * off, calling @vt with @priv. The device does scatter-gather, checksum
 * offload and TSO (IPv4, IPv6, ECN) up to frames of @max_frame bytes:
 * @xmit gets the offloads as a struct virtio_net_hdr_v1, and received
 * frames carry one (rvio_netdev_rx()). Returns it or an ERR_PTR().
 * Process context, not under RTNL.
 */
struct rvio_netdev *rvio_netdev_new(const char *name, const struct rvio_netdev_vtable *vt,
				    void *priv, unsigned int max_mtu, unsigned int max_frame);
/* Unregisters and frees @nd; no callback runs after it returns. Process
 * context, not under RTNL; not while another thread may call the
 * functions below for @nd. */
void rvio_netdev_free(struct rvio_netdev *nd);
/* The interface's name (valid until the next rename; for logs). */
const char *rvio_netdev_name(struct rvio_netdev *nd);
/*
 * One received frame (@len bytes, an Ethernet header at least) with its
 * offloads in @meta (12 bytes, as for @xmit), copied into an skb, checked
 * and applied as virtio-net does (virtio_net_hdr_to_skb()) and handed to
 * the stack through NAPI and GRO. Returns 0, or -ENETDOWN / -ENOBUFS /
 * -ENOMEM / -EINVAL (the frame is dropped and counted as rx_dropped, or
 * rx_frame_errors for bad offloads). Process context.
 */
int rvio_netdev_rx(struct rvio_netdev *nd, const void *meta, const void *frame,
		   unsigned int len);
/* Room again after an -EAGAIN from @xmit: resumes the transmit work. */
void rvio_netdev_wake_tx(struct rvio_netdev *nd);
/* Carrier on or off (it goes on at ndo_open, off at ndo_stop). */
void rvio_netdev_set_carrier(struct rvio_netdev *nd, bool on);

#endif /* RVIO_NETDEV_GLUE_H */
