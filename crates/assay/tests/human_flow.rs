//! Issue 4, results flow back: people's answers (annotations of kind `human` on the task version, as
//! `assay serve` writes them) reach `assay label`'s output and `assay export`, and the final label is the
//! people's plurality where there is one, else the machine's, with the source named. The first test goes the
//! whole way: the real model labels, a project routes its least confident rows, a person answers through the
//! running server, and the next `assay label` and `assay export` carry the answers.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// File two people's answers for some rows of the only task in the store, under a review run.
fn file_answers(db: &Path, answers: &[(u64, &str, &str)]) {
    let mut sql = vec![
        "INSERT INTO runs (id, task_id, dataset_id, annotator, model_sha256, prompt_hash, started_at, status)
         SELECT 'review-run', t.id, d.id, 'review', '', '', '2026-11-21T00:00:00Z', 'running'
         FROM tasks t, datasets d"
            .to_string(),
    ];
    for (row, who, value) in answers {
        sql.push(format!(
            "INSERT INTO annotations (task_id, record_id, run_id, annotator_kind, annotator, model_sha256, prompt_hash,
                 value, created_at)
             SELECT t.id, r.id, 'review-run', 'human', '{who}', '', '', '{}', '2026-11-21T00:00:01Z'
             FROM tasks t, records r WHERE r.row_index = {row}",
            json!(value)
        ));
    }
    let refs: Vec<&str> = sql.iter().map(String::as_str).collect();
    sql_exec(db, &refs);
}

#[test]
fn answers_given_in_assay_serve_reach_label_output_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The example task on its first 8 rows, reviewing the least confident quarter, one person per item.
    let task = sms_slice_task(d, 8, "[review]\nlowest-share = 0.25\noverlap = 1\n");
    let db = d.join("store.db");
    let run = |args: &[&str]| ok(assay().args(args).arg("--store").arg(&db).arg("--quiet"));
    run(&["label", task.to_str().unwrap(), "--threads", "2"]);
    let before = read_jsonl(&d.join("labeled.jsonl"));
    assert_eq!(before.len(), 8);
    let alice = run(&["annotator", "add", "alice"]).trim().to_string();
    run(&["project", "create", task.to_str().unwrap()]);

    let mut serve = assay();
    serve
        .arg("--store")
        .arg(&db)
        .args(["serve", "--bind", "127.0.0.1:0"]);
    let (mut server, port) = spawn_server(serve);
    // The two least confident of the 8 rows are routed; alice answers the opposite of the machine on both.
    let mut answered: Vec<(String, String)> = Vec::new();
    loop {
        let (status, body) = http(port, "GET", "/api/projects/1/next", Some(&alice), None);
        if status == 204 {
            break;
        }
        assert_eq!(status, 200, "{body}");
        let view: Value = serde_json::from_str(&body).unwrap();
        let text = view.to_string();
        let row = before
            .iter()
            .find(|r| text.contains(r["text"].as_str().unwrap()))
            .expect("the assignment shows one of the labeled rows");
        let answer = if row["assay"]["label"] == "spam" {
            "ham"
        } else {
            "spam"
        };
        let id = view["assignment_id"].as_i64().unwrap();
        let (status, body) = http(
            port,
            "POST",
            &format!("/api/assignments/{id}/answer"),
            Some(&alice),
            Some(&format!(
                r#"{{"value": "{answer}", "duration_ms": 900, "suggestion_shown": true}}"#
            )),
        );
        assert_eq!(status, 200, "{body}");
        answered.push((
            row["text"].as_str().unwrap().to_string(),
            answer.to_string(),
        ));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(answered.len(), 2, "lowest-share 0.25 of 8 rows");

    run(&["label", task.to_str().unwrap()]);
    let after = read_jsonl(&d.join("labeled.jsonl"));
    for row in &after {
        let given = answered.iter().find(|(t, _)| row["text"] == t.as_str());
        match given {
            Some((_, answer)) => {
                assert_eq!(row["assay"]["final"]["label"], answer.as_str(), "{row}");
                assert_eq!(row["assay"]["final"]["source"], "human");
                assert_eq!(row["assay"]["human"][0]["annotator"], "alice");
                assert_ne!(
                    row["assay"]["label"],
                    answer.as_str(),
                    "the machine's label stays beside"
                );
            }
            None => {
                assert_eq!(row["assay"]["final"]["source"], "model");
                assert_eq!(row["assay"]["final"]["label"], row["assay"]["label"]);
            }
        }
    }
    // `assay project qc`: both routed items answered against the machine, so it agrees on 0 of 2.
    let qc_json = d.join("qc.json");
    let printed = run(&[
        "project",
        "qc",
        "sms-spam",
        "--json",
        qc_json.to_str().unwrap(),
    ]);
    assert!(printed.contains("low-confidence"), "{printed}");
    let qc: Value = serde_json::from_str(&std::fs::read_to_string(&qc_json).unwrap()).unwrap();
    let low = &qc["reasons"][0];
    assert_eq!(low["reason"], "low-confidence");
    assert_eq!(low["answered"], 2);
    assert_eq!(low["machine_vs_people"]["agree"], 0);
    assert_eq!(low["machine_vs_people"]["of"], 2);
    assert_eq!(qc["people"][0]["annotator"], "alice");
    assert_eq!(qc["people"][0]["answers"], 2);
    assert_eq!(qc["people"][0]["median_ms"], 900);

    let labels = d.join("final.labels.jsonl");
    run(&[
        "export",
        "--format",
        "labels",
        task.to_str().unwrap(),
        "--output",
        labels.to_str().unwrap(),
    ]);
    let exported = read_jsonl(&labels);
    assert_eq!(
        exported.len(),
        8,
        "the task's own rows, not the project's copies too"
    );
    let by_people: Vec<&Value> = exported
        .iter()
        .filter(|r| r["label_source"] == "human")
        .collect();
    assert_eq!(by_people.len(), 2);
    for r in by_people {
        let (_, answer) = answered
            .iter()
            .find(|(t, _)| r["text"] == t.as_str())
            .unwrap();
        assert_eq!(r["label"], answer.as_str());
    }
}

