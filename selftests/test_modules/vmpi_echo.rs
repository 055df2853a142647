// SPDX-License-Identifier: GPL-2.0

//! Test module: an in-kernel user of VMPI (`rust/rvio/vmpi_port.rs` over the
//! C-ABI of `include/rvio/vmpi.h`) on the first host-side VMPI device.
//! Raw channel 9 echoes every SDU back (waiting for room when the send
//! queue is full); raw channel 11 does the same, sending SDUs in turn
//! through `vmpi_port_send_sg()` with `atomic` and bottom halves off (a
//! softirq's context: it must not sleep), its first bytes as the head and
//! the rest from a scatterlist, through `vmpi_port_send()`, and through
//! `vmpi_port_send_sg()` from process context (which must not overtake
//! the first); raw channel 10 sends a flood of 2000 SDUs of 4 KiB at
//! load the same way, falling back to `vmpi_port_send()` when 64 wait,
//! and resuming on `write_space`. It logs what it did when the port goes
//! down and when unloaded (selftests/vmpi/kernel_api.sh reads the log).

use core::sync::atomic::{AtomicU32, Ordering};
use kernel::prelude::*;
use kernel::sync::{new_mutex, Arc, Mutex};

#[path = "../../rust/bh_lock.rs"]
pub mod bh_lock;
#[path = "bindings_generated.rs"]
mod bindings;
#[path = "../../rust/rvio/vmpi_port.rs"]
pub mod vmpi_port;
// The VMPI protocol's pure logic, for its `Role` type.
#[path = "../../vmpi/proto/mod.rs"]
pub mod proto;

use bh_lock::BhLock;
use kernel::sync::new_spinlock;
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
const SG_ECHO_CHANNEL: u16 = 11;
/// Bytes of an SDU sent by `send_sg` that go as its head.
const SG_HEAD: usize = 3;
const FLOOD_SDUS: u32 = 2000;
const FLOOD_LEN: usize = 4096;
/// Echoes waiting for room; more are dropped (counted, logged).
const ECHO_BACKLOG: usize = 256;

/// Echoes not sent yet: `q[head..]`.
struct Pending {
    q: KVec<KVec<u8>>,
    head: usize,
}

/// Sends `sdu` through `vmpi_port_send_sg()` with bottom halves off
/// (holding `atomic`): its first [`SG_HEAD`] bytes as the head, the rest
/// from a one-entry scatterlist over them (`sdu` is kmalloc memory). Falls
/// back to `vmpi_port_send()` (process context) when that says `EAGAIN`
/// or `ENOMEM` (no memory without sleeping); `any` counts the SDUs the
/// first took.
fn send_any_context(
    port: &PortRef<'_>,
    atomic: &BhLock<()>,
    any: &AtomicU32,
    sdu: &KVec<u8>,
) -> Result {
    let (head, rest) = sdu.split_at(sdu.len().min(SG_HEAD));
    let mut sg = bindings::scatterlist::default();
    let r = {
        let _off = atomic.lock();
        if rest.is_empty() {
            // SAFETY: no scatterlist bytes are read for a length of 0.
            unsafe { port.send_sg(head, core::ptr::null_mut(), 0, true) }
        } else {
            // SAFETY: `sg` is one entry, marked, over `rest`, kmalloc'ed
            // bytes (`KVec`) that live past the call.
            unsafe {
                bindings::sg_init_one(&mut sg, rest.as_ptr().cast(), rest.len() as u32);
                port.send_sg(head, &mut sg, rest.len(), true)
            }
        }
    };
    match r {
        Ok(()) => {
            any.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) if e == EAGAIN || e == ENOMEM => port.send(sdu),
        Err(e) => Err(e),
    }
}

/// Sends `sdu` through `vmpi_port_send_sg()` from process context: its
/// first [`SG_HEAD`] bytes as the head, the rest from a scatterlist.
fn send_sg_process(port: &PortRef<'_>, sdu: &KVec<u8>) -> Result {
    let (head, rest) = sdu.split_at(sdu.len().min(SG_HEAD));
    let mut sg = bindings::scatterlist::default();
    if rest.is_empty() {
        // SAFETY: no scatterlist bytes are read for a length of 0; the
        // device's work calls us in process context.
        return unsafe { port.send_sg(head, core::ptr::null_mut(), 0, false) };
    }
    // SAFETY: `sg` is one entry, marked, over `rest`, kmalloc'ed bytes
    // (`KVec`) that live past the call; process context (the device's
    // work).
    unsafe {
        bindings::sg_init_one(&mut sg, rest.as_ptr().cast(), rest.len() as u32);
        port.send_sg(head, &mut sg, rest.len(), false)
    }
}

