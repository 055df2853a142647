// SPDX-License-Identifier: GPL-2.0
/*
 * Why C: Rust code cannot EXPORT_SYMBOL in 6.12, so this file exports the
 * C-ABI that vmpi/core/ffi.rs implements (include/rvio/vmpi.h). It also
 * keeps the registry of devices (ids for /dev/vmpiN, N small and local to
 * this kernel, and the objects behind them, for in-kernel users' lookups):
 * 6.12's kernel crate has no IDA, XArray or statically initialised mutex.
 * The registry moves to Rust with those abstractions (later kernels have
 * kernel::xarray); the exports stay C until Rust can export symbols.
 */
#include <linux/export.h>
#include <linux/idr.h>
#include <linux/mutex.h>
#include <linux/xarray.h>
#include <rvio/vmpi.h>

#include "vmpi_core_exports.h"

static DEFINE_IDA(vmpi_ids);
static DEFINE_XARRAY(vmpi_devs);
static DEFINE_MUTEX(vmpi_devs_lock);

int vmpi_core_id_alloc(void)
{
	return ida_alloc_max(&vmpi_ids, INT_MAX, GFP_KERNEL);
}

void vmpi_core_id_free(int id)
{
	ida_free(&vmpi_ids, id);
}

int vmpi_core_dev_add(int id, void *dev)
{
	int ret;

	mutex_lock(&vmpi_devs_lock);
	ret = xa_err(xa_store(&vmpi_devs, id, dev, GFP_KERNEL));
	mutex_unlock(&vmpi_devs_lock);
	return ret;
}

void vmpi_core_dev_del(int id)
{
	mutex_lock(&vmpi_devs_lock);
	xa_erase(&vmpi_devs, id);
	mutex_unlock(&vmpi_devs_lock);
}

void vmpi_core_devs_lock(void)
{
	mutex_lock(&vmpi_devs_lock);
}

void vmpi_core_devs_unlock(void)
{
	mutex_unlock(&vmpi_devs_lock);
}

void *vmpi_core_devs_next(unsigned long *idx)
{
	void *dev;

	lockdep_assert_held(&vmpi_devs_lock);
	dev = xa_find(&vmpi_devs, idx, ULONG_MAX, XA_PRESENT);
	if (dev)
		(*idx)++;
	return dev;
}

EXPORT_SYMBOL_GPL(vmpi_transport_register);
EXPORT_SYMBOL_GPL(vmpi_transport_unregister);
EXPORT_SYMBOL_GPL(vmpi_transport_restart);
EXPORT_SYMBOL_GPL(vmpi_transport_rx);
EXPORT_SYMBOL_GPL(vmpi_transport_tx);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_len);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_take);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_done);
EXPORT_SYMBOL_GPL(vmpi_transport_drop);
EXPORT_SYMBOL_GPL(vmpi_dev_find);
EXPORT_SYMBOL_GPL(vmpi_port_open);
EXPORT_SYMBOL_GPL(vmpi_port_send);
EXPORT_SYMBOL_GPL(vmpi_port_close);
