// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction for a misc char device (the Rust half; the C half is
//! `rust/miscdev_glue.c`, which owns the `struct miscdevice`, the file
//! operations and the wait queue). A device type implements [`FileOps`];
//! its read, write and ioctl never block (they return `EAGAIN`), and the C
//! half blocks a blocking caller until the next [`Registration::wake`], so
//! `poll(2)` and blocking calls agree.
//!
//! Include with `#[path = ".../rust/miscdev.rs"] pub mod miscdev;` and
//! `#[path = ".../rust/sysfs_buf.rs"] pub mod sysfs_buf;` next to `mod
//! bindings;`, and link `rust/miscdev_glue.o` into the module.

use crate::bindings;
use core::marker::PhantomData;
use kernel::alloc::KVVec;
use kernel::error::to_result;
use kernel::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};
use kernel::uaccess::{UserSlice, UserSliceReader, UserSliceWriter};

pub use crate::sysfs_buf::SysfsBuf;

/// `poll(2)` bits.
pub const POLLIN: u32 = 0x1;
/// `poll(2)` bits.
pub const POLLOUT: u32 = 0x4;
/// `poll(2)` bits.
pub const POLLERR: u32 = 0x8;
/// `poll(2)` bits.
pub const POLLHUP: u32 = 0x10;

/// The file operations of a device type.
pub trait FileOps: Sized + Send + Sync {
    /// The state of one open file.
    type File: Send + Sync;

    /// A file is opened on `dev`.
    fn open(dev: ArcBorrow<'_, Self>) -> Result<Self::File>;
    /// Copies out at most one message; `EAGAIN` if there is none yet.
    fn read(file: &Self::File, out: &mut UserSliceWriter) -> Result<usize>;
    /// Takes one message of `len` bytes; `EAGAIN` if there is no room yet.
    fn write(file: &Self::File, input: &mut UserSliceReader, len: usize) -> Result<usize>;
    /// Readiness now ([`POLLIN`] etc.).
    fn poll(file: &Self::File) -> u32;
    /// An ioctl; like `read` and `write` it never blocks: `EAGAIN` makes
    /// a blocking caller call it again after the next wake.
    fn ioctl(file: &Self::File, cmd: u32, arg: usize) -> Result<isize>;
    /// The read-only sysfs attributes of the device, by name.
    const ATTRS: &'static [&'static CStr];
    /// Writes attribute `idx` of [`FileOps::ATTRS`] (one value and a
    /// newline, as sysfs wants).
    fn show(&self, idx: usize, out: &mut SysfsBuf<'_>);
}

/// Appends `len` bytes of a write's input to `v` (without zero-filling
/// them first).
pub fn read_append(input: &mut UserSliceReader, v: &mut KVVec<u8>, len: usize) -> Result {
    v.reserve(len, GFP_KERNEL)?;
    let old = v.len();
    input.read_raw(v.spare_capacity_mut().get_mut(..len).ok_or(EINVAL)?)?;
    // SAFETY: `read_raw` succeeded, so it initialized the `len` bytes after
    // the old length, which are within the capacity.
    unsafe { v.set_len(old + len) };
    Ok(())
}

/// A registered misc device of `T`.
///
/// # Invariants
///
/// `m` is a registration of the C half this value holds a reference to;
/// `dev` is the pointer of an `Arc<T>` this value holds one count of.
pub struct Registration<T: FileOps> {
    m: *mut bindings::rvio_misc,
    dev: *const T,
    registered: bool,
    _attrs: KVec<*const kernel::ffi::c_char>,
    _t: PhantomData<T>,
}

// SAFETY: the pointers are used from any thread under the C half's and
// `T`'s own locking; `T: Send + Sync`.
unsafe impl<T: FileOps> Send for Registration<T> {}
// SAFETY: `wake` is callable from any thread.
unsafe impl<T: FileOps> Sync for Registration<T> {}

impl<T: FileOps> Registration<T> {
    /// Registers `/dev/<name>` for `dev`.
    pub fn new(name: &CStr, dev: Arc<T>) -> Result<Self> {
        let ops = bindings::rvio_misc_ops {
            open: Some(Self::open),
            release: Some(Self::release),
            read: Some(Self::read),
            write: Some(Self::write),
            poll: Some(Self::poll),
            ioctl: Some(Self::ioctl),
            show: Some(Self::show),
        };
        let mut attrs = KVec::with_capacity(T::ATTRS.len() + 1, GFP_KERNEL)?;
        for a in T::ATTRS {
            attrs.push(a.as_char_ptr(), GFP_KERNEL)?;
        }
        attrs.push(core::ptr::null(), GFP_KERNEL)?;
        let dev = Arc::into_raw(dev);
        let mut err: c_int = 0;
        // SAFETY: the C half copies `ops`; `attrs` (NULL-terminated, static
        // names) and `dev` stay valid while registered (dropped after
        // `rvio_misc_unregister`); `name` is NUL-terminated.
        let m = unsafe {
            bindings::rvio_misc_register(
                name.as_char_ptr(),
                &ops,
                dev as *mut c_void,
                attrs.as_ptr(),
                &mut err,
            )
        };
        if m.is_null() {
            // SAFETY: from `into_raw` above, not handed to anyone.
            drop(unsafe { Arc::from_raw(dev) });
            to_result(err)?;
            return Err(ENOMEM);
        }
        // INVARIANT: `m` is registered with one reference for us; we hold
        // `dev`'s count.
        Ok(Self {
            m,
            dev,
            registered: true,
            _attrs: attrs,
            _t: PhantomData,
        })
    }

