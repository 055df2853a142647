#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz the parsers of untrusted bytes in rvio's pure logic with libFuzzer:
# every target in fuzz/fuzz_targets/, SECS seconds each, one `ok` or
# `not ok` line per target. `make fuzz` runs it (60 s each); `make check`
# runs it for a few seconds each (scripts/check.sh).
#
# The machine's stable toolchain is enough: the targets are built as
# cargo-fuzz builds them (`--cfg fuzzing`, SanitizerCoverage for
# libFuzzer's guidance, debug assertions and overflow checks on) but
# without AddressSanitizer, which needs nightly and finds nothing in safe
# Rust that a panic does not show. Each run starts from the committed
# corpus fuzz/corpus/<target> (minimized: libFuzzer's -merge) and what
# earlier runs here found, kept in build/fuzz-corpus/<target>; a crashing
# input goes to build/fuzz-artifacts/. FUZZ_MERGE=1 merges what this run
# found into fuzz/corpus/ (inputs that add coverage only), to commit.
#
# usage: [FUZZ_MERGE=1] scripts/fuzz.sh [SECS] [TARGET...]   (default: 60 s, all targets)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
export PATH=$HOME/.cargo/bin:$PATH

secs=${1:-60}
[ $# -gt 0 ] && shift
if [ $# = 0 ]; then
	for f in fuzz/fuzz_targets/*.rs; do set -- "$@" "$(basename "$f" .rs)"; done
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
tdir=$RVIO_ROOT/build/fuzz-target
# Build scripts and proc macros stay uninstrumented: with --target,
# RUSTFLAGS apply to the target's crates only.
flags="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
rvio_log "fuzz: building ${*} (stable, SanitizerCoverage)"
if ! (cd fuzz && RUSTFLAGS=$flags cargo build --locked --release --bins --target "$triple" \
	--target-dir "$tdir" >"$RVIO_ROOT/build/fuzz-build.log" 2>&1); then
	tail -n 20 "$RVIO_ROOT/build/fuzz-build.log" >&2
	echo "not ok fuzz: the targets do not build (build/fuzz-build.log)"
	exit 1
fi
rc=0
mkdir -p build/fuzz-artifacts
for t in "$@"; do
	corpus=build/fuzz-corpus/$t
	mkdir -p "$corpus"
	log=build/fuzz-$t.log
	mkdir -p "fuzz/corpus/$t"
	if "$tdir/$triple/release/$t" "$corpus" "fuzz/corpus/$t" -max_total_time="$secs" -max_len=8192 \
		-timeout=10 -artifact_prefix="build/fuzz-artifacts/$t-" >"$log" 2>&1; then
		runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
		echo "ok fuzz $t: ${runs:-?} runs in ${secs} s, no crash"
		if [ "${FUZZ_MERGE:-0}" = 1 ]; then
			"$tdir/$triple/release/$t" -merge=1 -max_len=8192 "fuzz/corpus/$t" "$corpus" \
				>"build/fuzz-$t-merge.log" 2>&1 &&
				rvio_log "fuzz: fuzz/corpus/$t: $(ls "fuzz/corpus/$t" | wc -l) inputs"
		fi
	else
		tail -n 30 "$log" >&2
		echo "not ok fuzz $t: crashed (input in build/fuzz-artifacts/, log $log)"
		rc=1
	fi
done
exit $rc
