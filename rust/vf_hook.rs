// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction for hooking the VF-configuration path of SR-IOV PF
//! net_devices (the Rust half; the C half is `rust/vf_hook_glue.c`, which
//! swaps the PF's `netdev_ops` for a copy whose `ndo_set_vf_*` call a
//! [`VfHandler`], and restores them). Hooks are named by a [`HookId`] and
//! used under RTNL only, which an [`Rtnl`] token proves.
//!
//! Include with `#[path = ".../rust/vf_hook.rs"] pub mod vf_hook;` next to
//! `mod bindings;`, and link `rust/vf_hook_glue.o` into the module.

use crate::bindings;
use core::marker::PhantomData;
use kernel::error::{from_err_ptr, from_result, to_result};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

/// Proof that the caller holds RTNL (not `Send`: it is the holder's).
pub struct Rtnl {
    _not_send: PhantomData<*const ()>,
}

/// RTNL, held until dropped.
pub struct RtnlGuard {
    token: Rtnl,
}

impl RtnlGuard {
    /// Takes RTNL (sleeps).
    pub fn lock() -> Self {
        // SAFETY: no preconditions; process context (we may sleep).
        unsafe { bindings::rtnl_lock() };
        Self {
            token: Rtnl {
                _not_send: PhantomData,
            },
        }
    }
}

impl core::ops::Deref for RtnlGuard {
    type Target = Rtnl;
    fn deref(&self) -> &Rtnl {
        &self.token
    }
}

impl Drop for RtnlGuard {
    fn drop(&mut self) {
        // SAFETY: taken in `lock`.
        unsafe { bindings::rtnl_unlock() };
    }
}

/// A hook, as long as it is attached (ids are never reused).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HookId(u64);

/// A VF-configuration request: one `ndo_set_vf_*` call, as `ip link set
/// PF vf N ...` makes it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VfRequest {
    /// `ndo_set_vf_mac`: the MAC.
    Mac([u8; 6]),
    /// `ndo_set_vf_vlan`.
    Vlan {
        /// The VLAN id (0: none).
        vlan: u16,
        /// The 802.1p priority.
        qos: u8,
        /// The ethertype (802.1Q or 802.1ad), host order.
        proto: u16,
    },
    /// `ndo_set_vf_rate`.
    Rate {
        /// Guaranteed rate, Mbit/s.
        min: u32,
        /// Maximum rate, Mbit/s (0: unlimited).
        max: u32,
    },
    /// `ndo_set_vf_spoofchk`.
    SpoofChk(bool),
    /// `ndo_set_vf_trust`.
    Trust(bool),
    /// `ndo_set_vf_link_state`: `IFLA_VF_LINK_STATE_*`.
    LinkState(u32),
}

/// What a hooked PF's VF-configuration requests go to.
pub trait VfHandler: Send + Sync + Sized {
    /// `ip link set PF vf N ...` asks `req` of VF `vf` of hooked PF `id`:
    /// decide, and pass it to the PF driver with [`Hooks::apply`] if it
    /// may go. What this returns is what `ip link` gets.
    fn set(&self, rtnl: &Rtnl, id: HookId, vf: i32, req: &VfRequest) -> Result;
    /// PF `id` is being unregistered or was renamed; its hook is
    /// detached already.
    fn gone(&self, rtnl: &Rtnl, id: HookId);
}

/// The module's hooks: the C half's netdev notifier, registered while
/// this value lives; every hook is detached when it is dropped. One per
/// module.
pub struct Hooks<T: VfHandler> {
    _t: PhantomData<Arc<T>>,
}

/// A VF request in the C half's form.
fn to_c(vf: i32, req: &VfRequest) -> bindings::rvio_vf_req {
    let mut r = bindings::rvio_vf_req {
        vf,
        ..Default::default()
    };
    match *req {
        VfRequest::Mac(m) => {
            r.kind = bindings::rvio_vf_req_kind_RVIO_VF_MAC;
            r.mac = m;
        }
        VfRequest::Vlan { vlan, qos, proto } => {
            r.kind = bindings::rvio_vf_req_kind_RVIO_VF_VLAN;
            (r.vlan, r.qos, r.proto) = (vlan, qos, proto);
        }
        VfRequest::Rate { min, max } => {
            r.kind = bindings::rvio_vf_req_kind_RVIO_VF_RATE;
            (r.min_rate, r.max_rate) = (min, max);
        }
        VfRequest::SpoofChk(on) => {
            r.kind = bindings::rvio_vf_req_kind_RVIO_VF_SPOOFCHK;
            r.setting = on.into();
        }
        VfRequest::Trust(on) => {
            r.kind = bindings::rvio_vf_req_kind_RVIO_VF_TRUST;
            r.setting = on.into();
        }
        VfRequest::LinkState(s) => {
            r.kind = bindings::rvio_vf_req_kind_RVIO_VF_LINK_STATE;
            r.setting = s;
        }
    }
    r
}

