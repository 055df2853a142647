// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction for a virtio driver (the Rust half; the C half is
//! `rust/virtio_glue.c`, which owns the kernel structures, the probe/remove
//! order and the work item). A driver implements [`Driver`] and keeps a
//! [`Registration`] while it should bind devices. Every callback but
//! `probe` gets `&mut` access to the device's state: the C half calls them
//! with the device's mutex held, which also serializes the rings.
//!
//! Buffers handed to a queue are owned [`KBox`]es of the driver's
//! [`Buffer`] type (kmalloc memory, as the DMA API needs): the box is the
//! ring's while posted, and comes back from [`Queues::get_buf`], from a
//! failed add, or (unused) to `Drop` at remove.
//!
//! A driver may also post *requests* ([`Request`]: structures that own
//! their memory, e.g. another module's, posted as one chain of
//! device-readable then device-writable parts, buffers or scatterlists):
//! the queues in `T::Req::QUEUES` hold only requests, the others only
//! buffers. A driver's queue count may depend on the negotiated features
//! ([`Driver::queues`]).
//!
//! Include with `#[path = ".../rust/virtio.rs"] pub mod virtio;` next to
//! `mod bindings;`, and link `rust/virtio_glue.o` into the module (Kbuild).

use crate::bindings;
use crate::work_handle;
use core::marker::PhantomData;
use kernel::error::{from_err_ptr, from_result, to_result};
use kernel::ffi::{c_char, c_int, c_long, c_uint, c_void};
use kernel::prelude::*;
use kernel::str::CStr;

/// A buffer that can be posted to a queue.
///
/// # Safety
///
/// The slices returned point into memory owned by `self` that does not
/// move or change while `self` is neither moved nor mutated (the ring reads
/// or writes it while it owns the buffer): kmalloc memory for `in_parts`,
/// kmalloc or vmalloc memory (kvmalloc) for `out_parts`.
pub unsafe trait Buffer: Send {
    /// The device-writable parts, written in order (receive queues):
    /// one descriptor each (either may be empty, not both).
    fn in_parts(&mut self) -> (&mut [u8], &mut [u8]);
    /// The device-readable parts, sent in order (transmit queues).
    fn out_parts(&self) -> (&[u8], &[u8]);
}

/// The most descriptors [`Queues::add_out`] uses for a header of at most a
/// page and `len` payload bytes (kvmalloc memory: one per page when it is
/// vmalloc memory).
pub const fn out_descs_max(len: usize) -> usize {
    1 + if len == 0 {
        0
    } else {
        len.div_ceil(kernel::page::PAGE_SIZE) + 1
    }
}

/// The longest payload that [`out_descs_max`] fits in `descs` descriptors.
pub const fn out_len_max(descs: usize) -> usize {
    descs.saturating_sub(2) * kernel::page::PAGE_SIZE
}

/// The parts of one request's chain, in order: device-readable parts,
/// then device-writable parts (at most [`MAX_PARTS`]).
pub struct Chain {
    parts: [bindings::rvio_virtio_part; MAX_PARTS],
    readable: usize,
    writable: usize,
    bad: bool,
}

/// The most parts of a [`Chain`].
pub const MAX_PARTS: usize = bindings::RVIO_VIRTIO_MAX_PARTS as usize;

impl Chain {
    fn new() -> Self {
        Self {
            parts: Default::default(),
            readable: 0,
            writable: 0,
            bad: false,
        }
    }

    fn push(&mut self, writable: bool, part: bindings::rvio_virtio_part) {
        let n = self.readable + self.writable;
        if n == MAX_PARTS || (!writable && self.writable > 0) {
            self.bad = true;
            return;
        }
        self.parts[n] = part;
        if writable {
            self.writable += 1;
        } else {
            self.readable += 1;
        }
    }

    /// `len` bytes at `buf` (kmalloc memory), device-readable, or
    /// device-writable if `writable` (after every readable part).
    pub fn buf(&mut self, writable: bool, buf: *mut u8, len: usize) {
        self.push(
            writable,
            bindings::rvio_virtio_part {
                buf: buf.cast(),
                len: len as c_uint,
                sg: core::ptr::null_mut(),
            },
        );
    }

