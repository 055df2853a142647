// SPDX-License-Identifier: GPL-2.0

//! A VMPI device's grants (`VMPI_F_GRANT`, `docs/vmpi-protocol.md` section
//! 5): the grantq and copyq of one device, its grant table while it is a
//! domain, and the registry of domains through which a copy finds the
//! grant it names in another device.
//!
//! Locks, outermost first: a device's mutex (its work pass, held by the C
//! half), the maps of both devices of a copy (`vdpa::Maps`, in a fixed
//! order), the registry, a device's policy binding, a device's grants
//! spinlock. A copy runs in the *receiver's* work pass and never takes the
//! sender's device mutex: what it ends in the sender (a completion) is
//! queued in the sender's [`Grants::done`] and written by the sender's
//! own pass. The sender's reset holds its map write-locked, so no copy
//! reads from it while it forgets its grants.
//!
//! Posted receives (`envelope_proto::posted`) are copyq chains the device
//! keeps: the policy of another device's grant reserves one
//! ([`Domains::deliver`], under this device's grants spinlock) and this
//! device's pass copies the frame into it, as a copy request would.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::prelude::*;
use kernel::sync::{new_mutex, new_spinlock, Arc, Mutex, SpinLock};

use crate::bindings;
use crate::dwork::{now_ms, DelayedWork, DelayedWorkItem};
use crate::envelope_proto::grant::{
    Completion, CopyRefusal, CopyRequest, CopyStatus, GrantHeader, GrantRefusal, GrantTable,
    Handle, RecordError, ADDR_LEN, BATCH, COPYQ, COPY_REQ_LEN, GRANTQ, GRANT_HDR_LEN, HOLD_NS,
    MAX_GRANTS, MAX_GRANTS_PER_DEST, STATUS_LEN,
};
use crate::envelope_proto::msg::Meta;
use crate::envelope_proto::posted::{
    CopyAsk, Delivery, PostedPool, Reserved, DELIVERY_LEN, MAX_POSTED,
};
use crate::params;
use crate::vdpa::{self, DeviceRef, Fault, Range};
use crate::vmpi_transport::DomainBinding;

/// Device-readable descriptors a grant chain may have: its header and
/// `VMPI_GRANT_MAX_SG` frame pieces, and some room for a driver that
/// splits its header.
pub(crate) const GRANT_RD_MAX: usize = 24;
/// Device-writable descriptors a copy chain may have.
const COPY_WR_MAX: usize = 24;

/// What the grant table keeps of a grant's chain, returned with its
/// completion: the chain's head and its status descriptor.
#[derive(Clone, Copy, Default)]
struct Token {
    head: u16,
    status: Range,
}

/// A grant's readable descriptors, by table slot: valid while the grant
/// is recorded (a pinned grant keeps its slot).
#[derive(Clone, Copy, Default)]
struct Kept {
    rd: [Range; GRANT_RD_MAX],
    n: usize,
}

type Table = GrantTable<Token, MAX_GRANTS, MAX_GRANTS_PER_DEST>;
type Pool = PostedPool<MAX_POSTED>;

/// An empty pool, to write in place (it is kilobytes: not built on the
/// stack).
const EMPTY_POOL: Pool = PostedPool::new();

/// A posted receive's chain, kept by its pool slot (see [`Pool`]): read
/// and written by its device's pass only.
#[derive(Clone, Copy, Default)]
struct PostedChain {
    head: u16,
    wr: [Range; COPY_WR_MAX],
    nwr: usize,
    writable: usize,
}

/// A device's grant state, under [`Shared::grants`].
pub(crate) struct Grants {
    /// The domain id while bound.
    bound: Option<u16>,
    /// Made at the first bind; kept (renewed) across binds.
    table: Option<KVBox<Table>>,
    kept: KVVec<Kept>,
    /// Completions to write, by this device's next pass.
    done: DoneRing,
    /// The driver's posted receives and the deliveries into them.
    posted: KBox<Pool>,
    stats: bindings::vmpi_grant_stats,
}

/// Whether [`DoneRing::push`] has warned.
static RING_FULL_WARNED: AtomicBool = AtomicBool::new(false);

/// Completions waiting to be written, oldest first. Each grant completes
/// once, so [`MAX_GRANTS`] places (allocated at the first bind) hold them.
struct DoneRing {
    buf: KVVec<(Token, Completion)>,
    head: usize,
    len: usize,
}

impl DoneRing {
    fn push(&mut self, d: (Token, Completion)) {
        let n = self.buf.len();
        if self.len < n {
            self.buf[(self.head + self.len) % n] = d;
            self.len += 1;
        } else {
            // Cannot happen: a grant chain is kept only while held grants
            // and pending completions are fewer than `MAX_GRANTS` together
            // (`take_grant`), and it is then one or the other. The chain
            // would stay out.
            if !RING_FULL_WARNED.swap(true, Ordering::Relaxed) {
                pr_warn!("grant completion ring full: a grant chain stays out\n");
            }
        }
    }

