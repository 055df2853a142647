/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's software vDPA device abstraction (rust/vdpa.rs is the
 * Rust half; rust/vdpa_glue.c the implementation). The C half owns every
 * kernel structure layout that bindgen cannot or should not see (struct
 * vdpa_device, vringh, vhost_iotlb) and the vDPA plumbing that is the same
 * for any software device: the management device, the virtqueue
 * configuration ops, the identity/vhost IOTLB, status and reset, and a work
 * item. The device's own logic (configuration space contents, what a work
 * pass does) is the Rust driver's, called through struct rvio_vdpa_driver.
 *
 * Locking: every driver callback except dev_add and free runs with the
 * device's mutex held, and so do the queue functions below, which may only
 * be called from those callbacks.
 */
#ifndef RVIO_VDPA_GLUE_H
#define RVIO_VDPA_GLUE_H

#include <linux/types.h>

struct rvio_vdpa;
struct rvio_vdpa_mgmt;

/* The most virtqueues of a device. */
#define RVIO_VDPA_NVQS_MAX 4

/* The driver's (Rust) callbacks and constants, one constant table per
 * driver type that outlives its registration; all callbacks but dev_add
 * take the driver's state. */
struct rvio_vdpa_driver {
	/* The virtio device id of every device. */
	u32 device_id;
	/* Device-specific feature bits offered (VERSION_1 and
	 * ACCESS_PLATFORM are always offered). */
	u64 features;
	/* Its virtqueues: 1 to RVIO_VDPA_NVQS_MAX (a driver that did not
	 * negotiate the features of the last ones leaves them unused). */
	unsigned int nvqs;
	/* A device is being added: create the driver state and hand it over
	 * with rvio_vdpa_set_state() (no other call is allowed here). */
	int (*dev_add)(struct rvio_vdpa *r, const char *name);
	/* The device is being deleted (vdpa dev del, module unload): stop
	 * using anything outside the device. Called once, lock held. */
	void (*remove)(void *state);
	/* The driver (re)set the device (status 0): forget everything. */
	void (*reset)(void *state);
	/* The driver set DRIVER_OK. */
	void (*start)(void *state, struct rvio_vdpa *r);
	/* A work pass (after a kick, DRIVER_OK or rvio_vdpa_schedule()):
	 * return true to be called again. Runs only while DRIVER_OK and not
	 * suspended. */
	bool (*process)(void *state, struct rvio_vdpa *r);
	/* Optional (NULL: process): a pass from rvio_vdpa_run_now(), in a
	 * writer's context, that only sends what waits (bounded); return
	 * true for a full pass from the work. Same conditions as process. */
	bool (*flush)(void *state, struct rvio_vdpa *r);
	/* Optional. The VMM suspends the device (VHOST_VDPA_SUSPEND: QEMU's
	 * stop, migration) while DRIVER_OK: use every chain kept out
	 * (rvio_vdpa_vq_keep), so that the used index the driver sees is the
	 * available index the VMM reads (GET_VRING_BASE) and restores. */
	void (*suspend)(void *state, struct rvio_vdpa *r);
	/* Optional. The VMM resumes a suspended device while DRIVER_OK. */
	void (*resume)(void *state, struct rvio_vdpa *r);
	/* The device is released: free the state. */
	void (*free)(void *state);
};

/* Registers the management device @name (vdpa mgmtdev show; copied) whose
 * devices @drv drives (pointed to until unregistration). ERR_PTR() on
 * failure, never NULL. */
struct rvio_vdpa_mgmt *rvio_vdpa_mgmt_register(const struct rvio_vdpa_driver *drv,
					       const char *name);
/* Deletes every device, waits until each is released, unregisters. */
void rvio_vdpa_mgmt_unregister(struct rvio_vdpa_mgmt *m);

/* From dev_add only: the driver state and the configuration space. */
int rvio_vdpa_set_state(struct rvio_vdpa *r, void *state, const void *config,
			size_t config_len);

/* The features the driver negotiated (from start or process only). */
u64 rvio_vdpa_features(struct rvio_vdpa *r);

/* Ask for a work pass. Any context, until the device is released. */
void rvio_vdpa_schedule(struct rvio_vdpa *r);
/* A sending pass (drv->flush) now, in the caller's context, if the
 * device's lock is free and the task fit (else a work pass is scheduled):
 * for a sender that has just queued something, saving a hand-over to the
 * work. Process context, no lock of the driver's held (it tries the
 * device's lock); not from process(). Whoever stops the device's users
 * (remove) does so holding the lock, which this only tries. */
void rvio_vdpa_run_now(struct rvio_vdpa *r);

/* The name of the device (vdpa dev show). */
const char *rvio_vdpa_name(struct rvio_vdpa *r);

