#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Where VMPI's time goes for small SDUs: boots the test VM and runs
# scripts/profile-vmpi-vm.sh (vmpi-perf under perf). Not a test.
#
# usage: scripts/profile-vmpi.sh [SIZE] [up|down|rr] [flat|children]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
PATH=$HOME/.cargo/bin:$PATH cargo build --release --locked -p vmpi
scripts/vm-run.sh --timeout 1200 --name profile-vmpi -- scripts/profile-vmpi-vm.sh "${1:-250}" "${2:-up}" "${3:-flat}"
