// SPDX-License-Identifier: GPL-2.0

//! A stream of rxq/txq fragments from a hostile peer, through the whole
//! receive path of the pure logic: header parsing, reassembly, control
//! parsing, the link state machine and the credit check. Input: fragments
//! as `[le16 length][bytes]`, the first byte choosing the role. Nothing
//! panics, nothing accepted exceeds the limits, and state stays in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvio_pure::vmpi_proto::ctrl::Ctrl;
use rvio_pure::vmpi_proto::link::{Chan, Link, Role};
use rvio_pure::vmpi_proto::wire::{Config, DropReason, Header, Reassembler, HDR_LEN};

const N: u16 = 16;
const MAX_SDU: u32 = 65535;

fuzz_target!(|data: &[u8]| {
    let Some((&role, mut rest)) = data.split_first() else {
        return;
    };
    let role = if role & 1 == 0 {
        Role::Host
    } else {
        Role::Guest
    };
    let Ok(cfg) = Config::new(N) else { return };
    let mut link = Link::new(role, cfg, 7);
    let mut chans = [Chan::Free; N as usize];
    let mut r = Reassembler::new(MAX_SDU, N);
    // The message being reassembled (only its first bytes are kept: enough
    // for any control message).
    let mut msg = [0u8; 256];
    // The message open in the reassembler: its channel and length.
    let mut open: Option<(u16, usize)> = None;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let frag = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[2 + frag.len()..];
        // A one-byte fragment (never a header): a fragment the transport
        // lost.
        if frag.len() == 1 {
            r.lost();
            open = None;
            continue;
        }
        let Ok(hdr) = Header::parse(frag) else {
            continue;
        };
        let payload = &frag[HDR_LEN..];
        let p = r.push(hdr, payload.len());
        let Some(a) = p.accepted else {
            // Dropped or skipped: nothing open any more, but after a
            // fragment for no channel (the open message stays).
            if p.dropped != Some(DropReason::BadChannel) {
                open = None;
            }
            continue;
        };
        assert!(a.total <= MAX_SDU as usize && a.channel < N);
        // Only a first fragment starts a message; a continuation continues
        // the one open on its channel.
        assert!(hdr.cont || a.offset == 0);
        assert!(!hdr.cont || open == Some((a.channel, a.offset)));
        open = (!a.complete).then_some((a.channel, a.total));
        if a.offset < msg.len() {
            let end = (a.offset + payload.len()).min(msg.len());
            msg[a.offset..end].copy_from_slice(&payload[..end - a.offset]);
        }
        if !a.complete {
            continue;
        }
        if a.channel == 0 {
            if a.total > msg.len() {
                continue;
            }
            if let Ok(m) = Ctrl::parse(&msg[..a.total]) {
                let (_reply, _ev) = link.on_ctrl(&mut chans, m);
                // Exercise the local side too: accept whatever came in.
                for c in 0..N {
                    let _ = link.accept(&mut chans, c, 0);
                }
            }
        } else if link.on_data(&mut chans, a.channel, a.total).is_ok() {
            let _ = link.consumed(&mut chans, a.channel, a.total);
        }
        if let Some((_c, _m)) = link.expire(&mut chans, u64::MAX) {}
    }
});
