// SPDX-License-Identifier: GPL-2.0

//! `sriov_hook`: the SR-IOV hook (docs/sriov-hook.md). Attached to an
//! SR-IOV PF `net_device` through `/sys/kernel/sriov_hook/`, it sits in
//! the PF driver's VF-configuration path (`ndo_set_vf_*`, through
//! `rust/vf_hook.rs`): every `ip link set PF vf N ...` is checked against
//! the VF's policy ([`policy::check`]), passed to the driver's own op and
//! counted. A policy assigns a VF to a domain with its MAC, VLANs, rate
//! cap, spoof checking and trust; the hook applies it through the driver
//! and reports the domain's MAC as a route "direct via VF" while the VF
//! exists, the software path otherwise. The number of VFs of a PCI PF is
//! set as through its `sriov_numvfs`.
//!
//! Locking: RTNL, then the state mutex. `ip link` calls come with RTNL;
//! the sysfs files take it; only enabling VFs runs without it (the PF
//! driver may take it).

use core::fmt::Write;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::from_result;
use kernel::ffi::{c_int, c_void};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{new_mutex, Arc, ArcBorrow, Mutex};

#[path = "bindings_generated.rs"]
mod bindings;
#[path = "../../rust/errno.rs"]
pub mod errno;
// Pure sysfs line parsing that policy.rs uses as crate::line (shared with
// rust/pure and the other modules' pure files).
#[path = "../../rust/line.rs"]
pub mod line;
// Pure logic, shared with the host crate rust/pure.
#[path = "policy.rs"]
pub mod policy;
#[path = "../../rust/sysfs_buf.rs"]
pub mod sysfs_buf;
#[path = "../../rust/sysfs_dir.rs"]
pub mod sysfs_dir;
#[path = "../../rust/vf_hook.rs"]
pub mod vf_hook;

use line::{IfName, Mac, MacFmt};
use policy::{Policy, PolicyCmd, Route, VfRequest, Violation};
use sysfs_buf::SysfsBuf;
use sysfs_dir::{Attrs, Dir, Mode};
use vf_hook::{HookId, Hooks, Registration, Rtnl, RtnlGuard, VfHandler};

module! {
    type: SriovHookModule,
    name: "sriov_hook",
    author: "rvio developers",
    description: "SR-IOV hook: VF configuration through PF drivers checked against policy, VF routes",
    license: "GPL",
}

/// PFs attached at once (`attached` fits a page).
const MAX_PFS: usize = 32;
/// VF policies kept at once (`policy` fits a page: a line is at most
/// about 160 bytes).
const MAX_POLICIES: usize = 24;

/// An attached PF.
struct Pf {
    name: IfName,
    id: HookId,
    /// `ip link` VF requests passed to the driver, and refused.
    accepted: u64,
    refused: u64,
}

/// The policy of VF `vf` of the PF named `pf` (kept while the PF is
/// detached or gone, applied when it is attached again).
struct Assigned {
    pf: IfName,
    vf: u32,
    policy: Policy,
}

/// Slots that keep their place, so that removing needs no memory (6.12's
/// `KVec` has no `remove`).
struct Slots<T> {
    v: KVec<Option<T>>,
    limit: usize,
}

impl<T> Slots<T> {
    const fn new(limit: usize) -> Self {
        Self {
            v: KVec::new(),
            limit,
        }
    }
    fn iter(&self) -> impl Iterator<Item = &T> {
        self.v.iter().flatten()
    }
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.v.iter_mut().flatten()
    }
    /// Takes the first item that `f` says yes to.
    fn take(&mut self, f: impl Fn(&T) -> bool) -> Option<T> {
        self.v
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(&f))
            .and_then(Option::take)
    }
    /// Makes sure that [`Slots::put`] cannot fail: `ENOSPC` at the limit.
    fn reserve(&mut self) -> Result {
        if self.v.iter().any(Option::is_none) {
            return Ok(());
        }
        if self.v.len() >= self.limit {
            return Err(ENOSPC);
        }
        Ok(self.v.reserve(1, GFP_KERNEL)?)
    }
    /// Adds `x`, in room that [`Slots::reserve`] made.
    fn put(&mut self, x: T) {
        match self.v.iter_mut().find(|s| s.is_none()) {
            Some(s) => *s = Some(x),
            // Cannot fail after `reserve`.
            None => drop(self.v.push(Some(x), GFP_KERNEL)),
        }
    }
}

struct State {
    pfs: Slots<Pf>,
    assigned: Slots<Assigned>,
}

impl State {
    fn pf(&mut self, name: &IfName) -> Option<&mut Pf> {
        self.pfs.iter_mut().find(|p| p.name == *name)
    }

