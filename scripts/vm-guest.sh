#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the VM around the command of scripts/vm-run.sh: runs the
# command, then checks that the kernel's bug detectors were still watching
# and reports what they found in the kernel log, where klog-check.sh sees
# it (every line starts "rvio-vm: <detector>:"):
# - lockdep: it turns itself off after its first report, or silently when
#   it runs out of room or meets a lock it cannot track, and every later
#   lock bug goes unseen: /proc/lockdep_stats must still say debug_locks 1;
# - taint: a WARN, an oops, a bad page or a soft lockup taints the kernel
#   even where its message did not reach the console: no new such flag;
# - kmemleak: scanned after the command; no kmemleak file (debugfs not
#   mounted, kmemleak off) is a failure, not a skipped check.
#
# No kmemleak scan before the command: on this kernel, boot leaves nothing
# for kmemleak to report (checked with the two scans below and no command),
# and a scan costs 15-20 s under TCG. Should boot ever leak, every run fails
# with the report in its console log: that is a kernel finding, not noise.
kmemleak=/sys/kernel/debug/kmemleak # debugfs: mounted by vm-init.sh
# Taint flags that mean a detector fired: B (bad page, bit 5), D (die,
# bit 7), W (warn, bit 9), L (soft lockup, bit 14).
taint_bad_mask=$(((1 << 5) | (1 << 7) | (1 << 9) | (1 << 14)))

report() { echo "rvio-vm: $*" >/dev/kmsg; }

debug_locks() {
	local key val
	while read -r key val; do
		[ "$key" = debug_locks: ] && { echo "$val"; return; }
	done </proc/lockdep_stats
	echo missing
}

if [ ! -r /proc/lockdep_stats ]; then
	report "lockdep: /proc/lockdep_stats missing: this kernel does not check locking"
elif [ "$(debug_locks)" != 1 ]; then
	report "lockdep: off before the command (debug_locks $(debug_locks)): lock bugs go unseen"
fi
taint_before=$(</proc/sys/kernel/tainted)

"$@"
rc=$?

if [ -w $kmemleak ]; then
	echo "rvio-vm: command done, kmemleak scan" >/dev/kmsg
	sleep 6 # kmemleak does not report objects younger than 5 s
	# An object is reported only when it is unreferenced and unchanged
	# since the previous scan, so a leak of the command needs two scans.
	if ! { echo scan >$kmemleak && echo scan >$kmemleak; } 2>/dev/null; then
		# klog-check.sh fails the run on this line: no leak check happened.
		report "kmemleak: scan failed ($(dmesg | grep -m1 -o 'kmemleak: .*disabled.*' || echo 'write error'))"
	fi
	# (debugfs files have size 0: read it to know.)
	leaks=$(head -n 80 $kmemleak)
	if [ -n "$leaks" ]; then
		report "kmemleak: unreferenced object(s) after the command:"
		while IFS= read -r line; do
			report "kmemleak: $line"
		done <<<"$leaks"
	fi
else
	report "kmemleak: $kmemleak missing or not writable (debugfs not mounted? kmemleak off?): no leak check"
fi

# Last, so that what the command left running (work items, RCU callbacks)
# had the kmemleak scan's time to trip a detector too.
if [ -r /proc/lockdep_stats ] && [ "$(debug_locks)" != 1 ]; then
	report "lockdep: turned itself off during the command (debug_locks $(debug_locks)): later lock bugs went unseen"
fi
taint_after=$(</proc/sys/kernel/tainted)
new_taint=$(((taint_after & ~taint_before) & taint_bad_mask))
if [ "$new_taint" != 0 ]; then
	report "taint: the command tainted the kernel with $new_taint (/proc/sys/kernel/tainted $taint_before -> $taint_after: bits 5 bad page, 7 die, 9 warn, 14 soft lockup)"
fi
exit $rc
