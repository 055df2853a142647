// SPDX-License-Identifier: GPL-2.0

//! The VMM's side of VMPI, in userspace: what QEMU does with
//! `/dev/vhost-vdpa-N` to serve a guest a vDPA device, and a VMPI guest
//! driver that runs over it instead of a guest kernel. So the project can
//! drive its host side exactly as a real VMM and guest would, in CI,
//! without nested virtualization: memory maps shaped like real guests',
//! resets, remaps, a VMM killed under traffic.
//!
//! - [`memory`]: guest RAM (a memfd), its allocator and its memory map.
//! - [`vhost_vdpa`]: the device opened, started and stopped in QEMU's
//!   order (rust-vmm's `vhost` crate does the ioctls).
//! - [`split_queue`]: the driver's half of a split virtqueue.
//! - [`driver`]: the VMPI guest driver, on the kernel modules' own
//!   protocol code (`vmpi/proto/`).
//! - [`hostile`]: a hostile guest that writes its rings by hand, case by
//!   case and in seeded random rounds, and checks the device's outcome
//!   and that a good guest is served after.
//! - [`net_echo`]: a virtio-net loopback through `vdpa_sim_net`, the
//!   control: a vDPA device known to work with QEMU.
//!
//! `docs/vmpi-vmm.md` says what it does, what it took from rust-vmm and
//! why.

pub mod driver;
pub mod hostile;
pub mod memory;
pub mod net_echo;
pub mod split_queue;
pub mod vhost_vdpa;
