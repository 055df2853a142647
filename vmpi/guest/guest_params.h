/* SPDX-License-Identifier: GPL-2.0 */
/* vmpi_guest's module parameters (vmpi/guest/guest_params.c). */
#ifndef RVIO_VMPI_GUEST_PARAMS_H
#define RVIO_VMPI_GUEST_PARAMS_H

#include <linux/types.h>

/* rxq buffers a device keeps posted: 16 to 256. */
unsigned int vmpi_guest_rx_buffers(void);
/* Payload bytes of each rxq buffer (after its 4-byte header): a power of
 * two, 4096 to 65536. */
unsigned int vmpi_guest_rx_buf_size(void);
/* Whether to negotiate VIRTIO_RING_F_EVENT_IDX. */
bool vmpi_guest_event_idx(void);
/* Whether to negotiate VIRTIO_RING_F_INDIRECT_DESC. */
bool vmpi_guest_indirect_desc(void);
bool vmpi_guest_grants(void);

#endif /* RVIO_VMPI_GUEST_PARAMS_H */
