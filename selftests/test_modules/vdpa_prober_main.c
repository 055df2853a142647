// SPDX-License-Identifier: GPL-2.0
/*
 * Test module: a vDPA bus driver that drives a device's config ops the
 * way no bus driver in the kernel would, to reach checks that
 * vhost_vdpa and virtio_vdpa make before the device sees a request
 * (issue 13, finding 6: the device itself refuses a queue size that is
 * not a power of two or above its maximum). It binds only a device whose
 * driver_override names it; its probe starts queue 0 with each size of
 * `sizes`, logs "vdpa_prober: DEV: size N: status 0x.." for each, resets
 * the device and returns -ENODEV (nothing stays bound).
 * selftests/vmpi/host_device.sh reads the lines.
 *
 * Why C: it calls struct vdpa_config_ops directly and registers a
 * struct vdpa_driver, which 6.12's kernel crate does not bind.
 */
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/vdpa.h>
#include <linux/virtio_config.h>

static unsigned short sizes[4] = { 256, 3, 512 };
static int nsizes = 3;
module_param_array(sizes, ushort, &nsizes, 0444);
MODULE_PARM_DESC(sizes, "queue sizes to start queue 0 with, in turn");

/* Rings of up to 512 entries: descriptors 8 KiB, avail and used rings. */
#define RING_ORDER 3

static u8 try_size(struct vdpa_device *vdpa, u16 num, void *mem)
{
	const struct vdpa_config_ops *ops = vdpa->config;
	phys_addr_t base = virt_to_phys(mem);
	u8 status;
	int i;

	vdpa_reset(vdpa, 0);
	/* The DMA device: the device maps physical memory (identity). */
	if (ops->get_vq_dma_dev)
		ops->get_vq_dma_dev(vdpa, 0);
	ops->set_status(vdpa, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vdpa_set_features(vdpa, BIT_ULL(VIRTIO_F_VERSION_1) |
			  BIT_ULL(VIRTIO_F_ACCESS_PLATFORM));
	ops->set_status(vdpa, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			VIRTIO_CONFIG_S_FEATURES_OK);
	ops->set_vq_num(vdpa, 0, num);
	ops->set_vq_address(vdpa, 0, base, base + 16 * 512, base + 16 * 512 + 4096);
	ops->set_vq_ready(vdpa, 0, true);
	ops->set_status(vdpa, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	/* A device that checks at start has said so by now; give one that
	 * checks in its work a moment. */
	for (i = 0; i < 20; i++) {
		status = ops->get_status(vdpa);
		if (status & VIRTIO_CONFIG_S_NEEDS_RESET)
			break;
		msleep(10);
	}
	vdpa_reset(vdpa, 0);
	return status;
}

static struct vdpa_driver vdpa_prober;

static int vdpa_prober_probe(struct vdpa_device *vdpa)
{
	void *mem;
	int i;

	/* Only the device named for it (the bus binds any device without a
	 * driver_override to any driver). */
	if (device_match_driver_override(&vdpa->dev, &vdpa_prober.driver) <= 0)
		return -ENODEV;
	mem = (void *)__get_free_pages(GFP_KERNEL | __GFP_ZERO, RING_ORDER);
	if (!mem)
		return -ENOMEM;
	for (i = 0; i < nsizes; i++)
		pr_info("vdpa_prober: %s: size %u: status %#x\n", dev_name(&vdpa->dev),
			sizes[i], try_size(vdpa, sizes[i], mem));
	free_pages((unsigned long)mem, RING_ORDER);
	/* Nothing stays bound: the device is free for the next driver. */
	return -ENODEV;
}

static void vdpa_prober_remove(struct vdpa_device *vdpa)
{
}

static struct vdpa_driver vdpa_prober = {
	.driver.name = "vdpa_prober",
	.probe = vdpa_prober_probe,
	.remove = vdpa_prober_remove,
};
module_vdpa_driver(vdpa_prober);

MODULE_DESCRIPTION("rvio test: a vDPA driver that starts queues of any size");
MODULE_LICENSE("GPL");
