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

use proto::wire::{self, Config, DropReason, Header, Reassembler, HDR_LEN};

module! {
    type: VmpiHostModule,
    name: "vmpi_host",
    author: "rvio developers",
    description: "VMPI host side: a vDPA device for VM-to-host message passing",
    license: "GPL",
}

/// Channels of every device (`docs/vmpi-protocol.md`, `num_channels`).
const NUM_CHANNELS: u16 = 256;

/// Per-device counters.
#[derive(Default)]
struct Counters {
    /// Messages received from the driver.
    rx_sdus: u64,
    /// Their bytes.
    rx_bytes: u64,
    /// Drops by reason (`DropReason` as index).
    drops: [u64; DropReason::COUNT],
}

/// One VMPI device.
struct VmpiHost {
    cfg: Config,
    /// Reassembly of the txq's fragments.
    tx_frags: Reassembler,
    /// One txq fragment: header and payload.
    frag: KVec<u8>,
    counters: Counters,
}

impl VmpiHost {
    fn drop_one(&mut self, why: DropReason) {
        self.counters.drops[why as usize] += 1;
    }

    /// Checks and takes one txq chain.
    fn take_tx(&mut self, chain: &mut vdpa::Chain<'_>) {
        let len = chain.readable_len();
        if chain.writable_len() != 0 || len > self.frag.len() {
            // A txq buffer the device could write, or longer than any
            // fragment: not ours to read.
            self.drop_one(if chain.writable_len() != 0 { DropReason::BadDesc } else { DropReason::Oversized });
            return;
        }
        let got = match chain.pull(&mut self.frag[..len]) {
            Ok(n) if n == len => n,
            _ => return self.drop_one(DropReason::BadDesc),
        };
        let hdr = match Header::parse(&self.frag[..got]) {
            Ok(h) => h,
            Err(why) => return self.drop_one(why),
        };
        let pushed = self.tx_frags.push(hdr, got - HDR_LEN);
        if let Some(why) = pushed.dropped {
            self.drop_one(why);
        }
        if let Some(a) = pushed.accepted {
            if a.complete {
                self.counters.rx_sdus += 1;
                self.counters.rx_bytes += a.total as u64;
                // No flow can exist yet: the channel layer (control
                // protocol, flows, char device) is not wired to the
                // device yet, so every message is for an unknown channel.
                self.drop_one(DropReason::BadChannel);
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
        pr_info!("{}: VMPI device, {} channels\n", name, cfg.num_channels);
        Ok(Self { cfg, tx_frags: Reassembler::new(cfg.max_sdu, cfg.num_channels), frag, counters: Counters::default() })
    }

    fn config_space(&self, buf: &mut [u8; vdpa::CONFIG_MAX]) -> usize {
        let b = self.cfg.to_bytes();
        buf[..b.len()].copy_from_slice(&b);
        b.len()
    }

    fn reset(&mut self) {
        self.tx_frags.reset();
    }

    fn start(&mut self, _queues: &mut vdpa::Queues<'_>) {}

    fn process(&mut self, q: &mut vdpa::Queues<'_>) -> bool {
        let mut done = 0;
        while done < wire::TX_BUDGET {
            let mut chain = match q.pop(wire::TXQ) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(vdpa::BadRing) => {
                    self.drop_one(DropReason::BadDesc);
                    break;
                }
            };
            self.take_tx(&mut chain);
            // Dropping the chain completes it.
            drop(chain);
            done += 1;
        }
        if done > 0 {
            q.notify(wire::TXQ);
        }
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
