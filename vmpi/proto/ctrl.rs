// SPDX-License-Identifier: GPL-2.0

//! VMPI control messages (channel 0): parsing and encoding, as specified in
//! `docs/vmpi-protocol.md` section 3. Parsing takes untrusted bytes from
//! the peer and accepts only exact, fully checked messages.

/// Protocol version carried by every control message.
pub const VERSION: u8 = 2;
/// Length of the common control header.
pub const CTRL_HDR_LEN: usize = 8;
/// Longest application name.
pub const MAX_NAME: usize = 64;
/// Longest control message (an `ALLOC_REQ` with two full names).
pub const MAX_CTRL_LEN: usize = CTRL_HDR_LEN + 8 + 2 * MAX_NAME;

/// `HELLO` flag: this is the answer to a `HELLO`.
pub const HELLO_REPLY: u16 = 1;

const T_HELLO: u8 = 1;
const T_ALLOC_REQ: u8 = 2;
const T_ALLOC_RESP: u8 = 3;
const T_DEALLOC: u8 = 4;
const T_DEALLOC_ACK: u8 = 5;
const T_CREDIT: u8 = 6;

/// An application name: 1 to [`MAX_NAME`] printable ASCII bytes
/// (`0x21..=0x7e`), stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    len: u8,
    buf: [u8; MAX_NAME],
}

impl Name {
    /// Checks and copies a name.
    pub fn new(b: &[u8]) -> Result<Self, CtrlError> {
        if b.is_empty() || b.len() > MAX_NAME || !b.iter().all(|c| (0x21..=0x7e).contains(c)) {
            return Err(CtrlError::BadName);
        }
        let mut buf = [0u8; MAX_NAME];
        buf[..b.len()].copy_from_slice(b);
        Ok(Self {
            len: b.len() as u8,
            buf,
        })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Printable ASCII by construction.
        for &c in self.as_bytes() {
            core::fmt::Write::write_char(f, c as char)?;
        }
        Ok(())
    }
}

/// `result` of an `ALLOC_RESP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum AllocResult {
    /// Accepted: the flow is open.
    Accepted = 0,
    /// No such application registered (`ENOENT`).
    NoSuchApp = 1,
    /// Backlog full or channel busy (`EBUSY`).
    Refused = 2,
    /// Invalid request (`EINVAL`).
    Invalid = 3,
}

impl AllocResult {
    fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0 => Self::Accepted,
            1 => Self::NoSuchApp,
            2 => Self::Refused,
            3 => Self::Invalid,
            _ => return None,
        })
    }
}

/// A control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctrl {
    /// The sender (re)started, or (`reply`) answers a `HELLO`.
    Hello {
        /// This answers a `HELLO`.
        reply: bool,
        /// The sender's epoch: nonzero, new at each (re)start.
        epoch: u32,
        /// The sender's view of the configuration's `num_channels`.
        num_channels: u16,
        /// The sender's view of `max_sdu`.
        max_sdu: u32,
    },
    /// Open a flow on `channel` (the requester's half) to application `dst`.
    AllocReq {
        /// Request id, echoed in the response.
        xid: u32,
        /// The channel the requester picked.
        channel: u16,
        /// Credit the requester grants.
        window: u32,
        /// Destination application.
        dst: Name,
        /// Source application, if named.
        src: Option<Name>,
    },
    /// The answer to an `AllocReq`.
    AllocResp {
        /// The request's id.
        xid: u32,
        /// The request's channel.
        channel: u16,
        /// Accepted or why not.
        result: AllocResult,
        /// Credit the responder grants (0 unless accepted).
        window: u32,
    },
    /// Close the flow on `channel`.
    Dealloc {
        /// The flow's channel.
        channel: u16,
    },
    /// The flow on `channel` is closed at the sender of this message.
    DeallocAck {
        /// The flow's channel.
        channel: u16,
    },
    /// The sender has consumed `consumed` credit units on `channel`.
    Credit {
        /// The flow's channel.
        channel: u16,
        /// Units consumed so far (wrapping).
        consumed: u32,
    },
}

/// Why a control message was refused (all counted as `bad_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtrlError {
    /// Shorter than its type requires.
    Truncated,
    /// Longer than its type allows.
    TrailingBytes,
    /// Another protocol version.
    BadVersion,
    /// An unknown type.
    UnknownType,
    /// A reserved field or flag is not zero, or a field is out of range.
    BadField,
    /// A name breaks the rules.
    BadName,
}

