// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's work handle: see rust/work_handle_glue.h.
 *
 * Why C: the handle points at a work_struct embedded in a device's C
 * structure (rust/vdpa_glue.c, rust/virtio_glue.c), which those C halves
 * own; it stays C as long as they do.
 */
#include <linux/kref.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "work_handle_glue.h"

struct rvio_work_handle {
	struct kref ref;	/* the device's, and one per Rust Handle */
	spinlock_t lock;
	struct workqueue_struct *wq;
	struct work_struct *work;	/* NULL once detached */
};

struct rvio_work_handle *rvio_work_handle_new(struct workqueue_struct *wq,
					      struct work_struct *work)
{
	struct rvio_work_handle *h = kzalloc(sizeof(*h), GFP_KERNEL);

	if (!h)
		return NULL;
	kref_init(&h->ref);
	spin_lock_init(&h->lock);
	h->wq = wq;
	h->work = work;
	return h;
}

void rvio_work_handle_get(struct rvio_work_handle *h)
{
	kref_get(&h->ref);
}

void rvio_work_handle_schedule(struct rvio_work_handle *h)
{
	unsigned long flags;

	spin_lock_irqsave(&h->lock, flags);
	if (h->work)
		queue_work(h->wq, h->work);
	spin_unlock_irqrestore(&h->lock, flags);
}

static void rvio_work_handle_free(struct kref *ref)
{
	kfree(container_of(ref, struct rvio_work_handle, ref));
}

void rvio_work_handle_put(struct rvio_work_handle *h)
{
	kref_put(&h->ref, rvio_work_handle_free);
}

void rvio_work_handle_detach(struct rvio_work_handle *h)
{
	spin_lock_irq(&h->lock);
	h->work = NULL;
	spin_unlock_irq(&h->lock);
	rvio_work_handle_put(h);
}