    /// Removes the device node (no open runs after this returns); open
    /// files stay usable until closed. Idempotent.
    pub fn unregister(&mut self) {
        if self.registered {
            self.registered = false;
            // SAFETY: by the type invariant `m` is registered.
            unsafe { bindings::rvio_misc_unregister(self.m) };
        }
    }

    /// Wakes blocked readers, writers and pollers to look again.
    pub fn wake(&self) {
        // SAFETY: by the type invariant we hold a reference to `m`.
        unsafe { bindings::rvio_misc_wake(self.m) };
    }

    /// # Safety
    ///
    /// Called by the C half, while registered, with our `dev` pointer.
    unsafe extern "C" fn open(dev: *mut c_void, fpriv: *mut *mut c_void) -> c_int {
        // SAFETY: while registered we hold a count of the `Arc<T>` whose
        // pointer `dev` is, so it is alive for the call.
        let dev = unsafe { ArcBorrow::from_raw(dev as *const T) };
        match T::open(dev).and_then(|f| Ok(KBox::new(f, GFP_KERNEL)?)) {
            Ok(b) => {
                // SAFETY: `fpriv` is valid for a write.
                unsafe { *fpriv = KBox::into_raw(b).cast() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `fpriv` came from `open` and is not used after this.
    unsafe extern "C" fn release(fpriv: *mut c_void) {
        // SAFETY: `rvio_misc_release()` in rust/miscdev_glue.c passes the
        // file's `f->fpriv`, which `rvio_misc_open()` keeps only when `open`
        // returned 0, i.e. `KBox::into_raw` of a `T::File`; the VFS calls
        // `->release` once per file, after every read, write, poll and ioctl
        // on it, and `f` is freed right after (see `# Safety`), so we own the
        // box again.
        drop(unsafe { KBox::from_raw(fpriv.cast::<T::File>()) });
    }

    /// # Safety
    ///
    /// `fpriv` came from `open` and is not released during the call.
    unsafe fn file<'a>(fpriv: *mut c_void) -> &'a T::File {
        // SAFETY: the caller guarantees that `fpriv` came from `open`, so it
        // is `KBox::into_raw` of a `T::File`, and is not released during the
        // call (see `# Safety`); the C half only ever passes it to `read`,
        // `write`, `poll` and `ioctl`, which take shared references, and to
        // `release`. So it points to a live `T::File` for the caller's call.
        unsafe { &*fpriv.cast::<T::File>() }
    }

    /// # Safety
    ///
    /// `fpriv` as for `file`; `buf` is a user pointer of `len` bytes.
    unsafe extern "C" fn read(fpriv: *mut c_void, buf: *mut c_void, len: usize) -> isize {
        let mut out = UserSlice::new(buf as usize, len).writer();
        // SAFETY: `rvio_misc_read()` in rust/miscdev_glue.c passes the open
        // file's `f->fpriv` (set from `open`), and the VFS does not call
        // `->release` while a `read` on the file runs (it holds a reference
        // to the file), which is what `file` needs.
        match T::read(unsafe { Self::file(fpriv) }, &mut out) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// As for `read`.
    unsafe extern "C" fn write(fpriv: *mut c_void, buf: *const c_void, len: usize) -> isize {
        let mut input = UserSlice::new(buf as usize, len).reader();
        // SAFETY: `rvio_misc_write()` in rust/miscdev_glue.c passes the open
        // file's `f->fpriv` (set from `open`), and the VFS does not call
        // `->release` while a `write` on the file runs (it holds a reference
        // to the file), which is what `file` needs.
        match T::write(unsafe { Self::file(fpriv) }, &mut input, len) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// As for `file`.
    unsafe extern "C" fn poll(fpriv: *mut c_void) -> c_uint {
        // SAFETY: `rvio_misc_poll()` in rust/miscdev_glue.c passes the open
        // file's `f->fpriv` (set from `open`), and the VFS does not call
        // `->release` while a `poll` on the file runs (it holds a reference
        // to the file), which is what `file` needs.
        T::poll(unsafe { Self::file(fpriv) })
    }

    /// # Safety
    ///
    /// As for `file`.
    unsafe extern "C" fn ioctl(fpriv: *mut c_void, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: `rvio_misc_ioctl()` in rust/miscdev_glue.c (also reached
        // through `compat_ptr_ioctl()`) passes the open file's `f->fpriv`
        // (set from `open`), and the VFS does not call `->release` while an
        // ioctl on the file runs (it holds a reference to the file), which
        // is what `file` needs.
        match T::ioctl(unsafe { Self::file(fpriv) }, cmd, arg) {
            Ok(n) => n as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }
}

impl<T: FileOps> Registration<T> {
    /// # Safety
    ///
    /// Called by the C half while registered (the attribute exists), with
    /// our `dev` pointer and a buffer of `len` bytes.
    unsafe extern "C" fn show(
        dev: *mut c_void,
        idx: c_uint,
        buf: *mut kernel::ffi::c_char,
        len: usize,
    ) -> isize {
        // SAFETY: while registered we hold a count of `dev`'s `Arc<T>`.
        let dev = unsafe { &*(dev as *const T) };
        // SAFETY: the C half passes a writable buffer of `len` bytes.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        let mut out = SysfsBuf::new(buf);
        dev.show(idx as usize, &mut out);
        out.len() as isize
    }
}

impl<T: FileOps> Drop for Registration<T> {
    fn drop(&mut self) {
        self.unregister();
        // SAFETY: by the type invariant we hold a reference to `m` and a
        // count of `dev`; no open can run any more (unregistered).
        unsafe {
            bindings::rvio_misc_put(self.m);
            drop(Arc::from_raw(self.dev));
        }
    }
}
