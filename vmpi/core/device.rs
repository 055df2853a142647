// SPDX-License-Identifier: GPL-2.0

//! One VMPI device: its state under the device mutex, the data path
//! (receive, send, the transport's pulls), the delayed work, creation and
//! lookup.

use core::mem::MaybeUninit;
use kernel::alloc::Flags;
use kernel::ffi::{c_int, c_void};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{new_mutex, new_spinlock, Arc, ArcBorrow, Mutex};

use crate::bh_lock::BhLock;
use crate::bindings;
// An SDU's bytes: up to 64 KiB, so kvmalloc'ed (a fragmented memory does
// not fail an order-4 allocation); small ones are reused (`buf_cache`).
use crate::buf_cache::{self, BufCache, Bytes};
use crate::dwork::{now_ms, DelayedWork, DelayedWorkItem};
use crate::errno;
use crate::grants::{Domains, TransportGate};
use crate::kernel_port::{Call, KernelPort};
use crate::memcg::MemCg;
use crate::miscdev::{self, FileWaker};
use crate::port::{AnyContextSdu, Port, PortState, RawBudget, RxQueue, TxSdu};
use crate::proto::ctrl::{AllocResult, Ctrl, MAX_CTRL_LEN};
use crate::proto::endpoint::{Endpoint, Payload, Received};
use crate::proto::link::{AllocError, Chan, Event, Role};
use crate::proto::log_limit::LogLimit;
use crate::proto::outbox::Outbox;
use crate::proto::wire::{
    next_fragment, Accepted, Config, DropReason, Header, CONTROL_CHANNEL, HDR_LEN,
};
use crate::registry;
use crate::ring::Ring;
use crate::rx_sdu::{Parts, RxBuf, RxSdu};
use crate::{
    ALLOC_TIMEOUT_MAX_MS, ANY_CONTEXT_TXQ_LEN, DELIVER_BUDGET, FLOW_RXQ_LEN, MAX_PORTS,
    RAW_RXQ_LEN, RAW_RX_BYTES, TXQ_LEN, TXQ_WAKE,
};

/// A received fragment's bytes, read in order: its header, then its
/// payload. [`Dev::rx_from`]'s caller guarantees that `read` returns `Ok`
/// only once it wrote all of its argument, with initialized bytes.
pub(crate) trait FragReader {
    /// Copies the fragment's next bytes into the whole of `dst` (an `Err`
    /// if it cannot: a bad buffer).
    fn read(&mut self, dst: &mut [MaybeUninit<u8>]) -> Result;

    /// The rest of the fragment, `len` bytes read by nobody yet, as the
    /// transport's receive buffer it is in, if that buffer's capacity is at
    /// most `max_cap` (handed over: no copy).
    fn take(&mut self, _len: usize, _max_cap: usize) -> Option<RxBuf> {
        None
    }
}

impl<F: FnMut(&mut [MaybeUninit<u8>]) -> Result> FragReader for F {
    fn read(&mut self, dst: &mut [MaybeUninit<u8>]) -> Result {
        self(dst)
    }
}

/// A fragment in a transport's receive buffer of two parts: the header's
/// bytes, then a buffer of its own (which may become an SDU's, or a part of
/// one: [`Dev::rx_buf`]).
struct BufFrag<'a> {
    hdr: &'a [u8; HDR_LEN],
    data: &'a mut Bytes,
    /// The fragment's length, header included.
    len: usize,
    /// Bytes of the fragment read so far.
    at: usize,
}

impl FragReader for BufFrag<'_> {
    fn read(&mut self, dst: &mut [MaybeUninit<u8>]) -> Result {
        if self.at + dst.len() > self.len {
            return Err(EINVAL);
        }
        let mut done = 0;
        while done < dst.len() {
            let src = match self.at.checked_sub(HDR_LEN) {
                None => self.hdr.get(self.at..),
                Some(off) => self.data.get(off..),
            };
            let n = src.map_or(0, |s| s.len()).min(dst.len() - done);
            let (Some(src), Some(to)) = (src, dst.get_mut(done..done + n)) else {
                return Err(EINVAL);
            };
            if n == 0 {
                return Err(EINVAL);
            }
            copy_to_uninit(to, &src[..n]);
            done += n;
            self.at += n;
        }
        Ok(())
    }

    fn take(&mut self, len: usize, max_cap: usize) -> Option<RxBuf> {
        let cap = self.data.capacity();
        if self.at != HDR_LEN || HDR_LEN + len != self.len || cap == 0 || cap > max_cap {
            return None;
        }
        // Only a buffer initialized in all of its capacity, and `len` in it.
        match RxBuf::new(core::mem::replace(self.data, Bytes::new()), len) {
            Ok(b) => {
                self.at += len;
                Some(b)
            }
            Err(data) => {
                *self.data = data;
                None
            }
        }
    }
}

/// Copies one part of a fragment to send (all of it, or an `Err`: a bad
/// buffer) into the peer's buffer, after the parts before it.
pub(crate) type FragWriter<'a> = dyn FnMut(&[u8]) -> Result + 'a;

