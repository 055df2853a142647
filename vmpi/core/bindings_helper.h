/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What vmpi.ko's Rust binds (Kbuild runs bindgen over this file into
 * bindings_generated.rs; rust/bindgen_parameters limits what is bound).
 */
/* rust/miscdev.rs, rust/dwork.rs and rust/bh_lock.rs: their C halves. */
#include "../../rust/miscdev_glue.h"
#include "../../rust/dwork_glue.h"
#include "../../rust/bh_lock_glue.h"
/* rust/memcg.rs: SDUs queued for a file's reader charged to its cgroup. */
#include "../../rust/memcg_glue.h"
/* ffi.rs: vmpi_port_send_sg() copies out of a scatterlist. */
#include <linux/scatterlist.h>
/* rust/errno.rs: error codes kernel::error::code lacks. */
#include <linux/errno.h>
/* grants.rs: msleep() while unregistering waits for grant calls in flight. */
#include <linux/delay.h>
/* Epochs of the VMPI control protocol (device.rs). */
#include <linux/random.h>
/* The C-ABI vmpi.ko provides (ffi.rs) and its char device ABI (chardev.rs). */
#include <rvio/vmpi.h>
#include <uapi/rvio/vmpi.h>
/* vmpi_core_exports.c: the device registry's lock (registry.rs). */
#include "vmpi_core_exports.h"
