//! AI feedback end to end with the real SmolLM2 model: `compare` tasks, `assay export`, `assay eval`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

const TASK: &str = r#"
name = "pref-test"
type = "compare"
guidelines = "The better response answers the question correctly and politely."

[compare]
context = "{{ question }}"
response-1 = "{{ a }}"
response-2 = "{{ b }}"
"#;

/// Two pairs, each also present with its responses swapped; `human` columns in PandaLM's codes.
fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let rows = [
        json!({"question": "What is the capital of France?", "a": "Paris.", "b": "I don't care, look it up.", "h1": 1, "h2": 1}),
        json!({"question": "What is the capital of France?", "a": "I don't care, look it up.", "b": "Paris.", "h1": 2, "h2": 2}),
        json!({"question": "How many legs does a spider have?", "a": "Eight.", "b": "Six.", "h1": 1, "h2": 0}),
        json!({"question": "How many legs does a spider have?", "a": "Six.", "b": "Eight.", "h1": 2, "h2": "tie"}),
    ];
    let data = dir.join("pairs.jsonl");
    std::fs::write(
        &data,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let task = dir.join("task.toml");
    std::fs::write(&task, format!("{TASK}\n")).unwrap();
    (task, data)
}

fn run_label(dir: &Path) -> (PathBuf, PathBuf, Vec<Value>) {
    let (task, data) = fixture(dir);
    let (db, rows) = label_pairs(dir, &task, &data);
    (task, db, rows)
}

/// `assay label TASK --input DATA` into a store and output under `dir`; returns the store and the output rows.
fn label_pairs(dir: &Path, task: &Path, data: &Path) -> (PathBuf, Vec<Value>) {
    let db = dir.join("store.db");
    let out = dir.join("labeled.jsonl");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--threads", "2", "--quiet"])
        .arg("--input")
        .arg(data)
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(&db));
    (db, read_jsonl(&out))
}

fn f(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing in {v}"))
}

