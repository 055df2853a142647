// SPDX-License-Identifier: GPL-2.0

//! `vmpi`: the transport-independent part of VMPI (the paper's VMPI-HL).
//! Transports (`vmpi_guest`, `vmpi_host`) register each device through the
//! C-ABI of `include/rvio/vmpi.h` and move fragments between their rings
//! and this module, which runs the protocol ([`proto::endpoint`]), keeps
//! the users' ports and gives each device a char device `/dev/vmpiN`
//! (`include/uapi/rvio/vmpi.h`) and an in-kernel API (`vmpi_port_*`).
//!
//! A **port** is what one user holds: an open file of `/dev/vmpiN`, or an
//! in-kernel user's `struct vmpi_port`. It is idle, a raw channel, a flow
//! (being allocated, open, or dead), or the registration of an application
//! name with its backlog of incoming flows. Received SDUs wait in the
//! port's queue, bounded by credit (flows) or a fixed length (raw).
//!
//! Locking: one mutex per device (`Dev::inner`) covers the protocol state
//! and every port of that device. Transports call in holding their own
//! lock; this module calls a transport only through `ops->kick`, which
//! schedules work. In-kernel users' callbacks run from the device's work
//! item ([`Dev::service`]) under `Dev::callbacks`, never under `inner`.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::fmt;
use kernel::alloc::KVVec;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{new_mutex, new_spinlock, Arc, ArcBorrow, Mutex, SpinLock};
use kernel::uaccess::{UserSlice, UserSliceReader, UserSliceWriter};

#[path = "../rust/bindings.rs"]
mod bindings;
mod buf_cache;
#[path = "../rust/dwork.rs"]
pub mod dwork;
#[path = "../rust/errno.rs"]
pub mod errno;
// `pub`: the abstraction's whole API stays reachable (unreachable_pub).
#[path = "../rust/miscdev.rs"]
pub mod miscdev;
#[path = "../rust/sysfs_buf.rs"]
pub mod sysfs_buf;
// Pure logic, shared with the host crate rust/pure.
#[path = "proto/mod.rs"]
pub mod proto;

use dwork::{now_ms, DelayedWork, DelayedWorkItem};
use miscdev::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use proto::ctrl::{AllocResult, Ctrl, Name, MAX_CTRL_LEN, MAX_NAME};
use proto::endpoint::{Endpoint, Received};
use proto::link::{AllocError, Chan, ChanError, Event, Role, MIN_WINDOW};
use proto::wire::{next_fragment, Config, DropReason, Header, CONFIG_LEN, CONTROL_CHANNEL, HDR_LEN};

module! {
    type: VmpiCore,
    name: "vmpi",
    author: "rvio developers",
    description: "VMPI: channels, flows, control protocol, char devices and in-kernel API over VMPI transports",
    license: "GPL",
}

/// SDUs a raw channel's receive queue holds (more are dropped, counted).
const RAW_RXQ_LEN: usize = 64;
/// The credit window a flow grants its peer (four SDUs of any size).
const FLOW_WINDOW: u32 = 4 * MIN_WINDOW;
/// SDUs a flow's receive queue can hold: the window bounds them.
const FLOW_RXQ_LEN: usize = (FLOW_WINDOW / 64) as usize + 1;
/// Data SDUs waiting to be sent, per device.
const TXQ_LEN: usize = 256;
/// Incoming flows a registration holds until they are accepted.
const BACKLOG_LEN: usize = 16;
/// Allocation timeout when the user gives none, and the largest allowed.
const ALLOC_TIMEOUT_MS: u32 = 3000;
const ALLOC_TIMEOUT_MAX_MS: u32 = 60_000;
/// Ports (open files and in-kernel users) per device.
const MAX_PORTS: usize = 4096;
/// SDUs handed to in-kernel users per run of the device's work.
const DELIVER_BUDGET: usize = 64;

// An SDU's bytes: up to 64 KiB, so kvmalloc'ed (a fragmented memory does
// not fail an order-4 allocation); small ones are reused (`buf_cache`).
use buf_cache::{BufCache, Bytes};

/// A bounded FIFO that grows on demand up to its limit.
struct Ring<T> {
    slots: KVVec<Option<T>>,
    head: usize,
    count: usize,
    limit: usize,
}

impl<T> Ring<T> {
    /// An empty ring that will hold at most `limit` items (allocates
    /// nothing yet).
    fn new(limit: usize) -> Self {
        Self { slots: KVVec::new(), head: 0, count: 0, limit }
    }
    fn len(&self) -> usize {
        self.count
    }
    fn is_empty(&self) -> bool {
        self.count == 0
    }
    fn grow(&mut self) -> Result {
        let cap = (self.slots.len() * 2).max(4).min(self.limit);
        let mut slots = KVVec::with_capacity(cap, GFP_KERNEL)?;
        while let Some(v) = self.pop() {
            slots.push(Some(v), GFP_KERNEL)?;
        }
        let count = slots.len();
        while slots.len() < cap {
            slots.push(None, GFP_KERNEL)?;
        }
        *self = Self { slots, head: 0, count, limit: self.limit };
        Ok(())
    }
    /// Appends `v`; gives it back if the ring is at its limit or cannot
    /// grow.
    fn push(&mut self, v: T) -> core::result::Result<(), T> {
        if self.count == self.slots.len() && (self.count >= self.limit || self.grow().is_err()) {
            return Err(v);
        }
        let i = (self.head + self.count) % self.slots.len();
        self.slots[i] = Some(v);
        self.count += 1;
        Ok(())
    }
    fn front(&self) -> Option<&T> {
        self.iter().next()
    }
    fn front_mut(&mut self) -> Option<&mut T> {
        if self.count == 0 {
            return None;
        }
        self.slots[self.head].as_mut()
    }
    fn pop(&mut self) -> Option<T> {
        if self.count == 0 {
            return None;
        }
        let v = self.slots[self.head].take();
        self.head = (self.head + 1) % self.slots.len();
        self.count -= 1;
        v
    }
    fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        (0..self.count).filter_map(move |k| self.slots[(self.head + k) % self.slots.len()].as_ref())
    }
    /// Keeps the items `keep` says yes to, in order.
    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let n = self.count;
        for _ in 0..n {
            if let Some(v) = self.pop() {
                if keep(&v) {
                    // Cannot fail: there is room for what was just popped.
                    let _ = self.push(v);
                }
            }
        }
    }
    fn clear(&mut self) {
        while self.pop().is_some() {}
    }
}

/// A message waiting to be sent: its channel (0: an encoded control
/// message that must follow data queued before it), the flow channel it
/// concerns (its own, or the channel a queued `DEALLOC` closes), bytes,
/// and how much of it the transport has taken (fragments).
struct TxSdu {
    channel: u16,
    about: u16,
    data: Bytes,
    sent: usize,
}

/// What a port is.
enum PortState {
    /// Nothing yet.
    Idle,
    /// Bound to a raw channel.
    Raw(u16),
    /// Our allocation request on this channel waits for the answer.
    Allocating(u16),
    /// An open flow.
    Open(u16),
    /// The registration of an application name, with the channels of
    /// incoming flows waiting to be accepted.
    Registered { name: Name, backlog: Ring<u16> },
    /// An allocation failed; the next `VMPI_IOC_ALLOC` reports it.
    Failed(Error),
    /// The flow ended (the peer closed or restarted, or this side
    /// restarted): queued SDUs can still be read, then this error.
    Dead(Error),
}

