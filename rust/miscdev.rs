// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction for a misc char device (the Rust half; the C half is
//! `rust/miscdev_glue.c`, which owns the `struct miscdevice`, the file
//! operations and the wait queues). A device type implements [`FileOps`];
//! its read, write and ioctl never block (they return `EAGAIN`), and the C
//! half blocks a blocking caller until the file's next wake (its
//! [`FileWaker`], or the device's [`Waker`] for every file), so `poll(2)`
//! and blocking calls agree.
//!
//! Include with `#[path = ".../rust/miscdev.rs"] pub mod miscdev;` and
//! `#[path = ".../rust/sysfs_buf.rs"] pub mod sysfs_buf;` next to `mod
//! bindings;`, and link `rust/miscdev_glue.o` into the module.

use crate::bindings;
use core::marker::PhantomData;
use kernel::alloc::KVVec;
use kernel::error::{from_err_ptr, from_result};
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

    /// A file is opened on `dev`; `waker` wakes it alone.
    fn open(dev: ArcBorrow<'_, Self>, waker: FileWaker) -> Result<Self::File>;
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
    /// The write-only (root) sysfs attributes of the device, by name.
    const STORE_ATTRS: &'static [&'static CStr] = &[];
    /// Takes a write of `input` to attribute `idx` of
    /// [`FileOps::STORE_ATTRS`] (the whole write, newline included).
    fn store(&self, _idx: usize, _input: &[u8]) -> Result {
        Err(EINVAL)
    }
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

/// The C half's callback table for `T`: one `const` per type, which the C
/// half keeps a pointer to (it is static in the module that links the C
/// half, and open files pin that module through `fops.owner`).
struct VTable<T: FileOps>(PhantomData<T>);

impl<T: FileOps> VTable<T> {
    const OPS: bindings::rvio_misc_ops = bindings::rvio_misc_ops {
        open: Some(Registration::<T>::open),
        release: Some(Registration::<T>::release),
        read: Some(Registration::<T>::read),
        write: Some(Registration::<T>::write),
        poll: Some(Registration::<T>::poll),
        ioctl: Some(Registration::<T>::ioctl),
        show: Some(Registration::<T>::show),
        store: Some(Registration::<T>::store),
    };
}

/// A registered misc device of `T`: `/dev/<name>` exists while this lives.
///
/// # Invariants
///
/// `m` is a registration of the C half this value holds a reference to;
/// `dev` is the pointer of an `Arc<T>` this value holds one count of.
pub struct Registration<T: FileOps> {
    m: *mut bindings::rvio_misc,
    dev: *const T,
    _attrs: KVec<*const kernel::ffi::c_char>,
    _t: PhantomData<T>,
}

// SAFETY: the pointers are used from any thread under the C half's and
// `T`'s own locking; `T: Send + Sync`.
unsafe impl<T: FileOps> Send for Registration<T> {}
// SAFETY: the one `&self` method, `waker`, takes a reference to `m` with
// `rvio_misc_get()` (`kref_get()`, atomic), which may run concurrently.
unsafe impl<T: FileOps> Sync for Registration<T> {}

