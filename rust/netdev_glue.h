/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's Ethernet net_device abstraction (rust/netdev.rs is the
 * Rust half): a net_device of a link kind (rtnl_link_ops: `ip link add
 * ... type KIND`, `ip link del`) whose driver is Rust, with NAPI and
 * GRO on receive, a transmit queue drained in process context, the
 * standard counters (`ip -s link`) and ethtool's driver info and `-S`.
 *
 * Context rules: ndo_start_xmit (softirq, must not sleep) offers the skb
 * to the driver's @xmit_ref, if it has one, or queues it; the driver's
 * @xmit runs from a work item, in process context, so it may use
 * process-context APIs (VMPI's in-kernel ports). Received frames come from
 * process context too and reach the stack through NAPI.
 *
 * Without a copy: a driver with @xmit_ref may keep a frame's skb (its
 * bytes described by a scatterlist, rvio_netdev_skb_to_sg()) until the
 * peer has it, and give it back counted as sent, dropped, or for the copy
 * path; and it may have a received frame's skb allocated empty
 * (rvio_netdev_rx_alloc()), fill it from elsewhere, and hand it in
 * (rvio_netdev_rx_skb()). Such skbs are the driver's: it completes or
 * frees each one before rvio_netdev_free().
 */
#ifndef RVIO_NETDEV_GLUE_H
#define RVIO_NETDEV_GLUE_H

#include <linux/types.h>
/* Its layout, for the Rust half: drivers keep arrays of entries. */
#include <linux/scatterlist.h>

struct rvio_netdev;
struct sk_buff;

/* @xmit_ref's answers besides 0 and errnos, and rvio_netdev_tx_complete()'s
 * @how. */
enum rvio_netdev_tx_how {
	/* The frame left (counted as sent) and is freed. */
	RVIO_NETDEV_TX_SENT = 0,
	/* Send it by @xmit, the copy path (not offered to @xmit_ref again). */
	RVIO_NETDEV_TX_COPY = 1,
	/* It is lost: freed, counted as tx_dropped. */
	RVIO_NETDEV_TX_DROP = 2,
};

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
	/* One frame to send with its offloads in @meta (a little-endian
	 * struct virtio_net_hdr_v1, 12 bytes: checksum to complete, TSO):
	 * @skb, of @len bytes, stays the caller's; during the call the driver
	 * may describe its bytes (rvio_netdev_skb_to_sg()) and copy them.
	 * From the transmit work: process context, one call at a time.
	 * Returns 0 (sent), -EAGAIN (no room: the frame is retried after
	 * rvio_netdev_wake_tx()), or another errno (dropped, counted as
	 * tx_dropped). */
	int (*xmit)(void *priv, struct sk_buff *skb, const void *meta, unsigned int len);
	/* Fills @vals with the @n_stats counters; process context. */
	void (*get_stats)(void *priv, u64 *vals);
	/*
	 * Optional: send a frame without copying it. Called first for each
	 * frame (not for one sent back with RVIO_NETDEV_TX_COPY), from
	 * ndo_start_xmit (softirq) or, when frames wait for it, from the
	 * transmit work (process context; the two may run at once on two
	 * CPUs, so it must not sleep, and what it shares with process
	 * context is locked with bottom halves off: rust/bh_lock.rs),
	 * with its offloads (@meta, as for @xmit), its first
	 * 14 bytes (@eth) and length. Returns 0: the driver owns @skb and
	 * hands it back with rvio_netdev_tx_complete(); RVIO_NETDEV_TX_COPY:
	 * send it by @xmit now; -EAGAIN: retry it after rvio_netdev_wake_tx()
	 * (the queue stops meanwhile); another errno: dropped (tx_dropped).
	 */
	int (*xmit_ref)(void *priv, struct sk_buff *skb, const void *meta, const u8 *eth,
			unsigned int len);
	/*
	 * If not 0: the sk_pacing_shift of the sockets whose frames this
	 * device sends (sk_pacing_shift_update(), as mac80211 sets
	 * hw.tx_sk_pacing_shift): TCP builds TSO frames of 2^-@tx_pacing_shift
	 * seconds of data at its pacing rate (the stack's default, 10: about
	 * 1 ms), and lets as much wait below it. For a device whose cost is
	 * per frame rather than per byte.
	 */
	unsigned int tx_pacing_shift;
};

