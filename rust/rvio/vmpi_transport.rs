// SPDX-License-Identifier: GPL-2.0

//! Safe wrapper of VMPI's transport C-ABI (`include/rvio/vmpi.h`, provided
//! by `vmpi.ko`) for the transport modules: a [`Transport`] is one device
//! registered with the core, unregistered when dropped. Its operations
//! (`struct vmpi_transport_ops`) are a [`Kick`] implementation's: the kick,
//! and, optionally, the guest side's grants and copies
//! ([`Kick::HAS_GRANTS`]: [`GrantReq`], [`CopyReq`], queued lock-free in
//! a [`ReqQueue`]) and the host side's domain binding
//! ([`Kick::HAS_DOMAINS`]: [`DomainBinding`]).
//!
//! Include with `#[path = ".../rust/rvio/vmpi_transport.rs"] pub mod
//! vmpi_transport;` next to `mod bindings;` and `pub mod work_handle;`
//! (`rust/work_handle.rs`, whose `bindings_helper.h` line brings
//! `msleep`); the module depends on `vmpi.ko`.

use crate::bindings;
use crate::proto::link::Role;
use crate::work_handle;
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::alloc::KVVec;
use kernel::error::{from_err_ptr, from_result};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::{new_mutex, pin_init};

/// `EOPNOTSUPP`, which 6.12's `kernel::error::code` lacks.
pub fn eopnotsupp() -> Error {
    Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// A transport device's operations for the core (`struct
/// vmpi_transport_ops`), one constant table per type: the kick, and
/// optional groups that exist in the table only when their `HAS_*`
/// constant is `true` (as upstream's `MiscDevice`).
pub trait Kick: Send + Sync + Sized + 'static {
    /// Schedules a pass of the device's work. The core calls it in any
    /// context but hard interrupts (process context, possibly holding a
    /// device mutex, or the softirq of a `vmpi_port_send_sg()` caller:
    /// include/rvio/vmpi.h), so it must not sleep.
    fn kick(&self);

    /// Runs a pass of the device's work now, in the caller's context, if
    /// the device is not busy, else as [`Kick::kick`]: the core calls it
    /// right after a writer queued a reply or a reader's read queued a
    /// `CREDIT`, saving a hand-over to the work.
    /// Process context, holding no lock of the core's or the transport's
    /// (it may take the device's lock, and sleep). By default, a kick.
    fn flush(&self) {
        self.kick();
    }

    /// Guest side: the device negotiated `VMPI_F_GRANT` and [`Kick::grant`]
    /// and [`Kick::copy`] take requests.
    const HAS_GRANTS: bool = false;

    /// Takes a grant for the grantq (`vmpi_port_grant()`). Any context
    /// (softirq included), so it must not sleep: queue it (a [`ReqQueue`])
    /// and schedule the work. `Err` gives the request back unqueued, and
    /// its error goes to the caller, whose `done` is then not called;
    /// `Ok`: it completes later ([`GrantReq::complete`]).
    fn grant(&self, g: GrantReq) -> core::result::Result<(), (Error, GrantReq)> {
        Err((eopnotsupp(), g))
    }

    /// Takes a copy request for the copyq (`vmpi_port_copy()`), as
    /// [`Kick::grant`].
    fn copy(&self, c: CopyReq) -> core::result::Result<(), (Error, CopyReq)> {
        Err((eopnotsupp(), c))
    }

    /// The device can be reset by its driver ([`Kick::reset`]).
    const HAS_RESET: bool = false;

    /// Resets the device's rings (`vmpi_dev_reset()`): flags it and
    /// schedules the work, which resets. Any context (the core calls it
    /// from process context today), so it must not sleep.
    fn reset(&self) -> Result {
        Err(eopnotsupp())
    }

    /// Host side: the device can be bound as a domain.
    const HAS_DOMAINS: bool = false;

    /// The device becomes domain `domain` (1 to 32751, checked by the
    /// core); `binding` is the policy to put its grants to, until
    /// [`Kick::unbind_domain`] or the [`Transport`]'s drop, which ends it
    /// without calling [`Kick::unbind_domain`] (after either, its
    /// [`DomainBinding::grant`] refuses without calling the policy).
    /// `EBUSY` if the device is a domain already, `EEXIST` if another
    /// device is `domain`. Process context; the core calls the domain
    /// operations of a device one at a time, and none after it starts to
    /// unregister.
    fn bind_domain(&self, _domain: u16, _binding: DomainBinding) -> Result {
        Err(eopnotsupp())
    }

    /// Ends the binding: every grant of the domain completes `REVOKED`
    /// (after the copies that hold it), copies into it fail. Process
    /// context.
    fn unbind_domain(&self) {}

    /// The counters of the domain (the core has zeroed `s`). Process
    /// context.
    fn domain_stats(&self, _s: &mut bindings::vmpi_grant_stats) {}

    /// Delivers grant `handle` of `src_domain` (a frame of `frame_len`
    /// bytes, offloads `meta`) into a posted receive of this device's
    /// driver (`vmpi_port_deliver()`): `ENOSPC` if no free one holds it,
    /// `ENODEV` if the device is not a running domain. Process context;
    /// must not sleep (the policy's call, from another device's work).
    fn deliver(&self, _handle: u64, _src_domain: u16, _frame_len: u32, _meta: &[u8; 12]) -> Result {
        Err(eopnotsupp())
    }
}

