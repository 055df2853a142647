#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the VM around the command of scripts/vm-run.sh: runs the
# command, then has kmemleak scan and writes any leak it reports to the
# kernel log, where klog-check.sh sees it.
#
# No scan before the command: on this kernel, boot leaves nothing for
# kmemleak to report (checked with the two scans below and no command), and
# a scan costs 15-20 s under TCG. Should boot ever leak, every run fails
# with the report in its console log: that is a kernel finding, not noise.
kmemleak=/sys/kernel/debug/kmemleak # debugfs: mounted by vm-init.sh

"$@"
rc=$?

if [ -w $kmemleak ]; then
	echo "rvio-vm: command done, kmemleak scan" >/dev/kmsg
	sleep 6 # kmemleak does not report objects younger than 5 s
	# An object is reported only when it is unreferenced and unchanged
	# since the previous scan, so a leak of the command needs two scans.
	if ! { echo scan >$kmemleak && echo scan >$kmemleak; } 2>/dev/null; then
		# klog-check.sh fails the run on this line: no leak check happened.
		echo "rvio-vm: kmemleak: scan failed ($(dmesg | grep -m1 -o 'kmemleak: .*disabled.*' || echo 'write error'))" >/dev/kmsg
	fi
	# (debugfs files have size 0: read it to know.)
	leaks=$(head -n 80 $kmemleak)
	if [ -n "$leaks" ]; then
		echo "rvio-vm: kmemleak: unreferenced object(s) after the command:" >/dev/kmsg
		while IFS= read -r line; do
			echo "rvio-vm: kmemleak: $line" >/dev/kmsg
		done <<<"$leaks"
	fi
fi
exit $rc
