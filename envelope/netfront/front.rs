// SPDX-License-Identifier: GPL-2.0

//! The netfront's interfaces: one [`Front`] per guest-side VMPI device,
//! an Ethernet interface whose frames travel over the device's raw
//! channel 1 to and from the host's switch, with the read-only replica of
//! the forwarding table the host pushes.
//!
//! Locking: `fronts` is taken by sysfs calls and by a port's `down`; a
//! front is dropped outside it (dropping closes the port, which waits for
//! the device's callbacks, and unregisters the interface, which takes
//! RTNL). A front's `tx` is taken by the transmit work only.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::{new_mutex, Arc, Mutex};

use crate::dwork::{DelayedWork, DelayedWorkItem};
use crate::envelope_proto::domain::DevName;
use crate::envelope_proto::front::AttachCmd;
use crate::envelope_proto::msg::{self, frame_prefix, Meta, Msg, MAX_FRAME, META_LEN, MSG_HDR_LEN};
use crate::envelope_proto::table::Replica;
use crate::netdev::{self, NetDevice, Registration};
use crate::proto::link::Role;
use crate::sysfs_buf::SysfsBuf;
use crate::vmpi_port::{self, Port, PortRef, PortUser};

/// Interfaces at once (the `fronts` file fits a page).
const MAX_FRONTS: usize = 16;
/// An 802.1Q tag.
const VLAN_HLEN: usize = 4;
/// The largest MTU: a frame with a VLAN tag still fits a `FRAME` message.
const MAX_MTU: usize = MAX_FRAME - msg::ETH_HLEN - VLAN_HLEN;

/// What `ethtool -S` shows (in [`FrontDev::STATS`]'s order).
#[derive(Default)]
struct Counters {
    tx_frames: AtomicU64,
    tx_tso: AtomicU64,
    tx_busy: AtomicU64,
    tx_no_link: AtomicU64,
    rx_frames: AtomicU64,
    rx_tso: AtomicU64,
    rx_dropped: AtomicU64,
    rx_bad_msg: AtomicU64,
    table_updates: AtomicU64,
    table_refused: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The transmit side: the port.
struct Tx {
    port: Option<Port<Link>>,
}

/// One interface's driver state.
#[pin_data]
pub(crate) struct FrontDev {
    vmpi: DevName,
    #[pin]
    tx: Mutex<Tx>,
    #[pin]
    table: Mutex<Replica>,
    /// A `TABLE_REQ` is outstanding: the next table is taken whatever its
    /// generation.
    asked: AtomicBool,
    c: Counters,
}

impl FrontDev {
    /// Asks the host for the table.
    fn request_table(&self) {
        let tx = self.tx.lock();
        if let Some(port) = tx.port.as_ref() {
            self.asked.store(true, Ordering::Relaxed);
            if port.port().send(&msg::table_req()).is_err() {
                inc(&self.c.tx_busy);
            }
        }
    }
}

impl NetDevice for FrontDev {
    const DRIVER: &'static CStr = kernel::c_str!("envelope_netfront");
    const STATS: &'static [&'static CStr] = &[
        kernel::c_str!("tx_frames"),
        kernel::c_str!("tx_tso"),
        kernel::c_str!("tx_busy"),
        kernel::c_str!("tx_no_link"),
        kernel::c_str!("rx_frames"),
        kernel::c_str!("rx_tso"),
        kernel::c_str!("rx_dropped"),
        kernel::c_str!("rx_bad_msg"),
        kernel::c_str!("table_updates"),
        kernel::c_str!("table_refused"),
        kernel::c_str!("table_generation"),
        kernel::c_str!("table_entries"),
        kernel::c_str!("domain"),
    ];
    const TX_HEADROOM: usize = MSG_HDR_LEN + META_LEN;

    fn open(&self) -> Result {
        self.request_table();
        Ok(())
    }

    fn stop(&self) {}

    fn xmit(&self, meta: &[u8; netdev::META_LEN], buf: &mut [u8]) -> Result {
        let tx = self.tx.lock();
        let Some(port) = tx.port.as_ref() else {
            inc(&self.c.tx_no_link);
            return Err(ENODEV);
        };
        // The `FRAME` header goes in the headroom, before the frame. The
        // offloads travel as the stack set them; the host's switch and the
        // receiving netfront check them (`Meta::check`,
        // `virtio_net_hdr_to_skb()`).
        let head = MSG_HDR_LEN + META_LEN;
        let Some(h) = buf.get_mut(..head) else {
            return Err(EINVAL);
        };
        h.copy_from_slice(&frame_prefix(&Meta::default()));
        h[MSG_HDR_LEN..].copy_from_slice(meta);
        match port.port().send(buf) {
            Ok(()) => {
                inc(&self.c.tx_frames);
                // `gso_type`: a TSO frame, cut into segments by the receiver's
                // stack only if it must.
                if meta[1] != 0 {
                    inc(&self.c.tx_tso);
                }
                Ok(())
            }
            Err(e) => {
                if e == EAGAIN {
                    inc(&self.c.tx_busy);
                }
                Err(e)
            }
        }
    }

