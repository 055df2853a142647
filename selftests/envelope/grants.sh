#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Hostile envelope frontends (docs/vmpi-protocol.md section 5, docs/envelope.md
# section 5): three VMPI devices attached to the envelope switch as domains
# 1, 2 and 3, whose guest sides the test module envelope_evil takes (their
# raw channel 1, as a netfront would). It grants and copies through VMPI's
# in-kernel API the way a hostile or broken frontend would: a handle
# granted to another domain, forged handles, windows beyond the grant or
# the buffer, a copy after the finish, a grant that lies about its
# destination, one never finished, a flood (the host holds half of a
# domain's grants to one destination: the rest go on); posted receives (a frame
# delivered into one, too small a one, more than 64, cancels); and checks
# each answer. Its
# results are KTAP lines in the kernel log, collected here. Then the switch
# and the devices go while grants are held.
source "$(dirname "$0")/../lib.sh"

S=/sys/kernel/envelope_switch
DOMS="d1 d2 d3"
EVIL_RESULTS=19

cleanup() {
	rmmod envelope_evil 2>/dev/null
	rmmod envelope_switch 2>/dev/null
	rmmod sriov_hook 2>/dev/null
	for d in $DOMS; do vdpa dev del "$d" 2>/dev/null; done
	vmpi_unload
}
rvio_on_exit cleanup

ktap_print_header
ktap_set_plan $((EVIL_RESULTS + 4))
# Indirect descriptors: a posted receive takes one descriptor of the
# copyq, so the device's own bound (64 held) is reached before the guest
# transport's (half the ring's descriptors).
VMPI_GUEST_PARAMS=indirect_desc=1 vmpi_load "$(rvio_ko sriov_hook)" "$(rvio_ko envelope_switch)" "$(rvio_ko envelope_evil)" ||
	ktap_exit_fail_msg "cannot load VMPI"
for d in $DOMS; do
	vdpa dev add mgmtdev vmpi name "$d" || ktap_exit_fail_msg "vdpa dev add $d failed"
done
for d in $DOMS; do
	WAIT_SECS=20 wait_for vmpi_link_up "$d" || ktap_exit_fail_msg "VMPI device $d did not come up"
done
insmod "$(rvio_ko sriov_hook)" && insmod "$(rvio_ko envelope_switch)" ||
	ktap_exit_fail_msg "insmod sriov_hook, envelope_switch failed"
i=1
for d in $DOMS; do
	echo "$d domain=$i" >$S/domains && echo "02:00:00:00:00:0$i domain=$i vlan=10" >$S/table ||
		ktap_exit_fail_msg "cannot attach $d as domain $i"
	i=$((i + 1))
done
echo envelope >$S/mode

# The hostile script runs with the host handling 4 chains of a kind per
# work pass (vmpi_host copy_batch, default 64): its flood of 300 grants
# makes passes that reach the batch and yield, and every answer stays
# the same.
batch=/sys/module/vmpi_host/parameters/copy_batch
echo 4 >$batch || ktap_exit_fail_msg "cannot set vmpi_host copy_batch"
klog_mark
insmod "$(rvio_ko envelope_evil)" || ktap_exit_fail_msg "insmod envelope_evil failed"
n=0
while IFS= read -r line; do
	case "$line" in
	"ok "*) ktap_test_pass "${line#ok [0-9]* }"; n=$((n + 1)) ;;
	"not ok "*) line=${line#not ok }; ktap_test_fail "${line#[0-9]* }"; n=$((n + 1)) ;;
	*) echo "# $line" ;;
	esac
done < <(klog_since_mark | sed -n 's/.*envelope_evil: //p')
for ((; n < EVIL_RESULTS; n++)); do ktap_test_fail "envelope_evil: a result is missing"; done
echo 64 >$batch

# The switch's view: domain 1's grants completed, none is held; the copies
# domain 2 made that failed are counted by status.
held_none() { grep -q "^grants_held 0$" $S/stats; }
ktap_check "no grant is held once the script is over" wait_for held_none
grep -E "grants|copies|completions|bytes|waited|wait_gave_up|over_share|passes" $S/stats | sed 's/^/# /'
stat() { sed -n "s/^$1 //p" $S/stats; }
counted() {
	[ "$(stat copies_not_granted)" -ge 1 ] && [ "$(stat copies_bad_handle)" -ge 4 ] &&
		[ "$(stat copies_bad_window)" -ge 1 ] &&
		[ "$(stat copies_ok)" -ge 2 ] && [ "$(stat completions_timeout)" -ge 1 ] &&
		[ "$(stat completions_done)" -ge 2 ] &&
		[ "$(stat copies_too_many)" = 1 ] && [ "$(stat copies_gone)" -ge 65 ] &&
		[ "$(stat deliveries)" -ge 1 ] && [ "$(stat delivered)" -ge 1 ] && [ "$(stat posted)" = 0 ] &&
		[ "$(stat waited)" -ge 2 ] && [ "$(stat wait_gave_up)" -ge 1 ] &&
		[ "$(stat grants_over_share)" -ge 1 ] &&
		[ "$(stat grant_passes_full)" -ge 1 ] && [ "$(stat grant_passes)" -gt "$(stat grant_passes_full)" ]
}
ktap_check "the host counts every failed copy by status, the deliveries (and those that waited), the grants over a destination's share, and the work passes that reached copy_batch 4" counted
rmmod envelope_evil
# A grant held while the switch goes: it is revoked or times out, and the
# module unloads while devices are attached.
ktap_check "rmmod envelope_switch with domains attached" rmmod envelope_switch
gone() { for d in $DOMS; do vdpa dev del "$d" || return 1; done; }
ktap_check "the devices go" gone
ktap_finished
