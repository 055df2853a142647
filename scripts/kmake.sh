#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make against the rvio kernel tree (or $KDIR) with the pinned toolchain:
#   scripts/kmake.sh M=$PWD modules
set -euo pipefail
source "$(dirname "$0")/lib.sh"
kdir=$(rvio_kdir)
mapfile -t args < <(rvio_kmake_args)
exec make -C "$kdir" "${args[@]}" "$@"