/*
 * The module's link kind: its devices are made by `ip link add NAME
 * parentdev PARENT type KIND` (rtnl_link_ops; stock iproute2 passes the
 * parent as IFLA_PARENT_DEV_NAME, as for wwan's links) or by the driver's
 * own rvio_netdev_add(), and removed by `ip link del` (both kinds alike;
 * `ip -d link` shows KIND). One per module.
 */
struct rvio_netdev_kind {
	/* rtnl_link_ops' kind. */
	const char *kind;
	/* Its devices' largest MTU and frame (TSO) in bytes. */
	unsigned int max_mtu, max_frame;
	/*
	 * A device @nd is wanted over parent @parent (a NUL-terminated name
	 * of IFNAMSIZ bytes at most) with the driver's @opts (NULL from
	 * `ip link add`): @nd is allocated (its name, MAC and MTU as asked),
	 * not registered; the driver builds its state and registers it
	 * (rvio_netdev_register()), or returns an errno and leaves it
	 * unregistered (its allocator frees it). Under RTNL.
	 */
	int (*newlink)(void *ctx, struct rvio_netdev *nd, const char *parent, const void *opts);
	/*
	 * The device of the driver's @priv is being unregistered (`ip link
	 * del`, the kind's unregistering, a newlink the core undid): the
	 * driver frees it later, with rvio_netdev_free(), not under RTNL.
	 * Under RTNL: must not sleep long.
	 */
	void (*dellink)(void *ctx, void *priv);
};

/*
 * Registers @kind (with the driver's @ctx for its callbacks) and the
 * module's netdevice notifier: 0 or an errno (-EINVAL: the module has a
 * kind already; -EEXIST: another module has this one). Process context,
 * not under RTNL.
 */
int rvio_netdev_kind_register(const struct rvio_netdev_kind *kind, void *ctx);
/* Unregisters the kind: every device of it is unregistered (@dellink),
 * and no callback of the kind runs after it returns. Process context,
 * not under RTNL. */
void rvio_netdev_kind_unregister(void);
/*
 * The driver's own way to make a device (e.g. a sysfs write): allocates
 * one named @name (a name, or a pattern such as "env%d") in the initial
 * namespace, as `ip link add` would, and calls @kind's @newlink with
 * @opts under RTNL. Returns its result, or -ENODEV if @kind is not the
 * registered kind. Process context, not under RTNL.
 */
int rvio_netdev_add(const struct rvio_netdev_kind *kind, const char *name, const char *parent,
		    const void *opts);
/*
 * From @newlink: registers @nd (random MAC unless one was asked, MTU
 * 1500, 68 to @max_mtu, carrier off) calling @vt with @priv. The device
 * does scatter-gather, checksum offload and TSO (IPv4, IPv6, ECN) up to
 * frames of @max_frame bytes: @xmit gets the offloads as a struct
 * virtio_net_hdr_v1, and received frames carry one (rvio_netdev_rx()).
 * 0 or an errno (not registered). Under RTNL.
 */
int rvio_netdev_register(struct rvio_netdev *nd, const struct rvio_netdev_vtable *vt, void *priv);
/* Unregisters @nd (if it still is): the stack sends it nothing more and
 * ndo_stop has run; the functions below stay callable (frames are
 * dropped) until rvio_netdev_free(). Process context, not under RTNL. */
