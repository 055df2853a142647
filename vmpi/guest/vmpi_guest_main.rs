// SPDX-License-Identifier: GPL-2.0

//! `vmpi_guest`: the guest side of VMPI, a virtio driver for device id 63
//! (`docs/vmpi-protocol.md`). It keeps the rxq full of buffers of a
//! 4-byte header and `rx_buf_size` bytes of payload (16 KiB by default, up
//! to 64 KiB: a whole SDU in one buffer, whose payload part then becomes
//! the SDU's bytes, no copy), refilled from the work pass (a failed
//! allocation is retried 10 ms later, so no slot is lost and nothing
//! spins); it sends every message as one txq chain, and runs the control
//! protocol through the shared [`proto::endpoint`].
//!
//! With `VMPI_F_GRANT` (`docs/vmpi-protocol.md` section 5; a device
//! without it gets two queues) it also has a grantq and a copyq: the
//! core's `grant` and `copy` (any context) check a request, write its
//! header and queue it lock-free; the work pass posts the queued requests
//! in order while descriptors last, and completes the used ones with the
//! status the device wrote. At remove, every request not completed gets
//! `-ENODEV`, after the reset for those the device held.
//!
//! A user may ask for a reset (`vmpi_dev_reset()`, for a device that no
//! longer completes what it was given): the work pass resets the device
//! ([`virtio::request_reset`]), the requests the device held complete
//! (those it used with their status, the others with `-ECONNRESET`), as do
//! those not posted yet (`-ECONNRESET`), the link restarts, and the device
//! starts again on new rings.

use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;

#[path = "bindings_generated.rs"]
mod bindings;
// `pub`: the abstraction's whole API stays reachable (unreachable_pub).
#[path = "../../rust/virtio.rs"]
pub mod virtio;
#[path = "../../rust/rvio/vmpi_transport.rs"]
pub mod vmpi_transport;
#[path = "../../rust/work_handle.rs"]
pub mod work_handle;
// Pure logic, shared with the host crate rust/pure.
#[path = "../proto/mod.rs"]
pub mod proto;
// The grant and copy formats (`envelope/proto/grant.rs`), with what they
// need: the frame metadata and `crate::line`.
#[path = "../../envelope/proto/mod.rs"]
pub mod envelope_proto;
#[path = "../../rust/line.rs"]
pub mod line;

mod params;

use envelope_proto::grant::{
    self as gwire, CopyRequest, GrantHeader, COPYQ, COPY_REQ_LEN, F_GRANT, GRANTQ, GRANT_HDR_LEN,
    STATUS_LEN,
};
use envelope_proto::msg::Meta;
use envelope_proto::posted::{CopyAsk, Delivery, DELIVERY_LEN};
use kernel::alloc::KVVec;
use kernel::page::PAGE_SIZE;
use proto::link::Role;
use proto::wire::{self, Config, CONFIG_LEN, HDR_LEN};
use vmpi_transport::{eopnotsupp, CopyReq, GrantReq, Kick, ReqFifo, ReqQueue, Transport};

type GuestTransport = Transport<GuestOps>;
type Queues<'a> = virtio::Queues<'a, Buf, GuestReq>;

module! {
    type: VmpiGuestModule,
    name: "vmpi_guest",
    author: "rvio developers",
    description: "VMPI guest side: virtio driver for VM-to-host message passing",
    license: "GPL",
    alias: ["virtio:d0000003Fv*"],
}

/// Payload bytes of an rxq buffer when a larger one (`rx_buf_size`)
/// cannot be had: one page.
const RX_BUF: usize = 4096;

/// Most rxq buffers posted: module parameter `rx_buffers` (16 to 256,
/// default 64: 1 MiB per device of 16 KiB buffers, sixteen 64 KiB SDUs or
/// 64 small ones). Each takes two descriptors (header, payload), so the
/// ring holds at most half its size of them without `INDIRECT_DESC`.
fn rx_posted_max() -> usize {
    params::rx_buffers()
}
/// Most rxq buffers handled per work pass.
const RX_BUDGET: usize = 64;

/// A buffer of either queue: one txq message (a header, when `hdr_len` is
/// 4, and the first `len` bytes of `data`), or an rxq buffer (`hdr`, then
/// `data`'s bytes: the device writes a fragment's header, then its
/// payload). An SDU taken from the core is sent from its own bytes, and a
/// whole SDU received in `data` becomes the SDU's bytes (no copy).
struct Buf {
    hdr: [u8; HDR_LEN],
    hdr_len: usize,
    data: KVVec<u8>,
    len: usize,
}

