// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's Ethernet net_device abstraction: see rust/netdev_glue.h.
 *
 * Why C: 6.12's kernel crate has no net_device, NAPI, sk_buff or ethtool
 * abstraction. The net_device_ops and ethtool_ops tables, napi_struct,
 * the sk_buff queues and the static inlines around them (netdev_priv,
 * eth_type_trans, netif_*_queue, DEV_STATS_*) stay here until it has.
 */
#include <linux/completion.h>
#include <linux/err.h>
#include <linux/mm.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/netdevice.h>
#include <linux/rcupdate.h>
#include <net/gso.h>
#include <linux/rtnetlink.h>
#include <net/rtnetlink.h>
#include <linux/scatterlist.h>
#include <linux/skbuff.h>
#include <linux/virtio_net.h>
#include <linux/workqueue.h>
#include <net/sock.h>

#include "netdev_glue.h"

/* Frames queued for the transmit work before the queue is stopped. */
#define RVIO_NETDEV_TXQ_MAX 256
/* Received frames waiting for NAPI before more are dropped. */
#define RVIO_NETDEV_RXQ_MAX 1024
/* Frames the transmit work sends per run before it yields. */
#define RVIO_NETDEV_TX_BUDGET 64
/* bits of rvio_netdev.flags: @xmit said -EAGAIN, wait for wake_tx; */
#define RVIO_NETDEV_TX_BLOCKED 0
/* the device is down (ndo_stop ran): the transmit work does nothing; */
#define RVIO_NETDEV_TX_STOPPED 1
/* the transmit work is sending (a frame it took may still be on its way
 * to the driver: ndo_start_xmit queues behind it rather than overtake). */
#define RVIO_NETDEV_TX_RUNNING 2
/* an announcement is due (rvio_netdev_notify_peers()): at the next
 * notify work while the device is up. */
#define RVIO_NETDEV_ANNOUNCE 3

/* What the transmit queue keeps in skb->cb (the driver owns it once
 * ndo_start_xmit has the skb). */
struct rvio_netdev_cb {
	/* @xmit_ref sent it back: the copy path only. */
	bool copy;
};

static struct rvio_netdev_cb *cb_of(struct sk_buff *skb)
{
	BUILD_BUG_ON(sizeof(struct rvio_netdev_cb) > sizeof(skb->cb));
	return (struct rvio_netdev_cb *)skb->cb;
}

struct rvio_netdev {
	struct net_device *dev;
	const struct rvio_netdev_vtable *vt;
	void *priv;
	struct napi_struct napi;
	struct sk_buff_head txq;
	/* Received frames for NAPI; @rx_up (under its lock) says whether
	 * NAPI is enabled and takes them. */
	struct sk_buff_head rxq;
	bool rx_up;
	struct work_struct tx_work;
	/* Announces the device to its peers (gratuitous ARPs). */
	struct work_struct notify_work;
	unsigned int max_frame;
	unsigned long flags;
	/* Counts rvio_netdev_wake_tx() calls: a wake that races an -EAGAIN
	 * is seen by the transmit work. */
	atomic_long_t wakes;
	/* The lower device (rvio_netdev_lower_take()), if any: written under
	 * RTNL, read under RCU by rvio_netdev_lower_xmit(). Its frames are
	 * received here (rvio_netdev_lower_rx()). */
	struct net_device __rcu *lower;
	netdevice_tracker lower_tracker;
	/* In rvio_netdevs while registered (under RTNL): the module's
	 * notifier lets go of the lower device when it, or this device, is
	 * unregistered (or moves to another namespace), or the lower's MAC
	 * changes. */
	struct list_head node;
	/* The core is done with the unregistered device (its
	 * priv_destructor ran): rvio_netdev_free() may free it. */
	struct completion released;
	/* The lower device had IFF_NO_ADDRCONF before it was taken. */
	bool lower_no_addrconf;
	/* Takes any device of its namespace with its MAC, when it has none
	 * (rvio_netdev_lower_auto(); under RTNL), from a work item: not in
	 * the notifier, where the device may still be in its driver's
	 * probe. */
	bool lower_auto;
	struct work_struct lower_work;
	atomic64_t lower_rx_frames, lower_tx_frames;
};

static struct rvio_netdev *nd_of(struct net_device *dev)
{
	return netdev_priv(dev);
}

/* The module's link kind (one per module: the devices of this file's
 * copy), with its driver's context; set while registered. */
static const struct rvio_netdev_kind *rvio_kind;
static void *rvio_kind_ctx;
/* rvio_netdev_add() may make devices (under RTNL): the kind is
 * registered and not being unregistered. */
static bool rvio_kind_ready;
/* The module's registered devices (rvio_netdev.node), under RTNL. */
static LIST_HEAD(rvio_netdevs);

/*
 * Offers @skb to the driver's @xmit_ref: 0 taken, RVIO_NETDEV_TX_COPY
 * (the copy path), -EAGAIN (requeued, the work stops), another errno
 * (dropped).
 *
 */
static int rvio_netdev_tx_ref(struct rvio_netdev *nd, struct sk_buff *skb,
			      struct virtio_net_hdr_v1 *hdr, long *seen)
{
	u8 buf[ETH_HLEN];
	const u8 *eth = skb_header_pointer(skb, 0, ETH_HLEN, buf);

	if (!eth)
		return -EINVAL;
	*seen = atomic_long_read(&nd->wakes);
	return nd->vt->xmit_ref(nd->priv, skb, hdr, eth, skb->len);
}

/* @xmit or @xmit_ref said -EAGAIN for @skb: requeues it and stops until a
 * wake; false if a wake came meanwhile (retry now). */
static bool rvio_netdev_tx_block(struct rvio_netdev *nd, struct sk_buff *skb, long seen)
{
	skb_queue_head(&nd->txq, skb);
	set_bit(RVIO_NETDEV_TX_BLOCKED, &nd->flags);
	smp_mb__after_atomic();
	/* The room came back before the bit was set: retry. */
	if (atomic_long_read(&nd->wakes) != seen) {
		clear_bit(RVIO_NETDEV_TX_BLOCKED, &nd->flags);
		return false;
	}
	netif_stop_queue(nd->dev);
	return true;
}

