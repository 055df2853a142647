// SPDX-License-Identifier: GPL-2.0

//! The envelope channel (`docs/envelope.md` section 2): the messages the
//! netfront and the switch exchange over VMPI raw channel 1, and the frame
//! metadata (`struct virtio_net_hdr_v1`) that travels with every frame,
//! envelope and grant. Parsing takes untrusted bytes and accepts only
//! exact, fully checked messages.

use super::{le16, le32, le64};

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
/// Length of the fixed part of a `TABLE` message (before its entries).
pub const TABLE_HDR_LEN: usize = MSG_HDR_LEN + 8;

const T_FRAME: u8 = 1;
const T_ENVELOPE: u8 = 2;
const T_TABLE: u8 = 3;
const T_TABLE_REQ: u8 = 4;

/// Why a message was dropped (counted as `bad_msg`, or `bad_meta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgError {
    /// Shorter than its header, another version, reserved bits set.
    Header,
    /// An unknown type.
    Type,
    /// Not exactly as long as its type says, or a frame out of bounds.
    Length,
    /// Frame metadata virtio-net would refuse (see [`Meta::check`]).
    Meta,
    /// A field out of range (a domain, a handle, a count).
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
    /// Where checksumming starts (`F_NEEDS_CSUM`).
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

    /// Whether a frame of `frame_len` bytes may carry this metadata, by
    /// the rules of virtio-net's `virtio_net_hdr_to_skb()`: known flags
    /// only, and not both; a checksum request inside the frame (the
    /// 2-byte checksum too); a GSO frame needs a checksum request, a
    /// segment size, a known type (ECN only on TCP) and a payload beyond
    /// its headers.
    pub fn check(&self, frame_len: usize) -> Result<(), MsgError> {
        if self.flags & !(F_NEEDS_CSUM | F_DATA_VALID) != 0
            || self.flags == F_NEEDS_CSUM | F_DATA_VALID
            || !(ETH_HLEN..=MAX_FRAME).contains(&frame_len)
            || self.hdr_len as usize > frame_len
        {
            return Err(MsgError::Meta);
        }
        let csum = self.flags & F_NEEDS_CSUM != 0;
        if csum && self.csum_start as usize + self.csum_offset as usize + 2 > frame_len {
            return Err(MsgError::Meta);
        }
        if !csum && (self.csum_start != 0 || self.csum_offset != 0) {
            return Err(MsgError::Meta);
        }
        let tcp = matches!(self.gso_type & !GSO_ECN, GSO_TCPV4 | GSO_TCPV6);
        match self.gso_type & !GSO_ECN {
            GSO_NONE if self.gso_type == GSO_NONE => {
                if self.gso_size != 0 {
                    return Err(MsgError::Meta);
                }
            }
            GSO_TCPV4 | GSO_TCPV6 | GSO_UDP | GSO_UDP_L4 => {
                if (self.gso_type & GSO_ECN != 0 && !tcp)
                    || !csum
                    || self.gso_size == 0
                    || (self.csum_start as usize) >= frame_len
                {
                    return Err(MsgError::Meta);
                }
            }
            _ => return Err(MsgError::Meta),
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
    /// Host to guest: a grant to copy from (fields as sent: the copy
    /// checks them).
    Envelope(Envelope),
    /// Host to guest: the table (entries still to be checked:
    /// `table::Replica::load`).
    Table {
        /// The table's generation.
        generation: u32,
        /// The domain of the netfront that receives it.
        your_domain: u16,
        /// `count` entries of [`crate::table::ENTRY_LEN`] bytes.
        entries: &'a [u8],
    },
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
pub fn table_prefix(generation: u32, your_domain: u16, count: u16) -> [u8; TABLE_HDR_LEN] {
    let mut b = [0u8; TABLE_HDR_LEN];
    b[..MSG_HDR_LEN].copy_from_slice(&hdr(T_TABLE));
    b[4..8].copy_from_slice(&generation.to_le_bytes());
    b[8..10].copy_from_slice(&your_domain.to_le_bytes());
    b[10..12].copy_from_slice(&count.to_le_bytes());
    b
}

impl<'a> Msg<'a> {
    /// Parses one SDU of the envelope channel.
    pub fn parse(b: &'a [u8]) -> Result<Self, MsgError> {
        if b.len() < MSG_HDR_LEN || b[1] != VERSION || b[2] != 0 || b[3] != 0 {
            return Err(MsgError::Header);
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
                e.meta.check(e.frame_len as usize)?;
                Ok(Msg::Envelope(e))
            }
            T_TABLE => {
                if b.len() < TABLE_HDR_LEN {
                    return Err(MsgError::Length);
                }
                let count = le16(b, 10) as usize;
                let entries = &b[TABLE_HDR_LEN..];
                if entries.len() != count * super::table::ENTRY_LEN {
                    return Err(MsgError::Length);
                }
                Ok(Msg::Table {
                    generation: le32(b, 4),
                    your_domain: le16(b, 8),
                    entries,
                })
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

    #[test]
    fn meta_round_trips_and_is_checked() {
        let m = tcp_meta();
        assert_eq!(Meta::parse(&m.encode()), Ok(m));
        assert_eq!(m.check(65000), Ok(()));
        assert_eq!(m.check(51), Err(MsgError::Meta)); // checksum beyond the frame
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
        assert_eq!(bad(|m| m.flags = 0), Err(MsgError::Meta)); // GSO without csum
        assert_eq!(bad(|m| m.gso_size = 0), Err(MsgError::Meta));
        assert_eq!(bad(|m| m.gso_type = 2), Err(MsgError::Meta));
        assert_eq!(
            bad(|m| m.gso_type = GSO_UDP_L4 | GSO_ECN),
            Err(MsgError::Meta)
        );
        assert_eq!(bad(|m| m.gso_type = GSO_TCPV6 | GSO_ECN), Ok(()));
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
        let t = table_prefix(9, 4, 0);
        assert_eq!(
            Msg::parse(&t),
            Ok(Msg::Table {
                generation: 9,
                your_domain: 4,
                entries: &[]
            })
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
            handle: 1,
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
        t[..TABLE_HDR_LEN].copy_from_slice(&table_prefix(1, 1, 2));
        assert_eq!(Msg::parse(&t), Err(MsgError::Length));
    }
}
