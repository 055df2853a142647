#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A hostile guest at the ring level (issue 13): vmpi-vmm's `hostile` mode
# (vmpi/vmm/src/hostile.rs) drives VMPI's host device through vhost_vdpa
# as QEMU does, then writes its rings by hand: descriptor loops, indirect
# tables nested, empty, huge, partial, unaligned or outside the map, heads
# and nexts beyond the table, an available index that jumps, buffers that
# wrap, lie outside the map or across its edge, writable on the send
# queue, read-only or readable on the receive queue, an SDU beyond
# max_sdu, a kick before DRIVER_OK, features after FEATURES_OK, bad queue
# sizes, random bytes, a used ring on the descriptors, resets and remaps
# in a loop (RVIO_HOSTILE_RESET_LOOP starts, 8; `make hostile`: 20); then
# RVIO_HOSTILE_ROUNDS (10; `make hostile`: 1000) random rounds from seed
# RVIO_HOSTILE_SEED (1). Each case checks the device's outcome (queue
# stopped with NEEDS_RESET and a config interrupt, or waiting for a map
# with nothing consumed, or the chain consumed and counted once, or
# nothing) and that a good guest is served after it:
# the link up, an SDU echoed byte for byte by host_echo.py on the host
# side's /dev/vmpiN. Every work pass of the device is timed from the
# workqueue tracepoints: none may take longer than
# RVIO_HOSTILE_MAX_PASS_MS (250). RVIO_HOSTILE_SKIP: cases to skip (A,B).
# For the cases of the VMM's suspend with chains kept out, a second device
# under vmpi_guest is the envelope switch's domain that a grant names.
source "$(dirname "$0")/../lib.sh"

vmm=$RVIO_ROOT/target/release/vmpi-vmm
here=$(cd "$(dirname "$0")" && pwd)
rounds=${RVIO_HOSTILE_ROUNDS:-10}
reset_loop=${RVIO_HOSTILE_RESET_LOOP:-8}
seed=${RVIO_HOSTILE_SEED:-1}
skip=${RVIO_HOSTILE_SKIP:-}
max_ms=${RVIO_HOSTILE_MAX_PASS_MS:-250}
T=/sys/kernel/tracing
EV=$T/events/workqueue
work=/tmp/hostile_ring.$$
echo_pid=
trace_pid=

