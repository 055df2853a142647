// SPDX-License-Identifier: GPL-2.0

//! Safe wrapper of VMPI's in-kernel user C-ABI (`include/rvio/vmpi.h`,
//! provided by `vmpi.ko`): a [`Port`] is a raw channel of a VMPI device
//! whose received SDUs go to a [`PortUser`]; closed when dropped.
//!
//! Include with `#[path = ".../rust/rvio/vmpi_port.rs"] pub mod vmpi_port;` next
//! to `mod bindings;`; the module depends on `vmpi.ko`.

use crate::bindings;
use crate::proto::link::Role;
use core::marker::PhantomData;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

/// The id (`N` of `/dev/vmpiN`) of the first device of `role` whose
/// transport is `transport` (any if `None`).
pub fn find(role: Role, transport: Option<&CStr>) -> Result<i32> {
    let name = transport.map_or(core::ptr::null(), CStr::as_char_ptr);
    // SAFETY: `name` is NULL or NUL-terminated.
    let id = unsafe { bindings::vmpi_dev_find(role as u32, name) };
    to_result(id.min(0))?;
    Ok(id)
}

/// The user of a port: its callbacks (see `struct vmpi_port_ops`). They
/// run in process context, one at a time per device, and may send on the
/// port they are given, but must not drop a [`Port`] of the device (closing
/// waits for the callbacks): drop it from another context.
pub trait PortUser: Send + Sync + Sized {
    /// An SDU arrived.
    fn rx(&self, port: &PortRef<'_>, sdu: &[u8]);
    /// A send said `EAGAIN` and there is room now.
    fn write_space(&self, port: &PortRef<'_>);
    /// The port is down (`ENODEV`: the device goes away; `ECONNRESET`).
    fn down(&self, port: &PortRef<'_>, err: Error);
}

/// An open port, valid during a callback.
pub struct PortRef<'a> {
    p: *mut bindings::vmpi_port,
    _l: PhantomData<&'a ()>,
}

impl PortRef<'_> {
    /// Queues one SDU (copied): `EAGAIN` when the send queue is full
    /// ([`PortUser::write_space`] follows), `EMSGSIZE`, `EPIPE`, `ENODEV`.
    pub fn send(&self, sdu: &[u8]) -> Result {
        // SAFETY: `p` is an open port (the type's lifetime); `sdu` is valid.
        to_result(unsafe { bindings::vmpi_port_send(self.p, sdu.as_ptr().cast(), sdu.len()) })
    }
}

/// A port of user `T`.
///
/// # Invariants
///
/// `p` is an open port whose callbacks get `user`'s pointer as `priv`;
/// it is closed only by `drop`.
pub struct Port<T: PortUser> {
    p: *mut bindings::vmpi_port,
    user: Arc<T>,
}

// SAFETY: the core's functions may be called from any thread.
unsafe impl<T: PortUser> Send for Port<T> {}
// SAFETY: `&Port` gives out `&Arc<T>` (`Sync`, as `T: Send + Sync`) and
// `PortRef`s whose `send` calls `vmpi_port_send()` on `p`. The header
// (include/rvio/vmpi.h) does not say that sends may run concurrently; its
// implementation in vmpi/core/ffi.rs takes the device's `inner` mutex (and
// `cache` spinlock), so concurrent sends from several threads are serialized.
unsafe impl<T: PortUser> Sync for Port<T> {}

impl<T: PortUser> Port<T> {
    const OPS: bindings::vmpi_port_ops = bindings::vmpi_port_ops {
        rx: Some(Self::rx),
        write_space: Some(Self::write_space),
        down: Some(Self::down),
    };

    /// Binds raw channel `channel` of device `id` for `user`.
    pub fn open(id: i32, channel: u16, user: Arc<T>) -> Result<Self> {
        // SAFETY: the ops table is static; `user`'s pointer stays valid
        // until `drop` closes the port (we hold the `Arc`). The core
        // returns a port or an `ERR_PTR()` (include/rvio/vmpi.h).
        let p = from_err_ptr(unsafe {
            bindings::vmpi_port_open(id, channel, &Self::OPS, &*user as *const T as *mut c_void)
        })?;
        // INVARIANT: opened just now with `user`'s pointer.
        Ok(Self { p, user })
    }

    /// The port, to send on.
    pub fn port(&self) -> PortRef<'_> {
        PortRef {
            p: self.p,
            _l: PhantomData,
        }
    }

    /// The user.
    pub fn user(&self) -> &Arc<T> {
        &self.user
    }

    /// # Safety
    ///
    /// Called by the core while the port is open, with its `priv`.
    unsafe fn user_of<'a>(priv_: *mut c_void) -> &'a T {
        // SAFETY: `priv_` is `user`'s pointer, alive while open.
        unsafe { &*(priv_ as *const T) }
    }

    /// # Safety
    ///
    /// Called by the core for an open port of this type, with its `priv`.
    unsafe extern "C" fn rx(
        p: *mut bindings::vmpi_port,
        priv_: *mut c_void,
        sdu: *const c_void,
        len: usize,
    ) {
        let sdu = if len == 0 {
            &[][..]
        } else {
            // SAFETY: the core passes an SDU valid for `len` bytes.
            unsafe { core::slice::from_raw_parts(sdu.cast::<u8>(), len) }
        };
        // SAFETY: called by the core for an open port.
        unsafe { Self::user_of(priv_) }.rx(&PortRef { p, _l: PhantomData }, sdu);
    }

    /// # Safety
    ///
    /// Called by the core for an open port of this type, with its `priv`.
    unsafe extern "C" fn write_space(p: *mut bindings::vmpi_port, priv_: *mut c_void) {
        // SAFETY: called by the core for an open port.
        unsafe { Self::user_of(priv_) }.write_space(&PortRef { p, _l: PhantomData });
    }

    /// # Safety
    ///
    /// Called by the core for an open port of this type, with its `priv`.
    unsafe extern "C" fn down(p: *mut bindings::vmpi_port, priv_: *mut c_void, err: c_int) {
        // SAFETY: called by the core for an open port.
        unsafe { Self::user_of(priv_) }
            .down(&PortRef { p, _l: PhantomData }, Error::from_errno(err));
    }
}

impl<T: PortUser> Drop for Port<T> {
    fn drop(&mut self) {
        // SAFETY: open (type invariant); after this no callback runs, so
        // `user` may go.
        unsafe { bindings::vmpi_port_close(self.p) };
    }
}
