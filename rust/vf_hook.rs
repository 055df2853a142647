// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction for hooking the VF-configuration path of SR-IOV PF
//! net_devices (the Rust half; the C half is `rust/vf_hook_glue.c`, which
//! swaps a PF's `netdev_ops` for a copy whose `ndo_set_vf_*` call a
//! [`VfHandler`], restores them, and runs a netdev notifier).
//!
//! A handler owns its [`Hooks`], the hooks it attached, each named by a
//! [`HookId`]. A [`Registration`] of the handler registers the notifier
//! (which detaches a PF that is unregistered or renamed); hooks can be
//! attached only while it lives, and it detaches them all when dropped.
//! Hooks are used under RTNL only, which an [`Rtnl`] token proves: RTNL
//! is the lock of a [`Hooks`].
//!
//! Include with `#[path = ".../rust/vf_hook.rs"] pub mod vf_hook;` next to
//! `mod bindings;`, and link `rust/vf_hook_glue.o` into the module.

use crate::bindings;
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{from_err_ptr, from_result, to_result};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;

/// Proof that the caller holds RTNL (not `Send`: it is the holder's).
pub struct Rtnl {
    _not_send: PhantomData<*const ()>,
}

impl Rtnl {
    /// A token for a context that holds RTNL.
    ///
    /// # Safety
    ///
    /// The caller holds RTNL for as long as the token (or a borrow of it)
    /// is used.
    unsafe fn assume_held() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }
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
        // INVARIANT: RTNL is held from here until `drop` releases it, and
        // the token is only lent out by `Deref`, for no longer than the
        // guard.
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
        // SAFETY: `lock` took RTNL, and a guard is dropped once.
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
    /// The hooks of this handler: one [`Hooks`] that it owns (a field),
    /// always the same.
    fn hooks(&self) -> &Hooks<Self>;
    /// `ip link set PF vf N ...` asks `req` of VF `vf` of hooked PF `id`:
    /// decide, and pass it to the PF driver with [`Hooks::apply`] if it
    /// may go. What this returns is what `ip link` gets.
    fn set(&self, rtnl: &Rtnl, id: HookId, vf: i32, req: &VfRequest) -> Result;
    /// PF `id` is being unregistered or was renamed; its hook is
    /// detached already.
    fn gone(&self, rtnl: &Rtnl, id: HookId);
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

/// An attached hook.
///
/// # Invariants
///
/// `c` is a hook of the C half attached to the net_device `dev` with
/// [`Hooks::OPS`] and the address of the [`Hooks`] whose list holds this
/// value, and not detached yet.
struct Hook {
    id: HookId,
    /// The PF's `struct net_device`, only compared.
    dev: *mut c_void,
    c: *mut bindings::rvio_vf_hook,
}

impl Hook {
    /// Detaches the hook: restores the PF driver's ops.
    fn detach(self, _rtnl: &Rtnl) {
        // SAFETY: `c` is attached (type invariant) and `self` is consumed,
        // so it is detached once; RTNL is held (`_rtnl`), as
        // `rvio_vf_hook_detach()` requires.
        unsafe { bindings::rvio_vf_hook_detach(self.c) };
    }
}

/// Whether a [`Registration`] has the hooks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reg {
    /// None: no hook can be attached.
    Idle,
    /// One is being made or dropped: no hook can be attached.
    Busy,
    /// One is registered: hooks can be attached.
    Live,
}

/// The state of [`Hooks`], which RTNL guards.
struct Inner<T> {
    reg: Reg,
    /// The handler of the [`Registration`], or null when `reg` is `Idle`.
    handler: *const T,
    /// Slots that keep their place (6.12's `KVec` has no `remove`).
    list: KVec<Option<Hook>>,
    /// The last id given out.
    next_id: u64,
    /// [`VfHandler`] callbacks running: no hook is detached meanwhile but
    /// by the notifier.
    in_callback: u32,
}