/// A little-endian reader over untrusted bytes.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CtrlError> {
        if self.b.len() < n {
            return Err(CtrlError::Truncated);
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CtrlError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, CtrlError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, CtrlError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn zero16(&mut self) -> Result<(), CtrlError> {
        if self.u16()? != 0 {
            return Err(CtrlError::BadField);
        }
        Ok(())
    }
    fn end(&self) -> Result<(), CtrlError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(CtrlError::TrailingBytes)
        }
    }
}

/// A little-endian writer into a caller's buffer of [`MAX_CTRL_LEN`].
struct Writer<'a> {
    b: &'a mut [u8; MAX_CTRL_LEN],
    len: usize,
}

impl Writer<'_> {
    // Every message fits MAX_CTRL_LEN by construction (names are at most
    // MAX_NAME), so these never run past the buffer.
    fn put(&mut self, s: &[u8]) {
        let end = self.len + s.len();
        if let Some(d) = self.b.get_mut(self.len..end) {
            d.copy_from_slice(s);
            self.len = end;
        }
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
}

impl Ctrl {
    /// Parses one control SDU.
    pub fn parse(b: &[u8]) -> Result<Self, CtrlError> {
        let mut r = Reader { b };
        if r.u8()? != VERSION {
            return Err(CtrlError::BadVersion);
        }
        let ty = r.u8()?;
        let flags = r.u16()?;
        let xid = r.u32()?;
        let allowed_flags = if ty == T_HELLO { HELLO_REPLY } else { 0 };
        if !(T_HELLO..=T_CREDIT).contains(&ty) {
            return Err(CtrlError::UnknownType);
        }
        // Only requests and their replies carry an xid.
        if flags & !allowed_flags != 0 || (xid != 0 && !matches!(ty, T_ALLOC_REQ | T_ALLOC_RESP)) {
            return Err(CtrlError::BadField);
        }
        let m = match ty {
            T_HELLO => {
                let epoch = r.u32()?;
                let num_channels = r.u16()?;
                r.zero16()?;
                let max_sdu = r.u32()?;
                if epoch == 0 {
                    return Err(CtrlError::BadField);
                }
                Ctrl::Hello {
                    reply: flags & HELLO_REPLY != 0,
                    epoch,
                    num_channels,
                    max_sdu,
                }
            }
            T_ALLOC_REQ => {
                let channel = r.u16()?;
                let dst_len = r.u8()? as usize;
                let src_len = r.u8()? as usize;
                let window = r.u32()?;
                let dst = Name::new(r.take(dst_len)?)?;
                let src = if src_len == 0 {
                    None
                } else {
                    Some(Name::new(r.take(src_len)?)?)
                };
                if channel == 0 {
                    return Err(CtrlError::BadField);
                }
                Ctrl::AllocReq {
                    xid,
                    channel,
                    window,
                    dst,
                    src,
                }
            }
            T_ALLOC_RESP => {
                let channel = r.u16()?;
                let result = AllocResult::from_u16(r.u16()?).ok_or(CtrlError::BadField)?;
                let window = r.u32()?;
                if channel == 0 {
                    return Err(CtrlError::BadField);
                }
                Ctrl::AllocResp {
                    xid,
                    channel,
                    result,
                    window,
                }
            }
            T_DEALLOC | T_DEALLOC_ACK => {
                let channel = r.u16()?;
                r.zero16()?;
                if channel == 0 {
                    return Err(CtrlError::BadField);
                }
                if ty == T_DEALLOC {
                    Ctrl::Dealloc { channel }
                } else {
                    Ctrl::DeallocAck { channel }
                }
            }
            _ => {
                let channel = r.u16()?;
                r.zero16()?;
                let consumed = r.u32()?;
                if channel == 0 {
                    return Err(CtrlError::BadField);
                }
                Ctrl::Credit { channel, consumed }
            }
        };
        r.end()?;
        Ok(m)
    }

