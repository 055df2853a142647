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
//! Whatever ends a grant (finish, timeout, revoke, undelivered, the
//! sender's reset) takes effect only when no copy holds it: a completion
//! is returned exactly once per grant, when its slot is free again, and
//! it is decided then (a grant finished `DONE` while another copy still
//! ran completes `FAILED` if that copy fails).

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
/// Of those, grants to one destination domain: half, so that a
/// destination that never copies (it is hostile, or stuck) holds at most
/// half of a sender's grants until they time out, and the sender's other
/// destinations still get grants ([`RecordError::Share`]).
pub const MAX_GRANTS_PER_DEST: usize = MAX_GRANTS / 2;
/// How long a grant may stay unfinished before it completes `TIMEOUT`, by
/// default ([`GrantTable::set_hold`]; `grant_hold_ms` of `vmpi_host`).
pub const HOLD_NS: u64 = 1_000_000_000;
/// Chains of each queue the device handles per kick.
pub const BATCH: usize = 64;
/// Frame bytes whose values come from the grant's record, not from the
/// sender's memory: the Ethernet header the switch checked (destination
/// MAC, source MAC, ethertype).
pub const ADDR_LEN: usize = ETH_HLEN;
/// Copies of one grant in flight at once; one more fails `GONE`.
pub const MAX_PINS: u16 = u16::MAX;

const VERSION: u8 = 1;
/// Copy request flag: the last copy from this grant.
pub const COPY_FINISH: u16 = 1;
/// Copy request flag (with `COPY_FINISH`): the frame was dropped.
pub const COPY_DISCARD: u16 = 2;

/// How a grant ended: the status its used entry carries
/// ([`Completion::status`]), or, for [`Completion::Forgotten`], nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Copied and finished by the destination.
    Done,
    /// Not taken: bad header or shape, table full, or policy.
    Refused,
    /// Taken, but the destination could not be told.
    Undelivered,
    /// Not finished in time.
    Timeout,
    /// The switch let go of the sender's live device (it detached it).
    Revoked,
    /// Finished, but a copy failed or the frame was discarded.
    Failed,
    /// Not a status: the sender's device was reset
    /// ([`GrantTable::forget_all`]). Its rings are gone, so nothing is
    /// written and no chain is used; the caller only lets go of the token.
    Forgotten,
}

impl Completion {
    /// Every completion with a status, in the order of their statuses
    /// (`STATUSES[s]` has status `s`): for per-status counters.
    pub const STATUSES: [Completion; 6] = [
        Completion::Done,
        Completion::Refused,
        Completion::Undelivered,
        Completion::Timeout,
        Completion::Revoked,
        Completion::Failed,
    ];

    /// The le32 status to write in the grant chain's status, then use the
    /// chain; `None` for [`Completion::Forgotten`]: write nothing.
    pub fn status(self) -> Option<u32> {
        Some(match self {
            Completion::Done => 0,
            Completion::Refused => 1,
            Completion::Undelivered => 2,
            Completion::Timeout => 3,
            Completion::Revoked => 4,
            Completion::Failed => 5,
            Completion::Forgotten => return None,
        })
    }

    /// The name counters and logs use.
    pub fn name(self) -> &'static str {
        match self {
            Completion::Done => "done",
            Completion::Refused => "refused",
            Completion::Undelivered => "undelivered",
            Completion::Timeout => "timeout",
            Completion::Revoked => "revoked",
            Completion::Failed => "failed",
            Completion::Forgotten => "forgotten",
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
    /// `offset + len` beyond the frame, or the grant's bytes copied so
    /// far plus `len` beyond the frame.
    BadWindow = 4,
    /// `len` beyond the receiver's buffer.
    NoRoom = 5,
    /// Revoked, timed out or finished (or [`MAX_PINS`] copies in flight).
    Gone = 6,
    /// The sender's bytes are not mapped.
    SrcFault = 7,
    /// The receiver's buffer is not mapped writable.
    DstFault = 8,
    /// A posted receive beyond `MAX_POSTED` held
    /// ([`super::posted::PostedPool`]).
    TooMany = 9,
}

/// Number of [`CopyStatus`] values (for per-status counters).
pub const COPY_STATUSES: usize = 10;

impl CopyStatus {
    /// Every status, in order (`ALL[s] as u32 == s`).
    pub const ALL: [CopyStatus; COPY_STATUSES] = [
        CopyStatus::Ok,
        CopyStatus::BadRequest,
        CopyStatus::BadHandle,
        CopyStatus::NotGranted,
        CopyStatus::BadWindow,
        CopyStatus::NoRoom,
        CopyStatus::Gone,
        CopyStatus::SrcFault,
        CopyStatus::DstFault,
        CopyStatus::TooMany,
    ];

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
            CopyStatus::TooMany => "too_many",
        }
    }
}

/// Why a grant chain was not taken, and whether it can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefusal {
    /// Write `REFUSED` in the chain's status and use it (used length 4).
    Refused,
    /// The chain has fewer than [`STATUS_LEN`] device-writable bytes: use
    /// it with used length 0 and write nothing.
    NoStatus,
}

impl GrantRefusal {
    /// The completion to write, if any.
    pub fn completion(self) -> Option<Completion> {
        match self {
            GrantRefusal::Refused => Some(Completion::Refused),
            GrantRefusal::NoStatus => None,
        }
    }
}

/// Why a copy chain is malformed, and whether it can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyRefusal {
    /// Write `BAD_REQUEST` in the chain's status and use it (used length
    /// 4).
    BadRequest,
    /// The chain has fewer than [`STATUS_LEN`] device-writable bytes: use
    /// it with used length 0 and write nothing.
    NoStatus,
}