// SAFETY: the slices are `hdr`, inside the `Buf` (a `KBox`: kmalloc), and
// the KVVec's kvmalloc buffer; neither moves nor changes unless the `Buf`
// is mutated. Only rxq buffers are posted with `add_in` (`in_parts`), and
// their `data` is made by `Buf::rx_data`: kmalloc memory (the C half
// refuses anything else); a txq buffer's may be vmalloc memory.
unsafe impl virtio::Buffer for Buf {
    fn in_parts(&mut self) -> (&mut [u8], &mut [u8]) {
        (&mut self.hdr, &mut self.data)
    }
    fn out_parts(&self) -> (&[u8], &[u8]) {
        (&self.hdr[..self.hdr_len], &self.data[..self.len])
    }
}

impl Buf {
    /// An empty txq buffer (for the pool).
    fn empty() -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                hdr: [0; HDR_LEN],
                hdr_len: 0,
                data: KVVec::new(),
                len: 0,
            },
            GFP_KERNEL,
        )?)
    }

    /// An rxq buffer ([`Buf::rx_data`]).
    fn rx() -> Result<KBox<Self>> {
        let mut b = Self::empty()?;
        b.data = Self::rx_data()?;
        Ok(b)
    }

    /// An rxq buffer's payload part: `rx_buf_size` zeroed bytes (so that
    /// every byte of it is zero or written by the device, as
    /// `vmpi_transport_rx_buf()` wants: a device that claims more than it
    /// wrote shows a reader nothing else, and the core may post a part
    /// read before again as it is), or a page if memory is too fragmented
    /// for that (kmalloc memory, one descriptor: without
    /// `__GFP_DIRECT_RECLAIM` kvmalloc does not fall back to vmalloc, nor
    /// does it below a page). A large one is not worth reclaim or
    /// compaction (`GFP_NOWAIT`): the page stands in, and is replaced once
    /// used.
    fn rx_data() -> Result<KVVec<u8>> {
        let size = params::rx_buf_size();
        let (mut v, size) = match size {
            RX_BUF => (
                KVVec::with_capacity(RX_BUF, GFP_KERNEL | __GFP_ZERO)?,
                RX_BUF,
            ),
            _ => match KVVec::with_capacity(size, GFP_NOWAIT | __GFP_NOWARN | __GFP_ZERO) {
                Ok(v) => (v, size),
                Err(_) => (
                    KVVec::with_capacity(RX_BUF, GFP_KERNEL | __GFP_ZERO)?,
                    RX_BUF,
                ),
            },
        };
        // SAFETY: `__GFP_ZERO` zeroed the `size` bytes allocated (the
        // capacity is at least that), and `u8` has no invalid values.
        unsafe { v.set_len(size) };
        Ok(v)
    }
}

/// Empty txq buffers kept for reuse, at most as many as the txq has
/// descriptors (slots reserved at start, so keeping one never allocates).
struct BufPool {
    slots: KVec<Option<KBox<Buf>>>,
    len: usize,
}

impl BufPool {
    fn new() -> Self {
        Self {
            slots: KVec::new(),
            len: 0,
        }
    }

    fn reserve(&mut self, n: usize) -> Result {
        while self.slots.len() < n {
            self.slots.push(None, GFP_KERNEL)?;
        }
        Ok(())
    }

    fn pop(&mut self) -> Option<KBox<Buf>> {
        let b = self.slots.get_mut(self.len.checked_sub(1)?)?.take();
        self.len -= 1;
        b
    }

    /// Keeps `b`, or frees it if the pool is full.
    fn put(&mut self, b: KBox<Buf>) {
        if let Some(slot) = self.slots.get_mut(self.len) {
            *slot = Some(b);
            self.len += 1;
        }
    }
}

/// Requests of a queue completed per work pass.
const REQ_BUDGET: usize = 64;

/// The transport's operations: the kick schedules the device's work pass;
/// grants and copies wait in lock-free queues for it.
struct GuestOps {
    work: virtio::Handle,
    /// `VMPI_F_GRANT` was negotiated (the grantq and copyq exist).
    grants_on: bool,
    grants: ReqQueue<GrantReq>,
    copies: ReqQueue<CopyReq>,
}

impl Kick for GuestOps {
    fn kick(&self) {
        self.work.schedule();
    }

    fn flush(&self) {
        self.work.run_now();
    }

    const HAS_GRANTS: bool = true;

