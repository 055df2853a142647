// SPDX-License-Identifier: GPL-2.0

//! Safe abstraction for a sysfs directory `/sys/kernel/<name>/` of
//! attributes that a type shows and stores by index (the Rust half; the C
//! half is `rust/sysfs_dir_glue.c`, which owns the kobject and the
//! attributes). The 6.12 `kernel` crate has no sysfs.
//!
//! Include with `#[path = ".../rust/sysfs_dir.rs"] pub mod sysfs_dir;` and
//! `#[path = ".../rust/sysfs_buf.rs"] pub mod sysfs_buf;` next to `mod
//! bindings;`, and link `rust/sysfs_dir_glue.o` into the module.

use crate::bindings;
use crate::sysfs_buf::SysfsBuf;
use core::ptr::NonNull;
use kernel::error::to_result;
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};

/// Who may do what with an attribute.
#[derive(Clone, Copy)]
pub enum Mode {
    /// Read by anyone (0444).
    ReadOnly,
    /// Read by root (0400).
    RootReadOnly,
    /// Written by root (0200).
    WriteOnly,
    /// Read by anyone, written by root (0644).
    ReadWrite,
}

impl Mode {
    const fn bits(self) -> u16 {
        match self {
            Mode::ReadOnly => 0o444,
            Mode::RootReadOnly => 0o400,
            Mode::WriteOnly => 0o200,
            Mode::ReadWrite => 0o644,
        }
    }
}

/// The attributes of a directory and what they do.
pub trait Attrs: Send + Sync + Sized {
    /// The attributes' names and modes; an index into it names one.
    const ATTRS: &'static [(&'static CStr, Mode)];
    /// Shows readable attribute `idx` (values and newlines).
    fn show(&self, idx: usize, out: &mut SysfsBuf<'_>);
    /// Stores what was written to writable attribute `idx`.
    fn store(this: ArcBorrow<'_, Self>, idx: usize, input: &[u8]) -> Result;
}

/// A directory `/sys/kernel/<name>/` for a `T`; removed when dropped.
///
/// # Invariants
///
/// `d` is a directory of the C half created with `owner`'s pointer as its
/// private data; `names` and `modes` are the arrays it was given.
pub struct Dir<T: Attrs> {
    d: NonNull<bindings::rvio_sysfs_dir>,
    owner: Arc<T>,
    _names: KVec<*const c_char>,
    _modes: KVec<u16>,
}

// SAFETY: the C half may be used from any thread; `T: Send + Sync`.
unsafe impl<T: Attrs> Send for Dir<T> {}
// SAFETY: the only `&self` method, `owner`, hands out `&Arc<T>`, which is
// `Sync` because `T: Send + Sync` (`Attrs`); `d` is used only by `Drop`
// (`&mut self`), and `_names` (pointers to `'static` names) and `_modes`
// are never read through `&Dir`, so sharing a `&Dir` between threads
// gives no concurrent access to them.
unsafe impl<T: Attrs> Sync for Dir<T> {}

impl<T: Attrs> Dir<T> {
    /// Creates `/sys/kernel/<name>/` for `owner`.
    pub fn new(name: &CStr, owner: Arc<T>) -> Result<Self> {
        let ops = bindings::rvio_sysfs_dir_ops {
            show: Some(Self::show),
            store: Some(Self::store),
        };
        let mut names = KVec::with_capacity(T::ATTRS.len(), GFP_KERNEL)?;
        let mut modes = KVec::with_capacity(T::ATTRS.len(), GFP_KERNEL)?;
        for (n, m) in T::ATTRS {
            names.push(n.as_char_ptr(), GFP_KERNEL)?;
            modes.push(m.bits(), GFP_KERNEL)?;
        }
        let mut err: c_int = 0;
        // SAFETY: `ops` is copied; `names`, `modes` and `owner` (whose
        // pointer is the private data) live in the result, so as long as
        // the directory; `name` is NUL-terminated.
        let d = unsafe {
            bindings::rvio_sysfs_dir_create(
                name.as_char_ptr(),
                &ops,
                &*owner as *const T as *mut c_void,
                names.as_ptr(),
                modes.as_ptr(),
                T::ATTRS.len() as c_uint,
                &mut err,
            )
        };
        let Some(d) = NonNull::new(d) else {
            to_result(err)?;
            return Err(ENOMEM);
        };
        // INVARIANT: created just now with `owner`'s pointer.
        Ok(Self {
            d,
            owner,
            _names: names,
            _modes: modes,
        })
    }

    /// The owner.
    pub fn owner(&self) -> &Arc<T> {
        &self.owner
    }

    /// # Safety
    ///
    /// Called by the C half while the directory exists, with `owner`'s
    /// pointer and a buffer of `len` bytes.
    unsafe extern "C" fn show(
        owner: *mut c_void,
        idx: c_uint,
        buf: *mut c_char,
        len: usize,
    ) -> isize {
        // SAFETY: the directory holds an `Arc` of the owner.
        let owner = unsafe { &*(owner as *const T) };
        // SAFETY: the C half passes a writable buffer of `len` bytes.
        let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        let mut out = SysfsBuf::new(buf);
        owner.show(idx as usize, &mut out);
        out.len() as isize
    }

    /// # Safety
    ///
    /// Called by the C half while the directory exists, with `owner`'s
    /// pointer and `len` readable bytes at `buf`.
    unsafe extern "C" fn store(
        owner: *mut c_void,
        idx: c_uint,
        buf: *const c_char,
        len: usize,
    ) -> c_int {
        // SAFETY: the directory holds a count of the owner's `Arc`.
        let owner = unsafe { ArcBorrow::from_raw(owner as *const T) };
        // SAFETY: the C half passes `len` readable bytes (sysfs's copy of
        // the write).
        let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
        match T::store(owner, idx as usize, input) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }
}

impl<T: Attrs> Drop for Dir<T> {
    fn drop(&mut self) {
        // SAFETY: created by `new` (type invariant); after this no show or
        // store runs, so `owner` may go.
        unsafe { bindings::rvio_sysfs_dir_destroy(self.d.as_ptr()) };
    }
}
