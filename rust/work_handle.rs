// SPDX-License-Identifier: GPL-2.0

//! A device's work, for scheduling from outside the device's callbacks
//! (the Rust half; the C half is `rust/work_handle_glue.c`). The device
//! abstractions (`vdpa.rs`, `virtio.rs`) hand these out; a [`Handle`] may
//! live anywhere and for as long as its owner likes: once the device is
//! gone, [`Handle::schedule`] does nothing.
//!
//! Include with `#[path = ".../rust/work_handle.rs"] pub mod work_handle;`
//! next to the abstraction that hands handles out, and link
//! `rust/work_handle_glue.o` into the module.

use crate::bindings;

/// A counted handle of a device's work item.
///
/// # Invariants
///
/// `h` is a handle of the C half that this value holds a reference to.
pub struct Handle {
    h: *mut bindings::rvio_work_handle,
}

// SAFETY: `rvio_work_handle_schedule()` and `rvio_work_handle_put()` may be
// called from any context (rust/work_handle_glue.h), so from any thread.
unsafe impl Send for Handle {}
// SAFETY: `&Handle` only allows `schedule`, which may run concurrently (it
// takes the handle's spinlock).
unsafe impl Sync for Handle {}

impl Handle {
    /// A new reference to `h`.
    ///
    /// # Safety
    ///
    /// `h` is a live handle of the C half (its device holds a reference
    /// for the duration of the call).
    pub unsafe fn get(h: *mut bindings::rvio_work_handle) -> Self {
        // SAFETY: `h` is live, as the caller guarantees.
        unsafe { bindings::rvio_work_handle_get(h) };
        // INVARIANT: the reference taken just now.
        Self { h }
    }

    /// Asks for a pass of the device's work (nothing once the device is
    /// gone).
    pub fn schedule(&self) {
        // SAFETY: by the type invariant we hold a reference to `h`.
        unsafe { bindings::rvio_work_handle_schedule(self.h) };
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold a reference, given back once.
        unsafe { bindings::rvio_work_handle_put(self.h) };
    }
}
