// SPDX-License-Identifier: GPL-2.0

//! vmpi_host's module parameters, read safely. They are defined in C
//! (`host_params.c`) because 6.12's `module!` takes no parameters; this
//! is the one place that calls their getters.

use crate::bindings;
use crate::envelope_proto::grant::BATCH;

/// Chains a device takes from each grant queue (grants, copy requests,
/// deliveries) per work pass before it runs again: `copy_batch`, 1 to
/// [`BATCH`] (the default; the getter clamps to the same bounds).
pub(crate) fn copy_batch() -> usize {
    // SAFETY: the getter only reads (`READ_ONCE`) a parameter of this
    // module, which lives as long as the module's code that calls it.
    let n = unsafe { bindings::vmpi_host_copy_batch() as usize };
    n.clamp(1, BATCH)
}

/// How long a grant recorded now may stay unfinished before it completes
/// `TIMEOUT`, in ns: `grant_hold_ms`, 100 to 60000 ms (default 1000:
/// [`crate::envelope_proto::grant::HOLD_NS`]; the getter clamps to the
/// same bounds).
pub(crate) fn grant_hold_ns() -> u64 {
    // SAFETY: as in `copy_batch`.
    let ms = unsafe { bindings::vmpi_host_grant_hold_ms() };
    u64::from(ms.clamp(100, 60_000)) * 1_000_000
}
