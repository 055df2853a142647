// SPDX-License-Identifier: GPL-2.0

//! `vmpi_host`: the host side of VMPI, a software vDPA device. Loaded, it
//! registers the vDPA management device `vmpi`; `vdpa dev add mgmtdev vmpi
//! name vmpi0` creates one VMPI device (one guest), which `vhost_vdpa`
//! would serve to QEMU (`-device vhost-vdpa-device-pci`, in a QEMU that
//! knows device id 63: stock QEMU refuses unknown ids) or `virtio_vdpa` binds
//! in the same kernel. `docs/vmpi-protocol.md` is the device's contract.
//!
//! The guest is untrusted: every txq chain is checked (direction, length,
//! header, fragments) and a bad one is counted by reason and dropped; a
//! work pass handles at most `TX_BUDGET` chains.

use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;

#[path = "bindings_generated.rs"]
mod bindings;
// `pub`: the abstraction's whole API stays reachable (unreachable_pub).
#[path = "../../rust/vdpa.rs"]
pub mod vdpa;
#[path = "../../rust/rvio/vmpi_transport.rs"]
pub mod vmpi_transport;
#[path = "../../rust/work_handle.rs"]
pub mod work_handle;
// Pure logic, shared with the host crate rust/pure.
#[path = "../proto/mod.rs"]
pub mod proto;

use proto::link::Role;
use proto::wire::{self, Config, DropReason, HDR_LEN};
use vmpi_transport::{Kick, Transport};

type HostTransport = Transport<vdpa::Handle>;

module! {
    type: VmpiHostModule,
    name: "vmpi_host",
    author: "rvio developers",
    description: "VMPI host side: a vDPA device for VM-to-host message passing",
    license: "GPL",
}

/// Channels of every device (`docs/vmpi-protocol.md`, `num_channels`).
const NUM_CHANNELS: u16 = 256;
/// Most rxq buffers filled per work pass (the guest may post tiny or bad
/// ones: each costs work).
const RX_BUDGET: usize = 64;

/// The core's kick schedules the device's work pass.
impl Kick for vdpa::Handle {
    fn kick(&self) {
        self.schedule();
    }
}

/// One VMPI device (one guest).
struct VmpiHost {
    cfg: Config,
    /// Registered with the core until the device is deleted; it owns the
    /// device's handle (for the core's kicks).
    transport: Option<HostTransport>,
    /// One fragment, either direction: header and payload.
    frag: KVec<u8>,
}

impl VmpiHost {
    /// The next chain of queue `idx`, if any; a ring the device cannot
    /// walk is counted (and stays stopped until the driver resets).
    fn pop<'a>(
        t: &HostTransport,
        q: &'a mut vdpa::Queues<'_>,
        idx: u16,
    ) -> Option<vdpa::Chain<'a>> {
        match q.pop(idx) {
            Ok(c) => c,
            Err(vdpa::BadRing) => {
                t.count_drop(DropReason::BadDesc as u32);
                None
            }
        }
    }

    /// Fills the driver's rxq buffers with what the core has to send, at
    /// most `RX_BUDGET` of them; returns whether the budget ran out.
    fn flush_rx(t: &HostTransport, frag: &mut [u8], q: &mut vdpa::Queues<'_>) -> bool {
        let mut used = 0;
        while t.tx_len() > 0 {
            if used == RX_BUDGET {
                break;
            }
            let Some(mut chain) = Self::pop(t, q, wire::RXQ) else {
                break;
            };
            used += 1;
            if chain.readable_len() != 0 {
                // An rxq buffer the driver wants us to read: unusable.
                t.count_drop(DropReason::BadDesc as u32);
                continue;
            }
            let room = chain.writable_len().min(frag.len());
            match t.tx(&mut frag[..room]) {
                Ok(n) if n > 0 => {
                    if chain.push(&frag[..n]) != Ok(n) {
                        t.count_drop(DropReason::BadDesc as u32);
                    }
                }
                // Below min_rx_buf: returned unused (used length 0).
                _ => t.count_drop(DropReason::BadDesc as u32),
            }
            // Dropping the chain completes it with what was written.
        }
        if used > 0 {
            q.notify(wire::RXQ);
        }
        used == RX_BUDGET
    }

    /// Checks one txq chain and hands its fragment to the core.
    fn take_tx(t: &HostTransport, frag: &mut [u8], chain: &mut vdpa::Chain<'_>) {
        let len = chain.readable_len();
        if chain.writable_len() != 0 {
            // A txq buffer the device could write: not a message.
            return t.count_drop(DropReason::BadDesc as u32);
        }
        if len > frag.len() {
            return t.count_drop(DropReason::Oversized as u32);
        }
        match chain.pull(&mut frag[..len]) {
            Ok(n) if n == len => t.rx(&frag[..n]),
            _ => t.count_drop(DropReason::BadDesc as u32),
        }
    }
}