    fn grant(&self, mut g: GrantReq) -> core::result::Result<(), (Error, GrantReq)> {
        if !self.grants_on {
            return Err((eopnotsupp(), g));
        }
        if let Err(e) = prepare_grant(&mut g) {
            return Err((e, g));
        }
        self.grants.push(g);
        // Takes no lock and does not sleep (an atomic and `queue_work()`):
        // fine in any context.
        self.work.schedule();
        Ok(())
    }

    const HAS_RESET: bool = true;

    fn reset(&self) -> Result {
        // A bit and `queue_work()`: any context.
        virtio::request_reset(&self.work);
        Ok(())
    }

    fn copy(&self, mut c: CopyReq) -> core::result::Result<(), (Error, CopyReq)> {
        if !self.grants_on {
            return Err((eopnotsupp(), c));
        }
        if let Err(e) = prepare_copy(&mut c) {
            return Err((e, c));
        }
        self.copies.push(c);
        self.work.schedule();
        Ok(())
    }
}

/// Checks a grant as the device will (header, chain shape) and writes its
/// header. Any context.
fn prepare_grant(g: &mut GrantReq) -> Result {
    if !virtio::kmalloc_ok(g.as_ptr()) {
        return Err(EINVAL);
    }
    // SAFETY: the core handed the grant over with `frame` not NULL, a
    // marked scatterlist (the contract of `vmpi_port_grant()`).
    let (_, bytes) =
        unsafe { virtio::sg_count(g.frame(), bindings::VMPI_GRANT_MAX_SG) }.ok_or(EINVAL)?;
    let len = g.frame_len();
    if bytes != u64::from(len) {
        return Err(EINVAL);
    }
    let h = GrantHeader {
        dest_domain: g.dest_domain(),
        frame_len: len,
        meta: Meta::parse(&g.meta()).map_err(|_| EINVAL)?,
    };
    let hdr = h.encode();
    GrantHeader::parse(&hdr, GRANT_HDR_LEN + len as usize, STATUS_LEN).map_err(|_| EINVAL)?;
    *g.hdr_mut() = hdr;
    Ok(())
}

/// Checks a copy request as the device will (form, room) and writes it.
/// Any context.
fn prepare_copy(c: &mut CopyReq) -> Result {
    if !virtio::kmalloc_ok(c.as_ptr()) {
        return Err(EINVAL);
    }
    let room = if c.is_empty() {
        0
    } else {
        // SAFETY: the core handed the request over with `dst` a marked
        // scatterlist when `len` is not 0 (`vmpi_port_copy()`).
        let (_, bytes) =
            unsafe { virtio::sg_count(c.dst(), bindings::VMPI_GRANT_MAX_SG) }.ok_or(EINVAL)?;
        if bytes < u64::from(c.len()) || bytes > u64::from(u32::MAX) - STATUS_LEN as u64 {
            return Err(EINVAL);
        }
        bytes as usize
    };
    if c.is_posted() {
        // A posted receive: the core checked handle and offset (0) and
        // `len`; the buffer holds `len` bytes.
        let req = CopyAsk::post_request(c.len());
        let delivery = if c.is_empty() { 0 } else { DELIVERY_LEN };
        CopyAsk::parse(&req, delivery + room + STATUS_LEN).map_err(|_| EINVAL)?;
        *c.req_mut() = req;
        return Ok(());
    }
    let flags = c.flags();
    let r = CopyRequest {
        handle: gwire::Handle(c.handle()),
        offset: c.offset(),
        len: c.len(),
        finish: flags & gwire::COPY_FINISH != 0,
        discard: flags & gwire::COPY_DISCARD != 0,
    };
    let req = r.encode();
    // The core refused unknown flags and DISCARD without FINISH; the
    // device's own checks of the form, once more.
    CopyRequest::parse(&req, room + STATUS_LEN).map_err(|_| EINVAL)?;
    *c.req_mut() = req;
    Ok(())
}

/// A request on the grantq or the copyq.
enum GuestReq {
    Grant(GrantReq),
    Copy(CopyReq),
}

// SAFETY: the parts are the grant's or request's own header and status
// (inside the kmalloc'ed structure, checked by `prepare_*`) and the user's
// marked scatterlists, all of which the user leaves to the transport until
// `done` (include/rvio/vmpi.h), which runs only once the request is given
// back (from `get_req` or, after a reset, `reset_req` or `free_token`). The token is
// the structure's address, non-NULL; the queue says which structure.
unsafe impl virtio::Request for GuestReq {
    const QUEUES: u64 = 1 << GRANTQ | 1 << COPYQ;