    /// The entries of scatterlist `sg` up to its end mark.
    pub fn sg(&mut self, writable: bool, sg: *mut bindings::scatterlist) {
        self.push(
            writable,
            bindings::rvio_virtio_part {
                buf: core::ptr::null_mut(),
                len: 0,
                sg,
            },
        );
    }
}

/// A request a driver posts as one chain ([`Queues::add_req`]): it owns
/// (or stands for) the memory its parts name, and is given back by
/// [`Queues::get_req`] once used, or dropped after the reset at remove.
///
/// # Safety
///
/// The parts [`Request::parts`] names are valid, as their kind requires
/// (kmalloc memory, or a marked scatterlist of DMA-mappable memory), and
/// neither move nor are accessed by anyone else from `parts` until the
/// request is given back (the ring owns them meanwhile);
/// [`Request::into_raw`] returns a non-NULL pointer that
/// [`Request::from_raw`], with the queue the request went to, turns back
/// into the request.
pub unsafe trait Request: Send + Sized {
    /// The queues that hold requests (a bit per queue index).
    const QUEUES: u64;
    /// The queue this request goes to.
    fn queue(&self) -> u16;
    /// Its chain's parts.
    fn parts(&mut self, c: &mut Chain);
    /// Gives the request up as a token.
    fn into_raw(self) -> *mut c_void;
    /// Takes it back.
    ///
    /// # Safety
    ///
    /// `p` came from [`Request::into_raw`] of a request of queue `idx`.
    unsafe fn from_raw(idx: u16, p: *mut c_void) -> Self;
}

/// The request type of a driver that posts none.
pub enum NoReq {}

// SAFETY: there is no value of the type, so no chain; no queue holds one.
unsafe impl Request for NoReq {
    const QUEUES: u64 = 0;
    fn queue(&self) -> u16 {
        match *self {}
    }
    fn parts(&mut self, _c: &mut Chain) {
        match *self {}
    }
    fn into_raw(self) -> *mut c_void {
        match self {}
    }
    unsafe fn from_raw(_idx: u16, _p: *mut c_void) -> Self {
        // SAFETY: no queue holds a `NoReq` (`QUEUES` is 0), so this is
        // never called (see `# Safety`: `p` came from a `NoReq`).
        unsafe { core::hint::unreachable_unchecked() }
    }
}

/// Whether queue `idx` holds requests of type `R`.
fn is_req_queue<R: Request>(idx: u16) -> bool {
    idx < 64 && R::QUEUES & (1 << idx) != 0
}

