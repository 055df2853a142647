// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's uplink abstraction: see rust/uplink_glue.h.
 *
 * Why C: 6.12's kernel crate has no net_device, sk_buff or rx_handler
 * abstraction. netdev_rx_handler_register(), the sk_buff helpers (VLAN
 * tags, virtio_net_hdr conversions, dev_queue_xmit) and RTNL stay here
 * until it has.
 */
#include <linux/err.h>
#include <linux/etherdevice.h>
#include <linux/if_vlan.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/virtio_net.h>
#include <linux/workqueue.h>

#include "uplink_glue.h"

/* Received frames waiting for the work before more are dropped. */
#define RVIO_UPLINK_RXQ_MAX 1024
/* Frames the work hands over per run before it yields. */
#define RVIO_UPLINK_BUDGET 64

struct rvio_uplink {
	/* The device, until it is let go (detach, or it is unregistered or
	 * leaves the namespace: the notifier). Written under RTNL; xmit
	 * reads it under RCU. */
	struct net_device __rcu *dev;
	netdevice_tracker tracker;
	struct notifier_block nb;
	const struct rvio_uplink_ops *ops;
	void *priv;
	unsigned int max_frame;
	struct sk_buff_head rxq;
	struct work_struct work;
	atomic64_t rx_frames, rx_dropped, tx_frames, tx_dropped;
	char name[IFNAMSIZ];
};

static rx_handler_result_t rvio_uplink_rx_handler(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct rvio_uplink *u = rcu_dereference(skb->dev->rx_handler_data);

	if (skb->pkt_type == PACKET_LOOPBACK)
		return RX_HANDLER_PASS;
	/* Ours to change (the work pushes the Ethernet header back). */
	skb = skb_share_check(skb, GFP_ATOMIC);
	if (!skb)
		return RX_HANDLER_CONSUMED;
	*pskb = skb;
	if (skb_queue_len_lockless(&u->rxq) >= RVIO_UPLINK_RXQ_MAX) {
		atomic64_inc(&u->rx_dropped);
		kfree_skb(skb);
		return RX_HANDLER_CONSUMED;
	}
	/* The device may be let go before the work runs: nothing after this
	 * needs it. */
	skb->dev = NULL;
	skb_queue_tail(&u->rxq, skb);
	schedule_work(&u->work);
	return RX_HANDLER_CONSUMED;
}

/* Lets go of the device (under RTNL); idempotent. */
static void rvio_uplink_release(struct rvio_uplink *u)
{
	struct net_device *dev = rtnl_dereference(u->dev);

	if (!dev)
		return;
	RCU_INIT_POINTER(u->dev, NULL);
	dev_set_promiscuity(dev, -1);
	/* Waits for rx_handlers and RCU readers (xmit) in flight. */
	netdev_rx_handler_unregister(dev);
	netdev_put(dev, &u->tracker);
	skb_queue_purge(&u->rxq);
}

/* The device is being unregistered (deleted, or moved to another
 * namespace): let go of it, as a bridge lets go of a port, so that
 * unregistering does not wait for our reference. */
static int rvio_uplink_notify(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct rvio_uplink *u = container_of(nb, struct rvio_uplink, nb);
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);

	if (event == NETDEV_UNREGISTER && dev == rtnl_dereference(u->dev)) {
		pr_info("rvio uplink %s: device unregistered, let go\n", u->name);
		rvio_uplink_release(u);
	}
	return NOTIFY_DONE;
}

static void rvio_uplink_work(struct work_struct *w)
{
	struct rvio_uplink *u = container_of(w, struct rvio_uplink, work);
	struct sk_buff *skb;
	int n = 0;

	while (n++ < RVIO_UPLINK_BUDGET && (skb = skb_dequeue(&u->rxq))) {
		struct virtio_net_hdr_v1 hdr;
		u16 vlan = 0;

		/* The stack pulled the Ethernet header: put it back. */
		skb_push(skb, skb->data - skb_mac_header(skb));
		if (skb_vlan_tag_present(skb)) {
			vlan = skb_vlan_tag_get_id(skb);
			/* An 802.1ad S-tag is no VLAN of ours. */
			if (skb->vlan_proto != htons(ETH_P_8021Q))
				vlan = VLAN_N_VID;
			__vlan_hwaccel_clear_tag(skb);
		}
		/* Too long (a GRO aggregate) or a tunnel's: not a frame a domain
		 * could take whole. */
		if (vlan >= VLAN_N_VID || skb->len < ETH_HLEN || skb->len > u->max_frame ||
		    (skb_is_gso(skb) && skb->encapsulation) ||
		    virtio_net_hdr_from_skb(skb, (struct virtio_net_hdr *)&hdr, true, true, 0) ||
		    skb_linearize(skb)) {
			atomic64_inc(&u->rx_dropped);
			kfree_skb(skb);
			continue;
		}
		hdr.num_buffers = 0;
		u->ops->rx(u->priv, &hdr, skb->data, skb->len, vlan);
		atomic64_inc(&u->rx_frames);
		consume_skb(skb);
	}
	if (!skb_queue_empty(&u->rxq))
		schedule_work(&u->work);
}

