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
	struct net_device *dev;
	netdevice_tracker tracker;
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
	if (skb_queue_len(&u->rxq) >= RVIO_UPLINK_RXQ_MAX) {
		atomic64_inc(&u->rx_dropped);
		kfree_skb(skb);
		return RX_HANDLER_CONSUMED;
	}
	skb_queue_tail(&u->rxq, skb);
	schedule_work(&u->work);
	return RX_HANDLER_CONSUMED;
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
			__vlan_hwaccel_clear_tag(skb);
		}
		if (skb->len < ETH_HLEN || skb->len > u->max_frame ||
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
	u->dev = dev;
	strscpy(u->name, netdev_name(dev), sizeof(u->name));
	err = netdev_rx_handler_register(dev, rvio_uplink_rx_handler, u);
	if (err)
		goto put;
	/* Frames for the domains' MACs arrive too. */
	dev_set_promiscuity(dev, 1);
	rtnl_unlock();
	return u;
put:
	netdev_put(dev, &u->tracker);
unlock:
	rtnl_unlock();
	kfree(u);
	return ERR_PTR(err);
}

void rvio_uplink_detach(struct rvio_uplink *u)
{
	rtnl_lock();
	dev_set_promiscuity(u->dev, -1);
	netdev_rx_handler_unregister(u->dev);
	rtnl_unlock();
	/* No rx_handler runs after the grace period unregister waited for. */
	cancel_work_sync(&u->work);
	skb_queue_purge(&u->rxq);
	netdev_put(u->dev, &u->tracker);
	kfree(u);
}

int rvio_uplink_xmit(struct rvio_uplink *u, const void *meta, const void *frame, unsigned int len,
		     u16 vlan)
{
	struct net_device *dev = u->dev;
	struct virtio_net_hdr_v1 hdr;
	struct sk_buff *skb;
	int err;

	if (len < ETH_HLEN || len > u->max_frame) {
		err = -EINVAL;
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
	skb->protocol = eth_hdr(skb)->h_proto;
	skb->dev = dev;
	memcpy(&hdr, meta, sizeof(hdr));
	if (virtio_net_hdr_to_skb(skb, (struct virtio_net_hdr *)&hdr, true)) {
		kfree_skb(skb);
		err = -EINVAL;
		goto drop;
	}
	if (vlan)
		__vlan_hwaccel_put_tag(skb, htons(ETH_P_8021Q), vlan);
	err = dev_queue_xmit(skb);
	if (err != NET_XMIT_SUCCESS) {
		err = -ENOBUFS;
		goto drop;
	}
	atomic64_inc(&u->tx_frames);
	return 0;
drop:
	atomic64_inc(&u->tx_dropped);
	return err;
}

const char *rvio_uplink_name(struct rvio_uplink *u)
{
	return u->name;
}

void rvio_uplink_stats(struct rvio_uplink *u, struct rvio_uplink_stats *st)
{
	st->rx_frames = atomic64_read(&u->rx_frames);
	st->rx_dropped = atomic64_read(&u->rx_dropped);
	st->tx_frames = atomic64_read(&u->tx_frames);
	st->tx_dropped = atomic64_read(&u->tx_dropped);
}
