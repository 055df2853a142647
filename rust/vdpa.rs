// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction for a software vDPA device (the Rust half; the C half is
//! `rust/vdpa_glue.c`, which owns the kernel structures and the vDPA
//! plumbing). A driver implements [`Device`] and keeps a [`Registration`]
//! for as long as `vdpa dev add mgmtdev <name>` should work; every callback
//! gets `&mut` access to its state because the C half calls them with the
//! device's mutex held.
//!
//! Include with `#[path = ".../rust/vdpa.rs"] mod vdpa;` next to `mod
//! bindings;`, and link `rust/vdpa_glue.o` into the module (Kbuild).

use crate::bindings;
use crate::work_handle;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use kernel::error::{from_err_ptr, from_result, to_result};
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;

/// The most bytes of configuration space a device has.
pub const CONFIG_MAX: usize = 64;
/// The most virtqueues a device has.
pub const NVQS_MAX: u32 = bindings::RVIO_VDPA_NVQS_MAX;

/// A vDPA device's own logic.
pub trait Device: Sized + Send {
    /// The virtio device id of every device.
    const DEVICE_ID: u32;
    /// Device-specific feature bits offered.
    const FEATURES: u64;
    /// Virtqueues (1 to [`NVQS_MAX`]).
    const NVQS: u32 = 2;