struct rvio_uplink *rvio_uplink_attach(const char *ifname, const struct rvio_uplink_ops *ops,
				       void *priv, unsigned int max_frame)
{
	struct rvio_uplink *u;
	struct net_device *dev;
	int err;

	if (!ops || !ops->rx)
		return ERR_PTR(-EINVAL);
	u = kzalloc(sizeof(*u), GFP_KERNEL);
	if (!u)
		return ERR_PTR(-ENOMEM);
	u->ops = ops;
	u->priv = priv;
	u->max_frame = max_frame;
	skb_queue_head_init(&u->rxq);
	INIT_WORK(&u->work, rvio_uplink_work);
	u->nb.notifier_call = rvio_uplink_notify;
	/* Takes RTNL itself, and replays events we ignore (no device yet). */
	err = register_netdevice_notifier(&u->nb);
	if (err) {
		kfree(u);
		return ERR_PTR(err);
	}
	rtnl_lock();
	dev = netdev_get_by_name(&init_net, ifname, &u->tracker, GFP_KERNEL);
	if (!dev) {
		err = -ENODEV;
		goto unlock;
	}
	if (dev->flags & IFF_LOOPBACK || dev->type != ARPHRD_ETHER || dev->addr_len != ETH_ALEN) {
		err = -EINVAL;
		goto put;
	}
	strscpy(u->name, netdev_name(dev), sizeof(u->name));
	err = netdev_rx_handler_register(dev, rvio_uplink_rx_handler, u);
	if (err)
		goto put;
	/* Frames for the domains' MACs arrive too. */
	dev_set_promiscuity(dev, 1);
	rcu_assign_pointer(u->dev, dev);
	rtnl_unlock();
	return u;
put:
	netdev_put(dev, &u->tracker);
unlock:
	rtnl_unlock();
	unregister_netdevice_notifier(&u->nb);
	kfree(u);
	return ERR_PTR(err);
}

void rvio_uplink_detach(struct rvio_uplink *u)
{
	rtnl_lock();
	rvio_uplink_release(u);
	rtnl_unlock();
	unregister_netdevice_notifier(&u->nb);
	/* No rx_handler runs after the grace period release waited for. */
	cancel_work_sync(&u->work);
	skb_queue_purge(&u->rxq);
	kfree(u);
}

int rvio_uplink_xmit(struct rvio_uplink *u, const void *meta, const void *frame, unsigned int len,
		     u16 vlan)
{
	struct virtio_net_hdr_v1 hdr;
	struct net_device *dev;
	struct sk_buff *skb;
	int err;

	if (len < ETH_HLEN || len > u->max_frame) {
		err = -EINVAL;
		goto drop;
	}
	if (!rcu_access_pointer(u->dev)) {
		err = -ENODEV;
		goto drop;
	}
	skb = alloc_skb(len + NET_IP_ALIGN, GFP_KERNEL);
	if (!skb) {
		err = -ENOMEM;
		goto drop;
	}
	skb_reserve(skb, NET_IP_ALIGN);
	skb_put_data(skb, frame, len);
	skb_reset_mac_header(skb);
	/* As af_packet does: GSO and checksum offloads need the network
	 * header. */
	skb_set_network_header(skb, ETH_HLEN);
	skb->protocol = eth_hdr(skb)->h_proto;
	memcpy(&hdr, meta, sizeof(hdr));
	rcu_read_lock();
	dev = rcu_dereference(u->dev);
	if (!dev) {
		err = -ENODEV;
		goto unlock_free;
	}
	/* The flow dissector (GSO without a checksum request) needs it. */
	skb->dev = dev;
	if (virtio_net_hdr_to_skb(skb, (struct virtio_net_hdr *)&hdr, true)) {
		err = -EINVAL;
		goto unlock_free;
	}
	if (vlan)
		__vlan_hwaccel_put_tag(skb, htons(ETH_P_8021Q), vlan);
	/* Up, and not over its MTU (per segment for GSO), as a bridge checks. */
	if (!is_skb_forwardable(dev, skb)) {
		err = -EMSGSIZE;
		goto unlock_free;
	}
	/* (net_xmit_eval() evaluates its argument twice: not a call.) */
	err = dev_queue_xmit(skb);
	err = net_xmit_eval(err);
	rcu_read_unlock();
	if (err) {
		err = -ENOBUFS;
		goto drop;
	}
	atomic64_inc(&u->tx_frames);
	return 0;
unlock_free:
	rcu_read_unlock();
	kfree_skb(skb);
drop:
	atomic64_inc(&u->tx_dropped);
	return err;
}

const char *rvio_uplink_name(struct rvio_uplink *u)
{
	return u->name;
}

bool rvio_uplink_attached(struct rvio_uplink *u)
{
	return rcu_access_pointer(u->dev);
}

void rvio_uplink_stats(struct rvio_uplink *u, struct rvio_uplink_stats *st)
{
	st->rx_frames = atomic64_read(&u->rx_frames);
	st->rx_dropped = atomic64_read(&u->rx_dropped);
	st->tx_frames = atomic64_read(&u->tx_frames);
	st->tx_dropped = atomic64_read(&u->tx_dropped);
}
