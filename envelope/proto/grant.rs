// SPDX-License-Identifier: GPL-2.0

//! Grants and grant copies (`docs/vmpi-protocol.md` section 5): the grant
//! header a sender posts on grantq, the copy request a receiver posts on
//! copyq, their statuses, and the host's grant table of one domain, which
//! records grants, issues handles and checks every copy as Xen's
//! `acquire_grant_for_copy()` does, pinning the grant while the copy runs.
//!
//! The table decides; the caller moves bytes. A copy is
//! [`GrantTable::acquire`] (checks, pin), the copy itself done by the
//! caller from the sender's memory to the receiver's (translating both
//! under their map locks, outside the table's lock), then
//! [`GrantTable::release`] (unpin; completion when the grant is finished).
//! Whatever ends a grant (finish, timeout, revoke, undelivered) takes
//! effect only when no copy holds it: a completion is returned exactly
//! once per grant, when its slot is free again.

use super::msg::{Meta, ETH_HLEN, MAX_FRAME};
use super::{le16, le32, le64};
use crate::line::MAX_DOMAIN;

/// `VMPI_F_GRANT`: device feature bit 0.
pub const F_GRANT: u64 = 1 << 0;
/// Queue index of grantq.
pub const GRANTQ: u16 = 2;
/// Queue index of copyq.
pub const COPYQ: u16 = 3;
/// Length of the configuration space with `VMPI_F_GRANT`.
pub const CONFIG_LEN: usize = 16;
/// Length of a grant header.
pub const GRANT_HDR_LEN: usize = 24;
/// Length of a copy request.
pub const COPY_REQ_LEN: usize = 20;
/// Length of the status a device writes at the end of each chain.
pub const STATUS_LEN: usize = 4;
/// Grants of one domain the device holds at once (`max_grants`).
pub const MAX_GRANTS: usize = 256;
/// How long a grant may stay unfinished before it completes `TIMEOUT`.
pub const HOLD_NS: u64 = 1_000_000_000;
/// Chains of each queue the device handles per kick.
pub const BATCH: usize = 64;
/// Frame bytes whose values come from the grant's record, not from the
/// sender's memory: the destination and source MAC the switch checked.
pub const ADDR_LEN: usize = 12;

const VERSION: u8 = 1;
/// Copy request flag: the last copy from this grant.
pub const COPY_FINISH: u16 = 1;
/// Copy request flag (with `COPY_FINISH`): the frame was dropped.
pub const COPY_DISCARD: u16 = 2;

/// How a grant ended: the status its used entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Completion {
    /// Copied and finished by the destination.
    Done = 0,
    /// Not taken: bad header or shape, table full, or policy.
    Refused = 1,
    /// Taken, but the destination could not be told.
    Undelivered = 2,
    /// Not finished in time.
    Timeout = 3,
    /// The sender's device was reset, or the switch let go of it.
    Revoked = 4,
    /// Finished, but a copy failed or the frame was discarded.
    Failed = 5,
}

impl Completion {
    /// The name counters and logs use.
    pub fn name(self) -> &'static str {
        match self {
            Completion::Done => "done",
            Completion::Refused => "refused",
            Completion::Undelivered => "undelivered",
            Completion::Timeout => "timeout",
            Completion::Revoked => "revoked",
            Completion::Failed => "failed",
        }
    }
}

/// The status of one copy request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum CopyStatus {
    /// Copied.
    Ok = 0,
    /// Malformed chain or request.
    BadRequest = 1,
    /// No such grant (slot out of range, free, other generation).
    BadHandle = 2,
    /// The grant names another destination domain.
    NotGranted = 3,
    /// `offset + len` beyond the frame.
    BadWindow = 4,
    /// `len` beyond the receiver's buffer.
    NoRoom = 5,
    /// Revoked, timed out or finished.
    Gone = 6,
    /// The sender's bytes are not mapped.
    SrcFault = 7,
    /// The receiver's buffer is not mapped writable.
    DstFault = 8,
}

