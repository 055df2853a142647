#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI flows by application name in one kernel (vmpi_host + virtio_vdpa +
# vmpi_guest on the core vmpi): registration, allocation from the guest
# and acceptance on the host, unknown names, a timed-out allocation, the
# ioctls' errors, credit without drops, close and reopen, 64 flows with
# interleaved traffic (random payloads, some in several fragments) on 64
# distinct channels, closed from both ends at once and allocated again
# with no control message dropped, readers of idle flows left asleep by a
# busy one, writers blocked on a full send queue not woken at each SDU
# sent, and the guest driver going away under a flow (vmpi_flow.py).
source "$(dirname "$0")/../lib.sh"

guest_ko=$(rvio_ko vmpi_guest)
flow=$(dirname "$0")/vmpi_flow.py

rvio_on_exit vmpi_unload

ktap_print_header
vmpi_load && vmpi_up || ktap_exit_fail_msg "VMPI device vmpi0 did not come up"
ktap_print_msg "host side /dev/$h, guest side /dev/$g"

ktap_set_plan 38
run_py_ktap 300 python3 -S "$flow" "/dev/$h" "/dev/$g" "$guest_ko"
ktap_finished
