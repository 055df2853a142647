/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's virtio driver abstraction (rust/virtio.rs is the Rust
 * half; rust/virtio_glue.c the implementation). The C half owns the kernel
 * structures (struct virtio_driver, virtio_device, virtqueue, scatterlist),
 * the probe/remove order (find_vqs, DRIVER_OK, reset, detach, del_vqs), a
 * reset the driver asks for at run time (reset, buffers back, del_vqs,
 * features again, find_vqs, DRIVER_OK) and a
 * per-device work item that the queue callbacks schedule; the driver's
 * logic is the Rust driver's, called through struct rvio_virtio_driver.
 *
 * Locking: start, process and the queue functions run with the device's
 * mutex held, so ring operations are serialized; queue callbacks only
 * schedule the work item (they may run in hard interrupt context).
 */
#ifndef RVIO_VIRTIO_GLUE_H
#define RVIO_VIRTIO_GLUE_H

#include <linux/types.h>

struct rvio_virtio;
struct scatterlist;
struct rvio_virtio_reg;

/* The most virtqueues a device may have. */
#define RVIO_VIRTIO_MAX_VQS 4

/* The driver's (Rust) callbacks and constants: one constant table per
 * driver type, which outlives its registration. */
struct rvio_virtio_driver {
	const char *name;
	u32 device_id;
	/* Device-specific feature bits the driver accepts (the virtio
	 * core's feature_table; the ring's transport features are
	 * negotiated besides). */
	const unsigned int *features;
	unsigned int nfeatures;
	/* At most RVIO_VIRTIO_MAX_VQS: every queue the driver knows. */
	unsigned int nvqs;
	const char *const *vq_names;
	/* Optional: how many of those queues (the first ones) a device with
	 * the negotiated @features has; nvqs if NULL. */
	unsigned int (*nvqs_for)(u64 features);
	/* Read the configuration space (rvio_virtio_cread) and hand the
	 * driver state over with rvio_virtio_set_state(). No queue access. */
	int (*probe)(struct rvio_virtio *v);
	/* The device is live (queues found, DRIVER_OK): post buffers. */
	void (*start)(void *state, struct rvio_virtio *v);
	/* A work pass (after a queue callback or rvio_virtio_schedule());
	 * return true to be called again. */
	bool (*process)(void *state, struct rvio_virtio *v);
	/* Optional (NULL: process): a pass from rvio_virtio_run_now(), in a
	 * writer's context, that only sends what waits (bounded); return
	 * true for a full pass from the work. */
	bool (*flush)(void *state, struct rvio_virtio *v);
	/* The device is going away (remove, before the reset; or a reset
	 * after which it did not come back): stop using anything outside
	 * the device; called once, lock held. */
	void (*stop)(void *state);
	/* A buffer the device never used, after reset (remove). */
	void (*free_token)(void *state, u16 idx, void *token);
	/* A reset the driver asked for (rvio_virtio_request_reset()), lock
	 * held: the device was reset (it touches no buffer any more); its
	 * buffers come back next (reclaim), then start follows with new
	 * queues (or, if the device does not come back, stop). */
	void (*reset)(void *state);
	/* Then, lock held: a buffer of queue @idx back from the device,
	 * used with @len bytes written, or never used (@len -1). */
	void (*reclaim)(void *state, u16 idx, void *token, long len);
	/* The device is gone: free the state. */
	void (*free)(void *state);
	/* Feature bits the driver turns down although the device offers
	 * them (checked at each probe). */
	u64 (*refused_features)(void);
};

/* Registers the driver @drv (pointed to until unregistration). ERR_PTR()
 * on failure, never NULL. */
struct rvio_virtio_reg *rvio_virtio_register(const struct rvio_virtio_driver *drv);
void rvio_virtio_unregister(struct rvio_virtio_reg *reg);

/* From probe only. */
int rvio_virtio_set_state(struct rvio_virtio *v, void *state);
/* Process context (may sleep), not from process(): the generation-checked
 * configuration space bytes at off. */
void rvio_virtio_cread(struct rvio_virtio *v, unsigned int off, void *buf,
		       unsigned int len);

