// SPDX-License-Identifier: GPL-2.0

//! A control SDU from a hostile peer: parsing never panics, and whatever
//! parses is exactly the encoding of what it parsed to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvio_pure::vmpi_proto::ctrl::{Ctrl, MAX_CTRL_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Ctrl::parse(data) {
        let mut out = [0u8; MAX_CTRL_LEN];
        let n = m.encode(&mut out);
        assert_eq!(&out[..n], data);
    }
});
