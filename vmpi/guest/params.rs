// SPDX-License-Identifier: GPL-2.0

//! vmpi_guest's module parameters, read safely. They are defined in C
//! (`guest_params.c`) because 6.12's `module!` takes no parameters; this
//! is the one place that calls their getters.

use crate::bindings;

/// Most rxq buffers a device keeps posted: `rx_buffers`, 16 to 256
/// (default 64).
pub(crate) fn rx_buffers() -> usize {
    // SAFETY: the getter only reads (`READ_ONCE`) a parameter of this
    // module, which lives as long as the module's code that calls it.
    unsafe { bindings::vmpi_guest_rx_buffers() as usize }
}

/// Payload bytes of each rxq buffer (after its 4-byte header):
/// `rx_buf_size`, a power of two from 4096 to 65536 (default 16384).
pub(crate) fn rx_buf_size() -> usize {
    // SAFETY: as in `rx_buffers`.
    unsafe { bindings::vmpi_guest_rx_buf_size() as usize }
}

/// Whether to negotiate `VIRTIO_RING_F_EVENT_IDX`: `event_idx`.
pub(crate) fn event_idx() -> bool {
    // SAFETY: as in `rx_buffers`.
    unsafe { bindings::vmpi_guest_event_idx() }
}

/// Whether to negotiate `VMPI_F_GRANT`: `grants`.
pub(crate) fn grants() -> bool {
    // SAFETY: as in `rx_buffers`.
    unsafe { bindings::vmpi_guest_grants() }
}

/// Whether to negotiate `VIRTIO_RING_F_INDIRECT_DESC`: `indirect_desc`.
pub(crate) fn indirect_desc() -> bool {
    // SAFETY: as in `rx_buffers`.
    unsafe { bindings::vmpi_guest_indirect_desc() }
}
