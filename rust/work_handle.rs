// SPDX-License-Identifier: GPL-2.0

//! A device's work, for scheduling from outside the device's callbacks
//! (e.g. another module's kick), and more generally a device pointer that
//! outside code may use until the device's abstraction detaches it
//! ([`Handle::with`]: `netdev.rs` hands received frames in with it). A device abstraction (`vdpa.rs`,
//! `virtio.rs`) keeps an [`Owner`] with the device's state and hands out
//! [`Handle`]s; a handle may live anywhere its module's code does: once the
//! owner is detached or dropped (before the device cancels its work and
//! goes away), [`Handle::schedule`] does nothing.
//!
//! Scheduling takes no lock (it is on the data path: one per kick): a
//! handle counts itself in while it queues the work, and detaching waits
//! for those in flight.
//!
//! Include with `#[path = ".../rust/work_handle.rs"] pub mod work_handle;`
//! next to the abstraction that uses it (its `bindings_helper.h` includes
//! `<linux/delay.h>`, for `msleep`).

use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::bindings;

/// How to queue one kind of device's work (implemented by the device
/// abstractions for their C half's device).
pub trait Target: 'static {
    /// The C half's device.
    type Device;

    /// Queues `dev`'s work (without sleeping).
    ///
    /// # Safety
    ///
    /// `dev` is a device for which an [`Owner`] is attached.
    unsafe fn schedule(dev: *mut Self::Device);

    /// Runs a pass of `dev`'s work now, in the caller's context, if the
    /// device's lock is free (else queues one); by default queues one.
    /// Process context, holding no lock the pass takes.
    ///
    /// # Safety
    ///
    /// `dev` is a device for which an [`Owner`] is attached.
    unsafe fn run_now(dev: *mut Self::Device) {
        // SAFETY: the caller's guarantee is `schedule`'s.
        unsafe { Self::schedule(dev) }
    }
}

/// `Shared::state`: the owner has detached.
const DETACHED: usize = 1;
/// `Shared::state`: one handle in [`Handle::schedule`].
const USER: usize = 2;

/// What an owner and its handles share.
///
/// # Invariants
///
/// While `state` lacks [`DETACHED`], `dev` is live and usable by the
/// abstraction's C half (`T::schedule(dev)`, and what its `Handle::with`
/// callers pass it to); once the owner sets it, no `schedule` that counted itself
/// in after that uses `dev`, and the owner waits until those counted in
/// before have left (`state` back to `DETACHED`).
struct Shared<T: Target> {
    dev: *mut T::Device,
    /// [`DETACHED`], plus [`USER`] per handle in `schedule`.
    state: AtomicUsize,
    _t: PhantomData<T>,
}

// SAFETY: `dev` is never dereferenced here: it is passed to `T::schedule`
// or to a `Handle::with` closure (whose own `unsafe` calls into the C half
// carry their obligations), only while the owner is attached (type
// invariant); `state` is atomic.
unsafe impl<T: Target> Send for Shared<T> {}
// SAFETY: as for `Send`: `&Shared` only reads `dev` and updates `state`
// atomically.
unsafe impl<T: Target> Sync for Shared<T> {}

/// The device's side: handles schedule its work while this is attached.
pub struct Owner<T: Target> {
    shared: Arc<Shared<T>>,
}

impl<T: Target> Owner<T> {
    /// Attaches `dev`.
    ///
    /// # Safety
    ///
    /// `dev` stays live, and `T::schedule(dev)` (and whatever the
    /// abstraction's `Handle::with` closures pass it to) may be called
    /// from process context, until this owner is detached or dropped.
    pub unsafe fn new(dev: *mut T::Device) -> Result<Self> {
        // INVARIANT: attached (no `DETACHED`), with `dev` live as the
        // caller guarantees.
        let shared = Arc::new(
            Shared {
                dev,
                state: AtomicUsize::new(0),
                _t: PhantomData,
            },
            GFP_KERNEL,
        )?;
        Ok(Self { shared })
    }

    /// A handle of the device's work.
    pub fn handle(&self) -> Handle<T> {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// From now on handles schedule nothing; a `schedule` running on
    /// another thread has finished when this returns. May sleep.
    pub fn detach(&self) {
        self.shared.state.fetch_or(DETACHED, Ordering::SeqCst);
        // Those counted in before queue the work and leave soon; one may
        // have been preempted in between, so sleep rather than spin.
        while self.shared.state.load(Ordering::SeqCst) != DETACHED {
            // SAFETY: no preconditions; process context (this function's
            // callers: `rvio_vdpa_free()`, virtio's `stop`).
            unsafe { bindings::msleep(1) };
        }
    }
}

impl<T: Target> Drop for Owner<T> {
    fn drop(&mut self) {
        self.detach();
    }
}

/// A device's work, for scheduling passes from outside its callbacks.
/// Process context.
pub struct Handle<T: Target> {
    shared: Arc<Shared<T>>,
}

impl<T: Target> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Target> Handle<T> {
    /// Runs `f` with the device while the owner is attached: the pointer
    /// `f` gets is live, and may be passed to the device's C half, until
    /// `f` returns (detaching waits for it, so `f` must not sleep long, and
    /// must not detach the owner itself: that would wait for `f`).
    /// `None`, without calling `f`, once the owner has detached.
    pub fn with<R>(&self, f: impl FnOnce(*mut T::Device) -> R) -> Option<R> {
        let s = &*self.shared;
        // INVARIANT of `Shared`: counted in, so a detach waits for us.
        let r = if s.state.fetch_add(USER, Ordering::SeqCst) & DETACHED == 0 {
            Some(f(s.dev))
        } else {
            None
        };
        s.state.fetch_sub(USER, Ordering::SeqCst);
        r
    }

    /// A pass of the device's work now, in the caller's context, if the
    /// device's lock is free, else as [`Handle::schedule`] (nothing once
    /// it is detached): for a sender that has just queued something.
    /// Process context, holding no lock the device's pass takes; the pass
    /// is bounded (detaching waits for it).
    pub fn run_now(&self) {
        self.with(|dev| {
            // SAFETY: `with` calls this only while the owner is attached,
            // so `dev` is live and `T::run_now` callable (type invariant
            // of `Shared`).
            unsafe { T::run_now(dev) }
        });
    }

    /// Asks for a pass of the device's work (nothing once it is detached).
    pub fn schedule(&self) {
        self.with(|dev| {
            // SAFETY: `with` calls this only while the owner is attached,
            // so `dev` is live and `T::schedule` callable (type invariant
            // of `Shared`).
            unsafe { T::schedule(dev) }
        });
    }
}
