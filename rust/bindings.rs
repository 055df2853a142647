// SPDX-License-Identifier: GPL-2.0

//! Module-local bindings to the C APIs that the 6.12 `kernel` crate does not
//! bind. `Kbuild` runs bindgen over each module directory's
//! `bindings_helper.h` (the headers that directory's modules use) and
//! writes `bindings_generated.rs` next to it: this file, then bindgen's
//! output. A crate root includes it with
//! `#[path = "bindings_generated.rs"] mod bindings;`. Only the safe
//! abstractions in `rust/`, the wrappers in `rust/rvio/` and a module's
//! `// SAFETY:`-annotated glue call these functions.

#![allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    missing_docs,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
