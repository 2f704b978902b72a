#!/usr/bin/env bash
# Model collapse under the collapse guard's mixing policies (issue 15 §4), with assay_provenance::mix choosing each
# generation's training data: a 1-D Gaussian refitted to M = 100 samples of its previous fit (replace checked
# against the closed form exp(n·δ/2), δ = E[log(χ²_{M−1}/(M−1))]; accumulate; replace with 10% human data), and a
# word bigram LM fitted to wikitext-2 and refitted on its own samples for 10 generations (test perplexity, share of
# the rarest original words still produced). Prints Markdown; writes bench/out/collapse.json.
# Usage: bash bench/collapse.sh [--small]   (--small: the Gaussian only, to fit 100, as CI runs it; no ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p assay-bench --bin collapse
bin="${CARGO_TARGET_DIR:-target}/debug/collapse"
mkdir -p bench/out
echo "# collapse, $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# assay $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(rustc --version)"
echo
if [[ "${1:-}" == "--small" ]]; then
  "$bin" --seeds 200 --checkpoints 1,10,100 --accumulate-generations 100 --json bench/out/collapse-small.json
  exit 0
fi
wikitext="../shared/datasets/corpus/wikitext2"
[[ -f "$wikitext/valid.txt" ]] || { echo "error: $wikitext/valid.txt not found (the bench reads ../shared/datasets)" >&2; exit 1; }
"$bin" --seeds 200 --checkpoints 1,10,100,300,1000 --accumulate-generations 300 \
  --wikitext "$wikitext" --generations 10 --human-share 0.1 --json bench/out/collapse.json
