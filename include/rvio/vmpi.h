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
 * own lock held except ops->kick, which must only schedule work, and the
 * copy callbacks of vmpi_transport_rx_from() and _tx_to(), which must only
 * copy. It calls ops->flush with no lock held.
 */
#ifndef _RVIO_VMPI_H
#define _RVIO_VMPI_H

#include <linux/llist.h>
#include <linux/types.h>

#define VMPI_ABI_VERSION 14

struct device;
struct vmpi_transport;

enum vmpi_role {
	VMPI_ROLE_HOST = 0,	/* the device side (vDPA) */
	VMPI_ROLE_GUEST = 1,	/* the driver side (virtio) */
};

struct vmpi_grant;
struct vmpi_copy;
struct vmpi_domain_ops;
struct vmpi_grant_stats;

struct vmpi_transport_ops {
	/* The core has something to send: schedule the transport's work,
	 * which calls vmpi_transport_tx(). Any context (process context,
	 * possibly with the core's device mutex held, or the softirq of a
	 * vmpi_port_send_sg() caller); must not sleep. */
	void (*kick)(void *priv);
	/*
	 * Optional (NULL: kick): a writer just queued a reply, or a reader's
	 * read queued a CREDIT; run a sending pass of the transport's work
	 * now, in the caller's context, if it is not busy (else as kick),
	 * saving a hand-over to the work. Process
	 * context; the core holds no lock of its own, nor does it call this
	 * from a transport's call: it may take the transport's lock, and
	 * sleep.
	 */
	void (*flush)(void *priv);
	/*
	 * Optional, guest side with VMPI_F_GRANT negotiated (NULL or
	 * -EOPNOTSUPP otherwise): take @g or @c for the grantq or copyq
	 * (vmpi_port_grant(), vmpi_port_copy() below). Any context (the
	 * caller's, softirq included; the core takes no lock, it counts the
	 * call in flight and unregistering waits for it): must not sleep
	 * (queue it and schedule the work). A non-zero return goes to the
	 * caller, and the request is not the transport's then.
	 */
	int (*grant)(void *priv, struct vmpi_grant *g);
	int (*copy)(void *priv, struct vmpi_copy *c);
	/*
	 * Optional, host side: vmpi_port_deliver() below, forwarded, counted
	 * in flight as grant and copy are. Process context; must not sleep.
	 */
	int (*deliver)(void *priv, u64 handle, u16 src_domain, u32 frame_len, const u8 *meta);
	/*
	 * Optional: vmpi_dev_reset() below, forwarded, counted in flight as
	 * grant is. Any context; must not sleep (flag it and schedule the
	 * work, which resets the rings).
	 */
	int (*reset)(void *priv);
	/*
	 * Optional, host side: vmpi_port_bind_domain(),
	 * vmpi_port_unbind_domain() and vmpi_port_domain_stats() below,
	 * forwarded. Process context, no core lock held but the device's
	 * domain mutex: one call at a time per device, and unregistering
	 * waits for the call in flight (so they must not wait for the
	 * transport's own lock held around vmpi_transport_unregister()).
	 * The core calls bind_domain only while no port of the device holds
	 * a binding, and unbind_domain only for the port that holds it
	 * (also from vmpi_port_close()). vmpi_transport_unregister() does not
	 * call unbind_domain: the transport ends a binding as it goes away,
	 * and calls no binding's @ops->grant once it has called
	 * vmpi_transport_unregister() (the user may close its port, and free
	 * its policy, as soon as the port's down(-ENODEV) ran).
	 */
	int (*bind_domain)(void *priv, u16 domain, const struct vmpi_domain_ops *ops,
			   void *ops_priv);
	void (*unbind_domain)(void *priv);
	void (*domain_stats)(void *priv, struct vmpi_grant_stats *s);
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
/*
 * Copies the next @len bytes of a received fragment to @dst; returns @len
 * once all of them are written, or a negative errno if it cannot (a bad
 * buffer).
 */
typedef ssize_t (*vmpi_frag_read_t)(void *ctx, void *dst, size_t len);
/*
 * One received fragment of @len bytes that the core copies with @read, in
 * order (its header, then its payload), straight to where it goes: a whole
 * SDU into its own buffer, a part of a message into the message being
 * reassembled (one copy fewer than through a bounce buffer). A part @read cannot copy is a bad buffer (counted; its message
 * is dropped). The core calls @read under its device mutex: it must only
 * copy (under the lock the transport holds around this call). Process
 * context.
 */
void vmpi_transport_rx_from(struct vmpi_transport *t, size_t len, vmpi_frag_read_t read,
			    void *ctx);
/*
 * Writes the next fragment to send into @buf, a ring buffer of @room bytes
 * of the peer: returns its length (header included), 0 if nothing waits,
 * -EMSGSIZE if @room is below the peer's minimum. Process context.
 */
ssize_t vmpi_transport_tx(struct vmpi_transport *t, void *buf, size_t room);
/*
 * Copies the next @len bytes of a fragment to send after those before it;
 * returns @len, or a negative errno if it cannot (a bad buffer).
 */
typedef ssize_t (*vmpi_frag_write_t)(void *ctx, const void *src, size_t len);
/*
 * vmpi_transport_tx() for a buffer the transport writes with @write: the
 * core hands it the fragment in parts, in order (its header, then its
 * payload straight from the SDU's bytes: one copy fewer than through a
 * bounce buffer). Returns what vmpi_transport_tx() does, or -EFAULT if
 * @write failed: the fragment is lost then, as vmpi_transport_tx_lost()
 * says (the core did that; the transport does not call it), and the
 * transport gives the buffer back with nothing written (used length 0:
 * a part written alone, e.g. the header, would reach the peer as a
 * fragment). The core
 * calls @write under its device mutex: it must only copy (under the lock
 * the transport holds around this call). Process context.
 */
ssize_t vmpi_transport_tx_to(struct vmpi_transport *t, size_t room, vmpi_frag_write_t write,
			     void *ctx);
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
 * One received fragment of @len bytes (header included) in a receive
 * buffer of the transport made of two parts: @buf->hdr (its first 4
 * bytes), then @buf->data (kvmalloc'ed, or NULL: @buf->cap bytes, of which
 * the first @buf->len are initialized; the payload is the first @len - 4).
 * Each initialized byte must be zero or one the device wrote: the core may
 * give the buffer to the transport again, and its bytes to any reader. The
 * core copies what it needs out of it, except a whole SDU that fills at
 * least half of @buf->data, or a part of a message kept in its fragments'
 * buffers, when @buf->len == @buf->cap: it takes @buf->data (no copy) and
 * returns true. @buf->data is then either NULL (the transport gives its buffer new
 * memory) or a buffer the core gives in its place: kvmalloc'ed, of the
 * same @buf->cap, @buf->len == @buf->cap, holding zeros or bytes the
 * device wrote. Process context.
 */
bool vmpi_transport_rx_buf(struct vmpi_transport *t, struct vmpi_sdu *buf, size_t len);
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
/* Counts a drop the transport saw (a bad descriptor chain: reason 4): a
 * buffer from the peer that held a fragment for us; the message it may
 * have belonged to is dropped to its end. */
void vmpi_transport_drop(struct vmpi_transport *t, unsigned int reason);
/* A receive buffer of the peer was bad (counted as a bad descriptor
 * chain). If @sent, it held the fragment the last vmpi_transport_tx()
 * returned, which the peer will never see: the rest of that message is
 * not sent (counted in tx_dropped, or ctrl_dropped for a control
 * message), and the peer drops what it has of it when the next message
 * starts. Process context. */
void vmpi_transport_tx_lost(struct vmpi_transport *t, bool sent);
/*
 * A transport calls every done() of a vmpi_grant or vmpi_copy between
 * these (the returned value goes to _end): a sleepable read section that
 * vmpi_done_sync() waits for. Any context done() may run in.
 */
int vmpi_transport_done_begin(void);
void vmpi_transport_done_end(int idx);

/*
 * In-kernel users (other modules, e.g. the envelope netfront): the same
 * channels as /dev/vmpiN's files, with callbacks instead of read(2).
 */
struct vmpi_port;
struct scatterlist;

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
 * Resets the rings of device @id, from its driver's side (the guest side:
 * a virtio device reset by vmpi_guest, which then sets the device up again
 * with the same features): for a device that no longer completes what it
 * was given. Every channel of both sides goes down (-ECONNRESET to users,
 * as when a side restarts), every grant and copy request queued before
 * it completes (those the device had finished with their status, the rest
 * with -ECONNRESET), then the link comes up again. The reset runs from the
 * transport's work soon after this returns 0; -EOPNOTSUPP: the host
 * side (a vDPA device is reset by its driver); -ENODEV: no such device,
 * or it is going away. Process context. Also
 * /sys/class/misc/vmpiN/reset (docs/vmpi-sysfs.md).
 */
