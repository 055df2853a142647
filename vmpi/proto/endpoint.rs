// SPDX-License-Identifier: GPL-2.0

//! One side of a VMPI device as the transports see it: the receive path
//! (fragment header, reassembly, control messages into the [`Link`], data
//! checks), the queue of control messages to send, and the counters. The
//! guest's virtio driver and the host's vDPA device both drive an
//! [`Endpoint`]; they only move bytes between it and their rings.

use super::ctrl::{Ctrl, MAX_CTRL_LEN};
use super::link::{Chan, Event, Link, Role};
use super::wire::{
    next_fragment, Config, DropReason, Header, Reassembler, CONTROL_CHANNEL, HDR_LEN,
};

/// Control messages an [`Outbox`] holds.
pub const OUTBOX_LEN: usize = 32;

#[derive(Clone, Copy)]
struct Pending {
    len: usize,
    sent: usize,
    buf: [u8; MAX_CTRL_LEN],
}

/// The queue of control messages (channel 0) to send, in order.
pub struct Outbox {
    q: [Pending; OUTBOX_LEN],
    head: usize,
    count: usize,
}

/// The outbox is full (the peer floods requests, or our rings are stuck).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

impl Default for Outbox {
    fn default() -> Self {
        Self {
            q: [Pending {
                len: 0,
                sent: 0,
                buf: [0; MAX_CTRL_LEN],
            }; OUTBOX_LEN],
            head: 0,
            count: 0,
        }
    }
}

impl Outbox {
    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of waiting messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Forgets every waiting message.
    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// Bytes of the first message not yet sent (0 if none).
    pub fn head_remaining(&self) -> usize {
        if self.count == 0 {
            return 0;
        }
        let m = &self.q[self.head];
        m.len - m.sent
    }

    /// Queues a message.
    pub fn push(&mut self, m: &Ctrl) -> Result<(), OutboxFull> {
        if self.count == OUTBOX_LEN {
            return Err(OutboxFull);
        }
        let slot = &mut self.q[(self.head + self.count) % OUTBOX_LEN];
        slot.len = m.encode(&mut slot.buf);
        slot.sent = 0;
        self.count += 1;
        Ok(())
    }

    /// Writes the next fragment of the first message into `out` (a receive
    /// buffer of the peer, at least `min_rx_buf` bytes): header and as much
    /// payload as fits. Returns the bytes written, `None` if there is
    /// nothing to send or `out` is too small.
    pub fn next_fragment(&mut self, out: &mut [u8], min_rx_buf: u32) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let m = &mut self.q[self.head];
        let (n, more) = next_fragment(m.len - m.sent, out.len(), min_rx_buf)?;
        out[..HDR_LEN].copy_from_slice(
            &Header {
                channel: CONTROL_CHANNEL,
                more,
                cont: m.sent > 0,
            }
            .to_bytes(),
        );
        out[HDR_LEN..HDR_LEN + n].copy_from_slice(&m.buf[m.sent..m.sent + n]);
        m.sent += n;
        if !more {
            self.head = (self.head + 1) % OUTBOX_LEN;
            self.count -= 1;
        }
        Some(HDR_LEN + n)
    }

    /// The peer lost a fragment of the first message (its buffer was
    /// bad): the rest of it is not sent. Returns whether a message was cut.
    pub fn abandon_partial(&mut self) -> bool {
        if self.count == 0 || self.q[self.head].sent == 0 {
            return false;
        }
        self.head = (self.head + 1) % OUTBOX_LEN;
        self.count -= 1;
        true
    }

    /// The first message whole, as one fragment (header and message), for
    /// a sender whose buffers have no size limit; it is removed.
    pub fn pop_whole(&mut self, out: &mut [u8; HDR_LEN + MAX_CTRL_LEN]) -> Option<usize> {
        let n = self.next_fragment(out, HDR_LEN as u32 + 1)?;
        Some(n)
    }
}

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
    /// `frag[HDR_LEN..]`, not copied.
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

/// One side of a VMPI device.
pub struct Endpoint {
    /// The protocol state.
    pub link: Link,
    /// Control messages to send.
    pub outbox: Outbox,
    /// The counters.
    pub counters: Counters,
    rx: Reassembler,
    max_sdu: usize,
    /// A `CREDIT` found the outbox full: [`Endpoint::retry_credits`] has
    /// work.
    credit_owed: bool,
}

impl Endpoint {
    /// An endpoint of `role` for a device configured as `cfg`; `epoch`:
    /// nonzero and new for each (re)start.
    pub fn new(role: Role, cfg: Config, epoch: u32) -> Self {
        Self {
            link: Link::new(role, cfg, epoch),
            outbox: Outbox::default(),
            counters: Counters::default(),
            rx: Reassembler::new(cfg.max_sdu, cfg.num_channels),
            max_sdu: cfg.max_sdu as usize,
            credit_owed: false,
        }
    }

