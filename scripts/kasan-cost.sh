#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# What KASAN costs under this machine's QEMU: boots the "debug" kernel and
# the "nokasan" flavour (the same config without KASAN) one after the other,
# runs the same command in each, and prints the times and their ratio.
# Builds the nokasan kernel first if needed (a cold kernel build).
#
# usage: scripts/kasan-cost.sh [ROUNDS] [-- CMD...]
#   default: 1 round of `make -C selftests/env run_tests`
# Not part of `make check`: a measurement, not a test.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"

rounds=1
[ $# -gt 0 ] && [ "$1" != -- ] && { rounds=$1; shift; }
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || set -- make -s --no-print-directory -C selftests/env run_tests

logs=${RVIO_LOG_DIR:-$RVIO_ROOT/build/logs}
mkdir -p "$logs"
export RVIO_LOG_DIR=$logs

RVIO_KFLAVOUR=nokasan scripts/build-kernel.sh
scripts/build-kernel.sh

# Seconds from kernel start to init, and from init to the command's end
# ("rvio-vm: command done"), read off the console's printk timestamps.
stamp() { sed -n "s/^\[ *\([0-9.]*\)\] .*$2.*/\1/p" "$1" | head -n 1; }

declare -A boot=() run=() wall=()
for ((r = 1; r <= rounds; r++)); do
	for f in debug nokasan; do
		RVIO_KFLAVOUR=$f make -s modules >/dev/null
		name=kasan-cost-$f-$r
		t0=$(date +%s)
		RVIO_KFLAVOUR=$f scripts/vm-run.sh --igb --name "$name" -- "$@" >"$logs/$name.out" ||
			rvio_die "$f: the command failed; see $logs/$name.out and .console"
		w=$(($(date +%s) - t0))
		log=$logs/$name.console
		i=$(stamp "$log" 'as init process')
		d=$(stamp "$log" 'rvio-vm: command done')
		boot[$f]+=" $i" run[$f]+=" $(echo "$d - $i" | bc)" wall[$f]+=" $w"
		rvio_log "kasan-cost: round $r $f: boot ${i}s, init to command end $(echo "$d - $i" | bc)s, wall ${w}s"
	done
done
make -s modules >/dev/null # leave the modules built for the default kernel

mean() { printf '%s\n' $1 | awk '{ s += $1 } END { printf "%.1f", s / NR }'; }
printf '%-32s %10s %10s %8s\n' "mean over $rounds round(s), s" debug nokasan ratio
for m in boot run wall; do
	declare -n v=$m
	a=$(mean "${v[debug]}") b=$(mean "${v[nokasan]}")
	printf '%-32s %10s %10s %8s\n' "$m" "$a" "$b" "$(echo "scale=2; $a / $b" | bc)"
done
