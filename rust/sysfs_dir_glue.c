// SPDX-License-Identifier: GPL-2.0
/*
 * C half of rvio's sysfs directory abstraction: see rust/sysfs_dir_glue.h.
 *
 * Why C: 6.12's kernel crate has no kobject or sysfs attribute
 * abstraction; kobj_type, the attribute tables and the release that
 * waits for the last reference stay here until it does.
 */
#include <linux/completion.h>
#include <linux/err.h>
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "sysfs_dir_glue.h"

struct rvio_sysfs_dir {
	struct kobject kobj;
	const struct rvio_sysfs_dir_type *type;
	void *priv;
	struct kobj_attribute attrs[RVIO_SYSFS_DIR_MAX_ATTRS];
	struct attribute *attr_ptrs[RVIO_SYSFS_DIR_MAX_ATTRS + 1];
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

	return d->type->show(d->priv, attr - d->attrs, buf, PAGE_SIZE);
}

static ssize_t rvio_sysfs_dir_store(struct kobject *kobj, struct kobj_attribute *attr,
				    const char *buf, size_t count)
{
	struct rvio_sysfs_dir *d = to_dir(kobj);
	int ret = d->type->store(d->priv, attr - d->attrs, buf, count);

	return ret ? ret : count;
}

struct rvio_sysfs_dir *rvio_sysfs_dir_create(const char *name,
					     const struct rvio_sysfs_dir_type *type,
					     void *priv)
{
	struct rvio_sysfs_dir *d;
	unsigned int i, n = type->n;
	int ret;

	if (n > RVIO_SYSFS_DIR_MAX_ATTRS || !type->show || !type->store)
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
		sysfs_attr_init(&d->attrs[i].attr);
		d->attrs[i].attr.name = type->names[i];
		d->attrs[i].attr.mode = type->modes[i];
		if (type->modes[i] & 0400)
			d->attrs[i].show = rvio_sysfs_dir_show;
		if (type->modes[i] & 0200)
			d->attrs[i].store = rvio_sysfs_dir_store;
		d->attr_ptrs[i] = &d->attrs[i].attr;
	}
	d->group.attrs = d->attr_ptrs;
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
}
