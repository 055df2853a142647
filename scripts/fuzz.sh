#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz the parsers of untrusted bytes in rvio's pure logic with cargo-fuzz
# (libFuzzer): every target in fuzz/, SECS seconds each. Needs rustup's
# nightly toolchain and cargo-fuzz (`cargo install --locked cargo-fuzz`).
# Not part of `make check`; `make fuzz` runs it. The corpus is kept in
# build/fuzz-corpus/<target>.
#
# usage: scripts/fuzz.sh [SECS] [TARGET...]      (default: 60 s, all targets)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT/fuzz"
export PATH=$HOME/.cargo/bin:$PATH

secs=${1:-60}
[ $# -gt 0 ] && shift
command -v cargo-fuzz >/dev/null || rvio_die "cargo-fuzz missing: cargo install --locked cargo-fuzz"
rustup run nightly rustc --version >/dev/null 2>&1 || rvio_die "no nightly toolchain: rustup toolchain install nightly"
if [ $# = 0 ]; then
	mapfile -t targets < <(cargo +nightly fuzz list)
	set -- "${targets[@]}"
fi
for t in "$@"; do
	corpus=$RVIO_ROOT/build/fuzz-corpus/$t
	mkdir -p "$corpus"
	rvio_log "fuzz: $t for ${secs}s (corpus $corpus)"
	cargo +nightly fuzz run "$t" "$corpus" -- -max_total_time="$secs" -max_len=8192
done
rvio_log "fuzz: no crash"
