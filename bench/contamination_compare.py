"""The Python side of bench/contamination_compare.sh.

  corpus WIKITEXT_DIR OUT_DIR DOCS ITEMS PLANTED   write corpus.jsonl, reference.jsonl, planted.json
  plain CORPUS REFERENCE NGRAM OUT                 a plain set-of-n-grams check: flagged row numbers to OUT,
                                                   timings as a JSON line
  score PLANTED FLAGGED NAME                       recall on the planted rows, as a JSON line

wikitext-2's sentences are split in two disjoint pools: the input documents (50-300 words) are made of one, the
reference items (20-100 words) of the other, so that the only 13-grams they share are (nearly all) the planted
passages: PLANTED input rows get a verbatim passage of 13-40 consecutive words (as normalized) of a random reference item.
"""

import json
import random
import re
import sys
import time

WORD = re.compile(r"[^\W_]+")


def words(text):
    return WORD.findall(text.lower())


def corpus(wikitext, out, docs, items, planted):
    rng = random.Random(17)
    sentences = []
    for name in ("test.txt", "valid.txt"):
        with open(f"{wikitext}/{name}", encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("="):
                    continue
                sentences.extend(s.strip() + " ." for s in line.split(" . ") if len(s.split()) >= 4)
    sentences = sorted(set(sentences))
    rng.shuffle(sentences)
    cut = len(sentences) * 4 // 5
    input_pool, reference_pool = sentences[:cut], sentences[cut:]

    def document(pool, low, high):
        length = rng.randint(low, high)
        doc = []
        while len(doc) < length:
            doc.extend(rng.choice(pool).split())
        return doc[:length]

    reference = [document(reference_pool, 20, 100) for _ in range(items)]
    texts = [document(input_pool, 50, 300) for _ in range(docs)]
    rows = rng.sample(range(docs), planted)
    for row in rows:
        # A passage of 13-40 words as the audits count them (wikitext's "," and "@-@" tokens are not words).
        while True:
            item = reference[rng.randrange(items)]
            want = rng.randint(13, 40)
            start = rng.randrange(len(item))
            end, counted = start, 0
            while end < len(item) and counted < want:
                counted += len(words(item[end]))
                end += 1
            if counted >= 13:
                break
        at = rng.randrange(len(texts[row]) + 1)
        texts[row] = texts[row][:at] + item[start:end] + texts[row][at:]
    with open(f"{out}/corpus.jsonl", "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": " ".join(t)}) + "\n")
    with open(f"{out}/reference.jsonl", "w", encoding="utf-8") as f:
        for i, t in enumerate(reference):
            f.write(json.dumps({"id": f"item{i}", "text": " ".join(t)}) + "\n")
    with open(f"{out}/planted.json", "w") as f:
        json.dump(sorted(rows), f)


def plain(corpus_path, reference_path, n, out):
    started = time.perf_counter()
    grams = set()
    with open(reference_path, encoding="utf-8") as f:
        for line in f:
            w = words(json.loads(line)["text"])
            grams.update(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    indexed = time.perf_counter()
    flagged = []
    rows = 0
    with open(corpus_path, encoding="utf-8") as f:
        for row, line in enumerate(f):
            w = words(json.loads(line)["text"])
            rows += 1
            if any(tuple(w[i : i + n]) in grams for i in range(len(w) - n + 1)):
                flagged.append(row)
    done = time.perf_counter()
    with open(out, "w") as f:
        json.dump(flagged, f)
    print(json.dumps({"index_s": indexed - started, "check_s": done - indexed, "us_per_doc": 1e6 * (done - indexed) / rows}))


def score(planted_path, flagged_path, name):
    with open(planted_path) as f:
        planted = set(json.load(f))
    with open(flagged_path) as f:
        text = f.read().strip()
    if text.startswith("["):
        flagged = set(json.loads(text))
    else:
        flagged = {int(json.loads(line)["id"]) for line in text.splitlines() if line}
    print(
        json.dumps(
            {
                "tool": name,
                "flagged": len(flagged),
                "recall_planted": len(planted & flagged) / len(planted),
                "flagged_not_planted": len(flagged - planted),
            }
        )
    )


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "corpus":
        corpus(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    elif command == "plain":
        plain(args[0], args[1], int(args[2]), args[3])
    elif command == "score":
        score(args[0], args[1], args[2])
    else:
        sys.exit(f"unknown command {command}")
