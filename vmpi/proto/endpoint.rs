// SPDX-License-Identifier: GPL-2.0

//! One side of a VMPI device as the transports see it: the receive path
//! (fragment header, reassembly, control messages into the [`Link`], data
//! checks), the queue of control messages to send, and the counters. The
//! guest's virtio driver and the host's vDPA device both drive an
//! [`Endpoint`]; they only move bytes between it and their rings.

use core::ops::DerefMut;

use super::ctrl::Ctrl;
use super::link::{Chan, Event, Link, Role};
use super::outbox::Outbox;
use super::wire::{Accepted, Config, DropReason, Header, Reassembler, CONTROL_CHANNEL, HDR_LEN};

/// Counters of one side of a device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Data SDUs received (delivered to a flow).
    pub rx_sdus: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Data SDUs sent.
    pub tx_sdus: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Control messages received and handled.
    pub ctrl_rx: u64,
    /// Control replies lost because the outbox was full, or cut because
    /// the peer's buffer for one of their fragments was bad.
    pub ctrl_dropped: u64,
    /// SDUs sent from any context (`vmpi_port_send_sg()`) whose port
    /// could no longer send when they reached the send queue, and SDUs
    /// cut because the peer's buffer for one of their fragments was bad.
    pub tx_dropped: u64,
    /// Times the transport restarted this side (`vmpi_transport_restart()`:
    /// the rings were reset, on the host side by the driver, on the guest
    /// side at the driver's own request, `vmpi_dev_reset()`).
    pub restarts: u64,
    /// Drops by [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
}

impl Counters {
    /// Counts a drop.
    pub fn drop_one(&mut self, why: DropReason) {
        self.drops[why as usize] += 1;
    }
}

/// What a received fragment came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Nothing for the caller (a fragment of a message, a drop, a control
    /// message with no event).
    Nothing,
    /// A data SDU of `len` bytes on `channel`: in the message buffer, or
    /// (`in_frag`, an SDU in one fragment) the fragment's payload,
    /// `frag[HDR_LEN..]`, not copied (where the caller put a
    /// [`Payload::Sdu`]).
    Data {
        /// Its channel.
        channel: u16,
        /// Its length.
        len: usize,
        /// It is the fragment's payload.
        in_frag: bool,
    },
    /// A control message had this consequence.
    Event(Event),
}

/// Where an accepted fragment's payload goes
/// ([`Endpoint::begin_fragment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Nowhere: the fragment is dropped (counted) or skipped.
    Skip,
    /// A whole data SDU of `len` bytes: into a buffer of its own.
    Sdu {
        /// Its channel.
        channel: u16,
        /// Its length.
        len: usize,
    },
    /// Part of a message (or a whole control message): into the message
    /// buffer at `offset..total`.
    Msg(Accepted),
}

/// One side of a VMPI device; its outbox's storage is `S` (a byte buffer
/// of [`Outbox::storage_len`] bytes).
pub struct Endpoint<S> {
    /// The protocol state.
    pub link: Link,
    /// Control messages to send.
    pub outbox: Outbox<S>,
    /// The counters.
    pub counters: Counters,
    rx: Reassembler,
    max_sdu: usize,
    /// A `CREDIT` found no room in the outbox: [`Endpoint::retry_credits`]
    /// has work.
    credit_owed: bool,
}

impl<S: DerefMut<Target = [u8]>> Endpoint<S> {
    /// An endpoint of `role` for a device configured as `cfg`; `epoch`:
    /// nonzero and new for each (re)start; `outbox`: the outbox's storage,
    /// [`Outbox::storage_len`] bytes (less, and a busy link may drop
    /// control messages).
    pub fn new(role: Role, cfg: Config, epoch: u32, outbox: S) -> Self {
        Self {
            link: Link::new(role, cfg, epoch),
            outbox: Outbox::new(outbox),
            counters: Counters::default(),
            rx: Reassembler::new(cfg.max_sdu, cfg.num_channels),
            max_sdu: cfg.max_sdu as usize,
            credit_owed: false,
        }
    }

    /// The size the message buffer given to [`Endpoint::on_fragment`] needs.
    pub fn max_sdu(&self) -> usize {
        self.max_sdu
    }

