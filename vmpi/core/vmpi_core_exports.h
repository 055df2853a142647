/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmpi/core/vmpi_core_exports.c: the lock of the device registry
 * (vmpi/core/registry.rs), for registry.rs only.
 */
#ifndef RVIO_VMPI_CORE_EXPORTS_H
#define RVIO_VMPI_CORE_EXPORTS_H

void vmpi_core_registry_lock(void);
void vmpi_core_registry_unlock(void);

#endif /* RVIO_VMPI_CORE_EXPORTS_H */
