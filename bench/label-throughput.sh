#!/usr/bin/env bash
# Labeling throughput with the embedded model: naive per-item, per-option evaluation vs assay's cached prefix +
# token-trie batches, on the same rows, next to llama.cpp's raw prompt rate. Appends nothing; prints Markdown.
# Usage: bash bench/label-throughput.sh [ROWS] [THREADS...]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-64}"; shift || true
threads=("${@:-1 2}")
cargo build -q -p assay -p assay-bench
home="${ASSAY_HOME:-$HOME/.cache/assay}"
"${CARGO_TARGET_DIR:-target}"/debug/assay model fetch smollm2-135m-instruct >/dev/null
model="$home/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
echo "# label throughput, $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for t in ${threads[@]}; do
  "${CARGO_TARGET_DIR:-target}"/debug/label-throughput "$model" examples/sms-spam/task.toml examples/sms-spam/sms-500.csv "$rows" "$t"
  echo
  "${CARGO_TARGET_DIR:-target}"/debug/label-throughput "$model" examples/banking77/task.toml examples/banking77/banking77-test-1000.csv "$((rows / 4))" "$t" "$((rows / 16))"
  echo
done
