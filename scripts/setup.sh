#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything rvio needs on a Debian 12 (bookworm) x86_64 machine and
# build the test kernel. Idempotent: each step checks what is there first and
# says what it does. Run as root (apt-get), or with sudo.
#
#   scripts/setup.sh            packages (QEMU from bookworm-backports), bindgen, kernel
#   scripts/setup.sh --no-kernel   everything but the kernel build
set -euo pipefail
source "$(dirname "$0")/lib.sh"

build_kernel=1
[ "${1:-}" = --no-kernel ] && build_kernel=0

APT_PKGS=(
	"$RVIO_KERNEL_PKG" rustc-web rust-web-src rust-web-clippy rustfmt-web
	clang-19 lld-19 llvm-19 libclang-19-dev
	flex bison bc libelf-dev libssl-dev cpio xz-utils make ca-certificates
	iproute2 ethtool iputils-ping kmod procps pciutils python3
	g++ # libFuzzer (scripts/fuzz.sh)
)
# cargo (bindgen's `cargo install`, the host `cargo test`): the user's
# (rustup's) if there is one, else Debian's cargo-web, which matches rustc-web
# (it conflicts with Debian's rustup package, so only when no cargo exists).
PATH=$HOME/.cargo/bin:$PATH command -v cargo >/dev/null || APT_PKGS+=(cargo-web)
QEMU_MIN_MAJOR=10

sudo_cmd() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing_pkgs() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
			printf '%s ' "$p"
	done
}

qemu_ok() {
	command -v qemu-system-x86_64 >/dev/null || return 1
	local major
	major=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
	[ "${major:-0}" -ge $QEMU_MIN_MAJOR ]
}

# bookworm's own QEMU is 7.2 (no igb, no vhost-vdpa-device-pci); 10.x is in
# bookworm-backports. Add that suite using the mirror apt already uses.
add_backports() {
	grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
	local uri
	uri=$(awk '/^URIs:/ { u=$2 } /^Suites:/ && / bookworm( |$)/ { print u; exit }' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="bookworm" { print $2; exit }' \
		/etc/apt/sources.list 2>/dev/null || true)
	[ -n "$uri" ] || rvio_die "cannot find the Debian mirror in apt's sources to add bookworm-backports"
	rvio_log "adding bookworm-backports from $uri to apt's sources"
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		"$uri" | sudo_cmd tee /etc/apt/sources.list.d/rvio-bookworm-backports.sources >/dev/null
}

step_packages() {
	local miss
	add_backports
	miss=$(missing_pkgs "${APT_PKGS[@]}")
	if [ -z "$miss" ] && qemu_ok; then
		rvio_log "Debian packages: all present"
		return
	fi
	rvio_log "Debian packages: installing ${miss:-}${miss:+ }qemu-system-x86 (backports)"
	sudo_cmd apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -q --no-install-recommends $miss
	DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -q --no-install-recommends \
		-t bookworm-backports qemu-system-x86
	qemu_ok || rvio_die "QEMU >= $QEMU_MIN_MAJOR not installed (is bookworm-backports reachable?)"
}

step_bindgen() {
	if [ -x "$RVIO_BINDGEN" ] && "$RVIO_BINDGEN" --version | grep -q " $RVIO_BINDGEN_VERSION\$"; then
		rvio_log "bindgen $RVIO_BINDGEN_VERSION: present"
		return
	fi
	rvio_log "bindgen $RVIO_BINDGEN_VERSION: cargo install (about 75 s)"
	# Any cargo builds this host tool; prefer the user's (rustup's) over ours.
	local cargo
	cargo=$(PATH=$HOME/.cargo/bin:$PATH command -v cargo) ||
		rvio_die "cargo not found: install a Rust toolchain (rustup or Debian's cargo-web)"
	"$cargo" install --locked --quiet bindgen-cli --version "$RVIO_BINDGEN_VERSION" \
		--root "$(dirname "$(dirname "$RVIO_BINDGEN")")"
}

step_toolchain_check() {
	local v
	v=$(/usr/bin/rustc --version 2>/dev/null) || rvio_die "/usr/bin/rustc missing: install rustc-web"
	[ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library" ] ||
		rvio_die "$v has no library source: install rust-web-src"
	rvio_log "toolchain: $v, $("$RVIO_BINDGEN" --version), $(clang-19 --version | head -1)"
}

mkdir -p "$RVIO_CACHE"
step_packages
step_bindgen
step_toolchain_check
if [ $build_kernel = 1 ]; then
	"$RVIO_ROOT/scripts/build-kernel.sh"
fi
rvio_log "setup done"
