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

use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::{Arc, ArcBorrow};

#[path = "bindings_generated.rs"]
mod bindings;
// `pub`: the abstraction's whole API stays reachable (unreachable_pub).
#[path = "../../rust/dwork.rs"]
pub mod dwork;
#[path = "../../rust/vdpa.rs"]
pub mod vdpa;
#[path = "../../rust/rvio/vmpi_transport.rs"]
pub mod vmpi_transport;
#[path = "../../rust/work_handle.rs"]
pub mod work_handle;
// Pure logic, shared with the host crate rust/pure.
#[path = "../../envelope/proto/mod.rs"]
pub mod envelope_proto;
#[path = "../../rust/line.rs"]
pub mod line;
#[path = "../proto/mod.rs"]
pub mod proto;

mod grants;
mod params;

use envelope_proto::grant;
use grants::{DeviceGrants, Domains, Registry};
use proto::link::Role;
use proto::wire::{self, Config, DropReason, HDR_LEN};
use vmpi_transport::{DomainBinding, Kick, Transport};

type HostTransport = Transport<HostOps>;

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

/// What the core calls on a device: its kick schedules the work pass; the
/// domain calls bind the device's grants to the envelope switch.
struct HostOps {
    work: vdpa::Handle,
    domains: Domains,
}

impl Kick for HostOps {
    fn kick(&self) {
        self.work.schedule();
    }

    fn flush(&self) {
        self.work.run_now();
    }

    const HAS_DOMAINS: bool = true;

    fn bind_domain(&self, domain: u16, binding: DomainBinding) -> Result {
        self.domains.bind(domain, binding)
    }

    fn unbind_domain(&self) {
        self.domains.unbind();
    }

    fn domain_stats(&self, s: &mut bindings::vmpi_grant_stats) {
        self.domains.stats(s);
    }

    fn deliver(&self, handle: u64, src_domain: u16, frame_len: u32, meta: &[u8; 12]) -> Result {
        self.domains.deliver(handle, src_domain, frame_len, meta)
    }
}

/// The domains of every device of the module: set while the module is
/// loaded (`VmpiHostModule`), so from before the first device is added
/// until after the last is released.
static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

fn registry() -> Result<Arc<Registry>> {
    let p = REGISTRY.load(Ordering::Acquire);
    if p.is_null() {
        return Err(ENODEV);
    }
    // SAFETY: a non-NULL `REGISTRY` is `Arc::into_raw` of the module's
    // registry, whose count the module holds until it clears `REGISTRY`
    // after the vDPA registration (and so every device) is gone; devices
    // are added only while it is registered.
    Ok(unsafe { ArcBorrow::from_raw(p) }.into())
}

/// One VMPI device (one guest).
struct VmpiHost {
    cfg: Config,
    /// Registered with the core until the device is deleted; it owns the
    /// device's handle (for the core's kicks).
    transport: Option<HostTransport>,
    /// The grantq and copyq (`VMPI_F_GRANT`).
    grants: DeviceGrants,
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
            // The rxq holds nothing of the driver's for us: no incoming
            // message lost a fragment.
            Err(vdpa::BadRing) if idx == wire::RXQ => {
                t.tx_lost(false);
                None
            }
            Err(vdpa::BadRing) => {
                t.count_drop(DropReason::BadDesc as u32);
                None
            }
        }
    }

    /// Fills the driver's rxq buffers with what the core has to send, at
    /// most `RX_BUDGET` of them; returns whether the budget ran out. The
    /// core writes each fragment straight from the SDU's bytes.
    fn flush_rx(t: &HostTransport, q: &mut vdpa::Queues<'_>) -> bool {
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
                t.tx_lost(false);
                continue;
            }
            let room = chain.writable_len();
            match t.tx_to(room, |part| chain.push(part)) {
                Ok(n) if n > 0 => {}
                // Not writable: the core counted the fragment lost, and
                // the rest of its message is not sent. The buffer goes
                // back empty, not with the part written (a header alone
                // would end the message at the driver).
                Err(e) if e == EFAULT => chain.set_written(0),
                // Below min_rx_buf: returned unused (used length 0).
                _ => t.tx_lost(false),
            }
            // Dropping the chain completes it with what was written.
        }
        if used > 0 {
            q.notify(wire::RXQ);
        }
        used == RX_BUDGET
    }

    /// Checks one txq chain and hands its fragment to the core, which has
    /// it copied straight to where it goes (an SDU's own buffer).
    fn take_tx(t: &HostTransport, cfg: &Config, chain: &mut vdpa::Chain<'_>) {
        let len = chain.readable_len();
        if chain.writable_len() != 0 {
            // A txq buffer the device could write: not a message.
            return t.count_drop(DropReason::BadDesc as u32);
        }
        if len > HDR_LEN + cfg.max_sdu as usize {
            return t.count_drop(DropReason::Oversized as u32);
        }
        // SAFETY: `pull_uninit` returns how many bytes vringh copied into
        // its argument, from the guest's memory (bytes).
        unsafe { t.rx_from(len, |dst| chain.pull_uninit(dst)) };
    }
}

