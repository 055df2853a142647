/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers whose declarations our Rust modules use, for module-local
 * bindgen (see Kbuild). rust/bindgen_parameters limits what is bound.
 */
#include "../samples/cross_module/test_provider.h"
/* The C half of rust/vdpa.rs. */
#include "vdpa_glue.h"
/* The C half of rust/virtio.rs. */
#include "virtio_glue.h"
/* Epochs of the VMPI control protocol. */
#include <linux/random.h>
#include <linux/errno.h>
/* The C half of rust/miscdev.rs. */
#include "miscdev_glue.h"
/* VMPI's in-kernel API (vmpi.ko) and char device ABI. */
#include <rvio/vmpi.h>
#include <uapi/rvio/vmpi.h>
/* vmpi/guest/guest_params.c: vmpi_guest's module parameters. */
#include "../vmpi/guest/guest_params.h"
/* vmpi/core/vmpi_core_exports.c: the device registry. */
#include "../vmpi/core/vmpi_core_exports.h"
/* The C half of rust/dwork.rs. */
#include "dwork_glue.h"
/* sriov_hook.ko's in-kernel API; the C halves of rust/sysfs_dir.rs and
 * rust/vf_hook.rs (sriov_hook). */
#include <rvio/sriov_hook.h>
#include "sysfs_dir_glue.h"
#include "vf_hook_glue.h"
#include <linux/rtnetlink.h>
