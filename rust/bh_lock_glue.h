/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's bottom-half-safe spinlock (rust/bh_lock.rs is the
 * Rust half): local_bh_disable() and local_bh_enable() are static inlines.
 */
#ifndef RVIO_BH_LOCK_GLUE_H
#define RVIO_BH_LOCK_GLUE_H

void rvio_bh_disable(void);
void rvio_bh_enable(void);

#endif /* RVIO_BH_LOCK_GLUE_H */
