// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction of an uplink: a host `net_device` taken as a port of a
//! software switch, as a bridge takes its ports (the C half is
//! `rust/uplink_glue.c`: the rx_handler, the queue and work that hand
//! received frames over in process context, the transmit). The 6.12
//! `kernel` crate has no `net_device` or rx_handler abstraction.
//!
//! Include with `#[path = ".../rust/uplink.rs"] pub mod uplink;` next to
//! `mod bindings;`, link `rust/uplink_glue.o`, and include
//! `rust/uplink_glue.h` in the module's `bindings_helper.h`.

use crate::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::{c_uint, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

/// Length of a frame's offloads, a `struct virtio_net_hdr_v1`.
pub const META_LEN: usize = 12;

/// Who gets an uplink's frames.
pub trait UplinkUser: Send + Sync + Sized + 'static {
    /// One received frame (from its Ethernet header; the 802.1Q tag
    /// removed: `vlan`, 0 if none) with its offloads. Process context, one
    /// call at a time; must not drop the [`Uplink`].
    fn rx(&self, meta: &[u8; META_LEN], frame: &[u8], vlan: u16);
}

/// An uplink's counters.
pub type Stats = bindings::rvio_uplink_stats;

/// A net_device taken as an uplink for user `T`; let go when dropped.
///
/// # Invariants
///
/// `u` was attached by `rvio_uplink_attach()` with `VTable::<T>::OPS` and
/// `user`'s pointer, and is detached only by `drop`.
pub struct Uplink<T: UplinkUser> {
    u: NonNull<bindings::rvio_uplink>,
    user: Arc<T>,
}

// SAFETY: the C half may be used from any thread; `T: Send + Sync`.
unsafe impl<T: UplinkUser> Send for Uplink<T> {}
// SAFETY: `&Uplink` sends and reads counters, which the C half allows
// from any thread (process context), and gives `&Arc<T>`.
unsafe impl<T: UplinkUser> Sync for Uplink<T> {}

impl<T: UplinkUser> Uplink<T> {
    /// Takes the net_device `ifname` (initial network namespace) for
    /// `user`, with frames up to `max_frame` bytes: `ENODEV`, `EBUSY` (it
    /// has an rx_handler: a bridge port, a bond slave, an uplink already),
    /// `EINVAL` (not Ethernet, or loopback).
    pub fn attach(ifname: &CStr, user: Arc<T>, max_frame: u32) -> Result<Self> {
        // SAFETY: the ops table is a constant of `T`'s type; `user`'s
        // pointer stays valid until `drop` detaches (we hold the `Arc`);
        // `ifname` is NUL-terminated. The C half returns an uplink or an
        // `ERR_PTR()` (rust/uplink_glue.h).
        let u = from_err_ptr(unsafe {
            bindings::rvio_uplink_attach(
                ifname.as_char_ptr(),
                &VTable::<T>::OPS,
                &*user as *const T as *mut c_void,
                max_frame,
            )
        })?;
        let u = NonNull::new(u).ok_or(EINVAL)?;
        // INVARIANT: attached just now with `user` and the table.
        Ok(Self { u, user })
    }

    /// Sends one frame out of the uplink, tagged with `vlan` unless 0.
    pub fn xmit(&self, meta: &[u8; META_LEN], frame: &[u8], vlan: u16) -> Result {
        let len = u32::try_from(frame.len()).map_err(|_| EINVAL)?;
        // SAFETY: attached (type invariant); `meta` and `frame` are valid
        // for 12 and `len` bytes during the call, which copies them.
        to_result(unsafe {
            bindings::rvio_uplink_xmit(
                self.u.as_ptr(),
                meta.as_ptr().cast(),
                frame.as_ptr().cast(),
                len,
                vlan,
            )
        })
    }

    /// Whether the device is still taken (an uplink lets go of a device
    /// that is unregistered or moved to another namespace).
    pub fn attached(&self) -> bool {
        // SAFETY: attached by `attach` (type invariant).
        unsafe { bindings::rvio_uplink_attached(self.u.as_ptr()) }
    }

    /// The device's name.
    pub fn name(&self) -> &CStr {
        // SAFETY: attached (type invariant); the C half keeps a
        // NUL-terminated copy of the name for as long as it is attached.
        unsafe { CStr::from_char_ptr(bindings::rvio_uplink_name(self.u.as_ptr())) }
    }

    /// Its counters.
    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        // SAFETY: attached (type invariant); `st` is writable.
        unsafe { bindings::rvio_uplink_stats(self.u.as_ptr(), &mut st) };
        st
    }

    /// The user.
    pub fn user(&self) -> &Arc<T> {
        &self.user
    }
}

impl<T: UplinkUser> Drop for Uplink<T> {
    fn drop(&mut self) {
        // SAFETY: attached (type invariant); after this no `rx` runs, so
        // `user` may go.
        unsafe { bindings::rvio_uplink_detach(self.u.as_ptr()) };
    }
}

/// The C half's ops for `T`: one constant per type.
struct VTable<T: UplinkUser>(PhantomData<T>);

impl<T: UplinkUser> VTable<T> {
    const OPS: bindings::rvio_uplink_ops = bindings::rvio_uplink_ops { rx: Some(Self::rx) };

    /// # Safety
    ///
    /// Called by the C half's work for an attached uplink, with `user`'s
    /// pointer, 12 bytes of offloads and `len` bytes of frame.
    unsafe extern "C" fn rx(
        user: *mut c_void,
        meta: *const c_void,
        frame: *const c_void,
        len: c_uint,
        vlan: u16,
    ) {
        // SAFETY: `rvio_uplink_work()` passes its `struct
        // virtio_net_hdr_v1` and the linear data of an skb it owns, valid
        // during the call; and the pointer `attach` gave, alive until
        // `rvio_uplink_detach()` (from `drop`) has cancelled the work.
        let (user, meta, frame) = unsafe {
            (
                &*(user as *const T),
                &*meta.cast::<[u8; META_LEN]>(),
                core::slice::from_raw_parts(frame.cast::<u8>(), len as usize),
            )
        };
        user.rx(meta, frame, vlan);
    }
}