/// Number of [`CopyStatus`] values (for per-status counters).
pub const COPY_STATUSES: usize = 9;

impl CopyStatus {
    /// The name counters and logs use.
    pub fn name(self) -> &'static str {
        match self {
            CopyStatus::Ok => "ok",
            CopyStatus::BadRequest => "bad_request",
            CopyStatus::BadHandle => "bad_handle",
            CopyStatus::NotGranted => "not_granted",
            CopyStatus::BadWindow => "bad_window",
            CopyStatus::NoRoom => "no_room",
            CopyStatus::Gone => "gone",
            CopyStatus::SrcFault => "src_fault",
            CopyStatus::DstFault => "dst_fault",
        }
    }
}

/// A grant header (grantq), checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantHeader {
    /// The one domain allowed to copy.
    pub dest_domain: u16,
    /// The frame's length: the window.
    pub frame_len: u32,
    /// The frame's offloads.
    pub meta: Meta,
}

impl GrantHeader {
    /// Checks a grant chain: `hdr` is its first [`GRANT_HDR_LEN`]
    /// device-readable bytes, `readable` and `writable` the chain's
    /// device-readable and device-writable byte counts. `None`: refuse it
    /// (`REFUSED`), and write no status when `writable` is too short.
    pub fn parse(hdr: &[u8], readable: usize, writable: usize) -> Option<Self> {
        if hdr.len() != GRANT_HDR_LEN || hdr[0] != VERSION || hdr[1] != 0 || le32(hdr, 20) != 0 {
            return None;
        }
        let h = Self {
            dest_domain: le16(hdr, 2),
            frame_len: le32(hdr, 4),
            meta: Meta::parse(&hdr[8..20]).ok()?,
        };
        let len = h.frame_len as usize;
        if h.dest_domain == 0
            || h.dest_domain > MAX_DOMAIN
            || !(ETH_HLEN..=MAX_FRAME).contains(&len)
            || readable != GRANT_HDR_LEN + len
            || writable < STATUS_LEN
            || h.meta.check(len).is_err()
        {
            return None;
        }
        Some(h)
    }

    /// The 24 bytes on the wire.
    pub fn encode(&self) -> [u8; GRANT_HDR_LEN] {
        let mut b = [0u8; GRANT_HDR_LEN];
        b[0] = VERSION;
        b[2..4].copy_from_slice(&self.dest_domain.to_le_bytes());
        b[4..8].copy_from_slice(&self.frame_len.to_le_bytes());
        b[8..20].copy_from_slice(&self.meta.encode());
        b
    }
}

/// A copy request (copyq), checked for form (the grant table checks the
/// rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRequest {
    /// The grant.
    pub handle: Handle,
    /// Where in the frame to start.
    pub offset: u32,
    /// How many bytes.
    pub len: u32,
    /// The last copy from this grant.
    pub finish: bool,
    /// With `finish`: the frame was dropped.
    pub discard: bool,
}

impl CopyRequest {
    /// Parses a copy chain: `req` is its device-readable bytes (all of
    /// them), `writable` its device-writable byte count. Returns the
    /// request and the receiver's room (`writable` less the status).
    pub fn parse(req: &[u8], writable: usize) -> Result<(Self, usize), CopyStatus> {
        if req.len() != COPY_REQ_LEN || writable < STATUS_LEN || le16(req, 18) != 0 {
            return Err(CopyStatus::BadRequest);
        }
        let flags = le16(req, 16);
        if flags & !(COPY_FINISH | COPY_DISCARD) != 0 || flags == COPY_DISCARD {
            return Err(CopyStatus::BadRequest);
        }
        Ok((
            Self {
                handle: Handle(le64(req, 0)),
                offset: le32(req, 8),
                len: le32(req, 12),
                finish: flags & COPY_FINISH != 0,
                discard: flags & COPY_DISCARD != 0,
            },
            writable - STATUS_LEN,
        ))
    }

