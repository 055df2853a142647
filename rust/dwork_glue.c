// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's delayed work abstraction: see rust/dwork_glue.h.
 *
 * Why C: 6.12's kernel crate has work items but no delayed work; the
 * timer and work embedding and the container_of() from the work back to
 * its owner stay here until kernel::workqueue has delayed work.
 */
#include <linux/jiffies.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>

#include "dwork_glue.h"

struct rvio_dwork {
	struct delayed_work dw;
	void (*fn)(void *arg);
	void *arg;		/* of the queued run */
};

static void rvio_dwork_run(struct work_struct *work)
{
	struct rvio_dwork *w = container_of(to_delayed_work(work), struct rvio_dwork, dw);

	/* May free @w: nothing touches it after this call. */
	w->fn(READ_ONCE(w->arg));
}

struct rvio_dwork *rvio_dwork_new(void (*fn)(void *arg))
{
	struct rvio_dwork *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	INIT_DELAYED_WORK(&w->dw, rvio_dwork_run);
	w->fn = fn;
	return w;
}

bool rvio_dwork_schedule(struct rvio_dwork *w, void *arg, unsigned int delay_ms)
{
	unsigned long delay = msecs_to_jiffies(delay_ms);

	WRITE_ONCE(w->arg, arg);
	/* A pending run that comes sooner stays as it is: runs are only ever
	 * brought forward. If it starts meanwhile it starts after the
	 * caller's change, which is what a run is asked for. */
	if (delayed_work_pending(&w->dw) &&
	    time_before_eq(READ_ONCE(w->dw.timer.expires), jiffies + delay))
		return false;
	return !mod_delayed_work(system_wq, &w->dw, delay);
}

void *rvio_dwork_cancel(struct rvio_dwork *w)
{
	bool pending;

	if (current_work() == &w->dw.work)
		pending = cancel_delayed_work(&w->dw);
	else
		pending = cancel_delayed_work_sync(&w->dw);
	return pending ? READ_ONCE(w->arg) : NULL;
}

void rvio_dwork_free(struct rvio_dwork *w)
{
	kfree(w);
}

u64 rvio_now_ms(void)
{
	return ktime_get_ns() / NSEC_PER_MSEC;
}
