// SPDX-License-Identifier: GPL-2.0

//! Posted receives (`docs/vmpi-protocol.md` section 5, "A posted
//! receive"): a driver posts empty buffers on its copyq ahead of time, as
//! a NIC's driver posts receive buffers (and Xen netback's guest-to-guest
//! copy targets the receiver's posted rx requests). The device keeps them;
//! when the switch delivers a grant to the driver's domain
//! (`vmpi_port_deliver()`), the device copies the frame from the sender's
//! pages straight into the smallest free buffer that holds it, finishes
//! the grant and uses the chain with a [`Delivery`] header in front of the
//! frame. No `ENVELOPE` message and no copy request cross the rings: the
//! frame reaches the receiver with one work pass of its device.
//!
//! [`CopyAsk`] parses a copyq chain (a copy request or a posted receive);
//! [`PostedPool`] is the device's book of one driver's posted buffers and
//! of the deliveries waiting for its pass, oldest first.

use super::grant::{CopyRefusal, CopyRequest, Handle, COPY_REQ_LEN, STATUS_LEN};
use super::le16;
use super::le32;
use super::le64;
use super::msg::{Meta, ETH_HLEN, MAX_FRAME, META_LEN};

/// Copy request flag, alone: a posted receive (handle and offset 0, `len`
/// the buffer's room).
pub const COPY_POSTED: u16 = 4;
/// Length of the delivery header the device writes at the start of a
/// posted receive's device-writable bytes.
pub const DELIVERY_LEN: usize = 32;
/// Posted receives of one driver the device holds at once; one more is
/// answered `TOO_MANY`.
pub const MAX_POSTED: usize = 64;

/// What a copyq chain asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyAsk {
    /// A copy from a grant, and the receiver's room.
    Copy(CopyRequest, usize),
    /// A posted receive with room for a frame of this many bytes.
    Post(u32),
    /// A posted receive of 0 bytes: give back every posted receive no
    /// delivery is reserved for (status `GONE`); the driver's user is
    /// going away.
    Cancel,
}

impl CopyAsk {
    /// Parses a copyq chain: `req` is its device-readable bytes (all of
    /// them), `writable` its device-writable byte count. A posted receive
    /// has flags exactly [`COPY_POSTED`], handle and offset 0, `len` of
    /// at least [`ETH_HLEN`] and at most [`MAX_FRAME`], and room for the
    /// delivery header, `len` bytes and the status; anything else with
    /// [`COPY_POSTED`] set is [`CopyRefusal::BadRequest`]. Other chains
    /// are [`CopyRequest::parse`]'s.
    pub fn parse(req: &[u8], writable: usize) -> Result<Self, CopyRefusal> {
        if writable < STATUS_LEN {
            return Err(CopyRefusal::NoStatus);
        }
        if req.len() != COPY_REQ_LEN || le16(req, 16) & COPY_POSTED == 0 {
            return CopyRequest::parse(req, writable).map(|(r, room)| CopyAsk::Copy(r, room));
        }
        let len = le32(req, 12);
        let form = le16(req, 16) == COPY_POSTED
            && le16(req, 18) == 0
            && le64(req, 0) == 0
            && le32(req, 8) == 0;
        if form && len == 0 && writable == STATUS_LEN {
            return Ok(CopyAsk::Cancel);
        }
        let ok = form
            && (ETH_HLEN..=MAX_FRAME).contains(&(len as usize))
            && writable >= DELIVERY_LEN + len as usize + STATUS_LEN;
        if !ok {
            return Err(CopyRefusal::BadRequest);
        }
        Ok(CopyAsk::Post(len))
    }

    /// The 20 bytes of a posted receive of `room` bytes (0: a cancel).
    pub fn post_request(room: u32) -> [u8; COPY_REQ_LEN] {
        let mut b = [0u8; COPY_REQ_LEN];
        b[12..16].copy_from_slice(&room.to_le_bytes());
        b[16..18].copy_from_slice(&COPY_POSTED.to_le_bytes());
        b
    }
}

/// What the device writes in front of a frame delivered into a posted
/// receive.
///
/// | offset | type | field |
/// |---|---|---|
/// | 0 | le64 | `handle`: the grant the frame came from (finished) |
/// | 8 | le16 | `src_domain` |
/// | 10 | le16 | reserved, 0 |
/// | 12 | le32 | `frame_len` |
/// | 16 | 12 bytes | `meta` (`struct virtio_net_hdr_v1`) |
/// | 28 | le32 | reserved, 0 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The grant.
    pub handle: Handle,
    /// The granting domain.
    pub src_domain: u16,
    /// The frame's length.
    pub frame_len: u32,
    /// The frame's offloads, as the switch checked them.
    pub meta: Meta,
}