    /// The 20 bytes on the wire.
    pub fn encode(&self) -> [u8; COPY_REQ_LEN] {
        let mut b = [0u8; COPY_REQ_LEN];
        b[..8].copy_from_slice(&self.handle.0.to_le_bytes());
        b[8..12].copy_from_slice(&self.offset.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        let flags =
            if self.finish { COPY_FINISH } else { 0 } | if self.discard { COPY_DISCARD } else { 0 };
        b[16..18].copy_from_slice(&flags.to_le_bytes());
        b
    }
}

/// A grant's name outside the host: slot (bits 0-15), granting domain
/// (bits 16-31), generation (bits 32-63, never 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle(pub u64);

impl Handle {
    fn new(slot: u16, domain: u16, generation: u32) -> Self {
        Self(slot as u64 | (domain as u64) << 16 | (generation as u64) << 32)
    }
    /// The slot in the granting domain's table.
    pub fn slot(self) -> u16 {
        self.0 as u16
    }
    /// The granting domain: which table to look in.
    pub fn domain(self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// The slot's generation when the grant was recorded.
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// No grant.
    #[default]
    Free,
    /// Recorded; copies may start.
    Active,
    /// Ended with this completion once no copy holds it.
    Closing(Completion),
}

/// One grant of the table. The all-zero value is a free slot.
#[derive(Debug, Clone, Copy, Default)]
struct Slot<T> {
    state: State,
    generation: u32,
    dest: u16,
    pins: u16,
    failed: bool,
    frame_len: u32,
    deadline: u64,
    addrs: [u8; ADDR_LEN],
    token: T,
}

/// A copy the table allowed: the grant stays pinned until
/// [`GrantTable::release`] takes this back.
#[must_use = "a pin must be released"]
#[derive(Debug, PartialEq, Eq)]
pub struct Pin<T> {
    slot: u16,
    /// The sender's chain: where the frame's bytes are.
    pub token: T,
    /// Copy from this frame offset...
    pub offset: u32,
    /// ...this many bytes.
    pub len: u32,
    addrs: [u8; ADDR_LEN],
}

impl<T> Pin<T> {
    /// The part of the copy that comes from the grant's record (the
    /// frame's MAC addresses as the switch checked them): the bytes to
    /// write at the start of the receiver's buffer. Empty when the copy
    /// starts at or after byte [`ADDR_LEN`].
    pub fn recorded(&self) -> &[u8] {
        let start = (self.offset as usize).min(ADDR_LEN);
        let end = (self.offset as usize)
            .saturating_add(self.len as usize)
            .min(ADDR_LEN);
        &self.addrs[start..end]
    }

    /// The part that comes from the sender's memory: frame offset, offset
    /// in the receiver's buffer, length. The sender's bytes are read
    /// exactly once, into the receiver's buffer.
    pub fn from_sender(&self) -> (usize, usize, usize) {
        let r = self.recorded().len();
        (self.offset as usize + r, r, self.len as usize - r)
    }
}

/// Why a grant could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// `max_grants` held already.
    Full,
}

/// The grants one domain holds, `N` at most: the host's grant table of
/// that domain. The table itself takes no lock; its owner serialises
/// calls (the copies run outside it, between `acquire` and `release`).
/// `T` is the transport's name of the sender's chain, returned with the
/// completion so that the transport can use it.
pub struct GrantTable<T, const N: usize> {
    domain: u16,
    held: u16,
    pinned: u16,
    slots: [Slot<T>; N],
}

impl<T: Copy + Default, const N: usize> GrantTable<T, N> {
    const OK: () = assert!(N > 0 && N <= 1 << 15);

    /// An empty table of `domain`'s grants.
    pub fn new(domain: u16) -> Self {
        let () = Self::OK;
        Self {
            domain,
            held: 0,
            pinned: 0,
            slots: [Slot::default(); N],
        }
    }

    /// The granting domain.
    pub fn domain(&self) -> u16 {
        self.domain
    }

    /// Grants recorded and not yet completed.
    pub fn held(&self) -> usize {
        self.held as usize
    }

    /// Copies running (a reset or map change of the sender waits until
    /// this is 0 after [`GrantTable::revoke_all`]).
    pub fn pinned(&self) -> usize {
        self.pinned as usize
    }

