// SPDX-License-Identifier: GPL-2.0
/*
 * vmpi_guest's module parameters: 6.12's Rust module! has none, so they
 * live here and vmpi/guest.rs reads them through getters.
 */
#include <linux/minmax.h>
#include <linux/moduleparam.h>

#include "guest_params.h"

static unsigned int rx_buffers = 64;
/* Writable: devices post up to the new number from their next refill. */
module_param(rx_buffers, uint, 0644);
MODULE_PARM_DESC(rx_buffers,
		 "rxq buffers (one page each) posted per device: 16 to 256, default 64 (256 KiB)");

unsigned int vmpi_guest_rx_buffers(void)
{
	return clamp(rx_buffers, 16U, 256U);
}
