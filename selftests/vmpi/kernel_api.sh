#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI's in-kernel API (include/rvio/vmpi.h: vmpi_dev_find, vmpi_port_*),
# used by the test module vmpi_echo on the host side of a device in one
# kernel: its rx callback and sends echo SDUs from a guest file byte for
# byte, and so do vmpi_port_send_sg() with bottom halves off and without,
# in turn with vmpi_port_send(), each SDU in order with the others; a
# flood of 2000 SDUs (vmpi_port_send_sg() first, vmpi_port_send() when 64
# wait) hits back-pressure (-EAGAIN from both) and resumes on write_space
# with nothing lost; rmmod of the user under traffic; vdpa dev
# del under an open port calls down (-ENODEV) and the user closes cleanly.
source "$(dirname "$0")/../lib.sh"

echo_ko=$(rvio_ko vmpi_echo)

cleanup() {
	[ -n "${traffic:-}" ] && kill "$traffic" 2>/dev/null
	rm -f "${traffic_out:-}"
	vmpi_unload vmpi_echo
}
rvio_on_exit cleanup

ktap_print_header
vmpi_load "$echo_ko" && vmpi_up || ktap_exit_fail_msg "VMPI device vmpi0 did not come up"
ktap_print_msg "host side /dev/$h, guest side /dev/$g"
ktap_set_plan 9

unbound_before=$(cat /sys/class/misc/"$g"/drops_bad_channel)
klog_mark
ktap_test_result "vmpi_echo finds the host side and opens channels 9, 10 and 11" insmod "$echo_ko"

# $1: the channel.
echo_ok() {
	PYTHONPATH=$(dirname "$0") python3 -S - "/dev/$g" "$1" <<'PY'
import os, select, sys
from vmpi_uapi import bind
fd = os.open(sys.argv[1], os.O_RDWR)
bind(fd, int(sys.argv[2]))
bad = 0
for n in list(range(0, 4001, 250)) + [1, 4096, 16384, 65535] * 3:
    data = os.urandom(n)
    os.write(fd, data)
    if not select.select([fd], [], [], 20)[0]:
        print("# no echo of %d bytes" % n)
        sys.exit(1)
    got = os.read(fd, 65536)
    if got != data:
        print("# echo of %d bytes came back as %d bytes" % (n, len(got)))
        bad += 1
sys.exit(1 if bad else 0)
PY
}
ktap_test_result "rx callback and send: 29 SDUs of 0 to 65535 bytes echoed byte for byte" echo_ok 9
ktap_test_result "send_sg (BH off), send and send_sg (process context) in turn: 29 SDUs of 0 to 65535 bytes echoed byte for byte" echo_ok 11

# 48 numbered SDUs written at once (the host's raw queue holds 64) come
# back in order: those sent from process context did not overtake those
# vmpi_port_send_sg() queued with `atomic` before them.
burst_in_order() {
	PYTHONPATH=$(dirname "$0") python3 -S - "/dev/$g" <<'PY'
import os, select, struct, sys
from vmpi_uapi import bind
fd = os.open(sys.argv[1], os.O_RDWR)
bind(fd, 11)
for rnd in range(20):
    sent = []
    for i in range(48):
        data = struct.pack("<I", i) + os.urandom((i * 397) % 3000)
        os.write(fd, data)
        sent.append(data)
    for i in range(48):
        if not select.select([fd], [], [], 20)[0]:
            print("# round %d: echo %d did not come" % (rnd, i))
            sys.exit(1)
        got = os.read(fd, 65536)
        if got != sent[i]:
            n = struct.unpack("<I", got[:4])[0] if len(got) >= 4 else None
            print("# round %d: echo %d came back as SDU %s" % (rnd, i, n))
            sys.exit(1)
PY
}
ktap_test_result "send_sg (BH off), send, send_sg in turn: 20 bursts of 48 SDUs echoed in order" burst_in_order

