#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the rvio test kernel in QEMU, run one command in the guest and return
# its exit status. The kernel mounts the host's root file system read-only
# over 9p and runs scripts/vm-init.sh as PID 1, so the repository, its .ko
# files and the host's tools (ip, vdpa, make) are all there at their usual
# paths; /tmp, /run and /var/tmp are fresh tmpfs, and /lib/modules is
# the test kernel's. Why not virtme-ng: see docs/build.md.
#
# The command's output comes back on stdout with the guest tty's \r\n line
# ends made \n. The serial console is kept in $RVIO_LOG_DIR (default
# build/logs), with every message the kernel logs (ignore_loglevel). A run
# whose kernel log shows a splat (WARNING, BUG, Oops, KASAN, KFENCE, lockdep,
# kmemleak, hung task, stall) fails with status 3 even if the command passed.
#
# usage: scripts/vm-run.sh [--igb] [--timeout SECS] [--name NAME] [--] [CMD [ARGS...]]
#   without CMD: an interactive shell in the VM
#   --igb      add a QEMU igb (82576, SR-IOV capable) behind a PCIe root port
#   --timeout  kill the VM after SECS (default 1800)
#   --name     log file name stem (default vm-<time>)
# Environment: RVIO_ACCEL=kvm|tcg overrides KVM detection; RVIO_VM_CPUS,
# RVIO_VM_MEM size the guest (2, 2G).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

igb=0
timeout=1800
name=vm-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
	case "$1" in
	--igb) igb=1; shift ;;
	--timeout) timeout=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	--) shift; break ;;
	-*) rvio_die "vm-run: unknown option $1" ;;
	*) break ;;
	esac
done

kdir=$(rvio_kdir)
log_dir=${RVIO_LOG_DIR:-$RVIO_ROOT/build/logs}
mkdir -p "$log_dir"
console=$log_dir/$name.console
rm -f "$console"

# KVM where it really runs guests, TCG otherwise. /dev/kvm may exist on a
# host that cannot run ordinary guests, so boot the kernel once with KVM (to
# its "cannot mount root" panic; up to 30 s) and remember the answer for this
# machine (delete the file to probe again).
accel=${RVIO_ACCEL:-}
if [ -z "$accel" ]; then
	probe=$RVIO_CACHE/accel-$(cat /etc/machine-id 2>/dev/null || hostname)
	mkdir -p "$RVIO_CACHE"
	# VMs started at once (scripts/check.sh) probe once: the others wait.
	exec {probe_lock}>"$probe.lock"
	flock "$probe_lock"
	if [ ! -s "$probe" ]; then
		accel=tcg
		if [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
			timeout 30 qemu-system-x86_64 -accel kvm -M q35 -m 256 -nodefaults \
				-display none -no-reboot -serial stdio -kernel "$kdir/arch/x86/boot/bzImage" \
				-append "console=ttyS0 panic=-1 root=/dev/rvio-none" </dev/null 2>/dev/null |
			grep -q 'VFS: Unable to mount root\|Kernel panic'; then
			accel=kvm
		fi
		echo "$accel" >"$probe"
		rvio_log "vm-run: accelerator for this machine: $accel (remembered in $probe)"
	fi
	accel=$(cat "$probe")
	exec {probe_lock}>&-
fi

kimg=$kdir/arch/x86/boot/bzImage
mods=$kdir/.rvio-mods/lib/modules
[ -d "$mods" ] || rvio_die "$mods missing: run scripts/build-kernel.sh"
ret=$log_dir/$name.ret
rm -f "$ret"

append="console=ttyS0 ignore_loglevel panic=-1 root=rvio-root rootfstype=9p"
append+=" rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose ro"
case "$RVIO_ROOT $PWD $mods" in
*[[:space:]]*[[:space:]]*[[:space:]]*) rvio_die "vm-run: paths with spaces cannot go on the kernel command line ($RVIO_ROOT, $PWD)" ;;
esac
append+=" init=$RVIO_ROOT/scripts/vm-init.sh rvio.root=$RVIO_ROOT rvio.cwd=$PWD rvio.mods=$mods"
interactive=0
if [ $# -gt 0 ]; then
	# KDIR: the guest's tools (selftests/lib.mk) use the booted tree.
	# RVIO_EXPECT_IGB: with --igb, a test that finds no igb fails, not skips.
	append+=" rvio.cmd=$(printf '%q ' env "KDIR=$kdir" "RVIO_EXPECT_IGB=$igb" \
		"$RVIO_ROOT/scripts/vm-guest.sh" "$@" | base64 -w0)"
else
	interactive=1
	timeout=0 # no limit for a person at the prompt
fi
[ ${#append} -lt 2000 ] || rvio_die "vm-run: command too long for the kernel command line"

qemu=(qemu-system-x86_64 -name rvio-test -machine q35 -accel "$accel"
	-smp "${RVIO_VM_CPUS:-2}" -m "${RVIO_VM_MEM:-2G}" -nodefaults -display none -no-reboot
	-kernel "$kimg" -append "$append"
	-fsdev "local,id=rvio_root,path=/,readonly=on,security_model=none,multidevs=remap"
	-device "virtio-9p-pci,fsdev=rvio_root,mount_tag=rvio-root"
	-chardev "file,id=con,path=$console" -serial chardev:con
	-chardev "stdio,id=out,signal=off" -serial chardev:out
	-chardev "file,id=ret,path=$ret" -serial chardev:ret)
if [ "$accel" = kvm ]; then
	qemu+=(-cpu host)
else
	# LA57 (5-level paging) under TCG: see docs/build.md.
	qemu+=(-cpu "max,la57=off")
fi
if [ $igb = 1 ]; then
	# User-mode networking with restrict=on: the NIC has a link partner
	# but no route off the VM.
	qemu+=(-device "pcie-root-port,id=rvio_rp1,chassis=1"
		-device "igb,bus=rvio_rp1,netdev=rvio_igb0" -netdev "user,id=rvio_igb0,restrict=on")
fi

rvio_log "vm-run: booting $(cut -d' ' -f1 "$kdir/.rvio-built") ($accel); console: $console"
start=$(date +%s)
set +e
if [ $interactive = 1 ]; then
	"${qemu[@]}"
else
	# The guest's tty turns \n into \r\n: strip \r here, once, for
	# every reader of the output.
	timeout -k 20 "$timeout" "${qemu[@]}" </dev/null | stdbuf -o0 tr -d '\r'
fi
qemu_rc=${PIPESTATUS[0]}
set -e
rc=$(tr -dc 0-9 <"$ret" 2>/dev/null || true)
if [ $interactive = 1 ]; then
	rc=0
elif [ -z "$rc" ]; then
	[ $qemu_rc = 124 ] && rvio_log "vm-run: timed out after ${timeout}s"
	rvio_log "vm-run: the VM stopped before the command finished (qemu exit $qemu_rc)"
	rc=125
fi
rvio_log "vm-run: command exited $rc after $(($(date +%s) - start))s"

if ! "$RVIO_ROOT/scripts/klog-check.sh" "$console"; then
	rvio_log "vm-run: kernel log has the reports above; full console log: $console"
	[ "$rc" = 0 ] && rc=3
fi
exit "$rc"
