//! `assay label` end to end with the real SmolLM2 model through llama.cpp and a real SQLite store.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// The SMS example task, writing where the test says.
fn sms_task(dir: &std::path::Path) -> std::path::PathBuf {
    let task = dir.join("task.toml");
    let text = std::fs::read_to_string(repo().join("examples/sms-spam/task.toml"))
        .unwrap()
        .replace(
            "dataset = \"sms-500.csv\"",
            &format!(
                "dataset = {:?}",
                repo().join("examples/sms-spam/sms-500.csv")
            ),
        )
        .replace("output = \"../../out/sms-spam.labeled.jsonl\"", "");
    std::fs::write(&task, text).unwrap();
    task
}

/// Issue 2: kill -9 mid-run, resume, and the output equals an uninterrupted run's; no item is scored twice.
#[test]
fn issue_2_resume_after_kill_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let task = sms_task(dir.path());
    let rows = "64";

    let whole_db = dir.path().join("whole.db");
    let whole_out = dir.path().join("whole.jsonl");
    ok(assay()
        .args([
            "label",
            task.to_str().unwrap(),
            "--limit",
            rows,
            "--threads",
            "2",
        ])
        .arg("--output")
        .arg(&whole_out)
        .arg("--store")
        .arg(&whole_db));

    let db = dir.path().join("killed.db");
    let out = dir.path().join("killed.jsonl");
    let mut child = assay()
        .args([
            "label",
            task.to_str().unwrap(),
            "--limit",
            rows,
            "--threads",
            "2",
            "--quiet",
        ])
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(&db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first committed chunk, then kill -9 while later chunks are in flight.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut done_when_killed = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        if db.exists() {
            let done = std::panic::catch_unwind(|| {
                sql_count(
                    &db,
                    "SELECT COUNT(*) FROM annotations WHERE annotator NOT LIKE 'probe:%'",
                )
            })
            .unwrap_or(0);
            if done > 0 {
                child.kill().unwrap(); // SIGKILL
                done_when_killed = done;
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
    }
    child.wait().unwrap();
    assert!(
        done_when_killed > 0 && done_when_killed < 64,
        "killed with {done_when_killed} items done"
    );
    let after_kill = sql_count(
        &db,
        "SELECT COUNT(*) FROM annotations WHERE annotator NOT LIKE 'probe:%'",
    );
    assert_eq!(
        after_kill % 16,
        0,
        "only whole chunks are committed, got {after_kill}"
    );
    assert!(!out.exists(), "no output is written by a killed run");

    let stdout = ok(assay()
        .args([
            "label",
            task.to_str().unwrap(),
            "--limit",
            rows,
            "--threads",
            "2",
        ])
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(&db));
    assert!(stdout.contains("from earlier runs"), "{stdout}");

    assert_eq!(
        without_run_identity(&read_jsonl(&out)),
        without_run_identity(&read_jsonl(&whole_out))
    );
    assert_eq!(
        sql_count(
            &db,
            "SELECT COUNT(*) FROM annotations WHERE annotator NOT LIKE 'probe:%'"
        ),
        64
    );
    assert_eq!(
        sql_count(&db, "SELECT SUM(items_scored) FROM runs"),
        64,
        "an item was scored twice"
    );
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM runs"), 2);
    assert_eq!(
        sql_count(
            &db,
            "SELECT items_scored FROM runs WHERE status = 'finished'"
        ),
        64 - after_kill,
        "the resumed run scored only what the killed run had not committed"
    );

    // A third run re-scores nothing and writes the same output.
    let again = dir.path().join("again.jsonl");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--limit", rows])
        .arg("--output")
        .arg(&again)
        .arg("--store")
        .arg(&db));
    assert_eq!(sql_count(&db, "SELECT SUM(items_scored) FROM runs"), 64);
    assert_eq!(
        without_run_identity(&read_jsonl(&again)),
        without_run_identity(&read_jsonl(&whole_out))
    );
}