impl Delivery {
    /// The header on the wire.
    pub fn encode(&self) -> [u8; DELIVERY_LEN] {
        let mut b = [0u8; DELIVERY_LEN];
        b[..8].copy_from_slice(&self.handle.0.to_le_bytes());
        b[8..10].copy_from_slice(&self.src_domain.to_le_bytes());
        b[12..16].copy_from_slice(&self.frame_len.to_le_bytes());
        b[16..16 + META_LEN].copy_from_slice(&self.meta.encode());
        b
    }

    /// Parses a delivery header for a posted receive of `room` bytes: the
    /// driver trusts no more than it checks (reserved bytes 0, a frame
    /// that fits, offloads that fit the frame).
    pub fn parse(b: &[u8], room: u32) -> Option<Self> {
        if b.len() != DELIVERY_LEN || le16(b, 10) != 0 || le32(b, 28) != 0 {
            return None;
        }
        let d = Self {
            handle: Handle(le64(b, 0)),
            src_domain: le16(b, 8),
            frame_len: le32(b, 12),
            meta: Meta::parse(&b[16..16 + META_LEN]).ok()?,
        };
        let len = d.frame_len as usize;
        if !(ETH_HLEN..=MAX_FRAME).contains(&len)
            || d.frame_len > room
            || d.meta.check(len).is_err()
        {
            return None;
        }
        Some(d)
    }

    /// The copy the device makes for it: the whole frame, finishing the
    /// grant.
    pub fn request(&self) -> CopyRequest {
        CopyRequest {
            handle: self.handle,
            offset: 0,
            len: self.frame_len,
            finish: true,
            discard: false,
        }
    }
}

/// Why a posted receive was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    /// `N` held already: answered `TOO_MANY`.
    TooMany,
}

/// The posted receives of one driver (`N` at most, `N` <= 256) and the
/// deliveries waiting for its device's pass. A slot is free, posted
/// (`room` > 0) or reserved for a delivery; deliveries leave in the order
/// they were reserved, so frames of one sender arrive in order.
///
/// The pool takes no lock; its owner serialises the calls (the device's
/// grants spinlock: reservations come from other devices' passes). It
/// keeps no chain: the owner keeps each slot's descriptors by slot
/// number.
pub struct PostedPool<const N: usize> {
    /// A slot's room; 0: free.
    room: [u32; N],
    reserved: [bool; N],
    /// Reserved slots and their deliveries, oldest first, from `head`.
    fifo: [(u8, Option<Delivery>); N],
    head: usize,
    len: usize,
    /// Slots not free.
    held: usize,
}

impl<const N: usize> Default for PostedPool<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PostedPool<N> {
    const OK: () = assert!(N > 0 && N <= 256, "slots are numbered in a u8");

    /// An empty pool.
    pub const fn new() -> Self {
        let () = Self::OK;
        Self {
            room: [0; N],
            reserved: [false; N],
            fifo: [(0, None); N],
            head: 0,
            len: 0,
            held: 0,
        }
    }

    /// Slots held (posted or reserved).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Posted slots free for a delivery.
    pub fn free(&self) -> usize {
        self.held - self.len
    }

    /// Keeps a posted receive of `room` bytes (checked by
    /// [`CopyAsk::parse`]: not 0): the slot its chain is kept by.
    pub fn post(&mut self, room: u32) -> Result<usize, PostError> {
        let i = self
            .room
            .iter()
            .position(|&r| r == 0)
            .ok_or(PostError::TooMany)?;
        self.room[i] = room.max(1);
        self.reserved[i] = false;
        self.held += 1;
        Ok(i)
    }

    /// Reserves the smallest free posted slot that holds `d`'s frame for
    /// it, queued after the deliveries before it; `false` if none does
    /// (the caller tells the driver another way).
    pub fn reserve(&mut self, d: Delivery) -> bool {
        let mut best: Option<usize> = None;
        for i in 0..N {
            let r = self.room[i];
            if r < d.frame_len || self.reserved[i] {
                continue;
            }
            best = match best {
                Some(b) if self.room[b] <= r => Some(b),
                _ => Some(i),
            };
        }
        let Some(i) = best else {
            return false;
        };
        self.reserved[i] = true;
        // At most one entry per reserved slot: the FIFO has room.
        self.fifo[(self.head + self.len) % N] = (i as u8, Some(d));
        self.len += 1;
        true
    }

