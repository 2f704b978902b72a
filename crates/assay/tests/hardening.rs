//! Issue 11, hardening: runs that stop on an error, secrets in messages, closed pipes, misconfiguration, gold
//! aliases, held-out figures. End to end through the real binary (and, where a run labels, the real SmolLM2).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

/// A classify task over `text` with gold column `gold`, written into `dir`.
fn task(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("task.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"hardening\"\ntype = \"classify\"\ninput = \"{{{{ text }}}}\"\ngold = \"gold\"\n\
             labels = [\"ham\", {{ name = \"spam\", aliases = [\"1\", \"junk\"] }}]\n{extra}"
        ),
    )
    .unwrap();
    path
}

fn jsonl(dir: &Path, name: &str, rows: &[Value]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    path
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn label(task: &Path, input: &Path, output: &Path, db: &Path) -> Command {
    let mut cmd = assay();
    cmd.args(["label", task.to_str().unwrap(), "--threads", "2", "--quiet"])
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .arg("--store")
        .arg(db);
    cmd
}

fn small_rows() -> Vec<Value> {
    vec![
        json!({"text": "Are we still meeting for lunch today?", "gold": "ham"}),
        json!({"text": "WINNER! Claim your free prize now, text WIN to 80082", "gold": "1"}),
        json!({"text": "Call me when you get home", "gold": "ham"}),
    ]
}

/// Issue 11 (1.6): a run that stops on an error after it started (here: its output cannot be written) is marked
/// failed with the reason, and `assay runs` shows it, with whole run ids (2.6: UUID v7 prefixes are time and
/// collide).
#[test]
fn issue_11_failed_run_is_marked_failed() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path(), "");
    let input = jsonl(dir.path(), "in.jsonl", &small_rows());
    let db = dir.path().join("s.db");
    // The output's folder is a file: creating the output fails after scoring.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let out = label(&task, &input, &blocker.join("out.jsonl"), &db)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{:?}", text(&out));
    let rows: Vec<(String, String, String)> =
        sql_rows(&db, "SELECT id, status, COALESCE(summary, '') FROM runs");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (failed_id, status, summary) = &rows[0];
    assert_eq!(status, "failed");
    let summary: Value = serde_json::from_str(summary).unwrap();
    assert!(
        summary["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{summary}"
    );
    // A second run, right after: both ids are shown whole and differ.
    ok(&mut label(
        &task,
        &input,
        &dir.path().join("out.jsonl"),
        &db,
    ));
    let listed = ok(assay().args(["runs", "--store"]).arg(&db));
    assert!(
        listed.contains("failed") && listed.contains("finished"),
        "{listed}"
    );
    let ids: Vec<(String,)> = sql_rows(&db, "SELECT id FROM runs");
    assert_eq!(ids.len(), 2);
    for (id,) in &ids {
        assert!(listed.contains(id.as_str()), "{id} not in\n{listed}");
    }
    assert!(listed.contains(failed_id.as_str()));
}