    /// `vdpa dev add` creates a device named `name`; `dev` schedules its
    /// work passes (until the device is released, then it does nothing).
    fn new(name: &CStr, dev: Handle) -> Result<Self>;
    /// The device is being deleted: detach it from whatever outside the
    /// device uses it (called once, before the release, which waits for
    /// the device's last user: e.g. `vhost_vdpa`'s open file).
    fn remove(&mut self);
    /// Writes the (immutable) configuration space; returns its length.
    fn config_space(&self, buf: &mut [u8; CONFIG_MAX]) -> usize;
    /// The driver reset the device: forget every queue-related state.
    fn reset(&mut self);
    /// The driver set `DRIVER_OK`.
    fn start(&mut self, queues: &mut Queues<'_>);
    /// A work pass, after a kick (or [`Queues::schedule`]); return `true`
    /// to be called again (do a bounded amount of work per pass).
    fn process(&mut self, queues: &mut Queues<'_>) -> bool;
    /// A pass that only sends what waits, bounded, from [`Handle::run_now`]
    /// in a writer's context (whose cost it is); return `true` for a full
    /// pass from the work. By default, [`Device::process`].
    fn flush(&mut self, queues: &mut Queues<'_>) -> bool {
        self.process(queues)
    }

    /// Whether [`Device::suspend`] and [`Device::resume`] are the
    /// driver's own (a device that keeps chains out must say so).
    const HAS_SUSPEND: bool = false;

    /// The VMM suspends the started device (QEMU's stop, a migration): no
    /// pass runs until it resumes or resets it. Use every chain kept out
    /// ([`Chain::keep`]) now: the VMM reads the available index and will
    /// restore the used index to it.
    fn suspend(&mut self, _queues: &mut Queues<'_>) {}

    /// The VMM resumes the suspended, started device.
    fn resume(&mut self, _queues: &mut Queues<'_>) {}
}

/// Registration of a vDPA management device for `T`: `vdpa mgmtdev show`
/// lists it while this lives. Dropping it deletes every device and waits
/// until each is released.
pub struct Registration<T: Device> {
    mgmt: *mut bindings::rvio_vdpa_mgmt,
    _t: PhantomData<T>,
}

// SAFETY: the registration only holds a pointer that the C half uses from
// any thread under its own locking; `T: Send` is moved between threads only
// by the C half's work item and ops.
unsafe impl<T: Device> Send for Registration<T> {}
// SAFETY: no `&self` method exists.
unsafe impl<T: Device> Sync for Registration<T> {}

impl<T: Device> Registration<T> {
    /// Registers the management device `name`.
    pub fn new(name: &CStr) -> Result<Self> {
        // SAFETY: the table is a constant of `T`'s type, so it outlives the
        // registration; `name` is NUL-terminated and
        // `rvio_vdpa_mgmt_register()` copies it (`root_device_register()`
        // sets the device name from it).
        let mgmt = from_err_ptr(unsafe {
            bindings::rvio_vdpa_mgmt_register(VTable::<T>::build(), name.as_char_ptr())
        })?;
        Ok(Self {
            mgmt,
            _t: PhantomData,
        })
    }
}

impl<T: Device> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `mgmt` came from a successful registration and is
        // unregistered once; the driver table is a constant.
        unsafe { bindings::rvio_vdpa_mgmt_unregister(self.mgmt) };
    }
}

/// The C half's table of callbacks into `T`: one constant per type, as
/// `MiscdeviceVTable<T>` in upstream's `rust/kernel/miscdevice.rs`.
struct VTable<T: Device>(PhantomData<T>);

impl<T: Device> VTable<T> {
    const VTABLE: bindings::rvio_vdpa_driver = bindings::rvio_vdpa_driver {
        device_id: T::DEVICE_ID,
        features: T::FEATURES,
        nvqs: T::NVQS,
        dev_add: Some(Self::dev_add),
        remove: Some(Self::remove),
        reset: Some(Self::reset),
        start: Some(Self::start),
        process: Some(Self::process),
        flush: Some(Self::flush),
        suspend: if T::HAS_SUSPEND {
            Some(Self::suspend)
        } else {
            None
        },
        resume: if T::HAS_SUSPEND {
            Some(Self::resume)
        } else {
            None
        },
        free: Some(Self::free),
    };

    const fn build() -> &'static bindings::rvio_vdpa_driver {
        &Self::VTABLE
    }

    /// # Safety
    ///
    /// Called by the C half from `dev_add` with a device being added and its
    /// NUL-terminated name.
    unsafe extern "C" fn dev_add(r: *mut bindings::rvio_vdpa, name: *const c_char) -> c_int {
        from_result(|| {
            // SAFETY: `rvio_vdpa_dev_add()` in rust/vdpa_glue.c passes the
            // name the vdpa core gave its `dev_add` op, NUL-terminated and
            // valid for the call.
            let name = unsafe { CStr::from_char_ptr(name) };
            // SAFETY: `r` is the device being added; `rvio_vdpa_schedule(r)`
            // may be called until its release, `rvio_vdpa_free()` in
            // rust/vdpa_glue.c, which frees the state (so this owner, or it
            // is dropped below on failure) before it cancels the work and
            // the vdpa core frees `r`.
            let work = unsafe { work_handle::Owner::<Work>::new(r) }?;
            let dev = T::new(name, work.handle())?;
            let mut cfg = [0u8; CONFIG_MAX];
            let len = dev.config_space(&mut cfg).min(CONFIG_MAX);
            let state = KBox::into_raw(KBox::new(State { dev, _work: work }, GFP_KERNEL)?);
            // SAFETY: `r` is the device being added (`rvio_vdpa_dev_add()`
            // calls `dev_add` before it registers the device); `state` is a
            // valid owned pointer and `cfg` is valid for `len` reads during
            // the call.
            let ret =
                unsafe { bindings::rvio_vdpa_set_state(r, state.cast(), cfg.as_ptr().cast(), len) };
            if let Err(e) = to_result(ret) {
                // SAFETY: `rvio_vdpa_set_state()` failed, so it did not store
                // `state`: we still own the box from `into_raw` above.
                drop(unsafe { KBox::from_raw(state) });
                return Err(e);
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `state` is the pointer handed over in `dev_add`, and the device's
    /// mutex is held (no other reference to the state exists).
    unsafe extern "C" fn remove(state: *mut c_void) {
        // SAFETY: `rvio_vdpa_dev_del()` in rust/vdpa_glue.c calls `remove`
        // with `r->state`, the `KBox<State<T>>` pointer `dev_add` gave
        // `rvio_vdpa_set_state()`, and `r->lock` held (see `# Safety`). The
        // other callbacks that get the state (`reset`, `start`, `process`)
        // hold that mutex too, and `rvio_vdpa_free()` takes it out of
        // `r->state` under the mutex before `free`, so this is the only
        // reference to the `T`.
        let dev = unsafe { &mut (*state.cast::<State<T>>()).dev };
        dev.remove();
    }

    /// # Safety
    ///
    /// As for `remove`.
    unsafe extern "C" fn reset(state: *mut c_void) {
        // SAFETY: `do_reset()` in rust/vdpa_glue.c (from
        // `rvio_vdpa_set_status()` with status 0 and `rvio_vdpa_reset()`)
        // calls `reset` with `r->lock` held and a non-NULL `r->state`, the
        // `KBox<State<T>>` pointer from `dev_add`; every other use of the state
        // holds that mutex, and `free` gets it only after `rvio_vdpa_free()`
        // cleared `r->state` under it, so this is the only reference.
        let dev = unsafe { &mut (*state.cast::<State<T>>()).dev };
        dev.reset();
    }

    /// # Safety
    ///
    /// As for `reset`, and `r` is the state's device.
    unsafe extern "C" fn start(state: *mut c_void, r: *mut bindings::rvio_vdpa) {
        // SAFETY: `rvio_vdpa_set_status()` in rust/vdpa_glue.c calls `start`
        // when the driver sets DRIVER_OK, with `r->lock` held, a non-NULL
        // `r->state` (the `KBox<State<T>>` pointer from `dev_add`) and its own `r`;
        // every other use of the state holds that mutex, and `free` gets it
        // only after `rvio_vdpa_free()` cleared `r->state` under it, so this
        // is the only reference.
        let dev = unsafe { &mut (*state.cast::<State<T>>()).dev };
        // INVARIANT: the device's mutex is held for the life of `q`.
        let mut q = Queues { r, _p: PhantomData };
        dev.start(&mut q);
    }

    /// # Safety
    ///
    /// As for `start`.
    unsafe extern "C" fn process(state: *mut c_void, r: *mut bindings::rvio_vdpa) -> bool {
        // SAFETY: `rvio_vdpa_pass()` in rust/vdpa_glue.c (from the work or
        // `rvio_vdpa_run_now()`) calls `process` with `r->lock` held, a
        // non-NULL `r->state` (the `KBox<State<T>>` pointer from `dev_add`)
        // and its own `r`; every other use of the state holds that mutex,
        // and `free` gets it only after `rvio_vdpa_free()` cleared
        // `r->state` under it, so this is the only reference.
        let dev = unsafe { &mut (*state.cast::<State<T>>()).dev };
        // INVARIANT: the device's mutex is held for the life of `q`.
        let mut q = Queues { r, _p: PhantomData };
        dev.process(&mut q)
    }

    /// # Safety
    ///
    /// As for `start`.
    unsafe extern "C" fn flush(state: *mut c_void, r: *mut bindings::rvio_vdpa) -> bool {
        // SAFETY: as in `process`: `rvio_vdpa_pass()` calls `flush` the same
        // way (from `rvio_vdpa_run_now()`).
        let dev = unsafe { &mut (*state.cast::<State<T>>()).dev };
        // INVARIANT: the device's mutex is held for the life of `q`.
        let mut q = Queues { r, _p: PhantomData };
        dev.flush(&mut q)
    }

    /// # Safety
    ///
    /// As for `start`.
    unsafe extern "C" fn suspend(state: *mut c_void, r: *mut bindings::rvio_vdpa) {
        // SAFETY: `rvio_vdpa_suspend()` in rust/vdpa_glue.c calls `suspend`
        // with `r->lock` held, a non-NULL `r->state` (the `KBox<State<T>>`
        // pointer from `dev_add`) and its own `r`; every other use of the
        // state holds that mutex, and `free` gets it only after
        // `rvio_vdpa_free()` cleared `r->state` under it, so this is the
        // only reference.
        let dev = unsafe { &mut (*state.cast::<State<T>>()).dev };
        // INVARIANT: the device's mutex is held for the life of `q`.
        let mut q = Queues { r, _p: PhantomData };
        dev.suspend(&mut q);
    }

    /// # Safety
    ///
    /// As for `start`.
    unsafe extern "C" fn resume(state: *mut c_void, r: *mut bindings::rvio_vdpa) {
        // SAFETY: as in `suspend`, from `rvio_vdpa_resume()`.
        let dev = unsafe { &mut (*state.cast::<State<T>>()).dev };
        // INVARIANT: the device's mutex is held for the life of `q`.
        let mut q = Queues { r, _p: PhantomData };
        dev.resume(&mut q);
    }

    /// # Safety
    ///
    /// `state` is the pointer handed over in `dev_add`; the device is being
    /// released and nothing uses the state any more.
    unsafe extern "C" fn free(state: *mut c_void) {
        // SAFETY: `rvio_vdpa_free()` in rust/vdpa_glue.c (the device's
        // release) calls `free` once, with the state it took out of
        // `r->state` under `r->lock`, so no callback gets it any more (see
        // `# Safety`); it is the `KBox::into_raw` pointer `dev_add` gave
        // `rvio_vdpa_set_state()`, so we own the box again.
        drop(unsafe { KBox::from_raw(state.cast::<State<T>>()) });
    }
}

/// The C half's vDPA device, whose work a [`Handle`] schedules.
pub struct Work;

impl work_handle::Target for Work {
    type Device = bindings::rvio_vdpa;

    unsafe fn schedule(r: *mut bindings::rvio_vdpa) {
        // SAFETY: the caller guarantees that `r` is attached: live until
        // `rvio_vdpa_free()` in rust/vdpa_glue.c drops the state (and the
        // `Owner` in it) before it cancels the work.
        unsafe { bindings::rvio_vdpa_schedule(r) };
    }

    unsafe fn run_now(r: *mut bindings::rvio_vdpa) {
        // SAFETY: as in `schedule`; the caller is in process context and
        // holds no lock of the device's (the trait's contract), and
        // `rvio_vdpa_run_now()` only tries the device's lock.
        unsafe { bindings::rvio_vdpa_run_now(r) };
    }
}

/// A device's work, for scheduling passes from outside a callback (a kick
/// from another module); once the device is being released, scheduling
/// does nothing.
pub type Handle = work_handle::Handle<Work>;

/// What the C half holds as a device's state: the driver's, and the owner
/// of the device's work handles (detached when the state is freed, before
/// the C half cancels the work).
struct State<T> {
    dev: T,
    _work: work_handle::Owner<Work>,
}

/// The queues of a device during a callback.
///
/// # Invariants
///
/// `r` is a live device whose mutex is held for the whole life of this
/// value.
pub struct Queues<'a> {
    r: *mut bindings::rvio_vdpa,
    _p: PhantomData<&'a mut ()>,
}

/// Why a queue cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRing;

impl Queues<'_> {
    /// The device's name.
    pub fn name(&self) -> &CStr {
        // SAFETY: by the type invariant `r` is live; the name lives as long
        // as the device.
        unsafe { CStr::from_char_ptr(bindings::rvio_vdpa_name(self.r)) }
    }

    /// The feature bits the driver negotiated.
    pub fn features(&self) -> u64 {
        // SAFETY: by the type invariant `r` is live and its mutex held.
        unsafe { bindings::rvio_vdpa_features(self.r) }
    }

    /// Asks for another work pass.
    pub fn schedule(&self) {
        // SAFETY: by the type invariant `r` is live.
        unsafe { bindings::rvio_vdpa_schedule(self.r) };
    }

    /// Takes the next descriptor chain the driver made available on queue
    /// `idx`: `None` if there is none (or the queue is not ready),
    /// `Err(BadRing)` if the driver's ring is bad (the queue is stopped
    /// until the next reset).
    pub fn pop(&mut self, idx: u16) -> core::result::Result<Option<Chain<'_>>, BadRing> {
        let (mut readable, mut writable) = (0usize, 0usize);
        // SAFETY: by the type invariant the mutex is held; no chain of this
        // `Queues` is out (a `Chain` borrows `self` mutably).
        let ret = unsafe { bindings::rvio_vdpa_vq_pop(self.r, idx, &mut readable, &mut writable) };
        match ret {
            1 => Ok(Some(Chain {
                r: self.r,
                idx,
                readable,
                writable,
                written: 0,
                _p: PhantomData,
            })),
            0 => Ok(None),
            _ => Err(BadRing),
        }
    }

    /// Interrupts the driver for queue `idx` if its ring asks for it.
    pub fn notify(&mut self, idx: u16) {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_vdpa_vq_notify(self.r, idx) };
    }

    /// Asks the driver not to kick queue `idx` (while the device works
    /// through it; a hint).
    pub fn kicks_off(&mut self, idx: u16) {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_vdpa_vq_notify_disable(self.r, idx) };
    }

