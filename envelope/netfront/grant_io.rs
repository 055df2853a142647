// SPDX-License-Identifier: GPL-2.0

//! The netfront's grants and copies (`docs/envelope.md` section 2,
//! `docs/vmpi-protocol.md` section 5): each is one kmalloc'ed object that
//! holds VMPI's `struct vmpi_grant` or `struct vmpi_copy`, the
//! scatterlist of the frame, and the frame's skb. The device owns it from
//! the post until its `done()`, which gives it back here: only then is it
//! freed, and with it the skb (so a frame's pages are never freed while
//! the host may still read or write them).
//!
//! This file holds the `unsafe` of it: building the C structures and
//! turning a `done()` pointer back into its object. What a completion
//! means is the interface's business ([`FrontDev::grant_done`],
//! [`FrontDev::copy_done`]).

use core::mem::MaybeUninit;
use core::ptr::{addr_of_mut, NonNull};
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::bindings;
use crate::front::FrontDev;
use crate::netdev::{self, RxSkb, TxSkb};
use crate::vmpi_port::PortRef;

/// The most scatterlist entries of a grant's frame or a copy's
/// destination.
pub(crate) const MAX_SG: usize = bindings::VMPI_GRANT_MAX_SG as usize;
/// `vmpi_copy.flags`.
pub(crate) const COPY_FINISH: u16 = bindings::VMPI_COPY_FINISH as u16;
/// See [`COPY_FINISH`].
pub(crate) const COPY_DISCARD: u16 = bindings::VMPI_COPY_DISCARD as u16;
/// See [`COPY_FINISH`]: a posted receive (or, with no buffer, the cancel
/// of every posted receive).
const COPY_POSTED: u16 = bindings::VMPI_COPY_POSTED as u16;

/// What an [`RxCopy`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RxKind {
    /// A copy request from an `ENVELOPE` (or its discard).
    Copy,
    /// A buffer posted for a frame the host delivers.
    Posted,
    /// The cancel of the posted buffers.
    Cancel,
}

/// Whom a grant's or a copy's completion goes to: the interface's driver
/// state and its data path.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) dev: Arc<FrontDev>,
    pub(crate) nd: netdev::Handle,
}

/// One granted frame.
///
/// # Invariants
///
/// From a successful [`grant`] until `tx_done` runs, the device owns it
/// (`g.frame` points to `sg`, which describes `skb`'s bytes): nothing
/// else touches it.
#[repr(C)]
struct TxGrant {
    /// First: a `*mut vmpi_grant` from `done()` is a `*mut TxGrant`.
    g: bindings::vmpi_grant,
    sg: [bindings::scatterlist; MAX_SG],
    skb: Option<TxSkb>,
    ctx: Ctx,
}

/// One copy request: into `skb`, or a `FINISH | DISCARD` without one.
///
/// # Invariants
///
/// As for [`TxGrant`]: the device owns it from a successful [`copy`]
/// until `rx_done` runs; `c.dst` points to `sg`, which describes `skb`'s
/// bytes, or is NULL (with `c.len` 0) when there is no `skb`.
#[repr(C)]
struct RxCopy {
    /// First: a `*mut vmpi_copy` from `done()` is a `*mut RxCopy`.
    c: bindings::vmpi_copy,
    sg: [bindings::scatterlist; MAX_SG],
    skb: Option<RxSkb>,
    meta: [u8; netdev::META_LEN],
    ctx: Ctx,
    kind: RxKind,
    /// A posted buffer's room (the transport sets `c.len` to the frame's
    /// length when it delivers one).
    room: u32,
}

/// Allocates a zeroed `T` (for objects whose C parts are valid zeroed);
/// `GFP_ATOMIC` for a grant (softirq) and a posted buffer (under a
/// spinlock), `GFP_KERNEL` for a copy (the transport's work).
fn zeroed_box<T>(gfp: kernel::alloc::Flags) -> Result<KBox<MaybeUninit<T>>> {
    Ok(KBox::<T>::new_uninit(gfp | __GFP_ZERO | __GFP_NOWARN)?)
}

