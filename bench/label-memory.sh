#!/usr/bin/env bash
# Peak resident memory of the label pipeline (ingest, score, calibrate, write; a scripted scorer instead of a
# model, SQLite store) for 1,000 and 100,000 rows of a synthetic input, each in its own process, and their ratio.
# Usage: bash bench/label-memory.sh [SMALL] [LARGE]
set -euo pipefail
cd "$(dirname "$0")/.."
small="${1:-1000}"
large="${2:-100000}"
# The dev profile (dependencies at opt-level 3) shares the test build; memory does not depend on it.
cargo build -q -p assay-bench --bin label-memory
bin="${CARGO_TARGET_DIR:-target}/debug/label-memory"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results=()
for gold in no-gold gold; do
  for rows in "$small" "$large"; do
    results+=("$("$bin" "$rows" "$work" "$gold")")
    echo "${results[-1]}"
  done
done
python3 - "${results[@]}" <<'PY'
import json, sys
r = [json.loads(x) for x in sys.argv[1:]]
print("| input | rows | peak RSS | seconds |\n|---|---|---|---|")
for x in r:
    kind = "every row gold" if x["gold"] else "no gold column"
    print(f"| {kind} | {x['rows']:,} | {x['peak_rss_kib'] / 1024:.1f} MiB | {x['seconds']:.1f} |")
for a, b in ((r[0], r[1]), (r[2], r[3])):
    kind = "every row gold" if a["gold"] else "no gold column"
    print(f"{kind}: peak RSS {b['rows']:,} vs {a['rows']:,} rows: {b['peak_rss_kib'] / a['peak_rss_kib']:.2f}x")
PY