cleanup() {
	[ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null
	[ -n "$trace_pid" ] && kill "$trace_pid" 2>/dev/null
	for e in workqueue_execute_start workqueue_execute_end; do
		echo 0 >"$EV/$e/enable" 2>/dev/null
		echo 0 >"$EV/$e/filter" 2>/dev/null
	done
	rmmod envelope_switch sriov_hook 2>/dev/null
	vdpa dev del vmpi1 2>/dev/null
	vdpa dev del vmpi0 2>/dev/null
	rmmod vmpi_guest 2>/dev/null
	rmmod vmpi_host vmpi 2>/dev/null
	modprobe -r vhost_vdpa virtio_vdpa 2>/dev/null
	rm -rf "$work"
}
rvio_on_exit cleanup

ktap_print_header
[ -x "$vmm" ] || ktap_exit_fail_msg "$vmm not built: run 'make check' (it builds it)"
mapfile -t cases < <("$vmm" hostile /dev/null --case list)
[ ${#cases[@]} -gt 0 ] || ktap_exit_fail_msg "$vmm hostile --case list printed no case"
rvio_clean_slate || ktap_exit_fail_msg "could not unload an earlier test's modules"
modprobe -r virtio_vdpa 2>/dev/null
mkdir -p "$work"
# One result per case and per round, the work passes' times, the log.
ktap_set_plan $((${#cases[@]} + rounds + 2))

modprobe -a vdpa vringh vhost_iotlb vhost_vdpa && insmod "$(rvio_ko vmpi)" &&
	insmod "$(rvio_ko vmpi_host)" && vdpa dev add mgmtdev vmpi name vmpi0 &&
	WAIT_SECS=10 wait_for vhost_of vmpi0 && h=$(vmpi_core_dev host vmpi0) ||
	ktap_exit_fail_msg "VMPI device vmpi0 was not bound to vhost_vdpa"
dev=$(vhost_of vmpi0)
# suspend-with-grant-held: vmpi1 under vmpi_guest (virtio_vdpa) is the
# envelope switch's domain 2, MAC 02:00:00:00:00:02, which takes envelopes
# (on raw channel 1, which nobody binds) and never copies; vmpi0 is domain
# 1, MAC 02:00:00:00:00:01. Grants are held 30 s: until the suspend.
S=/sys/kernel/envelope_switch
on_virtio() { [ -e /sys/bus/vdpa/drivers/virtio_vdpa/vmpi1 ]; }
modprobe virtio_vdpa && insmod "$(rvio_ko vmpi_guest)" && vdpa dev add mgmtdev vmpi name vmpi1 &&
	{ on_virtio || { echo vmpi1 >/sys/bus/vdpa/drivers/vhost_vdpa/unbind &&
		echo vmpi1 >/sys/bus/vdpa/drivers/virtio_vdpa/bind; }; } &&
	WAIT_SECS=20 wait_for vmpi_link_up vmpi1 &&
	insmod "$(rvio_ko sriov_hook)" && insmod "$(rvio_ko envelope_switch)" &&
	echo "vmpi0 domain=1" >$S/domains && echo "02:00:00:00:00:01 domain=1 vlan=10" >$S/table &&
	echo "vmpi1 domain=2" >$S/domains && echo "02:00:00:00:00:02 domain=2 vlan=10" >$S/table &&
	echo envelope >$S/mode && echo 30000 >/sys/module/vmpi_host/parameters/grant_hold_ms ||
	ktap_exit_fail_msg "could not make vmpi1 domain 2 of the envelope switch"
ktap_print_msg "host side /dev/$h, $dev; seed $seed, $rounds rounds${skip:+, skipping $skip}"
# vhost_vdpa pins the guest's RAM within RLIMIT_MEMLOCK (PA mode).
ulimit -l unlimited

python3 -S "$here/host_echo.py" "/dev/$h" host-echo >"$work/echo.log" 2>&1 &
echo_pid=$!
WAIT_SECS=30 wait_for grep -q '^host_echo: serving' "$work/echo.log" ||
	ktap_exit_fail_msg "host_echo.py did not start: $(cat "$work/echo.log")"

# Every work pass of a VMPI device, from the workqueue tracepoints (both
# print the work function): filtered to rvio_vdpa_work where the kernel
# takes a filter on a function's name, else all, sorted out below.
[ -d "$EV" ] || mount -t tracefs nodev $T 2>/dev/null
traced=0
if [ -d "$EV" ]; then
	echo 8192 >$T/buffer_size_kb 2>/dev/null
	echo >$T/trace
	filtered=filtered
	for e in workqueue_execute_start workqueue_execute_end; do
		echo 'function.function == rvio_vdpa_work' >"$EV/$e/filter" 2>/dev/null || filtered=unfiltered
		echo 1 >"$EV/$e/enable"
	done
	echo 1 >$T/tracing_on
	cat $T/trace_pipe >"$work/wq.trace" &
	trace_pid=$!
	traced=1
fi

klog_mark
started=$SECONDS
# The harness's lines as KTAP results; cases and rounds it did not report
# (it crashed or timed out) are failed, so that the plan holds.
declare -A reported=()
nrounds=0
rc=none
while IFS= read -r line; do
	case "$line" in
	"ok - hostile round "*) ktap_test_pass "${line#ok - }"; nrounds=$((nrounds + 1)) ;;
	"not ok - hostile round "*) ktap_test_fail "${line#not ok - }"; nrounds=$((nrounds + 1)) ;;
	"ok - hostile "*" # SKIP"*)
		c=${line#ok - hostile }; reported[${c%% *}]=1
		d=${line#ok - }
		ktap_test_skip "${d%% # SKIP*}" ;;
	"ok - hostile "*)
		c=${line#ok - hostile }; reported[${c%% *}]=1
		ktap_test_pass "${line#ok - }" ;;
	"not ok - hostile "*)
		c=${line#not ok - hostile }; c=${c%% *}; c=${c%:}
		if [ -n "$c" ] && printf '%s\n' "${cases[@]}" | grep -qx -- "$c"; then
			reported[$c]=1
			ktap_test_fail "${line#not ok - }"
		else
			echo "# $line"
		fi ;;
	"hostile_ring exit "*) rc=${line#hostile_ring exit } ;;
	*) echo "# $line" ;;
	esac
done < <(timeout $((240 + rounds * 6)) "$vmm" hostile "$dev" --case all --rounds "$rounds" --seed "$seed" \
	${skip:+--skip "$skip"} --echo host-echo --grant-to 2 --reset-loop "$reset_loop" 2>&1; echo "hostile_ring exit $?")
for c in "${cases[@]}"; do
	[ -n "${reported[$c]:-}" ] || ktap_test_fail "hostile $c: no result (vmpi-vmm exited $rc)"
done
for ((k = nrounds; k < rounds; k++)); do
	ktap_test_fail "hostile round $k: no result (vmpi-vmm exited $rc)"
done
sed 's/^/# /' "$work/echo.log" | grep -v 'flow [0-9]* ended' | tail -n 5
# The device's state after it all (docs/vmpi-sysfs.md, "State and fault injection").
sed 's/^/# vmpi0 queues: /' /sys/kernel/debug/vmpi_host/vmpi0/queues 2>/dev/null

# Every case and round brings the link up again: the host logs it at most
# 5 times a minute per device (vmpi/proto/log_limit.rs), and says how many
# it left out.
minutes=$(((SECONDS - started + 59) / 60))
ups=$(klog_since_mark | grep -c "$h: link up (host")
left=$(klog_since_mark | grep -c "$h: link up (host; [0-9]* more times not logged)")
desc="'link up' logged $ups times in $minutes min (at most 5 a minute), $left with a count of those left out"
if [ "$ups" -ge 1 ] && [ "$ups" -le $((5 * (minutes + 1))) ]; then
	ktap_test_pass "$desc"
else
	ktap_test_fail "$desc"
fi

# The work passes: start and end paired by work item.
if [ $traced = 1 ]; then
	for e in workqueue_execute_start workqueue_execute_end; do echo 0 >"$EV/$e/enable"; done
	sleep 1
	kill "$trace_pid" 2>/dev/null
	wait "$trace_pid" 2>/dev/null
	trace_pid=
	# Passes held on purpose (unmap-during-pass: the device's debugfs
	# pop_delay_ms, 1000 ms; counted in pop_delays) are left out.
	held=$(cat /sys/kernel/debug/vmpi_host/vmpi0/pop_delays 2>/dev/null || echo 0)
	read -r n mean longest over excused < <(awk -v max="$max_ms" -v held="$held" '
		/function rvio_vdpa_work/ {
			for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) { t = substr($i, 1, length($i) - 1); break }
			for (i = 1; i <= NF; i++) if ($i == "struct") { w = $(i + 1); sub(/:$/, "", w); break }
			if (/workqueue_execute_start/) start[w] = t
			else if (w in start) {
				ms = (t - start[w]) * 1000; delete start[w]
				if (ms >= 1000 && excused < held) { excused++; next }
				n++; sum += ms; if (ms > longest) longest = ms; if (ms > max) over++
			}
		}
		END { printf "%d %.3f %.3f %d %d\n", n, n ? sum / n : 0, longest, over, excused }' "$work/wq.trace")
	ktap_print_msg "work passes from the workqueue tracepoints ($filtered)"
	desc="every device work pass took at most $max_ms ms: $n passes, mean $mean ms, longest $longest ms ($excused held on purpose left out)"
	if [ "$n" -gt 0 ] && [ "$over" = 0 ]; then
		ktap_test_pass "$desc"
	else
		ktap_test_fail "$desc ($over longer)"
	fi
else
	ktap_test_fail "device work passes timed: no tracefs"
fi
ktap_finished
