// SPDX-License-Identifier: GPL-2.0

//! VMPI wire format: the virtio device (id, queues, configuration space)
//! and the 4-byte fragment header, plus the reassembly of fragments into
//! SDUs. `docs/vmpi-protocol.md` sections 1 and 2 are the specification;
//! this file is its one implementation, used by both sides and by
//! `cargo test` (the `rvio-pure` crate).

/// Our virtio device id (`docs/vmpi-protocol.md`): unassigned, and the last
/// one a modern virtio-pci function can carry (`0x1040 + 63 = 0x107f`).
pub const DEVICE_ID: u32 = 63;

/// Queue index of rxq (device to driver).
pub const RXQ: u16 = 0;
/// Queue index of txq (driver to device).
pub const TXQ: u16 = 1;
/// Number of virtqueues.
pub const NUM_QUEUES: u16 = 2;

/// Length of the fragment header.
pub const HDR_LEN: usize = 4;
/// Channel 0 carries the control protocol.
pub const CONTROL_CHANNEL: u16 = 0;
/// The largest SDU (both directions): what a device offers in `max_sdu`
/// and the least a driver accepts.
pub const MAX_SDU: u32 = 65535;
/// The fewest channels a device may offer.
pub const MIN_CHANNELS: u16 = 4;
/// The smallest rxq buffer the device fills.
pub const MIN_RX_BUF: u32 = 64;
/// Most txq chains the device handles per kick before it yields.
pub const TX_BUDGET: usize = 64;
/// `VIRTIO_RING_F_INDIRECT_DESC`.
pub const F_INDIRECT_DESC: u64 = 1 << 28;
/// `VIRTIO_RING_F_EVENT_IDX`.
pub const F_EVENT_IDX: u64 = 1 << 29;
/// Feature bits the device offers beyond `VIRTIO_F_VERSION_1` and
/// `VIRTIO_F_ACCESS_PLATFORM`.
pub const DEVICE_FEATURES: u64 = F_INDIRECT_DESC | F_EVENT_IDX;

const MORE_BIT: u32 = 1 << 31;
const CONT_BIT: u32 = 1 << 30;
const RESERVED_BITS: u32 = 0x3fff_0000;

/// Size of the configuration space.
pub const CONFIG_LEN: usize = 12;

/// Why a fragment or message is dropped (the `drops` counters of a device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than the header, or reserved header bits set.
    BadHeader = 0,
    /// Channel out of range, or a data channel with no flow.
    BadChannel,
    /// The fragments of one message exceed `max_sdu`.
    Oversized,
    /// A fragment for another channel while a message was open.
    BadFragment,
    /// A descriptor chain the device cannot use.
    BadDesc,
    /// Data beyond the granted credit window.
    NoCredit,
    /// A control message that does not parse.
    BadControl,
    /// A raw channel's receive queue was full.
    RxFull,
}

impl DropReason {
    /// Number of reasons (size of a counter array indexed by reason).
    pub const COUNT: usize = 8;
    /// Every reason, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        Self::BadHeader,
        Self::BadChannel,
        Self::Oversized,
        Self::BadFragment,
        Self::BadDesc,
        Self::NoCredit,
        Self::BadControl,
        Self::RxFull,
    ];

    /// The counter's name, as shown in sysfs.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadHeader => "bad_header",
            Self::BadChannel => "bad_channel",
            Self::Oversized => "oversized",
            Self::BadFragment => "bad_fragment",
            Self::BadDesc => "bad_desc",
            Self::NoCredit => "no_credit",
            Self::BadControl => "bad_control",
            Self::RxFull => "rx_full",
        }
    }
}

/// The device's configuration space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Channels are `0..num_channels`.
    pub num_channels: u16,
    /// The largest SDU either side sends.
    pub max_sdu: u32,
    /// The smallest rxq buffer the device fills.
    pub min_rx_buf: u32,
}