impl<T: FileOps> Registration<T> {
    /// Registers `/dev/<name>` for `dev`.
    pub fn new(name: &CStr, dev: Arc<T>) -> Result<Self> {
        // Both lists, each NULL-terminated, in one vector.
        let mut attrs = KVec::with_capacity(T::ATTRS.len() + T::STORE_ATTRS.len() + 2, GFP_KERNEL)?;
        for a in T::ATTRS {
            attrs.push(a.as_char_ptr(), GFP_KERNEL)?;
        }
        attrs.push(core::ptr::null(), GFP_KERNEL)?;
        for a in T::STORE_ATTRS {
            attrs.push(a.as_char_ptr(), GFP_KERNEL)?;
        }
        attrs.push(core::ptr::null(), GFP_KERNEL)?;
        let wattrs = attrs[T::ATTRS.len() + 1..].as_ptr();
        let dev = Arc::into_raw(dev);
        // SAFETY: `VTable::<T>::OPS` is a static table (a promoted
        // constant); `attrs` and `wattrs` (each NULL-terminated, static
        // names) and `dev` stay
        // valid while registered (dropped after `rvio_misc_unregister`);
        // `name` is NUL-terminated. The C half returns an object or an
        // `ERR_PTR()` (rust/miscdev_glue.h).
        let m = from_err_ptr(unsafe {
            bindings::rvio_misc_register(
                name.as_char_ptr(),
                &VTable::<T>::OPS,
                dev as *mut c_void,
                attrs.as_ptr(),
                wattrs,
            )
        });
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                // SAFETY: from `into_raw` above, not handed to anyone (the
                // C half failed).
                drop(unsafe { Arc::from_raw(dev) });
                return Err(e);
            }
        };
        // INVARIANT: `m` is registered with one reference for us; we hold
        // `dev`'s count.
        Ok(Self {
            m,
            dev,
            _attrs: attrs,
            _t: PhantomData,
        })
    }

    /// What wakes the device's blocked callers and pollers; it may outlive
    /// the registration (waking then is harmless).
    pub fn waker(&self) -> Waker {
        // SAFETY: by the type invariant we hold a reference to `m`, so it
        // is alive for `rvio_misc_get()` to take another.
        unsafe { bindings::rvio_misc_get(self.m) };
        // INVARIANT: the reference taken just now.
        Waker { m: self.m }
    }

    /// # Safety
    ///
    /// Called by the C half, while registered, with our `dev` pointer.
    unsafe extern "C" fn open(
        dev: *mut c_void,
        f: *mut bindings::rvio_misc_file,
        fpriv: *mut *mut c_void,
    ) -> c_int {
        // SAFETY: while registered we hold a count of the `Arc<T>` whose
        // pointer `dev` is, so it is alive for the call.
        let dev = unsafe { ArcBorrow::from_raw(dev as *const T) };
        from_result(|| {
            // SAFETY: `rvio_misc_open()` in rust/miscdev_glue.c passes the
            // file it allocated, whose reference it holds for the call.
            let waker = unsafe { FileWaker::new(f) };
            let file = KBox::new(T::open(dev, waker)?, GFP_KERNEL)?;
            // SAFETY: `rvio_misc_open()` in rust/miscdev_glue.c passes
            // `&f->fpriv` of the file it allocated, valid for a write.
            unsafe { *fpriv = KBox::into_raw(file).cast() };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// `fpriv` came from `open` and is not used after this.
    unsafe extern "C" fn release(fpriv: *mut c_void) {
        // SAFETY: `rvio_misc_release()` in rust/miscdev_glue.c passes the
        // file's `f->fpriv`, which `rvio_misc_open()` keeps only when `open`
        // returned 0, i.e. `KBox::into_raw` of a `T::File`; the VFS calls
        // `->release` once per file, after every read, write, poll and ioctl
        // on it, and `fpriv` is not used after (see `# Safety`; the C file
        // may live on for a `FileWaker`, without it), so we own the box
        // again.
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
        let file = unsafe { Self::file(fpriv) };
        from_result(|| Ok(T::read(file, &mut out)? as isize))
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
        let file = unsafe { Self::file(fpriv) };
        from_result(|| Ok(T::write(file, &mut input, len)? as isize))
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
        let file = unsafe { Self::file(fpriv) };
        from_result(|| T::ioctl(file, cmd, arg))
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

impl<T: FileOps> Registration<T> {
    /// # Safety
    ///
    /// As for `show`, with `len` bytes readable at `buf`.
    unsafe extern "C" fn store(
        dev: *mut c_void,
        idx: c_uint,
        buf: *const kernel::ffi::c_char,
        len: usize,
    ) -> c_int {
        // SAFETY: while registered we hold a count of `dev`'s `Arc<T>`.
        let dev = unsafe { &*(dev as *const T) };
        // SAFETY: the C half passes the `len` bytes sysfs was written.
        let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
        from_result(|| dev.store(idx as usize, input).map(|()| 0))
    }
}

impl<T: FileOps> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `m` is registered; this is the one
        // unregistration. `rvio_misc_unregister()` removes the node and its
        // attributes (misc_deregister(): no `open` or `show` runs after it
        // returns) and wakes blocked callers.
        unsafe { bindings::rvio_misc_unregister(self.m) };
        // SAFETY: by the type invariant we hold a reference to `m` and a
        // count of `dev`, given back once here; nothing in the C half uses
        // `dev` any more (only `open` and `show` did).
        unsafe {
            bindings::rvio_misc_put(self.m);
            drop(Arc::from_raw(self.dev));
        }
    }
}

/// Wakes a misc device's blocked readers, writers and pollers to look
/// again ([`Registration::waker`]).
///
/// # Invariants
///
/// `m` is an object of the C half this value holds a reference to.
pub struct Waker {
    m: *mut bindings::rvio_misc,
}

// SAFETY: `rvio_misc_wake()` and `rvio_misc_put()` may be called from any
// thread in process context (a spinlock, atomics, wait queue wake-ups, a
// kref).
unsafe impl Send for Waker {}
// SAFETY: `&Waker` only allows `wake`, which may run concurrently (as above).
unsafe impl Sync for Waker {}

impl Waker {
    /// Every file's blocked callers and pollers look again (in process
    /// context).
    pub fn wake(&self) {
        // SAFETY: by the type invariant we hold a reference to `m`.
        unsafe { bindings::rvio_misc_wake(self.m) };
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold a reference, given back once.
        unsafe { bindings::rvio_misc_put(self.m) };
    }
}

/// Wakes one open file's blocked callers and pollers
/// (`rvio_misc_file_wake()`); it may outlive the file (waking then is
/// harmless).
///
/// # Invariants
///
/// `f` is a file of the C half this value holds a reference to.
pub struct FileWaker {
    f: *mut bindings::rvio_misc_file,
}

// SAFETY: `rvio_misc_file_wake()` and `rvio_misc_file_put()` may be called
// from any thread (an atomic, a wait queue wake-up, a kref).
unsafe impl Send for FileWaker {}
// SAFETY: `&FileWaker` only allows `wake`, which may run concurrently (as
// above).
unsafe impl Sync for FileWaker {}

impl FileWaker {
    /// # Safety
    ///
    /// `f` is a file of the C half, alive for the call.
    unsafe fn new(f: *mut bindings::rvio_misc_file) -> Self {
        // SAFETY: `f` is alive (the caller guarantees it) for
        // `rvio_misc_file_get()` to take a reference.
        unsafe { bindings::rvio_misc_file_get(f) };
        // INVARIANT: the reference taken just now.
        Self { f }
    }

    /// The file's blocked callers and pollers look again.
    pub fn wake(&self) {
        // SAFETY: by the type invariant we hold a reference to `f`.
        unsafe { bindings::rvio_misc_file_wake(self.f) };
    }
}

impl Drop for FileWaker {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we hold a reference, given back once.
        unsafe { bindings::rvio_misc_file_put(self.f) };
    }
}