void rvio_netdev_unregister(struct rvio_netdev *nd);
/* Unregisters @nd if it still is, waits until the core is done with it
 * and frees it; no callback runs after it returns. Process context, not
 * under RTNL; not while another thread may call the functions below for
 * @nd. */
void rvio_netdev_free(struct rvio_netdev *nd);
/* Module exit, after the last rvio_netdev_free(): waits until a thread
 * that ran a device's last callback (its destructor, on the thread that
 * unregistered it: `ip link del`'s) has left this module's code. */
void rvio_netdev_exit_barrier(void);
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

/*
 * A frame @xmit_ref took is done with (@how: rvio_netdev_tx_how; a frame
 * sent back for the copy path while the interface is down is dropped).
 * Process context or softirq.
 */
void rvio_netdev_tx_complete(struct rvio_netdev *nd, struct sk_buff *skb, int how);
/*
 * Describes the bytes of @skb (a transmitted frame, or one from
 * rvio_netdev_rx_alloc()) in @sg, an array of @max entries: returns the
 * number used (the last one marked as the end), after linearizing a frame
 * that needs more; -EMSGSIZE or -ENOMEM if it cannot. The entries stay
 * valid while @skb is not freed or changed. Process context or softirq.
 */
int rvio_netdev_skb_to_sg(struct sk_buff *skb, struct scatterlist *sg, unsigned int max);
/*
 * Detaches @skb (of @xmit_ref) from its socket and conntrack entry, as tun
 * and virtio_net (without tx NAPI) do for skbs they may hold a long time:
 * charged to its socket until freed, a frame held until a peer's copy and
 * completion would cap TCP at two segments in flight (TCP small queues)
 * and a UDP sender at its send buffer. Any context.
 */
void rvio_netdev_skb_orphan(struct sk_buff *skb);
/*
 * Announces the device to its peers (NETDEV_NOTIFY_PEERS: a gratuitous ARP
 * per IPv4 address, as after a migration), from a work item, now if the
 * device is up or at its next ndo_open. Any context.
 */
void rvio_netdev_notify_peers(struct rvio_netdev *nd);
/* Frees an skb of @xmit_ref or rvio_netdev_rx_alloc() (counts nothing). */
void rvio_netdev_skb_free(struct sk_buff *skb);
/*
 * A frame of @len bytes with offloads @meta is on its way: allocates its
 * skb (@len bytes of uninitialized data, IP-aligned: linear up to a page,
 * longer ones a 256-byte head and order-0 page fragments, at most 17
 * pieces in all) for the driver to fill (rvio_netdev_skb_to_sg(),
 * skb_store_bits()), after the checks rvio_netdev_rx() makes. Returns it, or an
 * ERR_PTR() as rvio_netdev_rx() would fail (counted as rx_dropped).
 * Process context.
 */
struct sk_buff *rvio_netdev_rx_alloc(struct rvio_netdev *nd, const void *meta,
				     unsigned int len);
/*
 * The driver filled @skb (from rvio_netdev_rx_alloc()): applies @meta and
 * hands it to the stack, as rvio_netdev_rx(); @skb is consumed either way.
 * Process context.
 */
int rvio_netdev_rx_skb(struct rvio_netdev *nd, struct sk_buff *skb, const void *meta);
/*
 * Copies the first @len bytes of @src (any skb) into @dst, an skb of
 * rvio_netdev_rx_alloc() whose linear part holds @len bytes: 0, or
 * -EINVAL. Any context.
 */
int rvio_netdev_rx_copy(struct sk_buff *dst, const struct sk_buff *src, unsigned int len);
/* The interface's MTU now. Any context. */
unsigned int rvio_netdev_mtu(struct rvio_netdev *nd);
/*
 * An skb of @len bytes (14 up to the device's largest frame, laid out as
 * rvio_netdev_rx_alloc() lays it out) for a buffer posted before its
 * frame is known (the host fills it later): no offload checks, nothing
 * counted. Returns it or an ERR_PTR(). Process context.
 */