/// Why a driver refuses a configuration space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Fewer than [`MIN_CHANNELS`] channels.
    TooFewChannels,
    /// `max_sdu` other than [`MAX_SDU`] (version 1).
    SduTooSmall,
    /// `min_rx_buf` of 0 or above a page, or a reserved field set.
    Invalid,
}

impl Config {
    /// A device's configuration with `num_channels` channels.
    pub fn new(num_channels: u16) -> Result<Self, ConfigError> {
        let c = Self {
            num_channels,
            max_sdu: MAX_SDU,
            min_rx_buf: MIN_RX_BUF,
        };
        c.check()?;
        Ok(c)
    }

    /// Checks a configuration (as a driver does after reading it).
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.num_channels < MIN_CHANNELS {
            return Err(ConfigError::TooFewChannels);
        }
        // Version 1: exactly MAX_SDU (a larger value from a hostile
        // device would size our buffers).
        if self.max_sdu != MAX_SDU {
            return Err(ConfigError::SduTooSmall);
        }
        if self.min_rx_buf < HDR_LEN as u32 + 1 || self.min_rx_buf > 4096 {
            return Err(ConfigError::Invalid);
        }
        Ok(())
    }

    /// The configuration space bytes.
    pub fn to_bytes(&self) -> [u8; CONFIG_LEN] {
        let mut b = [0u8; CONFIG_LEN];
        b[0..2].copy_from_slice(&self.num_channels.to_le_bytes());
        b[4..8].copy_from_slice(&self.max_sdu.to_le_bytes());
        b[8..12].copy_from_slice(&self.min_rx_buf.to_le_bytes());
        b
    }

    /// Parses and checks configuration space bytes.
    pub fn from_bytes(b: &[u8; CONFIG_LEN]) -> Result<Self, ConfigError> {
        if b[2] != 0 || b[3] != 0 {
            return Err(ConfigError::Invalid);
        }
        let c = Self {
            num_channels: u16::from_le_bytes([b[0], b[1]]),
            max_sdu: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            min_rx_buf: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        };
        c.check()?;
        Ok(c)
    }

    /// First channel of the half the device allocates from.
    pub fn device_first(&self) -> u16 {
        1
    }

    /// One past the last channel of the device's half (first of the
    /// driver's).
    pub fn half(&self) -> u16 {
        self.num_channels / 2
    }
}

/// A fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The channel of the message.
    pub channel: u16,
    /// More fragments of this message follow.
    pub more: bool,
    /// This fragment continues a message (it is not its first): a
    /// receiver that did not see the message start drops it.
    pub cont: bool,
}

impl Header {
    /// The header of a whole message in one fragment.
    pub const fn whole(channel: u16) -> Self {
        Self {
            channel,
            more: false,
            cont: false,
        }
    }

    /// The header's 4 bytes.
    pub fn to_bytes(self) -> [u8; HDR_LEN] {
        let h = u32::from(self.channel)
            | if self.more { MORE_BIT } else { 0 }
            | if self.cont { CONT_BIT } else { 0 };
        h.to_le_bytes()
    }

    /// Parses the header at the start of a fragment.
    pub fn parse(frag: &[u8]) -> Result<Self, DropReason> {
        let b: [u8; HDR_LEN] = match frag.get(..HDR_LEN) {
            Some(b) => [b[0], b[1], b[2], b[3]],
            None => return Err(DropReason::BadHeader),
        };
        let h = u32::from_le_bytes(b);
        if h & RESERVED_BITS != 0 {
            return Err(DropReason::BadHeader);
        }
        Ok(Self {
            channel: (h & 0xffff) as u16,
            more: h & MORE_BIT != 0,
            cont: h & CONT_BIT != 0,
        })
    }
}

/// How a sender splits an SDU over receive buffers: the payload bytes of
/// the next fragment written into a buffer of `buf_len` bytes, with
/// `remaining` bytes of the SDU still to send, and whether more fragments
/// follow. `None` if the buffer is below `min_rx_buf` (the sender returns
/// it unused). An empty SDU is one fragment with no payload.
pub fn next_fragment(remaining: usize, buf_len: usize, min_rx_buf: u32) -> Option<(usize, bool)> {
    if buf_len < min_rx_buf as usize || buf_len < HDR_LEN {
        return None;
    }
    let n = remaining.min(buf_len - HDR_LEN);
    if n == 0 && remaining > 0 {
        // A header-only buffer cannot carry any of a non-empty SDU.
        return None;
    }
    Some((n, n < remaining))
}