static void rvio_netdev_tx_work(struct work_struct *w)
{
	struct rvio_netdev *nd = container_of(w, struct rvio_netdev, tx_work);
	struct net_device *dev = nd->dev;
	struct sk_buff *skb;
	int n = 0;

	set_bit(RVIO_NETDEV_TX_RUNNING, &nd->flags);
	smp_mb__after_atomic();
	while (!test_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags) &&
	       !test_bit(RVIO_NETDEV_TX_BLOCKED, &nd->flags) && (skb = skb_dequeue(&nd->txq))) {
		if (++n > RVIO_NETDEV_TX_BUDGET) {
			/* Yield; the next run goes on. */
			skb_queue_head(&nd->txq, skb);
			schedule_work(&nd->tx_work);
			break;
		}
		struct virtio_net_hdr_v1 hdr;
		unsigned int len = skb->len;
		long seen;
		int err;

		if (len > nd->max_frame ||
		    virtio_net_hdr_from_skb(skb, (struct virtio_net_hdr *)&hdr, true, false, 0)) {
			DEV_STATS_INC(dev, tx_dropped);
			kfree_skb(skb);
			continue;
		}
		hdr.num_buffers = 0;
		if (nd->vt->xmit_ref && !cb_of(skb)->copy) {
			err = rvio_netdev_tx_ref(nd, skb, &hdr, &seen);
			if (!err)
				continue;
			if (err == -EAGAIN) {
				if (rvio_netdev_tx_block(nd, skb, seen))
					break;
				continue;
			}
			if (err != RVIO_NETDEV_TX_COPY) {
				DEV_STATS_INC(dev, tx_dropped);
				kfree_skb(skb);
				continue;
			}
		}
		/* The driver copies it once, out of its pages. */
		seen = atomic_long_read(&nd->wakes);
		err = nd->vt->xmit(nd->priv, skb, &hdr, len);
		if (err == -EAGAIN) {
			/* Marked: @xmit_ref had its chance (or there is none). */
			cb_of(skb)->copy = true;
			if (rvio_netdev_tx_block(nd, skb, seen))
				break;
			continue;
		}
		if (err) {
			DEV_STATS_INC(dev, tx_dropped);
			kfree_skb(skb);
			continue;
		}
		DEV_STATS_INC(dev, tx_packets);
		DEV_STATS_ADD(dev, tx_bytes, len);
		consume_skb(skb);
	}
	/* Release: what this run handed to the driver comes before a frame
	 * ndo_start_xmit hands it after seeing the bit clear. */
	clear_bit_unlock(RVIO_NETDEV_TX_RUNNING, &nd->flags);
	if (!test_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags) &&
	    !test_bit(RVIO_NETDEV_TX_BLOCKED, &nd->flags) &&
	    skb_queue_len_lockless(&nd->txq) < RVIO_NETDEV_TXQ_MAX / 2) {
		/* The qdisc runs in the softirq at local_bh_enable(). */
		local_bh_disable();
		netif_wake_queue(dev);
		local_bh_enable();
	}
}

/*
 * ndo_start_xmit's offer of @skb to @xmit_ref, in its softirq: 0 taken or
 * dropped (counted), RVIO_NETDEV_TX_COPY or -EAGAIN for the transmit work.
 */
static int rvio_netdev_tx_direct(struct rvio_netdev *nd, struct sk_buff *skb)
{
	struct virtio_net_hdr_v1 hdr;
	long seen;
	int err;

	if (skb->len > nd->max_frame ||
	    virtio_net_hdr_from_skb(skb, (struct virtio_net_hdr *)&hdr, true, false, 0)) {
		DEV_STATS_INC(nd->dev, tx_dropped);
		kfree_skb(skb);
		return 0;
	}
	hdr.num_buffers = 0;
	err = rvio_netdev_tx_ref(nd, skb, &hdr, &seen);
	if (err == 0 || err == RVIO_NETDEV_TX_COPY || err == -EAGAIN)
		return err;
	DEV_STATS_INC(nd->dev, tx_dropped);
	kfree_skb(skb);
	return 0;
}

/*
 * Whether ndo_start_xmit may hand a frame to @xmit_ref itself: not from
 * netpoll (IRQs off: @xmit_ref's locks turn bottom halves on when they
 * unlock, and this CPU may hold them already), and no frame before it
 * queued for the transmit work or on its way through it. The queue is
 * read first: if it looks empty because the work took its last frame,
 * the barrier after the work set RUNNING (before it dequeued) makes the
 * bit seen here.
 */
static bool rvio_netdev_tx_direct_ok(struct rvio_netdev *nd)
{
	if (!nd->vt->xmit_ref || irqs_disabled() || !skb_queue_empty_lockless(&nd->txq))
		return false;
	smp_rmb();
	return !(smp_load_acquire(&nd->flags) &
		 (BIT(RVIO_NETDEV_TX_BLOCKED) | BIT(RVIO_NETDEV_TX_STOPPED) |
		  BIT(RVIO_NETDEV_TX_RUNNING)));
}

static netdev_tx_t rvio_netdev_start_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct rvio_netdev *nd = nd_of(dev);

	cb_of(skb)->copy = false;
	if (nd->vt->tx_pacing_shift)
		sk_pacing_shift_update(skb->sk, nd->vt->tx_pacing_shift);
	/*
	 * A driver that sends without a copy gets the frame here, in this
	 * softirq (@xmit_ref must not sleep), unless frames before it wait
	 * for the transmit work or are on their way through it: those go
	 * first. What it sends back goes to the work (the copy path, or a
	 * retry after a wake).
	 */
	if (rvio_netdev_tx_direct_ok(nd)) {
		int err = rvio_netdev_tx_direct(nd, skb);

		if (!err)
			return NETDEV_TX_OK;
		cb_of(skb)->copy = err == RVIO_NETDEV_TX_COPY;
	}
	skb_queue_tail(&nd->txq, skb);
	if (skb_queue_len_lockless(&nd->txq) >= RVIO_NETDEV_TXQ_MAX)
		netif_stop_queue(dev);
	if (!test_bit(RVIO_NETDEV_TX_BLOCKED, &nd->flags) &&
	    !test_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags))
		schedule_work(&nd->tx_work);
	return NETDEV_TX_OK;
}

static int rvio_netdev_poll(struct napi_struct *napi, int budget)
{
	struct rvio_netdev *nd = container_of(napi, struct rvio_netdev, napi);
	struct sk_buff *skb;
	int done = 0;

	while (done < budget && (skb = skb_dequeue(&nd->rxq))) {
		DEV_STATS_INC(nd->dev, rx_packets);
		DEV_STATS_ADD(nd->dev, rx_bytes, skb->len + ETH_HLEN);
		napi_gro_receive(napi, skb);
		done++;
	}
	/* A frame queued after the last dequeue reschedules us. */
	if (done < budget && napi_complete_done(napi, done) && !skb_queue_empty(&nd->rxq))
		napi_schedule(napi);
	return done;
}

