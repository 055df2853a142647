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

use super::grant::{CopyRefusal, CopyRequest, Handle, COPY_REQ_LEN, HOLD_NS, STATUS_LEN};
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
/// How long a delivery waits for a buffer (ns) while the driver posts
/// none before it is given up: a quarter of a grant's hold time, so the
/// sender still sends the frame (`UNDELIVERED`) when a driver stopped
/// posting without a cancel. A driver that posts keeps its deliveries
/// waiting, in order, up to [`MAX_WAIT_NS`]: a burst may queue more
/// deliveries than a slow guest's pass drains in `WAIT_NS`.
pub const WAIT_NS: u64 = 250_000_000;
/// The longest a delivery waits, however the driver posts: half a
/// grant's hold time, so that the grant is still held when the sender is
/// told (`UNDELIVERED`), and no buffer is spent on a delivery whose grant
/// timed out.
pub const MAX_WAIT_NS: u64 = HOLD_NS / 2;

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

/// What [`PostedPool::reserve`] did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// A free buffer is reserved for it.
    Now,
    /// It waits for the next buffer that holds it.
    Waits,
    /// Neither: no buffer will hold it, or `N` deliveries are queued.
    No,
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
/// deliveries for it (`N` at most), in the order they were reserved:
/// they leave in that order, so the frames of one sender arrive in order.
/// A slot is free, posted (`room` > 0) or reserved for a delivery.
///
/// A delivery that finds no free buffer that holds it, while the driver
/// holds one that would or last posted one that would (buffers come
/// back, and the driver posts them again), **waits** for one rather than
/// go another way (an `ENVELOPE` and a copy request take longer, and the
/// frames delivered after it would overtake it). Buffers go to
/// deliveries oldest first. A delivery that no buffer can hold any longer
/// (the driver posts smaller ones now, or cancelled its buffers), or that
/// waited [`WAIT_NS`] with no buffer posted meanwhile, or
/// [`MAX_WAIT_NS`] in all, is given up ([`PostedPool::take_stuck`]).
///
/// The pool takes no lock; its owner serialises the calls (the device's
/// grants spinlock: reservations come from other devices' passes). It
/// keeps no chain: the owner keeps each slot's descriptors by slot
/// number.
pub struct PostedPool<const N: usize> {
    /// A slot's room; 0: free.
    room: [u32; N],
    reserved: [bool; N],
    /// The deliveries, oldest first, from `head`: each with its slot, or
    /// [`NO_SLOT`] while it waits for one; `None`: given up.
    fifo: [(u16, Option<Delivery>); N],
    /// When each delivery was reserved (ns), by FIFO place.
    since: [u64; N],
    head: usize,
    len: usize,
    /// Deliveries waiting for a slot.
    waiting: usize,
    /// Slots not free.
    held: usize,
    /// The room of the last posted receive; 0 after a cancel.
    last_room: u32,
    /// When the last receive was posted (ns).
    posted_at: u64,
}

/// The slot of a delivery that waits for one.
const NO_SLOT: u16 = u16::MAX;

impl<const N: usize> Default for PostedPool<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PostedPool<N> {
    const OK: () = assert!(N > 0 && N <= 256, "slots are numbered below NO_SLOT");

    /// An empty pool.
    pub const fn new() -> Self {
        let () = Self::OK;
        Self {
            room: [0; N],
            reserved: [false; N],
            fifo: [(NO_SLOT, None); N],
            since: [0; N],
            head: 0,
            len: 0,
            waiting: 0,
            held: 0,
            last_room: 0,
            posted_at: 0,
        }
    }

    /// Slots held (posted or reserved).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Posted slots free for a delivery.
    pub fn free(&self) -> usize {
        (0..N)
            .filter(|&i| self.room[i] != 0 && !self.reserved[i])
            .count()
    }

