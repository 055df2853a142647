// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's sysfs directory abstraction: see rust/sysfs_dir_glue.h.
 *
 * Why C: 6.12's kernel crate has no kobject or sysfs attribute
 * abstraction; kobj_type, the attribute tables and the release that
 * waits for the last reference stay here until it does.
 */
#include <linux/bits.h>
#include <linux/completion.h>
#include <linux/err.h>
#include <linux/kobject.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "sysfs_dir_glue.h"

struct rvio_sysfs_dir {
	struct kobject kobj;
	const struct rvio_sysfs_dir_type *type;
	void *priv;
	struct kobj_attribute attrs[RVIO_SYSFS_DIR_MAX_ATTRS];
	struct attribute *attr_ptrs[RVIO_SYSFS_DIR_MAX_ATTRS + 1];
	/* The large attributes, by the same index. */
	struct bin_attribute bin_attrs[RVIO_SYSFS_DIR_MAX_ATTRS];
	struct bin_attribute *bin_ptrs[RVIO_SYSFS_DIR_MAX_ATTRS + 1];
	struct attribute_group group;
	/* Completed by the release, which destroy waits for: the release is
	 * module code (and CONFIG_DEBUG_KOBJECT_RELEASE delays it). */
	struct completion *released;
};

static struct rvio_sysfs_dir *to_dir(struct kobject *kobj)
{
	return container_of(kobj, struct rvio_sysfs_dir, kobj);
}

static void rvio_sysfs_dir_release(struct kobject *kobj)
{
	struct rvio_sysfs_dir *d = to_dir(kobj);
	struct completion *released = d->released;

	kfree(d);
	if (released)
		complete(released);
}

static const struct kobj_type rvio_sysfs_dir_ktype = {
	.release	= rvio_sysfs_dir_release,
	.sysfs_ops	= &kobj_sysfs_ops,
};

static ssize_t rvio_sysfs_dir_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct rvio_sysfs_dir *d = to_dir(kobj);

	return d->type->show(d->priv, attr - d->attrs, buf, PAGE_SIZE, 0);
}

static ssize_t rvio_sysfs_dir_store(struct kobject *kobj, struct kobj_attribute *attr,
				    const char *buf, size_t count)
{
	struct rvio_sysfs_dir *d = to_dir(kobj);
	int ret = d->type->store(d->priv, attr - d->attrs, buf, count);

	return ret ? ret : count;
}

static ssize_t rvio_sysfs_dir_bin_read(struct file *file, struct kobject *kobj,
				       struct bin_attribute *attr, char *buf, loff_t off,
				       size_t count)
{
	struct rvio_sysfs_dir *d = to_dir(kobj);

	return d->type->show(d->priv, attr - d->bin_attrs, buf, count, off);
}

static ssize_t rvio_sysfs_dir_bin_write(struct file *file, struct kobject *kobj,
					struct bin_attribute *attr, char *buf, loff_t off,
					size_t count)
{
	struct rvio_sysfs_dir *d = to_dir(kobj);
	int ret;

	/* kernfs cuts a longer write into pages: refuse it whole, as it
	 * refuses one to a text attribute (whose atomic_write_len is a page). */
	if (count >= PAGE_SIZE)
		return -E2BIG;
	ret = d->type->store(d->priv, attr - d->bin_attrs, buf, count);
	return ret ? ret : count;
}

struct rvio_sysfs_dir *rvio_sysfs_dir_create(const char *name,
					     const struct rvio_sysfs_dir_type *type,
					     void *priv)
{
	struct rvio_sysfs_dir *d;
	unsigned int i, n = type->n, nattr = 0, nbin = 0;
	int ret;

	if (n > RVIO_SYSFS_DIR_MAX_ATTRS || !type->show || !type->store ||
	    type->large >> n)
		return ERR_PTR(-EINVAL);
	for (i = 0; i < n; i++) {
		u16 mode = type->modes[i];

		if (mode != 0444 && mode != 0400 && mode != 0200 && mode != 0644)
			return ERR_PTR(-EINVAL);
	}
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return ERR_PTR(-ENOMEM);
	d->type = type;
	d->priv = priv;
	for (i = 0; i < n; i++) {
		struct bin_attribute *b = &d->bin_attrs[i];
		struct kobj_attribute *a = &d->attrs[i];

		if (type->large & BIT(i)) {
			sysfs_bin_attr_init(b);
			b->attr.name = type->names[i];
			b->attr.mode = type->modes[i];
			if (type->modes[i] & 0400)
				b->read = rvio_sysfs_dir_bin_read;
			if (type->modes[i] & 0200)
				b->write = rvio_sysfs_dir_bin_write;
			d->bin_ptrs[nbin++] = b;
			continue;
		}
		sysfs_attr_init(&a->attr);
		a->attr.name = type->names[i];
		a->attr.mode = type->modes[i];
		if (type->modes[i] & 0400)
			a->show = rvio_sysfs_dir_show;
		if (type->modes[i] & 0200)
			a->store = rvio_sysfs_dir_store;
		d->attr_ptrs[nattr++] = &a->attr;
	}
	d->group.attrs = d->attr_ptrs;
	d->group.bin_attrs = d->bin_ptrs;
	ret = kobject_init_and_add(&d->kobj, &rvio_sysfs_dir_ktype, kernel_kobj, "%s", name);
	if (!ret)
		ret = sysfs_create_group(&d->kobj, &d->group);
	if (ret) {
		/* Frees @d (release), also after a failed kobject_init_and_add. */
		kobject_put(&d->kobj);
		return ERR_PTR(ret);
	}
	return d;
}

void rvio_sysfs_dir_destroy(struct rvio_sysfs_dir *d)
{
	DECLARE_COMPLETION_ONSTACK(released);

	d->released = &released;
	/* Removing the files waits for running show and store calls. */
	sysfs_remove_group(&d->kobj, &d->group);
	kobject_del(&d->kobj);
	kobject_put(&d->kobj);
	wait_for_completion(&released);
	/* The release may still be returning through this module's code
	 * after complete(), on another thread (the last kobject_put()), and
	 * the caller is module exit: wait until every task has switched
	 * voluntarily, which a task inside a function has not. */
	synchronize_rcu_tasks();
}
