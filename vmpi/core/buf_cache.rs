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
//!
//! The transport's receive buffers that SDUs were read in
//! ([`crate::rx_sdu`]) are kept apart, of one size, [`RX_KEPT_BYTES`] of
//! them at most, and go back to the transport in place of the ones the
//! core takes: a stream of large SDUs then allocates, zeroes and frees no
//! receive buffer either.

use kernel::alloc::{Flags, KVVec};
use kernel::prelude::*;

use crate::rx_sdu::RxBuf;

/// An SDU's bytes (kvmalloc: a class buffer, a page at most, is kmalloc
/// memory).
pub(crate) type Bytes = KVVec<u8>;

const MIN_SHIFT: u32 = 6;
const MAX_SHIFT: u32 = 12;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Buffers kept per class.
pub(crate) const PER_CLASS: usize = 32;
/// Bytes of receive buffers kept: half a flow's window (32 of the default
/// 16 KiB ones, 8 of 64 KiB).
pub(crate) const RX_KEPT_BYTES: usize = 512 << 10;
/// Receive buffers kept at most (of 16 KiB and more: page-sized ones are
/// not worth more).
const RX_KEPT: usize = 32;

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
    /// Kept receive buffers, `rx[..rx_count]`, all of `rx_size` bytes,
    /// each holding zeros or bytes the device wrote in all of them, its
    /// length its capacity (slots made up front, as `slots`).
    rx: KVec<Option<Bytes>>,
    rx_count: usize,
    rx_size: usize,
    /// The device is gone: no receive buffer is kept any more.
    rx_closed: bool,
}

impl BufCache {
    pub(crate) fn new() -> Result<Self> {
        let mut slots = KVec::with_capacity(CLASSES * PER_CLASS, GFP_KERNEL)?;
        for _ in 0..CLASSES * PER_CLASS {
            slots.push(None, GFP_KERNEL)?;
        }
        let mut rx = KVec::with_capacity(RX_KEPT, GFP_KERNEL)?;
        for _ in 0..RX_KEPT {
            rx.push(None, GFP_KERNEL)?;
        }
        Ok(Self {
            slots,
            count: [0; CLASSES],
            rx,
            rx_count: 0,
            rx_size: 0,
            rx_closed: false,
        })
    }

    /// Keeps `b`, a transport's receive buffer, if there is room and it has
    /// the size of the ones kept; gives it back otherwise (for the caller
    /// to free outside the lock).
    pub(crate) fn give_rx(&mut self, b: RxBuf) -> Option<Bytes> {
        let b = b.into_whole();
        let cap = b.capacity();
        let room = RX_KEPT_BYTES / cap.max(1);
        if self.rx_closed || cap == 0 || (cap != self.rx_size && self.rx_count > 0) {
            return Some(b);
        }
        let Some(slot) = self
            .rx
            .get_mut(self.rx_count)
            .filter(|_| self.rx_count < room)
        else {
            return Some(b);
        };
        *slot = Some(b);
        self.rx_count += 1;
        self.rx_size = cap;
        None
    }

    /// A kept receive buffer of `cap` bytes, its length its capacity (the
    /// transport's next one), if one waits; else one of another size that
    /// waits (the transport's size changed), to free outside the lock.
    pub(crate) fn take_rx(&mut self, cap: usize) -> core::result::Result<Bytes, Option<Bytes>> {
        let n = self.rx_count.checked_sub(1).ok_or(None)?;
        let b = self.rx.get_mut(n).and_then(Option::take).ok_or(None)?;
        self.rx_count = n;
        if b.capacity() != cap {
            return Err(Some(b));
        }
        Ok(b)
    }

    /// The device is gone: the receive buffers kept are given back (to
    /// free outside the lock), and none is kept from now on.
    pub(crate) fn close_rx(&mut self) -> KVec<Option<Bytes>> {
        self.rx_closed = true;
        self.rx_count = 0;
        core::mem::replace(&mut self.rx, KVec::new())
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
