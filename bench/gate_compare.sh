#!/usr/bin/env bash
# The quality gate against people (issue 15 §2): over the repo's human preference pairs (examples/hh-harmless,
# examples/pandalm), gate each response alone with `assay generate --gate-only` (a SmolLM2 rate judge keeping the
# best half; and rules + near-duplicates + that judge) and report the share of kept responses people preferred,
# against "keep the longest" and random at the same keep count, in one run. Prints Markdown.
# Usage: bash bench/gate_compare.sh [PAIRS_PER_DATASET] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
pairs="${1:-60}"; threads="${2:-2}"
cargo build -q -p assay
bin="${CARGO_TARGET_DIR:-target}/debug/assay"
"$bin" model fetch smollm2-135m-instruct >/dev/null
work="bench/out/gate_compare"
rm -rf "$work"; mkdir -p "$work"
echo "# gate vs people, $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$bin" --version), $(git rev-parse --short HEAD 2>/dev/null || echo unknown), judge smollm2-135m-instruct, $pairs pairs per dataset, $threads threads"
echo
python3 bench/gate_compare.py --assay "$bin" --pairs "$pairs" --work "$work" --threads "$threads"
