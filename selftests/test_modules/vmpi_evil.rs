// SPDX-License-Identifier: GPL-2.0

//! Test module: a misbehaving VMPI guest. A virtio driver for device id 63
//! (loaded instead of `vmpi_guest`, never autoloaded) that sends the host
//! a fixed script of bad buffers on the txq: malformed headers, channel ids
//! out of range or unbound, a device-writable txq descriptor, oversized
//! buffers and messages, a broken fragment sequence, garbage control
//! messages, and a flood of `HELLO`s while it posts few rxq buffers, so the
//! host's replies overflow. selftests/vmpi/bad_peer.sh checks the host's
//! drop counters against the script (`SCRIPT` below).

use kernel::c_str;
use kernel::prelude::*;
use kernel::str::CStr;

#[path = "bindings_generated.rs"]
mod bindings;
#[path = "../../vmpi/proto/mod.rs"]
pub mod proto;
#[path = "../../rust/virtio.rs"]
pub mod virtio;
#[path = "../../rust/work_handle.rs"]
pub mod work_handle;

use proto::ctrl::{Ctrl, MAX_CTRL_LEN};
use proto::wire::{Header, DEVICE_ID, HDR_LEN, RXQ, TXQ};

module! {
    type: VmpiEvilModule,
    name: "vmpi_evil",
    author: "rvio developers",
    description: "rvio selftest: a misbehaving VMPI guest driver",
    license: "GPL",
}

/// rxq buffers posted (never reposted).
const RX_BUFS: usize = 8;
/// `HELLO`s in the flood: more replies than the host's control queue
/// holds (`vmpi/proto/outbox.rs`: 22 bytes each in 32,990).
const HELLOS: usize = 4096;
/// txq buffers the flood goes out in, each posted again once used.
const FLOOD_BUFS: usize = 64;
const CHANNELS: u16 = 256;

/// A buffer: device-writable (`In`) or device-readable (`Out`; `Flood`:
/// a `HELLO` of the flood, posted again once used).
enum Buf {
    In(KVec<u8>),
    Out(KVec<u8>),
    Flood(KVec<u8>),
}

// SAFETY: the slices are a KVec's buffer, which neither moves nor changes
// unless the `Buf` is mutated.
unsafe impl virtio::Buffer for Buf {
    fn in_parts(&mut self) -> (&mut [u8], &mut [u8]) {
        match self {
            Buf::In(d) | Buf::Out(d) | Buf::Flood(d) => (d, &mut []),
        }
    }
    fn out_parts(&self) -> (&[u8], &[u8]) {
        match self {
            Buf::In(d) | Buf::Out(d) | Buf::Flood(d) => (d, &[]),
        }
    }
}

/// A fragment: a raw header word, then `len` payload bytes.
fn frag(word: u32, len: usize) -> Result<KVec<u8>> {
    let mut v = KVec::from_elem(0x5au8, HDR_LEN + len, GFP_KERNEL)?;
    v[..HDR_LEN].copy_from_slice(&word.to_le_bytes());
    Ok(v)
}

/// The header of a message's first fragment.
fn hdr(channel: u16, more: bool) -> u32 {
    u32::from_le_bytes(
        Header {
            channel,
            more,
            cont: false,
        }
        .to_bytes(),
    )
}

/// The header of a message's next fragment.
fn cont(channel: u16, more: bool) -> u32 {
    u32::from_le_bytes(
        Header {
            channel,
            more,
            cont: true,
        }
        .to_bytes(),
    )
}

/// A control message on channel 0 (its first `cut` bytes if shorter),
/// passed through `tamper`.
fn ctrl(m: &Ctrl, cut: usize, tamper: impl FnOnce(&mut [u8])) -> Result<KVec<u8>> {
    let mut buf = [0u8; MAX_CTRL_LEN];
    let n = m.encode(&mut buf).min(cut);
    tamper(&mut buf[..n]);
    let mut v = frag(hdr(0, false), 0)?;
    v.extend_from_slice(&buf[..n], GFP_KERNEL)?;
    Ok(v)
}

