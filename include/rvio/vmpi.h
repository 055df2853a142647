/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VMPI in-kernel C-ABI of vmpi.ko, the transport-independent part of VMPI
 * (the paper's VMPI-HL): channels, the control protocol, the char devices.
 * Declared once here, implemented in Rust (vmpi/core/ffi.rs), exported by
 * vmpi/core/vmpi_core_exports.c.
 *
 * Transports (the paper's VMPI-LL: vmpi_guest's virtio driver, vmpi_host's
 * vDPA device) register each device and move fragments (one ring buffer
 * each: 4-byte header and payload, docs/vmpi-protocol.md) between their
 * rings and the core. Lock order: a transport may hold its own lock when
 * it calls vmpi_transport_*(); the core never calls a transport with its
 * own lock held except ops->kick, which must only schedule work.
 */
#ifndef _RVIO_VMPI_H
#define _RVIO_VMPI_H

#include <linux/types.h>

#define VMPI_ABI_VERSION 1

struct device;
struct vmpi_transport;

enum vmpi_role {
	VMPI_ROLE_HOST = 0,	/* the device side (vDPA) */
	VMPI_ROLE_GUEST = 1,	/* the driver side (virtio) */
};

struct vmpi_transport_ops {
	/* The core has something to send: schedule the transport's work,
	 * which calls vmpi_transport_tx(). Called in process context,
	 * possibly with the core's device mutex held; must not sleep. */
	void (*kick)(void *priv);
};

/*
 * Registers one device with configuration space @cfg (@cfg_len bytes, as
 * the device offers it); @name names it on the transport's side (the vDPA
 * or virtio device). Returns the core's handle, or an ERR_PTR() (-EINVAL
 * bad configuration, -ENOMEM). The device gets /dev/vmpiN and
 * /sys/class/misc/vmpiN/ (docs/vmpi-sysfs.md). Process context.
 */
struct vmpi_transport *vmpi_transport_register(enum vmpi_role role, const char *name,
					       const void *cfg, size_t cfg_len,
					       const struct vmpi_transport_ops *ops,
					       void *priv);
/*
 * The device goes away: its users get -ENODEV, /dev/vmpiN is removed.
 * After this returns the core does not call @ops or use @priv again.
 * Process context.
 */
void vmpi_transport_unregister(struct vmpi_transport *t);
/*
 * The rings were reset (this side or the peer restarted): the core resets
 * every channel (users get -ECONNRESET) and queues a HELLO.
 */
void vmpi_transport_restart(struct vmpi_transport *t);
/* One received fragment (a whole ring buffer). Process context. */
void vmpi_transport_rx(struct vmpi_transport *t, const void *frag, size_t len);
/*
 * Writes the next fragment to send into @buf, a ring buffer of @room bytes
 * of the peer: returns its length (header included), 0 if nothing waits,
 * -EMSGSIZE if @room is below the peer's minimum. Process context.
 */
ssize_t vmpi_transport_tx(struct vmpi_transport *t, void *buf, size_t room);
/*
 * The length the next fragment would have with unlimited room (a whole
 * message), 0 if nothing waits: for a transport that sizes each buffer.
 */
size_t vmpi_transport_tx_len(struct vmpi_transport *t);
/*
 * An SDU handed over whole: @hdr is its wire header, @data its @len bytes
 * (kvmalloc'ed; @cap bytes allocated, 0 if none: then @data is not a
 * pointer to free). The taker owns it: Rust rebuilds the KVVec<u8> from
 * (data, len, cap), C calls kvfree(data) when @cap is not 0.
 */
struct vmpi_sdu {
	__u8 hdr[4];
	void *data;
	size_t len;
	size_t cap;
};
/*
 * For a transport whose buffers have no size limit (the guest's txq): if
 * the next message is a data SDU not yet started, of at most @max_len
 * bytes, hands it over whole in @sdu (no copy) and returns 1; returns 0 if
 * nothing waits, the next fragment is a control message or the SDU is
 * longer (use vmpi_transport_tx()), -EINVAL on the host side. Process
 * context.
 */
int vmpi_transport_tx_take(struct vmpi_transport *t, size_t max_len, struct vmpi_sdu *sdu);
/*
 * The transport is done with @sdu from vmpi_transport_tx_take() (the peer
 * has it): the core keeps its bytes for reuse or frees them. Instead of
 * freeing it; process context.
 */
void vmpi_transport_tx_done(struct vmpi_transport *t, struct vmpi_sdu *sdu);
/* Counts a drop the transport saw (a bad descriptor chain: reason 4). */
void vmpi_transport_drop(struct vmpi_transport *t, unsigned int reason);

/*
 * In-kernel users (other modules, e.g. the envelope netfront): the same
 * channels as /dev/vmpiN's files, with callbacks instead of read(2).
 */
struct vmpi_port;

struct vmpi_port_ops {
	/*
	 * An SDU arrived on the port; @sdu is valid during the call only.
	 * Process context (a work item of the device, or, for down(-ENODEV),
	 * the transport's vmpi_transport_unregister()), one callback of a
	 * device at a time. Callbacks may call vmpi_port_send() but must not
	 * call vmpi_port_close() for any port of the device (it waits for
	 * the callbacks to finish): close from another context, e.g. a work
	 * item the callback queues.
	 */
	void (*rx)(struct vmpi_port *port, void *priv, const void *sdu, size_t len);
	/* vmpi_port_send() said -EAGAIN and there is room now. */
	void (*write_space)(struct vmpi_port *port, void *priv);
	/*
	 * The port cannot carry SDUs any more: -ENODEV (the device is being
	 * removed) or -ECONNRESET. Called once; the user then closes it
	 * (not from this callback, see rx).
	 */
	void (*down)(struct vmpi_port *port, void *priv, int err);
};

/*
 * The id (the N of /dev/vmpiN) of the first device of @role whose
 * transport is named @transport (the vDPA or virtio device; NULL: any), or
 * -ENODEV. Process context.
 */
int vmpi_dev_find(enum vmpi_role role, const char *transport);
/*
 * Binds raw channel @channel of device @id for @ops (no allocation, no
 * credit, docs/vmpi-sysfs.md). Returns the port, or an ERR_PTR():
 * -ENODEV no such device, -EINVAL bad channel or @ops without rx or down,
 * -EBUSY channel in use on this side, -EMFILE 4096 ports (files and
 * in-kernel users) on the device already, -ENOMEM. Process context.
 */
struct vmpi_port *vmpi_port_open(int id, u16 channel, const struct vmpi_port_ops *ops,
				 void *priv);
/*
 * Queues one SDU of 0 to max_sdu bytes (copied). Returns 0; -EAGAIN when
 * the send queue is full (ops->write_space follows); -EMSGSIZE too long;
 * -EPIPE or -ENODEV once the port is down. Process context.
 */
int vmpi_port_send(struct vmpi_port *p, const void *sdu, size_t len);
/*
 * Releases the port. When it returns no callback of the port runs or will
 * run. Process context, not from a callback of any port of the device.
 */
void vmpi_port_close(struct vmpi_port *p);

#endif /* _RVIO_VMPI_H */