impl vdpa::Device for VmpiHost {
    const DEVICE_ID: u32 = wire::DEVICE_ID;
    const FEATURES: u64 = wire::DEVICE_FEATURES;

    fn new(name: &CStr, dev: vdpa::Handle) -> Result<Self> {
        let cfg = Config::new(NUM_CHANNELS).map_err(|_| EINVAL)?;
        let frag = KVec::from_elem(0u8, HDR_LEN + cfg.max_sdu as usize, GFP_KERNEL)?;
        let t = Transport::register(Role::Host, name, &cfg.to_bytes(), dev)?;
        pr_info!("{}: VMPI device, {} channels\n", name, cfg.num_channels);
        Ok(Self {
            cfg,
            transport: Some(t),
            frag,
        })
    }

    fn remove(&mut self) {
        self.transport = None;
    }

    fn config_space(&self, buf: &mut [u8; vdpa::CONFIG_MAX]) -> usize {
        let b = self.cfg.to_bytes();
        buf[..b.len()].copy_from_slice(&b);
        b.len()
    }

    fn reset(&mut self) {
        // The rings are gone: the core resets the link and queues a HELLO
        // for the next DRIVER_OK and rxq buffers.
        if let Some(t) = &self.transport {
            t.restart();
        }
    }

    fn start(&mut self, _queues: &mut vdpa::Queues<'_>) {}

    fn process(&mut self, q: &mut vdpa::Queues<'_>) -> bool {
        let Self {
            transport: Some(t),
            frag,
            ..
        } = self
        else {
            return false;
        };
        // No kicks while this pass works through the queues.
        q.kicks_off(wire::TXQ);
        q.kicks_off(wire::RXQ);
        let mut more = Self::flush_rx(t, frag, q);
        let mut done = 0;
        while done < wire::TX_BUDGET {
            let Some(mut chain) = Self::pop(t, q, wire::TXQ) else {
                break;
            };
            Self::take_tx(t, frag, &mut chain);
            // Dropping the chain completes it.
            drop(chain);
            done += 1;
        }
        if done > 0 {
            q.notify(wire::TXQ);
        }
        // Replies to what came in.
        more |= Self::flush_rx(t, frag, q);
        more |= done == wire::TX_BUDGET;
        if !more {
            // Going idle: kicks on again, and a look at what came
            // meanwhile. rxq buffers matter only with something to send.
            more |= !q.kicks_on(wire::TXQ);
            more |= t.tx_len() > 0 && !q.kicks_on(wire::RXQ);
        }
        more
    }
}

struct VmpiHostModule {
    _mgmt: vdpa::Registration<VmpiHost>,
}

impl kernel::Module for VmpiHostModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mgmt = vdpa::Registration::new(c_str!("vmpi"))?;
        pr_info!(
            "vDPA management device vmpi registered (virtio device id {})\n",
            wire::DEVICE_ID
        );
        Ok(Self { _mgmt: mgmt })
    }
}
