// SPDX-License-Identifier: GPL-2.0

//! Host build of rvio's pure-logic files. Each is a `no_std` Rust file that
//! a kernel module includes with `#[path = ...] mod ...;` and that uses no
//! kernel API; this crate includes the same files so that `cargo test`
//! (run by `make check`) exercises them on the host, and fuzz targets can
//! link them. Add a file here when you add one to a module.
#![cfg_attr(not(test), no_std)]

#[path = "../../../samples/cross_module/provider_sum.rs"]
pub mod provider_sum;

/// The unit tests' reproducible randomness (`rust/test_rng.rs`).
#[cfg(test)]
#[path = "../../test_rng.rs"]
pub mod test_rng;

/// VMPI's wire format and control protocol (`vmpi/proto/`).
#[path = "../../../vmpi/proto/mod.rs"]
pub mod vmpi_proto;

/// Parsing of the one-line sysfs writes (words, numbers, MACs, interface
/// names, domain and VLAN ids) that the pure files below share
/// (`rust/line.rs`); they reach it as `crate::line`.
#[path = "../../../rust/line.rs"]
pub mod line;

/// The SR-IOV hook's sysfs lines, VF policy and its checks, routes
/// (`drivers/sriov_hook/policy.rs`).
#[path = "../../../drivers/sriov_hook/policy.rs"]
pub mod sriov_policy;

/// Envelope switching's formats, forwarding table, grant table and switch
/// decisions (`envelope/proto/`).
#[path = "../../../envelope/proto/mod.rs"]
pub mod envelope_proto;
