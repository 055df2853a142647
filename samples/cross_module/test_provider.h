/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C-ABI of the rvio_test_provider sample module, the model for every
 * cross-module API of rvio (whose headers live in include/rvio/): the API
 * is declared once, here; the provider implements it in Rust and exports
 * it from a C file with EXPORT_SYMBOL_GPL(); Rust users get it through
 * module-local bindgen.
 */
#ifndef _RVIO_TEST_PROVIDER_H
#define _RVIO_TEST_PROVIDER_H

#include <linux/types.h>

#define RVIO_TEST_PROVIDER_ABI_VERSION 1

/* Returns RVIO_TEST_PROVIDER_ABI_VERSION. */
u32 rvio_test_provider_abi_version(void);

/*
 * Stores the sum of @vals[0..@n) in *@sum.
 * Returns 0, or -EINVAL if @vals or @sum is NULL or @n is 0 or above 4096.
 */
int rvio_test_provider_sum(const u32 *vals, size_t n, u64 *sum);

#endif /* _RVIO_TEST_PROVIDER_H */
