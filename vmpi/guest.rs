// SPDX-License-Identifier: GPL-2.0

//! `vmpi_guest`: the guest side of VMPI, a virtio driver for device id 63
//! (`docs/vmpi-protocol.md`). It keeps the rxq full of page-sized buffers
//! (refilled from the work pass; a failed allocation is retried on the next
//! pass, so no slot is lost), sends every message as one txq chain, and
//! runs the control protocol through the shared [`proto::endpoint`].

use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;

#[path = "../rust/bindings.rs"]
mod bindings;
// `pub`: the abstraction's whole API stays reachable (unreachable_pub).
#[path = "../rust/virtio.rs"]
pub mod virtio;
// Pure logic, shared with the host crate rust/pure.
#[path = "proto/mod.rs"]
pub mod proto;

use proto::ctrl::MAX_CTRL_LEN;
use proto::endpoint::{Endpoint, Received};
use proto::link::{Chan, Event, Role};
use proto::wire::{self, Config, CONFIG_LEN, HDR_LEN};

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
/// Most rxq buffers posted (1 MiB).
const RX_POSTED_MAX: usize = 256;
/// Most rxq buffers handled per work pass.
const RX_BUDGET: usize = 64;

/// A buffer of either queue: rxq buffers use `data` only; txq chains send
/// `hdr` then `data`.
struct Buf {
    hdr: [u8; HDR_LEN],
    data: KVec<u8>,
}

// SAFETY: both slices are in memory the box owns: `hdr` in the (kmalloc)
// box itself, `data` in the KVec's kmalloc buffer; neither moves nor
// changes unless the `Buf` is mutated.
unsafe impl virtio::Buffer for Buf {
    fn in_part(&mut self) -> &mut [u8] {
        &mut self.data
    }
    fn out_parts(&self) -> (&[u8], &[u8]) {
        (&self.hdr, &self.data)
    }
}

impl Buf {
    fn rx() -> Result<KBox<Self>> {
        Ok(KBox::new(Self { hdr: [0; HDR_LEN], data: KVec::from_elem(0u8, RX_BUF, GFP_KERNEL)? }, GFP_KERNEL)?)
    }

    /// A txq chain of one fragment (header and payload).
    fn tx(frag: &[u8]) -> Result<KBox<Self>> {
        if frag.len() < HDR_LEN {
            return Err(EINVAL);
        }
        let (h, payload) = frag.split_at(HDR_LEN);
        let mut hdr = [0u8; HDR_LEN];
        hdr.copy_from_slice(h);
        let mut data = KVec::with_capacity(payload.len(), GFP_KERNEL)?;
        data.extend_from_slice(payload, GFP_KERNEL)?;
        Ok(KBox::new(Self { hdr, data }, GFP_KERNEL)?)
    }
}

/// One VMPI device of this guest.
struct VmpiGuest {
    ep: Endpoint,
    chans: KVec<Chan>,
    /// The message being reassembled.
    msg: KVec<u8>,
    rx_posted: usize,
}

fn random_epoch() -> u32 {
    // SAFETY: `get_random_u32` has no preconditions.
    unsafe { bindings::get_random_u32() }.max(1)
}

impl VmpiGuest {
    /// Posts rxq buffers up to the limit; stops (and retries on the next
    /// pass) when memory or descriptors run out.
    fn refill(&mut self, q: &mut virtio::Queues<'_, Buf>) {
        let mut added = false;
        while self.rx_posted < RX_POSTED_MAX && q.num_free(wire::RXQ) > 0 {
            let Ok(b) = Buf::rx() else { break };
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

    /// Reclaims sent txq chains and sends queued control messages.
    fn flush_tx(&mut self, q: &mut virtio::Queues<'_, Buf>) {
        while q.get_buf(wire::TXQ).is_some() {}
        let mut sent = false;
        let mut whole = [0u8; HDR_LEN + MAX_CTRL_LEN];
        // Two descriptors per chain at most: only pop what fits.
        while q.num_free(wire::TXQ) >= 2 {
            let Some(n) = self.ep.outbox.pop_whole(&mut whole) else { break };
            let Ok(b) = Buf::tx(&whole[..n]) else {
                self.ep.counters.ctrl_dropped += 1;
                continue;
            };
            if q.add_out(wire::TXQ, b).is_err() {
                self.ep.counters.ctrl_dropped += 1;
                continue;
            }
            sent = true;
        }
        if sent {
            q.kick(wire::TXQ);
        }
    }

    fn event(&mut self, name: &CStr, ev: Event) {
        match ev {
            Event::LinkUp => pr_info!("{}: link up\n", name),
            Event::PeerRestarted => pr_info!("{}: host restarted: flows reset\n", name),
            _ => {}
        }
    }
}

impl virtio::Driver for VmpiGuest {
    const NAME: &'static CStr = c_str!("vmpi_guest");
    const DEVICE_ID: u32 = wire::DEVICE_ID;
    const QUEUES: &'static [&'static CStr] = &[c_str!("rx"), c_str!("tx")];
    type Buf = Buf;

    fn probe(dev: &virtio::Device<'_>) -> Result<Self> {
        let mut raw = [0u8; CONFIG_LEN];
        dev.read_config(0, &mut raw);
        let cfg = Config::from_bytes(&raw).map_err(|e| {
            pr_err!("{}: unusable configuration space ({:?}): not binding\n", dev.name(), e);
            EINVAL
        })?;
        let mut chans = KVec::with_capacity(usize::from(cfg.num_channels), GFP_KERNEL)?;
        for _ in 0..cfg.num_channels {
            chans.push(Chan::Free, GFP_KERNEL)?;
        }
        let msg = KVec::from_elem(0u8, cfg.max_sdu as usize, GFP_KERNEL)?;
        pr_info!("{}: VMPI device, {} channels, max SDU {}\n", dev.name(), cfg.num_channels, cfg.max_sdu);
        Ok(Self { ep: Endpoint::new(Role::Driver, cfg, random_epoch()), chans, msg, rx_posted: 0 })
    }

    fn start(&mut self, q: &mut virtio::Queues<'_, Buf>) {
        self.refill(q);
        self.ep.restart(&mut self.chans, random_epoch());
        self.flush_tx(q);
    }

    fn process(&mut self, q: &mut virtio::Queues<'_, Buf>) -> bool {
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
            match self.ep.on_fragment(&mut self.chans, &b.data[..len], &mut self.msg) {
                Received::Event(ev) => self.event(q.name(), ev),
                // No flow can exist yet: the channel layer is not wired.
                Received::Data { .. } | Received::Nothing => {}
            }
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
        if self.rx_posted == 0 {
            // Memory is short: try again on the next pass.
            more = true;
        }
        self.flush_tx(q);
        if !q.enable_cb(wire::TXQ) {
            more = true;
        }
        if done > 0 {
            q.kick(wire::RXQ);
        }
        more
    }
}

struct VmpiGuestModule {
    _driver: virtio::Registration<VmpiGuest>,
}

impl kernel::Module for VmpiGuestModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self { _driver: virtio::Registration::new()? })
    }
}
