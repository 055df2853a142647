/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the sample's Rust binds: its C-ABI (Kbuild runs bindgen over this
 * file into bindings_generated.rs; rust/bindgen_parameters limits what is
 * bound).
 */
#include "test_provider.h"
