#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The ring features the host device offers, negotiated or declined by
# vmpi_guest's parameters: VIRTIO_RING_F_EVENT_IDX (bit 29, on by
# default: the device keeps avail_event, turning the guest's kicks off
# while it works through a queue; with event_idx=0 the rings use the
# NO_NOTIFY / NO_INTERRUPT flags) and VIRTIO_RING_F_INDIRECT_DESC (bit 28,
# off by default; indirect_desc=1: a message's header and payload go in an
# indirect table); and rxq buffers of a page (rx_buf_size=4096: a 64 KiB
# SDU reassembled from 16 fragments) and of 64 KiB (rx_buf_size=65536: an
# SDU in one buffer, which becomes the SDU's bytes), beside the default 16
# KiB (SDUs of 8 to 16 KiB handed over, longer ones in their buffers'
# parts); and the size changed under traffic (4, 64, 16 and 32 KiB in
# turn: messages in buffers of two sizes, buffers of an old size read and
# given back). In each mode bursts of SDUs cross both ways byte for byte
# (vmpi_burst.py), and neither side (each mode's guest device and the
# host's) counts a drop.
source "$(dirname "$0")/../lib.sh"

burst=$(dirname "$0")/vmpi_burst.py

rvio_on_exit vmpi_unload

# Bit $1 of the guest's virtio device's negotiated features.
feature_bit() {
	cut -c $(($1 + 1)) "/sys/bus/virtio/devices/$(vdpa_virtio_of vmpi0)/features"
}

# vmpi_guest again with "$@" (few rxq buffers: the host runs out of them
# and waits for the guest's kick); sets g.
reload_guest() {
	rmmod vmpi_guest && insmod "$(rvio_ko vmpi_guest)" rx_buffers=16 "$@" &&
		WAIT_SECS=20 wait_for vmpi_link_up vmpi0 && g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)")
}

# One mode: reload with "${@:3}", check bits 29 and 28 are $1 and $2,
# send bursts.
mode() {
	local evidx=$1 indirect=$2 desc
	shift 2
	desc="vmpi_guest ${*:-(defaults)}: EVENT_IDX $evidx, INDIRECT_DESC $indirect, the link comes up"
	if reload_guest "$@"; then
		ktap_check "$desc" [ "$(feature_bit 29)$(feature_bit 28)" = "$evidx$indirect" ]
	else
		ktap_test_fail "$desc"
	fi
	run_py_ktap 240 python3 -S "$burst" "/dev/$h" "/dev/$g" 4
	# Each reload makes a new guest device: check this one's counters now.
	ktap_test_result "vmpi_guest ${*:-(defaults)}: no drops counted on either side" vmpi_no_drops "$h" "$g"
}

ktap_print_header
vmpi_load && vmpi_up || ktap_exit_fail_msg "VMPI device vmpi0 did not come up"
ktap_set_plan 23

mode 1 0
mode 0 0 event_idx=0
mode 1 1 indirect_desc=1
mode 1 0 rx_buf_size=4096
mode 1 0 rx_buf_size=65536
reload_guest || ktap_test_fail "vmpi_guest (defaults) again: the link comes up"
run_py_ktap 240 python3 -S "$burst" "/dev/$h" "/dev/$g" 8 /sys/module/vmpi_guest/parameters/rx_buf_size
ktap_test_result "rx_buf_size changed under traffic: no drops counted on either side" vmpi_no_drops "$h" "$g"
echo 16384 >/sys/module/vmpi_guest/parameters/rx_buf_size
ktap_finished
