// SPDX-License-Identifier: GPL-2.0

//! A vhost-vdpa device as QEMU's generic `vhost-vdpa-device` drives it,
//! ioctl for ioctl and in its order (hw/virtio/vdpa-dev.c, vhost.c and
//! vhost-vdpa.c of QEMU 10):
//!
//! - [`VdpaDevice::realize`], at QEMU's start: the device id, queue size
//!   and count, the IOVA range, `ACKNOWLEDGE | DRIVER`, `VHOST_SET_OWNER`,
//!   the features, a (masked) call eventfd per queue, the configuration.
//! - [`VdpaDevice::start`], when the guest sets `DRIVER_OK`: the features
//!   the guest accepted and `FEATURES_OK`, the backend features (IOTLB
//!   messages v2 and batches, suspend), per queue its size, base, ring
//!   addresses and kick eventfd, the queues enabled, the memory map in one
//!   batch of `VHOST_IOTLB_UPDATE`s, `DRIVER_OK`, then the configuration
//!   and queue call eventfds.
//! - [`VdpaDevice::stop`], when the guest resets the device: suspend, the
//!   queues' bases, status 0, `ACKNOWLEDGE | DRIVER` again, and the map
//!   invalidated in one batch.
//!
//! The ioctls and messages are the `vhost` crate's (rust-vmm).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use vhost::vdpa::VhostVdpa;
use vhost::vhost_kern::vdpa::VhostKernVdpa;
use vhost::vhost_kern::VhostKernFeatures;
use vhost::{VhostBackend, VhostIotlbBackend, VhostIotlbMsg, VhostIotlbType, VringConfigData};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::memory::MapEntry;

/// Device status bits (virtio 1.3, 2.1).
pub mod status {
    /// `ACKNOWLEDGE`.
    pub const ACKNOWLEDGE: u8 = 1;
    /// `DRIVER`.
    pub const DRIVER: u8 = 2;
    /// `DRIVER_OK`.
    pub const DRIVER_OK: u8 = 4;
    /// `FEATURES_OK`.
    pub const FEATURES_OK: u8 = 8;
    /// `DEVICE_NEEDS_RESET`.
    pub const NEEDS_RESET: u8 = 64;
    /// `FAILED`.
    pub const FAILED: u8 = 128;
}

/// `VIRTIO_F_VERSION_1`.
pub const F_VERSION_1: u64 = 1 << 32;
/// `VIRTIO_F_ACCESS_PLATFORM`: a vDPA device needs it (its DMA goes
/// through the IOTLB); QEMU forces it on.
pub const F_ACCESS_PLATFORM: u64 = 1 << 33;

// vhost backend feature bits (include/uapi/linux/vhost_types.h).
const BACKEND_F_IOTLB_MSG_V2: u64 = 1 << 1;
const BACKEND_F_IOTLB_BATCH: u64 = 1 << 2;
/// `VHOST_BACKEND_F_SUSPEND`: the device can be suspended.
pub const BACKEND_F_SUSPEND: u64 = 1 << 4;
/// `VHOST_BACKEND_F_RESUME`: and resumed.
pub const BACKEND_F_RESUME: u64 = 1 << 5;

/// An error of one step, with the step's name.
fn step(what: &'static str) -> impl FnOnce(vhost::Error) -> io::Error {
    move |e| {
        let kind = match &e {
            vhost::Error::IoctlError(ioe)
            | vhost::Error::IOError(ioe)
            | vhost::Error::VhostOpen(ioe) => ioe.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, format!("{what}: {e}"))
    }
}

/// How the memory map goes to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// In one `IOTLB_BATCH_BEGIN` .. `IOTLB_BATCH_END` (QEMU): the device
    /// sees the map once, at the end.
    Batch,
    /// Message by message: the device sees every step.
    Single,
}

/// What a map or unmap came to: QEMU logs a failed `VHOST_IOTLB_UPDATE`
/// and carries on, so a failure is a count here, not an early return.
#[derive(Debug, Default)]
pub struct MapReport {
    /// Messages sent.
    pub sent: usize,
    /// Of them, refused.
    pub failed: usize,
    /// The first refusal.
    pub first_error: Option<io::Error>,
}

