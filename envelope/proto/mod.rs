// SPDX-License-Identifier: GPL-2.0

//! Envelope switching's pure logic: no kernel API, so the modules include
//! it with `#[path = "../proto/mod.rs"] pub mod envelope_proto;` and `cargo test` runs
//! its tests on the host (`rust/pure`). `docs/envelope.md` and
//! `docs/vmpi-protocol.md` section 5 are the specification.
//!
//! - [`msg`]: the envelope channel's messages and the frame metadata;
//! - [`grant`]: VMPI's grant and copy formats and the host's grant table
//!   with the checks of every copy;
//! - [`posted`]: posted receives: buffers a receiver posts ahead, the
//!   frames delivered into them, the device's book of them;
//! - [`table`]: the forwarding table, its sysfs lines, and the `TABLE`
//!   message that carries it to the netfronts;
//! - [`domain`]: the lines that attach a VMPI device as a domain;
//! - [`front`]: the lines that make a netfront interface;
//! - [`switch`]: what the host's switch does with each frame and grant.

pub mod domain;
pub mod front;
pub mod grant;
pub mod msg;
pub mod posted;
pub mod switch;
pub mod table;

/// Little-endian reads of a slice the caller has checked the length of.
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// See [`le16`].
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// See [`le16`].
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}