/// `s` for a [`FragReader`] to write.
///
/// # Safety
///
/// Only initialized bytes are written through the result.
unsafe fn as_uninit(s: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`; the caller writes
    // only initialized bytes, so `s` stays initialized.
    unsafe { &mut *(core::ptr::from_mut(s) as *mut [MaybeUninit<u8>]) }
}

/// Copies `src` into `dst`, of the same length (one `memcpy`).
pub(crate) fn copy_to_uninit(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    let n = dst.len().min(src.len());
    // SAFETY: both are valid for `n` bytes and distinct (`dst` is borrowed
    // mutably); `MaybeUninit<u8>` has the layout of `u8`.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<u8>(), n) };
}

/// Everything of a device that its mutex covers.
pub(crate) struct Inner {
    /// The transport's kick while it is registered: the device is live
    /// while this is `Some` ([`Inner::live`]).
    transport: Option<Kick>,
    /// Wakes `/dev/vmpiN`'s blocked callers and pollers (once it exists).
    files: Option<miscdev::Waker>,
    pub(crate) ep: Endpoint<KVVec<u8>>,
    pub(crate) chans: KVec<Chan>,
    /// The message being reassembled (its parts so far; room for
    /// `max_sdu` bytes), unless it is in `parts`.
    msg: Bytes,
    /// The data message being reassembled in its fragments' own buffers
    /// (for a file's reader: [`Inner::msg_part`]), if it is.
    parts: Parts,
    /// Ports by index; a file or in-kernel user keeps its index.
    pub(crate) ports: KVec<Option<Port>>,
    /// The port holding each channel.
    by_chan: KVec<Option<usize>>,
    pub(crate) tx: Ring<TxSdu>,
    /// Whether a control message from the outbox is being fragmented (it
    /// goes before data).
    ctrl_partial: bool,
    /// "link up" lines: a guest resetting in a loop must not flood the log.
    link_log: LogLimit,
    /// What the raw channels' queues may hold together.
    pub(crate) raw_budget: Arc<RawBudget>,
    /// The data SDU whose last fragment [`Dev::tx`] returned last, until
    /// the next call: its channel and length, for [`Dev::tx_lost`].
    last_sent: Option<(u16, usize)>,
}

/// The files a received fragment concerns.
#[derive(Clone, Copy)]
enum Wake {
    Nobody,
    /// A port's file (an SDU for it, its allocation's answer, its flow
    /// closed).
    Port(usize),
    /// The file of the port on a channel (credit for its writers).
    Channel(u16),
    /// Every file (the link changed, a name's backlog: accepts wait on
    /// any file).
    All,
}

/// How the core asks a registered transport for a pass: its `ops->kick`
/// and private pointer (include/rvio/vmpi.h).
///
/// # Invariants
///
/// `ops` and `priv_` are valid, and `ops->kick(priv_)` may be called from
/// process context, until `vmpi_transport_unregister()` (which drops this value
/// first: [`Inner::shut_down`]).
pub(crate) struct Kick {
    ops: *const bindings::vmpi_transport_ops,
    priv_: *mut c_void,
}

// SAFETY: by the type invariant `ops->kick(priv_)` may be called in
// process context on any thread, and the pointers are only read.
unsafe impl Send for Kick {}

impl Kick {
    /// # Safety
    ///
    /// `ops` and `priv_` stay valid, and `ops->kick(priv_)` callable from
    /// process context, until the value is dropped (the contract of
    /// `vmpi_transport_register()`'s caller, include/rvio/vmpi.h).
    pub(crate) unsafe fn new(ops: *const bindings::vmpi_transport_ops, priv_: *mut c_void) -> Self {
        // INVARIANT: as the caller guarantees.
        Self { ops, priv_ }
    }

    fn kick(&self) {
        // SAFETY: by the type invariant `ops` is readable and its `kick`
        // may be called with `priv_` in process context (we may hold locks:
        // a transport's kick only schedules its work).
        unsafe {
            if let Some(k) = (*self.ops).kick {
                k(self.priv_);
            }
        }
    }
}

/// One VMPI device (one side of it).
#[pin_data]
pub(crate) struct Dev {
    pub(crate) id: c_int,
    pub(crate) role: Role,
    /// The transport's name of the device (vDPA or virtio device).
    pub(crate) transport: CString,
    pub(crate) cfg: Config,
    /// Allocation timeouts and in-kernel users' callbacks.
    pub(crate) work: DelayedWork<Dev>,
    #[pin]
    pub(crate) inner: Mutex<Inner>,
    /// Held while in-kernel users' callbacks run.
    #[pin]
    pub(crate) callbacks: Mutex<()>,
    /// Small SDU buffers, and the transport's receive buffers read, for
    /// reuse (taken inside `inner` or alone, in any context).
    #[pin]
    cache: BhLock<BufCache>,
    /// SDUs sent from any context (`vmpi_port_send_sg()`), waiting to
    /// join `inner.tx` ([`Dev::join_any_context`]); taken inside `inner`
    /// or alone.
    #[pin]
    any_context_tx: BhLock<Ring<AnyContextSdu>>,
    /// The transport's ops callable from any context: its kick, and its
    /// grant, copy and deliver ops.
    pub(crate) gate: TransportGate,
    /// The transport's domain ops (host side): held across each call, so
    /// unregistering waits for those in flight. Taken alone.
    #[pin]
    pub(crate) domains: Mutex<Domains>,
}

fn random_epoch() -> u32 {
    // SAFETY: no preconditions.
    unsafe { bindings::get_random_u32() }.max(1)
}

pub(crate) fn alloc_errno(e: AllocError) -> Error {
    match e {
        AllocError::NotConnected => errno::enotconn(),
        AllocError::NoChannel => EBUSY,
        AllocError::NoSuchApp => ENOENT,
        AllocError::Refused => errno::econnrefused(),
        AllocError::Invalid => EINVAL,
        AllocError::TimedOut => errno::etimedout(),
        AllocError::Reset => errno::econnreset(),
    }
}

impl Inner {
    /// `Ok` while the transport is registered, `ENODEV` once it went away.
    pub(crate) fn live(&self) -> Result {
        match self.transport {
            Some(_) => Ok(()),
            None => Err(ENODEV),
        }
    }

    /// Whether the transport is registered.
    pub(crate) fn is_live(&self) -> bool {
        self.transport.is_some()
    }

    /// An empty buffer for an SDU of `len` bytes received on `channel`:
    /// charged to its reader's memory cgroup if it has one (a buffer of
    /// its own, not one from the cache).
    fn sdu_buffer(&self, dev: &Dev, channel: u16, len: usize) -> Result<Bytes> {
        match self.memcg_of(channel) {
            Some(m) => m.alloc_bytes(len),
            None => dev.new_bytes(len, GFP_KERNEL),
        }
    }

    /// Whether a data message on `channel` may be kept in its fragments'
    /// own buffers: its reader is a file not charged to a memory cgroup
    /// (an in-kernel user gets its SDUs in one buffer, a charged reader in
    /// memory charged to it).
    fn parts_reader(&self, channel: u16) -> bool {
        self.reader_of(channel)
            .is_some_and(|p| p.waker.is_some() && p.memcg.is_none())
    }

    /// Reads part `a` of the message being reassembled, after the parts
    /// before it (a first part starts a new message); `false` if `read`
    /// failed. A data message for a file's reader keeps its fragments'
    /// own buffers when `read` can hand them over (no copy): every part
    /// but a last one that fills less than half of its buffer, which is
    /// copied into one of its size. Anything else, and a message whose
    /// parts cannot be kept (more than [`crate::rx_sdu::MAX_PARTS`], no
    /// memory), is copied into the message buffer.
    ///
    /// # Safety
    ///
    /// As for [`Dev::rx_from`]'s `read`.
    unsafe fn msg_part(&mut self, a: Accepted, read: &mut dyn FragReader) -> bool {
        let n = a.total - a.offset;
        if a.offset == 0 {
            self.parts.clear();
            // SAFETY: 0 is within the capacity, and `u8`s need no drop.
            unsafe { self.msg.set_len(0) };
            if a.channel == CONTROL_CHANNEL || !self.parts_reader(a.channel) {
                // SAFETY: the caller's guarantee.
                return unsafe { self.msg_copy(a, read) };
            }
        } else if self.parts.is_empty() {
            // SAFETY: the caller's guarantee.
            return unsafe { self.msg_copy(a, read) };
        } else if a.offset != self.parts.len() {
            // Cannot happen (the reassembler's offsets count the parts).
            return false;
        }
        let last = match read.take(n, n.saturating_mul(2)) {
            Some(b) => {
                return match self.parts.push(b) {
                    Ok(()) => true,
                    Err(Some(b)) => {
                        self.parts_to_msg()
                            && buf_cache::append(&mut self.msg, b.bytes(), GFP_KERNEL).is_ok()
                    }
                    Err(None) => false,
                };
            }
            None if a.complete && a.offset > 0 => match buf_cache::alloc(n, GFP_KERNEL) {
                Ok(mut v) => {
                    let ok = match v.spare_capacity_mut().get_mut(..n) {
                        Some(dst) => read.read(dst).is_ok(),
                        None => false,
                    };
                    if !ok {
                        return false;
                    }
                    // SAFETY: `read` succeeded, so it wrote the first `n`
                    // bytes of the spare capacity (which has them) with
                    // bytes (the caller's guarantee).
                    unsafe { v.set_len(n) };
                    v
                }
                // SAFETY: the caller's guarantee.
                Err(_) => return self.parts_to_msg() && unsafe { self.msg_copy(a, read) },
            },
            // SAFETY: the caller's guarantee.
            None => return self.parts_to_msg() && unsafe { self.msg_copy(a, read) },
        };
        match self.parts.push_last(last) {
            Ok(()) => true,
            Err(b) => {
                self.parts_to_msg() && buf_cache::append(&mut self.msg, &b, GFP_KERNEL).is_ok()
            }
        }
    }

    /// The message being reassembled in parts goes on in the message
    /// buffer: its parts so far are copied there (the buffer has room for
    /// any message, so this does not allocate).
    fn parts_to_msg(&mut self) -> bool {
        // SAFETY: 0 is within the capacity, and `u8`s need no drop.
        unsafe { self.msg.set_len(0) };
        self.parts.move_into(&mut self.msg).is_ok()
    }

    /// Reads part `a` of the message being reassembled into the message
    /// buffer, after the parts before it; `false` if `read` failed.
    ///
    /// # Safety
    ///
    /// As for [`Dev::rx_from`]'s `read`.
    unsafe fn msg_copy(&mut self, a: Accepted, read: &mut dyn FragReader) -> bool {
        if a.offset != self.msg.len() {
            // Not after the parts before it: cannot happen (the
            // reassembler's offsets count the parts read).
            return false;
        }
        let ok = match self.msg.spare_capacity_mut().get_mut(..a.total - a.offset) {
            Some(dst) => read.read(dst).is_ok(),
            None => false,
        };
        if ok {
            // SAFETY: `read` succeeded: it wrote the spare capacity's first
            // `total - offset` bytes, after the `offset` bytes there were,
            // with bytes (the caller's guarantee).
            unsafe { self.msg.set_len(a.total) };
        }
        ok
    }

    /// The reassembled SDU of `len` bytes: its parts, if it is in parts
    /// and its reader may keep them; else in the message buffer, which
    /// becomes the SDU when the SDU fills at least half of it and its
    /// reader has no memory cgroup (a new buffer takes its place: no copy);
    /// else a copy.
    fn reassembled(&mut self, dev: &Dev, channel: u16, len: usize) -> Result<RxSdu> {
        if !self.parts.is_empty() {
            if self.parts.len() == len && self.parts_reader(channel) {
                return Ok(RxSdu::Parts(self.parts.take()));
            }
            // Its reader changed meanwhile (a raw channel bound again).
            let mut v = self.sdu_buffer(dev, channel, len)?;
            self.parts.move_into(&mut v)?;
            return Ok(RxSdu::One(v));
        }
        let max = self.msg.capacity();
        if len == self.msg.len() && len >= max / 2 && !self.charged(channel) {
            if let Ok(new) = Bytes::with_capacity(max, GFP_KERNEL) {
                return Ok(RxSdu::One(core::mem::replace(&mut self.msg, new)));
            }
        }
        let mut v = self.sdu_buffer(dev, channel, len)?;
        buf_cache::append(&mut v, self.msg.get(..len).ok_or(EINVAL)?, GFP_KERNEL)?;
        Ok(RxSdu::One(v))
    }

    /// The port holding `channel` (its reader), if any.
    fn reader_of(&self, channel: u16) -> Option<&Port> {
        self.by_chan
            .get(usize::from(channel))
            .copied()
            .flatten()
            .and_then(|i| self.ports.get(i))
            .and_then(Option::as_ref)
    }

    /// The memory cgroup the reader of `channel` is charged to, if any.
    fn memcg_of(&self, channel: u16) -> Option<&MemCg> {
        self.reader_of(channel).and_then(|p| p.memcg.as_ref())
    }

    fn charged(&self, channel: u16) -> bool {
        self.memcg_of(channel).is_some()
    }

    /// A received fragment could not be read (a bad buffer): counted, and
    /// the message it may have belonged to is dropped (`last`: it was that
    /// message's last part, which the reassembler had already closed).
    fn bad_fragment(&mut self, last: bool) {
        self.ep.counters.drop_one(DropReason::BadDesc);
        if last {
            self.ep.counters.drop_one(DropReason::BadFragment);
        }
        self.rx_lost();
    }

    /// A fragment was lost: the message it may have been part of is
    /// dropped (its parts freed).
    pub(crate) fn rx_lost(&mut self) {
        self.parts.clear();
        self.ep.rx_lost();
    }

    /// Frees a received SDU's buffer that no reader takes: one charged to
    /// the reader's memory cgroup is freed, never kept in the device's
    /// cache (as [`crate::chardev`] does with the ones it reads).
    fn discard(&self, dev: &Dev, channel: u16, v: RxSdu) {
        if self.charged(channel) {
            drop(v);
        } else {
            dev.free_sdu(v);
        }
    }

    /// Asks the transport for a pass (it calls `vmpi_transport_tx`), if it
    /// is still registered.
    pub(crate) fn kick(&self) {
        if let Some(k) = &self.transport {
            k.kick();
        }
    }

    /// Every blocked and polling file looks again.
    pub(crate) fn wake_files(&self) {
        if let Some(w) = &self.files {
            w.wake();
        }
    }

    /// The waker of port `i`'s file, if the port is a file's.
    fn file_waker(&self, i: usize) -> Option<&FileWaker> {
        self.ports
            .get(i)
            .and_then(Option::as_ref)
            .and_then(|p| p.waker.as_ref())
    }

    /// Port `i`'s file, if it is one, looks again (a wake for one file
    /// leaves the device's other readers asleep).
    pub(crate) fn wake_port(&self, i: usize) {
        if let Some(w) = self.file_waker(i) {
            w.wake();
        }
    }

    /// The send queue has room again: the files whose send or poll found
    /// none look again (in-kernel users: `Dev::service`).
    fn wake_writers(&mut self) {
        for p in self.ports.iter_mut().flatten() {
            if let (true, Some(w)) = (p.want_space, &p.waker) {
                p.want_space = false;
                w.wake();
            }
        }
    }

    /// Whom [`Dev::rx_from`]'s fragment concerns.
    fn wake_for(&self, w: Wake) {
        match w {
            Wake::Nobody => {}
            Wake::Port(i) => self.wake_port(i),
            Wake::Channel(c) => {
                if let Some(i) = self.by_chan.get(usize::from(c)).copied().flatten() {
                    self.wake_port(i);
                }
            }
            Wake::All => self.wake_files(),
        }
    }

    /// The transport is going away: no more kicks, files see `ENODEV`,
    /// in-kernel users' ports go down (their callbacks run from
    /// `vmpi_transport_unregister`).
    pub(crate) fn shut_down(&mut self) {
        self.transport = None;
        self.parts.clear();
        self.wake_files();
        for p in self.ports.iter_mut().flatten() {
            if p.user.is_some() {
                p.down = Some(ENODEV);
                p.q.clear();
            }
        }
    }

    pub(crate) fn port(&mut self, i: usize) -> Result<&mut Port> {
        self.ports.get_mut(i).and_then(Option::as_mut).ok_or(EINVAL)
    }

    /// A new port: an in-kernel `user`'s, or a file's, whose received
    /// SDUs are charged to `memcg` and which `waker` wakes.
    pub(crate) fn new_port(
        &mut self,
        user: Option<Arc<KernelPort>>,
        memcg: Option<MemCg>,
        waker: Option<FileWaker>,
    ) -> Result<usize> {
        if let Some(i) = self.ports.iter().position(Option::is_none) {
            self.ports[i] = Some(Port::new(user, memcg, waker));
            return Ok(i);
        }
        if self.ports.len() >= MAX_PORTS {
            return Err(EMFILE);
        }
        self.ports
            .push(Some(Port::new(user, memcg, waker)), GFP_KERNEL)?;
        Ok(self.ports.len() - 1)
    }

    /// Makes idle port `i` hold `state` on `channel`.
    pub(crate) fn bind(&mut self, i: usize, state: PortState, channel: u16) -> Result {
        // A flow's queue is bounded by the credit it gives.
        let q = if matches!(state, PortState::Raw(_)) {
            RxQueue::new(RAW_RXQ_LEN, Some(self.raw_budget.clone()))
        } else {
            RxQueue::new(FLOW_RXQ_LEN, None)
        };
        let p = self.port(i)?;
        p.state = state;
        p.q = q;
        self.by_chan[usize::from(channel)] = Some(i);
        Ok(())
    }

    /// Sends control message `m` about `channel` after the data already
    /// queued for that channel (a `DEALLOC` must not overtake it).
    fn send_ctrl_after_data(&mut self, channel: u16, m: &Ctrl) {
        if self.tx.iter().any(|s| s.channel == channel) {
            let mut buf = [0u8; MAX_CTRL_LEN];
            let n = m.encode(&mut buf);
            let mut data = Bytes::new();
            if buf_cache::append(&mut data, &buf[..n], GFP_KERNEL).is_ok()
                && self
                    .tx
                    .push(TxSdu {
                        channel: CONTROL_CHANNEL,
                        about: channel,
                        data,
                        sent: 0,
                    })
                    .is_ok()
            {
                return;
            }
            // No memory: the data for the closed channel goes first and
            // then counts as bad_channel at the peer.
        }
        self.ep.send_ctrl(m);
    }

    /// Releases what port `i` holds; it becomes idle.
    pub(crate) fn detach(&mut self, i: usize) {
        let Some(Some(p)) = self.ports.get_mut(i) else {
            return;
        };
        let state = core::mem::replace(&mut p.state, PortState::Idle);
        p.q = RxQueue::new(0, None);
        p.connecting = false;
        if let Some(c) = state.channel() {
            self.by_chan[usize::from(c)] = None;
            if let Ok(Some(m)) = self.ep.link.close(&mut self.chans, c) {
                self.send_ctrl_after_data(c, &m);
            }
        }
        if let PortState::Registered { mut backlog, .. } = state {
            while let Some(c) = backlog.pop() {
                if let Ok(m) = self
                    .ep
                    .link
                    .refuse(&mut self.chans, c, AllocResult::NoSuchApp)
                {
                    self.ep.send_ctrl(&m);
                }
            }
        }
    }

    /// Flow `c` ended and its channel is free, so the peer may reuse it
    /// once it has our answer (which goes before queued data): what we
    /// had not started sending about `c` (its SDUs, our own `DEALLOC`)
    /// must not reach the next flow on `c`.
    fn forget_tx(&mut self, c: u16) {
        self.tx.retain(|s| s.sent > 0 || s.about != c);
    }

    /// Every flow ends with `err` (a restart of either side): open flows
    /// die, allocations fail, backlogs empty. Raw channels stay.
    fn end_flows(&mut self, err: Error) {
        for (i, slot) in self.ports.iter_mut().enumerate() {
            let Some(p) = slot else { continue };
            match p.state {
                PortState::Open(c) | PortState::Allocating(c) => {
                    if self.by_chan.get(usize::from(c)) == Some(&Some(i)) {
                        self.by_chan[usize::from(c)] = None;
                    }
                    p.state = if matches!(p.state, PortState::Open(_)) {
                        if p.user.is_some() {
                            p.down = Some(err);
                        }
                        PortState::Dead(err)
                    } else {
                        PortState::Failed(err)
                    };
                }
                PortState::Registered {
                    ref mut backlog, ..
                } => backlog.clear(),
                _ => {}
            }
        }
    }

    /// After a reset of the channel table: raw bindings survive it.
    fn rebind_raw(&mut self) {
        let Inner {
            ep, chans, ports, ..
        } = self;
        for p in ports.iter().flatten() {
            if let PortState::Raw(c) = p.state {
                let _ = ep.link.bind_raw(chans, c);
            }
        }
    }

    /// This side restarts: new epoch, every flow ends, the send queue and
    /// the raw channels' queues empty.
    pub(crate) fn restart(&mut self) {
        let Inner { ep, chans, .. } = self;
        ep.restart(chans, random_epoch());
        self.end_flows(errno::econnreset());
        self.tx.clear();
        self.last_sent = None;
        self.parts.clear();
        for p in self.ports.iter_mut().flatten() {
            if matches!(p.state, PortState::Raw(_)) {
                p.q.clear();
            }
        }
        self.ctrl_partial = false;
        self.rebind_raw();
    }

    /// Whether in-kernel users have something for [`Dev::service`].
    fn users_pending(&self) -> bool {
        self.ports.iter().flatten().any(|p| {
            p.user.is_some()
                && (p.down.is_some()
                    || (p.want_space && self.tx.len() < TXQ_LEN)
                    || !p.q.is_empty())
        })
    }
}

impl Dev {
    /// An empty buffer for an SDU of `len` bytes (reused if one waits);
    /// `flags` for a new one (`GFP_ATOMIC` in any context).
    pub(crate) fn new_bytes(&self, len: usize, flags: Flags) -> Result<Bytes> {
        // Not in the `match`: its guard would live on through `alloc`,
        // which may sleep.
        let cached = self.cache.lock().take(len);
        match cached {
            Some(b) => Ok(b),
            None => buf_cache::alloc(len, flags),
        }
    }

    /// Whether [`ANY_CONTEXT_TXQ_LEN`] SDUs sent from any context wait
    /// (checked before one is made: it would be refused).
    pub(crate) fn any_context_full(&self) -> bool {
        self.any_context_tx.lock().len() >= ANY_CONTEXT_TXQ_LEN
    }

    /// Queues `data`, an SDU of in-kernel port `port`, from any context
    /// (softirq included, not hard interrupts): it joins the send queue
    /// at the next pass under `inner` ([`Dev::join_any_context`]), and the
    /// transport is kicked. `EAGAIN` (with `data` back) when
    /// [`ANY_CONTEXT_TXQ_LEN`] wait; `ENODEV` once the transport is gone.
    pub(crate) fn send_any_context(
        &self,
        port: usize,
        data: Bytes,
    ) -> core::result::Result<(), (Error, Bytes)> {
        if !self.gate.is_open() {
            return Err((ENODEV, data));
        }
        self.any_context_tx
            .lock()
            .push(AnyContextSdu { port, data })
            .map_err(|s| (EAGAIN, s.data))?;
        self.gate.kick();
        Ok(())
    }

    /// Moves the SDUs sent from any context into the send queue, in
    /// order, while it has room (the rest wait for the next pass). One
    /// whose port can no longer send is dropped and counted. Every path
    /// that queues or takes an SDU under `inner` calls this first, so an
    /// in-kernel user's SDUs leave in the order it sent them, whichever
    /// way it sent each.
    fn join_any_context(&self, inner: &mut Inner) {
        loop {
            // Only this (under `inner`) and `forget_any_context` take
            // from the queue: the front stays the front until popped.
            let front = self
                .any_context_tx
                .lock()
                .front()
                .map(|s| (s.port, s.data.len()));
            let Some((port, len)) = front else {
                return;
            };
            let ch = Self::send_channel(inner, port, len);
            if ch.as_ref().err() == Some(&EAGAIN) {
                return;
            }
            let Some(sdu) = self.any_context_tx.lock().pop() else {
                return;
            };
            // No kick: the caller is the transport's pass, or kicks.
            let queued = match ch {
                Ok(ch) => Self::queue(inner, ch, sdu.data),
                Err(e) => Err((e, sdu.data)),
            };
            if let Err((_, data)) = queued {
                inner.ep.counters.tx_dropped += 1;
                self.free_bytes(data);
            }
        }
    }

    /// Drops, counted in `tx_dropped`, the SDUs sent from any context
    /// that have not joined the send queue: port `port`'s (the port
    /// closes: its index may be reused), or all of them (`None`: the link
    /// restarts, and the send queue is emptied). Under `inner`.
    pub(crate) fn forget_any_context(&self, inner: &mut Inner, port: Option<usize>) {
        let mut n = 0;
        // Freed under the lock: any-context SDUs are kmalloc memory (a
        // cache buffer of at most 4 KiB, or a `GFP_NOWAIT` one), which
        // `kvfree` frees in any context.
        self.any_context_tx.lock().retain(|s| {
            let keep = port.is_some_and(|p| s.port != p);
            n += u64::from(!keep);
            keep
        });
        inner.ep.counters.tx_dropped += n;
    }

    /// An SDU's buffer is done with: kept for reuse, or freed (outside
    /// the cache's lock).
    pub(crate) fn free_bytes(&self, b: Bytes) {
        let rejected = self.cache.lock().give(b);
        drop(rejected);
    }

    /// A received SDU is done with (read by a reader not charged to a
    /// memory cgroup, or dropped): its buffers are kept for reuse (the
    /// transport's receive buffers for the transport), or freed.
    pub(crate) fn free_sdu(&self, sdu: RxSdu) {
        sdu.free_with(
            |b| {
                let rejected = self.cache.lock().give_rx(b);
                drop(rejected);
            },
            |b| self.free_bytes(b),
        );
    }

    /// A kept receive buffer of `cap` bytes, to replace one the core took
    /// from the transport ([`buf_cache::BufCache::take_rx`]).
    pub(crate) fn rx_buf_again(&self, cap: usize) -> Option<Bytes> {
        let got = self.cache.lock().take_rx(cap);
        got.ok()
    }

    /// Every blocked and polling file looks again; in-kernel users get
    /// their callbacks.
    pub(crate) fn wake(this: ArcBorrow<'_, Self>, inner: &Inner) {
        inner.wake_files();
        Self::wake_users(this, inner);
    }

    /// In-kernel users get their callbacks, if they have any due.
    fn wake_users(this: ArcBorrow<'_, Self>, inner: &Inner) {
        if inner.is_live() && inner.users_pending() {
            DelayedWork::schedule(&this.into(), 0);
        }
    }

    /// Queues the allocation timeout work for the earliest deadline.
    pub(crate) fn schedule_expiry(this: ArcBorrow<'_, Self>, inner: &Inner) {
        if let Some(d) = inner.ep.link.next_deadline(&inner.chans) {
            let delay = d
                .saturating_sub(now_ms())
                .min(u64::from(ALLOC_TIMEOUT_MAX_MS)) as u32;
            DelayedWork::schedule(&this.into(), delay);
        }
    }

    /// One received fragment of `len` bytes (header included) in a
    /// transport's receive buffer: `hdr`, then `data`'s bytes. A whole SDU
    /// that fills at least half of `data`, or a part of a message that
    /// its reader keeps in parts ([`Inner::msg_part`]), for a reader not
    /// charged to a memory cgroup, takes `data` itself (no copy; `data` is
    /// left empty and without memory, and this returns `true`); anything
    /// else is copied out of it.
    pub(crate) fn rx_buf(
        this: ArcBorrow<'_, Self>,
        hdr: &[u8; HDR_LEN],
        data: &mut Bytes,
        len: usize,
    ) -> bool {
        let cap = data.capacity();
        let mut frag = BufFrag {
            hdr,
            data,
            len,
            at: 0,
        };
        // SAFETY: `BufFrag::read` succeeds only after `copy_to_uninit`
        // wrote the whole of its argument with bytes.
        unsafe { Self::rx_from(this, len, &mut frag) };
        cap != 0 && frag.data.capacity() == 0
    }

    /// One received fragment of `len` bytes, which `read` copies, in
    /// order, to where each part goes: its header, then its payload
    /// straight into the SDU's own buffer (a whole SDU) or into the
    /// message being reassembled. A part `read` cannot fill is a bad
    /// buffer: counted `bad_desc`, its message dropped.
    ///
    /// # Safety
    ///
    /// `read` returns `Ok` only after it wrote the whole of its argument,
    /// and it writes only initialized bytes.
    pub(crate) unsafe fn rx_from(this: ArcBorrow<'_, Self>, len: usize, read: &mut dyn FragReader) {
        let mut g = this.inner.lock();
        let inner = &mut *g;
        if !inner.is_live() {
            return;
        }
        let mut hdr = [0u8; HDR_LEN];
        let h = len.min(HDR_LEN);
        // SAFETY: `read` writes bytes only (the caller's guarantee).
        if read.read(unsafe { as_uninit(&mut hdr[..h]) }).is_err() {
            inner.bad_fragment(false);
            return;
        }
        let into = {
            let Inner { ep, chans, msg, .. } = inner;
            ep.begin_fragment(chans, &hdr[..h], len - h, msg.capacity())
        };
        // The fragment's own buffer, if it has one that a whole SDU fills
        // at least half of: it becomes the SDU (a reader charged to a
        // memory cgroup gets memory charged to it instead).
        let mut own = match into {
            Payload::Sdu { channel, len } if !inner.charged(channel) => {
                read.take(len, len.saturating_mul(2)).map(RxSdu::Taken)
            }
            _ => None,
        };
        if matches!(into, Payload::Sdu { .. }) {
            // A whole SDU: a message in parts, if one was open, was
            // dropped.
            inner.parts.clear();
        }
        let ok = match into {
            Payload::Skip => true,
            Payload::Sdu { .. } if own.is_some() => true,
            // Into its own buffer; if there is no memory for one, it is
            // dropped (`rx_full`) once it has been checked.
            Payload::Sdu { channel, len } => match inner.sdu_buffer(&this, channel, len) {
                Ok(mut v) => {
                    let ok = match v.spare_capacity_mut().get_mut(..len) {
                        Some(dst) => read.read(dst).is_ok(),
                        None => false,
                    };
                    if ok {
                        // SAFETY: `read` succeeded, so it wrote the first
                        // `len` bytes of the spare capacity (which has
                        // them) with bytes (the caller's guarantee).
                        unsafe { v.set_len(len) };
                    }
                    own = Some(RxSdu::One(v));
                    ok
                }
                Err(_) => true,
            },
            // SAFETY: the caller's guarantee.
            Payload::Msg(a) => unsafe { inner.msg_part(a, read) },
        };
        if !ok {
            if let (Some(v), Payload::Sdu { channel, .. }) = (own, into) {
                inner.discard(&this, channel, v);
            }
            // The last part of a message: the reassembler has closed it,
            // so count it here.
            inner.bad_fragment(matches!(into, Payload::Msg(a) if a.complete && a.offset > 0));
            return;
        }
        let got = {
            let Inner { ep, chans, msg, .. } = inner;
            ep.end_fragment(chans, into, msg)
        };
        let wake = match got {
            Received::Data {
                channel,
                len,
                in_frag,
            } => {
                let port = inner.by_chan.get(usize::from(channel)).copied().flatten();
                let sdu = if in_frag {
                    own.take().ok_or(ENOMEM)
                } else {
                    inner.reassembled(&this, channel, len)
                };
                let (queued, refused) = match (
                    port.and_then(|i| inner.ports.get_mut(i))
                        .and_then(Option::as_mut),
                    sdu,
                ) {
                    (Some(p), Ok(v)) => match p.q.push(v) {
                        Ok(()) => (true, None),
                        Err(v) => (false, Some(v)),
                    },
                    (_, Ok(v)) => (false, Some(v)),
                    _ => (false, None),
                };
                if let Some(v) = refused {
                    inner.discard(&this, channel, v);
                }
                match port {
                    Some(i) if queued => Wake::Port(i),
                    _ => {
                        inner.ep.counters.drop_one(DropReason::RxFull);
                        // The credit it took is given back.
                        inner.ep.consumed(&mut inner.chans, channel, len);
                        Wake::Nobody
                    }
                }
            }
            Received::Event(Event::LinkUp) => {
                let now = kernel::time::Ktime::ktime_get().to_ms();
                if let Some(left_out) = inner.link_log.event(now.unsigned_abs()) {
                    if left_out > 0 {
                        pr_info!(
                            "vmpi{}: link up ({}; {} more times not logged)\n",
                            this.id,
                            this.role.name(),
                            left_out
                        );
                    } else {
                        pr_info!("vmpi{}: link up ({})\n", this.id, this.role.name());
                    }
                }
                inner.rebind_raw();
                Wake::All
            }
            Received::Event(Event::PeerRestarted) => {
                // Not logged: a peer could flood the log with HELLOs.
                inner.end_flows(errno::econnreset());
                inner.rebind_raw();
                // Data of ended flows must not reach the restarted peer
                // (its channels may carry new flows soon); raw channels
                // are bound again by now.
                let Inner { tx, chans, .. } = inner;
                let mut first = true;
                tx.retain(|s| {
                    let raw = chans.get(usize::from(s.channel)) == Some(&Chan::Raw);
                    let keep = (first && s.sent > 0) || raw;
                    first = false;
                    keep
                });
                Wake::All
            }
            Received::Event(Event::Incoming { channel, dst, .. }) => {
                let reg = inner
                    .ports
                    .iter_mut()
                    .flatten()
                    .find_map(|p| match &mut p.state {
                        PortState::Registered { name, backlog } if *name == dst => Some(backlog),
                        _ => None,
                    });
                let refuse = match reg {
                    None => Some(AllocResult::NoSuchApp),
                    Some(b) => b.push(channel).err().map(|_| AllocResult::Refused),
                };
                match refuse {
                    Some(why) => {
                        if let Ok(m) = inner.ep.link.refuse(&mut inner.chans, channel, why) {
                            inner.ep.send_ctrl(&m);
                        }
                        Wake::Nobody
                    }
                    // The registered file polls its backlog; accepts of
                    // the name wait on any file.
                    None => Wake::All,
                }
            }
            Received::Event(Event::Allocated { channel, result }) => {
                match inner.by_chan.get(usize::from(channel)).copied().flatten() {
                    Some(i) => {
                        match result {
                            Ok(()) => {
                                let _ = inner.bind(i, PortState::Open(channel), channel);
                            }
                            Err(e) => {
                                inner.by_chan[usize::from(channel)] = None;
                                if let Ok(p) = inner.port(i) {
                                    p.state = PortState::Failed(alloc_errno(e));
                                }
                            }
                        }
                        Wake::Port(i)
                    }
                    None => Wake::Nobody,
                }
            }
            Received::Event(Event::Cancelled { channel }) => {
                for p in inner.ports.iter_mut().flatten() {
                    if let PortState::Registered { backlog, .. } = &mut p.state {
                        backlog.retain(|&c| c != channel);
                    }
                }
                // No wait ends: a backlog lost an entry.
                Wake::Nobody
            }
            Received::Event(Event::CloseCrossed { channel }) => {
                // Our DEALLOC still waits behind the flow's data, not
                // started: the ACK just queued would overtake it. It goes,
                // with that data, and the channel is free (the peer never
                // gets it, so no ACK of it comes). Otherwise it goes
                // before that ACK (from the outbox, or partly sent), and
                // the peer's ACK of it frees the channel.
                let unsent = inner
                    .tx
                    .iter()
                    .any(|s| s.channel == CONTROL_CHANNEL && s.about == channel && s.sent == 0);
                if unsent {
                    inner.forget_tx(channel);
                    inner.ep.link.unsent_close(&mut inner.chans, channel);
                    inner.wake_writers();
                }
                Wake::Nobody
            }
            Received::Event(Event::Closed { channel }) => {
                // Its SDUs not started leave the send queue.
                inner.forget_tx(channel);
                inner.wake_writers();
                Wake::Nobody
            }
            Received::Event(Event::PeerClosed { channel }) => {
                inner.forget_tx(channel);
                inner.wake_writers();
                match inner
                    .by_chan
                    .get_mut(usize::from(channel))
                    .and_then(Option::take)
                {
                    Some(i) => {
                        if let Ok(p) = inner.port(i) {
                            p.state = PortState::Dead(errno::econnreset());
                            if p.user.is_some() {
                                p.down = Some(errno::econnreset());
                            }
                        }
                        Wake::Port(i)
                    }
                    None => Wake::Nobody,
                }
            }
            Received::Event(Event::CreditGranted { channel }) => Wake::Channel(channel),
            Received::Event(_) | Received::Nothing => Wake::Nobody,
        };
        // An SDU's buffer that the checks after its copy refused (none:
        // `begin_fragment` checked the channel before; kept for safety).
        if let (Some(v), Payload::Sdu { channel, .. }) = (own, into) {
            inner.discard(&this, channel, v);
        }
        if matches!(into, Payload::Msg(a) if a.complete) {
            // A data message its reader did not take (refused, no credit).
            inner.parts.clear();
        }
        inner.wake_for(wake);
        // In-kernel users look only if the fragment was not a file's SDU
        // (the common case: no scan of the ports then).
        if !matches!(wake, Wake::Port(i) if inner.file_waker(i).is_some()) {
            Self::wake_users(this, inner);
        }
        if !inner.ep.outbox.is_empty() {
            inner.kick();
        }
    }

    /// Writes the next fragment to send into `buf`, a buffer of the peer:
    /// [`Dev::tx_to`].
    pub(crate) fn tx(this: ArcBorrow<'_, Self>, buf: &mut [u8]) -> Result<usize> {
        let room = buf.len();
        let mut at = 0;
        Self::tx_to(this, room, &mut |part| {
            let dst = buf.get_mut(at..at + part.len()).ok_or(EINVAL)?;
            dst.copy_from_slice(part);
            at += part.len();
            Ok(())
        })
    }

    /// The next fragment to send, for a buffer of the peer of `room`
    /// bytes: `write` copies its parts, in order, into that buffer (its
    /// header, then its payload straight from the SDU's bytes). Returns its
    /// length, 0 if nothing waits, `EMSGSIZE` if `room` is below the
    /// minimum (the buffer goes back unused: [`Dev::tx_lost`]). If `write`
    /// fails (a bad buffer), the fragment is lost as [`Dev::tx_lost`] says,
    /// and `EFAULT` is returned.
    pub(crate) fn tx_to(
        this: ArcBorrow<'_, Self>,
        room: usize,
        write: &mut FragWriter<'_>,
    ) -> Result<usize> {
        let mut g = this.inner.lock();
        let inner = &mut *g;
        if !inner.is_live() {
            return Ok(0);
        }
        // The fragment returned last reached the peer (or tx_lost() came).
        inner.last_sent = None;
        this.join_any_context(inner);
        // rxq buffers (written by the host) have a minimum; the guest
        // sizes each txq buffer to the fragment (a bare header for an
        // empty SDU).
        let min = if this.role == Role::Host {
            this.cfg.min_rx_buf
        } else {
            HDR_LEN as u32
        };
        inner.ep.retry_credits(&mut inner.chans);
        let data_partial = inner.tx.front().is_some_and(|s| s.sent > 0);
        let written = if !data_partial && (inner.ctrl_partial || !inner.ep.outbox.is_empty()) {
            if room < min as usize {
                return Err(errno::emsgsize());
            }
            // A control message is at most this long: a buffer of `room`
            // bytes would get the same fragment.
            let mut b = [0u8; HDR_LEN + MAX_CTRL_LEN];
            let b = &mut b[..room.min(HDR_LEN + MAX_CTRL_LEN)];
            let n = inner
                .ep
                .outbox
                .next_fragment(b, min.min(b.len() as u32))
                .ok_or_else(errno::emsgsize)?;
            inner.ctrl_partial = Header::parse(b).is_ok_and(|h| h.more);
            if !inner.ctrl_partial {
                inner.last_sent = Some((CONTROL_CHANNEL, n - HDR_LEN));
            }
            write(&b[..n]).map(|()| n)
        } else {
            let Some(sdu) = inner.tx.front_mut() else {
                return Ok(0);
            };
            let start = sdu.sent;
            let (n, more) =
                next_fragment(sdu.data.len() - start, room, min).ok_or_else(errno::emsgsize)?;
            let hdr = Header {
                channel: sdu.channel,
                more,
                cont: start > 0,
            }
            .to_bytes();
            sdu.sent += n;
            if more {
                write(&hdr).and_then(|()| write(&sdu.data[start..start + n]))
            } else {
                let sdu = inner.tx.pop().ok_or(EINVAL)?;
                Self::sent_whole(this, inner, &sdu);
                inner.last_sent = Some((sdu.channel, sdu.data.len()));
                let w = write(&hdr).and_then(|()| write(&sdu.data[start..start + n]));
                this.free_bytes(sdu.data);
                w
            }
            .map(|()| HDR_LEN + n)
        };
        written.map_err(|_| {
            Self::lost(this, inner, true);
            EFAULT
        })
    }

    /// Hands the next message over whole if it is a data SDU not yet
    /// started of at most `max_len` bytes (a guest's txq buffer has no size
    /// limit): its header and bytes, no copy. `None`: nothing waits,
    /// control goes first, or the SDU is longer (use [`Dev::tx`]).
    pub(crate) fn tx_take(
        this: ArcBorrow<'_, Self>,
        max_len: usize,
    ) -> Option<([u8; HDR_LEN], Bytes)> {
        let mut g = this.inner.lock();
        let inner = &mut *g;
        if !inner.is_live() {
            return None;
        }
        this.join_any_context(inner);
        inner.ep.retry_credits(&mut inner.chans);
        if inner.ctrl_partial
            || !inner.ep.outbox.is_empty()
            || !inner
                .tx
                .front()
                .is_some_and(|s| s.sent == 0 && s.data.len() <= max_len)
        {
            return None;
        }
        let sdu = inner.tx.pop()?;
        Self::sent_whole(this, inner, &sdu);
        Some((Header::whole(sdu.channel).to_bytes(), sdu.data))
    }

    /// A receive buffer of the peer was bad (counted `bad_desc`); if
    /// `sent`, it held the fragment [`Dev::tx`] returned last, which is
    /// lost: the rest of its message is not sent (the peer drops what it
    /// has of it when the next message starts), counted in `tx_dropped`
    /// or `ctrl_dropped`.
    pub(crate) fn tx_lost(this: ArcBorrow<'_, Self>, sent: bool) {
        let mut g = this.inner.lock();
        Self::lost(this, &mut g, sent);
    }

    /// [`Dev::tx_lost`] under the lock.
    fn lost(this: ArcBorrow<'_, Self>, inner: &mut Inner, sent: bool) {
        inner.ep.counters.drop_one(DropReason::BadDesc);
        let last = inner.last_sent.take();
        if !sent || !inner.is_live() {
            return;
        }
        // The SDU whose fragment it was: one partly sent, or the one whose
        // last fragment it was (already counted sent).
        let lost = if inner.ctrl_partial {
            inner.ctrl_partial = false;
            if inner.ep.outbox.abandon_partial() {
                inner.ep.counters.ctrl_dropped += 1;
            }
            None
        } else if inner.tx.front().is_some_and(|s| s.sent > 0) {
            let sdu = inner.tx.pop();
            if inner.tx.len() == TXQ_WAKE {
                inner.wake_writers();
                Self::wake_users(this, inner);
            }
            sdu.map(|sdu| {
                let len = sdu.data.len();
                this.free_bytes(sdu.data);
                (sdu.channel, len)
            })
        } else {
            let c = &mut inner.ep.counters;
            last.inspect(|&(ch, len)| {
                if ch != CONTROL_CHANNEL {
                    c.tx_sdus = c.tx_sdus.saturating_sub(1);
                    c.tx_bytes = c.tx_bytes.saturating_sub(len as u64);
                }
            })
        };
        // Not received whole, so never counted by the peer: a flow's
        // credit for it comes back.
        match lost {
            // A control message sent whole, or a DEALLOC queued behind its
            // flow's data (its channel stays closing until the link
            // restarts): only a peer whose buffers are bad loses one.
            Some((CONTROL_CHANNEL, _)) => inner.ep.counters.ctrl_dropped += 1,
            Some((ch, len)) => {
                inner.ep.counters.tx_dropped += 1;
                inner.ep.link.unsent(&mut inner.chans, ch, len);
                inner.wake_for(Wake::Channel(ch));
            }
            None => {}
        }
    }

    /// The transport took the last of `sdu`: counts it; writers look again
    /// if the send queue is down to [`TXQ_WAKE`] (room for many of them).
    fn sent_whole(this: ArcBorrow<'_, Self>, inner: &mut Inner, sdu: &TxSdu) {
        if sdu.channel != CONTROL_CHANNEL {
            inner.ep.counters.tx_sdus += 1;
            inner.ep.counters.tx_bytes += sdu.data.len() as u64;
        }
        if inner.tx.len() == TXQ_WAKE {
            inner.wake_writers();
            Self::wake_users(this, inner);
        }
    }

    pub(crate) fn tx_len(&self) -> usize {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if !inner.is_live() {
            return 0;
        }
        self.join_any_context(inner);
        inner.ep.retry_credits(&mut inner.chans);
        let data_partial = inner.tx.front().is_some_and(|s| s.sent > 0);
        if !data_partial && (inner.ctrl_partial || !inner.ep.outbox.is_empty()) {
            return HDR_LEN + inner.ep.outbox.head_remaining();
        }
        inner
            .tx
            .front()
            .map_or(0, |s| HDR_LEN + s.data.len() - s.sent)
    }

    /// Queues one SDU of port `i` (taken by the caller before the lock),
    /// after those sent from any context. On error the SDU comes back (for
    /// the buffer cache).
    pub(crate) fn send(
        &self,
        inner: &mut Inner,
        i: usize,
        data: Bytes,
    ) -> core::result::Result<usize, (Error, Bytes)> {
        let len = self.send_unkicked(inner, i, data)?;
        inner.kick();
        Ok(len)
    }

    /// A file's write: [`Dev::send`], but a reply (the file read an SDU
    /// since its last write) is not kicked: `Ok((len, true))` says that
    /// the caller calls [`Dev::flush`] once it has dropped `inner`'s lock.
    pub(crate) fn send_from_file(
        &self,
        inner: &mut Inner,
        i: usize,
        data: Bytes,
    ) -> core::result::Result<(usize, bool), (Error, Bytes)> {
        let reply = inner.port(i).is_ok_and(|p| p.replying);
        let len = self.send_unkicked(inner, i, data)?;
        if reply {
            // Sent: the next write is a reply again only after a read (a
            // failed one, e.g. `EAGAIN`, is retried as a reply).
            if let Ok(p) = inner.port(i) {
                p.replying = false;
            }
        } else {
            inner.kick();
        }
        Ok((len, reply))
    }

    fn send_unkicked(
        &self,
        inner: &mut Inner,
        i: usize,
        data: Bytes,
    ) -> core::result::Result<usize, (Error, Bytes)> {
        self.join_any_context(inner);
        let len = data.len();
        let ch = match Self::send_channel(inner, i, len) {
            Ok(ch) => ch,
            Err(e) => return Err((e, data)),
        };
        Self::queue(inner, ch, data)?;
        Ok(len)
    }

    /// The transport sends what waits, now in the caller's context if it
    /// is not busy (else from its work): after [`Dev::send_from_file`].
    /// Process context, no lock of the device's held.
    pub(crate) fn flush(&self) {
        self.gate.flush();
    }

    /// Queues `data` on channel `ch`, which [`Dev::send_channel`] found
    /// room for (the caller kicks the transport).
    fn queue(inner: &mut Inner, ch: u16, data: Bytes) -> core::result::Result<(), (Error, Bytes)> {
        let len = data.len();
        if let Err(s) = inner.tx.push(TxSdu {
            channel: ch,
            about: ch,
            data,
            sent: 0,
        }) {
            return Err((ENOMEM, s.data));
        }
        inner.ep.link.sent(&mut inner.chans, ch, len);
        Ok(())
    }

    /// The channel on which port `i` can send an SDU of `len` bytes now.
    fn send_channel(inner: &mut Inner, i: usize, len: usize) -> Result<u16> {
        inner.live()?;
        let ch = match inner.port(i)?.state {
            PortState::Raw(c) | PortState::Open(c) => c,
            PortState::Dead(_) => return Err(EPIPE),
            _ => return Err(errno::enotconn()),
        };
        let room = inner.tx.len() < TXQ_LEN
            && match inner.ep.link.can_send(&inner.chans, ch, len) {
                Ok(ok) => ok,
                Err(_) => return Err(errno::econnreset()),
            };
        if !room {
            inner.port(i)?.want_space = true;
            return Err(EAGAIN);
        }
        Ok(ch)
    }

    /// Takes port `i`'s next SDU (at most `room` bytes) out of its queue
    /// for a reader that copies it out without the lock. Its credit is not
    /// given back yet: [`Dev::taken`] does that once the copy worked, or
    /// [`Dev::untake`] puts the SDU back. Returns it with its channel and
    /// the device's restart count (an SDU taken before a restart is not
    /// put back after it). Two readers of one file may get SDUs out of
    /// order if the first one's copy faults.
    pub(crate) fn take(
        &self,
        inner: &mut Inner,
        i: usize,
        room: usize,
    ) -> Result<(RxSdu, Option<u16>, u64)> {
        inner.live()?;
        let p = inner.port(i)?;
        let ch = match p.state {
            PortState::Raw(c) | PortState::Open(c) => Some(c),
            PortState::Dead(e) if p.q.is_empty() => return Err(e),
            PortState::Dead(_) => None,
            _ => return Err(errno::enotconn()),
        };
        match p.q.front() {
            None => return Err(EAGAIN),
            Some(s) if s.len() > room => return Err(errno::emsgsize()),
            Some(_) => {}
        }
        let sdu = p.q.pop().ok_or(EAGAIN)?;
        Ok((sdu, ch, inner.ep.counters.restarts))
    }

    /// The SDU of `len` bytes that [`Dev::take`] took from port `i` on
    /// `ch` reached its reader: its credit goes back, if the port still
    /// holds that flow (a reset or close meanwhile ended it, and a new flow
    /// cannot be on this port). Returns `true` if that queued a `CREDIT`:
    /// the caller has it sent, by [`Dev::flush`] once it dropped
    /// `inner`'s lock, or [`Inner::kick`].
    pub(crate) fn taken(&self, inner: &mut Inner, i: usize, ch: Option<u16>, len: usize) -> bool {
        if let Ok(p) = inner.port(i) {
            p.replying = true;
        }
        let Some(ch) = ch else { return false };
        let still = inner
            .port(i)
            .is_ok_and(|p| p.state.data_channel() == Some(ch));
        if still && inner.is_live() {
            let before = inner.ep.outbox.len();
            inner.ep.consumed(&mut inner.chans, ch, len);
            return inner.ep.outbox.len() != before;
        }
        false
    }

    /// The copy of an SDU that [`Dev::take`] took from port `i` (on `ch`)
    /// at restart count `gen` failed (`EFAULT`): it goes back to the front
    /// of the port's queue, so that nothing is lost, and the files look
    /// again (a second reader may have gone to sleep on the queue it
    /// emptied). What cannot go back is returned to be freed, its credit
    /// given back: the port is gone, a raw channel's queue was emptied by
    /// a restart meanwhile, or the queue cannot take it (a raw channel's
    /// filled up meanwhile, counted as `rx_full`, or no memory).
    pub(crate) fn untake(
        &self,
        inner: &mut Inner,
        i: usize,
        sdu: RxSdu,
        ch: Option<u16>,
        gen: u64,
    ) -> Option<RxSdu> {
        let restarted = gen != inner.ep.counters.restarts;
        let Ok(p) = inner.port(i) else {
            return Some(sdu);
        };
        if restarted && matches!(p.state, PortState::Raw(_)) {
            return Some(sdu);
        }
        match p.q.push_front(sdu) {
            Ok(()) => {
                inner.wake_port(i);
                None
            }
            Err(sdu) => {
                inner.ep.counters.drop_one(DropReason::RxFull);
                if self.taken(inner, i, ch, sdu.len()) {
                    inner.kick();
                }
                Some(sdu)
            }
        }
    }

    /// The work: times out allocations, then runs in-kernel users'
    /// callbacks (a budget per run).
    fn service(this: Arc<Self>) {
        let mut calls = KVec::new();
        {
            let mut g = this.inner.lock();
            let inner = &mut *g;
            if !inner.is_live() {
                // `vmpi_transport_unregister` tells the users itself.
                return;
            }
            let now = now_ms();
            let mut expired = false;
            while let Some((channel, m)) = inner.ep.link.expire(&mut inner.chans, now) {
                expired = true;
                inner.ep.send_ctrl(&m);
                if let Some(i) = inner
                    .by_chan
                    .get_mut(usize::from(channel))
                    .and_then(Option::take)
                {
                    if let Ok(p) = inner.port(i) {
                        p.state = PortState::Failed(errno::etimedout());
                    }
                    inner.wake_port(i);
                }
            }
            if expired {
                inner.kick();
            }
            Self::schedule_expiry(this.as_arc_borrow(), inner);
            this.take_calls(inner, &mut calls);
        }
        if calls.is_empty() {
            return;
        }
        {
            let _cb = this.callbacks.lock();
            for c in calls.iter() {
                c.run();
            }
        }
        for c in calls {
            if let Call::Rx(_, sdu) = c {
                this.free_bytes(sdu);
            }
        }
        // Credit to give back, more to deliver.
        let g = this.inner.lock();
        if g.is_live() && g.users_pending() {
            DelayedWork::schedule(&this, 0);
        }
        g.kick();
    }

    /// The transport is going away: files and in-kernel users see
    /// `ENODEV`, no work runs after this, and in-kernel users' `down`
    /// callbacks have run when it returns.
    fn shut_down(this: &Arc<Self>) {
        // No grant or copy of the transport runs after this, and no domain
        // op after the last counters are read (`Domains::shut_down`).
        this.gate.close();
        this.domains.lock().shut_down();
        this.inner.lock().shut_down();
        // No transport takes receive buffers any more: the kept ones go.
        let kept = this.cache.lock().close_rx();
        drop(kept);
        // No run is queued after this (nothing schedules once not live),
        // and a running one finished its callbacks.
        this.work.cancel();
        let mut calls = KVec::new();
        this.take_calls(&mut this.inner.lock(), &mut calls);
        let _cb = this.callbacks.lock();
        for c in calls.iter() {
            c.run();
        }
    }

    /// Collects the in-kernel users' callbacks due (under `inner`).
    pub(crate) fn take_calls(&self, inner: &mut Inner, calls: &mut KVec<Call>) {
        let mut budget = DELIVER_BUDGET;
        for i in 0..inner.ports.len() {
            let room = inner.tx.len() < TXQ_LEN;
            let Some(Some(p)) = inner.ports.get_mut(i) else {
                continue;
            };
            let Some(user) = p.user.clone() else { continue };
            if p.want_space && room {
                p.want_space = false;
                if calls
                    .push(Call::WriteSpace(user.clone()), GFP_KERNEL)
                    .is_err()
                {
                    p.want_space = true;
                }
            }
            while budget > 0 && inner.is_live() {
                let sdu = match self.recv_any(inner, i) {
                    Ok(sdu) => sdu,
                    Err(e) if e == ENOMEM => {
                        budget -= 1;
                        continue;
                    }
                    Err(_) => break,
                };
                budget -= 1;
                if calls.push(Call::Rx(user.clone(), sdu), GFP_KERNEL).is_err() {
                    break;
                }
            }
            let Some(Some(p)) = inner.ports.get_mut(i) else {
                continue;
            };
            if p.q.is_empty() {
                if let Some(e) = p.down.take() {
                    if calls.push(Call::Down(user, e), GFP_KERNEL).is_err() {
                        p.down = Some(e);
                    }
                }
            }
        }
    }

    /// Port `i`'s next SDU, for its in-kernel user (the caller kicks),
    /// in one buffer. An in-kernel user's port is never given an SDU in
    /// parts ([`Inner::reassembled`] checks its reader under the lock it
    /// queues it with); were it, the parts would be copied into one buffer,
    /// and without memory for that the SDU dropped (`rx_full`, `ENOMEM`).
    fn recv_any(&self, inner: &mut Inner, i: usize) -> Result<Bytes> {
        let p = inner.port(i)?;
        let ch = p.state.data_channel();
        let sdu = p.q.pop().ok_or(EAGAIN)?;
        let len = sdu.len();
        if let Some(ch) = ch {
            inner.ep.consumed(&mut inner.chans, ch, len);
        }
        match sdu.into_one(|n| self.new_bytes(n, GFP_KERNEL)) {
            Ok(b) => Ok(b),
            Err(sdu) => {
                inner.ep.counters.drop_one(DropReason::RxFull);
                self.free_sdu(sdu);
                Err(ENOMEM)
            }
        }
    }
}

// SAFETY: `dwork` returns the device's own work item.
unsafe impl DelayedWorkItem for Dev {
    fn dwork(&self) -> &DelayedWork<Self> {
        &self.work
    }
    fn run(this: Arc<Self>) {
        Self::service(this);
    }
}

/// A new endpoint, its outbox's storage sized for `cfg` (kilobytes: it
/// is allocated apart, with `vmalloc` if need be).
fn new_endpoint(role: Role, cfg: Config) -> Result<Endpoint<KVVec<u8>>> {
    let storage = KVVec::from_elem(0u8, Outbox::<KVVec<u8>>::storage_len(&cfg), GFP_KERNEL)?;
    Ok(Endpoint::new(role, cfg, random_epoch(), storage))
}

/// A transport's handle of its device (the C-ABI's `struct
/// vmpi_transport *`): the transport unregisters by dropping it. Dropping
/// unlists the device (lookups no longer find it) and shuts it down
/// ([`Dev::shut_down`]), then the fields go in order: `/dev/vmpiN`, then
/// the id (reused only once that node is gone), then the transport's count
/// of the device.
pub(crate) struct Registered {
    _files: miscdev::Registration<Dev>,
    id: registry::Id,
    pub(crate) dev: Arc<Dev>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.id.unlist();
        Dev::shut_down(&self.dev);
    }
}