/// What to do with one received fragment's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Channel of the message.
    pub channel: u16,
    /// Where the payload goes in the message buffer.
    pub offset: usize,
    /// The message is complete: deliver `total` bytes of the buffer.
    pub complete: bool,
    /// Length of the message so far, this payload included.
    pub total: usize,
}

/// The result of [`Reassembler::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// The fragment's payload is accepted, if it is.
    pub accepted: Option<Accepted>,
    /// A message was dropped, and why. Both fields can be set: a fragment
    /// for another channel drops the open message and starts a new one.
    pub dropped: Option<DropReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// A message on `channel` is open with `len` bytes so far.
    Open {
        channel: u16,
        len: usize,
    },
    /// The rest of a message on `channel` is being skipped: it is
    /// oversized, or lost a fragment.
    Skipping {
        channel: u16,
    },
}

/// Reassembles the fragments of one queue into messages. It decides only:
/// the caller copies each accepted payload to `offset` of a buffer of
/// `max_sdu` bytes, and delivers the buffer when a message is complete.
#[derive(Debug, Clone, Copy)]
pub struct Reassembler {
    max_sdu: usize,
    num_channels: u16,
    state: State,
}

impl Reassembler {
    /// A reassembler for messages up to `max_sdu` bytes on channels
    /// `0..num_channels`.
    pub fn new(max_sdu: u32, num_channels: u16) -> Self {
        Self {
            max_sdu: max_sdu as usize,
            num_channels,
            state: State::Idle,
        }
    }

