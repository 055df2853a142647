// SPDX-License-Identifier: GPL-2.0

//! VMPI's pure logic: no kernel API, so the modules include it with
//! `#[path = "proto/mod.rs"] mod proto;` and `cargo test` runs its tests on
//! the host (`rust/pure`). `docs/vmpi-protocol.md` is the specification.

pub mod ctrl;
pub mod endpoint;
pub mod link;
pub mod log_limit;
pub mod outbox;
pub mod wire;