struct sk_buff *rvio_netdev_rx_alloc_buf(struct rvio_netdev *nd, unsigned int len);
/*
 * A buffer from rvio_netdev_rx_alloc_buf() holds a frame of @len bytes
 * with offloads @meta: checked as rvio_netdev_rx_alloc() checks a frame,
 * trimmed to @len and handed in as rvio_netdev_rx_skb(); @skb is consumed
 * either way. Process context.
 */
int rvio_netdev_rx_buf(struct rvio_netdev *nd, struct sk_buff *skb, const void *meta,
		       unsigned int len);
/* @skb (from rvio_netdev_rx_alloc()) could not be filled: freed, counted
 * as rx_dropped. Process context or softirq. */
void rvio_netdev_rx_drop(struct rvio_netdev *nd, struct sk_buff *skb);

/*
 * A lower device: a device the guest was given beside this one (an SR-IOV
 * VF, whose MAC the host set to this device's), taken as a bonding master
 * or net_failover takes its ports. Frames the driver sends to it
 * (rvio_netdev_lower_xmit()) leave through it, and every frame it
 * receives is this device's. It is taken down (as bonding takes a port:
 * nothing its own stack configured while up stays), then it is linked as
 * this device's lower (`ip link` shows `master`), brought up, has no IPv6
 * addresses of its own, and this device's MAC cannot change; it is let
 * go, and closed, when it or this device is unregistered or leaves the
 * namespace, when its MAC changes, or by rvio_netdev_lower_release().
 *
 * Takes the device named @ifname in this device's namespace: 0, -EBUSY
 * (this device has one, it is up, or another master or receive handler
 * has it),
 * -ENODEV (no such device), -EINVAL (not an Ethernet device, or this one
 * or another of ours), -EADDRNOTAVAIL (its MAC is not this device's), or
 * dev_open()'s error. Process context, not under RTNL.
 */
int rvio_netdev_lower_take(struct rvio_netdev *nd, const char *ifname);
/*
 * Auto mode: takes, when it has no lower device, any device of its
 * namespace that rvio_netdev_lower_take() would take (its MAC, down, no
 * master) and that is a device of its own (it has a parent device, as a
 * VF its PCI function, and is stacked on none), now and whenever one
 * appears there (is registered or moved in: a VF plugged into the guest,
 * as net_failover pairs a VF with its standby by MAC), takes its MAC, or
 * goes down or loses its master; and after letting one go. Until
 * rvio_netdev_lower_take() (taken or not) or rvio_netdev_lower_release().
 * Process context, not under RTNL.
 */
void rvio_netdev_lower_auto(struct rvio_netdev *nd);
/* Lets the lower device go and ends auto mode: 0, or -ENOENT if there is
 * neither. Process context, not under RTNL. */
int rvio_netdev_lower_release(struct rvio_netdev *nd);
/* Copies the lower device's name into @buf (IFNAMSIZ bytes): false if
 * there is none; *@auto_mode: in auto mode. Process context, not under
 * RTNL. */
bool rvio_netdev_lower_name(struct rvio_netdev *nd, char *buf, bool *auto_mode);
/*
 * Sends @skb (a frame @xmit_ref has) through the lower device: 0, the skb
 * is consumed (counted as sent, or as dropped if the lower device's queue
 * dropped it); -ENETDOWN (no lower device, or it is down or without
 * carrier) or -EMSGSIZE (over its MTU, for a GSO frame its segments),
 * the skb is untouched. From
 * @xmit_ref, holding no lock that the transmit path may take.
 */
int rvio_netdev_lower_xmit(struct rvio_netdev *nd, struct sk_buff *skb);
/* Frames received from and sent through lower devices. Any context. */
void rvio_netdev_lower_stats(struct rvio_netdev *nd, u64 *rx_frames, u64 *tx_frames);

#endif /* RVIO_NETDEV_GLUE_H */