#[test]
fn human_answers_and_final_labels_reach_the_label_output() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let out = dir.path().join("labeled.jsonl");
    let task = repo().join("examples/sms-spam/task.toml");
    let label = || {
        ok(assay()
            .args([
                "label",
                task.to_str().unwrap(),
                "--limit",
                "6",
                "--threads",
                "2",
                "--quiet",
            ])
            .arg("--output")
            .arg(&out)
            .arg("--store")
            .arg(&db));
        read_jsonl(&out)
    };
    let before = label();
    assert_eq!(before.len(), 6);
    for row in &before {
        assert_eq!(row["assay"]["final"]["source"], "model");
        assert_eq!(row["assay"]["final"]["label"], row["assay"]["label"]);
        assert_eq!(row["assay"]["human"], json!([]));
    }
    // Row 0: two people agree on the label the model did not give. Row 1: people split: the model decides.
    let model_0 = before[0]["assay"]["label"].as_str().unwrap();
    let other_0 = if model_0 == "spam" { "ham" } else { "spam" };
    file_answers(
        &db,
        &[
            (0, "ann", other_0),
            (0, "bob", other_0),
            (1, "ann", "ham"),
            (1, "bob", "spam"),
        ],
    );
    let after = label();
    assert_eq!(after[0]["assay"]["final"]["label"], other_0);
    assert_eq!(after[0]["assay"]["final"]["source"], "human");
    assert_eq!(after[0]["assay"]["final"]["human_agreeing"], 2);
    assert_eq!(
        after[0]["assay"]["label"], model_0,
        "the machine's label is kept beside"
    );
    let people: Vec<&str> = after[0]["assay"]["human"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["annotator"].as_str().unwrap())
        .collect();
    assert_eq!(people, ["ann", "bob"]);
    assert_eq!(after[1]["assay"]["final"]["source"], "model");
    assert_eq!(
        after[1]["assay"]["final"]["label"],
        after[1]["assay"]["label"]
    );
    assert_eq!(after[1]["assay"]["final"]["human_answers"], 2);
    for (a, b) in after.iter().zip(&before).skip(2) {
        assert_eq!(a["assay"]["final"], b["assay"]["final"]);
    }

    // `export --format labels` writes the final labels with their source, in JSONL and Parquet.
    let labels = dir.path().join("final.labels.jsonl");
    ok(assay()
        .args(["export", "--format", "labels", task.to_str().unwrap()])
        .arg("--output")
        .arg(&labels)
        .arg("--store")
        .arg(&db));
    let exported = read_jsonl(&labels);
    assert_eq!(exported.len(), 6);
    assert_eq!(exported[0]["label"], other_0);
    assert_eq!(exported[0]["label_source"], "human");
    assert_eq!(exported[0]["model_label"], model_0);
    assert_eq!(exported[0]["human_answers"].as_array().unwrap().len(), 2);
    assert_eq!(exported[1]["label_source"], "model");
    assert_eq!(exported[0]["text"], after[0]["text"]);
    ok(assay()
        .args(["export", "--format", "labels", task.to_str().unwrap()])
        .arg("--output")
        .arg(dir.path().join("final.labels.parquet"))
        .arg("--store")
        .arg(&db));

    // The Parquet output carries the same columns.
    let parquet = dir.path().join("labeled.parquet");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--limit", "6", "--quiet"])
        .arg("--output")
        .arg(&parquet)
        .arg("--store")
        .arg(&db));
    assert!(std::fs::metadata(&parquet).unwrap().len() > 0);
}

