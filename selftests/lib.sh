# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Shared helpers for rvio kselftest programs; sourced, never run.
#
# Every process costs 0.1 to 0.5 s in the debug VM (TCG, KASAN), python3
# 1 to 2 s: the helpers that tests poll read files with the shell's own
# `read`, and Python runs as `python3 -S` (no site module: about half a
# second less each; the tests use the standard library only).

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

# Retry "$@" every 0.1 s for up to ${WAIT_SECS:-15} s of wall time (at
# least once; a check that takes seconds is not run 10 times a second's
# worth). Generous: a 1-vCPU debug VM on a loaded TCG host takes seconds
# to start a Python process.
wait_for() {
	local end=$((SECONDS + ${WAIT_SECS:-15}))
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
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

# The first line of file $2 into variable $1, without a process.
read_line() { printf -v "$1" '' && { IFS= read -r "$1" <"$2" || [ -n "${!1}" ]; }; } 2>/dev/null

# The kernel log since the last call of klog_mark.
klog_mark() { KLOG_MARK=$(dmesg | wc -l); }
klog_since_mark() { dmesg | tail -n +$((${KLOG_MARK:-0} + 1)); }

# VMPI: the /dev/vmpiN (N printed) of the side ($1: host or guest) of the
# device whose transport name is $2 (vDPA device name on the host side,
# virtio device name on the guest side), from /sys/class/misc/vmpi*/.
vmpi_core_dev() {
	local d r t
	for d in /sys/class/misc/vmpi*; do
		read_line r "$d/role" && read_line t "$d/transport" || continue
		if [ "$r" = "$1" ] && [ "$t" = "$2" ]; then
			echo "${d##*/}"
			return 0
		fi
	done
	return 1
}

# The /dev/vhost-vdpa-N (printed) that vhost_vdpa made of vDPA device $1.
vhost_of() {
	local v
	for v in /sys/bus/vdpa/devices/"$1"/vhost-vdpa-*; do
		[ -c "/dev/${v##*/}" ] && { echo "/dev/${v##*/}"; return 0; }
	done
	return 1
}

# The virtio device (virtioN) that virtio_vdpa made of vDPA device $1.
vdpa_virtio_of() {
	local v
	for v in /sys/bus/vdpa/devices/"$1"/virtio*; do
		[ -e "$v" ] && { echo "${v##*/}"; return 0; }
	done
	return 1
}

# Both sides of VMPI vDPA device $1 (bound to virtio_vdpa and vmpi_guest)
# report the link up.
vmpi_link_up() {
	local v h g lh lg
	v=$(vdpa_virtio_of "$1") && h=$(vmpi_core_dev host "$1") && g=$(vmpi_core_dev guest "$v") &&
		read_line lh "/sys/class/misc/$h/link" && read_line lg "/sys/class/misc/$g/link" &&
		[ "$lh" = up ] && [ "$lg" = up ]
}

# No drops_* counter of VMPI char devices "$@" (vmpiN) is above 0; says
# which is.
vmpi_no_drops() {
	local d f v
	for d; do
		for f in /sys/class/misc/"$d"/drops_*; do
			[ -r "$f" ] || { ktap_print_msg "no drops_* counters in /sys/class/misc/$d"; return 1; }
			read_line v "$f" && [ "$v" = 0 ] || { ktap_print_msg "$d ${f##*/} = $v"; return 1; }
		done
	done
}

# Our modules, in the order they can be unloaded.
RVIO_MODULES="envelope_evil envelope_netfront envelope_switch ops_copier sriov_route_probe vmpi_evil vmpi_echo
	rvio_test_consumer rvio_test_provider sriov_hook vmpi_guest vmpi_host vmpi"

# A test killed at its timeout may not have finished its cleanup: take
# away what it left (its namespaces and their processes, VMPI devices, our
# modules), so that the next test starts from nothing. Says what it found;
# fails if a module stays.
rvio_clean_slate() {
	local m left="" ns d rest i
	for m in $RVIO_MODULES; do [ -d "/sys/module/$m" ] && left="$left $m"; done
	[ -z "$left" ] && return 0
	ktap_print_msg "left loaded by an earlier test:$left; removing it"
	for ns in $(ip netns list | cut -d' ' -f1); do
		ip netns pids "$ns" | xargs -r kill -9 2>/dev/null
		ip netns del "$ns"
	done
	for m in $RVIO_MODULES; do
		[ "$m" = vmpi_guest ] &&
			vdpa dev show | while IFS=: read -r d rest; do
				case "$rest" in *" mgmtdev vmpi "*) vdpa dev del "$d" ;; esac
			done
		for ((i = 0; i < 100; i++)); do
			[ -d "/sys/module/$m" ] || break
			rmmod "$m" 2>/dev/null || sleep 0.2
		done
		[ -d "/sys/module/$m" ] && { ktap_print_msg "$m stays loaded"; return 1; }
	done
	return 0
}

# Runs "$1" when the test exits, also when it is killed by a signal (the
# kselftest runner's timeout sends SIGTERM).
rvio_on_exit() {
	# shellcheck disable=SC2064
	trap "$1" EXIT
	trap 'exit 143' TERM INT HUP
}