/* Stops receive: no frame is queued after this, NAPI is disabled and the
 * queue empty (its frames counted as dropped). */
static void rvio_netdev_rx_down(struct rvio_netdev *nd)
{
	struct sk_buff *skb;

	spin_lock_bh(&nd->rxq.lock);
	nd->rx_up = false;
	spin_unlock_bh(&nd->rxq.lock);
	napi_disable(&nd->napi);
	while ((skb = skb_dequeue(&nd->rxq))) {
		DEV_STATS_INC(nd->dev, rx_dropped);
		kfree_skb(skb);
	}
}

/* Empties the transmit queue, counting its frames as dropped. */
static void rvio_netdev_tx_purge(struct rvio_netdev *nd)
{
	struct sk_buff *skb;

	while ((skb = skb_dequeue(&nd->txq))) {
		DEV_STATS_INC(nd->dev, tx_dropped);
		kfree_skb(skb);
	}
}

static void rvio_netdev_notify_work(struct work_struct *w)
{
	struct rvio_netdev *nd = container_of(w, struct rvio_netdev, notify_work);
	struct net_device *dev = nd->dev;

	rtnl_lock();
	/* Down (or unregistered): ndo_open schedules it again. */
	if (netif_running(dev) && test_and_clear_bit(RVIO_NETDEV_ANNOUNCE, &nd->flags))
		__netdev_notify_peers(dev);
	rtnl_unlock();
	/* The queued work's reference (rvio_netdev_notify_schedule()). */
	dev_put(dev);
}

/*
 * Queues the announcement work of a registered device, holding a
 * reference while it is queued: the core's unregistering waits for it,
 * so it never runs on a device freed behind it (one whose registering
 * failed in a NETDEV_REGISTER notifier is freed by the core).
 */
static void rvio_netdev_notify_schedule(struct rvio_netdev *nd)
{
	/* Under RCU: the unregistering sets UNREGISTERING, then waits for
	 * RCU readers (synchronize_net()) before it waits for references,
	 * so a reference taken after seeing REGISTERED is waited for. */
	rcu_read_lock();
	if (READ_ONCE(nd->dev->reg_state) == NETREG_REGISTERED) {
		dev_hold(nd->dev);
		if (!schedule_work(&nd->notify_work))
			dev_put(nd->dev);
	}
	rcu_read_unlock();
}

static int rvio_netdev_open(struct net_device *dev)
{
	struct rvio_netdev *nd = nd_of(dev);
	int err;

	clear_bit(RVIO_NETDEV_TX_BLOCKED, &nd->flags);
	clear_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags);
	napi_enable(&nd->napi);
	spin_lock_bh(&nd->rxq.lock);
	nd->rx_up = true;
	spin_unlock_bh(&nd->rxq.lock);
	err = nd->vt->open(nd->priv);
	if (err) {
		set_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags);
		rvio_netdev_rx_down(nd);
		return err;
	}
	netif_start_queue(dev);
	netif_carrier_on(dev);
	/* An announcement that came while down goes now. */
	if (test_bit(RVIO_NETDEV_ANNOUNCE, &nd->flags))
		rvio_netdev_notify_schedule(nd);
	return 0;
}

void rvio_netdev_notify_peers(struct rvio_netdev *nd)
{
	set_bit(RVIO_NETDEV_ANNOUNCE, &nd->flags);
	/* Not registered yet: ndo_open announces it. */
	rvio_netdev_notify_schedule(nd);
}

static int rvio_netdev_stop(struct net_device *dev)
{
	struct rvio_netdev *nd = nd_of(dev);

	netif_carrier_off(dev);
	netif_stop_queue(dev);
	/* A wake_tx after this queues no run; the one running finishes. */
	set_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags);
	smp_mb__after_atomic();
	cancel_work_sync(&nd->tx_work);
	rvio_netdev_tx_purge(nd);
	rvio_netdev_rx_down(nd);
	nd->vt->stop(nd->priv);
	return 0;
}

/*
 * The lower device's receive handler: every frame it receives is this
 * device's (as a bonding master's or net_failover's), counted here; none
 * while this device is down.
 */
static rx_handler_result_t rvio_netdev_lower_rx(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct rvio_netdev *nd = rcu_dereference(skb->dev->rx_handler_data);
	struct net_device *dev = nd->dev;

	if (skb->pkt_type == PACKET_LOOPBACK)
		return RX_HANDLER_PASS;
	/* Ours to change (skb->dev). */
	skb = skb_share_check(skb, GFP_ATOMIC);
	if (!skb) {
		DEV_STATS_INC(dev, rx_dropped);
		return RX_HANDLER_CONSUMED;
	}
	*pskb = skb;
	if (!netif_running(dev)) {
		DEV_STATS_INC(dev, rx_dropped);
		kfree_skb(skb);
		return RX_HANDLER_CONSUMED;
	}
	skb->dev = dev;
	DEV_STATS_INC(dev, rx_packets);
	DEV_STATS_ADD(dev, rx_bytes, skb->len + ETH_HLEN);
	atomic64_inc(&nd->lower_rx_frames);
	return RX_HANDLER_ANOTHER;
}

/* Lets go of the lower device, if any (under RTNL), and leaves it down,
 * as it was taken. */
static void rvio_netdev_lower_put(struct rvio_netdev *nd)
{
	struct net_device *lower = rtnl_dereference(nd->lower);

	if (!lower)
		return;
	RCU_INIT_POINTER(nd->lower, NULL);
	/* Waits for the receive handlers and RCU readers (transmits) in
	 * flight. */
	netdev_rx_handler_unregister(lower);
	netdev_upper_dev_unlink(lower, nd->dev);
	dev_close(lower);
	if (!nd->lower_no_addrconf)
		lower->priv_flags &= ~IFF_NO_ADDRCONF;
	netdev_put(lower, &nd->lower_tracker);
}

/* Whether @lower could be this device's lower device (under RTNL):
 * 0 or the errno rvio_netdev_lower_take() documents. */
