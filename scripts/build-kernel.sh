#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the rvio test kernel from Debian's linux-source-6.12 tarball, cached
# outside the repository under $RVIO_CACHE/kernel/<key>, where <key> hashes
# every input: the source package version, the config fragments, the
# toolchain versions and RVIO_KBUILD_EPOCH (bump it when the recipe below
# changes). Same inputs: nothing to do. An interrupted build resumes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Bump when the build recipe in this file changes in a way that matters.
RVIO_KBUILD_EPOCH=1
FRAGMENTS=(scripts/kconfig/rvio.config scripts/kconfig/debug.config scripts/kconfig/trim.config)
# Fragments whose every line must survive `make olddefconfig`.
CHECKED_FRAGMENTS=(scripts/kconfig/rvio.config scripts/kconfig/debug.config)
if [ "$RVIO_KFLAVOUR" != debug ]; then
	FRAGMENTS+=("scripts/kconfig/$RVIO_KFLAVOUR.config")
	CHECKED_FRAGMENTS+=("scripts/kconfig/$RVIO_KFLAVOUR.config")
fi
JOBS=${JOBS:-$(($(nproc) + 1))}
KEEP_TREES=2

cd "$RVIO_ROOT"
[ -f "$RVIO_KERNEL_TARBALL" ] || rvio_die "$RVIO_KERNEL_TARBALL missing: run scripts/setup.sh"
[ -x "$RVIO_BINDGEN" ] || rvio_die "bindgen missing: run scripts/setup.sh"

# One build at a time per cache (a second `make check` waits here).
mkdir -p "$RVIO_CACHE/kernel"
exec 9>"$RVIO_CACHE/kernel/.lock"
flock -n 9 || { rvio_log "another kernel build holds $RVIO_CACHE/kernel/.lock; waiting"; flock 9; }

kver_pkg=$(dpkg-query -W -f='${Version}' "$RVIO_KERNEL_PKG")
inputs=$(
	echo "epoch $RVIO_KBUILD_EPOCH"
	echo "source $RVIO_KERNEL_PKG $kver_pkg $(stat -c %s "$RVIO_KERNEL_TARBALL")"
	echo "rustc $(/usr/bin/rustc --version)"
	echo "bindgen $("$RVIO_BINDGEN" --version)"
	echo "clang $(clang$RVIO_LLVM_SUFFIX --version | head -1)"
	sha256sum "${FRAGMENTS[@]}"
)
key=$(printf '%s\n' "$inputs" | sha256sum | cut -c1-16)
tree=$RVIO_CACHE/kernel/$key
mapfile -t KMAKE < <(rvio_kmake_args)
kmake() { make -C "$tree" "${KMAKE[@]}" "$@" </dev/null; }

# The modules as the test VM sees them in /lib/modules (scripts/vm-init.sh).
# Installed beside and renamed into place: a run that dies half-way leaves
# no half-installed tree that the check below would take as complete.
install_mods() {
	rm -rf "$tree/.rvio-mods" "$tree/.rvio-mods.tmp"
	kmake -s modules_install INSTALL_MOD_PATH="$tree/.rvio-mods.tmp" INSTALL_MOD_STRIP=1 >/dev/null
	mv "$tree/.rvio-mods.tmp" "$tree/.rvio-mods"
}

if [ -f "$tree/.rvio-built" ]; then
	rvio_log "kernel $key: cached ($(cat "$tree/.rvio-built"))"
	[ -d "$tree/.rvio-mods" ] || install_mods
	ln -sfn "$tree" "$RVIO_KDIR_LINK"
	exit 0
fi

start=$(date +%s)
mkdir -p "$RVIO_CACHE/kernel"
if [ ! -f "$tree/Makefile" ]; then
	rvio_log "kernel $key: extracting $RVIO_KERNEL_PKG $kver_pkg"
	rm -rf "$tree.tmp"
	mkdir -p "$tree.tmp"
	tar -xf "$RVIO_KERNEL_TARBALL" -C "$tree.tmp" --strip-components=1
	rm -rf "$tree"
	mv "$tree.tmp" "$tree"
fi
printf '%s\n' "$inputs" >"$tree/.rvio-inputs"

rvio_log "kernel $key: checking the Rust toolchain (make rustavailable)"
kmake rustavailable >/dev/null 2>"$tree/.rvio-rustavailable.log" || {
	cat "$tree/.rvio-rustavailable.log" >&2
	rvio_die "the kernel does not accept this Rust toolchain; see above (Debian's rustc-web, rust-web-src and bindgen $RVIO_BINDGEN_VERSION are required)"
}

if [ ! -f "$tree/.rvio-configured" ]; then
	rvio_log "kernel $key: configuring (x86_64_defconfig + kvm_guest + ${FRAGMENTS[*]##*/})"
	kmake -s x86_64_defconfig
	(cd "$tree" && KCONFIG_CONFIG=.config ./scripts/kconfig/merge_config.sh -m -Q \
		.config kernel/configs/kvm_guest.config "${FRAGMENTS[@]/#/$RVIO_ROOT/}" >/dev/null)
	kmake -s olddefconfig
	# What the checked fragments ask for, a later fragment winning.
	declare -A want=()
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) want[${line%%=*}]=$line ;;
		"# CONFIG_"*" is not set") o=${line#\# }; want[${o%% *}]=$line ;;
		esac
	done < <(cat "${CHECKED_FRAGMENTS[@]}")
	bad=0
	for o in "${!want[@]}"; do
		line=${want[$o]}
		got=$(grep "^$o=" "$tree/.config" || true)
		case "$line" in
		"# "*) [ -z "$got" ] ;;
		*) [ "$got" = "$line" ] ;;
		esac || { echo "  wanted: $line, got: ${got:-unset}" >&2; bad=1; }
	done
	[ $bad = 0 ] || rvio_die "kernel config does not hold the options above (missing dependency?)"
	# trim.config only saves build time: report what did not stick.
	while IFS= read -r line; do
		o=${line#\# }; o=${o%% *}
		grep -q "^$o=" "$tree/.config" && rvio_log "  note: trim.config left $o set (selected by another option, or only settable with EXPERT)"
	done < <(grep '^# CONFIG_.* is not set' scripts/kconfig/trim.config)
	touch "$tree/.rvio-configured"
fi

rvio_log "kernel $key: building bzImage and modules with -j$JOBS (cold: ~22 min on 2 cores; log: $tree/.rvio-build.log)"
if ! kmake -j"$JOBS" bzImage modules >"$tree/.rvio-build.log" 2>&1; then
	tail -40 "$tree/.rvio-build.log" >&2
	rvio_die "kernel build failed; full log: $tree/.rvio-build.log"
fi
install_mods
secs=$(($(date +%s) - start))
echo "$(kmake -s kernelrelease) built in ${secs}s on $(date -u +%FT%TZ)" >"$tree/.rvio-built"
ln -sfn "$tree" "$RVIO_KDIR_LINK"
rvio_log "kernel $key: built in ${secs}s"

# Keep the newest $KEEP_TREES trees, and every tree a flavour's link names;
# each is a few GiB.
linked=$(readlink -f "$RVIO_CACHE"/kernel/current* 2>/dev/null || true)
find "$RVIO_CACHE/kernel" -mindepth 1 -maxdepth 1 -type d ! -name '*.tmp' -printf '%T@ %p\n' |
	sort -rn | cut -d' ' -f2- | tail -n +$((KEEP_TREES + 1)) | while read -r old; do
	grep -qxF -- "$old" <<<"$linked" && continue
	rvio_log "pruning old kernel tree $old"
	rm -rf "$old"
done
