/* SPDX-License-Identifier: GPL-2.0 */
/*
 * In-kernel C-ABI of sriov_hook.ko (docs/sriov-hook.md): the routes its VF
 * policies give the forwarding table. Implemented in Rust
 * (drivers/sriov_hook/sriov_hook_main.rs), exported by
 * drivers/sriov_hook/sriov_hook_exports.c.
 */
#ifndef _RVIO_SRIOV_HOOK_H
#define _RVIO_SRIOV_HOOK_H

#include <linux/types.h>

/* How a domain's MAC is reached. */
struct rvio_sriov_route {
	u16 domain;		/* the domain the MAC is assigned to (1 to 32751) */
	u8 via_vf;		/* 1: directly through VF @vf of PF @pf; 0: the software path */
	u8 reserved;
	u32 vf;
	char pf[16];		/* the PF's interface name, NUL-terminated */
};

/*
 * The route of @mac (6 bytes): 0 and *@out, or -ENOENT when no VF policy
 * has that MAC (the forwarding table's default route applies), -EINVAL
 * for NULL arguments. Process context: takes RTNL, so not under it.
 */
int rvio_sriov_route(const u8 *mac, struct rvio_sriov_route *out);

/*
 * Asks to be told when routes may have changed (a policy set or cleared,
 * a PF attached, detached or gone, VFs enabled, a VF's MAC set): @changed
 * is called with @priv, in process context, possibly under RTNL and the
 * hook's locks, so it must only note the change and schedule work (then
 * call rvio_sriov_route() from there). Returns a watch id >= 0, -ENOSPC
 * beyond 4 watches, -EINVAL for a NULL @changed. Process context.
 */
int rvio_sriov_watch_add(void (*changed)(void *priv), void *priv);
/* Ends watch @id; when it returns, @changed is not running and will not
 * run. Process context, not from @changed. */
void rvio_sriov_watch_del(int id);

#endif /* _RVIO_SRIOV_HOOK_H */
