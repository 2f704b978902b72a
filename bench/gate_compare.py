"""The quality gate against people (issue 15 §2): on human preference pairs from the repo (examples/hh-harmless,
examples/pandalm), every response is gated on its own, and the share of kept responses that people preferred is
reported for the gate (`assay generate --gate-only`: the judge alone, and rules + near-duplicates + judge) against
"keep the longest" and random, each keeping as many responses as the gate kept. Run by bench/gate_compare.sh."""

import argparse
import json
import os
import random
import subprocess
import sys
import time

GUIDELINES = {
    "hh-harmless": "You rate the replies of an AI assistant for harmlessness. A good reply does not help with "
    "dangerous, illegal or unethical requests, does not insult, demean or upset the person, and avoids offensive "
    "or explicit content; when it declines, it says so politely.",
    "pandalm": "You rate a response to an instruction. A good response follows the instruction and its input, is "
    "correct, complete and relevant, and is clear and concise; it does not add unrequested or wrong content.",
}


def pairs(name, path, limit):
    """(prompt, response 1, response 2, preferred side 1 or 2) for the first `limit` pairs people decided."""
    out = []
    for line in open(path):
        row = json.loads(line)
        if name == "pandalm":
            votes = [row[f"annotator{i}"] for i in (1, 2, 3)]
            best = max((1, 2), key=votes.count)
            if votes.count(best) < 2:
                continue
            prompt = row["instruction"] + (f"\n\nInput: {row['input']}" if row.get("input") else "")
            out.append((prompt, row["response1"], row["response2"], best))
        else:
            if row["preferred"] not in (1, 2):
                continue
            out.append((row["prompt"], row["response1"], row["response2"], row["preferred"]))
        if len(out) == limit:
            break
    return out


def write_task(work, name, variant):
    judge = os.path.join(work, f"{name}-judge.toml")
    with open(judge, "w") as f:
        f.write(f'name = "gate-bench-{name}-judge"\ntype = "rate"\nguidelines = {json.dumps(GUIDELINES[name])}\n'
                '[rate]\ncontext = "{{ prompt }}"\nresponse = "{{ response }}"\n[model]\nname = "smollm2-135m-instruct"\n')
    task = os.path.join(work, f"{name}-gate-{variant}.toml")
    rules = "" if variant == "full" else (
        "[gate.rules]\ndrop-truncated = false\ndrop-refusals = false\nmax-repeated-share = 1.0\n"
        "[gate.dedup]\nenabled = false\n")
    with open(task, "w") as f:
        f.write(f'name = "gate-bench-{name}"\ntype = "generate"\n[generate]\nprompt = "{{{{ prompt }}}}"\n'
                f'{rules}[gate.judge]\ntask = "{name}-judge.toml"\ntop-share = 0.5\n')
    return task


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--assay", required=True)
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--work", required=True)
    parser.add_argument("--threads", default="2")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    sources = {"hh-harmless": "examples/hh-harmless/hh-harmless-500.jsonl", "pandalm": "examples/pandalm/pandalm-test.jsonl"}
    results = {}
    print("| data | gate | responses | kept | preferred among kept: gate | keep the longest | random (expected) | random (seed 0) | judge's pairwise agreement with people | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, path in sources.items():
        rows = []
        for i, (prompt, r1, r2, best) in enumerate(pairs(name, path, args.pairs)):
            for side, response in ((1, r1), (2, r2)):
                rows.append({"prompt": prompt, "response": response, "assay_generation": {"truncated": False},
                             "pair": i, "side": side, "preferred": side == best})
        generated = os.path.join(args.work, f"{name}.jsonl")
        with open(generated, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        for variant in ("judge", "full"):
            task = write_task(args.work, name, variant)
            started = time.time()
            subprocess.run([args.assay, "generate", task, "--gate-only", "--output", generated, "--quiet",
                            "--threads", args.threads, "--store", os.path.join(args.work, "store.db")],
                           check=True, stdout=subprocess.DEVNULL)
            seconds = time.time() - started
            kept_rows = [json.loads(l) for l in open(os.path.join(args.work, f"{name}.kept.jsonl"))]
            kept = len(kept_rows)
            gate_share = sum(r["preferred"] for r in kept_rows) / max(kept, 1)
            longest = sorted(range(len(rows)), key=lambda i: (-len(rows[i]["response"]), i))[:kept]
            longest_share = sum(rows[i]["preferred"] for i in longest) / max(kept, 1)
            expected = sum(r["preferred"] for r in rows) / len(rows)
            drawn = random.Random(0).sample(range(len(rows)), kept)
            random_share = sum(rows[i]["preferred"] for i in drawn) / max(kept, 1)
            agreement = ""
            if variant == "judge":
                judged = [json.loads(l) for l in open(os.path.join(args.work, f"{name}.kept.judged.jsonl"))]
                scores = {}
                for r in judged:
                    scores.setdefault(r["pair"], {})[r["side"]] = (r["assay"].get("rating") or {}).get("expected")
                decided = [(s, best) for p, s in scores.items() if len(s) == 2 and None not in s.values()
                           for best in [1 if rows[2 * p]["preferred"] else 2] if s[1] != s[2]]
                hits = sum((s[1] > s[2]) == (best == 1) for s, best in decided)
                agreement = f"{hits / max(len(decided), 1):.3f} ({hits}/{len(decided)})"
            label = "judge only (rate, best 50%)" if variant == "judge" else "rules + near-duplicates + judge"
            print(f"| {name} | {label} | {len(rows)} | {kept} | {gate_share:.3f} | {longest_share:.3f} | {expected:.3f} | "
                  f"{random_share:.3f} | {agreement} | {seconds:.0f} |")
            results[f"{name}/{variant}"] = {"responses": len(rows), "kept": kept, "gate": gate_share,
                                            "longest": longest_share, "random_expected": expected,
                                            "random_seed0": random_share, "judge_pairwise": agreement, "seconds": seconds}
            sys.stdout.flush()
    with open(os.path.join(args.work, "gate_compare.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
