// SPDX-License-Identifier: GPL-2.0

//! `vmpi_guest`: the guest side of VMPI, a virtio driver for device id 63
//! (`docs/vmpi-protocol.md`). It keeps the rxq full of page-sized buffers
//! (refilled from the work pass; a failed allocation is retried 10 ms
//! later, so no slot is lost and nothing spins), sends every message as one txq chain, and
//! runs the control protocol through the shared [`proto::endpoint`].

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

mod params;

use kernel::alloc::KVVec;
use kernel::page::PAGE_SIZE;
use proto::link::Role;
use proto::wire::{self, Config, DropReason, CONFIG_LEN, HDR_LEN};
use vmpi_transport::{Kick, Transport};

type GuestTransport = Transport<virtio::Handle>;

module! {
    type: VmpiGuestModule,
    name: "vmpi_guest",
    author: "rvio developers",
    description: "VMPI guest side: virtio driver for VM-to-host message passing",
    license: "GPL",
    alias: ["virtio:d0000003Fv*"],
}

/// Size of an rxq buffer (header included): one page.
const RX_BUF: usize = 4096;

/// Most rxq buffers posted: module parameter `rx_buffers` (16 to 256,
/// default 64: 256 KiB per device, four 64 KiB SDUs or 64 small ones).
fn rx_posted_max() -> usize {
    params::rx_buffers()
}
/// Most rxq buffers handled per work pass.
const RX_BUDGET: usize = 64;

/// A buffer of either queue: an rxq buffer (`data`), or one txq message:
/// a header (when `hdr_len` is 4) and the first `len` bytes of `data`.
/// An SDU taken from the core is sent from its own bytes (no copy).
struct Buf {
    hdr: [u8; HDR_LEN],
    hdr_len: usize,
    data: KVVec<u8>,
    len: usize,
}

// SAFETY: the slices are `hdr`, inside the `Buf` (a `KBox`: kmalloc), and
// the KVVec's kvmalloc buffer; neither moves nor changes unless the `Buf`
// is mutated. An rxq buffer's `data` is made by `Buf::rx` (kmalloc).
unsafe impl virtio::Buffer for Buf {
    fn in_part(&mut self) -> &mut [u8] {
        &mut self.data
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

    /// An rxq buffer of one page (kmalloc: `KVVec` allocates a page or
    /// less with kmalloc).
    fn rx() -> Result<KBox<Self>> {
        let mut b = Self::empty()?;
        b.data = KVVec::from_elem(0u8, RX_BUF, GFP_KERNEL)?;
        b.len = RX_BUF;
        Ok(b)
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

/// The core's kick schedules the device's work pass.
impl Kick for virtio::Handle {
    fn kick(&self) {
        self.schedule();
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
}

impl VmpiGuest {
    /// Posts rxq buffers up to the limit; stops (and retries on the next
    /// pass) when memory or descriptors run out.
    fn refill(&mut self, q: &mut virtio::Queues<'_, Buf>) {
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
    fn reclaim_tx(&mut self, t: &GuestTransport, q: &mut virtio::Queues<'_, Buf>) {
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
    fn flush_tx(&mut self, t: &GuestTransport, q: &mut virtio::Queues<'_, Buf>) {
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
    fn post_tx(
        &mut self,
        t: &GuestTransport,
        q: &mut virtio::Queues<'_, Buf>,
        b: KBox<Buf>,
    ) -> bool {
        match q.add_out(wire::TXQ, b) {
            Ok(()) => true,
            Err((e, mut b)) if e == EIO => {
                t.count_drop(DropReason::BadDesc as u32);
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

impl virtio::Driver for VmpiGuest {
    const NAME: &'static CStr = c_str!("vmpi_guest");
    const DEVICE_ID: u32 = wire::DEVICE_ID;
    const QUEUES: &'static [&'static CStr] = &[c_str!("rx"), c_str!("tx")];
    type Buf = Buf;

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
        pr_info!(
            "{}: VMPI device, {} channels, max SDU {}\n",
            dev.name(),
            cfg.num_channels,
            cfg.max_sdu
        );
        Ok(Self {
            config,
            transport: None,
            rx_posted: 0,
            tx_pool: BufPool::new(),
            tx_pending: None,
        })
    }

    fn start(&mut self, q: &mut virtio::Queues<'_, Buf>) {
        // The transport (and the handle it owns) is dropped in `stop`.
        match Transport::register(Role::Guest, q.name(), &self.config, q.handle()) {
            Ok(t) => self.transport = Some(t),
            Err(e) => {
                pr_err!("{}: VMPI core refused the device: {:?}\n", q.name(), e);
                return;
            }
        }
        // Without a pool every message allocates its box: slower, not wrong.
        let _ = self.tx_pool.reserve(q.size(wire::TXQ));
        self.refill(q);
        if let Some(t) = self.transport.take() {
            self.flush_tx(&t, q);
            self.transport = Some(t);
        }
    }

    fn stop(&mut self) {
        self.transport = None;
    }

    fn refused_features() -> u64 {
        let mut refused = 0;
        if !params::event_idx() {
            refused |= wire::F_EVENT_IDX;
        }
        if !params::indirect_desc() {
            refused |= wire::F_INDIRECT_DESC;
        }
        refused
    }

    fn process(&mut self, q: &mut virtio::Queues<'_, Buf>) -> bool {
        let Some(t) = self.transport.take() else {
            return false;
        };
        let mut more = false;
        let mut done = 0;
        while done < RX_BUDGET {
            let Some((b, len)) = q.get_buf(wire::RXQ) else {
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
            t.rx(&b.data[..len]);
            // Recycle the buffer.
            match q.add_in(wire::RXQ, b) {
                Ok(()) => self.rx_posted += 1,
                Err((_, b)) => drop(b),
            }
        }
        if done == RX_BUDGET {
            more = true;
        }
        self.refill(q);
        self.flush_tx(&t, q);
        if !q.enable_cb(wire::TXQ) {
            more = true;
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