    /// This side (re)starts with a new `epoch`: every channel is reset,
    /// queued control messages are dropped, and a `HELLO` is queued.
    pub fn restart(&mut self, chans: &mut [Chan], epoch: u32) {
        let role = self.link.role();
        let cfg = self.link.config();
        self.link = Link::new(role, cfg, epoch);
        self.link.reset(chans);
        self.rx.reset();
        self.outbox.clear();
        self.credit_owed = false;
        self.send_ctrl(&self.link.hello());
    }

    /// Our user consumed an SDU of `len` bytes from `channel`: queues the
    /// `CREDIT` due, if any. A `CREDIT` that finds no room is not lost: it
    /// stays owed, and [`Endpoint::retry_credits`] queues it when there is
    /// room (a lost one would stall the flow for good).
    pub fn consumed(&mut self, chans: &mut [Chan], channel: u16, len: usize) {
        self.link.consume(chans, channel, len);
        self.queue_credit(chans, channel);
    }

    /// Queues what [`Link::credit_due`] says; `false` if it found no room.
    fn queue_credit(&mut self, chans: &mut [Chan], channel: u16) -> bool {
        let Some(m) = self.link.credit_due(chans, channel) else {
            return true;
        };
        if self.outbox.push_credit(&m).is_err() {
            self.credit_owed = true;
            return false;
        }
        self.link.credit_queued(chans, channel);
        true
    }

    /// Queues the `CREDIT`s that found the outbox full, as room allows.
    pub fn retry_credits(&mut self, chans: &mut [Chan]) {
        if !core::mem::take(&mut self.credit_owed) {
            return;
        }
        for channel in 0..chans.len() {
            if !self.queue_credit(chans, channel as u16) {
                break;
            }
        }
    }

    /// Queues a control message (counted in `ctrl_dropped` if the outbox is
    /// full, which only a peer that floods us while reading none of our
    /// answers can cause: [`Outbox::storage_len`]).
    pub fn send_ctrl(&mut self, m: &Ctrl) {
        if self.outbox.push(m).is_err() {
            self.counters.ctrl_dropped += 1;
        }
    }

    /// A fragment was lost before it reached us (the transport dropped a
    /// bad buffer): an open message cannot be whole any more; it is
    /// dropped (counted `bad_fragment`) with the rest of its fragments.
    /// (A lost first fragment: its continuations are dropped as they
    /// come, counted then.)
    pub fn rx_lost(&mut self) {
        if self.rx.lost() {
            self.counters.drop_one(DropReason::BadFragment);
        }
    }

    /// Takes one received fragment (a whole buffer: header and payload).
    /// `msg` is the message buffer, at least [`Endpoint::max_sdu`] bytes,
    /// kept by the caller across calls; a [`Received::Data`] is in its
    /// first `len` bytes until the next call, or (`in_frag`) in `frag`
    /// after the header.
    pub fn on_fragment(&mut self, chans: &mut [Chan], frag: &[u8], msg: &mut [u8]) -> Received {
        let hdr = frag.get(..HDR_LEN).unwrap_or(frag);
        let payload = frag.get(HDR_LEN..).unwrap_or(&[]);
        let into = self.begin_fragment(chans, hdr, payload.len(), msg.len());
        if let Payload::Msg(a) = into {
            msg[a.offset..a.total].copy_from_slice(payload);
        }
        self.end_fragment(chans, into, msg)
    }

