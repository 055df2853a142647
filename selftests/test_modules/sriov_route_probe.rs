// SPDX-License-Identifier: GPL-2.0

//! Test module: an in-kernel user of sriov_hook's route lookup
//! (`rvio_sriov_route()`, `include/rvio/sriov_hook.h`), as the forwarding
//! table will be. At load it looks up the MACs the tests assign
//! (02:52:56:00:10:01, and 02:52:56:00:99:99 which no policy has) and logs
//! each route; selftests/sriov/netdevsim_hook.sh reads the log.

use kernel::prelude::*;

#[path = "bindings_generated.rs"]
mod bindings;

module! {
    type: SriovRouteProbe,
    name: "sriov_route_probe",
    author: "rvio developers",
    description: "rvio selftest: looks up routes through sriov_hook's in-kernel API",
    license: "GPL",
}

const MACS: [[u8; 6]; 2] = [
    [0x02, 0x52, 0x56, 0, 0x10, 0x01],
    [0x02, 0x52, 0x56, 0, 0x99, 0x99],
];

struct SriovRouteProbe;

impl kernel::Module for SriovRouteProbe {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        for mac in MACS.iter() {
            let mut r = bindings::rvio_sriov_route::default();
            // SAFETY: `mac` is 6 bytes; `r` is valid for a write; process
            // context, not under RTNL.
            let ret = unsafe { bindings::rvio_sriov_route(mac.as_ptr(), &mut r) };
            let m = mac;
            if ret < 0 {
                pr_info!(
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}: error {}\n",
                    m[0],
                    m[1],
                    m[2],
                    m[3],
                    m[4],
                    m[5],
                    ret
                );
                continue;
            }
            // The kernel's `char` is unsigned: the name's bytes as they are.
            let len = r.pf.iter().position(|&c| c == 0).unwrap_or(r.pf.len());
            let pf = core::str::from_utf8(&r.pf[..len]).unwrap_or("?");
            pr_info!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}: domain {} {} {} vf {}\n",
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5],
                r.domain,
                if r.via_vf != 0 {
                    "direct via"
                } else {
                    "software, was"
                },
                pf,
                r.vf
            );
        }
        Ok(SriovRouteProbe)
    }
}
