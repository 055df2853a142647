/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's sysfs directory abstraction (rust/sysfs_dir.rs is the
 * Rust half): a directory /sys/kernel/<name>/ of attributes, each readable,
 * writable or both, whose show and store go to the Rust half by index.
 */
#ifndef RVIO_SYSFS_DIR_GLUE_H
#define RVIO_SYSFS_DIR_GLUE_H

#include <linux/types.h>

struct rvio_sysfs_dir;

#define RVIO_SYSFS_DIR_MAX_ATTRS 16

/* What a directory holds and does: one constant table per directory type
 * of the Rust half, which outlives every directory made with it. */
struct rvio_sysfs_dir_type {
	/* Attribute @idx: write the bytes of its text from offset @skip on,
	 * at most @len of them, into @buf; return how many (0: the end) or
	 * -errno. @skip is 0 but for a large attribute. */
	ssize_t (*show)(void *priv, unsigned int idx, char *buf, size_t len, loff_t skip);
	/* Attribute @idx was written @len bytes: 0 or -errno. */
	int (*store)(void *priv, unsigned int idx, const char *buf, size_t len);
	/* Attributes @names[i] of mode @modes[i] (0444, 0400, 0200 or 0644),
	 * @n of them, at most RVIO_SYSFS_DIR_MAX_ATTRS. */
	const char *const *names;
	const u16 *modes;
	unsigned int n;
	/* Large attributes, a bit per index: their text may be longer than a
	 * page. Each is a binary attribute of no set size, read in pages
	 * (show() renders its text for each and keeps the page asked for);
	 * each write(2) of less than a page is one store(), a longer one is
	 * refused (-E2BIG). */
	u32 large;
};

/*
 * Creates /sys/kernel/@name/ with the attributes of @type (pointed to until
 * the directory is destroyed), whose show and store get @priv. ERR_PTR() on
 * failure (-EINVAL, -ENOMEM, -EEXIST), never NULL.
 */
struct rvio_sysfs_dir *rvio_sysfs_dir_create(const char *name,
					     const struct rvio_sysfs_dir_type *type,
					     void *priv);
/*
 * Removes the directory. When this returns no show or store runs or will
 * run. Process context, not holding a lock that show or store takes.
 */
void rvio_sysfs_dir_destroy(struct rvio_sysfs_dir *d);

#endif /* RVIO_SYSFS_DIR_GLUE_H */