/// The hooks of a handler `T`, embedded in it ([`VfHandler::hooks`]).
///
/// # Invariants
///
/// - `inner` is accessed only with RTNL held, through [`Hooks::with`],
///   whose closures call no code that calls `with` again.
/// - While `inner.reg` is not `Idle`, `inner.handler` points to the
///   handler that a [`Registration`] of these hooks holds an `Arc` of, and
///   that registration sets `reg` to `Idle` under RTNL before it lets the
///   `Arc` go; hooks are in `inner.list` only while `reg` is `Live` or
///   `Busy`.
/// - A `Hooks` that a registration has is not moved until it is dropped
///   (it is reached by the C half through its address).
pub struct Hooks<T> {
    inner: UnsafeCell<Inner<T>>,
}

// SAFETY: `Hooks` is used by whichever thread holds RTNL (type invariant),
// which makes its users take turns; it calls `T` from those threads, so it
// needs `T: Send + Sync`.
unsafe impl<T: Send + Sync> Send for Hooks<T> {}
// SAFETY: as for `Send`: every access to `inner` needs RTNL, so shared
// references on several threads do not access it concurrently.
unsafe impl<T: Send + Sync> Sync for Hooks<T> {}

impl<T> Drop for Hooks<T> {
    fn drop(&mut self) {
        // A registration detaches every hook before its handler (which
        // embeds these) can go: one left is a bug, and its PF keeps a
        // reference (unregister_netdevice() would wait for it).
        if self.inner.get_mut().list.iter().any(Option::is_some) {
            pr_err!("vf_hook: hooks dropped while attached: their PFs stay referenced\n");
        }
    }
}

impl<T> Hooks<T> {
    /// No hooks; attaching needs a [`Registration`] of the handler.
    pub const fn new() -> Self {
        Self {
            inner: UnsafeCell::new(Inner {
                reg: Reg::Idle,
                handler: core::ptr::null(),
                list: KVec::new(),
                next_id: 0,
                in_callback: 0,
            }),
        }
    }

    /// Runs `f` on the state. `f` must not call code that calls `with`:
    /// every caller passes a closure that only updates the state or calls
    /// C functions of the C half that call no Rust code.
    fn with<R>(&self, _rtnl: &Rtnl, f: impl FnOnce(&mut Inner<T>) -> R) -> R {
        // SAFETY: RTNL is held (`_rtnl`) and every access to `inner` goes
        // through `with` with RTNL held (type invariant), so no other
        // thread accesses it now; no closure given to `with` calls `with`
        // (type invariant), so this is the only reference to it.
        f(unsafe { &mut *self.inner.get() })
    }

    /// The handler of the registration, if there is one.
    fn handler<'a>(&'a self, rtnl: &'a Rtnl) -> Option<&'a T> {
        let h = self.with(rtnl, |i| {
            if i.reg == Reg::Idle {
                None
            } else {
                Some(i.handler)
            }
        })?;
        // SAFETY: `reg` is not `Idle`, so `h` points to the handler that a
        // registration holds an `Arc` of, and the registration sets `reg`
        // to `Idle` under RTNL before it lets the `Arc` go (type
        // invariant): `h` is valid while this thread holds RTNL, for `'a`
        // (the borrow of `rtnl`).
        Some(unsafe { &*h })
    }

    /// The C half's hook of `id` (`ENODEV` if not attached).
    fn hook(&self, rtnl: &Rtnl, id: HookId) -> Result<*mut bindings::rvio_vf_hook> {
        self.with(rtnl, |i| {
            i.list.iter().flatten().find(|h| h.id == id).map(|h| h.c)
        })
        .ok_or(ENODEV)
    }
}

impl<T> Default for Hooks<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: VfHandler> Hooks<T> {
    const OPS: bindings::rvio_vf_hook_ops = bindings::rvio_vf_hook_ops {
        set: Some(Self::set_cb),
        netdev_gone: Some(Self::netdev_gone_cb),
    };