static int rvio_netdev_lower_check(struct rvio_netdev *nd, struct net_device *lower)
{
	struct net_device *dev = nd->dev;

	/* An Ethernet device other than this one or another of ours (it
	 * could be a lower of its own lower), with this device's MAC: the
	 * MAC the host's table and the VF's policy give this domain. */
	if (lower == dev || lower->netdev_ops == dev->netdev_ops || lower->flags & IFF_LOOPBACK ||
	    lower->type != ARPHRD_ETHER || lower->addr_len != ETH_ALEN)
		return -EINVAL;
	if (!ether_addr_equal(lower->dev_addr, dev->dev_addr))
		return -EADDRNOTAVAIL;
	/* Down, as bonding takes its ports: addresses and routes its stack
	 * gave it while up would stay, and their replies come here. Not
	 * another master's or receive handler's. */
	if (lower->flags & IFF_UP || netdev_master_upper_dev_get(lower) ||
	    rtnl_dereference(lower->rx_handler))
		return -EBUSY;
	return 0;
}

/* Takes @lower, which passed rvio_netdev_lower_check() (under RTNL). */
static int __rvio_netdev_lower_take(struct rvio_netdev *nd, struct net_device *lower)
{
	struct net_device *dev = nd->dev;
	int err;

	err = netdev_rx_handler_register(lower, rvio_netdev_lower_rx, nd);
	if (err)
		return err;
	err = netdev_master_upper_dev_link(lower, dev, NULL, NULL, NULL);
	if (err)
		goto unregister;
	/* Its addresses are this device's: no IPv6 link-local of its own. */
	nd->lower_no_addrconf = lower->priv_flags & IFF_NO_ADDRCONF;
	lower->priv_flags |= IFF_NO_ADDRCONF;
	/* Up, as a bonding master brings its ports up (its carrier decides
	 * whether it is used). */
	err = dev_open(lower, NULL);
	if (err) {
		if (!nd->lower_no_addrconf)
			lower->priv_flags &= ~IFF_NO_ADDRCONF;
		netdev_upper_dev_unlink(lower, dev);
		goto unregister;
	}
	netdev_hold(lower, &nd->lower_tracker, GFP_KERNEL);
	rcu_assign_pointer(nd->lower, lower);
	netdev_info(dev, "takes %s as its lower device\n", netdev_name(lower));
	return 0;
unregister:
	netdev_rx_handler_unregister(lower);
	return err;
}

/* In auto mode without a lower device: takes the first device of its
 * namespace that passes the checks (under RTNL). */
static void rvio_netdev_lower_find(struct rvio_netdev *nd)
{
	struct net_device *d;

	if (!nd->lower_auto || rtnl_dereference(nd->lower) || nd->dev->reg_state != NETREG_REGISTERED)
		return;
	for_each_netdev(dev_net(nd->dev), d) {
		/* A device of its own (a VF has its PCI function), not one
		 * stacked on others (a VLAN device on the VF, a bridge). */
		if (!d->dev.parent || !list_empty(&d->adj_list.lower))
			continue;
		if (!rvio_netdev_lower_check(nd, d) && !__rvio_netdev_lower_take(nd, d))
			return;
	}
}

/* An event of @dev, a device of @nd's namespace (under RTNL). */
static void rvio_netdev_lower_event(struct rvio_netdev *nd, struct net_device *dev,
				    unsigned long event)
{
	struct net_device *lower = rtnl_dereference(nd->lower);

	if (!lower) {
		/* Auto mode: a device with this device's MAC may have appeared
		 * in its namespace (plugged in, or moved in), or one took the
		 * MAC, or this device did, or moved; or one skipped before
		 * (up, or another's) went down or lost its master. */
		if (nd->lower_auto &&
		    (event == NETDEV_REGISTER || event == NETDEV_CHANGEADDR || event == NETDEV_DOWN ||
		     event == NETDEV_CHANGEUPPER))
			schedule_work(&nd->lower_work);
		return;
	}
	if (dev != lower && dev != nd->dev)
		return;
	if (event == NETDEV_UNREGISTER ||
	    (event == NETDEV_CHANGEADDR && !ether_addr_equal(lower->dev_addr, nd->dev->dev_addr))) {
		netdev_info(nd->dev, "lets go of %s (%s)\n", netdev_name(lower),
			    event == NETDEV_UNREGISTER ? "unregistered" : "its MAC changed");
		rvio_netdev_lower_put(nd);
		if (nd->lower_auto)
			schedule_work(&nd->lower_work);
	}
}

/*
 * The module's one notifier (all namespaces; registering a notifier per
 * device or namespace takes RTNL, which rtnl_link_ops' newlink already
 * holds): each event goes to the devices of its namespace. A device moved
 * to another namespace gets its NETDEV_UNREGISTER in the old one first.
 */
static int rvio_netdev_notify(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct rvio_netdev *nd;

	list_for_each_entry(nd, &rvio_netdevs, node)
		if (net_eq(dev_net(nd->dev), dev_net(dev)))
			rvio_netdev_lower_event(nd, dev, event);
	return NOTIFY_DONE;
}

static struct notifier_block rvio_netdev_nb = {
	.notifier_call = rvio_netdev_notify,
};

int rvio_netdev_lower_take(struct rvio_netdev *nd, const char *ifname)
{
	struct net_device *lower;
	int err;

	rtnl_lock();
	/* A device named ends auto mode, taken or not. */
	nd->lower_auto = false;
	if (rtnl_dereference(nd->lower)) {
		err = -EBUSY;
		goto unlock;
	}
	/* Unregistered: its namespace may be gone. */
	if (nd->dev->reg_state != NETREG_REGISTERED) {
		err = -ENODEV;
		goto unlock;
	}
	lower = __dev_get_by_name(dev_net(nd->dev), ifname);
	if (!lower) {
		err = -ENODEV;
		goto unlock;
	}
	err = rvio_netdev_lower_check(nd, lower);
	if (!err)
		err = __rvio_netdev_lower_take(nd, lower);
unlock:
	rtnl_unlock();
	return err;
}

static void rvio_netdev_lower_work(struct work_struct *w)
{
	struct rvio_netdev *nd = container_of(w, struct rvio_netdev, lower_work);

	rtnl_lock();
	rvio_netdev_lower_find(nd);
	rtnl_unlock();
}

void rvio_netdev_lower_auto(struct rvio_netdev *nd)
{
	rtnl_lock();
	nd->lower_auto = true;
	rvio_netdev_lower_find(nd);
	rtnl_unlock();
}

