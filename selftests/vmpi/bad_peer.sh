#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A misbehaving guest (test module vmpi_evil, a virtio driver loaded instead
# of vmpi_guest) sends the host side of a VMPI device malformed headers,
# channel ids out of range and unbound, a device-writable txq descriptor,
# oversized buffers and messages, a broken fragment sequence, garbage
# control messages and a flood of HELLOs: the host counts each as the drop
# its script predicts, stays up, and serves a well-behaved guest next. The
# VM's kernel-log check covers KASAN, lockdep and kmemleak.
source "$(dirname "$0")/../lib.sh"

core_ko=$(rvio_ko vmpi)
host_ko=$(rvio_ko vmpi_host)
guest_ko=$(rvio_ko vmpi_guest)
evil_ko=$(rvio_ko vmpi_evil)

cleanup() {
	vdpa dev del vmpi0 2>/dev/null
	rmmod vmpi_evil vmpi_guest vmpi_host vmpi 2>/dev/null
	modprobe -r virtio_vdpa 2>/dev/null
}
rvio_on_exit cleanup

ktap_print_header
[ -f "$core_ko" ] && [ -f "$host_ko" ] && [ -f "$guest_ko" ] && [ -f "$evil_ko" ] ||
	ktap_exit_fail_msg "vmpi modules not built: run 'make' at the top of the repository"
rvio_clean_slate || ktap_exit_fail_msg "cannot remove the modules an earlier test left loaded"
modprobe -r vhost_vdpa 2>/dev/null
modprobe -a vdpa vringh vhost_iotlb virtio_vdpa && insmod "$core_ko" && insmod "$host_ko" &&
	insmod "$evil_ko" || ktap_exit_fail_msg "modules do not load"
ktap_set_plan 9

klog_mark
vdpa dev add mgmtdev vmpi name vmpi0
sent() { klog_since_mark | grep -q "vmpi_evil: .* bad buffers sent"; }
h=$(vmpi_core_dev host vmpi0)
d=/sys/class/misc/$h
# The host has taken every buffer of the script once its counters stop
# moving.
settled() {
	local now
	now=$(cat "$d"/drops_* "$d"/ctrl_rx "$d"/ctrl_dropped | tr '\n' ' ')
	[ "$now" = "${last:-}" ] && return 0
	last=$now
	return 1
}
WAIT_SECS=30 wait_for sent && sleep 1 && WAIT_SECS=30 wait_for eval 'sleep 0.5; settled'
klog_since_mark | grep vmpi_evil | sed 's/^/# /'

drops_are() {
	local got
	got=$(cat "$d/drops_$1")
	[ "$got" = "$2" ] || { ktap_print_msg "drops_$1 = $got, want $2"; return 1; }
}
ktap_test_result "malformed headers (too short, reserved bit): drops_bad_header 2" drops_are bad_header 2
ktap_test_result "channel out of range, unbound channels: drops_bad_channel 3" drops_are bad_channel 3
ktap_test_result "device-writable txq descriptor: drops_bad_desc 1" drops_are bad_desc 1
ktap_test_result "buffer and message beyond max SDU: drops_oversized 2" drops_are oversized 2
ktap_test_result "message cut by another channel: drops_bad_fragment 1" drops_are bad_fragment 1
ktap_test_result "garbage control messages: drops_bad_control 5" drops_are bad_control 5
ctrl_dropped() {
	local n
	n=$(cat "$d/ctrl_dropped")
	ktap_print_msg "HELLO flood: ctrl_rx $(cat "$d/ctrl_rx"), replies dropped $n"
	[ "$n" -gt 0 ]
}
ktap_test_result "a HELLO flood the guest leaves no room to answer: replies dropped and counted" ctrl_dropped

good_guest() {
	rmmod vmpi_evil && insmod "$guest_ko" && WAIT_SECS=20 wait_for vmpi_link_up vmpi0
}
ktap_test_result "a well-behaved guest gets the link up on the same host device" good_guest

sdu_crosses() {
	local g
	g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)") || return 1
	PYTHONPATH=$(dirname "$0") python3 -S - "/dev/$h" "/dev/$g" <<'PY'
import os, select, sys
from vmpi_uapi import bind
h, g = (os.open(p, os.O_RDWR) for p in sys.argv[1:3])
for fd in (h, g):
    bind(fd, 5)
os.write(g, b"hello host")
sys.exit(0 if select.select([h], [], [], 20)[0] and os.read(h, 100) == b"hello host" else 1)
PY
}
ktap_test_result "and an SDU crosses it" sdu_crosses
ktap_finished
