#!/usr/bin/env python3
"""Autolabel and assay side by side on the same classification rows, through the same OpenAI-compatible server.

One llama-cpp-python server (the pinned 0.3.36) serves the SmolLM2 GGUF file that `assay model fetch` caches, on
loopback, with one thread. Both tools label the same rows of each dataset through it, one after the other:

- Autolabel 0.0.16 (refuel-autolabel, in its own venv because of its pins): a `classification` task with
  `compute_confidence`, zero-shot, pointed at the server with `OPENAI_API_BASE`. Autolabel computes confidence
  locally only for models it knows return token log-probabilities (`text-davinci-003`, `text-curie-001`; other
  models need Refuel's hosted API), so the server calls the model `text-davinci-003` and Autolabel uses the
  completions endpoint with `logprobs=1`. In its favour: `max_tokens = 20` (its default is 1000), so it never
  generates far past the label.
- assay (the HTTP backend, release build): the same labels and guidelines, the completion layout,
  `scoring = "first-token"` (one request per item), contextual calibration only (no gold row is used to fit).

Reported per tool: items/s (wall time of labeling, server already warm), accuracy, ECE (15 equal-width bins) and
accuracy at 50% coverage (the most confident half), all over every row, plus the versions compared.

    python3 bench/autolabel_compare.py [--rows 300] [--datasets sms,banking77] [--json out.json]

Needs: a release build of assay (`cargo build --release -p assay`), `assay model fetch`, llama-cpp-python[server]
0.3.36 in `python3`, and Autolabel in /var/tmp/autolabel-venv (see bench/autolabel_compare.sh).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

SMS_GUIDELINES = (
    "You sort SMS text messages. A message is spam when it is unsolicited advertising or a scam: prizes, free "
    "offers, premium-rate numbers, \"text STOP to opt out\". Messages between people who know each other are ham, "
    "even when they are short or informal."
)
BANKING_GUIDELINES = "You route customer messages of a bank to the team that handles their intent."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(dataset: str, rows: int, out: Path) -> tuple[Path, list[str], str, str]:
    """Write the rows to label as CSV (columns text, label); return the file, labels, guidelines, name."""
    if dataset == "sms":
        with open(REPO / "examples/sms-spam/sms-500.csv", newline="") as f:
            data = [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(f)][:rows]
        labels, guidelines = ["ham", "spam"], SMS_GUIDELINES
    elif dataset == "banking77":
        with open(SHARED / "datasets/classify/banking77/test.csv", newline="") as f:
            everything = [{"text": r["text"], "label": r["category"]} for r in csv.DictReader(f)]
        # The file is sorted by intent: a fixed random sample spans them.
        data = random.Random(77).sample(everything, rows)
        labels, guidelines = sorted({r["label"] for r in everything}), BANKING_GUIDELINES
    else:
        raise SystemExit(f"unknown dataset {dataset}")
    path = out / f"{dataset}-{rows}.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(data)
    return path, labels, guidelines, dataset


def start_server(model: Path, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "text-davinci-003",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1",
         "--n_threads_batch", "1", "--logits_all", "true"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {log.read_text()}")
            time.sleep(0.3)
    raise SystemExit("server did not start")


AUTOLABEL_RUNNER = r'''
import json, sys, time, types, os
cfg_path, csv_path, out_path = sys.argv[1:4]
try:
    import torch  # noqa: F401
except ImportError:
    # Autolabel imports torch at module load for its vector-store few-shot selector, which this zero-shot run
    # never uses; a stub saves a multi-gigabyte install.
    torch = types.ModuleType("torch"); torch.Tensor = object; sys.modules["torch"] = torch
import autolabel
from autolabel import LabelingAgent, AutolabelDataset
from autolabel.models.openai import OpenAILLM
# Cost estimates use tiktoken, which downloads its tables from the internet; they change no label.
OpenAILLM.get_cost = lambda self, prompt, label="": 0.0
config = json.load(open(cfg_path))
agent = LabelingAgent(config=config, cache=False)
ds = AutolabelDataset(csv_path, config=config)
start = time.time()
result = agent.run(ds, skip_eval=True)
seconds = time.time() - start
df = getattr(result, "df", None)
if df is None:
    df = result[1] if isinstance(result, tuple) else result
col = config["dataset"]["label_column"]
rows = [{"label": str(l), "confidence": float(c or 0.0), "gold": str(g)}
        for l, c, g in zip(df[col + "_label"], df[col + "_confidence"], df[col])]
json.dump({"seconds": seconds, "rows": rows, "version": autolabel.__version__ if hasattr(autolabel, "__version__") else "0.0.16"}, open(out_path, "w"))
'''


def run_autolabel(python: str, port: int, csv_path: Path, labels: list[str], guidelines: str, name: str,
                  work: Path) -> dict:
    config = {
        "task_name": f"bench-{name}",
        "task_type": "classification",
        "dataset": {"label_column": "label", "delimiter": ","},
        "model": {
            "provider": "openai",
            "name": "text-davinci-003",
            "compute_confidence": True,
            "params": {"max_tokens": 20},
        },
        "prompt": {
            "task_guidelines": guidelines + "\nYour job is to correctly label the provided input example into one "
            "of the following {num_labels} categories.\nCategories:\n{labels}\n",
            "output_guidelines": "You will answer with just the correct output label and nothing else.",
            "labels": labels,
            "example_template": "Input: {text}\nOutput: {label}",
        },
    }
    cfg = work / f"autolabel-{name}.json"
    cfg.write_text(json.dumps(config))
    runner = work / "autolabel_runner.py"
    runner.write_text(AUTOLABEL_RUNNER)
    out = work / f"autolabel-{name}.out.json"
    env = dict(os.environ, OPENAI_API_KEY="sk-local", OPENAI_API_BASE=f"http://127.0.0.1:{port}/v1",
               TOKENIZERS_PARALLELISM="false")
    subprocess.run([python, str(runner), str(cfg), str(csv_path), str(out)], check=True, cwd=work, env=env,
                   stdout=open(work / f"autolabel-{name}.log", "w"), stderr=subprocess.STDOUT)
    result = json.loads(out.read_text())
    return {"seconds": result["seconds"], "rows": result["rows"], "version": result["version"]}


def run_assay(assay: Path, port: int, csv_path: Path, labels: list[str], guidelines: str, name: str,
              work: Path) -> dict:
    task = work / f"assay-{name}.toml"
    task.write_text(
        f'name = "bench-{name}-served"\ntype = "classify"\ninput = "{{{{ text }}}}"\ngold = "label"\n'
        f"guidelines = {json.dumps(guidelines)}\nlabels = {json.dumps(labels)}\n\n"
        f'[model]\nname = "text-davinci-003"\nendpoint = "http://127.0.0.1:{port}/v1"\n'
        'prompt-format = "completion"\nscoring = "first-token"\ntop-logprobs = 100\nconcurrency = 4\n\n'
        '[calibration]\nmethod = "contextual"\n')
    out = work / f"assay-{name}.labeled.jsonl"
    summary = work / f"assay-{name}.summary.json"
    store = work / f"assay-{name}.db"
    start = time.time()
    subprocess.run([str(assay), "--quiet", "--store", str(store), "label", str(task), "--input", str(csv_path),
                    "--output", str(out), "--summary-json", str(summary)], check=True,
                   stdout=open(work / f"assay-{name}.log", "w"), stderr=subprocess.STDOUT)
    seconds = time.time() - start
    rows = []
    for line in out.read_text().splitlines():
        r = json.loads(line)
        rows.append({"label": str(r["assay"]["label"]), "confidence": float(r["assay"]["confidence"] or 0.0),
                     "gold": r["label"]})
    version = subprocess.run([str(assay), "--version"], capture_output=True, text=True).stdout.strip()
    return {"seconds": seconds, "rows": rows, "version": version,
            "summary": json.loads(summary.read_text())}


def metrics(rows: list[dict]) -> dict:
    n = len(rows)
    correct = [r["label"] == r["gold"] for r in rows]
    conf = [min(max(r["confidence"], 0.0), 1.0) for r in rows]
    bins = [[] for _ in range(15)]
    for c, ok in zip(conf, correct):
        bins[min(int(c * 15), 14)].append((c, ok))
    ece = sum(len(b) / n * abs(sum(c for c, _ in b) / len(b) - sum(ok for _, ok in b) / len(b))
              for b in bins if b)
    ranked = sorted(range(n), key=lambda i: -conf[i])
    half = ranked[: math.ceil(n / 2)]
    return {"rows": n, "accuracy": sum(correct) / n, "ece": ece,
            "accuracy_at_50": sum(correct[i] for i in half) / len(half),
            "valid_labels": sum(1 for r in rows if r["label"] not in ("", "None", "NO_LABEL", "null")) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--datasets", default="sms,banking77")
    ap.add_argument("--assay", type=Path, default=Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
                    / "release/assay")
    ap.add_argument("--autolabel-python", default="/var/tmp/autolabel-venv/bin/python")
    ap.add_argument("--model", type=Path, default=Path(os.environ.get("ASSAY_HOME", Path.home() / ".cache/assay"))
                    / "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import llama_cpp
    work = Path(tempfile.mkdtemp(prefix="assay-vs-autolabel-"))
    port = free_port()
    server = start_server(args.model, port, work / "server.log")
    results = []
    try:
        for dataset in args.datasets.split(","):
            csv_path, labels, guidelines, name = prepare(dataset, args.rows, work)
            # Warm the server once so neither tool pays for loading pages of the model.
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/completions",
                json.dumps({"model": "x", "prompt": "Hello", "max_tokens": 1}).encode(),
                {"Content-Type": "application/json"})).read()
            al = run_autolabel(args.autolabel_python, port, csv_path, labels, guidelines, name, work)
            asy = run_assay(args.assay, port, csv_path, labels, guidelines, name, work)
            for tool, r in (("autolabel", al), ("assay", asy)):
                m = metrics(r["rows"])
                m.update(tool=tool, dataset=dataset, seconds=r["seconds"],
                         items_per_second=len(r["rows"]) / r["seconds"], version=r["version"])
                results.append(m)
            raw = asy["summary"].get("before") or {}
            results[-1]["raw_accuracy"] = raw.get("accuracy")
            for r in results[-2:]:
                print(f"{dataset} {r['tool']}: {r['items_per_second']:.3f} items/s, accuracy {r['accuracy']:.3f}, "
                      f"ECE {r['ece']:.3f}, accuracy at 50% {r['accuracy_at_50']:.3f}", flush=True)
    finally:
        server.terminate()
        server.wait()
    print(f"server: llama-cpp-python {llama_cpp.__version__}, 1 thread; model {args.model.name}; "
          f"{args.rows} rows per dataset; work folder {work}")
    print("| dataset | tool | items/s | accuracy | ECE | accuracy at 50% coverage | valid labels | version |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} | {r['tool']} | {r['items_per_second']:.2f} | {100 * r['accuracy']:.1f}% | "
              f"{r['ece']:.3f} | {100 * r['accuracy_at_50']:.1f}% | {100 * r['valid_labels']:.0f}% | "
              f"{r['version']} |")
    for dataset in args.datasets.split(","):
        a = next(r for r in results if r["dataset"] == dataset and r["tool"] == "assay")
        b = next(r for r in results if r["dataset"] == dataset and r["tool"] == "autolabel")
        print(f"{dataset}: assay {a['items_per_second'] / b['items_per_second']:.1f}x Autolabel's items/s; "
              f"accuracy {100 * a['accuracy']:.1f}% vs {100 * b['accuracy']:.1f}%")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
