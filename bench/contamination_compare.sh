#!/usr/bin/env bash
# Benchmark contamination, side by side: assay audit overlap against a plain Python set-of-13-grams check (the
# usual script), on DOCS wikitext-2 documents and a reference set of ITEMS items made of disjoint sentences, with
# PLANTED verbatim passages (13-40 words) of reference items in input rows (bench/contamination_compare.py).
# Reported: microseconds per document for the check (index built beforehand), end to end seconds (assay: a
# first run that builds and caches the index, a second that reads the cache), peak RSS, recall on the planted rows.
#
# Usage: bash bench/contamination_compare.sh [DOCS] [ITEMS] [PLANTED]   (defaults 100000 10000 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-100000}"
items="${2:-10000}"
planted="${3:-1000}"
work="${OVERLAP_WORK:-$(mktemp -d)}"
mkdir -p "$work"
echo "work folder: $work" >&2

cargo build -q -p assay
assay="${CARGO_TARGET_DIR:-target}/debug/assay"
python3 bench/contamination_compare.py corpus ../shared/datasets/corpus/wikitext2 "$work" "$docs" "$items" "$planted"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
home="$work/home"
rm -rf "$home"
run_assay() {
  ASSAY_HOME="$home" /usr/bin/time -f "%e %M" -o "$work/assay-$1.time" "$assay" --quiet audit overlap "$work/corpus.jsonl" \
    --reference "$work/reference.jsonl" --reference-id-column id --output "$work/assay.hits.jsonl" > "$work/assay-$1.out"
}
run_assay first
run_assay cached
/usr/bin/time -f "%e %M" -o "$work/plain.time" python3 bench/contamination_compare.py plain "$work/corpus.jsonl" \
  "$work/reference.jsonl" 13 "$work/plain.flagged" > "$work/plain.out"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "$docs documents, $items reference items, $planted planted passages, 13-grams"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average before $load_before, after $load_after"
echo
python3 - "$work" "$docs" "$("$assay" --version)" "$(python3 --version)" <<'PY'
import json, re, subprocess, sys
work, docs, assay_version, python_version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def time_of(name):
    s, kib = open(f"{work}/{name}.time").read().split()
    return float(s), int(kib)
def score(path, name):
    out = subprocess.run([sys.executable, "bench/contamination_compare.py", "score", f"{work}/planted.json", path, name],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)
first_s, first_kib = time_of("assay-first")
cached_s, cached_kib = time_of("assay-cached")
out = open(f"{work}/assay-cached.out").read()
check_us = float(re.search(r"\(([0-9.]+) µs per row\)", out).group(1))
plain_s, plain_kib = time_of("plain")
plain = json.loads(open(f"{work}/plain.out").read())
a = score(f"{work}/assay.hits.jsonl", "assay")
p = score(f"{work}/plain.flagged", "plain")
print("| tool | µs per document (check) | end to end | peak RSS | rows flagged | recall on planted rows |")
print("|---|---|---|---|---|---|")
print(f"| {assay_version} audit overlap, index cached | {check_us:.2f} | {cached_s:.2f} s | {cached_kib / 1024:.0f} MiB | {a['flagged']:,} | {a['recall_planted']:.4f} |")
print(f"| {assay_version} audit overlap, first run (builds the index) | | {first_s:.2f} s | {first_kib / 1024:.0f} MiB | | |")
print(f"| plain Python set of 13-grams ({python_version}) | {plain['us_per_doc']:.2f} | {plain_s:.2f} s | {plain_kib / 1024:.0f} MiB | {p['flagged']:,} | {p['recall_planted']:.4f} |")
print()
print(f"assay checks {plain['us_per_doc'] / check_us:.1f}x faster per document; end to end {plain_s / cached_s:.1f}x")
PY
