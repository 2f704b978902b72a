"""Driver of bench/similar_examples.sh: builds the inputs, pools and task variants, runs `assay label` on each,
prints one Markdown table."""
import csv, json, os, random, subprocess, sys, time

work, binary, home, sms_rows, banking_rows, k, threads = sys.argv[1:8]
sms_rows, banking_rows, k = int(sms_rows), int(banking_rows), int(k)
shared = os.path.join("..", "shared", "datasets", "classify")
rng = random.Random(12)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# SMS: the items are the repo's 500-row sample; the pool is 400 other rows of the collection.
sample = list(csv.DictReader(open("examples/sms-spam/sms-500.csv")))
taken = {int(r["id"]) for r in sample}
full = [l.rstrip("\n").split("\t", 1) for l in open(os.path.join(shared, "sms_spam", "SMSSpamCollection.tsv"))][1:]
others = [(i, lab, text) for i, (lab, text) in enumerate(full) if i not in taken]
rng.shuffle(others)
write_csv(f"{work}/sms-pool.csv", ["id", "label", "text"], others[:400])
write_csv(f"{work}/sms.csv", ["id", "label", "text"], [(r["id"], r["label"], r["text"]) for r in sample[:sms_rows]])
sms_task = open("examples/sms-spam/task.toml").read()
sms_task = sms_task[: sms_task.index("[review]")].replace('dataset = "sms-500.csv"', 'dataset = "sms.csv"')

# Banking77: the items are the repo's 1,000 test rows; the pool is 10 training rows per intent.
train = list(csv.DictReader(open(os.path.join(shared, "banking77", "train.csv"))))
rng.shuffle(train)
per, pool = {}, []
for r in train:
    if per.get(r["category"], 0) < 10:
        per[r["category"]] = per.get(r["category"], 0) + 1
        pool.append((r["text"], r["category"]))
write_csv(f"{work}/b77-pool.csv", ["text", "category"], pool)
test = list(csv.DictReader(open("examples/banking77/banking77-test-1000.csv")))
write_csv(f"{work}/b77.csv", ["text", "category"], [(r["text"], r["category"]) for r in test[:banking_rows]])
b77_task = open("examples/banking77/task.toml").read().replace(
    'dataset = "banking77-test-1000.csv"', 'dataset = "b77.csv"'
)


def variants(task, pool, label_column):
    base = "\n".join(l for l in task.splitlines() if not l.startswith("output ="))
    examples = f'\n[examples-from]\npath = "{pool}"\nlabel-column = "{label_column}"\nlimit = {k}\n'
    return [
        ("zero-shot", base),
        (f"first {k} rows", base + examples),
        (f"{k} nearest rows", base + examples + 'select = "similar"\n'),
    ]


def label(name, text):
    path = f"{work}/{name}.toml"
    open(path, "w").write(text.replace('dataset = "', f'output = "{work}/{name}.out.jsonl"\ndataset = "', 1))
    summary = f"{work}/{name}.json"
    store = f"{work}/{name}.db"
    start = time.time()
    subprocess.run(
        [binary, "--store", store, "--quiet", "label", path, "--threads", threads, "--summary-json", summary],
        check=True, env=dict(os.environ, ASSAY_HOME=home), stdout=subprocess.DEVNULL,
    )
    s = json.load(open(summary))
    s["wall"] = time.time() - start
    return s


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def scores(path, gold_column, held_out):
    """Accuracy and macro-F1 of the raw and the calibrated labels over the held-out rows of an output file."""
    rows = [json.loads(l) for l in open(path)]
    rows = [r for i, r in enumerate(rows) if i in held_out]
    gold = [r[gold_column] for r in rows]
    raw = [max(r["assay"].get("raw_distribution") or r["assay"]["distribution"], key=lambda k: (r["assay"].get("raw_distribution") or r["assay"]["distribution"])[k]) for r in rows]
    calibrated = [r["assay"]["label"] for r in rows]

    def figures(predicted):
        accuracy = sum(p == g for p, g in zip(predicted, gold)) / len(gold)
        f1s = []
        for c in sorted(set(gold)):
            tp = sum(p == c and g == c for p, g in zip(predicted, gold))
            fp = sum(p == c and g != c for p, g in zip(predicted, gold))
            fn = sum(p != c and g == c for p, g in zip(predicted, gold))
            f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
        return accuracy, sum(f1s) / len(f1s)

    return len(rows), figures(raw), figures(calibrated)


rows = []
for dataset, task, pool, column, n in [
    ("SMS spam", sms_task, f"{work}/sms-pool.csv", "label", sms_rows),
    ("Banking77", b77_task, f"{work}/b77-pool.csv", "category", banking_rows),
]:
    runs = []
    for i, (variant, text) in enumerate(variants(task, pool, column)):
        name = f"{dataset.split()[0].lower()}-{i}"
        runs.append((variant, name, label(name, text)))
    # The same rows for every variant: those no variant's fitted calibration learned from.
    fitted = set()
    for _, name, _ in runs:
        for i, l in enumerate(open(f"{work}/{name}.out.jsonl")):
            if json.loads(l)["assay"].get("calibration_fit"):
                fitted.add(i)
    held_out = set(range(n)) - fitted
    for variant, name, s in runs:
        count, (raw_acc, raw_f1), (cal_acc, cal_f1) = scores(f"{work}/{name}.out.jsonl", column, held_out)
        ips, tps = s.get("items_per_second"), s.get("tokens_per_second")
        choice = (s.get("calibration_choice") or s["calibration"]).split(" by ")[0].replace("auto chose ", "auto: ")
        rows.append(
            f"| {dataset} | {variant} | {count} | {pct(raw_acc)} | {raw_f1:.3f} | {pct(cal_acc)} | {cal_f1:.3f} | "
            f"{choice} | {ips or 0:.2f} | {(tps / ips) if ips and tps else 0:.0f} | {s['wall']:.0f} |"
        )
        print(rows[-1], file=sys.stderr, flush=True)

load = open("/proc/loadavg").read().split()[:3]
version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
print(f"{version}, SmolLM2-135M-Instruct Q4_1, {threads} threads, k = {k}, load average at the end {' '.join(load)}\n")
print("| dataset | examples | held-out rows | raw accuracy | raw macro-F1 | calibrated accuracy | calibrated macro-F1 | calibration | items/s | tokens evaluated per item | wall s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