    /// Deliveries waiting for a buffer.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Keeps a posted receive of `room` bytes (checked by
    /// [`CopyAsk::parse`]: not 0), posted at `now` (ns): the slot its chain
    /// is kept by. It goes to the oldest delivery waiting, if that fits.
    pub fn post(&mut self, room: u32, now: u64) -> Result<usize, PostError> {
        let i = self
            .room
            .iter()
            .position(|&r| r == 0)
            .ok_or(PostError::TooMany)?;
        self.room[i] = room.max(1);
        self.reserved[i] = false;
        self.held += 1;
        self.last_room = room;
        self.posted_at = self.posted_at.max(now);
        self.assign();
        Ok(i)
    }

    /// The smallest free posted slot that holds `len` bytes.
    fn smallest_free(&self, len: u32) -> Option<usize> {
        let mut best: Option<usize> = None;
        for i in 0..N {
            let r = self.room[i];
            if r < len || self.reserved[i] {
                continue;
            }
            best = match best {
                Some(b) if self.room[b] <= r => Some(b),
                _ => Some(i),
            };
        }
        best
    }

    /// Whether a buffer will hold `len` bytes: the next like the last
    /// posted, or one held (free or reserved) unless the driver cancelled
    /// its buffers since it posted.
    fn held_fits(&self, len: u32) -> bool {
        self.last_room >= len || (self.last_room != 0 && self.room.iter().any(|&r| r >= len))
    }

    /// Gives free slots to the waiting deliveries, oldest first; stops at
    /// the first that none fits (those after it wait behind it).
    fn assign(&mut self) {
        let mut k = 0;
        while self.waiting > 0 && k < self.len {
            let at = (self.head + k) % N;
            k += 1;
            let (slot, d) = self.fifo[at];
            let Some(d) = d else { continue };
            if slot != NO_SLOT {
                continue;
            }
            let Some(i) = self.smallest_free(d.frame_len) else {
                return;
            };
            self.reserved[i] = true;
            // `i` < `N` <= 256.
            self.fifo[at].0 = i as u16;
            self.waiting -= 1;
        }
    }

    /// Reserves for `d` (at time `now`, ns) the smallest free posted
    /// slot that holds its frame, queued after the deliveries before it,
    /// or lets it wait for one (see the type); [`Reserved::No`] if
    /// neither (the caller tells the driver another way).
    pub fn reserve(&mut self, d: Delivery, now: u64) -> Reserved {
        if self.len == N || !self.held_fits(d.frame_len) {
            return Reserved::No;
        }
        let at = (self.head + self.len) % N;
        self.fifo[at] = (NO_SLOT, Some(d));
        self.since[at] = now;
        self.len += 1;
        self.waiting += 1;
        self.assign();
        if self.fifo[at].0 == NO_SLOT {
            Reserved::Waits
        } else {
            Reserved::Now
        }
    }

    /// When the oldest delivery waiting is due to be given up (ns), if
    /// no buffer is posted before.
    pub fn wait_deadline(&self) -> Option<u64> {
        (0..self.len)
            .map(|k| (self.head + k) % N)
            .find(|&at| matches!(self.fifo[at], (NO_SLOT, Some(_))))
            .map(|at| self.give_up_at(at))
    }

    /// When the delivery at FIFO place `at` is given up: [`WAIT_NS`]
    /// after it was reserved or the last buffer was posted, whichever is
    /// later, and at most [`MAX_WAIT_NS`] after it was reserved.
    fn give_up_at(&self, at: usize) -> u64 {
        let since = self.since[at];
        since
            .max(self.posted_at)
            .saturating_add(WAIT_NS)
            .min(since.saturating_add(MAX_WAIT_NS))
    }