    /// Records a grant the switch accepted: `addrs` are the frame's first
    /// 12 bytes as it checked them, `token` the sender's chain, `now` a
    /// monotonic time in ns. Returns the handle to put in the envelope.
    pub fn record(
        &mut self,
        hdr: &GrantHeader,
        addrs: [u8; ADDR_LEN],
        token: T,
        now: u64,
    ) -> Result<Handle, RecordError> {
        let i = self
            .slots
            .iter()
            .position(|s| s.state == State::Free)
            .ok_or(RecordError::Full)?;
        let s = &mut self.slots[i];
        let generation = match s.generation.wrapping_add(1) {
            0 => 1,
            g => g,
        };
        *s = Slot {
            state: State::Active,
            generation,
            dest: hdr.dest_domain,
            pins: 0,
            failed: false,
            frame_len: hdr.frame_len,
            deadline: now.saturating_add(HOLD_NS),
            addrs,
            token,
        };
        self.held += 1;
        Ok(Handle::new(i as u16, self.domain, generation))
    }

    /// The slot `h` names if it is a live grant of this table.
    fn find(&self, h: Handle) -> Option<usize> {
        let i = h.slot() as usize;
        let s = self.slots.get(i)?;
        (h.domain() == self.domain && s.state != State::Free && s.generation == h.generation())
            .then_some(i)
    }

    /// Ends grant `i` with `c` (the first end decided wins) and frees it
    /// now if no copy holds it.
    fn close(&mut self, i: usize, c: Completion) -> Option<(T, Completion)> {
        let s = &mut self.slots[i];
        if s.state == State::Active {
            s.state = State::Closing(c);
        }
        match s.state {
            State::Closing(c) if s.pins == 0 => {
                let token = s.token;
                s.state = State::Free;
                self.held -= 1;
                Some((token, c))
            }
            _ => None,
        }
    }

    /// Checks copy request `req` of domain `caller`, whose buffer holds
    /// `room` bytes, in `acquire_grant_for_copy()`'s order (see the
    /// statuses), and pins the grant. On a failure nothing is copied; a
    /// `finish` still finishes a grant the caller may use (completion
    /// `FAILED`), returned with the error.
    #[allow(clippy::type_complexity)]
    pub fn acquire(
        &mut self,
        caller: u16,
        req: &CopyRequest,
        room: usize,
    ) -> Result<Pin<T>, (CopyStatus, Option<(T, Completion)>)> {
        let i = self.find(req.handle).ok_or((CopyStatus::BadHandle, None))?;
        let s = &self.slots[i];
        if s.dest != caller {
            return Err((CopyStatus::NotGranted, None));
        }
        if s.state != State::Active {
            return Err((CopyStatus::Gone, None));
        }
        let end = req.offset as u64 + req.len as u64;
        let status = if end > s.frame_len as u64 {
            CopyStatus::BadWindow
        } else if req.len as usize > room {
            CopyStatus::NoRoom
        } else if s.pins == u16::MAX {
            CopyStatus::Gone
        } else {
            CopyStatus::Ok
        };
        if status != CopyStatus::Ok {
            let done = if req.finish {
                self.slots[i].failed = true;
                self.close(i, Completion::Failed)
            } else {
                None
            };
            return Err((status, done));
        }
        let s = &mut self.slots[i];
        s.pins += 1;
        self.pinned += 1;
        Ok(Pin {
            slot: i as u16,
            token: s.token,
            offset: req.offset,
            len: req.len,
            addrs: s.addrs,
        })
    }

    /// The copy of `pin` ended with `result` (`Ok`, `SrcFault` or
    /// `DstFault`): unpins the grant, finishes it for a `finish` request,
    /// and returns its completion if it ended now.
    pub fn release(
        &mut self,
        pin: Pin<T>,
        result: CopyStatus,
        req: &CopyRequest,
    ) -> Option<(T, Completion)> {
        let i = pin.slot as usize;
        let s = &mut self.slots[i];
        s.pins -= 1;
        self.pinned -= 1;
        if result != CopyStatus::Ok {
            s.failed = true;
        }
        if req.finish {
            let c = if s.failed || req.discard {
                Completion::Failed
            } else {
                Completion::Done
            };
            return self.close(i, c);
        }
        match s.state {
            State::Closing(c) => self.close(i, c),
            _ => None,
        }
    }

