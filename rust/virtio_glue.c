// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's virtio driver abstraction: see rust/virtio_glue.h.
 * Linked into each module that drives a virtio device (Kbuild), next to
 * the Rust half rust/virtio.rs.
 *
 * Why C: 6.12's kernel crate has no virtio abstraction; struct
 * virtio_driver and its id and feature tables, virtqueue set-up and the
 * scatterlist-building helpers (sg_init_one(), sg_next(), virt_addr_valid()
 * are inlines or macros, or take kernel structures 6.12's Rust has no
 * abstraction of) stay here until it has one.
 */
#include <linux/err.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/workqueue.h>

#include "inline_pass.h"

#include "virtio_glue.h"

struct rvio_virtio_reg {
	struct virtio_driver vdrv;
	struct virtio_device_id ids[2];
	const struct rvio_virtio_driver *drv;
};

struct rvio_virtio {
	struct virtio_device *vdev;
	const struct rvio_virtio_driver *drv;
	struct mutex lock;	/* the rings, running, the driver state */
	struct work_struct work;
	struct delayed_work retry;	/* a pass later: memory was short */
	/* The device set DEVICE_NEEDS_RESET: reset it, at once, or after
	 * reset_delay (jiffies) if it asks within
	 * RVIO_VIRTIO_NEEDS_RESET_CALM_MS of the last such reset
	 * (last_needs_reset, 0: none); each reset asked for that soon doubles
	 * reset_delay, up to RVIO_VIRTIO_NEEDS_RESET_MAX_MS, and one after a
	 * calm spell sets it back: a device that breaks at every start is not
	 * reset in a loop. Written by the work under lock, read locklessly by
	 * config_changed. */
	struct delayed_work needs_reset;
	unsigned long reset_delay;
	unsigned long last_needs_reset;
	/* The wait config_changed chose for the queued reset (0: at once). */
	unsigned long reset_waited;
	struct virtqueue *vqs[RVIO_VIRTIO_MAX_VQS];
	/* add_out's scatterlist (under lock: not on the stack). */
	struct scatterlist sg[RVIO_VIRTIO_MAX_SG];
	/* add_parts' one-entry scatterlists of the buffer parts (idem). */
	struct scatterlist part_sg[RVIO_VIRTIO_MAX_PARTS];
	/* The queues this device has (drv->nvqs_for). */
	unsigned int nvqs;
	bool running;
	/* drv->stop ran (a reset after which the device did not come back). */
	bool stopped;
	/* RVIO_VIRTIO_RESET_ASKED: rvio_virtio_request_reset() was called. */
	unsigned long flags;
	void *state;
};

#define RVIO_VIRTIO_RESET_ASKED 0
#define RVIO_VIRTIO_NEEDS_RESET_MIN_MS 250
#define RVIO_VIRTIO_NEEDS_RESET_MAX_MS 32000
#define RVIO_VIRTIO_NEEDS_RESET_CALM_MS 10000

/* Unbound, as the host side's work: a callback comes from whatever the
 * device's side was doing on this CPU (under virtio_vdpa, the host's
 * pass itself), and the pass can start on an idle CPU instead of waiting
 * for it: one-flow round trips 8 to 15% shorter, streams alike
 * (results/README.md). */
void rvio_virtio_schedule(struct rvio_virtio *v)
{
	queue_work(system_unbound_wq, &v->work);
}

void rvio_virtio_retry_later(struct rvio_virtio *v)
{
	/* A pending retry stays as it is: it is soon enough. */
	queue_delayed_work(system_wq, &v->retry, msecs_to_jiffies(RVIO_VIRTIO_RETRY_MS));
}

static void rvio_virtio_retry(struct work_struct *work)
{
	rvio_virtio_schedule(container_of(to_delayed_work(work), struct rvio_virtio, retry));
}

const char *rvio_virtio_name(struct rvio_virtio *v)
{
	return dev_name(&v->vdev->dev);
}