    fn pop(&mut self) -> Option<(Token, Completion)> {
        if self.len == 0 {
            return None;
        }
        let d = self.buf[self.head];
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        Some(d)
    }
}

impl Grants {
    fn queue_done(&mut self, d: Option<(Token, Completion)>) {
        if let Some((t, c)) = d {
            if let Some(s) = c.status() {
                self.stats.completions[s as usize] += 1;
            }
            self.done.push((t, c));
        }
        self.stats.held = self.table.as_ref().map_or(0, |t| t.held() as u32);
    }
}

/// The grant state of one device, shared with the copies other devices
/// run and with the core's domain calls.
#[pin_data]
pub(crate) struct Shared {
    #[pin]
    grants: SpinLock<Grants>,
    /// The policy while bound; held around each policy call, so unbinding
    /// waits for one in flight.
    #[pin]
    binding: Mutex<Option<DomainBinding>>,
    /// This device's work: schedules the pass that writes completions.
    work: vdpa::Handle,
    /// Whether the driver negotiated `VMPI_F_GRANT` and is running: it
    /// can copy what it is sent envelopes of (set at `DRIVER_OK`, cleared
    /// at reset).
    copy_ready: AtomicBool,
    /// Copies from this device's grants that found it in the registry
    /// and have not ended: unbinding waits for them before it drops the
    /// registry's reference to the device, the one they use.
    copies: AtomicU32,
    /// Runs a pass when the next grant times out.
    timer: DelayedWork<Shared>,
}

// SAFETY: `timer` is a field of `Shared` that no other object returns.
unsafe impl DelayedWorkItem for Shared {
    fn dwork(&self) -> &DelayedWork<Self> {
        &self.timer
    }

    fn run(this: Arc<Self>) {
        this.work.schedule();
    }
}

/// One bound domain.
struct Entry {
    domain: u16,
    shared: Arc<Shared>,
    dev: DeviceRef,
}

/// Every bound domain of the module's devices (module-wide).
#[pin_data]
pub(crate) struct Registry {
    #[pin]
    domains: Mutex<KVec<Option<Entry>>>,
    /// The generation every new table starts after (see
    /// `GrantTable::new`), past those of every table before it.
    seed: AtomicU32,
}

impl Registry {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                domains <- new_mutex!(KVec::new()),
                seed: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// Whether the bound device `domain` can copy (see
    /// `Shared::copy_ready`); `None` if no device is `domain`.
    fn copy_ready(&self, domain: u16) -> Option<bool> {
        let g = self.domains.lock();
        let e = g.iter().flatten().find(|e| e.domain == domain)?;
        Some(e.shared.copy_ready.load(Ordering::Acquire))
    }

    /// The bound device `domain`, counted in as a copy's source until the
    /// result is dropped.
    fn find(&self, domain: u16) -> Option<Source> {
        let g = self.domains.lock();
        let e = g.iter().flatten().find(|e| e.domain == domain)?;
        // Under the registry's lock: `unbind` takes the entry out under
        // it, then waits for the count.
        e.shared.copies.fetch_add(1, Ordering::AcqRel);
        // SAFETY: the entry's reference lives until `Domains::unbind` has
        // taken it out of the registry and seen `copies` at 0, which is
        // after this `Source` is dropped.
        let peer = unsafe { e.dev.peer() };
        Some(Source {
            shared: e.shared.clone(),
            peer,
        })
    }
}

/// A copy's source device, counted in (see [`Registry::find`]).
struct Source {
    shared: Arc<Shared>,
    peer: vdpa::Peer,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.shared.copies.fetch_sub(1, Ordering::AcqRel);
    }
}

fn ns_now() -> u64 {
    now_ms().saturating_mul(1_000_000)
}

fn completion_of(status: u32) -> Completion {
    match status {
        bindings::VMPI_GRANT_UNDELIVERED => Completion::Undelivered,
        _ => Completion::Refused,
    }
}

/// A device's domain binding: what the core's domain calls use.
#[derive(Clone)]
pub(crate) struct Domains {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
}

/// A device's grants: what its work pass and the core's domain calls use.
pub(crate) struct DeviceGrants {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    /// Scratch of the work pass (heap: small stack frames).
    scratch: KBox<Scratch>,
    /// The driver cancelled its posted receives (`CopyAsk::Cancel`).
    cancel: bool,
}

