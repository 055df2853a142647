// SPDX-License-Identifier: GPL-2.0

//! Safe wrapper of VMPI's in-kernel user C-ABI (`include/rvio/vmpi.h`,
//! provided by `vmpi.ko`): a [`Port`] is a raw channel of a VMPI device
//! whose received SDUs go to a [`PortUser`]; closed when dropped.
//!
//! Grants (`VMPI_F_GRANT`, include/rvio/vmpi.h): on a guest port,
//! [`PortRef::grant`] and [`PortRef::copy`] hand the device a `struct
//! vmpi_grant` or `struct vmpi_copy` the caller owns again when its `done`
//! runs; on a host port, [`PortRef::bind_domain`] makes the device a domain
//! whose grants a [`DomainPolicy`] decides ([`domain_ops`] is its table).
//!
//! Include with `#[path = ".../rust/rvio/vmpi_port.rs"] pub mod vmpi_port;` next
//! to `mod bindings;`; the module depends on `vmpi.ko`.

use crate::bindings;
use crate::proto::link::Role;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

/// Waits until every `done()` of a grant or copy that has started has
/// returned (`vmpi_done_sync()`): after a user's last request completed,
/// before it frees what its `done()` uses or lets its module go.
/// Process context.
pub fn done_sync() {
    // SAFETY: no preconditions (process context, which the caller is in).
    unsafe { bindings::vmpi_done_sync() };
}

/// The id (`N` of `/dev/vmpiN`) of the first device of `role` whose
/// transport is `transport` (any if `None`).
pub fn find(role: Role, transport: Option<&CStr>) -> Result<i32> {
    let name = transport.map_or(core::ptr::null(), CStr::as_char_ptr);
    // SAFETY: `name` is NULL or NUL-terminated.
    let id = unsafe { bindings::vmpi_dev_find(role as u32, name) };
    to_result(id.min(0))?;
    Ok(id)
}

/// Resets device `id`'s rings from the driver's side (`vmpi_dev_reset()`):
/// what the device held completes, every channel goes down and comes up
/// again. `EOPNOTSUPP` on the host side, `ENODEV`. Process context.
pub fn reset(id: i32) -> Result {
    // SAFETY: no preconditions (process context, which the caller is in).
    to_result(unsafe { bindings::vmpi_dev_reset(id) })
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

    /// Queues one SDU: `head`, then the first `len` bytes of `sg`, copied
    /// now. Without `atomic`, as [`Self::send`] (process context). With
    /// it, from any context but hard interrupts (softirq included): it
    /// leaves after the SDUs sent before it, however each was; `EAGAIN`
    /// when 64 such SDUs wait for the transport
    /// ([`PortUser::write_space`] is not promised), `ENOMEM` (no memory
    /// without sleeping), `EMSGSIZE`, `EINVAL`, `ENODEV`.
    ///
    /// # Safety
    ///
    /// `sg` is a marked scatterlist holding at least `len` bytes, valid
    /// during the call; process context unless `atomic`.
    pub unsafe fn send_sg(
        &self,
        head: &[u8],
        sg: *mut bindings::scatterlist,
        len: usize,
        atomic: bool,
    ) -> Result {
        // SAFETY: `p` is an open port (the type's lifetime); `head` is
        // valid; `sg` and the context as the caller guarantees.
        to_result(unsafe {
            bindings::vmpi_port_send_sg(self.p, head.as_ptr().cast(), head.len(), sg, len, atomic)
        })
    }

    /// Guest side: queues grant `g` on the device's grantq. `Ok`: its
    /// `done` will be called once (a `VMPI_GRANT_*` status, or
    /// `-ECONNRESET`/`-ENODEV`), from the transport's work in process
    /// context; until then the device owns `g` and its frame. `EOPNOTSUPP`
    /// (no `VMPI_F_GRANT`, or a host port), `EINVAL` (a field out of
    /// range, a frame of more than `VMPI_GRANT_MAX_SG` entries or not
    /// `frame_len` bytes), `ENODEV`. Any context (softirq included).
    ///
    /// # Safety
    ///
    /// `g` is a kmalloc'ed `struct vmpi_grant` whose first block (up to
    /// `done`) the caller filled, with `frame` a marked scatterlist of
    /// DMA-mappable memory; on `Ok`, `g`, the scatterlist and the frame's
    /// bytes stay valid and untouched until `done` runs.
    pub unsafe fn grant(&self, g: NonNull<bindings::vmpi_grant>) -> Result {
        // SAFETY: `p` is an open port (the type's lifetime); `g` as the
        // caller guarantees.
        to_result(unsafe { bindings::vmpi_port_grant(self.p, g.as_ptr()) })
    }

    /// Guest side: queues copy request `c` on the device's copyq, as
    /// [`Self::grant`] (`done` gets a `VMPI_COPY_*` status; the bytes are in
    /// `dst` only with `VMPI_COPY_OK`).
    ///
    /// # Safety
    ///
    /// As for [`Self::grant`], for a kmalloc'ed `struct vmpi_copy` with
    /// `dst` a marked scatterlist of at least `len` bytes (NULL if `len` is
    /// 0).
    pub unsafe fn copy(&self, c: NonNull<bindings::vmpi_copy>) -> Result {
        // SAFETY: `p` is an open port (the type's lifetime); `c` as the
        // caller guarantees.
        to_result(unsafe { bindings::vmpi_port_copy(self.p, c.as_ptr()) })
    }

    /// Host side: the port's device becomes domain `domain` (1 to 32751)
    /// until [`Self::unbind_domain`], the port's close or the device's
    /// removal: its grants go to `ops->grant(priv_, ...)` (for a
    /// [`DomainPolicy`]: `domain_ops::<D>()` and the policy's address).
    /// `EOPNOTSUPP` (a guest port), `EINVAL`, `EEXIST` (`domain` is another
    /// device's), `EBUSY` (this device is a domain already), `ENODEV`.
    /// Process context, without a lock that `ops->grant` takes.
    ///
    /// # Safety
    ///
    /// `ops` and `priv_` stay valid, and `ops->grant` callable with
    /// `priv_` in process context (from the device's work), until the
    /// binding ends: [`Self::unbind_domain`] or the close of the port
    /// returned, or the device went away (the port's `down(ENODEV)`) and
    /// the port is closed.
    pub unsafe fn bind_domain(
        &self,
        domain: u16,
        ops: &'static bindings::vmpi_domain_ops,
        priv_: *mut c_void,
    ) -> Result {
        // SAFETY: `p` is an open port (the type's lifetime); `ops` is
        // static and `priv_` as the caller guarantees.
        to_result(unsafe { bindings::vmpi_port_bind_domain(self.p, domain, ops, priv_) })
    }

    /// Host side: ends this port's binding (no-op if it holds none): every
    /// grant of the domain completes `REVOKED`, and when this returns no
    /// policy call runs or will run. Process context, without a lock that
    /// the policy takes.
    pub fn unbind_domain(&self) {
        // SAFETY: `p` is an open port (the type's lifetime).
        unsafe { bindings::vmpi_port_unbind_domain(self.p) };
    }

    /// Host side, from a policy call that lets grant `handle` of
    /// `src_domain` stand: delivers it into a posted receive of this
    /// port's device (the destination) instead of an `ENVELOPE`
    /// (`vmpi_port_deliver()`). `ENOSPC`: no free posted receive holds
    /// it; `ENODEV`: not a running domain; `EOPNOTSUPP`: a guest port.
    /// Process context; does not sleep.
    pub fn deliver(&self, handle: u64, src_domain: u16, frame_len: u32, meta: &[u8; 12]) -> Result {
        // SAFETY: `p` is an open port (the type's lifetime); `meta` is
        // valid for 12 reads.
        to_result(unsafe {
            bindings::vmpi_port_deliver(self.p, handle, src_domain, frame_len, meta.as_ptr())
        })
    }

    /// Host side: the counters of the device's domain (zeroes if not
    /// bound). Process context.
    pub fn domain_stats(&self) -> bindings::vmpi_grant_stats {
        let mut s = bindings::vmpi_grant_stats::default();
        // SAFETY: `p` is an open port (the type's lifetime); `s` is valid
        // for a write.
        unsafe { bindings::vmpi_port_domain_stats(self.p, &mut s) };
        s
    }
}

