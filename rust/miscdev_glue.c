// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's misc char device abstraction: see rust/miscdev_glue.h.
 *
 * Why C: 6.12's kernel crate has no misc device (later kernels have
 * kernel::miscdevice) and no attribute-group builder; the
 * fops table, compat ioctl and sysfs attribute glue stay here until then.
 */
#include <linux/compat.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

#include "miscdev_glue.h"

struct rvio_misc {
	struct miscdevice misc;
	/* Static in the registering module, which open files pin (fops.owner). */
	const struct rvio_misc_ops *ops;
	void *dev;
	struct kref ref;		/* the registrant's, and one per open file */
	spinlock_t lock;		/* covers files (process context only) */
	struct list_head files;		/* open files, for rvio_misc_wake() */
	char name[32];
	struct device_attribute attrs[RVIO_MISC_MAX_ATTRS];
	unsigned int nattrs;		/* read-only ones, first in attrs */
	struct attribute *attr_ptrs[RVIO_MISC_MAX_ATTRS + 1];
	struct attribute_group group;
	const struct attribute_group *groups[2];
};

/* One open file: it waits on a wait queue of its own, so that a wake for
 * one file (rvio_misc_file_wake()) does not make every reader of the
 * device try again. */
struct rvio_misc_file {
	struct kref ref;		/* the file's, and one per Rust FileWaker */
	struct rvio_misc *m;
	void *fpriv;
	wait_queue_head_t wq;
	atomic_t events;		/* bumped by every wake */
	struct list_head node;		/* in m->files while open */
};

static void rvio_misc_free(struct kref *ref)
{
	kfree(container_of(ref, struct rvio_misc, ref));
}

void rvio_misc_get(struct rvio_misc *m)
{
	kref_get(&m->ref);
}

void rvio_misc_put(struct rvio_misc *m)
{
	kref_put(&m->ref, rvio_misc_free);
}

static void rvio_misc_file_free(struct kref *ref)
{
	kfree(container_of(ref, struct rvio_misc_file, ref));
}

void rvio_misc_file_get(struct rvio_misc_file *f)
{
	kref_get(&f->ref);
}

void rvio_misc_file_put(struct rvio_misc_file *f)
{
	kref_put(&f->ref, rvio_misc_file_free);
}

void rvio_misc_file_wake(struct rvio_misc_file *f)
{
	atomic_inc(&f->events);
	wake_up_interruptible_all(&f->wq);
}

void rvio_misc_wake(struct rvio_misc *m)
{
	struct rvio_misc_file *f;

	spin_lock(&m->lock);
	list_for_each_entry(f, &m->files, node)
		rvio_misc_file_wake(f);
	spin_unlock(&m->lock);
}

static int rvio_misc_open(struct inode *inode, struct file *file)
{
	/* misc_open() set private_data to our miscdevice, and holds
	 * misc_mtx: the device is still registered. */
	struct rvio_misc *m = container_of(file->private_data, struct rvio_misc, misc);
	struct rvio_misc_file *f;
	int ret;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	kref_init(&f->ref);
	f->m = m;
	init_waitqueue_head(&f->wq);
	/* open may take references to f (rvio_misc_file_get()). */
	ret = m->ops->open(m->dev, f, &f->fpriv);
	if (ret) {
		rvio_misc_file_put(f);
		return ret;
	}
	kref_get(&m->ref);
	spin_lock(&m->lock);
	list_add(&f->node, &m->files);
	spin_unlock(&m->lock);
	file->private_data = f;
	return stream_open(inode, file);
}

static int rvio_misc_release(struct inode *inode, struct file *file)
{
	struct rvio_misc_file *f = file->private_data;
	struct rvio_misc *m = f->m;

	m->ops->release(f->fpriv);
	spin_lock(&m->lock);
	list_del(&f->node);
	spin_unlock(&m->lock);
	rvio_misc_put(m);
	/* A FileWaker the release left behind keeps f, not m. */
	rvio_misc_file_put(f);
	return 0;
}

/* Calls @op until it does not say -EAGAIN, waiting for a wake of the file
 * (its own, or the device's) in between unless the file is non-blocking.
 * The wait condition is lockless: the file's event count, read before
 * each try, changed. */
#define RVIO_MISC_BLOCKING(file, call)						\
({										\
	struct rvio_misc_file *__f = (file)->private_data;			\
	ssize_t __ret;								\
	for (;;) {								\
		int __seq = atomic_read(&__f->events);				\
		__ret = (call);							\
		if (__ret != -EAGAIN || ((file)->f_flags & O_NONBLOCK))	\
			break;							\
		if (wait_event_interruptible(__f->wq,				\
				atomic_read(&__f->events) != __seq)) {		\
			__ret = -ERESTARTSYS;					\
			break;							\
		}								\
	}									\
	__ret;									\
})

