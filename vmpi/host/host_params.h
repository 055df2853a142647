/* SPDX-License-Identifier: GPL-2.0 */
/* vmpi_host's module parameters (vmpi/host/host_params.c). */
#ifndef RVIO_VMPI_HOST_PARAMS_H
#define RVIO_VMPI_HOST_PARAMS_H

/* Chains a device takes from each grant queue per work pass: 1 to 64. */
unsigned int vmpi_host_copy_batch(void);
/* How long a grant may stay unfinished, in ms: 100 to 60000. */
unsigned int vmpi_host_grant_hold_ms(void);

#endif /* RVIO_VMPI_HOST_PARAMS_H */