#[test]
fn labels_carry_distribution_confidence_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let task = sms_task(dir.path());
    let out = dir.path().join("out.jsonl");
    let summary = dir.path().join("summary.json");
    let stdout = ok(assay()
        .args(["label", task.to_str().unwrap(), "--limit", "40"])
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(dir.path().join("s.db"))
        .arg("--summary-json")
        .arg(&summary));
    let rows = read_jsonl(&out);
    assert_eq!(rows.len(), 40);
    for row in &rows {
        // Input columns untouched, one `assay` object added.
        assert!(row["text"].is_string() && row["label"].is_string() && row["id"].is_string());
        let assay = &row["assay"];
        let label = assay["label"].as_str().unwrap();
        assert!(label == "ham" || label == "spam");
        let dist = assay["distribution"].as_object().unwrap();
        let total: f64 = dist.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{dist:?}");
        let confidence = assay["confidence"].as_f64().unwrap();
        assert_eq!(confidence, dist[label].as_f64().unwrap());
        assert!(dist.values().all(|p| p.as_f64().unwrap() <= confidence));
        let p = &assay["provenance"];
        assert_eq!(p["annotator_kind"], "model");
        assert_eq!(p["annotator"], "smollm2-135m-instruct");
        assert_eq!(p["model_sha256"].as_str().unwrap().len(), 64);
        assert_eq!(p["prompt_hash"].as_str().unwrap().len(), 64);
        assert_eq!(p["task"], "sms-spam");
        // `auto` chooses by cross-validation on the fit rows (issue 12): one of its candidates, the same on every row.
        assert!(
            ["none", "contextual", "fitted", "contextual+fitted"]
                .contains(&p["calibration"].as_str().unwrap()),
            "{p}"
        );
        assert_eq!(
            p["calibration"],
            rows[0]["assay"]["provenance"]["calibration"]
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    assert_eq!(summary["labeled"], 40);
    assert_eq!(
        summary["eval_rows"].as_u64().unwrap() + summary["fit_rows"].as_u64().unwrap(),
        40
    );
    assert!(stdout.contains("accuracy at 50% coverage"), "{stdout}");
    assert!(stdout.contains("ECE (15 bins)"), "{stdout}");
}

#[test]
fn malformed_rows_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("t.toml");
    std::fs::write(
        &task,
        "name = \"m\"\ntype = \"classify\"\ninput = \"{{ text }}\"\ngold = \"label\"\nlabels = [\"ham\", \"spam\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let db = dir.path().join("s.db");
    let stdout = ok(assay()
        .args(["label", task.to_str().unwrap()])
        .arg("--input")
        .arg(repo().join("tests/fixtures/malformed.jsonl"))
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(&db));
    let rows = read_jsonl(&out);
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(rows.iter().all(|r| r["assay"]["label"].is_string()));
    assert!(stdout.contains("row 3:"), "{stdout}");
    assert!(
        stdout.contains("row 4:") && stdout.contains("column"),
        "{stdout}"
    );
    assert!(
        stdout.contains("row 5:") && stdout.to_lowercase().contains("utf-8"),
        "{stdout}"
    );
    assert!(stdout.contains("row 6:"), "{stdout}");
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM row_errors"), 4);
    assert_eq!(sql_count(&db, "SELECT rows_skipped FROM runs"), 4);
}

#[test]
fn parquet_output_has_a_struct_column_with_a_distribution_map() {
    let dir = tempfile::tempdir().unwrap();
    let task = sms_task(dir.path());
    let out = dir.path().join("out.parquet");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--limit", "8"])
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(dir.path().join("s.db")));
    let rows: Vec<_> = assay_io::open_dataset(&out)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 8);
    let assay = rows[0].values["assay"].as_object().unwrap();
    assert!(assay["label"].is_string());
    assert!(assay["provenance"]["model_sha256"].is_string());
    let file = std::fs::File::open(&out).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let field = reader.schema().field_with_name("assay").unwrap().clone();
    let arrow_schema::DataType::Struct(fields) = field.data_type() else {
        panic!("assay is {field:?}")
    };
    let distribution = fields.iter().find(|f| f.name() == "distribution").unwrap();
    assert!(
        matches!(distribution.data_type(), arrow_schema::DataType::Map(_, _)),
        "{distribution:?}"
    );
}

#[test]
fn missing_model_error_hints_at_fetch() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let task = sms_task(dir.path());
    let out = bare_assay(home.path())
        .args(["label", task.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("model `smollm2-135m-instruct` is not in the cache"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: run `assay model fetch smollm2-135m-instruct` first"),
        "{stderr}"
    );
}

#[test]
fn task_typo_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("t.toml");
    std::fs::write(
        &task,
        "name = \"m\"\ntype = \"classify\"\ninput = \"{{ text }}\"\nlables = [\"a\", \"b\"]\n",
    )
    .unwrap();
    let out = bare_assay(dir.path())
        .args(["label", task.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("lables") && stderr.contains("line 4"),
        "{stderr}"
    );
}

/// Many workers, one PostgreSQL store: two `assay label --shard I/2` processes run at the same time, never score
/// the same chunk, and a last run without `--shard` scores nothing and writes the same output as one process on
/// SQLite would.
#[test]
fn two_shard_workers_on_postgres_split_the_work_and_match_a_single_sqlite_run() {
    let dir = tempfile::tempdir().unwrap();
    let task = sms_task(dir.path());
    let postgres = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(assay_store::testing::fresh_postgres_database());
    let summary_of = |path: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let worker = |shard: &str| {
        let summary = dir
            .path()
            .join(format!("shard-{}.json", shard.replace('/', "-")));
        let child = assay()
            .args([
                "label",
                task.to_str().unwrap(),
                "--limit",
                "40",
                "--threads",
                "1",
                "--quiet",
            ])
            .args(["--shard", shard, "--store", &postgres])
            .arg("--output")
            .arg(
                dir.path()
                    .join(format!("shard-{}.jsonl", shard.replace('/', "-"))),
            )
            .arg("--summary-json")
            .arg(&summary)
            .spawn()
            .unwrap();
        (child, summary)
    };
    let (mut a, summary_a) = worker("0/2");
    let (mut b, summary_b) = worker("1/2");
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    // 40 rows in chunks of 16: chunks 0 and 2 (16 + 8 rows) to worker 0, chunk 1 (16 rows) to worker 1.
    assert_eq!(summary_of(&summary_a)["scored_this_run"], 24);
    assert_eq!(summary_of(&summary_b)["scored_this_run"], 16);

    let out_pg = dir.path().join("pg.jsonl");
    let summary = dir.path().join("final.json");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--limit", "40", "--quiet"])
        .args(["--store", &postgres])
        .arg("--output")
        .arg(&out_pg)
        .arg("--summary-json")
        .arg(&summary));
    assert_eq!(summary_of(&summary)["scored_this_run"], 0);
    assert_eq!(summary_of(&summary)["labeled"], 40);

    let out_sqlite = dir.path().join("sqlite.jsonl");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--limit", "40", "--quiet"])
        .arg("--store")
        .arg(dir.path().join("one.db"))
        .arg("--output")
        .arg(&out_sqlite));
    assert_eq!(
        without_run_identity(&read_jsonl(&out_pg)),
        without_run_identity(&read_jsonl(&out_sqlite))
    );
}
