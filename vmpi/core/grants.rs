// SPDX-License-Identifier: GPL-2.0

//! Grants (`VMPI_F_GRANT`, include/rvio/vmpi.h): what the core forwards
//! from in-kernel users to their device's transport. The guest side's
//! grants and copies (and kicks from any context) go through a
//! [`TransportGate`], callable from any context; the host side's domain binding through [`Domains`], in
//! process context. Both stop at `vmpi_transport_unregister()`: after it
//! the core calls none of the transport's grant or domain ops again.

use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

use crate::bindings;
use crate::errno;

/// The highest domain id (include/rvio/vmpi.h: "1 to 32751").
pub(crate) const MAX_DOMAIN: u16 = 32751;
/// The shortest and longest granted frame (`vmpi_grant.frame_len`).
pub(crate) const MIN_FRAME: u32 = 14;
/// See [`MIN_FRAME`].
pub(crate) const MAX_FRAME: u32 = 65519;

/// [`TransportGate::state`]: closed, no call starts any more.
const CLOSED: usize = 1;
/// [`TransportGate::state`]: one call in flight.
const USER: usize = 2;

/// The transport's ops callable from any context (softirq included):
/// `kick`, `grant`, `copy`, `deliver` and `reset`, while the gate is open. A caller
/// counts itself in with an atomic (no lock, so no context can deadlock on
/// it), and [`TransportGate::close`] waits for those in flight.
///
/// # Invariants
///
/// While `state` lacks [`CLOSED`], `ops` and `priv_` are the registered
/// transport's (valid, and those ops callable in any context); once [`TransportGate::close`] set it, no call that counted itself
/// in after that uses them, and `close` returns only when those counted in
/// before have left.
pub(crate) struct TransportGate {
    ops: *const bindings::vmpi_transport_ops,
    priv_: *mut c_void,
    /// [`CLOSED`], plus [`USER`] per call in flight.
    state: AtomicUsize,
}

// SAFETY: `ops` and `priv_` are only used through `with`, while the gate
// is open (type invariant), and the header lets the transport's kick,
// grant, copy, deliver and reset ops be called in any context on any thread;
// `state` is atomic.
unsafe impl Send for TransportGate {}
// SAFETY: as for `Send`: `&TransportGate` only reads the pointers and updates
// `state` atomically.
unsafe impl Sync for TransportGate {}

impl TransportGate {
    /// # Safety
    ///
    /// `ops` and `priv_` stay valid, and `ops->kick`, `ops->grant`,
    /// `ops->copy`, `ops->deliver` and `ops->reset` callable with `priv_` from any
    /// context, until [`TransportGate::close`] returns
    /// (the contract of `vmpi_transport_register()`'s caller: until
    /// `vmpi_transport_unregister()`, which closes the gate).
    pub(crate) unsafe fn new(ops: *const bindings::vmpi_transport_ops, priv_: *mut c_void) -> Self {
        // INVARIANT: open, with the pointers valid as the caller guarantees.
        Self {
            ops,
            priv_,
            state: AtomicUsize::new(0),
        }
    }

    /// Runs `f` with the transport's ops while the gate is open; `ENODEV`
    /// once it is closed. `f` must not sleep (but in
    /// [`TransportGate::flush`]).
    fn with(&self, f: impl FnOnce(&bindings::vmpi_transport_ops, *mut c_void) -> c_int) -> c_int {
        // INVARIANT: counted in, so `close` waits for us.
        let r = if self.state.fetch_add(USER, Ordering::SeqCst) & CLOSED == 0 {
            // SAFETY: the gate is open and we are counted in, so `ops`
            // stays valid until we leave (type invariant).
            f(unsafe { &*self.ops }, self.priv_)
        } else {
            ENODEV.to_errno()
        };
        self.state.fetch_sub(USER, Ordering::SeqCst);
        r
    }