    /// The oldest delivery, its slot and the slot's room; the slot is
    /// free from now on (the caller uses its chain).
    pub fn take_next(&mut self) -> Option<(usize, u32, Delivery)> {
        while self.len > 0 {
            let (i, d) = self.fifo[self.head];
            self.fifo[self.head].1 = None;
            self.head = (self.head + 1) % N;
            self.len -= 1;
            let i = usize::from(i);
            if let Some(d) = d {
                let room = self.room[i];
                self.room[i] = 0;
                self.reserved[i] = false;
                self.held -= 1;
                return Some((i, room, d));
            }
        }
        None
    }

    /// Frees every posted slot no delivery is reserved for; `f` gets each
    /// (the caller gives its chain back).
    pub fn cancel(&mut self, mut f: impl FnMut(usize)) {
        for i in 0..N {
            if self.room[i] != 0 && !self.reserved[i] {
                self.room[i] = 0;
                self.held -= 1;
                f(i);
            }
        }
    }

    /// The driver reset its device: its chains are gone. Every slot is
    /// free, and deliveries still waiting are dropped: the caller drains
    /// them with [`PostedPool::take_next`] first (and ends their grants),
    /// under the same lock as this call.
    pub fn clear(&mut self) {
        // In place: the pool is kilobytes, not for the stack.
        self.room.fill(0);
        self.reserved.fill(false);
        for e in self.fifo.iter_mut() {
            e.1 = None;
        }
        self.head = 0;
        self.len = 0;
        self.held = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta::parse(&[0; META_LEN]).unwrap()
    }

    fn delivery(len: u32, h: u64) -> Delivery {
        Delivery {
            handle: Handle(h),
            src_domain: 3,
            frame_len: len,
            meta: meta(),
        }
    }

    fn copy_req() -> [u8; COPY_REQ_LEN] {
        let mut b = [0u8; COPY_REQ_LEN];
        b[..8].copy_from_slice(&0x1_0003_0001u64.to_le_bytes());
        b[12..16].copy_from_slice(&100u32.to_le_bytes());
        b[16..18].copy_from_slice(&1u16.to_le_bytes());
        b
    }

