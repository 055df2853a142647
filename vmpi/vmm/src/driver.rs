// SPDX-License-Identifier: GPL-2.0

//! A VMPI guest driver in userspace: the part of `vmpi_guest` that a VMM
//! can play itself, over a [`VdpaDevice`]. It lays out the two split
//! queues in guest RAM, posts 4 KiB receive buffers, sends every message
//! as one fragment (a 4-byte header descriptor and one payload
//! descriptor), and runs the protocol with the kernel modules' own pure
//! code (`vmpi/proto/`, through `rvio-pure`): `HELLO`, flows by name with
//! credit, control messages. Single-threaded: [`Driver::poll`] waits for
//! the device's calls and hands over what arrived.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rvio_pure::vmpi_proto::ctrl::{AllocResult, Name, MAX_CTRL_LEN};
use rvio_pure::vmpi_proto::endpoint::{Endpoint, Received};
use rvio_pure::vmpi_proto::link::{AllocError, Chan, Event, Role, MIN_WINDOW};
use rvio_pure::vmpi_proto::outbox::Outbox;
use rvio_pure::vmpi_proto::wire::{
    Config, Header, CONFIG_LEN, DEVICE_ID, F_INDIRECT_DESC, HDR_LEN, NUM_QUEUES, RXQ, TXQ,
};

use crate::memory::{GuestRam, MapEntry, MapShape, PAGE};
use crate::split_queue::{Buf, SplitQueue};
use crate::vhost_vdpa::{Batching, MapReport, VdpaDevice, F_VERSION_1};
use vhost::VringConfigData;

/// Receive buffers: one page each (`vmpi_guest`'s with `rx_buf_size=4096`,
/// in one descriptor: the device fills any chain).
const RX_BUF: u64 = PAGE;
/// Send slots: a header and the largest SDU each, contiguous.
const TX_SLOTS: usize = 16;
const TX_SLOT: u64 = (HDR_LEN as u64 + 65535).next_multiple_of(PAGE);
/// The window granted to every flow (four SDUs of 64 KiB: this driver's
/// tests need no more; `vmpi_guest` grants sixteen).
const WINDOW: u32 = 4 * MIN_WINDOW;
/// How long a flow allocation waits for the host's answer.
const ALLOC_TIMEOUT_MS: u64 = 5000;

/// The RAM the driver's rings and buffers take, for a queue of `size`.
pub fn ram_needed(size: u16) -> u64 {
    let n = u64::from(size);
    // Two queues' rings (each under 16 bytes per entry plus pages of
    // alignment slack), the receive buffers, the send slots.
    2 * (16 * n + 2 * PAGE) + n * RX_BUF + TX_SLOTS as u64 * TX_SLOT
}

/// How to set the driver up.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Bytes of guest RAM (at least [`ram_needed`]).
    pub ram: u64,
    /// The map's shape.
    pub shape: MapShape,
    /// Whether the map goes in a batch.
    pub batching: Batching,
    /// The queue size (at most the device's).
    pub queue_size: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ram: 8 << 20,
            shape: MapShape::Whole,
            batching: Batching::Batch,
            queue_size: 256,
        }
    }
}

/// How [`Driver::start_with`] starts the device (the default is
/// [`Driver::start`]'s: a hostile guest changes one thing or another).
#[derive(Clone, Copy)]
pub struct StartWith {
    /// The rings' addresses instead of the driver's own (queue 0, 1).
    pub rings: Option<[VringConfigData; 2]>,
    /// Send the memory map (`false`: no IOTLB message at all).
    pub map: bool,
    /// Post the receive buffers before `DRIVER_OK`.
    pub post_rx: bool,
    /// Set `DRIVER_OK` (`false`: the device is left at `FEATURES_OK`
    /// with its queues enabled).
    pub driver_ok: bool,
    /// Rings of queues 2 and 3 (the grantq and copyq of `VMPI_F_GRANT`),
    /// which the driver does not use itself ([`Driver::new_queue`]).
    pub grant_rings: Option<[VringConfigData; 2]>,
}

impl Default for StartWith {
    fn default() -> Self {
        Self {
            rings: None,
            map: true,
            post_rx: true,
            driver_ok: true,
            grant_rings: None,
        }
    }
}

