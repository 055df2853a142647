/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What vmpi_guest.ko's Rust binds (Kbuild runs bindgen over this file into
 * bindings_generated.rs; rust/bindgen_parameters limits what is bound).
 */
/* rust/virtio.rs: its C half. */
#include "../../rust/virtio_glue.h"
/* rust/rvio/vmpi_transport.rs: the transport C-ABI of vmpi.ko. */
#include <rvio/vmpi.h>
/* guest_params.c: the module parameters (params.rs). */
#include "guest_params.h"
/* rust/work_handle.rs: msleep() while a handle detaches. */
#include <linux/delay.h>