/// What the core's `priv` points to: the transport's [`Kick`] and the
/// guard of its current domain binding.
#[pin_data]
struct Ops<K: Kick> {
    k: K,
    /// The current binding's gate: dropped (which waits for the policy
    /// calls in flight) after `unbind_domain`, and by the `Transport`'s
    /// drop before it unregisters.
    #[pin]
    binding: Mutex<BindState>,
}

/// A host device's binding, under [`Ops::binding`].
#[derive(Default)]
struct BindState {
    slot: Option<BindingSlot>,
    /// The `Transport` is being dropped: no binding any more.
    closed: bool,
}

/// The core's table for a transport of type `K` (one per type).
struct OpsVTable<K: Kick>(PhantomData<K>);

impl<K: Kick> OpsVTable<K> {
    const OPS: bindings::vmpi_transport_ops = bindings::vmpi_transport_ops {
        kick: Some(Self::kick),
        flush: Some(Self::flush),
        grant: if K::HAS_GRANTS {
            Some(Self::grant)
        } else {
            None
        },
        copy: if K::HAS_GRANTS {
            Some(Self::copy)
        } else {
            None
        },
        reset: if K::HAS_RESET {
            Some(Self::reset)
        } else {
            None
        },
        bind_domain: if K::HAS_DOMAINS {
            Some(Self::bind_domain)
        } else {
            None
        },
        unbind_domain: if K::HAS_DOMAINS {
            Some(Self::unbind_domain)
        } else {
            None
        },
        domain_stats: if K::HAS_DOMAINS {
            Some(Self::domain_stats)
        } else {
            None
        },
        deliver: if K::HAS_DOMAINS {
            Some(Self::deliver)
        } else {
            None
        },
    };

    /// # Safety
    ///
    /// `p` is the `priv` a [`Transport<K>`] registered, and the core calls
    /// its ops only before `vmpi_transport_unregister()` returns.
    unsafe fn ops<'a>(p: *mut c_void) -> &'a Ops<K> {
        // SAFETY: the core calls the ops only with the `priv` given to
        // `vmpi_transport_register()` and not after
        // `vmpi_transport_unregister()` returns (include/rvio/vmpi.h).
        // `Transport::register` gave it the address of the pinned `Ops<K>`
        // that the `Transport` owns and drops only after unregistering.
        unsafe { &*p.cast::<Ops<K>>() }
    }

    /// # Safety
    ///
    /// As for [`Self::ops`].
    unsafe extern "C" fn kick(p: *mut c_void) {
        // SAFETY: as the caller guarantees.
        unsafe { Self::ops(p) }.k.kick();
    }

    /// # Safety
    ///
    /// As for [`Self::ops`].
    unsafe extern "C" fn flush(p: *mut c_void) {
        // SAFETY: as the caller guarantees.
        unsafe { Self::ops(p) }.k.flush();
    }

    /// # Safety
    ///
    /// As for [`Self::ops`].
    unsafe extern "C" fn reset(p: *mut c_void) -> c_int {
        // SAFETY: as the caller guarantees.
        from_result(|| unsafe { Self::ops(p) }.k.reset().map(|()| 0))
    }

    /// # Safety
    ///
    /// As for [`Self::ops`]; `g` is a grant the core checked and hands
    /// over (`vmpi_port_grant()`): ours if we return 0.
    unsafe extern "C" fn grant(p: *mut c_void, g: *mut bindings::vmpi_grant) -> c_int {
        let Some(g) = NonNull::new(g) else {
            return EINVAL.to_errno();
        };
        // SAFETY: the caller hands `g` over; if `K::grant` gives it back we
        // give up ownership again (`into_raw`) and return an error, so the
        // user keeps it.
        let req = unsafe { GrantReq::from_raw(g) };
        // SAFETY: as the caller guarantees.
        match unsafe { Self::ops(p) }.k.grant(req) {
            Ok(()) => 0,
            Err((e, req)) => {
                let _ = req.into_raw();
                e.to_errno()
            }
        }
    }

    /// # Safety
    ///
    /// As for [`Self::grant`], for a copy request.
    unsafe extern "C" fn copy(p: *mut c_void, c: *mut bindings::vmpi_copy) -> c_int {
        let Some(c) = NonNull::new(c) else {
            return EINVAL.to_errno();
        };
        // SAFETY: as in `grant`.
        let req = unsafe { CopyReq::from_raw(c) };
        // SAFETY: as the caller guarantees.
        match unsafe { Self::ops(p) }.k.copy(req) {
            Ok(()) => 0,
            Err((e, req)) => {
                let _ = req.into_raw();
                e.to_errno()
            }
        }
    }