    #[test]
    fn posted_receive_parses() {
        let r = CopyAsk::post_request(1518);
        let w = DELIVERY_LEN + 1518 + STATUS_LEN;
        assert_eq!(CopyAsk::parse(&r, w), Ok(CopyAsk::Post(1518)));
        assert_eq!(CopyAsk::parse(&r, w + 100), Ok(CopyAsk::Post(1518)));
        assert_eq!(
            CopyAsk::parse(&CopyAsk::post_request(0), 4),
            Ok(CopyAsk::Cancel)
        );
        assert_eq!(
            CopyAsk::parse(&CopyAsk::post_request(0), 5),
            Err(CopyRefusal::BadRequest)
        );
        // No room for the header, the frame and the status.
        assert_eq!(CopyAsk::parse(&r, w - 1), Err(CopyRefusal::BadRequest));
        assert_eq!(CopyAsk::parse(&r, 3), Err(CopyRefusal::NoStatus));
        // A normal copy request still parses as one.
        match CopyAsk::parse(&copy_req(), 104) {
            Ok(CopyAsk::Copy(c, room)) => assert_eq!((c.len, c.finish, room), (100, true, 100)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn posted_receive_refusals() {
        let w = DELIVERY_LEN + 65535 + STATUS_LEN;
        let bad = |f: &dyn Fn(&mut [u8; COPY_REQ_LEN])| {
            let mut r = CopyAsk::post_request(1518);
            f(&mut r);
            assert_eq!(CopyAsk::parse(&r, w), Err(CopyRefusal::BadRequest), "{r:?}");
        };
        bad(&|r| r[0] = 1); // a handle
        bad(&|r| r[8] = 1); // an offset
        bad(&|r| r[16] |= 1); // with FINISH
        bad(&|r| r[16] |= 2); // with DISCARD
        bad(&|r| r[16] |= 8); // an unknown flag
        bad(&|r| r[18] = 1); // reserved
        bad(&|r| r[12..16].copy_from_slice(&13u32.to_le_bytes())); // shorter than a header
        bad(&|r| r[12..16].copy_from_slice(&(MAX_FRAME as u32 + 1).to_le_bytes()));
        assert!(CopyAsk::parse(&CopyAsk::post_request(MAX_FRAME as u32), w).is_ok());
    }

    #[test]
    fn delivery_round_trip_and_checks() {
        let mut d = delivery(1500, 0x7_0003_0005);
        d.meta.flags = 1;
        d.meta.csum_start = 34;
        d.meta.csum_offset = 16;
        let b = d.encode();
        assert_eq!(Delivery::parse(&b, 1500), Some(d));
        assert_eq!(Delivery::parse(&b, 1499), None, "larger than the buffer");
        assert_eq!(Delivery::parse(&b[..31], 1500), None);
        let mut r = b;
        r[10] = 1;
        assert_eq!(Delivery::parse(&r, 1500), None, "reserved");
        let mut r = b;
        r[31] = 1;
        assert_eq!(Delivery::parse(&r, 1500), None, "reserved");
        let mut r = b;
        r[12..16].copy_from_slice(&13u32.to_le_bytes());
        assert_eq!(Delivery::parse(&r, 1500), None, "too short");
        let mut r = b;
        // csum_start past the frame.
        r[22..24].copy_from_slice(&1600u16.to_le_bytes());
        assert_eq!(Delivery::parse(&r, 1500), None, "offloads beyond the frame");
        let c = d.request();
        assert_eq!(
            (c.handle, c.offset, c.len, c.finish, c.discard),
            (d.handle, 0, 1500, true, false)
        );
    }

    #[test]
    fn pool_reserves_smallest_fitting_in_order() {
        let mut p = PostedPool::<4>::new();
        assert_eq!(p.post(9000), Ok(0));
        assert_eq!(p.post(1518), Ok(1));
        assert_eq!(p.post(1518), Ok(2));
        assert_eq!((p.held(), p.free()), (3, 3));
        assert!(p.reserve(delivery(1000, 1)));
        assert!(p.reserve(delivery(1400, 2)));
        // The small ones are taken: the large one takes a small frame.
        assert!(p.reserve(delivery(100, 3)));
        assert!(!p.reserve(delivery(100, 4)), "all reserved");
        assert_eq!((p.held(), p.free()), (3, 0));
        assert_eq!(
            p.take_next().map(|(i, r, d)| (i, r, d.handle.0)),
            Some((1, 1518, 1))
        );
        assert_eq!(
            p.take_next().map(|(i, r, d)| (i, r, d.handle.0)),
            Some((2, 1518, 2))
        );
        assert_eq!(p.post(2000), Ok(1));
        assert!(!p.reserve(delivery(3000, 5)), "too large for the free one");
        assert!(p.reserve(delivery(1600, 6)));
        assert_eq!(
            p.take_next().map(|(i, r, d)| (i, r, d.handle.0)),
            Some((0, 9000, 3))
        );
        assert_eq!(
            p.take_next().map(|(i, r, d)| (i, r, d.handle.0)),
            Some((1, 2000, 6))
        );
        assert_eq!(p.take_next(), None);
        assert_eq!(p.held(), 0);
        // A cancel gives back the posted slots, not the reserved ones.
        for r in [100, 200, 300] {
            p.post(r).unwrap();
        }
        assert!(p.reserve(delivery(150, 7)));
        let mut back = [false; 4];
        p.cancel(|i| back[i] = true);
        assert_eq!(back, [true, false, true, false]);
        assert_eq!((p.held(), p.free()), (1, 0));
        assert_eq!(
            p.take_next().map(|(i, r, d)| (i, r, d.handle.0)),
            Some((1, 200, 7))
        );
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn pool_bounded_and_forgotten() {
        let mut p = PostedPool::<2>::new();
        assert_eq!(p.post(100), Ok(0));
        assert_eq!(p.post(100), Ok(1));
        assert_eq!(p.post(100), Err(PostError::TooMany));
        assert!(p.reserve(delivery(50, 1)));
        assert_eq!((p.held(), p.free()), (2, 1));
        p.clear();
        assert_eq!((p.held(), p.free()), (0, 0));
        assert_eq!(p.take_next(), None, "a waiting delivery is dropped");
        assert_eq!(p.post(100), Ok(0));
        // The FIFO wraps.
        for h in 0..10 {
            assert!(p.reserve(delivery(60, h)));
            assert_eq!(p.take_next().map(|(_, _, d)| d.handle.0), Some(h));
            assert_eq!(p.post(100), Ok(0));
        }
    }
}
