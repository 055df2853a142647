// SPDX-License-Identifier: GPL-2.0

//! A device's work, for scheduling from outside the device's callbacks
//! (e.g. another module's kick). A device abstraction (`vdpa.rs`,
//! `virtio.rs`) keeps an [`Owner`] with the device's state and hands out
//! [`Handle`]s; a handle may live anywhere and for as long as its holder
//! likes: once the owner is detached or dropped (before the device
//! cancels its work and goes away), [`Handle::schedule`] does nothing.
//!
//! Include with `#[path = ".../rust/work_handle.rs"] pub mod work_handle;`
//! next to the abstraction that uses it.

use core::marker::PhantomData;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::{Arc, SpinLock};

/// How to queue one kind of device's work (implemented by the device
/// abstractions for their C half's device).
pub trait Target: 'static {
    /// The C half's device.
    type Device;

    /// Queues `dev`'s work.
    ///
    /// # Safety
    ///
    /// `dev` is a device for which an [`Owner`] is attached.
    unsafe fn schedule(dev: *mut Self::Device);
}

/// The device while attached.
struct Attached<T: Target>(*mut T::Device, PhantomData<T>);

// SAFETY: the pointer is only passed to `T::schedule` (queue_work()), which
// any thread may call while the owner is attached; it is never
// dereferenced here.
unsafe impl<T: Target> Send for Attached<T> {}

type Shared<T> = Arc<SpinLock<Option<Attached<T>>>>;

/// The device's side: handles schedule its work while this is attached.
pub struct Owner<T: Target> {
    shared: Shared<T>,
}

impl<T: Target> Owner<T> {
    /// Attaches `dev`.
    ///
    /// # Safety
    ///
    /// `dev` stays live, and `T::schedule(dev)` may be called from process
    /// context, until this owner is detached or dropped.
    pub unsafe fn new(dev: *mut T::Device) -> Result<Self> {
        let shared = Arc::pin_init(
            new_spinlock!(Some(Attached(dev, PhantomData)), "rvio::work_handle"),
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
    /// another thread has finished when this returns.
    pub fn detach(&self) {
        *self.shared.lock() = None;
    }
}

impl<T: Target> Drop for Owner<T> {
    fn drop(&mut self) {
        self.detach();
    }
}

/// A device's work, for scheduling passes from outside its callbacks.
/// Process context only (it takes a spinlock that is not IRQ-safe).
pub struct Handle<T: Target> {
    shared: Shared<T>,
}

impl<T: Target> Handle<T> {
    /// Asks for a pass of the device's work (nothing once it is detached).
    pub fn schedule(&self) {
        let attached = self.shared.lock();
        if let Some(Attached(dev, _)) = &*attached {
            // SAFETY: the owner is attached (it detaches under this lock),
            // so `dev` is live and `T::schedule` callable (`Owner::new`'s
            // contract).
            unsafe { T::schedule(*dev) };
        }
    }
}
