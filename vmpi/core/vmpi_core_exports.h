/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmpi/core/vmpi_core_exports.c: the device registry, for vmpi/core/
 * (device.rs, ffi.rs) only. Under the registry lock a listed object is
 * alive (the core erases it before dropping the registry's reference).
 */
#ifndef RVIO_VMPI_CORE_EXPORTS_H
#define RVIO_VMPI_CORE_EXPORTS_H

/* A new device id (/dev/vmpiN), or -errno. */
int vmpi_core_id_alloc(void);
void vmpi_core_id_free(int id);
/* Lists @dev under @id: 0 or -ENOMEM. */
int vmpi_core_dev_add(int id, void *dev);
/* Unlists the device of @id. */
void vmpi_core_dev_del(int id);
void vmpi_core_devs_lock(void);
void vmpi_core_devs_unlock(void);
/* Under the lock: the first device at or after id *@idx, which moves past
 * it; NULL at the end. */
void *vmpi_core_devs_next(unsigned long *idx);

#endif /* RVIO_VMPI_CORE_EXPORTS_H */