    fn stats(&self, out: &mut [u64]) {
        let c = &self.c;
        let t = self.table.lock();
        let vals = [
            c.tx_frames.load(Ordering::Relaxed),
            c.tx_tso.load(Ordering::Relaxed),
            c.tx_busy.load(Ordering::Relaxed),
            c.tx_no_link.load(Ordering::Relaxed),
            c.rx_frames.load(Ordering::Relaxed),
            c.rx_tso.load(Ordering::Relaxed),
            c.rx_dropped.load(Ordering::Relaxed),
            c.rx_bad_msg.load(Ordering::Relaxed),
            c.table_updates.load(Ordering::Relaxed),
            c.table_refused.load(Ordering::Relaxed),
            u64::from(t.generation()),
            t.entries().len() as u64,
            u64::from(t.your_domain()),
        ];
        for (o, v) in out.iter_mut().zip(vals) {
            *o = v;
        }
    }
}

/// The port user of one interface: what the host sends it.
pub(crate) struct Link {
    dev: Arc<FrontDev>,
    nd: netdev::Handle,
    netfront: Arc<Netfront>,
    /// The port went down (the device is going away): the interface is
    /// removed by the reaper, even if this comes before it is listed.
    down: AtomicBool,
}

impl PortUser for Link {
    fn rx(&self, _port: &PortRef<'_>, sdu: &[u8]) {
        let c = &self.dev.c;
        match Msg::parse_from_host(sdu) {
            Ok(Msg::Frame { meta, frame }) => match self.nd.rx(&meta.encode(), frame) {
                Ok(()) => {
                    inc(&c.rx_frames);
                    if meta.gso_type != 0 {
                        inc(&c.rx_tso);
                    }
                }
                Err(_) => inc(&c.rx_dropped),
            },
            Ok(Msg::Table(t)) => {
                let asked = self.dev.asked.swap(false, Ordering::Relaxed);
                match self.dev.table.lock().load(&t, asked) {
                    Ok(true) => inc(&c.table_updates),
                    Ok(false) => {}
                    Err(_) => inc(&c.table_refused),
                }
            }
            // Malformed, a message only a guest sends, or an envelope
            // (grants are not negotiated yet).
            _ => inc(&c.rx_bad_msg),
        }
    }

    fn write_space(&self, _port: &PortRef<'_>) {
        self.nd.wake_tx();
    }

    fn down(&self, _port: &PortRef<'_>, err: Error) {
        pr_info!(
            "{}: VMPI device down ({:?}): interface removed\n",
            self.dev.vmpi,
            err
        );
        self.down.store(true, Ordering::Release);
        self.nd.set_carrier(false);
        DelayedWork::schedule(&self.netfront, 0);
    }
}

/// An interface over a VMPI device.
struct Front {
    reg: Registration<FrontDev>,
    dev: Arc<FrontDev>,
    link: Arc<Link>,
}

impl Front {
    /// Its VMPI device went away: the reaper removes it.
    fn gone(&self) -> bool {
        self.link.down.load(Ordering::Acquire)
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // The port first: no callback hands the interface a frame after
        // this. Then the interface goes (field `reg`).
        let port = self.dev.tx.lock().port.take();
        drop(port);
    }
}

/// The module's interfaces.
#[pin_data]
pub(crate) struct Netfront {
    #[pin]
    fronts: Mutex<KVec<Option<Front>>>,
    /// Removes the interfaces whose devices went away.
    reaper: DelayedWork<Netfront>,
}

// SAFETY: `dwork` returns the `reaper` field of `self`, always the same
// item, and no other object returns it.
unsafe impl DelayedWorkItem for Netfront {
    fn dwork(&self) -> &DelayedWork<Self> {
        &self.reaper
    }

    fn run(this: Arc<Self>) {
        while let Some(f) = this.take_one(Front::gone) {
            drop(f);
        }
    }
}