u64 rvio_virtio_features(struct rvio_virtio *v)
{
	return v->vdev->features;
}

unsigned int rvio_virtio_nvqs(struct rvio_virtio *v)
{
	return v->nvqs;
}

static void rvio_virtio_vq_done(struct virtqueue *vq)
{
	/* vq->priv is the transport's: our state is the device's. */
	struct rvio_virtio *v = vq->vdev->priv;

	if (v)
		rvio_virtio_schedule(v);
}

void rvio_virtio_request_reset(struct rvio_virtio *v)
{
	set_bit(RVIO_VIRTIO_RESET_ASKED, &v->flags);
	rvio_virtio_schedule(v);
}

static int find_vqs(struct rvio_virtio *v)
{
	struct virtqueue_info info[RVIO_VIRTIO_MAX_VQS] = {};
	unsigned int i;

	for (i = 0; i < v->nvqs; i++) {
		info[i].name = v->drv->vq_names[i];
		info[i].callback = rvio_virtio_vq_done;
	}
	return virtio_find_vqs(v->vdev, v->nvqs, v->vqs, info, NULL);
}

/*
 * The driver asked for a reset (rvio_virtio_request_reset()): the device
 * gives back every buffer, and starts again with new rings and the same
 * features. Runs from the work item with v->lock held and v->running, so
 * remove (which clears running under the lock, then cancels the work)
 * cannot run meanwhile; it must not cancel or flush the work itself.
 *
 * 6.12 has no helper for this: virtio_device_freeze()/restore() do the same
 * steps but exist only with CONFIG_PM_SLEEP and call the driver's PM ops;
 * and vdpa has no per-queue reset. The steps are theirs: reset (after it
 * the device touches no buffer and calls no callback), the buffers back,
 * the queues deleted, then ACKNOWLEDGE, DRIVER, the features written
 * again (the device forgot them), FEATURES_OK checked, new queues,
 * DRIVER_OK. No configuration space read between the reset and
 * FEATURES_OK: virtio_vdpa would write features 0 to read it.
 */
