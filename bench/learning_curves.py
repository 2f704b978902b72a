"""The anchors of the learning-curve benchmark (issue 12) and its report.

    python bench/learning_curves.py anchors PLAN.json ST_MODEL_DIR CACHE_DIR THREADS OUT.json
    python bench/learning_curves.py report PLAN.json ANCHORS.json

`PLAN.json` is what `learning-curve` (crates/assay-bench/src/bin/learning-curve.rs) wrote: the items, the pool and
held-out rows, every pick and the probe's curves. `anchors` fits, on exactly the same picks and scored on exactly
the same held-out rows, what users would otherwise pick:

- scikit-learn `LogisticRegression(C=1)` on TF-IDF word 1-2-grams (the vectorizer fitted on the pool's texts, which
  are unlabeled data every method sees; for pairs, the difference of the two texts' vectors);
- scikit-learn `LogisticRegression(C=1)` on sentence-transformers all-MiniLM-L6-v2 vectors, as users would call it
  (raw normalised vectors) and with `StandardScaler` first (the probe's own recipe, so the row isolates the vectors).

It scores the random picks, the per-class picks, and the active picks chosen by assay's MiniLM probe. `report`
prints the Markdown tables for bench/RESULTS.md. Run by bench/learning_curves.sh.
"""
import hashlib
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

# Few picks of many classes make scikit-learn warn ("unique classes greater than 50% of the samples"); expected.
warnings.filterwarnings("ignore", category=UserWarning)


def macro_f1(pred, y, classes):
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, labels=list(range(classes)), average="macro", zero_division=0))


def fit_predict(make, x, y, test_x):
    """Fit `make()` on the picks and predict the held-out rows; one class picked: predict it."""
    y = np.asarray(y)
    if len(set(y.tolist())) == 1:
        return np.full(test_x.shape[0], y[0]), 0.0
    model = make()
    start = time.perf_counter()
    model.fit(x, y)
    seconds = time.perf_counter() - start
    return model.predict(test_x), seconds


def st_vectors(model, texts, cache_dir, tag):
    """sentence-transformers vectors of `texts`, cached by the texts' hash; the timing of a fresh encode."""
    digest = hashlib.sha256(("\n\x00".join(texts) + tag).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"st-{digest}.npy")
    if os.path.exists(path):
        vectors = np.load(path)
        sample = texts[:100]
        start = time.perf_counter()
        model.encode(sample, batch_size=32, normalize_embeddings=True)
        seconds = time.perf_counter() - start
        timing = {"texts": len(sample), "seconds": round(seconds, 2),
                  "measured_on": "100 texts re-encoded (the rest were cached)"}
    else:
        start = time.perf_counter()
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
        seconds = time.perf_counter() - start
        np.save(path, vectors)
        timing = {"texts": len(texts), "seconds": round(seconds, 2), "measured_on": "the texts encoded in this run"}
    timing["texts_per_s"] = round(timing["texts"] / timing["seconds"], 2)
    return vectors, timing