impl PortState {
    /// The channel whose SDUs the port sends and receives.
    fn data_channel(&self) -> Option<u16> {
        match *self {
            PortState::Raw(c) | PortState::Open(c) => Some(c),
            _ => None,
        }
    }
    /// The channel the port holds in the channel table.
    fn channel(&self) -> Option<u16> {
        match *self {
            PortState::Raw(c) | PortState::Open(c) | PortState::Allocating(c) => Some(c),
            _ => None,
        }
    }
}

/// One user's port (see the module documentation).
struct Port {
    state: PortState,
    /// Received SDUs.
    q: Ring<Bytes>,
    /// `VMPI_IOC_ALLOC` started and has not returned its result.
    connecting: bool,
    /// The in-kernel user, if this port is not a file.
    user: Option<Arc<KernelPort>>,
    /// A send said `EAGAIN`: tell the in-kernel user when there is room.
    want_space: bool,
    /// The in-kernel user is to be told that the port is down.
    down: Option<Error>,
}

impl Port {
    fn new(user: Option<Arc<KernelPort>>) -> Self {
        Self { state: PortState::Idle, q: Ring::new(0), connecting: false, user, want_space: false, down: None }
    }
}

/// Everything of a device that its mutex covers.
struct Inner {
    /// The transport is registered (`false` once it went away).
    alive: bool,
    /// Boxed, and made in place: it is kilobytes (see `new_endpoint`).
    ep: KBox<Endpoint>,
    chans: KVec<Chan>,
    /// The message being reassembled.
    msg: Bytes,
    /// Ports by index; a file or in-kernel user keeps its index.
    ports: KVec<Option<Port>>,
    /// The port holding each channel.
    by_chan: KVec<Option<usize>>,
    tx: Ring<TxSdu>,
    /// Whether a control message from the outbox is being fragmented (it
    /// goes before data).
    ctrl_partial: bool,
    misc: Option<miscdev::Registration<Dev>>,
}

/// The transport's ops and private pointer, used only while alive.
struct Ops {
    ops: *const bindings::vmpi_transport_ops,
    priv_: *mut c_void,
}

/// One VMPI device (one side of it).
#[pin_data]
struct Dev {
    id: c_int,
    role: Role,
    /// The transport's name of the device (vDPA or virtio device).
    transport: CString,
    cfg: Config,
    ops: Ops,
    /// Allocation timeouts and in-kernel users' callbacks.
    work: DelayedWork<Dev>,
    #[pin]
    inner: Mutex<Inner>,
    /// Held while in-kernel users' callbacks run.
    #[pin]
    callbacks: Mutex<()>,
    /// Small SDU buffers for reuse (taken inside `inner` or alone).
    #[pin]
    cache: SpinLock<BufCache>,
}

// SAFETY: `ops` is used only under `inner`'s lock while the transport is
// registered, which the transport guarantees to be any-context safe
// (`include/rvio/vmpi.h`); everything else is `Send`.
unsafe impl Send for Dev {}
// SAFETY: as above; shared access goes through `inner`.
unsafe impl Sync for Dev {}

fn random_epoch() -> u32 {
    // SAFETY: no preconditions.
    unsafe { bindings::get_random_u32() }.max(1)
}

fn alloc_errno(e: AllocError) -> Error {
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

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Device => "host",
        Role::Driver => "guest",
    }
}

impl Inner {
    fn port(&mut self, i: usize) -> Result<&mut Port> {
        self.ports.get_mut(i).and_then(Option::as_mut).ok_or(EINVAL)
    }

    fn new_port(&mut self, user: Option<Arc<KernelPort>>) -> Result<usize> {
        if let Some(i) = self.ports.iter().position(Option::is_none) {
            self.ports[i] = Some(Port::new(user));
            return Ok(i);
        }
        if self.ports.len() >= MAX_PORTS {
            return Err(EMFILE);
        }
        self.ports.push(Some(Port::new(user)), GFP_KERNEL)?;
        Ok(self.ports.len() - 1)
    }

    /// Makes idle port `i` hold `state` on `channel`.
    fn bind(&mut self, i: usize, state: PortState, channel: u16) -> Result {
        let limit = if matches!(state, PortState::Raw(_)) { RAW_RXQ_LEN } else { FLOW_RXQ_LEN };
        let p = self.port(i)?;
        p.state = state;
        p.q = Ring::new(limit);
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
            if data.extend_from_slice(&buf[..n], GFP_KERNEL).is_ok()
                && self.tx.push(TxSdu { channel: CONTROL_CHANNEL, about: channel, data, sent: 0 }).is_ok()
            {
                return;
            }
            // No memory: the data for the closed channel goes first and
            // then counts as bad_channel at the peer.
        }
        self.ep.send_ctrl(m);
    }

    /// Releases what port `i` holds; it becomes idle.
    fn detach(&mut self, i: usize) {
        let Some(Some(p)) = self.ports.get_mut(i) else { return };
        let state = core::mem::replace(&mut p.state, PortState::Idle);
        p.q = Ring::new(0);
        p.connecting = false;
        if let Some(c) = state.channel() {
            self.by_chan[usize::from(c)] = None;
            if let Ok(Some(m)) = self.ep.link.close(&mut self.chans, c) {
                self.send_ctrl_after_data(c, &m);
            }
        }
        if let PortState::Registered { mut backlog, .. } = state {
            while let Some(c) = backlog.pop() {
                if let Ok(m) = self.ep.link.refuse(&mut self.chans, c, AllocResult::NoSuchApp) {
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
                PortState::Registered { ref mut backlog, .. } => backlog.clear(),
                _ => {}
            }
        }
    }

    /// After a reset of the channel table: raw bindings survive it.
    fn rebind_raw(&mut self) {
        let Inner { ep, chans, ports, .. } = self;
        for p in ports.iter().flatten() {
            if let PortState::Raw(c) = p.state {
                let _ = ep.link.bind_raw(chans, c);
            }
        }
    }

    /// This side restarts: new epoch, every flow ends, the send queue and
    /// the raw channels' queues empty.
    fn restart(&mut self) {
        let Inner { ep, chans, .. } = self;
        ep.restart(chans, random_epoch());
        self.end_flows(errno::econnreset());
        self.tx.clear();
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
            p.user.is_some() && (p.down.is_some() || (p.want_space && self.tx.len() < TXQ_LEN) || !p.q.is_empty())
        })
    }
}

impl Dev {
    /// An empty buffer for an SDU of `len` bytes (reused if one waits).
    fn new_bytes(&self, len: usize) -> Result<Bytes> {
        // Not in the `match`: its guard would live on through `alloc`,
        // which may sleep.
        let cached = self.cache.lock().take(len);
        match cached {
            Some(b) => Ok(b),
            None => buf_cache::alloc(len),
        }
    }

    /// An SDU's buffer is done with: kept for reuse, or freed (outside
    /// the cache's lock).
    fn free_bytes(&self, b: Bytes) {
        let rejected = self.cache.lock().give(b);
        drop(rejected);
    }

    /// Asks the transport for a pass (it calls `vmpi_transport_tx`).
    fn kick(&self, inner: &Inner) {
        if inner.alive {
            // SAFETY: while alive the transport's ops and priv are valid
            // and `kick` may be called with our lock held (it only
            // schedules work).
            unsafe {
                if let Some(k) = (*self.ops.ops).kick {
                    k(self.ops.priv_);
                }
            }
        }
    }