/// The request of a C half's `rvio_vf_req`, if its kind is known.
fn from_c(r: &bindings::rvio_vf_req) -> Option<VfRequest> {
    Some(match r.kind {
        bindings::rvio_vf_req_kind_RVIO_VF_MAC => VfRequest::Mac(r.mac),
        bindings::rvio_vf_req_kind_RVIO_VF_VLAN => VfRequest::Vlan {
            vlan: r.vlan,
            qos: r.qos,
            proto: r.proto,
        },
        bindings::rvio_vf_req_kind_RVIO_VF_RATE => VfRequest::Rate {
            min: r.min_rate,
            max: r.max_rate,
        },
        bindings::rvio_vf_req_kind_RVIO_VF_SPOOFCHK => VfRequest::SpoofChk(r.setting != 0),
        bindings::rvio_vf_req_kind_RVIO_VF_TRUST => VfRequest::Trust(r.setting != 0),
        bindings::rvio_vf_req_kind_RVIO_VF_LINK_STATE => VfRequest::LinkState(r.setting),
        _ => return None,
    })
}

impl<T: VfHandler> Hooks<T> {
    const OPS: bindings::rvio_vf_hook_ops = bindings::rvio_vf_hook_ops {
        set: Some(Self::set_cb),
        gone: Some(Self::gone_cb),
        release: Some(Self::release_cb),
    };

    /// Registers the notifier (`EBUSY` if this module has hooks already).
    pub fn new() -> Result<Self> {
        // SAFETY: no preconditions; `Drop` undoes it.
        to_result(unsafe { bindings::rvio_vf_hooks_init() })?;
        Ok(Self { _t: PhantomData })
    }

    /// Hooks the VF setters of the PF named `ifname` (initial network
    /// namespace) for `handler`: `ENODEV` no such device (or no [`Hooks`]
    /// registered), `EOPNOTSUPP` not an SR-IOV PF, `EEXIST` hooked
    /// already.
    pub fn attach(_rtnl: &Rtnl, ifname: &CStr, handler: &Arc<T>) -> Result<HookId> {
        let priv_ = Arc::into_raw(handler.clone()) as *mut c_void;
        // SAFETY: RTNL is held (`_rtnl`); `ifname` is NUL-terminated;
        // `OPS` is static and its callbacks take `priv_`, which holds a
        // count that `release_cb` gives back.
        let id = unsafe { bindings::rvio_vf_hook_attach(ifname.as_char_ptr(), &Self::OPS, priv_) };
        if id < 0 {
            // SAFETY: not handed over: the count from `into_raw` above.
            drop(unsafe { Arc::from_raw(priv_ as *const T) });
            return Err(Error::from_errno(id as c_int));
        }
        Ok(HookId(id as u64))
    }

    /// # Safety
    ///
    /// `priv_` is a hook's count of an `Arc<T>`, held during the call.
    unsafe fn handler<'a>(priv_: *mut c_void) -> &'a T {
        // SAFETY: the caller guarantees that `priv_` is a hook's count of an
        // `Arc<T>` (the `Arc::into_raw` pointer `attach` gave the C half),
        // held during the call (see `# Safety`), so it points to a live `T`
        // for as long as the caller uses the reference, within that call.
        unsafe { &*(priv_ as *const T) }
    }