/// Issue 3: swapping the two responses in the input row gives the complementary debiased judgment, because the
/// same two prompts are evaluated (order AB of one row is order BA of the other). Then export and eval read the
/// same judgments from the store.
#[test]
fn issue_3_swapped_responses_give_complementary_judgments_and_export_and_eval_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (task, db, rows) = run_label(dir.path());
    assert_eq!(rows.len(), 4);
    for pair in rows.chunks(2) {
        let (x, y) = (&pair[0], &pair[1]);
        let sx = f(x, "/assay/preference/p_response_1");
        let sy = f(y, "/assay/preference/p_response_1");
        assert!((sx + sy - 1.0).abs() < 1e-9, "{sx} + {sy}");
        assert!((f(x, "/assay/preference/p_ab") - f(y, "/assay/preference/p_ba")).abs() < 1e-9);
        assert!((f(x, "/assay/preference/p_ba") - f(y, "/assay/preference/p_ab")).abs() < 1e-9);
        assert!((f(x, "/assay/distribution/1") - sx).abs() < 1e-12);
        let mirrored = match x["assay"]["label"].as_str().unwrap() {
            "1" => "2",
            "2" => "1",
            other => other,
        };
        assert_eq!(y["assay"]["label"], mirrored, "{x}\n{y}");
        assert_eq!(
            x["assay"]["preference"]["position_consistent"],
            y["assay"]["preference"]["position_consistent"]
        );
        assert_eq!(
            x["assay"]["provenance"]["calibration"],
            "none (both orders averaged)"
        );
    }

    // DPO export, everything kept: chosen is the side the judge preferred, prompt is the context.
    let all = dir.path().join("all.dpo.jsonl");
    ok(assay()
        .args(["export", "--format", "dpo", task.to_str().unwrap()])
        .args(["--keep-ties", "--keep-inconsistent"])
        .arg("--output")
        .arg(&all)
        .arg("--store")
        .arg(&db));
    let exported = read_jsonl(&all);
    assert_eq!(exported.len(), 4);
    for (row, labeled) in exported.iter().zip(&rows) {
        let soft = f(labeled, "/assay/preference/p_response_1");
        let (chosen, rejected) = if soft >= 0.5 { ("a", "b") } else { ("b", "a") };
        assert_eq!(row["prompt"], labeled["question"]);
        assert_eq!(row["chosen"], labeled[chosen]);
        assert_eq!(row["rejected"], labeled[rejected]);
        assert!((f(row, "/score_chosen") - soft.max(1.0 - soft)).abs() < 1e-12);
        assert!((f(row, "/margin") - (2.0 * soft - 1.0).abs()).abs() < 1e-12);
        assert_eq!(row["judge"], "smollm2-135m-instruct");
        assert_eq!(row["provenance"]["task"], "pref-test");
    }
    // By default ties and position-inconsistent pairs are left out.
    let kept = rows
        .iter()
        .filter(|r| {
            r["assay"]["label"] != "tie" && r["assay"]["preference"]["position_consistent"] == true
        })
        .count();
    let default = dir.path().join("default.dpo.parquet");
    ok(assay()
        .args(["export", "--format", "dpo", task.to_str().unwrap()])
        .arg("--output")
        .arg(&default)
        .arg("--store")
        .arg(&db));
    let parquet_rows = parquet_row_count(&default);
    assert_eq!(parquet_rows, kept);
    check_with_python_datasets(&all, 4);
    let all_parquet = dir.path().join("all.dpo.parquet");
    ok(assay()
        .args(["export", "--format", "dpo", task.to_str().unwrap()])
        .args(["--keep-ties", "--keep-inconsistent", "--output"])
        .arg(&all_parquet)
        .arg("--store")
        .arg(&db));
    assert_eq!(parquet_row_count(&all_parquet), 4);
    check_with_python_datasets(&all_parquet, 4);
    if kept > 0 {
        check_with_python_datasets(&default, kept);
    }

    // Reward export keeps the pair's own order with the soft label.
    let reward = dir.path().join("reward.jsonl");
    ok(assay()
        .args(["export", "--format", "reward", task.to_str().unwrap()])
        .args(["--keep-ties", "--keep-inconsistent", "--output"])
        .arg(&reward)
        .arg("--store")
        .arg(&db));
    for (row, labeled) in read_jsonl(&reward).iter().zip(&rows) {
        assert_eq!(row["response_1"], labeled["a"]);
        assert_eq!(
            f(row, "/p_response_1"),
            f(labeled, "/assay/preference/p_response_1")
        );
    }

    // Eval: the figures follow from the labeled output and the human columns.
    let figures = dir.path().join("eval.json");
    let printed = ok(assay()
        .args(["eval", task.to_str().unwrap(), "--human", "h1,h2", "--json"])
        .arg(&figures)
        .arg("--store")
        .arg(&db));
    assert!(printed.contains("both orders (debiased)"), "{printed}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&figures).unwrap()).unwrap();
    assert_eq!(report["pairs"], 4);
    // Majorities: pairs 0 and 1 (1 and 2); pairs 2 and 3 are split 1/tie: no majority.
    assert_eq!(report["both_orders"]["majority_pairs"], 2);
    let aligned = rows[..2]
        .iter()
        .zip(["a", "b"])
        .filter(|(r, human)| {
            let soft = f(r, "/assay/preference/p_response_1");
            (soft > 0.5 && *human == "a") || (soft < 0.5 && *human == "b")
        })
        .count();
    assert_eq!(
        f(&report, "/both_orders/alignment"),
        aligned as f64 / 2.0,
        "{report}"
    );
    let flips = rows
        .iter()
        .filter(|r| {
            let ab = f(r, "/assay/preference/p_ab");
            let ba = f(r, "/assay/preference/p_ba");
            (ab > 0.5) == (ba > 0.5) && ab != 0.5 && ba != 0.5
        })
        .count();
    assert_eq!(f(&report, "/position_flip_rate"), flips as f64 / 4.0);
    // h1 and h2 agree on pairs 0 and 1 only.
    assert_eq!(report["human_kappas"].as_array().unwrap().len(), 1);
}

