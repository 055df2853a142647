// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's software vDPA device abstraction: see rust/vdpa_glue.h.
 * Linked into each module that offers a vDPA device (Kbuild), next to the
 * Rust half rust/vdpa.rs.
 *
 * Why C: 6.12's kernel crate has no vDPA, vringh or IOTLB abstraction;
 * struct vdpa_config_ops, the vdpa_alloc_device() embedding, vringh's
 * static inlines and the device's status/reset ordering under its lock
 * stay here until such abstractions exist; the rest is in Rust.
 *
 * Address translation: the device reaches the driver's buffers through
 * one IOTLB. A new device maps nothing. virtio_vdpa in the same kernel
 * hands over physical addresses: it asks for the DMA device of each queue
 * (get_vq_dma_dev) before any queue is ready, and that installs the
 * identity map until the next reset. vhost_vdpa never asks; it sends the
 * guest's memory map entry by entry (dma_map, dma_unmap; use_va = false)
 * and takes it back with reset_map, which leaves nothing mapped. So the
 * holder of a vhost-vdpa fd (an unprivileged QEMU, under libvirt) reaches
 * only what it mapped; the device holds a reference to each page of that
 * map until it is unmapped (pages_get()).
 *
 * The guest owns its rings and may write anything there at any time: the
 * device walks descriptor chains itself (walk_chain), bounded and checked,
 * and uses vringh only to copy and to complete. See docs/threat-model.md.
 */
#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/highmem.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/rwsem.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/vdpa.h>
#include <linux/vhost_iotlb.h>
#include <linux/vringh.h>
#include <linux/virtio_config.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <uapi/linux/vhost_types.h>

#include "inline_pass.h"
#include "vdpa_glue.h"

#define RVIO_VDPA_VQ_MAX 256
/*
 * Buffers per direction in one chain, and entries in one indirect table.
 * Linux makes an indirect table as long as its request (one entry per
 * scatterlist element), which can exceed a small queue: the bound is the
 * largest queue, not this one's.
 */
#define RVIO_VDPA_CHAIN_MAX 256
#define RVIO_VDPA_CONFIG_MAX 64
/* The longest a pass may be held by debugfs's pop_delay_ms. */
#define RVIO_VDPA_POP_DELAY_MAX_MS 10000U
/* How long a queue waits for the map before the log says why: a VMM
 * changes its map in steps (QEMU unmaps, then maps, in one batch that
 * reaches the device entry by entry), and a pass in between waits for a
 * moment without anything being wrong. */
#define RVIO_VDPA_STALL_WARN_MS 500
/*
 * The device's copy of the map has no bound of its own: it mirrors
 * vhost_vdpa's map entry by entry (dma_map), which vhost_vdpa bounds (its
 * max_iotlb_entries, 2048 unless raised), or holds the identity map. Each
 * entry costs the device one struct vhost_iotlb_map (72 bytes).
 */
#define RVIO_VDPA_IOTLB_MAX UINT_MAX
#define RVIO_VDPA_BASE_FEATURES \
	(BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(VIRTIO_F_ACCESS_PLATFORM))

struct rvio_vdpa_mgmt {
	struct vdpa_mgmt_dev mdev;
	struct virtio_device_id id_table[2];
	const struct rvio_vdpa_driver *drv;
	struct device *root;
	/* debugfs: <module>/<device>/ (state, and fault injection for tests) */
	struct dentry *debugfs;
	/* Devices not yet released, plus one for the registration: module
	 * exit drops its one and waits for the last release. */
	atomic_t live;
	struct completion released;
};

struct rvio_vdpa_vq {
	struct vringh vring;
	/* Each over an array of RVIO_VDPA_CHAIN_MAX kvecs allocated with the
	 * device: walking a chain allocates nothing. */
	struct vringh_kiov riov, wiov;
	struct vdpa_callback cb;
	u64 desc, driver, device;
	u32 num;
	u16 last_avail;	/* set_vq_state before the ring starts */
	u16 last_used;	/* below last_avail by the chains kept out */
	u16 head;	/* of the popped chain */
	bool ready;	/* driver: queue ready */
	bool started;	/* vring initialised from the addresses */
	bool broken;	/* the driver's ring is bad: stopped until reset */
	bool popped;	/* a chain is out (rvio_vdpa_vq_pop) */
	/* The last pop found the ring or a descriptor unmapped: waits for a
	 * kick or a map change, not for another pass (get_head()). */
	bool stalled;
	/* Since when (jiffies), why, and whether the log said so: once the
	 * wait lasts RVIO_VDPA_STALL_WARN_MS (rvio_vdpa_stall_work()). */
	bool stall_warned;
	unsigned long stall_since;
	char stall_why[256];
	/* Kicks since the device was added (debugfs "queues"): taken, or
	 * ignored (the queue not ready or the device not DRIVER_OK). */
	atomic_long_t kicks, kicks_ignored;
	unsigned long popped_total;	/* chains taken, under lock */
};

/* What the IOTLB holds. */
enum rvio_vdpa_map {
	MAP_NONE,	/* nothing: a new device, or after reset_map */
	MAP_IDENTITY,	/* physical addresses, for virtio_vdpa, until reset */
	MAP_VMM,	/* the VMM's map of its guest (dma_map) */
};

struct rvio_vdpa {
	struct vdpa_device vdpa;	/* first: the vdpa core kfree()s it */
	struct rvio_vdpa_mgmt *mgmt;
	struct mutex lock;		/* everything below, but the IOTLB */
	spinlock_t iotlb_lock;		/* iotlb (vringh takes it too) */
	struct vhost_iotlb iotlb;
	enum rvio_vdpa_map map;		/* changed under lock and map_sem */
	/* The driver's configuration interrupt, told of NEEDS_RESET;
	 * forgotten at reset, as its owner may go with the driver. */
	struct vdpa_callback config_cb;
	/* Read-held by every copy that translates through the IOTLB
	 * (rvio_vdpa_maps_lock), write-held by whatever changes the map or
	 * resets the device: no translation outlives a map. */
	struct rw_semaphore map_sem;
	struct work_struct work;
	struct delayed_work stall_work;	/* says why a queue waits */
	struct rvio_vdpa_vq vq[RVIO_VDPA_NVQS_MAX];
	u64 features;
	u8 status;			/* written under lock, read locklessly */
	bool suspended;
	unsigned long passes;		/* work passes run (debugfs) */
	/* Fault injection (debugfs): each chain taken holds the pass this
	 * long, under the device's lock, with its descriptors translated. */
	u32 pop_delay_ms;
	atomic_t pop_delays;		/* passes held so, read locklessly */
	struct dentry *debugfs;		/* this device's directory */
	void *state;			/* the Rust driver's */
	size_t config_len;
	u8 config[RVIO_VDPA_CONFIG_MAX];
};

static void rvio_vdpa_stall_work(struct work_struct *work);

static struct rvio_vdpa *to_r(const struct vdpa_device *vdpa)
{
	return container_of(vdpa, struct rvio_vdpa, vdpa);
}

static const struct rvio_vdpa_driver *drv_of(struct rvio_vdpa *r)
{
	return r->mgmt->drv;
}

static unsigned int nvqs_of(struct rvio_vdpa *r)
{
	return drv_of(r)->nvqs;
}

void rvio_vdpa_schedule(struct rvio_vdpa *r)
{
	queue_work(system_unbound_wq, &r->work);
}

u64 rvio_vdpa_features(struct rvio_vdpa *r)
{
	lockdep_assert_held(&r->lock);
	return r->features;
}

const char *rvio_vdpa_name(struct rvio_vdpa *r)
{
	return dev_name(&r->vdpa.dev);
}

/* A pass (@send_only: the driver's flush), lock held; returns whether a
 * (full) pass is wanted. */
static bool rvio_vdpa_pass(struct rvio_vdpa *r, bool send_only)
{
	lockdep_assert_held(&r->lock);
	if (!(r->status & VIRTIO_CONFIG_S_DRIVER_OK) || r->suspended || !r->state)
		return false;
	r->passes++;
	if (send_only && drv_of(r)->flush)
		return drv_of(r)->flush(r->state, r);
	return drv_of(r)->process(r->state, r);
}

static void rvio_vdpa_work(struct work_struct *work)
{
	struct rvio_vdpa *r = container_of(work, struct rvio_vdpa, work);
	bool more;

	mutex_lock(&r->lock);
	more = rvio_vdpa_pass(r, false);
	mutex_unlock(&r->lock);
	/* Bounded passes: yield the CPU between them. */
	if (more)
		rvio_vdpa_schedule(r);
}

void rvio_vdpa_run_now(struct rvio_vdpa *r)
{
	bool more;

	/* Busy (a pass, a status change, dev_del, whose remove closes the
	 * core's gate with the lock held: never wait for it here), or a
	 * writer that should not hold the lock: the work's. */
	if (!rvio_may_pass_inline() || !mutex_trylock(&r->lock)) {
		rvio_vdpa_schedule(r);
		return;
	}
	more = rvio_vdpa_pass(r, true);
	mutex_unlock(&r->lock);
	if (more)
		rvio_vdpa_schedule(r);
}

