#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make hostile`: the ring-level hostile guest's long run (issue 13).
# selftests/vmpi/hostile_ring.sh in the test VM, run directly (its own
# time, not the kselftest runner's 600 s), with HOSTILE_ROUNDS random
# rounds (default 1000) from HOSTILE_SEED (default: a fresh random seed,
# printed; give it again to replay the same rounds; round K alone replays
# with `vmpi-vmm hostile DEV --rounds 1 --seed SEED+K`). HOSTILE_SKIP:
# cases to skip (A,B). The KTAP goes to build/logs/hostile-SEED.ktap; the
# VM run fails on any kernel splat (scripts/vm-run.sh).
#
# usage: [HOSTILE_ROUNDS=N] [HOSTILE_SEED=S] [HOSTILE_SKIP=A,B] [HOSTILE_RESET_LOOP=N] scripts/hostile.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
rounds=${HOSTILE_ROUNDS:-1000}
seed=${HOSTILE_SEED:-$(((RANDOM << 15) | RANDOM))}
rvio_log "hostile: $rounds rounds from seed $seed (HOSTILE_SEED=$seed replays them)"
PATH=$HOME/.cargo/bin:$PATH cargo build --release --locked -p vmpi-vmm
mkdir -p build/logs
out=build/logs/hostile-$seed.ktap
# About 3 s a round on the slowest (TCG) host, and the cases.
set +e
scripts/vm-run.sh --timeout $((900 + rounds * 6)) --name "hostile-$seed" -- \
	env RVIO_HOSTILE_ROUNDS="$rounds" RVIO_HOSTILE_SEED="$seed" RVIO_HOSTILE_SKIP="${HOSTILE_SKIP:-}" \
	RVIO_HOSTILE_RESET_LOOP="${HOSTILE_RESET_LOOP:-20}" \
	selftests/vmpi/hostile_ring.sh | tee "$out"
rc=${PIPESTATUS[0]}
set -e
pass=$(grep -c '^ok ' "$out" || true)
fail=$(grep -c '^not ok ' "$out" || true)
rvio_log "hostile: seed $seed, $rounds rounds: $pass ok, $fail not ok, VM exit $rc ($out)"
[ "$rc" = 0 ] && [ "$fail" = 0 ]
