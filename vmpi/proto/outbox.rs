// SPDX-License-Identifier: GPL-2.0

//! The queue of control messages (channel 0) one side sends, in order, in
//! storage its caller allocates once: large enough that nothing our own
//! users or a well-behaved peer cause is ever dropped
//! ([`Outbox::storage_len`]); a peer that floods us with requests while it
//! reads none of our answers fills it, and what does not fit is dropped
//! (counted by [`super::endpoint::Endpoint`] as `ctrl_dropped`).
//!
//! Messages are kept encoded, one record each: its length, its kind, its
//! bytes, in a ring of bytes (most messages are 12 to 20 bytes long, an
//! `ALLOC_REQ` up to [`MAX_CTRL_LEN`]).

use core::ops::DerefMut;

use super::ctrl::{Ctrl, MAX_CTRL_LEN};
use super::wire::{next_fragment, Config, Header, CONTROL_CHANNEL, HDR_LEN};

/// Bytes a record takes besides its message: the length and the kind.
const REC_HDR: usize = 2;
/// The longest encoded `ALLOC_RESP`, `DEALLOC`, `DEALLOC_ACK` and `CREDIT`.
pub const SMALL_LEN: usize = 16;
/// The length of an encoded `HELLO`.
pub const HELLO_LEN: usize = 20;
/// What queued `CREDIT`s may hold together: beyond it a `CREDIT` waits
/// ([`Outbox::push_credit`] fails, and the endpoint keeps it owed).
pub const CREDIT_ROOM: usize = 16 * (REC_HDR + SMALL_LEN);

// A record's length is a byte.
const _: () = assert!(MAX_CTRL_LEN < 256);

const KIND_OTHER: u8 = 0;
const KIND_CREDIT: u8 = 1;

/// The queue of control messages to send, in order, in storage `S` (a
/// byte buffer of at least [`Outbox::storage_len`] bytes).
pub struct Outbox<S> {
    buf: S,
    /// Offset of the first record.
    head: usize,
    /// Bytes of the records.
    used: usize,
    /// Number of records.
    count: usize,
    /// Bytes of the first message already sent.
    sent: usize,
    /// Bytes of the `CREDIT` records.
    credit_bytes: usize,
}

/// The outbox is full (the peer floods requests, or our rings are stuck).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

impl<S: DerefMut<Target = [u8]>> Outbox<S> {
    /// The storage a device configured as `cfg` needs so that nothing our
    /// users or a well-behaved peer cause is dropped while the peer reads
    /// nothing. About one channel, at most these are queued at once:
    ///
    /// - a channel of the peer's half: our `ALLOC_RESP` to its request,
    ///   our `DEALLOC` (our user closed the flow), our `DEALLOC_ACK` (the
    ///   peer closed it too, or cancelled its request); the peer asks for
    ///   the channel again only after it has our answer, so after these
    ///   were sent;
    /// - a channel of our half: our `DEALLOC_ACK` of the peer's `DEALLOC`
    ///   (the peer closed the flow: the channel is free), our `ALLOC_REQ`
    ///   for a new flow on it, and our `DEALLOC` of that (given up, or
    ///   timed out); the channel is free again only once the peer has
    ///   that `DEALLOC`: its ACK, or its own crossing one (then our ACK
    ///   of it waits too, but the channel stays closing until the ACK of
    ///   ours: [`super::link::Event::CloseCrossed`]).
    ///
    /// So three short messages per channel, one `ALLOC_REQ` per channel of
    /// our half, two `HELLO`s (ours after a restart, which empties the
    /// queue, and the answer to the peer's, whose restart empties the
    /// queue of what it no longer knows) and the message partly sent that
    /// such an emptying keeps; `CREDIT`s have [`CREDIT_ROOM`] of their
    /// own. For rvio's 256 channels: 32,990 bytes.
    pub fn storage_len(cfg: &Config) -> usize {
        let n = usize::from(cfg.num_channels);
        let own = n - n / 2;
        n * 3 * (REC_HDR + SMALL_LEN)
            + (own + 1) * (REC_HDR + MAX_CTRL_LEN)
            + 2 * (REC_HDR + HELLO_LEN)
            + CREDIT_ROOM
    }