#[test]
fn export_without_labels_says_to_label_first() {
    let dir = tempfile::tempdir().unwrap();
    let (task, _) = fixture(dir.path());
    let out = bare_assay(dir.path())
        .args(["export", "--format", "dpo", task.to_str().unwrap()])
        .arg("--store")
        .arg(dir.path().join("empty.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no labels"), "{stderr}");
    assert!(stderr.contains("hint: run `assay label"), "{stderr}");
}

fn parquet_row_count(path: &Path) -> usize {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let meta = reader.metadata();
    let names: Vec<String> = meta
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let rows = meta.file_metadata().num_rows() as usize;
    // A file without rows has no columns to infer (a known limit of the writer).
    if rows > 0 {
        assert_eq!(&names[..3], ["prompt", "chosen", "rejected"], "{names:?}");
    }
    rows
}

/// Load the export with Hugging Face `datasets` (bench/check_dpo_export.py) where Python has it; else say so.
fn check_with_python_datasets(path: &Path, rows: usize) {
    let has_datasets = Command::new("python3")
        .args(["-c", "import datasets"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_datasets {
        eprintln!(
            "skipped: python3 cannot import `datasets` (pip install datasets); {} not checked with it",
            path.display()
        );
        return;
    }
    let out = Command::new("python3")
        .arg(repo().join("bench/check_dpo_export.py"))
        .arg(path)
        .arg(rows.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("ok {rows} rows")));
}

/// A `rate` task reads the model's distribution over the scores 1..=10 ("10" may be two tokens); the output keeps
/// it with the expected score and its [-1, 1] normalisation, and the label is the most likely score.
#[test]
fn rate_task_keeps_the_score_distribution_and_expected_score() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("rate.toml");
    std::fs::write(
        &task,
        "name = \"rate-test\"\ntype = \"rate\"\nguidelines = \"A good answer is correct.\"\n\n[rate]\ncontext = \"{{ question }}\"\nresponse = \"{{ a }}\"\n",
    )
    .unwrap();
    let data = dir.path().join("rate.jsonl");
    std::fs::write(
        &data,
        "{\"question\": \"What is the capital of France?\", \"a\": \"Paris.\"}\n{\"question\": \"How many legs does a spider have?\", \"a\": \"Six.\"}\n",
    )
    .unwrap();
    let out = dir.path().join("rated.jsonl");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--threads", "2", "--quiet"])
        .arg("--input")
        .arg(&data)
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(dir.path().join("store.db")));
    let rows = read_jsonl(&out);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let rating = &row["assay"]["rating"];
        let dist = rating["distribution"].as_object().unwrap();
        assert_eq!(dist.len(), 10, "{rating}");
        let total: f64 = dist.values().map(|p| p.as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let expected: f64 = dist
            .iter()
            .map(|(s, p)| s.parse::<f64>().unwrap() * p.as_f64().unwrap())
            .sum();
        assert!((f(row, "/assay/rating/expected") - expected).abs() < 1e-9);
        assert!(
            (f(row, "/assay/rating/normalised") - ((expected - 1.0) / 9.0 * 2.0 - 1.0)).abs()
                < 1e-9
        );
        let best = dist
            .iter()
            .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
            .unwrap()
            .0;
        assert_eq!(row["assay"]["label"], best.as_str(), "{rating}");
        assert!(dist["10"].as_f64().unwrap() > 0.0);
    }
}