    /// Encodes the message into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8; MAX_CTRL_LEN]) -> usize {
        let mut w = Writer { b: out, len: 0 };
        let (ty, flags, xid) = match *self {
            Ctrl::Hello { reply, .. } => (T_HELLO, if reply { HELLO_REPLY } else { 0 }, 0),
            Ctrl::AllocReq { xid, .. } => (T_ALLOC_REQ, 0, xid),
            Ctrl::AllocResp { xid, .. } => (T_ALLOC_RESP, 0, xid),
            Ctrl::Dealloc { .. } => (T_DEALLOC, 0, 0),
            Ctrl::DeallocAck { .. } => (T_DEALLOC_ACK, 0, 0),
            Ctrl::Credit { .. } => (T_CREDIT, 0, 0),
        };
        w.put(&[VERSION, ty]);
        w.u16(flags);
        w.u32(xid);
        match *self {
            Ctrl::Hello {
                epoch,
                num_channels,
                max_sdu,
                ..
            } => {
                w.u32(epoch);
                w.u16(num_channels);
                w.u16(0);
                w.u32(max_sdu);
            }
            Ctrl::AllocReq {
                channel,
                window,
                ref dst,
                ref src,
                ..
            } => {
                w.u16(channel);
                w.put(&[dst.len, src.as_ref().map_or(0, |s| s.len)]);
                w.u32(window);
                w.put(dst.as_bytes());
                if let Some(s) = src {
                    w.put(s.as_bytes());
                }
            }
            Ctrl::AllocResp {
                channel,
                result,
                window,
                ..
            } => {
                w.u16(channel);
                w.u16(result as u16);
                w.u32(window);
            }
            Ctrl::Dealloc { channel } | Ctrl::DeallocAck { channel } => {
                w.u16(channel);
                w.u16(0);
            }
            Ctrl::Credit { channel, consumed } => {
                w.u16(channel);
                w.u16(0);
                w.u32(consumed);
            }
        }
        w.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::new(s.as_bytes()).unwrap()
    }

    fn samples() -> [Ctrl; 8] {
        [
            Ctrl::Hello {
                reply: false,
                epoch: 0xdead_beef,
                num_channels: 256,
                max_sdu: 65535,
            },
            Ctrl::Hello {
                reply: true,
                epoch: 1,
                num_channels: 4,
                max_sdu: 70000,
            },
            Ctrl::AllocReq {
                xid: 7,
                channel: 200,
                window: 1 << 18,
                dst: name("server"),
                src: Some(name("client-1")),
            },
            Ctrl::AllocReq {
                xid: 8,
                channel: 1,
                window: 0,
                dst: name(&"x".repeat(64)),
                src: None,
            },
            Ctrl::AllocResp {
                xid: 7,
                channel: 200,
                result: AllocResult::Accepted,
                window: 4096,
            },
            Ctrl::AllocResp {
                xid: 9,
                channel: 3,
                result: AllocResult::NoSuchApp,
                window: 0,
            },
            Ctrl::Dealloc { channel: 65535 },
            Ctrl::Credit {
                channel: 2,
                consumed: u32::MAX,
            },
        ]
    }

    #[test]
    fn round_trip() {
        let mut buf = [0u8; MAX_CTRL_LEN];
        for m in samples()
            .into_iter()
            .chain([Ctrl::DeallocAck { channel: 9 }])
        {
            let n = m.encode(&mut buf);
            assert_eq!(Ctrl::parse(&buf[..n]), Ok(m), "{m:?}");
            // Every shorter prefix is truncated, one more byte is trailing.
            for k in 0..n {
                assert!(Ctrl::parse(&buf[..k]).is_err(), "{m:?} prefix {k}");
            }
            buf[n] = 0;
            assert_eq!(Ctrl::parse(&buf[..n + 1]), Err(CtrlError::TrailingBytes));
        }
    }

    #[test]
    fn wire_layout() {
        let mut buf = [0u8; MAX_CTRL_LEN];
        let n = Ctrl::Credit {
            channel: 0x0102,
            consumed: 0x0a0b0c0d,
        }
        .encode(&mut buf);
        assert_eq!(
            &buf[..n],
            &[2, 6, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0x0d, 0x0c, 0x0b, 0x0a]
        );
        let m = Ctrl::AllocReq {
            xid: 0x11223344,
            channel: 5,
            window: 9,
            dst: name("ab"),
            src: Some(name("c")),
        };
        let n = m.encode(&mut buf);
        assert_eq!(
            &buf[..n],
            &[2, 2, 0, 0, 0x44, 0x33, 0x22, 0x11, 5, 0, 2, 1, 9, 0, 0, 0, b'a', b'b', b'c']
        );
        let m = Ctrl::Hello {
            reply: true,
            epoch: 2,
            num_channels: 8,
            max_sdu: 65535,
        };
        let n = m.encode(&mut buf);
        assert_eq!(
            &buf[..n],
            &[2, 1, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 0xff, 0xff, 0, 0]
        );
    }

    #[test]
    fn rejects_malformed() {
        let mut buf = [0u8; MAX_CTRL_LEN];
        let n = Ctrl::Dealloc { channel: 4 }.encode(&mut buf);
        let ok = buf;
        let cases: [(usize, u8, CtrlError); 7] = [
            (0, 1, CtrlError::BadVersion),
            (1, 0, CtrlError::UnknownType),
            (1, 7, CtrlError::UnknownType),
            (2, 1, CtrlError::BadField),  // flags
            (4, 1, CtrlError::BadField),  // xid on a non-request
            (10, 1, CtrlError::BadField), // reserved
            (8, 0, CtrlError::BadField),  // channel 0 (with byte 9 = 0)
        ];
        for (at, v, e) in cases {
            let mut b = ok;
            b[at] = v;
            assert_eq!(Ctrl::parse(&b[..n]), Err(e), "byte {at} = {v}");
        }
        // HELLO with epoch 0; ALLOC_RESP with an unknown result.
        let n = Ctrl::Hello {
            reply: false,
            epoch: 1,
            num_channels: 4,
            max_sdu: 1,
        }
        .encode(&mut buf);
        buf[8] = 0;
        assert_eq!(Ctrl::parse(&buf[..n]), Err(CtrlError::BadField));
        let n = Ctrl::AllocResp {
            xid: 1,
            channel: 1,
            result: AllocResult::Invalid,
            window: 0,
        }
        .encode(&mut buf);
        buf[10] = 4;
        assert_eq!(Ctrl::parse(&buf[..n]), Err(CtrlError::BadField));
    }

    #[test]
    fn names() {
        assert_eq!(Name::new(b""), Err(CtrlError::BadName));
        assert_eq!(Name::new(&[b'a'; 65]), Err(CtrlError::BadName));
        assert_eq!(Name::new(b"a b"), Err(CtrlError::BadName));
        assert_eq!(Name::new(b"a\0"), Err(CtrlError::BadName));
        assert_eq!(Name::new(&[0x7f]), Err(CtrlError::BadName));
        assert!(Name::new(b"rina.app/1:x").is_ok());
        // A bad name inside an ALLOC_REQ, and a dst_len past the end.
        let mut buf = [0u8; MAX_CTRL_LEN];
        let n = Ctrl::AllocReq {
            xid: 1,
            channel: 9,
            window: 0,
            dst: name("ab"),
            src: None,
        }
        .encode(&mut buf);
        let mut b = buf;
        b[16] = b' ';
        assert_eq!(Ctrl::parse(&b[..n]), Err(CtrlError::BadName));
        let mut b = buf;
        b[10] = 3;
        assert_eq!(Ctrl::parse(&b[..n]), Err(CtrlError::Truncated));
        let mut b = buf;
        b[10] = 0;
        assert_eq!(Ctrl::parse(&b[..n]), Err(CtrlError::BadName));
    }

    /// Random bytes never panic, and whatever parses re-encodes to the same
    /// bytes (parsing is exact).
    #[test]
    fn random_bytes_parse_exactly_or_not_at_all() {
        let mut rng = crate::test_rng::Rng(0x2545_f491_4f6c_dd1d);
        let mut buf = [0u8; MAX_CTRL_LEN];
        let mut out = [0u8; MAX_CTRL_LEN];
        let mut parsed = 0;
        for i in 0..200_000 {
            let seed = rng.next();
            let len = (seed % (MAX_CTRL_LEN as u64 + 1)) as usize;
            // Start from a valid message now and then, then mutate a byte.
            let base = samples()[i % 8];
            let n = base.encode(&mut buf);
            let len = if i % 2 == 0 { n } else { len };
            buf[(seed >> 8) as usize % MAX_CTRL_LEN] = (seed >> 16) as u8;
            if let Ok(m) = Ctrl::parse(&buf[..len]) {
                parsed += 1;
                let k = m.encode(&mut out);
                assert_eq!(&out[..k], &buf[..len]);
            }
        }
        assert!(parsed > 1000);
    }
}
