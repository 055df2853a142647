// SPDX-License-Identifier: GPL-2.0

//! Bytes a hostile peer puts on the envelope channel, a grantq chain or a
//! copyq chain: parsing never panics, what parses re-encodes to the same
//! bytes, and a table the replica takes holds only valid, sorted entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvio_pure::envelope_proto::grant::{CopyRequest, GrantHeader, COPY_REQ_LEN, GRANT_HDR_LEN};
use rvio_pure::envelope_proto::msg::{frame_prefix, Msg};
use rvio_pure::envelope_proto::table::Replica;

fuzz_target!(|data: &[u8]| {
    match Msg::parse(data) {
        Ok(Msg::Envelope(e)) => assert_eq!(&e.encode()[..], data),
        Ok(Msg::Frame { meta, frame }) => {
            assert_eq!(&frame_prefix(&meta)[..], &data[..16]);
            assert_eq!(frame.len(), data.len() - 16);
        }
        Ok(Msg::Table {
            generation,
            your_domain,
            entries,
        }) => {
            let mut r = Box::<Replica>::default();
            if r.load(generation, your_domain, entries, false) == Ok(true) {
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
        if let Some(g) = GrantHeader::parse(h, GRANT_HDR_LEN + rest.len(), 4) {
            assert_eq!(&g.encode()[..], h);
        }
    }
    if data.len() >= COPY_REQ_LEN {
        if let Ok((r, room)) = CopyRequest::parse(&data[..COPY_REQ_LEN], 4 + data.len()) {
            assert_eq!(&r.encode()[..], &data[..COPY_REQ_LEN]);
            assert_eq!(room, data.len());
        }
    }
});