/* --- virtqueues ----------------------------------------------------------- */

static long vq_index(struct rvio_vdpa *r, struct rvio_vdpa_vq *vq)
{
	return vq - r->vq;
}

/*
 * The driver's ring is unusable: the queue stops until the driver resets
 * the device, and the driver is told as virtio 1.x says (DEVICE_NEEDS_RESET
 * in the status, then a configuration change interrupt).
 */
static void vq_break(struct rvio_vdpa *r, struct rvio_vdpa_vq *vq)
{
	lockdep_assert_held(&r->lock);
	vq->broken = true;
	if (r->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	WRITE_ONCE(r->status, r->status | VIRTIO_CONFIG_S_NEEDS_RESET);
	/* vhost_vdpa signals an eventfd, virtio_vdpa calls its driver's
	 * config_changed under a spinlock: either is fine under our mutex. */
	if (r->config_cb.callback)
		r->config_cb.callback(r->config_cb.private);
}

/* Why the driver's queue size or ring addresses are unusable, or NULL. */
static const char *ring_fault(const struct rvio_vdpa_vq *vq)
{
	if (!vq->num || vq->num > RVIO_VDPA_VQ_MAX || !is_power_of_2(vq->num))
		return "size not a power of two up to 256";
	/* virtio 1.x 2.7.10.1: descriptors 16, available ring 2, used ring 4. */
	if (!IS_ALIGNED(vq->desc, 16) || !IS_ALIGNED(vq->driver, 2) ||
	    !IS_ALIGNED(vq->device, 4))
		return "ring not aligned";
	return NULL;
}

static void vq_start(struct rvio_vdpa *r, struct rvio_vdpa_vq *vq)
{
	const char *why = ring_fault(vq);
	int ret;

	lockdep_assert_held(&r->lock);
	if (why) {
		dev_warn_ratelimited(&r->vdpa.dev,
				     "queue %ld: %s (size %u, rings at %#llx, %#llx, %#llx): queue stopped until reset\n",
				     vq_index(r, vq), why, vq->num, vq->desc,
				     vq->driver, vq->device);
		vq_break(r, vq);
		return;
	}
	ret = vringh_init_iotlb(&vq->vring, r->features, vq->num, false,
				(struct vring_desc *)(uintptr_t)vq->desc,
				(struct vring_avail *)(uintptr_t)vq->driver,
				(struct vring_used *)(uintptr_t)vq->device);
	if (ret) {
		dev_warn_ratelimited(&r->vdpa.dev, "queue %ld: bad ring (num %u): %d\n",
				     vq_index(r, vq), vq->num, ret);
		vq_break(r, vq);
		return;
	}
	/* vringh_init zeroes the indexes: restore set_vq_state's, or those
	 * of a queue stopped with chains kept out (rvio_vdpa_vq_keep), which
	 * it completes later. */
	vq->vring.last_avail_idx = vq->last_avail;
	vq->vring.last_used_idx = vq->last_used;
	vq->started = true;
}

/* Interrupts the driver for completions vringh has not notified yet: a
 * restart (vq_start) forgets them. */
static void vq_flush_notify(struct rvio_vdpa_vq *vq)
{
	if (!vq->started || vq->broken || !vq->vring.completed)
		return;
	local_bh_disable();
	if (vringh_need_notify_iotlb(&vq->vring) > 0 && vq->cb.callback)
		vq->cb.callback(vq->cb.private);
	local_bh_enable();
}

static void vq_stop(struct rvio_vdpa_vq *vq)
{
	if (vq->started) {
		vq->last_avail = vq->vring.last_avail_idx;
		/* vringh counts completions not yet notified apart. */
		vq->last_used = vq->vring.last_used_idx + vq->vring.completed;
	}
	vq->started = false;
	vq->popped = false;
	vq->stalled = false;
}

/* Chains the device took and has not used: kept out (rvio_vdpa_vq_keep),
 * or the one popped; for a stopped queue (disabled by the VMM), what
 * vq_stop() saved (0 after a reset or set_vq_state). */
static u16 vq_out(const struct rvio_vdpa_vq *vq)
{
	if (!vq->started)
		return vq->last_avail - vq->last_used;
	return vq->vring.last_avail_idx -
	       (u16)(vq->vring.last_used_idx + vq->vring.completed);
}

static int rvio_vdpa_set_vq_address(struct vdpa_device *vdpa, u16 idx,
				    u64 desc, u64 driver, u64 device)
{
	struct rvio_vdpa *r = to_r(vdpa);

	if (idx >= nvqs_of(r))
		return -EINVAL;
	mutex_lock(&r->lock);
	r->vq[idx].desc = desc;
	r->vq[idx].driver = driver;
	r->vq[idx].device = device;
	mutex_unlock(&r->lock);
	return 0;
}

static void rvio_vdpa_set_vq_num(struct vdpa_device *vdpa, u16 idx, u32 num)
{
	struct rvio_vdpa *r = to_r(vdpa);

	if (idx >= nvqs_of(r))
		return;
	/* Checked when the queue starts (a driver may set the size before
	 * it knows the maximum); warned of here. */
	if (!num || num > RVIO_VDPA_VQ_MAX || !is_power_of_2(num))
		dev_warn_ratelimited(&vdpa->dev,
				     "queue %u: size %u is not a power of two up to %u: the queue will not start\n",
				     idx, num, RVIO_VDPA_VQ_MAX);
	mutex_lock(&r->lock);
	r->vq[idx].num = num;
	mutex_unlock(&r->lock);
}

static void rvio_vdpa_kick_vq(struct vdpa_device *vdpa, u16 idx)
{
	struct rvio_vdpa *r = to_r(vdpa);

	/* Any context (virtqueue_kick under the driver's locks): no lock. */
	if (idx >= nvqs_of(r))
		return;
	if (READ_ONCE(r->vq[idx].ready) &&
	    (READ_ONCE(r->status) & VIRTIO_CONFIG_S_DRIVER_OK)) {
		atomic_long_inc(&r->vq[idx].kicks);
		rvio_vdpa_schedule(r);
	} else {
		atomic_long_inc(&r->vq[idx].kicks_ignored);
	}
}

static void rvio_vdpa_set_vq_cb(struct vdpa_device *vdpa, u16 idx,
				struct vdpa_callback *cb)
{
	struct rvio_vdpa *r = to_r(vdpa);

	if (idx >= nvqs_of(r))
		return;
	mutex_lock(&r->lock);
	r->vq[idx].cb = *cb;
	mutex_unlock(&r->lock);
}

static void rvio_vdpa_set_vq_ready(struct vdpa_device *vdpa, u16 idx, bool ready)
{
	struct rvio_vdpa *r = to_r(vdpa);
	struct rvio_vdpa_vq *vq;

	if (idx >= nvqs_of(r))
		return;
	vq = &r->vq[idx];
	mutex_lock(&r->lock);
	if (ready && !vq->ready)
		vq_start(r, vq);
	else if (!ready)
		vq_stop(vq);
	WRITE_ONCE(vq->ready, ready);
	mutex_unlock(&r->lock);
	if (ready)
		rvio_vdpa_schedule(r);
}

static bool rvio_vdpa_get_vq_ready(struct vdpa_device *vdpa, u16 idx)
{
	return idx < nvqs_of(to_r(vdpa)) && READ_ONCE(to_r(vdpa)->vq[idx].ready);
}

static int rvio_vdpa_set_vq_state(struct vdpa_device *vdpa, u16 idx,
				  const struct vdpa_vq_state *state)
{
	struct rvio_vdpa *r = to_r(vdpa);
	struct rvio_vdpa_vq *vq;

	if (idx >= nvqs_of(r))
		return -EINVAL;
	vq = &r->vq[idx];
	mutex_lock(&r->lock);
	/* The used index follows the available index set here: a chain the
	 * device still holds would be used beyond the driver's used ring.
	 * (vhost_vdpa allows this only before DRIVER_OK or while suspended,
	 * and a suspend uses every chain; a broken queue's chains stay out
	 * until the reset its driver was asked for.) */
	if (vq_out(vq)) {
		dev_warn_ratelimited(&vdpa->dev, "queue %u: state set with %u chains out: refused\n",
				     idx, vq_out(vq));
		mutex_unlock(&r->lock);
		return -EBUSY;
	}
	vq->last_avail = state->split.avail_index;
	vq->last_used = state->split.avail_index;
	if (vq->started) {
		vq->vring.last_avail_idx = vq->last_avail;
		vq->vring.last_used_idx = vq->last_avail;
		vq->vring.completed = 0;
	}
	mutex_unlock(&r->lock);
	return 0;
}

static int rvio_vdpa_get_vq_state(struct vdpa_device *vdpa, u16 idx,
				  struct vdpa_vq_state *state)
{
	struct rvio_vdpa *r = to_r(vdpa);
	struct rvio_vdpa_vq *vq;

	if (idx >= nvqs_of(r))
		return -EINVAL;
	vq = &r->vq[idx];
	/* Under the lock no chain is popped; chains kept out
	 * (rvio_vdpa_vq_keep) are used at suspend, so a suspended device's
	 * used index is its available index (what a VMM restores both from).
	 * A VMM that reads the state without suspending gets the available
	 * index and should not trust it (QEMU does not). */
	mutex_lock(&r->lock);
	state->split.avail_index = vq->started ? vq->vring.last_avail_idx : vq->last_avail;
	mutex_unlock(&r->lock);
	return 0;
}

static u32 rvio_vdpa_get_vq_align(struct vdpa_device *vdpa)
{
	return PAGE_SIZE;
}

static u16 rvio_vdpa_get_vq_num_max(struct vdpa_device *vdpa)
{
	return RVIO_VDPA_VQ_MAX;
}

/* --- features, status, reset, configuration space -------------------------- */

static u64 rvio_vdpa_get_device_features(struct vdpa_device *vdpa)
{
	return RVIO_VDPA_BASE_FEATURES | drv_of(to_r(vdpa))->features;
}

static u64 rvio_vdpa_get_backend_features(const struct vdpa_device *vdpa)
{
	return BIT_ULL(VHOST_BACKEND_F_ENABLE_AFTER_DRIVER_OK);
}

static int rvio_vdpa_set_driver_features(struct vdpa_device *vdpa, u64 features)
{
	struct rvio_vdpa *r = to_r(vdpa);

	/* The vdpa core calls this with 0 when the configuration space is
	 * read before negotiation: refuse that like any other set without
	 * ACCESS_PLATFORM (the driver must use the DMA API). */
	if (!(features & BIT_ULL(VIRTIO_F_ACCESS_PLATFORM)))
		return -EINVAL;
	/* The rings are read as little-endian (walk_chain): no legacy. */
	if (!(features & BIT_ULL(VIRTIO_F_VERSION_1)))
		return -EINVAL;
	mutex_lock(&r->lock);
	r->features = features & rvio_vdpa_get_device_features(vdpa);
	mutex_unlock(&r->lock);
	return 0;
}

static u64 rvio_vdpa_get_driver_features(struct vdpa_device *vdpa)
{
	struct rvio_vdpa *r = to_r(vdpa);
	u64 f;

	mutex_lock(&r->lock);
	f = r->features;
	mutex_unlock(&r->lock);
	return f;
}

static void rvio_vdpa_set_config_cb(struct vdpa_device *vdpa,
				    struct vdpa_callback *cb)
{
	struct rvio_vdpa *r = to_r(vdpa);

	/* The configuration space never changes; the status may gain
	 * NEEDS_RESET (vq_break). A driver that sets its callback after the
	 * queue broke (QEMU sets it after DRIVER_OK) is told at once. */
	mutex_lock(&r->lock);
	r->config_cb = *cb;
	if (cb->callback && (r->status & VIRTIO_CONFIG_S_NEEDS_RESET))
		cb->callback(cb->private);
	mutex_unlock(&r->lock);
}

static u32 rvio_vdpa_get_device_id(struct vdpa_device *vdpa)
{
	return drv_of(to_r(vdpa))->device_id;
}

static u32 rvio_vdpa_get_vendor_id(struct vdpa_device *vdpa)
{
	return 0;
}

static u8 rvio_vdpa_get_status(struct vdpa_device *vdpa)
{
	return READ_ONCE(to_r(vdpa)->status);
}

/* With the lock held. A queued work pass finds status 0 and does nothing,
 * and none runs while we hold the lock: after this, no callback runs and no
 * driver memory is touched. */
static void do_reset(struct rvio_vdpa *r)
{
	int i;

	lockdep_assert_held(&r->lock);
	for (i = 0; i < RVIO_VDPA_NVQS_MAX; i++) {
		struct rvio_vdpa_vq *vq = &r->vq[i];

		vq_stop(vq);
		WRITE_ONCE(vq->ready, false);
		vq->broken = false;
		vq->desc = vq->driver = vq->device = 0;
		vq->num = 0;
		vq->last_avail = 0;
		vq->last_used = 0;
		memset(&vq->cb, 0, sizeof(vq->cb));
	}
	r->features = 0;
	r->suspended = false;
	memset(&r->config_cb, 0, sizeof(r->config_cb));
	WRITE_ONCE(r->status, 0);
	if (r->state)
		drv_of(r)->reset(r->state);
}

/* do_reset() once no copy translates through the device's map any more
 * (copies from its grants and into its buffers wait: lock order r->lock,
 * then map_sem). */
static void unmap_all(struct rvio_vdpa *r);

static void do_reset_locked(struct rvio_vdpa *r)
{
	down_write(&r->map_sem);
	do_reset(r);
	/* virtio_vdpa asks for the identity map again before its queues
	 * start (get_vq_dma_dev); a VMM's map stays, as vhost_vdpa expects. */
	if (r->map != MAP_VMM)
		unmap_all(r);
	up_write(&r->map_sem);
}

static void rvio_vdpa_set_status(struct vdpa_device *vdpa, u8 status)
{
	struct rvio_vdpa *r = to_r(vdpa);
	bool start;

	mutex_lock(&r->lock);
	if (!status) {
		do_reset_locked(r);
		mutex_unlock(&r->lock);
		return;
	}
	start = !(r->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
		(status & VIRTIO_CONFIG_S_DRIVER_OK);
	/* The device's bit: a driver writing back a status it read before
	 * the queue broke does not clear it; only a reset does. */
	status |= r->status & VIRTIO_CONFIG_S_NEEDS_RESET;
	WRITE_ONCE(r->status, status);
	if (start && r->state)
		drv_of(r)->start(r->state, r);
	mutex_unlock(&r->lock);
	if (start)
		rvio_vdpa_schedule(r);
}

static int rvio_vdpa_reset(struct vdpa_device *vdpa)
{
	struct rvio_vdpa *r = to_r(vdpa);

	mutex_lock(&r->lock);
	do_reset_locked(r);
	mutex_unlock(&r->lock);
	return 0;
}

static int rvio_vdpa_suspend(struct vdpa_device *vdpa)
{
	struct rvio_vdpa *r = to_r(vdpa);

	int i;

	/* A work pass in progress holds the lock: it is over on return. */
	mutex_lock(&r->lock);
	if (r->suspended) {
		mutex_unlock(&r->lock);
		return 0;
	}
	r->suspended = true;
	if ((r->status & VIRTIO_CONFIG_S_DRIVER_OK) && r->state &&
	    drv_of(r)->suspend)
		drv_of(r)->suspend(r->state, r);
	for (i = 0; i < RVIO_VDPA_NVQS_MAX; i++) {
		struct rvio_vdpa_vq *vq = &r->vq[i];

		/* A driver bug, or a queue the VMM disabled with chains out
		 * (they cannot be used any more): the VMM would restore a used
		 * index beyond what the driver's ring holds. (A broken queue
		 * waits for the reset its driver was asked for.) */
		if (!vq->broken && vq_out(vq))
			dev_warn_ratelimited(&vdpa->dev, "queue %d: %u chains still out at suspend\n",
					     i, vq_out(vq));
		vq_flush_notify(vq);
	}
	mutex_unlock(&r->lock);
	return 0;
}

static int rvio_vdpa_resume(struct vdpa_device *vdpa)
{
	struct rvio_vdpa *r = to_r(vdpa);
	int i;

	mutex_lock(&r->lock);
	r->suspended = false;
	/* Ring addresses may have changed while suspended. */
	for (i = 0; i < RVIO_VDPA_NVQS_MAX; i++) {
		if (r->vq[i].ready) {
			vq_flush_notify(&r->vq[i]);
			vq_stop(&r->vq[i]);
			vq_start(r, &r->vq[i]);
		}
	}
	if ((r->status & VIRTIO_CONFIG_S_DRIVER_OK) && r->state &&
	    drv_of(r)->resume)
		drv_of(r)->resume(r->state, r);
	mutex_unlock(&r->lock);
	rvio_vdpa_schedule(r);
	return 0;
}

static size_t rvio_vdpa_get_config_size(struct vdpa_device *vdpa)
{
	return to_r(vdpa)->config_len;
}

static void rvio_vdpa_get_config(struct vdpa_device *vdpa, unsigned int offset,
				 void *buf, unsigned int len)
{
	struct rvio_vdpa *r = to_r(vdpa);

	/* Immutable after dev_add: no lock. Reads past the end get zeroes. */
	memset(buf, 0, len);
	if (offset < r->config_len)
		memcpy(buf, r->config + offset, min_t(size_t, len, r->config_len - offset));
}

static void rvio_vdpa_set_config(struct vdpa_device *vdpa, unsigned int offset,
				 const void *buf, unsigned int len)
{
	dev_warn_ratelimited(&vdpa->dev,
			     "driver wrote %u bytes at %u of the read-only configuration space: ignored\n",
			     len, offset);
}

/* --- address translation ---------------------------------------------------- */

static int identity_map(struct rvio_vdpa *r)
{
	int ret;

	lockdep_assert_held(&r->iotlb_lock);
	vhost_iotlb_reset(&r->iotlb);
	/* Two entries (vhost_iotlb splits the whole space): none if the
	 * second cannot be made. */
	ret = vhost_iotlb_add_range(&r->iotlb, 0, ULONG_MAX, 0, VHOST_MAP_RW);
	if (ret)
		vhost_iotlb_reset(&r->iotlb);
	return ret;
}

/*
 * Only virtio_vdpa asks (for each queue, before any is ready): a driver in
 * this kernel, which hands the device physical addresses from the DMA API
 * on this device (direct mapping). vhost_vdpa never asks, so a VMM never
 * gets the identity map.
 */
static struct device *rvio_vdpa_get_vq_dma_dev(struct vdpa_device *vdpa, u16 idx)
{
	struct rvio_vdpa *r = to_r(vdpa);
	int ret = 0;

	mutex_lock(&r->lock);
	if (r->map == MAP_NONE) {
		down_write(&r->map_sem);
		spin_lock(&r->iotlb_lock);
		ret = identity_map(r);
		spin_unlock(&r->iotlb_lock);
		r->map = ret ? MAP_NONE : MAP_IDENTITY;
		up_write(&r->map_sem);
	}
	mutex_unlock(&r->lock);
	if (ret)
		dev_warn(&vdpa->dev, "identity map failed (%d): the queues will not start\n",
			 ret);
	return &vdpa->dev;
}

/*
 * The pages of a VMM's map entry, held by the device for as long as the
 * entry is in its map. vhost_vdpa unpins a range before it tells the
 * device (vhost_vdpa_pa_unmap() calls dma_unmap after unpin_user_page()),
 * and a work pass in flight may still copy into it until dma_unmap has
 * the device's mutex: with the device's own references those pages stay
 * the guest's, unfreed, until then. vhost_vdpa pins struct pages (PA
 * mode), so every frame has one.
 */
static void pages_put_upto(unsigned long first, unsigned long end, bool dirty)
{
	unsigned long pfn;

	for (pfn = first; pfn < end; pfn++) {
		struct page *page = pfn_to_page(pfn);

		/* As vhost_vdpa does before it unpins: the device may have
		 * written it since. */
		if (dirty)
			set_page_dirty_lock(page);
		put_page(page);
		cond_resched();
	}
}

static int pages_get(u64 pa, u64 size)
{
	unsigned long pfn, first = PHYS_PFN(pa), last = PHYS_PFN(pa + size - 1);

	for (pfn = first; pfn <= last; pfn++) {
		struct page *page = pfn_to_online_page(pfn);

		if (!page || !try_get_page(page)) {
			pages_put_upto(first, pfn, false);
			return -EFAULT;
		}
		cond_resched();
	}
	return 0;
}

static void pages_put(u64 pa, u64 size, u32 perm)
{
	pages_put_upto(PHYS_PFN(pa), PHYS_PFN(pa + size - 1) + 1, perm & VHOST_MAP_WO);
}

/* Removes the entries over [start, last], and gives a VMM's entries' pages
 * back. With the mutex and map_sem held: no translation is in flight. */
static void unmap_range(struct rvio_vdpa *r, u64 start, u64 last)
{
	for (;;) {
		struct vhost_iotlb_map *map;
		u64 pa = 0, size = 0;
		u32 perm = 0;

		spin_lock(&r->iotlb_lock);
		map = vhost_iotlb_itree_first(&r->iotlb, start, last);
		if (map) {
			pa = map->addr;
			size = map->size;
			perm = map->perm;
			vhost_iotlb_map_free(&r->iotlb, map);
		}
		spin_unlock(&r->iotlb_lock);
		if (!map)
			return;
		if (r->map == MAP_VMM)
			pages_put(pa, size, perm);
	}
}

/* Whether a queue waits for the map to change (vq->stalled). Mutex held. */
static bool any_stalled(struct rvio_vdpa *r)
{
	int i;

	lockdep_assert_held(&r->lock);
	for (i = 0; i < RVIO_VDPA_NVQS_MAX; i++)
		if (r->vq[i].stalled)
			return true;
	return false;
}

/* Unmaps everything: MAP_NONE. Mutex and map_sem held. */
static void unmap_all(struct rvio_vdpa *r)
{
	unmap_range(r, 0, U64_MAX);
	r->map = MAP_NONE;
}

/*
 * The VMM's map, one range at a time, as vhost_vdpa receives it (a device
 * with dma_map gets each IOTLB update, in a batch or not): an update costs
 * a lookup, a refused one fails the VMM's own IOTLB message (vhost_vdpa
 * unpins it and returns the error to the VMM) and leaves the rest of the
 * map as it was. The alternative, set_map, hands over the whole map after
 * every update outside a batch, and its error is ignored at a batch's end.
 * A batch is no longer applied at once: a queue whose rings or buffers
 * are unmapped meanwhile waits (walk_chain()), and the next entry mapped
 * schedules a pass for it.
 *
 * The device's mutex first: a work pass in flight (which holds it, and
 * whose vringh copies translate through the map) is over before the map
 * changes, and the next one sees only the new map. Then map_sem, for the
 * copies between devices, which do not hold this device's mutex.
 */
static int rvio_vdpa_dma_map(struct vdpa_device *vdpa, unsigned int asid,
			     u64 iova, u64 size, u64 pa, u32 perm, void *opaque)
{
	struct rvio_vdpa *r = to_r(vdpa);
	bool retry;
	int ret;

	if (asid)
		return -EINVAL;
	if (!size || iova + size - 1 < iova || pa + size - 1 < pa)
		return -EINVAL;
	mutex_lock(&r->lock);
	down_write(&r->map_sem);
	/* Nothing, or virtio_vdpa's identity map, which is no VMM's. */
	if (r->map != MAP_VMM) {
		unmap_all(r);
		r->map = MAP_VMM;
	}
	ret = pages_get(pa, size);
	if (!ret) {
		spin_lock(&r->iotlb_lock);
		ret = vhost_iotlb_add_range(&r->iotlb, iova, iova + size - 1, pa, perm);
		spin_unlock(&r->iotlb_lock);
		if (ret)
			pages_put(pa, size, 0);
	}
	retry = any_stalled(r);
	up_write(&r->map_sem);
	mutex_unlock(&r->lock);
	if (ret)
		dev_warn_ratelimited(&vdpa->dev,
				     "memory map entry [%#llx, +%#llx) refused (%d); the rest of the map stays\n",
				     iova, size, ret);
	else if (retry)
		rvio_vdpa_schedule(r);
	return ret;
}

static int rvio_vdpa_dma_unmap(struct vdpa_device *vdpa, unsigned int asid,
			       u64 iova, u64 size)
{
	struct rvio_vdpa *r = to_r(vdpa);

	if (asid)
		return -EINVAL;
	if (!size || iova + size - 1 < iova)
		return -EINVAL;
	mutex_lock(&r->lock);
	down_write(&r->map_sem);
	if (r->map == MAP_VMM)
		unmap_range(r, iova, iova + size - 1);
	up_write(&r->map_sem);
	mutex_unlock(&r->lock);
	return 0;
}

/* vhost_vdpa takes its map back (release): nothing stays mapped. */
static int rvio_vdpa_reset_map(struct vdpa_device *vdpa, unsigned int asid)
{
	struct rvio_vdpa *r = to_r(vdpa);

	if (asid)
		return -EINVAL;
	mutex_lock(&r->lock);
	down_write(&r->map_sem);
	unmap_all(r);
	up_write(&r->map_sem);
	mutex_unlock(&r->lock);
	return 0;
}

/* --- lifetime ---------------------------------------------------------------- */

static void rvio_vdpa_free(struct vdpa_device *vdpa)
{
	struct rvio_vdpa *r = to_r(vdpa);
	struct rvio_vdpa_mgmt *m = r->mgmt;
	int i;

	void *state;

	/* No work pass uses the state after this; then free it (the driver
	 * stops whatever may still schedule us) and wait for any queued pass,
	 * which finds no state. */
	mutex_lock(&r->lock);
	state = r->state;
	r->state = NULL;
	mutex_unlock(&r->lock);
	if (state)
		m->drv->free(state);
	cancel_work_sync(&r->work);
	/* No pass starts a wait any more; the work rearms itself. */
	cancel_delayed_work_sync(&r->stall_work);
	for (i = 0; i < RVIO_VDPA_NVQS_MAX; i++) {
		kfree(r->vq[i].riov.iov);
		kfree(r->vq[i].wiov.iov);
	}
	/* The last reference: nothing else runs. A VMM's map is gone by now
	 * (vhost_vdpa unmaps at release), but give its pages back if not. */
	unmap_all(r);
	/* The vdpa core kfree()s r after this returns. */
	if (atomic_dec_and_test(&m->live))
		complete(&m->released);
}

static const struct vdpa_config_ops rvio_vdpa_ops = {
	.set_vq_address		= rvio_vdpa_set_vq_address,
	.set_vq_num		= rvio_vdpa_set_vq_num,
	.kick_vq		= rvio_vdpa_kick_vq,
	.set_vq_cb		= rvio_vdpa_set_vq_cb,
	.set_vq_ready		= rvio_vdpa_set_vq_ready,
	.get_vq_ready		= rvio_vdpa_get_vq_ready,
	.set_vq_state		= rvio_vdpa_set_vq_state,
	.get_vq_state		= rvio_vdpa_get_vq_state,
	.get_vq_align		= rvio_vdpa_get_vq_align,
	.get_device_features	= rvio_vdpa_get_device_features,
	.get_backend_features	= rvio_vdpa_get_backend_features,
	.set_driver_features	= rvio_vdpa_set_driver_features,
	.get_driver_features	= rvio_vdpa_get_driver_features,
	.set_config_cb		= rvio_vdpa_set_config_cb,
	.get_vq_num_max		= rvio_vdpa_get_vq_num_max,
	.get_device_id		= rvio_vdpa_get_device_id,
	.get_vendor_id		= rvio_vdpa_get_vendor_id,
	.get_status		= rvio_vdpa_get_status,
	.set_status		= rvio_vdpa_set_status,
	.reset			= rvio_vdpa_reset,
	.suspend		= rvio_vdpa_suspend,
	.resume			= rvio_vdpa_resume,
	.get_config_size	= rvio_vdpa_get_config_size,
	.get_config		= rvio_vdpa_get_config,
	.set_config		= rvio_vdpa_set_config,
	.dma_map		= rvio_vdpa_dma_map,
	.dma_unmap		= rvio_vdpa_dma_unmap,
	.reset_map		= rvio_vdpa_reset_map,
	.get_vq_dma_dev		= rvio_vdpa_get_vq_dma_dev,
	.free			= rvio_vdpa_free,
};

int rvio_vdpa_set_state(struct rvio_vdpa *r, void *state, const void *config,
			size_t config_len)
{
	if (r->state || !state || config_len > sizeof(r->config))
		return -EINVAL;
	memcpy(r->config, config, config_len);
	r->config_len = config_len;
	r->state = state;
	return 0;
}

/*
 * Fault injection (debugfs, root only): writing a queue's index to
 * <debugfs>/<module>/<device>/break_queue breaks that started queue as a
 * bad ring would (DEVICE_NEEDS_RESET, the driver's configuration
 * interrupt), so that tests can check that a driver recovers. Writing a
 * number of milliseconds to pop_delay_ms makes each chain taken hold its
 * work pass that long (up to 10 s) under the device's lock, as a preempted
 * pass would, and counts in pop_delays (read without that lock): tests
 * time a map change or reset against it.
 */
static ssize_t break_queue_write(struct file *file, const char __user *ubuf,
				 size_t count, loff_t *ppos)
{
	struct rvio_vdpa *r = file->private_data;
	u16 idx;
	int ret;

	ret = kstrtou16_from_user(ubuf, count, 0, &idx);
	if (ret)
		return ret;
	if (idx >= nvqs_of(r))
		return -EINVAL;
	mutex_lock(&r->lock);
	if (!(r->status & VIRTIO_CONFIG_S_DRIVER_OK) || !r->vq[idx].started ||
	    r->vq[idx].broken) {
		mutex_unlock(&r->lock);
		return -EBUSY;
	}
	dev_warn(&r->vdpa.dev, "queue %u: broken through debugfs (fault injection): queue stopped until reset\n",
		 idx);
	vq_break(r, &r->vq[idx]);
	mutex_unlock(&r->lock);
	return count;
}

static const struct file_operations break_queue_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = break_queue_write,
};

/*
 * <debugfs>/<module>/<device>/queues: the device's state and each queue's,
 * for whoever wonders why a queue is not served.
 */
static int queues_show(struct seq_file *s, void *unused)
{
	struct rvio_vdpa *r = s->private;
	static const char *const maps[] = {
		[MAP_NONE] = "none", [MAP_IDENTITY] = "identity", [MAP_VMM] = "vmm",
	};
	unsigned int i;

	mutex_lock(&r->lock);
	seq_printf(s, "status %#x suspended %d passes %lu map %s pop_delay_ms %u\n",
		   r->status, r->suspended, r->passes, maps[r->map],
		   READ_ONCE(r->pop_delay_ms));
	for (i = 0; i < nvqs_of(r); i++) {
		struct rvio_vdpa_vq *vq = &r->vq[i];

		seq_printf(s, "queue %u: num %u ready %d started %d broken %d stalled %d out %u avail %u used %u taken %lu kicks %ld ignored %ld\n",
			   i, vq->num, vq->ready, vq->started, vq->broken,
			   vq->stalled, vq_out(vq),
			   vq->started ? vq->vring.last_avail_idx : vq->last_avail,
			   vq->started ? (u16)(vq->vring.last_used_idx + vq->vring.completed) :
					 vq->last_used,
			   vq->popped_total, atomic_long_read(&vq->kicks),
			   atomic_long_read(&vq->kicks_ignored));
	}
	mutex_unlock(&r->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(queues);

static int rvio_vdpa_dev_add(struct vdpa_mgmt_dev *mdev, const char *name,
			     const struct vdpa_dev_set_config *config)
{
	struct rvio_vdpa_mgmt *m = container_of(mdev, struct rvio_vdpa_mgmt, mdev);
	struct rvio_vdpa *r;
	int i, ret;

	if (m->drv->nvqs < 1 || m->drv->nvqs > RVIO_VDPA_NVQS_MAX)
		return -EINVAL;
	r = vdpa_alloc_device(struct rvio_vdpa, vdpa, NULL, &rvio_vdpa_ops,
			      1, 1, name, false);
	if (IS_ERR(r))
		return PTR_ERR(r);
	/* From here on, errors go through put_device() and so ->free. */
	r->mgmt = m;
	atomic_inc(&m->live);
	mutex_init(&r->lock);
	spin_lock_init(&r->iotlb_lock);
	init_rwsem(&r->map_sem);
	INIT_WORK(&r->work, rvio_vdpa_work);
	INIT_DELAYED_WORK(&r->stall_work, rvio_vdpa_stall_work);
	/* Nothing mapped (MAP_NONE) until a driver asks: see the top. */
	vhost_iotlb_init(&r->iotlb, RVIO_VDPA_IOTLB_MAX, 0);
	for (i = 0; i < m->drv->nvqs; i++) {
		struct rvio_vdpa_vq *vq = &r->vq[i];
		struct kvec *rd, *wr;

		vringh_set_iotlb(&vq->vring, &r->iotlb, &r->iotlb_lock);
		rd = kmalloc_array(RVIO_VDPA_CHAIN_MAX, sizeof(*rd), GFP_KERNEL);
		wr = kmalloc_array(RVIO_VDPA_CHAIN_MAX, sizeof(*wr), GFP_KERNEL);
		/* Set even if one failed: ->free frees both. */
		vringh_kiov_init(&vq->riov, rd, rd ? RVIO_VDPA_CHAIN_MAX : 0);
		vringh_kiov_init(&vq->wiov, wr, wr ? RVIO_VDPA_CHAIN_MAX : 0);
		if (!rd || !wr) {
			ret = -ENOMEM;
			goto put;
		}
	}

	/* virtio_vdpa maps the driver's buffers with the DMA API on this
	 * device: direct mapping, so the device sees physical addresses. */
	r->vdpa.dma_dev = &r->vdpa.dev;
	r->vdpa.dev.dma_mask = &r->vdpa.dev.coherent_dma_mask;
	ret = dma_set_mask_and_coherent(&r->vdpa.dev, DMA_BIT_MASK(64));
	if (ret)
		goto put;
	r->vdpa.mdev = mdev;

	ret = m->drv->dev_add(r, name);
	if (!ret && !r->state)
		ret = -EINVAL;
	if (ret)
		goto put;
	/* Drivers may probe inside this call: everything is ready. */
	ret = _vdpa_register_device(&r->vdpa, m->drv->nvqs);
	if (ret)
		goto put;
	/* The name is unique now; dev_del (under the same vdpa lock as this
	 * call) removes it. */
	r->debugfs = debugfs_create_dir(dev_name(&r->vdpa.dev), m->debugfs);
	debugfs_create_file("break_queue", 0200, r->debugfs, r, &break_queue_fops);
	debugfs_create_file("queues", 0400, r->debugfs, r, &queues_fops);
	debugfs_create_u32("pop_delay_ms", 0600, r->debugfs, &r->pop_delay_ms);
	debugfs_create_atomic_t("pop_delays", 0400, r->debugfs, &r->pop_delays);
	return 0;
put:
	put_device(&r->vdpa.dev);
	return ret;
}

static void rvio_vdpa_dev_del(struct vdpa_mgmt_dev *mdev, struct vdpa_device *vdpa)
{
	struct rvio_vdpa *r = to_r(vdpa);

	/* Waits for a write in progress; none comes after. */
	debugfs_remove(r->debugfs);
	r->debugfs = NULL;
	mutex_lock(&r->lock);
	if (r->state)
		drv_of(r)->remove(r->state);
	mutex_unlock(&r->lock);
	/* The release (->free) comes when the last reference goes, which
	 * can be after this returns. */
	_vdpa_unregister_device(vdpa);
}

static const struct vdpa_mgmtdev_ops rvio_vdpa_mgmt_ops = {
	.dev_add = rvio_vdpa_dev_add,
	.dev_del = rvio_vdpa_dev_del,
};

struct rvio_vdpa_mgmt *rvio_vdpa_mgmt_register(const struct rvio_vdpa_driver *drv,
					       const char *name)
{
	struct rvio_vdpa_mgmt *m;
	int ret;

	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return ERR_PTR(-ENOMEM);
	m->drv = drv;
	atomic_set(&m->live, 1);
	init_completion(&m->released);
	m->id_table[0].device = drv->device_id;
	m->id_table[0].vendor = VIRTIO_DEV_ANY_ID;
	m->root = root_device_register(name);
	if (IS_ERR(m->root)) {
		ret = PTR_ERR(m->root);
		goto free;
	}
	m->mdev.device = m->root;
	m->mdev.ops = &rvio_vdpa_mgmt_ops;
	m->mdev.id_table = m->id_table;
	m->mdev.supported_features = RVIO_VDPA_BASE_FEATURES | drv->features;
	m->mdev.max_supported_vqs = drv->nvqs;
	m->debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	ret = vdpa_mgmtdev_register(&m->mdev);
	if (ret)
		goto root;
	return m;
root:
	debugfs_remove(m->debugfs);
	root_device_unregister(m->root);
free:
	kfree(m);
	return ERR_PTR(ret);
}

void rvio_vdpa_mgmt_unregister(struct rvio_vdpa_mgmt *m)
{
	/* Deletes every device of ours (dev_del under the vdpa lock). */
	vdpa_mgmtdev_unregister(&m->mdev);
	/* Their release can come later, from whoever held the last
	 * reference: ->free is our code, so wait for it. (A completion: the
	 * releasing thread is done with m once the waiter can return.) */
	if (!atomic_dec_and_test(&m->live))
		wait_for_completion(&m->released);
	/* ->free may still be returning through this module's code after its
	 * atomic_dec_and_test() or complete(), on another thread: wait until
	 * every task has switched voluntarily, which a task inside a function
	 * has not (module exit is the only caller). */
	synchronize_rcu_tasks();
	debugfs_remove(m->debugfs);
	root_device_unregister(m->root);
	kfree(m);
}

/* --- queue access for the driver (lock held) --------------------------------- */

static struct rvio_vdpa_vq *vq_of(struct rvio_vdpa *r, u16 idx)
{
	lockdep_assert_held(&r->lock);
	return idx < nvqs_of(r) ? &r->vq[idx] : NULL;
}

static int translate(struct rvio_vdpa *r, u64 iova, u64 len, u32 perm,
		     phys_addr_t *pa, u64 *n);

/* Whether both ends of [addr, addr + len) are in the device's map. */
static bool mapped(struct rvio_vdpa *r, u64 addr, u64 len)
{
	u64 last = addr + len - 1;

	lockdep_assert_held(&r->iotlb_lock);
	return len && last >= addr &&
	       vhost_iotlb_itree_first(&r->iotlb, addr, addr) &&
	       vhost_iotlb_itree_first(&r->iotlb, last, last);
}

/*
 * Why a queue's available ring could not be read. A ring outside the
 * memory map is not the driver's bad chain but the VMM's missing or
 * refused map: vhost_vdpa pins guest memory within the VMM's
 * RLIMIT_MEMLOCK and holds at most its max_iotlb_entries entries, a
 * refused IOTLB update reaches the VMM only as EFAULT, and QEMU starts the
 * device anyway. Say so, with the numbers. The queue waits for the map to
 * change (see walk_chain()).
 */
static __printf(2, 3) void stall_why(struct rvio_vdpa_vq *vq, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(vq->stall_why, sizeof(vq->stall_why), fmt, args);
	va_end(args);
}

static void report_unmapped_ring(struct rvio_vdpa *r, u16 idx, int err)
{
	struct rvio_vdpa_vq *vq = &r->vq[idx];
	unsigned int entries;
	bool in_map;

	if (r->map == MAP_NONE) {
		stall_why(vq, "started with no memory map: its rings (IOVA %#llx, %#llx, %#llx) are not in the memory map (0 entries): the VMM sent none, or vhost_vdpa refused it (RLIMIT_MEMLOCK, max_iotlb_entries?); waiting for a map",
			  vq->desc, vq->driver, vq->device);
		return;
	}
	spin_lock(&r->iotlb_lock);
	in_map = mapped(r, vq->desc, 16ULL * vq->num) &&
		 mapped(r, vq->driver, 6 + 2ULL * vq->num) &&
		 mapped(r, vq->device, 6 + 8ULL * vq->num);
	entries = r->iotlb.nmaps;
	spin_unlock(&r->iotlb_lock);
	if (in_map)
		stall_why(vq, "available ring not readable (%d): waiting for the map to change",
			  err);
	else
		stall_why(vq, "its rings (IOVA %#llx, %#llx, %#llx) are not in the memory map (%u entries): the VMM's map was refused (RLIMIT_MEMLOCK, vhost_vdpa max_iotlb_entries?); waiting for the map to change",
			  vq->desc, vq->driver, vq->device, entries);
}

/*
 * Copies @len bytes of the driver's memory at @iova, mapped readable, into
 * @buf, across mappings and pages. The driver may change them meanwhile:
 * the caller checks what it read, once.
 */
static int guest_read(struct rvio_vdpa *r, u64 iova, void *buf, size_t len)
{
	while (len) {
		phys_addr_t pa;
		u64 n;
		void *from;
		int ret;

		ret = translate(r, iova, len, VHOST_MAP_RO, &pa, &n);
		if (ret)
			return ret;
		n = min_t(u64, n, PAGE_SIZE - offset_in_page(pa));
		from = kmap_local_page(pfn_to_page(PHYS_PFN(pa)));
		memcpy(buf, from + offset_in_page(pa), n);
		kunmap_local(from);
		buf += n;
		iova += n;
		len -= n;
	}
	return 0;
}

static int guest_u16(struct rvio_vdpa *r, u64 iova, u16 *val)
{
	__le16 v;
	int ret = guest_read(r, iova, &v, sizeof(v));

	*val = le16_to_cpu(v);
	return ret;
}

/* A chain the device refuses: log what was wrong, stop the queue. */
static int chain_fault(struct rvio_vdpa *r, struct rvio_vdpa_vq *vq,
		       const char *why, unsigned int at, int err)
{
	dev_warn_ratelimited(&r->vdpa.dev,
			     "queue %ld: bad descriptor chain: %s (at %u, error %d): queue stopped until reset\n",
			     vq_index(r, vq), why, at, err);
	vq_break(r, vq);
	return err;
}

static bool buffer_mapped(struct rvio_vdpa *r, u64 addr, u64 len)
{
	bool ret;

	spin_lock(&r->iotlb_lock);
	ret = mapped(r, addr, len);
	spin_unlock(&r->iotlb_lock);
	return ret;
}

/* Appends a buffer to @iov; false if it holds RVIO_VDPA_CHAIN_MAX already. */
static bool chain_add(struct vringh_kiov *iov, u64 addr, u32 len, u64 *total)
{
	/* IOVAs in iov_base, as vringh keeps them. */
	BUILD_BUG_ON(sizeof(void *) < sizeof(u64));
	if (iov->used == iov->max_num)
		return false;
	iov->iov[iov->used].iov_base = (void *)(uintptr_t)addr;
	iov->iov[iov->used].iov_len = len;
	iov->used++;
	*total += len;
	return true;
}

/*
 * What the device reads of a ring may be unmapped for a while: within a
 * batch of IOTLB updates (QEMU removes a section and adds its successor in
 * one batch, and vhost_vdpa hands a dma_map device each update as it
 * comes), or before a VMM sends its map at all. So a ring or a descriptor
 * outside the map makes the queue wait, with its indexes unchanged, until
 * the map changes (which schedules a pass) or the driver kicks; only a
 * chain that is wrong whatever the map stops the queue (chain_fault()).
 * So does a buffer whose first or last byte is outside the map (QEMU's
 * guest RAM is being remapped: the copy would fail and lose a message of
 * a lossless flow); a buffer the device may not write, or with a hole
 * inside, is found when it is copied: that chain is consumed and counted
 * by the driver's device.
 *
 * Walks the chain at @head into the queue's riov (readable buffers) and
 * wiov (writable ones), as vringh would, but bounded whatever the driver
 * wrote: at most the queue size of descriptors in the ring, then at most
 * one indirect table (the chain's last descriptor: INDIRECT with NEXT is
 * refused, as virtio 1.x forbids it) of at most RVIO_VDPA_CHAIN_MAX
 * entries, no table in a table; at most RVIO_VDPA_CHAIN_MAX buffers each
 * way, under 4 GiB each way, none wrapping around the address space, and
 * no readable buffer after a writable one. Each descriptor is read once;
 * the buffers' addresses are translated when copied (vringh_iov_*_iotlb).
 * Nothing is allocated: a bad chain costs at most 512 descriptor reads.
 * 0, -EAGAIN (a descriptor not mapped: wait) or the fault's error.
 */
static int walk_chain(struct rvio_vdpa *r, struct rvio_vdpa_vq *vq, u16 head)
{
	u32 size = vq->vring.vring.num, left = size, i = head;
	u64 table = vq->desc, readable = 0, writable = 0;
	bool indirect = false;

	vq->riov.i = vq->riov.used = vq->riov.consumed = 0;
	vq->wiov.i = vq->wiov.used = vq->wiov.consumed = 0;
	for (;;) {
		struct vring_desc d;
		u16 flags;
		u64 addr;
		u32 len;
		int ret;

		if (i >= size)
			return chain_fault(r, vq, indirect ? "next beyond the indirect table" :
					   "next beyond the descriptor table", i, -EINVAL);
		if (!left--)
			return chain_fault(r, vq, indirect ? "loop in the indirect table" :
					   "chain longer than the queue", i, -ELOOP);
		ret = guest_read(r, table + 16ULL * i, &d, sizeof(d));
		if (ret) {
			stall_why(vq, "%s %u at IOVA %#llx not in the memory map: waiting for the map to change",
				  indirect ? "indirect descriptor" : "descriptor", i,
				  table + 16ULL * i);
			return -EAGAIN;
		}
		flags = le16_to_cpu((__force __le16)d.flags);
		addr = le64_to_cpu((__force __le64)d.addr);
		len = le32_to_cpu((__force __le32)d.len);
		if (flags & VRING_DESC_F_INDIRECT) {
			if (indirect)
				return chain_fault(r, vq, "indirect table in an indirect table",
						   i, -EINVAL);
			if (flags & VRING_DESC_F_NEXT)
				return chain_fault(r, vq, "indirect descriptor with NEXT", i,
						   -EINVAL);
			if (!len || len % sizeof(d) ||
			    len / sizeof(d) > RVIO_VDPA_CHAIN_MAX)
				return chain_fault(r, vq, "indirect table empty, partial or longer than 256 entries",
						   i, -EINVAL);
			if (addr + len - 1 < addr)
				return chain_fault(r, vq, "indirect table wraps", i, -EINVAL);
			indirect = true;
			table = addr;
			size = left = len / sizeof(d);
			i = 0;
			continue;
		}
		if (len && addr + len - 1 < addr)
			return chain_fault(r, vq, "buffer wraps", i, -EINVAL);
		/* Both ends in the map, or the map is in flux: wait, rather
		 * than fail the copy and lose the message (a hole inside a
		 * buffer is found by the copy, and counted). */
		if (len && !buffer_mapped(r, addr, len)) {
			stall_why(vq, "buffer [%#llx, +%#x) not in the memory map: waiting for the map to change",
				  addr, len);
			return -EAGAIN;
		}
		if (flags & VRING_DESC_F_WRITE) {
			if (!chain_add(&vq->wiov, addr, len, &writable))
				return chain_fault(r, vq, "more than 256 writable buffers", i,
						   -E2BIG);
		} else {
			if (vq->wiov.used)
				return chain_fault(r, vq, "readable buffer after a writable one",
						   i, -EINVAL);
			if (!chain_add(&vq->riov, addr, len, &readable))
				return chain_fault(r, vq, "more than 256 readable buffers", i,
						   -E2BIG);
		}
		if (readable > U32_MAX || writable > U32_MAX)
			return chain_fault(r, vq, "buffers of 4 GiB or more", i, -E2BIG);
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		i = le16_to_cpu((__force __le16)d.next);
	}
}

/*
 * The next available chain's head, as vringh's __vringh_get_head but with
 * the available index checked and the index not moved on (the caller does
 * once the chain is walked): 1 and *head, 0 if none or the ring is not
 * mapped (wait), or an error (the queue is stopped).
 */
static int get_head(struct rvio_vdpa *r, struct rvio_vdpa_vq *vq, u16 idx,
		    u16 *head)
{
	struct vringh *vrh = &vq->vring;
	u64 avail = vq->driver;
	u16 avail_idx;
	int ret;

	ret = guest_u16(r, avail + offsetof(struct vring_avail, idx), &avail_idx);
	if (ret) {
		report_unmapped_ring(r, idx, ret);
		vq->stalled = true;
		return 0;
	}
	if (avail_idx == vrh->last_avail_idx)
		return 0;
	/* More than a queue's worth ahead is no index a driver can write. */
	if ((u16)(avail_idx - vrh->last_avail_idx) > vrh->vring.num)
		return chain_fault(r, vq, "available index ahead by more than the queue size",
				   avail_idx, -EINVAL);
	/* The ring entries after the index that exposed them. */
	virt_rmb();
	ret = guest_u16(r, avail + offsetof(struct vring_avail, ring) +
			2ULL * (vrh->last_avail_idx & (vrh->vring.num - 1)), head);
	if (ret) {
		report_unmapped_ring(r, idx, ret);
		vq->stalled = true;
		return 0;
	}
	if (*head >= vrh->vring.num)
		return chain_fault(r, vq, "head beyond the descriptor table", *head,
				   -EINVAL);
	return 1;
}

/* The queue waits for the map (vq->stalled): a new wait starts its clock
 * for rvio_vdpa_stall_work(). */
static void stall_begin(struct rvio_vdpa *r, struct rvio_vdpa_vq *vq, bool was_stalled)
{
	if (was_stalled)
		return;
	vq->stall_since = jiffies;
	vq->stall_warned = false;
	schedule_delayed_work(&r->stall_work, msecs_to_jiffies(RVIO_VDPA_STALL_WARN_MS));
}

/* A queue still waiting for the map RVIO_VDPA_STALL_WARN_MS after the wait
 * began says why, once per wait. */
static void rvio_vdpa_stall_work(struct work_struct *work)
{
	struct rvio_vdpa *r = container_of(to_delayed_work(work), struct rvio_vdpa,
					   stall_work);
	unsigned long warn = msecs_to_jiffies(RVIO_VDPA_STALL_WARN_MS), next = 0;
	int i;

	mutex_lock(&r->lock);
	for (i = 0; i < RVIO_VDPA_NVQS_MAX; i++) {
		struct rvio_vdpa_vq *vq = &r->vq[i];

		if (!vq->stalled || vq->stall_warned)
			continue;
		if (time_before(jiffies, vq->stall_since + warn)) {
			unsigned long left = vq->stall_since + warn - jiffies;

			next = next ? min(next, left) : left;
			continue;
		}
		vq->stall_warned = true;
		dev_warn_ratelimited(&r->vdpa.dev, "queue %d: %s (for %u ms)\n", i,
				     vq->stall_why,
				     jiffies_to_msecs(jiffies - vq->stall_since));
	}
	if (next)
		schedule_delayed_work(&r->stall_work, next);
	mutex_unlock(&r->lock);
}

int rvio_vdpa_vq_pop(struct rvio_vdpa *r, u16 idx, size_t *readable,
		     size_t *writable)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);
	bool was_stalled;
	int ret;

	if (!vq)
		return -EINVAL;
	if (vq->popped)
		return -EBUSY;
	if (!vq->started || vq->broken)
		return 0;
	was_stalled = vq->stalled;
	vq->stalled = false;
	ret = get_head(r, vq, idx, &vq->head);
	if (ret == 0 && vq->stalled)
		stall_begin(r, vq, was_stalled);
	if (ret <= 0)
		return ret;
	ret = walk_chain(r, vq, vq->head);
	if (ret == -EAGAIN) {
		vq->stalled = true;
		stall_begin(r, vq, was_stalled);
		return 0;
	}
	if (ret)
		return ret;
	vq->vring.last_avail_idx++;
	vq->popped = true;
	vq->popped_total++;
	*readable = vringh_kiov_length(&vq->riov);
	*writable = vringh_kiov_length(&vq->wiov);
	/* Fault injection: a pass preempted with a chain in hand. */
	if (unlikely(READ_ONCE(r->pop_delay_ms))) {
		atomic_inc(&r->pop_delays);
		msleep(min(READ_ONCE(r->pop_delay_ms), RVIO_VDPA_POP_DELAY_MAX_MS));
	}
	return 1;
}

ssize_t rvio_vdpa_vq_pull(struct rvio_vdpa *r, u16 idx, void *buf, size_t len)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);

	if (!vq || !vq->popped)
		return -EINVAL;
	return vringh_iov_pull_iotlb(&vq->vring, &vq->riov, buf, len);
}

