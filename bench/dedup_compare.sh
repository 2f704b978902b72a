#!/usr/bin/env bash
# Near-duplicate detection, side by side on one generated corpus: assay audit dups, datasketch (MinHashLSH),
# gaoya (Rust, bench/gaoya_anchor) and text-dedup (if it installs; it gets its own virtual environment so that its
# pinned dependencies do not touch the system's). Same shingles (5 words after assay's normalization), 128
# permutations (assay: 128 one-permutation bins), threshold 0.8.
#
# The corpus: DOCS documents of 50-300 words made of wikitext-2 sentences shuffled across documents, DUPS of them
# near-duplicates of another document with 0.2-3% of its words replaced; every injected pair's Jaccard is computed
# exactly (bench/dedup_compare.py). Reported per tool: docs/s end to end (the whole process: reading the JSONL to
# writing the pairs), peak RSS, precision of the pairs it reports (exact Jaccard >= 0.8), recall over all injected
# pairs and over the injected pairs with true Jaccard >= 0.8.
#
# Usage: bash bench/dedup_compare.sh [DOCS] [DUPS]    (defaults 100000 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-100000}"
dups="${2:-5000}"
threshold=0.8
work="${DEDUP_WORK:-$(mktemp -d)}"
mkdir -p "$work"
echo "work folder: $work" >&2

python3 -c "import datasketch" 2>/dev/null || PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q "datasketch==2.0.0"
venv=/var/tmp/assay-bench-textdedup
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import text_dedup" 2>/dev/null; then
  (python3 -m venv "$venv" && "$venv/bin/pip" install -q "text-dedup==0.4.0") || echo "text-dedup did not install; left out" >&2
fi

cargo build -q -p assay
assay="${CARGO_TARGET_DIR:-target}/debug/assay"
gaoya_target="${CARGO_TARGET_DIR:-$PWD/target}/bench-gaoya"
CARGO_TARGET_DIR="$gaoya_target" cargo build -q --release --manifest-path bench/gaoya_anchor/Cargo.toml
gaoya="$gaoya_target/release/gaoya-anchor"

python3 bench/dedup_compare.py corpus ../shared/datasets/corpus/wikitext2 "$work" "$docs" "$dups"
corpus="$work/corpus.jsonl"

# Runs a command under GNU time; prints "seconds peak_kib cpu_seconds" (CPU: user + system, all threads).
measure() {
  local log="$1"; shift
  /usr/bin/time -f "%e %M %U %S" -o "$log.time" "$@" > "$log.out" 2> "$log.err"
  read -r wall kib user system < "$log.time"
  echo "$wall $kib $(python3 -c "print(round($user + $system, 2))")"
}

results=()
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

read -r s kib cpu < <(measure "$work/assay" "$assay" --quiet audit dups "$corpus" --output "$work/assay.pairs.jsonl")
results+=("assay $("$assay" --version | cut -d' ' -f2) (OPH, ${threshold}, $(grep -o '[0-9]* bands × [0-9]* rows' "$work/assay.out"))|$s|$kib|$work/assay.pairs.jsonl|$cpu")

read -r s kib cpu < <(measure "$work/gaoya" "$gaoya" "$corpus" "$threshold")
mv "$work/gaoya.out" "$work/gaoya.pairs"
gaoya_version="$(grep -A1 '^name = "gaoya"' bench/gaoya_anchor/Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')"
results+=("gaoya $gaoya_version ($(cat "$work/gaoya.err"), 2 threads)|$s|$kib|$work/gaoya.pairs|$cpu")

read -r s kib cpu < <(measure "$work/datasketch" python3 bench/dedup_compare.py datasketch "$corpus" "$threshold" "$work/datasketch.pairs")
ds_info="$(cat "$work/datasketch.out")"
results+=("datasketch $(echo "$ds_info" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["version"], "(MinHashLSH, 1 process; signatures alone", round(d["signature_docs_per_s"]), "docs/s)")')|$s|$kib|$work/datasketch.pairs|$cpu")

if "$venv/bin/python" -c "import text_dedup" 2>/dev/null; then
  "$venv/bin/python" - "$corpus" "$work/textdedup-in" <<'PY'
import sys, datasets
datasets.load_dataset("json", data_files=sys.argv[1], split="train").save_to_disk(sys.argv[2])
PY
  read -r s kib cpu < <(measure "$work/textdedup" "$venv/bin/python" -m text_dedup.minhash --path "$work/textdedup-in" --local \
    --output "$work/textdedup-out" --column text --ngram 5 --num_perm 128 --threshold "$threshold" --num_proc 2 --debug)
  "$venv/bin/python" bench/dedup_compare.py textdedup_pairs "$work/textdedup-out" "$work/textdedup.pairs"
  td_version="$("$venv/bin/pip" show text-dedup | sed -n 's/^Version: //p')"
  results+=("text-dedup $td_version (minhash, num_proc 2, its own b and r)|$s|$kib|$work/textdedup.pairs|$cpu")
fi
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "$docs documents ($dups injected near-duplicates), 5-word shingles, 128 permutations, threshold $threshold"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average before $load_before, after $load_after"
echo
echo "| tool | docs/s end to end | seconds | CPU seconds | peak RSS | pairs | precision | recall (all injected) | recall (injected, J ≥ $threshold) |"
echo "|---|---|---|---|---|---|---|---|---|"
assay_rate=""
for r in "${results[@]}"; do
  IFS='|' read -r name s kib pairs cpu <<< "$r"
  score="$(python3 bench/dedup_compare.py score "$corpus" "$work/truth.jsonl" "$threshold" "$name" "$pairs")"
  python3 - "$name" "$s" "$kib" "$docs" "$score" "$cpu" <<'PY'
import json, sys
name, s, kib, docs, score = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
cpu = float(sys.argv[6])
p = score["precision"]
print(f"| {name} | {docs / s:,.0f} | {s:.2f} | {cpu:.2f} | {kib / 1024:.0f} MiB | {score['pairs']:,} | "
      f"{'n/a' if p is None else f'{p:.4f}'} | {score['recall_all_injected']:.4f} | {score['recall_high']:.4f} |")
PY
done
echo
python3 - "${results[@]}" <<'PY'
import sys
rows = [r.split("|") for r in sys.argv[1:]]
assay = float(rows[0][1])
for name, s, kib, _, cpu in rows[1:]:
    print(f"{name.split(' (')[0]}: assay has {float(s) / assay:.1f}x its docs/s and uses {float(cpu) / float(rows[0][4]):.1f}x less CPU time; its peak RSS is {int(kib) / int(rows[0][2]):.2f}x assay's")
PY