/// Issue 11 (1.7): a PostgreSQL password never reaches a message, from our context or from the driver.
#[test]
fn issue_11_store_password_is_not_printed() {
    let home = tempfile::tempdir().unwrap();
    let out = bare_assay(home.path())
        .args([
            "runs",
            "--store",
            "postgres://assay:s3cretpw@127.0.0.1:1/labels",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        !stdout.contains("s3cretpw") && !stderr.contains("s3cretpw"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("postgres://assay:***@127.0.0.1:1/labels"),
        "{stderr}"
    );
    // Nor does `--help` show it from the environment.
    let help = bare_assay(home.path())
        .env(
            "ASSAY_STORE",
            "postgres://assay:s3cretpw@127.0.0.1:1/labels",
        )
        .args(["runs", "--help"])
        .output()
        .unwrap();
    assert!(!text(&help).0.contains("s3cretpw"));
}

/// Issue 11 (1.8): `assay ... | head` closing the pipe ends the command quietly with exit code 0.
#[test]
fn issue_11_broken_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let answers = dir.path().join("answers.csv");
    let mut csv = String::from("item,annotator,label\n");
    for i in 0..200 {
        for a in ["ann", "bob", "cyd"] {
            csv.push_str(&format!(
                "{i},{a},{}\n",
                if (i + a.len()) % 3 == 0 { "x" } else { "y" }
            ));
        }
    }
    std::fs::write(&answers, csv).unwrap();
    let home = dir.path().join("home");
    for args in [
        vec!["model", "list"],
        vec!["qc", "--annotations", answers.to_str().unwrap()],
    ] {
        let mut child = bare_assay(&home)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first line is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Issue 11 (2.1): `assay qc TASK.toml` matches gold values to labels as `assay label` does: an alias (`1`,
/// `junk`) or another case of a label is that label, not a label of its own.
#[test]
fn issue_11_qc_matches_gold_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path(), "output = \"toy.labeled.jsonl\"\n");
    let rows: Vec<Value> = [
        ("ham", "ham"),
        ("1", "spam"),
        ("junk", "spam"),
        ("HAM", "ham"),
    ]
    .iter()
    .map(|(gold, model)| {
        json!({"text": "t", "gold": gold, "assay": {"label": model, "confidence": 0.9,
                "distribution": {"ham": if *model == "ham" { 0.9 } else { 0.1 },
                                 "spam": if *model == "spam" { 0.9 } else { 0.1 }}}})
    })
    .collect();
    jsonl(dir.path(), "toy.labeled.jsonl", &rows);
    let stdout = ok(bare_assay(dir.path()).args(["qc", task.to_str().unwrap()]));
    assert!(stdout.contains("accuracy 100.0%"), "{stdout}");
    assert!(
        !stdout.contains("junk") && !stdout.contains("HAM"),
        "{stdout}"
    );
}

/// Issue 11 (2.2): a run where the model failed rows exits with status 3 and says so in its last line.
#[test]
fn issue_11_failed_rows_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path(), "");
    let mut rows = small_rows();
    // Far more tokens than the model's context holds.
    rows.push(json!({"text": "word ".repeat(40_000), "gold": "ham"}));
    let input = jsonl(dir.path(), "in.jsonl", &rows);
    let out = label(
        &task,
        &input,
        &dir.path().join("out.jsonl"),
        &dir.path().join("s.db"),
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("failed: 1 of 4 rows"), "{last}");
}

/// Issue 11 (2.4): a template column no row has, a gold column no row has, and `eval --human` naming a column
/// the labeled rows lack are errors before any work, naming the column and listing the columns that exist.
#[test]
fn issue_11_misconfigured_columns_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = jsonl(dir.path(), "in.jsonl", &small_rows());
    let db = dir.path().join("s.db");
    let output = dir.path().join("out.jsonl");
    for (name, toml, column) in [
        (
            "template",
            "name = \"t\"\ntype = \"classify\"\ninput = \"{{ body }}\"\nlabels = [\"ham\", \"spam\"]\n",
            "`body`",
        ),
        (
            "gold",
            "name = \"t\"\ntype = \"classify\"\ninput = \"{{ text }}\"\ngold = \"answer\"\nlabels = [\"ham\", \"spam\"]\n",
            "`answer`",
        ),
    ] {
        let task = dir.path().join(format!("{name}.toml"));
        std::fs::write(&task, toml).unwrap();
        let out = label(&task, &input, &output, &db).output().unwrap();
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(stderr.contains(column), "{name}: {stderr}");
        assert!(stderr.contains("gold, text") || stderr.contains("text, gold"), "{name}: {stderr}");
        assert!(!output.exists(), "{name}: nothing is labeled");
    }
    assert!(!db.exists() || sql_count(&db, "SELECT COUNT(*) FROM runs") == 0);

    // eval --human with a column the rows lack.
    let pairs = jsonl(
        dir.path(),
        "pairs.jsonl",
        &[json!({"q": "2 + 2?", "a": "4", "b": "5", "h1": 1})],
    );
    let compare = dir.path().join("compare.toml");
    std::fs::write(
        &compare,
        "name = \"p\"\ntype = \"compare\"\n[compare]\ncontext = \"{{ q }}\"\nresponse-1 = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\n",
    )
    .unwrap();
    ok(&mut label(
        &compare,
        &pairs,
        &dir.path().join("pairs.out.jsonl"),
        &db,
    ));
    let out = assay()
        .args([
            "eval",
            compare.to_str().unwrap(),
            "--human",
            "preferred",
            "--store",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`preferred`") && stderr.contains("a, b, h1, q"),
        "{stderr}"
    );
}

