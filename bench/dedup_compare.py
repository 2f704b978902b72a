"""The Python side of bench/dedup_compare.sh.

  corpus WIKITEXT_DIR OUT_DIR DOCS DUPS   write OUT_DIR/corpus.jsonl and OUT_DIR/truth.jsonl
  datasketch CORPUS THRESHOLD OUT         datasketch MinHash + MinHashLSH; pairs as "a b" lines, timings as JSON
  score CORPUS TRUTH THRESHOLD NAME PAIRS precision and recall of one tool's pairs, as a JSON line
  textdedup_pairs OUTPUT_DIR PAIRS         the pairs within text-dedup's clusters (its uf.pkl, from --debug); run
                                           with text-dedup's own Python

Shingles everywhere: 5 words after lowercasing and splitting on anything that is not a letter or a digit, which
is the normalization assay uses, so every tool sees the same sets.
"""

import json
import random
import re
import sys
import time

WORD = re.compile(r"[^\W_]+")
NGRAM = 5


def words(text):
    return WORD.findall(text.lower())


def shingles(text, n=NGRAM):
    w = words(text)
    if len(w) < n:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a, b):
    if not a and not b:
        return 1.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def corpus(wikitext, out, docs, dups):
    rng = random.Random(13)
    sentences = []
    for name in ("test.txt", "valid.txt"):
        with open(f"{wikitext}/{name}", encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("="):
                    continue
                for sentence in line.split(" . "):
                    if len(sentence.split()) >= 4:
                        sentences.append(sentence.strip() + " .")
    rng.shuffle(sentences)
    vocabulary = sorted({w for s in sentences[:20000] for w in s.split() if w.isalpha()})
    bases = docs - dups
    texts = []
    for _ in range(bases):
        length = rng.randint(50, 300)
        doc = []
        while len(doc) < length:
            doc.extend(rng.choice(sentences).split())
        texts.append(doc[:length])
    truth = []
    for base in rng.sample(range(bases), dups):
        doc = list(texts[base])
        share = rng.uniform(0.002, 0.03)
        for position in rng.sample(range(len(doc)), max(1, round(share * len(doc)))):
            doc[position] = rng.choice(vocabulary)
        truth.append((base, len(texts)))
        texts.append(doc)
    order = list(range(len(texts)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    with open(f"{out}/corpus.jsonl", "w", encoding="utf-8") as f:
        for old in order:
            f.write(json.dumps({"text": " ".join(texts[old])}) + "\n")
    with open(f"{out}/truth.jsonl", "w", encoding="utf-8") as f:
        for a, b in truth:
            j = jaccard(shingles(" ".join(texts[a])), shingles(" ".join(texts[b])))
            a, b = sorted((position[a], position[b]))
            f.write(json.dumps({"a": a, "b": b, "jaccard": j}) + "\n")


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def run_datasketch(path, threshold, out):
    import datasketch
    from datasketch import MinHash, MinHashLSH

    started = time.perf_counter()
    texts = read_texts(path)
    read = time.perf_counter()
    signatures = []
    for text in texts:
        m = MinHash(num_perm=128)
        m.update_batch([s.encode("utf-8") for s in shingles(text)])
        signatures.append(m)
    signed = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    for i, m in enumerate(signatures):
        lsh.insert(i, m)
    pairs = set()
    for i, m in enumerate(signatures):
        for j in lsh.query(m):
            if j != i:
                pairs.add((min(i, j), max(i, j)))
    done = time.perf_counter()
    with open(out, "w") as f:
        for a, b in sorted(pairs):
            f.write(f"{a} {b}\n")
    print(
        json.dumps(
            {
                "version": datasketch.__version__,
                "bands_rows": list(lsh.b_r) if hasattr(lsh, "b_r") else [lsh.b, lsh.r],
                "read_s": read - started,
                "signatures_s": signed - read,
                "signature_docs_per_s": len(texts) / (signed - read),
                "lsh_s": done - signed,
            }
        )
    )


def textdedup_pairs(output, out):
    import pickle
    from collections import defaultdict

    with open(f"{output}/uf.pkl", "rb") as f:
        uf = pickle.load(f)
    clusters = defaultdict(list)
    for x in list(uf.parent):
        clusters[uf.find(x)].append(x)
    with open(out, "w") as f:
        for root, members in clusters.items():
            members = sorted(members)
            if len(members) > 50:
                # A huge cluster: its edges to the kept member only.
                for m in members:
                    if m != root:
                        f.write(f"{min(m, root)} {max(m, root)}\n")
                continue
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    f.write(f"{a} {b}\n")


def read_pairs(path):
    pairs = set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                row = json.loads(line)
                a, b = int(row["a"]), int(row["b"])
            else:
                a, b = map(int, line.split()[:2])
            pairs.add((min(a, b), max(a, b)))
    return pairs


def score(corpus_path, truth_path, threshold, name, pairs_path):
    texts = read_texts(corpus_path)
    with open(truth_path) as f:
        truth = [json.loads(line) for line in f]
    found = read_pairs(pairs_path)
    cache = {}

    def sets(i):
        if i not in cache:
            cache[i] = shingles(texts[i])
        return cache[i]

    correct = sum(1 for a, b in found if jaccard(sets(a), sets(b)) >= threshold)
    injected = {(t["a"], t["b"]) for t in truth}
    high = {(t["a"], t["b"]) for t in truth if t["jaccard"] >= threshold}
    print(
        json.dumps(
            {
                "tool": name,
                "pairs": len(found),
                "precision": correct / len(found) if found else None,
                "recall_all_injected": len(injected & found) / len(injected),
                "recall_high": len(high & found) / len(high) if high else None,
                "injected": len(injected),
                "injected_high": len(high),
            }
        )
    )


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "corpus":
        corpus(args[0], args[1], int(args[2]), int(args[3]))
    elif command == "datasketch":
        run_datasketch(args[0], float(args[1]), args[2])
    elif command == "textdedup_pairs":
        textdedup_pairs(args[0], args[1])
    elif command == "score":
        score(args[0], args[1], float(args[2]), args[3], args[4])
    else:
        sys.exit(f"unknown command {command}")
