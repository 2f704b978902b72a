//! Generate tasks end to end with the real SmolLM2 model (issue 15): generated rows carry their origin, depth and
//! parents; a rerun or a resumed run generates nothing twice and writes what one uninterrupted run writes; the
//! gate keeps and drops rows, each dropped row with its reason.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

/// Four seed rows: three human ones and one generated earlier (depth 1).
fn seeds(dir: &Path) -> PathBuf {
    let rows = [
        json!({"id": "a", "instruction": "Name the capital of France."}),
        json!({"id": "b", "instruction": "Give one tip for sleeping better."}),
        json!({"id": "c", "instruction": "What is 2 + 2?", "assay_origin": {"kind": "synthetic", "depth": 1}}),
        json!({"id": "d", "instruction": "Say hello in Spanish."}),
    ];
    let path = dir.join("seeds.jsonl");
    std::fs::write(
        &path,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    path
}

fn generate_task(dir: &Path, extra: &str) -> PathBuf {
    let task = dir.join("generate.toml");
    std::fs::write(
        &task,
        format!(
            r#"
name = "answers"
type = "generate"
dataset = "seeds.jsonl"
[generate]
prompt = "{{{{ instruction }}}}"
temperature = 0.8
top-p = 0.9
max-tokens = 12
seed = 5
id-column = "id"
{extra}
"#
        ),
    )
    .unwrap();
    task
}

fn generate(task: &Path, db: &Path, out: &Path, extra: &[&str]) -> String {
    ok(assay()
        .arg("generate")
        .arg(task)
        .arg("--output")
        .arg(out)
        .arg("--store")
        .arg(db)
        .args(["--threads", "1", "--quiet"])
        .args(extra))
}

fn items_scored_per_run(db: &Path) -> Vec<i64> {
    let rows: Vec<(i64,)> = sql_rows(db, "SELECT items_scored FROM runs ORDER BY started_at, id");
    rows.into_iter().map(|r| r.0).collect()
}

#[test]
fn generated_rows_carry_origin_depth_and_parents_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    seeds(dir.path());
    let task = generate_task(dir.path(), "");
    let (db, out) = (
        dir.path().join("store.db"),
        dir.path().join("answers.jsonl"),
    );
    generate(&task, &db, &out, &[]);
    let rows = read_jsonl(&out);
    assert_eq!(rows.len(), 4);
    let seed_sha: String = sql_rows::<(String,)>(
        &db,
        "SELECT sha256 FROM datasets WHERE name = 'seeds.jsonl'",
    )
    .remove(0)
    .0;
    let model_sha: String = sql_rows::<(String,)>(&db, "SELECT model_sha256 FROM runs")
        .remove(0)
        .0;
    assert_eq!(model_sha.len(), 64);
    let ids = ["a", "b", "c", "d"];
    for (i, row) in rows.iter().enumerate() {
        let origin = &row["assay_origin"];
        assert_eq!(origin["kind"], "synthetic", "{row}");
        assert_eq!(origin["generator"]["model"], "smollm2-135m-instruct");
        assert_eq!(origin["generator"]["model_sha256"], model_sha.as_str());
        assert_eq!(origin["generator"]["task"], "answers");
        assert_eq!(
            origin["generator"]["prompt_hash"].as_str().unwrap().len(),
            64
        );
        // Human seeds are depth 0, so their responses are depth 1; the seed generated earlier (depth 1) gives 2.
        assert_eq!(origin["depth"], if i == 2 { 2 } else { 1 }, "{row}");
        assert_eq!(
            origin["parents"],
            json!([{"dataset_sha256": seed_sha, "row_index": i, "id": ids[i]}])
        );
        assert!(row["response"].is_string(), "{row}");
        assert_eq!(
            row["prompt"],
            [
                "Name the capital of France.",
                "Give one tip for sleeping better.",
                "What is 2 + 2?",
                "Say hello in Spanish."
            ][i]
        );
        let generation = &row["assay_generation"];
        let tokens = generation["tokens"].as_u64().unwrap();
        assert!(tokens <= 12, "{row}");
        assert_eq!(generation["truncated"], tokens == 12, "{row}");
    }
    let distinct: std::collections::HashSet<&str> = rows
        .iter()
        .map(|r| r["response"].as_str().unwrap())
        .collect();
    assert!(
        distinct.len() >= 3,
        "four prompts, near-identical answers: {distinct:?}"
    );
    // Every generated row is a record of its own dataset (the output file).
    assert_eq!(
        sql_count(
            &db,
            "SELECT COUNT(*) FROM records r JOIN datasets d ON d.id = r.dataset_id WHERE d.name = 'answers.jsonl'"
        ),
        4
    );

    // A rerun, through `assay label` this time, generates nothing and writes the same rows.
    ok(assay()
        .arg("label")
        .arg(&task)
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(&db)
        .args(["--threads", "1", "--quiet"]));
    assert_eq!(read_jsonl(&out), rows);
    assert_eq!(items_scored_per_run(&db), [4, 0]);
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM annotations"), 4);

    // A run stopped after two seed rows and resumed writes exactly what one uninterrupted run wrote: each
    // response's seed depends on its row only, and the resumed run generates only the two rows left.
    let (db2, out2) = (
        dir.path().join("resumed.db"),
        dir.path().join("resumed.jsonl"),
    );
    generate(&task, &db2, &out2, &["--limit", "2"]);
    assert_eq!(read_jsonl(&out2).len(), 2);
    generate(&task, &db2, &out2, &[]);
    assert_eq!(items_scored_per_run(&db2), [2, 2]);
    assert_eq!(read_jsonl(&out2), rows);

    // Another seed samples other responses.
    let other = generate_task(dir.path(), "").with_file_name("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&task)
            .unwrap()
            .replace("seed = 5", "seed = 6"),
    )
    .unwrap();
    let out3 = dir.path().join("other.jsonl");
    generate(&other, &db, &out3, &[]);
    let other_rows = read_jsonl(&out3);
    assert!(
        other_rows
            .iter()
            .zip(&rows)
            .any(|(a, b)| a["response"] != b["response"]),
        "seed 6 drew the same four responses as seed 5"
    );
}

