#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI reset and torn down under traffic in one kernel: with 4 flows and a raw
# channel carrying SDUs both ways (vmpi_traffic.py, blocking readers and
# writers on both sides), a reset the guest side asks for ends the flows
# and not the raw channels; `vdpa dev del`, `rmmod vmpi_guest` and `rmmod
# vmpi_host` each end every user with an error (ENODEV on a side that went
# away, ECONNRESET/EPIPE on a flow whose peer went away) and nothing hangs;
# an open file of a device that went away keeps `rmmod vmpi` from
# unloading the core until it is closed. The VM's kernel-log check covers
# KASAN, lockdep and kmemleak.
source "$(dirname "$0")/../lib.sh"

core_ko=$(rvio_ko vmpi)
host_ko=$(rvio_ko vmpi_host)
guest_ko=$(rvio_ko vmpi_guest)
traffic_py=$(dirname "$0")/vmpi_traffic.py
out=$(mktemp)

cleanup() {
	[ -n "${traffic:-}" ] && kill "$traffic" 2>/dev/null
	vdpa dev del vmpi0 2>/dev/null
	rmmod vmpi_guest vmpi_host vmpi 2>/dev/null
	modprobe -r virtio_vdpa 2>/dev/null
	rm -f "$out"
}
rvio_on_exit cleanup

ktap_print_header
[ -f "$core_ko" ] && [ -f "$host_ko" ] && [ -f "$guest_ko" ] ||
	ktap_exit_fail_msg "vmpi modules not built: run 'make' at the top of the repository"
rvio_clean_slate || ktap_exit_fail_msg "cannot remove the modules an earlier test left loaded"
modprobe -r vhost_vdpa 2>/dev/null
modprobe -a vdpa vringh vhost_iotlb virtio_vdpa && insmod "$core_ko" && insmod "$host_ko" &&
	insmod "$guest_ko" || ktap_exit_fail_msg "vmpi modules do not load"
ktap_set_plan 5

up() {
	{ [ -e /sys/bus/vdpa/devices/vmpi0 ] || vdpa dev add mgmtdev vmpi name vmpi0; } &&
		WAIT_SECS=20 wait_for vmpi_link_up vmpi0
}

