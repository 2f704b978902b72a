#!/usr/bin/env python3
"""Turn Anthropic HH-RLHF harmless-base test pairs into compare rows: the shared dialogue and two final replies.

Usage: python3 examples/hh-harmless/convert.py [SOURCE] [DEST] [PAIRS]
Default SOURCE: ../shared/datasets/preference/hh_rlhf_harmless/harmless-base-test.jsonl.gz; PAIRS 500.

Each source line has `chosen` and `rejected`: the same dialogue ending in two different last assistant turns.
The dialogue up to the last "\n\nAssistant:" becomes `prompt`; the two last turns become `response1` and
`response2`, shown in an order drawn with a fixed seed so that the human-preferred reply is not always first.
`preferred` is 1 or 2: which of them the human chose. Pairs whose dialogues differ before the last assistant turn,
or whose two replies are identical, are skipped and counted.
"""

import gzip
import json
import random
import sys
from pathlib import Path

SEED = 20230901
MARK = "\n\nAssistant:"

here = Path(__file__).resolve().parent
source = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "../../../shared/datasets/preference/hh_rlhf_harmless/harmless-base-test.jsonl.gz"
dest = Path(sys.argv[2]) if len(sys.argv) > 2 else here / "hh-harmless-500.jsonl"
want = int(sys.argv[3]) if len(sys.argv) > 3 else 500
if not source.is_file():
    sys.exit(f"{source}: not found; pass the dataset's path as SOURCE (usage: see the top of {Path(__file__).name})")

rng = random.Random(SEED)
kept, skipped = 0, {"different dialogue": 0, "identical replies": 0}
with gzip.open(source, "rt", encoding="utf-8") as lines, dest.open("w", encoding="utf-8") as out:
    for number, line in enumerate(lines):
        if kept == want:
            break
        pair = json.loads(line)
        cut_c = pair["chosen"].rfind(MARK)
        cut_r = pair["rejected"].rfind(MARK)
        prompt = pair["chosen"][:cut_c]
        if cut_c < 0 or cut_c != cut_r or pair["rejected"][:cut_r] != prompt:
            skipped["different dialogue"] += 1
            continue
        chosen = pair["chosen"][cut_c + len(MARK):].strip()
        rejected = pair["rejected"][cut_r + len(MARK):].strip()
        if chosen == rejected:
            skipped["identical replies"] += 1
            continue
        chosen_first = rng.random() < 0.5
        row = {
            "source_line": number + 1,
            "prompt": prompt.strip(),
            "response1": chosen if chosen_first else rejected,
            "response2": rejected if chosen_first else chosen,
            "preferred": 1 if chosen_first else 2,
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        kept += 1
print(f"{kept} pairs -> {dest}; skipped: {skipped}")