#[test]
fn people_decide_exported_preference_pairs_where_they_answered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pairs.jsonl");
    let rows = [
        json!({"q": "What is the capital of France?", "a": "Paris.", "b": "Rome."}),
        json!({"q": "How many legs does a spider have?", "a": "Eight.", "b": "Six."}),
    ];
    std::fs::write(
        &data,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let task = dir.path().join("task.toml");
    std::fs::write(
        &task,
        "name = \"flow\"\ntype = \"compare\"\nguidelines = \"The correct answer is better.\"\n\
         [compare]\ncontext = \"{{ q }}\"\nresponse-1 = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\n",
    )
    .unwrap();
    let db = dir.path().join("store.db");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--quiet", "--threads", "2"])
        .arg("--input")
        .arg(&data)
        .arg("--output")
        .arg(dir.path().join("labeled.jsonl"))
        .arg("--store")
        .arg(&db));
    // Both people prefer response 2 on row 0 (against the facts, so it cannot be the model's doing).
    file_answers(&db, &[(0, "ann", "2"), (0, "bob", "2")]);
    let dpo = dir.path().join("out.dpo.jsonl");
    ok(assay()
        .args(["export", "--format", "dpo", task.to_str().unwrap()])
        .args(["--keep-ties", "--keep-inconsistent"])
        .arg("--output")
        .arg(&dpo)
        .arg("--store")
        .arg(&db));
    let exported: Vec<Value> = read_jsonl(&dpo);
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0]["chosen"], "Rome.");
    assert_eq!(exported[0]["rejected"], "Paris.");
    assert_eq!(exported[0]["label_source"], "human");
    assert_eq!(exported[0]["judge"], "human:ann+bob");
    assert_eq!(exported[0]["score_chosen"], 1.0);
    assert_eq!(exported[0]["human_answers"], 2);
    assert_eq!(exported[1]["label_source"], "model");
    assert_eq!(exported[1]["judge"], "smollm2-135m-instruct");
}
