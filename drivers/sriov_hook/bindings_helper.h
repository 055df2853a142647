/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What sriov_hook.ko's Rust binds (Kbuild runs bindgen over this file into
 * bindings_generated.rs; rust/bindgen_parameters limits what is bound).
 */
/* rust/errno.rs: error codes kernel::error::code lacks. */
#include <linux/errno.h>
/* rust/sysfs_dir.rs and rust/vf_hook.rs: their C halves; RTNL. */
#include "../../rust/sysfs_dir_glue.h"
#include "../../rust/vf_hook_glue.h"
#include <linux/rtnetlink.h>
/* The in-kernel API sriov_hook.ko provides (sriov_hook_exports.c). */
#include <rvio/sriov_hook.h>