struct Scratch {
    rd: [Range; GRANT_RD_MAX],
    wr: [Range; COPY_WR_MAX],
    src: Kept,
    done: [(Token, Completion); BATCH],
    /// The posted receives' chains, by pool slot.
    posted: KVVec<PostedChain>,
}

impl DeviceGrants {
    pub(crate) fn new(work: vdpa::Handle, registry: Arc<Registry>) -> Result<Self> {
        let timer = DelayedWork::new()?;
        let posted = KBox::<Pool>::new_uninit(GFP_KERNEL)?.write(EMPTY_POOL);
        let chains = KVVec::from_elem(PostedChain::default(), MAX_POSTED, GFP_KERNEL)?;
        let shared = Arc::pin_init(
            pin_init!(Shared {
                grants <- new_spinlock!(Grants {
                    bound: None,
                    table: None,
                    kept: KVVec::new(),
                    done: DoneRing {
                        buf: KVVec::new(),
                        head: 0,
                        len: 0,
                    },
                    posted,
                    stats: Default::default(),
                }),
                binding <- new_mutex!(None),
                work,
                copies: AtomicU32::new(0),
                copy_ready: AtomicBool::new(false),
                timer,
            }),
            GFP_KERNEL,
        )?;
        let scratch = KBox::new(
            Scratch {
                rd: [Range::default(); GRANT_RD_MAX],
                wr: [Range::default(); COPY_WR_MAX],
                src: Kept::default(),
                done: [(Token::default(), Completion::Done); BATCH],
                posted: chains,
            },
            GFP_KERNEL,
        )?;
        Ok(Self {
            shared,
            registry,
            scratch,
            cancel: false,
        })
    }

    /// What the core's domain calls use.
    pub(crate) fn domains(&self) -> Domains {
        Domains {
            shared: self.shared.clone(),
            registry: self.registry.clone(),
        }
    }

    /// The driver reset the device (its map is write-locked: no copy reads
    /// from it): its rings are gone, so every grant is forgotten.
    pub(crate) fn reset(&self) {
        // The posted chains are gone.
        self.stop_deliveries(|pool| pool.clear());
        let mut g = self.shared.grants.lock();
        g.done.len = 0;
        if let Some(t) = g.table.as_mut() {
            t.forget_all(|_| {});
        }
        g.stats.held = 0;
    }

    /// The VMM suspends the device (QEMU's stop, a migration): every chain
    /// kept out is used before the VMM reads the available index, to which
    /// it restores the used index. Deliveries reserved or waiting end
    /// their grants `UNDELIVERED` (the senders send `FRAME`s); every grant
    /// held ends as at its deadline (`TIMEOUT`: the sender may send the
    /// frame again; a finishing copy in flight decides instead); every
    /// posted receive comes back `GONE` (the driver posts again; a
    /// netfront counts them in `rx_delivered_failed`).
    pub(crate) fn suspend(&mut self, q: &mut vdpa::Queues<'_>) {
        // Every posted receive comes back.
        let mut back = [false; MAX_POSTED];
        self.stop_deliveries(|pool| pool.give_back_all(|i| back[i] = true));
        self.give_back(q, &back);
        {
            let mut g = self.shared.grants.lock();
            if let Some(mut t) = g.table.take() {
                t.expire(u64::MAX, |tok, c| g.queue_done(Some((tok, c))));
                g.table = Some(t);
            }
            g.queue_done(None);
        }
        // The copies that pinned a grant finish, and complete it.
        q.drain_maps();
        while self.expire_and_complete(q) {}
        let mut g = self.shared.grants.lock();
        g.stats.held = g.table.as_ref().map_or(0, |t| t.held() as u32);
    }

    /// No delivery is reserved from now on (`Domains::deliver`), and those
    /// reserved or waiting end their grants `UNDELIVERED` (the senders
    /// send `FRAME`s instead); then `empty` empties the pool, under the
    /// lock of the last `drain_next`, as the pool asks.
    fn stop_deliveries(&self, empty: impl FnOnce(&mut Pool)) {
        self.shared.copy_ready.store(false, Ordering::Release);
        loop {
            let d = {
                let mut g = self.shared.grants.lock();
                match g.posted.drain_next() {
                    Some(d) => d,
                    None => {
                        empty(&mut g.posted);
                        g.stats.posted = 0;
                        return;
                    }
                }
            };
            self.undeliver(d);
        }
    }

    /// Ends the grant of a delivery that will not happen: `UNDELIVERED`.
    fn undeliver(&self, d: Delivery) {
        let Some(source) = self.registry.find(d.handle.domain()) else {
            return;
        };
        let src = &source.shared;
        {
            let mut g = src.grants.lock();
            let done = g
                .table
                .as_mut()
                .and_then(|t| t.complete(d.handle, Completion::Undelivered));
            g.queue_done(done);
        }
        src.work.schedule();
    }