ssize_t rvio_vdpa_vq_push(struct rvio_vdpa *r, u16 idx, const void *buf,
			  size_t len)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);

	if (!vq || !vq->popped)
		return -EINVAL;
	return vringh_iov_push_iotlb(&vq->vring, &vq->wiov, buf, len);
}

void rvio_vdpa_vq_done(struct rvio_vdpa *r, u16 idx, u32 written)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);

	if (!vq || !vq->popped)
		return;
	vq->popped = false;
	/* The data before the used index. */
	smp_wmb();
	if (vringh_complete_iotlb(&vq->vring, vq->head, written) < 0) {
		dev_warn_ratelimited(&r->vdpa.dev, "queue %u: used ring not writable: queue stopped until reset\n",
				     idx);
		vq_break(r, vq);
	}
}

void rvio_vdpa_vq_notify(struct rvio_vdpa *r, u16 idx)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);

	/* Nothing completed since the last notification: nothing to tell
	 * (without EVENT_IDX vringh would say yes whenever interrupts are
	 * on). */
	if (!vq || !vq->started || !vq->vring.completed)
		return;
	/* virtio_vdpa's callback expects interrupt-like context. */
	local_bh_disable();
	if (vringh_need_notify_iotlb(&vq->vring) > 0 && vq->cb.callback)
		vq->cb.callback(vq->cb.private);
	local_bh_enable();
}

