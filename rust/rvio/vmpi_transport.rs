// SPDX-License-Identifier: GPL-2.0

//! Safe wrapper of VMPI's transport C-ABI (`include/rvio/vmpi.h`, provided
//! by `vmpi.ko`) for the transport modules: a [`Transport`] is one device
//! registered with the core, unregistered when dropped.

use crate::bindings;
use crate::proto::link::Role;
use kernel::alloc::KVVec;
use kernel::error::from_err_ptr;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

/// One device registered with the VMPI core.
///
/// # Invariants
///
/// `t` is a registered handle, unregistered only by `drop`.
pub struct Transport {
    t: *mut bindings::vmpi_transport,
}

// SAFETY: the core's functions may be called from any thread (it locks).
unsafe impl Send for Transport {}
// SAFETY: `&Transport` only passes `t` to the core's `vmpi_transport_*()`
// (include/rvio/vmpi.h). The header does not say that they may run
// concurrently; this relies on their implementation in vmpi/core/ffi.rs,
// which works on the `Dev` behind `t` (an `Arc<Dev>`, `Dev: Sync`) under its
// `inner` mutex or `cache` spinlock, so concurrent calls are serialized.
unsafe impl Sync for Transport {}

impl Transport {
    /// Registers a device with configuration space `cfg`.
    ///
    /// # Safety
    ///
    /// `ops.kick(priv_)` must be callable from any context, without
    /// blocking, until this `Transport` is dropped.
    pub unsafe fn register(
        role: Role,
        name: &kernel::str::CStr,
        cfg: &[u8],
        ops: &'static bindings::vmpi_transport_ops,
        priv_: *mut c_void,
    ) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; `cfg` is valid for its length;
        // `ops` is static and `priv_` valid as this function's contract
        // says. The core returns a handle or an `ERR_PTR()`
        // (include/rvio/vmpi.h).
        let t = from_err_ptr(unsafe {
            bindings::vmpi_transport_register(
                role as u32,
                name.as_char_ptr(),
                cfg.as_ptr().cast(),
                cfg.len(),
                ops,
                priv_,
            )
        })?;
        // INVARIANT: registered just now.
        Ok(Self { t })
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

impl Drop for Transport {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `t` is registered; not used again.
        unsafe { bindings::vmpi_transport_unregister(self.t) };
    }
}