    /// The driver set `DRIVER_OK` with `features`.
    pub(crate) fn start(&self, features: u64) {
        let ready = features & crate::envelope_proto::grant::F_GRANT != 0;
        self.shared.copy_ready.store(ready, Ordering::Release);
    }

    /// The device goes away.
    pub(crate) fn remove(&self) {
        self.domains().unbind();
        self.shared.timer.cancel();
    }

    /// A work pass: completions, timeouts, then at most `copy_batch`
    /// (the module parameter, at most [`BATCH`]) chains of each queue and
    /// deliveries. Returns whether there is more to do.
    pub(crate) fn process(&mut self, q: &mut vdpa::Queues<'_>) -> bool {
        let batch = params::copy_batch();
        q.kicks_off(GRANTQ);
        q.kicks_off(COPYQ);
        let mut more = self.expire_and_complete(q);
        let mut granted = 0;
        while granted < batch {
            let Ok(Some(chain)) = q.pop(GRANTQ) else {
                break;
            };
            self.take_grant(chain);
            granted += 1;
        }
        let mut n = 0;
        while n < batch {
            let Ok(Some(chain)) = q.pop(COPYQ) else {
                break;
            };
            self.take_copy(chain);
            n += 1;
        }
        if core::mem::take(&mut self.cancel) {
            self.cancel_posted(q);
        }
        let delivered = self.deliver_posted(q, batch);
        let full = granted == batch || n == batch || delivered == batch;
        more |= full;
        if n > 0 || delivered > 0 {
            q.notify(COPYQ);
        }
        if granted + n + delivered > 0 {
            let s = &mut self.shared.grants.lock().stats;
            s.passes += 1;
            s.passes_full += u64::from(full);
        }
        // What the policy refused at once.
        more |= self.expire_and_complete(q);
        // Chains refused before the policy completed when dropped: their
        // interrupt, if `expire_and_complete` had none to give.
        if granted > 0 {
            q.notify(GRANTQ);
        }
        if !more {
            more |= !q.kicks_on(GRANTQ);
            more |= !q.kicks_on(COPYQ);
        }
        more
    }

