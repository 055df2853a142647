#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# PID 1 of the test VM (scripts/vm-run.sh boots the kernel with
# init=<this file>). The root file system is the host's, over 9p, read-only.
# Reads its orders from the kernel command line:
#   rvio.cwd=DIR   rvio.root=DIR (the repository)
#   rvio.mods=DIR (becomes /lib/modules)
#   rvio.cmd=BASE64 (run with bash; absent: interactive shell)
# Command output goes to ttyS1, its exit status to ttyS2; then power off.
#
# Every exec costs most of a second under TCG with the debug kernel, so this
# script parses the command line in bash and runs as few programs as it can.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-dumb} LANG=C.UTF-8

mount -t proc proc /proc
mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
# devtmpfs has no /dev/fd or /dev/std*; udev or an initramfs usually makes
# them, and without them a write to /dev/stdout creates a file.
ln -sfn /proc/self/fd /dev/fd
ln -sfn fd/0 /dev/stdin
ln -sfn fd/1 /dev/stdout
ln -sfn fd/2 /dev/stderr
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t debugfs debugfs /sys/kernel/debug

cwd=/ root=/ mods='' cmd='' keep=''
read -r -a words </proc/cmdline
for w in "${words[@]}"; do
	case $w in
	rvio.cwd=*) cwd=${w#rvio.cwd=} ;;
	rvio.root=*) root=${w#rvio.root=} ;;
	rvio.mods=*) mods=${w#rvio.mods=} ;;
	rvio.cmd=*) cmd=${w#rvio.cmd=} ;;
	esac
done

# Fresh tmpfs on /run, /tmp and /var/tmp; /root stays the host's
# (read-only): the tool caches live under it. A repository under /tmp or
# /var/tmp on the host (a clone in /tmp) is bound back on top.
case $root/ in
/tmp/* | /var/tmp/*) keep=/run/rvio-host-cwd ;;
esac
mount -t tmpfs -o mode=1777 tmpfs /run
if [ -n "$keep" ]; then
	mkdir -p $keep
	mount --bind "$root" $keep
fi
for d in /tmp /var/tmp; do
	mount -t tmpfs -o mode=1777 tmpfs $d
done
if [ -n "$keep" ]; then
	mkdir -p "$root"
	mount --move $keep "$root"
fi

# /lib/modules may not even exist on the host: give /usr/lib a writable
# tmpfs layer, then put the test kernel's modules there.
if [ -n "$mods" ]; then
	mkdir -p /run/rvio-lib/upper /run/rvio-lib/work
	mount -t overlay overlay -o lowerdir=/usr/lib,upperdir=/run/rvio-lib/upper,workdir=/run/rvio-lib/work /usr/lib
	mkdir -p /usr/lib/modules
	mount --bind "$mods" /usr/lib/modules
fi
echo rvio-vm >/proc/sys/kernel/hostname
ip link set lo up
cd "$cwd" || cd /

if [ -n "$cmd" ]; then
	bash -c "$(base64 -d <<<"$cmd")" </dev/null >/dev/ttyS1 2>&1
	echo $? >/dev/ttyS2
else
	echo "rvio test VM: $(uname -r); exit the shell to power off" >/dev/ttyS1
	setsid -c bash -i <>/dev/ttyS1 >&0 2>&1
fi
sync
echo o >/proc/sysrq-trigger
# PID 1 must not exit while the kernel powers off; the 9p root is already
# gone, so wait with a builtin.
read -r -t 30 _ </dev/console
