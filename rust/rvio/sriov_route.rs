// SPDX-License-Identifier: GPL-2.0

//! Safe wrapper of the SR-IOV hook's route C-ABI
//! (`include/rvio/sriov_hook.h`, provided by `sriov_hook.ko`): a MAC's
//! route (through its domain's VF, or the software path), and a [`Watch`]
//! that is told when routes may have changed.
//!
//! Include with `#[path = ".../rust/rvio/sriov_route.rs"] pub mod
//! sriov_route;` next to `mod bindings;`; the module depends on
//! `sriov_hook.ko`.

use crate::bindings;
use core::marker::PhantomData;
use kernel::error::to_result;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};

/// How the SR-IOV hook reaches a MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The domain the MAC is assigned to.
    pub domain: u16,
    /// Directly through the domain's VF (else the software path).
    pub via_vf: bool,
}

/// The route of `mac`: `None` when no VF policy has it. Takes RTNL:
/// process context, not under RTNL.
pub fn route(mac: &[u8; 6]) -> Result<Option<Route>> {
    let mut out = bindings::rvio_sriov_route::default();
    // SAFETY: `mac` is 6 readable bytes and `out` a writable struct, as
    // the header asks; both outlive the call.
    match to_result(unsafe { bindings::rvio_sriov_route(mac.as_ptr(), &mut out) }) {
        Ok(()) => Ok(Some(Route {
            domain: out.domain,
            via_vf: out.via_vf != 0,
        })),
        Err(e) if e == ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// Who is told when routes may have changed.
pub trait RouteWatcher: Send + Sync + Sized {
    /// Routes may have changed. Called possibly under RTNL and the hook's
    /// locks: note it and schedule work (then call [`route`] from there).
    fn routes_changed(this: ArcBorrow<'_, Self>);
}

/// A watch of the routes for `T`; ended when dropped.
///
/// # Invariants
///
/// `id` is a watch `rvio_sriov_watch_add()` returned for `user`'s pointer
/// and `Self::changed`, ended only by `drop`.
pub struct Watch<T: RouteWatcher> {
    id: c_int,
    user: Arc<T>,
    _t: PhantomData<T>,
}

impl<T: RouteWatcher> Watch<T> {
    /// Starts watching for `user`: `ENOSPC` beyond 4 watches.
    pub fn new(user: Arc<T>) -> Result<Self> {
        // SAFETY: `changed` may be called with `user`'s pointer until `drop`
        // ends the watch (we hold the `Arc` until then).
        let id = unsafe {
            bindings::rvio_sriov_watch_add(Some(Self::changed), &*user as *const T as *mut c_void)
        };
        to_result(id.min(0))?;
        // INVARIANT: added just now with `user`'s pointer.
        Ok(Self {
            id,
            user,
            _t: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the hook for a watch that has not ended, with its
    /// pointer.
    unsafe extern "C" fn changed(priv_: *mut c_void) {
        // SAFETY: the pointer of an `Arc<T>` the `Watch` holds until the
        // watch ended (`rvio_sriov_watch_del()` waits for a call in flight).
        let this = unsafe { ArcBorrow::from_raw(priv_ as *const T) };
        T::routes_changed(this);
    }

    /// The watcher.
    pub fn user(&self) -> &Arc<T> {
        &self.user
    }
}

impl<T: RouteWatcher> Drop for Watch<T> {
    fn drop(&mut self) {
        // SAFETY: a watch we added (type invariant); after this the hook
        // does not call `changed`, so `user` may go.
        unsafe { bindings::rvio_sriov_watch_del(self.id) };
    }
}