    fn queue(&self) -> u16 {
        match self {
            GuestReq::Grant(_) => GRANTQ,
            GuestReq::Copy(_) => COPYQ,
        }
    }

    fn parts(&mut self, c: &mut virtio::Chain) {
        match self {
            GuestReq::Grant(g) => {
                c.buf(false, g.hdr_mut().as_mut_ptr(), GRANT_HDR_LEN);
                c.sg(false, g.frame());
                c.buf(true, g.status_ptr(), STATUS_LEN);
            }
            GuestReq::Copy(r) => {
                c.buf(false, r.req_mut().as_mut_ptr(), COPY_REQ_LEN);
                if r.is_posted() && !r.is_empty() {
                    c.buf(true, r.delivery_mut().as_mut_ptr(), DELIVERY_LEN);
                }
                if !r.is_empty() {
                    c.sg(true, r.dst());
                }
                c.buf(true, r.status_ptr(), STATUS_LEN);
            }
        }
    }

    fn into_raw(self) -> *mut core::ffi::c_void {
        use vmpi_transport::Request;
        match self {
            GuestReq::Grant(g) => g.into_raw().as_ptr().cast(),
            GuestReq::Copy(c) => c.into_raw().as_ptr().cast(),
        }
    }

    unsafe fn from_raw(idx: u16, p: *mut core::ffi::c_void) -> Self {
        use vmpi_transport::Request;
        // SAFETY: `p` is the non-NULL address of the structure this type's
        // `into_raw` gave up, a grant on the grantq, a copy request on the
        // copyq (the caller's guarantee), owned by us again.
        unsafe {
            let p = core::ptr::NonNull::new_unchecked(p);
            if idx == GRANTQ {
                GuestReq::Grant(GrantReq::from_raw(p.cast()))
            } else {
                GuestReq::Copy(CopyReq::from_raw(p.cast()))
            }
        }
    }
}

impl GuestReq {
    /// Completes it with the status the device wrote (`used` bytes), a
    /// known status whatever the device wrote.
    fn complete_used(self, used: usize) {
        match self {
            GuestReq::Grant(g) => {
                let st = g.status();
                let st = if used < STATUS_LEN {
                    bindings::VMPI_GRANT_REFUSED
                } else if st >= bindings::VMPI_GRANT_STATUSES {
                    bindings::VMPI_GRANT_FAILED
                } else {
                    st
                };
                g.complete(st as i32);
            }
            GuestReq::Copy(mut c) => {
                let st = c.status();
                let mut st = if used < STATUS_LEN || st >= bindings::VMPI_COPY_STATUSES {
                    bindings::VMPI_COPY_BAD_REQUEST
                } else {
                    st
                };
                if c.is_posted() && !c.is_empty() && st == bindings::VMPI_COPY_OK {
                    // A frame was delivered: trust no more of the header
                    // than is checked, and no more of the buffer than the
                    // device said it wrote.
                    let room = c.len();
                    match Delivery::parse(c.delivery_mut(), room) {
                        Some(d) if used == DELIVERY_LEN + d.frame_len as usize + STATUS_LEN => {
                            c.set_delivered(d.handle.0, d.src_domain, d.frame_len, d.meta.encode());
                        }
                        _ => st = bindings::VMPI_COPY_BAD_REQUEST,
                    }
                }
                c.complete(st as i32);
            }
        }
    }

    /// Completes it after a reset it was not used before: `ECONNRESET`.
    fn reset(self) {
        let err = -(bindings::ECONNRESET as i32);
        match self {
            GuestReq::Grant(g) => g.complete(err),
            GuestReq::Copy(c) => c.complete(err),
        }
    }

    /// Completes it without the device: it cannot be posted (`REFUSED`,
    /// `BAD_REQUEST`).
    fn refuse(self) {
        match self {
            GuestReq::Grant(g) => g.complete(bindings::VMPI_GRANT_REFUSED as i32),
            GuestReq::Copy(c) => c.complete(bindings::VMPI_COPY_BAD_REQUEST as i32),
        }
    }
}

/// One VMPI device of this guest.
struct VmpiGuest {
    config: [u8; CONFIG_LEN],
    /// Registered with the core from start to stop.
    transport: Option<GuestTransport>,
    rx_posted: usize,
    tx_pool: BufPool,
    /// A txq message the ring refused (no memory): posted first next time.
    tx_pending: Option<KBox<Buf>>,
    /// `VMPI_F_GRANT` was negotiated.
    grants_on: bool,
    /// Grants and copy requests taken from the core's queues, not posted
    /// yet (no descriptors), oldest first.
    grants: ReqFifo<GrantReq>,
    copies: ReqFifo<CopyReq>,
    /// Descriptors of the copyq that posted receives hold (the device
    /// keeps them until a frame comes): at most half the ring, so that
    /// copy requests (and a cancel) always find room.
    posted_descs: usize,
}

