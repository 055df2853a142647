# SPDX-License-Identifier: GPL-2.0
#
# Counts the results in the KTAP that the kselftest runner printed for one
# or more collections (scripts/check.sh runs it over the VM's output), and
# prints "PASSED FAILED SKIPPED" followed by one line per problem found.
#
# usage: awk -v expected=N -f scripts/ktap-summary.awk KTAP
#   expected: how many programs were asked to run (0: trust the plans)
#
# Each program is counted against its own plan:
# - its leaf results are its subtests (`# ok N`, `# not ok N`, `# ok N ...
#   # SKIP`), or, if it printed none, its own line;
# - a plan `# 1..N` it did not meet: each missing result is a failure, or a
#   skip if the program ended with the skip status (it stopped early on
#   purpose); more results than planned is one failure;
# - results without a plan is one failure; no plan and no results with the
#   pass status is one failure (it checked nothing), with the skip status
#   one skip; `# 1..0 # SKIP` is one skip, unless the program failed or
#   printed results after it (one failure); a second plan is one failure;
# - a program that failed (exit status, timeout) without a failing subtest
#   or a missing result is one failure more;
# - programs that never reported (the VM stopped in or before them) count
#   one failure each: the larger of the collections' plans (`1..N`) and
#   `expected` says how many to wait for.
# Lines may end in \r (a serial console's newline); they are stripped.

function reset_program() {
	np = nf = ns = 0
	plan = -1
	skip_all = 0
	in_program = 0
}

function problem(msg) {
	problems[++nproblems] = msg
}

# The program's own line: $0 is "ok N selftests: C: P[ # directive]" or
# "not ok ...".
function end_program(top_fail, top_skip, name,    got, missing) {
	got = np + nf + ns
	P += np; F += nf; S += ns
	if (skip_all) {
		if (top_fail || got > 0) {
			F++
			problem(name ": " (top_fail ? "failed" : "printed results") " after a skip-all plan")
		} else {
			S++
		}
	} else if (plan >= 0) {
		missing = plan - got
		if (missing > 0) {
			if (top_skip) {
				S += missing
			} else {
				F += missing
				problem(name ": " missing " of its " plan " planned results missing")
			}
		} else if (missing < 0) {
			F++
			problem(name ": " got " results, more than its plan of " plan)
		}
		if (top_fail && nf == 0 && missing <= 0) {
			F++
			problem(name ": failed without a failing result")
		}
	} else if (got > 0) {
		F++
		problem(name ": results without a plan")
		if (top_fail && nf == 0) {
			F++
			problem(name ": failed without a failing result")
		}
	} else if (top_skip) {
		S++
	} else {
		F++
		problem(name ": " (top_fail ? "failed" : "passed") " without a plan or a result")
	}
	reported++
	reset_program()
}

BEGIN {
	P = F = S = 0
	reported = planned = nproblems = 0
	reset_program()
}

{ sub(/\r+$/, "") }

/^1\.\.[0-9]+$/ { planned += substr($0, 4); next }

/^# selftests: / {
	if (in_program)
		problem("output of " current " ended without its result line")
	reset_program()
	in_program = 1
	current = substr($0, 3)
	next
}

/^(not )?ok [0-9]+ selftests: / {
	name = $0
	sub(/^(not )?ok [0-9]+ /, "", name)
	sub(/ # .*$/, "", name)
	end_program($1 == "not", / # SKIP/, name)
	next
}

!in_program { next }

/^# 1\.\.0( |$)/ { skip_all = 1; plan = 0; next }
/^# 1\.\.[0-9]+$/ {
	if (plan >= 0) {
		F++
		problem(current ": a second plan")
	}
	plan = substr($0, 6) + 0
	next
}
/^# not ok [0-9]+( |$)/ { nf++; next }
/^# ok [0-9]+ .*# SKIP/ { ns++; next }
/^# ok [0-9]+( |$)/ { np++; next }

END {
	if (in_program) {
		# The VM stopped inside this program: what it reported counts,
		# and it is one of the programs missing below.
		P += np; F += nf; S += ns
		problem(current ": no result line (the VM stopped in it)")
	}
	want = planned > expected ? planned : expected
	if (want > reported) {
		F += want - reported
		problem((want - reported) " of " want " programs did not report a result")
	}
	print P + 0, F + 0, S + 0
	for (i = 1; i <= nproblems; i++)
		print problems[i]
}