/// What the driver hands its user from [`Driver::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The host's `HELLO`: flows can be allocated.
    LinkUp,
    /// The host restarted: every flow is gone.
    PeerRestarted,
    /// A flow from the host to a registered name was accepted.
    Accepted {
        /// Its channel.
        channel: u16,
        /// The name it asked for.
        name: String,
    },
    /// An allocation finished.
    Allocated {
        /// The channel.
        channel: u16,
        /// Open, or why not.
        result: Result<(), AllocError>,
    },
    /// An SDU arrived on a flow.
    Data {
        /// Its channel.
        channel: u16,
        /// Its bytes.
        sdu: Vec<u8>,
    },
    /// A flow was closed (by either side).
    Closed {
        /// Its channel.
        channel: u16,
    },
    /// The host granted credit on a flow.
    Credit {
        /// Its channel.
        channel: u16,
    },
}

/// Counters of the userspace driver.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Receive buffers the device filled.
    pub rx_bufs: u64,
    /// Chains the device consumed from the send queue.
    pub tx_bufs: u64,
    /// Kicks.
    pub kicks: u64,
    /// Device starts (the first and every reset).
    pub starts: u64,
}

/// The VMPI guest driver over a vhost-vdpa device.
pub struct Driver {
    dev: VdpaDevice,
    ram: GuestRam,
    map: Vec<MapEntry>,
    rxq: SplitQueue,
    txq: SplitQueue,
    rx_bufs: Vec<u64>,
    tx_slots: Vec<u64>,
    tx_free: Vec<usize>,
    ep: Endpoint<Vec<u8>>,
    chans: Vec<Chan>,
    msg: Vec<u8>,
    names: HashSet<Vec<u8>>,
    epoch: u32,
    born: Instant,
    /// The driver's counters.
    pub stats: Stats,
    /// What the last start's map came to.
    pub last_map: MapReport,
    /// The features the driver accepts.
    features: u64,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Driver {
    /// Opens `path` (a `/dev/vhost-vdpa-N` of a VMPI device), lays out
    /// guest RAM and reads the device's configuration; the device is not
    /// started yet ([`Driver::start`]).
    pub fn open(path: &str, o: Options) -> io::Result<Self> {
        Self::open_with(path, o, F_VERSION_1)
    }

    /// [`Driver::open`] for a guest that writes its rings by hand
    /// (`hostile.rs`): it also accepts `VIRTIO_RING_F_INDIRECT_DESC` if the
    /// device offers it, so that its indirect tables are the device's
    /// business whatever the device says (a device must refuse or handle
    /// them either way).
    pub fn raw(path: &str, o: Options) -> io::Result<Self> {
        Self::open_with(path, o, F_VERSION_1 | F_INDIRECT_DESC)
    }

    fn open_with(path: &str, o: Options, want: u64) -> io::Result<Self> {
        let mut ram = GuestRam::new(1 << 20, o.ram)?;
        let dev = VdpaDevice::realize(path, ram.mem().clone(), o.batching)?;
        if dev.device_id != DEVICE_ID {
            return Err(invalid(format!(
                "{path} is device id {}, not VMPI ({DEVICE_ID})",
                dev.device_id
            )));
        }
        if usize::from(NUM_QUEUES) > dev.num_queues {
            return Err(invalid(format!("{path} has {} queues", dev.num_queues)));
        }
        if dev.device_features & F_VERSION_1 == 0 {
            return Err(invalid(format!("{path} does not offer VERSION_1")));
        }
        let mut cfg = [0u8; CONFIG_LEN];
        let raw = dev
            .config
            .get(..CONFIG_LEN)
            .ok_or_else(|| invalid(format!("{path}: configuration space too short")))?;
        cfg.copy_from_slice(raw);
        let cfg = Config::from_bytes(&cfg)
            .map_err(|e| invalid(format!("{path}: bad configuration space: {e:?}")))?;
        let size = o.queue_size.min(dev.vq_num_max);
        if ram.size() < ram_needed(size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("guest RAM needs at least {} bytes", ram_needed(size)),
            ));
        }
        let rxq = SplitQueue::new(&mut ram, size)?;
        let txq = SplitQueue::new(&mut ram, size)?;
        let rx_bufs = (0..size)
            .map(|_| ram.alloc(RX_BUF, PAGE))
            .collect::<io::Result<Vec<_>>>()?;
        let tx_slots = (0..TX_SLOTS)
            .map(|_| ram.alloc(TX_SLOT, PAGE))
            .collect::<io::Result<Vec<_>>>()?;
        let map = ram.map(o.shape)?;
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
            .unwrap_or(1)
            | 1;
        Ok(Self {
            ram,
            map,
            rxq,
            txq,
            rx_bufs,
            tx_free: (0..TX_SLOTS).rev().collect(),
            tx_slots,
            ep: Endpoint::new(
                Role::Guest,
                cfg,
                epoch,
                vec![0; Outbox::<Vec<u8>>::storage_len(&cfg)],
            ),
            chans: vec![Chan::Free; cfg.num_channels as usize],
            msg: vec![0; cfg.max_sdu as usize],
            names: HashSet::new(),
            epoch,
            born: Instant::now(),
            stats: Stats::default(),
            last_map: MapReport::default(),
            features: want & (dev.device_features | F_VERSION_1),
            dev,
        })
    }

    /// The device.
    pub fn device(&self) -> &VdpaDevice {
        &self.dev
    }

    /// The memory map the driver hands the device.
    pub fn map(&self) -> &[MapEntry] {
        &self.map
    }

    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Starts the device as a guest's `DRIVER_OK` does through QEMU, posts
    /// the receive buffers and queues `HELLO`. Returns the map's report
    /// (QEMU carries on past a refused map, and so does this).
    pub fn start(&mut self) -> io::Result<&MapReport> {
        self.start_with(StartWith::default())
    }

    /// [`Driver::start`] with what `s` changes: other ring addresses, no
    /// map, no receive buffers, or no `DRIVER_OK` (then no kick and no
    /// `HELLO` either).
    pub fn start_with(&mut self, s: StartWith) -> io::Result<&MapReport> {
        self.rxq.reset(&self.ram)?;
        self.txq.reset(&self.ram)?;
        self.tx_free = (0..TX_SLOTS).rev().collect();
        self.epoch = self.epoch.wrapping_add(1).max(1);
        self.ep.restart(&mut self.chans, self.epoch);
        let mut rings = s
            .rings
            .unwrap_or([
                self.rxq.config(self.dev.vq_num_max),
                self.txq.config(self.dev.vq_num_max),
            ])
            .to_vec();
        rings.extend(s.grant_rings.iter().flatten());
        // The guest fills its receive queue before DRIVER_OK (virtio-net
        // and vmpi_guest do): the device may look at it at once.
        if s.post_rx {
            for (i, &gpa) in self.rx_bufs.iter().enumerate() {
                let b = Buf {
                    gpa,
                    len: RX_BUF as u32,
                    write: true,
                };
                self.rxq.add(&self.ram, &[b], i)?;
            }
        }
        let map = s.map.then_some(&self.map[..]);
        self.last_map = self.dev.start_with(self.features, &rings, map)?;
        if s.driver_ok {
            self.dev.driver_ok(rings.len())?;
            self.stats.starts += 1;
            self.kick(RXQ as usize)?;
            self.flush()?;
        }
        Ok(&self.last_map)
    }

    /// Accepts the device's feature `bits` too (if it offers them), from
    /// the next start.
    pub fn accept_features(&mut self, bits: u64) {
        self.features |= bits & self.dev.device_features;
    }

    /// A queue of `size` entries in guest RAM that the driver does not
    /// use itself (its owner starts it with [`StartWith::grant_rings`]).
    pub fn new_queue(&mut self, size: u16) -> io::Result<SplitQueue> {
        SplitQueue::new(&mut self.ram, size)
    }

    /// Resets the device as a guest's reset does through QEMU (and
    /// invalidates the map): every flow is gone.
    pub fn stop(&mut self) -> io::Result<MapReport> {
        self.dev.stop(2, &self.map)
    }

    /// Invalidates the whole map and maps it again, in one batch (or not,
    /// as the options say), while the device runs.
    pub fn remap(&mut self) -> io::Result<MapReport> {
        self.dev.remap(&self.map, &self.map)
    }

    /// Accepts flows from the host to application `name`.
    pub fn register(&mut self, name: &str) -> io::Result<()> {
        Name::new(name.as_bytes())
            .map_err(|e| invalid(format!("bad application name {name:?}: {e:?}")))?;
        self.names.insert(name.as_bytes().to_vec());
        Ok(())
    }

    /// Starts a flow to the host's application `dst`: its channel; a
    /// [`Delivery::Allocated`] says how it ended.
    pub fn alloc(&mut self, dst: &str, src: Option<&str>) -> io::Result<u16> {
        let d = Name::new(dst.as_bytes()).map_err(|e| invalid(format!("{dst:?}: {e:?}")))?;
        let s = match src {
            Some(s) => Some(Name::new(s.as_bytes()).map_err(|e| invalid(format!("{s:?}: {e:?}")))?),
            None => None,
        };
        let now = self.now_ms();
        let (ch, m) = self
            .ep
            .link
            .request(&mut self.chans, d, s, WINDOW, now, ALLOC_TIMEOUT_MS)
            .map_err(|e| io::Error::other(format!("alloc {dst}: {e:?}")))?;
        self.ep.send_ctrl(&m);
        self.flush()?;
        Ok(ch)
    }

    /// Closes a flow.
    pub fn close(&mut self, channel: u16) -> io::Result<()> {
        let m = self
            .ep
            .link
            .close(&mut self.chans, channel)
            .map_err(|e| invalid(format!("close {channel}: {e:?}")))?;
        if let Some(m) = m {
            self.ep.send_ctrl(&m);
        }
        self.flush()
    }

    /// Sends `sdu` on `channel`: `Ok(false)` if it must wait (no credit
    /// or no free slot: poll and try again), an error if the channel
    /// carries no flow.
    pub fn send(&mut self, channel: u16, sdu: &[u8]) -> io::Result<bool> {
        if sdu.len() > self.ep.max_sdu() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "SDU too long"));
        }
        let ok = self
            .ep
            .link
            .can_send(&self.chans, channel, sdu.len())
            .map_err(|e| io::Error::new(io::ErrorKind::NotConnected, format!("{e:?}")))?;
        if !ok || self.tx_free.is_empty() {
            return Ok(false);
        }
        let hdr = Header::whole(channel);
        if !self.put_tx(&hdr.to_bytes(), sdu)? {
            return Ok(false);
        }
        self.ep.link.sent(&mut self.chans, channel, sdu.len());
        self.ep.counters.tx_sdus += 1;
        self.ep.counters.tx_bytes += sdu.len() as u64;
        self.kick(TXQ as usize)?;
        Ok(true)
    }

    /// Puts a header and a payload in a free slot and on the send queue.
    fn put_tx(&mut self, hdr: &[u8], payload: &[u8]) -> io::Result<bool> {
        if self.txq.num_free() < 2 {
            return Ok(false);
        }
        let Some(slot) = self.tx_free.pop() else {
            return Ok(false);
        };
        let gpa = self.tx_slots[slot];
        self.ram.write(gpa, hdr)?;
        self.ram.write(gpa + hdr.len() as u64, payload)?;
        let mut bufs = vec![Buf {
            gpa,
            len: hdr.len() as u32,
            write: false,
        }];
        if !payload.is_empty() {
            bufs.push(Buf {
                gpa: gpa + hdr.len() as u64,
                len: payload.len() as u32,
                write: false,
            });
        }
        if !self.txq.add(&self.ram, &bufs, slot)? {
            self.tx_free.push(slot);
            return Ok(false);
        }
        Ok(true)
    }

    fn kick(&mut self, q: usize) -> io::Result<()> {
        let queue = if q == RXQ as usize {
            &self.rxq
        } else {
            &self.txq
        };
        if queue.needs_kick(&self.ram)? {
            self.stats.kicks += 1;
            self.dev.kick(q)?;
        }
        Ok(())
    }

    /// Sends queued control messages while there are free slots.
    fn flush(&mut self) -> io::Result<()> {
        let mut sent = false;
        let mut buf = [0u8; HDR_LEN + MAX_CTRL_LEN];
        while !self.tx_free.is_empty() && self.txq.num_free() >= 2 {
            let Some(n) = self.ep.outbox.pop_whole(&mut buf) else {
                break;
            };
            if !self.put_tx(&buf[..n], &[])? {
                return Err(io::Error::other("send queue full with a slot free"));
            }
            sent = true;
        }
        if sent {
            self.kick(TXQ as usize)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for the device (and for `extra`, a file
    /// descriptor of the caller's, if given), then takes what the device
    /// returned, appending to `out`. Returns whether `extra` is readable.
    pub fn poll(
        &mut self,
        timeout: Duration,
        extra: Option<RawFd>,
        out: &mut Vec<Delivery>,
    ) -> io::Result<bool> {
        let mut fds = vec![
            libc::pollfd {
                fd: self.dev.call(RXQ as usize).as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.dev.call(TXQ as usize).as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if let Some(fd) = extra {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the
        // call's duration.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        for q in [RXQ, TXQ] {
            // Nonblocking: EAGAIN when there was no call.
            let _ = self.dev.call(q as usize).read();
        }
        self.process(out)?;
        Ok(extra.is_some() && fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0)
    }

    /// Takes used buffers from both queues, expires allocations, and
    /// sends what is due.
    fn process(&mut self, out: &mut Vec<Delivery>) -> io::Result<()> {
        while let Some(u) = self.txq.pop_used(&self.ram)? {
            self.stats.tx_bufs += 1;
            self.tx_free.push(u.token);
        }
        let mut frag = vec![0u8; RX_BUF as usize];
        let mut reposted = false;
        while let Some(u) = self.rxq.pop_used(&self.ram)? {
            self.stats.rx_bufs += 1;
            let len = u.len as usize;
            if len > frag.len() {
                return Err(invalid(format!(
                    "device wrote {len} bytes into a {RX_BUF}-byte buffer"
                )));
            }
            let gpa = self.rx_bufs[u.token];
            self.ram.read(gpa, &mut frag[..len])?;
            self.received(&frag[..len], out);
            let b = Buf {
                gpa,
                len: RX_BUF as u32,
                write: true,
            };
            self.rxq.add(&self.ram, &[b], u.token)?;
            reposted = true;
        }
        if reposted {
            self.kick(RXQ as usize)?;
        }
        let now = self.now_ms();
        while let Some((channel, m)) = self.ep.link.expire(&mut self.chans, now) {
            self.ep.send_ctrl(&m);
            out.push(Delivery::Allocated {
                channel,
                result: Err(AllocError::TimedOut),
            });
        }
        self.ep.retry_credits(&mut self.chans);
        self.flush()
    }

    /// One received fragment.
    fn received(&mut self, frag: &[u8], out: &mut Vec<Delivery>) {
        match self.ep.on_fragment(&mut self.chans, frag, &mut self.msg) {
            Received::Nothing => {}
            Received::Data {
                channel,
                len,
                in_frag,
            } => {
                let sdu = if in_frag {
                    frag[HDR_LEN..HDR_LEN + len].to_vec()
                } else {
                    self.msg[..len].to_vec()
                };
                // The user takes it now: its credit goes back.
                self.ep.consumed(&mut self.chans, channel, len);
                out.push(Delivery::Data { channel, sdu });
            }
            Received::Event(ev) => self.event(ev, out),
        }
    }

    fn event(&mut self, ev: Event, out: &mut Vec<Delivery>) {
        match ev {
            Event::LinkUp => out.push(Delivery::LinkUp),
            Event::PeerRestarted => out.push(Delivery::PeerRestarted),
            Event::Incoming { channel, dst, .. } => {
                let name = dst.as_bytes().to_vec();
                let reply = if self.names.contains(&name) {
                    out.push(Delivery::Accepted {
                        channel,
                        name: String::from_utf8_lossy(&name).into_owned(),
                    });
                    self.ep.link.accept(&mut self.chans, channel, WINDOW)
                } else {
                    self.ep
                        .link
                        .refuse(&mut self.chans, channel, AllocResult::NoSuchApp)
                };
                if let Ok(m) = reply {
                    self.ep.send_ctrl(&m);
                }
            }
            Event::Allocated { channel, result } => {
                out.push(Delivery::Allocated { channel, result })
            }
            Event::Cancelled { channel }
            | Event::PeerClosed { channel }
            | Event::Closed { channel } => out.push(Delivery::Closed { channel }),
            Event::CreditGranted { channel } => out.push(Delivery::Credit { channel }),
            // Our DEALLOCs go out in order with the ACK: wait for its ACK.
            Event::CloseCrossed { .. } | Event::None | Event::Bad => {}
        }
    }

    /// The protocol's counters (`rx_sdus`, drops by reason, ...).
    pub fn counters(&self) -> &rvio_pure::vmpi_proto::endpoint::Counters {
        &self.ep.counters
    }

    /// Whether the host's `HELLO` has been seen since the last start.
    pub fn is_up(&self) -> bool {
        self.ep.link.is_up()
    }

    /// The features the driver accepts (at every start).
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The device, to send it what a driver would not.
    pub fn device_mut(&mut self) -> &mut VdpaDevice {
        &mut self.dev
    }

    /// Guest RAM, to write rings and tables by hand.
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// `len` bytes of guest RAM nobody else uses, aligned to `align`: room
    /// for hand-made tables and buffers.
    pub fn alloc_scratch(&mut self, len: u64, align: u64) -> io::Result<u64> {
        self.ram.alloc(len, align)
    }

    /// Queue `q` (0: rxq, 1: txq) and guest RAM, for writing by hand.
    pub fn queue_mut(&mut self, q: u16) -> (&mut SplitQueue, &GuestRam) {
        let queue = if q == RXQ {
            &mut self.rxq
        } else {
            &mut self.txq
        };
        (queue, &self.ram)
    }

    /// Queue `q` (0: rxq, 1: txq).
    pub fn queue(&self, q: u16) -> &SplitQueue {
        if q == RXQ {
            &self.rxq
        } else {
            &self.txq
        }
    }

    /// Kicks queue `q` whatever the ring says (a hostile guest kicks when
    /// it likes).
    pub fn kick_now(&mut self, q: u16) -> io::Result<()> {
        self.stats.kicks += 1;
        self.dev.kick(usize::from(q))
    }
}
