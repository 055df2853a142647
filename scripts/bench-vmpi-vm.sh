#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM (scripts/bench-vmpi.sh boots it): VMPI's goodput and
# SDU rate over the size sweep, both ways, and side by side in the same
# run the baselines: UDP over a veth pair between two network namespaces,
# and virtio-net through vdpa_sim_net + virtio_vdpa (Ethernet frames out
# and back in on one interface, sizes up to its MTU). Every measurement is
# one `result ...` line of vmpi-perf on standard output (the VM's file
# system is read-only: scripts/bench-vmpi.sh collects them), and facts
# about the VM are `vm: ...` lines. AF_VSOCK (SOCK_SEQPACKET and
# SOCK_STREAM over vsock_loopback) is measured the same way, and round
# trips (`--rr`) of VMPI and vsock.
#
# usage: scripts/bench-vmpi-vm.sh [REPEAT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../selftests/lib.sh
source "$root/selftests/lib.sh"
repeat=${1:-3}
perf=$root/target/release/vmpi-perf
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del rvio-a 2>/dev/null || true
	ip netns del rvio-b 2>/dev/null || true
	vdpa dev del vmpi0 2>/dev/null || true
	vdpa dev del vmpi1 2>/dev/null || true
	vdpa dev del simnet0 2>/dev/null || true
}
trap cleanup EXIT
# A measurement that fails is said (a `vm:` line, kept in vm.txt) and the
# run goes on with the next.
m() {
	local rc=0 c="$*"
	"$@" || rc=$?
	[ $rc = 0 ] || echo "vm: measurement failed (exit $rc): vmpi-perf ${c#"$perf "}"
}

echo "vm: kernel $(uname -r), $(grep -c processor /proc/cpuinfo) CPUs"
# The debug kernel's kmemleak scans memory by itself 60 s after boot and
# every 10 minutes, stalling this VM for seconds (under TCG): one such
# scan cut the guest-to-host sweep at 1750 and 2000 bytes to half. Off
# for the benchmark (scripts/vm-guest.sh still scans once it ends).
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan=off >/sys/kernel/debug/kmemleak
	echo "vm: kmemleak's periodic scan off during the benchmark"
fi
config=$(bash -c ". '$root/scripts/lib.sh' && rvio_kdir")/.config
echo "vm: debug options: $(for o in KASAN PROVE_LOCKING KFENCE DEBUG_KMEMLEAK; do
	grep -qs "^CONFIG_$o=y" "$config" && printf '%s ' $o; done)"

echo "== VMPI: memory of an idle device"
for _ in $(seq 1 "$repeat"); do "$root/scripts/mem-vmpi-vm.sh" 16; done

echo "== VMPI: vmpi_host + virtio_vdpa + vmpi_guest"
vmpi_load && vmpi_up
"$perf" server --dev "/dev/$h" --name perf &
pids+=($!)
sleep 1
m "$perf" client --dev "/dev/$g" --name perf --sweep --repeat "$repeat"
m "$perf" client --dev "/dev/$g" --name perf --sweep --repeat "$repeat" --down

echo "== VMPI: round trips (the host side echoes), one flow and 64 at once"
m "$perf" client --dev "/dev/$g" --name perf --rr --size 64,1500,4000,16384,65535 --repeat "$repeat"
m "$perf" client --dev "/dev/$g" --name perf --rr --flows 64 --size 64,1500 --repeat "$repeat"
echo "== VMPI: 1, 8 and 64 flows at once"
for f in 1 8 64; do
	for d in "" --down; do
		m "$perf" client --dev "/dev/$g" --name perf --flows $f --size 1000,65535 --repeat "$repeat" $d
	done
done
echo "== VMPI: two devices at once (flows spread over both)"
vdpa dev add mgmtdev vmpi name vmpi1 && WAIT_SECS=20 wait_for vmpi_link_up vmpi1
h1=$(vmpi_core_dev host vmpi1) && g1=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi1)")
"$perf" server --dev "/dev/$h1" --name perf &
pids+=($!)
sleep 1
for f in 2 8; do
	for d in "" --down; do
		m "$perf" client --dev "/dev/$g" --dev "/dev/$g1" --name perf --flows $f --size 1000,65535 --repeat "$repeat" $d
	done