int rvio_netdev_lower_release(struct rvio_netdev *nd)
{
	int err = 0;

	rtnl_lock();
	if (rtnl_dereference(nd->lower))
		rvio_netdev_lower_put(nd);
	else if (!nd->lower_auto)
		err = -ENOENT;
	nd->lower_auto = false;
	rtnl_unlock();
	return err;
}

bool rvio_netdev_lower_name(struct rvio_netdev *nd, char *buf, bool *auto_mode)
{
	struct net_device *lower;

	/* (Renames take RTNL.) */
	rtnl_lock();
	lower = rtnl_dereference(nd->lower);
	if (lower)
		strscpy(buf, lower->name, IFNAMSIZ);
	*auto_mode = nd->lower_auto;
	rtnl_unlock();
	return lower;
}

int rvio_netdev_lower_xmit(struct rvio_netdev *nd, struct sk_buff *skb)
{
	struct net_device *dev = nd->dev, *lower;
	unsigned int len = skb->len;
	int rc;

	rcu_read_lock_bh();
	lower = rcu_dereference_bh(nd->lower);
	if (!lower || !netif_running(lower) || !netif_carrier_ok(lower)) {
		rcu_read_unlock_bh();
		return -ENETDOWN;
	}
	/* Within its MTU, per segment for GSO (this device's MTU may be
	 * larger); its own offloads are its business (dev_queue_xmit()
	 * segments and checksums what it cannot). */
	if (skb_is_gso(skb) ? !skb_gso_validate_mac_len(skb, lower->mtu + ETH_HLEN) :
			      skb->len > lower->mtu + ETH_HLEN) {
		rcu_read_unlock_bh();
		return -EMSGSIZE;
	}
	skb->dev = lower;
	rc = dev_queue_xmit(skb);
	rcu_read_unlock_bh();
	if (net_xmit_eval(rc)) {
		DEV_STATS_INC(dev, tx_dropped);
	} else {
		DEV_STATS_INC(dev, tx_packets);
		DEV_STATS_ADD(dev, tx_bytes, len);
		atomic64_inc(&nd->lower_tx_frames);
	}
	return 0;
}

void rvio_netdev_lower_stats(struct rvio_netdev *nd, u64 *rx_frames, u64 *tx_frames)
{
	*rx_frames = atomic64_read(&nd->lower_rx_frames);
	*tx_frames = atomic64_read(&nd->lower_tx_frames);
}

/* Its own lock classes: frames it sends to its lower device take the
 * lower's transmit locks under its own (as macvlan's and veth's). */
static int rvio_netdev_init(struct net_device *dev)
{
	netdev_lockdep_set_classes(dev);
	list_add(&nd_of(dev)->node, &rvio_netdevs);
	return 0;
}

/* Unregistered (after its NETDEV_UNREGISTER, which let its lower device
 * go), or its registering failed. */
static void rvio_netdev_uninit(struct net_device *dev)
{
	list_del(&nd_of(dev)->node);
}

/* While it has a lower device, its MAC is the lower's. */
static int rvio_netdev_set_mac(struct net_device *dev, void *p)
{
	struct rvio_netdev *nd = nd_of(dev);
	struct net_device *lower = rtnl_dereference(nd->lower);
	struct sockaddr *sa = p;

	if (lower && !ether_addr_equal(lower->dev_addr, sa->sa_data))
		return -EBUSY;
	return eth_mac_addr(dev, p);
}

static const struct net_device_ops rvio_netdev_ops = {
	.ndo_init = rvio_netdev_init,
	.ndo_uninit = rvio_netdev_uninit,
	.ndo_open = rvio_netdev_open,
	.ndo_stop = rvio_netdev_stop,
	.ndo_start_xmit = rvio_netdev_start_xmit,
	.ndo_set_mac_address = rvio_netdev_set_mac,
	.ndo_validate_addr = eth_validate_addr,
};

static void rvio_netdev_get_drvinfo(struct net_device *dev, struct ethtool_drvinfo *info)
{
	strscpy(info->driver, nd_of(dev)->vt->driver, sizeof(info->driver));
}

static int rvio_netdev_get_sset_count(struct net_device *dev, int sset)
{
	return sset == ETH_SS_STATS ? nd_of(dev)->vt->n_stats : -EOPNOTSUPP;
}

static void rvio_netdev_get_strings(struct net_device *dev, u32 sset, u8 *data)
{
	const struct rvio_netdev_vtable *vt = nd_of(dev)->vt;
	unsigned int i;

	if (sset != ETH_SS_STATS)
		return;
	for (i = 0; i < vt->n_stats; i++)
		ethtool_puts(&data, vt->stat_names[i]);
}

static void rvio_netdev_get_ethtool_stats(struct net_device *dev, struct ethtool_stats *stats,
					  u64 *data)
{
	struct rvio_netdev *nd = nd_of(dev);

	nd->vt->get_stats(nd->priv, data);
}

static const struct ethtool_ops rvio_netdev_ethtool_ops = {
	.get_drvinfo = rvio_netdev_get_drvinfo,
	.get_link = ethtool_op_get_link,
	.get_sset_count = rvio_netdev_get_sset_count,
	.get_strings = rvio_netdev_get_strings,
	.get_ethtool_stats = rvio_netdev_get_ethtool_stats,
};

/* The core is done with it: unregistered, its last reference gone. */
static void rvio_netdev_destructor(struct net_device *dev)
{
	complete(&nd_of(dev)->released);
}

/* rtnl_link_ops' setup, and rvio_netdev_add()'s: everything but the
 * driver, which rvio_netdev_register() binds. */
