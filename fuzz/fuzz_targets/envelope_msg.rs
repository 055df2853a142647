// SPDX-License-Identifier: GPL-2.0

//! Bytes a hostile peer puts on the envelope channel, a grantq chain or a
//! copyq chain: parsing never panics, what parses re-encodes to the same
//! bytes, each side's parser takes exactly its direction's messages, and
//! a table the replica takes holds only valid, sorted entries; an
//! announcement is a broadcast frame announcing its own source MAC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvio_pure::envelope_proto::grant::{
    CopyRefusal, CopyRequest, GrantHeader, GrantRefusal, COPY_REQ_LEN, GRANT_HDR_LEN, STATUS_LEN,
};
use rvio_pure::envelope_proto::msg::{frame_prefix, Msg};
use rvio_pure::envelope_proto::switch::announcement;
use rvio_pure::envelope_proto::table::Replica;

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
            let mut r = Box::<Replica>::default();
            if r.load(&t, false) == Ok(true) {
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
    if let Some(m) = announcement(data) {
        assert_eq!(&data[..6], &[0xff; 6]);
        assert_eq!(&data[6..12], &m);
        assert!(m[0] & 1 == 0 && m != [0; 6]);
    }
});