    /// Waits until no copy that took this device's map along with another
    /// device's ([`Chain::maps`] in that device's pass) still runs.
    pub fn drain_maps(&mut self) {
        // SAFETY: by the type invariant `r` is live and its mutex held (the
        // lock order `rvio_vdpa_maps_drain()` needs); no `Maps` of this
        // `Queues` is out (it would borrow `self`).
        unsafe { bindings::rvio_vdpa_maps_drain(self.r) };
    }

    /// Asks the driver to kick queue `idx` again (the device goes idle);
    /// `false` if buffers were added meanwhile: no kick comes for those.
    pub fn kicks_on(&mut self, idx: u16) -> bool {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_vdpa_vq_notify_enable(self.r, idx) }
    }
}

/// A descriptor chain taken from a queue; completed (returned to the driver
/// with the number of bytes written) when dropped.
pub struct Chain<'a> {
    r: *mut bindings::rvio_vdpa,
    idx: u16,
    readable: usize,
    writable: usize,
    written: u32,
    _p: PhantomData<&'a mut ()>,
}

impl Chain<'_> {
    /// Bytes the device may read (driver to device part).
    pub fn readable_len(&self) -> usize {
        self.readable
    }

    /// Bytes the device may write (device to driver part).
    pub fn writable_len(&self) -> usize {
        self.writable
    }

    /// Copies the next readable bytes into `buf`; returns how many.
    pub fn pull(&mut self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: the C side writes bytes only, so `buf` stays initialized;
        // `MaybeUninit<u8>` has the layout of `u8`.
        self.pull_uninit(unsafe { &mut *(core::ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) })
    }

    /// Copies the next readable bytes into `buf`, which need not be
    /// initialized; returns how many (those are initialized then).
    pub fn pull_uninit(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize> {
        // SAFETY: the chain is out on queue `idx` of a device whose mutex is
        // held (the `Queues` invariant, borrowed by `self`); `buf` is valid
        // for `buf.len()` writes.
        let n = unsafe {
            bindings::rvio_vdpa_vq_pull(self.r, self.idx, buf.as_mut_ptr().cast(), buf.len())
        };
        usize::try_from(n).map_err(|_| Error::from_errno(n as c_int))
    }

    /// Copies `buf` into the next writable bytes; returns how many.
    pub fn push(&mut self, buf: &[u8]) -> Result<usize> {
        // SAFETY: as in `pull`; `buf` is valid for `buf.len()` reads.
        let n = unsafe {
            bindings::rvio_vdpa_vq_push(self.r, self.idx, buf.as_ptr().cast(), buf.len())
        };
        let n = usize::try_from(n).map_err(|_| Error::from_errno(n as c_int))?;
        self.written = self.written.saturating_add(n as u32);
        Ok(n)
    }
}

