#!/usr/bin/env bash
# Load test of `assay serve`: seeds a review project, starts the server on loopback, and lets 200 annotators claim
# and answer at once for 60 s, against SQLite and against PostgreSQL (when ASSAY_TEST_POSTGRES names a server).
# Prints one Markdown table row per engine (answers/s, answer latency p50/p99/max, next-item latency, errors, and
# the check that the store holds exactly the acknowledged answers).
# Usage: bash bench/review-load.sh [ANNOTATORS] [SECONDS] [ITEMS]
# THINK_MS=1000 makes every annotator read an item for a uniform 0-2 s before answering (default 0: as fast as
# the server lets them, which measures saturation).
set -euo pipefail
cd "$(dirname "$0")/.."
annotators="${1:-200}"
seconds="${2:-60}"
items="${3:-200000}"
cargo build -q -p assay -p assay-bench
bin="${CARGO_TARGET_DIR:-target}/debug"
work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
python3 - "$items" "$work/rows.jsonl" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(11)
with open(path, "w") as f:
    for i in range(n):
        p = round(0.5 + 0.3 * rng.random(), 6)
        f.write(json.dumps({"text": f"item {i}", "assay": {"label": "ham", "confidence": p, "distribution": {"ham": p, "spam": 1 - p}}}) + "\n")
PY
cat > "$work/task.toml" <<'TOML'
name = "review-load"
type = "classify"
input = "{{ text }}"
guidelines = "Is it spam?"
labels = ["ham", "spam"]
[review]
confidence-below = 0.9
overlap = 2
TOML

run() { # label store-url
  local label="$1" store="$2"
  admin=$("$bin/assay" --store "$store" annotator add "admin-$RANDOM" --admin 2>/dev/null)
  "$bin/assay" --store "$store" --quiet project create "$work/task.toml" --no-import >/dev/null
  "$bin/assay" --store "$store" --quiet project import review-load "$work/rows.jsonl" 2>/dev/null
  "$bin/assay" --store "$store" serve --bind 127.0.0.1:0 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 100); do grep -q "http://" "$work/serve.log" && break; sleep 0.1; done
  url=$(grep -o "http://127.0.0.1:[0-9]*" "$work/serve.log" | head -1)
  "$bin/review-load" --url "$url" --admin-token "$admin" --project 1 --store "$store" \
    --annotators "$annotators" --seconds "$seconds" --think-ms "${THINK_MS:-0}" --label "$label"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

echo "# review load, $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $items items, overlap 2"
echo
echo "| store | annotators | think ms | time | answers | answers/s | answer p50 ms | answer p99 ms | answer max ms | next p50 ms | next p99 ms | errors | check |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
run SQLite "$work/store.db"
if [ -n "${ASSAY_TEST_POSTGRES:-}" ]; then
  db="assay_load_$(date +%s)"
  psql "$ASSAY_TEST_POSTGRES" -qc "CREATE DATABASE $db" >/dev/null
  run PostgreSQL "${ASSAY_TEST_POSTGRES%/*}/$db"
  psql "$ASSAY_TEST_POSTGRES" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null || true
fi