/*
 * Queue access, from reset/start/process only (mutex held).
 * rvio_vdpa_vq_pop: 1 and a chain in the queue's iovs, 0 if the queue is
 * empty or not ready, -errno if the driver's ring is bad (the queue then
 * stays stopped until the next reset, and the driver is told: status
 * DEVICE_NEEDS_RESET and its configuration interrupt). A chain has at
 * most 256 buffers each way, and a pop reads at most 512 descriptors,
 * whatever the driver wrote. At most one chain per queue is popped at a
 * time; rvio_vdpa_vq_done completes it.
 */
int rvio_vdpa_vq_pop(struct rvio_vdpa *r, u16 idx, size_t *readable,
		     size_t *writable);
ssize_t rvio_vdpa_vq_pull(struct rvio_vdpa *r, u16 idx, void *buf, size_t len);
ssize_t rvio_vdpa_vq_push(struct rvio_vdpa *r, u16 idx, const void *buf,
			  size_t len);
void rvio_vdpa_vq_done(struct rvio_vdpa *r, u16 idx, u32 written);
/* Interrupt the driver if the ring asks for it after completions. */
void rvio_vdpa_vq_notify(struct rvio_vdpa *r, u16 idx);
/* The driver's notifications (kicks) of queue @idx: disabled while the
 * device works through the queue; enabled again when it goes idle, which
 * returns false if buffers were added meanwhile (no kick comes for
 * those: look again). With VIRTIO_RING_F_EVENT_IDX they set avail_event,
 * else the used ring's NO_NOTIFY flag. */
void rvio_vdpa_vq_notify_disable(struct rvio_vdpa *r, u16 idx);
bool rvio_vdpa_vq_notify_enable(struct rvio_vdpa *r, u16 idx);

/*
 * Chains kept across passes (a grant stays out until it completes), and
 * copies between two devices' drivers' memory, translated through each
 * device's IOTLB (docs/vmpi-protocol.md section 5).
 */

/* One descriptor of a chain: a driver address (IOVA) and a length. */
struct rvio_vdpa_range {
	u64 addr;
	u32 len;
	u32 reserved;
};

/* The popped chain's readable and writable descriptors, before any pull
 * or push: 0, -E2BIG (more than @rd_max or @wr_max), -EINVAL (no chain
 * popped). Lock held. */
int rvio_vdpa_vq_ranges(struct rvio_vdpa *r, u16 idx, struct rvio_vdpa_range *rd,
			unsigned int rd_max, unsigned int *nrd,
			struct rvio_vdpa_range *wr, unsigned int wr_max,
			unsigned int *nwr);
/* The popped chain stays out (not completed) and the queue may pop the
 * next one: returns its head for rvio_vdpa_vq_complete(). Lock held. */
int rvio_vdpa_vq_keep(struct rvio_vdpa *r, u16 idx);
/* Completes a kept chain (nothing after a reset: the ring is gone and the
 * driver forgot it). Lock held. */
void rvio_vdpa_vq_complete(struct rvio_vdpa *r, u16 idx, u16 head, u32 written);

/* A reference that keeps @r's memory (not its driver state) alive. */
struct rvio_vdpa *rvio_vdpa_get(struct rvio_vdpa *r);
void rvio_vdpa_put(struct rvio_vdpa *r);

/* Holds the maps of @a and @b (NULL or @a: one device) against changes:
 * dma_map, dma_unmap, reset_map and device reset wait until they are
 * unlocked.
 * Process context; may sleep. */
void rvio_vdpa_maps_lock(struct rvio_vdpa *a, struct rvio_vdpa *b);
void rvio_vdpa_maps_unlock(struct rvio_vdpa *a, struct rvio_vdpa *b);
/* Waits until no copy that took @r's map (rvio_vdpa_maps_lock, in another
 * device's pass) still runs; from a callback (lock held). */
void rvio_vdpa_maps_drain(struct rvio_vdpa *r);

#define RVIO_VDPA_SRC_FAULT 1
#define RVIO_VDPA_DST_FAULT 2
/* Copies @len bytes into @dst's driver memory at byte @doff of the ranges
 * @dr (which it may write), from @src's at byte @soff of @sr (which it may
 * read), or from @kbuf if @src is NULL: page by page, each side
 * translated through its own IOTLB, no intermediate buffer. Both maps
 * held (rvio_vdpa_maps_lock). 0, or RVIO_VDPA_SRC_FAULT /
 * RVIO_VDPA_DST_FAULT (a side not mapped with that permission, or its
 * ranges too short: part of the bytes may have been written). */
int rvio_vdpa_copy(struct rvio_vdpa *dst, const struct rvio_vdpa_range *dr,
		   unsigned int ndr, size_t doff, struct rvio_vdpa *src,
		   const struct rvio_vdpa_range *sr, unsigned int nsr, size_t soff,
		   const void *kbuf, size_t len);

#endif /* RVIO_VDPA_GLUE_H */