    /// # Safety
    ///
    /// Called by the C half under RTNL for a hook of ours, with its
    /// `priv_`; `req` is valid for the call.
    unsafe extern "C" fn set_cb(
        priv_: *mut c_void,
        id: u64,
        req: *const bindings::rvio_vf_req,
    ) -> c_int {
        from_result(|| {
            // SAFETY: the setter trampolines in rust/vf_hook_glue.c pass a
            // request on their stack, valid for the call.
            let r = unsafe { &*req };
            let req = from_c(r).ok_or(EINVAL)?;
            let rtnl = Rtnl {
                _not_send: PhantomData,
            };
            // SAFETY: `rvio_vf_hook_call()` in rust/vf_hook_glue.c passes the
            // hook's `h->priv`, the `priv_` that `attach` gave
            // `rvio_vf_hook_attach()`, i.e. the hook's count of an `Arc<T>`. The
            // count is dropped only by `->release` in `rvio_vf_hook_remove()`,
            // which needs RTNL: no other thread runs it during this call (we are
            // called under RTNL, see `# Safety`), and `rvio_vf_hook_detach()`
            // refuses from within a callback (`rvio_vf_in_callback`). So the
            // count is held for the call, as `handler` needs.
            unsafe { Self::handler(priv_) }.set(&rtnl, HookId(id), r.vf, &req)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// As for `set_cb`.
    unsafe extern "C" fn gone_cb(priv_: *mut c_void, id: u64) {
        let rtnl = Rtnl {
            _not_send: PhantomData,
        };
        // SAFETY: `rvio_vf_hook_remove()` in rust/vf_hook_glue.c calls
        // `->gone` with the hook's `h->priv` (the `Arc::into_raw` count that
        // `attach` gave `rvio_vf_hook_attach()`) before `->release(h->priv)`
        // drops that count, so it is held for the call, as `handler` needs.
        unsafe { Self::handler(priv_) }.gone(&rtnl, HookId(id));
    }

    /// # Safety
    ///
    /// Called once per hook when it is detached, with its `priv_`.
    unsafe extern "C" fn release_cb(priv_: *mut c_void) {
        // SAFETY: the hook's count, taken in `attach`.
        drop(unsafe { Arc::from_raw(priv_ as *const T) });
    }
}

impl<T: VfHandler> Drop for Hooks<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new`; detaches every hook (releasing
        // their counts) and unregisters the notifier; takes RTNL itself.
        unsafe { bindings::rvio_vf_hooks_exit() };
    }
}

/// Restores the PF driver's ops: `false` if `id` was not attached, or
/// when called from a [`VfHandler`] callback (the hook stays).
pub fn detach(_rtnl: &Rtnl, id: HookId) -> bool {
    // SAFETY: RTNL is held.
    unsafe { bindings::rvio_vf_hook_detach(id.0) }
}

/// Passes `req` on VF `vf` to the PF driver of `id` (no
/// [`VfHandler::set`]): its result; `EOPNOTSUPP` if the driver lacks
/// the op; `ENODEV` if `id` is not attached.
pub fn apply(_rtnl: &Rtnl, id: HookId, vf: i32, req: &VfRequest) -> Result {
    let r = to_c(vf, req);
    // SAFETY: RTNL is held; `r` is valid for the call.
    to_result(unsafe { bindings::rvio_vf_hook_apply(id.0, &r) })
}

/// The MAC that VF `vf` of the PF of `id` has now (the driver's
/// `ndo_get_vf_config`).
pub fn vf_mac(_rtnl: &Rtnl, id: HookId, vf: i32) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    // SAFETY: RTNL is held; `mac` is valid for 6 writes.
    to_result(unsafe { bindings::rvio_vf_hook_vf_mac(id.0, vf, mac.as_mut_ptr()) })?;
    Ok(mac)
}

/// The number of VFs the PF of `id` has enabled.
pub fn num_vfs(_rtnl: &Rtnl, id: HookId) -> Result<u32> {
    // SAFETY: RTNL is held.
    let n = unsafe { bindings::rvio_vf_hook_num_vfs(id.0) };
    to_result(n.min(0))?;
    Ok(n as u32)
}

/// The PCI device of the PF of `id` (`EOPNOTSUPP`: not PCI).
pub fn pci_pf(_rtnl: &Rtnl, id: HookId) -> Result<PciPf> {
    // SAFETY: RTNL is held (`_rtnl`). The C half returns a device with a
    // reference or an `ERR_PTR()` (rust/vf_hook_glue.h).
    let p = from_err_ptr(unsafe { bindings::rvio_vf_hook_pci_get(id.0) })?;
    // INVARIANT: a reference we own.
    Ok(PciPf { p })
}

/// Whether a warning may be logged now (the kernel's default rate
/// limit, shared by the module's warnings).
pub fn warn_ratelimit() -> bool {
    // SAFETY: no preconditions.
    unsafe { bindings::rvio_vf_hook_ratelimit() }
}

/// A reference to the PCI device of a PF.
///
/// # Invariants
///
/// `p` is a PCI device we hold a reference to.
pub struct PciPf {
    p: *mut bindings::pci_dev,
}

impl PciPf {
    /// Sets the number of enabled VFs as writing `sriov_numvfs` does, with
    /// its errors (`ERANGE`, `ENOENT`, `EBUSY`, the driver's). Must not be
    /// called under RTNL (there is no [`Rtnl`] to give): the PF driver
    /// may take it.
    pub fn set_num_vfs(&self, n: u16) -> Result {
        // SAFETY: we hold a reference to `p` (type invariant).
        to_result(unsafe { bindings::rvio_pci_sriov_set_numvfs(self.p, n) })
    }
}

impl Drop for PciPf {
    fn drop(&mut self) {
        // SAFETY: our reference (type invariant).
        unsafe { bindings::rvio_pci_put(self.p) };
    }
}
