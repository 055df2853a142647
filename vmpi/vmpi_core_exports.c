// SPDX-License-Identifier: GPL-2.0
/*
 * Rust code cannot EXPORT_SYMBOL in 6.12: this C file exports the C-ABI
 * that vmpi/vmpi_core.rs implements (include/rvio/vmpi.h), and keeps the
 * device ids (one IDA: /dev/vmpiN, N small and local to this kernel).
 */
#include <linux/export.h>
#include <linux/idr.h>
#include <rvio/vmpi.h>

static DEFINE_IDA(vmpi_ids);

int vmpi_core_id_alloc(void);
void vmpi_core_id_free(int id);

int vmpi_core_id_alloc(void)
{
	return ida_alloc(&vmpi_ids, GFP_KERNEL);
}

void vmpi_core_id_free(int id)
{
	ida_free(&vmpi_ids, id);
}

EXPORT_SYMBOL_GPL(vmpi_transport_register);
EXPORT_SYMBOL_GPL(vmpi_transport_unregister);
EXPORT_SYMBOL_GPL(vmpi_transport_restart);
EXPORT_SYMBOL_GPL(vmpi_transport_rx);
EXPORT_SYMBOL_GPL(vmpi_transport_tx);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_len);
EXPORT_SYMBOL_GPL(vmpi_transport_drop);
