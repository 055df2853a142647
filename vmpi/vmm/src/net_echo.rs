// SPDX-License-Identifier: GPL-2.0

//! The control: the same vhost-vdpa session and split queues against
//! `vdpa_sim_net` (device id 1), which loops every frame it is sent to
//! its own receive queue when the frame is for its MAC or broadcast. A
//! failure here is in this program; a failure only with VMPI's device is
//! in VMPI's host side.

use std::io;
use std::time::{Duration, Instant};

use crate::memory::{GuestRam, MapShape, PAGE};
use crate::split_queue::{Buf, SplitQueue};
use crate::vhost_vdpa::{Batching, MapReport, VdpaDevice, F_VERSION_1};

/// virtio-net's device id.
pub const NET_DEVICE_ID: u32 = 1;
/// `struct virtio_net_hdr_v1` (VERSION_1): 12 bytes, all zero here.
const NET_HDR: usize = 12;
const RXQ: usize = 0;
const TXQ: usize = 1;
const QSIZE: u16 = 64;

/// What a run of the loopback came to.
#[derive(Debug, Default)]
pub struct Echoed {
    /// Frames sent.
    pub sent: usize,
    /// Frames that came back byte for byte.
    pub matched: usize,
    /// The map's report.
    pub map: MapReport,
}

/// The frame `k` of `len` bytes of payload: broadcast, EtherType 0x88b5
/// (local experimental), a payload that names `k`.
fn frame(k: usize, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; NET_HDR];
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len).map(|i| (k * 31 + i * 7) as u8));
    f
}

/// Sends `count` broadcast frames of `len` payload bytes through the
/// vhost-vdpa device at `path` (a `vdpa_sim_net`), one at a time, and
/// checks each comes back on the receive queue unchanged.
pub fn run(path: &str, shape: MapShape, count: usize, len: usize) -> io::Result<Echoed> {
    let mut ram = GuestRam::new(1 << 20, 4 << 20)?;
    let mut dev = VdpaDevice::realize(path, ram.mem().clone(), Batching::Batch)?;
    if dev.device_id != NET_DEVICE_ID {
        return Err(io::Error::other(format!(
            "{path} is device id {}, not virtio-net",
            dev.device_id
        )));
    }
    let size = QSIZE.min(dev.vq_num_max);
    let mut rxq = SplitQueue::new(&mut ram, size)?;
    let mut txq = SplitQueue::new(&mut ram, size)?;
    let rx_buf = ram.alloc(PAGE, PAGE)?;
    let tx_buf = ram.alloc(PAGE, PAGE)?;
    let map = ram.map(shape)?;
    let rings = [rxq.config(dev.vq_num_max), txq.config(dev.vq_num_max)];
    let rx = [Buf {
        gpa: rx_buf,
        len: PAGE as u32,
        write: true,
    }];
    rxq.add(&ram, &rx, 0)?;
    let mut out = Echoed {
        map: dev.start(F_VERSION_1, &rings, &map)?,
        ..Echoed::default()
    };
    dev.kick(RXQ)?;
    let mut got = vec![0u8; PAGE as usize];
    for k in 0..count {
        let f = frame(k, len);
        ram.write(tx_buf, &f)?;
        let tx = [Buf {
            gpa: tx_buf,
            len: f.len() as u32,
            write: false,
        }];
        txq.add(&ram, &tx, 0)?;
        dev.kick(TXQ)?;
        out.sent += 1;
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut sent_back, mut echoed) = (false, None);
        while !(sent_back && echoed.is_some()) && Instant::now() < deadline {
            sent_back |= txq.pop_used(&ram)?.is_some();
            if echoed.is_none() {
                echoed = rxq.pop_used(&ram)?;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let Some(u) = echoed else {
            break;
        };
        let n = (u.len as usize).min(got.len());
        ram.read(rx_buf, &mut got[..n])?;
        // The device writes its own (zero) header: compare the frame.
        if n == f.len() && got[NET_HDR..n] == f[NET_HDR..] {
            out.matched += 1;
        }
        rxq.add(&ram, &rx, 0)?;
        dev.kick(RXQ)?;
    }
    dev.stop(2, &map)?;
    Ok(out)
}
