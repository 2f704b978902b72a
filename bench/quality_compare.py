"""Krippendorff's alpha: assay-quality against the Python `krippendorff` package, side by side.

Generates reliability data (units x coders, categories 0..k-1 with a share missing), times both on the same data
(best of several runs, in-memory data to alpha), checks the alphas agree to 1e-9, and prints ratios with the
versions compared. Needs `pip install krippendorff numpy` and cargo.

    python bench/quality_compare.py [--units 200000] [--coders 5] [--categories 10] [--missing 0.1]
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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=200_000)
    p.add_argument("--coders", type=int, default=5)
    p.add_argument("--categories", type=int, default=10)
    p.add_argument("--missing", type=float, default=0.1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args()

    data = make_data(args.units, args.coders, args.categories, args.missing, args.seed)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for row in data:
            f.write(" ".join("." if np.isnan(v) else str(int(v)) for v in row) + "\n")
        path = f.name
    try:
        out = subprocess.run(
            ["cargo", "run", "--quiet", "--release", "-p", "assay-quality", "--example", "alpha_bench", "--", path],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(path)
    rust = {r["level"]: r for r in map(json.loads, out.splitlines())}

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


if __name__ == "__main__":
    main()
