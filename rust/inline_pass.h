/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Whether a writer's task may run its device's send pass itself
 * (rvio_vdpa_run_now(), rvio_virtio_run_now()) rather than leave it to the
 * device's work. C because it reads `current`, which 6.12's kernel crate
 * does not expose with its priority and signals.
 */
#ifndef RVIO_INLINE_PASS_H
#define RVIO_INLINE_PASS_H

#include <linux/sched.h>
#include <linux/sched/signal.h>

/*
 * Not a task being killed (its allocations would fail, e.g. vmalloc's),
 * nor one of low priority (it could be descheduled holding the device's
 * lock, stalling every user of the device and the VMM's map updates).
 */
static inline bool rvio_may_pass_inline(void)
{
	return !fatal_signal_pending(current) && task_nice(current) <= 0 &&
	       current->policy != SCHED_IDLE && current->policy != SCHED_BATCH;
}

#endif /* RVIO_INLINE_PASS_H */
