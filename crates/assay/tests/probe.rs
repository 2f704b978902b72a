//! Issue 12, learn from people: the probe trains on gold rows and on people's answers given through the real
//! `assay serve` API, its labels carry their provenance, embeddings are stored and reused, and a rerun after new
//! answers retrains and relabels without rescoring anything. The real bundled model labels and embeds.

mod common;

use common::*;
use serde_json::Value;

fn summary(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn issue_12_probe_learns_from_gold_and_from_answers_given_in_assay_serve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let task = sms_slice_task(
        d,
        60,
        "[review]\nlowest-share = 0.1\noverlap = 1\ndisagree = true\n\n\
         [probe]\nembedder = \"llm\"\nlabeler = \"probe\"\nmin-rows = 5\nfolds = 3\n",
    );
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
        (summary(&json), read_jsonl(&d.join("labeled.jsonl")))
    };

    // First run: the LLM labels and the probe trains on the fit split's gold rows.
    let (first, rows) = label("first.json");
    assert_eq!(rows.len(), 60);
    let probe = &first["probe"];
    assert!(probe["train_rows"].as_u64().unwrap() >= 5, "{probe}");
    assert_eq!(probe["people_rows"], 0);
    assert_eq!(probe["embedded_this_run"], 60);
    assert_eq!(probe["labeler"], "probe");
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM embeddings"), 60);
    for row in &rows {
        let assay = &row["assay"];
        assert_eq!(assay["labeler"], "probe", "{row}");
        assert_eq!(assay["label"], assay["probe"]["label"]);
        assert!(
            assay["llm"]["label"].is_string(),
            "the LLM's label stays beside: {row}"
        );
        let provenance = &assay["probe"]["provenance"];
        assert_eq!(provenance["train_rows"], probe["train_rows"]);
        assert_eq!(provenance["train_sha256"], probe["train_sha256"]);
        assert!(provenance["annotator"]
            .as_str()
            .unwrap()
            .starts_with("probe:"));
    }
    assert_eq!(
        sql_count(
            &db,
            "SELECT COUNT(*) FROM annotations WHERE annotator LIKE 'probe:%'"
        ),
        60
    );

    // A rerun pays for nothing: no scoring, no embedding, the same training set.
    let (second, _) = label("second.json");
    assert_eq!(second["scored_this_run"], 0);
    assert_eq!(second["probe"]["embedded_this_run"], 0);
    assert_eq!(second["probe"]["train_sha256"], probe["train_sha256"]);

    // People answer the routed rows through the running server (with the gold label, as a careful person would).
    let alice = run(&["annotator", "add", "alice"]).trim().to_string();
    run(&["project", "create", task.to_str().unwrap()]);
    // The rows where the probe and the LLM disagree go to people (the `disagree` reason), beside the least certain.
    let disagreeing = rows
        .iter()
        .filter(|r| r["assay"]["probe"]["label"] != r["assay"]["llm"]["label"])
        .count() as i64;
    let routed_disagree = sql_count(
        &db,
        "SELECT COUNT(*) FROM review_items WHERE reason = 'disagree'",
    );
    assert!(
        disagreeing > 0,
        "the 135M LLM and the probe disagree somewhere"
    );
    assert!(
        routed_disagree >= 1 && routed_disagree <= disagreeing,
        "{routed_disagree} of {disagreeing}"
    );
    let mut serve = assay();
    serve
        .arg("--store")
        .arg(&db)
        .args(["serve", "--bind", "127.0.0.1:0"]);
    let (mut server, port) = spawn_server(serve);
    let mut answered = 0;
    loop {
        let (status, body) = http(port, "GET", "/api/projects/1/next", Some(&alice), None);
        if status == 204 {
            break;
        }
        assert_eq!(status, 200, "{body}");
        let view: Value = serde_json::from_str(&body).unwrap();
        let text = view.to_string();
        let row = rows
            .iter()
            .find(|r| text.contains(r["text"].as_str().unwrap()))
            .expect("the assignment shows one of the labeled rows");
        let gold = row["label"].as_str().unwrap();
        let id = view["assignment_id"].as_i64().unwrap();
        let (status, body) = http(
            port,
            "POST",
            &format!("/api/assignments/{id}/answer"),
            Some(&alice),
            Some(&format!(
                r#"{{"value": "{gold}", "duration_ms": 700, "suggestion_shown": false}}"#
            )),
        );
        assert_eq!(status, 200, "{body}");
        answered += 1;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(answered >= 1, "the project routed rows to people");

    // The next run retrains on the answers and relabels, without rescoring or re-embedding.
    let (third, rows) = label("third.json");
    assert_eq!(third["scored_this_run"], 0);
    assert_eq!(third["probe"]["embedded_this_run"], 0);
    assert_eq!(third["probe"]["people_rows"], answered);
    assert_ne!(third["probe"]["train_sha256"], probe["train_sha256"]);
    let answered_rows = rows
        .iter()
        .filter(|r| r["assay"]["final"]["source"] == "human")
        .count();
    assert_eq!(answered_rows, answered as usize);
    assert!(rows.iter().all(
        |r| r["assay"]["probe"]["provenance"]["train_sha256"] == third["probe"]["train_sha256"]
    ));
}
