/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * VMPI char device ABI (/dev/vmpiN, one per VMPI device, host or guest
 * side); docs/vmpi-sysfs.md is the full description.
 *
 * An open file is first made one of: a raw channel (VMPI_IOC_BIND_RAW), a
 * flow to a named application of the peer (VMPI_IOC_ALLOC), a registration
 * of an application name (VMPI_IOC_REGISTER), or a flow accepted for a
 * registered name (VMPI_IOC_ACCEPT). On a channel or flow, each read(2)
 * returns exactly one SDU (-EMSGSIZE, SDU kept, if the buffer is too
 * small) and each write(2) sends exactly one SDU of 0 to 65535 bytes
 * (-EMSGSIZE above). Blocking unless O_NONBLOCK (-EAGAIN); poll(2)
 * reports EPOLLIN, EPOLLOUT, and EPOLLERR when the device or the flow went
 * away (-ECONNRESET/-EPIPE for a flow the peer closed or reset, -ENODEV
 * once the device is deleted).
 */
#ifndef _UAPI_RVIO_VMPI_H
#define _UAPI_RVIO_VMPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VMPI_IOC_MAGIC 0xB9

/* Longest application name: 1 to 64 printable ASCII bytes (0x21-0x7e). */
#define VMPI_NAME_MAX 64

/* An application name, NUL-padded (no NUL needed at 64 bytes). */
struct vmpi_name {
	char name[VMPI_NAME_MAX];
};

/* VMPI_IOC_ALLOC's argument. */
struct vmpi_alloc {
	struct vmpi_name dst;	/* the peer's application */
	struct vmpi_name src;	/* ours, for the peer's information; may be empty */
	__u32 timeout_ms;	/* 0: the default (3000); at most 60000 */
	__u32 reserved;		/* 0 */
};

/*
 * Bind the file to raw channel *arg (1 .. num_channels-1): no allocation,
 * no credit; a full receive queue drops (counted rx_full). -EINVAL: bad
 * channel or file already in use; -EBUSY: channel in use on this side.
 */
#define VMPI_IOC_BIND_RAW _IOW(VMPI_IOC_MAGIC, 1, __u32)

/*
 * Register application name *arg on this device side: the peer's
 * allocations to it wait in this file's backlog (16; more are refused)
 * until a VMPI_IOC_ACCEPT; poll(2) reports EPOLLIN while one waits. Closing
 * the file unregisters the name and refuses what waits. -EADDRINUSE: the
 * name is registered; -EINVAL: bad name or file already in use.
 */
#define VMPI_IOC_REGISTER _IOW(VMPI_IOC_MAGIC, 2, struct vmpi_name)

/*
 * Accept the oldest allocation waiting for registered name *arg: this file
 * becomes that flow. Returns the flow's channel. Blocks until one waits
 * (-EAGAIN with O_NONBLOCK). -ENOENT: the name is not registered here;
 * -EINVAL: bad name or file already in use.
 */
#define VMPI_IOC_ACCEPT _IOW(VMPI_IOC_MAGIC, 3, struct vmpi_name)

/*
 * Allocate a flow to application arg->dst of the peer: this file becomes
 * the flow. Returns the flow's channel. Blocks until the peer answers or
 * the timeout; with O_NONBLOCK returns -EAGAIN while the answer is
 * pending, and poll(2) reports EPOLLOUT (done) or EPOLLERR (failed): call
 * again for the result. -ENOENT: no such application; -ECONNREFUSED: its
 * backlog is full; -ETIMEDOUT: no answer in time; -ENOTCONN: the link is
 * not up; -EBUSY: no free channel; -ECONNRESET: the peer restarted;
 * -EISCONN: the file is already an open flow; -EINVAL: bad names,
 * timeout or reserved field, or the file is something else.
 */
#define VMPI_IOC_ALLOC _IOW(VMPI_IOC_MAGIC, 4, struct vmpi_alloc)

#endif /* _UAPI_RVIO_VMPI_H */