/// Registers a transport's device: its id, state and `/dev/vmpiN`.
pub(crate) fn register(
    role: Role,
    transport: CString,
    cfg: Config,
    kick: Kick,
    gate: TransportGate,
    domains: Domains,
) -> Result<KBox<Registered>> {
    // Allocated first: nothing fails once the device is public.
    let slot = KBox::<Registered>::new_uninit(GFP_KERNEL)?;
    let mut id = registry::Id::new()?;
    let id_num = id.get();
    let n = usize::from(cfg.num_channels);
    let mut chans = KVec::with_capacity(n, GFP_KERNEL)?;
    let mut by_chan = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        chans.push(Chan::Free, GFP_KERNEL)?;
        by_chan.push(None, GFP_KERNEL)?;
    }
    let mut tx = Ring::new(TXQ_LEN + n);
    // Room for the first message, not allocated on the data path.
    tx.grow()?;
    let mut inner = Inner {
        transport: Some(kick),
        files: None,
        ep: new_endpoint(role, cfg)?,
        chans,
        msg: Bytes::with_capacity(cfg.max_sdu as usize, GFP_KERNEL)?,
        parts: Parts::new(),
        ports: KVec::new(),
        by_chan,
        tx,
        ctrl_partial: false,
        link_log: LogLimit::new(),
        raw_budget: RawBudget::new(RAW_RX_BYTES)?,
        last_sent: None,
    };
    inner.restart();
    let work = DelayedWork::new()?;
    let cache = BufCache::new()?;
    let any_context_tx = Ring::with_room(ANY_CONTEXT_TXQ_LEN)?;
    let dev = Arc::pin_init(
        pin_init!(Dev {
            id: id_num,
            role,
            transport,
            cfg,
            work,
            inner <- new_mutex!(inner, "vmpi::Dev::inner"),
            callbacks <- new_mutex!((), "vmpi::Dev::callbacks"),
            cache <- BhLock::new(new_spinlock!(cache, "vmpi::Dev::cache")),
            any_context_tx <- BhLock::new(new_spinlock!(any_context_tx, "vmpi::Dev::any_context_tx")),
            gate,
            domains <- new_mutex!(domains, "vmpi::Dev::domains"),
        }),
        GFP_KERNEL,
    )?;
    let name = CString::try_from_fmt(fmt!("vmpi{}", id_num))?;
    let files = miscdev::Registration::new(&name, dev.clone())?;
    dev.inner.lock().files = Some(files.waker());
    id.list(dev.clone());
    let reg = Registered {
        _files: files,
        id,
        dev,
    };
    pr_info!(
        "vmpi{}: {} side of {}, {} channels\n",
        reg.id.get(),
        role.name(),
        &*reg.dev.transport,
        cfg.num_channels
    );
    Ok(KBox::write(slot, reg))
}
