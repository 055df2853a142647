/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * VMPI char device ABI (/dev/vmpiN, one per VMPI device, host or guest
 * side). An open file is bound to one channel; then each read(2) returns
 * exactly one SDU (-EMSGSIZE, SDU kept, if the buffer is too small) and
 * each write(2) sends exactly one SDU of 0 to 65535 bytes (-EMSGSIZE
 * above). Blocking unless O_NONBLOCK (-EAGAIN); poll(2) reports EPOLLIN,
 * EPOLLOUT, and EPOLLERR when the device or the peer went away
 * (-ECONNRESET, or -ENODEV once the device is deleted).
 */
#ifndef _UAPI_RVIO_VMPI_H
#define _UAPI_RVIO_VMPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VMPI_IOC_MAGIC 0xB9

/*
 * Bind the file to raw channel *arg (1 .. num_channels-1): no allocation,
 * no credit; a full receive queue drops (counted rx_full). -EINVAL: bad
 * channel or file already bound; -EBUSY: channel in use on this side.
 */
#define VMPI_IOC_BIND_RAW _IOW(VMPI_IOC_MAGIC, 1, __u32)

#endif /* _UAPI_RVIO_VMPI_H */
