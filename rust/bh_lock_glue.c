// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rust/bh_lock.rs. Why C: local_bh_disable() and
 * local_bh_enable() are static inlines, and 6.12's kernel crate has no
 * spin_lock_bh() flavour of its SpinLock.
 */
#include <linux/bottom_half.h>

#include "bh_lock_glue.h"

void rvio_bh_disable(void)
{
	local_bh_disable();
}

void rvio_bh_enable(void)
{
	local_bh_enable();
}
