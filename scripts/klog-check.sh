#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fail (exit 1) and print the offending lines if a kernel console log shows a
# report from the kernel's bug detectors: WARN/BUG/Oops, KASAN, KFENCE,
# lockdep, UBSAN, kmemleak, hung tasks, RCU stalls, soft/hard lockups,
# panics; and what scripts/vm-guest.sh reports after a command (`rvio-vm:
# kmemleak:`, `rvio-vm: lockdep:` off, `rvio-vm: taint:`).
#
# usage: scripts/klog-check.sh CONSOLE_LOG
set -euo pipefail
log=${1:?usage: klog-check.sh CONSOLE_LOG}
[ -r "$log" ] || { echo "klog-check: cannot read $log" >&2; exit 1; }

pattern='-+\[ cut here \]-+|WARNING:|BUG:|kernel BUG at|Oops|general protection fault|'
pattern+='KASAN:|KFENCE:|UBSAN:|rvio-vm: (kmemleak|lockdep|taint):|kmemleak: [0-9]+ new suspected|kmemleak: .*[Dd]isabl|INFO: task .* blocked for more than|'
pattern+='INFO: trying to register non-static key|turning off the locking correctness validator|'
pattern+='rcu: INFO: .* stall|watchdog: .* lockup|Kernel panic|RTNL: assertion failed|'
pattern+='list_(add|del) corruption|refcount_t: |unregister_netdevice: waiting for'

hits=$(grep -naE -- "$pattern" "$log" || true)
if [ -n "$hits" ]; then
	echo "klog-check: $(printf '%s\n' "$hits" | wc -l) report line(s) in $log:" >&2
	printf '%s\n' "$hits" | head -n 40 | sed 's/^/  /' >&2
	exit 1
fi
# A console log without the kernel banner means the check saw nothing.
grep -qa 'Linux version' "$log" || { echo "klog-check: no kernel banner in $log (did the VM boot?)" >&2; exit 1; }
exit 0
