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
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{from_err_ptr, from_result};
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
    /// The attributes whose text may be longer than a page (indices into
    /// [`Attrs::ATTRS`]). Each read(2) of one gets a page of it at most:
    /// [`Attrs::show`] renders the whole text and the page asked for is
    /// kept, so a text that changes between a reader's pages may be read
    /// torn. Each write(2) of less than a page is one [`Attrs::store`]
    /// (a longer one fails `E2BIG`).
    const LARGE: &'static [usize] = &[];
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
/// private data.
pub struct Dir<T: Attrs> {
    d: NonNull<bindings::rvio_sysfs_dir>,
    owner: Arc<T>,
}

// SAFETY: the C half may be used from any thread; `T: Send + Sync`.
unsafe impl<T: Attrs> Send for Dir<T> {}
// SAFETY: the only `&self` method, `owner`, hands out `&Arc<T>`, which is
// `Sync` because `T: Send + Sync` (`Attrs`); `d` is used only by `Drop`
// (`&mut self`), so sharing a `&Dir` between threads gives no concurrent
// access to it.
unsafe impl<T: Attrs> Sync for Dir<T> {}

impl<T: Attrs> Dir<T> {
    /// Creates `/sys/kernel/<name>/` for `owner`.
    pub fn new(name: &CStr, owner: Arc<T>) -> Result<Self> {
        // SAFETY: the table and the names and modes it points to are
        // constants of `T`'s type, so they outlive the directory; `owner`
        // (whose pointer is the private data) lives in the result, so as
        // long as the directory; `name` is NUL-terminated (the kobject
        // copies it).
        let d = from_err_ptr(unsafe {
            bindings::rvio_sysfs_dir_create(
                name.as_char_ptr(),
                VTable::<T>::build(),
                &*owner as *const T as *mut c_void,
            )
        })?;
        let d = NonNull::new(d).ok_or(ENOMEM)?;
        // INVARIANT: created just now with `owner`'s pointer.
        Ok(Self { d, owner })
    }

    /// The owner.
    pub fn owner(&self) -> &Arc<T> {
        &self.owner
    }
}

/// The most attributes a directory has.
const MAX_ATTRS: usize = bindings::RVIO_SYSFS_DIR_MAX_ATTRS as usize;

/// The C half's table for `T`'s directories: one constant per type, as
/// `MiscdeviceVTable<T>` in upstream's `rust/kernel/miscdevice.rs`.
struct VTable<T: Attrs>(PhantomData<T>);

impl<T: Attrs> VTable<T> {
    /// The names of `T::ATTRS` as C strings; `rvio_sysfs_dir_create()`
    /// refuses more than [`MAX_ATTRS`] attributes.
    const NAMES: [*const c_char; MAX_ATTRS] = {
        let mut names = [core::ptr::null(); MAX_ATTRS];
        let mut i = 0;
        while i < T::ATTRS.len() && i < MAX_ATTRS {
            names[i] = T::ATTRS[i].0.as_char_ptr();
            i += 1;
        }
        names
    };

    /// The modes of `T::ATTRS`.
    const MODES: [u16; MAX_ATTRS] = {
        let mut modes = [0; MAX_ATTRS];
        let mut i = 0;
        while i < T::ATTRS.len() && i < MAX_ATTRS {
            modes[i] = T::ATTRS[i].1.bits();
            i += 1;
        }
        modes
    };

    /// `T::LARGE` as a bit per index (an index past the attributes does
    /// not build).
    const LARGE: u32 = {
        let mut bits = 0u32;
        let mut i = 0;
        while i < T::LARGE.len() {
            assert!(
                T::LARGE[i] < T::ATTRS.len(),
                "a LARGE index names no attribute"
            );
            bits |= 1 << T::LARGE[i];
            i += 1;
        }
        bits
    };

    const VTABLE: bindings::rvio_sysfs_dir_type = bindings::rvio_sysfs_dir_type {
        show: Some(Self::show),
        store: Some(Self::store),
        names: Self::build_names().as_ptr(),
        modes: Self::build_modes().as_ptr(),
        n: T::ATTRS.len() as c_uint,
        large: Self::LARGE,
    };

    const fn build_names() -> &'static [*const c_char; MAX_ATTRS] {
        &Self::NAMES
    }

    const fn build_modes() -> &'static [u16; MAX_ATTRS] {
        &Self::MODES
    }

    const fn build() -> &'static bindings::rvio_sysfs_dir_type {
        &Self::VTABLE
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
        skip: bindings::loff_t,
    ) -> isize {
        from_result(|| {
            let skip = usize::try_from(skip).map_err(|_| EINVAL)?;
            // SAFETY: `rvio_sysfs_dir_show()` (and `_bin_read()`) in
            // rust/sysfs_dir_glue.c passes the private data `Dir::new` gave
            // `rvio_sysfs_dir_create()`, `owner`'s pointer, and runs only
            // until `rvio_sysfs_dir_destroy()` (from `Dir::drop`, before the
            // `Dir` drops its `Arc`) removed the files; so the owner is
            // alive.
            let owner = unsafe { &*(owner as *const T) };
            // SAFETY: `rvio_sysfs_dir_show()` passes sysfs's page buffer and
            // `PAGE_SIZE` as `len`, `rvio_sysfs_dir_bin_read()` kernfs's
            // buffer of the read and its length (at most a page): writable
            // for `len` bytes, and ours during the call.
            let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
            let mut out = SysfsBuf::window(buf, skip);
            owner.show(idx as usize, &mut out);
            Ok(out.len() as isize)
        })
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
        from_result(|| {
            // SAFETY: `rvio_sysfs_dir_store()` (and `_bin_write()`) in
            // rust/sysfs_dir_glue.c passes `owner`'s pointer, the private
            // data `Dir::new` gave `rvio_sysfs_dir_create()`, from the
            // `Arc<T>` the `Dir` holds until after `rvio_sysfs_dir_destroy()`
            // (in `Dir::drop`) removed the files, so the `Arc` has a count
            // for the whole call.
            let owner = unsafe { ArcBorrow::from_raw(owner as *const T) };
            // SAFETY: `rvio_sysfs_dir_store()` passes sysfs's copy of the
            // write, `len` readable bytes, valid during the call.
            let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
            T::store(owner, idx as usize, input)?;
            Ok(0)
        })
    }
}

impl<T: Attrs> Drop for Dir<T> {
    fn drop(&mut self) {
        // SAFETY: created by `new` (type invariant); after this no show or
        // store runs, so `owner` may go.
        unsafe { bindings::rvio_sysfs_dir_destroy(self.d.as_ptr()) };
    }
}
