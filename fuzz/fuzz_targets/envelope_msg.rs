// SPDX-License-Identifier: GPL-2.0

//! Bytes a hostile peer puts on the envelope channel, a grantq chain or a
//! copyq chain (a copy request or a posted receive), and a delivery
//! header the host writes: parsing never panics, what parses re-encodes
//! to the same bytes (a posted receive fits the chain), each side's parser takes exactly its direction's messages, and
//! a table the replica takes holds only valid, sorted entries; an
//! announcement is a broadcast frame announcing its own source MAC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvio_pure::envelope_proto::grant::{
    CopyRefusal, CopyRequest, GrantHeader, GrantRefusal, COPY_REQ_LEN, GRANT_HDR_LEN, STATUS_LEN,
};
use rvio_pure::envelope_proto::msg::{frame_prefix, Msg, MsgError};
use rvio_pure::envelope_proto::posted::{CopyAsk, Delivery, DELIVERY_LEN};
use rvio_pure::envelope_proto::switch::announcement;
use rvio_pure::envelope_proto::table::{Entry, Replica, MAX_ENTRIES};

fuzz_target!(|data: &[u8]| {
    let any = Msg::parse(data);
    let (guest, host) = (Msg::parse_from_guest(data), Msg::parse_from_host(data));
    match any {
        Ok(m @ (Msg::Frame { .. } | Msg::TableReq)) => assert_eq!(guest, Ok(m)),
        _ => assert!(guest.is_err()),
    }
    match any {
        Ok(m @ (Msg::Frame { .. } | Msg::Envelope(_) | Msg::Table(_))) => {
            assert_eq!(host, Ok(m))
        }
        _ => assert!(host.is_err()),
    }
    match any {
        Ok(Msg::Envelope(e)) => assert_eq!(&e.encode()[..], data),
        Ok(Msg::Frame { meta, frame }) => {
            assert_eq!(&frame_prefix(&meta)[..], &data[..16]);
            assert_eq!(frame.len(), data.len() - 16);
        }
        Ok(Msg::Table(t)) => {
            assert_ne!(t.epoch, 0);
            let mut r = Replica::new(vec![Entry::default(); MAX_ENTRIES]);
            // One with room for 4 entries takes the same table, or
            // refuses it whole for its size.
            let mut small = Replica::new(vec![Entry::default(); 4]);
            let small_took = small.load(&t, false);
            let took = r.load(&t, false);
            if t.entries.len() / 12 <= 4 {
                assert_eq!(small_took, took);
            } else {
                assert_eq!(small_took, Err(MsgError::Length));
                assert!(!small.loaded());
            }
            if took == Ok(true) {
                assert_eq!((r.epoch(), r.generation()), (t.epoch, t.generation));
                let e = r.entries();
                assert!(e.windows(2).all(|w| w[0].mac < w[1].mac));
                for x in e {
                    assert!(r.lookup(&x.mac).is_some());
                }
            }
        }
        _ => {}
    }
    if data.len() >= GRANT_HDR_LEN {
        let (h, rest) = data.split_at(GRANT_HDR_LEN);
        match GrantHeader::parse(h, GRANT_HDR_LEN + rest.len(), STATUS_LEN) {
            Ok(g) => assert_eq!(&g.encode()[..], h),
            Err(e) => assert_eq!(e, GrantRefusal::Refused),
        }
        assert_eq!(
            GrantHeader::parse(h, GRANT_HDR_LEN + rest.len(), STATUS_LEN - 1),
            Err(GrantRefusal::NoStatus)
        );
    }
    if data.len() >= COPY_REQ_LEN {
        match CopyRequest::parse(&data[..COPY_REQ_LEN], STATUS_LEN + data.len()) {
            Ok((r, room)) => {
                assert_eq!(&r.encode()[..], &data[..COPY_REQ_LEN]);
                assert_eq!(room, data.len());
            }
            Err(e) => assert_eq!(e, CopyRefusal::BadRequest),
        }
    }
    if data.len() >= COPY_REQ_LEN {
        // The chain's writable bytes: 4 (a status) and more, with the input.
        let (req, writable) = (
            &data[..COPY_REQ_LEN],
            data.len() - COPY_REQ_LEN + STATUS_LEN,
        );
        match CopyAsk::parse(req, writable) {
            Ok(CopyAsk::Post(room)) => {
                assert_eq!(&CopyAsk::post_request(room)[..], req);
                assert!(room >= 14 && DELIVERY_LEN + room as usize + STATUS_LEN <= writable);
            }
            Ok(CopyAsk::Cancel) => {
                assert_eq!(&CopyAsk::post_request(0)[..], req);
                assert_eq!(writable, STATUS_LEN);
            }
            Ok(CopyAsk::Copy(r, room)) => {
                assert_eq!(CopyRequest::parse(req, writable), Ok((r, room)));
            }
            Err(e) => assert_eq!(e, CopyRefusal::BadRequest),
        }
    }
    if data.len() >= DELIVERY_LEN + 2 {
        let room = u16::from_le_bytes([data[0], data[1]]) as u32;
        let h = &data[2..2 + DELIVERY_LEN];
        if let Some(d) = Delivery::parse(h, room) {
            assert_eq!(&d.encode()[..], h);
            assert!(d.frame_len <= room && d.frame_len >= 14);
        }
    }
    if let Some(m) = announcement(data) {
        assert_eq!(&data[..6], &[0xff; 6]);
        assert_eq!(&data[6..12], &m);
        assert!(m[0] & 1 == 0 && m != [0; 6]);
    }
});