# The users of side $1 in the traffic summary ended only with errors
# matching $2 (a regular expression over errno names), $3 of them.
ended_with() {
	local line total=0 kv
	line=$(grep -E "^$1( [A-Z]+=[0-9]+)*\$" "$out") || return 1
	for kv in ${line#"$1 "}; do
		[[ ${kv%=*} =~ ^($2)$ ]] || { ktap_print_msg "$1: unexpected ${kv%=*}"; return 1; }
		total=$((total + ${kv#*=}))
	done
	[ "$total" = "$3" ] || { ktap_print_msg "$1: $total users ended, want $3"; return 1; }
}

# Starts traffic on vmpi0, runs "$@", and checks that every user ended with
# an error within 30 s: $1 the host side's errno names (a regular
# expression) and $2 how many host users end, $3 and $4 the guest side's,
# $5 the host raw-channel users still running.
under_traffic() {
	local host_err=$1 host_n=$2 guest_err=$3 guest_n=$4 raw_left=$5 h g i rc
	shift 5
	h=$(vmpi_core_dev host vmpi0) && g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)") || return 1
	python3 -S "$traffic_py" "/dev/$h" "/dev/$g" 4 ${TRAFFIC_RESTART:+RESTART} >"$out" 2>&1 &
	traffic=$!
	WAIT_SECS=30 wait_for grep -q running "$out" || { sed 's/^/# /' "$out"; return 1; }
	# Every thread is in its read or write loop once `running` is out: a
	# second of traffic before "$@".
	sleep 1
	"$@" || { ktap_print_msg "failed: $*"; return 1; }
	for ((i = 0; i < 300; i++)); do
		kill -0 "$traffic" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$traffic" 2>/dev/null; then
		ktap_print_msg "users still blocked 30 s after: $*"
		kill "$traffic"
		traffic=
		return 1
	fi
	wait "$traffic"
	rc=$?
	traffic=
	sed 's/^/# /' "$out"
	[ $rc = 0 ] && ended_with host "$host_err" "$host_n" && ended_with guest "$guest_err" "$guest_n" &&
		grep -q "^host raw threads still running: $raw_left\$" "$out"
}

# The guest side resets its device (its sysfs `reset`): both sides
# restart, every flow ends (ECONNRESET, or EPIPE for a writer), the raw
# channels of both sides carry SDUs again, each side counts one restart
# more.
restarts() { local v; read_line v "/sys/class/misc/$1/restarts" && echo "$v"; }
guest_reset() {
	local h g hr gr
	h=$(vmpi_core_dev host vmpi0) && g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)") &&
		hr=$(restarts "$h") && gr=$(restarts "$g") && echo 1 >"/sys/class/misc/$g/reset" &&
		wait_for eval '[ "$(restarts "$g")" -gt "$gr" ]' &&
		WAIT_SECS=20 wait_for vmpi_link_up vmpi0 &&
		[ "$(restarts "$g")" = $((gr + 1)) ] && [ "$(restarts "$h")" -gt "$hr" ]
}
ktap_test_result "a reset asked by the guest side under traffic: the flows end, raw channels go on" \
	eval 'up && TRAFFIC_RESTART=1 under_traffic "ECONNRESET|EPIPE" 8 "ECONNRESET|EPIPE" 8 2 guest_reset &&
		grep -q "^guest raw threads still running: 2\$" "$out" &&
		grep -q "^raw channels carrying SDUs after the flows ended: 2 of 2\$" "$out"'
# Each side has 10 users (4 flows and a raw channel, a reader and a
# writer each). Removing the device removes the guest side first: the
# host's flows may end with the reset (ECONNRESET, EPIPE) before the host
# side goes (ENODEV).
ktap_test_result "vdpa dev del under traffic: every user on both sides ends with an error" \
	eval 'up && under_traffic "ENODEV|ECONNRESET|EPIPE" 10 ENODEV 10 0 vdpa dev del vmpi0'
# The host's raw channel stays bound, blocked, waiting for the next guest.
ktap_test_result "rmmod vmpi_guest under traffic: guest users ENODEV, host flows ECONNRESET/EPIPE" \
	eval 'up && under_traffic "ECONNRESET|EPIPE" 8 ENODEV 10 2 rmmod vmpi_guest'
ktap_test_result "rmmod vmpi_host under traffic: every user on both sides ends with an error" \
	eval 'insmod "$guest_ko" && WAIT_SECS=20 wait_for vmpi_link_up vmpi0 &&
		under_traffic "ENODEV|ECONNRESET|EPIPE" 10 ENODEV 10 0 rmmod vmpi_host'

# vmpi_host and vmpi_guest use vmpi's exports, so `rmmod vmpi` fails
# while they are loaded whatever else holds it: remove them first, so
# that the open file is the only thing left that holds vmpi.
refcnt() { cat /sys/module/vmpi/refcnt; }
busy_then_free() {
	local f n
	insmod "$host_ko" && up || return 1
	h=$(vmpi_core_dev host vmpi0) || return 1
	exec {f}<"/dev/$h"
	vdpa dev del vmpi0 && rmmod vmpi_guest vmpi_host || { exec {f}<&-; return 1; }
	n=$(ls /sys/module/vmpi/holders)
	if [ -n "$n" ] || [ "$(refcnt)" != 1 ]; then
		ktap_print_msg "with the file open: holders '$n', refcnt $(refcnt); want no holder and refcnt 1 (the file)"
		exec {f}<&-
		return 1
	fi
	if rmmod vmpi 2>/dev/null; then
		ktap_print_msg "rmmod vmpi succeeded with /dev/$h open"
		exec {f}<&-
		return 1
	fi
	exec {f}<&-
	[ "$(refcnt)" = 0 ] || { ktap_print_msg "refcnt $(refcnt) after close, want 0"; return 1; }
	rmmod vmpi
}
ktap_test_result "with its users gone, an open file alone keeps vmpi loaded; once closed, rmmod works" busy_then_free
ktap_finished
