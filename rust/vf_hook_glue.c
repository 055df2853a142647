// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's VF-configuration hook: see rust/vf_hook_glue.h.
 *
 * Why C: 6.12's kernel crate has no net_device, net_device_ops, RTNL or
 * netdevice-notifier abstraction; copying a driver's ops table, the
 * setters' trampolines and the notifier stay here until it has them.
 *
 * The hook is a copy of the PF's netdev_ops with the VF setters replaced,
 * embedded in struct rvio_vf_hook, so a setter finds its hook from
 * dev->netdev_ops. Every VF setter is called by rtnetlink under RTNL, and
 * hooks are attached, detached and looked up under RTNL only, so RTNL is
 * the one lock here. Other ops keep being called through the copy
 * (lockless readers such as the transmit path see either table, whose
 * other entries are the same); a detached copy is freed only after
 * synchronize_net().
 *
 * While attached, driver code that recognizes its own devices by
 * comparing dev->netdev_ops with its table does not recognize the PF
 * (docs/sriov-hook.md, "Limits").
 */
#include <linux/list.h>
#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/ratelimit.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>

#include "vf_hook_glue.h"

struct rvio_vf_hook {
	struct net_device_ops ops;	/* what dev->netdev_ops points to */
	const struct net_device_ops *orig;
	struct net_device *dev;
	netdevice_tracker tracker;
	u64 id;
	const struct rvio_vf_hook_ops *hops;
	void *priv;
	struct list_head node;
	struct rcu_head rcu;
};

static LIST_HEAD(rvio_vf_hooks);
static bool rvio_vf_registered;
static u64 rvio_vf_next_id;
/* Callbacks running (under RTNL): no hook is removed meanwhile. */
static unsigned int rvio_vf_in_callback;

static struct rvio_vf_hook *rvio_vf_hook_find(u64 id)
{
	struct rvio_vf_hook *h;

	ASSERT_RTNL();
	list_for_each_entry(h, &rvio_vf_hooks, node)
		if (h->id == id)
			return h;
	return NULL;
}

static int rvio_vf_hook_call(struct net_device *dev, const struct rvio_vf_req *req)
{
	struct rvio_vf_hook *h = container_of(dev->netdev_ops, struct rvio_vf_hook, ops);

	int ret;

	ASSERT_RTNL();
	rvio_vf_in_callback++;
	ret = h->hops->set(h->priv, h->id, req);
	rvio_vf_in_callback--;
	return ret;
}

static int rvio_hook_set_vf_mac(struct net_device *dev, int vf, u8 *mac)
{
	struct rvio_vf_req req = { .kind = RVIO_VF_MAC, .vf = vf };

	memcpy(req.mac, mac, ETH_ALEN);
	return rvio_vf_hook_call(dev, &req);
}

static int rvio_hook_set_vf_vlan(struct net_device *dev, int vf, u16 vlan, u8 qos, __be16 proto)
{
	struct rvio_vf_req req = {
		.kind = RVIO_VF_VLAN, .vf = vf, .vlan = vlan, .qos = qos, .proto = ntohs(proto),
	};

	return rvio_vf_hook_call(dev, &req);
}

static int rvio_hook_set_vf_rate(struct net_device *dev, int vf, int min, int max)
{
	struct rvio_vf_req req = {
		.kind = RVIO_VF_RATE, .vf = vf, .min_rate = min, .max_rate = max,
	};

	return rvio_vf_hook_call(dev, &req);
}

static int rvio_hook_set_vf_spoofchk(struct net_device *dev, int vf, bool on)
{
	struct rvio_vf_req req = { .kind = RVIO_VF_SPOOFCHK, .vf = vf, .setting = on };

	return rvio_vf_hook_call(dev, &req);
}

static int rvio_hook_set_vf_trust(struct net_device *dev, int vf, bool on)
{
	struct rvio_vf_req req = { .kind = RVIO_VF_TRUST, .vf = vf, .setting = on };

	return rvio_vf_hook_call(dev, &req);
}

static int rvio_hook_set_vf_link_state(struct net_device *dev, int vf, int state)
{
	struct rvio_vf_req req = { .kind = RVIO_VF_LINK_STATE, .vf = vf, .setting = state };

	return rvio_vf_hook_call(dev, &req);
}