/// One descriptor of a chain: a driver address, translated through the
/// device's IOTLB when used, and a length.
pub type Range = bindings::rvio_vdpa_range;

/// Why a copy between drivers' memory stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The source is not mapped readable (or its ranges are too short).
    Src,
    /// The destination is not mapped writable (or too short).
    Dst,
}

impl Chain<'_> {
    /// The chain's readable and writable descriptors, into `rd` and `wr`:
    /// how many of each; `E2BIG` if they do not fit. Before any
    /// [`Chain::pull`] or [`Chain::push`].
    pub fn ranges(&self, rd: &mut [Range], wr: &mut [Range]) -> Result<(usize, usize)> {
        let (mut nrd, mut nwr) = (0u32, 0u32);
        // SAFETY: as in `pull`; `rd` and `wr` are valid for their lengths
        // of writes, which the C half does not exceed.
        let ret = unsafe {
            bindings::rvio_vdpa_vq_ranges(
                self.r,
                self.idx,
                rd.as_mut_ptr(),
                rd.len() as u32,
                &mut nrd,
                wr.as_mut_ptr(),
                wr.len() as u32,
                &mut nwr,
            )
        };
        to_result(ret)?;
        Ok((nrd as usize, nwr as usize))
    }

    /// Sets the used length the chain completes with (for bytes written
    /// other than by [`Chain::push`], or 0 to give it back unused).
    pub fn set_written(&mut self, written: u32) {
        self.written = written;
    }

    /// Keeps the chain out of the ring past this pass (it is not
    /// completed now): complete it later with [`Queues::complete`] and the
    /// returned head, unless the device is reset first.
    pub fn keep(self) -> u16 {
        // SAFETY: as in `pull`.
        let head = unsafe { bindings::rvio_vdpa_vq_keep(self.r, self.idx) };
        core::mem::forget(self);
        head as u16
    }
}