    /// The domain that MAC `m` is assigned to, on any VF but `except`.
    fn owner(&self, m: &Mac, except: (&IfName, u32)) -> Option<u16> {
        self.assigned
            .iter()
            .find(|a| a.policy.mac == *m && (a.pf != *except.0 || a.vf != except.1))
            .map(|a| a.policy.domain)
    }
}

#[pin_data]
struct Core {
    #[pin]
    state: Mutex<State>,
    /// The attached PFs' hooks (`Pf::id`), under RTNL.
    hooks: Hooks<Core>,
    /// Who is told when routes may have changed (`rvio_sriov_watch_add`).
    #[pin]
    watchers: Mutex<[Option<Watcher>; MAX_WATCHERS]>,
}

/// Watches of the routes at once.
const MAX_WATCHERS: usize = 4;

/// A watch of the routes: a C callback and its argument.
#[derive(Clone, Copy)]
struct Watcher {
    changed: unsafe extern "C" fn(*mut c_void),
    priv_: *mut c_void,
}

// SAFETY: the watcher's callback may be called from any thread (its
// contract in include/rvio/sriov_hook.h); `priv_` is only passed to it.
unsafe impl Send for Watcher {}

/// The module's state, for `rvio_sriov_route` (set while loaded).
static CORE: AtomicPtr<Core> = AtomicPtr::new(core::ptr::null_mut());

/// The module's state, for the exported C-ABI (`None` while not set).
fn loaded_core() -> Option<&'static Core> {
    let core = CORE.load(Ordering::Acquire);
    // SAFETY: `CORE` is set to the state the sysfs directory keeps alive
    // for as long as the module is loaded (`SriovHookModule`), and cleared
    // before it goes; the exported functions' callers are modules that
    // depend on this one (include/rvio/sriov_hook.h), so it cannot be
    // unloaded under them.
    unsafe { core.as_ref() }
}

/// The route of policy `a`: through its VF while the hook is attached to
/// the PF, the PF has the VF and the VF has the policy's MAC (a VF
/// enabled again behind the hook's back, or whose policy did not apply,
/// is not the domain's).
fn route_of(rtnl: &Rtnl, hooks: &Hooks<Core>, st: &State, a: &Assigned) -> Route {
    let Some(id) = st.pfs.iter().find(|p| p.name == a.pf).map(|p| p.id) else {
        return Route::Software;
    };
    let n = hooks.num_vfs(rtnl, id).unwrap_or(0);
    let has_mac =
        i32::try_from(a.vf).is_ok_and(|vf| hooks.vf_mac(rtnl, id, vf) == Ok(a.policy.mac));
    policy::route(a.pf, a.vf, has_mac, n)
}

fn violation_errno(v: Violation) -> Error {
    match v {
        Violation::OtherDomainMac => errno::eaddrinuse(),
        Violation::Rate => ERANGE,
        _ => EPERM,
    }
}

/// The request in the hook's terms.
fn to_hook(r: &VfRequest) -> vf_hook::VfRequest {
    match *r {
        VfRequest::Mac(m) => vf_hook::VfRequest::Mac(m),
        VfRequest::Vlan { vlan, qos, proto } => vf_hook::VfRequest::Vlan { vlan, qos, proto },
        VfRequest::Rate { min, max } => vf_hook::VfRequest::Rate { min, max },
        VfRequest::SpoofChk(on) => vf_hook::VfRequest::SpoofChk(on),
        VfRequest::Trust(on) => vf_hook::VfRequest::Trust(on),
        VfRequest::LinkState(s) => vf_hook::VfRequest::LinkState(s),
    }
}

/// The request in the policy's terms.
fn from_hook(r: &vf_hook::VfRequest) -> VfRequest {
    match *r {
        vf_hook::VfRequest::Mac(m) => VfRequest::Mac(m),
        vf_hook::VfRequest::Vlan { vlan, qos, proto } => VfRequest::Vlan { vlan, qos, proto },
        vf_hook::VfRequest::Rate { min, max } => VfRequest::Rate { min, max },
        vf_hook::VfRequest::SpoofChk(on) => VfRequest::SpoofChk(on),
        vf_hook::VfRequest::Trust(on) => VfRequest::Trust(on),
        vf_hook::VfRequest::LinkState(s) => VfRequest::LinkState(s),
    }
}