/// A virtio driver's own logic.
pub trait Driver: Sized + Send {
    /// Driver name.
    const NAME: &'static CStr;
    /// The virtio device id it binds.
    const DEVICE_ID: u32;
    /// Its virtqueues' names, in queue order: all it may use.
    const QUEUES: &'static [&'static CStr];
    /// The device-specific feature bits it accepts.
    const FEATURES: &'static [u32] = &[];
    /// The buffers it posts.
    type Buf: Buffer;
    /// The requests it posts ([`NoReq`] if none).
    type Req: Request;

    /// How many of [`Driver::QUEUES`] (the first ones) a device with the
    /// negotiated `features` has.
    fn queues(_features: u64) -> usize {
        Self::QUEUES.len()
    }
    /// A device appeared: read its configuration, create the state.
    fn probe(dev: &Device<'_>) -> Result<Self>;
    /// The device is live: post buffers, send.
    fn start(&mut self, queues: &mut Queues<'_, Self::Buf, Self::Req>);
    /// The device is going away: drop whatever outside the device may still
    /// schedule work passes (called once: at remove, before the reset; or
    /// when a reset the driver asked for left the device failed).
    fn stop(&mut self);
    /// A work pass after a queue callback (or [`Queues::schedule`]); return
    /// `true` to be called again (do a bounded amount of work per pass).
    fn process(&mut self, queues: &mut Queues<'_, Self::Buf, Self::Req>) -> bool;
    /// A pass that only sends what waits, bounded, from [`Handle::run_now`]
    /// in a writer's context (whose cost it is); return `true` for a full
    /// pass from the work. By default, [`Driver::process`].
    fn flush(&mut self, queues: &mut Queues<'_, Self::Buf, Self::Req>) -> bool {
        self.process(queues)
    }
    /// Feature bits to turn down although the device offers them (asked
    /// before each device's features are final).
    fn refused_features() -> u64 {
        0
    }
    /// A reset the driver asked for ([`request_reset`]): the device was
    /// reset and touches no buffer any more. Its buffers come back next
    /// (buffers dropped, requests to [`Driver::reset_req`]), then
    /// [`Driver::start`] follows with new queues (or, if the device does
    /// not come back, [`Driver::stop`]).
    fn reset(&mut self) {}
    /// Then, for each request the device held: `req` is back, used
    /// (`Some` of the length the device wrote) or not (`None`). The
    /// default drops it.
    fn reset_req(&mut self, _req: Self::Req, _used: Option<usize>) {}
}

/// Asks for a reset of `h`'s device, done by its next work pass: the device
/// forgets its rings, [`Driver::reset`] runs, every buffer comes back
/// (buffers are dropped, requests go to [`Driver::reset_req`]), then
/// [`Driver::start`] with new rings and the same features. For a device
/// that no longer completes what it was given. Any context; nothing once
/// the device is going away.
pub fn request_reset(h: &Handle) {
    h.with(|v| {
        // SAFETY: `with` passes an attached device, live until the call
        // returns (`Work::schedule`'s argument, the same guarantee);
        // `rvio_virtio_request_reset()` sets a bit and queues the work.
        unsafe { bindings::rvio_virtio_request_reset(v) }
    });
}

/// A device during probe.
///
/// # Invariants
///
/// `v` is a device being probed, valid for `'a`.
pub struct Device<'a> {
    v: *mut bindings::rvio_virtio,
    _p: PhantomData<&'a ()>,
}

impl Device<'_> {
    /// Reads `buf.len()` bytes of configuration space at `offset`
    /// (generation-checked: a consistent snapshot).
    pub fn read_config(&self, offset: u32, buf: &mut [u8]) {
        // SAFETY: by the type invariant `v` is valid; `buf` is valid for
        // `buf.len()` writes.
        unsafe {
            bindings::rvio_virtio_cread(
                self.v,
                offset,
                buf.as_mut_ptr().cast(),
                buf.len() as c_uint,
            )
        };
    }

    /// The device's name.
    pub fn name(&self) -> &CStr {
        // SAFETY: by the type invariant `v` is valid; the name lives as
        // long as the device.
        unsafe { CStr::from_char_ptr(bindings::rvio_virtio_name(self.v)) }
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        // SAFETY: by the type invariant `v` is valid.
        unsafe { bindings::rvio_virtio_features(self.v) }
    }
}

/// The entries of scatterlist `sg` up to its end mark, and their bytes;
/// `None` beyond `max` entries. Any context.
///
/// # Safety
///
/// `sg` is NULL or a valid scatterlist with an end mark.
pub unsafe fn sg_count(sg: *mut bindings::scatterlist, max: u32) -> Option<(u32, u64)> {
    let mut bytes = 0u64;
    // SAFETY: as the caller guarantees; `bytes` is valid for a write.
    let n = unsafe { bindings::rvio_virtio_sg_count(sg, max, &mut bytes) };
    u32::try_from(n).ok().map(|n| (n, bytes))
}

/// Whether `p` is kmalloc memory (directly mapped), which a chain's buffer
/// part must be. Any context.
pub fn kmalloc_ok<T>(p: *const T) -> bool {
    // SAFETY: only the address is looked at.
    unsafe { bindings::rvio_virtio_kmalloc_ok(p.cast()) }
}

/// Registration of the virtio driver `T`.
pub struct Registration<T: Driver> {
    reg: *mut bindings::rvio_virtio_reg,
    _t: PhantomData<T>,
}

// SAFETY: the registration holds a pointer the C half uses under its own
// locking from any thread; the driver state is `Send`.
unsafe impl<T: Driver> Send for Registration<T> {}
// SAFETY: no `&self` method exists.
unsafe impl<T: Driver> Sync for Registration<T> {}