    /// Hooks the VF setters of the PF named `ifname` (initial network
    /// namespace) for the handler: `ENODEV` no such device (or no
    /// [`Registration`] of the handler), `EOPNOTSUPP` not an SR-IOV PF,
    /// `EEXIST` hooked already.
    pub fn attach(&self, rtnl: &Rtnl, ifname: &CStr) -> Result<HookId> {
        let priv_ = self as *const Self as *mut c_void;
        self.with(rtnl, |i| {
            if i.reg != Reg::Live {
                return Err(ENODEV);
            }
            // SAFETY: RTNL is held (`rtnl`); `ifname` is NUL-terminated. The
            // C half returns a device or `ERR_PTR(-ENODEV)`
            // (rust/vf_hook_glue.h).
            let dev =
                from_err_ptr(unsafe { bindings::rvio_vf_netdev_by_name(ifname.as_char_ptr()) })?;
            if i.list.iter().flatten().any(|h| h.dev == dev) {
                return Err(EEXIST);
            }
            if !i.list.iter().any(Option::is_none) {
                i.list.push(None, GFP_KERNEL)?;
            }
            let Some(slot) = i.list.iter_mut().find(|s| s.is_none()) else {
                return Err(ENOMEM);
            };
            // SAFETY: RTNL has been held since `rvio_vf_netdev_by_name()`
            // returned `dev`, so `dev` is that device still (unregistering
            // needs RTNL), and no hook of ours has it (checked above). `OPS`
            // is a constant, promoted to a static. `priv_` is `self`, which
            // stays at its address while registered (type invariant) and
            // outlives the hook: the registration, which `reg` shows is
            // live, detaches every hook before the handler that owns
            // `self` can go.
            let c = from_err_ptr(unsafe { bindings::rvio_vf_hook_attach(dev, &Self::OPS, priv_) })?;
            i.next_id += 1;
            let id = HookId(i.next_id);
            // INVARIANT: `c` was attached to `dev` just now with `OPS` and
            // `self`, and `reg` is `Live`.
            *slot = Some(Hook { id, dev, c });
            Ok(id)
        })
    }