#[pin_data]
struct Echo {
    #[pin]
    pending: Mutex<Pending>,
    echoed: AtomicU32,
    dropped: AtomicU32,
    waits: AtomicU32,
    /// Echo every other SDU through `vmpi_port_send_sg()` (channel 11),
    /// with bottom halves off under this lock; SDUs it took; SDUs echoed
    /// or tried.
    any_context: bool,
    #[pin]
    atomic: BhLock<()>,
    any: AtomicU32,
    turn: AtomicU32,
}

impl Echo {
    fn new(any_context: bool) -> impl PinInit<Self> {
        pin_init!(Echo {
            pending <- new_mutex!(Pending { q: KVec::new(), head: 0 }, "vmpi_echo::pending"),
            echoed: AtomicU32::new(0),
            dropped: AtomicU32::new(0),
            waits: AtomicU32::new(0),
            any_context,
            atomic <- BhLock::new(new_spinlock!((), "vmpi_echo::Echo::atomic")),
            any: AtomicU32::new(0),
            turn: AtomicU32::new(0),
        })
    }

    /// Sends what waits, in order, until the queue is full.
    fn drain(&self, port: &PortRef<'_>, pending: &mut Pending) {
        let mut sent = 0;
        for sdu in pending.q[pending.head..].iter() {
            let turn = self.turn.fetch_add(1, Ordering::Relaxed) % 3;
            let r = match turn {
                0 if self.any_context => send_any_context(port, &self.atomic, &self.any, sdu),
                2 if self.any_context => send_sg_process(port, sdu),
                _ => port.send(sdu),
            };
            match r {
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

#[pin_data]
struct Flood {
    sent: AtomicU32,
    waits: AtomicU32,
    #[pin]
    atomic: BhLock<()>,
    /// SDUs `vmpi_port_send_sg()` took.
    any: AtomicU32,
}

impl Flood {
    fn run(&self, port: &PortRef<'_>) {
        let Ok(mut sdu) = KVec::from_elem(0u8, FLOOD_LEN, GFP_KERNEL) else {
            pr_info!("flood stopped: no memory\n");
            return;
        };
        while self.sent.load(Ordering::Relaxed) < FLOOD_SDUS {
            let n = self.sent.load(Ordering::Relaxed);
            sdu[..4].copy_from_slice(&n.to_le_bytes());
            match send_any_context(port, &self.atomic, &self.any, &sdu) {
                Ok(()) => {
                    if self.sent.fetch_add(1, Ordering::Relaxed) + 1 == FLOOD_SDUS {
                        pr_info!(
                            "flood of {} SDUs sent ({} by send_sg), waited for room {} times\n",
                            FLOOD_SDUS,
                            self.any.load(Ordering::Relaxed),
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
    sg_echo: Port<Echo>,
    flood: Port<Flood>,
}

impl kernel::Module for VmpiEcho {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let id = vmpi_port::find(Role::Host, None)?;
        let echo = Port::open(
            id,
            ECHO_CHANNEL,
            Arc::pin_init(Echo::new(false), GFP_KERNEL)?,
        )?;
        let sg_echo = Port::open(
            id,
            SG_ECHO_CHANNEL,
            Arc::pin_init(Echo::new(true), GFP_KERNEL)?,
        )?;
        let flood = Arc::pin_init(
            pin_init!(Flood {
                sent: AtomicU32::new(0),
                waits: AtomicU32::new(0),
                atomic <- BhLock::new(new_spinlock!((), "vmpi_echo::Flood::atomic")),
                any: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )?;
        let flood = Port::open(id, FLOOD_CHANNEL, flood)?;
        pr_info!(
            "on vmpi{} channels {} (echo), {} (echo by send_sg) and {} (flood)\n",
            id,
            ECHO_CHANNEL,
            SG_ECHO_CHANNEL,
            FLOOD_CHANNEL
        );
        flood.user().run(&flood.port());
        Ok(VmpiEcho {
            echo,
            sg_echo,
            flood,
        })
    }
}

impl Drop for VmpiEcho {
    fn drop(&mut self) {
        let e = self.echo.user();
        let sg = self.sg_echo.user();
        pr_info!(
            "unloading: echoed {}, dropped {}, waited for room {} times; by send_sg echoed {} ({} by send_sg), dropped {}; flood sent {}\n",
            e.echoed.load(Ordering::Relaxed),
            e.dropped.load(Ordering::Relaxed),
            e.waits.load(Ordering::Relaxed),
            sg.echoed.load(Ordering::Relaxed),
            sg.any.load(Ordering::Relaxed),
            sg.dropped.load(Ordering::Relaxed),
            self.flood
                .user()
                .sent
                .load(Ordering::Relaxed)
                .min(FLOOD_SDUS)
        );
    }
}
