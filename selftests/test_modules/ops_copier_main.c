// SPDX-License-Identifier: GPL-2.0
/*
 * Test module: a PF driver that copies its device's net_device_ops into a
 * table of its own and points the device at the copy, as some drivers do
 * to change an op at run time. Loaded while sriov_hook has the PF hooked,
 * it copies the hooked table, so `ip link set PF vf N ...` reaches the
 * hook's setters through a table that is not the hook's
 * (selftests/sriov/netdevsim_hook.sh; issue 13, finding 5). On unload it
 * puts back the table it found: the hook's, so unload it while the PF is
 * still hooked (before a detach, a rename or rmmod sriov_hook), or it
 * puts back a freed table.
 *
 * Why C: it writes struct net_device's netdev_ops and copies a struct
 * net_device_ops, which 6.12's kernel crate does not bind.
 */
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>

static char *ifname = "";
module_param(ifname, charp, 0444);
MODULE_PARM_DESC(ifname, "the PF whose net_device_ops to copy");

static struct net_device *dev;
static netdevice_tracker tracker;
static const struct net_device_ops *found;
static struct net_device_ops *copy;

static int __init ops_copier_init(void)
{
	int ret = 0;

	copy = kzalloc(sizeof(*copy), GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	rtnl_lock();
	dev = __dev_get_by_name(&init_net, ifname);
	if (!dev) {
		ret = -ENODEV;
		goto out;
	}
	netdev_hold(dev, &tracker, GFP_KERNEL);
	found = dev->netdev_ops;
	*copy = *found;
	/* The copy before the pointer to it, as the hook publishes its own. */
	smp_store_release(&dev->netdev_ops, copy);
	pr_info("%s: netdev_ops copied\n", ifname);
out:
	rtnl_unlock();
	if (ret)
		kfree(copy);
	return ret;
}

static void __exit ops_copier_exit(void)
{
	rtnl_lock();
	if (dev->netdev_ops == copy)
		WRITE_ONCE(dev->netdev_ops, found);
	netdev_put(dev, &tracker);
	rtnl_unlock();
	/* Lockless readers of the device's ops may still hold the copy. */
	synchronize_rcu_tasks();
	kfree(copy);
}

module_init(ops_copier_init);
module_exit(ops_copier_exit);
MODULE_DESCRIPTION("rvio selftest: a PF driver that copies its net_device_ops");
MODULE_LICENSE("GPL");
