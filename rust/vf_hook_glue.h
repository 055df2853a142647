/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's VF-configuration hook (rust/vf_hook.rs is the Rust
 * half, which owns the hooks: their list, ids and callback accounting).
 * Attaching to an SR-IOV PF net_device replaces its netdev_ops with a
 * copy whose ndo_set_vf_{mac,vlan,rate,spoofchk,trust,link_state} call
 * the Rust half first (the other ops are the driver's own; an op the
 * driver lacks stays NULL, so rtnetlink answers -EOPNOTSUPP as before).
 * Detaching restores the driver's table. A netdev notifier tells the Rust
 * half about a net_device that is unregistered or renamed. Everything here
 * runs under RTNL except rvio_vf_notifier_register() and
 * rvio_vf_notifier_unregister(), rvio_pci_sriov_set_numvfs() (which must
 * not), rvio_pci_put() and rvio_vf_hook_ratelimit().
 *
 * A net_device reaches Rust only as a `void *` that it compares (the
 * module-local bindings do not bind struct net_device).
 */
#ifndef RVIO_VF_HOOK_GLUE_H
#define RVIO_VF_HOOK_GLUE_H

#include <linux/types.h>

struct pci_dev;
/* A hook: the copy of a PF's netdev_ops and what it needs. */
struct rvio_vf_hook;
/* A netdev notifier that calls the Rust half. */
struct rvio_vf_notifier;

enum rvio_vf_req_kind {
	RVIO_VF_MAC,
	RVIO_VF_VLAN,
	RVIO_VF_RATE,
	RVIO_VF_SPOOFCHK,
	RVIO_VF_TRUST,
	RVIO_VF_LINK_STATE,
};

/* One ndo_set_vf_* call: what `ip link set PF vf N ...` asks. */
struct rvio_vf_req {
	u32 kind;		/* enum rvio_vf_req_kind */
	s32 vf;
	u8 mac[6];		/* MAC */
	u16 vlan;		/* VLAN: id (0: none), qos, ethertype (host order) */
	u8 qos;
	u16 proto;
	u32 min_rate;		/* RATE, Mbit/s */
	u32 max_rate;
	u32 setting;		/* SPOOFCHK and TRUST: 0/1; LINK_STATE: IFLA_VF_LINK_STATE_* */
};

/* What hooks and the notifier call; they keep the pointer (a static table). */
struct rvio_vf_hook_ops {
	/*
	 * A request on hooked PF @h, under RTNL: decide, and pass it to the
	 * driver with rvio_vf_hook_apply() if it may go. Returns what
	 * `ip link` gets.
	 */
	int (*set)(void *priv, struct rvio_vf_hook *h, const struct rvio_vf_req *req);
	/* The notifier: net_device @dev is being unregistered or was
	 * renamed. Under RTNL. */
	void (*netdev_gone)(void *priv, void *dev);
};

/*
 * Registers a netdev notifier that calls @ops->netdev_gone with @priv;
 * ERR_PTR(-ENOMEM) or the error of register_netdevice_notifier(). Not
 * under RTNL.
 */
struct rvio_vf_notifier *rvio_vf_notifier_register(const struct rvio_vf_hook_ops *ops,
						   void *priv);
/* Unregisters @n and frees it: no call of it runs or follows. Then waits
 * for the frees of detached hooks (module exit: after every detach). Not
 * under RTNL. */
void rvio_vf_notifier_unregister(struct rvio_vf_notifier *n);

/* The net_device named @ifname in the initial network namespace, or
 * ERR_PTR(-ENODEV); no reference: valid while RTNL stays held. Under
 * RTNL. */
void *rvio_vf_netdev_by_name(const char *ifname);
/*
 * Hooks net_device @dev (from rvio_vf_netdev_by_name() under the same
 * RTNL hold), calling @hops->set with @priv: the hook, which holds a
 * reference to @dev, or ERR_PTR(-EOPNOTSUPP) (it has no ndo_set_vf_mac
 * or ndo_get_vf_config: not an SR-IOV PF) or ERR_PTR(-ENOMEM). The caller
 * makes sure @dev is not hooked already. Under RTNL.
 */
struct rvio_vf_hook *rvio_vf_hook_attach(void *dev, const struct rvio_vf_hook_ops *hops,
					 void *priv);
/* Restores the driver's ops, drops the reference to the device and frees
 * @h after an RCU-tasks grace period (lockless readers of the PF's
 * netdev_ops may be preempted). Under RTNL, not from @h's ->set. */
void rvio_vf_hook_detach(struct rvio_vf_hook *h);
/* Passes @req to the PF driver of @h directly (no ->set): its result,
 * or -EOPNOTSUPP if the driver lacks the op. Under RTNL. */
int rvio_vf_hook_apply(struct rvio_vf_hook *h, const struct rvio_vf_req *req);
/* The MAC VF @vf of @h's PF has now (ndo_get_vf_config): 0 or the
 * driver's error. Under RTNL. */
int rvio_vf_hook_vf_mac(struct rvio_vf_hook *h, int vf, u8 *mac);
/* The number of VFs the PF of @h has enabled. Under RTNL. */
unsigned int rvio_vf_hook_num_vfs(struct rvio_vf_hook *h);
/* The PCI device of @h's PF with a reference, or ERR_PTR(-EOPNOTSUPP):
 * not a PCI device. Under RTNL. */
struct pci_dev *rvio_vf_hook_pci_get(struct rvio_vf_hook *h);
void rvio_pci_put(struct pci_dev *pdev);
/*
 * What writing @num_vfs to the PF's sriov_numvfs does, with its errors:
 * -ERANGE above sriov_totalvfs, -ENOENT no driver or no sriov_configure,
 * -EBUSY VFs enabled already (set 0 first), the driver's error (fewer
 * VFs than asked: a warning, as there). Not under
 * RTNL (the PF driver may take it).
 */
int rvio_pci_sriov_set_numvfs(struct pci_dev *pdev, u16 num_vfs);

/* Whether a refusal may be logged now (the kernel's default rate limit). */
bool rvio_vf_hook_ratelimit(void);

#endif /* RVIO_VF_HOOK_GLUE_H */
