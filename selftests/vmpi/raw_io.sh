#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI data path in one kernel: the host and guest sides of one device
# (vmpi_host + virtio_vdpa + vmpi_guest, both on the core vmpi) bind raw
# channel 5 through their /dev/vmpiN, and SDUs of 0 to 65535 bytes cross
# both ways byte for byte (fragments in the guest's 16 KiB rx buffers, a
# 64 KiB SDU read out of them in parts); the char device's errors, a read
# whose buffer faults part-way included (vmpi_raw_io.py); counters in
# sysfs; the bound on what one side's raw channels hold unread together,
# and its charge to the reader's memory cgroup.
source "$(dirname "$0")/../lib.sh"

io=$(dirname "$0")/vmpi_raw_io.py

rvio_on_exit vmpi_unload

ktap_print_header
vmpi_load && vmpi_up || ktap_exit_fail_msg "VMPI device vmpi0 did not come up"
ktap_print_msg "host side /dev/$h, guest side /dev/$g"

ktap_set_plan 19
run_py_ktap 240 python3 -S "$io" "/dev/$h" "/dev/$g"

# 21 SDUs of the transfers each way, 3 more host to guest and 1 guest to
# host read after a faulting read, 2 more from the guest; none dropped.
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
	[ "$(cat /sys/class/misc/$h/rx_sdus)" = 24 ] && [ "$(cat /sys/class/misc/$g/tx_sdus)" = 24 ] &&
		[ "$(cat /sys/class/misc/$g/rx_sdus)" = 24 ] && [ "$(cat /sys/class/misc/$h/tx_sdus)" = 24 ] &&
		vmpi_no_drops "$h" "$g"
}
ktap_test_result "sysfs counters: every SDU counted once each way, no drops" sums_ok

# The guest fills 12 raw channels the host binds and never reads (64 SDUs
# of 65535 bytes each, 48 MiB): the host side keeps 32 MiB of them beyond
# each queue's own 64 KiB (524 SDUs: 43 in each queue, 8 more), drops the
# rest (rx_full), and gets the bytes back when the files close unread.
out=$(mktemp)
PYTHONPATH=$(dirname "$0") python3 -S - "/dev/$h" "/dev/$g" "/sys/class/misc/$h" >"$out" 2>&1 <<'PY'
import os, sys, time
from vmpi_uapi import bind
host, guest, sysfs = sys.argv[1:]
def counter(f):
    return int(open(sysfs + "/" + f).read())
chans = range(20, 32)
hs, gs = [], []
for c in chans:
    hs.append(os.open(host, os.O_RDWR))
    bind(hs[-1], c)
    gs.append(os.open(guest, os.O_RDWR))
    bind(gs[-1], c)
drops0, rx0 = counter("drops_rx_full"), counter("rx_sdus")
sdu = bytes(65535)
for _ in range(64):
    for fd in gs:
        os.write(fd, sdu)
end = time.time() + 60
while counter("rx_sdus") - rx0 < 12 * 64 and time.time() < end:
    time.sleep(0.1)
print("received", counter("rx_sdus") - rx0, "held", counter("raw_rx_bytes"),
      "dropped", counter("drops_rx_full") - drops0, flush=True)
for fd in hs + gs:
    os.close(fd)
print("after close held", counter("raw_rx_bytes"), flush=True)
PY
sed 's/^/# /' "$out"
bounded() {
	grep -qx "received 768 held 34340340 dropped 244" "$out" && grep -qx "after close held 0" "$out"
}
ktap_test_result "12 raw channels filled unread: the side holds 32 MiB beyond 64 KiB a queue (524 SDUs), drops 244, none after close" bounded
rm -f "$out"

# A reader in a memory cgroup: what the guest makes it keep (64 SDUs of
# 64 KiB on 4 channels) is charged to the reader's cgroup, and given back
# when its files close; under a limit, the rest is dropped (rx_full) and
# nobody is OOM-killed.
cg=/sys/fs/cgroup
out=$(mktemp)
charged() {
	{ [ -e $cg/cgroup.controllers ] || mount -t cgroup2 none $cg; } &&
		echo +memory >$cg/cgroup.subtree_control && mkdir -p $cg/rvio_raw_io || return 1
	PYTHONPATH=$(dirname "$0") python3 -S - "/dev/$h" "/dev/$g" "/sys/class/misc/$h" "$cg/rvio_raw_io" \
		>"$out" 2>&1 <<'PY'
import os, sys, time
from vmpi_uapi import bind
host, guest, sysfs, cg = sys.argv[1:]
open(cg + "/cgroup.procs", "w").write(str(os.getpid()))
def counter(f):
    return int(open(sysfs + "/" + f).read())
def mem():
    return int(open(cg + "/memory.current").read())
def fill(gs, n):
    rx0 = counter("rx_sdus")
    for _ in range(n):
        for fd in gs:
            os.write(fd, bytes(65535))
    end = time.time() + 60
    while counter("rx_sdus") - rx0 < n * len(gs) and time.time() < end:
        time.sleep(0.1)
hs, gs = [], []
for c in range(40, 44):
    hs.append(os.open(host, os.O_RDWR))
    bind(hs[-1], c)
    gs.append(os.open(guest, os.O_RDWR))
    bind(gs[-1], c)
m0 = mem()
fill(gs, 16)
m1 = mem()
for fd in hs:
    os.close(fd)
m2 = mem()
print("charged", (m1 - m0) >> 10, "KiB, given back", (m1 - m2) >> 10, "KiB", flush=True)
# Under a limit 2 MiB above what the cgroup holds now.
open(cg + "/memory.max", "w").write(str(mem() + (2 << 20)))
hs = []
for c in range(40, 44):
    hs.append(os.open(host, os.O_RDWR))
    bind(hs[-1], c)
held0, drops0 = counter("raw_rx_bytes"), counter("drops_rx_full")
fill(gs, 16)
held = (counter("raw_rx_bytes") - held0) >> 10
print("limited: held", held, "KiB, dropped", counter("drops_rx_full") - drops0, flush=True)
for fd in hs + gs:
    os.close(fd)
PY
	local rc=$?
	sed 's/^/# /' "$out"
	rmdir $cg/rvio_raw_io 2>/dev/null
	[ $rc = 0 ] || return 1
	# 64 SDUs of 64 KiB: 4 MiB charged and given back (within 10%);
	# under the limit about 2 MiB more held (the cgroup's per-CPU charge
	# stock and the reader's own pages move it by some 100s of KiB), the
	# rest, some 30 of the 64, dropped.
	read -r c back < <(sed -n 's/^charged \([0-9]*\) KiB, given back \([0-9]*\) KiB$/\1 \2/p' "$out")
	read -r lh ld < <(sed -n 's/^limited: held \([0-9]*\) KiB, dropped \([0-9]*\)$/\1 \2/p' "$out")
	[ -n "$c" ] && [ -n "$lh" ] && [ "$c" -ge 3700 ] && [ "$back" -ge 3700 ] &&
		[ "$lh" -le 2560 ] && [ "$ld" -ge 20 ]
}
ktap_test_result "a reader's memory cgroup is charged what the guest makes it keep, and limits it" charged
rm -f "$out"

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