const char *rvio_virtio_name(struct rvio_virtio *v);
/* The negotiated feature bits, and the number of queues found. */
u64 rvio_virtio_features(struct rvio_virtio *v);
unsigned int rvio_virtio_nvqs(struct rvio_virtio *v);
/* Ask for a work pass. Any context. */
void rvio_virtio_schedule(struct rvio_virtio *v);
/* A sending pass (drv->flush) now, in the caller's context, if the
 * device's lock is free and the task fit (else a work pass is scheduled):
 * for a sender that has just queued something, saving a hand-over to the
 * work. Process context, no lock of the driver's held (it tries the
 * device's lock); not from process(). Whoever stops the device's users
 * (remove, a failed reset) does so holding the lock, which this only
 * tries. */
void rvio_virtio_run_now(struct rvio_virtio *v);
/* Ask for a reset of the device, done by the next work pass: the device
 * forgets its rings, every posted buffer comes back (drv->reclaim), then
 * drv->reset and drv->start with new rings. Any context. */
void rvio_virtio_request_reset(struct rvio_virtio *v);
/* Ask for a work pass in RVIO_VIRTIO_RETRY_MS (memory was short: a pass
 * now would likely fail again). Any context. */
#define RVIO_VIRTIO_RETRY_MS 10
void rvio_virtio_retry_later(struct rvio_virtio *v);

/* Queue operations, from start/process only (mutex held). The token must
 * be non-NULL; on error it was not queued. add_in's two parts (either may
 * be empty) must be kmalloc memory (-EFAULT otherwise), one descriptor
 * each; add_out's may also be vmalloc memory (one
 * descriptor per page), at most RVIO_VIRTIO_MAX_SG descriptors in all
 * (-EMSGSIZE): a 4-byte header and a 64 KiB payload fit. */
#define RVIO_VIRTIO_MAX_SG 20
int rvio_virtio_add_in(struct rvio_virtio *v, u16 idx, void *hdr,
		       unsigned int hlen, void *buf, unsigned int len,
		       void *token);
int rvio_virtio_add_out(struct rvio_virtio *v, u16 idx, const void *hdr,
			unsigned int hlen, const void *buf, unsigned int len,
			void *token);
/*
 * One part of a chain for rvio_virtio_add_parts(): @len bytes at @buf
 * (kmalloc memory), or, if @sg is not NULL, the entries of scatterlist @sg
 * up to its end mark (memory the DMA API can map).
 */
struct rvio_virtio_part {
	void *buf;
	unsigned int len;
	struct scatterlist *sg;
};
#define RVIO_VIRTIO_MAX_PARTS 4
/*
 * Adds one chain to queue @idx: @readable device-readable parts, then
 * @writable device-writable parts (@parts has both, in that order; at
 * most RVIO_VIRTIO_MAX_PARTS). -ENOSPC: not enough descriptors now;
 * -EFAULT: a @buf is not kmalloc memory; -EINVAL; -ENOMEM; -EIO (broken
 * device). From start/process only (mutex held).
 */
int rvio_virtio_add_parts(struct rvio_virtio *v, u16 idx,
			  const struct rvio_virtio_part *parts,
			  unsigned int readable, unsigned int writable, void *token);
/*
 * Scatterlist checks, any context: the number of entries of @sg up to its
 * end mark (at most @max: -EINVAL beyond), their bytes in *@bytes.
 */
int rvio_virtio_sg_count(struct scatterlist *sg, unsigned int max, u64 *bytes);
/* Whether @p is kmalloc (directly mapped) memory. Any context. */
bool rvio_virtio_kmalloc_ok(const void *p);
void *rvio_virtio_get_buf(struct rvio_virtio *v, u16 idx, unsigned int *len);
void rvio_virtio_kick(struct rvio_virtio *v, u16 idx);
void rvio_virtio_disable_cb(struct rvio_virtio *v, u16 idx);
/* false: used buffers arrived meanwhile (process them before sleeping). */
bool rvio_virtio_enable_cb(struct rvio_virtio *v, u16 idx);
/* As enable_cb, but the callback comes once most of the buffers posted
 * now are used (with EVENT_IDX: 3/4 of them); false: many already are. */
bool rvio_virtio_enable_cb_delayed(struct rvio_virtio *v, u16 idx);
unsigned int rvio_virtio_num_free(struct rvio_virtio *v, u16 idx);
unsigned int rvio_virtio_vring_size(struct rvio_virtio *v, u16 idx);

#endif /* RVIO_VIRTIO_GLUE_H */