/// Grants `skb`, a frame with offloads `meta`, to `dest` on `port`:
/// `dev.grant_done()` gets it back with the completion. The frame back and
/// why, if the device did not take the grant. Any context (softirq: the
/// netfront's `xmit_ref`).
pub(crate) fn grant(
    port: &PortRef<'_>,
    ctx: &Ctx,
    skb: TxSkb,
    dest: u16,
    meta: &[u8; netdev::META_LEN],
) -> core::result::Result<(), (TxSkb, Error)> {
    let Ok(frame_len) = u32::try_from(skb.len()) else {
        return Err((skb, EINVAL));
    };
    let mut b = match zeroed_box::<TxGrant>(GFP_ATOMIC) {
        Ok(b) => b,
        Err(e) => return Err((skb, e)),
    };
    let p = b.as_mut_ptr();
    // SAFETY: `p` points to the zeroed allocation; the fields not valid as
    // zeroes (`skb`, `ctx`) are written here, `g` and `sg` are plain C
    // data, valid zeroed.
    let mut b = unsafe {
        addr_of_mut!((*p).skb).write(None);
        addr_of_mut!((*p).ctx).write(ctx.clone());
        b.assume_init()
    };
    let mut skb = skb;
    let TxGrant {
        g, sg, skb: slot, ..
    } = &mut *b;
    // The entries describe the frame's memory, not the `TxSkb`, which may
    // move into the object.
    match skb.to_sg(sg) {
        Ok(n) if n > 0 => {}
        r => return Err((skb, r.err().unwrap_or(EINVAL))),
    }
    *slot = Some(skb);
    g.dest_domain = dest;
    g.frame_len = frame_len;
    g.meta = *meta;
    g.frame = sg.as_mut_ptr();
    g.done = Some(tx_done);
    let raw = KBox::into_raw(b);
    // SAFETY: `raw` is a kmalloc'ed (`KBox`) `TxGrant` whose `g`, its
    // first field (`repr(C)`), has its first block filled: `frame` is
    // `sg`, marked by `to_sg`, describing the skb's head and pages
    // (DMA-mappable kernel memory). On `Ok` the device owns the object
    // (INVARIANT): nothing touches it, the skb or its bytes until
    // `tx_done`, which alone frees it.
    let r = unsafe { port.grant(NonNull::new_unchecked(raw.cast())) };
    if let Err(e) = r {
        // SAFETY: not taken: `raw` is still ours, from `KBox::into_raw`.
        let mut b = unsafe { KBox::from_raw(raw) };
        // Always there (only `tx_done` takes it): the frame goes back.
        return b.skb.take().map_or(Ok(()), |s| Err((s, e)));
    }
    Ok(())
}

/// `vmpi_grant.done` of every [`TxGrant`].
///
/// # Safety
///
/// Called once by the transport for a grant [`grant`] posted.
unsafe extern "C" fn tx_done(g: *mut bindings::vmpi_grant, status: c_int) {
    // SAFETY: `g` is the first field of a `TxGrant` from `KBox::into_raw`
    // in `grant`, which the device gives back now, once (its invariant).
    let mut b = unsafe { KBox::from_raw(g.cast::<TxGrant>()) };
    // `gso_type`: a TSO frame.
    let tso = b.g.meta[1] != 0;
    if let Some(skb) = b.skb.take() {
        let dest = b.g.dest_domain;
        b.ctx.dev.grant_done(&b.ctx.nd, skb, dest, tso, status);
    }
}

/// Asks the device to copy `len` bytes of grant `handle` into `skb` (all
/// of it) with `flags`, or with no `skb` a `len` 0 `FINISH | DISCARD`:
/// `dev.copy_done()` gets the skb and the status. If the device does not
/// take it: why, the skb freed.
pub(crate) fn copy(
    port: &PortRef<'_>,
    ctx: &Ctx,
    handle: u64,
    skb: Option<RxSkb>,
    len: u32,
    meta: &[u8; netdev::META_LEN],
    flags: u16,
) -> Result {
    post_rx(
        port,
        ctx,
        RxKind::Copy,
        handle,
        skb,
        len,
        meta,
        flags,
        GFP_KERNEL,
    )
}

