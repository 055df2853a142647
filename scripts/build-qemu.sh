#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make qemu`: build qemu-system-x86_64 alone from Debian's QEMU source (the
# orig tarball of the version installed from bookworm-backports) with
# rvio's patch (qemu/*.patch: vhost-vdpa-device serves device types QEMU
# does not know, so VMPI's id 63), cached outside the repository under
# $RVIO_CACHE/qemu/<key>, where <key> hashes every input: the tarball's
# checksum, the patches, the configure flags and RVIO_QBUILD_EPOCH. Same
# inputs: nothing to do. Prints the binary's path last; $RVIO_CACHE/qemu/current
# links to its directory. 3 to 14 minutes on two cores the first time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RVIO_QBUILD_EPOCH=1
QEMU_VERSION=10.0.2
# Debian's orig tarball (bookworm-backports, qemu 1:10.0.2+ds-2+deb13u1~bpo12+1):
# its SHA-256 from the suite's Sources index.
TARBALL=qemu_$QEMU_VERSION+ds.orig.tar.xz
TARBALL_SHA256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1
TARBALL_URL=${RVIO_DEBIAN_MIRROR:-http://deb.debian.org/debian}/pool/main/q/qemu/$TARBALL
CONFIGURE=(--target-list=x86_64-softmmu --without-default-features --enable-kvm --enable-tcg
	--enable-vhost-kernel --enable-vhost-vdpa --enable-vhost-user --enable-fdt=system
	# virtio-9p: the nested guest of scripts/nested-vmpi.sh mounts its root so.
	--enable-virtfs --enable-attr
	--disable-docs --disable-install-blobs --disable-werror
	# The firmware (SeaBIOS, option ROMs) of Debian's qemu-system-data.
	--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu)
BUILD_PKGS=(ninja-build libglib2.0-dev libpixman-1-dev libfdt-dev libattr1-dev python3-venv flex bison pkg-config)
BACKPORTS_PKGS=(meson python3-pycotap)
JOBS=${JOBS:-$(($(nproc) + 1))}

cd "$RVIO_ROOT"
mapfile -t patches < <(ls qemu/*.patch)
[ ${#patches[@]} -gt 0 ] || rvio_die "no patches in qemu/"
mkdir -p "$RVIO_CACHE/qemu"
exec 9>"$RVIO_CACHE/qemu/.lock"
flock -n 9 || { rvio_log "another QEMU build holds $RVIO_CACHE/qemu/.lock; waiting"; flock 9; }

inputs=$(
	echo "epoch $RVIO_QBUILD_EPOCH"
	echo "tarball $TARBALL $TARBALL_SHA256"
	echo "configure ${CONFIGURE[*]}"
	sha256sum "${patches[@]}"
)
key=$(printf '%s\n' "$inputs" | sha256sum | cut -c1-16)
dir=$RVIO_CACHE/qemu/$key
if [ -x "$dir/qemu-system-x86_64" ]; then
	rvio_log "qemu $key: cached"
	ln -sfn "$dir" "$RVIO_CACHE/qemu/current"
	echo "$dir/qemu-system-x86_64"
	exit 0
fi

# Build dependencies: meson >= 1.5 and pycotap come from bookworm-backports.
sudo_cmd() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
for p in "${BUILD_PKGS[@]}" "${BACKPORTS_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	rvio_log "qemu: installing ${missing[*]}"
	sudo_cmd apt-get update -q
	DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -q --no-install-recommends "${BUILD_PKGS[@]}"
	DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -q --no-install-recommends \
		-t bookworm-backports "${BACKPORTS_PKGS[@]}"
fi

src=$RVIO_CACHE/qemu/src
mkdir -p "$src"
if ! echo "$TARBALL_SHA256  $src/$TARBALL" | sha256sum -c --status 2>/dev/null; then
	rvio_log "qemu: downloading $TARBALL_URL"
	curl -sSfL -o "$src/$TARBALL.part" "$TARBALL_URL"
	echo "$TARBALL_SHA256  $src/$TARBALL.part" | sha256sum -c --status ||
		rvio_die "$TARBALL: checksum mismatch"
	mv "$src/$TARBALL.part" "$src/$TARBALL"
fi

rvio_log "qemu $key: unpacking and patching"
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
tar -C "$dir.tmp" -xf "$src/$TARBALL"
tree=$dir.tmp/qemu-$QEMU_VERSION
for p in "${patches[@]}"; do
	patch -d "$tree" -p1 -s <"$p" || rvio_die "$p does not apply to QEMU $QEMU_VERSION"
done
# The +ds tarball drops the prebuilt edk2 firmware that meson would unpack
# when bzip2 is installed (Debian's skip-unpack-edk2-blobs.patch): a
# build-system detail, not part of the patch.
sed -i 's/unpack_edk2_blobs = bzip2.found()/unpack_edk2_blobs = false/' "$tree/meson.build"

rvio_log "qemu $key: configure"
(cd "$tree" && mkdir -p build && cd build && ../configure "${CONFIGURE[@]}" >configure.log 2>&1) ||
	rvio_die "QEMU's configure failed: $tree/build/configure.log"
rvio_log "qemu $key: ninja qemu-system-x86_64 (-j$JOBS; 3 to 14 minutes)"
ninja -C "$tree/build" -j"$JOBS" qemu-system-x86_64 >"$tree/build/ninja.log" 2>&1 ||
	rvio_die "QEMU's build failed: $tree/build/ninja.log"
install -m 755 "$tree/build/qemu-system-x86_64" "$dir.tmp/qemu-system-x86_64"
printf '%s\n' "$inputs" >"$dir.tmp/inputs"
rm -rf "$tree"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
ln -sfn "$dir" "$RVIO_CACHE/qemu/current"
# Older builds (other inputs) go: each is a binary of ~60 MB.
find "$RVIO_CACHE/qemu" -mindepth 1 -maxdepth 1 -type d ! -name src ! -name "$key" -exec rm -rf {} +
rvio_log "qemu $key: built ($("$dir/qemu-system-x86_64" --version | head -1))"
echo "$dir/qemu-system-x86_64"
