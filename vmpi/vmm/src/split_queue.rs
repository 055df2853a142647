// SPDX-License-Identifier: GPL-2.0

//! The driver's half of a split virtqueue (virtio 1.3, section 2.7) laid
//! out in guest RAM: descriptor table, available ring and used ring. The
//! rust-vmm `virtio-queue` crate is the device's half only, so this is
//! written here: the driver writes descriptors and publishes them in the
//! available ring, and takes what the device returns from the used ring.
//! No `EVENT_IDX` and no indirect descriptors in the driver's own use;
//! the raw accessors ([`SplitQueue::write_raw_desc`],
//! [`SplitQueue::publish_raw`], ...) let a hostile guest (`hostile.rs`)
//! write any bytes into the rings.

use std::io;
use std::sync::atomic::{fence, Ordering};

use vhost::VringConfigData;
use vm_memory::{Bytes, GuestAddress};

use crate::memory::GuestRam;

/// Bytes per descriptor (table entry).
pub const DESC_LEN: u64 = 16;
/// `VRING_DESC_F_NEXT`: the chain goes on at `next`.
pub const F_NEXT: u16 = 1;
/// `VRING_DESC_F_WRITE`: the device writes the buffer.
pub const F_WRITE: u16 = 2;
/// `VRING_DESC_F_INDIRECT`: the buffer is a table of descriptors.
pub const F_INDIRECT: u16 = 4;
/// `VRING_USED_F_NO_NOTIFY`: the device asks not to be kicked.
const USED_F_NO_NOTIFY: u16 = 1;

/// One buffer of a chain: guest-physical address, length, and whether the
/// device writes it.
#[derive(Debug, Clone, Copy)]
pub struct Buf {
    /// Guest-physical address.
    pub gpa: u64,
    /// Length in bytes.
    pub len: u32,
    /// Device-writable.
    pub write: bool,
}

/// One descriptor as the ring holds it, any bytes a guest likes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawDesc {
    /// Guest-physical address of the buffer (or of an indirect table).
    pub addr: u64,
    /// Its length in bytes.
    pub len: u32,
    /// `F_NEXT`, `F_WRITE`, `F_INDIRECT`, or anything else.
    pub flags: u16,
    /// The next descriptor's index, when `F_NEXT`.
    pub next: u16,
}

impl RawDesc {
    /// The 16 bytes of the descriptor (little-endian, virtio 1.x).
    pub fn to_bytes(self) -> [u8; DESC_LEN as usize] {
        let mut d = [0u8; DESC_LEN as usize];
        d[0..8].copy_from_slice(&self.addr.to_le_bytes());
        d[8..12].copy_from_slice(&self.len.to_le_bytes());
        d[12..14].copy_from_slice(&self.flags.to_le_bytes());
        d[14..16].copy_from_slice(&self.next.to_le_bytes());
        d
    }
}

/// What the device returned: the caller's token and the used length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// The token the chain was added with.
    pub token: usize,
    /// Bytes the device wrote (0 for device-readable chains).
    pub len: u32,
}

/// A split virtqueue, driver side.
pub struct SplitQueue {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    /// Free descriptors (a stack).
    free: Vec<u16>,
    /// Per head descriptor: the chain's descriptors and the token.
    inflight: Vec<Option<(Vec<u16>, usize)>>,
    avail_idx: u16,
    last_used: u16,
}

