#!/usr/bin/env bash
# What nearest-neighbour few-shot examples buy and cost (issue 12 §3), side by side in one invocation: the same
# rows labeled by the bundled model zero-shot, with the examples file's first K rows in every prompt (they sit in
# the shared prefix), and with each item's K nearest rows (`examples-from select = "similar"`), on SMS spam and
# Banking77. Reports held-out accuracy and macro-F1 (raw and calibrated: the calibration's own held-out gold rows),
# items/s and tokens evaluated per item. Prints Markdown.
#
# Usage: bash bench/similar_examples.sh [SMS_ROWS] [BANKING_ROWS] [K]   (defaults 300 100 4)
# Reads ../shared/datasets (pools: SMS rows outside the 500-row sample; 10 Banking77 training rows per intent).
set -euo pipefail
cd "$(dirname "$0")/.."
sms_rows="${1:-300}"
banking_rows="${2:-100}"
k="${3:-4}"
threads="${SE_THREADS:-2}"
cargo build -q -p assay
bin="${CARGO_TARGET_DIR:-target}/debug/assay"
home="${ASSAY_HOME:-/var/tmp/assay-test-home}"
ASSAY_HOME="$home" "$bin" model fetch smollm2-135m-instruct >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 bench/similar_examples.py "$work" "$bin" "$home" "$sms_rows" "$banking_rows" "$k" "$threads"
