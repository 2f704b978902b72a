#!/usr/bin/env python3
"""Check that an `assay export --format dpo` file loads with Hugging Face `datasets` as TRL expects it.

Usage: python3 bench/check_dpo_export.py FILE.jsonl|FILE.parquet [EXPECTED_ROWS]

Loads the file with `datasets.load_dataset("json" | "parquet", data_files=FILE, split="train")`, checks that the
columns `prompt`, `chosen`, `rejected` are there as strings, that `score_chosen` is in [0.5, 1] and `margin` in
[0, 1], and (if given) the row count. Prints one line `ok ROWS rows: COLUMNS` or exits non-zero with the reason.
"""

import sys

import datasets

path = sys.argv[1]
builder = "parquet" if path.endswith(".parquet") else "json"
data = datasets.load_dataset(builder, data_files=path, split="train")
for column in ("prompt", "chosen", "rejected"):
    if column not in data.column_names:
        sys.exit(f"{path}: no `{column}` column (columns: {data.column_names})")
    feature = data.features[column]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        sys.exit(f"{path}: `{column}` is {feature}, not a string")
if len(sys.argv) > 2 and len(data) != int(sys.argv[2]):
    sys.exit(f"{path}: {len(data)} rows, expected {sys.argv[2]}")
for i, row in enumerate(data):
    if not (0.5 <= row["score_chosen"] <= 1.0 and 0.0 <= row["margin"] <= 1.0):
        sys.exit(f"{path}: row {i}: score_chosen {row['score_chosen']}, margin {row['margin']}")
    if row["chosen"] == row["rejected"] and row["chosen"]:
        sys.exit(f"{path}: row {i}: chosen equals rejected")
print(f"ok {len(data)} rows: {', '.join(data.column_names)}")