static ssize_t rvio_misc_read(struct file *file, char __user *buf, size_t len,
			      loff_t *ppos)
{
	struct rvio_misc_file *f = file->private_data;

	return RVIO_MISC_BLOCKING(file, f->m->ops->read(f->fpriv, buf, len));
}

static ssize_t rvio_misc_write(struct file *file, const char __user *buf,
			       size_t len, loff_t *ppos)
{
	struct rvio_misc_file *f = file->private_data;

	return RVIO_MISC_BLOCKING(file, f->m->ops->write(f->fpriv, buf, len));
}

static __poll_t rvio_misc_poll(struct file *file, poll_table *pt)
{
	struct rvio_misc_file *f = file->private_data;

	poll_wait(file, &f->wq, pt);
	return (__force __poll_t)f->m->ops->poll(f->fpriv);
}

static long rvio_misc_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct rvio_misc_file *f = file->private_data;

	return RVIO_MISC_BLOCKING(file, f->m->ops->ioctl(f->fpriv, cmd, arg));
}

static ssize_t rvio_misc_show(struct device *d, struct device_attribute *attr, char *buf)
{
	/* misc_register() made the device with the miscdevice as drvdata;
	 * attributes are removed before misc_deregister() returns. */
	struct rvio_misc *m = container_of(dev_get_drvdata(d), struct rvio_misc, misc);

	return m->ops->show(m->dev, attr - m->attrs, buf, PAGE_SIZE);
}

static ssize_t rvio_misc_store(struct device *d, struct device_attribute *attr,
			       const char *buf, size_t len)
{
	/* As for show. */
	struct rvio_misc *m = container_of(dev_get_drvdata(d), struct rvio_misc, misc);
	int ret = m->ops->store(m->dev, attr - m->attrs - m->nattrs, buf, len);

	return ret ? ret : len;
}

static const struct file_operations rvio_misc_fops = {
	.owner		= THIS_MODULE,
	.open		= rvio_misc_open,
	.release	= rvio_misc_release,
	.read		= rvio_misc_read,
	.write		= rvio_misc_write,
	.poll		= rvio_misc_poll,
	.unlocked_ioctl	= rvio_misc_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

struct rvio_misc *rvio_misc_register(const char *name, const struct rvio_misc_ops *ops,
				     void *dev, const char *const *attrs,
				     const char *const *wattrs)
{
	struct rvio_misc *m;
	unsigned int i, j;
	int ret;

	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return ERR_PTR(-ENOMEM);
	strscpy(m->name, name, sizeof(m->name));
	m->ops = ops;
	m->dev = dev;
	kref_init(&m->ref);
	spin_lock_init(&m->lock);
	INIT_LIST_HEAD(&m->files);
	m->misc.minor = MISC_DYNAMIC_MINOR;
	m->misc.name = m->name;
	m->misc.fops = &rvio_misc_fops;
	m->misc.mode = 0600;
	for (i = 0; attrs && attrs[i]; i++) {
		if (i == RVIO_MISC_MAX_ATTRS) {
			kfree(m);
			return ERR_PTR(-EINVAL);
		}
		sysfs_attr_init(&m->attrs[i].attr);
		m->attrs[i].attr.name = attrs[i];
		m->attrs[i].attr.mode = 0444;
		m->attrs[i].show = rvio_misc_show;
		m->attr_ptrs[i] = &m->attrs[i].attr;
	}
	m->nattrs = i;
	for (j = 0; wattrs && wattrs[j]; i++, j++) {
		if (i == RVIO_MISC_MAX_ATTRS || !ops->store) {
			kfree(m);
			return ERR_PTR(-EINVAL);
		}
		sysfs_attr_init(&m->attrs[i].attr);
		m->attrs[i].attr.name = wattrs[j];
		m->attrs[i].attr.mode = 0200;
		m->attrs[i].store = rvio_misc_store;
		m->attr_ptrs[i] = &m->attrs[i].attr;
	}
	if (i) {
		m->group.attrs = m->attr_ptrs;
		m->groups[0] = &m->group;
		m->misc.groups = m->groups;
	}
	ret = misc_register(&m->misc);
	if (ret) {
		kfree(m);
		return ERR_PTR(ret);
	}
	return m;
}

void rvio_misc_unregister(struct rvio_misc *m)
{
	misc_deregister(&m->misc);
	/* Blocked callers look again (and find the device gone). */
	rvio_misc_wake(m);
}
