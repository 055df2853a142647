// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction for a delayed work item owned by an object in an
//! [`Arc`] (the C half is `rust/dwork_glue.c`). A queued run holds one
//! count of the `Arc`, so the object outlives it; cancelling gives the
//! count back. The 6.12 `kernel::workqueue` has no delayed work.
//!
//! Include with `#[path = ".../rust/dwork.rs"] pub mod dwork;` next to
//! `mod bindings;`, and link `rust/dwork_glue.o` into the module.

use crate::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::Arc;

/// An object with a [`DelayedWork`] of its own.
///
/// # Safety
///
/// `dwork` returns the same work item every time, a field of `self` that
/// no other object returns: a queued run's count is that of the object
/// whose item it is.
pub unsafe trait DelayedWorkItem: Send + Sync + Sized {
    /// The object's work item.
    fn dwork(&self) -> &DelayedWork<Self>;
    /// Runs in process context (system workqueue).
    fn run(this: Arc<Self>);
}

/// A delayed work item of a `T` (see [`DelayedWorkItem`]).
///
/// # Invariants
///
/// `w` is a live C work item; every queued run holds one count of the
/// `Arc<T>` whose pointer is its argument.
pub struct DelayedWork<T: DelayedWorkItem> {
    w: NonNull<bindings::rvio_dwork>,
    _t: PhantomData<Arc<T>>,
}

// SAFETY: the C half may be called from any thread; `T: Send + Sync`.
unsafe impl<T: DelayedWorkItem> Send for DelayedWork<T> {}
// SAFETY: through `&DelayedWork` only `schedule` (via `T::dwork()`) and
// `cancel` reach `w`, calling `rvio_dwork_schedule()` and
// `rvio_dwork_cancel()` in rust/dwork_glue.c: `mod_delayed_work()` and
// `cancel_delayed_work{,_sync}()` may run concurrently from any thread, and
// the one field written after `rvio_dwork_new()`, `w->arg`, is accessed
// with `READ_ONCE()`/`WRITE_ONCE()` and always set to the same pointer, that
// of the owning `T` (the `DelayedWorkItem` contract), which is `Send + Sync`.
unsafe impl<T: DelayedWorkItem> Sync for DelayedWork<T> {}

/// Monotonic clock in milliseconds.
pub fn now_ms() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bindings::rvio_now_ms() }
}

impl<T: DelayedWorkItem> DelayedWork<T> {
    /// A work item, not queued.
    pub fn new() -> Result<Self> {
        // SAFETY: `run` has the signature the C half calls.
        let w = unsafe { bindings::rvio_dwork_new(Some(Self::run)) };
        // INVARIANT: a new item has no queued run.
        Ok(Self {
            w: NonNull::new(w).ok_or(ENOMEM)?,
            _t: PhantomData,
        })
    }

    /// Runs `T::run(this)` in `delay_ms`, or moves a queued run to then.
    pub fn schedule(this: &Arc<T>, delay_ms: u32) {
        let w = this.dwork().w.as_ptr();
        let arg = Arc::into_raw(this.clone()) as *mut c_void;
        // SAFETY: `w` is live; `arg` is the pointer of `this`, the only
        // argument this item is ever queued with (it is `this`'s own).
        if !unsafe { bindings::rvio_dwork_schedule(w, arg, delay_ms) } {
            // A queued run already holds a count.
            // SAFETY: from `into_raw` above, not handed over.
            drop(unsafe { Arc::from_raw(arg as *const T) });
        }
    }

    /// Cancels a queued run; waits for a running one unless called from it.
    pub fn cancel(&self) {
        // SAFETY: `w` is live.
        let arg = unsafe { bindings::rvio_dwork_cancel(self.w.as_ptr()) };
        if !arg.is_null() {
            // SAFETY: the cancelled run's count (type invariant).
            drop(unsafe { Arc::from_raw(arg as *const T) });
        }
    }

    /// # Safety
    ///
    /// Called by the C half for a queued run, with that run's argument.
    unsafe extern "C" fn run(arg: *mut c_void) {
        // SAFETY: the run's count of an `Arc<T>` (type invariant).
        T::run(unsafe { Arc::from_raw(arg as *const T) });
    }
}

impl<T: DelayedWorkItem> Drop for DelayedWork<T> {
    fn drop(&mut self) {
        // No run can be queued when the owning `T` is dropped (it would
        // hold a count), but a run may be dropping the last count now.
        self.cancel();
        // SAFETY: not queued; a running run no longer touches it.
        unsafe { bindings::rvio_dwork_free(self.w.as_ptr()) };
    }
}
