#!/usr/bin/env python3
"""Convert PandaLM's test set (a JSON array) into the JSONL file this example labels.

Usage: python3 examples/pandalm/convert.py [SOURCE] [DEST]
Default SOURCE: ../shared/datasets/preference/pandalm/testset-v1.json (relative to the repository root).
Every field is kept as it is; only the container changes (one JSON object per line, in the file's order).
"""

import json
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
source = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "../../../shared/datasets/preference/pandalm/testset-v1.json"
dest = Path(sys.argv[2]) if len(sys.argv) > 2 else here / "pandalm-test.jsonl"
if not source.is_file():
    sys.exit(f"{source}: not found; pass the dataset's path as SOURCE (usage: see the top of {Path(__file__).name})")

rows = json.loads(source.read_text(encoding="utf-8"))
with dest.open("w", encoding="utf-8") as out:
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
print(f"{len(rows)} rows -> {dest}")
