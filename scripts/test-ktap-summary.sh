#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host tests of scripts/ktap-summary.awk, the counter behind `make check`'s
# "N passed, N failed, N skipped": each case is KTAP as the VM prints it
# (\r\n line ends included) and the counts it must give. Prints one
# `ok N - ...` / `not ok N - ...` line per case and `# passed P failed F`;
# exits 1 if any case fails.
set -uo pipefail
awk_script=$(dirname "$0")/ktap-summary.awk
n=0 failed=0

# case DESC "P F S" EXPECTED_PROGRAMS: KTAP on stdin.
case_() {
	local desc=$1 want=$2 expected=$3 got
	got=$(sed 's/$/\r/' | awk -v expected="$expected" -f "$awk_script" | head -n 1)
	n=$((n + 1))
	if [ "$got" = "$want" ]; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc: got '$got', want '$want'"
		failed=$((failed + 1))
	fi
}

case_ "two programs pass, every subtest counted" "5 0 0" 0 <<'EOF'
TAP version 13
1..2
# timeout set to 300
# selftests: vmpi: a.sh
# TAP version 13
# 1..3
# ok 1 one
# ok 2 two
# # a message: ok 7 not a result
# ok 3 three
ok 1 selftests: vmpi: a.sh
# selftests: vmpi: b.sh
# TAP version 13
# 1..2
# ok 1 one
# ok 2 two
ok 2 selftests: vmpi: b.sh
EOF

case_ "the VM dies in the second of three programs: it and the third fail" "2 2 0" 0 <<'EOF'
TAP version 13
1..3
# selftests: vmpi: a.sh
# 1..1
# ok 1 one
ok 1 selftests: vmpi: a.sh
# selftests: vmpi: b.sh
# 1..4
# ok 1 one
EOF

case_ "a collection that never started: the expected program count fails it" "1 2 0" 3 <<'EOF'
TAP version 13
1..1
# selftests: env: a.sh
# 1..1
# ok 1 one
ok 1 selftests: env: a.sh
EOF

case_ "no plan, no results, exit 0: a failure, not a pass" "0 1 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: vmpi: quiet.sh
ok 1 selftests: vmpi: quiet.sh
EOF

case_ "plan 3, two results, exit 0: the missing one fails" "2 1 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: vmpi: short.sh
# 1..3
# ok 1 one
# ok 2 two
ok 1 selftests: vmpi: short.sh
EOF

case_ "plan 1, two results: one failure" "2 1 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: vmpi: long.sh
# 1..1
# ok 1 one
# ok 2 two
ok 1 selftests: vmpi: long.sh
EOF

case_ "results without a plan: one failure" "1 1 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: vmpi: noplan.sh
# ok 1 one
ok 1 selftests: vmpi: noplan.sh
EOF

case_ "passes, then the skip status: the rest of the plan is skipped" "2 0 3" 0 <<'EOF'
TAP version 13
1..1
# selftests: env: igb.sh
# 1..5
# ok 1 one
# ok 2 two
ok 1 selftests: env: igb.sh # SKIP
EOF

case_ "skip-all plan and a skipped program: one skip each" "0 0 2" 0 <<'EOF'
TAP version 13
1..2
# selftests: env: a.sh
# 1..0 # SKIP no igb
ok 1 selftests: env: a.sh # SKIP
# selftests: env: b.sh
ok 2 selftests: env: b.sh # SKIP
EOF

case_ "a failing subtest fails once; a failed exit without one fails once more" "2 2 1" 0 <<'EOF'
TAP version 13
1..2
# selftests: vmpi: a.sh
# 1..3
# ok 1 one
# not ok 2 two
# ok 3 three # SKIP not here
not ok 1 selftests: vmpi: a.sh # exit=1
# selftests: vmpi: b.sh
# 1..1
# ok 1 one
not ok 2 selftests: vmpi: b.sh # exit=1
EOF

case_ "a timeout after some results: the missing ones fail" "1 2 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: vmpi: slow.sh
# 1..3
# ok 1 one
#
not ok 1 selftests: vmpi: slow.sh # TIMEOUT 300 seconds
EOF

case_ "bail out before the plan: one failure" "0 1 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: vmpi: bail.sh
# TAP version 13
# Bail out!  modules do not load
# # Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:0
not ok 1 selftests: vmpi: bail.sh # exit=1
EOF

case_ "several collections: their plans add up" "2 1 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: env: a.sh
# 1..1
# ok 1 one
ok 1 selftests: env: a.sh
TAP version 13
1..2
# selftests: vmpi: a.sh
# 1..1
# ok 1 one
ok 1 selftests: vmpi: a.sh
EOF

case_ "a skip-all plan, then a failed exit: a failure, not a skip" "0 1 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: vmpi: a.sh
# 1..0 # SKIP nothing to do
not ok 1 selftests: vmpi: a.sh # exit=1
EOF

case_ "a second plan: one failure" "1 1 0" 0 <<'EOF'
TAP version 13
1..1
# selftests: vmpi: a.sh
# 1..3
# 1..1
# ok 1 one
ok 1 selftests: vmpi: a.sh
EOF

echo "# passed $((n - failed)) failed $failed"
[ $failed = 0 ]
