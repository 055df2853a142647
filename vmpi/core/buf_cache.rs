// SPDX-License-Identifier: GPL-2.0

//! A device's cache of SDU buffers for reuse (as `page_pool` does for
//! pages): a small SDU's buffer comes from the cache when one of its size
//! class waits there, and a freed one goes back while the class has room.
//! In a steady stream each SDU then costs no allocation and no free.
//!
//! Classes are the powers of two from 64 to 4096 bytes (what kmalloc
//! rounds such sizes to anyway, so a class buffer costs no more memory
//! than an exact one); bigger SDUs are allocated and freed as before. Each
//! class keeps at most [`PER_CLASS`] buffers, so an idle device holds on
//! to at most 32 × (64 + 128 + ... + 4096) bytes, about 254 KiB. (A cap on
//! the whole cache was tried: buffers of the sizes used first filled it,
//! and a stream of bigger SDUs then found no room and allocated each.)

use kernel::alloc::{Flags, KVVec};
use kernel::prelude::*;

/// An SDU's bytes (kvmalloc: a class buffer, a page at most, is kmalloc
/// memory).
pub(crate) type Bytes = KVVec<u8>;

const MIN_SHIFT: u32 = 6;
const MAX_SHIFT: u32 = 12;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Buffers kept per class.
pub(crate) const PER_CLASS: usize = 32;

/// The class of a buffer for `len` bytes, if it is small enough.
fn class_of(len: usize) -> Option<usize> {
    let cap = len.max(1 << MIN_SHIFT).checked_next_power_of_two()?;
    let shift = cap.trailing_zeros();
    (shift <= MAX_SHIFT).then(|| (shift - MIN_SHIFT) as usize)
}

fn class_size(class: usize) -> usize {
    1 << (MIN_SHIFT as usize + class)
}

/// An empty buffer with room for `len` bytes: class-sized when small, so
/// that it can be kept when freed. With `GFP_ATOMIC` (any context) it is
/// kmalloc memory only: kvmalloc falls back to vmalloc only when it may
/// sleep.
pub(crate) fn alloc(len: usize, flags: Flags) -> Result<Bytes> {
    let cap = class_of(len).map_or(len, class_size);
    Ok(Bytes::with_capacity(cap, flags)?)
}

/// Appends `src` to `v` with one `memcpy` (6.12's `Vec::extend_from_slice`
/// clones byte by byte: 8% of a 64 KiB stream's CPU time went to that loop).
pub(crate) fn append(v: &mut Bytes, src: &[u8], flags: Flags) -> Result {
    v.reserve(src.len(), flags)?;
    let len = v.len();
    // SAFETY: `reserve` made room for `src.len()` more bytes after the
    // first `len`, which `src` (another allocation: `v` is borrowed
    // mutably) cannot overlap; `u8` has no invalid values, so the bytes
    // copied are initialized.
    unsafe {
        core::ptr::copy_nonoverlapping(src.as_ptr(), v.as_mut_ptr().add(len), src.len());
        v.set_len(len + src.len());
    }
    Ok(())
}

/// The cache (callers lock it).
pub(crate) struct BufCache {
    /// Per class, `slots[class * PER_CLASS..][..count[class]]` are kept
    /// buffers (slots are made up front: keeping one never allocates).
    slots: KVec<Option<Bytes>>,
    count: [usize; CLASSES],
}

impl BufCache {
    pub(crate) fn new() -> Result<Self> {
        let mut slots = KVec::with_capacity(CLASSES * PER_CLASS, GFP_KERNEL)?;
        for _ in 0..CLASSES * PER_CLASS {
            slots.push(None, GFP_KERNEL)?;
        }
        Ok(Self {
            slots,
            count: [0; CLASSES],
        })
    }

    /// A kept empty buffer with room for `len` bytes, if one waits (else
    /// [`alloc`] one, outside the cache's lock).
    pub(crate) fn take(&mut self, len: usize) -> Option<Bytes> {
        let class = class_of(len)?;
        let n = self.count[class].checked_sub(1)?;
        let b = self
            .slots
            .get_mut(class * PER_CLASS + n)
            .and_then(Option::take)?;
        self.count[class] = n;
        Some(b)
    }

    /// Keeps `b` for reuse if it is a class buffer and there is room;
    /// gives it back otherwise (for the caller to free outside the lock).
    pub(crate) fn give(&mut self, mut b: Bytes) -> Option<Bytes> {
        let cap = b.capacity();
        let Some(class) = class_of(cap).filter(|&c| class_size(c) == cap) else {
            return Some(b);
        };
        let n = self.count[class];
        if n >= PER_CLASS {
            return Some(b);
        }
        // SAFETY: 0 is within the capacity, and `u8`s need no drop.
        unsafe { b.set_len(0) };
        let slot = match self.slots.get_mut(class * PER_CLASS + n) {
            Some(slot) => slot,
            None => return Some(b),
        };
        *slot = Some(b);
        self.count[class] = n + 1;
        None
    }
}