/// Posts `skb`, a buffer of `len` bytes, for a frame the host delivers
/// (a posted receive): `dev.posted_done()` gets it back with the frame or
/// without. If the device does not take it: why, the skb freed. Does not
/// sleep (the caller holds the front's `granting` lock).
pub(crate) fn post_buf(port: &PortRef<'_>, ctx: &Ctx, skb: RxSkb, len: u32) -> Result {
    let meta = [0u8; netdev::META_LEN];
    post_rx(
        port,
        ctx,
        RxKind::Posted,
        0,
        Some(skb),
        len,
        &meta,
        COPY_POSTED,
        GFP_ATOMIC,
    )
}

/// Asks the device to give back every posted buffer no frame is being
/// delivered into (`GONE`): `dev.cancel_done()` follows.
pub(crate) fn cancel_bufs(port: &PortRef<'_>, ctx: &Ctx) -> Result {
    let meta = [0u8; netdev::META_LEN];
    post_rx(
        port,
        ctx,
        RxKind::Cancel,
        0,
        None,
        0,
        &meta,
        COPY_POSTED,
        GFP_KERNEL,
    )
}

#[allow(clippy::too_many_arguments)]
fn post_rx(
    port: &PortRef<'_>,
    ctx: &Ctx,
    kind: RxKind,
    handle: u64,
    skb: Option<RxSkb>,
    len: u32,
    meta: &[u8; netdev::META_LEN],
    flags: u16,
    gfp: kernel::alloc::Flags,
) -> Result {
    let mut b = zeroed_box::<RxCopy>(gfp)?;
    let p = b.as_mut_ptr();
    // SAFETY: `p` points to the zeroed allocation; the fields not valid as
    // zeroes (`skb`, `meta`, `ctx`, `kind`; and `room`) are written here,
    // `c` and `sg` are plain C data, valid zeroed.
    let mut b = unsafe {
        addr_of_mut!((*p).skb).write(skb);
        addr_of_mut!((*p).meta).write(*meta);
        addr_of_mut!((*p).ctx).write(ctx.clone());
        addr_of_mut!((*p).kind).write(kind);
        addr_of_mut!((*p).room).write(len);
        b.assume_init()
    };
    let RxCopy { c, sg, skb, .. } = &mut *b;
    c.dst = match skb.as_mut() {
        Some(s) => {
            s.to_sg(sg)?;
            sg.as_mut_ptr()
        }
        None if len == 0 => core::ptr::null_mut(),
        None => return Err(EINVAL),
    };
    c.handle = handle;
    c.offset = 0;
    c.len = len;
    c.flags = flags;
    c.done = Some(rx_done);
    let raw = KBox::into_raw(b);
    // SAFETY: `raw` is a kmalloc'ed (`KBox`) `RxCopy` whose `c`, its
    // first field (`repr(C)`), has its first block filled: `dst` is `sg`,
    // marked by `to_sg`, describing the `len` bytes of the skb's linear
    // data (a kmalloc'ed or page-fragment head), or NULL with `len` 0. On `Ok` the device owns the
    // object (INVARIANT): nothing touches it, the skb or its bytes until
    // `rx_done`, which alone frees it.
    let r = unsafe { port.copy(NonNull::new_unchecked(raw.cast())) };
    if r.is_err() {
        // SAFETY: not taken: `raw` is still ours, from `KBox::into_raw`.
        drop(unsafe { KBox::from_raw(raw) });
    }
    r
}

/// `vmpi_copy.done` of every [`RxCopy`].
///
/// # Safety
///
/// Called once by the transport for a copy [`copy`] posted.
unsafe extern "C" fn rx_done(c: *mut bindings::vmpi_copy, status: c_int) {
    // SAFETY: `c` is the first field of an `RxCopy` from `KBox::into_raw`
    // in `copy`, which the device gives back now, once (its invariant).
    let mut b = unsafe { KBox::from_raw(c.cast::<RxCopy>()) };
    let skb = b.skb.take();
    // For a posted buffer the transport has set `len` and `meta` to the
    // delivered frame's (`VMPI_COPY_OK`).
    let len = b.c.len;
    match (b.kind, skb) {
        (RxKind::Copy, skb) => b.ctx.dev.copy_done(&b.ctx.nd, skb, &b.meta, len, status),
        (RxKind::Posted, skb) => {
            let meta = b.c.meta;
            b.ctx
                .dev
                .posted_done(&b.ctx, skb, b.room, &meta, len, status)
        }
        (RxKind::Cancel, _) => b.ctx.dev.cancel_done(),
    }
}
