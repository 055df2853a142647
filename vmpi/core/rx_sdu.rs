// SPDX-License-Identifier: GPL-2.0

//! A received SDU's bytes: one buffer, or the payload parts of the
//! transport's receive buffers its fragments came in, in order (a message
//! reassembled without a copy, as virtio-net's mergeable receive buffers
//! become an skb's frags). A file's reader copies the parts out one after
//! the other; an in-kernel user gets one buffer ([`RxSdu::into_one`]).
//!
//! A transport's receive buffer ([`RxBuf`]) holds zeros or bytes its
//! device wrote in the whole of its capacity (`vmpi_transport_rx_buf()` in
//! include/rvio/vmpi.h): once read, it can go back to the transport as it
//! is ([`crate::buf_cache::BufCache::give_rx`]), with no zeroing, and
//! shows no other reader anything but what the device sent.

use kernel::prelude::*;

use crate::buf_cache::{self, Bytes};

/// Parts a message being reassembled may have: a 64 KiB SDU in page-sized
/// receive buffers is 16. A message in smaller parts is reassembled by
/// copying (a peer sending tiny fragments cannot make a reader's SDU a
/// long list of buffers).
pub(crate) const MAX_PARTS: usize = 32;

/// A transport's receive buffer, all of it initialized, and the length of
/// the bytes in it that are an SDU's (or a part of one).
pub(crate) struct RxBuf {
    /// INVARIANT: `buf.len() == buf.capacity()`.
    buf: Bytes,
    /// INVARIANT: at most `buf.len()`.
    len: usize,
}

impl RxBuf {
    /// `buf`, a transport's receive buffer, whose first `len` bytes are
    /// an SDU's; `Err(buf)` unless all of its capacity is its length
    /// (initialized) and `len` within it.
    pub(crate) fn new(buf: Bytes, len: usize) -> core::result::Result<Self, Bytes> {
        if buf.len() != buf.capacity() || len > buf.len() {
            return Err(buf);
        }
        // INVARIANT: both checked above.
        Ok(Self { buf, len })
    }

    /// The SDU's bytes in it.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The whole buffer, its length its capacity (to post again).
    pub(crate) fn into_whole(self) -> Bytes {
        self.buf
    }

    /// The buffer, its length the SDU's bytes.
    fn into_bytes(self) -> Bytes {
        let mut b = self.buf;
        // SAFETY: `len` is at most the length (type invariant): the bytes
        // kept stay initialized, and `u8`s need no drop.
        unsafe { b.set_len(self.len) };
        b
    }
}

/// A received SDU's bytes.
pub(crate) enum RxSdu {
    /// In one buffer of the core's.
    One(Bytes),
    /// In the transport's receive buffer it came in.
    Taken(RxBuf),
    /// In the receive buffers of its fragments' payloads.
    Parts(Parts),
}

/// Buffers whose bytes, one after the other, are one message: the
/// transport's receive buffers, then perhaps a last part copied into a
/// buffer of the core's.
pub(crate) struct Parts {
    bufs: KVec<RxBuf>,
    last: Option<Bytes>,
    /// Their bytes together.
    len: usize,
}

impl Parts {
    /// No parts.
    pub(crate) const fn new() -> Self {
        Self {
            bufs: KVec::new(),
            last: None,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bufs.is_empty() && self.last.is_none()
    }

    /// Appends `b`; `Err(Some(b))` once [`MAX_PARTS`] are there, after a
    /// copied last part, or if the list cannot grow (`Err(None)`: `b` was
    /// lost, which the room reserved first rules out).
    pub(crate) fn push(&mut self, b: RxBuf) -> core::result::Result<(), Option<RxBuf>> {
        // Room for a 64 KiB SDU in the default 16 KiB buffers at once.
        let more = if self.bufs.is_empty() { 4 } else { 1 };
        if self.last.is_some()
            || self.bufs.len() >= MAX_PARTS
            || self.bufs.reserve(more, GFP_KERNEL).is_err()
        {
            return Err(Some(b));
        }
        let n = b.len;
        // Within the room just reserved: no allocation.
        self.bufs.push(b, GFP_NOWAIT).map_err(|_| None)?;
        self.len += n;
        Ok(())
    }

    /// Appends the last part, copied into a buffer of the core's; `Err(b)`
    /// after another last part.
    pub(crate) fn push_last(&mut self, b: Bytes) -> core::result::Result<(), Bytes> {
        if self.last.is_some() {
            return Err(b);
        }
        self.len += b.len();
        self.last = Some(b);
        Ok(())
    }

    /// Frees the parts.
    pub(crate) fn clear(&mut self) {
        *self = Self::new();
    }

    /// Appends every part's bytes to `v` and frees the parts.
    pub(crate) fn move_into(&mut self, v: &mut Bytes) -> Result {
        for b in self.bufs.iter() {
            buf_cache::append(v, b.bytes(), GFP_KERNEL)?;
        }
        if let Some(b) = &self.last {
            buf_cache::append(v, b, GFP_KERNEL)?;
        }
        self.clear();
        Ok(())
    }

    /// The parts, as an SDU's; none are left here.
    pub(crate) fn take(&mut self) -> Parts {
        core::mem::replace(self, Self::new())
    }
}

impl RxSdu {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            RxSdu::One(b) => b.len(),
            RxSdu::Taken(b) => b.len,
            RxSdu::Parts(p) => p.len,
        }
    }

    /// Its bytes, in the pieces they are in.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let (bufs, last): (&[RxBuf], Option<&Bytes>) = match self {
            RxSdu::One(b) => (&[], Some(b)),
            RxSdu::Taken(b) => (core::slice::from_ref(b), None),
            RxSdu::Parts(p) => (&p.bufs[..], p.last.as_ref()),
        };
        Iterator::chain(
            bufs.iter().map(RxBuf::bytes),
            last.into_iter().map(|b| &b[..]),
        )
    }

    /// Its bytes in one buffer: its own, or a copy of its parts into a
    /// buffer from `alloc` (`Err(self)` if that fails).
    pub(crate) fn into_one(
        self,
        alloc: impl FnOnce(usize) -> Result<Bytes>,
    ) -> core::result::Result<Bytes, Self> {
        let mut p = match self {
            RxSdu::One(b) => return Ok(b),
            RxSdu::Taken(b) => return Ok(b.into_bytes()),
            RxSdu::Parts(p) => p,
        };
        let Ok(mut v) = alloc(p.len) else {
            return Err(RxSdu::Parts(p));
        };
        match p.move_into(&mut v) {
            Ok(()) => Ok(v),
            Err(_) => Err(RxSdu::Parts(p)),
        }
    }

    /// Gives each of its buffers to `rx` (a transport's receive buffer)
    /// or `free` (the core's).
    pub(crate) fn free_with(self, mut rx: impl FnMut(RxBuf), mut free: impl FnMut(Bytes)) {
        match self {
            RxSdu::One(b) => free(b),
            RxSdu::Taken(b) => rx(b),
            RxSdu::Parts(p) => {
                for b in p.bufs {
                    rx(b);
                }
                if let Some(b) = p.last {
                    free(b);
                }
            }
        }
    }
}
