# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034
# Common settings for the rvio scripts; sourced, never run.
#
# Everything that is built or installed outside the repository lives under
# $RVIO_CACHE (default ~/.cache/rvio), so a fresh clone on a warm machine
# reuses it and `git clean` never throws away a kernel build.

RVIO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RVIO_CACHE=${RVIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rvio}

# Toolchain pins (see docs/build.md). The kernel's Rust must be Debian's
# rustc-web: it ships the library source the kernel build needs.
RVIO_LLVM_SUFFIX=-19
RVIO_BINDGEN_VERSION=0.69.5
RVIO_KERNEL_PKG=linux-source-6.12
RVIO_KERNEL_TARBALL=/usr/src/linux-source-6.12.tar.xz

RVIO_BINDGEN=$RVIO_CACHE/tools/bindgen-$RVIO_BINDGEN_VERSION/bin/bindgen
# Kernel flavour: "debug" (the default: lockdep, KASAN, KFENCE, kmemleak,
# UBSAN) or "nokasan" or "noubsan" (the same without KASAN or UBSAN, for
# measuring what each costs: scripts/flavour-cost.sh), or "nested" (no
# debug option: scripts/nested-vmpi.sh's guest).
RVIO_KFLAVOUR=${RVIO_KFLAVOUR:-debug}
case $RVIO_KFLAVOUR in
debug | nokasan | noubsan | nested) ;;
*) printf '[rvio] error: RVIO_KFLAVOUR=%s: must be debug, nokasan, noubsan or nested\n' "$RVIO_KFLAVOUR" >&2; exit 1 ;;
esac
# The kernel tree in use for the flavour is recorded here by build-kernel.sh.
RVIO_KDIR_LINK=$RVIO_CACHE/kernel/current
[ "$RVIO_KFLAVOUR" = debug ] || RVIO_KDIR_LINK+=-$RVIO_KFLAVOUR

# Debian's /usr/bin first: rustup's toolchain in ~/.cargo/bin has no rust-src.
export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
export LIBCLANG_PATH=/usr/lib/llvm${RVIO_LLVM_SUFFIX}/lib

# Arguments every kernel-side make needs.
rvio_kmake_args() {
	printf '%s\n' LLVM=$RVIO_LLVM_SUFFIX \
		RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
		RUSTFMT=/usr/bin/rustfmt CLIPPY_DRIVER=/usr/bin/clippy-driver \
		BINDGEN=$RVIO_BINDGEN
}

rvio_log() { printf '[rvio %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
rvio_die() { printf '[rvio] error: %s\n' "$*" >&2; exit 1; }

# The built kernel tree, or an error telling how to get one.
rvio_kdir() {
	local k=${KDIR:-}
	[ -n "$k" ] || k=$(readlink -f "$RVIO_KDIR_LINK" 2>/dev/null) || true
	[ -n "$k" ] && [ -f "$k/.rvio-built" ] ||
		rvio_die "no built kernel tree; run 'make setup' first (or set KDIR)"
	printf '%s\n' "$k"
}

# A benchmark's test-VM run: builds vmpi-perf, empties directory $2, runs
# `scripts/vm-run.sh --name $1 --timeout $3 -- "${@:5}"` showing its
# output and keeping it in $2/vm-output.txt, and keeps its lines whose
# first word matches the regular expression $4 (e.g. 'result|cost') in
# $2/raw.txt; dies if there are none.
rvio_bench_vm() {
	local name=$1 out=$2 timeout=$3 lines=$4
	shift 4
	PATH=$HOME/.cargo/bin:$PATH cargo build --release --locked -p vmpi
	rm -rf "$out"
	mkdir -p "$out"
	# The VM cannot write here: its output comes back on standard output.
	scripts/vm-run.sh --timeout "$timeout" --name "$name" -- "$@" | tee "$out/vm-output.txt"
	grep -E "^($lines) " "$out/vm-output.txt" >"$out/raw.txt" ||
		rvio_die "$name: no results (see $out/vm-output.txt)"
}

# matplotlib for a benchmark's plot: installed if missing (no plot without).
rvio_want_matplotlib() {
	local sudo=
	python3 -c 'import matplotlib' 2>/dev/null && return 0
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get install -y -q python3-matplotlib >/dev/null || rvio_log "bench: no matplotlib, no plot"
}