    /// Blocked and polling files look again; in-kernel users get their
    /// callbacks.
    fn wake(this: ArcBorrow<'_, Self>, inner: &Inner) {
        if let Some(m) = &inner.misc {
            m.wake();
        }
        if inner.alive && inner.users_pending() {
            DelayedWork::schedule(&this.into(), 0);
        }
    }

    /// Queues the allocation timeout work for the earliest deadline.
    fn schedule_expiry(this: ArcBorrow<'_, Self>, inner: &Inner) {
        if let Some(d) = inner.ep.link.next_deadline(&inner.chans) {
            let delay = d.saturating_sub(now_ms()).min(u64::from(ALLOC_TIMEOUT_MAX_MS)) as u32;
            DelayedWork::schedule(&this.into(), delay);
        }
    }

    fn rx(this: ArcBorrow<'_, Self>, frag: &[u8]) {
        let mut g = this.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return;
        }
        let got = {
            let Inner { ep, chans, msg, .. } = inner;
            ep.on_fragment(chans, frag, msg)
        };
        match got {
            Received::Data { channel, len, in_frag } => {
                let sdu = if in_frag { frag.get(HDR_LEN..HDR_LEN + len) } else { inner.msg.get(..len) };
                let copy = sdu.ok_or(EINVAL).and_then(|sdu| -> Result<Bytes> {
                    let mut v = this.new_bytes(len)?;
                    v.extend_from_slice(sdu, GFP_KERNEL)?;
                    Ok(v)
                });
                let port = inner.by_chan.get(usize::from(channel)).copied().flatten();
                let queued = match (port.and_then(|i| inner.ports.get_mut(i)).and_then(Option::as_mut), copy) {
                    (Some(p), Ok(v)) => p.q.push(v).is_ok(),
                    _ => false,
                };
                if !queued {
                    inner.ep.counters.drop_one(DropReason::RxFull);
                    // The credit it took is given back.
                    inner.ep.consumed(&mut inner.chans, channel, len);
                }
            }
            Received::Event(Event::LinkUp) => {
                pr_info!("vmpi{}: link up ({})\n", this.id, role_name(this.role));
                inner.rebind_raw();
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
            }
            Received::Event(Event::Incoming { channel, dst, .. }) => {
                let reg = inner.ports.iter_mut().flatten().find_map(|p| match &mut p.state {
                    PortState::Registered { name, backlog } if *name == dst => Some(backlog),
                    _ => None,
                });
                let refuse = match reg {
                    None => Some(AllocResult::NoSuchApp),
                    Some(b) => b.push(channel).err().map(|_| AllocResult::Refused),
                };
                if let Some(why) = refuse {
                    if let Ok(m) = inner.ep.link.refuse(&mut inner.chans, channel, why) {
                        inner.ep.send_ctrl(&m);
                    }
                }
            }
            Received::Event(Event::Allocated { channel, result }) => {
                if let Some(i) = inner.by_chan.get(usize::from(channel)).copied().flatten() {
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
                }
            }
            Received::Event(Event::Cancelled { channel }) => {
                for p in inner.ports.iter_mut().flatten() {
                    if let PortState::Registered { backlog, .. } = &mut p.state {
                        backlog.retain(|&c| c != channel);
                    }
                }
            }
            Received::Event(Event::Closed { channel }) => inner.forget_tx(channel),
            Received::Event(Event::PeerClosed { channel }) => {
                inner.forget_tx(channel);
                if let Some(i) = inner.by_chan.get_mut(usize::from(channel)).and_then(Option::take) {
                    if let Ok(p) = inner.port(i) {
                        p.state = PortState::Dead(errno::econnreset());
                        if p.user.is_some() {
                            p.down = Some(errno::econnreset());
                        }
                    }
                }
            }
            Received::Event(_) | Received::Nothing => {}
        }
        Self::wake(this, inner);
        if !inner.ep.outbox.is_empty() {
            this.kick(inner);
        }
    }

    fn tx(this: ArcBorrow<'_, Self>, buf: &mut [u8]) -> Result<usize> {
        let mut g = this.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return Ok(0);
        }
        // rxq buffers (written by the host) have a minimum; the guest
        // sizes each txq buffer to the fragment (a bare header for an
        // empty SDU).
        let min = if this.role == Role::Device { this.cfg.min_rx_buf } else { HDR_LEN as u32 };
        inner.ep.retry_credits(&mut inner.chans);
        let data_partial = inner.tx.front().is_some_and(|s| s.sent > 0);
        if !data_partial && (inner.ctrl_partial || !inner.ep.outbox.is_empty()) {
            let n = inner.ep.outbox.next_fragment(buf, min).ok_or_else(errno::emsgsize)?;
            inner.ctrl_partial = Header::parse(buf).is_ok_and(|h| h.more);
            return Ok(n);
        }
        let Some(sdu) = inner.tx.front_mut() else { return Ok(0) };
        let (n, more) = next_fragment(sdu.data.len() - sdu.sent, buf.len(), min).ok_or_else(errno::emsgsize)?;
        buf[..HDR_LEN].copy_from_slice(&Header { channel: sdu.channel, more }.to_bytes());
        buf[HDR_LEN..HDR_LEN + n].copy_from_slice(&sdu.data[sdu.sent..sdu.sent + n]);
        sdu.sent += n;
        if !more {
            if let Some(sdu) = inner.tx.pop() {
                Self::sent_whole(this, inner, &sdu);
                this.free_bytes(sdu.data);
            }
        }
        Ok(HDR_LEN + n)
    }

    /// Hands the next message over whole if it is a data SDU not yet
    /// started of at most `max_len` bytes (a guest's txq buffer has no size
    /// limit): its header and bytes, no copy. `None`: nothing waits,
    /// control goes first, or the SDU is longer (use [`Dev::tx`]).
    fn tx_take(this: ArcBorrow<'_, Self>, max_len: usize) -> Option<([u8; HDR_LEN], Bytes)> {
        let mut g = this.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return None;
        }
        inner.ep.retry_credits(&mut inner.chans);
        if inner.ctrl_partial
            || !inner.ep.outbox.is_empty()
            || !inner.tx.front().is_some_and(|s| s.sent == 0 && s.data.len() <= max_len)
        {
            return None;
        }
        let sdu = inner.tx.pop()?;
        Self::sent_whole(this, inner, &sdu);
        Some((Header { channel: sdu.channel, more: false }.to_bytes(), sdu.data))
    }

    /// The transport took the last of `sdu`: counts it; writers look again
    /// if the send queue has room now.
    fn sent_whole(this: ArcBorrow<'_, Self>, inner: &mut Inner, sdu: &TxSdu) {
        if sdu.channel != CONTROL_CHANNEL {
            inner.ep.counters.tx_sdus += 1;
            inner.ep.counters.tx_bytes += sdu.data.len() as u64;
        }
        if inner.tx.len() == TXQ_LEN - 1 {
            Self::wake(this, inner);
        }
    }

    fn tx_len(&self) -> usize {
        let mut g = self.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return 0;
        }
        inner.ep.retry_credits(&mut inner.chans);
        let data_partial = inner.tx.front().is_some_and(|s| s.sent > 0);
        if !data_partial && (inner.ctrl_partial || !inner.ep.outbox.is_empty()) {
            return HDR_LEN + inner.ep.outbox.head_remaining();
        }
        inner.tx.front().map_or(0, |s| HDR_LEN + s.data.len() - s.sent)
    }

    /// Queues one SDU of port `i` (taken by the caller before the lock).
    /// On error the SDU comes back (for the buffer cache).
    fn send(this: ArcBorrow<'_, Self>, inner: &mut Inner, i: usize, data: Bytes) -> core::result::Result<usize, (Error, Bytes)> {
        let len = data.len();
        let ch = match Self::send_channel(inner, i, len) {
            Ok(ch) => ch,
            Err(e) => return Err((e, data)),
        };
        if let Err(s) = inner.tx.push(TxSdu { channel: ch, about: ch, data, sent: 0 }) {
            return Err((ENOMEM, s.data));
        }
        inner.ep.link.sent(&mut inner.chans, ch, len);
        this.kick(inner);
        Ok(len)
    }

    /// The channel on which port `i` can send an SDU of `len` bytes now.
    fn send_channel(inner: &mut Inner, i: usize, len: usize) -> Result<u16> {
        if !inner.alive {
            return Err(ENODEV);
        }
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

    /// Takes the next SDU of port `i` if it fits in `room` bytes, and
    /// gives the flow's credit back.
    fn recv(&self, inner: &mut Inner, i: usize, room: usize) -> Result<Bytes> {
        if !inner.alive {
            return Err(ENODEV);
        }
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
        if let Some(ch) = ch {
            inner.ep.consumed(&mut inner.chans, ch, sdu.len());
            if !inner.ep.outbox.is_empty() {
                self.kick(inner);
            }
        }
        Ok(sdu)
    }

    /// The work: times out allocations, then runs in-kernel users'
    /// callbacks (a budget per run).
    fn service(this: Arc<Self>) {
        let mut calls = KVec::new();
        {
            let mut g = this.inner.lock();
            let inner = &mut *g;
            if !inner.alive {
                // `vmpi_transport_unregister` tells the users itself.
                return;
            }
            let now = now_ms();
            let mut expired = false;
            while let Some((channel, m)) = inner.ep.link.expire(&mut inner.chans, now) {
                expired = true;
                inner.ep.send_ctrl(&m);
                if let Some(i) = inner.by_chan.get_mut(usize::from(channel)).and_then(Option::take) {
                    if let Ok(p) = inner.port(i) {
                        p.state = PortState::Failed(errno::etimedout());
                    }
                }
            }
            if expired {
                if let Some(m) = &inner.misc {
                    m.wake();
                }
                this.kick(inner);
            }
            Self::schedule_expiry(this.as_arc_borrow(), inner);
            Self::take_calls(inner, &mut calls);
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
        if g.alive && g.users_pending() {
            DelayedWork::schedule(&this, 0);
        }
        this.kick(&g);
    }

    /// Collects the in-kernel users' callbacks due (under `inner`).
    fn take_calls(inner: &mut Inner, calls: &mut KVec<Call>) {
        let mut budget = DELIVER_BUDGET;
        for i in 0..inner.ports.len() {
            let room = inner.tx.len() < TXQ_LEN;
            let Some(Some(p)) = inner.ports.get_mut(i) else { continue };
            let Some(user) = p.user.clone() else { continue };
            if p.want_space && room {
                p.want_space = false;
                if calls.push(Call::WriteSpace(user.clone()), GFP_KERNEL).is_err() {
                    p.want_space = true;
                }
            }
            while budget > 0 && inner.alive {
                let Ok(sdu) = Self::recv_any(inner, i) else { break };
                budget -= 1;
                if calls.push(Call::Rx(user.clone(), sdu), GFP_KERNEL).is_err() {
                    break;
                }
            }
            let Some(Some(p)) = inner.ports.get_mut(i) else { continue };
            if p.q.is_empty() {
                if let Some(e) = p.down.take() {
                    if calls.push(Call::Down(user, e), GFP_KERNEL).is_err() {
                        p.down = Some(e);
                    }
                }
            }
        }
    }

    /// [`Dev::recv`] without a size limit or a kick (the caller kicks).
    fn recv_any(inner: &mut Inner, i: usize) -> Result<Bytes> {
        let p = inner.port(i)?;
        let ch = p.state.data_channel();
        let sdu = p.q.pop().ok_or(EAGAIN)?;
        if let Some(ch) = ch {
            inner.ep.consumed(&mut inner.chans, ch, sdu.len());
        }
        Ok(sdu)
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

/// A callback of an in-kernel user, collected under `inner` and run
/// without it.
enum Call {
    Rx(Arc<KernelPort>, Bytes),
    WriteSpace(Arc<KernelPort>),
    Down(Arc<KernelPort>, Error),
}

impl Call {
    /// Runs it unless the port was closed (the caller holds `callbacks`,
    /// which `vmpi_port_close` takes after marking the port closed).
    fn run(&self) {
        let u = match self {
            Call::Rx(u, _) | Call::WriteSpace(u) | Call::Down(u, _) => u,
        };
        if u.closed.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: until `vmpi_port_close` returns, the user's ops table
        // and priv are valid (the header's contract); it cannot return
        // while we hold `callbacks` and it had not set `closed` above.
        let ops = unsafe { &*u.ops };
        // What the user got from `vmpi_port_open` (the callbacks' handle).
        let port = &**u as *const KernelPort as *mut bindings::vmpi_port;
        match self {
            Call::Rx(_, sdu) => {
                if let Some(f) = ops.rx {
                    // SAFETY: as above; `sdu` is valid for the call.
                    unsafe { f(port, u.priv_, sdu.as_ptr().cast(), sdu.len()) };
                }
            }
            Call::WriteSpace(_) => {
                if let Some(f) = ops.write_space {
                    // SAFETY: as above.
                    unsafe { f(port, u.priv_) };
                }
            }
            Call::Down(_, e) => {
                if let Some(f) = ops.down {
                    // SAFETY: as above.
                    unsafe { f(port, u.priv_, e.to_errno()) };
                }
            }
        }
    }
}

/// An in-kernel user's port: `struct vmpi_port`.
struct KernelPort {
    dev: Arc<Dev>,
    port: usize,
    ops: *const bindings::vmpi_port_ops,
    priv_: *mut c_void,
    closed: AtomicBool,
}

// SAFETY: `ops` and `priv_` are the user's, valid from any thread until
// `vmpi_port_close` (the header's contract).
unsafe impl Send for KernelPort {}
// SAFETY: as above.
unsafe impl Sync for KernelPort {}

/// An open `/dev/vmpiN`: its port.
struct File {
    dev: Arc<Dev>,
    port: usize,
}

/// Names of the sysfs attributes (`docs/vmpi-sysfs.md`), in `show` order;
/// the drop counters follow, one per `DropReason`.
const ATTRS: [&kernel::str::CStr; 15 + DropReason::COUNT] = [
    kernel::c_str!("id"),
    kernel::c_str!("role"),
    kernel::c_str!("transport"),
    kernel::c_str!("channels"),
    kernel::c_str!("max_sdu"),
    kernel::c_str!("link"),
    kernel::c_str!("bound_channels"),
    kernel::c_str!("flows"),
    kernel::c_str!("apps"),
    kernel::c_str!("rx_sdus"),
    kernel::c_str!("rx_bytes"),
    kernel::c_str!("tx_sdus"),
    kernel::c_str!("tx_bytes"),
    kernel::c_str!("ctrl_rx"),
    kernel::c_str!("ctrl_dropped"),
    kernel::c_str!("drops_bad_header"),
    kernel::c_str!("drops_bad_channel"),
    kernel::c_str!("drops_oversized"),
    kernel::c_str!("drops_bad_fragment"),
    kernel::c_str!("drops_bad_desc"),
    kernel::c_str!("drops_no_credit"),
    kernel::c_str!("drops_bad_control"),
    kernel::c_str!("drops_rx_full"),
];

/// The application name in a `struct vmpi_name` (NUL-padded); `None` if
/// empty.
fn parse_name(b: &[u8]) -> Result<Option<Name>> {
    let len = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    if b[len..].iter().any(|&c| c != 0) {
        return Err(EINVAL);
    }
    if len == 0 {
        return Ok(None);
    }
    Name::new(&b[..len]).map(Some).map_err(|_| EINVAL)
}

fn read_arg<const N: usize>(arg: usize) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    UserSlice::new(arg, N).reader().read_slice(&mut b)?;
    Ok(b)
}

const IOC_BIND_RAW: u32 = kernel::ioctl::_IOW::<u32>(bindings::VMPI_IOC_MAGIC, 1);
const IOC_REGISTER: u32 = kernel::ioctl::_IOW::<bindings::vmpi_name>(bindings::VMPI_IOC_MAGIC, 2);
const IOC_ACCEPT: u32 = kernel::ioctl::_IOW::<bindings::vmpi_name>(bindings::VMPI_IOC_MAGIC, 3);
const IOC_ALLOC: u32 = kernel::ioctl::_IOW::<bindings::vmpi_alloc>(bindings::VMPI_IOC_MAGIC, 4);
const NAME_LEN: usize = core::mem::size_of::<bindings::vmpi_name>();
const ALLOC_LEN: usize = core::mem::size_of::<bindings::vmpi_alloc>();
const _: () = assert!(NAME_LEN == MAX_NAME && ALLOC_LEN == 2 * MAX_NAME + 8);

impl File {
    fn bind_raw(&self, inner: &mut Inner, want: u32) -> Result<isize> {
        let ch = u16::try_from(want).map_err(|_| EINVAL)?;
        if ch == CONTROL_CHANNEL || ch >= self.dev.cfg.num_channels {
            return Err(EINVAL);
        }
        if !matches!(inner.port(self.port)?.state, PortState::Idle) {
            return Err(EINVAL);
        }
        inner.ep.link.bind_raw(&mut inner.chans, ch).map_err(|_| EBUSY)?;
        inner.bind(self.port, PortState::Raw(ch), ch)?;
        Ok(0)
    }

    fn register(&self, inner: &mut Inner, name: Name) -> Result<isize> {
        if !matches!(inner.port(self.port)?.state, PortState::Idle) {
            return Err(EINVAL);
        }
        let taken = inner
            .ports
            .iter()
            .flatten()
            .any(|p| matches!(&p.state, PortState::Registered { name: n, .. } if *n == name));
        if taken {
            return Err(errno::eaddrinuse());
        }
        inner.port(self.port)?.state = PortState::Registered { name, backlog: Ring::new(BACKLOG_LEN) };
        Ok(0)
    }

    fn accept(&self, inner: &mut Inner, name: Name) -> Result<isize> {
        if !matches!(inner.port(self.port)?.state, PortState::Idle) {
            return Err(EINVAL);
        }
        loop {
            let backlog = inner
                .ports
                .iter_mut()
                .flatten()
                .find_map(|p| match &mut p.state {
                    PortState::Registered { name: n, backlog } if *n == name => Some(backlog),
                    _ => None,
                })
                .ok_or(ENOENT)?;
            let ch = backlog.pop().ok_or(EAGAIN)?;
            // The request may have been cancelled or reset meanwhile.
            if let Ok(m) = inner.ep.link.accept(&mut inner.chans, ch, FLOW_WINDOW) {
                inner.ep.send_ctrl(&m);
                inner.bind(self.port, PortState::Open(ch), ch)?;
                self.dev.kick(inner);
                return Ok(ch as isize);
            }
        }
    }

    fn alloc(&self, inner: &mut Inner, arg: &[u8; ALLOC_LEN]) -> Result<isize> {
        let p = inner.port(self.port)?;
        match p.state {
            PortState::Idle => {}
            PortState::Allocating(_) => return Err(EAGAIN),
            PortState::Open(ch) if p.connecting => {
                p.connecting = false;
                return Ok(ch as isize);
            }
            PortState::Failed(e) => {
                p.state = PortState::Idle;
                p.connecting = false;
                return Err(e);
            }
            PortState::Open(_) => return Err(errno::eisconn()),
            _ => return Err(EINVAL),
        }
        let dst = parse_name(&arg[..MAX_NAME])?.ok_or(EINVAL)?;
        let src = parse_name(&arg[MAX_NAME..2 * MAX_NAME])?;
        let word = |o: usize| u32::from_ne_bytes([arg[o], arg[o + 1], arg[o + 2], arg[o + 3]]);
        let (timeout, reserved) = (word(2 * MAX_NAME), word(2 * MAX_NAME + 4));
        if reserved != 0 || timeout > ALLOC_TIMEOUT_MAX_MS {
            return Err(EINVAL);
        }
        let timeout = if timeout == 0 { ALLOC_TIMEOUT_MS } else { timeout };
        let (ch, m) = inner
            .ep
            .link
            .request(&mut inner.chans, dst, src, FLOW_WINDOW, now_ms(), timeout.into())
            .map_err(alloc_errno)?;
        inner.ep.send_ctrl(&m);
        inner.bind(self.port, PortState::Allocating(ch), ch)?;
        inner.port(self.port)?.connecting = true;
        self.dev.kick(inner);
        Dev::schedule_expiry(self.dev.as_arc_borrow(), inner);
        // The answer comes later: a blocking caller waits for it.
        Err(EAGAIN)
    }
}

impl miscdev::FileOps for Dev {
    type File = File;
    const ATTRS: &'static [&'static kernel::str::CStr] = &ATTRS;

    fn show(&self, idx: usize, out: &mut miscdev::SysfsBuf<'_>) {
        use core::fmt::Write;
        let g = self.inner.lock();
        let c = &g.ep.counters;
        let count = |f: fn(&PortState) -> bool| g.ports.iter().flatten().filter(|p| f(&p.state)).count();
        let _ = match idx {
            0 => writeln!(out, "{}", self.id),
            1 => writeln!(out, "{}", role_name(self.role)),
            2 => writeln!(out, "{}", &*self.transport),
            3 => writeln!(out, "{}", self.cfg.num_channels),
            4 => writeln!(out, "{}", self.cfg.max_sdu),
            5 => writeln!(out, "{}", if g.alive && g.ep.link.is_up() { "up" } else { "down" }),
            6 => writeln!(out, "{}", count(|s| matches!(s, PortState::Raw(_)))),
            7 => writeln!(out, "{}", count(|s| matches!(s, PortState::Open(_)))),
            8 => writeln!(out, "{}", count(|s| matches!(s, PortState::Registered { .. }))),
            9 => writeln!(out, "{}", c.rx_sdus),
            10 => writeln!(out, "{}", c.rx_bytes),
            11 => writeln!(out, "{}", c.tx_sdus),
            12 => writeln!(out, "{}", c.tx_bytes),
            13 => writeln!(out, "{}", c.ctrl_rx),
            14 => writeln!(out, "{}", c.ctrl_dropped),
            i => writeln!(out, "{}", c.drops.get(i - 15).copied().unwrap_or(0)),
        };
    }

    fn open(dev: ArcBorrow<'_, Self>) -> Result<File> {
        let port = dev.inner.lock().new_port(None)?;
        Ok(File { dev: dev.into(), port })
    }

    fn read(file: &File, out: &mut UserSliceWriter) -> Result<usize> {
        let room = out.len();
        let mut g = file.dev.inner.lock();
        // Copy out while the SDU is still queued, so that a fault (EFAULT)
        // loses nothing; `recv` then takes it (and gives credit back).
        let alive = g.alive;
        if let Some(s) = g.port(file.port)?.q.front() {
            if s.len() <= room && alive {
                out.write_slice(s)?;
            }
        }
        let sdu = file.dev.recv(&mut g, file.port, room)?;
        drop(g);
        let n = sdu.len();
        file.dev.free_bytes(sdu);
        Ok(n)
    }

    fn write(file: &File, input: &mut UserSliceReader, len: usize) -> Result<usize> {
        if len > file.dev.cfg.max_sdu as usize {
            return Err(errno::emsgsize());
        }
        let mut data = file.dev.new_bytes(len)?;
        miscdev::read_append(input, &mut data, len)?;
        let mut g = file.dev.inner.lock();
        match Dev::send(file.dev.as_arc_borrow(), &mut g, file.port, data) {
            Ok(n) => Ok(n),
            Err((e, data)) => {
                if e == EAGAIN {
                    // Files wait on the wait queue, not for write_space.
                    if let Ok(p) = g.port(file.port) {
                        p.want_space = false;
                    }
                }
                drop(g);
                file.dev.free_bytes(data);
                Err(e)
            }
        }
    }

    fn poll(file: &File) -> u32 {
        let mut g = file.dev.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return POLLERR;
        }
        let room = inner.tx.len() < TXQ_LEN;
        let Ok(p) = inner.port(file.port) else { return POLLERR };
        let readable = if p.q.is_empty() { 0 } else { POLLIN };
        match &p.state {
            PortState::Raw(_) => readable | if room { POLLOUT } else { 0 },
            PortState::Open(c) => {
                let c = *c;
                let credit = inner.ep.link.can_send(&inner.chans, c, 0).unwrap_or(false);
                readable | if room && credit { POLLOUT } else { 0 }
            }
            PortState::Registered { backlog, .. } => {
                if backlog.is_empty() {
                    0
                } else {
                    POLLIN
                }
            }
            PortState::Failed(_) => POLLOUT | POLLERR,
            PortState::Dead(_) => readable | POLLERR | POLLHUP,
            PortState::Idle | PortState::Allocating(_) => 0,
        }
    }

    fn ioctl(file: &File, cmd: u32, arg: usize) -> Result<isize> {
        // User memory first, outside the lock.
        let mut name_arg = [0u8; NAME_LEN];
        let mut alloc_arg = [0u8; ALLOC_LEN];
        let mut raw_arg = 0u32;
        match cmd {
            IOC_BIND_RAW => raw_arg = u32::from_ne_bytes(read_arg::<4>(arg)?),
            IOC_REGISTER | IOC_ACCEPT => name_arg = read_arg::<NAME_LEN>(arg)?,
            IOC_ALLOC => alloc_arg = read_arg::<ALLOC_LEN>(arg)?,
            _ => return Err(ENOTTY),
        }
        let name = || parse_name(&name_arg)?.ok_or(EINVAL);
        let mut g = file.dev.inner.lock();
        let inner = &mut *g;
        if !inner.alive {
            return Err(ENODEV);
        }
        match cmd {
            IOC_BIND_RAW => file.bind_raw(inner, raw_arg),
            IOC_REGISTER => file.register(inner, name()?),
            IOC_ACCEPT => file.accept(inner, name()?),
            _ => file.alloc(inner, &alloc_arg),
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let mut g = self.dev.inner.lock();
        let registered = matches!(g.port(self.port).map(|p| &p.state), Ok(PortState::Registered { .. }));
        g.detach(self.port);
        if let Some(slot) = g.ports.get_mut(self.port) {
            *slot = None;
        }
        // A blocked VMPI_IOC_ACCEPT on the name gets ENOENT now.
        if let (true, Some(m)) = (registered, &g.misc) {
            m.wake();
        }
        self.dev.kick(&g);
    }
}

// --- the C-ABI (include/rvio/vmpi.h), exported by vmpi_core_exports.c ---------

/// # Safety
///
/// `t` is a handle returned by `vmpi_transport_register` and not yet
/// unregistered.
unsafe fn dev<'a>(t: *mut bindings::vmpi_transport) -> ArcBorrow<'a, Dev> {
    // SAFETY: the handle is `Arc::into_raw` of a `Dev` whose count it
    // holds until `vmpi_transport_unregister`.
    unsafe { ArcBorrow::from_raw(t as *const Dev) }
}

/// A new endpoint, made in place on the heap: as a value it would take
/// kilobytes of a 16 KiB kernel stack deep in the transports' probe paths.
fn new_endpoint(role: Role, cfg: Config) -> Result<KBox<Endpoint>> {
    let epoch = random_epoch();
    // SAFETY: `init_at` initializes every field of the slot it is given,
    // which is valid for writes; it cannot fail.
    let init = unsafe {
        kernel::init::init_from_closure(move |slot: *mut Endpoint| {
            Endpoint::init_at(slot, role, cfg, epoch);
            Ok::<(), core::convert::Infallible>(())
        })
    };
    KBox::init(init, GFP_KERNEL)
}

fn register(role: Role, transport: CString, cfg: Config, ops: Ops) -> Result<Arc<Dev>> {
    // SAFETY: no preconditions.
    let id = unsafe { bindings::vmpi_core_id_alloc() };
    if id < 0 {
        return Err(Error::from_errno(id));
    }
    let r = (|| {
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
            alive: true,
            ep: new_endpoint(role, cfg)?,
            chans,
            msg: Bytes::from_elem(0u8, cfg.max_sdu as usize, GFP_KERNEL)?,
            ports: KVec::new(),
            by_chan,
            tx,
            ctrl_partial: false,
            misc: None,
        };
        inner.restart();
        let work = DelayedWork::new()?;
        let cache = BufCache::new()?;
        let dev = Arc::pin_init(
            pin_init!(Dev {
                id,
                role,
                transport,
                cfg,
                ops,
                work,
                inner <- new_mutex!(inner, "vmpi::Dev::inner"),
                callbacks <- new_mutex!((), "vmpi::Dev::callbacks"),
                cache <- new_spinlock!(cache, "vmpi::Dev::cache"),
            }),
            GFP_KERNEL,
        )?;
        let name = CString::try_from_fmt(fmt!("vmpi{}", id))?;
        let misc = miscdev::Registration::new(&name, dev.clone())?;
        dev.inner.lock().misc = Some(misc);
        // SAFETY: the pointer stays valid while listed: the transport's
        // handle holds a count until `vmpi_transport_unregister` unlists it.
        let r = unsafe { bindings::vmpi_core_dev_add(id, &*dev as *const Dev as *mut c_void) };
        if r < 0 {
            // A file opened meanwhile gets ENODEV; dropping the
            // registration (not under `inner`: removing the node waits for
            // sysfs readers, which take it) breaks the device <->
            // registration cycle.
            let misc = {
                let mut g = dev.inner.lock();
                g.alive = false;
                g.misc.take()
            };
            drop(misc);
            return Err(Error::from_errno(r));
        }
        pr_info!(
            "vmpi{}: {} side of {}, {} channels\n",
            id,
            role_name(role),
            &*dev.transport,
            cfg.num_channels
        );
        Ok(dev)
    })();
    if r.is_err() {
        // SAFETY: `id` came from `vmpi_core_id_alloc` and is unused.
        unsafe { bindings::vmpi_core_id_free(id) };
    }
    r
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `name` is NUL-terminated; `cfg` is valid for `cfg_len` reads; `ops` and
/// `priv_` stay valid until
/// `vmpi_transport_unregister` (and `ops->kick` may be called from any
/// context); `err` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_register(
    role: c_uint,
    name: *const c_char,
    cfg: *const c_void,
    cfg_len: usize,
    ops: *const bindings::vmpi_transport_ops,
    priv_: *mut c_void,
    err: *mut c_int,
) -> *mut bindings::vmpi_transport {
    let r = (|| {
        let role = match role {
            bindings::vmpi_role_VMPI_ROLE_HOST => Role::Device,
            bindings::vmpi_role_VMPI_ROLE_GUEST => Role::Driver,
            _ => return Err(EINVAL),
        };
        if name.is_null() || cfg.is_null() || ops.is_null() || cfg_len < CONFIG_LEN {
            return Err(EINVAL);
        }
        // SAFETY: `name` is a NUL-terminated string (the header's contract).
        let name = unsafe { kernel::str::CStr::from_char_ptr(name) };
        let name = CString::try_from_fmt(fmt!("{}", name))?;
        let mut raw = [0u8; CONFIG_LEN];
        // SAFETY: `cfg` is valid for `cfg_len >= CONFIG_LEN` reads.
        raw.copy_from_slice(unsafe { core::slice::from_raw_parts(cfg.cast::<u8>(), CONFIG_LEN) });
        let cfg = Config::from_bytes(&raw).map_err(|_| EINVAL)?;
        register(role, name, cfg, Ops { ops, priv_ })
    })();
    match r {
        Ok(dev) => Arc::into_raw(dev) as *mut bindings::vmpi_transport,
        Err(e) => {
            // SAFETY: `err` is valid for a write.
            unsafe { *err = e.to_errno() };
            core::ptr::null_mut()
        }
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; it is not used after this.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_unregister(t: *mut bindings::vmpi_transport) {
    // SAFETY: by the function's contract we take back the handle's count.
    let dev = unsafe { Arc::from_raw(t as *const Dev) };
    // SAFETY: no preconditions; no new lookups find the device.
    unsafe { bindings::vmpi_core_dev_del(dev.id) };
    {
        let mut g = dev.inner.lock();
        g.alive = false;
        if let Some(m) = &g.misc {
            m.wake();
        }
        for p in g.ports.iter_mut().flatten() {
            if p.user.is_some() {
                p.down = Some(ENODEV);
                p.q.clear();
            }
        }
    }
    // No run is queued after this (nothing schedules once not alive),
    // and a running one finished its callbacks.
    dev.work.cancel();
    // In-kernel users learn that the device goes away.
    let mut calls = KVec::new();
    Dev::take_calls(&mut dev.inner.lock(), &mut calls);
    {
        let _cb = dev.callbacks.lock();
        for c in calls.iter() {
            c.run();
        }
    }
    let misc = dev.inner.lock().misc.take();
    // Removes /dev/vmpiN and wakes blocked callers (they see ENODEV);
    // dropping it breaks the device <-> registration cycle.
    drop(misc);
    pr_info!("vmpi{}: removed\n", dev.id);
    // SAFETY: the id came from `vmpi_core_id_alloc`; the node is gone.
    unsafe { bindings::vmpi_core_id_free(dev.id) };
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_restart(t: *mut bindings::vmpi_transport) {
    // SAFETY: by the function's contract.
    let dev = unsafe { dev(t) };
    let mut g = dev.inner.lock();
    g.restart();
    Dev::wake(dev, &g);
    dev.kick(&g);
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `frag` is valid for `len` reads.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_rx(t: *mut bindings::vmpi_transport, frag: *const c_void, len: usize) {
    if frag.is_null() {
        return;
    }
    // SAFETY: by the function's contract.
    let (dev, frag) = unsafe { (dev(t), core::slice::from_raw_parts(frag.cast::<u8>(), len)) };
    Dev::rx(dev, frag);
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `buf` is valid for `room` writes.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx(t: *mut bindings::vmpi_transport, buf: *mut c_void, room: usize) -> isize {
    if buf.is_null() {
        return EINVAL.to_errno() as isize;
    }
    // SAFETY: by the function's contract.
    let (dev, buf) = unsafe { (dev(t), core::slice::from_raw_parts_mut(buf.cast::<u8>(), room)) };
    match Dev::tx(dev, buf) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `sdu` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_take(
    t: *mut bindings::vmpi_transport,
    max_len: usize,
    sdu: *mut bindings::vmpi_sdu,
) -> c_int {
    if sdu.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: by the function's contract.
    let dev = unsafe { dev(t) };
    if dev.role != Role::Driver {
        return EINVAL.to_errno();
    }
    let Some((hdr, data)) = Dev::tx_take(dev, max_len) else { return 0 };
    let (data, len, cap) = data.into_raw_parts();
    // SAFETY: `sdu` is valid for a write (the function's contract); the
    // taker owns the bytes from here (see the header).
    unsafe { sdu.write(bindings::vmpi_sdu { hdr, data: data.cast(), len, cap }) };
    1
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle; `sdu` is valid for reads and came from
/// `vmpi_transport_tx_take` of any device (the caller gives up its bytes).
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_done(t: *mut bindings::vmpi_transport, sdu: *mut bindings::vmpi_sdu) {
    if sdu.is_null() {
        return;
    }
    // SAFETY: by the function's contract.
    let (dev, sdu) = unsafe { (dev(t), sdu.read()) };
    // SAFETY: (data, len, cap) are a `Bytes`'s raw parts, from
    // `vmpi_transport_tx_take`, whose ownership the caller gives back.
    let data = unsafe { Bytes::from_raw_parts(sdu.data.cast::<u8>(), sdu.len, sdu.cap) };
    dev.free_bytes(data);
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_tx_len(t: *mut bindings::vmpi_transport) -> usize {
    // SAFETY: by the function's contract.
    unsafe { dev(t) }.tx_len()
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `t` is a registered handle.
#[no_mangle]
pub unsafe extern "C" fn vmpi_transport_drop(t: *mut bindings::vmpi_transport, reason: c_uint) {
    // SAFETY: by the function's contract.
    let dev = unsafe { dev(t) };
    if let Some(&why) = DropReason::ALL.get(reason as usize) {
        let mut g = dev.inner.lock();
        g.ep.counters.drop_one(why);
        // The lost buffer may have been part of a message.
        g.ep.rx_lost();
    }
}

/// The device with id `id`, if registered.
fn find(mut pred: impl FnMut(&Dev) -> bool) -> Option<Arc<Dev>> {
    let mut idx: kernel::ffi::c_ulong = 0;
    let mut found = None;
    // SAFETY: no preconditions; paired with the unlock below.
    unsafe { bindings::vmpi_core_devs_lock() };
    loop {
        // SAFETY: we hold the registry lock; `idx` is valid for writes.
        let p = unsafe { bindings::vmpi_core_devs_next(&mut idx) };
        if p.is_null() {
            break;
        }
        // SAFETY: a listed device is alive under the registry lock (the
        // transport's handle holds a count until it is unlisted).
        let d = unsafe { ArcBorrow::from_raw(p as *const Dev) };
        if pred(&d) {
            found = Some(d.into());
            break;
        }
    }
    // SAFETY: we hold the lock.
    unsafe { bindings::vmpi_core_devs_unlock() };
    found
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `transport` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn vmpi_dev_find(role: c_uint, transport: *const c_char) -> c_int {
    let role = match role {
        bindings::vmpi_role_VMPI_ROLE_HOST => Role::Device,
        bindings::vmpi_role_VMPI_ROLE_GUEST => Role::Driver,
        _ => return ENODEV.to_errno(),
    };
    let name = if transport.is_null() {
        None
    } else {
        // SAFETY: NUL-terminated by the function's contract.
        Some(unsafe { kernel::str::CStr::from_char_ptr(transport) })
    };
    match find(|d| d.role == role && name.is_none_or_eq(&d.transport)) {
        Some(d) => d.id,
        None => ENODEV.to_errno(),
    }
}

/// `Option<&CStr>` matches a name: `None` matches any.
trait NameFilter {
    fn is_none_or_eq(&self, name: &kernel::str::CStr) -> bool;
}

impl NameFilter for Option<&kernel::str::CStr> {
    fn is_none_or_eq(&self, name: &kernel::str::CStr) -> bool {
        self.map_or(true, |n| n.as_bytes() == name.as_bytes())
    }
}

fn port_open(id: c_int, channel: u16, ops: *const bindings::vmpi_port_ops, priv_: *mut c_void) -> Result<Arc<KernelPort>> {
    let dev = find(|d| d.id == id).ok_or(ENODEV)?;
    if channel == CONTROL_CHANNEL || channel >= dev.cfg.num_channels {
        return Err(EINVAL);
    }
    let mut g = dev.inner.lock();
    let inner = &mut *g;
    if !inner.alive {
        return Err(ENODEV);
    }
    let port = inner.new_port(None)?;
    let r = (|| {
        let kp = Arc::new(
            KernelPort { dev: dev.clone(), port, ops, priv_, closed: AtomicBool::new(false) },
            GFP_KERNEL,
        )?;
        inner.ep.link.bind_raw(&mut inner.chans, channel).map_err(|e| match e {
            ChanError::Invalid => EINVAL,
            ChanError::WrongState => EBUSY,
        })?;
        inner.bind(port, PortState::Raw(channel), channel)?;
        inner.port(port)?.user = Some(kp.clone());
        Ok(kp)
    })();
    if r.is_err() {
        inner.ports[port] = None;
    }
    r
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `ops` and `priv_` stay valid until `vmpi_port_close`; `err` is valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_open(
    id: c_int,
    channel: u16,
    ops: *const bindings::vmpi_port_ops,
    priv_: *mut c_void,
    err: *mut c_int,
) -> *mut bindings::vmpi_port {
    // SAFETY: `ops` is NULL or valid (the function's contract).
    let usable = !ops.is_null() && unsafe { (*ops).rx.is_some() && (*ops).down.is_some() };
    let r = if usable { port_open(id, channel, ops, priv_) } else { Err(EINVAL) };
    match r {
        Ok(kp) => Arc::into_raw(kp) as *mut bindings::vmpi_port,
        Err(e) => {
            // SAFETY: `err` is valid for a write.
            unsafe { *err = e.to_errno() };
            core::ptr::null_mut()
        }
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; `sdu` is valid for `len` reads.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_send(p: *mut bindings::vmpi_port, sdu: *const c_void, len: usize) -> c_int {
    // SAFETY: an open port is `Arc::into_raw` of a `KernelPort`.
    let kp = unsafe { ArcBorrow::from_raw(p as *const KernelPort) };
    let r = (|| {
        if len > kp.dev.cfg.max_sdu as usize {
            return Err(errno::emsgsize());
        }
        if sdu.is_null() && len > 0 {
            return Err(EINVAL);
        }
        let mut data = kp.dev.new_bytes(len)?;
        if len > 0 {
            // SAFETY: `sdu` is valid for `len` reads.
            data.extend_from_slice(unsafe { core::slice::from_raw_parts(sdu.cast::<u8>(), len) }, GFP_KERNEL)?;
        }
        let mut g = kp.dev.inner.lock();
        Dev::send(kp.dev.as_arc_borrow(), &mut g, kp.port, data).map_err(|(e, data)| {
            drop(g);
            kp.dev.free_bytes(data);
            e
        })
    })();
    match r {
        Ok(_) => 0,
        Err(e) => e.to_errno(),
    }
}

/// See `include/rvio/vmpi.h`.
///
/// # Safety
///
/// `p` is an open port; it is not used after this.
#[no_mangle]
pub unsafe extern "C" fn vmpi_port_close(p: *mut bindings::vmpi_port) {
    // SAFETY: by the function's contract we take back the user's count.
    let kp = unsafe { Arc::from_raw(p as *const KernelPort) };
    kp.closed.store(true, Ordering::Release);
    {
        let mut g = kp.dev.inner.lock();
        g.detach(kp.port);
        if let Some(slot) = g.ports.get_mut(kp.port) {
            *slot = None;
        }
        kp.dev.kick(&g);
    }
    // A callback that started before `closed` was set has finished.
    drop(kp.dev.callbacks.lock());
}

// The header's declarations (through bindgen) and these definitions must
// agree: each pair must coerce to one function pointer type.
const _: [unsafe extern "C" fn(
    c_uint,
    *const c_char,
    *const c_void,
    usize,
    *const bindings::vmpi_transport_ops,
    *mut c_void,
    *mut c_int,
) -> *mut bindings::vmpi_transport; 2] = [bindings::vmpi_transport_register, vmpi_transport_register];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport); 3] =
    [bindings::vmpi_transport_unregister, vmpi_transport_unregister, vmpi_transport_restart];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, *const c_void, usize); 2] =
    [bindings::vmpi_transport_rx, vmpi_transport_rx];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, *mut c_void, usize) -> isize; 2] =
    [bindings::vmpi_transport_tx, vmpi_transport_tx];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport) -> usize; 2] =
    [bindings::vmpi_transport_tx_len, vmpi_transport_tx_len];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport, c_uint); 2] =
    [bindings::vmpi_transport_drop, vmpi_transport_drop];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_transport); 2] =
    [bindings::vmpi_transport_restart, vmpi_transport_restart];
const _: [unsafe extern "C" fn(c_uint, *const c_char) -> c_int; 2] = [bindings::vmpi_dev_find, vmpi_dev_find];
const _: [unsafe extern "C" fn(
    c_int,
    u16,
    *const bindings::vmpi_port_ops,
    *mut c_void,
    *mut c_int,
) -> *mut bindings::vmpi_port; 2] = [bindings::vmpi_port_open, vmpi_port_open];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_port, *const c_void, usize) -> c_int; 2] =
    [bindings::vmpi_port_send, vmpi_port_send];
const _: [unsafe extern "C" fn(*mut bindings::vmpi_port); 2] = [bindings::vmpi_port_close, vmpi_port_close];

struct VmpiCore;

impl kernel::Module for VmpiCore {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded, ABI version {}\n", bindings::VMPI_ABI_VERSION);
        Ok(VmpiCore)
    }
}