flood_done() { klog_since_mark | grep -q "vmpi_echo: flood of 2000 SDUs sent"; }
flood_waited() {
	local w a
	w=$(klog_since_mark | sed -n 's/.*flood of 2000 SDUs sent (.*), waited for room \([0-9]*\) times.*/\1/p')
	a=$(klog_since_mark | sed -n 's/.*flood of 2000 SDUs sent (\([0-9]*\) by send_sg).*/\1/p')
	# send is tried only when send_sg said EAGAIN (64 wait); it fails
	# too while the send queue is full, which holds them back.
	ktap_print_msg "the flood waited for room ${w:-?} times; send_sg took ${a:-?} SDUs"
	[ "${w:-0}" -gt 0 ] && [ "${a:-0}" -gt 0 ]
}
flood_arrived() {
	local n
	n=$(($(cat /sys/class/misc/"$g"/drops_bad_channel) - unbound_before))
	ktap_print_msg "guest counted $n flood SDUs (channel 10 is unbound there: drops_bad_channel)"
	[ "$n" = 2000 ]
}
WAIT_SECS=120 wait_for flood_done
ktap_test_result "back-pressure: send_sg and send said EAGAIN, write_space resumed the flood" flood_waited
ktap_test_result "the flood's 2000 SDUs all crossed, none lost" flood_arrived

# Guest traffic on the echo channel while the in-kernel user goes.
traffic_out=$(mktemp)
traffic_start() {
	PYTHONPATH=$(dirname "$0") python3 -S - "/dev/$g" >"$traffic_out" 2>&1 <<'PY' &
import errno, os, sys
from vmpi_uapi import bind
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK)
bind(fd, 9)
first = True
while True:
    if first:
        # One SDU written and its echo read: traffic flows.
        os.set_blocking(fd, True)
        os.write(fd, b"first")
        os.read(fd, 65536)
        os.set_blocking(fd, False)
        print("running", flush=True)
        first = False
    for _ in range(16):
        try:
            os.write(fd, os.urandom(1500))
        except OSError as e:
            if e.errno != errno.EAGAIN:
                sys.exit(0)
    while True:
        try:
            os.read(fd, 65536)
        except OSError as e:
            if e.errno != errno.EAGAIN:
                sys.exit(0)
            break
PY
	traffic=$!
}
traffic_start
WAIT_SECS=30 wait_for grep -q running "$traffic_out" || sed 's/^/# traffic: /' "$traffic_out"
klog_mark
# The guest's traffic goes on after its echo is gone: writes to a channel
# the host no longer binds are the host's drops, not the guest's errors.
unload_ok() {
	local lines sent
	grep -q running "$traffic_out" || { ktap_print_msg "the guest traffic never started"; return 1; }
	kill -0 "$traffic" 2>/dev/null || { ktap_print_msg "the guest traffic had stopped before rmmod"; return 1; }
	rmmod vmpi_echo || return 1
	lines=$(klog_since_mark | grep "vmpi_echo: unloading") || { ktap_print_msg "no unloading line in the log"; return 1; }
	printf '%s\n' "$lines" | sed 's/^/# /'
	sent=$(cat /sys/class/misc/"$g"/tx_sdus)
	sleep 1
	kill -0 "$traffic" 2>/dev/null || { ktap_print_msg "the guest traffic stopped with the in-kernel user"; return 1; }
	[ "$(cat /sys/class/misc/"$g"/tx_sdus)" -gt "$sent" ] || { ktap_print_msg "the guest sends no more SDUs"; return 1; }
}
ktap_test_result "rmmod of the in-kernel user under traffic: the guest's traffic goes on" unload_ok
insmod "$echo_ko"
sleep 2
klog_mark
del_ok() {
	vdpa dev del vmpi0 &&
		WAIT_SECS=10 wait_for eval 'klog_since_mark | grep -q "echo port down (ENODEV)"' &&
		klog_since_mark | grep -q "flood port down (ENODEV)"
}
ktap_test_result "vdpa dev del under an open port: down(ENODEV) for each port" del_ok
ktap_test_result "the user closes its ports after the device went away" rmmod vmpi_echo
kill "$traffic" 2>/dev/null
wait "$traffic" 2>/dev/null
traffic=
ktap_finished
