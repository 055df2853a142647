// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's VF-configuration hook: see rust/vf_hook_glue.h.
 *
 * Why C: 6.12's kernel crate has no net_device, net_device_ops, RTNL,
 * netdevice-notifier or PCI SR-IOV abstraction, and the module-local
 * bindings do not bind those structures. So what needs their layout stays
 * here until the kernel crate has them: the copy of a driver's ops table
 * with the setters' trampolines, calling the driver's own ops, the
 * notifier block, and enabling VFs as sriov_numvfs does. Which hooks
 * exist, their ids and whether a callback runs are the Rust half's
 * (rust/vf_hook.rs); this file has no state of its own but the rate
 * limit of rvio_vf_hook_ratelimit().
 *
 * The hook is a copy of the PF's netdev_ops with the VF setters replaced,
 * embedded in struct rvio_vf_hook and published with a release store, so
 * a lockless reader that sees the new pointer sees the whole table. A
 * setter finds its hook by device (the list of attached hooks), not from
 * dev->netdev_ops: a PF driver that copied the hooked table into a table
 * of its own and points the device at it still reaches the right hook.
 * Every VF setter is called by rtnetlink under RTNL, and hooks are
 * attached and detached under RTNL only, so RTNL is the one lock here.
 *
 * Other ops keep being called through the copy: lockless readers (the
 * transmit path, and sysfs readers such as iflink and phys_port_id, which
 * load dev->netdev_ops with no lock and may be preempted before they call
 * through it) see either table, whose other entries are the same. So a
 * detached copy is freed only after an RCU-tasks grace period, which
 * waits for every task to switch voluntarily (a preempted reader holds
 * it off; kfree_rcu() did not), and module exit waits for those frees
 * (rcu_barrier_tasks() in rvio_vf_notifier_unregister()). Not covered: a
 * reader that keeps the table's address across a sleep of its own without
 * RTNL, which no 6.12 core path does with a PF's ops.
 *
 * While attached, driver code that recognizes its own devices by
 * comparing dev->netdev_ops with its table does not recognize the PF
 * (docs/sriov-hook.md, "Limits").
 */
#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/ratelimit.h>
#include <linux/rcupdate.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>

#include "vf_hook_glue.h"

struct rvio_vf_hook {
	struct net_device_ops ops;	/* what dev->netdev_ops points to */
	const struct net_device_ops *orig;
	struct net_device *dev;
	netdevice_tracker tracker;
	const struct rvio_vf_hook_ops *hops;
	void *priv;
	struct list_head node;		/* in rvio_vf_hooks while attached */
	struct rcu_head rcu;
};

/* The attached hooks, under RTNL. */
static LIST_HEAD(rvio_vf_hooks);

struct rvio_vf_notifier {
	struct notifier_block nb;
	const struct rvio_vf_hook_ops *ops;
	void *priv;
};

