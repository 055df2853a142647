// SPDX-License-Identifier: GPL-2.0

//! A line written to the SR-IOV hook's sysfs files (root's, but still
//! arbitrary bytes): parsing never panics, and a policy that parses reads
//! back as itself from what the `policy` file shows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvio_pure::sriov_policy::{parse_numvfs, parse_pf, parse_policy, PolicyCmd};

fuzz_target!(|data: &[u8]| {
    let _ = parse_pf(data);
    let _ = parse_numvfs(data);
    if let Ok(PolicyCmd::Set { pf, vf, policy }) = parse_policy(data) {
        let shown = format!("{} {} {}", pf, vf, policy);
        assert_eq!(
            parse_policy(shown.as_bytes()),
            Ok(PolicyCmd::Set { pf, vf, policy })
        );
    }
});
