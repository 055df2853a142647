#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI data path in one kernel: the host and guest sides of one device
# (vmpi_host + virtio_vdpa + vmpi_guest, both on the core vmpi) bind raw
# channel 5 through their /dev/vmpiN, and SDUs of 0 to 65535 bytes cross
# both ways byte for byte (fragments in the guest's 4 KiB rx buffers);
# the char device's errors (vmpi_raw_io.py); counters in sysfs.
source "$(dirname "$0")/../lib.sh"

io=$(dirname "$0")/vmpi_raw_io.py

rvio_on_exit vmpi_unload

ktap_print_header
vmpi_load && vmpi_up || ktap_exit_fail_msg "VMPI device vmpi0 did not come up"
ktap_print_msg "host side /dev/$h, guest side /dev/$g"

ktap_set_plan 13
run_py_ktap 240 python3 -S "$io" "/dev/$h" "/dev/$g"

# 21 SDUs of the transfers each way, 2 more from the guest; none dropped.
counters() {
	local d=/sys/class/misc/$1 f v
	for f in rx_sdus tx_sdus ctrl_rx drops_bad_header drops_bad_channel drops_oversized drops_bad_fragment \
		drops_bad_desc drops_no_credit drops_bad_control drops_rx_full; do
		read_line v "$d/$f"
		printf '%s=%s ' $f "$v"
	done
}
ktap_print_msg "host: $(counters "$h")"
ktap_print_msg "guest: $(counters "$g")"
sums_ok() {
	[ "$(cat /sys/class/misc/$h/rx_sdus)" = 23 ] && [ "$(cat /sys/class/misc/$g/tx_sdus)" = 23 ] &&
		[ "$(cat /sys/class/misc/$g/rx_sdus)" = 21 ] && [ "$(cat /sys/class/misc/$h/tx_sdus)" = 21 ] &&
		vmpi_no_drops "$h" "$g"
}
ktap_test_result "sysfs counters: every SDU counted once each way, no drops" sums_ok

# A reader blocked on the host side while the device is deleted: it gets
# ENODEV, and closes its file after the device (and its char device) are
# gone.
out=$(mktemp)
PYTHONPATH=$(dirname "$0") python3 -S - "/dev/$h" >"$out" 2>&1 <<'PY' &
import errno, os, sys, time
from vmpi_uapi import bind
fd = os.open(sys.argv[1], os.O_RDWR)
bind(fd, 7)
print("bound", flush=True)
try:
    os.read(fd, 100)
    print("read returned", flush=True)
except OSError as e:
    print("errno", errno.errorcode[e.errno], flush=True)
time.sleep(2)
os.close(fd)
print("closed", flush=True)
PY
reader=$!
bound() { grep -q bound "$out"; }
closed() { grep -q closed "$out"; }
if wait_for bound && sleep 1 && vdpa dev del vmpi0 && WAIT_SECS=20 wait_for closed &&
	grep -q "errno ENODEV" "$out" && wait $reader; then
	ktap_test_pass "vdpa dev del under a blocked reader: ENODEV, close afterwards is clean"
else
	sed 's/^/# reader: /' "$out"
	ktap_test_fail "vdpa dev del under a blocked reader: ENODEV, close afterwards is clean"
fi
rm -f "$out"

ktap_finished