    /// Whether the gate is still open (it may close right after).
    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Ordering::Relaxed) & CLOSED == 0
    }

    /// `ops->kick(priv)`: the transport schedules a pass (nothing once the
    /// gate is closed: the device is going away).
    pub(crate) fn kick(&self) {
        self.with(|ops, priv_| {
            if let Some(f) = ops.kick {
                // SAFETY: the transport's `kick`, callable with its `priv`
                // in any context while the gate is open (type invariant).
                unsafe { f(priv_) };
            }
            0
        });
    }

    /// `ops->flush(priv)` (`ops->kick` without one): a pass now, in the
    /// caller's context, if the transport is not busy. Process context,
    /// holding no lock of the core's. The one op here that may sleep:
    /// [`TransportGate::close`] sleeps while it waits, and the transport
    /// only tries its lock (its unregistering holds it while closing).
    pub(crate) fn flush(&self) {
        self.with(|ops, priv_| {
            if let Some(f) = ops.flush.or(ops.kick) {
                // SAFETY: the transport's `flush` (or `kick`), callable with
                // its `priv` in process context with no lock of the core's
                // held, while the gate is open (type invariant).
                unsafe { f(priv_) };
            }
            0
        });
    }

    /// `ops->grant(priv, g)`, or `-EOPNOTSUPP` without one.
    ///
    /// # Safety
    ///
    /// `g` is a grant as `vmpi_port_grant()` takes it (checked fields, owned
    /// by the device until `done` if this returns 0).
    pub(crate) unsafe fn grant(&self, g: *mut bindings::vmpi_grant) -> c_int {
        self.with(|ops, priv_| match ops.grant {
            // SAFETY: the transport's `grant`, callable with its `priv` in
            // any context while the gate is open (type invariant); `g` as
            // the caller guarantees.
            Some(f) => unsafe { f(priv_, g) },
            None => errno::eopnotsupp().to_errno(),
        })
    }

    /// `ops->copy(priv, c)`, or `-EOPNOTSUPP` without one.
    ///
    /// # Safety
    ///
    /// As for [`TransportGate::grant`], for a copy request.
    pub(crate) unsafe fn copy(&self, c: *mut bindings::vmpi_copy) -> c_int {
        self.with(|ops, priv_| match ops.copy {
            // SAFETY: as in `grant`, for the transport's `copy`.
            Some(f) => unsafe { f(priv_, c) },
            None => errno::eopnotsupp().to_errno(),
        })
    }

    /// `ops->deliver(priv, ...)`, or `-EOPNOTSUPP` without one.
    ///
    /// # Safety
    ///
    /// `meta` is valid for reading 12 bytes during the call.
    pub(crate) unsafe fn deliver(
        &self,
        handle: u64,
        src_domain: u16,
        frame_len: u32,
        meta: *const u8,
    ) -> c_int {
        self.with(|ops, priv_| match ops.deliver {
            // SAFETY: as in `grant`, for the transport's `deliver`; `meta`
            // as the caller guarantees.
            Some(f) => unsafe { f(priv_, handle, src_domain, frame_len, meta) },
            None => errno::eopnotsupp().to_errno(),
        })
    }

    /// `ops->reset(priv)`, or `-EOPNOTSUPP` without one.
    pub(crate) fn reset(&self) -> c_int {
        self.with(|ops, priv_| match ops.reset {
            // SAFETY: the transport's `reset`, callable with its `priv` in
            // any context while the gate is open (type invariant).
            Some(f) => unsafe { f(priv_) },
            None => errno::eopnotsupp().to_errno(),
        })
    }

    /// No call starts from now on; those in flight have left when this
    /// returns. Process context (may sleep).
    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::SeqCst);
        // A call in flight is short (the transport queues the request, or
        // `flush` runs one bounded sending pass or schedules one: its
        // unregistering holds the lock that pass only tries), but it may
        // have been preempted: sleep rather than spin.
        while self.state.load(Ordering::SeqCst) != CLOSED {
            // SAFETY: no preconditions; process context (unregister).
            unsafe { bindings::msleep(1) };
        }
    }
}

/// The transport's domain ops (host side) and which port holds the
/// device's binding: under [`crate::device::Dev::domains`], held across
/// each call of the transport's `bind_domain`, `unbind_domain` and
/// `domain_stats`, so that unregistering (which empties it) waits for the
/// calls in flight.
///
/// # Invariants
///
/// While `live`, `ops` and `priv_` are the registered transport's, valid,
/// with its domain ops callable in process context.
pub(crate) struct Domains {
    ops: *const bindings::vmpi_transport_ops,
    priv_: *mut c_void,
    live: bool,
    /// The port (index) that bound the device as a domain.
    binder: Option<usize>,
    /// The domain's counters when the transport unregistered while bound
    /// (the device went away): what [`Domains::stats`] reports from then
    /// on, so that a user that reads them as it lets the domain go (the
    /// switch's `stats` keep a detached domain's) does not lose them.
    last: Option<bindings::vmpi_grant_stats>,
}

// SAFETY: the pointers are used only under the `Dev::domains` mutex while
// `live` (type invariant), in process context, from any thread: the header
// lets the transport's domain ops be called so.
unsafe impl Send for Domains {}