/// A vhost-vdpa device opened as a VMM opens it.
pub struct VdpaDevice {
    dev: VhostKernVdpa<Arc<GuestMemoryMmap>>,
    /// The virtio device id.
    pub device_id: u32,
    /// The largest queue the device takes.
    pub vq_num_max: u16,
    /// The device's queues.
    pub num_queues: usize,
    /// The features the device offers.
    pub device_features: u64,
    /// The configuration space, as read at realize.
    pub config: Vec<u8>,
    /// The backend features acked at the last start.
    pub backend_features: u64,
    calls: Vec<EventFd>,
    kicks: Vec<EventFd>,
    config_call: EventFd,
    batching: Batching,
}

impl VdpaDevice {
    /// Opens `path` and does what QEMU does when it realizes a
    /// `vhost-vdpa-device`.
    pub fn realize(path: &str, mem: Arc<GuestMemoryMmap>, batching: Batching) -> io::Result<Self> {
        let dev = VhostKernVdpa::new(path, mem).map_err(step("open"))?;
        let device_id = dev
            .get_device_id()
            .map_err(step("VHOST_VDPA_GET_DEVICE_ID"))?;
        let vq_num_max = dev
            .get_vring_num()
            .map_err(step("VHOST_VDPA_GET_VRING_NUM"))?;
        let num_queues = dev
            .get_vqs_count()
            .map_err(step("VHOST_VDPA_GET_VQS_COUNT"))? as usize;
        dev.get_iova_range()
            .map_err(step("VHOST_VDPA_GET_IOVA_RANGE"))?;
        dev.get_features().map_err(step("VHOST_GET_FEATURES"))?;
        let mut d = Self {
            dev,
            device_id,
            vq_num_max,
            num_queues,
            device_features: 0,
            config: Vec::new(),
            backend_features: 0,
            calls: Vec::new(),
            kicks: Vec::new(),
            config_call: EventFd::new(EFD_NONBLOCK)?,
            batching,
        };
        d.add_status(status::ACKNOWLEDGE | status::DRIVER)?;
        d.dev.set_owner().map_err(step("VHOST_SET_OWNER"))?;
        d.device_features = d.dev.get_features().map_err(step("VHOST_GET_FEATURES"))?;
        for i in 0..num_queues {
            d.calls.push(EventFd::new(EFD_NONBLOCK)?);
            d.kicks.push(EventFd::new(EFD_NONBLOCK)?);
            // QEMU's first call eventfd is its mask notifier; ours is the
            // real one from the start (nothing reads it before DRIVER_OK).
            d.dev
                .set_vring_call(i, &d.calls[i])
                .map_err(step("VHOST_SET_VRING_CALL"))?;
        }
        let size = d
            .dev
            .get_config_size()
            .map_err(step("VHOST_VDPA_GET_CONFIG_SIZE"))?;
        d.config = vec![0; size as usize];
        d.dev
            .get_config(0, &mut d.config)
            .map_err(step("VHOST_VDPA_GET_CONFIG"))?;
        Ok(d)
    }

    /// The device's status.
    pub fn status(&self) -> io::Result<u8> {
        self.dev.get_status().map_err(step("VHOST_VDPA_GET_STATUS"))
    }

    /// QEMU's `vhost_vdpa_add_status`: read, or in `bits`, write, and
    /// check that the device kept them.
    fn add_status(&self, bits: u8) -> io::Result<()> {
        let s = self.status()?;
        self.dev
            .set_status(s | bits)
            .map_err(step("VHOST_VDPA_SET_STATUS"))?;
        let now = self.status()?;
        if now & bits != bits {
            return Err(io::Error::other(format!(
                "the device refused status {bits:#x} (status {now:#x})"
            )));
        }
        Ok(())
    }

    /// Starts the device: `features` (the guest's, to which
    /// `ACCESS_PLATFORM` is added as QEMU does), the queues' rings
    /// (`rings[i]` for queue `i`), then `map`, then `DRIVER_OK`. A refused
    /// map entry does not stop the start (QEMU's behaviour): see the report.
    pub fn start(
        &mut self,
        features: u64,
        rings: &[VringConfigData],
        map: &[MapEntry],
    ) -> io::Result<MapReport> {
        let report = self.start_with(features, rings, Some(map))?;
        self.driver_ok(rings.len())?;
        Ok(report)
    }