    /// Times out what is due, writes up to [`BATCH`] completions and arms
    /// the timer for the next deadline. Returns whether completions wait.
    fn expire_and_complete(&mut self, q: &mut vdpa::Queues<'_>) -> bool {
        let now = ns_now();
        let (n, left, next) = {
            let mut g = self.shared.grants.lock();
            if let Some(mut t) = g.table.take() {
                t.expire(now, |tok, c| g.queue_done(Some((tok, c))));
                g.table = Some(t);
                g.queue_done(None);
            }
            let mut n = 0;
            while n < BATCH {
                let Some(d) = g.done.pop() else {
                    break;
                };
                self.scratch.done[n] = d;
                n += 1;
            }
            // The next grant to time out, or delivery to give up.
            let next = match (
                g.table.as_ref().and_then(|t| t.next_deadline()),
                g.posted.wait_deadline(),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (n, g.done.len, next)
        };
        if n > 0 {
            let maps = q.maps(None);
            for &(tok, c) in &self.scratch.done[..n] {
                let Some(status) = c.status() else {
                    continue;
                };
                // A status we cannot write still completes the chain.
                let _ = maps.write(&[tok.status], 0, &status.to_le_bytes());
            }
            drop(maps);
            for &(tok, c) in &self.scratch.done[..n] {
                if c.status().is_some() {
                    q.complete(GRANTQ, tok.head, STATUS_LEN as u32);
                }
            }
            q.notify(GRANTQ);
        }
        if let Some(deadline) = next {
            let ms = deadline.saturating_sub(now) / 1_000_000 + 1;
            DelayedWork::schedule(&self.shared, ms.min(HOLD_NS / 1_000_000 + 1) as u32);
        }
        left > 0
    }

    /// One grantq chain: checked, recorded, put to the policy; a refused
    /// one completes at once.
    fn take_grant(&mut self, mut chain: vdpa::Chain<'_>) {
        let (readable, writable) = (chain.readable_len(), chain.writable_len());
        let sc = &mut *self.scratch;
        let shape = chain.ranges(&mut sc.rd, &mut sc.wr[..1]);
        let mut hdr = [0u8; GRANT_HDR_LEN];
        let got = chain.pull(&mut hdr).unwrap_or(0);
        let parsed = GrantHeader::parse(&hdr[..got], readable, writable);
        let mut addrs = [0u8; ADDR_LEN];
        let checked = match (parsed, shape) {
            (Err(GrantRefusal::NoStatus), _) => return self.count(None),
            (Err(GrantRefusal::Refused), _) | (_, Err(_)) => Err(()),
            // One writable descriptor: the status.
            (Ok(_), Ok((_, nwr))) if nwr != 1 => Err(()),
            (Ok(h), Ok((nrd, _))) => match chain.pull(&mut addrs) {
                Ok(ADDR_LEN) => Ok((h, nrd)),
                _ => Err(()),
            },
        };
        let Ok((h, nrd)) = checked else {
            let _ = chain.push(&bindings::VMPI_GRANT_REFUSED.to_le_bytes());
            return self.count(Some(Completion::Refused));
        };
        // Room and a domain, before the chain is kept (the domain is
        // checked again). A kept chain is a held grant or a pending
        // completion until its used entry is written, and only this pass
        // adds to their sum (a completion elsewhere moves a grant from
        // one to the other): it stays at most `MAX_GRANTS`, the
        // completion ring's size.
        let room = {
            let g = self.shared.grants.lock();
            g.bound.is_some()
                && g.table
                    .as_ref()
                    .is_some_and(|t| t.held() + g.done.len < MAX_GRANTS)
        };
        if !room {
            let _ = chain.push(&bindings::VMPI_GRANT_REFUSED.to_le_bytes());
            return self.count(Some(Completion::Refused));
        }
        let tok = Token {
            status: self.scratch.wr[0],
            head: chain.keep(),
        };
        let handle = {
            let mut g = self.shared.grants.lock();
            g.stats.grants += 1;
            let r = match (g.bound, g.table.as_mut()) {
                (Some(_), Some(t)) => {
                    t.set_hold(params::grant_hold_ns());
                    t.record(&h, addrs, tok, ns_now())
                }
                _ => Err(RecordError::Full),
            };
            // Its chain's descriptors, in the slot the grant took.
            if let Ok(handle) = r {
                let k = &mut g.kept[usize::from(handle.slot())];
                k.rd[..nrd].copy_from_slice(&self.scratch.rd[..nrd]);
                k.n = nrd;
            }
            g.stats.held = g.table.as_ref().map_or(0, |t| t.held() as u32);
            r
        };
        let handle = match handle {
            Ok(handle) => handle,
            // Its destination holds its share of this domain's grants: the
            // sender sends a full frame instead, as for a destination that
            // cannot copy.
            Err(RecordError::Share) => {
                let mut g = self.shared.grants.lock();
                g.stats.over_share += 1;
                return g.queue_done(Some((tok, Completion::Undelivered)));
            }
            // Unbound meanwhile: the kept chain completes REFUSED.
            Err(RecordError::Full) => {
                let mut g = self.shared.grants.lock();
                return g.queue_done(Some((tok, Completion::Refused)));
            }
        };
        let mut meta = [0u8; 12];
        meta.copy_from_slice(&hdr[8..20]);
        // A destination whose driver cannot copy would let the grant time
        // out: it is undelivered now, and the sender sends a full frame.
        let status = if self.registry.copy_ready(h.dest_domain) == Some(false) {
            bindings::VMPI_GRANT_UNDELIVERED
        } else {
            match self.shared.binding.lock().as_ref() {
                Some(b) => b.grant(handle.0, h.dest_domain, &addrs, &meta, h.frame_len),
                None => bindings::VMPI_GRANT_REFUSED,
            }
        };
        if status != 0 {
            let mut g = self.shared.grants.lock();
            let d = g
                .table
                .as_mut()
                .and_then(|t| t.complete(handle, completion_of(status)));
            g.queue_done(d);
        }
    }

    /// Counts a grant chain completed at once.
    fn count(&self, c: Option<Completion>) {
        let mut g = self.shared.grants.lock();
        g.stats.grants += 1;
        if let Some(s) = c.and_then(Completion::status) {
            g.stats.completions[s as usize] += 1;
        }
    }

    /// One copyq chain: checked by the sender's table, copied from the
    /// sender's memory straight into this driver's, answered.
    fn take_copy(&mut self, mut chain: vdpa::Chain<'_>) {
        let (readable, writable) = (chain.readable_len(), chain.writable_len());
        let sc = &mut *self.scratch;
        let Ok((_, nwr)) = chain.ranges(&mut sc.rd, &mut sc.wr) else {
            // No way to find the status: used with nothing written.
            return self.count_copy(CopyStatus::BadRequest, 0);
        };
        let mut req = [0u8; COPY_REQ_LEN];
        let got = if readable == COPY_REQ_LEN {
            chain.pull(&mut req).unwrap_or(0)
        } else {
            0
        };
        let ask = CopyAsk::parse(&req[..got], writable);
        let (status, len) = match ask {
            Err(CopyRefusal::NoStatus) => return self.count_copy(CopyStatus::BadRequest, 0),
            Err(CopyRefusal::BadRequest) => (CopyStatus::BadRequest, 0),
            Ok(CopyAsk::Copy(req, room)) => self.copy(&chain, &req, room, nwr),
            Ok(CopyAsk::Post(room)) => match self.post(room) {
                Some(slot) => {
                    // Kept until a frame is delivered into it.
                    let sc = &mut *self.scratch;
                    let pc = &mut sc.posted[slot];
                    pc.wr[..nwr].copy_from_slice(&sc.wr[..nwr]);
                    pc.nwr = nwr;
                    pc.writable = writable;
                    pc.head = chain.keep();
                    return;
                }
                None => (CopyStatus::TooMany, 0),
            },
            Ok(CopyAsk::Cancel) => {
                // After this pass's copyq chains (they borrow the queues).
                self.cancel = true;
                (CopyStatus::Ok, 0)
            }
        };
        // A cancel is no copy: not counted as one.
        if !matches!(ask, Ok(CopyAsk::Cancel)) {
            self.count_copy(status, len);
        }
        let wr = &self.scratch.wr[..nwr];
        let maps = chain.maps(None);
        let ok = maps
            .write(wr, writable - STATUS_LEN, &(status as u32).to_le_bytes())
            .is_ok();
        drop(maps);
        chain.set_written(match (ok, status) {
            (false, _) => 0,
            (true, CopyStatus::Ok) => len as u32 + STATUS_LEN as u32,
            (true, _) => STATUS_LEN as u32,
        });
    }

    /// Books a posted receive of `room` bytes: its slot, or `None` if
    /// [`MAX_POSTED`] are held.
    fn post(&self, room: u32) -> Option<usize> {
        let mut g = self.shared.grants.lock();
        let slot = g.posted.post(room, ns_now()).ok();
        g.stats.posted = g.posted.held() as u32;
        slot
    }

    /// Gives back every posted receive no delivery is reserved for:
    /// status `GONE`.
    fn cancel_posted(&mut self, q: &mut vdpa::Queues<'_>) {
        let mut back = [false; MAX_POSTED];
        {
            let mut g = self.shared.grants.lock();
            g.posted.cancel(|i| back[i] = true);
            g.stats.posted = g.posted.held() as u32;
        }
        self.give_back(q, &back);
    }

    /// Uses the posted receives of the slots `back` marks: status `GONE`.
    fn give_back(&mut self, q: &mut vdpa::Queues<'_>, back: &[bool; MAX_POSTED]) {
        let status = (CopyStatus::Gone as u32).to_le_bytes();
        for (i, _) in back.iter().enumerate().filter(|(_, b)| **b) {
            let pc = &self.scratch.posted[i];
            let maps = q.maps(None);
            let ok = maps
                .write(&pc.wr[..pc.nwr], pc.writable - STATUS_LEN, &status)
                .is_ok();
            drop(maps);
            self.count_copy(CopyStatus::Gone, 0);
            q.complete(COPYQ, pc.head, if ok { STATUS_LEN as u32 } else { 0 });
        }
    }

    /// Copies up to `batch` delivered frames into their posted receives
    /// and uses those chains; returns how many. A delivery waiting for a
    /// buffer no buffer will hold any longer is given up (`UNDELIVERED`).
    fn deliver_posted(&mut self, q: &mut vdpa::Queues<'_>, batch: usize) -> usize {
        let mut n = 0;
        while n < batch {
            let (next, stuck) = {
                let mut g = self.shared.grants.lock();
                let stuck = g.posted.take_stuck(ns_now());
                if stuck.is_some() {
                    g.stats.wait_gave_up += 1;
                }
                let next = g.posted.take_next();
                g.stats.posted = g.posted.held() as u32;
                (next, stuck)
            };
            let gave_up = stuck.is_some();
            if let Some(d) = stuck {
                self.undeliver(d);
            }
            let Some((slot, room, d)) = next else {
                if gave_up {
                    // The one behind it may go now.
                    continue;
                }
                break;
            };
            n += 1;
            let pc = self.scratch.posted[slot];
            let wr = &pc.wr[..pc.nwr];
            let caller = self.shared.grants.lock().bound.unwrap_or(0);
            let (status, len) = match self.registry.find(d.handle.domain()) {
                None => (CopyStatus::BadHandle, 0),
                Some(source) => {
                    let maps = q.maps(Some(&source.peer));
                    let r = Self::grant_copy(
                        &maps,
                        &source,
                        &mut self.scratch.src,
                        caller,
                        &d.request(),
                        room as usize,
                        wr,
                        &d.encode(),
                    );
                    drop(maps);
                    source.shared.work.schedule();
                    r
                }
            };
            self.count_copy(status, len);
            match status {
                CopyStatus::Ok => self.shared.grants.lock().stats.delivered += 1,
                // This device is no longer the grant's destination (the
                // switch detached it): the sender sends a FRAME instead.
                CopyStatus::NotGranted => self.undeliver(d),
                _ => {}
            }
            let maps = q.maps(None);
            let ok = maps
                .write(wr, pc.writable - STATUS_LEN, &(status as u32).to_le_bytes())
                .is_ok();
            drop(maps);
            let written = match (ok, status) {
                (false, _) => 0,
                (true, CopyStatus::Ok) => (DELIVERY_LEN + len + STATUS_LEN) as u32,
                (true, _) => STATUS_LEN as u32,
            };
            q.complete(COPYQ, pc.head, written);
        }
        n
    }

    fn count_copy(&self, s: CopyStatus, len: usize) {
        let mut g = self.shared.grants.lock();
        g.stats.copies[s as usize] += 1;
        if s == CopyStatus::Ok {
            g.stats.copied_bytes += len as u64;
        }
    }

    /// A copy request's copy: `Ok` and the bytes copied, or why not.
    fn copy(
        &mut self,
        chain: &vdpa::Chain<'_>,
        req: &CopyRequest,
        room: usize,
        nwr: usize,
    ) -> (CopyStatus, usize) {
        let caller = self.shared.grants.lock().bound.unwrap_or(0);
        let Some(source) = self.registry.find(req.handle.domain()) else {
            return (CopyStatus::BadHandle, 0);
        };
        // The sender's map and ours stay as they are until the copy ends.
        let maps = chain.maps(Some(&source.peer));
        let sc = &mut *self.scratch;
        let r = Self::grant_copy(
            &maps,
            &source,
            &mut sc.src,
            caller,
            req,
            room,
            &sc.wr[..nwr],
            &[],
        );
        drop(maps);
        source.shared.work.schedule();
        r
    }

    /// The copy itself, for `caller` from `source`'s grant into `wr`
    /// after `head` (a delivery's header, written first), under `maps`
    /// (both devices' maps): checked and pinned by the sender's table,
    /// released after. `Ok` and the bytes copied, or why not. A fault
    /// writing `head` fails the copy as one writing the frame does, so a
    /// grant ends `DONE` only with its frame and header in place. The
    /// caller schedules the sender's pass after it dropped `maps` (a
    /// completion may wait there).
    #[allow(clippy::too_many_arguments)]
    fn grant_copy(
        maps: &vdpa::Maps<'_>,
        source: &Source,
        src_kept: &mut Kept,
        caller: u16,
        req: &CopyRequest,
        room: usize,
        wr: &[Range],
        head: &[u8],
    ) -> (CopyStatus, usize) {
        let src = &source.shared;
        let pin = {
            let mut g = src.grants.lock();
            let r = match g.table.as_mut() {
                Some(t) => t.acquire(caller, req, room),
                None => Err((CopyStatus::BadHandle, None)),
            };
            match r {
                Ok(pin) => {
                    *src_kept = g.kept[usize::from(pin.slot())];
                    Ok(pin)
                }
                Err((s, done)) => {
                    g.queue_done(done);
                    Err(s)
                }
            }
        };
        let pin = match pin {
            Ok(pin) => pin,
            Err(s) => return (s, 0),
        };
        let rd = &src_kept.rd[..src_kept.n];
        let recorded = pin.recorded();
        let (at, dst_at, n) = pin.from_sender_chain();
        let len = pin.len() as usize;
        let dst_off = head.len();
        let result = maps
            .write(wr, 0, head)
            .and_then(|()| maps.write(wr, dst_off, recorded))
            .and_then(|()| {
                if n > 0 {
                    maps.copy(wr, dst_off + dst_at, rd, at, n)
                } else {
                    Ok(())
                }
            });
        let status = match result {
            Ok(()) => CopyStatus::Ok,
            Err(Fault::Src) => CopyStatus::SrcFault,
            Err(Fault::Dst) => CopyStatus::DstFault,
        };
        {
            let mut g = src.grants.lock();
            let d = g.table.as_mut().and_then(|t| t.release(pin, status));
            g.queue_done(d);
        }
        (status, if status == CopyStatus::Ok { len } else { 0 })
    }
}

impl Domains {
    /// The core's `bind_domain`: this device becomes `domain`.
    pub(crate) fn bind(&self, domain: u16, binding: DomainBinding) -> Result {
        let dev = DeviceRef::of(&self.shared.work).ok_or(ENODEV)?;
        // Allocations first: a table and its chain record are kilobytes.
        let (mut table, mut kept, mut done) = (None, KVVec::new(), KVVec::new());
        if self.shared.grants.lock().table.is_none() {
            // SAFETY: `init_at` writes every field of the slot it is given,
            // which is valid for writes and aligned; it cannot fail.
            let init = unsafe {
                kernel::init::init_from_closure(move |slot: *mut Table| {
                    Table::init_at(slot, domain, 0);
                    Ok::<(), core::convert::Infallible>(())
                })
            };
            table = Some(KVBox::init(init, GFP_KERNEL)?);
            kept = KVVec::from_elem(Kept::default(), MAX_GRANTS, GFP_KERNEL)?;
            done = KVVec::from_elem((Token::default(), Completion::Done), MAX_GRANTS, GFP_KERNEL)?;
        }
        let mut domains = self.registry.domains.lock();
        if domains.iter().flatten().any(|e| e.domain == domain) {
            return Err(EEXIST);
        }
        let free = domains.iter().position(Option::is_none);
        if free.is_none() {
            domains.reserve(1, GFP_KERNEL)?;
        }
        {
            let mut g = self.shared.grants.lock();
            if g.bound.is_some() {
                return Err(EBUSY);
            }
            if let Some(t) = table.take() {
                g.table = Some(t);
                g.kept = core::mem::replace(&mut kept, KVVec::new());
                g.done.buf = core::mem::replace(&mut done, KVVec::new());
            }
            let seed = self.registry.seed.load(Ordering::Relaxed);
            let renewed = g.table.as_mut().is_some_and(|t| t.renew(domain, seed));
            if !renewed {
                // Grants of the previous binding are still being copied.
                return Err(EBUSY);
            }
            g.bound = Some(domain);
            g.stats = Default::default();
            // Posted receives outlive bindings.
            g.stats.posted = g.posted.held() as u32;
        }
        *self.shared.binding.lock() = Some(binding);
        let e = Some(Entry {
            domain,
            shared: self.shared.clone(),
            dev,
        });
        match free {
            Some(i) => domains[i] = e,
            // Reserved above: does not allocate.
            None => {
                let _ = domains.push(e, GFP_KERNEL);
            }
        }
        Ok(())
    }