/// Applies `p` to VF `vf` of hooked PF `id` through its driver.
fn apply_policy(rtnl: &Rtnl, hooks: &Hooks<Core>, id: HookId, vf: u32, p: &Policy) -> Result {
    let vf = i32::try_from(vf).map_err(|_| EINVAL)?;
    for req in policy::apply_requests(p).iter().flatten() {
        hooks.apply(rtnl, id, vf, &to_hook(req))?;
    }
    Ok(())
}

/// Applies the policies of the VFs that PF `pf` (hook `id`) has; a
/// failure is logged and the rest are applied.
fn apply_all(rtnl: &Rtnl, hooks: &Hooks<Core>, st: &State, pf: &IfName, id: HookId) {
    let n = hooks.num_vfs(rtnl, id).unwrap_or(0);
    for a in st.assigned.iter().filter(|a| a.pf == *pf && a.vf < n) {
        if let Err(e) = apply_policy(rtnl, hooks, id, a.vf, &a.policy) {
            pr_warn!(
                "{} vf {}: policy not applied: error {}\n",
                pf,
                a.vf,
                e.to_errno()
            );
        }
    }
}

impl Core {
    /// Tells the watchers that routes may have changed.
    fn routes_changed(&self) {
        for w in self.watchers.lock().iter().flatten() {
            // SAFETY: registered by `rvio_sriov_watch_add()` and not yet
            // removed (removal takes `watchers`, which we hold); its
            // contract (include/rvio/sriov_hook.h) lets us call it here.
            unsafe { (w.changed)(w.priv_) };
        }
    }
}

fn ifname_cstr(n: &IfName) -> Result<CString> {
    CString::try_from_fmt(fmt!("{}", n))
}

impl Core {
    fn attach(&self, name: IfName) -> Result {
        let rtnl = RtnlGuard::lock();
        let mut st = self.state.lock();
        if st.pf(&name).is_some() {
            return Err(EEXIST);
        }
        st.pfs.reserve()?;
        let id = self.hooks.attach(&rtnl, &ifname_cstr(&name)?)?;
        st.pfs.put(Pf {
            name,
            id,
            accepted: 0,
            refused: 0,
        });
        apply_all(&rtnl, &self.hooks, &st, &name, id);
        pr_info!("attached to {}\n", name);
        self.routes_changed();
        Ok(())
    }

    fn detach(&self, name: IfName) -> Result {
        let rtnl = RtnlGuard::lock();
        let mut st = self.state.lock();
        let pf = st.pfs.take(|p| p.name == name).ok_or(ENOENT)?;
        self.hooks.detach(&rtnl, pf.id);
        pr_info!("detached from {}\n", name);
        self.routes_changed();
        Ok(())
    }

    fn set_num_vfs(&self, name: IfName, n: u16) -> Result {
        let pci = {
            let rtnl = RtnlGuard::lock();
            let mut st = self.state.lock();
            let id = st.pf(&name).ok_or(ENOENT)?.id;
            self.hooks.pci_pf(&rtnl, id)?
        };
        // Without RTNL: the PF driver may take it.
        pci.set_num_vfs(n)?;
        let rtnl = RtnlGuard::lock();
        let mut st = self.state.lock();
        if let Some(id) = st.pf(&name).map(|p| p.id) {
            apply_all(&rtnl, &self.hooks, &st, &name, id);
        }
        self.routes_changed();
        Ok(())
    }

    fn set_policy(&self, cmd: PolicyCmd) -> Result {
        let rtnl = RtnlGuard::lock();
        let mut st = self.state.lock();
        let (pf, vf) = match cmd {
            PolicyCmd::Set { pf, vf, .. } | PolicyCmd::Clear { pf, vf } => (pf, vf),
        };
        let PolicyCmd::Set { policy, .. } = cmd else {
            st.assigned
                .take(|a| a.pf == pf && a.vf == vf)
                .ok_or(ENOENT)?;
            self.routes_changed();
            return Ok(());
        };
        if st.owner(&policy.mac, (&pf, vf)).is_some() {
            return Err(errno::eaddrinuse());
        }
        let known = st.assigned.iter().any(|a| a.pf == pf && a.vf == vf);
        if !known {
            st.assigned.reserve()?;
        }
        if let Some(id) = st.pf(&pf).map(|p| p.id) {
            if vf < self.hooks.num_vfs(&rtnl, id)? {
                if let Err(e) = apply_policy(&rtnl, &self.hooks, id, vf, &policy) {
                    // Part of it may have been applied: back to the old
                    // policy, as far as the driver lets us.
                    if let Some(old) = st.assigned.iter().find(|a| a.pf == pf && a.vf == vf) {
                        let _ = apply_policy(&rtnl, &self.hooks, id, vf, &old.policy);
                    }
                    return Err(e);
                }
            }
        }
        if !known {
            st.assigned.put(Assigned { pf, vf, policy });
        } else if let Some(a) = st.assigned.iter_mut().find(|a| a.pf == pf && a.vf == vf) {
            a.policy = policy;
        }
        self.routes_changed();
        Ok(())
    }
}

