// SPDX-License-Identifier: GPL-2.0

//! The envelope channel (`docs/envelope.md` section 2): the messages the
//! netfront and the switch exchange over VMPI raw channel 1, and the frame
//! metadata (`struct virtio_net_hdr_v1`) that travels with every frame,
//! envelope and grant. Parsing takes untrusted bytes and accepts only
//! exact, fully checked messages.

use super::grant::Handle;
use super::{le16, le32, le64};
use crate::line::MAX_DOMAIN;

/// The VMPI raw channel both sides bind.
pub const CHANNEL: u16 = 1;
/// Version carried by every message.
pub const VERSION: u8 = 1;
/// Length of the common message header.
pub const MSG_HDR_LEN: usize = 4;
/// Length of [`Meta`] on the wire.
pub const META_LEN: usize = 12;
/// An Ethernet header: the shortest frame.
pub const ETH_HLEN: usize = 14;
/// The longest frame: a `FRAME` message (header, meta, frame) fits VMPI's
/// 65535-byte SDU.
pub const MAX_FRAME: usize = 65535 - MSG_HDR_LEN - META_LEN;
/// Length of an `ENVELOPE` message.
pub const ENVELOPE_LEN: usize = MSG_HDR_LEN + META_LEN + 16;
/// Length of the fixed part of a `TABLE` message (before its entries):
/// generation, epoch, your_domain, count.
pub const TABLE_HDR_LEN: usize = MSG_HDR_LEN + 12;

const T_FRAME: u8 = 1;
const T_ENVELOPE: u8 = 2;
const T_TABLE: u8 = 3;
const T_TABLE_REQ: u8 = 4;

/// Why a message was dropped (counted as `bad_msg`, or `bad_meta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgError {
    /// Shorter than its header, another version, reserved bits set.
    Header,
    /// An unknown type, or one its sender may not send.
    Type,
    /// Not exactly as long as its type says, or a frame out of bounds.
    Length,
    /// Frame metadata virtio-net would refuse (see [`Meta::check`]).
    Meta,
    /// A field out of range (a domain, a handle, an epoch, a count).
    Field,
}

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the sender left the checksum to be
/// completed from `csum_start` with the result at `csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4` (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`, or'ed into a TCP gso type.
pub const GSO_ECN: u8 = 0x80;
/// `GSO_BY_FRAGS`: a `gso_size` Linux reserves for itself.
pub const GSO_BY_FRAGS: u16 = 0xffff;
/// `UDP_MAX_SEGMENTS`: the most segments of a USO frame.
pub const UDP_MAX_SEGMENTS: usize = 128;
/// The shortest IPv4 header (`struct iphdr`).
const IPV4_HLEN: usize = 20;
/// An IPv6 header (`struct ipv6hdr`).
const IPV6_HLEN: usize = 40;
/// The shortest TCP header (`struct tcphdr`).
const TCP_HLEN: usize = 20;
/// A UDP header (`struct udphdr`).
const UDP_HLEN: usize = 8;
/// `offsetof(struct tcphdr, check)`.
const TCP_CSUM_OFFSET: u16 = 16;
/// `offsetof(struct udphdr, check)`.
const UDP_CSUM_OFFSET: u16 = 6;

/// A frame's offload metadata: `struct virtio_net_hdr_v1` (12 bytes, its
/// `num_buffers` always 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// One of the `GSO_*` types.
    pub gso_type: u8,
    /// Length of the headers (a hint, at most the frame).
    pub hdr_len: u16,
    /// Payload bytes per segment for a GSO frame.
    pub gso_size: u16,
    /// Where checksumming starts (`F_NEEDS_CSUM`), from the frame's first
    /// byte.
    pub csum_start: u16,
    /// Where, after `csum_start`, the checksum goes.
    pub csum_offset: u16,
}