/// A generated file with one row for each rule, two near-duplicates and four distinct good answers.
fn gate_fixture(dir: &Path) -> PathBuf {
    let origin = json!({"kind": "synthetic", "depth": 1});
    let row = |response: &str, truncated: bool| {
        json!({
            "prompt": "Tell me something about the sea.",
            "response": response,
            "assay_origin": origin,
            "assay_generation": {"truncated": truncated},
        })
    };
    let rows = [
        row(
            "The sea covers about seventy percent of the surface of the Earth.",
            false,
        ),
        row("   ", false),
        row("I'm sorry, but I can't help with that request.", false),
        row(&"waves come and go ".repeat(8), false),
        row(
            "The sea is salty because rivers carry dissolved minerals into",
            true,
        ),
        row(
            "Sea water is salty because rivers carry minerals from rocks into the ocean.",
            false,
        ),
        row(
            "The sea covers about seventy percent of the surface of the Earth, roughly.",
            false,
        ),
        row(
            "Whales are mammals that live in the sea and breathe air.",
            false,
        ),
        row("sea sea sea bad answer", false),
        row(
            "Coral reefs grow in warm, shallow and clear sea water.",
            false,
        ),
    ];
    let path = dir.join("generated.jsonl");
    std::fs::write(
        &path,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let seeds = dir.join("seeds.jsonl");
    std::fs::write(
        &seeds,
        format!(
            "{}\n",
            json!({"instruction": "Why is the sea salty?", "human": "Sea water is salty because rivers carry minerals from rocks into the ocean."})
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_gate_keeps_and_drops_rows_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let generated = gate_fixture(dir.path());
    std::fs::write(
        dir.path().join("judge.toml"),
        r#"
name = "sea-judge"
type = "rate"
guidelines = "Rate how correct and helpful the response is, from 1 (useless) to 10 (excellent)."
[rate]
context = "{{ prompt }}"
response = "{{ response }}"
"#,
    )
    .unwrap();
    let task = generate_task(
        dir.path(),
        r#"
[gate.rules]
min-chars = 10
[gate.dedup]
seed-columns = ["human"]
threshold = 0.5
[gate.judge]
task = "judge.toml"
top-share = 0.5
"#,
    );
    let db = dir.path().join("store.db");
    let output = generate(&task, &db, &generated, &["--gate-only"]);
    assert!(output.contains("dropped by the rules"), "{output}");
    let kept = read_jsonl(&dir.path().join("generated.kept.jsonl"));
    let dropped = read_jsonl(&dir.path().join("generated.dropped.jsonl"));
    assert_eq!(kept.len() + dropped.len(), 10);
    let reason = |row: usize| -> String {
        dropped
            .iter()
            .find(|d| d["assay_gate"]["row"] == row)
            .map(|d| {
                format!(
                    "{}: {}",
                    d["assay_gate"]["check"].as_str().unwrap(),
                    d["assay_gate"]["reason"].as_str().unwrap()
                )
            })
            .unwrap_or_else(|| panic!("row {row} was kept: {kept:?}"))
    };
    assert_eq!(reason(1), "rules: empty");
    assert!(reason(2).starts_with("rules: refusal"), "{}", reason(2));
    assert!(reason(3).starts_with("rules: repetitive"), "{}", reason(3));
    assert!(reason(4).starts_with("rules: truncated"), "{}", reason(4));
    assert!(
        reason(5).starts_with("dedup: near-duplicate of seed row 1"),
        "{}",
        reason(5)
    );
    assert!(
        reason(6).starts_with("dedup: near-duplicate of generated row 1"),
        "{}",
        reason(6)
    );
    // Rows 0, 7, 8 and 9 reach the judge; it keeps the better half.
    assert_eq!(kept.len(), 2, "{kept:?}");
    let judged: Vec<&Value> = dropped
        .iter()
        .filter(|d| d["assay_gate"]["check"] == "judge")
        .collect();
    assert_eq!(judged.len(), 2, "{dropped:?}");
    let lowest_kept = kept
        .iter()
        .map(|k| k["assay_gate"]["score"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    for d in &judged {
        let score = d["assay_gate"]["score"].as_f64().unwrap();
        assert!(
            score <= lowest_kept,
            "a dropped row scored {score} above a kept one ({lowest_kept})"
        );
        assert!(
            d["assay_gate"]["reason"]
                .as_str()
                .unwrap()
                .contains("not in the best 50%"),
            "{d}"
        );
    }
    for k in &kept {
        assert!(
            [0, 7, 8, 9].contains(&k["assay_gate"]["row"].as_u64().unwrap()),
            "{k}"
        );
        assert_eq!(
            k["assay_origin"]["kind"], "synthetic",
            "the gate keeps the origin"
        );
    }
    // The judge's ratings are labels in the store; a second gate run rates nothing again.
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM annotations"), 4);
    generate(&task, &db, &generated, &["--gate-only"]);
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM annotations"), 4);
    assert_eq!(read_jsonl(&dir.path().join("generated.kept.jsonl")), kept);
}

#[test]
fn self_instruct_writes_new_instructions_with_their_sampled_parents_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    seeds(dir.path());
    let task = dir.path().join("self-instruct.toml");
    std::fs::write(
        &task,
        r#"
name = "new-tasks"
type = "generate"
dataset = "seeds.jsonl"
[generate]
mode = "self-instruct"
prompt = "{{ instruction }}"
prompt-column = "instruction"
temperature = 0.7
max-tokens = 48
seed = 3
calls = 3
seeds-per-call = 2
instructions-per-call = 3
id-column = "id"
"#,
    )
    .unwrap();
    let (db, out) = (dir.path().join("store.db"), dir.path().join("new.jsonl"));
    generate(&task, &db, &out, &[]);
    let rows = read_jsonl(&out);
    let duplicates = read_jsonl(&dir.path().join("new.duplicates.jsonl"));
    assert!(!rows.is_empty(), "no instruction parsed from three calls");
    assert!(rows.len() + duplicates.len() <= 9, "at most 3 per call");
    let seed_texts = [
        "Name the capital of France.",
        "Give one tip for sleeping better.",
        "What is 2 + 2?",
        "Say hello in Spanish.",
    ];
    for row in &rows {
        let instruction = row["instruction"].as_str().unwrap();
        assert!(instruction.split_whitespace().count() >= 3, "{row}");
        assert!(!seed_texts.contains(&instruction), "a seed copied: {row}");
        let origin = &row["assay_origin"];
        assert_eq!(origin["kind"], "synthetic");
        let parents = origin["parents"].as_array().unwrap();
        assert_eq!(parents.len(), 2, "{row}");
        let parent_rows: Vec<u64> = parents
            .iter()
            .map(|p| p["row_index"].as_u64().unwrap())
            .collect();
        assert_ne!(parent_rows[0], parent_rows[1], "{row}");
        // Depth: one more than the deepest parent; seed row 2 was generated before (depth 1).
        assert_eq!(
            origin["depth"],
            if parent_rows.contains(&2) { 2 } else { 1 },
            "{row}"
        );
        assert_eq!(
            parents[0]["id"],
            ["a", "b", "c", "d"][parent_rows[0] as usize]
        );
    }
    for d in &duplicates {
        assert!(
            d["assay_gate"]["reason"]
                .as_str()
                .unwrap()
                .starts_with("near-duplicate"),
            "{d}"
        );
    }
    // The three calls are stored; a rerun makes none and writes the same rows.
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM annotations"), 3);
    generate(&task, &db, &out, &[]);
    assert_eq!(items_scored_per_run(&db), [3, 0]);
    assert_eq!(read_jsonl(&out), rows);
}

/// `kill -9` mid-run loses at most the chunk in flight (4 seed rows): the rows committed stay, the rerun
/// generates only the rest, and the output equals an uninterrupted run's.
#[test]
fn kill_9_loses_at_most_the_chunk_in_flight() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..16)
        .map(|i| {
            format!(
                "{}\n",
                json!({"id": i, "instruction": format!("Write a sentence about the number {i}.")})
            )
        })
        .collect();
    std::fs::write(dir.path().join("seeds.jsonl"), rows).unwrap();
    let task = generate_task(dir.path(), "");
    let (whole_db, whole_out) = (dir.path().join("whole.db"), dir.path().join("whole.jsonl"));
    generate(&task, &whole_db, &whole_out, &[]);
    let (db, out) = (
        dir.path().join("killed.db"),
        dir.path().join("killed.jsonl"),
    );
    let mut child = assay()
        .arg("generate")
        .arg(&task)
        .arg("--output")
        .arg(&out)
        .arg("--store")
        .arg(&db)
        .args(["--threads", "1", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut killed_at = 0;
    while Instant::now() < deadline && killed_at == 0 {
        std::thread::sleep(Duration::from_millis(10));
        if db.exists() {
            killed_at =
                std::panic::catch_unwind(|| sql_count(&db, "SELECT COUNT(*) FROM annotations"))
                    .unwrap_or(0);
            if killed_at > 0 {
                child.kill().unwrap(); // SIGKILL
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
    }
    child.wait().unwrap();
    let committed = sql_count(&db, "SELECT COUNT(*) FROM annotations");
    assert!(
        committed > 0 && committed < 16,
        "killed with {committed} rows committed"
    );
    assert_eq!(
        committed % 4,
        0,
        "only whole chunks are committed, got {committed}"
    );
    assert!(!out.exists(), "a killed run writes no output");
    generate(&task, &db, &out, &[]);
    let scored = items_scored_per_run(&db);
    assert_eq!(
        scored.iter().sum::<i64>(),
        16,
        "nothing generated twice: {scored:?}"
    );
    assert_eq!(read_jsonl(&out), read_jsonl(&whole_out));
}
