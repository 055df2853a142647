#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Where the envelope path's time goes: boots the test VM and runs
# scripts/profile-envelope-vm.sh (a TCP stream or UDP datagrams between
# two netfronts through the host's switch, under perf). Not a test.
#
# usage: scripts/profile-envelope.sh [MTU] [MIB] [flat|children] [POSTED] [tcp|udp] [envelope|copy]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
# vmpi-perf, for UDP.
PATH=$HOME/.cargo/bin:$PATH cargo build --release --locked -p vmpi
scripts/vm-run.sh --timeout 1200 --name profile-envelope -- \
	scripts/profile-envelope-vm.sh "${1:-1500}" "${2:-24}" "${3:-flat}" "${4:-0}" "${5:-tcp}" "${6:-envelope}"