    /// Ends the grant `h` names with `c` (the destination could not be
    /// told: `Undelivered`), as soon as no copy holds it.
    pub fn complete(&mut self, h: Handle, c: Completion) -> Option<(T, Completion)> {
        let i = self.find(h)?;
        self.close(i, c)
    }

    /// Revokes every grant (the sender's device reset, or the switch
    /// detaching it): `done` gets each completion that can happen now;
    /// grants a copy holds complete at its `release`.
    pub fn revoke_all(&mut self, mut done: impl FnMut(T, Completion)) {
        for i in 0..N {
            if self.slots[i].state != State::Free {
                if let Some((t, c)) = self.close(i, Completion::Revoked) {
                    done(t, c);
                }
            }
        }
    }

    /// Times out the grants past their deadline at `now`.
    pub fn expire(&mut self, now: u64, mut done: impl FnMut(T, Completion)) {
        for i in 0..N {
            let s = &self.slots[i];
            if s.state == State::Active && s.deadline <= now {
                if let Some((t, c)) = self.close(i, Completion::Timeout) {
                    done(t, c);
                }
            }
        }
    }

    /// The earliest deadline of an unfinished grant (to arm a timer).
    pub fn next_deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| s.state == State::Active)
            .map(|s| s.deadline)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u16 = 3; // sender
    const B: u16 = 4; // the destination
    const C: u16 = 5; // a third domain

    fn hdr(len: u32) -> GrantHeader {
        GrantHeader {
            dest_domain: B,
            frame_len: len,
            meta: Meta::default(),
        }
    }

    fn req(h: Handle, offset: u32, len: u32, finish: bool) -> CopyRequest {
        CopyRequest {
            handle: h,
            offset,
            len,
            finish,
            discard: false,
        }
    }

    fn table() -> GrantTable<u16, 4> {
        GrantTable::new(A)
    }

    #[test]
    fn grant_header_checks_shape_and_fields() {
        let h = hdr(1500);
        let b = h.encode();
        assert_eq!(GrantHeader::parse(&b, 24 + 1500, 4), Some(h));
        assert_eq!(GrantHeader::parse(&b, 24 + 1499, 4), None); // frame shorter than declared
        assert_eq!(GrantHeader::parse(&b, 24 + 1501, 4), None);
        assert_eq!(GrantHeader::parse(&b, 24 + 1500, 3), None); // no room for the status
        assert_eq!(GrantHeader::parse(&b[..23], 24 + 1500, 4), None);
        for (at, v) in [(0, 2u8), (1, 1), (20, 1), (2, 0), (3, 0x80)] {
            let mut x = b;
            x[at] = v;
            if at == 2 {
                x[3] = 0; // domain 0
            }
            assert_eq!(GrantHeader::parse(&x, 24 + 1500, 4), None, "byte {}", at);
        }
        for len in [13u32, MAX_FRAME as u32 + 1] {
            let x = hdr(len).encode();
            assert_eq!(GrantHeader::parse(&x, 24 + len as usize, 4), None);
        }
    }

    #[test]
    fn copy_request_checks_form() {
        let r = req(Handle(7), 1, 2, true);
        assert_eq!(CopyRequest::parse(&r.encode(), 104), Ok((r, 100)));
        assert_eq!(
            CopyRequest::parse(&r.encode(), 3),
            Err(CopyStatus::BadRequest)
        );
        assert_eq!(
            CopyRequest::parse(&r.encode()[..19], 8),
            Err(CopyStatus::BadRequest)
        );
        let mut b = r.encode();
        b[16] = COPY_DISCARD as u8; // DISCARD without FINISH
        assert_eq!(CopyRequest::parse(&b, 8), Err(CopyStatus::BadRequest));
        b[16] = 4;
        assert_eq!(CopyRequest::parse(&b, 8), Err(CopyStatus::BadRequest));
        let mut b = r.encode();
        b[19] = 1;
        assert_eq!(CopyRequest::parse(&b, 8), Err(CopyStatus::BadRequest));
    }