void rvio_vdpa_vq_notify_disable(struct rvio_vdpa *r, u16 idx)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);

	if (vq && vq->started && !vq->broken)
		vringh_notify_disable_iotlb(&vq->vring);
}

bool rvio_vdpa_vq_notify_enable(struct rvio_vdpa *r, u16 idx)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);

	if (!vq || !vq->started || vq->broken)
		return true;
	/* A stalled queue has chains the device cannot read yet: do not
	 * look again in another pass (that would spin), wait for a kick or
	 * a map change. */
	return vringh_notify_enable_iotlb(&vq->vring) || vq->stalled;
}

/* --- chains kept across passes, and copies between devices ---------------- */

int rvio_vdpa_vq_ranges(struct rvio_vdpa *r, u16 idx, struct rvio_vdpa_range *rd,
			unsigned int rd_max, unsigned int *nrd,
			struct rvio_vdpa_range *wr, unsigned int wr_max,
			unsigned int *nwr)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);
	unsigned int i;

	if (!vq || !vq->popped)
		return -EINVAL;
	if (vq->riov.used > rd_max || vq->wiov.used > wr_max)
		return -E2BIG;
	/* Before any pull or push: vringh moves the partly consumed
	 * element's base as it goes. */
	for (i = 0; i < vq->riov.used; i++) {
		rd[i].addr = (u64)(uintptr_t)vq->riov.iov[i].iov_base;
		rd[i].len = vq->riov.iov[i].iov_len;
	}
	for (i = 0; i < vq->wiov.used; i++) {
		wr[i].addr = (u64)(uintptr_t)vq->wiov.iov[i].iov_base;
		wr[i].len = vq->wiov.iov[i].iov_len;
	}
	*nrd = vq->riov.used;
	*nwr = vq->wiov.used;
	return 0;
}