def anchors(plan_path, st_dir, cache_dir, threads, out_path):
    import torch

    torch.set_num_threads(threads)
    import scipy
    import sentence_transformers
    import sklearn
    from sentence_transformers import SentenceTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    plan = json.load(open(plan_path))
    st = SentenceTransformer(st_dir, device="cpu")
    out = {
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "sentence-transformers": sentence_transformers.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "st_max_seq_length": st.max_seq_length,
        "datasets": {},
    }
    learners = {
        "tfidf": lambda: LogisticRegression(C=1.0, max_iter=1000),
        "st": lambda: LogisticRegression(C=1.0, max_iter=1000),
        "st-std": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)),
    }
    for d in plan["datasets"]:
        items, classes = d["items"], len(d["classes"])
        pair = len(items[0]["texts"]) == 2
        texts = sorted({t for it in items for t in it["texts"]})
        index = {t: i for i, t in enumerate(texts)}
        print(f"{d['name']}: sentence-transformers on {len(texts)} texts", file=sys.stderr)
        vectors, timing = st_vectors(st, texts, cache_dir, os.path.basename(os.path.normpath(st_dir)))
        timing["items_per_s"] = round(timing["texts_per_s"] / (2 if pair else 1), 2)
        pool_texts = sorted({t for i in d["pool"] for t in items[i]["texts"]})
        tfidf = TfidfVectorizer(ngram_range=(1, 2)).fit(pool_texts)
        text_tfidf = tfidf.transform(texts)

        def rows(matrix, ids):
            if pair:
                a = matrix[[index[items[i]["texts"][0]] for i in ids]]
                b = matrix[[index[items[i]["texts"][1]] for i in ids]]
                return a - b
            return matrix[[index[items[i]["texts"][0]] for i in ids]]

        feats = {"tfidf": text_tfidf, "st": vectors, "st-std": vectors}
        all_ids = list(range(len(items)))
        x_all = {k: rows(m, all_ids) for k, m in feats.items()}
        x_all = {k: (m.tocsr() if hasattr(m, "tocsr") else m) for k, m in x_all.items()}
        y_all = np.array([it["label"] for it in items])
        test = np.array(d["test"])
        test_y = y_all[test]

        def score(name, picks):
            picks = np.array(picks)
            pred, seconds = fit_predict(learners[name], x_all[name][picks], y_all[picks], x_all[name][test])
            return float(np.mean(pred == test_y)), macro_f1(pred, test_y, classes), seconds

        curves = {}
        for name in learners:
            c = {"random": {}, "per_class": {}, "active-minilm": {}}
            for order in d["random_orders"]:
                for n in d["counts"]:
                    add(c["random"], n, score(name, order[:n]))
            for order in d["stratified_orders"]:
                for k in d["per_class_counts"]:
                    if k * classes <= len(order):
                        add(c["per_class"], k, score(name, order[: k * classes]))
            probe = d["embedders"]["all-minilm-l6-v2"]
            for order in probe["active_orders"]:
                for n in sorted(int(k) for k in probe["active"]):
                    add(c["active-minilm"], n, score(name, order[:n]))
            curves[name] = c
            print(f"  {name} done", file=sys.stderr)
        out["datasets"][d["name"]] = {"throughput": timing, "curves": curves}
    json.dump(out, open(out_path, "w"))


def add(curve, n, figures):
    p = curve.setdefault(str(n), {"accuracy": [], "macro_f1": [], "fit_seconds": []})
    p["accuracy"].append(figures[0])
    p["macro_f1"].append(figures[1])
    p["fit_seconds"].append(figures[2])


def mean(v):
    return sum(v) / len(v) if v else float("nan")


# The LLM's zero-shot calibrated figures, from the real `assay label` runs recorded earlier in bench/RESULTS.md (not
# re-run here, and on other held-out rows: see the note under each table).
LLM = {
    "sms": ("SmolLM2-135M zero-shot, calibrated (`assay label`, 332 other held-out rows)", 0.864, 0.464),
    "sms-small": ("SmolLM2-135M zero-shot, calibrated (`assay label`, 332 other held-out rows)", 0.864, 0.464),
    "banking77": ("SmolLM2-135M zero-shot, calibrated (`assay label`, 682 other held-out rows)", 0.245, 0.204),
    "pandalm": ("SmolLM2-135M judge, both orders (`assay label`, all 894 non-tie pairs; alignment)", 0.414, None),
}