impl<T: Driver> Registration<T> {
    /// Registers the driver: it binds every device of `T::DEVICE_ID`.
    pub fn new() -> Result<Self> {
        // SAFETY: the table and the queue names it points to are constants
        // of `T`'s type, so they outlive the registration.
        let reg = from_err_ptr(unsafe { bindings::rvio_virtio_register(VTable::<T>::build()) })?;
        Ok(Self {
            reg,
            _t: PhantomData,
        })
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `reg` came from a successful registration, unregistered
        // once; this removes every bound device first.
        unsafe { bindings::rvio_virtio_unregister(self.reg) };
    }
}

/// The most queues a driver may have.
const MAX_VQS: usize = bindings::RVIO_VIRTIO_MAX_VQS as usize;

/// The C half's table of callbacks into `T`: one constant per type, as
/// `MiscdeviceVTable<T>` in upstream's `rust/kernel/miscdevice.rs`.
struct VTable<T: Driver>(PhantomData<T>);

impl<T: Driver> VTable<T> {
    /// `T::QUEUES` as C strings; `rvio_virtio_register()` refuses more
    /// than [`MAX_VQS`] queues.
    const VQ_NAMES: [*const c_char; MAX_VQS] = {
        let mut names = [core::ptr::null(); MAX_VQS];
        let mut i = 0;
        while i < T::QUEUES.len() && i < MAX_VQS {
            names[i] = T::QUEUES[i].as_char_ptr();
            i += 1;
        }
        names
    };

    const VTABLE: bindings::rvio_virtio_driver = bindings::rvio_virtio_driver {
        name: T::NAME.as_char_ptr(),
        device_id: T::DEVICE_ID,
        features: T::FEATURES.as_ptr(),
        nfeatures: T::FEATURES.len() as c_uint,
        nvqs: T::QUEUES.len() as c_uint,
        vq_names: Self::build_vq_names().as_ptr(),
        nvqs_for: Some(Self::nvqs_for),
        probe: Some(Self::probe),
        start: Some(Self::start),
        process: Some(Self::process),
        flush: Some(Self::flush),
        stop: Some(Self::stop),
        free_token: Some(Self::free_token),
        reclaim: Some(Self::reclaim),
        reset: Some(Self::reset),
        free: Some(Self::free),
        refused_features: Some(Self::refused_features),
    };