impl Meta {
    /// Decodes 12 bytes (no checks beyond `num_buffers` being 0: see
    /// [`Meta::check`]).
    pub fn parse(b: &[u8]) -> Result<Self, MsgError> {
        if b.len() != META_LEN || le16(b, 10) != 0 {
            return Err(MsgError::Meta);
        }
        Ok(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: le16(b, 2),
            gso_size: le16(b, 4),
            csum_start: le16(b, 6),
            csum_offset: le16(b, 8),
        })
    }

    /// The 12 bytes on the wire.
    pub fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// Whether a frame of `frame_len` bytes (14 to [`MAX_FRAME`]) may
    /// carry this metadata. What Linux 6.12's `virtio_net_hdr_to_skb()`
    /// checks from the lengths alone, a little stricter where noted:
    ///
    /// - `flags`: `F_NEEDS_CSUM` or `F_DATA_VALID` or neither, not both
    ///   (stricter); `hdr_len` at most the frame (stricter);
    /// - `gso_type`: `GSO_NONE` with `gso_size` 0 (stricter), or TCPv4,
    ///   TCPv6, UDP (UFO), UDP_L4 (USO), `GSO_ECN` only on TCP
    ///   (stricter), with `gso_size` neither 0 nor `GSO_BY_FRAGS`
    ///   (0xffff);
    /// - with `F_NEEDS_CSUM`: `csum_start` at least 14 + 20 (40 for
    ///   TCPv6 GSO): an Ethernet header and the shortest network header
    ///   (Linux counts the 20 or 40 from the frame's first byte: stricter,
    ///   so that a checksum can never land in the MAC addresses or the
    ///   ethertype); the frame at least `csum_start + max(thlen,
    ///   csum_offset + 2)` bytes (`thlen`: 20 for TCP GSO, 8 for UDP GSO,
    ///   else 0); `csum_offset` 16 for TCP GSO, 6 for USO;
    /// - without it: `csum_start` and `csum_offset` 0 (stricter); GSO
    ///   is allowed (flags 0 or `F_DATA_VALID`: what Linux's
    ///   `virtio_net_hdr_from_skb()` writes for a GRO'd
    ///   `CHECKSUM_UNNECESSARY` skb) except USO, which Linux refuses
    ///   without `F_NEEDS_CSUM`; the frame at least 14 + 20 (40 for
    ///   TCPv6) + `thlen` bytes. (Linux then dissects the headers: the
    ///   ethertype and IP protocol must match the GSO type. That needs
    ///   the frame's bytes; the receiver's own `virtio_net_hdr_to_skb()`
    ///   does it.)
    /// - USO: at most `gso_size * 128` bytes after the UDP header.
    pub fn check(&self, frame_len: usize) -> Result<(), MsgError> {
        let bad = Err(MsgError::Meta);
        if self.flags & !(F_NEEDS_CSUM | F_DATA_VALID) != 0
            || self.flags == F_NEEDS_CSUM | F_DATA_VALID
            || !(ETH_HLEN..=MAX_FRAME).contains(&frame_len)
            || self.hdr_len as usize > frame_len
        {
            return bad;
        }
        let ecn = self.gso_type & GSO_ECN != 0;
        let base = self.gso_type & !GSO_ECN;
        let (thlen, nh_min) = match base {
            GSO_NONE if !ecn => (0, IPV4_HLEN),
            GSO_TCPV4 => (TCP_HLEN, IPV4_HLEN),
            GSO_TCPV6 => (TCP_HLEN, IPV6_HLEN),
            GSO_UDP | GSO_UDP_L4 if !ecn => (UDP_HLEN, IPV4_HLEN),
            _ => return bad,
        };
        let gso = base != GSO_NONE;
        if gso {
            if self.gso_size == 0 || self.gso_size == GSO_BY_FRAGS {
                return bad;
            }
        } else if self.gso_size != 0 {
            return bad;
        }
        let start = self.csum_start as usize;
        let off = self.csum_offset as usize;
        // Where the payload starts (Linux's `p_off`).
        let payload = if self.flags & F_NEEDS_CSUM != 0 {
            let csum_off_ok = match base {
                GSO_TCPV4 | GSO_TCPV6 => self.csum_offset == TCP_CSUM_OFFSET,
                GSO_UDP_L4 => self.csum_offset == UDP_CSUM_OFFSET,
                _ => true,
            };
            if start < ETH_HLEN + nh_min || start + thlen.max(off + 2) > frame_len || !csum_off_ok {
                return bad;
            }
            start + thlen
        } else {
            if start != 0 || off != 0 || base == GSO_UDP_L4 {
                return bad;
            }
            let p = if gso { ETH_HLEN + nh_min + thlen } else { 0 };
            if p > frame_len {
                return bad;
            }
            p
        };
        if base == GSO_UDP_L4 && frame_len - payload > self.gso_size as usize * UDP_MAX_SEGMENTS {
            return bad;
        }
        Ok(())
    }
}

