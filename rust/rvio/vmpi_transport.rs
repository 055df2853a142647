// SPDX-License-Identifier: GPL-2.0

//! Safe wrapper of VMPI's transport C-ABI (`include/rvio/vmpi.h`, provided
//! by `vmpi.ko`) for the transport modules: a [`Transport`] is one device
//! registered with the core, unregistered when dropped.

use crate::bindings;
use crate::proto::link::Role;
use core::marker::PhantomData;
use kernel::alloc::KVVec;
use kernel::error::from_err_ptr;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

/// How a transport's device starts a pass when the core asks
/// (`ops->kick`): schedule its work. The core calls it in process context,
/// possibly holding a device mutex (include/rvio/vmpi.h), so it must not
/// sleep.
pub trait Kick: Send + Sync {
    /// Schedules a pass of the device's work.
    fn kick(&self);
}

/// The core's table for a transport whose kick is `K` (one per type).
struct KickVTable<K: Kick>(PhantomData<K>);

impl<K: Kick> KickVTable<K> {
    const OPS: bindings::vmpi_transport_ops = bindings::vmpi_transport_ops {
        kick: Some(Self::kick),
    };

    /// # Safety
    ///
    /// `k` is the `priv` a [`Transport<K>`] registered: a live `K`.
    unsafe extern "C" fn kick(k: *mut c_void) {
        // SAFETY: the core calls `kick` only with the `priv` given to
        // `vmpi_transport_register()` and not after
        // `vmpi_transport_unregister()` returns (include/rvio/vmpi.h).
        // `Transport::register` gave it the address of the boxed `K` that
        // the `Transport` owns and drops only after unregistering.
        let k = unsafe { &*k.cast::<K>() };
        k.kick();
    }
}

/// One device registered with the VMPI core.
///
/// # Invariants
///
/// `t` is a registered handle, unregistered only by `drop`, whose `priv`
/// is the address of `_kick`'s `K`.
pub struct Transport<K: Kick> {
    t: *mut bindings::vmpi_transport,
    _kick: KBox<K>,
}

// SAFETY: the core's functions may be called from any thread (it locks);
// `K: Send`.
unsafe impl<K: Kick> Send for Transport<K> {}
// SAFETY: `&Transport` only passes `t` to the core's `vmpi_transport_*()`
// (include/rvio/vmpi.h). The header does not say that they may run
// concurrently; this relies on their implementation in vmpi/core/ffi.rs,
// which works on the `Dev` that the handle (a boxed `Registered`) holds an
// `Arc` of (`Dev: Sync`) under its `inner` mutex or `cache` spinlock, so
// concurrent calls are serialized.
unsafe impl<K: Kick> Sync for Transport<K> {}

impl<K: Kick> Transport<K> {
    /// Registers a device with configuration space `cfg`; the core asks
    /// for passes through `kick` until this `Transport` is dropped.
    pub fn register(role: Role, name: &kernel::str::CStr, cfg: &[u8], kick: K) -> Result<Self> {
        let kick = KBox::new(kick, GFP_KERNEL)?;
        let priv_: *const K = &*kick;
        // SAFETY: `name` is NUL-terminated; `cfg` is valid for its length;
        // `KickVTable::<K>::OPS` is static, and its `kick` may be called
        // with `priv_` in process context until the `Transport` drops `kick`,
        // which `drop` does after `vmpi_transport_unregister()` (`K::kick`
        // does not block: the `Kick` contract). The core returns a handle
        // or an `ERR_PTR()` (include/rvio/vmpi.h).
        let t = from_err_ptr(unsafe {
            bindings::vmpi_transport_register(
                role as u32,
                name.as_char_ptr(),
                cfg.as_ptr().cast(),
                cfg.len(),
                &KickVTable::<K>::OPS,
                priv_ as *mut c_void,
            )
        })?;
        // INVARIANT: registered just now, with `kick`'s address as `priv`.
        Ok(Self { t, _kick: kick })
    }

    /// One received fragment.
    pub fn rx(&self, frag: &[u8]) {
        // SAFETY: by the type invariant `t` is registered; `frag` is valid.
        unsafe { bindings::vmpi_transport_rx(self.t, frag.as_ptr().cast(), frag.len()) };
    }

    /// Writes the next fragment to send into `buf` (one ring buffer of the
    /// peer); `Ok(0)` if nothing waits.
    pub fn tx(&self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: by the type invariant `t` is registered; `buf` is valid
        // for its length.
        let n = unsafe { bindings::vmpi_transport_tx(self.t, buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| Error::from_errno(n as c_int))
    }

    /// The next message if it is a data SDU of at most `max_len` bytes
    /// that can go whole (the guest's txq): its wire header and its bytes,
    /// handed over without a copy. `None`: nothing waits, a control message
    /// goes first, or the SDU is longer ([`Self::tx`]).
    pub fn take_sdu(&self, max_len: usize) -> Option<([u8; 4], KVVec<u8>)> {
        let mut sdu = core::mem::MaybeUninit::<bindings::vmpi_sdu>::uninit();
        // SAFETY: by the type invariant `t` is registered; `sdu` is valid
        // for a write.
        if unsafe { bindings::vmpi_transport_tx_take(self.t, max_len, sdu.as_mut_ptr()) } != 1 {
            return None;
        }
        // SAFETY: the call returned 1, so it wrote `sdu`.
        let sdu = unsafe { sdu.assume_init() };
        // SAFETY: the core built (data, len, cap) from a `KVVec<u8>`'s
        // `into_raw_parts` and gave up its ownership (include/rvio/vmpi.h).
        let data = unsafe { KVVec::from_raw_parts(sdu.data.cast::<u8>(), sdu.len, sdu.cap) };
        Some((sdu.hdr, data))
    }

    /// Gives the bytes of an SDU from [`Self::take_sdu`] back to the core,
    /// once the peer has it (reused for a later SDU, or freed).
    pub fn sdu_done(&self, data: KVVec<u8>) {
        let (ptr, len, cap) = data.into_raw_parts();
        let mut sdu = bindings::vmpi_sdu {
            hdr: [0; 4],
            data: ptr.cast(),
            len,
            cap,
        };
        // SAFETY: by the type invariant `t` is registered; `sdu` holds a
        // `KVVec<u8>`'s raw parts, whose ownership passes to the core.
        unsafe { bindings::vmpi_transport_tx_done(self.t, &mut sdu) };
    }

    /// Length of the next fragment with unlimited room; 0 if nothing waits.
    pub fn tx_len(&self) -> usize {
        // SAFETY: by the type invariant `t` is registered.
        unsafe { bindings::vmpi_transport_tx_len(self.t) }
    }

    /// The rings were reset.
    pub fn restart(&self) {
        // SAFETY: by the type invariant `t` is registered.
        unsafe { bindings::vmpi_transport_restart(self.t) };
    }

    /// Counts a drop the transport saw (`DropReason` as number).
    pub fn count_drop(&self, reason: u32) {
        // SAFETY: by the type invariant `t` is registered.
        unsafe { bindings::vmpi_transport_drop(self.t, reason) };
    }
}

impl<K: Kick> Drop for Transport<K> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `t` is registered; not used again.
        // The core calls no `kick` after this returns, so `self._kick` may
        // go (dropped after this, with the other fields).
        unsafe { bindings::vmpi_transport_unregister(self.t) };
    }
}
