#!/usr/bin/env bash
# Import 1,000,000 labeled rows (as `assay label` writes them: input columns + an `assay` column with the model's
# label and confidence) into a review project, then route them; prints the wall time.
# Usage: bash bench/import-1m.sh [ROWS] [STORE_URL]   (default: 1000000 rows, a fresh SQLite file)
# With ASSAY_TEST_POSTGRES set and STORE_URL=postgres, a fresh PostgreSQL database is used.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
store="${2:-}"
cargo build -q -p assay
assay="${CARGO_TARGET_DIR:-target}/debug/assay"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$rows" "$work/rows.jsonl" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
labels = ["ham", "spam"]
with open(path, "w") as f:
    for i in range(n):
        p = 0.5 + 0.5 * rng.random()
        label = labels[i % 2]
        other = labels[1 - i % 2]
        row = {"id": i, "text": f"message number {i}: " + " ".join(rng.choice(["free", "call", "now", "hi", "see", "you", "later", "prize", "win", "ok"]) for _ in range(12)),
               "assay": {"label": label, "confidence": round(p, 6), "distribution": {label: round(p, 6), other: round(1 - p, 6)},
                         "provenance": {"annotator_kind": "model", "annotator": "smollm2-135m-instruct", "model_sha256": "0f3c9a1b2d4e5f60718293a4b5c6d7e8f9", "prompt_hash": "ab", "task": "bench", "run_id": "r", "calibration": "contextual", "labeled_at": "2025-01-01T00:00:00Z"}}}
        if i % 100 == 0:
            row["gold"] = label
        f.write(json.dumps(row) + "\n")
PY
cat > "$work/task.toml" <<'TOML'
name = "import-bench"
type = "classify"
input = "{{ text }}"
gold = "gold"
labels = ["ham", "spam"]
[review]
confidence-below = 0.6
audit-rate = 0.01
gold-rate = 0.05
overlap = 2
TOML
if [ -z "$store" ]; then store="$work/store.db"; fi
if [ "$store" = "postgres" ]; then
  : "${ASSAY_TEST_POSTGRES:?set ASSAY_TEST_POSTGRES to an admin URL}"
  db="assay_import_$(date +%s)"
  psql "$ASSAY_TEST_POSTGRES" -qc "CREATE DATABASE $db" >/dev/null
  store="${ASSAY_TEST_POSTGRES%/*}/$db"
fi
size=$(du -h "$work/rows.jsonl" | cut -f1)
"$assay" --store "$store" project create "$work/task.toml" >/dev/null
start=$(date +%s.%N)
ASSAY_LOG=${ASSAY_LOG:-warn,assay_server=info} "$assay" --store "$store" project import import-bench "$work/rows.jsonl"
end=$(date +%s.%N)
echo "import of $rows rows ($size JSONL) into $( [[ $store == postgres* ]] && echo PostgreSQL || echo SQLite ): $(python3 -c "print(f'{$end - $start:.1f}')") s"
