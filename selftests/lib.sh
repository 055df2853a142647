# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Shared helpers for rvio kselftest programs; sourced, never run.

RVIO_ROOT=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${KSFT_DIR:-}" ]; then
	KSFT_DIR=$(bash -c ". '$RVIO_ROOT/scripts/lib.sh' && rvio_kdir")/tools/testing/selftests
fi
# shellcheck source=/dev/null
source "$KSFT_DIR/kselftest/ktap_helpers.sh"

# Path of one of our modules, built by `make` at the top of the repository.
rvio_ko() {
	echo "$RVIO_ROOT/$1.ko"
}

# ktap_test_result with its command's words kept as given (the kernel's
# helper runs an unquoted $@, which splits arguments with spaces).
ktap_check() {
	local desc=$1
	shift
	if "$@"; then
		ktap_test_pass "$desc"
	else
		ktap_test_fail "$desc"
	fi
}

# Retry "$@" every 0.1 s for up to ${WAIT_SECS:-5} s.
wait_for() {
	local i
	for ((i = 0; i < ${WAIT_SECS:-5} * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# Run "$@" and expect it to fail with a message containing $1.
expect_fail_with() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then
		ktap_print_msg "unexpectedly succeeded: $*"
		return 1
	fi
	case "$out" in
	*"$want"*) return 0 ;;
	*) ktap_print_msg "wanted '$want', got: $out"; return 1 ;;
	esac
}

# The kernel log since the last call of klog_mark.
klog_mark() { KLOG_MARK=$(dmesg | wc -l); }
klog_since_mark() { dmesg | tail -n +$((${KLOG_MARK:-0} + 1)); }

# VMPI: the /dev/vmpiN (N printed) of the side ($1: host or guest) of the
# device whose transport name is $2 (vDPA device name on the host side,
# virtio device name on the guest side), from /sys/class/misc/vmpi*/.
vmpi_core_dev() {
	local d
	for d in /sys/class/misc/vmpi*; do
		[ -r "$d/role" ] || continue
		if [ "$(cat "$d/role")" = "$1" ] && [ "$(cat "$d/transport")" = "$2" ]; then
			basename "$d"
			return 0
		fi
	done
	return 1
}

# The virtio device (virtioN) that virtio_vdpa made of vDPA device $1.
vdpa_virtio_of() {
	basename "$(ls -d /sys/bus/vdpa/devices/"$1"/virtio* 2>/dev/null | head -n 1)" 2>/dev/null
}

# Both sides of VMPI vDPA device $1 (bound to virtio_vdpa and vmpi_guest)
# report the link up.
vmpi_link_up() {
	local v h g
	v=$(vdpa_virtio_of "$1") && [ -n "$v" ] &&
		h=$(vmpi_core_dev host "$1") && g=$(vmpi_core_dev guest "$v") &&
		[ "$(cat /sys/class/misc/"$h"/link)" = up ] && [ "$(cat /sys/class/misc/"$g"/link)" = up ]
}

# Run "$@" (a program that prints `ok - DESC` / `not ok - DESC` lines, and
# anything else as comments) for at most $1 seconds and report its lines
# as KTAP results. A program that fails without a `not ok` line (a crash,
# the timeout) adds one failed result.
run_py_ktap() {
	local secs=$1 line notok=0 rc=none
	shift
	while IFS= read -r line; do
		case "$line" in
		"ok - "*) ktap_test_pass "${line#ok - }" ;;
		"not ok - "*) ktap_test_fail "${line#not ok - }"; notok=1 ;;
		"run_py_ktap exit "*) rc=${line#run_py_ktap exit } ;;
		*) echo "# $line" ;;
		esac
	done < <(timeout "$secs" "$@" 2>&1; echo "run_py_ktap exit $?")
	if [ "$rc" != 0 ] && [ $notok = 0 ]; then
		ktap_test_fail "$(basename "${2:-$1}") exited $rc (crash or timeout) before its remaining results"
	fi
}

# SR-IOV hook: write "$2" (a line) to /sys/kernel/sriov_hook/$1.
hook_w() {
	printf '%s\n' "$2" >"/sys/kernel/sriov_hook/$1"
}

# The `ip link show` line of VF $2 of PF $1.
vf_line() {
	ip link show dev "$1" | grep -E "^ +vf $2 "
}

# A new netdevsim device with id $1, one port and $2 VFs: prints the
# port's interface name.
nsim_pf() {
	local sysdev=/sys/bus/netdevsim/devices/netdevsim$1 ifname
	modprobe netdevsim && echo "$1 1" >/sys/bus/netdevsim/new_device &&
		wait_for [ -d $sysdev/net ] && ifname=$(ls $sysdev/net | head -n 1) && [ -n "$ifname" ] &&
		echo "$2" >$sysdev/sriov_numvfs && echo "$ifname"
}
