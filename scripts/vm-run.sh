#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the rvio test kernel with virtme-ng, run one command in the guest and
# return its exit status. The guest sees the host's root file system read-only
# (with writable overlays), so the repository, its .ko files and the host's
# tools (ip, vdpa, make) are all there at the same paths.
#
# The serial console is kept in $RVIO_LOG_DIR (default build/logs). A run
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
[ -x "$RVIO_VNG" ] || rvio_die "virtme-ng missing: run 'make setup'"

kdir=$(rvio_kdir)
log_dir=${RVIO_LOG_DIR:-$RVIO_ROOT/build/logs}
mkdir -p "$log_dir"
console=$log_dir/$name.console

# KVM where it really runs guests, TCG otherwise. /dev/kvm may exist on a
# host that cannot run ordinary guests, so boot the kernel once with KVM and
# remember the answer for this machine.
accel=${RVIO_ACCEL:-}
if [ -z "$accel" ]; then
	probe=$RVIO_CACHE/accel-$(cat /etc/machine-id 2>/dev/null || hostname)
	if [ ! -f "$probe" ]; then
		accel=tcg
		if [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
			timeout 30 qemu-system-x86_64 -accel kvm -M q35 -m 256 -nodefaults \
				-display none -no-reboot -serial stdio -kernel "$kdir/arch/x86/boot/bzImage" \
				-append "console=ttyS0 panic=-1 root=/dev/rvio-none" 2>/dev/null |
			grep -q 'VFS: Unable to mount root\|Kernel panic'; then
			accel=kvm
		fi
		echo "$accel" >"$probe"
		rvio_log "vm-run: accelerator for this machine: $accel"
	fi
	accel=$(cat "$probe")
fi

vng_args=(--run "$kdir" --disable-microvm --cpus "${RVIO_VM_CPUS:-2}"
	--memory "${RVIO_VM_MEM:-2G}" --user root --verbose --cwd "$PWD")
[ "$accel" = kvm ] || vng_args+=(--disable-kvm)
if [ $igb = 1 ]; then
	# An isolated hub: the NIC has a peer but no route off the VM.
	vng_args+=(--qemu-opts "-device pcie-root-port,id=rvio_rp1,chassis=1 \
-device igb,bus=rvio_rp1,netdev=rvio_igb0 -netdev hubport,id=rvio_igb0,hubid=1")
fi
stdin=/dev/null
if [ $# -gt 0 ]; then
	vng_args+=(--exec "$(printf '%q ' "$RVIO_ROOT/scripts/vm-guest.sh" "$@")")
else
	stdin=/dev/stdin
	timeout=0 # no limit for a person at the prompt
fi

rvio_log "vm-run: booting $(cat "$kdir/.rvio-built" | cut -d' ' -f1) ($accel); console: $console"
start=$(date +%s)
set +e
PATH=$RVIO_VENV/bin:$PATH timeout -k 20 "$timeout" \
	"$RVIO_VNG" "${vng_args[@]}" <$stdin 2>"$console"
rc=$?
set -e
[ $rc = 124 ] && rvio_log "vm-run: timed out after ${timeout}s"
rvio_log "vm-run: command exited $rc after $(($(date +%s) - start))s"

if ! "$RVIO_ROOT/scripts/klog-check.sh" "$console"; then
	rvio_log "vm-run: kernel log has the reports above; full console log: $console"
	[ $rc = 0 ] && rc=3
fi
exit $rc