static void rvio_virtio_restart(struct rvio_virtio *v)
{
	struct virtio_device *vdev = v->vdev;
	unsigned int i, len;
	void *token;
	int ret;

	lockdep_assert_held(&v->lock);
	v->running = false;
	virtio_reset_device(vdev);
	/* The driver restarts first, so that what the completions below
	 * send or post again goes to the new rings. */
	v->drv->reset(v->state);
	for (i = 0; i < v->nvqs; i++) {
		if (!v->vqs[i])
			continue;
		/* Used before the reset, not taken yet: with what the device
		 * wrote (with CONFIG_VIRTIO_HARDEN_NOTIFICATION the reset
		 * breaks the queues and get_buf returns none: they all come
		 * back as unused). Then those it never used. */
		while ((token = virtqueue_get_buf(v->vqs[i], &len)))
			v->drv->reclaim(v->state, i, token, len);
		while ((token = virtqueue_detach_unused_buf(v->vqs[i])))
			v->drv->reclaim(v->state, i, token, -1);
	}
	vdev->config->del_vqs(vdev);
	memset(v->vqs, 0, sizeof(v->vqs));

	virtio_add_status(vdev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	virtio_add_status(vdev, VIRTIO_CONFIG_S_DRIVER);
	ret = vdev->config->finalize_features(vdev);
	if (!ret) {
		virtio_add_status(vdev, VIRTIO_CONFIG_S_FEATURES_OK);
		if (!(vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_FEATURES_OK))
			ret = -ENODEV;
	}
	if (!ret)
		ret = find_vqs(v);
	if (ret) {
		/* The device stays failed until it is removed: the driver
		 * stops now (its users see the device go, and what they ask
		 * for fails), and remove finds no queue (teardown skips
		 * them) and does not stop it again. */
		memset(v->vqs, 0, sizeof(v->vqs));
		virtio_add_status(vdev, VIRTIO_CONFIG_S_FAILED);
		dev_err(&vdev->dev, "reset: the device did not come back (%d)\n", ret);
		v->drv->stop(v->state);
		v->stopped = true;
		return;
	}
	virtio_device_ready(vdev);
	v->running = true;
	v->drv->start(v->state, v);
	dev_info_ratelimited(&vdev->dev, "reset by its driver\n");
}

/* Whether a reset asked for now comes within the calm spell of the last
 * one. Any context. */
static bool needs_reset_soon(struct rvio_virtio *v)
{
	unsigned long last = READ_ONCE(v->last_needs_reset);

	return last && time_before(jiffies, last +
				   msecs_to_jiffies(RVIO_VIRTIO_NEEDS_RESET_CALM_MS));
}

static void rvio_virtio_needs_reset(struct work_struct *work)
{
	struct rvio_virtio *v = container_of(to_delayed_work(work), struct rvio_virtio,
					     needs_reset);
	struct virtio_device *vdev = v->vdev;
	unsigned long delay;

	mutex_lock(&v->lock);
	if (v->running && (vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_NEEDS_RESET)) {
		/* Asked soon after the last one, so it waited: the next waits
		 * longer. */
		if (READ_ONCE(v->reset_waited))
			delay = min(2 * v->reset_delay,
				    msecs_to_jiffies(RVIO_VIRTIO_NEEDS_RESET_MAX_MS));
		else
			delay = msecs_to_jiffies(RVIO_VIRTIO_NEEDS_RESET_MIN_MS);
		WRITE_ONCE(v->reset_delay, delay);
		WRITE_ONCE(v->last_needs_reset, jiffies ?: 1);
		rvio_virtio_restart(v);
	}
	mutex_unlock(&v->lock);
	/* Anything queued for the new rings. */
	rvio_virtio_schedule(v);
}

static void rvio_virtio_work(struct work_struct *work)
{
	struct rvio_virtio *v = container_of(work, struct rvio_virtio, work);
	bool more = false;

	mutex_lock(&v->lock);
	if (v->running && test_and_clear_bit(RVIO_VIRTIO_RESET_ASKED, &v->flags))
		rvio_virtio_restart(v);
	if (v->running)
		more = v->drv->process(v->state, v);
	mutex_unlock(&v->lock);
	if (more)
		rvio_virtio_schedule(v);
}

void rvio_virtio_run_now(struct rvio_virtio *v)
{
	bool more;

	/* Busy (a pass, a reset, remove, whose stop closes the core's gate
	 * and detaches the work's handles with the lock held: never wait for
	 * it here), a reset to do, or a writer that should not hold the
	 * lock: the work's. */
	if (test_bit(RVIO_VIRTIO_RESET_ASKED, &v->flags) || !rvio_may_pass_inline() ||
	    !mutex_trylock(&v->lock)) {
		rvio_virtio_schedule(v);
		return;
	}
	more = v->running &&
	       (v->drv->flush ? v->drv->flush(v->state, v) : v->drv->process(v->state, v));
	mutex_unlock(&v->lock);
	if (more)
		rvio_virtio_schedule(v);
}

int rvio_virtio_set_state(struct rvio_virtio *v, void *state)
{
	if (v->state || !state)
		return -EINVAL;
	v->state = state;
	return 0;
}

void rvio_virtio_cread(struct rvio_virtio *v, unsigned int off, void *buf,
		       unsigned int len)
{
	virtio_cread_bytes(v->vdev, off, buf, len);
}

/* After reset: no callback, no device access. Returns unused buffers. */
static void teardown(struct rvio_virtio *v)
{
	unsigned int i;
	void *token;

	/* Config changes are off (remove), so nothing queues this again. */
	cancel_delayed_work_sync(&v->needs_reset);
	/* A pass may queue a retry, and a retry a pass: cancel both, then
	 * the retry a last pass may have queued. */
	cancel_delayed_work_sync(&v->retry);
	cancel_work_sync(&v->work);
	cancel_delayed_work_sync(&v->retry);
	for (i = 0; i < v->nvqs; i++) {
		if (!v->vqs[i])
			continue;
		while ((token = virtqueue_detach_unused_buf(v->vqs[i])))
			v->drv->free_token(v->state, i, token);
	}
	v->vdev->config->del_vqs(v->vdev);
}

/* Before features are final: drop those the driver turns down. */
static int rvio_virtio_validate(struct virtio_device *vdev)
{
	struct rvio_virtio_reg *reg =
		container_of(drv_to_virtio(vdev->dev.driver), struct rvio_virtio_reg, vdrv);
	u64 refused = reg->drv->refused_features ? reg->drv->refused_features() : 0;
	unsigned int bit;

	for (bit = 0; bit < 64; bit++)
		if (refused & BIT_ULL(bit))
			__virtio_clear_bit(vdev, bit);
	return 0;
}

static int rvio_virtio_probe(struct virtio_device *vdev)
{
	struct rvio_virtio_reg *reg =
		container_of(drv_to_virtio(vdev->dev.driver), struct rvio_virtio_reg, vdrv);
	const struct rvio_virtio_driver *drv = reg->drv;
	struct rvio_virtio *v;
	int ret;

	if (!virtio_has_feature(vdev, VIRTIO_F_VERSION_1)) {
		dev_err(&vdev->dev, "device without VIRTIO_F_VERSION_1\n");
		return -ENODEV;
	}
	v = kzalloc(sizeof(*v), GFP_KERNEL);
	if (!v)
		return -ENOMEM;
	v->vdev = vdev;
	v->drv = drv;
	mutex_init(&v->lock);
	INIT_WORK(&v->work, rvio_virtio_work);
	INIT_DELAYED_WORK(&v->retry, rvio_virtio_retry);
	INIT_DELAYED_WORK(&v->needs_reset, rvio_virtio_needs_reset);
	v->reset_delay = msecs_to_jiffies(RVIO_VIRTIO_NEEDS_RESET_MIN_MS);

	v->nvqs = drv->nvqs;
	if (drv->nvqs_for)
		v->nvqs = min(drv->nvqs_for(vdev->features), drv->nvqs);
	if (!v->nvqs) {
		ret = -EINVAL;
		goto free;
	}

	ret = drv->probe(v);
	if (!ret && !v->state)
		ret = -EINVAL;
	if (ret)
		goto free;

	/* Callbacks find v through vdev->priv: set it before the queues. */
	vdev->priv = v;
	ret = find_vqs(v);
	if (ret)
		goto state;

	virtio_device_ready(vdev);
	mutex_lock(&v->lock);
	v->running = true;
	drv->start(v->state, v);
	mutex_unlock(&v->lock);
	return 0;

state:
	vdev->priv = NULL;
	drv->free(v->state);
free:
	kfree(v);
	return ret;
}

/*
 * A device that cannot go on sets DEVICE_NEEDS_RESET and sends a
 * configuration change (virtio 1.x 2.1.2): reset it as the driver's own
 * reset does (rvio_virtio_restart()), from a work item, after
 * v->reset_delay. Called under the virtio core's config spinlock, after
 * probe and until remove.
 */
static void rvio_virtio_config_changed(struct virtio_device *vdev)
{
	struct rvio_virtio *v = vdev->priv;
	unsigned long delay;

	if (!v || !(vdev->config->get_status(vdev) & VIRTIO_CONFIG_S_NEEDS_RESET))
		return;
	if (delayed_work_pending(&v->needs_reset))
		return;
	delay = needs_reset_soon(v) ? READ_ONCE(v->reset_delay) : 0;
	WRITE_ONCE(v->reset_waited, delay);
	dev_warn_ratelimited(&vdev->dev, "the device needs a reset: resetting it in %u ms\n",
			     jiffies_to_msecs(delay));
	queue_delayed_work(system_wq, &v->needs_reset, delay);
}

static void rvio_virtio_remove(struct virtio_device *vdev)
{
	struct rvio_virtio *v = vdev->priv;

	mutex_lock(&v->lock);
	v->running = false;
	if (!v->stopped)
		v->drv->stop(v->state);
	v->stopped = true;
	mutex_unlock(&v->lock);
	virtio_reset_device(vdev);
	teardown(v);
	vdev->priv = NULL;
	v->drv->free(v->state);
	kfree(v);
}

struct rvio_virtio_reg *rvio_virtio_register(const struct rvio_virtio_driver *drv)
{
	struct rvio_virtio_reg *reg;
	int ret;

	if (drv->nvqs > RVIO_VIRTIO_MAX_VQS)
		return ERR_PTR(-EINVAL);
	reg = kzalloc(sizeof(*reg), GFP_KERNEL);
	if (!reg)
		return ERR_PTR(-ENOMEM);
	reg->drv = drv;
	reg->ids[0].device = drv->device_id;
	reg->ids[0].vendor = VIRTIO_DEV_ANY_ID;
	reg->vdrv.driver.name = drv->name;
	reg->vdrv.feature_table = drv->features;
	reg->vdrv.feature_table_size = drv->nfeatures;
	reg->vdrv.id_table = reg->ids;
	reg->vdrv.validate = rvio_virtio_validate;
	reg->vdrv.probe = rvio_virtio_probe;
	reg->vdrv.remove = rvio_virtio_remove;
	reg->vdrv.config_changed = rvio_virtio_config_changed;
	ret = register_virtio_driver(&reg->vdrv);
	if (ret) {
		kfree(reg);
		return ERR_PTR(ret);
	}
	return reg;
}

void rvio_virtio_unregister(struct rvio_virtio_reg *reg)
{
	unregister_virtio_driver(&reg->vdrv);
	kfree(reg);
}

/* --- queue operations (mutex held) ----------------------------------------- */

static struct virtqueue *vq_of(struct rvio_virtio *v, u16 idx)
{
	lockdep_assert_held(&v->lock);
	return idx < v->nvqs ? v->vqs[idx] : NULL;
}

int rvio_virtio_add_in(struct rvio_virtio *v, u16 idx, void *hdr,
		       unsigned int hlen, void *buf, unsigned int len,
		       void *token)
{
	struct virtqueue *vq = vq_of(v, idx);
	struct scatterlist sg[2];
	int n = 0;

	if (!vq || !token || (!hlen && !len))
		return -EINVAL;
	if ((hlen && !virt_addr_valid(hdr)) || (len && !virt_addr_valid(buf)))
		return -EFAULT;
	sg_init_table(sg, 2);
	if (hlen)
		sg_set_buf(&sg[n++], hdr, hlen);
	if (len)
		sg_set_buf(&sg[n++], buf, len);
	sg_mark_end(&sg[n - 1]);
	return virtqueue_add_inbuf(vq, sg, n, token, GFP_KERNEL);
}

/* Adds @len bytes at @buf to @sg from index @n: one entry for kmalloc
 * memory, one per page for vmalloc memory. Returns the next index, or
 * -EFAULT (other memory) or -EMSGSIZE (more than @max entries). */
static int rvio_sg_add(struct scatterlist *sg, int n, int max, const void *buf,
		       unsigned int len)
{
	if (!len)
		return n;
	if (virt_addr_valid(buf)) {
		if (n >= max)
			return -EMSGSIZE;
		sg_set_buf(&sg[n], buf, len);
		return n + 1;
	}
	if (!is_vmalloc_addr(buf))
		return -EFAULT;
	/* The device reads it through the pages' own mapping (a no-op
	 * where caches do not alias, as on x86). */
	flush_kernel_vmap_range((void *)buf, len);
	while (len) {
		unsigned int off = offset_in_page(buf);
		unsigned int chunk = min_t(unsigned int, len, PAGE_SIZE - off);

		if (n >= max)
			return -EMSGSIZE;
		sg_set_page(&sg[n], vmalloc_to_page(buf), chunk, off);
		buf += chunk;
		len -= chunk;
		n++;
	}
	return n;
}

int rvio_virtio_add_out(struct rvio_virtio *v, u16 idx, const void *hdr,
			unsigned int hlen, const void *buf, unsigned int len,
			void *token)
{
	struct virtqueue *vq = vq_of(v, idx);
	struct scatterlist *sg = v->sg;
	int n;

	if (!vq || !token || (!hlen && !len))
		return -EINVAL;
	sg_init_table(sg, RVIO_VIRTIO_MAX_SG);
	n = rvio_sg_add(sg, 0, RVIO_VIRTIO_MAX_SG, hdr, hlen);
	if (n >= 0)
		n = rvio_sg_add(sg, n, RVIO_VIRTIO_MAX_SG, buf, len);
	if (n < 0)
		return n;
	sg_mark_end(&sg[n - 1]);
	return virtqueue_add_outbuf(vq, sg, n, token, GFP_KERNEL);
}

int rvio_virtio_add_parts(struct rvio_virtio *v, u16 idx,
			  const struct rvio_virtio_part *parts,
			  unsigned int readable, unsigned int writable, void *token)
{
	struct virtqueue *vq = vq_of(v, idx);
	struct scatterlist *sgs[RVIO_VIRTIO_MAX_PARTS];
	unsigned int i, n = readable + writable;

	if (!vq || !token || !n || n > RVIO_VIRTIO_MAX_PARTS)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (parts[i].sg) {
			sgs[i] = parts[i].sg;
			continue;
		}
		if (!parts[i].len)
			return -EINVAL;
		if (!virt_addr_valid(parts[i].buf))
			return -EFAULT;
		sg_init_one(&v->part_sg[i], parts[i].buf, parts[i].len);
		sgs[i] = &v->part_sg[i];
	}
	return virtqueue_add_sgs(vq, sgs, readable, writable, token, GFP_KERNEL);
}