    /// The start up to the map, without `DRIVER_OK`: `map` `None` sends
    /// no IOTLB message at all (a VMM that starts a device with no memory
    /// map; a hostile case). [`VdpaDevice::driver_ok`] finishes it.
    pub fn start_with(
        &mut self,
        features: u64,
        rings: &[VringConfigData],
        map: Option<&[MapEntry]>,
    ) -> io::Result<MapReport> {
        self.dev
            .set_features(features | F_ACCESS_PLATFORM)
            .map_err(step("VHOST_SET_FEATURES"))?;
        self.add_status(status::FEATURES_OK)?;
        let offered = self
            .dev
            .get_backend_features()
            .map_err(step("VHOST_GET_BACKEND_FEATURES"))?;
        let acked = offered
            & (BACKEND_F_IOTLB_MSG_V2
                | BACKEND_F_IOTLB_BATCH
                | BACKEND_F_SUSPEND
                | BACKEND_F_RESUME);
        self.dev
            .set_backend_features(acked)
            .map_err(step("VHOST_SET_BACKEND_FEATURES"))?;
        self.backend_features = acked;
        for (i, ring) in rings.iter().enumerate() {
            self.dev
                .set_vring_num(i, ring.queue_size)
                .map_err(step("VHOST_SET_VRING_NUM"))?;
            self.dev
                .set_vring_base(i, 0)
                .map_err(step("VHOST_SET_VRING_BASE"))?;
            self.dev
                .set_vring_addr(i, ring)
                .map_err(step("VHOST_SET_VRING_ADDR"))?;
            self.dev
                .set_vring_kick(i, &self.kicks[i])
                .map_err(step("VHOST_SET_VRING_KICK"))?;
        }
        for i in 0..rings.len() {
            self.dev
                .set_vring_enable(i, true)
                .map_err(step("VHOST_VDPA_SET_VRING_ENABLE"))?;
        }
        match map {
            Some(m) => self.map(m),
            None => Ok(MapReport::default()),
        }
    }

    /// The rest of a start: `DRIVER_OK`, then the configuration and the
    /// first `num_rings` queues' call eventfds (QEMU's order).
    pub fn driver_ok(&mut self, num_rings: usize) -> io::Result<()> {
        self.add_status(status::DRIVER_OK)?;
        self.dev
            .set_config_call(&self.config_call)
            .map_err(step("VHOST_VDPA_SET_CONFIG_CALL"))?;
        for i in 0..num_rings.min(self.calls.len()) {
            self.dev
                .set_vring_call(i, &self.calls[i])
                .map_err(step("VHOST_SET_VRING_CALL"))?;
        }
        Ok(())
    }

    /// `VHOST_SET_FEATURES` now, whatever the status (vhost_vdpa refuses
    /// it once `FEATURES_OK` is set: a hostile case).
    pub fn set_features_now(&self, features: u64) -> io::Result<()> {
        self.dev
            .set_features(features)
            .map_err(step("VHOST_SET_FEATURES"))
    }

    /// `VHOST_SET_VRING_NUM` of queue `i` now, any number (a size that is
    /// not a power of two or above the maximum: a hostile case).
    pub fn set_vring_num_now(&self, i: usize, num: u16) -> io::Result<()> {
        self.dev
            .set_vring_num(i, num)
            .map_err(step("VHOST_SET_VRING_NUM"))
    }

    /// Stops the device as QEMU does at a guest's reset: suspend (if
    /// acked), read the queues' bases, reset, `ACKNOWLEDGE | DRIVER`, and
    /// `unmap` invalidated.
    pub fn stop(&mut self, num_rings: usize, unmap: &[MapEntry]) -> io::Result<MapReport> {
        if self.backend_features & BACKEND_F_SUSPEND != 0 {
            self.dev.suspend().map_err(step("VHOST_VDPA_SUSPEND"))?;
            for i in 0..num_rings {
                self.dev
                    .get_vring_base(i)
                    .map_err(step("VHOST_GET_VRING_BASE"))?;
            }
        }
        self.reset()?;
        self.add_status(status::ACKNOWLEDGE | status::DRIVER)?;
        self.unmap(unmap)
    }

    /// `VHOST_VDPA_SUSPEND`, then each of the first `num_rings` queues'
    /// `VHOST_GET_VRING_BASE`, as QEMU reads them to stop or migrate a
    /// guest: the available index from which the device would go on.
    pub fn suspend_bases(&self, num_rings: usize) -> io::Result<Vec<u16>> {
        self.dev.suspend().map_err(step("VHOST_VDPA_SUSPEND"))?;
        (0..num_rings)
            .map(|i| {
                self.dev
                    .get_vring_base(i)
                    .map(|b| b as u16)
                    .map_err(step("VHOST_GET_VRING_BASE"))
            })
            .collect()
    }

