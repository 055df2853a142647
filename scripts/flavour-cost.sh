#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# What a debug option costs under this machine's QEMU: boots the "debug"
# kernel and a flavour without that option ("nokasan": KASAN, "noubsan":
# UBSAN) one after the other, runs the same command in each, and prints the
# times and their ratio. Builds the flavour's kernel first if needed (a
# cold kernel build).
#
# usage: scripts/flavour-cost.sh FLAVOUR [ROUNDS] [-- CMD...]
#   default: 1 round of `make -C selftests/env run_tests`
# Not part of `make check`: a measurement, not a test.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"

other=${1:?usage: flavour-cost.sh nokasan|noubsan [ROUNDS] [-- CMD...]}
shift
case $other in nokasan | noubsan) ;; *) rvio_die "flavour-cost: no flavour $other" ;; esac
rounds=1
[ $# -gt 0 ] && [ "$1" != -- ] && { rounds=$1; shift; }
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || set -- make -s --no-print-directory -C selftests/env run_tests

logs=${RVIO_LOG_DIR:-$RVIO_ROOT/build/logs}
mkdir -p "$logs"
export RVIO_LOG_DIR=$logs

RVIO_KFLAVOUR=$other scripts/build-kernel.sh
scripts/build-kernel.sh

# Seconds from kernel start to init, and from init to the command's end
# ("rvio-vm: command done"), read off the console's printk timestamps.
stamp() { sed -n "s/^\[ *\([0-9.]*\)\] .*$2.*/\1/p" "$1" | head -n 1; }

declare -A boot=() run=() wall=()
for ((r = 1; r <= rounds; r++)); do
	for f in debug "$other"; do
		RVIO_KFLAVOUR=$f make -s modules >/dev/null
		name=flavour-cost-$f-$r
		t0=$(date +%s)
		RVIO_KFLAVOUR=$f scripts/vm-run.sh --igb --name "$name" -- "$@" >"$logs/$name.out" ||
			rvio_die "$f: the command failed; see $logs/$name.out and .console"
		w=$(($(date +%s) - t0))
		log=$logs/$name.console
		i=$(stamp "$log" 'as init process')
		d=$(stamp "$log" 'rvio-vm: command done')
		boot[$f]+=" $i" run[$f]+=" $(echo "$d - $i" | bc)" wall[$f]+=" $w"
		rvio_log "flavour-cost: round $r $f: boot ${i}s, init to command end $(echo "$d - $i" | bc)s, wall ${w}s"
	done
done
make -s modules >/dev/null # leave the modules built for the default kernel

mean() { printf '%s\n' $1 | awk '{ s += $1 } END { printf "%.1f", s / NR }'; }
printf '%-32s %10s %10s %8s\n' "mean over $rounds round(s), s" debug "$other" ratio
for m in boot run wall; do
	declare -n v=$m
	a=$(mean "${v[debug]}") b=$(mean "${v[$other]}")
	printf '%-32s %10s %10s %8s\n' "$m" "$a" "$b" "$(echo "scale=2; $a / $b" | bc)"
done
