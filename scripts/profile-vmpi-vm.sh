#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM (scripts/profile-vmpi.sh boots it): where the time of
# VMPI's small-SDU path goes. Runs vmpi-perf with SDUs of $1 bytes (default
# 250) in direction $2 (up: guest to host, the default; down; rr: round
# trips, the host echoing) and samples
# every CPU with perf (cpu-clock) meanwhile; prints perf's flat profile
# (by symbol, then by module). With $3 = children, it records call graphs
# and prints inclusive time by symbol instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../selftests/lib.sh
source "$root/selftests/lib.sh"
size=${1:-250} dir=${2:-up} mode=${3:-flat}
perf=$root/target/release/vmpi-perf
vmpi_load && vmpi_up
"$perf" server --dev "/dev/$h" --name perf &
sleep 1
down=()
[ "$dir" = down ] && down=(--down)
[ "$dir" = rr ] && down=(--rr)
echo 0 >/proc/sys/kernel/kptr_restrict
cd /tmp
graph=()
[ "$mode" = children ] && graph=(-g)
perf record -q -a "${graph[@]}" -e cpu-clock -F 2000 -o /tmp/perf.data -- \
	"$perf" client --dev "/dev/$g" --name perf --size "$size" --count 4000 --repeat 2 "${down[@]}"
if [ "$mode" = children ]; then
	perf report -i /tmp/perf.data --stdio --children --sort sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -90 || true
fi
perf report -i /tmp/perf.data --stdio --no-children --sort sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -45 || true
echo "== by module"
perf report -i /tmp/perf.data --stdio --no-children --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15 || true
kill %1 2>/dev/null || true
vdpa dev del vmpi0