    /// # Safety
    ///
    /// As for [`Self::ops`]; `dops` and `dpriv` stay valid, and
    /// `dops->grant` callable in process context, until the binding ends
    /// (`vmpi_port_bind_domain()`'s contract, include/rvio/vmpi.h).
    unsafe extern "C" fn bind_domain(
        p: *mut c_void,
        domain: u16,
        dops: *const bindings::vmpi_domain_ops,
        dpriv: *mut c_void,
    ) -> c_int {
        // SAFETY: as the caller guarantees.
        let o = unsafe { Self::ops(p) };
        from_result(|| {
            let mut b = o.binding.lock();
            if b.closed {
                return Err(ENODEV);
            }
            if b.slot.is_some() {
                return Err(EBUSY);
            }
            // SAFETY: valid until the binding ends (see `# Safety`), which
            // is no earlier than the slot's drop: `unbind_domain` drops it
            // after the core's `unbind_domain`, and the `Transport`'s drop
            // before it unregisters (the binding ends with the device; the
            // user's close comes after the port's `down(ENODEV)`, which
            // unregistering calls).
            let (s, binding) = unsafe { BindingSlot::new(dops, dpriv) }?;
            o.k.bind_domain(domain, binding)?;
            b.slot = Some(s);
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// As for [`Self::ops`].
    unsafe extern "C" fn unbind_domain(p: *mut c_void) {
        // SAFETY: as the caller guarantees.
        let o = unsafe { Self::ops(p) };
        let mut b = o.binding.lock();
        o.k.unbind_domain();
        // Waits for the policy calls in flight; then no `DomainBinding`
        // reaches the policy any more.
        drop(b.slot.take());
    }

    /// # Safety
    ///
    /// As for [`Self::ops`]; `s` is valid for writes.
    unsafe extern "C" fn domain_stats(p: *mut c_void, s: *mut bindings::vmpi_grant_stats) {
        if s.is_null() {
            return;
        }
        // SAFETY: as the caller guarantees; `s` is valid for writes and not
        // NULL, a plain C structure of integers.
        let (o, s) = unsafe { (Self::ops(p), &mut *s) };
        *s = bindings::vmpi_grant_stats::default();
        o.k.domain_stats(s);
    }
}

impl<K: Kick> OpsVTable<K> {
    /// # Safety
    ///
    /// As for [`Self::ops`]; `meta` is valid for reading 12 bytes.
    unsafe extern "C" fn deliver(
        p: *mut c_void,
        handle: u64,
        src_domain: u16,
        frame_len: u32,
        meta: *const u8,
    ) -> c_int {
        if meta.is_null() {
            return EINVAL.to_errno();
        }
        // SAFETY: as the caller guarantees; `meta` is not NULL and valid
        // for 12 reads, a byte array (alignment 1).
        let (o, meta) = unsafe { (Self::ops(p), &*meta.cast::<[u8; 12]>()) };
        from_result(|| {
            o.k.deliver(handle, src_domain, frame_len, meta)?;
            Ok(0)
        })
    }
}

/// A host device's domain policy, as the core's `bind_domain` passed it
/// (`struct vmpi_domain_ops` and its `priv`).
struct Policy {
    ops: *const bindings::vmpi_domain_ops,
    priv_: *mut c_void,
}

// SAFETY: the policy's pointers are only read, to call `ops->grant`, which
// the header lets run in process context on any thread.
unsafe impl Send for Policy {}

/// [`work_handle`]'s target for a [`Policy`]: the handles never schedule
/// work; [`work_handle::Handle::with`] runs a policy call while the slot's
/// owner is attached, and detaching waits for the calls in flight.
struct PolicyTarget;

impl work_handle::Target for PolicyTarget {
    type Device = Policy;

    unsafe fn schedule(_p: *mut Policy) {}
}

/// The current binding of a host device: the policy, and the owner of the
/// handles [`DomainBinding`]s hold. Dropping it detaches them (the owner,
/// dropped first, waits for calls in flight) before the policy's box goes.
struct BindingSlot {
    _owner: work_handle::Owner<PolicyTarget>,
    _policy: KBox<Policy>,
}

impl BindingSlot {
    /// # Safety
    ///
    /// `ops` and `priv_` stay valid, and `ops->grant` callable with
    /// `priv_` in process context, until the slot is dropped.
    unsafe fn new(
        ops: *const bindings::vmpi_domain_ops,
        priv_: *mut c_void,
    ) -> Result<(Self, DomainBinding)> {
        let policy = KBox::new(Policy { ops, priv_ }, GFP_KERNEL)?;
        let ptr = &*policy as *const Policy as *mut Policy;
        // SAFETY: `ptr` is the boxed policy, which lives as long as the
        // slot, and the owner (the slot's first field) is dropped, so
        // detached, before it; the pointers in it are valid until then
        // (see `# Safety`). `PolicyTarget::schedule` does nothing.
        let owner = unsafe { work_handle::Owner::new(ptr) }?;
        let binding = DomainBinding { h: owner.handle() };
        Ok((
            Self {
                _owner: owner,
                _policy: policy,
            },
            binding,
        ))
    }
}

/// A host device's binding as a domain ([`Kick::bind_domain`]): what to
/// put each of its grants to. Usable from any thread; once the binding
/// ends ([`Kick::unbind_domain`] returned, or the [`Transport`] was
/// dropped) it no longer reaches the policy, and
/// [`DomainBinding::grant`] refuses.
pub struct DomainBinding {
    h: work_handle::Handle<PolicyTarget>,
}

impl DomainBinding {
    /// Asks the policy about a grant the device recorded as `handle`: 0 to
    /// let it stand (an envelope naming it is on its way to
    /// `dest_domain`), or the status to complete it with now
    /// (`VMPI_GRANT_REFUSED` or `VMPI_GRANT_UNDELIVERED`; any other answer
    /// counts as `REFUSED`, and so does an ended binding). `addrs`: the
    /// frame's first 14 bytes; `meta`: its `virtio_net_hdr_v1`. Process
    /// context (from the device's work, `struct vmpi_domain_ops`). The
    /// binding's end waits for a call in flight, so do not call this from
    /// [`Kick::unbind_domain`] or with a lock that it takes.
    pub fn grant(
        &self,
        handle: u64,
        dest_domain: u16,
        addrs: &[u8; 14],
        meta: &[u8; 12],
        frame_len: u32,
    ) -> u32 {
        let r = self.h.with(|p| {
            // SAFETY: `with` runs this only while the slot's owner is
            // attached, so `p` is the live boxed `Policy`, whose `ops` and
            // `priv_` are valid and `ops->grant` callable in process
            // context (`BindingSlot::new`'s contract, from the core's
            // `bind_domain`); `addrs` and `meta` are valid for 14 and 12
            // reads during the call, as `struct vmpi_domain_ops` promises.
            unsafe {
                let p = &*p;
                match (*p.ops).grant {
                    Some(f) => f(
                        p.priv_,
                        handle,
                        dest_domain,
                        addrs.as_ptr(),
                        meta.as_ptr(),
                        frame_len,
                    ),
                    None => bindings::VMPI_GRANT_REFUSED as c_int,
                }
            }
        });
        match r {
            Some(0) => 0,
            Some(s) if s == bindings::VMPI_GRANT_UNDELIVERED as c_int => s as u32,
            _ => bindings::VMPI_GRANT_REFUSED,
        }
    }
}

/// A request of the guest side that the transport owns from the core's
/// `grant`/`copy` until it completes: [`GrantReq`] or [`CopyReq`].
///
/// # Safety
///
/// `NODE` is the offset of the `struct llist_node` in `Raw`;
/// [`Request::into_raw`] and [`Request::from_raw`] convert ownership.
pub unsafe trait Request: Send + Sized {
    /// The C structure.
    type Raw;
    /// Offset of its `node`.
    const NODE: usize;
    /// Gives up ownership (no `done`).
    fn into_raw(self) -> NonNull<Self::Raw>;
    /// Takes ownership back.
    ///
    /// # Safety
    ///
    /// `p` came from [`Request::into_raw`] and is not owned elsewhere.
    unsafe fn from_raw(p: NonNull<Self::Raw>) -> Self;
}

/// Defines an owning wrapper of a guest request structure.
macro_rules! request {
    ($(#[$m:meta])* $name:ident, $raw:ty) => {
        $(#[$m])*
        ///
        /// # Invariants
        ///
        /// `r` is a request the core handed over (its fields checked, its
        /// `done` not NULL) that nobody else uses until `done` is called,
        /// which is called once: by [`Self::complete`], or by `drop` with
        /// `-ENODEV` (a request dropped unposted, or taken back from a
        /// reset device).
        pub struct $name {
            r: NonNull<$raw>,
        }

        // SAFETY: the request is the transport's alone (type invariant),
        // and the header lets `done` be called from any process context.
        unsafe impl Send for $name {}

        // SAFETY: `NODE` is `node`'s offset; `into_raw`/`from_raw` pass
        // the ownership of the type invariant on.
        unsafe impl Request for $name {
            type Raw = $raw;
            const NODE: usize = core::mem::offset_of!($raw, node);
            fn into_raw(self) -> NonNull<$raw> {
                ManuallyDrop::new(self).r
            }
            unsafe fn from_raw(r: NonNull<$raw>) -> Self {
                // INVARIANT: the caller passes the ownership back.
                Self { r }
            }
        }

        impl $name {
            fn raw(&self) -> &$raw {
                // SAFETY: ours alone until `done` (type invariant).
                unsafe { self.r.as_ref() }
            }

            fn raw_mut(&mut self) -> &mut $raw {
                // SAFETY: ours alone until `done` (type invariant).
                unsafe { self.r.as_mut() }
            }

            /// The status the device wrote (le32), once it used the chain.
            pub fn status(&self) -> u32 {
                u32::from_le(self.raw().status)
            }

            /// The 4 bytes the device writes the status to (part of the
            /// user's kmalloc'ed structure): for the chain.
            pub fn status_ptr(&mut self) -> *mut u8 {
                core::ptr::addr_of_mut!(self.raw_mut().status).cast()
            }

            /// The request's structure, for checks of its memory.
            pub fn as_ptr(&self) -> *const $raw {
                self.r.as_ptr()
            }

            /// Completes it: `done(status)` (a wire status, or
            /// `-ECONNRESET`/`-ENODEV`); the user owns it again.
            pub fn complete(self, status: i32) {
                let r = ManuallyDrop::new(self).r;
                // SAFETY: ours until `done` (type invariant), which the core
                // checked is not NULL; called once, here (`drop` is not run
                // for `self`).
                unsafe {
                    if let Some(done) = (*r.as_ptr()).done {
                        // Inside the core's read section: the user's
                        // `vmpi_done_sync()` waits until this returns.
                        let idx = bindings::vmpi_transport_done_begin();
                        done(r.as_ptr(), status);
                        bindings::vmpi_transport_done_end(idx);
                    }
                }
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: as in `complete`; not used after this.
                unsafe {
                    if let Some(done) = (*self.r.as_ptr()).done {
                        let idx = bindings::vmpi_transport_done_begin();
                        done(self.r.as_ptr(), ENODEV.to_errno());
                        bindings::vmpi_transport_done_end(idx);
                    }
                }
            }
        }
    };
}

request!(
    /// A guest's grant (`struct vmpi_grant`), owned by the transport from
    /// `vmpi_port_grant()` until [`GrantReq::complete`].
    GrantReq,
    bindings::vmpi_grant
);

request!(
    /// A guest's copy request (`struct vmpi_copy`), owned by the transport
    /// from `vmpi_port_copy()` until [`CopyReq::complete`].
    CopyReq,
    bindings::vmpi_copy
);

impl GrantReq {
    /// The one domain allowed to copy (1 to 32751).
    pub fn dest_domain(&self) -> u16 {
        self.raw().dest_domain
    }
    /// The frame's length (14 to 65519).
    pub fn frame_len(&self) -> u32 {
        self.raw().frame_len
    }
    /// The frame's `virtio_net_hdr_v1`.
    pub fn meta(&self) -> [u8; 12] {
        self.raw().meta
    }
    /// The frame's scatterlist (not NULL; its entries are the user's).
    pub fn frame(&self) -> *mut bindings::scatterlist {
        self.raw().frame
    }
    /// The grant header the device reads (the transport writes it).
    pub fn hdr_mut(&mut self) -> &mut [u8; 24] {
        &mut self.raw_mut().hdr
    }
}

impl CopyReq {
    /// The grant to copy from.
    pub fn handle(&self) -> u64 {
        self.raw().handle
    }
    /// Where in its frame.
    pub fn offset(&self) -> u32 {
        self.raw().offset
    }
    /// How many bytes (0: a `FINISH` only).
    pub fn len(&self) -> u32 {
        self.raw().len
    }
    /// Whether [`Self::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `VMPI_COPY_*` flags.
    pub fn flags(&self) -> u16 {
        self.raw().flags
    }
    /// The destination's scatterlist (NULL only with a length of 0).
    pub fn dst(&self) -> *mut bindings::scatterlist {
        self.raw().dst
    }
    /// The copy request the device reads (the transport writes it).
    pub fn req_mut(&mut self) -> &mut [u8; 20] {
        &mut self.raw_mut().req
    }
    /// Whether it is a posted receive (`VMPI_COPY_POSTED`).
    pub fn is_posted(&self) -> bool {
        u32::from(self.flags()) == bindings::VMPI_COPY_POSTED
    }
    /// A posted receive's delivery header, which the device writes.
    pub fn delivery_mut(&mut self) -> &mut [u8; 32] {
        &mut self.raw_mut().delivery
    }
    /// A posted receive got a frame: what the user reads of it
    /// (`include/rvio/vmpi.h`), set before [`Self::complete`].
    pub fn set_delivered(&mut self, handle: u64, src_domain: u16, frame_len: u32, meta: [u8; 12]) {
        let r = self.raw_mut();
        r.handle = handle;
        r.src_domain = src_domain;
        r.len = frame_len;
        r.meta = meta;
    }
}

/// Requests queued from any context (the core's `grant`/`copy`) for the
/// device's work: a lock-free list through their `node` (as `llist`:
/// producers push with a compare-and-swap, the work takes them all at
/// once). Dropping it completes what it holds with `-ENODEV`.
///
/// # Invariants
///
/// `head` is NULL or the newest of a NULL-terminated chain of `R`s' nodes,
/// each an owned `R` given up with [`Request::into_raw`].
pub struct ReqQueue<R: Request> {
    head: AtomicPtr<bindings::llist_node>,
    _r: PhantomData<R>,
}

// SAFETY: the queue owns its `R`s (type invariant), which are `Send`; the
// head is atomic.
unsafe impl<R: Request> Send for ReqQueue<R> {}
// SAFETY: `&ReqQueue` pushes and takes with atomic operations only.
unsafe impl<R: Request> Sync for ReqQueue<R> {}

impl<R: Request> Default for ReqQueue<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Request> ReqQueue<R> {
    /// An empty queue.
    pub const fn new() -> Self {
        // INVARIANT: empty.
        Self {
            head: AtomicPtr::new(core::ptr::null_mut()),
            _r: PhantomData,
        }
    }

    /// Queues `r`. Any context; no lock.
    pub fn push(&self, r: R) {
        let node = node_of(r);
        let mut first = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is the node of a request we own, not yet
            // published.
            unsafe { (*node).next = first };
            // INVARIANT: the chain stays NULL-terminated, of owned `R`s.
            match self
                .head
                .compare_exchange_weak(first, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(f) => first = f,
            }
        }
    }

    /// Takes everything queued, oldest first.
    pub fn take(&self) -> ReqFifo<R> {
        let mut p = self.head.swap(core::ptr::null_mut(), Ordering::Acquire);
        let mut fifo = ReqFifo::new();
        // Newest first: reverse onto the front.
        while !p.is_null() {
            // SAFETY: `p` is a node of the chain we took whole (type
            // invariant), published with `Release` before our `Acquire`.
            let next = unsafe { (*p).next };
            // SAFETY: each node of the chain is an owned `R`'s.
            fifo.push_front(unsafe { request_of::<R>(p) });
            p = next;
        }
        fifo
    }
}

impl<R: Request> Drop for ReqQueue<R> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// The node of request `r`, given up.
fn node_of<R: Request>(r: R) -> *mut bindings::llist_node {
    // `R::NODE` is the node's offset in `R::Raw` (the `Request` contract).
    r.into_raw()
        .as_ptr()
        .cast::<u8>()
        .wrapping_add(R::NODE)
        .cast()
}

/// # Safety
///
/// `node` came from [`node_of::<R>`] and is not owned elsewhere.
unsafe fn request_of<R: Request>(node: *mut bindings::llist_node) -> R {
    let raw = node.cast::<u8>().wrapping_sub(R::NODE).cast::<R::Raw>();
    // SAFETY: `raw` is the structure `node_of` took the node of (the offset
    // back), not NULL, ours (see `# Safety`).
    unsafe { R::from_raw(NonNull::new_unchecked(raw)) }
}

/// Requests in order (oldest first), linked through their `node`: the
/// device's work keeps those not posted yet here. Dropping it completes
/// what it holds with `-ENODEV`.
///
/// # Invariants
///
/// `head` to `tail` is a chain (through `next`, NULL after `tail`) of
/// owned `R`s' nodes; both NULL when empty.
pub struct ReqFifo<R: Request> {
    head: *mut bindings::llist_node,
    tail: *mut bindings::llist_node,
    _r: PhantomData<R>,
}

// SAFETY: it owns its `R`s (type invariant), which are `Send`.
unsafe impl<R: Request> Send for ReqFifo<R> {}

impl<R: Request> Default for ReqFifo<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Request> ReqFifo<R> {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            head: core::ptr::null_mut(),
            tail: core::ptr::null_mut(),
            _r: PhantomData,
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Takes the oldest.
    pub fn pop_front(&mut self) -> Option<R> {
        let p = self.head;
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` is the head node of our chain (type invariant).
        self.head = unsafe { (*p).next };
        if self.head.is_null() {
            self.tail = core::ptr::null_mut();
        }
        // SAFETY: an owned `R`'s node, unlinked now.
        Some(unsafe { request_of::<R>(p) })
    }

    /// Puts `r` back first (it could not be posted yet).
    pub fn push_front(&mut self, r: R) {
        let node = node_of(r);
        // SAFETY: ours, not linked anywhere.
        unsafe { (*node).next = self.head };
        if self.head.is_null() {
            self.tail = node;
        }
        // INVARIANT: linked in front of the chain.
        self.head = node;
    }

    /// Appends `other` after the newest.
    pub fn append(&mut self, mut other: Self) {
        if other.head.is_null() {
            return;
        }
        if self.tail.is_null() {
            self.head = other.head;
        } else {
            // SAFETY: `tail` is our last node (type invariant).
            unsafe { (*self.tail).next = other.head };
        }
        self.tail = other.tail;
        // INVARIANT: `other`'s nodes are ours now.
        other.head = core::ptr::null_mut();
        other.tail = core::ptr::null_mut();
    }
}

impl<R: Request> Drop for ReqFifo<R> {
    fn drop(&mut self) {
        while let Some(r) = self.pop_front() {
            drop(r);
        }
    }
}

/// One device registered with the VMPI core.
///
/// # Invariants
///
/// `t` is a registered handle, unregistered only by `drop`, whose `priv`
/// is the address of `ops`'s `Ops<K>`.
pub struct Transport<K: Kick> {
    t: *mut bindings::vmpi_transport,
    ops: Pin<KBox<Ops<K>>>,
}

// SAFETY: the core's functions may be called from any thread (it locks);
// `K: Send`, and the rest of `Ops` (a mutex of a `Send` slot) too.
unsafe impl<K: Kick> Send for Transport<K> {}
// SAFETY: `&Transport` only passes `t` to the core's `vmpi_transport_*()`
// (include/rvio/vmpi.h). The header does not say that they may run
// concurrently; this relies on their implementation in vmpi/core/ffi.rs,
// which works on the `Dev` that the handle (a boxed `Registered`) holds an
// `Arc` of (`Dev: Sync`) under its `inner` mutex or `cache` spinlock, so
// concurrent calls are serialized; `&K` (`ops()`) is `Sync` (`K: Sync`).
unsafe impl<K: Kick> Sync for Transport<K> {}

impl<K: Kick> Transport<K> {
    /// Registers a device with configuration space `cfg`; the core asks
    /// for passes through `kick` until this `Transport` is dropped.
    pub fn register(role: Role, name: &kernel::str::CStr, cfg: &[u8], kick: K) -> Result<Self> {
        let ops = KBox::pin_init(
            pin_init!(Ops {
                k: kick,
                binding <- new_mutex!(BindState::default(), "vmpi_transport::Ops::binding"),
            }),
            GFP_KERNEL,
        )?;
        let priv_: *const Ops<K> = &*ops;
        // SAFETY: `name` is NUL-terminated; `cfg` is valid for its length;
        // `OpsVTable::<K>::OPS` is static, and its ops may be called with
        // `priv_` until the `Transport` drops `ops`, which `drop` does after
        // `vmpi_transport_unregister()`: `kick` in any context (`K::kick`
        // does not block: the `Kick` contract), `grant` and `copy` in any
        // context (they do not sleep: `K::grant`, `K::copy` queue), the
        // domain ops in process context. The core returns a handle or an
        // `ERR_PTR()` (include/rvio/vmpi.h).
        let t = from_err_ptr(unsafe {
            bindings::vmpi_transport_register(
                role as u32,
                name.as_char_ptr(),
                cfg.as_ptr().cast(),
                cfg.len(),
                &OpsVTable::<K>::OPS,
                priv_ as *mut c_void,
            )
        })?;
        // INVARIANT: registered just now, with `ops`'s address as `priv`.
        Ok(Self { t, ops })
    }

    /// The transport's operations (e.g. the queues its `grant` fills).
    pub fn ops(&self) -> &K {
        &self.ops.k
    }

    /// One received fragment of `len` bytes (header included) in a receive
    /// buffer of two parts: `hdr`, then `data`'s bytes, all of whose
    /// capacity holds zeros or bytes the device wrote. Returns `true` if
    /// the core took `data` as an SDU's bytes or part of them (no copy):
    /// `data` is then a buffer the core gives in its place (its capacity
    /// the same, all of it its length, bytes the device wrote or zeros), or
    /// empty, without memory.
    pub fn rx_buf(&self, hdr: &[u8; 4], data: &mut KVVec<u8>, len: usize) -> bool {
        let (ptr, dlen, cap) = core::mem::replace(data, KVVec::new()).into_raw_parts();
        let mut buf = bindings::vmpi_sdu {
            hdr: *hdr,
            data: if cap == 0 {
                core::ptr::null_mut()
            } else {
                ptr.cast()
            },
            len: dlen,
            cap,
        };
        // SAFETY: by the type invariant `t` is registered; `buf` is valid
        // and holds a `KVVec<u8>`'s raw parts (NULL for one without
        // memory), which the core takes only when it returns `true`.
        if unsafe { bindings::vmpi_transport_rx_buf(self.t, &mut buf, len) } {
            if !buf.data.is_null() && buf.cap != 0 {
                // SAFETY: the core gave these raw parts of a `KVVec<u8>`
                // in place of the ones it took (include/rvio/vmpi.h).
                *data = unsafe { KVVec::from_raw_parts(buf.data.cast(), buf.len, buf.cap) };
            }
            return true;
        }
        if cap != 0 {
            // SAFETY: the core did not take them: these are still the raw
            // parts from `into_raw_parts` above (include/rvio/vmpi.h).
            *data = unsafe { KVVec::from_raw_parts(ptr, dlen, cap) };
        }
        false
    }

    /// One received fragment of `len` bytes that `read` copies, in order,
    /// to where the core wants each part: each call fills the whole of its
    /// argument and returns its length (else a bad buffer). The core holds
    /// its device lock meanwhile: `read` must only copy.
    ///
    /// # Safety
    ///
    /// `read` returns `Ok(n)` only once it wrote the first `n` bytes of
    /// its argument, with initialized bytes.
    pub unsafe fn rx_from<F>(&self, len: usize, mut read: F)
    where
        F: FnMut(&mut [MaybeUninit<u8>]) -> Result<usize>,
    {
        // SAFETY: by the type invariant `t` is registered; `read_one::<F>`
        // is called with `ctx` = `&mut read`, which lives until the call
        // returns (the core keeps neither), and returns `n` only once `n`
        // bytes are written (the caller's guarantee).
        unsafe {
            bindings::vmpi_transport_rx_from(
                self.t,
                len,
                Some(read_one::<F>),
                core::ptr::from_mut(&mut read).cast(),
            )
        };
    }

    /// Writes the next fragment to send into `buf` (one ring buffer of the
    /// peer); `Ok(0)` if nothing waits.
    pub fn tx(&self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: by the type invariant `t` is registered; `buf` is valid
        // for its length.
        let n = unsafe { bindings::vmpi_transport_tx(self.t, buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| Error::from_errno(n as c_int))
    }

    /// The next fragment to send, for a buffer of the peer of `room` bytes
    /// that `write` fills: it gets the fragment's parts in order (each to
    /// copy whole after the ones before). Returns its length, `Ok(0)` if
    /// nothing waits, `EMSGSIZE` if `room` is below the minimum, `EFAULT`
    /// if `write` failed (the core counted the fragment lost: no
    /// [`Self::tx_lost`]). The core holds its device lock meanwhile:
    /// `write` must only copy.
    pub fn tx_to<F>(&self, room: usize, mut write: F) -> Result<usize>
    where
        F: FnMut(&[u8]) -> Result<usize>,
    {
        // SAFETY: by the type invariant `t` is registered; `write_one::<F>`
        // is called with `ctx` = `&mut write`, which lives until the call
        // returns (the core keeps neither).
        let n = unsafe {
            bindings::vmpi_transport_tx_to(
                self.t,
                room,
                Some(write_one::<F>),
                core::ptr::from_mut(&mut write).cast(),
            )
        };
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

    /// Counts a drop the transport saw (`DropReason` as number): a buffer
    /// of the peer's that held a fragment for us.
    pub fn count_drop(&self, reason: u32) {
        // SAFETY: by the type invariant `t` is registered.
        unsafe { bindings::vmpi_transport_drop(self.t, reason) };
    }

    /// A receive buffer of the peer was bad; if `sent`, it held the
    /// fragment the last [`Transport::tx`] returned, whose message is
    /// then not sent any further (`include/rvio/vmpi.h`).
    pub fn tx_lost(&self, sent: bool) {
        // SAFETY: by the type invariant `t` is registered.
        unsafe { bindings::vmpi_transport_tx_lost(self.t, sent) };
    }
}

/// [`Transport::rx_from`]'s reader, as the core calls it.
///
/// # Safety
///
/// `ctx` is a `&mut F` not used elsewhere meanwhile; `dst` is valid for
/// `len` writes.
unsafe extern "C" fn read_one<F>(ctx: *mut c_void, dst: *mut c_void, len: usize) -> isize
where
    F: FnMut(&mut [MaybeUninit<u8>]) -> Result<usize>,
{
    // SAFETY: see `# Safety`.
    let (read, dst) = unsafe {
        (
            &mut *ctx.cast::<F>(),
            core::slice::from_raw_parts_mut(dst.cast::<MaybeUninit<u8>>(), len),
        )
    };
    match read(dst) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// [`Transport::tx_to`]'s writer, as the core calls it.
///
/// # Safety
///
/// `ctx` is a `&mut F` not used elsewhere meanwhile; `src` is valid for
/// `len` reads.
unsafe extern "C" fn write_one<F>(ctx: *mut c_void, src: *const c_void, len: usize) -> isize
where
    F: FnMut(&[u8]) -> Result<usize>,
{
    // SAFETY: see `# Safety`.
    let (write, src) = unsafe {
        (
            &mut *ctx.cast::<F>(),
            core::slice::from_raw_parts(src.cast::<u8>(), len),
        )
    };
    match write(src) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

impl<K: Kick> Drop for Transport<K> {
    fn drop(&mut self) {
        // The domain binding ends first: its policy may go as soon as the
        // user closes its port, which it may do once unregistering told it
        // `ENODEV`. Dropping the slot waits for the policy calls in flight.
        let slot = {
            let mut b = self.ops.binding.lock();
            b.closed = true;
            b.slot.take()
        };
        drop(slot);
        // SAFETY: by the type invariant `t` is registered; not used again.
        // The core calls no op after this returns, so `self.ops` may go
        // (dropped after this, with the other fields: a domain binding's
        // slot waits for its policy calls in flight).
        unsafe { bindings::vmpi_transport_unregister(self.t) };
    }
}