int rvio_vdpa_vq_keep(struct rvio_vdpa *r, u16 idx)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);

	if (!vq || !vq->popped)
		return -EINVAL;
	/* Out, but no longer the popped chain: the next pop may come. */
	vq->popped = false;
	return vq->head;
}

void rvio_vdpa_vq_complete(struct rvio_vdpa *r, u16 idx, u16 head, u32 written)
{
	struct rvio_vdpa_vq *vq = vq_of(r, idx);

	/* A reset since the chain was kept forgot it (the driver's ring is
	 * gone): the caller forgets kept chains in its reset callback. */
	if (!vq || !vq->started || vq->broken)
		return;
	smp_wmb();
	if (vringh_complete_iotlb(&vq->vring, head, written) < 0) {
		dev_warn_ratelimited(&r->vdpa.dev, "queue %u: used ring not writable: queue stopped until reset\n",
				     idx);
		vq_break(r, vq);
	}
}

struct rvio_vdpa *rvio_vdpa_get(struct rvio_vdpa *r)
{
	get_device(&r->vdpa.dev);
	return r;
}

void rvio_vdpa_put(struct rvio_vdpa *r)
{
	put_device(&r->vdpa.dev);
}

/* Two devices' maps in one order (their addresses), so that two copies in
 * opposite directions cannot wait for each other behind a writer. */