impl Queues<'_> {
    /// Completes a chain kept by [`Chain::keep`] with `written` bytes.
    pub fn complete(&mut self, idx: u16, head: u16, written: u32) {
        // SAFETY: by the type invariant the mutex is held.
        unsafe { bindings::rvio_vdpa_vq_complete(self.r, idx, head, written) };
    }

    /// A reference to this device.
    pub fn device_ref(&self) -> DeviceRef {
        // SAFETY: by the type invariant `r` is live.
        DeviceRef(unsafe { bindings::rvio_vdpa_get(self.r) })
    }

    /// Holds this device's map, and `other`'s, against changes (map
    /// updates and resets wait) for the life of the result.
    pub fn maps<'a>(&'a self, other: Option<&'a Peer>) -> Maps<'a> {
        // SAFETY: `r` is live for `'a` (type invariant) and we are in a
        // work pass (process context).
        unsafe { Maps::lock(self.r, other) }
    }
}

impl Chain<'_> {
    /// [`Queues::maps`] while a chain is out.
    pub fn maps<'a>(&'a self, other: Option<&'a Peer>) -> Maps<'a> {
        // SAFETY: the chain's device is live and its mutex held while the
        // chain is (it borrows the `Queues`), in a work pass.
        unsafe { Maps::lock(self.r, other) }
    }
}