impl Domains {
    /// # Safety
    ///
    /// `ops` and `priv_` stay valid, and the domain ops callable with
    /// `priv_` in process context, until [`Domains::shut_down`] (which
    /// `vmpi_transport_unregister()` calls).
    pub(crate) unsafe fn new(ops: *const bindings::vmpi_transport_ops, priv_: *mut c_void) -> Self {
        // INVARIANT: live, with the pointers valid as the caller guarantees.
        Self {
            ops,
            priv_,
            live: true,
            binder: None,
            last: None,
        }
    }

    fn ops(&self) -> Result<&bindings::vmpi_transport_ops> {
        if !self.live {
            return Err(ENODEV);
        }
        // SAFETY: live, so `ops` is valid (type invariant).
        Ok(unsafe { &*self.ops })
    }

    /// Port `port` binds the device as domain `domain` for the policy
    /// `dops`/`dpriv` (checked by the caller: `domain` in range, `dops`
    /// with a `grant`).
    ///
    /// # Safety
    ///
    /// `dops` and `dpriv` stay valid until the binding ends
    /// (`vmpi_port_bind_domain()`'s contract).
    pub(crate) unsafe fn bind(
        &mut self,
        port: usize,
        domain: u16,
        dops: *const bindings::vmpi_domain_ops,
        dpriv: *mut c_void,
    ) -> Result {
        let f = self.ops()?.bind_domain.ok_or_else(errno::eopnotsupp)?;
        if self.binder.is_some() {
            return Err(EBUSY);
        }
        // SAFETY: the transport's `bind_domain`, callable with its `priv`
        // in process context while live (type invariant; we hold the
        // `domains` mutex, so unregister waits for us); `dops`/`dpriv` as
        // the caller guarantees.
        kernel::error::to_result(unsafe { f(self.priv_, domain, dops, dpriv) })?;
        self.binder = Some(port);
        Ok(())
    }

    /// Port `port` ends its binding, if it holds one.
    pub(crate) fn unbind(&mut self, port: usize) {
        if self.binder != Some(port) {
            return;
        }
        self.binder = None;
        if let Some(f) = self.ops().ok().and_then(|o| o.unbind_domain) {
            // SAFETY: as in `bind`, for the transport's `unbind_domain`.
            unsafe { f(self.priv_) };
        }
    }

    /// The counters of the device's domain; zeroes if not bound; after
    /// the device went away bound, its last counters.
    pub(crate) fn stats(&self, s: &mut bindings::vmpi_grant_stats) {
        *s = self.last.unwrap_or_default();
        if self.binder.is_none() {
            return;
        }
        if let Some(f) = self.ops().ok().and_then(|o| o.domain_stats) {
            // SAFETY: as in `bind`, for the transport's `domain_stats`; `s`
            // is valid for writes.
            unsafe { f(self.priv_, s) };
        }
    }

    /// The transport is unregistering: no domain op is called from now
    /// on. It ends its binding itself as it goes away.
    pub(crate) fn shut_down(&mut self) {
        if self.binder.is_some() {
            let mut s = bindings::vmpi_grant_stats::default();
            self.stats(&mut s);
            // Held no more: the transport revokes them as it goes.
            s.held = 0;
            self.last = Some(s);
        }
        self.live = false;
        self.binder = None;
    }
}

/// Checks what `vmpi_port_grant()` may check without the transport.
pub(crate) fn check_grant(g: &bindings::vmpi_grant) -> Result {
    if g.done.is_none()
        || g.frame.is_null()
        || !(1..=MAX_DOMAIN).contains(&g.dest_domain)
        || !(MIN_FRAME..=MAX_FRAME).contains(&g.frame_len)
    {
        return Err(EINVAL);
    }
    Ok(())
}

/// Checks what `vmpi_port_copy()` may check without the transport.
pub(crate) fn check_copy(c: &bindings::vmpi_copy) -> Result {
    let flags = u32::from(c.flags);
    let known = bindings::VMPI_COPY_FINISH | bindings::VMPI_COPY_DISCARD;
    if flags == bindings::VMPI_COPY_POSTED {
        // A posted receive: a buffer, no grant named; or, with no
        // buffer, the cancel of every posted receive.
        let buffer = !c.dst.is_null() && (MIN_FRAME..=MAX_FRAME).contains(&c.len);
        let cancel = c.dst.is_null() && c.len == 0;
        if c.done.is_none() || c.handle != 0 || c.offset != 0 || !(buffer || cancel) {
            return Err(EINVAL);
        }
        return Ok(());
    }
    if c.done.is_none()
        || (c.dst.is_null() && c.len > 0)
        || c.len > MAX_FRAME
        || flags & !known != 0
        || flags == bindings::VMPI_COPY_DISCARD
    {
        return Err(EINVAL);
    }
    Ok(())
}