/// The files of `/sys/kernel/sriov_hook/` (docs/sriov-hook.md).
const ATTACH: usize = 0;
const DETACH: usize = 1;
const ATTACHED: usize = 2;
const NUMVFS: usize = 3;
const POLICY: usize = 4;
const ROUTES: usize = 5;

impl Attrs for Core {
    const ATTRS: &'static [(&'static kernel::str::CStr, Mode)] = &[
        (kernel::c_str!("attach"), Mode::WriteOnly),
        (kernel::c_str!("detach"), Mode::WriteOnly),
        // Reading them takes RTNL: root's only.
        (kernel::c_str!("attached"), Mode::RootReadOnly),
        (kernel::c_str!("numvfs"), Mode::WriteOnly),
        (kernel::c_str!("policy"), Mode::ReadWrite),
        (kernel::c_str!("routes"), Mode::RootReadOnly),
    ];

    fn show(&self, idx: usize, out: &mut SysfsBuf<'_>) {
        if idx == POLICY {
            for a in self.state.lock().assigned.iter() {
                let _ = writeln!(out, "{} {} {}", a.pf, a.vf, a.policy);
            }
            return;
        }
        let rtnl = RtnlGuard::lock();
        let st = self.state.lock();
        match idx {
            ATTACHED => {
                for p in st.pfs.iter() {
                    let n = self.hooks.num_vfs(&rtnl, p.id).unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "{} num_vfs={} accepted={} refused={}",
                        p.name, n, p.accepted, p.refused
                    );
                }
            }
            ROUTES => {
                for a in st.assigned.iter() {
                    let r = route_of(&rtnl, &self.hooks, &st, a);
                    let _ = writeln!(
                        out,
                        "{} domain={} {}",
                        MacFmt(&a.policy.mac),
                        a.policy.domain,
                        r
                    );
                }
            }
            _ => {}
        }
    }

    fn store(this: ArcBorrow<'_, Self>, idx: usize, input: &[u8]) -> Result {
        let r = match idx {
            ATTACH => policy::parse_pf(input).map(|n| this.attach(n)),
            DETACH => policy::parse_pf(input).map(|n| this.detach(n)),
            NUMVFS => policy::parse_numvfs(input).map(|(pf, n)| this.set_num_vfs(pf, n)),
            POLICY => policy::parse_policy(input).map(|c| this.set_policy(c)),
            _ => return Err(EINVAL),
        };
        r.map_err(|_| EINVAL)?
    }
}

impl VfHandler for Core {
    fn hooks(&self) -> &Hooks<Self> {
        &self.hooks
    }

    fn set(&self, rtnl: &Rtnl, id: HookId, vf: i32, hreq: &vf_hook::VfRequest) -> Result {
        let req = &from_hook(hreq);
        let mut st = self.state.lock();
        let Some(name) = st.pfs.iter().find(|p| p.id == id).map(|p| p.name) else {
            // Not ours any more (cannot happen under RTNL): pass it on.
            return self.hooks.apply(rtnl, id, vf, hreq);
        };
        let verdict = match u32::try_from(vf) {
            Ok(v) => {
                let policy = st
                    .assigned
                    .iter()
                    .find(|a| a.pf == name && a.vf == v)
                    .map(|a| a.policy);
                policy::check(policy.as_ref(), req, |m| st.owner(m, (&name, v)))
            }
            // The driver refuses a negative index itself.
            Err(_) => Ok(()),
        };
        let pf = st.pf(&name).ok_or(ENODEV)?;
        if let Err(v) = verdict {
            pf.refused += 1;
            if vf_hook::warn_ratelimit() {
                pr_warn!("{} vf {}: refused: {}\n", name, vf, v.what());
            }
            return Err(violation_errno(v));
        }
        let r = self.hooks.apply(rtnl, id, vf, hreq);
        if r.is_ok() {
            pf.accepted += 1;
            drop(st);
            self.routes_changed();
        }
        r
    }

    fn gone(&self, _rtnl: &Rtnl, id: HookId) {
        if let Some(p) = self.state.lock().pfs.take(|p| p.id == id) {
            pr_info!("{} unregistered or renamed: detached\n", p.name);
            self.routes_changed();
        }
    }
}

