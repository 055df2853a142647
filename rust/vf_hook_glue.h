/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's VF-configuration hook (rust/vf_hook.rs is the Rust
 * half). Attaching to an SR-IOV PF net_device replaces its netdev_ops
 * with a copy whose ndo_set_vf_{mac,vlan,rate,spoofchk,trust,link_state}
 * call the module first (the other ops are the driver's own; an op the
 * driver lacks stays NULL, so rtnetlink answers -EOPNOTSUPP as before).
 * Detaching restores the driver's table. A netdev notifier detaches a PF
 * that is unregistered. Everything here runs under RTNL except
 * rvio_pci_sriov_set_numvfs(), which must not.
 */
#ifndef RVIO_VF_HOOK_GLUE_H
#define RVIO_VF_HOOK_GLUE_H

#include <linux/types.h>

struct pci_dev;

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

/* What a hook calls; it keeps the pointer (a static table). */
struct rvio_vf_hook_ops {
	/*
	 * A request on hooked PF @id: decide, and pass it to the driver with
	 * rvio_vf_hook_apply() if it may go. Returns what `ip link` gets.
	 */
	int (*set)(void *priv, u64 id, const struct rvio_vf_req *req);
	/* PF @id is being unregistered or was renamed: it is detached
	 * already. */
	void (*gone)(void *priv, u64 id);
	/* Drops the hook's reference to @priv (after detach or gone). */
	void (*release)(void *priv);
};

/* Registers the netdev notifier (once per module): 0, or -EBUSY, -errno.
 * Not under RTNL. */
int rvio_vf_hooks_init(void);
/* Detaches every hook and unregisters the notifier. Not under RTNL. */
void rvio_vf_hooks_exit(void);

/*
 * Attaches to the net_device named @ifname in the initial network
 * namespace, calling @hops with @priv. Returns the hook's id (> 0) or
 * -ENODEV (no such device, or not between init and exit), -EOPNOTSUPP (it has no ndo_set_vf_mac or ndo_get_vf_config:
 * not an SR-IOV PF), -EEXIST (already hooked), -ENOMEM. Under RTNL.
 */
s64 rvio_vf_hook_attach(const char *ifname, const struct rvio_vf_hook_ops *hops, void *priv);
/* Detaches hook @id (restores the driver's ops): true if it was attached.
 * Under RTNL, not from a callback (false then). */
bool rvio_vf_hook_detach(u64 id);
/* Passes @req to the PF driver of hook @id directly (no ->set): its
 * result, -EOPNOTSUPP if the driver lacks the op, -ENODEV if no such
 * hook. Under RTNL. */
int rvio_vf_hook_apply(u64 id, const struct rvio_vf_req *req);
/* The MAC VF @vf of hook @id's PF has now (ndo_get_vf_config): 0, the
 * driver's error, or -ENODEV. Under RTNL. */
int rvio_vf_hook_vf_mac(u64 id, int vf, u8 *mac);
/* The number of VFs the PF of hook @id has enabled, or -ENODEV. Under
 * RTNL. */
int rvio_vf_hook_num_vfs(u64 id);
/* The PCI device of hook @id's PF with a reference, or ERR_PTR(-ENODEV)
 * no such hook, ERR_PTR(-EOPNOTSUPP) not a PCI device. Under RTNL. */
struct pci_dev *rvio_vf_hook_pci_get(u64 id);
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