    /// The first half of [`Endpoint::on_fragment`], for a transport that
    /// copies a fragment's payload straight to where it goes: takes the
    /// fragment's header (`hdr`: its first bytes, at most [`HDR_LEN`]) and
    /// its payload's length, and says where the payload goes (`msg_len`:
    /// how many bytes the message buffer can hold). A whole SDU the
    /// channel would refuse (closed, no credit) is dropped here, counted,
    /// before the caller spends a buffer on it. The caller copies the
    /// payload and calls [`Endpoint::end_fragment`], or
    /// [`Endpoint::rx_lost`] if it cannot.
    pub fn begin_fragment(
        &mut self,
        chans: &[Chan],
        hdr: &[u8],
        payload_len: usize,
        msg_len: usize,
    ) -> Payload {
        let hdr = match Header::parse(hdr) {
            Ok(h) => h,
            Err(why) => {
                self.counters.drop_one(why);
                return Payload::Skip;
            }
        };
        let pushed = self.rx.push(hdr, payload_len);
        if let Some(why) = pushed.dropped {
            self.counters.drop_one(why);
        }
        let Some(a) = pushed.accepted else {
            return Payload::Skip;
        };
        if a.offset == 0 && a.complete && a.channel != CONTROL_CHANNEL {
            if let Err(why) = self.link.may_receive(chans, a.channel, a.total) {
                self.counters.drop_one(why);
                return Payload::Skip;
            }
            return Payload::Sdu {
                channel: a.channel,
                len: a.total,
            };
        }
        if a.total > msg_len {
            // A caller's buffer below max_sdu: the message cannot be kept
            // (nor the rest of it).
            self.rx.lost();
            self.counters.drop_one(DropReason::Oversized);
            return Payload::Skip;
        }
        Payload::Msg(a)
    }

    /// The second half of [`Endpoint::on_fragment`]: the payload of the
    /// fragment [`Endpoint::begin_fragment`] took is where it said.
    pub fn end_fragment(&mut self, chans: &mut [Chan], into: Payload, msg: &[u8]) -> Received {
        let a = match into {
            Payload::Skip => return Received::Nothing,
            Payload::Sdu { channel, len } => return self.data_received(chans, channel, len, true),
            Payload::Msg(a) => a,
        };
        if !a.complete {
            return Received::Nothing;
        }
        if a.channel == CONTROL_CHANNEL {
            let m = match msg.get(..a.total).map(Ctrl::parse) {
                Some(Ok(m)) => m,
                _ => {
                    self.counters.drop_one(DropReason::BadControl);
                    return Received::Nothing;
                }
            };
            self.counters.ctrl_rx += 1;
            let (reply, ev) = self.link.on_ctrl(chans, m);
            if ev == Event::PeerRestarted {
                // What we queued was about flows the peer forgot.
                self.outbox.clear_unstarted();
                self.credit_owed = false;
            }
            if let Some(r) = reply {
                self.send_ctrl(&r);
            }
            return match ev {
                Event::None => Received::Nothing,
                Event::Bad => {
                    self.counters.drop_one(DropReason::BadControl);
                    Received::Nothing
                }
                ev => Received::Event(ev),
            };
        }
        self.data_received(chans, a.channel, a.total, false)
    }

