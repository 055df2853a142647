// SPDX-License-Identifier: GPL-2.0

//! Safe interface to the C-ABI of `test_provider.h`, for Rust modules that
//! call `rvio_test_provider.ko`.
//!
//! Every cross-module API of rvio has this shape: a C header (the one
//! definition of the ABI), an implementation exported with
//! `EXPORT_SYMBOL_GPL()` from a C file of the providing module, and a file
//! like this one that callers include next to `mod bindings;`. The
//! project's own APIs keep the header in `include/rvio/` and this wrapper
//! in `rust/rvio/`; the sample keeps both here, beside its modules.

use crate::bindings;
use kernel::error::{to_result, Result};

/// ABI version of the loaded provider.
pub(crate) fn abi_version() -> u32 {
    // SAFETY: The function has no preconditions.
    unsafe { bindings::rvio_test_provider_abi_version() }
}

/// Sum of `vals`, computed by the provider module.
///
/// Fails with `EINVAL` for an empty slice or one longer than the provider
/// accepts.
pub(crate) fn sum(vals: &[u32]) -> Result<u64> {
    let mut sum = 0u64;
    // SAFETY: `vals` is valid for `vals.len()` reads and `sum` for one write
    // for the whole call; the provider keeps neither pointer.
    to_result(unsafe { bindings::rvio_test_provider_sum(vals.as_ptr(), vals.len(), &mut sum) })?;
    Ok(sum)
}
