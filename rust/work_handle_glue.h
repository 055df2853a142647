/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's work handle (rust/work_handle.rs is the Rust half),
 * shared by the device abstractions (rust/vdpa_glue.c, rust/virtio_glue.c):
 * a counted handle that queues a device's work item from any context, and
 * does nothing once the device has detached it (before the device cancels
 * its work and frees itself). So a handle may outlive the device.
 */
#ifndef RVIO_WORK_HANDLE_GLUE_H
#define RVIO_WORK_HANDLE_GLUE_H

#include <linux/workqueue.h>

struct rvio_work_handle;

/* A handle that queues @work on @wq, holding one reference for the
 * device; NULL on -ENOMEM. */
struct rvio_work_handle *rvio_work_handle_new(struct workqueue_struct *wq,
					      struct work_struct *work);
/* Another reference. */
void rvio_work_handle_get(struct rvio_work_handle *h);
/* Queues the work unless detached. Any context. */
void rvio_work_handle_schedule(struct rvio_work_handle *h);
/* Drops a reference. Any context. */
void rvio_work_handle_put(struct rvio_work_handle *h);
/* For the device, before it cancels its work: no handle queues it from now
 * on. Drops the device's reference. Process context. */
void rvio_work_handle_detach(struct rvio_work_handle *h);

#endif /* RVIO_WORK_HANDLE_GLUE_H */
