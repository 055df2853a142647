/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the test modules' Rust binds, one list for the directory (Kbuild
 * runs bindgen over this file into bindings_generated.rs;
 * rust/bindgen_parameters limits what is bound).
 */
/* vmpi_echo: VMPI's in-kernel API (rust/rvio/vmpi_port.rs), and
 * rust/bh_lock.rs's C half. */
#include <rvio/vmpi.h>
#include "../../rust/bh_lock_glue.h"
/* vmpi_evil: a virtio driver (rust/virtio.rs's C half). */
#include "../../rust/virtio_glue.h"
/* sriov_route_probe: sriov_hook.ko's route lookup. */
#include <rvio/sriov_hook.h>
/* envelope_evil: scatterlists for grants and copies. */
#include <linux/scatterlist.h>
/* rust/work_handle.rs: msleep() while a handle detaches. */
#include <linux/delay.h>
