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

# --- host: the userspace programs the kselftests run ------------------------
rvio_log "check: cargo build --release -p vmpi-vmm (selftests/vmpi/vhost_vmm.sh runs it)"
if PATH=$HOME/.cargo/bin:$PATH cargo build --release --locked -p vmpi-vmm >"$out/cargo-build.log" 2>&1; then
	echo "ok cargo build vmpi-vmm (host)"
	pass=$((pass + 1))
else
	echo "not ok cargo build vmpi-vmm (host): see $out/cargo-build.log"
	fail=$((fail + 1))
fi

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
# The programs to run, as C/P, collection by collection.
runs=()
for c in "${order[@]}"; do
	if [ -n "${progs[$c]}" ] && [ ! -v "whole[$c]" ]; then
		list=${progs[$c]}
	else
		list=$(make -s --no-print-directory -C "selftests/$c" list_tests) ||
			rvio_die "check: cannot list the programs of selftests/$c"
	fi
	for p in $list; do runs+=("$c/$p"); done
done
expected=${#runs[@]}

# The programs are spread over RVIO_CHECK_VMS VMs (default 2) that run at
# once: one TCG VM of two vCPUs keeps 1.3 of the 2 cores busy on
# average. Longest first, each to the VM with the least work so far, by
# the times in selftests/durations (120 s for a program not listed
# there). Several VMs get one vCPU each (RVIO_VM_CPUS): two VMs of two
# vCPUs on two cores ran each program 2.3 to 3 times slower than one VM
# (a vCPU spins on a guest lock whose holder's vCPU is not running),
# two of one vCPU each 1.0 to 2.1 times slower. RVIO_CHECK_VMS=1: one VM of
# two vCPUs (docs/build.md, "Test time").
nvm=${RVIO_CHECK_VMS:-2}
[[ $nvm =~ ^[1-9]$ ]] || rvio_die "check: RVIO_CHECK_VMS must be 1 to 9"
[ "$nvm" -le "$expected" ] || nvm=$expected
[ "$nvm" -ge 1 ] || nvm=1
[ "$nvm" = 1 ] || export RVIO_VM_CPUS=${RVIO_VM_CPUS:-1}
declare -A secs=()
while read -r t name; do
	[[ $t =~ ^[0-9]+$ ]] && secs[$name]=$t
done < <(grep -v '^#' selftests/durations 2>/dev/null)
load=() vm_of=()
for ((k = 0; k < nvm; k++)); do load[k]=0; done
while read -r _ i; do
	best=0
	for ((k = 1; k < nvm; k++)); do [ "${load[k]}" -lt "${load[best]}" ] && best=$k; done
	vm_of[i]=$best
	load[best]=$((load[best] + ${secs[${runs[i]}]:-120}))
done < <(for i in "${!runs[@]}"; do echo "${secs[${runs[i]}]:-120} $i"; done | sort -k1,1rn -k2,2n)

# The command of VM K: its programs, collection by collection, in their
# order. Every collection runs even if an earlier one failed; the
# command's status is that of the first collection that failed
# (selftests/lib.mk).
vm_cmd() {
	local k=$1 c i list cmd="rc=0; "
	for c in "${order[@]}"; do
		list=""
		for i in "${!runs[@]}"; do
			[ "${vm_of[i]}" = "$k" ] && [ "${runs[i]%%/*}" = "$c" ] && list+="${runs[i]#*/} "
		done
		[ -n "$list" ] || continue
		cmd+="make -s --no-print-directory -C selftests/$c run_tests TEST_PROGS='${list% }'"
		cmd+=' || { st=$?; [ $rc != 0 ] || rc=$st; }; '
	done
	echo "${cmd}exit \$rc"
}

# time_programs K FILE: copy KTAP from stdin to stdout, write to FILE how
# long each program took (from its "# selftests: C: P" line to its
# result) and, to FILE.sub, each of its results (from the one before),
# and log each program's result as it comes.
time_programs() {
	local line name="" t0=0 t1=0
	: >"$2"
	: >"$2.sub"
	while IFS= read -r line || [ -n "$line" ]; do
		printf '%s\n' "$line"
		line=${line%$'\r'}
		case $line in
		"# selftests: "*)
			name=${line#"# selftests: "} t0=$EPOCHSECONDS t1=$EPOCHSECONDS
			name=${name/: //} ;;
		"# ok "* | "# not ok "*)
			printf '%d %s: %s\n' $((EPOCHSECONDS - t1)) "$name" "${line#"# "}" >>"$2.sub"
			t1=$EPOCHSECONDS ;;
		"ok "*" selftests: "* | "not ok "*" selftests: "*)
			[ -z "$name" ] || printf '%d %s\n' $((EPOCHSECONDS - t0)) "$name" >>"$2"
			rvio_log "check: vm $1: ${line% # *} ($((EPOCHSECONDS - t0)) s)"
			name="" ;;
		esac
	done
}

