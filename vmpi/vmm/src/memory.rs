// SPDX-License-Identifier: GPL-2.0

//! Guest RAM: one memfd mapped shared (what QEMU's `memory-backend-memfd`
//! gives a guest, and what both of vhost_vdpa's modes accept: PA mode pins
//! its pages, VA mode takes shared file mappings only), a bump allocator
//! of guest-physical addresses for rings and buffers, and the memory map
//! handed to the device in the shapes real guests produce.

use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::sync::Arc;

use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// The page size of the map's small entries.
pub const PAGE: u64 = 4096;

/// How the guest's RAM is described to the device (`VHOST_IOTLB_UPDATE`
/// messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapShape {
    /// One message for all of RAM (QEMU's RAM section of a small guest).
    Whole,
    /// One message per 4 KiB page: as many IOTLB entries as pages, what a
    /// guest without huge pages costs a device in PA mode, where every
    /// physically contiguous run of pinned pages is an entry.
    Pages,
}

/// One `VHOST_IOTLB_UPDATE`: guest-physical `iova`, `size` bytes, at
/// host virtual address `hva`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapEntry {
    /// Guest-physical address (the device's IOVA: there is no vIOMMU).
    pub iova: u64,
    /// Length in bytes.
    pub size: u64,
    /// Where the VMM has it mapped.
    pub hva: u64,
}

/// A guest's RAM.
pub struct GuestRam {
    mem: Arc<GuestMemoryMmap>,
    base: u64,
    size: u64,
    next: u64,
}

impl GuestRam {
    /// `size` bytes of RAM at guest-physical `base` (both page-aligned),
    /// backed by a new memfd.
    pub fn new(base: u64, size: u64) -> io::Result<Self> {
        if !base.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) || size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "guest RAM must be whole pages",
            ));
        }
        // SAFETY: the name is a NUL-terminated string; memfd_create has no
        // other memory arguments.
        let fd = unsafe { libc::memfd_create(c"vmpi-vmm-ram".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by memfd_create and nothing else
        // owns it.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size)?;
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files([(
            GuestAddress(base),
            size as usize,
            Some(FileOffset::new(file, 0)),
        )])
        .map_err(io::Error::other)?;
        Ok(Self {
            mem: Arc::new(mem),
            base,
            size,
            next: base,
        })
    }

    /// The memory, for the vhost backend and for reading and writing.
    pub fn mem(&self) -> &Arc<GuestMemoryMmap> {
        &self.mem
    }

    /// RAM's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// RAM's first guest-physical address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// One past RAM's last guest-physical address (the map's edge).
    pub fn end(&self) -> u64 {
        self.base + self.size
    }

    /// The map entry of the `len` bytes at `gpa` (in RAM), for mapping
    /// them again elsewhere ([`crate::vhost_vdpa::VdpaDevice::map_readonly`]).
    pub fn entry(&self, gpa: u64, len: u64) -> io::Result<MapEntry> {
        if !self.contains(gpa, len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{len} bytes at {gpa:#x} are not RAM"),
            ));
        }
        Ok(MapEntry {
            iova: gpa,
            size: len,
            hva: self.hva(gpa)?,
        })
    }

    /// `len` bytes of unused RAM aligned to `align` (a power of two):
    /// their guest-physical address.
    pub fn alloc(&mut self, len: u64, align: u64) -> io::Result<u64> {
        let at = self.next.next_multiple_of(align);
        let end = at.checked_add(len).filter(|&e| e <= self.base + self.size);
        let Some(end) = end else {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("guest RAM of {} bytes is too small", self.size),
            ));
        };
        self.next = end;
        Ok(at)
    }

    /// Zeroes `len` bytes at `gpa`.
    pub fn zero(&self, gpa: u64, len: usize) -> io::Result<()> {
        self.write(gpa, &vec![0u8; len])
    }

    /// Writes `data` at `gpa`.
    pub fn write(&self, gpa: u64, data: &[u8]) -> io::Result<()> {
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .map_err(io::Error::other)
    }

    /// Reads `out.len()` bytes at `gpa`.
    pub fn read(&self, gpa: u64, out: &mut [u8]) -> io::Result<()> {
        self.mem
            .read_slice(out, GuestAddress(gpa))
            .map_err(io::Error::other)
    }

    fn hva(&self, gpa: u64) -> io::Result<u64> {
        self.mem
            .get_host_address(GuestAddress(gpa))
            .map(|p| p as u64)
            .map_err(io::Error::other)
    }

    /// The memory map of all of RAM, shaped as `shape` says.
    pub fn map(&self, shape: MapShape) -> io::Result<Vec<MapEntry>> {
        match shape {
            MapShape::Whole => Ok(vec![MapEntry {
                iova: self.base,
                size: self.size,
                hva: self.hva(self.base)?,
            }]),
            MapShape::Pages => (0..self.size / PAGE)
                .map(|i| {
                    let iova = self.base + i * PAGE;
                    Ok(MapEntry {
                        iova,
                        size: PAGE,
                        hva: self.hva(iova)?,
                    })
                })
                .collect(),
        }
    }

    /// Whether `[gpa, gpa + len)` is RAM.
    pub fn contains(&self, gpa: u64, len: u64) -> bool {
        gpa >= self.base
            && gpa
                .checked_add(len)
                .is_some_and(|e| e <= self.base + self.size)
            && self.mem.address_in_range(GuestAddress(gpa))
    }
}