impl Netfront {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let reaper = DelayedWork::new()?;
        Arc::pin_init(
            pin_init!(Netfront {
                fronts <- new_mutex!(KVec::new(), "envelope_netfront::Netfront::fronts"),
                reaper,
            }),
            GFP_KERNEL,
        )
    }

    /// Takes the first interface `f` says yes to out (the caller drops it
    /// outside the lock).
    fn take_one(&self, f: impl Fn(&Front) -> bool) -> Option<Front> {
        let mut fronts = self.fronts.lock();
        fronts
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(&f))
            .and_then(Option::take)
    }

    /// Removes every interface (module unload). Needs no memory.
    pub(crate) fn shut_down(&self) {
        while let Some(f) = self.take_one(|_| true) {
            drop(f);
        }
        self.reaper.cancel();
        while let Some(f) = self.take_one(|_| true) {
            drop(f);
        }
    }

    /// A write to `attach`.
    pub(crate) fn attach(self: Arc<Self>, cmd: AttachCmd) -> Result {
        if self
            .fronts
            .lock()
            .iter()
            .flatten()
            .any(|f| f.dev.vmpi == cmd.dev)
        {
            return Err(EEXIST);
        }
        let mut cname = [0u8; 32];
        let b = cmd.dev.as_bytes();
        cname[..b.len()].copy_from_slice(b);
        let cname = CStr::from_bytes_with_nul(&cname[..=b.len()]).map_err(|_| EINVAL)?;
        let id = vmpi_port::find(Role::Guest, Some(cname))?;
        let ifname = match cmd.name {
            Some(n) => CString::try_from_fmt(fmt!("{}", n))?,
            None => CString::try_from_fmt(fmt!("env%d"))?,
        };
        let dev = Arc::pin_init(
            pin_init!(FrontDev {
                vmpi: cmd.dev,
                tx <- new_mutex!(Tx { port: None }, "envelope_netfront::FrontDev::tx"),
                table <- new_mutex!(Replica::default(), "envelope_netfront::FrontDev::table"),
                asked: AtomicBool::new(false),
                c: Counters::default(),
            }),
            GFP_KERNEL,
        )?;
        let reg = Registration::new(&ifname, dev.clone(), MAX_MTU as u32, MAX_FRAME as u32)?;
        let link = Arc::new(
            Link {
                dev: dev.clone(),
                nd: reg.handle(),
                netfront: self.clone(),
                down: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        let port = Port::open(id, msg::CHANNEL, link.clone())?;
        dev.tx.lock().port = Some(port);
        let front = Front { reg, dev, link };
        let mut fronts = self.fronts.lock();
        let busy = fronts.iter().flatten().any(|f| f.dev.vmpi == cmd.dev);
        let full = fronts.iter().flatten().count() >= MAX_FRONTS;
        let slot = fronts.iter().position(Option::is_none);
        if busy || full || (slot.is_none() && fronts.push(None, GFP_KERNEL).is_err()) {
            drop(fronts);
            drop(front);
            return Err(if busy {
                EEXIST
            } else if full {
                ENOSPC
            } else {
                ENOMEM
            });
        }
        let i = slot.unwrap_or(fronts.len() - 1);
        let mut name = [0u8; 16];
        front.reg.name(&mut name);
        let gone = front.gone();
        fronts[i] = Some(front);
        drop(fronts);
        if gone {
            // Its device went down before it was listed.
            DelayedWork::schedule(&self, 0);
            return Err(ENODEV);
        }
        pr_info!(
            "{}: netfront over {} (vmpi{})\n",
            ifname_str(&name),
            cmd.dev,
            id
        );
        Ok(())
    }

    /// A write to `detach`: an interface's name or its VMPI device's.
    pub(crate) fn detach(&self, name: &[u8]) -> Result {
        let front = self
            .take_one(|f| {
                let mut n = [0u8; 16];
                f.reg.name(&mut n);
                !f.gone() && (ifname_str(&n).as_bytes() == name || f.dev.vmpi.as_bytes() == name)
            })
            .ok_or(ENOENT)?;
        drop(front);
        Ok(())
    }

    pub(crate) fn show_fronts(&self, out: &mut SysfsBuf<'_>) {
        let fronts = self.fronts.lock();
        for f in fronts.iter().flatten().filter(|f| !f.gone()) {
            let mut n = [0u8; 16];
            f.reg.name(&mut n);
            let t = f.dev.table.lock();
            let _ = writeln!(
                out,
                "{} vmpi={} domain={} generation={} entries={}",
                ifname_str(&n),
                f.dev.vmpi,
                t.your_domain(),
                t.generation(),
                t.entries().len()
            );
        }
    }
}

/// An interface name from [`Registration::name`]'s NUL-padded buffer.
fn ifname_str(n: &[u8; 16]) -> &str {
    let len = n.iter().position(|&c| c == 0).unwrap_or(n.len());
    core::str::from_utf8(&n[..len]).unwrap_or("?")
}