    const fn build_vq_names() -> &'static [*const c_char; MAX_VQS] {
        &Self::VQ_NAMES
    }

    const fn build() -> &'static bindings::rvio_virtio_driver {
        &Self::VTABLE
    }

    /// # Safety
    ///
    /// Called by the C half with a device being probed.
    unsafe extern "C" fn probe(v: *mut bindings::rvio_virtio) -> c_int {
        from_result(|| {
            // INVARIANT: `v` is being probed for the duration of this call.
            let dev = Device { v, _p: PhantomData };
            // SAFETY: `v` is being probed; `rvio_virtio_schedule(v)` may be
            // called until `rvio_virtio_remove()` in rust/virtio_glue.c
            // cancels the work after `stop` (which detaches this owner), or,
            // if the probe fails, until `rvio_virtio_probe()` frees `v`
            // after freeing the state (dropping the owner). No handle exists
            // before `start`, so no work is queued on that path.
            let work = unsafe { work_handle::Owner::<Work>::new(v) }?;
            let state = State {
                dev: T::probe(&dev)?,
                work,
            };
            let state = KBox::into_raw(KBox::new(state, GFP_KERNEL)?);
            // SAFETY: `rvio_virtio_probe()` in rust/virtio_glue.c calls
            // `probe` with the device it is probing; `state` is a valid
            // owned pointer.
            let ret = unsafe { bindings::rvio_virtio_set_state(v, state.cast()) };
            if let Err(e) = to_result(ret) {
                // SAFETY: `rvio_virtio_set_state()` failed, so it did not
                // store `state`: we still own the box from `into_raw` above.
                drop(unsafe { KBox::from_raw(state) });
                return Err(e);
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `state` is the probe's state of device `v`, whose mutex is held.
    unsafe extern "C" fn start(state: *mut c_void, v: *mut bindings::rvio_virtio) {
        // SAFETY: `rvio_virtio_probe()` in rust/virtio_glue.c (and
        // `rvio_virtio_restart()`, from the work item) calls `start` with
        // `v->state`, the `KBox<State<T>>` pointer `probe` gave
        // `rvio_virtio_set_state()`, and `v->lock` held (see `# Safety`).
        // Every other use of the state (`process`, `stop`, `reset`,
        // `reclaim`) holds that mutex too, and `free_token` and `free` run
        // only when none of them can (after the work is cancelled), so no
        // other reference to the `T` exists during the call.
        let s = unsafe { &mut *state.cast::<State<T>>() };
        // INVARIANT: the mutex is held for the life of `q`.
        let mut q = Queues {
            v,
            work: &s.work,
            _p: PhantomData,
        };
        s.dev.start(&mut q);
    }

    /// # Safety
    ///
    /// As for `start`.
    unsafe extern "C" fn process(state: *mut c_void, v: *mut bindings::rvio_virtio) -> bool {
        // SAFETY: `rvio_virtio_work()` and `rvio_virtio_run_now()` in
        // rust/virtio_glue.c call `process` with `v->state` (the
        // `KBox<State<T>>` pointer from `probe`) and `v->lock` held, and only
        // while `v->running`, which `rvio_virtio_remove()` clears under that
        // mutex before `stop`; `start` and `stop` hold the mutex too, `free`
        // comes after `teardown()` cancelled the work, and `run_now` runs
        // only while the work's handles are attached (`stop` detaches them),
        // so no other reference to the `T` exists during the call.
        let s = unsafe { &mut *state.cast::<State<T>>() };
        // INVARIANT: the mutex is held for the life of `q`.
        let mut q = Queues {
            v,
            work: &s.work,
            _p: PhantomData,
        };
        s.dev.process(&mut q)
    }

    /// # Safety
    ///
    /// As for `start`.
    unsafe extern "C" fn flush(state: *mut c_void, v: *mut bindings::rvio_virtio) -> bool {
        // SAFETY: as in `process`: `rvio_virtio_run_now()` calls `flush` the
        // same way.
        let s = unsafe { &mut *state.cast::<State<T>>() };
        // INVARIANT: the mutex is held for the life of `q`.
        let mut q = Queues {
            v,
            work: &s.work,
            _p: PhantomData,
        };
        s.dev.flush(&mut q)
    }

    /// # Safety
    ///
    /// As for `start` (without the device being live).
    unsafe extern "C" fn stop(state: *mut c_void) {
        // SAFETY: `rvio_virtio_remove()` in rust/virtio_glue.c calls `stop`
        // once (or, instead, `rvio_virtio_restart()` when the device did not
        // come back), with `v->state` (the `KBox<State<T>>` pointer from
        // `probe`) and `v->lock` held, after clearing `v->running`; the
        // other callbacks also run under that mutex, and `free` only after
        // this returns, so no other reference to the `T` exists during the
        // call.
        let s = unsafe { &mut *state.cast::<State<T>>() };
        s.dev.stop();
        // The C half cancels the work at remove: no handle may queue it
        // again.
        s.work.detach();
    }

    /// # Safety
    ///
    /// `token` is a buffer this abstraction posted (a `KBox<T::Buf>`) that
    /// the reset device no longer uses.
    unsafe extern "C" fn free_token(_state: *mut c_void, idx: u16, token: *mut c_void) {
        if is_req_queue::<T::Req>(idx) {
            // SAFETY: `teardown()` in rust/virtio_glue.c passes the tokens
            // of queue `idx` that `virtqueue_detach_unused_buf()` returns
            // after `virtio_reset_device()`: the device no longer uses them.
            // A request queue's tokens were all posted by `Queues::add_req`
            // as `Request::into_raw` of a request of that queue.
            drop(unsafe { T::Req::from_raw(idx, token) });
            return;
        }
        // SAFETY: as above; the other queues' tokens were all posted by
        // `Queues::add_in` or `add_out` (of `Queues<'_, T::Buf, _>`) as
        // `KBox::into_raw` of a `T::Buf`, owned by the ring until returned,
        // so we own the box again.
        drop(unsafe { KBox::from_raw(token.cast::<T::Buf>()) });
    }

    /// # Safety
    ///
    /// As for `start`; `token` is a buffer this abstraction posted on
    /// queue `idx` that the reset device gave back.
    unsafe extern "C" fn reclaim(state: *mut c_void, idx: u16, token: *mut c_void, len: c_long) {
        // SAFETY: `rvio_virtio_restart()` in rust/virtio_glue.c calls
        // `reclaim` from the work item with `v->state` (the
        // `KBox<State<T>>` pointer from `probe`) and `v->lock` held, as
        // `process` is called, so no other reference to the `T` exists.
        let s = unsafe { &mut *state.cast::<State<T>>() };
        if is_req_queue::<T::Req>(idx) {
            // SAFETY: after `virtio_reset_device()` the device no longer
            // uses the tokens `virtqueue_get_buf()` and
            // `virtqueue_detach_unused_buf()` give back; a request queue's
            // tokens were all posted by `Queues::add_req` as
            // `Request::into_raw` of a request of that queue.
            let req = unsafe { T::Req::from_raw(idx, token) };
            s.dev.reset_req(req, usize::try_from(len).ok());
            return;
        }
        // SAFETY: as above; the other queues' tokens were all posted by
        // `Queues::add_in` or `add_out` as `KBox::into_raw` of a `T::Buf`.
        drop(unsafe { KBox::from_raw(token.cast::<T::Buf>()) });
    }

    /// # Safety
    ///
    /// As for `start` (the queues are gone).
    unsafe extern "C" fn reset(state: *mut c_void) {
        // SAFETY: as in `reclaim`: `rvio_virtio_restart()` calls it with
        // `v->state` and `v->lock` held.
        let s = unsafe { &mut *state.cast::<State<T>>() };
        s.dev.reset();
    }

    extern "C" fn nvqs_for(features: u64) -> c_uint {
        T::queues(features).min(T::QUEUES.len()) as c_uint
    }

    extern "C" fn refused_features() -> u64 {
        T::refused_features()
    }

    /// # Safety
    ///
    /// `state` is the probe's state; the device is gone.
    unsafe extern "C" fn free(state: *mut c_void) {
        // SAFETY: `state` is `v->state`, the `KBox::into_raw` pointer `probe`
        // gave `rvio_virtio_set_state()`. rust/virtio_glue.c calls `free`
        // once per device and uses the state no more: from
        // `rvio_virtio_remove()` after `stop`, the reset and `teardown()`
        // (work cancelled), or from `rvio_virtio_probe()` when
        // `virtio_find_vqs()` failed, before `start`. So we own the box again.
        drop(unsafe { KBox::from_raw(state.cast::<State<T>>()) });
    }
}

/// The queues of a live device during a callback.
///
/// # Invariants
///
/// `v` is a live device whose mutex is held for the life of this value;
/// the queues in `R::QUEUES` hold only `R` tokens, the others only
/// `KBox<B>` tokens.
pub struct Queues<'a, B: Buffer, R: Request = NoReq> {
    v: *mut bindings::rvio_virtio,
    work: &'a work_handle::Owner<Work>,
    _p: PhantomData<(&'a mut (), B, R)>,
}

/// The C half's virtio device, whose work a [`Handle`] schedules.
pub struct Work;

impl work_handle::Target for Work {
    type Device = bindings::rvio_virtio;

    unsafe fn schedule(v: *mut bindings::rvio_virtio) {
        // SAFETY: the caller guarantees that `v` is attached: live until
        // `stop` detaches its `Owner`, which `rvio_virtio_remove()` in
        // rust/virtio_glue.c calls before it cancels the work and frees `v`.
        unsafe { bindings::rvio_virtio_schedule(v) };
    }

    unsafe fn run_now(v: *mut bindings::rvio_virtio) {
        // SAFETY: as in `schedule`; the caller is in process context and
        // holds no lock of the device's (the trait's contract), and
        // `rvio_virtio_run_now()` only tries the device's lock (`stop`
        // detaches the owner with it held: a try that fails schedules).
        unsafe { bindings::rvio_virtio_run_now(v) };
    }
}

/// A device's work, for scheduling passes from outside a callback (a kick
/// from another module); once the driver has stopped, scheduling does
/// nothing.
pub type Handle = work_handle::Handle<Work>;

/// What the C half holds as a device's state: the driver's, and the owner
/// of the device's work handles (detached in `stop`, before the C half
/// cancels the work).
struct State<T: Driver> {
    dev: T,
    work: work_handle::Owner<Work>,
}

impl<B: Buffer, R: Request> Queues<'_, B, R> {
    /// Asks for another work pass.
    pub fn schedule(&self) {
        // SAFETY: by the type invariant `v` is live.
        unsafe { bindings::rvio_virtio_schedule(self.v) };
    }

    /// Asks for a work pass a little later (10 ms): memory was short, and
    /// a pass now would spin on the same failure.
    pub fn retry_later(&self) {
        // SAFETY: by the type invariant `v` is live.
        unsafe { bindings::rvio_virtio_retry_later(self.v) };
    }

    /// A handle that schedules the device's work passes from anywhere.
    pub fn handle(&self) -> Handle {
        self.work.handle()
    }

    /// The device's name.
    pub fn name(&self) -> &CStr {
        // SAFETY: by the type invariant `v` is live; its name lives as long.
        unsafe { CStr::from_char_ptr(bindings::rvio_virtio_name(self.v)) }
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        // SAFETY: by the type invariant `v` is live.
        unsafe { bindings::rvio_virtio_features(self.v) }
    }

    /// The number of queues the device has.
    pub fn count(&self) -> u16 {
        // SAFETY: by the type invariant `v` is live.
        unsafe { bindings::rvio_virtio_nvqs(self.v) as u16 }
    }

    /// Posts request `req` as one chain on its queue. On error the request
    /// comes back: `ENOSPC` (too few descriptors now), `ENOMEM`, `EFAULT`
    /// (a buffer part not kmalloc memory), `EINVAL` (not a request queue,
    /// a bad chain), `EIO` (a broken device).
    pub fn add_req(&mut self, mut req: R) -> core::result::Result<(), (Error, R)> {
        let idx = req.queue();
        if !is_req_queue::<R>(idx) {
            return Err((EINVAL, req));
        }
        let mut c = Chain::new();
        req.parts(&mut c);
        if c.bad || c.readable + c.writable == 0 {
            return Err((EINVAL, req));
        }
        let raw = req.into_raw();
        // SAFETY: by the type invariant the mutex is held; the parts are
        // valid until the request comes back (the `Request` contract);
        // `raw` is the token, owned by the ring on success.
        let ret = unsafe {
            bindings::rvio_virtio_add_parts(
                self.v,
                idx,
                c.parts.as_ptr(),
                c.readable as c_uint,
                c.writable as c_uint,
                raw,
            )
        };
        if ret != 0 {
            // SAFETY: not queued: `raw` is the request of queue `idx` we
            // gave up just now.
            return Err((Error::from_errno(ret), unsafe { R::from_raw(idx, raw) }));
        }
        Ok(())
    }

    /// The next request the device used on request queue `idx`, with the
    /// length it wrote.
    pub fn get_req(&mut self, idx: u16) -> Option<(R, usize)> {
        if !is_req_queue::<R>(idx) {
            return None;
        }
        let mut len: c_uint = 0;
        // SAFETY: by the type invariant the mutex is held.
        let token = unsafe { bindings::rvio_virtio_get_buf(self.v, idx, &mut len) };
        if token.is_null() {
            return None;
        }
        // SAFETY: queue `idx` holds only requests posted by `add_req`
        // (type invariant); the device has returned this one.
        Some((unsafe { R::from_raw(idx, token) }, len as usize))
    }

    /// Posts `buf`'s `in_parts` as one device-writable chain on queue
    /// `idx`. On error the buffer comes back.
    pub fn add_in(&mut self, idx: u16, buf: KBox<B>) -> core::result::Result<(), (Error, KBox<B>)> {
        if is_req_queue::<R>(idx) {
            return Err((EINVAL, buf));
        }
        let raw = KBox::into_raw(buf);
        // SAFETY: `raw` is a valid owned box; the slices point into its
        // heap memory (or the heap memory it owns), which stays put while
        // the ring owns the token.
        let (a, b) = unsafe { (*raw).in_parts() };
        // SAFETY: by the type invariant the mutex is held; both slices are
        // valid for writes; `raw` is passed as the token, owned by the ring
        // on success.
        let ret = unsafe {
            bindings::rvio_virtio_add_in(
                self.v,
                idx,
                a.as_mut_ptr().cast(),
                a.len() as c_uint,
                b.as_mut_ptr().cast(),
                b.len() as c_uint,
                raw.cast(),
            )
        };
        if ret != 0 {
            // SAFETY: not queued: we own it again.
            return Err((Error::from_errno(ret), unsafe { KBox::from_raw(raw) }));
        }
        Ok(())
    }

    /// Posts `buf`'s `out_parts` as one device-readable chain on queue
    /// `idx`. On error the buffer comes back.
    pub fn add_out(
        &mut self,
        idx: u16,
        buf: KBox<B>,
    ) -> core::result::Result<(), (Error, KBox<B>)> {
        if is_req_queue::<R>(idx) {
            return Err((EINVAL, buf));
        }
        let raw = KBox::into_raw(buf);
        // SAFETY: as in `add_in`.
        let (a, b) = unsafe { (*raw).out_parts() };
        // SAFETY: as in `add_in`; both slices are valid for reads.
        let ret = unsafe {
            bindings::rvio_virtio_add_out(
                self.v,
                idx,
                a.as_ptr().cast(),
                a.len() as c_uint,
                b.as_ptr().cast(),
                b.len() as c_uint,
                raw.cast(),
            )
        };
        if ret != 0 {
            // SAFETY: not queued: we own it again.
            return Err((Error::from_errno(ret), unsafe { KBox::from_raw(raw) }));
        }
        Ok(())
    }

    /// The next buffer the device used on queue `idx`, with the length it
    /// wrote (clamped to the length of the buffer's `in_parts`).
    pub fn get_buf(&mut self, idx: u16) -> Option<(KBox<B>, usize)> {
        if is_req_queue::<R>(idx) {
            return None;
        }
        let mut len: c_uint = 0;
        // SAFETY: by the type invariant the mutex is held.
        let token = unsafe { bindings::rvio_virtio_get_buf(self.v, idx, &mut len) };
        if token.is_null() {
            return None;
        }
        // SAFETY: every token of a queue not in `R::QUEUES` (checked above)
        // is a `KBox<B>` this type posted (type invariant); the device has
        // returned it, so we own it again.
        let mut buf = unsafe { KBox::from_raw(token.cast::<B>()) };
        let (a, b) = buf.in_parts();
        let len = (len as usize).min(a.len() + b.len());
        Some((buf, len))
    }

    /// Notifies the device of new buffers on queue `idx`.
    pub fn kick(&mut self, idx: u16) {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_virtio_kick(self.v, idx) };
    }

    /// Stops callbacks of queue `idx` (a hint).
    pub fn disable_cb(&mut self, idx: u16) {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_virtio_disable_cb(self.v, idx) };
    }

    /// Re-enables callbacks of queue `idx`; `false` if used buffers
    /// arrived meanwhile (process them: no callback will come for them).
    pub fn enable_cb(&mut self, idx: u16) -> bool {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_virtio_enable_cb(self.v, idx) }
    }

    /// [`Queues::enable_cb`], but the callback comes once most of the
    /// buffers posted now are used (`virtqueue_enable_cb_delayed`: 3/4 of
    /// them with `EVENT_IDX`), as for a transmit queue whose used buffers
    /// only need freeing; `false` if most of them already are.
    pub fn enable_cb_delayed(&mut self, idx: u16) -> bool {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_virtio_enable_cb_delayed(self.v, idx) }
    }

    /// Free descriptors of queue `idx`.
    pub fn num_free(&mut self, idx: u16) -> usize {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_virtio_num_free(self.v, idx) as usize }
    }

    /// Size of queue `idx`.
    pub fn size(&mut self, idx: u16) -> usize {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_virtio_vring_size(self.v, idx) as usize }
    }
}
