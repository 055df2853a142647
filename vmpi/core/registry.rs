// SPDX-License-Identifier: GPL-2.0

//! The devices of this kernel by id: `N` of `/dev/vmpiN`, small and local
//! to this kernel, and how in-kernel users find a device
//! (`vmpi_dev_find()`, `vmpi_port_open()`).
//!
//! The table is a Rust vector indexed by id; its lock is the one C piece
//! (`vmpi_core_exports.c`), because 6.12's kernel crate cannot make a
//! statically initialised mutex.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::sync::Arc;

use crate::bindings;
use crate::device::Dev;

/// One id's slot: `Some(None)` reserved for a device being made,
/// `Some(Some(dev))` listed, `None` free.
type Slot = Option<Option<Arc<Dev>>>;

/// The table, accessed only through a [`Locked`] guard.
struct Table(UnsafeCell<KVec<Slot>>);

// SAFETY: the vector is only reached through `Locked`, which holds the C
// mutex `vmpi_registry_mutex` (vmpi_core_exports.c) for its whole life, so
// accesses from different threads are serialized; `Arc<Dev>` is `Send`.
unsafe impl Sync for Table {}

static TABLE: Table = Table(UnsafeCell::new(KVec::new()));

/// The registry's lock, held while this lives.
///
/// # Invariants
///
/// The caller of [`Locked::new`] holds `vmpi_registry_mutex` until drop.
struct Locked {
    // Not `Send`: a mutex is released by the thread that took it.
    _not_send: PhantomData<*mut ()>,
}

impl Locked {
    fn new() -> Self {
        // SAFETY: no preconditions; released in `drop`.
        unsafe { bindings::vmpi_core_registry_lock() };
        // INVARIANT: taken just now.
        Self {
            _not_send: PhantomData,
        }
    }

    fn slots(&mut self) -> &mut KVec<Slot> {
        // SAFETY: by the type invariant we hold the mutex that every
        // access to `TABLE` takes (see `Table`), and `&mut self` makes
        // this the only reference made through this guard.
        unsafe { &mut *TABLE.0.get() }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold the mutex.
        unsafe { bindings::vmpi_core_registry_unlock() };
    }
}

/// A device's id, reserved until dropped; listed once the device exists.
pub(crate) struct Id {
    i: usize,
    /// Listed once: its removal is logged when the id is freed.
    listed: bool,
}

impl Id {
    /// The lowest free id.
    pub(crate) fn new() -> Result<Self> {
        let mut l = Locked::new();
        let slots = l.slots();
        let i = match slots.iter().position(Option::is_none) {
            Some(i) => {
                slots[i] = Some(None);
                i
            }
            None => {
                slots.push(Some(None), GFP_KERNEL)?;
                slots.len() - 1
            }
        };
        if c_int::try_from(i).is_err() {
            slots[i] = None;
            return Err(ENOSPC);
        }
        Ok(Self { i, listed: false })
    }

    /// The id as the C-ABI and `/dev/vmpiN` use it.
    pub(crate) fn get(&self) -> c_int {
        // `new` checked that it fits.
        self.i as c_int
    }

    /// Lists `dev` under this id: lookups find it until [`Id::unlist`].
    pub(crate) fn list(&mut self, dev: Arc<Dev>) {
        if let Some(slot) = Locked::new().slots().get_mut(self.i) {
            *slot = Some(Some(dev));
            self.listed = true;
        }
    }

    /// Lookups no longer find the device; the id stays reserved until
    /// dropped.
    pub(crate) fn unlist(&self) {
        let dev = Locked::new()
            .slots()
            .get_mut(self.i)
            .and_then(Option::as_mut)
            .and_then(Option::take);
        // Outside the registry's lock: this may be the last count.
        drop(dev);
    }
}

impl Drop for Id {
    fn drop(&mut self) {
        let dev = {
            let mut l = Locked::new();
            let slots = l.slots();
            let dev = slots.get_mut(self.i).and_then(Option::take).flatten();
            if slots.iter().all(Option::is_none) {
                // Nothing stays allocated once the last device is gone
                // (the module can unload without a leak).
                *slots = KVec::new();
            }
            dev
        };
        // Outside the registry's lock: this may be the last count.
        drop(dev);
        if self.listed {
            pr_info!("vmpi{}: removed\n", self.i);
        }
    }
}

/// The first listed device for which `pred` holds.
pub(crate) fn find(mut pred: impl FnMut(&Dev) -> bool) -> Option<Arc<Dev>> {
    Locked::new()
        .slots()
        .iter()
        .flatten()
        .flatten()
        .find(|d| pred(d))
        .cloned()
}