int vmpi_dev_reset(int id);
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
 * Queues one SDU: the @head_len bytes at @head, then the first @len bytes
 * of @sg (a marked scatterlist, e.g. an skb's: skb_to_sgvec()), copied
 * into one buffer now. Without @atomic: process context, as
 * vmpi_port_send() (the same errors; write_space follows -EAGAIN).
 * With @atomic, for a caller that cannot sleep (a net_device's
 * ndo_start_xmit): any context but hard interrupts (softirq included;
 * IRQs on), no sleep (GFP_NOWAIT); the SDU joins the device's send queue at
 * its transport's next pass, or at the next send of any port of the
 * device from process context, whichever comes first: a port's SDUs leave
 * in the order they were sent, however each was. With @atomic, returns
 * 0; -EAGAIN when 64 SDUs sent this way (by any port of the device) wait
 * for that pass (write_space is not promised: send it from process
 * context, or drop it); -ENOMEM (no memory without sleeping); -EMSGSIZE
 * (@head_len + @len above max_sdu); -EINVAL; -ENODEV (the device goes
 * away); and SDUs sent so that have not joined the send queue when the
 * link restarts or their port closes are dropped (as the send queue is
 * emptied at a restart), and so is one whose port can no longer send
 * when it joins; each is counted in the device's tx_dropped
 * (docs/vmpi-sysfs.md).
 */
int vmpi_port_send_sg(struct vmpi_port *p, const void *head, size_t head_len,
		      struct scatterlist *sg, size_t len, bool atomic);
/*
 * Releases the port. When it returns no callback of the port runs or will
 * run. Process context, not from a callback of any port of the device.
 */
void vmpi_port_close(struct vmpi_port *p);

/*
 * Grants (device feature VMPI_F_GRANT, docs/vmpi-protocol.md section 5;
 * their use: docs/envelope.md). A guest grants one other domain a
 * read-only window over a frame that stays in the guest's memory until
 * the grant completes; the host copies it once, on the receiving domain's
 * request, from the sender's pages straight into the receiver's.
 */

/* A grant's completion status (>= 0), as on the wire. */
#define VMPI_GRANT_DONE		0
#define VMPI_GRANT_REFUSED	1
#define VMPI_GRANT_UNDELIVERED	2
#define VMPI_GRANT_TIMEOUT	3
#define VMPI_GRANT_REVOKED	4
#define VMPI_GRANT_FAILED	5
#define VMPI_GRANT_STATUSES	6

/* A copy's status (>= 0), as on the wire. */
#define VMPI_COPY_OK		0
#define VMPI_COPY_BAD_REQUEST	1
#define VMPI_COPY_BAD_HANDLE	2
#define VMPI_COPY_NOT_GRANTED	3
#define VMPI_COPY_BAD_WINDOW	4
#define VMPI_COPY_NO_ROOM	5
#define VMPI_COPY_GONE		6
#define VMPI_COPY_SRC_FAULT	7
#define VMPI_COPY_DST_FAULT	8
#define VMPI_COPY_TOO_MANY	9	/* a posted receive beyond the 64 held */
#define VMPI_COPY_STATUSES	10

/* vmpi_copy.flags */
#define VMPI_COPY_FINISH	1	/* the last copy from this grant */
#define VMPI_COPY_DISCARD	2	/* with FINISH: the frame was dropped */
#define VMPI_COPY_POSTED	4	/* alone: a posted receive (below) */

/* The most scatterlist entries of a grant's frame or a copy's destination. */
#define VMPI_GRANT_MAX_SG	19

/*
 * Guest side: one grant. The caller fills the first block, keeps the
 * struct (kmalloc'ed: the transport's part is mapped for the device) and
 * the frame's memory untouched from vmpi_port_grant() until done() runs.
 */
struct vmpi_grant {
	u16 dest_domain;	/* the one domain allowed to copy */
	u32 frame_len;		/* 14 to 65519 */
	u8 meta[12];		/* struct virtio_net_hdr_v1 of the frame */
	/* The frame: frame_len bytes in at most VMPI_GRANT_MAX_SG entries,
	 * the last one marked (sg_mark_end), memory the DMA API can map. */
	struct scatterlist *frame;
	/*
	 * Called once, from the transport's work (process context, device
	 * mutex held: may call vmpi_port_grant/copy/send, not close): a
	 * completion status (VMPI_GRANT_*), or -ECONNRESET (the device was
	 * reset) or -ENODEV (it goes away; then possibly from the device's
	 * removal instead of its work, still process context): either way
	 * the device does not read the frame any more and the caller owns
	 * @g again.
	 */
	void (*done)(struct vmpi_grant *g, int status);
	/* The transport's. */
	u8 hdr[24];
	__le32 status;
	struct llist_node node;
};

/*
 * Guest side: one copy request: copy @len bytes at @offset of the frame
 * of grant @handle (from an ENVELOPE) into @dst. Owned by the device from
 * vmpi_port_copy() until done(), as for a grant.
 *
 * Or, with @flags VMPI_COPY_POSTED alone (@handle and @offset 0), a
 * posted receive: @dst is an empty buffer of @len bytes (14 to 65519)
 * that the device keeps (64 at most per device; and the guest transport
 * lets posted receives hold at most half the copyq's descriptors: more
 * complete VMPI_COPY_TOO_MANY) until a frame granted to this domain is delivered
 * into it (the host's vmpi_port_deliver()), or the device is reset.
 * done(VMPI_COPY_OK) then finds the frame in @dst and the transport has
 * set @handle (the grant, finished), @src_domain, @len (the frame's
 * length) and @meta (its virtio_net_hdr_v1, as the switch checked it);
 * any other status: nothing was delivered (the copy failed: the sender's
 * grant completes VMPI_GRANT_FAILED; VMPI_COPY_GONE: cancelled). A posted
 * receive with @len 0 and no @dst cancels every posted receive of the
 * device (whichever port posted it) no frame is being delivered into:
 * they complete VMPI_COPY_GONE
 * (a user that goes away while the device stays posts it, then waits for
 * its posted receives).
 */
struct vmpi_copy {
	u64 handle;
	u32 offset;
	u32 len;		/* 0 with VMPI_COPY_FINISH: finish only */
	u16 flags;		/* VMPI_COPY_* */
	/* At least @len bytes, at most VMPI_GRANT_MAX_SG entries, marked. */
	struct scatterlist *dst;
	/* As vmpi_grant.done: a VMPI_COPY_* status (@len bytes are in @dst
	 * only with VMPI_COPY_OK), or -ECONNRESET, -ENODEV. */
	void (*done)(struct vmpi_copy *c, int status);
	/* Set by the transport for a posted receive's VMPI_COPY_OK. */
	u16 src_domain;
	u8 meta[12];
	/* The transport's. */
	u8 req[20];
	u8 delivery[32];
	__le32 status;
	struct llist_node node;
};

/*
 * Queues a grant (a copy request) on the port's device. 0: done() will be
 * called. -EOPNOTSUPP: the device did not negotiate VMPI_F_GRANT (or is
 * the host side); -EINVAL: a field out of range; -EPIPE, -ENODEV: the
 * port is down. Any context (softirq included); no ordering between the
 * completions. The caller bounds what it queues (the device holds at most
 * max_grants grants, more complete REFUSED; and half of them to one
 * destination, more complete UNDELIVERED).
 */
int vmpi_port_grant(struct vmpi_port *p, struct vmpi_grant *g);
int vmpi_port_copy(struct vmpi_port *p, struct vmpi_copy *c);
/*
 * Waits until every done() call that has started has returned, whichever
 * device it is of: a user whose last request has completed calls it
 * before it frees what done() uses, or lets its module go (done()'s own
 * code may still be running when the request is seen completed).
 * Process context; sleeps.
 */
void vmpi_done_sync(void);

/*
 * Host side: what decides about the grants of a domain (the envelope
 * switch).
 */
struct vmpi_domain_ops {
	/*
	 * Domain @priv's device took a grant and recorded it as @handle:
	 * decide. Return 0 to let it stand (an envelope naming @handle is on
	 * its way to @dest_domain, which copies and finishes it), or
	 * VMPI_GRANT_REFUSED or VMPI_GRANT_UNDELIVERED to complete it now.
	 * @addrs: the frame's first 14 bytes (destination and source MAC,
	 * ethertype) as every copy will deliver them; @meta: its
	 * virtio_net_hdr_v1. Process context, from the device's work with its
	 * lock held: may call vmpi_port_send(), not the functions below.
	 */
	int (*grant)(void *priv, u64 handle, u16 dest_domain, const u8 *addrs,
		     const u8 *meta, u32 frame_len);
};

/*
 * Host side, from a vmpi_domain_ops.grant call that lets grant @handle
 * (of domain @src_domain, a frame of @frame_len bytes with offloads
 * @meta) stand: delivers it to the domain of port @p's device (its
 * destination) into a posted receive of that device's driver, instead of
 * an ENVELOPE message. 0: the device copies the frame into the smallest
 * free posted buffer that holds it, or, if none is free, into the next
 * the driver posts (if a buffer it holds or the last it posted holds the
 * frame), in its work pass, in the order of these calls, and finishes the
 * grant (or completes it VMPI_GRANT_UNDELIVERED if the driver resets
 * first, or if the delivery waits in vain: the driver posts smaller
 * buffers, cancels them, or posts none within 250 ms). -ENOSPC: no
 * posted receive will hold it, or 64 deliveries are queued for the
 * device (send an ENVELOPE); -EINVAL: @frame_len out of
 * range or @meta malformed; -ENODEV: the device is not
 * a domain, not running or going away; -EOPNOTSUPP: a guest port.
 * Process context (the policy's call); does not sleep.
 */
int vmpi_port_deliver(struct vmpi_port *p, u64 handle, u16 src_domain, u32 frame_len,
		      const u8 *meta);

/* Counters of a domain's grants (since its bind). */
struct vmpi_grant_stats {
	u64 grants;				/* taken from the grantq */
	u64 completions[VMPI_GRANT_STATUSES];	/* by status */
	u64 copies[VMPI_COPY_STATUSES];		/* this domain's copy requests, by status */
	u64 copied_bytes;			/* copied for this domain's requests, page to page */
	u64 delivered;				/* frames delivered into posted receives */
	u64 waited;				/* deliveries that waited for a posted receive */
	u64 wait_gave_up;			/* of those, given up (UNDELIVERED) */
	u64 over_share;				/* completed UNDELIVERED at once: half of
						 * max_grants named that destination */
	u64 passes;				/* work passes that took a grant, a copy
						 * request or a delivery */
	u64 passes_full;			/* of those, passes that took copy_batch
						 * of one kind, so ran again */
	u32 held;				/* grants held now */
	u32 posted;				/* posted receives held now */
};

/*
 * Host side: the port's device is domain @domain (1 to 32751) until
 * vmpi_port_unbind_domain() or vmpi_port_close(): its grants are
 * recorded and put to @ops, and its copy requests are served. -EOPNOTSUPP
 * (a guest port), -EINVAL, -EEXIST (@domain is another device's), -EBUSY
 * (this device is a domain already). Process context; not with a lock
 * that @ops->grant takes.
 */
int vmpi_port_bind_domain(struct vmpi_port *p, u16 domain,
			  const struct vmpi_domain_ops *ops, void *priv);
/*
 * Ends the binding (if this port holds it; otherwise nothing): every
 * grant of the domain completes
 * VMPI_GRANT_REVOKED (those a copy holds when it ends), copies into it
 * fail, and when this returns no @ops->grant call runs or will run.
 * Process context; not with a lock that @ops->grant takes.
 */
void vmpi_port_unbind_domain(struct vmpi_port *p);
/*
 * The counters of the port's domain (zeroes if not bound; once the device
 * went away while bound, the counters it had then). Process context.
 */
void vmpi_port_domain_stats(struct vmpi_port *p, struct vmpi_grant_stats *s);

#endif /* _RVIO_VMPI_H */