static void rvio_netdev_setup(struct net_device *dev)
{
	struct rvio_netdev *nd = netdev_priv(dev);

	ether_setup(dev);
	nd->dev = dev;
	nd->max_frame = rvio_kind->max_frame;
	skb_queue_head_init(&nd->txq);
	skb_queue_head_init(&nd->rxq);
	INIT_WORK(&nd->tx_work, rvio_netdev_tx_work);
	INIT_WORK(&nd->notify_work, rvio_netdev_notify_work);
	INIT_WORK(&nd->lower_work, rvio_netdev_lower_work);
	INIT_LIST_HEAD(&nd->node);
	init_completion(&nd->released);
	atomic_long_set(&nd->wakes, 0);
	/* Down until ndo_open. */
	set_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags);
	/* The transmit queue holds skbs until the work sends them: the same
	 * skb must not come twice (pktgen's clone_skb/burst). */
	dev->priv_flags &= ~IFF_TX_SKB_SHARING;
	dev->netdev_ops = &rvio_netdev_ops;
	dev->ethtool_ops = &rvio_netdev_ethtool_ops;
	/* Freed by rvio_netdev_free(), once the driver is done with it too
	 * (frames it holds, the peer's completions): not by the core. */
	dev->needs_free_netdev = false;
	dev->priv_destructor = rvio_netdev_destructor;
	dev->min_mtu = ETH_MIN_MTU;
	dev->max_mtu = rvio_kind->max_mtu;
	/* The offloads of virtio-net's VIRTIO_NET_F_CSUM and HOST_TSO4/6/ECN,
	 * carried in each frame's struct virtio_net_hdr_v1. */
	dev->hw_features = NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_TSO | NETIF_F_TSO6 |
			   NETIF_F_TSO_ECN;
	/* The switch drops tagged frames from domains: no VLAN devices on top
	 * (a VLAN is the switch's business, docs/envelope.md). */
	dev->features = dev->hw_features | NETIF_F_RXCSUM | NETIF_F_VLAN_CHALLENGED;
	dev->hw_features |= NETIF_F_RXCSUM;
	netif_set_tso_max_size(dev, nd->max_frame);
	eth_hw_addr_random(dev);
	netif_napi_add(dev, &nd->napi, rvio_netdev_poll);
	netif_carrier_off(dev);
}

/* `ip link add NAME parentdev DEV type KIND`: the parent is required; one
 * queue each way (the transmit path stops and wakes queue 0). */
static int rvio_netdev_validate(struct nlattr *tb[], struct nlattr *data[],
				struct netlink_ext_ack *extack)
{
	if (!tb[IFLA_PARENT_DEV_NAME]) {
		NL_SET_ERR_MSG(extack, "the parent device is required (parentdev DEV)");
		return -EINVAL;
	}
	if ((tb[IFLA_NUM_TX_QUEUES] && nla_get_u32(tb[IFLA_NUM_TX_QUEUES]) != 1) ||
	    (tb[IFLA_NUM_RX_QUEUES] && nla_get_u32(tb[IFLA_NUM_RX_QUEUES]) != 1)) {
		NL_SET_ERR_MSG(extack, "one queue each way only");
		return -EINVAL;
	}
	if (tb[IFLA_ADDRESS] && (nla_len(tb[IFLA_ADDRESS]) != ETH_ALEN ||
				 !is_valid_ether_addr(nla_data(tb[IFLA_ADDRESS])))) {
		NL_SET_ERR_MSG(extack, "invalid MAC address");
		return -EADDRNOTAVAIL;
	}
	return 0;
}

/* The driver's @newlink for @dev (under RTNL): registered if it says 0. */
static int rvio_netdev_call_newlink(struct net_device *dev, const char *parent, const void *opts)
{
	int err = rvio_kind->newlink(rvio_kind_ctx, nd_of(dev), parent, opts);

	/* A driver that says 0 without registering would have the caller
	 * free a device it still uses. */
	if (WARN_ON_ONCE(!err && dev->reg_state != NETREG_REGISTERED))
		return -EINVAL;
	return err;
}

static int rvio_netdev_newlink(struct net *net, struct net_device *dev, struct nlattr *tb[],
			       struct nlattr *data[], struct netlink_ext_ack *extack)
{
	char parent[IFNAMSIZ];
	int err;

	/* The parent is a device of the machine, not of a namespace: only
	 * the machine's administrator hands it to one (a container's root
	 * has CAP_NET_ADMIN in its own namespace only). */
	if (!capable(CAP_NET_ADMIN))
		return -EPERM;
	if (nla_strscpy(parent, tb[IFLA_PARENT_DEV_NAME], sizeof(parent)) < 0) {
		NL_SET_ERR_MSG(extack, "parent device name too long");
		return -EINVAL;
	}
	err = rvio_netdev_call_newlink(dev, parent, NULL);
	if (err == -ENODEV)
		NL_SET_ERR_MSG(extack, "no such parent device");
	else if (err == -EEXIST)
		NL_SET_ERR_MSG(extack, "the parent device has an interface already");
	return err;
}

/* `ip link del`, the kind's unregistering, a failed newlink: the device
 * is unregistered with the others; the driver frees it later
 * (rvio_netdev_free()), after its peer has given everything back. */
static void rvio_netdev_dellink(struct net_device *dev, struct list_head *head)
{
	struct rvio_netdev *nd = nd_of(dev);

	unregister_netdevice_queue(dev, head);
	if (nd->vt)
		rvio_kind->dellink(rvio_kind_ctx, nd->priv);
}

static struct rtnl_link_ops rvio_netdev_link_ops = {
	.priv_size = sizeof(struct rvio_netdev),
	.setup = rvio_netdev_setup,
	.validate = rvio_netdev_validate,
	.newlink = rvio_netdev_newlink,
	.dellink = rvio_netdev_dellink,
	/* Its namespace going away gives it back to the initial one, as a
	 * physical NIC: the parent device is the machine's. */
	.netns_refund = true,
};

int rvio_netdev_kind_register(const struct rvio_netdev_kind *kind, void *ctx)
{
	int err;

	if (!kind || !kind->kind || !kind->newlink || !kind->dellink || rvio_kind)
		return -EINVAL;
	rvio_kind = kind;
	rvio_kind_ctx = ctx;
	rvio_netdev_link_ops.kind = kind->kind;
	err = register_netdevice_notifier(&rvio_netdev_nb);
	if (err)
		goto clear;
	err = rtnl_link_register(&rvio_netdev_link_ops);
	if (err)
		goto notifier;
	rtnl_lock();
	rvio_kind_ready = true;
	rtnl_unlock();
	return 0;
notifier:
	unregister_netdevice_notifier(&rvio_netdev_nb);
clear:
	rvio_kind = NULL;
	rvio_kind_ctx = NULL;
	return err;
}

void rvio_netdev_kind_unregister(void)
{
	rtnl_lock();
	rvio_kind_ready = false;
	rtnl_unlock();
	/* Unregisters every device of the kind (their dellink), so none is
	 * in rvio_netdevs when the notifier goes. */
	rtnl_link_unregister(&rvio_netdev_link_ops);
	unregister_netdevice_notifier(&rvio_netdev_nb);
	rvio_kind = NULL;
	rvio_kind_ctx = NULL;
}

