#!/usr/bin/env bash
# Issue 14 acceptance: is a text written by SmolLM2-135M-Instruct, by Gemma 3 270M, or by the dataset's own
# authors? N dialogues of HH-RLHF harmless-base test (default 300), each answered by the dataset's chosen reply
# (`human`), by SmolLM2 and by Gemma 3 270M (sampled at temperature 0.8, llama-cpp-python on the same GGUF files;
# bench/source_detect.py generate). `assay audit source` scores all 3N texts under both models; the same run
# reports AUROC model-written vs human for assay's combined score (the larger z of each model's Fast-DetectGPT
# curvature, fitted on half the labeled rows) and for single-model anchors (one model's mean per-token
# log-likelihood, what perplexity detectors start from; one model's curvature; one-model Binoculars), on all
# rows and on the held-out half, and attribution accuracy. Gemma, a base model, reads each reply after the
# dialogue and "\n\nAssistant:" (--answer-after), as it wrote its own.
# AUROC is recomputed in Python (Mann-Whitney) from the per-row output, independently of assay's own figure.
# Usage: bash bench/source_detect.sh [N]       Writes bench/out/source_detect.{jsonl,json}; resumes generation.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-300}"
source_data="../shared/datasets/preference/hh_rlhf_harmless/harmless-base-test.jsonl.gz"
[[ -f "$source_data" ]] || { echo "error: $source_data not found (the bench reads ../shared/datasets)" >&2; exit 1; }
cargo build -q -p assay
assay="${CARGO_TARGET_DIR:-target}/debug/assay"
home="${ASSAY_HOME:-$HOME/.cache/assay}"
for m in smollm2-135m-instruct gemma-3-270m; do ASSAY_HOME="$home" "$assay" model fetch "$m" >/dev/null; done
models="$home/models"
mkdir -p bench/out
rows="bench/out/source_detect.rows-$n.jsonl"
echo "# source_detect, $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# assay $(git rev-parse --short HEAD 2>/dev/null || echo unknown), llama-cpp-python $(python3 -c 'import llama_cpp; print(llama_cpp.__version__)')"
python3 bench/source_detect.py generate "$source_data" "$rows" "$n" \
  "$models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf" "$models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf"
start=$(date +%s)
ASSAY_HOME="$home" "$assay" --quiet audit source "$rows" --text-column text --prompt-column prompt \
  --reference-model smollm2-135m-instruct --reference-model gemma-3-270m --label-column source \
  --answer-after $'\n\nAssistant:' ${THREADS:+--threads "$THREADS"} \
  --output bench/out/source_detect.jsonl --json bench/out/source_detect.summary.json --report bench/out/source_detect.html
echo "# scoring took $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/source_detect.py evaluate bench/out/source_detect.jsonl bench/out/source_detect.json