    /// Whether a message is partly received.
    pub fn is_open(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// Forgets an open message (queue reset). Returns whether there was one.
    pub fn reset(&mut self) -> bool {
        let open = self.is_open();
        self.state = State::Idle;
        open
    }

    /// A fragment was lost before it reached us (its buffer was bad): an
    /// open message cannot be whole any more, and the rest of it is
    /// skipped up to its last fragment (or the next message's first).
    /// Returns whether a message was open (the caller counts it dropped).
    pub fn lost(&mut self) -> bool {
        match self.state {
            State::Open { channel, .. } => {
                self.state = State::Skipping { channel };
                true
            }
            // Continuations of a message whose first fragment was lost
            // are dropped as they come (`push`).
            State::Idle | State::Skipping { .. } => false,
        }
    }

    /// Takes the next fragment: its parsed header and payload length.
    pub fn push(&mut self, hdr: Header, payload_len: usize) -> Pushed {
        let mut dropped = None;
        if hdr.channel >= self.num_channels {
            // Not for any message: the open one (if any) stays open.
            return Pushed {
                accepted: None,
                dropped: Some(DropReason::BadChannel),
            };
        }
        let open = matches!(self.state, State::Open { .. });
        let offset = match self.state {
            State::Open { channel, len } if hdr.cont && channel == hdr.channel => len,
            State::Skipping { channel } if hdr.cont && channel == hdr.channel => {
                if !hdr.more {
                    self.state = State::Idle;
                }
                return Pushed {
                    accepted: None,
                    dropped: None,
                };
            }
            _ if hdr.cont => {
                // The continuation of a message whose start we did not
                // see (its first fragment was lost, or a message on
                // another channel cut in): that message is dropped, up to
                // its last fragment, and so is an open one (counted once).
                self.state = if hdr.more {
                    State::Skipping {
                        channel: hdr.channel,
                    }
                } else {
                    State::Idle
                };
                return Pushed {
                    accepted: None,
                    dropped: Some(DropReason::BadFragment),
                };
            }
            _ => {
                // A message starts. An open one lost its end: drop it (a
                // skipped one was already counted).
                if open {
                    dropped = Some(DropReason::BadFragment);
                }
                0
            }
        };
        let total = offset.saturating_add(payload_len);
        if total > self.max_sdu {
            self.state = if hdr.more {
                State::Skipping {
                    channel: hdr.channel,
                }
            } else {
                State::Idle
            };
            return Pushed {
                accepted: None,
                dropped: Some(DropReason::Oversized),
            };
        }
        self.state = if hdr.more {
            State::Open {
                channel: hdr.channel,
                len: total,
            }
        } else {
            State::Idle
        };
        Pushed {
            accepted: Some(Accepted {
                channel: hdr.channel,
                offset,
                complete: !hdr.more,
                total,
            }),
            dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first fragment (`cont` clear).
    fn h(channel: u16, more: bool) -> Header {
        Header {
            channel,
            more,
            cont: false,
        }
    }

    /// A continuation fragment.
    fn c(channel: u16, more: bool) -> Header {
        Header {
            channel,
            more,
            cont: true,
        }
    }

    #[test]
    fn header_round_trip_and_layout() {
        assert_eq!(h(0x1234, false).to_bytes(), [0x34, 0x12, 0, 0]);
        assert_eq!(h(0x1234, true).to_bytes(), [0x34, 0x12, 0, 0x80]);
        assert_eq!(c(0x1234, false).to_bytes(), [0x34, 0x12, 0, 0x40]);
        assert_eq!(c(0x1234, true).to_bytes(), [0x34, 0x12, 0, 0xc0]);
        assert_eq!(Header::whole(9), h(9, false));
        for ch in [0u16, 1, 255, 256, 65535] {
            for m in [false, true] {
                assert_eq!(Header::parse(&h(ch, m).to_bytes()), Ok(h(ch, m)));
                assert_eq!(Header::parse(&c(ch, m).to_bytes()), Ok(c(ch, m)));
            }
        }
    }

    #[test]
    fn header_rejects_short_and_reserved() {
        assert_eq!(Header::parse(&[]), Err(DropReason::BadHeader));
        assert_eq!(Header::parse(&[1, 0, 0]), Err(DropReason::BadHeader));
        assert_eq!(Header::parse(&[1, 0, 1, 0]), Err(DropReason::BadHeader));
        assert_eq!(Header::parse(&[1, 0, 0, 0x20]), Err(DropReason::BadHeader));
        // Payload after the header is not the header's business.
        assert_eq!(Header::parse(&[7, 0, 0, 0, 0xff]), Ok(h(7, false)));
    }

    #[test]
    fn config_round_trip_and_checks() {
        let c = Config::new(256).unwrap();
        assert_eq!(Config::from_bytes(&c.to_bytes()), Ok(c));
        assert_eq!(c.half(), 128);
        assert_eq!(Config::new(3), Err(ConfigError::TooFewChannels));
        let mut b = c.to_bytes();
        b[4..8].copy_from_slice(&4096u32.to_le_bytes());
        assert_eq!(Config::from_bytes(&b), Err(ConfigError::SduTooSmall));
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Config::from_bytes(&b), Err(ConfigError::SduTooSmall));
        let mut b = c.to_bytes();
        b[3] = 1;
        assert_eq!(Config::from_bytes(&b), Err(ConfigError::Invalid));
        let mut b = c.to_bytes();
        b[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Config::from_bytes(&b), Err(ConfigError::Invalid));
    }

    #[test]
    fn drop_reason_names_are_distinct() {
        for (i, a) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            for b in &DropReason::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }

    /// Splits an SDU as a sender would and feeds the fragments back.
    fn split_and_join(sdu: usize, buf: usize) -> (usize, usize) {
        let mut r = Reassembler::new(MAX_SDU, 16);
        let (mut left, mut frags) = (sdu, 0);
        loop {
            let (n, more) = next_fragment(left, buf, MIN_RX_BUF).unwrap();
            frags += 1;
            left -= n;
            let hdr = if frags == 1 { h(5, more) } else { c(5, more) };
            let p = r.push(hdr, n);
            assert_eq!(p.dropped, None);
            let a = p.accepted.unwrap();
            assert_eq!(a.offset + n, sdu - left);
            if !more {
                assert!(a.complete);
                assert!(!r.is_open());
                return (a.total, frags);
            }
        }
    }

    #[test]
    fn fragments_cover_every_size() {
        // A full page SDU in page buffers takes two fragments.
        assert_eq!(split_and_join(4096, 4096), (4096, 2));
        assert_eq!(split_and_join(4092, 4096), (4092, 1));
        assert_eq!(split_and_join(0, 4096), (0, 1));
        assert_eq!(split_and_join(65535, 4096), (65535, 17));
        assert_eq!(split_and_join(65535, 65539), (65535, 1));
        for sdu in (0..=4000).step_by(250).chain([4096, 16384, 65535]) {
            assert_eq!(split_and_join(sdu, 4096).0, sdu);
            assert_eq!(split_and_join(sdu, 64).0, sdu);
        }
        assert_eq!(next_fragment(10, 63, MIN_RX_BUF), None);
        assert_eq!(next_fragment(10, 4, 4), None);
        assert_eq!(next_fragment(10, 3, 0), None);
        // A buffer sized to the fragment: an empty SDU is a bare header.
        assert_eq!(next_fragment(0, 4, 4), Some((0, false)));
        assert_eq!(next_fragment(7, 11, 4), Some((7, false)));
    }

    #[test]
    fn oversized_is_skipped_to_its_end() {
        let mut r = Reassembler::new(100, 16);
        assert!(r.push(h(3, true), 60).accepted.is_some());
        let p = r.push(c(3, true), 60);
        assert_eq!((p.accepted, p.dropped), (None, Some(DropReason::Oversized)));
        // The rest of that message is skipped silently (counted once).
        assert_eq!(
            r.push(c(3, true), 60),
            Pushed {
                accepted: None,
                dropped: None
            }
        );
        assert_eq!(
            r.push(c(3, false), 60),
            Pushed {
                accepted: None,
                dropped: None
            }
        );
        // The next message is whole again.
        let a = r.push(h(3, false), 100).accepted.unwrap();
        assert_eq!((a.offset, a.total, a.complete), (0, 100, true));
        // A single oversized fragment.
        assert_eq!(
            r.push(h(3, false), 101).dropped,
            Some(DropReason::Oversized)
        );
        assert!(!r.is_open());
    }

    #[test]
    fn interleaved_channel_drops_open_message() {
        let mut r = Reassembler::new(MAX_SDU, 16);
        r.push(h(3, true), 10);
        let p = r.push(h(4, false), 5);
        assert_eq!(p.dropped, Some(DropReason::BadFragment));
        assert_eq!(
            p.accepted,
            Some(Accepted {
                channel: 4,
                offset: 0,
                complete: true,
                total: 5
            })
        );
        // While skipping, another channel starts over without a second count.
        r.push(h(3, true), 70000);
        let p = r.push(h(4, false), 5);
        assert_eq!(p.dropped, None);
        assert!(p.accepted.unwrap().complete);
        // A first fragment on the same channel cuts the open message too.
        r.push(h(3, true), 10);
        let p = r.push(h(3, false), 5);
        assert_eq!(p.dropped, Some(DropReason::BadFragment));
        assert_eq!(p.accepted.map(|a| (a.offset, a.total)), Some((0, 5)));
    }

    #[test]
    fn a_continuation_without_its_start_is_dropped_to_its_end() {
        let mut r = Reassembler::new(MAX_SDU, 16);
        // The first fragment was lost: the rest is dropped, counted once.
        let p = r.push(c(3, true), 10);
        assert_eq!(
            (p.accepted, p.dropped),
            (None, Some(DropReason::BadFragment))
        );
        assert_eq!(r.push(c(3, true), 10).dropped, None);
        assert_eq!(
            r.push(c(3, false), 10),
            Pushed {
                accepted: None,
                dropped: None
            }
        );
        assert!(!r.is_open());
        // The next message is whole.
        assert!(r.push(h(3, false), 7).accepted.unwrap().complete);
        // A lone last fragment.
        let p = r.push(c(3, false), 10);
        assert_eq!(
            (p.accepted, p.dropped),
            (None, Some(DropReason::BadFragment))
        );
        assert!(!r.is_open());
        // A continuation on another channel drops the open message and
        // itself, counted once.
        r.push(h(3, true), 10);
        let p = r.push(c(4, true), 10);
        assert_eq!(
            (p.accepted, p.dropped),
            (None, Some(DropReason::BadFragment))
        );
        assert_eq!(r.push(c(4, false), 10).dropped, None);
        assert!(!r.is_open());
    }

    #[test]
    fn a_lost_fragment_drops_its_message_to_the_end() {
        let mut r = Reassembler::new(MAX_SDU, 16);
        // A middle fragment lost: the rest of the message is skipped.
        r.push(h(3, true), 10);
        assert!(r.lost());
        assert_eq!(
            r.push(c(3, true), 10),
            Pushed {
                accepted: None,
                dropped: None
            }
        );
        assert_eq!(
            r.push(c(3, false), 10),
            Pushed {
                accepted: None,
                dropped: None
            }
        );
        let a = r.push(h(3, false), 4).accepted.unwrap();
        assert_eq!((a.offset, a.total, a.complete), (0, 4, true));
        // The last fragment lost: the next message starts whole.
        r.push(h(3, true), 10);
        assert!(r.lost());
        let p = r.push(h(3, false), 4);
        assert_eq!(p.dropped, None);
        assert!(p.accepted.unwrap().complete);
        // A first fragment lost (nothing open): its continuations go.
        assert!(!r.lost());
        assert_eq!(
            r.push(c(5, true), 10).dropped,
            Some(DropReason::BadFragment)
        );
        assert_eq!(r.push(c(5, false), 10).dropped, None);
        // A whole message lost: the next one is untouched.
        assert!(!r.lost());
        assert!(r.push(h(5, false), 1).accepted.unwrap().complete);
    }

    #[test]
    fn bad_channel_leaves_open_message() {
        let mut r = Reassembler::new(MAX_SDU, 16);
        r.push(h(3, true), 10);
        assert_eq!(
            r.push(h(16, false), 1).dropped,
            Some(DropReason::BadChannel)
        );
        let a = r.push(c(3, false), 10).accepted.unwrap();
        assert_eq!((a.offset, a.total), (10, 20));
        assert!(!r.reset());
        r.push(h(3, true), 1);
        assert!(r.reset());
    }

    /// Arbitrary fragment sequences never accept past max_sdu and keep
    /// offsets contiguous (a small deterministic fuzz; the cargo-fuzz
    /// target covers the byte parsers).
    #[test]
    fn random_sequences_keep_invariants() {
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = || rng.next();
        let mut r = Reassembler::new(1000, 8);
        let mut expect_off: Option<(u16, usize)> = None;
        for _ in 0..100_000 {
            let v = next();
            let hdr = Header {
                channel: (v % 10) as u16,
                more: v & 0x100 != 0,
                cont: v & 0x200 != 0,
            };
            let len = ((v >> 16) % 700) as usize;
            let p = r.push(hdr, len);
            if let Some(a) = p.accepted {
                assert!(a.total <= 1000);
                assert_eq!(a.total, a.offset + len);
                // A first fragment starts a message; a continuation only
                // continues the one open on its channel.
                if !hdr.cont {
                    assert_eq!(a.offset, 0);
                } else {
                    assert_eq!(expect_off, Some((a.channel, a.offset)));
                }
                match expect_off {
                    Some((c, off)) if c == a.channel && a.offset != 0 => assert_eq!(a.offset, off),
                    _ => assert_eq!(a.offset, 0),
                }
                expect_off = if a.complete {
                    None
                } else {
                    Some((a.channel, a.total))
                };
            } else if p.dropped != Some(DropReason::BadChannel) {
                expect_off = None;
            }
        }
    }
}
