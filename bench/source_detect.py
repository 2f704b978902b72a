#!/usr/bin/env python3
"""Issue 14 acceptance benchmark, the Python side of bench/source_detect.sh.

  generate SOURCE OUT N SMOLLM2.gguf GEMMA.gguf
      The first N usable dialogues of HH-RLHF harmless-base test (as examples/hh-harmless/convert.py cuts them:
      the dialogue up to its last "Assistant:" turn), each with three responses: the dataset's own chosen reply
      (`human`), one sampled from SmolLM2-135M-Instruct (chat template, temperature 0.8) and one from Gemma 3 270M
      (base model, completion prompt, temperature 0.8), generated with llama-cpp-python on the same GGUF files
      assay uses. Writes OUT (JSONL: id, prompt, text, source). Rerunning with OUT present keeps the rows it has.

  evaluate SCORES.jsonl OUT.json
      Reads `assay audit source` per-row output and computes, in the same run: AUROC model-written vs human for
      assay's score and for the single-model anchors (mean log-likelihood per token under one model, the
      detector most tools start from), attribution accuracy (which model wrote a model-written row), and the
      flagged share at the chosen threshold.
"""

import gzip
import json
import sys
import time
from pathlib import Path

MARK = "\n\nAssistant:"
TEMPERATURE = 0.8
MAX_TOKENS = 64
SEED = 14


def dialogues(source, n):
    out = []
    with gzip.open(source, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            if len(out) == n:
                break
            pair = json.loads(line)
            cut_c, cut_r = pair["chosen"].rfind(MARK), pair["rejected"].rfind(MARK)
            prompt = pair["chosen"][:cut_c]
            if cut_c < 0 or cut_c != cut_r or pair["rejected"][:cut_r] != prompt:
                continue
            chosen = pair["chosen"][cut_c + len(MARK):].strip()
            if not chosen:
                continue
            out.append({"line": number + 1, "prompt": prompt.strip(), "human": chosen})
    return out


def chat_messages(dialogue):
    """HH's "Human: ... Assistant: ..." turns as chat messages."""
    messages = []
    for chunk in ("\n\n" + dialogue).split("\n\nHuman:")[1:]:
        human, _, assistant = chunk.partition("\n\nAssistant:")
        messages.append({"role": "user", "content": human.strip()})
        if assistant.strip():
            messages.append({"role": "assistant", "content": assistant.strip()})
    return messages


def generate(source, out_path, n, smollm2, gemma):
    from llama_cpp import Llama

    rows = dialogues(source, n)
    out_path = Path(out_path)
    have = {}
    if out_path.exists():
        for line in out_path.read_text().splitlines():
            r = json.loads(line)
            have[(r["id"], r["source"])] = r
    models = {
        "smollm2-135m-instruct": Llama(model_path=smollm2, n_ctx=2048, n_threads=2, seed=SEED, verbose=False),
        "gemma-3-270m": Llama(model_path=gemma, n_ctx=2048, n_threads=2, seed=SEED, verbose=False),
    }
    started = time.time()
    with out_path.open("a", encoding="utf-8") as out:
        for i, d in enumerate(rows):
            rid = f"hh-{d['line']}"
            if (rid, "human") not in have:
                out.write(json.dumps({"id": rid, "prompt": d["prompt"], "text": d["human"], "source": "human"}) + "\n")
            for name, llm in models.items():
                if (rid, name) in have:
                    continue
                llm.set_seed(SEED + i)
                if name.startswith("smollm2"):
                    r = llm.create_chat_completion(
                        messages=chat_messages(d["prompt"]),
                        temperature=TEMPERATURE, top_p=1.0, top_k=0, min_p=0.0, max_tokens=MAX_TOKENS,
                    )
                    text = r["choices"][0]["message"]["content"]
                else:
                    r = llm.create_completion(
                        d["prompt"] + MARK, temperature=TEMPERATURE, top_p=1.0, top_k=0, min_p=0.0,
                        max_tokens=MAX_TOKENS, stop=["\n\nHuman:", "\nHuman:", "\n\n\n"],
                    )
                    text = r["choices"][0]["text"]
                text = text.strip()
                if not text:
                    text = "..."
                out.write(json.dumps({"id": rid, "prompt": d["prompt"], "text": text, "source": name}) + "\n")
            out.flush()
            if (i + 1) % 25 == 0:
                print(f"{i + 1}/{len(rows)} dialogues, {time.time() - started:.0f} s", file=sys.stderr, flush=True)


def auroc(pos, neg):
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    ranked = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # 1-based mean rank of the tie block
        rank_sum += mid * sum(1 for k in range(i, j) if ranked[k][1])
        i = j
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def evaluate(scores_path, out_path):
    rows = [json.loads(l) for l in Path(scores_path).read_text().splitlines() if l.strip()]
    truth = [r["source"] for r in rows]
    machine = [t != "human" for t in truth]
    models = sorted({m for r in rows for m in r["assay_source"]["models"]})
    report = {"rows": len(rows), "by_source": {s: truth.count(s) for s in sorted(set(truth))}, "detectors": {}}

    def score_of(key):
        return [r["assay_source"][key] for r in rows]

    candidates = {"assay (combined score)": score_of("score")}
    for m in models:
        candidates[f"anchor: mean log-likelihood per token, {m} only"] = [
            r["assay_source"]["models"][m]["mean_logprob"] for r in rows
        ]
        if "curvature" in rows[0]["assay_source"]["models"][m]:
            candidates[f"anchor: Fast-DetectGPT curvature, {m} only"] = [
                r["assay_source"]["models"][m]["curvature"] for r in rows
            ]
            candidates[f"anchor: Binoculars (one model), {m} only"] = [
                -r["assay_source"]["models"][m]["binoculars"] for r in rows
            ]
    if rows and rows[0]["assay_source"].get("likelihood_ratio") is not None:
        candidates["likelihood ratio between the two models"] = score_of("likelihood_ratio")
    held = [r["assay_source"].get("fitted") is False for r in rows]
    for name, s in candidates.items():
        pos = [x for x, y in zip(s, machine) if y]
        neg = [x for x, y in zip(s, machine) if not y]
        hpos = [x for x, y, h in zip(s, machine, held) if y and h]
        hneg = [x for x, y, h in zip(s, machine, held) if not y and h]
        report["detectors"][name] = {"auroc": auroc(pos, neg), "auroc_held_out": auroc(hpos, hneg) if hpos and hneg else None}
    # Attribution: of the model-written rows, how many are attributed to the model that wrote them.
    written = [(r["assay_source"].get("attributed"), t) for r, t in zip(rows, truth) if t != "human"]
    report["attribution_accuracy"] = sum(a == t for a, t in written) / max(1, len(written))
    anchor_attr = []
    for r, t in zip(rows, truth):
        if t == "human":
            continue
        best = max(models, key=lambda m: r["assay_source"]["models"][m]["mean_logprob"])
        anchor_attr.append(best == t)
    report["attribution_accuracy_anchor_raw_argmax"] = sum(anchor_attr) / max(1, len(anchor_attr))
    flagged = [r["assay_source"].get("flagged") for r in rows]
    report["flagged_share"] = sum(1 for f in flagged if f) / max(1, len(rows))
    Path(out_path).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    elif sys.argv[1] == "evaluate":
        evaluate(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