void rvio_vdpa_maps_lock(struct rvio_vdpa *a, struct rvio_vdpa *b)
{
	if (b && b != a && b < a)
		swap(a, b);
	down_read(&a->map_sem);
	if (b && b != a)
		down_read_nested(&b->map_sem, SINGLE_DEPTH_NESTING);
}

void rvio_vdpa_maps_unlock(struct rvio_vdpa *a, struct rvio_vdpa *b)
{
	if (b && b != a)
		up_read(&b->map_sem);
	up_read(&a->map_sem);
}

void rvio_vdpa_maps_drain(struct rvio_vdpa *r)
{
	lockdep_assert_held(&r->lock);
	/* Lock order r->lock, then map_sem, as at reset. */
	down_write(&r->map_sem);
	up_write(&r->map_sem);
}

/* Translates [iova, iova + len) as far as one mapping goes: the physical
 * address and how many bytes, if mapped with @perm. */
static int translate(struct rvio_vdpa *r, u64 iova, u64 len, u32 perm,
		     phys_addr_t *pa, u64 *n)
{
	struct vhost_iotlb_map *map;
	int ret = -EFAULT;

	if (!len || iova + len - 1 < iova)
		return -EFAULT;
	spin_lock(&r->iotlb_lock);
	map = vhost_iotlb_itree_first(&r->iotlb, iova, iova + len - 1);
	if (map && map->start <= iova && (map->perm & perm) == perm) {
		*pa = map->addr + (iova - map->start);
		*n = min(len - 1, map->last - iova) + 1;
		ret = pfn_valid(PHYS_PFN(*pa)) ? 0 : -EFAULT;
	}
	spin_unlock(&r->iotlb_lock);
	return ret;
}