/// What an `ENVELOPE` tells a destination: a grant it may copy from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// The frame's metadata, as the sender granted it.
    pub meta: Meta,
    /// The host's handle of the grant (`docs/vmpi-protocol.md` section 5).
    pub handle: u64,
    /// The frame's length: the grant's window.
    pub frame_len: u32,
    /// The sending domain.
    pub src_domain: u16,
}

impl Envelope {
    /// The whole `ENVELOPE` message.
    pub fn encode(&self) -> [u8; ENVELOPE_LEN] {
        let mut b = [0u8; ENVELOPE_LEN];
        b[..MSG_HDR_LEN].copy_from_slice(&hdr(T_ENVELOPE));
        b[4..16].copy_from_slice(&self.meta.encode());
        b[16..24].copy_from_slice(&self.handle.to_le_bytes());
        b[24..28].copy_from_slice(&self.frame_len.to_le_bytes());
        b[28..30].copy_from_slice(&self.src_domain.to_le_bytes());
        b
    }
}

/// The fields of a `TABLE` message (entries still to be checked:
/// `table::Replica::load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMsg<'a> {
    /// The table's generation.
    pub generation: u32,
    /// The switch's epoch: nonzero, new each time the switch is loaded.
    pub epoch: u32,
    /// The domain of the netfront that receives it.
    pub your_domain: u16,
    /// `count` entries of [`crate::table::ENTRY_LEN`] bytes.
    pub entries: &'a [u8],
}

/// A message of the envelope channel, borrowing the SDU it was parsed
/// from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg<'a> {
    /// A whole frame (either direction); its metadata is checked.
    Frame {
        /// Offloads.
        meta: Meta,
        /// The frame, [`ETH_HLEN`] to [`MAX_FRAME`] bytes.
        frame: &'a [u8],
    },
    /// Host to guest: a grant to copy from (its source domain and the
    /// form of its handle checked; the copy checks the rest).
    Envelope(Envelope),
    /// Host to guest: the table.
    Table(TableMsg<'a>),
    /// Guest to host: "send me the table".
    TableReq,
}

fn hdr(t: u8) -> [u8; MSG_HDR_LEN] {
    [t, VERSION, 0, 0]
}

/// The 16 bytes that go before a frame's bytes in a `FRAME` message.
pub fn frame_prefix(meta: &Meta) -> [u8; MSG_HDR_LEN + META_LEN] {
    let mut b = [0u8; MSG_HDR_LEN + META_LEN];
    b[..MSG_HDR_LEN].copy_from_slice(&hdr(T_FRAME));
    b[MSG_HDR_LEN..].copy_from_slice(&meta.encode());
    b
}

/// The whole `TABLE_REQ` message.
pub fn table_req() -> [u8; MSG_HDR_LEN] {
    hdr(T_TABLE_REQ)
}

