#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The SR-IOV hook's sysfs files refuse bad input with the documented errno
# (docs/sriov-hook.md): an unknown PF, a netdev that is not an SR-IOV PF, a
# double attach, malformed lines, a MAC that another domain has; a VF
# index beyond the PF's VFs gets the driver's own error through the hook.
# The VM's kernel-log check covers the rest.
source "$(dirname "$0")/../lib.sh"

hook_ko=$(rvio_ko sriov_hook)
id=$((600 + RANDOM % 100))
cleanup() {
	rmmod sriov_hook 2>/dev/null
	[ -e /sys/bus/netdevsim/devices/netdevsim$id ] && echo $id >/sys/bus/netdevsim/del_device
	modprobe -r netdevsim 2>/dev/null
}
rvio_on_exit cleanup

ktap_print_header
[ -f "$hook_ko" ] || ktap_exit_fail_msg "sriov_hook.ko not built: run 'make' at the top of the repository"
pf=$(nsim_pf $id 2) || ktap_exit_fail_msg "cannot create a netdevsim PF with 2 VFs"
rvio_clean_slate && insmod "$hook_ko" || ktap_exit_fail_msg "cannot load sriov_hook"
ktap_set_plan 10

# Writing each line "$@" to file $2 fails with a message containing $1. The
# file must exist: a missing file fails with ENOENT too.
fails() {
	local want=$1 file=$2
	shift 2
	local line
	[ -f "/sys/kernel/sriov_hook/$file" ] || { ktap_print_msg "no file /sys/kernel/sriov_hook/$file"; return 1; }
	for line in "$@"; do
		expect_fail_with "$want" hook_w "$file" "$line" || return 1
	done
}
ktap_check "attach an unknown PF: ENODEV" fails "No such device" attach nosuchdev0
ktap_check "attach lo, not an SR-IOV PF: EOPNOTSUPP" fails "Operation not supported" attach lo
ktap_check "malformed attach and detach lines: EINVAL" fails "Invalid argument" attach \
	"" "$pf $pf" "a23456789012345678" "a/b" && fails "Invalid argument" detach ""
ktap_check "detach or numvfs of a PF not attached: ENOENT" \
	eval 'fails "No such file or directory" detach "$pf" && fails "No such file or directory" numvfs "$pf 1"'
ktap_check "double attach: EEXIST" eval 'hook_w attach "$pf" && fails "File exists" attach "$pf"'
ktap_check "malformed policy lines: EINVAL" fails "Invalid argument" policy \
	"$pf" "$pf 0" "$pf 0 domain=1" "$pf 0 mac=02:00:00:00:00:01" "$pf x domain=1 mac=02:00:00:00:00:01" \
	"$pf 0 domain=0 mac=02:00:00:00:00:01" "$pf 0 domain=1 mac=01:00:00:00:00:01" \
	"$pf 0 domain=1 mac=02:00:00:00:00:01 vlans=4095" "$pf 0 domain=1 mac=02:00:00:00:00:01 trust=maybe" \
	"$pf 0 domain=1 mac=02:00:00:00:00:01 max_rate=0" "$pf 0 domain=1 mac=02:00:00:00:00:01 color=red" \
	"$pf 2147483648 clear" "$pf 0 clear now"
ktap_check "malformed numvfs lines: EINVAL" fails "Invalid argument" numvfs "$pf" "$pf -1" "$pf 65536" "$pf 1 2"
ktap_check "clearing a policy that does not exist: ENOENT" fails "No such file or directory" policy "$pf 1 clear"
taken() {
	hook_w policy "$pf 0 domain=1 mac=02:52:56:00:20:01" &&
		fails "Address already in use" policy "$pf 1 domain=2 mac=02:52:56:00:20:01"
}
ktap_check "a policy with another VF's MAC: EADDRINUSE" taken
beyond() {
	expect_fail_with "Invalid argument" ip link set dev "$pf" vf 5 mac 02:52:56:00:20:05 &&
		hook_w policy "$pf 5 domain=3 mac=02:52:56:00:20:05" &&
		grep -qx "02:52:56:00:20:05 domain=3 software" /sys/kernel/sriov_hook/routes
}
ktap_check "VF 5 of 2: the driver's EINVAL passes through; its policy waits, routed in software" beyond
ktap_finished