    /// Initializes an endpoint at `slot` in place, like [`Endpoint::new`]
    /// but without the endpoint (kilobytes: it holds its outbox) as a
    /// temporary on the stack, which a kernel stack of 16 KiB cannot
    /// afford deep in a probe path.
    ///
    /// # Safety
    ///
    /// `slot` is valid for writing an `Endpoint` and suitably aligned.
    pub unsafe fn init_at(slot: *mut Self, role: Role, cfg: Config, epoch: u32) {
        use core::ptr::addr_of_mut;
        // SAFETY: every field of `*slot` is written once through `slot`,
        // valid for writes (the function's contract); the outbox slot by
        // slot, so no large value is built first.
        unsafe {
            addr_of_mut!((*slot).link).write(Link::new(role, cfg, epoch));
            let q = addr_of_mut!((*slot).outbox.q).cast::<Pending>();
            for i in 0..OUTBOX_LEN {
                q.add(i).write(Pending {
                    len: 0,
                    sent: 0,
                    buf: [0; MAX_CTRL_LEN],
                });
            }
            addr_of_mut!((*slot).outbox.head).write(0);
            addr_of_mut!((*slot).outbox.count).write(0);
            addr_of_mut!((*slot).counters).write(Counters::default());
            addr_of_mut!((*slot).rx).write(Reassembler::new(cfg.max_sdu, cfg.num_channels));
            addr_of_mut!((*slot).max_sdu).write(cfg.max_sdu as usize);
            addr_of_mut!((*slot).credit_owed).write(false);
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
    /// `CREDIT` due, if any. A `CREDIT` that finds the outbox full is not
    /// lost: it stays owed, and [`Endpoint::retry_credits`] queues it when
    /// there is room (a lost one would stall the flow for good).
    pub fn consumed(&mut self, chans: &mut [Chan], channel: u16, len: usize) {
        self.link.consume(chans, channel, len);
        self.queue_credit(chans, channel);
    }

    /// Queues what [`Link::credit_due`] says; `false` if the outbox is full.
    fn queue_credit(&mut self, chans: &mut [Chan], channel: u16) -> bool {
        let Some(m) = self.link.credit_due(chans, channel) else {
            return true;
        };
        if self.outbox.push(&m).is_err() {
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

    /// Queues a control message (counted if the outbox is full).
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
    /// first `len` bytes until the next call.
    pub fn on_fragment(&mut self, chans: &mut [Chan], frag: &[u8], msg: &mut [u8]) -> Received {
        let hdr = match Header::parse(frag) {
            Ok(h) => h,
            Err(why) => {
                self.counters.drop_one(why);
                return Received::Nothing;
            }
        };
        let payload = &frag[HDR_LEN..];
        let pushed = self.rx.push(hdr, payload.len());
        if let Some(why) = pushed.dropped {
            self.counters.drop_one(why);
        }
        let Some(a) = pushed.accepted else {
            return Received::Nothing;
        };
        let in_frag = a.offset == 0 && a.complete && a.channel != CONTROL_CHANNEL;
        if in_frag {
            return self.data_received(chans, a.channel, a.total, true);
        }
        let Some(dst) = msg.get_mut(a.offset..a.total) else {
            // A caller's buffer below max_sdu: the message cannot be kept
            // (nor the rest of it).
            self.rx.lost();
            self.counters.drop_one(DropReason::Oversized);
            return Received::Nothing;
        };
        dst.copy_from_slice(payload);
        if !a.complete {
            return Received::Nothing;
        }
        if a.channel == CONTROL_CHANNEL {
            let m = match Ctrl::parse(&msg[..a.total]) {
                Ok(m) => m,
                Err(_) => {
                    self.counters.drop_one(DropReason::BadControl);
                    return Received::Nothing;
                }
            };
            self.counters.ctrl_rx += 1;
            let (reply, ev) = self.link.on_ctrl(chans, m);
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
    use super::super::wire::MAX_SDU;
    use super::*;

    const N: u16 = 16;

    struct Side {
        ep: Endpoint,
        chans: [Chan; N as usize],
        msg: [u8; MAX_SDU as usize],
    }

    impl Side {
        fn new(role: Role, epoch: u32) -> Box<Self> {
            let cfg = Config::new(N).unwrap();
            let mut s = Box::new(Side {
                ep: Endpoint::new(role, cfg, epoch),
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
        for _ in 0..100 {
            dev.take(&whole[..n]);
        }
        assert_eq!(dev.ep.outbox.len(), OUTBOX_LEN);
        // The first HELLO of restart() is in there too.
        assert_eq!(dev.ep.counters.ctrl_dropped, 100 + 1 - OUTBOX_LEN as u64);
        assert_eq!(dev.ep.counters.ctrl_rx, 100);
    }

    #[test]
    fn initialized_in_place_works_as_new() {
        extern crate std;
        let cfg = Config {
            num_channels: 16,
            max_sdu: MAX_SDU,
            min_rx_buf: 64,
        };
        let mut slot = std::boxed::Box::new(core::mem::MaybeUninit::<Endpoint>::uninit());
        // SAFETY: `slot` is valid and aligned for an `Endpoint`; it is
        // initialized by `init_at` before `assume_init`.
        let mut ep = unsafe {
            Endpoint::init_at(slot.as_mut_ptr(), Role::Host, cfg, 7);
            slot.assume_init()
        };
        assert!(ep.outbox.is_empty());
        assert_eq!(ep.counters, Counters::default());
        assert_eq!(ep.max_sdu(), MAX_SDU as usize);
        while ep.outbox.len() < OUTBOX_LEN {
            ep.send_ctrl(&Ctrl::DeallocAck { channel: 1 });
        }
        ep.send_ctrl(&Ctrl::DeallocAck { channel: 1 });
        assert_eq!(ep.counters.ctrl_dropped, 1);
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
        while ep.outbox.len() < OUTBOX_LEN {
            ep.send_ctrl(&Ctrl::DeallocAck { channel: 1 });
        }
        ep.consumed(chans, 5, 2000);
        assert_eq!(ep.counters.ctrl_dropped, 0);
        // Still owed: nothing is queued until there is room.
        ep.retry_credits(chans);
        assert_eq!(ep.outbox.len(), OUTBOX_LEN);
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
}