    /// A whole data SDU arrived: checked against the channel (open, within
    /// credit) and counted.
    fn data_received(
        &mut self,
        chans: &mut [Chan],
        channel: u16,
        len: usize,
        in_frag: bool,
    ) -> Received {
        match self.link.on_data(chans, channel, len) {
            Ok(()) => {
                self.counters.rx_sdus += 1;
                self.counters.rx_bytes += len as u64;
                Received::Data {
                    channel,
                    len,
                    in_frag,
                }
            }
            Err(why) => {
                self.counters.drop_one(why);
                Received::Nothing
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ctrl::{AllocResult, Name, MAX_CTRL_LEN, MAX_NAME};
    use super::super::wire::MAX_SDU;
    use super::*;

    const N: u16 = 16;

    fn endpoint(role: Role, cfg: Config, epoch: u32) -> Endpoint<Vec<u8>> {
        Endpoint::new(
            role,
            cfg,
            epoch,
            vec![0; Outbox::<Vec<u8>>::storage_len(&cfg)],
        )
    }

    struct Side {
        ep: Endpoint<Vec<u8>>,
        chans: [Chan; N as usize],
        msg: [u8; MAX_SDU as usize],
    }

    impl Side {
        fn new(role: Role, epoch: u32) -> Box<Self> {
            let cfg = Config::new(N).unwrap();
            let mut s = Box::new(Side {
                ep: endpoint(role, cfg, epoch),
                chans: [Chan::Free; N as usize],
                msg: [0; MAX_SDU as usize],
            });
            let Side { ep, chans, .. } = &mut *s;
            ep.restart(chans, epoch);
            s
        }

        fn take(&mut self, frag: &[u8]) -> Received {
            let Side { ep, chans, msg } = self;
            ep.on_fragment(chans, frag, msg)
        }
    }

    /// Moves every queued control fragment from `a` to `b` through buffers
    /// of `buf` bytes; returns what `b` received.
    fn pump(a: &mut Side, b: &mut Side, buf: usize) -> [Option<Received>; 8] {
        let mut out = [None; 8];
        let mut i = 0;
        let mut frag = [0u8; 4096];
        while let Some(n) = a.ep.outbox.next_fragment(&mut frag[..buf], 64) {
            let r = b.take(&frag[..n]);
            if r != Received::Nothing && i < out.len() {
                out[i] = Some(r);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn hello_brings_both_sides_up_through_small_buffers() {
        let mut dev = Side::new(Role::Host, 1);
        let mut drv = Side::new(Role::Guest, 2);
        // Buffers of 64 bytes: control messages still fit (fragments).
        assert_eq!(
            pump(&mut drv, &mut dev, 64)[0],
            Some(Received::Event(Event::LinkUp))
        );
        assert_eq!(
            pump(&mut dev, &mut drv, 64)[0],
            Some(Received::Event(Event::LinkUp))
        );
        // The device's HELLO made the driver answer; nothing new for the device.
        assert_eq!(pump(&mut drv, &mut dev, 64)[0], None);
        assert!(dev.ep.link.is_up() && drv.ep.link.is_up());
        assert_eq!(dev.ep.counters.drops, [0; DropReason::COUNT]);
    }

    #[test]
    fn whole_messages_and_data() {
        let mut dev = Side::new(Role::Host, 1);
        let mut drv = Side::new(Role::Guest, 2);
        let mut whole = [0u8; HDR_LEN + MAX_CTRL_LEN];
        let n = drv.ep.outbox.pop_whole(&mut whole).unwrap();
        assert_eq!(dev.take(&whole[..n]), Received::Event(Event::LinkUp));
        pump(&mut dev, &mut drv, 4096);
        dev.ep.link.bind_raw(&mut dev.chans, 5).unwrap();
        let mut f = [0u8; 10];
        f[..4].copy_from_slice(
            &Header {
                channel: 5,
                more: false,
                cont: false,
            }
            .to_bytes(),
        );
        f[4..].copy_from_slice(b"abcdef");
        // One fragment: the SDU is its payload, not copied.
        dev.msg[..6].fill(0xaa);
        assert_eq!(
            dev.take(&f),
            Received::Data {
                channel: 5,
                len: 6,
                in_frag: true
            }
        );
        assert_eq!(dev.msg[..6], [0xaa; 6]);
        // Two fragments: reassembled in the message buffer.
        f[..4].copy_from_slice(
            &Header {
                channel: 5,
                more: true,
                cont: false,
            }
            .to_bytes(),
        );
        assert_eq!(dev.take(&f), Received::Nothing);
        f[..4].copy_from_slice(
            &Header {
                channel: 5,
                more: false,
                cont: true,
            }
            .to_bytes(),
        );
        assert_eq!(
            dev.take(&f),
            Received::Data {
                channel: 5,
                len: 12,
                in_frag: false
            }
        );
        assert_eq!(&dev.msg[..12], b"abcdefabcdef");
        // Unbound channel, garbage header, garbage control.
        f[..4].copy_from_slice(&Header::whole(6).to_bytes());
        assert_eq!(dev.take(&f), Received::Nothing);
        assert_eq!(dev.take(&[1, 2]), Received::Nothing);
        f[..4].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(dev.take(&f), Received::Nothing);
        let c = dev.ep.counters;
        assert_eq!(c.drops[DropReason::BadChannel as usize], 1);
        assert_eq!(c.drops[DropReason::BadHeader as usize], 1);
        assert_eq!(c.drops[DropReason::BadControl as usize], 1);
        assert_eq!((c.rx_sdus, c.rx_bytes), (2, 18));
    }

    #[test]
    fn outbox_abandons_only_a_message_partly_sent() {
        let mut dev = Side::new(Role::Host, 1);
        // restart() queued a HELLO: nothing of it is sent yet.
        assert_eq!(dev.ep.outbox.len(), 1);
        assert!(!dev.ep.outbox.abandon_partial());
        assert_eq!(dev.ep.outbox.len(), 1);
        // Its first fragment into a small buffer: the rest is cut.
        let mut small = [0u8; 8];
        assert_eq!(dev.ep.outbox.next_fragment(&mut small, 8), Some(8));
        let h = Header::parse(&small).unwrap();
        assert!(h.more && !h.cont);
        assert!(dev.ep.outbox.abandon_partial());
        assert!(dev.ep.outbox.is_empty());
        assert!(!dev.ep.outbox.abandon_partial());
        // The next message's fragments: first, then continuations.
        dev.ep
            .outbox
            .push(&Ctrl::Credit {
                channel: 7,
                consumed: 1,
            })
            .unwrap();
        let mut conts = 0;
        while let Some(n) = dev.ep.outbox.next_fragment(&mut small, 8) {
            let h = Header::parse(&small[..n]).unwrap();
            assert_eq!(h.cont, conts > 0);
            conts += 1;
            if !h.more {
                break;
            }
        }
        assert!(conts > 1);
    }

    #[test]
    fn hello_flood_fills_outbox_and_is_counted() {
        let mut dev = Side::new(Role::Host, 1);
        let mut drv = Side::new(Role::Guest, 2);
        let mut whole = [0u8; HDR_LEN + MAX_CTRL_LEN];
        let n = drv.ep.outbox.pop_whole(&mut whole).unwrap();
        for _ in 0..10_000 {
            dev.take(&whole[..n]);
        }
        // Bounded by the storage; the rest counted.
        let held = dev.ep.outbox.len() as u64;
        assert!(held > 100);
        let cfg = dev.ep.link.config();
        assert!(dev.ep.outbox.bytes() <= Outbox::<Vec<u8>>::storage_len(&cfg));
        // The first HELLO of restart() is in there too.
        assert_eq!(dev.ep.counters.ctrl_dropped, 10_000 + 1 - held);
        assert_eq!(dev.ep.counters.ctrl_rx, 10_000);
    }

    /// Fills `ep`'s outbox with `DEALLOC_ACK`s until one does not fit.
    fn fill(ep: &mut Endpoint<Vec<u8>>) {
        while ep.outbox.push(&Ctrl::DeallocAck { channel: 1 }).is_ok() {}
    }

    #[test]
    fn a_whole_sdu_the_channel_refuses_gets_no_buffer() {
        use super::super::link::Credit;
        let mut dev = Side::new(Role::Host, 1);
        let Side { ep, chans, .. } = &mut *dev;
        // Each SDU costs its length and 64 bytes.
        chans[5] = Chan::Open(Credit {
            window: 1200,
            ..Credit::default()
        });
        let hdr = Header::whole(5).to_bytes();
        // Within the window: its own buffer.
        let into = ep.begin_fragment(chans, &hdr, 500, MAX_SDU as usize);
        assert_eq!(
            into,
            Payload::Sdu {
                channel: 5,
                len: 500
            }
        );
        let got = ep.end_fragment(chans, into, &[]);
        assert!(matches!(got, Received::Data { in_frag: true, .. }));
        // Beyond it: dropped before a buffer is spent, and counted once.
        let into = ep.begin_fragment(chans, &hdr, 600, MAX_SDU as usize);
        assert_eq!(into, Payload::Skip);
        assert_eq!(ep.end_fragment(chans, into, &[]), Received::Nothing);
        assert_eq!(ep.counters.drops[DropReason::NoCredit as usize], 1);
        // A channel that is not open: the same.
        let hdr = Header::whole(6).to_bytes();
        assert_eq!(
            ep.begin_fragment(chans, &hdr, 10, MAX_SDU as usize),
            Payload::Skip
        );
        assert_eq!(ep.counters.drops[DropReason::BadChannel as usize], 1);
        // The refused ones took no credit: what fits still does.
        let hdr = Header::whole(5).to_bytes();
        let into = ep.begin_fragment(chans, &hdr, 400, MAX_SDU as usize);
        assert_eq!(
            into,
            Payload::Sdu {
                channel: 5,
                len: 400
            }
        );
    }

    #[test]
    fn credit_that_finds_the_outbox_full_is_sent_later() {
        use super::super::link::Credit;
        let mut dev = Side::new(Role::Host, 1);
        let Side { ep, chans, .. } = &mut *dev;
        chans[5] = Chan::Open(Credit {
            window: 1000,
            ..Credit::default()
        });
        fill(ep);
        let full = ep.outbox.len();
        ep.consumed(chans, 5, 2000);
        assert_eq!(ep.counters.ctrl_dropped, 0);
        // Still owed: nothing is queued until there is room.
        ep.retry_credits(chans);
        assert_eq!(ep.outbox.len(), full);
        let mut frag = [0u8; 4096];
        while ep.outbox.next_fragment(&mut frag, 64).is_some() {}
        ep.retry_credits(chans);
        let n = ep.outbox.next_fragment(&mut frag, 64).unwrap();
        assert_eq!(
            Ctrl::parse(&frag[HDR_LEN..n]),
            Ok(Ctrl::Credit {
                channel: 5,
                consumed: 2000 + 64
            })
        );
        // Sent once.
        ep.retry_credits(chans);
        assert!(ep.outbox.is_empty());
    }

    #[test]
    fn restart_is_seen_by_the_peer() {
        let mut dev = Side::new(Role::Host, 1);
        let mut drv = Side::new(Role::Guest, 2);
        pump(&mut drv, &mut dev, 4096);
        pump(&mut dev, &mut drv, 4096);
        let Side { ep, chans, .. } = &mut *drv;
        ep.restart(chans, 3);
        assert_eq!(
            pump(&mut drv, &mut dev, 4096)[0],
            Some(Received::Event(Event::PeerRestarted))
        );
    }

    #[test]
    fn lost_fragment_drops_the_open_message() {
        let mut dev = Side::new(Role::Host, 1);
        dev.ep.link.bind_raw(&mut dev.chans, 5).unwrap();
        let mut f = [0u8; 14];
        f[..4].copy_from_slice(
            &Header {
                channel: 5,
                more: true,
                cont: false,
            }
            .to_bytes(),
        );
        assert_eq!(dev.take(&f), Received::Nothing);
        dev.ep.rx_lost();
        f[..4].copy_from_slice(
            &Header {
                channel: 5,
                more: false,
                cont: true,
            }
            .to_bytes(),
        );
        // The message's last fragment is not a message of its own (nor
        // A + C): it is skipped with the rest of the message.
        assert_eq!(dev.take(&f), Received::Nothing);
        assert_eq!(dev.ep.counters.drops[DropReason::BadFragment as usize], 1);
        dev.ep.rx_lost();
        assert_eq!(dev.ep.counters.drops[DropReason::BadFragment as usize], 1);
        // The next message is whole.
        f[..4].copy_from_slice(&Header::whole(5).to_bytes());
        assert_eq!(
            dev.take(&f),
            Received::Data {
                channel: 5,
                len: 10,
                in_frag: true
            }
        );
    }

    #[test]
    fn small_message_buffer_is_refused() {
        let mut dev = Side::new(Role::Host, 1);
        dev.ep.link.bind_raw(&mut dev.chans, 5).unwrap();
        let mut f = [0u8; 104];
        f[..4].copy_from_slice(
            &Header {
                channel: 5,
                more: true,
                cont: false,
            }
            .to_bytes(),
        );
        let Side { ep, chans, msg } = &mut *dev;
        assert_eq!(ep.on_fragment(chans, &f, &mut msg[..50]), Received::Nothing);
        assert_eq!(ep.counters.drops[DropReason::Oversized as usize], 1);
        // A message in one fragment needs no message buffer.
        f[..4].copy_from_slice(
            &Header {
                channel: 5,
                more: false,
                cont: false,
            }
            .to_bytes(),
        );
        assert_eq!(
            ep.on_fragment(chans, &f, &mut msg[..50]),
            Received::Data {
                channel: 5,
                len: 100,
                in_frag: true
            }
        );
    }

    /// One side of a link in the control-protocol model below: its
    /// endpoint and channel table, and well-behaved users.
    struct Peer {
        ep: Endpoint<Vec<u8>>,
        chans: Vec<Chan>,
        msg: Vec<u8>,
    }

    impl Peer {
        fn new(role: Role, n: u16, epoch: u32) -> Self {
            let cfg = Config::new(n).unwrap();
            let mut p = Peer {
                ep: endpoint(role, cfg, epoch),
                chans: vec![Chan::Free; usize::from(n)],
                msg: vec![0; MAX_SDU as usize],
            };
            p.ep.restart(&mut p.chans, epoch);
            p
        }

        /// Moves up to `k` whole messages to `to`; returns how many.
        fn send_to(&mut self, to: &mut Peer, k: usize) -> usize {
            let mut frag = [0u8; 4096];
            for i in 0..k {
                let Some(n) = self.ep.outbox.next_fragment(&mut frag, 64) else {
                    return i;
                };
                let Peer { ep, chans, msg } = to;
                ep.on_fragment(chans, &frag[..n], msg);
            }
            k
        }

        fn channels(&self, f: impl Fn(&Chan) -> bool) -> Vec<u16> {
            (0..self.chans.len() as u16)
                .filter(|&c| f(&self.chans[usize::from(c)]))
                .collect()
        }

        fn request(&mut self, now: u64, name_len: usize) -> bool {
            let dst = Name::new(&[b'd'; MAX_NAME][..name_len]).unwrap();
            let src = Name::new(&[b's'; MAX_NAME][..name_len]).unwrap();
            match self
                .ep
                .link
                .request(&mut self.chans, dst, Some(src), 0, now, 1000)
            {
                Ok((_, m)) => {
                    self.ep.send_ctrl(&m);
                    true
                }
                Err(_) => false,
            }
        }

        fn accept(&mut self, c: u16) {
            let m = self.ep.link.accept(&mut self.chans, c, 0).unwrap();
            self.ep.send_ctrl(&m);
        }

        fn refuse(&mut self, c: u16) {
            let m = self
                .ep
                .link
                .refuse(&mut self.chans, c, AllocResult::NoSuchApp)
                .unwrap();
            self.ep.send_ctrl(&m);
        }

        fn close(&mut self, c: u16) {
            if let Ok(Some(m)) = self.ep.link.close(&mut self.chans, c) {
                self.ep.send_ctrl(&m);
            }
        }

        fn expire(&mut self, now: u64) {
            while let Some((_, m)) = self.ep.link.expire(&mut self.chans, now) {
                self.ep.send_ctrl(&m);
            }
        }

        fn settled(&self) -> bool {
            self.ep.outbox.is_empty()
        }
    }

    /// Both sides, drained in turn until neither has anything to send.
    fn drain(a: &mut Peer, b: &mut Peer) {
        while !(a.settled() && b.settled()) {
            a.send_to(b, usize::MAX);
            b.send_to(a, usize::MAX);
        }
    }

    fn up(n: u16) -> (Peer, Peer) {
        let mut dev = Peer::new(Role::Host, n, 1);
        let mut drv = Peer::new(Role::Guest, n, 2);
        drain(&mut dev, &mut drv);
        assert!(dev.ep.link.is_up() && drv.ep.link.is_up());
        (dev, drv)
    }

    /// Nothing dropped; and (`strict`: no restarts, whose crossing
    /// messages are counted) nothing unexpected.
    fn no_loss(p: &Peer, strict: bool) {
        let c = &p.ep.counters;
        assert_eq!(c.ctrl_dropped, 0, "{c:?}");
        if strict {
            assert_eq!(c.drops[DropReason::BadControl as usize], 0, "{c:?}");
        }
    }

    /// rvio's 256 channels: every channel of both halves carries a flow
    /// with the longest names, both sides close them all at once (the
    /// benchmark's 64 flows closing dropped 22 `DEALLOC`s from an outbox
    /// of 32 messages), and they are all allocated again at once.
    #[test]
    fn every_flow_closes_and_opens_again_at_once() {
        let (mut dev, mut drv) = up(256);
        for _ in 0..2 {
            while dev.request(0, MAX_NAME) {}
            while drv.request(0, MAX_NAME) {}
            assert_eq!(dev.ep.outbox.len(), 127);
            assert_eq!(drv.ep.outbox.len(), 128);
            drain(&mut dev, &mut drv);
            for p in [&mut dev, &mut drv] {
                for c in p.channels(|c| matches!(c, Chan::Incoming { .. })) {
                    p.accept(c);
                }
            }
            drain(&mut dev, &mut drv);
            for p in [&dev, &drv] {
                assert_eq!(p.channels(|c| matches!(c, Chan::Open(_))).len(), 255);
            }
            // Every flow closed from both ends at once.
            for p in [&mut dev, &mut drv] {
                for c in 1..256 {
                    p.close(c);
                }
                assert_eq!(p.ep.outbox.len(), 255);
            }
            drain(&mut dev, &mut drv);
            for p in [&dev, &drv] {
                no_loss(p, true);
                assert!(p.channels(|c| *c != Chan::Free).is_empty());
            }
        }
    }

    /// Random well-behaved users on both sides (requests with names of
    /// every length, accepts, refusals, closes, timeouts, and in one run
    /// restarts) over a link whose directions stall for long stretches: no
    /// control message is ever dropped (nor, without restarts, found
    /// unexpected), and once everything is closed and delivered both
    /// tables are free.
    #[test]
    fn well_behaved_users_never_lose_a_control_message() {
        let mut rng = crate::test_rng::Rng(0x2545_f491_4f6c_dd1d);
        let mut rnd = move |n: u64| rng.below(n);
        for (n, restarts) in [(8u16, false), (16, false), (64, false), (16, true)] {
            let (mut dev, mut drv) = up(n);
            let mut now = 0;
            let mut stall = [0u64; 2];
            let mut most = [0usize; 2];
            for step in 0..200_000u64 {
                let side = rnd(2) as usize;
                let (p, q) = if side == 0 {
                    (&mut dev, &mut drv)
                } else {
                    (&mut drv, &mut dev)
                };
                match rnd(16) {
                    0..=2 => {
                        p.request(now, 1 + rnd(MAX_NAME as u64) as usize);
                    }
                    3..=4 => {
                        let inc = p.channels(|c| matches!(c, Chan::Incoming { .. }));
                        if !inc.is_empty() {
                            let c = inc[rnd(inc.len() as u64) as usize];
                            if rnd(4) == 0 {
                                p.refuse(c);
                            } else {
                                p.accept(c);
                            }
                        }
                    }
                    5..=7 => {
                        let busy = p.channels(|c| !matches!(c, Chan::Free | Chan::Closing));
                        if let Some(&c) = busy.get(rnd(busy.len().max(1) as u64) as usize) {
                            if c != 0 {
                                p.close(c);
                            }
                        }
                    }
                    8 => {
                        now += rnd(1500);
                        p.expire(now);
                    }
                    9 if restarts && rnd(500) == 0 => {
                        p.ep.restart(&mut p.chans, step as u32 + 3);
                    }
                    _ => {
                        if stall[side] > 0 {
                            stall[side] -= 1;
                        } else if rnd(50) == 0 {
                            stall[side] = rnd(2000);
                        } else {
                            p.send_to(q, 1 + rnd(4) as usize);
                        }
                    }
                }
                most[side] = most[side].max(p.ep.outbox.len());
                no_loss(p, !restarts);
                no_loss(q, !restarts);
            }
            // Everything closed: both tables free once it is delivered.
            for _ in 0..3 {
                drain(&mut dev, &mut drv);
                for p in [&mut dev, &mut drv] {
                    for c in p.channels(|c| matches!(c, Chan::Incoming { .. })) {
                        p.refuse(c);
                    }
                    for c in p.channels(|c| matches!(c, Chan::Open(_) | Chan::Requesting { .. })) {
                        p.close(c);
                    }
                }
            }
            drain(&mut dev, &mut drv);
            for p in [&dev, &drv] {
                no_loss(p, !restarts);
                assert!(p.channels(|c| *c != Chan::Free).is_empty(), "{n} channels");
            }
            // With 64 channels the stalls queued more than the 32
            // messages the outbox used to hold.
            assert!(n < 64 || most.iter().all(|&m| m > 32), "{most:?}");
        }
    }
}
