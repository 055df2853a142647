// SPDX-License-Identifier: GPL-2.0
/*
 * Why C: Rust code cannot EXPORT_SYMBOL in 6.12, so this file exports the C-ABI
 * that rvio_test_provider_main.rs implements (test_provider.h).
 */
#include <linux/export.h>
#include "test_provider.h"

EXPORT_SYMBOL_GPL(rvio_test_provider_abi_version);
EXPORT_SYMBOL_GPL(rvio_test_provider_sum);