    /// An empty outbox in `buf`.
    pub fn new(buf: S) -> Self {
        Self {
            buf,
            head: 0,
            used: 0,
            count: 0,
            sent: 0,
            credit_bytes: 0,
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of waiting messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Bytes the waiting messages take (with their records).
    pub fn bytes(&self) -> usize {
        self.used
    }

    /// Forgets every waiting message.
    pub fn clear(&mut self) {
        self.head = 0;
        self.used = 0;
        self.count = 0;
        self.sent = 0;
        self.credit_bytes = 0;
    }

    /// Forgets every waiting message but a first one partly sent (the
    /// peer restarted: what we queued was about flows it forgot; the rest
    /// of a message it has started must still come).
    pub fn clear_unstarted(&mut self) {
        if self.count == 0 || self.sent == 0 {
            self.clear();
            return;
        }
        let (len, kind) = self.first();
        self.used = REC_HDR + len;
        self.count = 1;
        self.credit_bytes = if kind == KIND_CREDIT { self.used } else { 0 };
    }

    /// Bytes of the first message not yet sent (0 if none).
    pub fn head_remaining(&self) -> usize {
        if self.count == 0 {
            return 0;
        }
        self.first().0 - self.sent
    }

    /// Queues a message.
    pub fn push(&mut self, m: &Ctrl) -> Result<(), OutboxFull> {
        self.push_kind(m, KIND_OTHER)
    }

    /// Queues a `CREDIT`, if `CREDIT`s have room left ([`CREDIT_ROOM`]).
    pub fn push_credit(&mut self, m: &Ctrl) -> Result<(), OutboxFull> {
        self.push_kind(m, KIND_CREDIT)
    }

    fn push_kind(&mut self, m: &Ctrl, kind: u8) -> Result<(), OutboxFull> {
        let mut msg = [0u8; MAX_CTRL_LEN];
        let len = m.encode(&mut msg);
        let need = REC_HDR + len;
        if self.used + need > self.buf.len()
            || (kind == KIND_CREDIT && self.credit_bytes + need > CREDIT_ROOM)
        {
            return Err(OutboxFull);
        }
        // MAX_CTRL_LEN < 256 (asserted above): the length fits its byte.
        let at = self.head + self.used;
        self.write_at(at, &[len as u8, kind]);
        self.write_at(at + REC_HDR, &msg[..len]);
        self.used += need;
        self.count += 1;
        if kind == KIND_CREDIT {
            self.credit_bytes += need;
        }
        Ok(())
    }

    /// The first record's message length and kind (`count > 0`).
    fn first(&self) -> (usize, u8) {
        let mut h = [0u8; REC_HDR];
        self.read_at(self.head, &mut h);
        (usize::from(h[0]), h[1])
    }

    /// Removes the first record.
    fn pop(&mut self) {
        let (len, kind) = self.first();
        let need = REC_HDR + len;
        self.head = self.wrap(self.head + need);
        self.used -= need;
        self.count -= 1;
        self.sent = 0;
        if kind == KIND_CREDIT {
            self.credit_bytes -= need;
        }
    }

    /// Ring offset `at` (below twice the storage's length: an offset in a
    /// record) as an index of the storage. (No `%`: that would be a
    /// division by a length the compiler cannot prove nonzero.)
    fn wrap(&self, at: usize) -> usize {
        let cap = self.buf.len();
        if at >= cap {
            at - cap
        } else {
            at
        }
    }

    /// Copies `out.len()` bytes from ring offset `at` ([`Outbox::wrap`]).
    fn read_at(&self, at: usize, out: &mut [u8]) {
        let cap = self.buf.len();
        let at = self.wrap(at);
        let first = (cap - at).min(out.len());
        let (a, b) = out.split_at_mut(first);
        a.copy_from_slice(&self.buf[at..at + first]);
        b.copy_from_slice(&self.buf[..b.len()]);
    }

    /// Copies `src` to ring offset `at` ([`Outbox::wrap`]); the caller
    /// checked that it fits.
    fn write_at(&mut self, at: usize, src: &[u8]) {
        let cap = self.buf.len();
        let at = self.wrap(at);
        let first = (cap - at).min(src.len());
        let (a, b) = src.split_at(first);
        self.buf[at..at + first].copy_from_slice(a);
        self.buf[..b.len()].copy_from_slice(b);
    }

    /// Writes the next fragment of the first message into `out` (a receive
    /// buffer of the peer, at least `min_rx_buf` bytes): header and as much
    /// payload as fits. Returns the bytes written, `None` if there is
    /// nothing to send or `out` is too small.
    pub fn next_fragment(&mut self, out: &mut [u8], min_rx_buf: u32) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let (len, _) = self.first();
        let (n, more) = next_fragment(len - self.sent, out.len(), min_rx_buf)?;
        out[..HDR_LEN].copy_from_slice(
            &Header {
                channel: CONTROL_CHANNEL,
                more,
                cont: self.sent > 0,
            }
            .to_bytes(),
        );
        self.read_at(
            self.head + REC_HDR + self.sent,
            &mut out[HDR_LEN..HDR_LEN + n],
        );
        self.sent += n;
        if !more {
            self.pop();
        }
        Some(HDR_LEN + n)
    }

    /// The peer lost a fragment of the first message (its buffer was
    /// bad): the rest of it is not sent. Returns whether a message was cut.
    pub fn abandon_partial(&mut self) -> bool {
        if self.count == 0 || self.sent == 0 {
            return false;
        }
        self.pop();
        true
    }

    /// The first message whole, as one fragment (header and message), for
    /// a sender whose buffers have no size limit; it is removed.
    pub fn pop_whole(&mut self, out: &mut [u8; HDR_LEN + MAX_CTRL_LEN]) -> Option<usize> {
        self.next_fragment(out, HDR_LEN as u32 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ctrl::{AllocResult, Name, MAX_NAME};
    use super::*;
    use crate::test_rng::Rng;
    use std::collections::VecDeque;

    fn name(len: usize) -> Name {
        Name::new(&[b'n'; MAX_NAME][..len]).unwrap()
    }

    fn random_msg(rng: &mut Rng) -> Ctrl {
        let r = rng.next();
        let channel = (r >> 8) as u16;
        match r % 5 {
            0 => Ctrl::AllocReq {
                xid: r as u32,
                channel,
                window: 1 << 20,
                dst: name(1 + (r >> 24) as usize % MAX_NAME),
                src: (r & 64 != 0).then(|| name(1 + (r >> 32) as usize % MAX_NAME)),
            },
            1 => Ctrl::AllocResp {
                xid: r as u32,
                channel,
                result: AllocResult::Refused,
                window: 0,
            },
            2 => Ctrl::Dealloc { channel },
            3 => Ctrl::Credit {
                channel,
                consumed: (r >> 32) as u32,
            },
            _ => Ctrl::Hello {
                reply: r & 1 != 0,
                epoch: 1,
                num_channels: 256,
                max_sdu: 65535,
            },
        }
    }

    fn encoded(m: &Ctrl) -> Vec<u8> {
        let mut b = [0u8; MAX_CTRL_LEN];
        let n = m.encode(&mut b);
        b[..n].to_vec()
    }

    #[test]
    fn message_lengths_fit_what_is_reserved_for_them() {
        let long = name(MAX_NAME);
        let req = Ctrl::AllocReq {
            xid: 1,
            channel: 1,
            window: 1,
            dst: long,
            src: Some(long),
        };
        assert_eq!(encoded(&req).len(), MAX_CTRL_LEN);
        let hello = Ctrl::Hello {
            reply: true,
            epoch: 1,
            num_channels: 4,
            max_sdu: 65535,
        };
        assert_eq!(encoded(&hello).len(), HELLO_LEN);
        for m in [
            Ctrl::AllocResp {
                xid: 1,
                channel: 1,
                result: AllocResult::Accepted,
                window: 1,
            },
            Ctrl::Dealloc { channel: 1 },
            Ctrl::DeallocAck { channel: 1 },
            Ctrl::Credit {
                channel: 1,
                consumed: 1,
            },
        ] {
            assert!(encoded(&m).len() <= SMALL_LEN, "{m:?}");
        }
        let cfg = Config::new(256).unwrap();
        assert_eq!(Outbox::<Vec<u8>>::storage_len(&cfg), 32_990);
    }

    /// Random messages through a small ring, in fragments of random sizes:
    /// what comes out is what went in, in order, across every wrap.
    #[test]
    fn random_messages_come_out_whole_and_in_order() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for cap in [0, 1, 17, 150, 151, 300, 1000] {
            let mut ob = Outbox::new(vec![0u8; cap]);
            let mut model: VecDeque<(Vec<u8>, bool)> = VecDeque::new();
            let mut got = Vec::new();
            let mut frag = [0u8; 64];
            for _ in 0..20_000 {
                if rng.below(3) != 0 {
                    let m = random_msg(&mut rng);
                    let credit = matches!(m, Ctrl::Credit { .. });
                    let before = ob.bytes();
                    let r = if credit {
                        ob.push_credit(&m)
                    } else {
                        ob.push(&m)
                    };
                    let e = encoded(&m);
                    let credits: usize = model
                        .iter()
                        .filter(|(_, c)| *c)
                        .map(|(b, _)| b.len() + REC_HDR)
                        .sum();
                    let fits = before + e.len() + REC_HDR <= cap
                        && (!credit || credits + e.len() + REC_HDR <= CREDIT_ROOM);
                    assert_eq!(r.is_ok(), fits);
                    if r.is_ok() {
                        model.push_back((e, credit));
                    }
                } else {
                    let size = HDR_LEN + 1 + rng.below((frag.len() - HDR_LEN) as u64) as usize;
                    if let Some(n) = ob.next_fragment(&mut frag[..size], HDR_LEN as u32 + 1) {
                        let h = Header::parse(&frag[..n]).unwrap();
                        assert_eq!(h.channel, CONTROL_CHANNEL);
                        assert_eq!(h.cont, !got.is_empty());
                        got.extend_from_slice(&frag[HDR_LEN..n]);
                        if !h.more {
                            let (want, _) = model.pop_front().unwrap();
                            assert_eq!(got, want);
                            got.clear();
                        }
                    } else {
                        assert!(ob.is_empty() && model.is_empty());
                    }
                }
                assert_eq!(ob.len(), model.len());
                let bytes: usize = model.iter().map(|(b, _)| b.len() + REC_HDR).sum();
                assert_eq!(ob.bytes(), bytes);
                assert!(bytes <= cap);
            }
        }
    }

    #[test]
    fn credits_have_a_room_of_their_own() {
        let mut ob = Outbox::new(vec![0u8; 4096]);
        let credit = Ctrl::Credit {
            channel: 3,
            consumed: 9,
        };
        let mut n = 0;
        while ob.push_credit(&credit).is_ok() {
            n += 1;
        }
        assert_eq!(n, CREDIT_ROOM / (REC_HDR + encoded(&credit).len()));
        // Other messages still fit.
        ob.push(&Ctrl::Dealloc { channel: 3 }).unwrap();
        // Sending a credit makes room for one.
        let mut frag = [0u8; 64];
        ob.next_fragment(&mut frag, 8).unwrap();
        ob.push_credit(&credit).unwrap();
        assert!(ob.push_credit(&credit).is_err());
    }

    #[test]
    fn a_peer_restart_keeps_only_a_message_partly_sent() {
        let mut ob = Outbox::new(vec![0u8; 4096]);
        ob.push(&Ctrl::Dealloc { channel: 3 }).unwrap();
        ob.push_credit(&Ctrl::Credit {
            channel: 4,
            consumed: 1,
        })
        .unwrap();
        ob.clear_unstarted();
        assert!(ob.is_empty());
        ob.push_credit(&Ctrl::Credit {
            channel: 4,
            consumed: 1,
        })
        .unwrap();
        ob.push(&Ctrl::Dealloc { channel: 3 }).unwrap();
        // Half of the CREDIT went out.
        let mut frag = [0u8; 12];
        assert_eq!(ob.next_fragment(&mut frag, 8), Some(12));
        ob.clear_unstarted();
        assert_eq!((ob.len(), ob.head_remaining()), (1, 8));
        assert_eq!(ob.bytes(), REC_HDR + 16);
        let mut rest = [0u8; 64];
        assert_eq!(ob.next_fragment(&mut rest, 8), Some(12));
        let h = Header::parse(&rest).unwrap();
        assert!(h.cont && !h.more);
        assert!(ob.is_empty() && ob.bytes() == 0);
        // Its credit room came back.
        while ob
            .push_credit(&Ctrl::Credit {
                channel: 4,
                consumed: 1,
            })
            .is_ok()
        {}
        assert_eq!(ob.bytes(), CREDIT_ROOM);
    }
}
