#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo `make demo` runs inside the test VM. Until VMPI lands it shows the
# foundation at work: two out-of-tree Rust modules, one calling the other's
# C-ABI, loaded and unloaded in the debug kernel.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

echo "== kernel: $(uname -r), $(grep -c processor /proc/cpuinfo) CPUs"
config=$(bash -c ". '$root/scripts/lib.sh' && rvio_kdir")/.config
echo "== debug options: $(for o in KASAN PROVE_LOCKING KFENCE DEBUG_KMEMLEAK; do
	grep -qs "^CONFIG_$o=y" "$config" && printf '%s ' $o; done)"
mark=$(dmesg | wc -l)
insmod "$root/rvio_test_provider.ko"
insmod "$root/rvio_test_consumer.ko"
echo "== loaded:"
lsmod | grep '^rvio_' | sed 's/^/   /'
rmmod rvio_test_consumer
rmmod rvio_test_provider
echo "== kernel log:"
dmesg | tail -n +$((mark + 1)) | grep rvio_ | sed 's/^/   /'
echo "== demo ok"
