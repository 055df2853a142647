/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C half of rvio's misc char device abstraction (rust/miscdev.rs is the
 * Rust half). The C half owns the struct miscdevice, the file_operations,
 * the wait queues and blocking: the Rust half's read and write never block
 * (-EAGAIN), and the C half waits for the file's next wake
 * (rvio_misc_file_wake(), or rvio_misc_wake() for every file) when the file
 * is blocking, so poll(2) and blocking calls share the file's wait queue.
 */
#ifndef RVIO_MISCDEV_GLUE_H
#define RVIO_MISCDEV_GLUE_H

#include <linux/types.h>

struct rvio_misc;
struct rvio_misc_file;

struct rvio_misc_ops {
	/* A file is opened on the device: create its state in *fpriv. @file
	 * is its wake handle: valid for the call; rvio_misc_file_get() keeps
	 * it (until rvio_misc_file_put()) beyond. */
	int (*open)(void *dev, struct rvio_misc_file *file, void **fpriv);
	void (*release)(void *fpriv);
	/* Never block: -EAGAIN when there is nothing to read / no room. */
	ssize_t (*read)(void *fpriv, void __user *buf, size_t len);
	ssize_t (*write)(void *fpriv, const void __user *buf, size_t len);
	/* Readiness now: EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP bits. */
	unsigned int (*poll)(void *fpriv);
	/* Blocks like read and write: -EAGAIN means "call again after the
	 * next wake" unless the file is non-blocking. */
	long (*ioctl)(void *fpriv, unsigned int cmd, unsigned long arg);
	/* Read-only sysfs attribute @idx (of the names given at register)
	 * of the device: write at most @len bytes into @buf, return the
	 * length. */
	ssize_t (*show)(void *dev, unsigned int idx, char *buf, size_t len);
	/* Write-only (root) sysfs attribute @idx (of the names given at
	 * register as @wattrs) of the device: @len bytes at @buf were
	 * written; 0 or -errno. */
	int (*store)(void *dev, unsigned int idx, const char *buf, size_t len);
};

#define RVIO_MISC_MAX_ATTRS 32

/* Registers /dev/@name (dynamic minor) for @dev, with read-only sysfs
 * attributes @attrs and write-only ones @wattrs (NULL-terminated names,
 * at most RVIO_MISC_MAX_ATTRS in all; in /sys/class/misc/@name/). @ops is kept, not copied: it must be static
 * in the module that links this file (open files pin that module through
 * the fops' owner). The returned object holds one reference for the
 * caller (rvio_misc_put); ERR_PTR(-errno) on failure. */
struct rvio_misc *rvio_misc_register(const char *name, const struct rvio_misc_ops *ops,
				     void *dev, const char *const *attrs,
				     const char *const *wattrs);
/* Removes /dev/@name: no open() runs after this returns. Open files stay
 * usable until they are closed. */
void rvio_misc_unregister(struct rvio_misc *m);
/* Another reference (for rvio_misc_wake()), dropped by rvio_misc_put(). */
void rvio_misc_get(struct rvio_misc *m);
void rvio_misc_put(struct rvio_misc *m);
/* Something changed: every file's blocked readers/writers and pollers look
 * again. */
void rvio_misc_wake(struct rvio_misc *m);
/* Something changed for one file: its blocked callers and pollers look
 * again (harmless once it is closed). */
void rvio_misc_file_wake(struct rvio_misc_file *f);
/* Another reference to a file's wake handle, dropped by
 * rvio_misc_file_put(). */
void rvio_misc_file_get(struct rvio_misc_file *f);
void rvio_misc_file_put(struct rvio_misc_file *f);

#endif /* RVIO_MISCDEV_GLUE_H */