impl SplitQueue {
    /// A queue of `size` (a power of two) entries, its rings allocated in
    /// `ram`.
    pub fn new(ram: &mut GuestRam, size: u16) -> io::Result<Self> {
        if !size.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "queue size must be a power of two",
            ));
        }
        let n = u64::from(size);
        let desc = ram.alloc(DESC_LEN * n, 16)?;
        let avail = ram.alloc(6 + 2 * n, 2)?;
        let used = ram.alloc(6 + 8 * n, 4)?;
        let mut q = Self {
            size,
            desc,
            avail,
            used,
            free: Vec::new(),
            inflight: Vec::new(),
            avail_idx: 0,
            last_used: 0,
        };
        q.reset(ram)?;
        Ok(q)
    }

    /// Back to the state of a new queue (after a device reset): rings
    /// zeroed, every descriptor free, indices 0. Tokens in flight are lost.
    pub fn reset(&mut self, ram: &GuestRam) -> io::Result<()> {
        let n = u64::from(self.size);
        ram.zero(self.desc, (DESC_LEN * n) as usize)?;
        ram.zero(self.avail, (6 + 2 * n) as usize)?;
        ram.zero(self.used, (6 + 8 * n) as usize)?;
        self.free = (0..self.size).rev().collect();
        self.inflight = vec![None; self.size as usize];
        self.avail_idx = 0;
        self.last_used = 0;
        Ok(())
    }

    /// The queue's size.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Free descriptors.
    pub fn num_free(&self) -> usize {
        self.free.len()
    }

    /// Chains the device holds.
    pub fn num_inflight(&self) -> usize {
        self.size as usize - self.free.len()
    }

    /// The rings' addresses for `VHOST_SET_VRING_ADDR`.
    pub fn config(&self, max_size: u16) -> VringConfigData {
        VringConfigData {
            queue_max_size: max_size,
            queue_size: self.size,
            flags: 0,
            desc_table_addr: self.desc,
            used_ring_addr: self.used,
            avail_ring_addr: self.avail,
            log_addr: None,
        }
    }

    /// Makes the chain `bufs` available to the device with `token`.
    /// `Ok(false)`: not enough free descriptors.
    pub fn add(&mut self, ram: &GuestRam, bufs: &[Buf], token: usize) -> io::Result<bool> {
        if bufs.is_empty() || bufs.len() > self.free.len() {
            return Ok(bufs.is_empty());
        }
        let ids: Vec<u16> = (0..bufs.len()).filter_map(|_| self.free.pop()).collect();
        for (i, (b, &id)) in bufs.iter().zip(&ids).enumerate() {
            let next = ids.get(i + 1).copied();
            let mut flags = if b.write { F_WRITE } else { 0 };
            if next.is_some() {
                flags |= F_NEXT;
            }
            let d = RawDesc {
                addr: b.gpa,
                len: b.len,
                flags,
                next: next.unwrap_or(0),
            };
            ram.write(self.desc + u64::from(id) * DESC_LEN, &d.to_bytes())?;
        }
        let head = ids[0];
        let slot = u64::from(self.avail_idx % self.size);
        ram.write(self.avail + 4 + 2 * slot, &head.to_le_bytes())?;
        self.inflight[head as usize] = Some((ids, token));
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // The descriptors and the ring entry before the index that
        // publishes them (virtio 1.3, 2.7.13.3).
        ram.mem()
            .store(
                self.avail_idx,
                GuestAddress(self.avail + 2),
                Ordering::Release,
            )
            .map_err(io::Error::other)?;
        Ok(true)
    }

    /// Whether the device wants a kick (it has not set `NO_NOTIFY`); call
    /// after [`SplitQueue::add`].
    pub fn needs_kick(&self, ram: &GuestRam) -> io::Result<bool> {
        // The index store before the flags load (virtio 1.3, 2.7.13.4).
        fence(Ordering::SeqCst);
        let flags: u16 = ram
            .mem()
            .load(GuestAddress(self.used), Ordering::Acquire)
            .map_err(io::Error::other)?;
        Ok(flags & USED_F_NO_NOTIFY == 0)
    }

    /// The next chain the device returned, if any. A used entry that names
    /// no chain in flight is an error (the device is broken).
    pub fn pop_used(&mut self, ram: &GuestRam) -> io::Result<Option<Used>> {
        let idx: u16 = ram
            .mem()
            .load(GuestAddress(self.used + 2), Ordering::Acquire)
            .map_err(io::Error::other)?;
        if idx == self.last_used {
            return Ok(None);
        }
        if idx.wrapping_sub(self.last_used) > self.size {
            return Err(io::Error::other(format!(
                "device's used index {idx} is more than {} past {}",
                self.size, self.last_used
            )));
        }
        let slot = u64::from(self.last_used % self.size);
        let mut e = [0u8; 8];
        ram.read(self.used + 4 + 8 * slot, &mut e)?;
        let id = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        let len = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        let chain = usize::try_from(id)
            .ok()
            .and_then(|i| self.inflight.get_mut(i))
            .and_then(Option::take);
        let Some((ids, token)) = chain else {
            return Err(io::Error::other(format!(
                "device returned descriptor {id}, which it was not given"
            )));
        };
        self.free.extend(ids.iter().rev());
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some(Used { token, len }))
    }

    /// Index the device is told to start from (`VHOST_SET_VRING_BASE`).
    pub fn base(&self) -> u16 {
        self.avail_idx
    }

    /// The descriptor table's guest-physical address.
    pub fn desc_addr(&self) -> u64 {
        self.desc
    }

    /// The available ring's guest-physical address.
    pub fn avail_addr(&self) -> u64 {
        self.avail
    }

    /// The used ring's guest-physical address.
    pub fn used_addr(&self) -> u64 {
        self.used
    }

    /// The available index the driver last published.
    pub fn avail_idx(&self) -> u16 {
        self.avail_idx
    }

    /// The used index as the device last wrote it.
    pub fn used_idx(&self, ram: &GuestRam) -> io::Result<u16> {
        ram.mem()
            .load(GuestAddress(self.used + 2), Ordering::Acquire)
            .map_err(io::Error::other)
    }

    /// The head in available ring slot `slot` (modulo the size).
    pub fn avail_entry(&self, ram: &GuestRam, slot: u16) -> io::Result<u16> {
        let mut h = [0u8; 2];
        ram.read(self.avail + 4 + 2 * u64::from(slot % self.size), &mut h)?;
        Ok(u16::from_le_bytes(h))
    }

    /// Writes descriptor `i` of the table as given, whatever it holds
    /// (the driver's bookkeeping is not updated: reset the queue after).
    pub fn write_raw_desc(&self, ram: &GuestRam, i: u16, d: RawDesc) -> io::Result<()> {
        if i >= self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("descriptor {i} is beyond the table of {}", self.size),
            ));
        }
        ram.write(self.desc + u64::from(i) * DESC_LEN, &d.to_bytes())
    }

    /// Puts `heads` in the available ring's next slots, whatever they
    /// are, and publishes them with the index (release order, as `add`).
    pub fn publish_raw(&mut self, ram: &GuestRam, heads: &[u16]) -> io::Result<()> {
        for &h in heads {
            let slot = u64::from(self.avail_idx % self.size);
            ram.write(self.avail + 4 + 2 * slot, &h.to_le_bytes())?;
            self.avail_idx = self.avail_idx.wrapping_add(1);
        }
        self.store_avail_idx(ram)
    }

    /// Sets the available index to `idx` without writing ring entries (an
    /// index that jumps, or random bytes).
    pub fn set_avail_idx_raw(&mut self, ram: &GuestRam, idx: u16) -> io::Result<()> {
        self.avail_idx = idx;
        self.store_avail_idx(ram)
    }

    fn store_avail_idx(&self, ram: &GuestRam) -> io::Result<()> {
        ram.mem()
            .store(
                self.avail_idx,
                GuestAddress(self.avail + 2),
                Ordering::Release,
            )
            .map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device's side, by hand: reads the avail ring, writes used.
    fn device_take(ram: &GuestRam, q: &SplitQueue, slot: u16) -> (u16, Vec<(u64, u32, u16, u16)>) {
        let mut h = [0u8; 2];
        ram.read(q.avail + 4 + 2 * u64::from(slot), &mut h).unwrap();
        let head = u16::from_le_bytes(h);
        let mut chain = Vec::new();
        let mut i = head;
        loop {
            let mut d = [0u8; 16];
            ram.read(q.desc + u64::from(i) * DESC_LEN, &mut d).unwrap();
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
            let len = u32::from_le_bytes(d[8..12].try_into().unwrap());
            let flags = u16::from_le_bytes([d[12], d[13]]);
            let next = u16::from_le_bytes([d[14], d[15]]);
            chain.push((addr, len, flags, next));
            if flags & F_NEXT == 0 {
                break;
            }
            i = next;
        }
        (head, chain)
    }

    fn device_use(ram: &GuestRam, q: &SplitQueue, idx: u16, head: u16, len: u32) {
        let slot = u64::from(idx % q.size);
        let mut e = [0u8; 8];
        e[0..4].copy_from_slice(&u32::from(head).to_le_bytes());
        e[4..8].copy_from_slice(&len.to_le_bytes());
        ram.write(q.used + 4 + 8 * slot, &e).unwrap();
        ram.write(q.used + 2, &idx.wrapping_add(1).to_le_bytes())
            .unwrap();
    }

    #[test]
    fn chains_go_out_and_come_back() {
        let mut ram = GuestRam::new(1 << 20, 1 << 20).unwrap();
        let mut q = SplitQueue::new(&mut ram, 4).unwrap();
        let bufs = [
            Buf {
                gpa: 0x180000,
                len: 4,
                write: false,
            },
            Buf {
                gpa: 0x181000,
                len: 100,
                write: true,
            },
        ];
        // Wraps the 4-entry rings several times.
        for k in 0..10u16 {
            assert!(q.add(&ram, &bufs, usize::from(k)).unwrap());
            let idx: u16 = ram
                .mem()
                .load(GuestAddress(q.avail + 2), Ordering::Acquire)
                .unwrap();
            assert_eq!(idx, k + 1);
            let (head, chain) = device_take(&ram, &q, k % 4);
            assert_eq!(chain.len(), 2);
            assert_eq!(
                (chain[0].0, chain[0].1, chain[0].2 & F_WRITE),
                (0x180000, 4, 0)
            );
            assert_eq!(
                (chain[1].0, chain[1].1, chain[1].2),
                (0x181000, 100, F_WRITE)
            );
            assert!(q.pop_used(&ram).unwrap().is_none());
            device_use(&ram, &q, k, head, 42);
            let u = q.pop_used(&ram).unwrap().unwrap();
            assert_eq!(
                u,
                Used {
                    token: usize::from(k),
                    len: 42
                }
            );
            assert_eq!(q.num_free(), 4);
        }
    }

    #[test]
    fn full_queue_and_bad_device() {
        let mut ram = GuestRam::new(1 << 20, 1 << 20).unwrap();
        let mut q = SplitQueue::new(&mut ram, 4).unwrap();
        let b = [Buf {
            gpa: 0x180000,
            len: 8,
            write: true,
        }; 3];
        assert!(q.add(&ram, &b, 0).unwrap());
        // One descriptor left: a chain of three must wait.
        assert!(!q.add(&ram, &b, 1).unwrap());
        assert_eq!(q.num_inflight(), 3);
        // A used entry naming a descriptor the device was not given.
        device_use(&ram, &q, 0, 3, 0);
        assert!(q.pop_used(&ram).is_err());
        // A used index that runs ahead of the queue.
        q.reset(&ram).unwrap();
        ram.write(q.used + 2, &9u16.to_le_bytes()).unwrap();
        assert!(q.pop_used(&ram).is_err());
        assert!(SplitQueue::new(&mut ram, 3).is_err());
    }
}
