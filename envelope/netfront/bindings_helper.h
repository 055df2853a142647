/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What envelope_netfront.ko's Rust binds (Kbuild runs bindgen over this
 * file into bindings_generated.rs; rust/bindgen_parameters limits what is
 * bound).
 */
/* rust/sysfs_dir.rs, rust/dwork.rs, rust/netdev.rs, rust/bh_lock.rs: their C halves. */
#include "../../rust/sysfs_dir_glue.h"
#include "../../rust/dwork_glue.h"
#include "../../rust/netdev_glue.h"
#include "../../rust/bh_lock_glue.h"
/* rust/work_handle.rs: msleep() while a handle detaches. */
#include <linux/delay.h>
/* rust/rvio/vmpi_port.rs: VMPI's in-kernel API, provided by vmpi.ko. */
#include <rvio/vmpi.h>