/// Host side: what decides about a domain's grants (`struct
/// vmpi_domain_ops`); bind with [`PortRef::bind_domain`] and
/// [`domain_ops`].
pub trait DomainPolicy: Send + Sync + Sized {
    /// The domain's device took a grant and recorded it as `handle`: 0 to
    /// let it stand (an envelope naming it goes to `dest_domain`), or
    /// `VMPI_GRANT_REFUSED` / `VMPI_GRANT_UNDELIVERED` to complete it now.
    /// `addrs`: the frame's first 14 bytes (as every copy delivers them);
    /// `meta`: its `virtio_net_hdr_v1`. Process context, from the device's
    /// work with its lock held: may send on a port, not bind or unbind.
    fn grant(
        &self,
        handle: u64,
        dest_domain: u16,
        addrs: &[u8; 14],
        meta: &[u8; 12],
        frame_len: u32,
    ) -> u32;
}

/// The `struct vmpi_domain_ops` of policy type `D` (one per type), whose
/// `priv` is a `*const D`.
pub fn domain_ops<D: DomainPolicy>() -> &'static bindings::vmpi_domain_ops {
    &DomainVTable::<D>::OPS
}

struct DomainVTable<D: DomainPolicy>(PhantomData<D>);

impl<D: DomainPolicy> DomainVTable<D> {
    const OPS: bindings::vmpi_domain_ops = bindings::vmpi_domain_ops {
        grant: Some(Self::grant),
    };

    /// # Safety
    ///
    /// `priv_` is the `*const D` bound with [`domain_ops::<D>`] (valid while
    /// bound: [`PortRef::bind_domain`]'s contract); `addrs` and `meta` are
    /// valid for 14 and 12 reads.
    unsafe extern "C" fn grant(
        priv_: *mut c_void,
        handle: u64,
        dest_domain: u16,
        addrs: *const u8,
        meta: *const u8,
        frame_len: u32,
    ) -> c_int {
        // SAFETY: the transport calls the bound policy's `grant` only while
        // bound, with the `priv` given to `vmpi_port_bind_domain()` (a
        // `*const D`, valid meanwhile) and `addrs`/`meta` valid for 14 and
        // 12 bytes (`struct vmpi_domain_ops`, include/rvio/vmpi.h).
        let (d, addrs, meta) = unsafe {
            (
                &*(priv_ as *const D),
                &*addrs.cast::<[u8; 14]>(),
                &*meta.cast::<[u8; 12]>(),
            )
        };
        d.grant(handle, dest_domain, addrs, meta, frame_len) as c_int
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