/// Issue 11 (2.5): `qc` and `eval` report on the rows the fitted calibration did not learn from, as `label` does:
/// the same number of rows as `label`'s held-out figures.
#[test]
fn issue_11_qc_and_eval_report_held_out_rows() {
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("sms.toml");
    let text = std::fs::read_to_string(repo().join("examples/sms-spam/task.toml"))
        .unwrap()
        .replace(
            "dataset = \"sms-500.csv\"",
            &format!(
                "dataset = {:?}",
                repo().join("examples/sms-spam/sms-500.csv")
            ),
        )
        .replace(
            "output = \"../../out/sms-spam.labeled.jsonl\"",
            "output = \"sms.labeled.jsonl\"",
        );
    std::fs::write(&task, text).unwrap();
    let db = dir.path().join("s.db");
    let summary = dir.path().join("summary.json");
    ok(assay()
        .args(["label", task.to_str().unwrap(), "--limit", "60", "--quiet"])
        .arg("--store")
        .arg(&db)
        .arg("--summary-json")
        .arg(&summary));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    assert!(
        summary["calibration"].as_str().unwrap().contains("fitted"),
        "{summary}"
    );
    let eval_rows = summary["eval_rows"].as_u64().unwrap();
    let fit_rows = summary["fit_rows"].as_u64().unwrap();
    assert!(fit_rows >= 10 && eval_rows > 0);

    let qc = ok(bare_assay(dir.path()).args(["qc", task.to_str().unwrap()]));
    assert!(
        qc.contains(&format!("{eval_rows} rows with gold")),
        "{eval_rows}\n{qc}"
    );
    assert!(
        qc.contains(&format!("{fit_rows} rows the calibration was fitted on")),
        "{qc}"
    );

    let figures = dir.path().join("eval.json");
    let printed = ok(assay()
        .args(["eval", task.to_str().unwrap(), "--human", "label", "--json"])
        .arg(&figures)
        .arg("--store")
        .arg(&db));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&figures).unwrap()).unwrap();
    assert_eq!(report[0]["rows"], eval_rows, "{printed}");
    assert!(printed.contains("held-out rows only"), "{printed}");
}

/// Issue 11 (2.6): empty, blank and null texts are row errors, not labels with a confidence; the warning about
/// gold values that name no label lists them; log lines carry no colour codes when stderr is not a terminal.
#[test]
fn issue_11_empty_texts_unknown_gold_and_plain_logs() {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path(), "");
    let mut rows = small_rows();
    rows.extend([
        json!({"text": "", "gold": "ham"}),
        json!({"text": "   \n", "gold": "ham"}),
        json!({"text": null, "gold": "ham"}),
        json!({"text": "See you at eight", "gold": "hamm"}),
        json!({"text": "Free entry in a weekly draw", "gold": "spamish"}),
    ]);
    let input = jsonl(dir.path(), "in.jsonl", &rows);
    let output = dir.path().join("out.jsonl");
    let db = dir.path().join("s.db");
    let out = label(&task, &input, &output, &db)
        .env("ASSAY_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let labeled = read_jsonl(&output);
    assert_eq!(labeled.len(), 5, "blank rows are not labeled");
    assert!(labeled
        .iter()
        .all(|r| !r["text"].as_str().unwrap().trim().is_empty()));
    for row in ["row 4:", "row 5:", "row 6:"] {
        assert!(stdout.contains(row), "{row}: {stdout}");
    }
    assert!(stdout.contains("empty input"), "{stdout}");
    assert_eq!(sql_count(&db, "SELECT rows_skipped FROM runs"), 3);
    assert!(
        stderr.contains("\"hamm\"") && stderr.contains("\"spamish\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("skipping row"),
        "a log line is written: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}
