/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What envelope_switch.ko's Rust binds (Kbuild runs bindgen over this file
 * into bindings_generated.rs; rust/bindgen_parameters limits what is
 * bound).
 */
/* rust/errno.rs: error codes kernel::error::code lacks. */
#include <linux/errno.h>
/* rust/sysfs_dir.rs and rust/dwork.rs: their C halves. */
#include "../../rust/sysfs_dir_glue.h"
#include "../../rust/dwork_glue.h"
/* rust/uplink.rs: its C half. */
#include "../../rust/uplink_glue.h"
/* rust/rvio/vmpi_port.rs: VMPI's in-kernel API, provided by vmpi.ko. */
#include <rvio/vmpi.h>
/* rust/rvio/sriov_route.rs: the SR-IOV hook's routes, from sriov_hook.ko. */
#include <rvio/sriov_hook.h>
/* switch.rs: the table's epoch (get_random_u32). */
#include <linux/random.h>