int rvio_virtio_sg_count(struct scatterlist *sg, unsigned int max, u64 *bytes)
{
	unsigned int n = 0;
	u64 len = 0;

	for (; sg; sg = sg_next(sg)) {
		if (++n > max)
			return -EINVAL;
		len += sg->length;
	}
	*bytes = len;
	return n;
}

bool rvio_virtio_kmalloc_ok(const void *p)
{
	return virt_addr_valid(p);
}

void *rvio_virtio_get_buf(struct rvio_virtio *v, u16 idx, unsigned int *len)
{
	struct virtqueue *vq = vq_of(v, idx);

	return vq ? virtqueue_get_buf(vq, len) : NULL;
}

void rvio_virtio_kick(struct rvio_virtio *v, u16 idx)
{
	struct virtqueue *vq = vq_of(v, idx);

	if (vq)
		virtqueue_kick(vq);
}

void rvio_virtio_disable_cb(struct rvio_virtio *v, u16 idx)
{
	struct virtqueue *vq = vq_of(v, idx);

	if (vq)
		virtqueue_disable_cb(vq);
}

bool rvio_virtio_enable_cb(struct rvio_virtio *v, u16 idx)
{
	struct virtqueue *vq = vq_of(v, idx);

	return vq ? virtqueue_enable_cb(vq) : true;
}

bool rvio_virtio_enable_cb_delayed(struct rvio_virtio *v, u16 idx)
{
	struct virtqueue *vq = vq_of(v, idx);

	return vq ? virtqueue_enable_cb_delayed(vq) : true;
}

unsigned int rvio_virtio_num_free(struct rvio_virtio *v, u16 idx)
{
	struct virtqueue *vq = vq_of(v, idx);

	return vq ? vq->num_free : 0;
}

unsigned int rvio_virtio_vring_size(struct rvio_virtio *v, u16 idx)
{
	struct virtqueue *vq = vq_of(v, idx);

	return vq ? virtqueue_get_vring_size(vq) : 0;
}
