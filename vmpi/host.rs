// SPDX-License-Identifier: GPL-2.0

//! `vmpi_host`: the host side of VMPI, a software vDPA device. Loaded, it
//! registers the vDPA management device `vmpi`; `vdpa dev add mgmtdev vmpi
//! name vmpi0` creates one VMPI device (one guest), which `vhost_vdpa`
//! serves to QEMU (`-device vhost-vdpa-device-pci`) or `virtio_vdpa` binds
//! in the same kernel. `docs/vmpi-protocol.md` is the device's contract.
//!
//! The guest is untrusted: every txq chain is checked (direction, length,
//! header, fragments) and a bad one is counted by reason and dropped; a
//! work pass handles at most `TX_BUDGET` chains.

use kernel::prelude::*;
use kernel::c_str;
use kernel::str::CStr;

#[path = "../rust/bindings.rs"]
mod bindings;
// `pub`: the abstraction's whole API stays reachable (unreachable_pub).
#[path = "../rust/vdpa.rs"]
pub mod vdpa;
// Pure logic, shared with the host crate rust/pure.
#[path = "proto/mod.rs"]
pub mod proto;

use proto::endpoint::{Endpoint, Received};
use proto::link::{Chan, Event, Role};
use proto::wire::{self, Config, DropReason, HDR_LEN};

module! {
    type: VmpiHostModule,
    name: "vmpi_host",
    author: "rvio developers",
    description: "VMPI host side: a vDPA device for VM-to-host message passing",
    license: "GPL",
}

/// Channels of every device (`docs/vmpi-protocol.md`, `num_channels`).
const NUM_CHANNELS: u16 = 256;

fn random_epoch() -> u32 {
    // SAFETY: `get_random_u32` has no preconditions.
    unsafe { bindings::get_random_u32() }.max(1)
}

/// One VMPI device (one guest).
struct VmpiHost {
    ep: Endpoint,
    chans: KVec<Chan>,
    /// One fragment, either direction: header and payload.
    frag: KVec<u8>,
    /// The message being reassembled.
    msg: KVec<u8>,
}

impl VmpiHost {
    /// Writes queued control messages into the driver's rxq buffers.
    /// Returns whether any buffer was used.
    fn flush_rx(&mut self, q: &mut vdpa::Queues<'_>) -> bool {
        let mut used = false;
        while !self.ep.outbox.is_empty() {
            let mut chain = match q.pop(wire::RXQ) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(vdpa::BadRing) => {
                    self.ep.counters.drop_one(DropReason::BadDesc);
                    break;
                }
            };
            used = true;
            let room = chain.writable_len().min(self.frag.len());
            if chain.readable_len() != 0 {
                // An rxq buffer the driver wants us to read: unusable.
                self.ep.counters.drop_one(DropReason::BadDesc);
                continue;
            }
            let cfg = self.ep.link.config();
            let Some(n) = self.ep.outbox.next_fragment(&mut self.frag[..room], cfg.min_rx_buf) else {
                // Below min_rx_buf: returned unused (used length 0).
                self.ep.counters.drop_one(DropReason::BadDesc);
                continue;
            };
            if chain.push(&self.frag[..n]) != Ok(n) {
                self.ep.counters.drop_one(DropReason::BadDesc);
            }
            // Dropping the chain completes it with what was written.
        }
        if used {
            q.notify(wire::RXQ);
        }
        used
    }

    /// Checks and takes one txq chain; returns what it came to.
    fn take_tx(&mut self, chain: &mut vdpa::Chain<'_>) -> Received {
        let len = chain.readable_len();
        if chain.writable_len() != 0 {
            // A txq buffer the device could write: not a message.
            self.ep.counters.drop_one(DropReason::BadDesc);
            return Received::Nothing;
        }
        if len > self.frag.len() {
            self.ep.counters.drop_one(DropReason::Oversized);
            return Received::Nothing;
        }
        match chain.pull(&mut self.frag[..len]) {
            Ok(n) if n == len => self.ep.on_fragment(&mut self.chans, &self.frag[..n], &mut self.msg),
            _ => {
                self.ep.counters.drop_one(DropReason::BadDesc);
                Received::Nothing
            }
        }
    }
}

impl vdpa::Device for VmpiHost {
    const DEVICE_ID: u32 = wire::DEVICE_ID;
    const FEATURES: u64 = 0;

    fn new(name: &CStr) -> Result<Self> {
        let cfg = Config::new(NUM_CHANNELS).map_err(|_| EINVAL)?;
        let frag = KVec::from_elem(0u8, HDR_LEN + cfg.max_sdu as usize, GFP_KERNEL)?;
        let msg = KVec::from_elem(0u8, cfg.max_sdu as usize, GFP_KERNEL)?;
        let mut chans = KVec::with_capacity(usize::from(cfg.num_channels), GFP_KERNEL)?;
        for _ in 0..cfg.num_channels {
            chans.push(Chan::Free, GFP_KERNEL)?;
        }
        pr_info!("{}: VMPI device, {} channels\n", name, cfg.num_channels);
        Ok(Self { ep: Endpoint::new(Role::Device, cfg, random_epoch()), chans, frag, msg })
    }

    fn config_space(&self, buf: &mut [u8; vdpa::CONFIG_MAX]) -> usize {
        let b = self.ep.link.config().to_bytes();
        buf[..b.len()].copy_from_slice(&b);
        b.len()
    }

    fn reset(&mut self) {
        // The rings are gone: forget the link; a HELLO waits for the next
        // DRIVER_OK and rxq buffers.
        self.ep.restart(&mut self.chans, random_epoch());
    }

    fn start(&mut self, _queues: &mut vdpa::Queues<'_>) {}

    fn process(&mut self, q: &mut vdpa::Queues<'_>) -> bool {
        self.flush_rx(q);
        let mut done = 0;
        while done < wire::TX_BUDGET {
            let mut chain = match q.pop(wire::TXQ) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(vdpa::BadRing) => {
                    self.ep.counters.drop_one(DropReason::BadDesc);
                    break;
                }
            };
            let got = self.take_tx(&mut chain);
            // Dropping the chain completes it.
            drop(chain);
            done += 1;
            match got {
                Received::Event(Event::LinkUp) => pr_info!("{}: link up\n", q.name()),
                Received::Event(Event::PeerRestarted) => pr_info!("{}: guest restarted: flows reset\n", q.name()),
                // No flow can exist yet: the channel layer (flows, char
                // device) is not wired to the device yet.
                Received::Event(_) | Received::Data { .. } | Received::Nothing => {}
            }
        }
        if done > 0 {
            q.notify(wire::TXQ);
        }
        // Replies to what came in.
        self.flush_rx(q);
        done == wire::TX_BUDGET
    }
}

struct VmpiHostModule {
    _mgmt: vdpa::Registration<VmpiHost>,
}

impl kernel::Module for VmpiHostModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mgmt = vdpa::Registration::new(c_str!("vmpi"))?;
        pr_info!("vDPA management device vmpi registered (virtio device id {})\n", wire::DEVICE_ID);
        Ok(Self { _mgmt: mgmt })
    }
}