/// The script, in txq order. Expected on the host side (a fresh device):
/// drops_bad_header 2, drops_bad_channel 3, drops_bad_desc 1,
/// drops_oversized 2, drops_bad_fragment 1, drops_bad_control 5,
/// ctrl_dropped > 0.
fn script(out: &mut KVec<Buf>) -> Result {
    let mut push = |b: Buf| out.push(b, GFP_KERNEL);
    // bad_header: shorter than a header; a reserved header bit.
    push(Buf::Out(KVec::from_elem(5u8, 2, GFP_KERNEL)?))?;
    push(Buf::Out(frag(hdr(5, false) | 1 << 16, 10)?))?;
    // bad_channel: out of range; a channel nobody bound.
    push(Buf::Out(frag(hdr(CHANNELS + 44, false), 10)?))?;
    push(Buf::Out(frag(hdr(5, false), 10)?))?;
    // bad_desc: a txq buffer the device could write.
    push(Buf::In(KVec::from_elem(0u8, 64, GFP_KERNEL)?))?;
    // oversized: one buffer beyond header + max SDU; a message of 17
    // fragments of 4 KiB (the 16th crosses 65535), ended by a last one.
    push(Buf::Out(frag(hdr(5, false), 70000)?))?;
    push(Buf::Out(frag(hdr(5, true), 4096)?))?;
    for _ in 1..17 {
        push(Buf::Out(frag(cont(5, true), 4096)?))?;
    }
    push(Buf::Out(frag(cont(5, false), 1)?))?;
    // bad_fragment: a message on channel 5 cut by one on channel 6 (which
    // then counts as bad_channel: unbound).
    push(Buf::Out(frag(hdr(5, true), 100)?))?;
    push(Buf::Out(frag(hdr(6, false), 10)?))?;
    // bad_control: another version; an unknown type; a HELLO cut short;
    // CREDIT for a channel with no flow; DEALLOC_ACK out of range.
    let hello = Ctrl::Hello {
        reply: false,
        epoch: 0x0bad_cafe,
        num_channels: CHANNELS,
        max_sdu: 65535,
    };
    push(Buf::Out(ctrl(&hello, MAX_CTRL_LEN, |m| m[0] = 1)?))?;
    push(Buf::Out(ctrl(&hello, MAX_CTRL_LEN, |m| m[1] = 0x77)?))?;
    push(Buf::Out(ctrl(&hello, 8, |_| {})?))?;
    push(Buf::Out(ctrl(
        &Ctrl::Credit {
            channel: 7,
            consumed: 0,
        },
        MAX_CTRL_LEN,
        |_| {},
    )?))?;
    push(Buf::Out(ctrl(
        &Ctrl::DeallocAck { channel: 1000 },
        MAX_CTRL_LEN,
        |_| {},
    )?))?;
    // A flood of HELLOs: each asks for a reply, and the host has only
    // RX_BUFS rxq buffers to reply in (`VmpiEvil::process` posts these
    // again until HELLOS went out).
    for _ in 0..FLOOD_BUFS {
        push(Buf::Flood(ctrl(&hello, MAX_CTRL_LEN, |_| {})?))?;
    }
    Ok(())
}

struct VmpiEvil {
    sent: bool,
    /// `HELLO`s of the flood still to post.
    flood_left: usize,
}

impl virtio::Driver for VmpiEvil {
    const NAME: &'static CStr = c_str!("vmpi_evil");
    const DEVICE_ID: u32 = DEVICE_ID;
    const QUEUES: &'static [&'static CStr] = &[c_str!("rx"), c_str!("tx")];
    type Buf = Buf;
    type Req = virtio::NoReq;

    fn probe(dev: &virtio::Device<'_>) -> Result<Self> {
        pr_info!("{}: misbehaving on purpose\n", dev.name());
        Ok(Self {
            sent: false,
            flood_left: HELLOS - FLOOD_BUFS,
        })
    }

    fn start(&mut self, q: &mut virtio::Queues<'_, Buf>) {
        for _ in 0..RX_BUFS {
            let Ok(b) = KVec::from_elem(0u8, 4096, GFP_KERNEL)
                .and_then(|v| KBox::new(Buf::In(v), GFP_KERNEL))
            else {
                break;
            };
            if q.add_in(RXQ, b).is_err() {
                break;
            }
        }
        q.kick(RXQ);
        let mut bufs = KVec::new();
        if let Err(e) = script(&mut bufs) {
            pr_err!("no memory for the script: {:?}\n", e);
            return;
        }
        let mut n = 0;
        for b in bufs {
            let is_in = matches!(b, Buf::In(_));
            let Ok(b) = KBox::new(b, GFP_KERNEL) else {
                break;
            };
            let r = if is_in {
                q.add_in(TXQ, b)
            } else {
                q.add_out(TXQ, b)
            };
            if r.is_err() {
                pr_err!("txq full after {} buffers\n", n);
                break;
            }
            n += 1;
        }
        q.kick(TXQ);
        self.sent = true;
        pr_info!("{} bad buffers sent\n", n);
    }

    fn stop(&mut self) {}

    fn process(&mut self, q: &mut virtio::Queues<'_, Buf>) -> bool {
        // Reclaim what the host used; post only the flood's HELLOs again.
        let mut posted = false;
        while let Some((b, _)) = q.get_buf(TXQ) {
            if self.flood_left > 0 && matches!(*b, Buf::Flood(_)) && q.add_out(TXQ, b).is_ok() {
                self.flood_left -= 1;
                posted = true;
            }
        }
        if posted {
            q.kick(TXQ);
        }
        let _ = q.enable_cb(TXQ);
        false
    }
}

struct VmpiEvilModule {
    _driver: virtio::Registration<VmpiEvil>,
}

impl kernel::Module for VmpiEvilModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self {
            _driver: virtio::Registration::new()?,
        })
    }
}