impl VmpiGuest {
    /// Posts rxq buffers up to the limit; stops (and retries on the next
    /// pass) when memory or descriptors run out.
    fn refill(&mut self, q: &mut Queues<'_>) {
        let mut added = false;
        let max = rx_posted_max();
        while self.rx_posted < max && q.num_free(wire::RXQ) > 0 {
            let Ok(b) = Buf::rx() else {
                // Memory is short: try again a little later.
                q.retry_later();
                break;
            };
            if q.add_in(wire::RXQ, b).is_err() {
                break;
            }
            self.rx_posted += 1;
            added = true;
        }
        if added {
            q.kick(wire::RXQ);
        }
    }

    /// Reclaims sent txq buffers: an SDU's bytes go back to the core,
    /// the boxes are kept for the next messages (up to the ring's size).
    fn reclaim_tx(&mut self, t: &GuestTransport, q: &mut Queues<'_>) {
        while let Some((mut b, _)) = q.get_buf(wire::TXQ) {
            let data = core::mem::replace(&mut b.data, KVVec::new());
            if b.hdr_len != 0 {
                // An SDU taken from the core: its bytes go back there.
                t.sdu_done(data);
            }
            b.len = 0;
            self.tx_pool.put(b);
        }
    }

    /// Sends what the core has: data SDUs whole from their own bytes,
    /// control messages copied (a little later if memory is short).
    fn flush_tx(&mut self, t: &GuestTransport, q: &mut Queues<'_>) {
        self.reclaim_tx(t, q);
        let mut sent = false;
        // A message the ring refused last time goes first.
        if let Some(b) = self.tx_pending.take() {
            if !self.post_tx(t, q, b) {
                return;
            }
            sent = true;
        }
        loop {
            let n = t.tx_len();
            let free = q.num_free(wire::TXQ);
            if n == 0 || free == 0 {
                break;
            }
            // An SDU the ring can hold whole waits for descriptors to come
            // back; one it never can (a ring of fewer descriptors than a
            // vmalloc'ed 64 KiB SDU needs) goes in page-size fragments.
            let whole = q.size(wire::TXQ) >= virtio::out_descs_max(n - HDR_LEN);
            let max_len = virtio::out_len_max(free);
            if whole && n - HDR_LEN > max_len {
                break;
            }
            let Some(mut b) = self.tx_pool.pop().or_else(|| Buf::empty().ok()) else {
                q.retry_later();
                break;
            };
            if let Some((hdr, data)) = t.take_sdu(if whole { max_len } else { 0 }) {
                b.hdr = hdr;
                b.hdr_len = HDR_LEN;
                b.len = data.len();
                b.data = data;
            } else {
                // A control message (or nothing, if it went meanwhile), or
                // a fragment of an SDU: copied out of the core, into one
                // kmalloc'ed buffer of at most a page.
                let Ok(data) = KVVec::from_elem(0u8, n.min(PAGE_SIZE), GFP_KERNEL) else {
                    self.tx_pool.put(b);
                    q.retry_later();
                    break;
                };
                b.data = data;
                b.hdr_len = 0;
                // A control message queued since `tx_len` goes first and
                // may be shorter.
                match t.tx(&mut b.data) {
                    Ok(m) if m > 0 && m <= b.data.len() => b.len = m,
                    _ => {
                        self.tx_pool.put(b);
                        break;
                    }
                }
            }
            if !self.post_tx(t, q, b) {
                break;
            }
            sent = true;
        }
        if sent {
            q.kick(wire::TXQ);
        }
    }

    /// Posts one txq message; `false` if the ring refused it: it waits in
    /// `tx_pending` for a pass a little later, or, if the device is
    /// broken, is lost and counted.
    fn post_tx(&mut self, t: &GuestTransport, q: &mut Queues<'_>, b: KBox<Buf>) -> bool {
        match q.add_out(wire::TXQ, b) {
            Ok(()) => true,
            Err((e, mut b)) if e == EIO => {
                // Counted; nothing of an incoming message was lost (the
                // device is broken: a reset ends the flows).
                t.tx_lost(false);
                let data = core::mem::replace(&mut b.data, KVVec::new());
                if b.hdr_len != 0 {
                    t.sdu_done(data);
                }
                self.tx_pool.put(b);
                false
            }
            Err((_, b)) => {
                // No memory to map it, or (if the core's queue changed
                // since `tx_len`) no room: try again later.
                self.tx_pending = Some(b);
                q.retry_later();
                false
            }
        }
    }
}