/* The driver's own op for @req. */
static int rvio_vf_do(const struct net_device_ops *ops, struct net_device *dev,
		      const struct rvio_vf_req *req)
{
	u8 mac[ETH_ALEN];

	switch (req->kind) {
	case RVIO_VF_MAC:
		if (!ops->ndo_set_vf_mac)
			return -EOPNOTSUPP;
		/* The driver gets a buffer of its own, as from rtnetlink. */
		memcpy(mac, req->mac, ETH_ALEN);
		return ops->ndo_set_vf_mac(dev, req->vf, mac);
	case RVIO_VF_VLAN:
		if (!ops->ndo_set_vf_vlan)
			return -EOPNOTSUPP;
		return ops->ndo_set_vf_vlan(dev, req->vf, req->vlan, req->qos, htons(req->proto));
	case RVIO_VF_RATE:
		if (!ops->ndo_set_vf_rate)
			return -EOPNOTSUPP;
		if (req->min_rate > INT_MAX || req->max_rate > INT_MAX)
			return -EINVAL;
		return ops->ndo_set_vf_rate(dev, req->vf, req->min_rate, req->max_rate);
	case RVIO_VF_SPOOFCHK:
		if (!ops->ndo_set_vf_spoofchk)
			return -EOPNOTSUPP;
		return ops->ndo_set_vf_spoofchk(dev, req->vf, req->setting);
	case RVIO_VF_TRUST:
		if (!ops->ndo_set_vf_trust)
			return -EOPNOTSUPP;
		return ops->ndo_set_vf_trust(dev, req->vf, req->setting);
	case RVIO_VF_LINK_STATE:
		if (!ops->ndo_set_vf_link_state)
			return -EOPNOTSUPP;
		return ops->ndo_set_vf_link_state(dev, req->vf, req->setting);
	}
	return -EINVAL;
}

s64 rvio_vf_hook_attach(const char *ifname, const struct rvio_vf_hook_ops *hops, void *priv)
{
	struct rvio_vf_hook *h;
	struct net_device *dev;

	ASSERT_RTNL();
	if (!rvio_vf_registered)
		return -ENODEV;
	dev = __dev_get_by_name(&init_net, ifname);
	if (!dev)
		return -ENODEV;
	list_for_each_entry(h, &rvio_vf_hooks, node)
		if (h->dev == dev)
			return -EEXIST;
	if (!dev->netdev_ops->ndo_set_vf_mac || !dev->netdev_ops->ndo_get_vf_config)
		return -EOPNOTSUPP;
	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h)
		return -ENOMEM;
	h->orig = dev->netdev_ops;
	h->ops = *h->orig;
	/* Only the setters the driver has: the others stay NULL. */
	h->ops.ndo_set_vf_mac = rvio_hook_set_vf_mac;
	if (h->orig->ndo_set_vf_vlan)
		h->ops.ndo_set_vf_vlan = rvio_hook_set_vf_vlan;
	if (h->orig->ndo_set_vf_rate)
		h->ops.ndo_set_vf_rate = rvio_hook_set_vf_rate;
	if (h->orig->ndo_set_vf_spoofchk)
		h->ops.ndo_set_vf_spoofchk = rvio_hook_set_vf_spoofchk;
	if (h->orig->ndo_set_vf_trust)
		h->ops.ndo_set_vf_trust = rvio_hook_set_vf_trust;
	if (h->orig->ndo_set_vf_link_state)
		h->ops.ndo_set_vf_link_state = rvio_hook_set_vf_link_state;
	h->dev = dev;
	h->id = ++rvio_vf_next_id;
	h->hops = hops;
	h->priv = priv;
	netdev_hold(dev, &h->tracker, GFP_KERNEL);
	list_add_tail(&h->node, &rvio_vf_hooks);
	WRITE_ONCE(dev->netdev_ops, &h->ops);
	return h->id;
}

/* Restores the driver's ops and frees @h; tells the user with @gone. */
static void rvio_vf_hook_remove(struct rvio_vf_hook *h, bool gone)
{
	ASSERT_RTNL();
	list_del(&h->node);
	if (h->dev->netdev_ops == &h->ops)
		WRITE_ONCE(h->dev->netdev_ops, h->orig);
	else
		netdev_warn(h->dev, "rvio: netdev_ops changed while hooked; left as they are\n");
	netdev_put(h->dev, &h->tracker);
	if (gone) {
		rvio_vf_in_callback++;
		h->hops->gone(h->priv, h->id);
		rvio_vf_in_callback--;
	}
	h->hops->release(h->priv);
	/* Lockless readers of the old pointer (under RCU or BH) are done
	 * with the copy after a grace period. */
	kfree_rcu(h, rcu);
}