/// The fixed part of a `TABLE` message; `count` entries follow it.
pub fn table_prefix(
    generation: u32,
    epoch: u32,
    your_domain: u16,
    count: u16,
) -> [u8; TABLE_HDR_LEN] {
    let mut b = [0u8; TABLE_HDR_LEN];
    b[..MSG_HDR_LEN].copy_from_slice(&hdr(T_TABLE));
    b[4..8].copy_from_slice(&generation.to_le_bytes());
    b[8..12].copy_from_slice(&epoch.to_le_bytes());
    b[12..14].copy_from_slice(&your_domain.to_le_bytes());
    b[14..16].copy_from_slice(&count.to_le_bytes());
    b
}

impl<'a> Msg<'a> {
    /// Parses one SDU a guest's netfront sent: only `FRAME` and
    /// `TABLE_REQ` (anything else is [`MsgError::Type`]).
    pub fn parse_from_guest(b: &'a [u8]) -> Result<Self, MsgError> {
        Self::parse_typed(b, &[T_FRAME, T_TABLE_REQ])
    }

    /// Parses one SDU the host's switch sent: only `FRAME`, `ENVELOPE`
    /// and `TABLE` (anything else is [`MsgError::Type`]).
    pub fn parse_from_host(b: &'a [u8]) -> Result<Self, MsgError> {
        Self::parse_typed(b, &[T_FRAME, T_ENVELOPE, T_TABLE])
    }

    /// Parses one SDU of the envelope channel, of either direction (tests
    /// and fuzzing; each side uses its `parse_from_*`).
    pub fn parse(b: &'a [u8]) -> Result<Self, MsgError> {
        Self::parse_typed(b, &[T_FRAME, T_ENVELOPE, T_TABLE, T_TABLE_REQ])
    }