impl vdpa::Device for VmpiHost {
    const DEVICE_ID: u32 = wire::DEVICE_ID;
    const FEATURES: u64 = wire::DEVICE_FEATURES | grant::F_GRANT;
    const NVQS: u32 = 4;

    fn new(name: &CStr, dev: vdpa::Handle) -> Result<Self> {
        let cfg = Config::new(NUM_CHANNELS).map_err(|_| EINVAL)?;
        let grants = DeviceGrants::new(dev.clone(), registry()?)?;
        let ops = HostOps {
            work: dev,
            domains: grants.domains(),
        };
        let t = Transport::register(Role::Host, name, &config_bytes(&cfg), ops)?;
        pr_info!("{}: VMPI device, {} channels\n", name, cfg.num_channels);
        Ok(Self {
            cfg,
            transport: Some(t),
            grants,
        })
    }

    fn remove(&mut self) {
        // The core first: after this no bind_domain can start (one that
        // ended before is undone next).
        self.transport = None;
        self.grants.remove();
    }

    fn config_space(&self, buf: &mut [u8; vdpa::CONFIG_MAX]) -> usize {
        let b = config_bytes(&self.cfg);
        buf[..b.len()].copy_from_slice(&b);
        b.len()
    }

    fn reset(&mut self) {
        self.grants.reset();
        // The rings are gone: the core resets the link and queues a HELLO
        // for the next DRIVER_OK and rxq buffers.
        if let Some(t) = &self.transport {
            t.restart();
        }
    }

    fn start(&mut self, queues: &mut vdpa::Queues<'_>) {
        self.grants.start(queues.features());
    }

    // Grant chains and posted receives are kept out.
    const HAS_SUSPEND: bool = true;

    fn suspend(&mut self, queues: &mut vdpa::Queues<'_>) {
        self.grants.suspend(queues);
    }

    fn resume(&mut self, queues: &mut vdpa::Queues<'_>) {
        self.grants.start(queues.features());
    }

    /// A writer's pass: only what the core has to send, into the driver's
    /// rxq buffers (at most `RX_BUDGET`); kicks stay as the last pass left
    /// them, and a pass of the work follows if more waits.
    fn flush(&mut self, q: &mut vdpa::Queues<'_>) -> bool {
        let Some(t) = &self.transport else {
            return false;
        };
        let more = Self::flush_rx(t, q);
        more || (t.tx_len() > 0 && !q.kicks_on(wire::RXQ))
    }

    fn process(&mut self, q: &mut vdpa::Queues<'_>) -> bool {
        let Self {
            cfg,
            transport: Some(t),
            grants,
        } = self
        else {
            return false;
        };
        // No kicks while this pass works through the queues.
        q.kicks_off(wire::TXQ);
        q.kicks_off(wire::RXQ);
        let mut more = Self::flush_rx(t, q);
        let mut done = 0;
        while done < wire::TX_BUDGET {
            let Some(mut chain) = Self::pop(t, q, wire::TXQ) else {
                break;
            };
            Self::take_tx(t, cfg, &mut chain);
            // Dropping the chain completes it.
            drop(chain);
            done += 1;
        }
        if done > 0 {
            q.notify(wire::TXQ);
        }
        more |= grants.process(q);
        // Replies to what came in (an envelope policy call may send).
        more |= Self::flush_rx(t, q);
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

/// The configuration space: VMPI's, then `max_grants` and 2 reserved
/// bytes (`docs/vmpi-protocol.md` section 5).
fn config_bytes(cfg: &Config) -> [u8; grant::CONFIG_LEN] {
    let mut b = [0u8; grant::CONFIG_LEN];
    b[..wire::CONFIG_LEN].copy_from_slice(&cfg.to_bytes());
    b[wire::CONFIG_LEN..wire::CONFIG_LEN + 2]
        .copy_from_slice(&(grant::MAX_GRANTS as u16).to_le_bytes());
    b
}

struct VmpiHostModule {
    mgmt: Option<vdpa::Registration<VmpiHost>>,
}

impl Drop for VmpiHostModule {
    fn drop(&mut self) {
        // Every device is deleted and released first.
        self.mgmt = None;
        let p = REGISTRY.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: `init` stored `Arc::into_raw` of the registry, whose
            // count this takes back once (the swap cleared it).
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

impl kernel::Module for VmpiHostModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        REGISTRY.store(
            Arc::into_raw(Registry::new()?).cast_mut(),
            Ordering::Release,
        );
        let mgmt = match vdpa::Registration::new(c_str!("vmpi")) {
            Ok(m) => m,
            Err(e) => {
                // No module value: drop one that releases the registry.
                drop(Self { mgmt: None });
                return Err(e);
            }
        };
        pr_info!(
            "vDPA management device vmpi registered (virtio device id {})\n",
            wire::DEVICE_ID
        );
        Ok(Self { mgmt: Some(mgmt) })
    }
}