    /// Restores the PF driver's ops: `false` if `id` was not attached, or
    /// when called from a [`VfHandler`] callback (the hook stays).
    pub fn detach(&self, rtnl: &Rtnl, id: HookId) -> bool {
        let hook = self.with(rtnl, |i| {
            // Not from a callback: the caller's state or the notifier's
            // walk could go with the hook.
            if i.in_callback > 0 {
                return None;
            }
            i.list
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|h| h.id == id))
                .and_then(Option::take)
        });
        match hook {
            Some(h) => {
                h.detach(rtnl);
                true
            }
            None => false,
        }
    }

    /// Passes `req` on VF `vf` to the PF driver of `id` (no
    /// [`VfHandler::set`]): its result; `EOPNOTSUPP` if the driver lacks
    /// the op; `ENODEV` if `id` is not attached.
    pub fn apply(&self, rtnl: &Rtnl, id: HookId, vf: i32, req: &VfRequest) -> Result {
        let c = self.hook(rtnl, id)?;
        let r = to_c(vf, req);
        // SAFETY: RTNL is held (`rtnl`), and `c` is attached (it is in the
        // list): only RTNL holders detach, and this thread does not but
        // through the notifier, if the driver's op unregisters or renames
        // the PF; `rvio_vf_hook_apply()` reads what it needs of `c` before
        // it calls the op and nothing of it after. `r` is valid for the
        // call.
        to_result(unsafe { bindings::rvio_vf_hook_apply(c, &r) })
    }

    /// The MAC that VF `vf` of the PF of `id` has now (the driver's
    /// `ndo_get_vf_config`).
    pub fn vf_mac(&self, rtnl: &Rtnl, id: HookId, vf: i32) -> Result<[u8; 6]> {
        let c = self.hook(rtnl, id)?;
        let mut mac = [0u8; 6];
        // SAFETY: RTNL is held and `c` is attached, as in `apply`; `mac`
        // is valid for 6 writes.
        to_result(unsafe { bindings::rvio_vf_hook_vf_mac(c, vf, mac.as_mut_ptr()) })?;
        Ok(mac)
    }

    /// The number of VFs the PF of `id` has enabled.
    pub fn num_vfs(&self, rtnl: &Rtnl, id: HookId) -> Result<u32> {
        let c = self.hook(rtnl, id)?;
        // SAFETY: RTNL is held and `c` is attached, as in `apply`.
        Ok(unsafe { bindings::rvio_vf_hook_num_vfs(c) })
    }

    /// The PCI device of the PF of `id` (`EOPNOTSUPP`: not PCI).
    pub fn pci_pf(&self, rtnl: &Rtnl, id: HookId) -> Result<PciPf> {
        let c = self.hook(rtnl, id)?;
        // SAFETY: RTNL is held and `c` is attached, as in `apply`. The C
        // half returns a device with a reference or an `ERR_PTR()`
        // (rust/vf_hook_glue.h).
        let p = from_err_ptr(unsafe { bindings::rvio_vf_hook_pci_get(c) })?;
        // INVARIANT: a reference we own.
        Ok(PciPf { p })
    }

    /// Calls the handler for a request on hook `c`.
    fn call_set(
        &self,
        rtnl: &Rtnl,
        c: *mut bindings::rvio_vf_hook,
        vf: i32,
        req: &VfRequest,
    ) -> Result {
        let id = self
            .with(rtnl, |i| {
                let id = i.list.iter().flatten().find(|h| h.c == c)?.id;
                i.in_callback += 1;
                Some(id)
            })
            .ok_or(ENODEV)?;
        // A hook is attached only while registered: there is a handler.
        let r = match self.handler(rtnl) {
            Some(t) => t.set(rtnl, id, vf, req),
            None => Err(ENODEV),
        };
        self.with(rtnl, |i| i.in_callback -= 1);
        r
    }

    /// Detaches every hook on net_device `dev`, telling the handler.
    fn netdev_gone(&self, rtnl: &Rtnl, dev: *mut c_void) {
        while let Some(hook) = self.with(rtnl, |i| {
            let hook = i
                .list
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|h| h.dev == dev))
                .and_then(Option::take)?;
            i.in_callback += 1;
            Some(hook)
        }) {
            let id = hook.id;
            hook.detach(rtnl);
            if let Some(t) = self.handler(rtnl) {
                t.gone(rtnl, id);
            }
            self.with(rtnl, |i| i.in_callback -= 1);
        }
    }

    /// # Safety
    ///
    /// Called by the C half's setter trampolines for hook `h` that these
    /// hooks attached, with its `priv_` and a request valid for the call.
    unsafe extern "C" fn set_cb(
        priv_: *mut c_void,
        h: *mut bindings::rvio_vf_hook,
        req: *const bindings::rvio_vf_req,
    ) -> c_int {
        from_result(|| {
            // SAFETY: rtnetlink calls every `ndo_set_vf_*` under RTNL
            // (`do_setvfinfo()` from `do_setlink()`, whose callers hold it),
            // and `rvio_vf_hook_call()` asserts it.
            let rtnl = unsafe { Rtnl::assume_held() };
            // SAFETY: `priv_` is what `attach` gave `rvio_vf_hook_attach()`
            // for `h`: the address of these hooks, which stay there while
            // registered (type invariant); `h` is attached, since the call
            // came through `dev->netdev_ops` under RTNL, and attached hooks
            // exist only while registered.
            let hooks = unsafe { &*(priv_ as *const Self) };
            // SAFETY: the trampolines in rust/vf_hook_glue.c pass a request
            // on their stack, valid for the call.
            let r = unsafe { &*req };
            let req = from_c(r).ok_or(EINVAL)?;
            hooks.call_set(&rtnl, h, r.vf, &req)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the notifier that a [`Registration`] of these hooks
    /// registered, with its `priv_`, while it is registered.
    unsafe extern "C" fn netdev_gone_cb(priv_: *mut c_void, dev: *mut c_void) {
        // SAFETY: netdev notifiers are called under RTNL:
        // `NETDEV_UNREGISTER` and `NETDEV_CHANGENAME` come from
        // `call_netdevice_notifiers()` (which asserts RTNL), or from the
        // replays of `unregister_netdevice_notifier()` and of a failed
        // `register_netdevice_notifier()`, which take it.
        let rtnl = unsafe { Rtnl::assume_held() };
        // SAFETY: `priv_` is the address of these hooks that
        // `Registration::new` gave `rvio_vf_notifier_register()`; the
        // registration keeps their handler (and so them, where they are)
        // alive until `rvio_vf_notifier_unregister()` has returned, after
        // which the notifier is not called.
        let hooks = unsafe { &*(priv_ as *const Self) };
        hooks.netdev_gone(&rtnl, dev);
    }
}

/// The registration of a handler's hooks: the netdev notifier that
/// detaches a PF that is unregistered or renamed. Hooks can be attached
/// while it lives; dropping it detaches them all (taking RTNL). One per
/// handler (`EBUSY`).
///
/// # Invariants
///
/// `n` is a registered notifier of the C half whose `priv` is `hooks`;
/// `hooks` is `_handler.hooks()`, whose `reg` is `Live` because of this
/// registration.
pub struct Registration<T: VfHandler> {
    n: *mut bindings::rvio_vf_notifier,
    hooks: NonNull<Hooks<T>>,
    /// Keeps the handler, and so `hooks`, alive.
    _handler: Arc<T>,
}

// SAFETY: the C half's notifier may be unregistered from any thread;
// `hooks` is used under RTNL only and `_handler` is an `Arc` of a
// `Send + Sync` type.
unsafe impl<T: VfHandler> Send for Registration<T> {}
// SAFETY: `&Registration` gives access to nothing (all methods take
// `&mut self` or `self`).
unsafe impl<T: VfHandler> Sync for Registration<T> {}

impl<T: VfHandler> Registration<T> {
    /// Registers the netdev notifier for `handler`'s hooks.
    pub fn new(handler: Arc<T>) -> Result<Self> {
        let hooks = handler.hooks();
        let priv_ = hooks as *const Hooks<T> as *mut c_void;
        {
            let rtnl = RtnlGuard::lock();
            hooks.with(&rtnl, |i| {
                if i.reg != Reg::Idle {
                    return Err(EBUSY);
                }
                // INVARIANT: we hold `handler` until `reg` is `Idle` again.
                i.reg = Reg::Busy;
                i.handler = &*handler as *const T;
                Ok(())
            })?;
        }
        // SAFETY: RTNL is not held. `OPS` is a constant, promoted to a
        // static. `priv_` is `hooks`, borrowed from `handler`, which the
        // result holds until `drop` has unregistered the notifier; on
        // error nothing is registered.
        let n =
            from_err_ptr(unsafe { bindings::rvio_vf_notifier_register(&Hooks::<T>::OPS, priv_) });
        let rtnl = RtnlGuard::lock();
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                hooks.with(&rtnl, |i| {
                    i.reg = Reg::Idle;
                    i.handler = core::ptr::null();
                });
                return Err(e);
            }
        };
        hooks.with(&rtnl, |i| i.reg = Reg::Live);
        let hooks = NonNull::from(hooks);
        // INVARIANT: registered just now with `hooks`; `reg` is `Live`.
        Ok(Self {
            n,
            hooks,
            _handler: handler,
        })
    }
}

impl<T: VfHandler> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `hooks` is borrowed from `_handler` (type invariant),
        // which we hold.
        let hooks = unsafe { self.hooks.as_ref() };
        {
            let rtnl = RtnlGuard::lock();
            hooks.with(&rtnl, |i| i.reg = Reg::Busy);
            while let Some(h) = hooks.with(&rtnl, |i| i.list.iter_mut().find_map(Option::take)) {
                h.detach(&rtnl);
            }
        }
        // SAFETY: `n` is registered (type invariant) and is unregistered
        // once, here, without RTNL. No hook is left for its calls to find.
        unsafe { bindings::rvio_vf_notifier_unregister(self.n) };
        let rtnl = RtnlGuard::lock();
        // INVARIANT: `_handler` is dropped after this: `reg` is `Idle` and
        // there is no hook.
        hooks.with(&rtnl, |i| {
            i.reg = Reg::Idle;
            i.handler = core::ptr::null();
        });
    }
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
        // SAFETY: our reference (type invariant), given back once.
        unsafe { bindings::rvio_pci_put(self.p) };
    }
}
