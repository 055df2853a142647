// SPDX-License-Identifier: GPL-2.0

//! [`BhLock`]: a spinlock for what softirq context (a network driver's
//! `ndo_start_xmit`, a caller of an any-context API) shares with process
//! context, taken with bottom halves off wherever it is taken, as
//! `spin_lock_bh()` (6.12's `SpinLock` has no such flavour).
//!
//! Include with `#[path = ".../rust/bh_lock.rs"] pub mod bh_lock;` next to
//! `mod bindings;`, link `rust/bh_lock_glue.o`, and include
//! `rust/bh_lock_glue.h` in the module's `bindings_helper.h`.

use crate::bindings;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use kernel::prelude::*;
use kernel::sync::lock::{spinlock::SpinLockBackend, Guard};
use kernel::sync::SpinLock;

/// A spinlock taken with bottom halves off, so a softirq never spins on
/// it on the CPU that holds it. Held briefly, never across a sleep. Taken
/// in process or softirq context, not in hard interrupts or with
/// interrupts off (`local_bh_enable()` must be allowed to run softirqs).
#[pin_data]
pub struct BhLock<T> {
    #[pin]
    inner: SpinLock<T>,
}

impl<T> BhLock<T> {
    /// A lock around `inner` (made by `new_spinlock!`, which names its
    /// lockdep class).
    pub fn new(inner: impl PinInit<SpinLock<T>>) -> impl PinInit<Self> {
        pin_init!(Self { inner <- inner })
    }

    /// Turns bottom halves off, then locks. Not in hard interrupts or
    /// with interrupts off (see the type).
    pub fn lock(&self) -> BhGuard<'_, T> {
        // SAFETY: no memory-safety precondition (the context rule above
        // is lockdep's); the guard turns them on again after it unlocks.
        unsafe { bindings::rvio_bh_disable() };
        BhGuard {
            g: ManuallyDrop::new(self.inner.lock()),
        }
    }
}

/// [`BhLock::lock`]'s guard: unlocks, then turns bottom halves on.
pub struct BhGuard<'a, T> {
    g: ManuallyDrop<Guard<'a, T, SpinLockBackend>>,
}

impl<T> Deref for BhGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.g
    }
}

impl<T> DerefMut for BhGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.g
    }
}

impl<T> Drop for BhGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `g` is dropped here only, once.
        unsafe { ManuallyDrop::drop(&mut self.g) };
        // SAFETY: `lock` turned them off before it took the lock, which
        // is released now.
        unsafe { bindings::rvio_bh_enable() };
    }
}