    /// `VHOST_VDPA_RESUME` (the `vhost` crate has no call for it): a
    /// suspended device goes on where it stopped.
    pub fn resume(&self) -> io::Result<()> {
        // _IO(VHOST_VIRTIO, 0x7E) of <linux/vhost.h>.
        const VHOST_VDPA_RESUME: libc::c_ulong = 0xaf7e;
        // SAFETY: an ioctl without argument on our own open descriptor.
        let r = unsafe { libc::ioctl(self.dev.as_raw_fd(), VHOST_VDPA_RESUME) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("VHOST_VDPA_RESUME: {e}")));
        }
        Ok(())
    }

    /// Writes status 0: the device resets.
    pub fn reset(&self) -> io::Result<()> {
        self.dev
            .set_status(0)
            .map_err(step("VHOST_VDPA_SET_STATUS(0)"))
    }

    fn iotlb(&self, msg_type: VhostIotlbType) -> io::Result<()> {
        let what = match msg_type {
            VhostIotlbType::BatchBegin => "VHOST_IOTLB_BATCH_BEGIN",
            _ => "VHOST_IOTLB_BATCH_END",
        };
        self.dev
            .send_iotlb_msg(&VhostIotlbMsg {
                msg_type,
                ..Default::default()
            })
            .map_err(step(what))
    }

    fn batching(&self) -> bool {
        self.batching == Batching::Batch && self.backend_features & BACKEND_F_IOTLB_BATCH != 0
    }

    /// Sends one message per entry; a refused one is counted.
    fn each<F>(entries: &[MapEntry], r: &mut MapReport, mut send: F)
    where
        F: FnMut(&MapEntry) -> Result<(), vhost::Error>,
    {
        for e in entries {
            r.sent += 1;
            if let Err(err) = send(e) {
                r.failed += 1;
                if r.first_error.is_none() {
                    r.first_error = Some(step("VHOST_IOTLB message")(err));
                }
            }
        }
    }

    fn update(&self, e: &MapEntry) -> Result<(), vhost::Error> {
        self.dev.dma_map(e.iova, e.size, e.hva as *const u8, false)
    }

    fn invalidate(&self, e: &MapEntry) -> Result<(), vhost::Error> {
        self.dev.dma_unmap(e.iova, e.size)
    }

    /// Sends `entries` as `VHOST_IOTLB_UPDATE`s (read-write).
    pub fn map(&self, entries: &[MapEntry]) -> io::Result<MapReport> {
        self.remap(&[], entries)
    }

    /// Sends `entries` as `VHOST_IOTLB_INVALIDATE`s.
    pub fn unmap(&self, entries: &[MapEntry]) -> io::Result<MapReport> {
        self.remap(entries, &[])
    }

    /// Sends `entries` as read-only `VHOST_IOTLB_UPDATE`s (the device may
    /// read them, not write them), in one batch when batching.
    pub fn map_readonly(&self, entries: &[MapEntry]) -> io::Result<MapReport> {
        let mut r = MapReport::default();
        if entries.is_empty() {
            return Ok(r);
        }
        let batch = self.batching();
        if batch {
            self.iotlb(VhostIotlbType::BatchBegin)?;
        }
        Self::each(entries, &mut r, |e| {
            self.dev.dma_map(e.iova, e.size, e.hva as *const u8, true)
        });
        if batch {
            self.iotlb(VhostIotlbType::BatchEnd)?;
        }
        Ok(r)
    }

    /// Invalidates `old` and maps `new`, in one batch when batching, as a
    /// VMM does when guest memory is re-plugged: the device sees the old
    /// map, then the new one, never the gap. Both empty: nothing is sent
    /// (an empty batch would still make the device take the map again).
    pub fn remap(&self, old: &[MapEntry], new: &[MapEntry]) -> io::Result<MapReport> {
        if old.is_empty() && new.is_empty() {
            return Ok(MapReport::default());
        }
        let batch = self.batching();
        if batch {
            self.iotlb(VhostIotlbType::BatchBegin)?;
        }
        let mut r = MapReport::default();
        Self::each(old, &mut r, |e| self.invalidate(e));
        Self::each(new, &mut r, |e| self.update(e));
        if batch {
            self.iotlb(VhostIotlbType::BatchEnd)?;
        }
        Ok(r)
    }

    /// Kicks queue `i`.
    pub fn kick(&self, i: usize) -> io::Result<()> {
        self.kicks[i].write(1)
    }

    /// Queue `i`'s call eventfd.
    pub fn call(&self, i: usize) -> &EventFd {
        &self.calls[i]
    }

    /// The configuration-change eventfd.
    pub fn config_call(&self) -> &EventFd {
        &self.config_call
    }
}