    /// The core's `unbind_domain` (and the device's removal): every grant
    /// completes `REVOKED`, no policy call runs any more.
    pub(crate) fn unbind(&self) {
        let entry = {
            let mut domains = self.registry.domains.lock();
            domains
                .iter_mut()
                .find(|e| {
                    e.as_ref()
                        .is_some_and(|e| Arc::ptr_eq(&e.shared, &self.shared))
                })
                .and_then(Option::take)
        };
        // Waits for a policy call in flight; none starts after this.
        *self.shared.binding.lock() = None;
        // And for the copies that found the device before it left the
        // registry: they use the reference `entry` holds.
        while self.shared.copies.load(Ordering::Acquire) != 0 {
            // SAFETY: process context (the core's domain call, or the
            // device's removal); a copy does not wait for what we hold.
            unsafe { bindings::msleep(1) };
        }
        {
            let mut g = self.shared.grants.lock();
            if g.bound.take().is_none() {
                return;
            }
            if let Some(mut t) = g.table.take() {
                t.revoke_all(|tok, c| g.queue_done(Some((tok, c))));
                self.registry
                    .seed
                    .fetch_max(t.next_seed(), Ordering::Relaxed);
                g.table = Some(t);
            }
            g.queue_done(None);
        }
        drop(entry);
        self.shared.work.schedule();
    }