impl VmpiGuest {
    /// Completes the used requests of `idx` (a budget); `true` if more
    /// may wait.
    fn reclaim_reqs(q: &mut Queues<'_>, idx: u16) -> bool {
        for _ in 0..REQ_BUDGET {
            match q.get_req(idx) {
                Some((r, used)) => r.complete_used(used),
                None => {
                    if q.enable_cb(idx) {
                        return false;
                    }
                    q.disable_cb(idx);
                }
            }
        }
        true
    }

    /// Posts `fifo`'s requests in order while the ring takes them; the
    /// rest wait for the next pass. `admit` sees each request first, with
    /// the descriptors `held` counts now: it gives it back with the
    /// descriptors it will hold while the device keeps it (added to
    /// `held` once it is on the ring), or completes it itself (`None`:
    /// refused before the ring). `true` if any was posted.
    fn post_reqs<R>(
        q: &mut Queues<'_>,
        fifo: &mut ReqFifo<R>,
        held: &mut usize,
        wrap: fn(R) -> GuestReq,
        unwrap: fn(GuestReq) -> Option<R>,
        mut admit: impl FnMut(R, usize) -> Option<(R, usize)>,
    ) -> bool
    where
        R: vmpi_transport::Request,
    {
        let mut posted = false;
        while let Some(r) = fifo.pop_front() {
            let Some((r, n)) = admit(r, *held) else {
                continue;
            };
            let Err((e, r)) = q.add_req(wrap(r)) else {
                *held += n;
                posted = true;
                continue;
            };
            let idx = r.queue_of();
            let never = e == ENOSPC && q.num_free(idx) == q.size(idx);
            if (e == ENOSPC && !never) || e == ENOMEM {
                // Later, in the same order.
                if e == ENOMEM {
                    q.retry_later();
                }
                if let Some(r) = unwrap(r) {
                    fifo.push_front(r);
                }
                break;
            }
            // Never postable (a chain longer than the ring, a broken
            // device): completed now.
            r.refuse();
        }
        posted
    }

    /// The copyq descriptors copy request `c` holds while the device
    /// keeps it: 0 but for a posted receive (its buffer).
    fn posted_descs_of(c: &CopyReq, indirect: bool) -> usize {
        if !c.is_posted() || c.is_empty() {
            return 0;
        }
        if indirect {
            return 1;
        }
        // SAFETY: a posted receive's `dst` is a marked scatterlist the
        // user leaves to us until `done` (`vmpi_port_copy()`).
        let n =
            unsafe { virtio::sg_count(c.dst(), bindings::VMPI_GRANT_MAX_SG) }.map_or(0, |n| n.0);
        // The request, the delivery header, the buffer, the status.
        n as usize + 3
    }

    /// Completes the used copy requests (a budget), counting out the
    /// descriptors posted receives held; `true` if more may wait.
    fn reclaim_copies(&mut self, q: &mut Queues<'_>) -> bool {
        let indirect = q.features() & wire::F_INDIRECT_DESC != 0;
        for _ in 0..REQ_BUDGET {
            match q.get_req(COPYQ) {
                Some((r, used)) => {
                    if let GuestReq::Copy(c) = &r {
                        let n = Self::posted_descs_of(c, indirect);
                        self.posted_descs = self.posted_descs.saturating_sub(n);
                    }
                    r.complete_used(used)
                }
                None => {
                    if q.enable_cb(COPYQ) {
                        return false;
                    }
                    q.disable_cb(COPYQ);
                }
            }
        }
        true
    }

    /// Posts the copy requests in order; a posted receive beyond the
    /// descriptor budget ([`VmpiGuest::posted_descs`]) completes
    /// `TOO_MANY` without reaching the device. `true` if any was posted.
    fn post_copies(&mut self, q: &mut Queues<'_>) -> bool {
        let indirect = q.features() & wire::F_INDIRECT_DESC != 0;
        let budget = q.size(COPYQ) / 2;
        Self::post_reqs(
            q,
            &mut self.copies,
            &mut self.posted_descs,
            GuestReq::Copy,
            |r| match r {
                GuestReq::Copy(c) => Some(c),
                GuestReq::Grant(_) => None,
            },
            |c, held| {
                let n = Self::posted_descs_of(&c, indirect);
                if n > 0 && held + n > budget {
                    c.complete(bindings::VMPI_COPY_TOO_MANY as i32);
                    return None;
                }
                Some((c, n))
            },
        )
    }

