// SPDX-License-Identifier: GPL-2.0

//! Lines written to the envelope switch's `table` file: parsing never
//! panics, an entry that is taken reads back as a line that parses to the
//! same entry (the route as written), and the table stays sorted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvio_pure::envelope_proto::table::{parse_line, Entry, Table, TableCmd, MAX_ENTRIES};

fuzz_target!(|data: &[u8]| {
    // The first byte sizes the table (1 to 64 slots, or MAX_ENTRIES for
    // 0), so that full tables are reached too.
    let Some((&size, data)) = data.split_first() else {
        return;
    };
    let slots = if size == 0 {
        MAX_ENTRIES
    } else {
        usize::from(size % 64) + 1
    };
    let mut t = Table::new(1, vec![Entry::default(); slots]);
    for line in data.split(|&b| b == b'\n') {
        if let Ok(cmd) = parse_line(line) {
            let _ = t.apply(cmd, |d| d % 2 == 1);
            if let TableCmd::Set { mac, .. } = cmd {
                if let Some(e) = t.lookup(&mac) {
                    let shown = format!("{}", e);
                    match parse_line(shown.as_bytes()) {
                        Ok(TableCmd::Set {
                            mac: m,
                            domain,
                            route,
                            vlan,
                        }) => {
                            assert_eq!((m, domain, route, vlan), (e.mac, e.domain, e.route, e.vlan))
                        }
                        other => panic!("{:?} reads back as {:?}", shown, other),
                    }
                }
            }
        }
    }
    assert!(t.entries().windows(2).all(|w| w[0].mac < w[1].mac));
});