rvio_log "check: kselftests in $nvm VMs of ${RVIO_VM_CPUS:-2} vCPUs: ${order[*]} ($expected programs)"
# Logs left by an earlier run must not be checked for this one.
rm -f "$out"/check*.console "$out"/check*.ktap "$out"/check*.times* "$out"/check*.rc
vm_t0=$EPOCHSECONDS
for ((k = 1; k <= nvm; k++)); do
	cmd=$(vm_cmd $((k - 1)))
	(
		# TCG speed differs by host (docs/build.md, "Test time").
		scripts/vm-run.sh --igb --name check-$k --timeout 3600 -- bash -c "$cmd" |
			time_programs $k "$out/check-$k.times" >"$out/check-$k.ktap"
		echo "${PIPESTATUS[0]}" >"$out/check-$k.rc"
	) &
done
wait
vm_secs=$((EPOCHSECONDS - vm_t0))
# Their output, one VM after the other.
for ((k = 1; k <= nvm; k++)); do cat "$out/check-$k.ktap"; done | tee "$out/check.ktap"

# Each program is counted against its own plan, and every program asked
# for must report (scripts/ktap-summary.awk says how).
summary=$(awk -v expected="$expected" -f scripts/ktap-summary.awk "$out/check.ktap")
read -r p f s <<<"$summary"
tail -n +2 <<<"$summary" | sed 's/^/not ok counted as failed: /'
pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
if [ $((p + f + s)) = 0 ]; then
	echo "not ok kselftests produced no results"
	fail=$((fail + 1))
fi
for ((k = 1; k <= nvm; k++)); do
	vm_rc=$(cat "$out/check-$k.rc" 2>/dev/null || echo 125)
	if [ "$vm_rc" = 125 ]; then
		# Timed out or the VM died (vm-run.sh): the program it was in has
		# no result line.
		echo "not ok VM $k stopped before its tests finished (vm-run exit $vm_rc)"
		fail=$((fail + 1))
	elif [ "$vm_rc" != 0 ] && [ "$vm_rc" != 3 ] &&
		! grep -q '^not ok [0-9]* selftests: ' "$out/check-$k.ktap"; then
		echo "not ok VM $k's test run exited $vm_rc without a failing test"
		fail=$((fail + 1))
	fi
	if scripts/klog-check.sh "$out/check-$k.console"; then
		echo "ok kernel log of VM $k clean (no WARN/BUG/KASAN/KFENCE/lockdep/kmemleak report)"
		pass=$((pass + 1))
	else
		echo "not ok kernel log of VM $k clean: see $out/check-$k.console"
		fail=$((fail + 1))
	fi
done

# The time of each program, longest first: the test phase must stay under
# 30 minutes on the slowest host (docs/build.md, "Test time"). Measured
# with the VMs sharing the host's cores: selftests/durations takes these.
rvio_log "check: the $nvm VMs ran ${vm_secs} s; the programs, longest first:"
sort -rn "$out"/check-*.times | sed 's/^/# time /'

echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