impl CopyRefusal {
    /// The status to write, if any.
    pub fn status(self) -> Option<CopyStatus> {
        match self {
            CopyRefusal::BadRequest => Some(CopyStatus::BadRequest),
            CopyRefusal::NoStatus => None,
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
    /// device-readable and device-writable byte counts. A chain with no
    /// room for the status is [`GrantRefusal::NoStatus`] whatever else is
    /// wrong with it; any other fault is [`GrantRefusal::Refused`].
    pub fn parse(hdr: &[u8], readable: usize, writable: usize) -> Result<Self, GrantRefusal> {
        if writable < STATUS_LEN {
            return Err(GrantRefusal::NoStatus);
        }
        if hdr.len() != GRANT_HDR_LEN || hdr[0] != VERSION || hdr[1] != 0 || le32(hdr, 20) != 0 {
            return Err(GrantRefusal::Refused);
        }
        let h = Self {
            dest_domain: le16(hdr, 2),
            frame_len: le32(hdr, 4),
            meta: Meta::parse(&hdr[8..20]).map_err(|_| GrantRefusal::Refused)?,
        };
        let len = h.frame_len as usize;
        if h.dest_domain == 0
            || h.dest_domain > MAX_DOMAIN
            || !(ETH_HLEN..=MAX_FRAME).contains(&len)
            || readable != GRANT_HDR_LEN + len
            || h.meta.check(len).is_err()
        {
            return Err(GrantRefusal::Refused);
        }
        Ok(h)
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
    /// request and the receiver's room (`writable` less the status). A
    /// chain with no room for the status is [`CopyRefusal::NoStatus`]
    /// whatever else is wrong with it.
    pub fn parse(req: &[u8], writable: usize) -> Result<(Self, usize), CopyRefusal> {
        if writable < STATUS_LEN {
            return Err(CopyRefusal::NoStatus);
        }
        if req.len() != COPY_REQ_LEN || le16(req, 18) != 0 {
            return Err(CopyRefusal::BadRequest);
        }
        let flags = le16(req, 16);
        if flags & !(COPY_FINISH | COPY_DISCARD) != 0 || flags == COPY_DISCARD {
            return Err(CopyRefusal::BadRequest);
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
    /// Ended once no copy holds it: with this completion, or `Failed` for
    /// a `Done` whose copies did not all succeed.
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
    /// Bytes of the frame copies were allowed so far: at most `frame_len`.
    copied: u32,
    deadline: u64,
    addrs: [u8; ADDR_LEN],
    token: T,
}

/// A copy the table allowed: the grant stays pinned until
/// [`GrantTable::release`] takes this back. It names its table (domain),
/// slot and the slot's generation, and carries what the request said
/// (`finish`, `discard`), so that releasing it trusts nothing else.
#[must_use = "a pin must be released"]
#[derive(Debug, PartialEq, Eq)]
pub struct Pin<T> {
    domain: u16,
    slot: u16,
    generation: u32,
    finish: bool,
    discard: bool,
    token: T,
    offset: u32,
    len: u32,
    addrs: [u8; ADDR_LEN],
}

impl<T: Copy> Pin<T> {
    /// The sender's chain: where the frame's bytes are.
    pub fn token(&self) -> T {
        self.token
    }
}

impl<T> Pin<T> {
    /// The table slot of the pinned grant: kept until the pin is released.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The frame offset the copy starts at.
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// How many bytes it copies.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether it copies nothing (a `FINISH` alone).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The part of the copy that comes from the grant's record (the
    /// frame's Ethernet header as the switch checked it): the bytes to
    /// write at the start of the receiver's buffer. Empty when the copy
    /// starts at or after byte [`ADDR_LEN`].
    pub fn recorded(&self) -> &[u8] {
        let start = (self.offset as usize).min(ADDR_LEN);
        let end = (self.offset as usize)
            .saturating_add(self.len as usize)
            .min(ADDR_LEN);
        &self.addrs[start..end]
    }

    /// The part that comes from the sender's memory, as `(frame offset,
    /// offset in the receiver's buffer, length)`. *Frame* offsets: the
    /// frame starts [`GRANT_HDR_LEN`] bytes into the sender's grant chain
    /// (after the grant header), so the chain offset to read from is the
    /// first value plus [`GRANT_HDR_LEN`] ([`Pin::from_sender_chain`]).
    /// The sender's bytes are read exactly once, into the receiver's
    /// buffer.
    pub fn from_sender(&self) -> (usize, usize, usize) {
        let r = self.recorded().len();
        (
            self.offset as usize + r,
            r,
            (self.len as usize).saturating_sub(r),
        )
    }

    /// [`Pin::from_sender`] with the first value an offset into the
    /// sender's grant chain (its device-readable bytes, grant header
    /// included).
    pub fn from_sender_chain(&self) -> (usize, usize, usize) {
        let (at, dst, len) = self.from_sender();
        (at + GRANT_HDR_LEN, dst, len)
    }
}

/// Why a grant could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// `max_grants` held already.
    Full,
    /// Half of the table's grants name this destination already.
    Share,
}

/// The grants one domain holds, `N` at most and `S` at most to one
/// destination (the host's: [`MAX_GRANTS`], [`MAX_GRANTS_PER_DEST`]): the
/// host's grant table of that domain. The table itself takes no lock; its owner serialises
/// calls (the copies run outside it, between `acquire` and `release`).
/// `T` is the transport's name of the sender's chain, returned with the
/// completion so that the transport can use it.
pub struct GrantTable<T, const N: usize, const S: usize = N> {
    domain: u16,
    /// Every slot's generation before its first grant.
    seed: u32,
    /// The most generations one slot has moved past `seed`.
    span: u32,
    held: u16,
    /// Copies in flight over the whole table (at most `N` * [`MAX_PINS`]).
    pinned: u32,
    /// How long a grant recorded now may stay unfinished ([`HOLD_NS`]
    /// unless set).
    hold_ns: u64,
    slots: [Slot<T>; N],
}

impl<T: Copy + Default, const N: usize, const S: usize> GrantTable<T, N, S> {
    const OK: () = assert!(N > 0 && N <= 1 << 15 && S > 0 && S <= N);

    /// An empty table of `domain`'s grants whose handles' generations
    /// start after `seed`. The host keeps one counter for all tables: a
    /// new table takes it as its seed, and a table that goes moves it to
    /// its [`GrantTable::next_seed`], so that a domain id attached again
    /// never revives the handles of its previous table.
    pub fn new(domain: u16, seed: u32) -> Self {
        let () = Self::OK;
        let slot = Slot {
            generation: seed,
            ..Slot::default()
        };
        Self {
            domain,
            seed,
            span: 0,
            held: 0,
            pinned: 0,
            hold_ns: HOLD_NS,
            slots: [slot; N],
        }
    }

    /// [`GrantTable::new`] written in place (a table is kilobytes: no
    /// value of it is built on the stack first).
    ///
    /// # Safety
    ///
    /// `slot` is valid for writing a `GrantTable` and suitably aligned.
    pub unsafe fn init_at(slot: *mut Self, domain: u16, seed: u32) {
        use core::ptr::addr_of_mut;
        let () = Self::OK;
        // SAFETY: every field of `*slot` is written once through `slot`,
        // valid for writes (the function's contract); the slots one by one.
        unsafe {
            addr_of_mut!((*slot).domain).write(domain);
            addr_of_mut!((*slot).seed).write(seed);
            addr_of_mut!((*slot).span).write(0);
            addr_of_mut!((*slot).held).write(0);
            addr_of_mut!((*slot).pinned).write(0);
            addr_of_mut!((*slot).hold_ns).write(HOLD_NS);
            let slots = addr_of_mut!((*slot).slots).cast::<Slot<T>>();
            for i in 0..N {
                slots.add(i).write(Slot {
                    generation: seed,
                    ..Slot::default()
                });
            }
        }
    }

    /// Makes this an empty table of `domain` as [`GrantTable::new`] does,
    /// in place. Only for a table with no grant held (`held() == 0`); a
    /// table that still holds one is left as it is: `false`.
    pub fn renew(&mut self, domain: u16, seed: u32) -> bool {
        if self.held != 0 || self.pinned != 0 {
            return false;
        }
        self.domain = domain;
        self.seed = seed;
        self.span = 0;
        for s in self.slots.iter_mut() {
            *s = Slot {
                generation: seed,
                ..Slot::default()
            };
        }
        true
    }

    /// The granting domain.
    pub fn domain(&self) -> u16 {
        self.domain
    }

    /// A seed for the next table (of any domain) past every generation
    /// this one issued.
    pub fn next_seed(&self) -> u32 {
        self.seed.wrapping_add(self.span).wrapping_add(1)
    }

    /// Grants recorded and not yet completed.
    pub fn held(&self) -> usize {
        self.held as usize
    }

    /// Copies running. A reset or map change of the sender's (or the
    /// receiver's) device does not revoke them: it waits until they are
    /// released.
    pub fn pinned(&self) -> usize {
        self.pinned as usize
    }

    /// The slot the next [`GrantTable::record`] takes, if one is free (a
    /// transport keeps what it knows of a grant by slot).
    pub fn next_free(&self) -> Option<u16> {
        self.slots
            .iter()
            .position(|s| s.state == State::Free)
            .map(|i| i as u16)
    }

    /// How long the grants recorded from now on may stay unfinished
    /// before they complete `TIMEOUT` (those recorded keep their
    /// deadline).
    pub fn set_hold(&mut self, ns: u64) {
        self.hold_ns = ns;
    }

    /// Records a grant the switch accepted: `addrs` are the frame's first
    /// [`ADDR_LEN`] bytes as it checked them, `token` the sender's chain,
    /// `now` a monotonic time in ns. Returns the handle to put in the
    /// envelope. Refused when the table is full, and when `S` of its
    /// grants name the same destination already (`Share`).
    pub fn record(
        &mut self,
        hdr: &GrantHeader,
        addrs: [u8; ADDR_LEN],
        token: T,
        now: u64,
    ) -> Result<Handle, RecordError> {
        let (mut free, mut to_dest) = (None, 0usize);
        for (i, s) in self.slots.iter().enumerate() {
            if s.state == State::Free {
                free = free.or(Some(i));
            } else if s.dest == hdr.dest_domain {
                to_dest += 1;
            }
        }
        let i = free.ok_or(RecordError::Full)?;
        if to_dest >= S {
            return Err(RecordError::Share);
        }
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
            copied: 0,
            deadline: now.saturating_add(self.hold_ns),
            addrs,
            token,
        };
        self.span = self.span.max(generation.wrapping_sub(self.seed));
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

    /// Ends grant `i` with `c` (the first end decided wins, but for a
    /// timeout a finishing copy in flight overrides: `release`) and frees
    /// it now if no copy holds it, with its final completion: `Done`
    /// becomes `Failed` if a copy from it failed.
    fn close(&mut self, i: usize, c: Completion) -> Option<(T, Completion)> {
        let s = &mut self.slots[i];
        if s.state == State::Active {
            s.state = State::Closing(c);
        }
        match s.state {
            State::Closing(c) if s.pins == 0 => {
                let c = match c {
                    Completion::Done if s.failed => Completion::Failed,
                    c => c,
                };
                let token = s.token;
                s.state = State::Free;
                self.held = self.held.saturating_sub(1);
                Some((token, c))
            }
            _ => None,
        }
    }

    /// Checks copy request `req` of domain `caller`, whose buffer holds
    /// `room` bytes, in `acquire_grant_for_copy()`'s order (`BAD_HANDLE`,
    /// `NOT_GRANTED`, `GONE`, `BAD_WINDOW`, `NO_ROOM`, then `GONE` for a
    /// grant with [`MAX_PINS`] copies in flight), and pins the grant. On
    /// a failure nothing is copied; a `finish` still finishes a grant the
    /// caller may use (completion `FAILED`), returned with the error.
    ///
    /// Each grant may be copied at most `frame_len` bytes in total, over
    /// all its copies: a request beyond that fails `BAD_WINDOW`, so one
    /// grant costs the host at most one frame's copy.
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
        let total = s.copied as u64 + req.len as u64;
        let status = if end > s.frame_len as u64 || total > s.frame_len as u64 {
            CopyStatus::BadWindow
        } else if req.len as usize > room {
            CopyStatus::NoRoom
        } else if s.pins == MAX_PINS {
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
        // At most `frame_len`: checked above.
        s.copied += req.len;
        self.pinned += 1;
        Ok(Pin {
            domain: self.domain,
            slot: i as u16,
            generation: s.generation,
            finish: req.finish,
            discard: req.discard,
            token: s.token,
            offset: req.offset,
            len: req.len,
            addrs: s.addrs,
        })
    }

    /// The copy of `pin` ended with `result` (`Ok`, `SrcFault` or
    /// `DstFault`): unpins the grant, finishes it if the request had
    /// `FINISH` (as `FAILED` with `DISCARD`), and returns its completion
    /// if it ended now. A pin of another table, or of an earlier grant of
    /// the slot, or of a slot no copy holds, changes nothing: `None`.
    pub fn release(&mut self, pin: Pin<T>, result: CopyStatus) -> Option<(T, Completion)> {
        if pin.domain != self.domain {
            return None;
        }
        let i = pin.slot as usize;
        let s = self.slots.get_mut(i)?;
        if s.state == State::Free || s.generation != pin.generation {
            return None;
        }
        let pins = s.pins.checked_sub(1)?;
        let pinned = self.pinned.checked_sub(1)?;
        s.pins = pins;
        self.pinned = pinned;
        if result != CopyStatus::Ok {
            s.failed = true;
        }
        if pin.finish {
            let c = if s.failed || pin.discard {
                Completion::Failed
            } else {
                Completion::Done
            };
            // A finishing copy that began before the deadline decides how
            // the grant ends: the destination has (or refused) the frame,
            // and the sender must not send it again.
            if s.state == State::Closing(Completion::Timeout) {
                s.state = State::Closing(c);
            }
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

    /// The switch lets go of the sender's *live* device (it detaches the
    /// domain): every grant completes `REVOKED` (one that had ended
    /// already keeps its completion). `done` gets each completion that
    /// can happen now; grants a copy holds complete at its `release`.
    pub fn revoke_all(&mut self, mut done: impl FnMut(T, Completion)) {
        for i in 0..N {
            if self.slots[i].state != State::Free {
                if let Some((t, c)) = self.close(i, Completion::Revoked) {
                    done(t, c);
                }
            }
        }
    }

    /// The sender's device was reset: its rings are gone, so no grant is
    /// completed (nothing is written). `done` gets the token of each grant
    /// no copy holds, which is free now; a grant a copy holds is free at
    /// that copy's `release`, which returns it as
    /// [`Completion::Forgotten`] (write nothing). The reset waits until
    /// [`GrantTable::pinned`] is 0.
    pub fn forget_all(&mut self, mut done: impl FnMut(T)) {
        for i in 0..N {
            let s = &mut self.slots[i];
            if s.state != State::Free {
                s.state = State::Closing(Completion::Forgotten);
                if let Some((t, _)) = self.close(i, Completion::Forgotten) {
                    done(t);
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
    extern crate std;
    use super::*;
    use std::vec::Vec;

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

    #[test]
    fn status_lists_are_in_status_order() {
        for (i, c) in Completion::STATUSES.iter().enumerate() {
            assert_eq!(c.status(), Some(i as u32));
        }
        for (i, s) in CopyStatus::ALL.iter().enumerate() {
            assert_eq!(*s as u32, i as u32);
        }
    }

    #[test]
    fn init_at_and_renew_match_new() {
        let mut t = core::mem::MaybeUninit::<GrantTable<u16, 4>>::uninit();
        // SAFETY: `t` is valid for writes and aligned.
        unsafe { GrantTable::init_at(t.as_mut_ptr(), A, 7) };
        // SAFETY: initialised by `init_at`.
        let mut t = unsafe { t.assume_init() };
        let h = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        assert_eq!((h.domain(), h.generation()), (A, 8));
        assert!(!t.renew(C, 50), "a table holding a grant is kept");
        assert!(t.complete(h, Completion::Undelivered).is_some());
        assert!(t.renew(C, 50));
        assert_eq!(t.next_free(), Some(0));
        let h = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        assert_eq!(h.slot(), 0);
        assert_eq!(t.next_free(), Some(1));
        assert_eq!((h.domain(), h.generation()), (C, 51));
    }

    fn table() -> GrantTable<u16, 4> {
        GrantTable::new(A, 0)
    }

    #[test]
    fn grant_header_checks_shape_and_fields() {
        let h = hdr(1500);
        let b = h.encode();
        let refused = Err(GrantRefusal::Refused);
        assert_eq!(GrantHeader::parse(&b, 24 + 1500, 4), Ok(h));
        assert_eq!(GrantHeader::parse(&b, 24 + 1499, 4), refused); // frame shorter than declared
        assert_eq!(GrantHeader::parse(&b, 24 + 1501, 4), refused);
        assert_eq!(GrantHeader::parse(&b[..23], 24 + 1500, 4), refused);
        for (at, v) in [(0, 2u8), (1, 1), (20, 1), (2, 0), (3, 0x80)] {
            let mut x = b;
            x[at] = v;
            if at == 2 {
                x[3] = 0; // domain 0
            }
            assert_eq!(GrantHeader::parse(&x, 24 + 1500, 4), refused, "byte {}", at);
        }
        for len in [13u32, MAX_FRAME as u32 + 1] {
            let x = hdr(len).encode();
            assert_eq!(GrantHeader::parse(&x, 24 + len as usize, 4), refused);
        }
    }

    #[test]
    fn a_refusal_says_whether_a_status_fits() {
        let b = hdr(1500).encode();
        // No room for the status: nothing may be written, whatever else
        // is wrong with the chain.
        let none = Err(GrantRefusal::NoStatus);
        assert_eq!(GrantHeader::parse(&b, 24 + 1500, 3), none);
        assert_eq!(GrantHeader::parse(&b[..3], 0, 0), none);
        assert_eq!(GrantRefusal::NoStatus.completion(), None);
        let refused = GrantHeader::parse(&b, 24 + 1499, 4).unwrap_err();
        assert_eq!(refused.completion(), Some(Completion::Refused));
        let r = req(Handle(7), 1, 2, true).encode();
        assert_eq!(CopyRequest::parse(&r, 3), Err(CopyRefusal::NoStatus));
        assert_eq!(CopyRequest::parse(&r[..5], 0), Err(CopyRefusal::NoStatus));
        assert_eq!(CopyRefusal::NoStatus.status(), None);
        assert_eq!(CopyRequest::parse(&r[..5], 4), Err(CopyRefusal::BadRequest));
        assert_eq!(
            CopyRefusal::BadRequest.status(),
            Some(CopyStatus::BadRequest)
        );
    }

    #[test]
    fn copy_request_checks_form() {
        let r = req(Handle(7), 1, 2, true);
        let bad = Err(CopyRefusal::BadRequest);
        assert_eq!(CopyRequest::parse(&r.encode(), 104), Ok((r, 100)));
        assert_eq!(CopyRequest::parse(&r.encode()[..19], 8), bad);
        let mut b = r.encode();
        b[16] = COPY_DISCARD as u8; // DISCARD without FINISH
        assert_eq!(CopyRequest::parse(&b, 8), bad);
        b[16] = 4;
        assert_eq!(CopyRequest::parse(&b, 8), bad);
        let mut b = r.encode();
        b[19] = 1;
        assert_eq!(CopyRequest::parse(&b, 8), bad);
    }

    #[test]
    fn a_copy_and_finish_complete_the_grant_once() {
        let mut t = table();
        let h = t.record(&hdr(100), [1; ADDR_LEN], 42, 0).unwrap();
        assert_eq!((h.domain(), t.held()), (A, 1));
        let r = req(h, 0, 100, true);
        let pin = t.acquire(B, &r, 100).unwrap();
        assert_eq!((pin.token(), pin.offset(), pin.len()), (42, 0, 100));
        assert_eq!(t.pinned(), 1);
        assert_eq!(t.release(pin, CopyStatus::Ok), Some((42, Completion::Done)));
        assert_eq!((t.held(), t.pinned()), (0, 0));
        // The handle is dead now, and stays dead when the slot is reused.
        assert_eq!(t.acquire(B, &r, 100).unwrap_err().0, CopyStatus::BadHandle);
        let h2 = t.record(&hdr(100), [0; ADDR_LEN], 43, 0).unwrap();
        assert_eq!(h2.slot(), h.slot());
        assert_ne!(h2, h);
        assert_eq!(t.acquire(B, &r, 100).unwrap_err().0, CopyStatus::BadHandle);
    }

    #[test]
    fn every_check_has_its_status() {
        let mut t = table();
        let h = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
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
        let h = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        let p = t.acquire(B, &req(h, 0, 50, false), 50).unwrap();
        assert_eq!(t.release(p, CopyStatus::DstFault), None);
        let p = t.acquire(B, &req(h, 50, 50, true), 50).unwrap();
        assert_eq!(t.release(p, CopyStatus::Ok), Some((1, Completion::Failed)));
        // Discard without a copy.
        let h = t.record(&hdr(100), [0; ADDR_LEN], 2, 0).unwrap();
        let d = CopyRequest {
            discard: true,
            ..req(h, 0, 0, true)
        };
        let p = t.acquire(B, &d, 0).unwrap();
        assert!(p.is_empty());
        assert_eq!(t.release(p, CopyStatus::Ok), Some((2, Completion::Failed)));
    }

    #[test]
    fn a_copy_failing_after_the_finish_makes_the_grant_failed() {
        let mut t = table();
        let h = t.record(&hdr(100), [0; ADDR_LEN], 7, 0).unwrap();
        let first = t.acquire(B, &req(h, 0, 50, false), 50).unwrap();
        let last = t.acquire(B, &req(h, 50, 50, true), 50).unwrap();
        // The FINISH copy succeeds while the first still runs...
        assert_eq!(t.release(last, CopyStatus::Ok), None);
        assert_eq!(t.held(), 1);
        // ...then the first fails: the grant completes FAILED, not DONE.
        assert_eq!(
            t.release(first, CopyStatus::SrcFault),
            Some((7, Completion::Failed))
        );
        // Both succeed: DONE.
        let h = t.record(&hdr(100), [0; ADDR_LEN], 8, 0).unwrap();
        let first = t.acquire(B, &req(h, 0, 50, false), 50).unwrap();
        let last = t.acquire(B, &req(h, 50, 50, true), 50).unwrap();
        assert_eq!(t.release(last, CopyStatus::Ok), None);
        assert_eq!(
            t.release(first, CopyStatus::Ok),
            Some((8, Completion::Done))
        );
    }

    #[test]
    fn release_trusts_only_the_pin() {
        let mut t = table();
        let h = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        // FINISH was said at acquire: the release finishes the grant.
        let p = t.acquire(B, &req(h, 0, 100, true), 100).unwrap();
        assert_eq!(t.release(p, CopyStatus::Ok), Some((1, Completion::Done)));
        // And without FINISH it does not.
        let h = t.record(&hdr(100), [0; ADDR_LEN], 2, 0).unwrap();
        let p = t.acquire(B, &req(h, 0, 10, false), 100).unwrap();
        assert_eq!(t.release(p, CopyStatus::Ok), None);
        assert_eq!(t.held(), 1);
    }

    #[test]
    fn foreign_and_stale_pins_change_nothing() {
        // Another domain's table.
        let mut other: GrantTable<u16, 4> = GrantTable::new(C, 0);
        let mut t = table();
        let ho = other.record(&hdr(100), [0; ADDR_LEN], 9, 0).unwrap();
        let foreign = other.acquire(B, &req(ho, 0, 10, true), 10).unwrap();
        let h = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        let mine = t.acquire(B, &req(h, 0, 10, false), 10).unwrap();
        assert_eq!(t.release(foreign, CopyStatus::Ok), None);
        assert_eq!((t.held(), t.pinned()), (1, 1));
        // A table of the same domain and seed (a stale one): same handles,
        // but the slot here holds no copy: no underflow, nothing changes.
        let mut twin = table();
        let ht = twin.record(&hdr(100), [0; ADDR_LEN], 5, 0).unwrap();
        assert_eq!(ht, h);
        let tp = twin.acquire(B, &req(ht, 0, 10, true), 10).unwrap();
        let mut empty = table();
        assert_eq!(empty.release(tp, CopyStatus::Ok), None);
        assert_eq!((empty.held(), empty.pinned()), (0, 0));
        // The same grant, live, but no copy of it runs here.
        let tp = twin.acquire(B, &req(ht, 10, 10, false), 10).unwrap();
        let mut idle = table();
        assert_eq!(idle.record(&hdr(100), [0; ADDR_LEN], 5, 0), Ok(h));
        assert_eq!(idle.release(tp, CopyStatus::SrcFault), None);
        assert_eq!((idle.held(), idle.pinned()), (1, 0));
        let f = idle.acquire(B, &req(h, 0, 0, true), 0).unwrap();
        assert_eq!(idle.release(f, CopyStatus::Ok), Some((5, Completion::Done)));
        // An earlier grant of the slot.
        let tp = twin.acquire(B, &req(ht, 20, 10, false), 10).unwrap();
        let mut later = table();
        let _ = later.record(&hdr(100), [0; ADDR_LEN], 6, 0).unwrap();
        let (_, c) = later.complete(h, Completion::Undelivered).unwrap();
        assert_eq!(c, Completion::Undelivered);
        let h2 = later.record(&hdr(100), [0; ADDR_LEN], 6, 0).unwrap();
        assert_eq!(h2.slot(), h.slot());
        let lp = later.acquire(B, &req(h2, 0, 10, false), 10).unwrap();
        assert_eq!(later.release(tp, CopyStatus::SrcFault), None);
        assert_eq!(later.pinned(), 1);
        assert_eq!(later.release(lp, CopyStatus::Ok), None);
        assert_eq!(later.pinned(), 0);
        // The grant was not marked failed by the stale pin.
        let f = later.acquire(B, &req(h2, 10, 0, true), 0).unwrap();
        assert_eq!(
            later.release(f, CopyStatus::Ok),
            Some((6, Completion::Done))
        );
        assert_eq!(t.release(mine, CopyStatus::Ok), None);
    }

    #[test]
    fn pins_are_counted_past_u16_over_the_table() {
        let mut t: GrantTable<u16, 2> = GrantTable::new(A, 0);
        let hs = [
            t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap(),
            t.record(&hdr(100), [0; ADDR_LEN], 2, 0).unwrap(),
        ];
        let mut pins = Vec::new();
        for h in hs {
            for _ in 0..MAX_PINS {
                pins.push(t.acquire(B, &req(h, 0, 0, false), 0).unwrap());
            }
            // The per-grant cap holds.
            assert_eq!(
                t.acquire(B, &req(h, 0, 0, false), 0).unwrap_err().0,
                CopyStatus::Gone
            );
        }
        assert_eq!(t.pinned(), 2 * MAX_PINS as usize);
        for p in pins {
            assert_eq!(t.release(p, CopyStatus::Ok), None);
        }
        assert_eq!((t.pinned(), t.held()), (0, 2));
    }

    #[test]
    fn a_grant_is_copied_at_most_one_frame() {
        let mut t = table();
        let h = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        let p = t.acquire(B, &req(h, 0, 60, false), 100).unwrap();
        assert_eq!(t.release(p, CopyStatus::Ok), None);
        // Inside the window, but 120 bytes in total.
        assert_eq!(
            t.acquire(B, &req(h, 0, 60, false), 100).unwrap_err(),
            (CopyStatus::BadWindow, None)
        );
        // Failed copies count too: the bytes were acquired.
        let p = t.acquire(B, &req(h, 60, 40, false), 100).unwrap();
        assert_eq!(t.release(p, CopyStatus::DstFault), None);
        assert_eq!(
            t.acquire(B, &req(h, 0, 1, false), 100).unwrap_err(),
            (CopyStatus::BadWindow, None)
        );
        // A FINISH with no copy still works.
        let p = t.acquire(B, &req(h, 100, 0, true), 0).unwrap();
        assert_eq!(t.release(p, CopyStatus::Ok), Some((1, Completion::Failed)));
    }

    #[test]
    fn revoke_and_timeout_wait_for_the_copy_in_flight() {
        let mut t = table();
        let h1 = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        let h2 = t.record(&hdr(100), [0; ADDR_LEN], 2, 10).unwrap();
        let p = t.acquire(B, &req(h1, 0, 50, true), 100).unwrap();
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
        assert_eq!(
            t.acquire(B, &req(h1, 50, 50, false), 100).unwrap_err(),
            (CopyStatus::Gone, None)
        );
        // ...and completes when the copy releases it, as REVOKED even with FINISH.
        assert_eq!(t.release(p, CopyStatus::Ok), Some((1, Completion::Revoked)));
        assert_eq!((t.held(), t.pinned()), (0, 0));
        assert_eq!(t.complete(h2, Completion::Undelivered), None);

        let h = t.record(&hdr(100), [0; ADDR_LEN], 3, 1000).unwrap();
        assert_eq!(t.next_deadline(), Some(1000 + HOLD_NS));
        let p = t.acquire(B, &req(h, 0, 1, false), 1).unwrap();
        let mut n = 0;
        t.expire(1000 + HOLD_NS - 1, |_, _| n += 1);
        t.expire(1000 + HOLD_NS, |_, _| n += 1);
        assert_eq!(n, 0); // pinned: waits
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.release(p, CopyStatus::Ok), Some((3, Completion::Timeout)));
        // A finishing copy in flight at the deadline ends it DONE (the
        // destination has the frame), or FAILED if it failed.
        for (result, want) in [
            (CopyStatus::Ok, Completion::Done),
            (CopyStatus::DstFault, Completion::Failed),
        ] {
            let h = t.record(&hdr(100), [0; ADDR_LEN], 4, 2000).unwrap();
            let p = t.acquire(B, &req(h, 0, 100, true), 100).unwrap();
            let mut n = 0;
            t.expire(2000 + HOLD_NS, |_, _| n += 1);
            assert_eq!(n, 0);
            assert_eq!(t.release(p, result), Some((4, want)));
        }
        // A FINISH asked for after the deadline finds the grant gone.
        let h = t.record(&hdr(100), [0; ADDR_LEN], 5, 3000).unwrap();
        let mut ended = None;
        t.expire(3000 + HOLD_NS, |tok, c| ended = Some((tok, c)));
        assert_eq!(ended, Some((5, Completion::Timeout)));
        assert_eq!(
            t.acquire(B, &req(h, 0, 100, true), 100).unwrap_err().0,
            CopyStatus::BadHandle
        );
        // The override waits for every copy: a FINISH copy and another
        // without it in flight at the deadline; DONE when both are back.
        let h = t.record(&hdr(100), [0; ADDR_LEN], 6, 4000).unwrap();
        let part = t.acquire(B, &req(h, 0, 50, false), 100).unwrap();
        let fin = t.acquire(B, &req(h, 50, 50, true), 100).unwrap();
        t.expire(4000 + HOLD_NS, |_, _| panic!("pinned"));
        assert_eq!(t.release(fin, CopyStatus::Ok), None);
        assert_eq!(t.release(part, CopyStatus::Ok), Some((6, Completion::Done)));
    }

    #[test]
    fn hold_time_is_the_tables_at_record() {
        let mut t = table();
        t.set_hold(5 * HOLD_NS);
        let h = t.record(&hdr(100), [0; ADDR_LEN], 1, 1000).unwrap();
        t.set_hold(HOLD_NS);
        assert_eq!(t.next_deadline(), Some(1000 + 5 * HOLD_NS));
        let mut n = 0;
        t.expire(1000 + HOLD_NS, |_, _| n += 1);
        assert_eq!(n, 0);
        t.expire(1000 + 5 * HOLD_NS, |_, _| n += 1);
        assert_eq!(n, 1);
        assert!(t.acquire(B, &req(h, 0, 10, false), 1).is_err());
    }

    #[test]
    fn a_reset_forgets_grants_without_completions() {
        let mut t = table();
        let idle = t.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        let busy = t.record(&hdr(100), [0; ADDR_LEN], 2, 0).unwrap();
        let done = t.record(&hdr(100), [0; ADDR_LEN], 3, 0).unwrap();
        let p = t.acquire(B, &req(busy, 0, 10, false), 10).unwrap();
        // Finished DONE, but a copy still holds it.
        let q = t.acquire(B, &req(done, 0, 10, false), 10).unwrap();
        let f = t.acquire(B, &req(done, 10, 0, true), 0).unwrap();
        assert_eq!(t.release(f, CopyStatus::Ok), None);
        let mut freed = Vec::new();
        t.forget_all(|tok| freed.push(tok));
        // The idle grant is free at once, with no completion...
        assert_eq!(freed, [1]);
        assert_eq!((t.held(), t.pinned()), (2, 2));
        assert_eq!(
            t.acquire(B, &req(idle, 0, 1, false), 1).unwrap_err().0,
            CopyStatus::BadHandle
        );
        assert_eq!(
            t.acquire(B, &req(busy, 0, 1, false), 1).unwrap_err().0,
            CopyStatus::Gone
        );
        // ...the held ones at their release, to be written nowhere.
        let (tok, c) = t.release(p, CopyStatus::Ok).unwrap();
        assert_eq!((tok, c, c.status()), (2, Completion::Forgotten, None));
        assert_eq!(
            t.release(q, CopyStatus::Ok),
            Some((3, Completion::Forgotten))
        );
        assert_eq!((t.held(), t.pinned()), (0, 0));
        // A revoke, by contrast, writes REVOKED.
        let _ = t.record(&hdr(100), [0; ADDR_LEN], 4, 0).unwrap();
        let mut got = Vec::new();
        t.revoke_all(|tok, c| got.push((tok, c.status())));
        assert_eq!(got, [(4, Some(4))]);
    }

    #[test]
    fn a_new_table_of_a_domain_does_not_revive_old_handles() {
        let mut old = table();
        let h = old.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        for _ in 0..5 {
            let x = old.record(&hdr(100), [0; ADDR_LEN], 2, 0).unwrap();
            assert!(old.complete(x, Completion::Undelivered).is_some());
        }
        // The domain is detached and attached again: a new table, seeded
        // past every generation the old one issued.
        let mut new: GrantTable<u16, 4> = GrantTable::new(A, old.next_seed());
        let hs: Vec<Handle> = (0..4)
            .map(|i| new.record(&hdr(100), [0; ADDR_LEN], i, 0).unwrap())
            .collect();
        assert!(!hs.contains(&h));
        assert_eq!(
            new.acquire(B, &req(h, 0, 1, false), 1).unwrap_err().0,
            CopyStatus::BadHandle
        );
        // Seeds wrap without ever giving generation 0.
        let mut w: GrantTable<u16, 1> = GrantTable::new(A, u32::MAX);
        let g = w.record(&hdr(100), [0; ADDR_LEN], 1, 0).unwrap();
        assert_eq!(g.generation(), 1);
        assert_ne!(w.next_seed(), u32::MAX);
    }

    #[test]
    fn undelivered_and_full() {
        let mut t = table();
        let hs: [Handle; 4] =
            core::array::from_fn(|i| t.record(&hdr(60), [0; ADDR_LEN], i as u16, 0).unwrap());
        assert_eq!(
            t.record(&hdr(60), [0; ADDR_LEN], 9, 0),
            Err(RecordError::Full)
        );
        assert_eq!(
            t.complete(hs[2], Completion::Undelivered),
            Some((2, Completion::Undelivered))
        );
        assert_eq!(t.complete(hs[2], Completion::Undelivered), None); // once
        assert!(t.record(&hdr(60), [0; ADDR_LEN], 9, 0).is_ok());
    }

    #[test]
    fn one_destination_holds_at_most_its_share() {
        let to = |dest_domain| GrantHeader {
            dest_domain,
            ..hdr(60)
        };
        let mut t: GrantTable<u16, 4, 2> = GrantTable::new(A, 0);
        let b = [0, 1].map(|i| t.record(&to(B), [0; ADDR_LEN], i, 0).unwrap());
        // A third grant to B is refused, with room left for C...
        assert_eq!(
            t.record(&to(B), [0; ADDR_LEN], 2, 0),
            Err(RecordError::Share)
        );
        let c = t.record(&to(C), [0; ADDR_LEN], 3, 0).unwrap();
        // ...until one of B's completes; a grant still pinned counts.
        let p = t.acquire(B, &req(b[0], 0, 10, true), 10).unwrap();
        assert_eq!(t.complete(b[0], Completion::Timeout), None);
        assert_eq!(
            t.record(&to(B), [0; ADDR_LEN], 2, 0),
            Err(RecordError::Share)
        );
        assert_eq!(t.release(p, CopyStatus::Ok), Some((0, Completion::Done)));
        assert!(t.record(&to(B), [0; ADDR_LEN], 2, 0).is_ok());
        // Full beats the share: the table holds 4 now.
        assert!(t.record(&to(C), [0; ADDR_LEN], 4, 0).is_ok());
        assert_eq!(
            t.record(&to(C), [0; ADDR_LEN], 4, 0),
            Err(RecordError::Full)
        );
        assert!(t.complete(c, Completion::Done).is_some());
        assert_eq!(
            t.record(&to(B), [0; ADDR_LEN], 5, 0),
            Err(RecordError::Share)
        );
        // The host's table: half of it to one destination.
        assert_eq!(MAX_GRANTS_PER_DEST * 2, MAX_GRANTS);
    }

    #[test]
    fn recorded_addresses_replace_the_senders() {
        let mut t = table();
        let addrs: [u8; ADDR_LEN] = core::array::from_fn(|i| i as u8);
        let h = t.record(&hdr(100), addrs, 1, 0).unwrap();
        let p = t.acquire(B, &req(h, 4, 20, false), 20).unwrap();
        assert_eq!(p.recorded(), &addrs[4..14]);
        assert_eq!(p.from_sender(), (14, 10, 10));
        // The chain offset: after the grant header.
        assert_eq!(p.from_sender_chain(), (14 + GRANT_HDR_LEN, 10, 10));
        assert_eq!(t.release(p, CopyStatus::Ok), None);
        let p = t.acquire(B, &req(h, 20, 5, false), 5).unwrap();
        assert_eq!((p.recorded(), p.from_sender()), (&[][..], (20, 0, 5)));
        assert_eq!(t.release(p, CopyStatus::Ok), None);
        let p = t.acquire(B, &req(h, 2, 3, false), 3).unwrap();
        assert_eq!((p.recorded(), p.from_sender()), (&addrs[2..5], (5, 3, 0)));
        assert_eq!(t.release(p, CopyStatus::Ok), None);
    }
}