    /// The core's `deliver`: reserves a posted receive of this device for
    /// grant `handle` (see `include/rvio/vmpi.h`) and schedules the pass
    /// that copies it.
    pub(crate) fn deliver(
        &self,
        handle: u64,
        src_domain: u16,
        frame_len: u32,
        meta: &[u8; 12],
    ) -> Result {
        let meta = Meta::parse(meta).map_err(|_| EINVAL)?;
        let d = Delivery {
            handle: Handle(handle),
            src_domain,
            frame_len,
            meta,
        };
        {
            let mut g = self.shared.grants.lock();
            // Under the lock: a reset clears the pool under it after it
            // cleared `copy_ready` (see `DeviceGrants::reset`).
            if g.bound.is_none() || !self.shared.copy_ready.load(Ordering::Acquire) {
                return Err(ENODEV);
            }
            match g.posted.reserve(d, ns_now()) {
                Reserved::Now => {}
                Reserved::Waits => g.stats.waited += 1,
                Reserved::No => return Err(ENOSPC),
            }
        }
        self.shared.work.schedule();
        Ok(())
    }

    /// The core's `domain_stats`.
    pub(crate) fn stats(&self, s: &mut bindings::vmpi_grant_stats) {
        *s = self.shared.grants.lock().stats;
    }
}

impl Drop for DeviceGrants {
    fn drop(&mut self) {
        self.remove();
    }
}