/// A counted reference to a device: its memory (IOTLB, map lock) stays
/// valid while this lives, even after the device is deleted (its map is
/// then empty: every translation faults).
///
/// # Invariants
///
/// `self.0` is a device with one reference (`get_device`) owned by this.
pub struct DeviceRef(*mut bindings::rvio_vdpa);

// SAFETY: a device reference may be taken and dropped on any thread.
unsafe impl Send for DeviceRef {}
// SAFETY: `&DeviceRef` only lets `Maps` read-lock the device's map.
unsafe impl Sync for DeviceRef {}

impl DeviceRef {
    /// The device, uncounted: dropping the result puts no reference, so
    /// a copy's last use of a device never frees it from within another
    /// device's work pass.
    ///
    /// # Safety
    ///
    /// `self` outlives the result.
    pub unsafe fn peer(&self) -> Peer {
        // INVARIANT: live while `self` is, which the caller guarantees
        // outlives the result.
        Peer(self.0)
    }

    /// A reference to `h`'s device, unless it is being released.
    pub fn of(h: &Handle) -> Option<Self> {
        // SAFETY: `with` passes a device that is live during the call.
        h.with(|r| Self(unsafe { bindings::rvio_vdpa_get(r) }))
    }
}

impl Clone for DeviceRef {
    fn clone(&self) -> Self {
        // SAFETY: by the type invariant the device is live.
        Self(unsafe { bindings::rvio_vdpa_get(self.0) })
    }
}

