/* SPDX-License-Identifier: GPL-2.0 */
/* vmpi_guest's module parameters (vmpi/guest/guest_params.c). */
#ifndef RVIO_VMPI_GUEST_PARAMS_H
#define RVIO_VMPI_GUEST_PARAMS_H

#include <linux/types.h>

/* rxq buffers (one page each) a device keeps posted: 16 to 256. */
unsigned int vmpi_guest_rx_buffers(void);
/* Whether to negotiate VIRTIO_RING_F_EVENT_IDX. */
bool vmpi_guest_event_idx(void);
/* Whether to negotiate VIRTIO_RING_F_INDIRECT_DESC. */
bool vmpi_guest_indirect_desc(void);
bool vmpi_guest_grants(void);

#endif /* RVIO_VMPI_GUEST_PARAMS_H */