    /// The grant part of a work pass; `true` if more may wait.
    fn grant_pass(&mut self, t: &GuestTransport, q: &mut Queues<'_>) -> bool {
        let mut more = Self::reclaim_reqs(q, GRANTQ);
        more |= self.reclaim_copies(q);
        self.grants.append(t.ops().grants.take());
        self.copies.append(t.ops().copies.take());
        // Grants have no descriptor budget.
        let mut none = 0;
        if Self::post_reqs(
            q,
            &mut self.grants,
            &mut none,
            GuestReq::Grant,
            |r| match r {
                GuestReq::Grant(g) => Some(g),
                GuestReq::Copy(_) => None,
            },
            |g, _| Some((g, 0)),
        ) {
            q.kick(GRANTQ);
        }
        if self.post_copies(q) {
            q.kick(COPYQ);
        }
        more
    }
}

impl GuestReq {
    fn queue_of(&self) -> u16 {
        virtio::Request::queue(self)
    }
}

impl virtio::Driver for VmpiGuest {
    const NAME: &'static CStr = c_str!("vmpi_guest");
    const DEVICE_ID: u32 = wire::DEVICE_ID;
    const QUEUES: &'static [&'static CStr] =
        &[c_str!("rx"), c_str!("tx"), c_str!("grant"), c_str!("copy")];
    /// `VMPI_F_GRANT`.
    const FEATURES: &'static [u32] = &[F_GRANT.trailing_zeros()];
    type Buf = Buf;
    type Req = GuestReq;

    fn queues(features: u64) -> usize {
        if features & F_GRANT != 0 {
            4
        } else {
            2
        }
    }

    fn probe(dev: &virtio::Device<'_>) -> Result<Self> {
        let mut config = [0u8; CONFIG_LEN];
        dev.read_config(0, &mut config);
        let cfg = Config::from_bytes(&config).map_err(|e| {
            pr_err!(
                "{}: unusable configuration space ({:?}): not binding\n",
                dev.name(),
                e
            );
            EINVAL
        })?;
        let grants_on = dev.features() & F_GRANT != 0;
        let mut max_grants = [0u8; 2];
        if grants_on {
            dev.read_config(CONFIG_LEN as u32, &mut max_grants);
        }
        pr_info!(
            "{}: VMPI device, {} channels, max SDU {}, grants {}\n",
            dev.name(),
            cfg.num_channels,
            cfg.max_sdu,
            if grants_on { "on" } else { "off" }
        );
        if grants_on {
            pr_info!(
                "{}: the device holds {} grants\n",
                dev.name(),
                u16::from_le_bytes(max_grants)
            );
        }
        Ok(Self {
            config,
            transport: None,
            rx_posted: 0,
            tx_pool: BufPool::new(),
            tx_pending: None,
            grants_on,
            grants: ReqFifo::new(),
            copies: ReqFifo::new(),
            posted_descs: 0,
        })
    }

    fn start(&mut self, q: &mut Queues<'_>) {
        // Registered once, at the first start (a reset's start keeps it);
        // the transport (and the handle it owns) is dropped in `stop`.
        if self.transport.is_none() {
            let ops = GuestOps {
                work: q.handle(),
                grants_on: self.grants_on && q.count() > COPYQ,
                grants: ReqQueue::new(),
                copies: ReqQueue::new(),
            };
            match Transport::register(Role::Guest, q.name(), &self.config, ops) {
                Ok(t) => self.transport = Some(t),
                Err(e) => {
                    pr_err!("{}: VMPI core refused the device: {:?}\n", q.name(), e);
                    return;
                }
            }
        }
        // New rings: what posted receives held went with the old ones.
        self.posted_descs = 0;
        // Without a pool every message allocates its box: slower, not wrong.
        let _ = self.tx_pool.reserve(q.size(wire::TXQ));
        self.refill(q);
        if let Some(t) = self.transport.take() {
            self.flush_tx(&t, q);
            self.transport = Some(t);
        }
    }

    fn stop(&mut self) {
        // Unregisters: no more grants come in; those queued get `-ENODEV`
        // (dropped with the transport's queues), as do those taken but not
        // posted. Those the device holds get it after the reset
        // (`free_token`).
        self.transport = None;
        self.grants = ReqFifo::new();
        self.copies = ReqFifo::new();
    }

    fn reset(&mut self) {
        // The device's buffers come back next: the rx buffers and txq
        // messages are dropped (what they hold is of the old epoch), the
        // requests completed (`reset_req`).
        self.rx_posted = 0;
        self.posted_descs = 0;
        let Some(t) = self.transport.take() else {
            return;
        };
        // Both sides restart: every flow ends, the send queue empties,
        // and the HELLO of the new epoch goes first on the new rings.
        t.restart();
        // So do the grants and copies not given to the device yet: a
        // reset ends all that was asked before it (a user that detaches
        // waits for nothing more). Those their `done()` asks for now go
        // on the new rings.
        let err = -(bindings::ECONNRESET as i32);
        let mut grants = core::mem::take(&mut self.grants);
        grants.append(t.ops().grants.take());
        while let Some(g) = grants.pop_front() {
            g.complete(err);
        }
        let mut copies = core::mem::take(&mut self.copies);
        copies.append(t.ops().copies.take());
        while let Some(c) = copies.pop_front() {
            c.complete(err);
        }
        // (So do those the device held, in `reset_req`, next.)
        // A message the ring refused is of the old epoch too.
        if let Some(mut b) = self.tx_pending.take() {
            let data = core::mem::replace(&mut b.data, KVVec::new());
            if b.hdr_len != 0 {
                t.sdu_done(data);
            }
            self.tx_pool.put(b);
        }
        self.transport = Some(t);
    }

    fn reset_req(&mut self, req: GuestReq, used: Option<usize>) {
        // After `reset`, with the device's lock held, as from a pass:
        // `done()` may grant, copy or send again (for the new rings and
        // epoch).
        match used {
            Some(used) => req.complete_used(used),
            None => req.reset(),
        }
    }

    fn refused_features() -> u64 {
        let mut refused = 0;
        if !params::event_idx() {
            refused |= wire::F_EVENT_IDX;
        }
        if !params::indirect_desc() {
            refused |= wire::F_INDIRECT_DESC;
        }
        if !params::grants() {
            refused |= envelope_proto::grant::F_GRANT;
        }
        refused
    }

    /// A writer's pass: only what the core has to send, into the txq (as
    /// many as it has room for), and the kick; a pass of the work follows
    /// if sent buffers came back meanwhile.
    fn flush(&mut self, q: &mut Queues<'_>) -> bool {
        let Some(t) = self.transport.take() else {
            return false;
        };
        self.flush_tx(&t, q);
        let more = !q.enable_cb_delayed(wire::TXQ);
        self.transport = Some(t);
        more
    }

    fn process(&mut self, q: &mut Queues<'_>) -> bool {
        let Some(t) = self.transport.take() else {
            return false;
        };
        let mut more = false;
        let mut done = 0;
        while done < RX_BUDGET {
            let Some((mut b, len)) = q.get_buf(wire::RXQ) else {
                // Nothing left: re-enable callbacks, and go on if buffers
                // arrived in between (no callback comes for those).
                if q.enable_cb(wire::RXQ) {
                    break;
                }
                q.disable_cb(wire::RXQ);
                continue;
            };
            done += 1;
            self.rx_posted -= 1;
            let Buf { hdr, data, .. } = &mut *b;
            if t.rx_buf(hdr, data, len) && b.data.capacity() == 0 {
                // Its payload part became an SDU's, and no buffer read
                // before came back in its place: new memory for it (or,
                // without memory, `refill` posts a new buffer later).
                match Buf::rx_data() {
                    Ok(d) => b.data = d,
                    Err(_) => continue,
                }
            }
            // Recycle the buffer if it has the size asked for now (else
            // `refill` makes one that has: `rx_buf_size` changed, or a
            // page stood in for a large buffer).
            if b.data.len() == params::rx_buf_size() {
                match q.add_in(wire::RXQ, b) {
                    Ok(()) => self.rx_posted += 1,
                    Err((_, b)) => drop(b),
                }
            }
        }
        if done == RX_BUDGET {
            more = true;
        }
        self.refill(q);
        self.flush_tx(&t, q);
        // Sent buffers only need freeing: a callback once most are used.
        if !q.enable_cb_delayed(wire::TXQ) {
            more = true;
        }
        if t.ops().grants_on {
            more |= self.grant_pass(&t, q);
        }
        if done > 0 {
            q.kick(wire::RXQ);
        }
        self.transport = Some(t);
        more
    }
}

struct VmpiGuestModule {
    _driver: virtio::Registration<VmpiGuest>,
}

impl kernel::Module for VmpiGuestModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self {
            _driver: virtio::Registration::new()?,
        })
    }
}
