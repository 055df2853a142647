#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# All of rvio's tests: host-side `cargo test` of the pure-logic crates, a
# short fuzz of their parsers (scripts/fuzz.sh, RVIO_FUZZ_SECS per target),
# the style checks (rustfmt, clippy) and the KTAP counter's tests, then the
# kselftests in the test VM (KTAP), then the VM's kernel log check. Ends
# with one line `N passed, N failed, N skipped`; exits non-zero on any
# failure. `make check` builds what is needed first.
#
# usage: scripts/check.sh [COLLECTION | COLLECTION/PROGRAM ...]
#   e.g. scripts/check.sh env/netdevsim_sriov.sh     (default: every collection)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
case "${1:-}" in
-h | --help) sed -n '3,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
-*) rvio_die "check: unknown option $1 (try --help)" ;;
esac
cd "$RVIO_ROOT" || exit

out=${RVIO_LOG_DIR:-$RVIO_ROOT/build/logs}
mkdir -p "$out"
pass=0 fail=0 skip=0

# --- host: cargo test over the workspace of pure-logic crates ---------------
if [ -f Cargo.toml ]; then
	rvio_log "check: cargo test (host)"
	PATH=$HOME/.cargo/bin:$PATH cargo test --workspace --locked 2>&1 | tee "$out/cargo-test.log"
	cargo_rc=${PIPESTATUS[0]}
	read -r p f < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } } END { print p+0, f+0 }' "$out/cargo-test.log")
	pass=$((pass + p)) fail=$((fail + f))
	if [ "$cargo_rc" = 0 ]; then
		echo "ok cargo test (host): $p passed"
	else
		echo "not ok cargo test (host): exit $cargo_rc, $f failed"
		[ "$f" = 0 ] && fail=$((fail + 1))
	fi
fi

# --- host: a short fuzz of every parser of untrusted bytes -----------------
if [ -d fuzz/fuzz_targets ]; then
	rvio_log "check: fuzz (host, ${RVIO_FUZZ_SECS:-10} s per target)"
	scripts/fuzz.sh "${RVIO_FUZZ_SECS:-10}" | tee "$out/fuzz.log"
	fuzz_rc=${PIPESTATUS[0]}
	read -r p f < <(awk '/^ok / { p++ } /^not ok / { f++ } END { print p+0, f+0 }' "$out/fuzz.log")
	[ "$fuzz_rc" = 0 ] || [ "$f" != 0 ] || f=1
	pass=$((pass + p)) fail=$((fail + f))
fi

# --- host: rustfmt and clippy, as upstream enforces them --------------------
rvio_log "check: style (rustfmt, clippy)"
scripts/style.sh | tee "$out/style.log"
style_rc=${PIPESTATUS[0]}
read -r p f < <(awk '/^ok / { p++ } /^not ok / { f++ } END { print p+0, f+0 }' "$out/style.log")
[ "$style_rc" = 0 ] || [ "$f" != 0 ] || f=1
pass=$((pass + p)) fail=$((fail + f))
# A clippy failure leaves the modules unbuilt: build them for the VM.
if grep -q '^not ok clippy' "$out/style.log"; then
	scripts/kmake.sh M="$RVIO_ROOT" modules >/dev/null 2>&1
fi

# --- host: the KTAP counter this script relies on ---------------------------
rvio_log "check: KTAP counter (host)"
scripts/test-ktap-summary.sh | tee "$out/ktap-summary-test.log"
ktap_rc=${PIPESTATUS[0]}
read -r p f < <(awk '/^ok [0-9]+ - / { p++ } /^not ok [0-9]+ - / { f++ } END { print p+0, f+0 }' "$out/ktap-summary-test.log")
[ "$ktap_rc" = 0 ] || [ "$f" != 0 ] || f=1
pass=$((pass + p)) fail=$((fail + f))

# --- VM: kselftest collections ---------------------------------------------
# progs[C]: the programs of collection C to run, empty for all of them.
declare -A progs=() whole=()
order=()
if [ $# = 0 ]; then
	for mk in selftests/*/Makefile; do
		c=$(basename "$(dirname "$mk")")
		progs[$c]=""
		order+=("$c")
	done
else
	for t in "$@"; do
		t=${t#selftests/}
		t=${t%/}
		c=${t%%/*}
		[ -f "selftests/$c/Makefile" ] || rvio_die "no kselftest collection selftests/$c"
		if [ ! -v "progs[$c]" ]; then
			progs[$c]=""
			order+=("$c")
		fi
		if [ "$t" = "$c" ]; then
			whole[$c]=1
		else
			[ -f "selftests/$t" ] || rvio_die "no test program selftests/$t"
			progs[$c]+="${t#*/} "
		fi
	done
fi
# Every collection runs even if an earlier one failed; the command's status
# is that of the first collection that failed (selftests/lib.mk).
vm_cmd="rc=0; "
expected=0
for c in "${order[@]}"; do
	vm_cmd+="make -s --no-print-directory -C selftests/$c run_tests"
	if [ -n "${progs[$c]}" ] && [ ! -v "whole[$c]" ]; then
		vm_cmd+=" TEST_PROGS='${progs[$c]% }'"
		n=$(wc -w <<<"${progs[$c]}")
	else
		n=$(make -s --no-print-directory -C "selftests/$c" list_tests) ||
			rvio_die "check: cannot list the programs of selftests/$c"
		n=$(wc -w <<<"$n")
	fi
	expected=$((expected + n))
	vm_cmd+=' || { st=$?; [ $rc != 0 ] || rc=$st; }; '
done
vm_cmd+='exit $rc'

rvio_log "check: kselftests in the VM: ${order[*]} ($expected programs)"
# A console log left by an earlier run must not be checked for this one.
rm -f "$out/check.console" "$out/check.ktap"
# TCG speed differs by host: the whole run took 17 min on one host and
# about twice that on another (docs/build.md).
scripts/vm-run.sh --igb --name check --timeout 3600 -- bash -c "$vm_cmd" | tee "$out/check.ktap"
vm_rc=${PIPESTATUS[0]}

# Each program is counted against its own plan, and every program asked
# for must report (scripts/ktap-summary.awk says how).
summary=$(awk -v expected="$expected" -f scripts/ktap-summary.awk "$out/check.ktap")
read -r p f s <<<"$summary"
tail -n +2 <<<"$summary" | sed 's/^/not ok counted as failed: /'
pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
if [ $((p + f + s)) = 0 ]; then
	echo "not ok kselftests produced no results (vm-run exit $vm_rc)"
	fail=$((fail + 1))
elif [ "$vm_rc" = 125 ]; then
	# Timed out or the VM died (vm-run.sh): the program it was in has no
	# result line.
	echo "not ok the VM stopped before the tests finished (vm-run exit $vm_rc)"
	fail=$((fail + 1))
elif [ "$vm_rc" != 0 ] && [ "$vm_rc" != 3 ] && [ "$f" = 0 ]; then
	echo "not ok the test run exited $vm_rc without a failing test"
	fail=$((fail + 1))
fi

if scripts/klog-check.sh "$out/check.console"; then
	echo "ok kernel log clean (no WARN/BUG/KASAN/KFENCE/lockdep/kmemleak report)"
	pass=$((pass + 1))
else
	echo "not ok kernel log clean: see $out/check.console"
	fail=$((fail + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