/* A position in a list of ranges. */
struct cursor {
	const struct rvio_vdpa_range *rg;
	unsigned int n, i;
	u64 off;
};

/* Moves @c @skip bytes on; false if the ranges end first. */
static bool cursor_skip(struct cursor *c, u64 skip)
{
	while (c->i < c->n && skip >= c->rg[c->i].len - c->off) {
		skip -= c->rg[c->i].len - c->off;
		c->i++;
		c->off = 0;
	}
	if (c->i == c->n)
		return !skip;
	c->off += skip;
	return true;
}

/* Translates up to @len bytes at @c's position (past empty ranges) with
 * @perm; -EFAULT if the ranges end or that address is not so mapped. */
static int cursor_translate(struct rvio_vdpa *r, struct cursor *c, u64 len, u32 perm,
			    phys_addr_t *pa, u64 *n)
{
	while (c->i < c->n && c->off == c->rg[c->i].len) {
		c->i++;
		c->off = 0;
	}
	if (c->i == c->n)
		return -EFAULT;
	return translate(r, c->rg[c->i].addr + c->off,
			 min_t(u64, len, c->rg[c->i].len - c->off), perm, pa, n);
}

int rvio_vdpa_copy(struct rvio_vdpa *dst, const struct rvio_vdpa_range *dr,
		   unsigned int ndr, size_t doff, struct rvio_vdpa *src,
		   const struct rvio_vdpa_range *sr, unsigned int nsr, size_t soff,
		   const void *kbuf, size_t len)
{
	struct cursor d = { .rg = dr, .n = ndr }, s = { .rg = sr, .n = nsr };

	lockdep_assert_held(&dst->map_sem);
	if (src)
		lockdep_assert_held(&src->map_sem);
	if (!cursor_skip(&d, doff))
		return RVIO_VDPA_DST_FAULT;
	if (src && !cursor_skip(&s, soff))
		return RVIO_VDPA_SRC_FAULT;
	while (len) {
		phys_addr_t dpa, spa = 0;
		u64 dn, sn = len, n;
		void *to;

		if (cursor_translate(dst, &d, len, VHOST_MAP_WO, &dpa, &dn))
			return RVIO_VDPA_DST_FAULT;
		if (src && cursor_translate(src, &s, len, VHOST_MAP_RO, &spa, &sn))
			return RVIO_VDPA_SRC_FAULT;
		n = min3(dn, sn, (u64)(PAGE_SIZE - offset_in_page(dpa)));
		if (src)
			n = min_t(u64, n, PAGE_SIZE - offset_in_page(spa));
		to = kmap_local_page(pfn_to_page(PHYS_PFN(dpa)));
		if (src) {
			void *from = kmap_local_page(pfn_to_page(PHYS_PFN(spa)));

			memcpy(to + offset_in_page(dpa), from + offset_in_page(spa), n);
			kunmap_local(from);
			s.off += n;
		} else {
			memcpy(to + offset_in_page(dpa), kbuf, n);
			kbuf += n;
		}
		kunmap_local(to);
		d.off += n;
		len -= n;
		cond_resched();
	}
	return 0;
}
