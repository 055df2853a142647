#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the VM around the command of scripts/vm-run.sh: starts kmemleak
# from a clean slate, runs the command, then scans again and writes any leak
# it finds to the kernel log, where klog-check.sh sees it.
kmemleak=/sys/kernel/debug/kmemleak
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null

if [ -w $kmemleak ]; then
	# Whatever boot left behind is not the command's: scan and forget it.
	echo "rvio-vm: kmemleak baseline scan" >/dev/kmsg
	echo scan >$kmemleak
	echo clear >$kmemleak
	echo "rvio-vm: kmemleak baseline done" >/dev/kmsg
fi

"$@"
rc=$?

if [ -w $kmemleak ]; then
	echo "rvio-vm: command done, kmemleak scan" >/dev/kmsg
	sleep 6 # kmemleak does not report objects younger than 5 s
	echo scan >$kmemleak
	echo scan >$kmemleak # a second scan drops transient false positives
	if [ -s $kmemleak ]; then
		echo "rvio-vm: kmemleak: $(grep -c '^unreferenced object' $kmemleak) unreferenced object(s) after the command" >/dev/kmsg
		head -n 80 $kmemleak | while IFS= read -r line; do
			echo "rvio-vm: kmemleak: $line" >/dev/kmsg
		done
	fi
fi
exit $rc