/// See `include/rvio/sriov_hook.h`.
///
/// # Safety
///
/// `mac` is NULL or valid for 6 reads; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn rvio_sriov_route(
    mac: *const u8,
    out: *mut bindings::rvio_sriov_route,
) -> c_int {
    from_result(|| {
        if mac.is_null() || out.is_null() {
            return Err(EINVAL);
        }
        let core = loaded_core().ok_or(EINVAL)?;
        // SAFETY: `mac` is not NULL (checked above), so the caller guarantees
        // it is valid for 6 reads (see `# Safety`; include/rvio/sriov_hook.h:
        // "@mac (6 bytes)"), the size of `Mac`; `read_unaligned` needs no
        // alignment.
        let mac: Mac = unsafe { core::ptr::read_unaligned(mac.cast::<Mac>()) };
        let rtnl = RtnlGuard::lock();
        let st = core.state.lock();
        let a = st
            .assigned
            .iter()
            .find(|a| a.policy.mac == mac)
            .ok_or(ENOENT)?;
        let mut r = bindings::rvio_sriov_route {
            domain: a.policy.domain,
            vf: a.vf,
            ..Default::default()
        };
        r.via_vf = matches!(route_of(&rtnl, &core.hooks, &st, a), Route::Vf { .. }).into();
        // The kernel's `char` is unsigned: the name's bytes as they are.
        let name = a.pf.as_bytes();
        r.pf[..name.len()].copy_from_slice(name);
        // SAFETY: `out` is not NULL (checked above), so the caller guarantees
        // it is valid for a write (see `# Safety`; include/rvio/sriov_hook.h
        // fills `*@out`); it is assumed aligned, as C requires of a
        // `struct rvio_sriov_route *`.
        unsafe { out.write(r) };
        Ok(0)
    })
}

// The header's declaration (through bindgen) and the definition agree.
const _: [unsafe extern "C" fn(*const u8, *mut bindings::rvio_sriov_route) -> c_int; 2] =
    [bindings::rvio_sriov_route, rvio_sriov_route];

/// See `include/rvio/sriov_hook.h`.
///
/// # Safety
///
/// `changed` may be called with `priv_` from process context until
/// `rvio_sriov_watch_del()` of the returned id returns.
#[no_mangle]
pub unsafe extern "C" fn rvio_sriov_watch_add(
    changed: Option<unsafe extern "C" fn(*mut c_void)>,
    priv_: *mut c_void,
) -> c_int {
    from_result(|| {
        let changed = changed.ok_or(EINVAL)?;
        let core = loaded_core().ok_or(EINVAL)?;
        let mut w = core.watchers.lock();
        let (i, slot) = w
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())
            .ok_or(ENOSPC)?;
        *slot = Some(Watcher { changed, priv_ });
        Ok(i as c_int)
    })
}

/// See `include/rvio/sriov_hook.h`.
#[no_mangle]
pub extern "C" fn rvio_sriov_watch_del(id: c_int) {
    let (Some(core), Ok(i)) = (loaded_core(), usize::try_from(id)) else {
        return;
    };
    // Cleared under `watchers`, which a call in flight holds: none runs
    // after this.
    if let Some(slot) = core.watchers.lock().get_mut(i) {
        *slot = None;
    }
}

// The header's declarations and the definitions agree.
const _: [unsafe extern "C" fn(Option<unsafe extern "C" fn(*mut c_void)>, *mut c_void) -> c_int;
    2] = [bindings::rvio_sriov_watch_add, rvio_sriov_watch_add];

struct SriovHookModule {
    // Dropped in this order: no sysfs call, then no hook and no notifier,
    // then the state.
    _dir: Dir<Core>,
    _hooks: Registration<Core>,
}

impl Drop for SriovHookModule {
    fn drop(&mut self) {
        CORE.store(core::ptr::null_mut(), Ordering::Release);
    }
}

impl kernel::Module for SriovHookModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let core = Arc::pin_init(
            pin_init!(Core {
                state <- new_mutex!(
                    State { pfs: Slots::new(MAX_PFS), assigned: Slots::new(MAX_POLICIES) },
                    "sriov_hook::Core::state"
                ),
                hooks: Hooks::new(),
                watchers <- new_mutex!([None; MAX_WATCHERS], "sriov_hook::Core::watchers"),
            }),
            GFP_KERNEL,
        )?;
        let hooks = Registration::new(core.clone())?;
        let dir = Dir::new(kernel::c_str!("sriov_hook"), core)?;
        // The directory holds the state for as long as the module lives.
        CORE.store(
            &**dir.owner() as *const Core as *mut Core,
            Ordering::Release,
        );
        Ok(Self {
            _dir: dir,
            _hooks: hooks,
        })
    }
}