    fn parse_typed(b: &'a [u8], allowed: &[u8]) -> Result<Self, MsgError> {
        if b.len() < MSG_HDR_LEN || b[1] != VERSION || b[2] != 0 || b[3] != 0 {
            return Err(MsgError::Header);
        }
        if !allowed.contains(&b[0]) {
            return Err(MsgError::Type);
        }
        match b[0] {
            T_FRAME => {
                if b.len() < MSG_HDR_LEN + META_LEN + ETH_HLEN {
                    return Err(MsgError::Length);
                }
                let meta = Meta::parse(&b[4..16])?;
                let frame = &b[16..];
                meta.check(frame.len())?;
                Ok(Msg::Frame { meta, frame })
            }
            T_ENVELOPE => {
                if b.len() != ENVELOPE_LEN {
                    return Err(MsgError::Length);
                }
                if le16(b, 30) != 0 {
                    return Err(MsgError::Header);
                }
                let e = Envelope {
                    meta: Meta::parse(&b[4..16])?,
                    handle: le64(b, 16),
                    frame_len: le32(b, 24),
                    src_domain: le16(b, 28),
                };
                let h = Handle(e.handle);
                if !(1..=MAX_DOMAIN).contains(&e.src_domain)
                    || h.generation() == 0
                    || h.domain() != e.src_domain
                {
                    return Err(MsgError::Field);
                }
                e.meta.check(e.frame_len as usize)?;
                Ok(Msg::Envelope(e))
            }
            T_TABLE => {
                if b.len() < TABLE_HDR_LEN {
                    return Err(MsgError::Length);
                }
                let count = le16(b, 14) as usize;
                let entries = &b[TABLE_HDR_LEN..];
                if entries.len() != count * super::table::ENTRY_LEN {
                    return Err(MsgError::Length);
                }
                let t = TableMsg {
                    generation: le32(b, 4),
                    epoch: le32(b, 8),
                    your_domain: le16(b, 12),
                    entries,
                };
                if t.epoch == 0 || !(1..=MAX_DOMAIN).contains(&t.your_domain) {
                    return Err(MsgError::Field);
                }
                Ok(Msg::Table(t))
            }
            T_TABLE_REQ if b.len() == MSG_HDR_LEN => Ok(Msg::TableReq),
            T_TABLE_REQ => Err(MsgError::Length),
            _ => Err(MsgError::Type),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_meta() -> Meta {
        Meta {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        }
    }

    /// A handle of domain `d`, generation 1.
    fn handle(d: u16) -> u64 {
        1 << 32 | (d as u64) << 16 | 7
    }

    #[test]
    fn meta_round_trips_and_is_checked() {
        let m = tcp_meta();
        assert_eq!(Meta::parse(&m.encode()), Ok(m));
        assert_eq!(m.check(65000), Ok(()));
        assert_eq!(m.check(53), Err(MsgError::Meta)); // the TCP header beyond the frame
        assert_eq!(Meta::default().check(ETH_HLEN), Ok(()));
        assert_eq!(Meta::default().check(ETH_HLEN - 1), Err(MsgError::Meta));
        assert_eq!(Meta::default().check(MAX_FRAME + 1), Err(MsgError::Meta));
        let bad = |f: fn(&mut Meta)| {
            let mut m = tcp_meta();
            f(&mut m);
            m.check(9000)
        };
        assert_eq!(bad(|m| m.flags = 4), Err(MsgError::Meta));
        assert_eq!(bad(|m| m.flags = 3), Err(MsgError::Meta));
        assert_eq!(bad(|m| m.flags = 0), Err(MsgError::Meta)); // csum fields without NEEDS_CSUM
        assert_eq!(bad(|m| m.gso_size = 0), Err(MsgError::Meta));
        assert_eq!(bad(|m| m.gso_type = 2), Err(MsgError::Meta));
        assert_eq!(
            bad(|m| m.gso_type = GSO_UDP_L4 | GSO_ECN),
            Err(MsgError::Meta)
        );
        assert_eq!(
            bad(|m| m.gso_type = GSO_NONE | GSO_ECN),
            Err(MsgError::Meta)
        );
        assert_eq!(
            bad(|m| {
                m.gso_type = GSO_TCPV6 | GSO_ECN;
                m.csum_start = 54;
            }),
            Ok(())
        );
        assert_eq!(bad(|m| m.hdr_len = 9001), Err(MsgError::Meta));
        let plain = Meta {
            gso_size: 1,
            ..Meta::default()
        };
        assert_eq!(plain.check(100), Err(MsgError::Meta));
        let stray = Meta {
            csum_start: 1,
            ..Meta::default()
        };
        assert_eq!(stray.check(100), Err(MsgError::Meta));
        let mut b = m.encode();
        b[10] = 1; // num_buffers
        assert_eq!(Meta::parse(&b), Err(MsgError::Meta));
    }

    #[test]
    fn meta_follows_virtio_net_hdr_to_skb() {
        let csum = |start: u16, off: u16| Meta {
            flags: F_NEEDS_CSUM,
            csum_start: start,
            csum_offset: off,
            ..Meta::default()
        };
        // A checksum never starts in the Ethernet header or the shortest
        // IPv4 header, so it can never land in the MAC addresses.
        assert_eq!(csum(0, 0).check(100), Err(MsgError::Meta));
        assert_eq!(csum(0, 6).check(100), Err(MsgError::Meta));
        assert_eq!(csum(33, 6).check(100), Err(MsgError::Meta));
        assert_eq!(csum(34, 6).check(100), Ok(()));
        assert_eq!(csum(34, 64).check(100), Ok(()));
        assert_eq!(csum(34, 65).check(100), Err(MsgError::Meta));
        // TCP GSO: csum_offset is the TCP checksum's; the TCP header fits;
        // TCPv6 needs an IPv6 header.
        let tcp = |f: fn(&mut Meta)| {
            let mut m = tcp_meta();
            f(&mut m);
            m
        };
        assert_eq!(tcp(|m| m.csum_offset = 10).check(9000), Err(MsgError::Meta));
        assert_eq!(tcp(|m| m.hdr_len = 0).check(54), Ok(()));
        assert_eq!(tcp(|m| m.hdr_len = 0).check(53), Err(MsgError::Meta));
        assert_eq!(
            tcp(|m| m.gso_type = GSO_TCPV6).check(9000),
            Err(MsgError::Meta)
        );
        assert_eq!(
            tcp(|m| m.gso_size = GSO_BY_FRAGS).check(9000),
            Err(MsgError::Meta)
        );
        // USO: csum_offset 6, at most 128 segments of payload.
        let uso = Meta {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            hdr_len: 0,
            gso_size: 100,
            csum_start: 34,
            csum_offset: 6,
        };
        assert_eq!(uso.check(42 + 12800), Ok(()));
        assert_eq!(uso.check(42 + 12801), Err(MsgError::Meta));
        assert_eq!(uso.check(41), Err(MsgError::Meta));
        let m = Meta {
            csum_offset: 16,
            ..uso
        };
        assert_eq!(m.check(1000), Err(MsgError::Meta));
        // UFO: no csum_offset rule, the UDP header fits.
        let ufo = Meta {
            gso_type: GSO_UDP,
            csum_offset: 0,
            ..uso
        };
        assert_eq!(ufo.check(42), Ok(()));
        assert_eq!(ufo.check(41), Err(MsgError::Meta));
    }

    #[test]
    fn gso_without_needs_csum_is_checked_as_linux_does() {
        // A GRO'd CHECKSUM_UNNECESSARY skb, as virtio_net_hdr_from_skb()
        // writes it: DATA_VALID, GSO, no checksum fields.
        let gro = Meta {
            flags: F_DATA_VALID,
            gso_type: GSO_TCPV4,
            hdr_len: 0,
            gso_size: 1448,
            csum_start: 0,
            csum_offset: 0,
        };
        assert_eq!(gro.check(64000), Ok(()));
        assert_eq!(gro.check(54), Ok(()));
        assert_eq!(gro.check(53), Err(MsgError::Meta));
        let none = Meta { flags: 0, ..gro };
        assert_eq!(none.check(64000), Ok(()));
        let v6 = Meta {
            gso_type: GSO_TCPV6,
            ..gro
        };
        assert_eq!(v6.check(74), Ok(()));
        assert_eq!(v6.check(73), Err(MsgError::Meta));
        // USO needs NEEDS_CSUM (Linux refuses it otherwise).
        let uso = Meta {
            gso_type: GSO_UDP_L4,
            ..gro
        };
        assert_eq!(uso.check(64000), Err(MsgError::Meta));
        let ufo = Meta {
            gso_type: GSO_UDP,
            ..gro
        };
        assert_eq!(ufo.check(64000), Ok(()));
    }

    #[test]
    fn messages_round_trip() {
        let mut sdu = [0u8; 16 + 60];
        sdu[..16].copy_from_slice(&frame_prefix(&Meta::default()));
        sdu[16] = 0xaa;
        match Msg::parse(&sdu) {
            Ok(Msg::Frame { meta, frame }) => {
                assert_eq!(meta, Meta::default());
                assert_eq!(frame.len(), 60);
                assert_eq!(frame[0], 0xaa);
            }
            other => panic!("{:?}", other),
        }
        let e = Envelope {
            meta: tcp_meta(),
            handle: 0x1234_5678_0003_0007,
            frame_len: 64000,
            src_domain: 3,
        };
        assert_eq!(Msg::parse(&e.encode()), Ok(Msg::Envelope(e)));
        assert_eq!(Msg::parse(&table_req()), Ok(Msg::TableReq));
        let t = table_prefix(9, 0xabcd, 4, 0);
        assert_eq!(
            Msg::parse(&t),
            Ok(Msg::Table(TableMsg {
                generation: 9,
                epoch: 0xabcd,
                your_domain: 4,
                entries: &[]
            }))
        );
    }

    #[test]
    fn each_side_parses_only_what_the_other_may_send() {
        let mut frame = [0u8; 16 + 60];
        frame[..16].copy_from_slice(&frame_prefix(&Meta::default()));
        let e = Envelope {
            meta: Meta::default(),
            handle: handle(3),
            frame_len: 60,
            src_domain: 3,
        }
        .encode();
        let t = table_prefix(1, 1, 1, 0);
        let req = table_req();
        assert!(Msg::parse_from_guest(&frame).is_ok());
        assert_eq!(Msg::parse_from_guest(&req), Ok(Msg::TableReq));
        assert_eq!(Msg::parse_from_guest(&e), Err(MsgError::Type));
        assert_eq!(Msg::parse_from_guest(&t), Err(MsgError::Type));
        assert!(Msg::parse_from_host(&frame).is_ok());
        assert!(Msg::parse_from_host(&e).is_ok());
        assert!(Msg::parse_from_host(&t).is_ok());
        assert_eq!(Msg::parse_from_host(&req), Err(MsgError::Type));
        assert_eq!(Msg::parse_from_host(&[9, 1, 0, 0]), Err(MsgError::Type));
    }

    #[test]
    fn envelope_and_table_fields_are_range_checked() {
        let env = |src_domain: u16, handle: u64| {
            Envelope {
                meta: Meta::default(),
                handle,
                frame_len: 60,
                src_domain,
            }
            .encode()
        };
        assert!(Msg::parse_from_host(&env(3, handle(3))).is_ok());
        assert!(Msg::parse_from_host(&env(MAX_DOMAIN, handle(MAX_DOMAIN))).is_ok());
        for (d, h) in [
            (0, handle(0)),
            (MAX_DOMAIN + 1, handle(MAX_DOMAIN + 1)),
            (3, handle(3) & 0xffff_ffff), // generation 0
            (3, handle(4)),               // another domain's handle
        ] {
            assert_eq!(Msg::parse_from_host(&env(d, h)), Err(MsgError::Field));
        }
        assert_eq!(
            Msg::parse_from_host(&table_prefix(1, 0, 1, 0)),
            Err(MsgError::Field)
        );
        assert_eq!(
            Msg::parse_from_host(&table_prefix(1, 1, 0, 0)),
            Err(MsgError::Field)
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(Msg::parse(&[]), Err(MsgError::Header));
        assert_eq!(Msg::parse(&[4, 2, 0, 0]), Err(MsgError::Header));
        assert_eq!(Msg::parse(&[4, 1, 0, 1]), Err(MsgError::Header));
        assert_eq!(Msg::parse(&[9, 1, 0, 0]), Err(MsgError::Type));
        assert_eq!(Msg::parse(&[4, 1, 0, 0, 0]), Err(MsgError::Length));
        // A frame shorter than an Ethernet header.
        let mut short = [0u8; 16 + 13];
        short[..16].copy_from_slice(&frame_prefix(&Meta::default()));
        assert_eq!(Msg::parse(&short), Err(MsgError::Length));
        // An envelope one byte short, one long, or with reserved bytes.
        let e = Envelope {
            meta: Meta::default(),
            handle: handle(1),
            frame_len: 60,
            src_domain: 1,
        }
        .encode();
        assert_eq!(Msg::parse(&e[..ENVELOPE_LEN - 1]), Err(MsgError::Length));
        let mut long = [0u8; ENVELOPE_LEN + 1];
        long[..ENVELOPE_LEN].copy_from_slice(&e);
        assert_eq!(Msg::parse(&long), Err(MsgError::Length));
        let mut r = e;
        r[31] = 1;
        assert_eq!(Msg::parse(&r), Err(MsgError::Header));
        // A table whose count disagrees with its length.
        let mut t = [0u8; TABLE_HDR_LEN + 12];
        t[..TABLE_HDR_LEN].copy_from_slice(&table_prefix(1, 1, 1, 2));
        assert_eq!(Msg::parse(&t), Err(MsgError::Length));
    }
}