done
kill "${pids[-1]}" 2>/dev/null || true
vdpa dev del vmpi1
echo "== The copy limit: single-thread memcpy of 64 KiB blocks"
m "$perf" memcpy --repeat "$repeat"

# VMPI again with vmpi_guest's parameters "${@:2}", results labelled $1.
vmpi_guest_with() {
	local label=$1 d
	shift
	rmmod vmpi_guest
	insmod "$(rvio_ko vmpi_guest)" "$@"
	WAIT_SECS=20 wait_for vmpi_link_up vmpi0
	g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)")
	# The guest's restart ended the server's registration: a new server.
	kill "${pids[-1]}" 2>/dev/null || true
	"$perf" server --dev "/dev/$h" --name perf &
	pids+=($!)
	sleep 1
	for d in "" --down; do
		m "$perf" client --dev "/dev/$g" --name perf --size 250,1000,4000,16384,65535 --repeat "$repeat" $d |
			sed "s/transport=vmpi /transport=$label /"
	done
}
echo "== VMPI with the guest declining VIRTIO_RING_F_EVENT_IDX"
vmpi_guest_with vmpi-no-event-idx event_idx=0
echo "== VMPI with the guest using VIRTIO_RING_F_INDIRECT_DESC"
vmpi_guest_with vmpi-indirect indirect_desc=1
echo "== VMPI with rxq buffers of a page (the default before 16 KiB)"
vmpi_guest_with vmpi-rx4k rx_buf_size=4096
echo "== VMPI with rxq buffers of 64 KiB"
vmpi_guest_with vmpi-rx64k rx_buf_size=65536

# AF_VSOCK, the peer a user would pick (issue 14), in the same run. Over
# vsock_loopback both ends are in this kernel: no virtqueue, no VMM,
# which favours vsock against VMPI's two rings.
echo "== AF_VSOCK over vsock_loopback (no virtqueues: favours vsock)"
modprobe vsock_loopback
port=5400
for t in seqpacket stream; do
	port=$((port + 1))
	"$perf" vsock-server --type $t --port $port &
	pids+=($!)
	sleep 1
	m "$perf" vsock-client --type $t --port $port --sweep --repeat "$repeat"
	m "$perf" vsock-client --type $t --port $port --sweep --repeat "$repeat" --down
	m "$perf" vsock-client --type $t --port $port --rr --size 64,1500,4000,16384,65535 --repeat "$repeat"
	m "$perf" vsock-client --type $t --port $port --rr --flows 64 --size 64,1500 --repeat "$repeat"
	for f in 1 8 64; do
		for d in "" --down; do
			m "$perf" vsock-client --type $t --port $port --flows $f --size 1000,65535 --repeat "$repeat" $d
		done
	done
done

echo "== UDP over veth between two network namespaces"
ip netns add rvio-a
ip netns add rvio-b
ip link add va netns rvio-a type veth peer name vb netns rvio-b
ip -n rvio-a addr add 10.99.0.1/24 dev va
ip -n rvio-b addr add 10.99.0.2/24 dev vb
ip -n rvio-a link set va up
ip -n rvio-b link set vb up
ip -n rvio-a link set lo up
ip -n rvio-b link set lo up
ip netns exec rvio-b "$perf" udp-server --port 5201 &
pids+=($!)
ip netns exec rvio-a "$perf" udp-server --port 5301 &
pids+=($!)
sleep 1
ip netns exec rvio-a "$perf" udp-client --to 10.99.0.2 --port 5201 --sweep --repeat "$repeat"
ip netns exec rvio-b "$perf" udp-client --to 10.99.0.1 --port 5301 --sweep --repeat "$repeat" --down

echo "== virtio-net: vdpa_sim_net + virtio_vdpa (frames loop back on one interface)"
modprobe vdpa_sim_net
vdpa dev add mgmtdev vdpasim_net name simnet0 mac 02:52:56:00:03:01
ifname=
wait_ifname() {
	ifname=$(basename "$(ls -d /sys/bus/vdpa/devices/simnet0/virtio*/net/* 2>/dev/null | head -n 1)" 2>/dev/null)
	[ -n "$ifname" ] && [ "$ifname" != . ]
}
WAIT_SECS=20 wait_for wait_ifname
ip link set "$ifname" up
sleep 1
"$perf" packet --ifname "$ifname" --sweep --repeat "$repeat"
echo "== bench done"
