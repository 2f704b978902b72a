//! Issue 12, learn from people on preference pairs: a compare task's probe trains on the difference of the
//! "context + response" embeddings of pairs people decided (gold rows of the fit split here), labels every pair
//! without position bias by construction, keeps the judge's preference beside its own, stores its labels so that
//! `assay export` turns them into DPO rows, and a rerun embeds and judges nothing again. The real bundled model
//! judges and embeds.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;

/// The first `n` PandaLM pairs whose responses are both non-empty (an empty one is a row error), with `gold` =
/// the three annotators' majority ("1", "2", or "0" for a tie).
fn pandalm_slice(dir: &std::path::Path, n: usize) -> (std::path::PathBuf, Vec<Value>) {
    let mut rows = Vec::new();
    let mut text = String::new();
    for line in std::fs::read_to_string(repo().join("examples/pandalm/pandalm-test.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            r["response1"] != "" && r["response2"] != ""
        })
        .take(n)
    {
        let mut row: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
        let votes: Vec<i64> = (1..=3)
            .map(|a| row[&format!("annotator{a}")].as_i64().unwrap())
            .collect();
        let gold = [1, 2, 0]
            .into_iter()
            .find(|v| votes.iter().filter(|x| *x == v).count() >= 2)
            .unwrap_or(0);
        row.insert("gold".into(), Value::String(gold.to_string()));
        text.push_str(&serde_json::to_string(&row).unwrap());
        text.push('\n');
        rows.push(Value::Object(row));
    }
    std::fs::write(dir.join("pairs.jsonl"), text).unwrap();
    let task = std::fs::read_to_string(repo().join("examples/pandalm/task.toml")).unwrap();
    let task = task[..task.find("[review]").unwrap()]
        .replace("dataset = \"pandalm-test.jsonl\"", "dataset = \"pairs.jsonl\"\ngold = \"gold\"")
        .replace(
            "output = \"../../out/pandalm.labeled.jsonl\"",
            "output = \"labeled.jsonl\"",
        )
        + "[calibration]\nfit-share = 0.6\n\n[probe]\nembedder = \"llm\"\nlabeler = \"probe\"\nmin-rows = 5\nfolds = 3\n";
    let path = dir.join("task.toml");
    std::fs::write(&path, task).unwrap();
    (path, rows)
}

#[test]
fn issue_12_pair_probe_learns_preferences_and_exports_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (task, input) = pandalm_slice(d, 20);
    let db = d.join("store.db");
    let run = |args: &[&str]| ok(assay().args(args).arg("--store").arg(&db).arg("--quiet"));
    let label = |name: &str| {
        let json = d.join(name);
        run(&[
            "label",
            task.to_str().unwrap(),
            "--threads",
            "2",
            "--summary-json",
            json.to_str().unwrap(),
        ]);
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (summary, read_jsonl(&d.join("labeled.jsonl")))
    };

    let (first, rows) = label("first.json");
    assert_eq!(rows.len(), 20);
    let probe = &first["probe"];
    assert_eq!(probe["labeler"], "probe", "{probe}");
    let trained = probe["train_rows"].as_u64().unwrap();
    assert!(trained >= 5, "{probe}");
    // Ties teach neither response: the training rows are gold pairs of the fit split with a winner.
    assert!(trained < 20, "{probe}");
    let texts: HashSet<String> = input
        .iter()
        .flat_map(|r| {
            let context = match r["input"].as_str() {
                Some(i) if !i.is_empty() => {
                    format!("{}\n\nInput: {i}", r["instruction"].as_str().unwrap())
                }
                _ => r["instruction"].as_str().unwrap().to_string(),
            };
            [1, 2].map(|k| {
                format!(
                    "{context}\n\n{}",
                    r[&format!("response{k}")].as_str().unwrap()
                )
            })
        })
        .collect();
    assert_eq!(
        sql_count(&db, "SELECT COUNT(*) FROM embeddings"),
        texts.len() as i64,
        "one vector per distinct context + response"
    );
    for row in &rows {
        let assay = &row["assay"];
        let soft = assay["preference"]["p_response_1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&soft), "{row}");
        assert_eq!(assay["labeler"], "probe");
        assert_eq!(assay["label"], assay["probe"]["label"]);
        assert_eq!(assay["preference"], assay["probe"]["preference"]);
        assert!(
            ["1", "2", "tie"].contains(&assay["label"].as_str().unwrap()),
            "{row}"
        );
        // No position bias by construction: both orders say the same.
        assert_eq!(assay["preference"]["position_consistent"], true, "{row}");
        // The judge's own preference stays beside the probe's.
        assert!(assay["llm"]["preference"]["p_response_1"].is_f64(), "{row}");
        assert!(assay["probe"]["provenance"]["annotator"]
            .as_str()
            .unwrap()
            .starts_with("probe:"));
    }
    assert_eq!(
        sql_count(
            &db,
            "SELECT COUNT(*) FROM annotations WHERE annotator LIKE 'probe:%'"
        ),
        20
    );

    // The DPO export takes the probe's preferences: chosen is the response the probe prefers.
    let dpo = d.join("dpo.jsonl");
    run(&[
        "export",
        "--format",
        "dpo",
        task.to_str().unwrap(),
        "--output",
        dpo.to_str().unwrap(),
        "--keep-ties",
    ]);
    let exported = read_jsonl(&dpo);
    assert!(!exported.is_empty());
    let by_prompt_chosen: HashSet<(String, String)> = rows
        .iter()
        .filter(|r| r["assay"]["label"] != "tie")
        .map(|r| {
            let k = if r["assay"]["label"] == "1" { 1 } else { 2 };
            (
                r["instruction"].as_str().unwrap().to_string(),
                r[&format!("response{k}")].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for e in &exported {
        if e["label_source"] == "human" {
            continue;
        }
        let prompt = e["prompt"].as_str().unwrap();
        let chosen = e["chosen"].as_str().unwrap().to_string();
        assert!(
            by_prompt_chosen
                .iter()
                .any(|(i, c)| prompt.contains(i.as_str()) && *c == chosen),
            "exported pair not the probe's choice: {e}"
        );
    }

    // A rerun pays for nothing and trains on the same pairs.
    let (second, _) = label("second.json");
    assert_eq!(second["scored_this_run"], 0);
    assert_eq!(second["probe"]["embedded_this_run"], 0);
    assert_eq!(second["probe"]["train_sha256"], probe["train_sha256"]);
}
