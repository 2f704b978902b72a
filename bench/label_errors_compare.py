"""Label-error detection: assay-quality's confident learning against Python cleanlab, on labels flipped at known places.

Reads labeled JSONL written by `assay label` (gold label column plus the model's `assay.distribution`), keeps the rows
whose distribution is an object, flips a share of the gold labels to another class chosen at random (seeded), runs
assay's `find_label_issues` (through the `label_issues_json` example) and `cleanlab.filter.find_label_issues` on the
same arrays for each `filter_by`, and prints a Markdown table: precision and recall of each flagged set against the
flipped positions, and how many items the two flagged sets differ by. Needs `pip install cleanlab numpy` and cargo.

    python bench/label_errors_compare.py [--seed 0] [--rates 0.05 0.1 0.2]
"""

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from cleanlab.filter import find_label_issues

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = [
    ("sms-spam", "out/sms-spam.labeled.jsonl", "label"),
    ("banking77", "out/banking77.labeled.jsonl", "category"),
]
FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning"]


def load(path, gold_column):
    """Gold labels as indices into the sorted class names, and the distributions as an n x k array."""
    rows = []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            dist = (row.get("assay") or {}).get("distribution")
            if isinstance(dist, dict):
                rows.append((row[gold_column], dist))
    classes = sorted(rows[0][1])
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[gold] for gold, _ in rows])
    probs = np.array([[dist[c] for c in classes] for _, dist in rows], dtype=np.float64)
    return labels, probs


def flip(labels, k, rate, seed):
    """Flips round(rate * n) labels, at distinct random positions, each to a different class chosen uniformly."""
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    positions = rng.choice(len(labels), size=round(rate * len(labels)), replace=False)
    for i in positions:
        other = rng.integers(k - 1)
        noisy[i] = other + (other >= labels[i])
    return noisy, set(int(i) for i in positions)


def assay_issues(binary, labels, probs, filter_by):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"labels": labels.tolist(), "pred_probs": probs.tolist(), "filter_by": filter_by}, f)
        path = f.name
    try:
        out = subprocess.run([binary, path], check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    return set(json.loads(out)["issues"])


def precision_recall(flagged, flipped):
    hits = len(flagged & flipped)
    precision = f"{hits / len(flagged):.2f}" if flagged else "-"
    recall = f"{hits / len(flipped):.2f}" if flipped else "-"
    return precision, recall


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    args = p.parse_args()

    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "assay-quality", "--example", "label_issues_json"], check=True, cwd=ROOT
    )
    binary = os.path.join(target, "debug", "examples", "label_issues_json")

    print("| dataset (n, k) | flipped | filter_by | assay flagged | precision | recall "
          "| cleanlab flagged | precision | recall | items differing |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, path, gold_column in DATASETS:
        labels, probs = load(os.path.join(ROOT, path), gold_column)
        n, k = probs.shape
        for rate in [0.0] + args.rates:
            noisy, flipped = flip(labels, k, rate, args.seed)
            for filter_by in FILTERS:
                ours = assay_issues(binary, noisy, probs, filter_by)
                mask = find_label_issues(noisy, probs, filter_by=filter_by, n_jobs=1, verbose=False)
                theirs = set(int(i) for i in np.flatnonzero(mask))
                p_ours, r_ours = precision_recall(ours, flipped)
                p_theirs, r_theirs = precision_recall(theirs, flipped)
                default = " (default)" if filter_by == "prune_by_noise_rate" else ""
                print(f"| {name} ({n}, {k}) | {len(flipped)} ({rate:.0%}) | {filter_by}{default} | {len(ours)} "
                      f"| {p_ours} | {r_ours} | {len(theirs)} | {p_theirs} | {r_theirs} | {len(ours ^ theirs)} |")
    print()
    print(f"cleanlab {importlib.metadata.version('cleanlab')}, NumPy {np.__version__}, "
          f"Python {sys.version.split()[0]}, seed {args.seed}")


if __name__ == "__main__":
    main()