def report(plan_path, anchors_path):
    plan = json.load(open(plan_path))
    anc = json.load(open(anchors_path))
    names = {"all-minilm-l6-v2": "assay MiniLM (GGUF)", "smollm2-135m-mean": "assay SmolLM2-135M mean"}
    anchor_names = {
        "tfidf": "TF-IDF 1-2-grams + sklearn LR",
        "st": "sentence-transformers MiniLM + sklearn LR",
        "st-std": "sentence-transformers MiniLM + StandardScaler + sklearn LR",
    }
    for d in plan["datasets"]:
        name, classes = d["name"], len(d["classes"])
        a = anc["datasets"][name]
        print(f"### {d['title']}")
        print()
        print(f"Mean of {d['seeds']} seeds; each cell: accuracy / macro-F1 on the {len(d['test'])} held-out "
              f"{'pairs' if name == 'pandalm' else 'rows'}.")
        print()
        cols = [("random", n) for n in d["counts"]]
        cols += [("per_class", k) for k in d["per_class_counts"]]
        head = [f"{n}" for _, n in cols[: len(d["counts"])]] + [f"{k}/class ({k * classes})" for k in d["per_class_counts"]]
        print("| labels | picks | " + " | ".join(head) + " |")
        print("|---|---|" + "---:|" * len(head))

        def cell(p):
            if p is None:
                return ""
            return f"{100 * mean(p['accuracy']):.1f}% / {mean(p['macro_f1']):.3f}"

        def row(label, picks, curve, per_class=None):
            cells = []
            for kind, n in cols:
                src = curve if kind == "random" else (per_class or {})
                cells.append(cell(src.get(str(n))))
            print(f"| {label} | {picks} | " + " | ".join(cells) + " |")

        llm = LLM.get(name)
        if llm:
            f1 = f" / {llm[2]:.3f}" if llm[2] is not None else ""
            print(f"| {llm[0]} | none | {100 * llm[1]:.1f}%{f1} (any count) |" + " |" * (len(head) - 1))
        for e, v in d["embedders"].items():
            row(f"probe on {names[e]}", "random", v["random"], v.get("per_class"))
            row(f"probe on {names[e]}", f"active (from {v['active_start']})", v["active"])
        for k, label in anchor_names.items():
            c = a["curves"][k]
            row(label, "random", c["random"], c["per_class"])
        for k, label in anchor_names.items():
            row(label, "assay MiniLM's active picks", a["curves"][k]["active-minilm"])
        print()
        # Throughput and training cost.
        print("| embedder | texts/s | items (labels) /s | tokens/s | fit at 500 labels, s | measured on |")
        print("|---|---:|---:|---:|---:|---|")
        for e, v in d["embedders"].items():
            t = v["throughput"]
            fit = v["random"].get("500", {}).get("fit_seconds")
            print(f"| {names[e]} | {t['texts_per_s']} | {t['items_per_s']} | {t['tokens_per_s']} | "
                  f"{mean(fit):.3f} | {t['measured_on']}, {t['texts']} texts |" if fit else
                  f"| {names[e]} | {t['texts_per_s']} | {t['items_per_s']} | {t['tokens_per_s']} | - | "
                  f"{t['measured_on']}, {t['texts']} texts |")
        t = a["throughput"]
        for k, label in anchor_names.items():
            fit = a["curves"][k]["random"].get("500", {}).get("fit_seconds")
            speed = f"{t['texts_per_s']} | {t['items_per_s']} | -" if k != "tfidf" else "- | - | -"
            where = f"{t['measured_on']}, {t['texts']} texts" if k != "tfidf" else "TF-IDF: vectorising is negligible"
            print(f"| {label} | {speed} | {mean(fit):.3f} | {where} |" if fit else f"| {label} | {speed} | - | {where} |")
        print()
        goals(d, a, classes)
        print()


def goals(d, a, classes):
    """The issue's goals, stated as reached or not."""
    name = d["name"]
    probe = d["embedders"]["all-minilm-l6-v2"]
    lines = []
    acc = lambda p: mean(p["accuracy"])  # noqa: E731
    f1 = lambda p: mean(p["macro_f1"])  # noqa: E731
    if name.startswith("sms"):
        for e, v in d["embedders"].items():
            for kind in ("random", "active"):
                best = [n for n in sorted(int(k) for k in v[kind]) if n <= 100 and f1(v[kind][str(n)]) >= 0.95]
                lines.append(f"macro-F1 >= 0.95 with <= 100 labels, {e} {kind}: "
                             + (f"reached at {best[0]}" if best else
                                f"not reached (at 100: {f1(v[kind]['100']):.3f})" if "100" in v[kind] else "n/a"))
    if name == "banking77":
        p = probe.get("per_class", {}).get("10")
        if p:
            lines.append(f"accuracy >= 75% with 10 per class: {'reached' if acc(p) >= 0.75 else 'not reached'} "
                         f"({100 * acc(p):.1f}%)")
        p = probe["active"].get(str(10 * classes))
        if p:
            lines.append(f"  active picks at {10 * classes} labels: {100 * acc(p):.1f}%")
    # Active reaches random's accuracy with <= 60% of the labels.
    for e, v in d["embedders"].items():
        for n in sorted(int(k) for k in v["random"]):
            target = acc(v["random"][str(n)])
            hit = [m for m in sorted(int(k) for k in v["active"]) if acc(v["active"][str(m)]) >= target]
            if n >= 50:
                lines.append(f"{e}: random picks' accuracy at {n} ({100 * target:.1f}%) reached by active picks at "
                             + (f"{hit[0]} labels ({100 * hit[0] / n:.0f}%)" if hit else "no checkpoint"))
    # At least both anchors' accuracy at equal counts (random picks).
    v = probe["random"]
    for k in ("tfidf", "st"):
        c = a["curves"][k]["random"]
        worse = [n for n in v if n in c and acc(v[n]) < acc(c[n])]
        lines.append(f"probe (MiniLM, random) >= {k} accuracy at every count: "
                     + ("yes" if not worse else f"no, below at {', '.join(sorted(worse, key=int))}"))
    for line in lines:
        print(f"- {line}")


if __name__ == "__main__":
    if sys.argv[1] == "anchors":
        anchors(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    elif sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