    #[test]
    fn a_copy_and_finish_complete_the_grant_once() {
        let mut t = table();
        let h = t.record(&hdr(100), [1; 12], 42, 0).unwrap();
        assert_eq!((h.domain(), t.held()), (A, 1));
        let r = req(h, 0, 100, true);
        let pin = t.acquire(B, &r, 100).unwrap();
        assert_eq!(pin.token, 42);
        assert_eq!(t.pinned(), 1);
        assert_eq!(
            t.release(pin, CopyStatus::Ok, &r),
            Some((42, Completion::Done))
        );
        assert_eq!((t.held(), t.pinned()), (0, 0));
        // The handle is dead now, and stays dead when the slot is reused.
        assert_eq!(t.acquire(B, &r, 100).unwrap_err().0, CopyStatus::BadHandle);
        let h2 = t.record(&hdr(100), [0; 12], 43, 0).unwrap();
        assert_eq!(h2.slot(), h.slot());
        assert_ne!(h2, h);
        assert_eq!(t.acquire(B, &r, 100).unwrap_err().0, CopyStatus::BadHandle);
    }

    #[test]
    fn every_check_has_its_status() {
        let mut t = table();
        let h = t.record(&hdr(100), [0; 12], 1, 0).unwrap();
        let forged = [
            Handle(h.0 ^ 1),         // another slot (free)
            Handle(h.0 + (1 << 32)), // another generation
            Handle(h.0 ^ (1 << 16)), // another domain's table
            Handle(h.0 | 0xffff),    // slot out of range
        ];
        for f in forged {
            assert_eq!(
                t.acquire(B, &req(f, 0, 1, true), 100),
                Err((CopyStatus::BadHandle, None))
            );
        }
        // Granted to B, not to C (nor to the sender itself); no grant is touched.
        assert_eq!(
            t.acquire(C, &req(h, 0, 1, true), 100),
            Err((CopyStatus::NotGranted, None))
        );
        assert_eq!(
            t.acquire(A, &req(h, 0, 1, true), 100),
            Err((CopyStatus::NotGranted, None))
        );
        assert_eq!(t.held(), 1);
        // The window is the frame, even with u32 overflow.
        assert_eq!(
            t.acquire(B, &req(h, 1, 100, false), 1000).unwrap_err().0,
            CopyStatus::BadWindow
        );
        assert_eq!(
            t.acquire(B, &req(h, u32::MAX, 2, false), 1000)
                .unwrap_err()
                .0,
            CopyStatus::BadWindow
        );
        assert_eq!(
            t.acquire(B, &req(h, 0, 100, false), 99).unwrap_err().0,
            CopyStatus::NoRoom
        );
        // A failing request with FINISH finishes the grant, FAILED.
        assert_eq!(
            t.acquire(B, &req(h, 0, 100, true), 99),
            Err((CopyStatus::NoRoom, Some((1, Completion::Failed))))
        );
        assert_eq!(t.held(), 0);
    }

    #[test]
    fn partial_copies_and_a_failed_one_end_as_failed() {
        let mut t = table();
        let h = t.record(&hdr(100), [0; 12], 1, 0).unwrap();
        let r1 = req(h, 0, 50, false);
        let p = t.acquire(B, &r1, 50).unwrap();
        assert_eq!(t.release(p, CopyStatus::DstFault, &r1), None);
        let r2 = req(h, 50, 50, true);
        let p = t.acquire(B, &r2, 50).unwrap();
        assert_eq!(
            t.release(p, CopyStatus::Ok, &r2),
            Some((1, Completion::Failed))
        );
        // Discard without a copy.
        let h = t.record(&hdr(100), [0; 12], 2, 0).unwrap();
        let d = CopyRequest {
            discard: true,
            ..req(h, 0, 0, true)
        };
        let p = t.acquire(B, &d, 0).unwrap();
        assert_eq!(
            t.release(p, CopyStatus::Ok, &d),
            Some((2, Completion::Failed))
        );
    }

