// SPDX-License-Identifier: GPL-2.0
/*
 * vmpi_guest's module parameters: 6.12's Rust module! takes none, so they
 * live here, in C until the module's Rust moves to a kernel whose module!
 * has parameters; vmpi/guest/params.rs reads them through these getters.
 */
#include <linux/compiler.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/moduleparam.h>

#include "guest_params.h"

static unsigned int rx_buffers = 64;
/* Writable: devices post up to the new number from their next refill. */
module_param(rx_buffers, uint, 0644);
MODULE_PARM_DESC(rx_buffers,
		 "rxq buffers posted per device: 16 to 256, default 64 (1 MiB of 16 KiB buffers); each takes two of the ring's 256 descriptors (header and payload), so at most 128 unless indirect_desc=1");

static unsigned int rx_buf_size = 16384;
/* Writable: a device's buffers take the new size as they come back used. */
module_param(rx_buf_size, uint, 0644);
MODULE_PARM_DESC(rx_buf_size,
		 "payload bytes of each rxq buffer (after a 4-byte header): 4096 to 65536 (default 16384), rounded down to a power of two; 65536 takes every SDU in one buffer instead of up to 4 (64 buffers: 4 MiB per device); a page stands in while free memory has no such buffer");

static bool event_idx = true;
/* Writable: a device follows it when it is next probed. */
module_param(event_idx, bool, 0644);
MODULE_PARM_DESC(event_idx,
		 "use VIRTIO_RING_F_EVENT_IDX if the device offers it (default 1); 0 for comparison");

bool vmpi_guest_event_idx(void)
{
	return READ_ONCE(event_idx);
}

static bool indirect_desc;
/* Writable: a device follows it when it is next probed. */
module_param(indirect_desc, bool, 0644);
MODULE_PARM_DESC(indirect_desc,
		 "use VIRTIO_RING_F_INDIRECT_DESC if the device offers it (default 0: an indirect table costs an allocation per message)");

bool vmpi_guest_indirect_desc(void)
{
	return READ_ONCE(indirect_desc);
}

static bool grants = true;
/* Writable: a device follows it when it is next probed. */
module_param(grants, bool, 0644);
MODULE_PARM_DESC(grants,
		 "use VMPI_F_GRANT (grantq and copyq, for envelope switching) if the device offers it (default 1)");

bool vmpi_guest_grants(void)
{
	return READ_ONCE(grants);
}

unsigned int vmpi_guest_rx_buf_size(void)
{
	return rounddown_pow_of_two(clamp(READ_ONCE(rx_buf_size), 4096U, 65536U));
}

unsigned int vmpi_guest_rx_buffers(void)
{
	return clamp(READ_ONCE(rx_buffers), 16U, 256U);
}
