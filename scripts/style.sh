#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The style checks upstream Rust-for-Linux enforces, on every Rust file of
# the repository (kernel modules, their pure-logic files, host crates):
#   rustfmt  the kernel's settings (.rustfmt.toml, copied from the 6.12
#            tree: edition 2021, default widths)
#   clippy   the modules built with CLIPPY=1 (warnings are errors, as the
#            kernel's CONFIG_WERROR makes them)
# Prints one `ok`/`not ok` line per check; exits 1 if one failed.
#
# usage: scripts/style.sh [--fix]   (--fix: rewrite the files with rustfmt,
#                                    then check)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT" || exit
out=${RVIO_LOG_DIR:-$RVIO_ROOT/build/logs}
mkdir -p "$out"

# Generated files and build outputs are not ours to format.
mapfile -t files < <(find . -name '*.rs' -not -path './target/*' -not -path './fuzz/target/*' \
	-not -path './build/*' -not -name bindings_generated.rs -not -name '*.rs.d' | sort)
rustfmt=(/usr/bin/rustfmt --edition 2021 --config-path .rustfmt.toml)
if [ "${1:-}" = --fix ]; then
	"${rustfmt[@]}" "${files[@]}"
fi

rc=0
if "${rustfmt[@]}" --check "${files[@]}" >"$out/rustfmt.log" 2>&1; then
	echo "ok rustfmt: ${#files[@]} files formatted as the kernel's .rustfmt.toml says"
else
	echo "not ok rustfmt: $(grep -c '^Diff in' "$out/rustfmt.log") places differ (see $out/rustfmt.log; fix: scripts/style.sh --fix)"
	rc=1
fi

if scripts/kmake.sh M="$RVIO_ROOT" CLIPPY=1 modules >"$out/clippy.log" 2>&1; then
	echo "ok clippy: the modules build with CLIPPY=1, no warning"
else
	grep -E '^(warning|error)' "$out/clippy.log" | sort | uniq -c | head -n 20 | sed 's/^/# /'
	echo "not ok clippy: see $out/clippy.log"
	rc=1
fi
exit $rc
