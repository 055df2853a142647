// SPDX-License-Identifier: GPL-2.0

//! Test module: an in-kernel user of VMPI (`rust/rvio/vmpi_port.rs` over the
//! C-ABI of `include/rvio/vmpi.h`) on the first host-side VMPI device.
//! Raw channel 9 echoes every SDU back (waiting for room when the send
//! queue is full); raw channel 10 sends a flood of 2000 SDUs of 4 KiB at
//! load, resuming on `write_space`. It logs what it did when the port goes
//! down and when unloaded (selftests/vmpi/kernel_api.sh reads the log).

use core::sync::atomic::{AtomicU32, Ordering};
use kernel::prelude::*;
use kernel::sync::{new_mutex, Arc, Mutex};

#[path = "bindings_generated.rs"]
mod bindings;
#[path = "../../rust/rvio/vmpi_port.rs"]
pub mod vmpi_port;
// The VMPI protocol's pure logic, for its `Role` type.
#[path = "../../vmpi/proto/mod.rs"]
pub mod proto;

use proto::link::Role;
use vmpi_port::{Port, PortRef, PortUser};

module! {
    type: VmpiEcho,
    name: "vmpi_echo",
    author: "rvio developers",
    description: "rvio selftest: in-kernel VMPI user (echo and flood)",
    license: "GPL",
}

const ECHO_CHANNEL: u16 = 9;
const FLOOD_CHANNEL: u16 = 10;
const FLOOD_SDUS: u32 = 2000;
const FLOOD_LEN: usize = 4096;
/// Echoes waiting for room; more are dropped (counted, logged).
const ECHO_BACKLOG: usize = 256;

/// Echoes not sent yet: `q[head..]`.
struct Pending {
    q: KVec<KVec<u8>>,
    head: usize,
}

#[pin_data]
struct Echo {
    #[pin]
    pending: Mutex<Pending>,
    echoed: AtomicU32,
    dropped: AtomicU32,
    waits: AtomicU32,
}

impl Echo {
    /// Sends what waits, in order, until the queue is full.
    fn drain(&self, port: &PortRef<'_>, pending: &mut Pending) {
        let mut sent = 0;
        for sdu in pending.q[pending.head..].iter() {
            match port.send(sdu) {
                Ok(()) => sent += 1,
                Err(e) if e == EAGAIN => {
                    self.waits.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    sent += 1;
                }
            }
        }
        self.echoed.fetch_add(sent as u32, Ordering::Relaxed);
        pending.head += sent;
        if pending.head == pending.q.len() {
            pending.q = KVec::new();
            pending.head = 0;
        }
    }
}

impl PortUser for Echo {
    fn rx(&self, port: &PortRef<'_>, sdu: &[u8]) {
        let mut pending = self.pending.lock();
        let mut copy = KVec::new();
        if pending.q.len() >= ECHO_BACKLOG || copy.extend_from_slice(sdu, GFP_KERNEL).is_err() {
            // Counted and reported at unload; no log per SDU.
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if pending.q.push(copy, GFP_KERNEL).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.drain(port, &mut pending);
    }
    fn write_space(&self, port: &PortRef<'_>) {
        self.drain(port, &mut self.pending.lock());
    }
    fn down(&self, _port: &PortRef<'_>, err: Error) {
        pr_info!("echo port down ({:?})\n", err);
    }
}

struct Flood {
    sent: AtomicU32,
    waits: AtomicU32,
}

impl Flood {
    fn run(&self, port: &PortRef<'_>) {
        let mut sdu = [0u8; FLOOD_LEN];
        while self.sent.load(Ordering::Relaxed) < FLOOD_SDUS {
            let n = self.sent.load(Ordering::Relaxed);
            sdu[..4].copy_from_slice(&n.to_le_bytes());
            match port.send(&sdu) {
                Ok(()) => {
                    if self.sent.fetch_add(1, Ordering::Relaxed) + 1 == FLOOD_SDUS {
                        pr_info!(
                            "flood of {} SDUs sent, waited for room {} times\n",
                            FLOOD_SDUS,
                            self.waits.load(Ordering::Relaxed)
                        );
                    }
                }
                Err(e) if e == EAGAIN => {
                    self.waits.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    pr_info!("flood stopped at {}: {:?}\n", n, e);
                    self.sent.store(FLOOD_SDUS + 1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

impl PortUser for Flood {
    fn rx(&self, _port: &PortRef<'_>, _sdu: &[u8]) {}
    fn write_space(&self, port: &PortRef<'_>) {
        self.run(port);
    }
    fn down(&self, _port: &PortRef<'_>, err: Error) {
        pr_info!("flood port down ({:?})\n", err);
    }
}

struct VmpiEcho {
    echo: Port<Echo>,
    flood: Port<Flood>,
}

impl kernel::Module for VmpiEcho {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let id = vmpi_port::find(Role::Host, None)?;
        let echo = Arc::pin_init(
            pin_init!(Echo {
                pending <- new_mutex!(Pending { q: KVec::new(), head: 0 }, "vmpi_echo::pending"),
                echoed: AtomicU32::new(0),
                dropped: AtomicU32::new(0),
                waits: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )?;
        let echo = Port::open(id, ECHO_CHANNEL, echo)?;
        let flood = Arc::new(
            Flood {
                sent: AtomicU32::new(0),
                waits: AtomicU32::new(0),
            },
            GFP_KERNEL,
        )?;
        let flood = Port::open(id, FLOOD_CHANNEL, flood)?;
        pr_info!(
            "on vmpi{} channels {} (echo) and {} (flood)\n",
            id,
            ECHO_CHANNEL,
            FLOOD_CHANNEL
        );
        flood.user().run(&flood.port());
        Ok(VmpiEcho { echo, flood })
    }
}

impl Drop for VmpiEcho {
    fn drop(&mut self) {
        let e = self.echo.user();
        pr_info!(
            "unloading: echoed {}, dropped {}, waited for room {} times; flood sent {}\n",
            e.echoed.load(Ordering::Relaxed),
            e.dropped.load(Ordering::Relaxed),
            e.waits.load(Ordering::Relaxed),
            self.flood
                .user()
                .sent
                .load(Ordering::Relaxed)
                .min(FLOOD_SDUS)
        );
    }
}