int rvio_netdev_add(const struct rvio_netdev_kind *kind, const char *name, const char *parent,
		    const void *opts)
{
	struct net_device *dev;
	int err;

	rtnl_lock();
	if (!rvio_kind_ready || !kind || kind != rvio_kind) {
		rtnl_unlock();
		return -ENODEV;
	}
	dev = alloc_netdev(sizeof(struct rvio_netdev), name,
			   strchr(name, '%') ? NET_NAME_ENUM : NET_NAME_USER, rvio_netdev_setup);
	if (!dev) {
		rtnl_unlock();
		return -ENOMEM;
	}
	/* As rtnl_create_link() makes it: `ip link del` works on it too. */
	dev->rtnl_link_ops = &rvio_netdev_link_ops;
	err = rvio_netdev_call_newlink(dev, parent, opts);
	rtnl_unlock();
	if (err)
		free_netdev(dev);
	return err;
}

int rvio_netdev_register(struct rvio_netdev *nd, const struct rvio_netdev_vtable *vt, void *priv)
{
	int err;

	ASSERT_RTNL();
	if (!vt || !vt->open || !vt->stop || !vt->xmit || !vt->get_stats || !vt->driver ||
	    (vt->n_stats && !vt->stat_names))
		return -EINVAL;
	nd->vt = vt;
	nd->priv = priv;
	err = register_netdevice(nd->dev);
	if (err)
		nd->vt = NULL;
	return err;
}

void rvio_netdev_unregister(struct rvio_netdev *nd)
{
	struct net_device *dev = nd->dev;

	/* Lets go of its lower device (its NETDEV_UNREGISTER) and takes none
	 * any more. */
	rtnl_lock();
	nd->lower_auto = false;
	if (dev->reg_state == NETREG_REGISTERED)
		unregister_netdevice(dev);
	rtnl_unlock();
}

void rvio_netdev_free(struct rvio_netdev *nd)
{
	struct net_device *dev = nd->dev;

	rvio_netdev_unregister(nd);
	/* The unregistering's last step, perhaps on another thread (`ip link
	 * del`'s): after it the core touches nothing free_netdev() frees. */
	wait_for_completion(&nd->released);
	cancel_work_sync(&nd->lower_work);
	/* ndo_stop ran if it was up; if not, nothing was queued. An
	 * announcement after the unregistering finds it down. */
	set_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags);
	cancel_work_sync(&nd->tx_work);
	/* Nothing: a queued one holds a reference, which the unregistering
	 * waited for. */
	WARN_ON_ONCE(cancel_work_sync(&nd->notify_work));
	skb_queue_purge(&nd->txq);
	skb_queue_purge(&nd->rxq);
	free_netdev(dev);
}

void rvio_netdev_exit_barrier(void)
{
	/* rvio_netdev_destructor() returns through this module's code after
	 * complete(): wait until every task has switched voluntarily, which
	 * a task inside a function has not. */
	synchronize_rcu_tasks();
}

const char *rvio_netdev_name(struct rvio_netdev *nd)
{
	return netdev_name(nd->dev);
}

/* A received frame longer than one page goes in a linear head of this
 * many bytes (the headers, which eth_type_trans() and the checksum and GSO
 * offsets need there) and order-0 pages: no high-order allocation, which a
 * fragmented memory fails (virtio-net's big packets do the same). */
#define RVIO_NETDEV_RX_HEAD 256

static struct sk_buff *rx_alloc_paged(struct net_device *dev, unsigned int len)
{
	struct sk_buff *skb;
	unsigned int rest = len - RVIO_NETDEV_RX_HEAD;
	int i = 0;

	skb = __netdev_alloc_skb_ip_align(dev, RVIO_NETDEV_RX_HEAD, GFP_KERNEL | __GFP_NOWARN);
	if (!skb)
		return NULL;
	skb_put(skb, RVIO_NETDEV_RX_HEAD);
	while (rest) {
		unsigned int n = min_t(unsigned int, rest, PAGE_SIZE);
		struct page *page;

		if (i == MAX_SKB_FRAGS)
			goto free;
		page = alloc_page(GFP_KERNEL | __GFP_NOWARN);
		if (!page)
			goto free;
		skb_add_rx_frag(skb, i++, page, 0, n, PAGE_SIZE);
		rest -= n;
	}
	return skb;
free:
	kfree_skb(skb);
	return NULL;
}

/* Whether a received frame of @len bytes with offloads @meta may go in. */
static int rx_check(struct rvio_netdev *nd, const void *meta, unsigned int len)
{
	struct virtio_net_hdr_v1 hdr;
	struct net_device *dev = nd->dev;

	memcpy(&hdr, meta, sizeof(hdr));
	if (len < ETH_HLEN || len > nd->max_frame ||
	    (hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE && len > dev->mtu + VLAN_ETH_HLEN)) {
		/* Longer than the MTU allows and not a TSO frame. */
		DEV_STATS_INC(dev, rx_length_errors);
		return -EINVAL;
	}
	if (!netif_running(dev))
		return -ENETDOWN;
	if (skb_queue_len_lockless(&nd->rxq) >= RVIO_NETDEV_RXQ_MAX)
		return -ENOBUFS;
	return 0;
}

/* An skb of @len bytes: linear up to a page, paged beyond. */
static struct sk_buff *rx_alloc_len(struct net_device *dev, unsigned int len)
{
	struct sk_buff *skb;

	/* Process context: may reclaim for its pages. */
	if (len > PAGE_SIZE)
		return rx_alloc_paged(dev, len);
	skb = __netdev_alloc_skb_ip_align(dev, len, GFP_KERNEL | __GFP_NOWARN);
	if (skb)
		skb_put(skb, len);
	return skb;
}

struct sk_buff *rvio_netdev_rx_alloc(struct rvio_netdev *nd, const void *meta,
				     unsigned int len)
{
	struct sk_buff *skb = NULL;
	int err = rx_check(nd, meta, len);

	if (!err) {
		skb = rx_alloc_len(nd->dev, len);
		if (!skb)
			err = -ENOMEM;
	}
	if (!skb) {
		DEV_STATS_INC(nd->dev, rx_dropped);
		return ERR_PTR(err);
	}
	return skb;
}

int rvio_netdev_rx_copy(struct sk_buff *dst, const struct sk_buff *src, unsigned int len)
{
	if (len > skb_headlen(dst) || len > src->len)
		return -EINVAL;
	return skb_copy_bits(src, 0, dst->data, len);
}