# VMPI in one kernel: vmpi, vmpi_host and vmpi_guest over virtio_vdpa
# (not vhost_vdpa). vmpi_load loads them, after checking that they and
# "$@" (the test's own .ko files) are built and taking away what an
# earlier test left; vmpi_guest with the parameters in $VMPI_GUEST_PARAMS
# (e.g. indirect_desc=1), if set.
vmpi_load() {
	local ko
	for ko in "$(rvio_ko vmpi)" "$(rvio_ko vmpi_host)" "$(rvio_ko vmpi_guest)" "$@"; do
		[ -f "$ko" ] || ktap_exit_fail_msg "$(basename "$ko") not built: run 'make' at the top of the repository"
	done
	rvio_clean_slate || return 1
	modprobe -r vhost_vdpa 2>/dev/null
	modprobe -a vdpa vringh vhost_iotlb virtio_vdpa && insmod "$(rvio_ko vmpi)" &&
		insmod "$(rvio_ko vmpi_host)" && insmod "$(rvio_ko vmpi_guest)" ${VMPI_GUEST_PARAMS:-}
}

# Creates VMPI device vmpi0 and waits for its link; sets h and g to the
# names (vmpiN) of its host and guest side char devices.
vmpi_up() {
	vdpa dev add mgmtdev vmpi name vmpi0 && WAIT_SECS=20 wait_for vmpi_link_up vmpi0 &&
		h=$(vmpi_core_dev host vmpi0) && g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)")
}

# Undoes vmpi_up and vmpi_load (for trap EXIT), unloading modules "$@"
# first.
vmpi_unload() {
	[ $# = 0 ] || rmmod "$@" 2>/dev/null
	vdpa dev del vmpi0 2>/dev/null
	rmmod vmpi_guest vmpi_host vmpi 2>/dev/null
	modprobe -r virtio_vdpa 2>/dev/null
}

# Envelope switching, for the benchmark and the profile (not the tests,
# which check each step): loads VMPI, sriov_hook, envelope_switch and
# envelope_netfront, then makes domains 1..$1 (VMPI devices d1.., each with
# a netfront by envelope_attach, MTU $2 (default 1500)), each attached with
# the options in $ENVELOPE_ATTACH_OPTS (e.g. posted=32), if set. Exits on
# the first failure.
envelope_domains() {
	local n=$1 mtu=${2:-1500} i S=/sys/kernel/envelope_switch
	vmpi_load "$(rvio_ko sriov_hook)" "$(rvio_ko envelope_switch)" "$(rvio_ko envelope_netfront)" &&
		insmod "$(rvio_ko sriov_hook)" && insmod "$(rvio_ko envelope_switch)" &&
		insmod "$(rvio_ko envelope_netfront)" || return 1
	for i in $(seq "$n"); do
		vdpa dev add mgmtdev vmpi name "d$i" && WAIT_SECS=20 wait_for vmpi_link_up "d$i" &&
			echo "d$i domain=$i" >$S/domains && echo "02:00:00:00:00:0$i domain=$i" >$S/table &&
			envelope_attach "$i" "${ENVELOPE_ATTACH_OPTS:-}" "$mtu" || return 1
	done
}

# The whole VM's busy CPU time in ms (all CPUs; USER_HZ ticks of 10 ms),
# for the benchmarks' cost per frame.
vm_busy_ms() { awk '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) * 10 }' /proc/stat; }

# Netfront ef$1 over VMPI device d$1 with MAC 02:00:00:00:00:0$1, up in
# namespace e$1 (made if missing) at 10.8.0.$1/24 with MTU $3 (default
# 1500): made there by `ip link add ... type envelope`, or, with options
# $2 (which only sysfs takes), attached through sysfs and moved there.
envelope_attach() {
	local i=$1 v
	v=$(vdpa_virtio_of "d$i") && { [ -e "/run/netns/e$i" ] || ip netns add "e$i"; } || return 1
	if [ -n "${2:-}" ]; then
		echo "$v name=ef$i $2" >/sys/kernel/envelope_netfront/attach &&
			ip link set "ef$i" address "02:00:00:00:00:0$i" && ip link set "ef$i" netns "e$i"
	else
		ip -n "e$i" link add "ef$i" address "02:00:00:00:00:0$i" parentdev "$v" type envelope
	fi &&
		ip -n "e$i" addr add "10.8.0.$i/24" dev "ef$i" &&
		ip -n "e$i" link set "ef$i" mtu "${3:-1500}" up && ip -n "e$i" link set lo up
}
# ef$1 detached and attached again (envelope_attach "$@").
envelope_reattach() { echo "ef$1" >/sys/kernel/envelope_netfront/detach && envelope_attach "$@"; }

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
		local prog=$1 a
		for a in "$@"; do
			case "$a" in *.py) prog=$a; break ;; esac
		done
		ktap_test_fail "$(basename -- "$prog") exited $rc (crash or timeout) before its remaining results"
	fi
}

# The sysfs directory of QEMU's igb PF (an 82576, 8086:10c9), if the VM
# has one (scripts/vm-run.sh --igb).
igb_pci() {
	local d
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat $d/vendor)" = 0x8086 ] && [ "$(cat $d/device)" = 0x10c9 ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
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
