// SPDX-License-Identifier: GPL-2.0
/*
 * Why C: Rust code cannot EXPORT_SYMBOL in 6.12, so this file exports the
 * C-ABI that vmpi/core/ffi.rs implements (include/rvio/vmpi.h). It also
 * defines the SRCU around grants' done() calls (DEFINE_STATIC_SRCU, a
 * macro) and the device registry's lock (the registry itself is
 * vmpi/core/registry.rs): 6.12's kernel crate cannot make a statically
 * initialised mutex (later kernels have kernel::sync::global_lock!). Both
 * stay C until the kernel crate can do these.
 */
#include <linux/export.h>
#include <linux/mutex.h>
#include <linux/srcu.h>
#include <rvio/vmpi.h>

#include "vmpi_core_exports.h"

static DEFINE_MUTEX(vmpi_registry_mutex);

/*
 * The read section around every done() of a grant or copy (the
 * transport's), and its sync for the users (include/rvio/vmpi.h): a
 * statically initialised SRCU, C for the same reason as the mutex.
 */
DEFINE_STATIC_SRCU(vmpi_done_srcu);

int vmpi_transport_done_begin(void)
{
	return srcu_read_lock(&vmpi_done_srcu);
}

void vmpi_transport_done_end(int idx)
{
	srcu_read_unlock(&vmpi_done_srcu, idx);
}

void vmpi_done_sync(void)
{
	synchronize_srcu(&vmpi_done_srcu);
}

void vmpi_core_registry_lock(void)
{
	mutex_lock(&vmpi_registry_mutex);
}

void vmpi_core_registry_unlock(void)
{
	mutex_unlock(&vmpi_registry_mutex);
}

EXPORT_SYMBOL_GPL(vmpi_transport_register);
EXPORT_SYMBOL_GPL(vmpi_transport_unregister);
EXPORT_SYMBOL_GPL(vmpi_transport_restart);
EXPORT_SYMBOL_GPL(vmpi_transport_rx_buf);
EXPORT_SYMBOL_GPL(vmpi_transport_rx_from);
EXPORT_SYMBOL_GPL(vmpi_transport_tx);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_len);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_to);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_take);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_done);
EXPORT_SYMBOL_GPL(vmpi_transport_drop);
EXPORT_SYMBOL_GPL(vmpi_transport_tx_lost);
EXPORT_SYMBOL_GPL(vmpi_dev_find);
EXPORT_SYMBOL_GPL(vmpi_dev_reset);
EXPORT_SYMBOL_GPL(vmpi_port_open);
EXPORT_SYMBOL_GPL(vmpi_port_send);
EXPORT_SYMBOL_GPL(vmpi_port_send_sg);
EXPORT_SYMBOL_GPL(vmpi_port_close);
EXPORT_SYMBOL_GPL(vmpi_port_grant);
EXPORT_SYMBOL_GPL(vmpi_port_copy);
EXPORT_SYMBOL_GPL(vmpi_port_deliver);
EXPORT_SYMBOL_GPL(vmpi_port_bind_domain);
EXPORT_SYMBOL_GPL(vmpi_port_unbind_domain);
EXPORT_SYMBOL_GPL(vmpi_port_domain_stats);
EXPORT_SYMBOL_GPL(vmpi_transport_done_begin);
EXPORT_SYMBOL_GPL(vmpi_transport_done_end);
EXPORT_SYMBOL_GPL(vmpi_done_sync);
