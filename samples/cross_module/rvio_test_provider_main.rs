// SPDX-License-Identifier: GPL-2.0

//! Sample module: implements the C-ABI declared in `test_provider.h` in
//! Rust; `rvio_test_provider_exports.c` exports it to other modules.

use kernel::error::from_result;
use kernel::ffi::c_int;
use kernel::prelude::*;

#[path = "bindings_generated.rs"]
mod bindings;
// Pure logic, shared with the host crate rust/pure: `pub` keeps its API
// reachable (the kernel denies `unreachable_pub`).
#[path = "provider_sum.rs"]
pub mod provider_sum;

module! {
    type: TestProvider,
    name: "rvio_test_provider",
    author: "rvio developers",
    description: "rvio selftest: a C-ABI implemented in Rust, exported to other modules",
    license: "GPL",
}

struct TestProvider;

impl kernel::Module for TestProvider {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!(
            "loaded, ABI version {}\n",
            bindings::RVIO_TEST_PROVIDER_ABI_VERSION
        );
        Ok(TestProvider)
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}

/// See `test_provider.h`.
#[no_mangle]
pub extern "C" fn rvio_test_provider_abi_version() -> u32 {
    bindings::RVIO_TEST_PROVIDER_ABI_VERSION
}

/// See `test_provider.h`.
///
/// # Safety
///
/// `vals` must be NULL or valid for `n` reads of `u32`, and `sum` NULL or
/// valid for one write of `u64`, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn rvio_test_provider_sum(
    vals: *const u32,
    n: usize,
    sum: *mut u64,
) -> c_int {
    from_result(|| {
        if vals.is_null() || sum.is_null() {
            return Err(EINVAL);
        }
        provider_sum::check_len(n).map_err(|_| EINVAL)?;
        // SAFETY: `vals` is not NULL, so by the function's safety contract it
        // is valid for `n` reads for the whole call.
        let vals = unsafe { core::slice::from_raw_parts(vals, n) };
        let total = provider_sum::sum(vals).map_err(|_| EINVAL)?;
        // SAFETY: `sum` is not NULL, so by the safety contract it is valid
        // for one write.
        unsafe { sum.write(total) };
        Ok(0)
    })
}

// The C header is the one definition of the ABI: fail to build if these
// definitions drift from the prototypes bindgen read from it.
const _: [unsafe extern "C" fn() -> u32; 2] = [
    bindings::rvio_test_provider_abi_version,
    rvio_test_provider_abi_version,
];
const _: [unsafe extern "C" fn(*const u32, usize, *mut u64) -> c_int; 2] =
    [bindings::rvio_test_provider_sum, rvio_test_provider_sum];
