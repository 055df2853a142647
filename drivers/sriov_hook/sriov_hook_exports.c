// SPDX-License-Identifier: GPL-2.0
/*
 * Why C: Rust code cannot EXPORT_SYMBOL in 6.12, so this file exports the C-ABI
 * that drivers/sriov_hook/sriov_hook_main.rs implements
 * (include/rvio/sriov_hook.h).
 */
#include <linux/export.h>
#include <rvio/sriov_hook.h>

EXPORT_SYMBOL_GPL(rvio_sriov_route);
EXPORT_SYMBOL_GPL(rvio_sriov_watch_add);
EXPORT_SYMBOL_GPL(rvio_sriov_watch_del);