unsigned int rvio_netdev_mtu(struct rvio_netdev *nd)
{
	return READ_ONCE(nd->dev->mtu);
}

struct sk_buff *rvio_netdev_rx_alloc_buf(struct rvio_netdev *nd, unsigned int len)
{
	struct sk_buff *skb;

	if (len < ETH_HLEN || len > nd->max_frame)
		return ERR_PTR(-EINVAL);
	skb = rx_alloc_len(nd->dev, len);
	return skb ? skb : ERR_PTR(-ENOMEM);
}

int rvio_netdev_rx_buf(struct rvio_netdev *nd, struct sk_buff *skb, const void *meta,
		       unsigned int len)
{
	int err = len <= skb->len ? rx_check(nd, meta, len) : -EINVAL;

	if (!err)
		err = pskb_trim(skb, len);
	if (err) {
		DEV_STATS_INC(nd->dev, rx_dropped);
		kfree_skb(skb);
		return err;
	}
	return rvio_netdev_rx_skb(nd, skb, meta);
}

int rvio_netdev_rx_skb(struct rvio_netdev *nd, struct sk_buff *skb, const void *meta)
{
	struct virtio_net_hdr_v1 hdr;
	struct net_device *dev = nd->dev;
	int err;

	memcpy(&hdr, meta, sizeof(hdr));
	if (hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID && dev->features & NETIF_F_RXCSUM)
		skb->ip_summed = CHECKSUM_UNNECESSARY;
	if (virtio_net_hdr_to_skb(skb, (struct virtio_net_hdr *)&hdr, true)) {
		DEV_STATS_INC(dev, rx_frame_errors);
		DEV_STATS_INC(dev, rx_dropped);
		kfree_skb(skb);
		return -EINVAL;
	}
	skb->protocol = eth_type_trans(skb, dev);
	/* From process context: NAPI's softirq runs at local_bh_enable(). */
	local_bh_disable();
	spin_lock(&nd->rxq.lock);
	err = !nd->rx_up ? -ENETDOWN : skb_queue_len(&nd->rxq) >= RVIO_NETDEV_RXQ_MAX ? -ENOBUFS : 0;
	if (err) {
		spin_unlock(&nd->rxq.lock);
		local_bh_enable();
		DEV_STATS_INC(dev, rx_dropped);
		kfree_skb(skb);
		return err;
	}
	__skb_queue_tail(&nd->rxq, skb);
	spin_unlock(&nd->rxq.lock);
	napi_schedule(&nd->napi);
	local_bh_enable();
	return 0;
}

int rvio_netdev_rx(struct rvio_netdev *nd, const void *meta, const void *frame,
		   unsigned int len)
{
	struct sk_buff *skb = rvio_netdev_rx_alloc(nd, meta, len);

	if (IS_ERR(skb))
		return PTR_ERR(skb);
	/* Head and pages (rvio_netdev_rx_alloc). */
	skb_store_bits(skb, 0, frame, len);
	return rvio_netdev_rx_skb(nd, skb, meta);
}

void rvio_netdev_rx_drop(struct rvio_netdev *nd, struct sk_buff *skb)
{
	DEV_STATS_INC(nd->dev, rx_dropped);
	kfree_skb(skb);
}

void rvio_netdev_tx_complete(struct rvio_netdev *nd, struct sk_buff *skb, int how)
{
	struct net_device *dev = nd->dev;
	unsigned long flags;

	switch (how) {
	case RVIO_NETDEV_TX_SENT:
		DEV_STATS_INC(dev, tx_packets);
		DEV_STATS_ADD(dev, tx_bytes, skb->len);
		consume_skb(skb);
		return;
	case RVIO_NETDEV_TX_COPY:
		cb_of(skb)->copy = true;
		/* Under the queue's lock: ndo_stop sets STOPPED before it
		 * purges the queue (under the lock), so the skb is either
		 * queued before the purge or dropped here. */
		spin_lock_irqsave(&nd->txq.lock, flags);
		if (!test_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags)) {
			__skb_queue_head(&nd->txq, skb);
			skb = NULL;
		}
		spin_unlock_irqrestore(&nd->txq.lock, flags);
		if (!skb) {
			if (!test_bit(RVIO_NETDEV_TX_BLOCKED, &nd->flags))
				schedule_work(&nd->tx_work);
			return;
		}
		fallthrough;
	default:
		DEV_STATS_INC(dev, tx_dropped);
		kfree_skb(skb);
	}
}

void rvio_netdev_skb_orphan(struct sk_buff *skb)
{
	skb_orphan(skb);
	nf_reset_ct(skb);
}

int rvio_netdev_skb_to_sg(struct sk_buff *skb, struct scatterlist *sg, unsigned int max)
{
	int n;

	if (!max)
		return -EMSGSIZE;
	/* The head, then each page fragment; a frag list is linearized. */
	if (skb_has_frag_list(skb) ||
	    (skb_headlen(skb) ? 1 : 0) + skb_shinfo(skb)->nr_frags > max) {
		if (__skb_linearize(skb))
			return -ENOMEM;
	}
	sg_init_table(sg, max);
	n = skb_to_sgvec(skb, sg, 0, skb->len);
	if (n <= 0)
		return n ? n : -EMSGSIZE;
	return n;
}

void rvio_netdev_skb_free(struct sk_buff *skb)
{
	kfree_skb(skb);
}

void rvio_netdev_wake_tx(struct rvio_netdev *nd)
{
	atomic_long_inc(&nd->wakes);
	smp_mb__after_atomic();
	clear_bit(RVIO_NETDEV_TX_BLOCKED, &nd->flags);
	smp_mb__after_atomic();
	if (!test_bit(RVIO_NETDEV_TX_STOPPED, &nd->flags))
		schedule_work(&nd->tx_work);
}

void rvio_netdev_set_carrier(struct rvio_netdev *nd, bool on)
{
	/* Not before it is registered (it goes on at ndo_open), nor after;
	 * under RCU, as rvio_netdev_notify_schedule(): a linkwatch event
	 * holds a reference. */
	rcu_read_lock();
	if (READ_ONCE(nd->dev->reg_state) == NETREG_REGISTERED) {
		if (on)
			netif_carrier_on(nd->dev);
		else
			netif_carrier_off(nd->dev);
	}
	rcu_read_unlock();
}
