#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VIRTIO_RING_F_EVENT_IDX: the host device offers it and vmpi_guest
# negotiates it (the device then keeps avail_event, turning the guest's
# kicks off while it works through a queue); with vmpi_guest's
# event_idx=0 the guest declines it and the rings fall back to the
# NO_NOTIFY / NO_INTERRUPT flags. Either way bursts of SDUs cross both
# ways byte for byte (vmpi_burst.py) and nothing is dropped.
source "$(dirname "$0")/../lib.sh"

burst=$(dirname "$0")/vmpi_burst.py

trap vmpi_unload EXIT

# Bit 29 of the guest's virtio device's negotiated features.
event_idx_bit() {
	cut -c 30 "/sys/bus/virtio/devices/$(vdpa_virtio_of vmpi0)/features"
}

no_drops() {
	local d f
	for d in "$h" "$g"; do
		for f in /sys/class/misc/"$d"/drops_*; do
			[ "$(cat "$f")" = 0 ] || { ktap_print_msg "$d $(basename "$f") = $(cat "$f")"; return 1; }
		done
	done
}

# vmpi_guest again with "$@" (few rxq buffers: the host runs out of them
# and waits for the guest's kick); sets g.
reload_guest() {
	rmmod vmpi_guest && insmod "$(rvio_ko vmpi_guest)" rx_buffers=16 "$@" &&
		WAIT_SECS=20 wait_for vmpi_link_up vmpi0 && g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)")
}

ktap_print_header
vmpi_load && vmpi_up || ktap_exit_fail_msg "VMPI device vmpi0 did not come up"
ktap_set_plan 7

if reload_guest; then
	ktap_check "the guest negotiates EVENT_IDX by default (features bit 29)" [ "$(event_idx_bit)" = 1 ]
else
	ktap_test_fail "the guest negotiates EVENT_IDX by default (features bit 29)"
fi
run_py_ktap 240 python3 "$burst" "/dev/$h" "/dev/$g" 4

if reload_guest event_idx=0; then
	ktap_check "with event_idx=0 the guest declines EVENT_IDX and the link comes up" [ "$(event_idx_bit)" = 0 ]
else
	ktap_test_fail "with event_idx=0 the guest declines EVENT_IDX and the link comes up"
fi
run_py_ktap 240 python3 "$burst" "/dev/$h" "/dev/$g" 4

ktap_test_result "no drops counted on either side" no_drops
ktap_finished
