/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What vmpi_host.ko's Rust binds (Kbuild runs bindgen over this file into
 * bindings_generated.rs; rust/bindgen_parameters limits what is bound).
 */
/* rust/vdpa.rs: its C half. */
#include "../../rust/vdpa_glue.h"
/* rust/dwork.rs: its C half (the grants' timeout timer). */
#include "../../rust/dwork_glue.h"
/* rust/rvio/vmpi_transport.rs: the transport C-ABI of vmpi.ko. */
#include <rvio/vmpi.h>
/* host_params.c: the module parameters (params.rs). */
#include "host_params.h"
/* rust/work_handle.rs: msleep() while a handle detaches. */
#include <linux/delay.h>