    /// The oldest delivery, its slot and the slot's room, once it has a
    /// slot; the slot is free from now on (the caller uses its chain).
    pub fn take_next(&mut self) -> Option<(usize, u32, Delivery)> {
        while self.len > 0 {
            let (i, d) = self.fifo[self.head];
            if d.is_some() && i == NO_SLOT {
                return None;
            }
            self.fifo[self.head] = (NO_SLOT, None);
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

    /// The oldest delivery waiting if no buffer will hold it any longer
    /// (the driver posts smaller ones now, or cancelled its buffers), or
    /// if it waited [`WAIT_NS`] by `now` (ns) with no buffer posted
    /// meanwhile, or [`MAX_WAIT_NS`] in all: given up, for the caller to
    /// tell the driver another way.
    pub fn take_stuck(&mut self, now: u64) -> Option<Delivery> {
        for k in 0..self.len {
            let at = (self.head + k) % N;
            let (slot, d) = self.fifo[at];
            let Some(d) = d else { continue };
            if slot != NO_SLOT {
                continue;
            }
            let late = now >= self.give_up_at(at);
            if self.held_fits(d.frame_len) && !late {
                return None;
            }
            self.fifo[at].1 = None;
            self.waiting -= 1;
            // The next one may fit what the driver holds.
            self.assign();
            return Some(d);
        }
        None
    }

    /// Frees every posted slot no delivery is reserved for; `f` gets each
    /// (the caller gives its chain back). The deliveries waiting are given
    /// up ([`PostedPool::take_stuck`]) unless the driver posts again, and
    /// none waits from now on until it does.
    pub fn cancel(&mut self, mut f: impl FnMut(usize)) {
        self.last_room = 0;
        for i in 0..N {
            if self.room[i] != 0 && !self.reserved[i] {
                self.room[i] = 0;
                self.held -= 1;
                f(i);
            }
        }
    }

    /// The driver reset its device: takes the next delivery, with a slot
    /// or waiting, for the caller to end its grant; `None` when none is
    /// left. The slots and counts stay as they were: only
    /// [`PostedPool::clear`] (under the same lock, after the last) makes
    /// the pool whole again, and nothing may be reserved in between.
    pub fn drain_next(&mut self) -> Option<Delivery> {
        while self.len > 0 {
            let (_, d) = self.fifo[self.head];
            self.fifo[self.head] = (NO_SLOT, None);
            self.head = (self.head + 1) % N;
            self.len -= 1;
            if d.is_some() {
                return d;
            }
        }
        None
    }

    /// The driver's device is suspended: every slot held, posted or
    /// reserved, is freed and given to `f` (the caller uses its chain),
    /// and the pool is empty. The caller drains the deliveries with
    /// [`PostedPool::drain_next`] first (and ends their grants), under the
    /// same lock as this call.
    pub fn give_back_all(&mut self, mut f: impl FnMut(usize)) {
        for i in 0..N {
            if self.room[i] != 0 {
                f(i);
            }
        }
        self.clear();
    }

    /// The driver reset its device: its chains are gone. Every slot is
    /// free, and deliveries still queued are dropped: the caller drains
    /// them with [`PostedPool::drain_next`] first (and ends their grants),
    /// under the same lock as this call.
    pub fn clear(&mut self) {
        // In place: the pool is kilobytes, not for the stack.
        self.room.fill(0);
        self.reserved.fill(false);
        for e in self.fifo.iter_mut() {
            *e = (NO_SLOT, None);
        }
        self.head = 0;
        self.len = 0;
        self.waiting = 0;
        self.held = 0;
        self.last_room = 0;
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

    fn next(p: &mut PostedPool<4>) -> Option<(usize, u32, u64)> {
        p.take_next().map(|(i, r, d)| (i, r, d.handle.0))
    }

    #[test]
    fn pool_reserves_smallest_fitting_in_order() {
        let mut p = PostedPool::<4>::new();
        assert_eq!(p.post(9000, 0), Ok(0));
        assert_eq!(p.post(1518, 0), Ok(1));
        assert_eq!(p.post(1518, 0), Ok(2));
        assert_eq!((p.held(), p.free()), (3, 3));
        assert!((p.reserve(delivery(1000, 1), 0) != Reserved::No));
        assert!((p.reserve(delivery(1400, 2), 0) != Reserved::No));
        // The small ones are taken: the large one takes a small frame.
        assert!((p.reserve(delivery(100, 3), 0) != Reserved::No));
        assert_eq!((p.held(), p.free(), p.waiting()), (3, 0, 0));
        assert_eq!(next(&mut p), Some((1, 1518, 1)));
        assert_eq!(next(&mut p), Some((2, 1518, 2)));
        assert_eq!(p.post(2000, 0), Ok(1));
        // No buffer held holds 10000 bytes: not kept.
        assert!(!(p.reserve(delivery(10000, 4), 0) != Reserved::No));
        assert!((p.reserve(delivery(1600, 6), 0) != Reserved::No));
        assert_eq!(next(&mut p), Some((0, 9000, 3)));
        assert_eq!(next(&mut p), Some((1, 2000, 6)));
        assert_eq!(p.take_next(), None);
        assert_eq!(p.held(), 0);
        // A cancel gives back the posted slots, not the reserved ones.
        for r in [100, 200, 300] {
            p.post(r, 0).unwrap();
        }
        assert!((p.reserve(delivery(150, 7), 0) != Reserved::No));
        let mut back = [false; 4];
        p.cancel(|i| back[i] = true);
        assert_eq!(back, [true, false, true, false]);
        assert_eq!((p.held(), p.free()), (1, 0));
        assert_eq!(next(&mut p), Some((1, 200, 7)));
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn deliveries_wait_for_a_buffer_in_order() {
        let mut p = PostedPool::<4>::new();
        // Nothing posted: nothing waits.
        assert!(!(p.reserve(delivery(100, 0), 0) != Reserved::No));
        assert_eq!(p.post(1518, 0), Ok(0));
        assert_eq!(p.post(1518, 0), Ok(1));
        for h in 1..=3 {
            assert!((p.reserve(delivery(1000, h), 0) != Reserved::No));
        }
        // Two have buffers; the third waits for one, and a fourth, small
        // enough for any buffer, waits behind it.
        assert_eq!((p.free(), p.waiting()), (0, 1));
        assert!((p.reserve(delivery(60, 4), 0) != Reserved::No));
        assert_eq!(p.waiting(), 2);
        // A fifth: N deliveries queued already.
        assert!(!(p.reserve(delivery(60, 5), 0) != Reserved::No));
        assert_eq!(next(&mut p), Some((0, 1518, 1)));
        // The head waits: nothing to take until a buffer comes back.
        assert_eq!(next(&mut p), Some((1, 1518, 2)));
        assert_eq!(p.take_next(), None);
        assert_eq!(p.take_stuck(0), None, "buffers of that size come back");
        // The driver posts again: the oldest gets the first buffer.
        assert_eq!(p.post(1518, 0), Ok(0));
        assert_eq!(p.waiting(), 1);
        assert_eq!(p.post(1518, 0), Ok(1));
        assert_eq!(next(&mut p), Some((0, 1518, 3)));
        assert_eq!(next(&mut p), Some((1, 1518, 4)));
        assert_eq!((p.held(), p.waiting()), (0, 0));
    }

    #[test]
    fn a_delivery_no_buffer_holds_is_given_up() {
        let mut p = PostedPool::<4>::new();
        assert_eq!(p.post(9000, 0), Ok(0));
        assert!((p.reserve(delivery(8000, 1), 0) != Reserved::No));
        assert!(
            (p.reserve(delivery(8000, 2), 0) != Reserved::No),
            "a 9000-byte buffer is held"
        );
        assert!((p.reserve(delivery(500, 3), 0) != Reserved::No));
        assert_eq!(p.waiting(), 2);
        assert_eq!(next(&mut p), Some((0, 9000, 1)));
        // The driver posts smaller buffers now: 2 is given up, and 3,
        // behind it, gets the buffer.
        assert_eq!(p.post(1518, 0), Ok(0));
        assert_eq!(p.take_next(), None);
        assert_eq!(p.take_stuck(0).map(|d| d.handle.0), Some(2));
        assert_eq!(p.take_stuck(0), None);
        assert_eq!(next(&mut p), Some((0, 1518, 3)));
        // A cancel leaves a waiting delivery nothing: given up too, and
        // none waits after it (4's buffer is being delivered into).
        assert_eq!(p.post(1518, 0), Ok(0));
        assert_eq!(p.reserve(delivery(1000, 4), 0), Reserved::Now);
        assert_eq!(p.reserve(delivery(1000, 5), 0), Reserved::Waits);
        p.cancel(|_| {});
        assert_eq!(p.take_stuck(0).map(|d| d.handle.0), Some(5));
        assert_eq!(p.reserve(delivery(1000, 6), 0), Reserved::No);
        assert_eq!(next(&mut p), Some((0, 1518, 4)));
        assert_eq!((p.held(), p.waiting(), p.take_next()), (0, 0, None));
    }

    #[test]
    fn a_delivery_waits_at_most_wait_ns() {
        let mut p = PostedPool::<4>::new();
        assert_eq!(p.post(1518, 0), Ok(0));
        assert_eq!(p.reserve(delivery(1000, 1), 0), Reserved::Now);
        assert_eq!(p.wait_deadline(), None);
        assert_eq!(p.reserve(delivery(1000, 2), 10), Reserved::Waits);
        assert_eq!(p.reserve(delivery(1000, 3), 20), Reserved::Waits);
        assert_eq!(next(&mut p), Some((0, 1518, 1)));
        // The driver posts nothing more: 2, then 3, are given up in time.
        assert_eq!(p.wait_deadline(), Some(10 + WAIT_NS));
        assert_eq!(p.take_stuck(WAIT_NS), None);
        assert_eq!(p.take_stuck(10 + WAIT_NS).map(|d| d.handle.0), Some(2));
        assert_eq!(p.wait_deadline(), Some(20 + WAIT_NS));
        assert_eq!(p.take_stuck(15 + WAIT_NS), None);
        assert_eq!(p.take_stuck(20 + WAIT_NS).map(|d| d.handle.0), Some(3));
        assert_eq!(
            (p.wait_deadline(), p.waiting(), p.take_next()),
            (None, 0, None)
        );
        // The pool works on.
        assert_eq!(p.post(1518, 0), Ok(0));
        assert_eq!(p.reserve(delivery(1000, 4), 30), Reserved::Now);
        assert_eq!(next(&mut p), Some((0, 1518, 4)));
    }

    #[test]
    fn a_driver_that_posts_keeps_its_deliveries_waiting() {
        let mut p = PostedPool::<4>::new();
        assert_eq!(p.post(1518, 0), Ok(0));
        assert_eq!(p.reserve(delivery(1000, 1), 0), Reserved::Now);
        assert_eq!(p.reserve(delivery(1000, 2), 10), Reserved::Waits);
        assert_eq!(p.reserve(delivery(1000, 3), 20), Reserved::Waits);
        assert_eq!(next(&mut p), Some((0, 1518, 1)));
        // A buffer posted just before 2's deadline: 2 takes it, and 3
        // waits WAIT_NS from that post, not from its own reservation.
        assert_eq!(p.post(1518, 5 + WAIT_NS), Ok(0));
        assert_eq!(p.take_stuck(10 + WAIT_NS), None);
        assert_eq!(p.wait_deadline(), Some(5 + 2 * WAIT_NS));
        assert_eq!(p.take_stuck(20 + WAIT_NS), None);
        assert_eq!(next(&mut p), Some((0, 1518, 2)));
        assert_eq!(p.take_stuck(4 + 2 * WAIT_NS), None);
        assert_eq!(p.take_stuck(5 + 2 * WAIT_NS).map(|d| d.handle.0), Some(3));
        // Posted earlier than the last (a clock read before another CPU's
        // later one): the later time stands.
        let t = 10 + 2 * WAIT_NS;
        assert_eq!(p.post(1518, 1), Ok(0));
        assert_eq!(p.reserve(delivery(1000, 4), t), Reserved::Now);
        assert_eq!(p.reserve(delivery(1000, 5), t), Reserved::Waits);
        assert_eq!(p.wait_deadline(), Some(t + WAIT_NS));
        // However often the driver posts, a delivery waits MAX_WAIT_NS at
        // most (4 holds the buffers posted meanwhile).
        let mut now = t;
        while now < t + MAX_WAIT_NS - WAIT_NS / 2 {
            now += WAIT_NS / 2;
            assert_eq!(p.take_stuck(now), None, "at {now}");
            assert!(p.post(100, now).is_ok());
        }
        assert_eq!(p.wait_deadline(), Some(t + MAX_WAIT_NS));
        assert_eq!(p.take_stuck(t + MAX_WAIT_NS - 1), None);
        assert_eq!(p.take_stuck(t + MAX_WAIT_NS).map(|d| d.handle.0), Some(5));
    }

    #[test]
    fn pool_bounded_and_forgotten() {
        let mut p = PostedPool::<2>::new();
        assert_eq!(p.post(100, 0), Ok(0));
        assert_eq!(p.post(100, 0), Ok(1));
        assert_eq!(p.post(100, 0), Err(PostError::TooMany));
        assert!((p.reserve(delivery(50, 1), 0) != Reserved::No));
        assert!((p.reserve(delivery(50, 2), 0) != Reserved::No));
        assert!(!(p.reserve(delivery(50, 3), 0) != Reserved::No), "N queued");
        assert_eq!((p.held(), p.free()), (2, 0));
        // A reset: every delivery drained (to end its grant), then clear.
        assert_eq!(p.drain_next().map(|d| d.handle.0), Some(1));
        assert_eq!(p.drain_next().map(|d| d.handle.0), Some(2));
        assert_eq!(p.drain_next(), None);
        p.clear();
        assert_eq!((p.held(), p.free()), (0, 0));
        assert_eq!(p.take_next(), None);
        assert_eq!(p.post(100, 0), Ok(0));
        // The FIFO wraps.
        for h in 0..10 {
            assert!((p.reserve(delivery(60, h), 0) != Reserved::No));
            assert_eq!(p.take_next().map(|(_, _, d)| d.handle.0), Some(h));
            assert_eq!(p.post(100, 0), Ok(0));
        }
        // A waiting one is drained too.
        assert!(
            (p.reserve(delivery(60, 20), 0) != Reserved::No)
                && (p.reserve(delivery(60, 21), 0) != Reserved::No)
        );
        assert_eq!(p.waiting(), 1);
        assert_eq!(p.drain_next().map(|d| d.handle.0), Some(20));
        assert_eq!(p.drain_next().map(|d| d.handle.0), Some(21));
        p.clear();
        assert_eq!((p.held(), p.waiting()), (0, 0));
    }

    #[test]
    fn pool_gives_back_every_slot_at_suspend() {
        let mut p = PostedPool::<4>::new();
        for r in [100, 200, 300] {
            p.post(r, 0).unwrap();
        }
        // Slots 1 and 2 reserved, a third delivery waiting, slot 0 free.
        assert_eq!(p.reserve(delivery(150, 1), 0), Reserved::Now);
        assert_eq!(p.reserve(delivery(250, 2), 0), Reserved::Now);
        assert_eq!(p.reserve(delivery(250, 3), 0), Reserved::Waits);
        // A suspend: the deliveries drained (their grants ended), then
        // every slot held, reserved or not, given back once.
        let mut drained = 0;
        while p.drain_next().is_some() {
            drained += 1;
        }
        assert_eq!(drained, 3);
        let mut back = [0u32; 4];
        p.give_back_all(|i| back[i] += 1);
        assert_eq!(back, [1, 1, 1, 0]);
        assert_eq!((p.held(), p.free(), p.waiting()), (0, 0, 0));
        assert_eq!(p.take_next(), None);
        // Usable again at once.
        assert_eq!(p.post(100, 0), Ok(0));
        assert_eq!(p.reserve(delivery(50, 4), 0), Reserved::Now);
        assert_eq!(next(&mut p), Some((0, 100, 4)));
    }

    #[test]
    fn pool_keeps_order_and_slots_under_any_calls() {
        // A pseudo-random mix of posts (two buffer sizes), reservations,
        // takes, give-ups and cancels: deliveries come out of `take_next`
        // and `drain_next` in the order they were reserved (handles rise), a slot is never given out
        // twice, every delivery accepted comes out once (taken, given up
        // or drained), and the counts add up.
        let mut rng = crate::test_rng::Rng(0x2545_f491_4f6c_dd1d);
        let mut rnd = move |n: u64| rng.below(n);
        for _round in 0..200 {
            let mut p = PostedPool::<8>::new();
            let mut posted = [false; 8];
            let (mut next_handle, mut last_out) = (0u64, None);
            // Deliveries accepted and not yet out; those out.
            let mut inside: Vec<u64> = Vec::new();
            let mut out_set: Vec<u64> = Vec::new();
            let mut come_out = |h: u64, inside: &mut Vec<u64>| {
                let at = inside
                    .iter()
                    .position(|&x| x == h)
                    .expect("out, not inside");
                inside.remove(at);
                assert!(!out_set.contains(&h), "out twice");
                out_set.push(h);
            };
            let mut now = 0u64;
            for _ in 0..300 {
                match rnd(6) {
                    0 | 1 => {
                        let room = if rnd(4) == 0 { 1518 } else { 9000 };
                        if let Ok(i) = p.post(room, now) {
                            assert!(!posted[i], "slot {i} given out twice");
                            posted[i] = true;
                        }
                    }
                    2 => {
                        let len = [100, 1500, 8000, 12000][rnd(4) as usize];
                        next_handle += 1;
                        if p.reserve(delivery(len, next_handle), now) != Reserved::No {
                            inside.push(next_handle);
                        }
                    }
                    3 => {
                        if let Some((i, room, d)) = p.take_next() {
                            assert!(posted[i] && room >= d.frame_len);
                            posted[i] = false;
                            assert!(last_out < Some(d.handle.0), "out of order");
                            last_out = Some(d.handle.0);
                            come_out(d.handle.0, &mut inside);
                        }
                    }
                    4 => {
                        // Given up: it goes another way, out of this
                        // order (deliveries reserved before it may still
                        // come).
                        now += rnd(WAIT_NS / 2);
                        if let Some(d) = p.take_stuck(now) {
                            come_out(d.handle.0, &mut inside);
                        }
                    }
                    _ => {
                        if rnd(8) == 0 {
                            p.cancel(|i| {
                                assert!(posted[i]);
                                posted[i] = false;
                            });
                        }
                    }
                }
                let held = posted.iter().filter(|&&b| b).count();
                assert_eq!(p.held(), held);
                assert!(p.free() <= held);
                let waiting = (0..p.len)
                    .map(|k| p.fifo[(p.head + k) % 8])
                    .filter(|e| matches!(e, (NO_SLOT, Some(_))))
                    .count();
                assert_eq!(p.waiting(), waiting);
                // A waiting delivery never has a free buffer that fits.
                if let Some((_, Some(d))) = (0..p.len)
                    .map(|k| p.fifo[(p.head + k) % 8])
                    .find(|e| matches!(e, (NO_SLOT, Some(_))))
                {
                    assert_eq!(p.smallest_free(d.frame_len), None);
                }
            }
            while let Some(d) = p.drain_next() {
                assert!(last_out < Some(d.handle.0));
                last_out = Some(d.handle.0);
                come_out(d.handle.0, &mut inside);
            }
            assert!(inside.is_empty(), "a delivery lost: {inside:?}");
            p.clear();
            assert_eq!((p.held(), p.waiting(), p.free()), (0, 0, 0));
        }
    }
}