bool rvio_vf_hook_detach(u64 id)
{
	struct rvio_vf_hook *h = rvio_vf_hook_find(id);

	/* Not from a callback: the caller's state or the notifier's walk
	 * could go with the hook. */
	if (!h || rvio_vf_in_callback)
		return false;
	rvio_vf_hook_remove(h, false);
	return true;
}

int rvio_vf_hook_apply(u64 id, const struct rvio_vf_req *req)
{
	struct rvio_vf_hook *h = rvio_vf_hook_find(id);

	if (!h)
		return -ENODEV;
	return rvio_vf_do(h->orig, h->dev, req);
}

int rvio_vf_hook_vf_mac(u64 id, int vf, u8 *mac)
{
	struct rvio_vf_hook *h = rvio_vf_hook_find(id);
	struct ifla_vf_info ivi = {};
	int ret;

	if (!h)
		return -ENODEV;
	ret = h->orig->ndo_get_vf_config(h->dev, vf, &ivi);
	if (!ret)
		memcpy(mac, ivi.mac, ETH_ALEN);
	return ret;
}

int rvio_vf_hook_num_vfs(u64 id)
{
	struct rvio_vf_hook *h = rvio_vf_hook_find(id);

	if (!h)
		return -ENODEV;
	return h->dev->dev.parent ? dev_num_vf(h->dev->dev.parent) : 0;
}

struct pci_dev *rvio_vf_hook_pci_get(u64 id)
{
	struct rvio_vf_hook *h = rvio_vf_hook_find(id);
	struct device *parent;

	if (!h)
		return ERR_PTR(-ENODEV);
	parent = h->dev->dev.parent;
	if (!parent || !dev_is_pci(parent))
		return ERR_PTR(-EOPNOTSUPP);
	return pci_dev_get(to_pci_dev(parent));
}

void rvio_pci_put(struct pci_dev *pdev)
{
	pci_dev_put(pdev);
}

int rvio_pci_sriov_set_numvfs(struct pci_dev *pdev, u16 num_vfs)
{
	int ret = 0;

	/* As drivers/pci/iov.c:sriov_numvfs_store(), which is not exported. */
	if (!pdev->is_physfn)
		return -EOPNOTSUPP;
	if (num_vfs > pci_sriov_get_totalvfs(pdev))
		return -ERANGE;
	device_lock(&pdev->dev);
	if (num_vfs == pci_num_vf(pdev))
		goto out;
	if (!pdev->driver || !pdev->driver->sriov_configure) {
		ret = -ENOENT;
		goto out;
	}
	if (num_vfs && pci_num_vf(pdev)) {
		ret = -EBUSY;
		goto out;
	}
	pci_lock_rescan_remove();
	ret = pdev->driver->sriov_configure(pdev, num_vfs);
	pci_unlock_rescan_remove();
	/* As sriov_numvfs_store(): fewer VFs than asked is a warning. */
	if (ret >= 0 && ret != num_vfs)
		pci_warn(pdev, "%d VFs requested; only %d enabled\n", num_vfs, ret);
out:
	device_unlock(&pdev->dev);
	return ret < 0 ? ret : 0;
}

static int rvio_vf_netdev_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct rvio_vf_hook *h, *tmp;

	/* A renamed PF is detached too: policies and the files name PFs. */
	if (event != NETDEV_UNREGISTER && event != NETDEV_CHANGENAME)
		return NOTIFY_DONE;
	list_for_each_entry_safe(h, tmp, &rvio_vf_hooks, node)
		if (h->dev == dev)
			rvio_vf_hook_remove(h, true);
	return NOTIFY_DONE;
}

static struct notifier_block rvio_vf_nb = {
	.notifier_call = rvio_vf_netdev_event,
};

int rvio_vf_hooks_init(void)
{
	int ret;

	if (rvio_vf_registered)
		return -EBUSY;
	ret = register_netdevice_notifier(&rvio_vf_nb);
	if (!ret) {
		rtnl_lock();
		rvio_vf_registered = true;
		rtnl_unlock();
	}
	return ret;
}

void rvio_vf_hooks_exit(void)
{
	struct rvio_vf_hook *h, *tmp;

	rtnl_lock();
	rvio_vf_registered = false;
	list_for_each_entry_safe(h, tmp, &rvio_vf_hooks, node)
		rvio_vf_hook_remove(h, false);
	rtnl_unlock();
	unregister_netdevice_notifier(&rvio_vf_nb);
}

bool rvio_vf_hook_ratelimit(void)
{
	static DEFINE_RATELIMIT_STATE(rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST);

	return __ratelimit(&rs);
}