    #[test]
    fn revoke_and_timeout_wait_for_the_copy_in_flight() {
        let mut t = table();
        let h1 = t.record(&hdr(100), [0; 12], 1, 0).unwrap();
        let h2 = t.record(&hdr(100), [0; 12], 2, 10).unwrap();
        let r = req(h1, 0, 100, false);
        let p = t.acquire(B, &r, 100).unwrap();
        let mut got = [None; 4];
        let mut n = 0;
        t.revoke_all(|tok, c| {
            got[n] = Some((tok, c));
            n += 1;
        });
        // The idle grant completes now; the pinned one waits...
        assert_eq!(&got[..n], &[Some((2, Completion::Revoked))]);
        assert_eq!((t.held(), t.pinned()), (1, 1));
        // ...refuses new copies...
        assert_eq!(t.acquire(B, &r, 100).unwrap_err(), (CopyStatus::Gone, None));
        // ...and completes when the copy releases it, as REVOKED even with FINISH.
        let fin = req(h1, 0, 100, true);
        assert_eq!(
            t.release(p, CopyStatus::Ok, &fin),
            Some((1, Completion::Revoked))
        );
        assert_eq!((t.held(), t.pinned()), (0, 0));
        assert_eq!(t.complete(h2, Completion::Undelivered), None);

        let h = t.record(&hdr(100), [0; 12], 3, 1000).unwrap();
        assert_eq!(t.next_deadline(), Some(1000 + HOLD_NS));
        let p = t.acquire(B, &req(h, 0, 1, false), 1).unwrap();
        let mut n = 0;
        t.expire(1000 + HOLD_NS - 1, |_, _| n += 1);
        t.expire(1000 + HOLD_NS, |_, _| n += 1);
        assert_eq!(n, 0); // pinned: waits
        assert_eq!(t.next_deadline(), None);
        assert_eq!(
            t.release(p, CopyStatus::Ok, &req(h, 0, 1, false)),
            Some((3, Completion::Timeout))
        );
    }

    #[test]
    fn undelivered_and_full() {
        let mut t = table();
        let hs: [Handle; 4] =
            core::array::from_fn(|i| t.record(&hdr(60), [0; 12], i as u16, 0).unwrap());
        assert_eq!(t.record(&hdr(60), [0; 12], 9, 0), Err(RecordError::Full));
        assert_eq!(
            t.complete(hs[2], Completion::Undelivered),
            Some((2, Completion::Undelivered))
        );
        assert_eq!(t.complete(hs[2], Completion::Undelivered), None); // once
        assert!(t.record(&hdr(60), [0; 12], 9, 0).is_ok());
    }

    #[test]
    fn recorded_addresses_replace_the_senders() {
        let mut t = table();
        let addrs: [u8; 12] = core::array::from_fn(|i| i as u8);
        let h = t.record(&hdr(100), addrs, 1, 0).unwrap();
        let p = t.acquire(B, &req(h, 4, 20, false), 20).unwrap();
        assert_eq!(p.recorded(), &addrs[4..12]);
        assert_eq!(p.from_sender(), (12, 8, 12));
        let r = req(h, 4, 20, false);
        assert_eq!(t.release(p, CopyStatus::Ok, &r), None);
        let p = t.acquire(B, &req(h, 20, 5, false), 5).unwrap();
        assert_eq!((p.recorded(), p.from_sender()), (&[][..], (20, 0, 5)));
        assert_eq!(t.release(p, CopyStatus::Ok, &r), None);
        let p = t.acquire(B, &req(h, 2, 3, false), 3).unwrap();
        assert_eq!((p.recorded(), p.from_sender()), (&addrs[2..5], (5, 3, 0)));
        assert_eq!(t.release(p, CopyStatus::Ok, &r), None);
    }
}