static int rvio_vf_hook_call(struct net_device *dev, const struct rvio_vf_req *req)
{
	struct rvio_vf_hook *h;

	ASSERT_RTNL();
	list_for_each_entry(h, &rvio_vf_hooks, node) {
		if (h->dev == dev)
			return h->hops->set(h->priv, h, req);
	}
	/* A copy of a detached hook's table, kept by the PF's driver: there
	 * is no policy to check this against, nor a driver op to call. */
	if (rvio_vf_hook_ratelimit())
		netdev_warn(dev, "rvio: VF setter called through a copy of a detached hook's ops: refused\n");
	return -EOPNOTSUPP;
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

/* Whether @ops's VF setters include one of the hook's own: a copy of a
 * hooked table, which a driver kept when the hook was detached. */
static bool rvio_vf_ops_hooked(const struct net_device_ops *ops)
{
	return ops->ndo_set_vf_mac == rvio_hook_set_vf_mac ||
	       ops->ndo_set_vf_vlan == rvio_hook_set_vf_vlan ||
	       ops->ndo_set_vf_rate == rvio_hook_set_vf_rate ||
	       ops->ndo_set_vf_spoofchk == rvio_hook_set_vf_spoofchk ||
	       ops->ndo_set_vf_trust == rvio_hook_set_vf_trust ||
	       ops->ndo_set_vf_link_state == rvio_hook_set_vf_link_state;
}

/* The driver's own op for @req. */
static int rvio_vf_do(const struct net_device_ops *ops, struct net_device *dev,
		      const struct rvio_vf_req *req)
{
	u8 mac[ETH_ALEN];

	/* Never the hook again (rvio_vf_hook_attach refuses such tables). */
	if (WARN_ON_ONCE(rvio_vf_ops_hooked(ops)))
		return -ELOOP;

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

void *rvio_vf_netdev_by_name(const char *ifname)
{
	struct net_device *dev;

	ASSERT_RTNL();
	dev = __dev_get_by_name(&init_net, ifname);
	return dev ? dev : ERR_PTR(-ENODEV);
}

struct rvio_vf_hook *rvio_vf_hook_attach(void *netdev, const struct rvio_vf_hook_ops *hops,
					 void *priv)
{
	struct net_device *dev = netdev;
	struct rvio_vf_hook *h;

	ASSERT_RTNL();
	if (!dev->netdev_ops->ndo_set_vf_mac || !dev->netdev_ops->ndo_get_vf_config)
		return ERR_PTR(-EOPNOTSUPP);
	/* The driver kept a copy of a hooked table when its hook went: the
	 * copy's setters are ours, and a hook over it would call itself. */
	if (rvio_vf_ops_hooked(dev->netdev_ops))
		return ERR_PTR(-EBUSY);
	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h)
		return ERR_PTR(-ENOMEM);
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
	h->hops = hops;
	h->priv = priv;
	netdev_hold(dev, &h->tracker, GFP_KERNEL);
	list_add(&h->node, &rvio_vf_hooks);
	/* The table's entries before the pointer to it. */
	smp_store_release(&dev->netdev_ops, &h->ops);
	return h;
}

static void rvio_vf_hook_free(struct rcu_head *rcu)
{
	/* After RCU tasks, one RCU grace period more, for readers in
	 * interrupts (which RCU tasks covers only by how it is built); the
	 * kfree_rcu() runs none of this module's code. */
	kfree_rcu(container_of(rcu, struct rvio_vf_hook, rcu), rcu);
}

void rvio_vf_hook_detach(struct rvio_vf_hook *h)
{
	ASSERT_RTNL();
	list_del(&h->node);
	if (h->dev->netdev_ops == &h->ops)
		WRITE_ONCE(h->dev->netdev_ops, h->orig);
	else
		netdev_warn(h->dev, "rvio: netdev_ops changed while hooked; left as they are\n");
	netdev_put(h->dev, &h->tracker);
	/* Lockless readers of the old pointer, preempted ones included, are
	 * done with the copy after an RCU-tasks grace period (see the top). */
	call_rcu_tasks(&h->rcu, rvio_vf_hook_free);
}

int rvio_vf_hook_apply(struct rvio_vf_hook *h, const struct rvio_vf_req *req)
{
	ASSERT_RTNL();
	return rvio_vf_do(h->orig, h->dev, req);
}

int rvio_vf_hook_vf_mac(struct rvio_vf_hook *h, int vf, u8 *mac)
{
	struct ifla_vf_info ivi = {};
	int ret;

	ASSERT_RTNL();
	ret = h->orig->ndo_get_vf_config(h->dev, vf, &ivi);
	if (!ret)
		memcpy(mac, ivi.mac, ETH_ALEN);
	return ret;
}

unsigned int rvio_vf_hook_num_vfs(struct rvio_vf_hook *h)
{
	ASSERT_RTNL();
	return h->dev->dev.parent ? dev_num_vf(h->dev->dev.parent) : 0;
}

struct pci_dev *rvio_vf_hook_pci_get(struct rvio_vf_hook *h)
{
	struct device *parent = h->dev->dev.parent;

	ASSERT_RTNL();
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
	struct rvio_vf_notifier *n = container_of(nb, struct rvio_vf_notifier, nb);

	/* A renamed PF is detached too: policies and the files name PFs. */
	if (event == NETDEV_UNREGISTER || event == NETDEV_CHANGENAME)
		n->ops->netdev_gone(n->priv, netdev_notifier_info_to_dev(ptr));
	return NOTIFY_DONE;
}

struct rvio_vf_notifier *rvio_vf_notifier_register(const struct rvio_vf_hook_ops *ops,
						   void *priv)
{
	struct rvio_vf_notifier *n = kzalloc(sizeof(*n), GFP_KERNEL);
	int ret;

	if (!n)
		return ERR_PTR(-ENOMEM);
	n->nb.notifier_call = rvio_vf_netdev_event;
	n->ops = ops;
	n->priv = priv;
	ret = register_netdevice_notifier(&n->nb);
	if (ret) {
		kfree(n);
		return ERR_PTR(ret);
	}
	return n;
}

void rvio_vf_notifier_unregister(struct rvio_vf_notifier *n)
{
	unregister_netdevice_notifier(&n->nb);
	kfree(n);
	/* Detached hooks' frees (rvio_vf_hook_free) are this module's code:
	 * done before it goes. Without TASKS_RCU, call_rcu_tasks() is
	 * call_rcu(). */
	if (IS_ENABLED(CONFIG_TASKS_RCU))
		rcu_barrier_tasks();
	else
		rcu_barrier();
}

bool rvio_vf_hook_ratelimit(void)
{
	static DEFINE_RATELIMIT_STATE(rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST);

	return __ratelimit(&rs);
}
