// SPDX-License-Identifier: GPL-2.0
/*
 * vmpi_host's module parameters: 6.12's Rust module! takes none, so they
 * live here, in C until the module's Rust moves to a kernel whose module!
 * has parameters; vmpi/host/params.rs reads them through these getters.
 */
#include <linux/compiler.h>
#include <linux/minmax.h>
#include <linux/moduleparam.h>

#include "host_params.h"

static unsigned int copy_batch = 64;
/* Writable: each device's next work pass follows it. */
module_param(copy_batch, uint, 0644);
MODULE_PARM_DESC(copy_batch,
		 "grants, copy requests and deliveries a device handles per work pass and queue before it runs again: 1 to 64 (other values are clamped), default 64 (Xen netback's batch)");

unsigned int vmpi_host_copy_batch(void)
{
	return clamp(READ_ONCE(copy_batch), 1U, 64U);
}

static unsigned int grant_hold_ms = 1000;
/* Writable: grants recorded from then on take it. */
module_param(grant_hold_ms, uint, 0644);
MODULE_PARM_DESC(grant_hold_ms,
		 "how long a grant may stay unfinished before it completes TIMEOUT, in ms: 100 to 60000 (other values are clamped), default 1000");

unsigned int vmpi_host_grant_hold_ms(void)
{
	return clamp(READ_ONCE(grant_hold_ms), 100U, 60000U);
}
