/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's delayed work abstraction (rust/dwork.rs is the Rust
 * half): a delayed_work on system_wq that calls one function with an
 * argument, plus a monotonic millisecond clock for deadlines.
 */
#ifndef RVIO_DWORK_GLUE_H
#define RVIO_DWORK_GLUE_H

#include <linux/types.h>

struct rvio_dwork;

/* A work item that calls @fn(arg) when it runs, with the @arg of the
 * schedule call that queued the run. NULL on -ENOMEM. */
struct rvio_dwork *rvio_dwork_new(void (*fn)(void *arg));
/* Queues a run in @delay_ms with @arg, or moves a pending run that would
 * come later to then (with @arg, which must be the pending run's). Returns
 * true if a new run was queued, false if a pending one stays. */
bool rvio_dwork_schedule(struct rvio_dwork *w, void *arg, unsigned int delay_ms);
/* Cancels a pending run and, unless called from the run itself, waits for
 * a running one. Returns the pending run's arg, or NULL if none. */
void *rvio_dwork_cancel(struct rvio_dwork *w);
/* Frees the work item, which is not pending (a run may be freeing it). */
void rvio_dwork_free(struct rvio_dwork *w);
/* Monotonic clock in milliseconds. */
u64 rvio_now_ms(void);

#endif /* RVIO_DWORK_GLUE_H */
