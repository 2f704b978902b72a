"""Krippendorff's alpha and Dawid-Skene: assay-quality against the Python `krippendorff` and `crowd-kit` packages.

Generates reliability data (units x coders, categories 0..k-1 with a share missing), times both on the same data
(best of several runs, in-memory data to alpha), checks the alphas agree to 1e-9, and prints ratios with the
versions compared. Then runs Dawid-Skene on the same data (units as tasks, coders as workers) in both for exactly
`--ds-iterations` EM iterations (crowd-kit with `tol=-inf`, assay with tolerance 0 and no smoothing), from an
in-memory answer table to fitted labels, and reports both times, the ratio and the share of units given the same
label. Needs `pip install krippendorff 'crowd-kit==1.4.*' numpy pandas` and cargo.

    python bench/quality_compare.py [--units 200000] [--coders 5] [--categories 10] [--missing 0.1]
                                    [--ds-iterations 20] [--ds-repeats 1]
"""

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import krippendorff
import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_data(units, coders, categories, missing, seed):
    rng = np.random.default_rng(seed)
    # Each unit has a true category; coders agree with it 70% of the time, else pick at random.
    truth = rng.integers(0, categories, units)
    data = np.where(rng.random((units, coders)) < 0.7, truth[:, None], rng.integers(0, categories, (units, coders)))
    data = data.astype(float)
    data[rng.random((units, coders)) < missing] = np.nan
    return data


def time_python(data, level, repeats):
    best = float("inf")
    alpha = None
    for _ in range(repeats):
        start = time.perf_counter()
        alpha = krippendorff.alpha(reliability_data=data.T, level_of_measurement=level)
        best = min(best, time.perf_counter() - start)
    return alpha, best


def time_crowdkit(data, iterations, repeats):
    units, coders = np.nonzero(~np.isnan(data))
    answers = pd.DataFrame({"task": units, "worker": coders, "label": data[units, coders].astype(int)})
    best = float("inf")
    labels = None
    for _ in range(repeats):
        start = time.perf_counter()
        ds = DawidSkene(n_iter=iterations, tol=float("-inf")).fit(answers)
        best = min(best, time.perf_counter() - start)
        labels = ds.labels_
    return labels, len(ds.loss_history_), len(answers), best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=200_000)
    p.add_argument("--coders", type=int, default=5)
    p.add_argument("--categories", type=int, default=10)
    p.add_argument("--missing", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--ds-iterations", type=int, default=20, help="EM iterations for Dawid-Skene; 0 skips it")
    p.add_argument("--ds-repeats", type=int, default=1, help="crowd-kit runs (best taken); assay always runs 5")
    args = p.parse_args()

    data = make_data(args.units, args.coders, args.categories, args.missing, args.seed)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for row in data:
            f.write(" ".join("." if np.isnan(v) else str(int(v)) for v in row) + "\n")
        path = f.name
    try:
        out = subprocess.run(
            ["cargo", "run", "--quiet", "--release", "-p", "assay-quality", "--example", "alpha_bench", "--", path]
            + ([str(args.ds_iterations)] if args.ds_iterations > 0 else []),
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(path)
    lines = [json.loads(line) for line in out.splitlines()]
    rust = {r["level"]: r for r in lines if "level" in r}
    rust_ds = next((r for r in lines if r.get("method") == "dawid_skene"), None)

    print(f"# {args.units} units x {args.coders} coders, {args.categories} categories, {args.missing:.0%} missing")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, "
          f"krippendorff {importlib.metadata.version('krippendorff')}, numpy {np.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"{'level':<9} {'python s':>10} {'assay s':>10} {'ratio':>8} {'|diff|':>9}")
    ok = True
    for level in ["nominal", "ordinal", "interval", "ratio"]:
        py_alpha, py_s = time_python(data, level, args.repeats)
        r = rust[level]
        diff = abs(py_alpha - r["alpha"])
        ok &= diff < 1e-9
        print(f"{level:<9} {py_s:>10.4f} {r['seconds']:>10.5f} {py_s / r['seconds']:>7.0f}x {diff:>9.1e}")
    if not ok:
        print("alphas differ by more than 1e-9", file=sys.stderr)
        sys.exit(1)

    if rust_ds is not None:
        labels, py_iters, n_answers, py_s = time_crowdkit(data, args.ds_iterations, args.ds_repeats)
        rust_labels = np.array([-1 if x is None else x for x in rust_ds["labels"]])
        py_labels = labels.reindex(range(args.units)).fillna(-1).astype(int).to_numpy()
        same = float(np.mean(rust_labels == py_labels))
        print()
        print(f"# Dawid-Skene, {n_answers} answers, {args.ds_iterations} EM iterations "
              f"(crowd-kit ran {py_iters}, assay {rust_ds['iterations']}); crowd-kit "
              f"{importlib.metadata.version('crowd-kit')}, pandas {pd.__version__}")
        print(f"{'method':<12} {'crowd-kit s':>12} {'assay s':>10} {'ratio':>8} {'same label':>11}")
        print(f"{'dawid_skene':<12} {py_s:>12.3f} {rust_ds['seconds']:>10.4f} "
              f"{py_s / rust_ds['seconds']:>7.0f}x {same:>11.4%}")


if __name__ == "__main__":
    main()
