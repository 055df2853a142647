#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench-vmpi`: VMPI's goodput and SDU rate against UDP over veth and
# virtio-net over vdpa_sim_net, side by side in one test-VM run
# (scripts/bench-vmpi-vm.sh), each point repeated. Writes
# results/vmpi/{raw.txt,results.csv,results.md,goodput.png} and the table
# into results/README.md between the bench-vmpi markers. A benchmark, not
# a test: this machine is emulated (TCG) and noisy; compare the ratios.
#
# usage: scripts/bench-vmpi.sh [REPEAT]   (default 3; RVIO_KFLAVOUR=nokasan:
#        the kernel without KASAN, results in results/vmpi-nokasan/)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
repeat=${1:-3}
# The default (debug) kernel's results feed results/README.md; another
# flavour's (RVIO_KFLAVOUR=nokasan) go beside them.
out=results/vmpi
[ "$RVIO_KFLAVOUR" = debug ] || out+=-$RVIO_KFLAVOUR
rvio_want_matplotlib
rvio_bench_vm bench-vmpi "$out" 3600 'result|memory' scripts/bench-vmpi-vm.sh "$repeat"
sed -n 's/^vm: //p' "$out/vm-output.txt" >"$out/vm.txt"
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!results' || echo "+changes")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
note="commit $commit, $(date -u +%Y-%m-%d), $(sed -n 1p "$out/vm.txt"), debug: $(sed -n 's/^debug options: //p' "$out/vm.txt")under $(cat "$RVIO_CACHE"/accel-* 2>/dev/null | head -n 1 || echo '?') on $cpu, $repeat repeats"
python3 scripts/bench-report.py "$out" "$note"
# The latest table of the debug kernel goes into results/README.md.
[ "$RVIO_KFLAVOUR" = debug ] || { rvio_log "bench: results in $out/"; exit 0; }
python3 - "$out/results.md" <<'PY'
import re, sys
table = open(sys.argv[1]).read()
readme = open("results/README.md").read()
begin, end = "<!-- bench-vmpi:begin -->", "<!-- bench-vmpi:end -->"
if begin in readme:
    readme = re.sub(re.escape(begin) + ".*?" + re.escape(end), begin + "\n" + table + end, readme, flags=re.S)
    open("results/README.md", "w").write(readme)
PY
rvio_log "bench: results in $out/ (results/README.md table updated)"