impl Drop for DeviceRef {
    fn drop(&mut self) {
        // SAFETY: the reference the type invariant says we own.
        unsafe { bindings::rvio_vdpa_put(self.0) };
    }
}

/// Another device, borrowed from a [`DeviceRef`] that outlives it
/// ([`DeviceRef::peer`]).
///
/// # Invariants
///
/// `self.0` is a live device while this exists.
pub struct Peer(*mut bindings::rvio_vdpa);

// SAFETY: it only names a device, which may be used from any thread.
unsafe impl Send for Peer {}
// SAFETY: `&Peer` only lets `Maps` read-lock the device's map.
unsafe impl Sync for Peer {}

/// The maps of a work pass's device and perhaps another, held against
/// changes (see [`Queues::maps`]).
pub struct Maps<'a> {
    own: *mut bindings::rvio_vdpa,
    other: *mut bindings::rvio_vdpa,
    _p: PhantomData<&'a ()>,
}

impl<'a> Maps<'a> {
    /// # Safety
    ///
    /// `own` is a live device for `'a`, whose work pass (process context)
    /// calls this.
    unsafe fn lock(own: *mut bindings::rvio_vdpa, other: Option<&'a Peer>) -> Self {
        let b = other.map_or(core::ptr::null_mut(), |o| o.0);
        // SAFETY: `own` is live (the caller's guarantee) and `b` NULL or
        // live while `other` is (its type invariant); process context.
        // Unlocked by `Maps::drop` with the same pair.
        unsafe { bindings::rvio_vdpa_maps_lock(own, b) };
        Maps {
            own,
            other: b,
            _p: PhantomData,
        }
    }

    fn fault(ret: c_int) -> core::result::Result<(), Fault> {
        match ret as u32 {
            0 => Ok(()),
            bindings::RVIO_VDPA_SRC_FAULT => Err(Fault::Src),
            _ => Err(Fault::Dst),
        }
    }

    /// Copies `len` bytes from the other device's driver memory, byte
    /// `soff` of its ranges `src` (read), into this device's, byte `doff`
    /// of `dst` (written): page to page, no intermediate buffer.
    pub fn copy(
        &self,
        dst: &[Range],
        doff: usize,
        src: &[Range],
        soff: usize,
        len: usize,
    ) -> core::result::Result<(), Fault> {
        let other = if self.other.is_null() {
            self.own
        } else {
            self.other
        };
        // SAFETY: both devices are live and their maps held (`Queues` and
        // `DeviceRef` invariants, `maps`); the slices are valid for reads.
        Self::fault(unsafe {
            bindings::rvio_vdpa_copy(
                self.own,
                dst.as_ptr(),
                dst.len() as u32,
                doff,
                other,
                src.as_ptr(),
                src.len() as u32,
                soff,
                core::ptr::null(),
                len,
            )
        })
    }

    /// Writes `buf` into this device's driver memory, byte `doff` of `dst`.
    pub fn write(&self, dst: &[Range], doff: usize, buf: &[u8]) -> core::result::Result<(), Fault> {
        // SAFETY: as in `copy`; `buf` is valid for its length of reads.
        Self::fault(unsafe {
            bindings::rvio_vdpa_copy(
                self.own,
                dst.as_ptr(),
                dst.len() as u32,
                doff,
                core::ptr::null_mut(),
                core::ptr::null(),
                0,
                0,
                buf.as_ptr().cast(),
                buf.len(),
            )
        })
    }
}

impl Drop for Maps<'_> {
    fn drop(&mut self) {
        // SAFETY: locked by `Queues::maps` with this pair.
        unsafe { bindings::rvio_vdpa_maps_unlock(self.own, self.other) };
    }
}

impl Drop for Chain<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `pull`; the chain is completed exactly once.
        unsafe { bindings::rvio_vdpa_vq_done(self.r, self.idx, self.written) };
    }
}
