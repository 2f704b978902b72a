//! Issue 12 §3, nearest-neighbour few-shot examples: `examples-from select = "similar"` shows each item the rows
//! of the examples file nearest to it by embedding (never the item itself), records which rows in the label's
//! output, stores the vectors so a rerun embeds and scores nothing, and is a task version of its own. The real
//! bundled model labels and embeds.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use serde_json::Value;

fn summary(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn issue_12_similar_examples_are_the_items_neighbours_stored_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The pool is the first 60 rows of the sample (11 spam); the 24 labeled rows are among them, so an item
    // would find itself first if it were not excluded.
    let pool: Vec<csv::StringRecord> =
        csv::Reader::from_path(repo().join("examples/sms-spam/sms-500.csv"))
            .unwrap()
            .records()
            .take(60)
            .map(Result::unwrap)
            .collect();
    let mut writer = csv::Writer::from_path(d.join("pool.csv")).unwrap();
    writer.write_record(["id", "label", "text"]).unwrap();
    for r in &pool {
        writer.write_record(r).unwrap();
    }
    writer.flush().unwrap();
    let task = sms_slice_task(
        d,
        24,
        "[examples-from]\npath = \"pool.csv\"\nlabel-column = \"label\"\nlimit = 3\nselect = \"similar\"\n",
    );
    let db = d.join("store.db");
    let run = |args: &[&str]| ok(assay().args(args).arg("--store").arg(&db).arg("--quiet"));
    let label = |task: &std::path::Path, name: &str| {
        let json = d.join(name);
        run(&[
            "label",
            task.to_str().unwrap(),
            "--threads",
            "2",
            "--summary-json",
            json.to_str().unwrap(),
        ]);
        (summary(&json), read_jsonl(&d.join("labeled.jsonl")))
    };

    let (first, rows) = label(&task, "first.json");
    assert_eq!(rows.len(), 24);
    assert_eq!(first["scored_this_run"], 24);
    let mut chosen = HashSet::new();
    // Spam share of the examples shown to spam items and to ham items.
    let mut shown: HashMap<bool, (usize, usize)> = HashMap::new();
    for row in &rows {
        let examples: Vec<usize> = row["assay"]["examples"]
            .as_array()
            .unwrap_or_else(|| panic!("no examples recorded: {row}"))
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(examples.len(), 3, "{row}");
        assert_eq!(examples.iter().collect::<HashSet<_>>().len(), 3, "{row}");
        let text = row["text"].as_str().unwrap();
        for &e in &examples {
            assert!(e < pool.len(), "{row}");
            assert_ne!(&pool[e][2], text, "an item is never its own example: {row}");
            chosen.insert(e);
        }
        let entry = shown.entry(row["label"] == "spam").or_default();
        entry.0 += examples.iter().filter(|&&e| &pool[e][1] == "spam").count();
        entry.1 += examples.len();
    }
    // The examples depend on the item: fixed examples would be the same three rows for all.
    assert!(
        chosen.len() >= 12,
        "only {} distinct rows chosen",
        chosen.len()
    );
    // Spam messages look alike (prizes, numbers, "call now"): their neighbours are spam far more often.
    let share = |spam: bool| {
        let (s, n) = shown[&spam];
        s as f64 / n as f64
    };
    assert!(
        share(true) > share(false) + 0.2,
        "spam share among the examples of spam items {:.2}, of ham items {:.2}",
        share(true),
        share(false)
    );
    // Every pool text and every item text embedded once (the items are pool rows).
    let distinct: HashSet<&str> = pool.iter().map(|r| &r[2]).collect();
    let embedded = sql_count(&db, "SELECT COUNT(*) FROM embeddings");
    assert_eq!(embedded, distinct.len() as i64);

    // A rerun pays for nothing: no scoring, no embedding, the same examples.
    let (second, again) = label(&task, "second.json");
    assert_eq!(second["scored_this_run"], 0);
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM embeddings"), embedded);
    for (a, b) in rows.iter().zip(&again) {
        assert_eq!(a["assay"]["examples"], b["assay"]["examples"]);
        assert_eq!(a["assay"]["distribution"], b["assay"]["distribution"]);
    }

    // The first three rows for everyone is another task version: labeled anew, without per-item examples.
    let fixed = d.join("fixed.toml");
    std::fs::write(
        &fixed,
        std::fs::read_to_string(&task)
            .unwrap()
            .replace("select = \"similar\"", "select = \"first\""),
    )
    .unwrap();
    let (third, fixed_rows) = label(&fixed, "third.json");
    assert_eq!(third["scored_this_run"], 24);
    assert!(fixed_rows
        .iter()
        .all(|r| r["assay"].get("examples").is_none()));
    assert_eq!(
        sql_count(&db, "SELECT COUNT(DISTINCT task_id) FROM annotations"),
        2
    );
}

#[test]
fn issue_12_similar_examples_need_a_known_embedder_and_the_failed_run_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(
        repo().join("examples/sms-spam/sms-500.csv"),
        d.join("pool.csv"),
    )
    .unwrap();
    let task = sms_slice_task(
        d,
        4,
        "[examples-from]\npath = \"pool.csv\"\nlabel-column = \"label\"\nselect = \"similar\"\nembedder = \"no-such-model\"\n",
    );
    let out = assay()
        .args(["label", task.to_str().unwrap(), "--quiet", "--store"])
        .arg(d.join("store.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`no-such-model`") && stderr.contains("assay model fetch no-such-model"),
        "{stderr}"
    );
    // The run is kept as failed, and `assay runs` says why.
    let runs = ok(assay().args(["runs", "--store"]).arg(d.join("store.db")));
    assert!(runs.contains("failed"), "{runs}");
    assert!(
        runs.lines()
            .any(|l| l.contains("failed:") && l.contains("`no-such-model`")),
        "{runs}"
    );
}