/// Chain of thought: each order gets its own greedy rationale, stored with the annotation and in the output, and
/// `assay eval` reads the CoT task's judgments like any other.
#[test]
fn compare_chain_of_thought_stores_a_rationale_for_both_orders() {
    let dir = tempfile::tempdir().unwrap();
    let (_, data) = fixture(dir.path());
    let task = dir.path().join("cot.toml");
    std::fs::write(
        &task,
        format!(
            "{}chain-of-thought = true\nrationale-tokens = 16\n",
            TASK.replace("pref-test", "pref-cot")
        ),
    )
    .unwrap();
    let db = dir.path().join("store.db");
    let out = dir.path().join("cot.jsonl");
    ok(assay()
        .args([
            "label",
            task.to_str().unwrap(),
            "--threads",
            "1",
            "--quiet",
            "--limit",
            "1",
        ])
        .arg("--input")
        .arg(&data)
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(&db));
    let rows = read_jsonl(&out);
    let preference = &rows[0]["assay"]["preference"];
    for order in ["ab", "ba"] {
        let rationale = preference["rationales"][order].as_str().unwrap_or_default();
        assert!(!rationale.trim().is_empty(), "{preference}");
    }
    let soft = f(&rows[0], "/assay/preference/p_response_1");
    assert!((0.0..=1.0).contains(&soft));
    let stored = sql_count(
        &db,
        "SELECT count(*) FROM annotations WHERE json_extract(scores, '$.rationales[1]') <> ''",
    );
    assert_eq!(stored, 1);
    let printed = ok(assay()
        .args(["eval", task.to_str().unwrap(), "--human", "h1,h2"])
        .arg("--store")
        .arg(&db));
    assert!(printed.contains("both orders (debiased)"), "{printed}");
}

/// A rate task with `response-2` rates both responses on their own and derives the pair's preference from the two
/// distributions: swapping the responses swaps the ratings and complements the preference exactly, and export and
/// eval treat the task as pairs.
#[test]
fn rated_pairs_derive_complementary_preferences_and_export_as_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let (_, data) = fixture(dir.path());
    let task = dir.path().join("rate.toml");
    std::fs::write(
        &task,
        r#"
name = "rate-pairs-test"
type = "rate"
guidelines = "A good response answers the question correctly and politely."

[rate]
context = "{{ question }}"
response = "{{ a }}"
response-2 = "{{ b }}"
"#,
    )
    .unwrap();
    let (db, rows) = label_pairs(dir.path(), &task, &data);
    assert_eq!(rows.len(), 4);
    for pair in rows.chunks(2) {
        let (x, y) = (&pair[0], &pair[1]);
        let sx = f(x, "/assay/preference/p_response_1");
        let sy = f(y, "/assay/preference/p_response_1");
        assert!((sx + sy - 1.0).abs() < 1e-9, "{sx} + {sy}");
        // The same response gets the same rating wherever it stands.
        let e = |v: &Value, which: &str| f(v, &format!("/assay/rating/{which}/expected"));
        assert!((e(x, "response_1") - e(y, "response_2")).abs() < 1e-9);
        assert!((e(x, "response_2") - e(y, "response_1")).abs() < 1e-9);
        assert!(["1", "2", "tie"].contains(&x["assay"]["label"].as_str().unwrap()));
        assert_eq!(
            x["assay"]["preference"]["position_consistent"],
            json!(sx != 0.5)
        );
    }
    let dpo = dir.path().join("rate.dpo.jsonl");
    ok(assay()
        .args([
            "export",
            "--format",
            "dpo",
            task.to_str().unwrap(),
            "--keep-ties",
        ])
        .arg("--output")
        .arg(&dpo)
        .arg("--store")
        .arg(&db));
    let exported = read_jsonl(&dpo);
    assert_eq!(exported.len(), 4);
    for (row, labeled) in exported.iter().zip(&rows) {
        let soft = f(labeled, "/assay/preference/p_response_1");
        let chosen = if soft >= 0.5 { "a" } else { "b" };
        assert_eq!(row["chosen"], labeled[chosen]);
        assert_eq!(row["prompt"], labeled["question"]);
    }
    let eval = ok(assay()
        .args(["eval", task.to_str().unwrap(), "--human", "h1,h2"])
        .arg("--store")
        .arg(&db));
    assert!(eval.contains("rated separately"), "{eval}");
}
