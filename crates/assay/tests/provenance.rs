//! Issue 14: where the data came from. The real model labels a small SMS set in which two rows were generated
//! (`assay_origin`, depth 1 and 2, as a `generate` task writes them), two people answer the routed rows through
//! the running `assay serve`, and `assay audit mix`, `assay export` (its origin columns, `--human-only`, the
//! license column, the policy checks) and the dataset card beside the export report exactly what happened.
//! Issue 12: export reads the labeler the task chose (the probe's labels where the probe decides).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

const SHA: &str = "abababababababababababababababababababababababababababababababab";
const PROMPT: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

/// The first `rows` SMS rows as JSONL; the rows in `synthetic` (row, depth) carry a generated row's origin.
fn sms_jsonl(path: &Path, rows: usize, synthetic: &[(usize, u32)]) -> Vec<Value> {
    let csv = std::fs::read_to_string(repo().join("examples/sms-spam/sms-500.csv")).unwrap();
    let mut out = Vec::new();
    for (i, line) in csv.lines().skip(1).take(rows).enumerate() {
        let mut parts = line.splitn(3, ',');
        let (id, label, text) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap().trim_matches('"'),
        );
        let mut row = json!({"id": id, "label": label, "text": text});
        if let Some((_, depth)) = synthetic.iter().find(|(r, _)| *r == i) {
            row["assay_origin"] = json!({
                "kind": "synthetic",
                "generator": {"model": "smollm2-135m-instruct", "model_sha256": SHA, "prompt_hash": PROMPT,
                              "task": "sms-generate"},
                "depth": depth,
                "parents": [{"dataset_sha256": SHA, "row_index": 0, "id": "2"}],
            });
        }
        out.push(row);
    }
    let text: String = out.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
    out
}

fn task_file(dir: &Path, tail: &str) -> PathBuf {
    let task = dir.join("task.toml");
    std::fs::write(
        &task,
        format!(
            "name = \"sms-origin\"\ntype = \"classify\"\ndataset = \"sms.jsonl\"\noutput = \"labeled.jsonl\"\n\
             input = \"{{{{ text }}}}\"\ngold = \"label\"\nlabels = [\"ham\", \"spam\"]\n{tail}"
        ),
    )
    .unwrap();
    task
}

/// The server, ended when the test ends (also when it fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run and insist on failure, returning stderr.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "expected a failure; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn issue_14_origin_shares_human_only_licenses_policy_and_card_after_people_answer_in_assay_serve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = sms_jsonl(&d.join("sms.jsonl"), 8, &[(6, 1), (7, 2)]);
    let task = task_file(
        d,
        "\n[provenance]\nname = \"uci/sms-spam\"\nsource = \"https://archive.ics.uci.edu/dataset/228\"\n\
         \n[review]\nlowest-share = 0.5\noverlap = 1\n",
    );
    // The license comes from the sidecar beside the data; the task names the source.
    std::fs::write(
        d.join("sms.jsonl.provenance.toml"),
        "license = \"CC-BY-4.0\"\nattribution = \"Almeida and Gomez Hidalgo\"\n",
    )
    .unwrap();
    let db = d.join("store.db");
    let cmd = |args: &[&str]| {
        let mut c = assay();
        c.args(args).arg("--store").arg(&db).arg("--quiet");
        c
    };
    let run = |args: &[&str]| ok(&mut cmd(args));
    let t = task.to_str().unwrap();
    run(&["label", t, "--threads", "2"]);
    let labeled = read_jsonl(&d.join("labeled.jsonl"));
    assert_eq!(labeled.len(), 8);
    // alice is an expert (issue 14: her labels are `expert-generated` on the card), bob is not.
    let alice = run(&["annotator", "add", "alice", "--skill", "expert"])
        .trim()
        .to_string();
    let bob = run(&["annotator", "add", "bob"]).trim().to_string();
    run(&["project", "create", t]);

    // The least confident half (4 rows) goes to people, one answer each: bob answers two, alice the rest,
    // each the opposite of the machine. Between them, an export's card has no expert-generated labels yet.
    let mut serve = assay();
    serve
        .arg("--store")
        .arg(&db)
        .args(["serve", "--bind", "127.0.0.1:0"]);
    let (server, port) = spawn_server(serve);
    let server = KillOnDrop(server);
    let mut answered: Vec<(String, &str, String)> = Vec::new();
    for who in [&bob, &bob, &alice, &alice, &alice] {
        let name = if who == &alice { "alice" } else { "bob" };
        if answered.len() == 2 && who == &alice {
            let before = d.join("before-alice").join("labels.jsonl");
            std::fs::create_dir_all(before.parent().unwrap()).unwrap();
            run(&[
                "export",
                "--format",
                "labels",
                t,
                "--output",
                before.to_str().unwrap(),
            ]);
            let card = d.join("before-alice").join("README.md");
            let text = std::fs::read_to_string(&card).unwrap();
            assert!(
                text.contains("| final label: human, expert-generated | 0 | 0.0% |")
                    && text.contains("| final label: human, crowdsourced | 2 | 25.0% |"),
                "{text}"
            );
            if let Some(parsed) = dataset_card(&card) {
                assert_eq!(
                    parsed["data"]["annotations_creators"],
                    json!(["crowdsourced", "machine-generated"])
                );
            }
        }
        let (status, body) = http(port, "GET", "/api/projects/1/next", Some(who), None);
        if status == 204 {
            break;
        }
        assert_eq!(status, 200, "{body}");
        let view: Value = serde_json::from_str(&body).unwrap();
        let text = view.to_string();
        let row = labeled
            .iter()
            .find(|r| text.contains(r["text"].as_str().unwrap()))
            .expect("the assignment shows a labeled row");
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
            Some(who),
            Some(&format!(
                r#"{{"value": "{answer}", "duration_ms": 700, "suggestion_shown": true}}"#
            )),
        );
        assert_eq!(status, 200, "{body}");
        answered.push((
            row["text"].as_str().unwrap().to_string(),
            name,
            answer.to_string(),
        ));
    }
    drop(server);
    assert_eq!(answered.len(), 4, "lowest-share 0.5 of 8 rows");
    // The store's view of people's answers holds exactly them (migration 0006).
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM human_labels"), 4);
    assert_eq!(
        sql_count(
            &db,
            "SELECT COUNT(*) FROM human_labels WHERE annotator = 'alice'"
        ),
        2
    );
    let synthetic_text: Vec<&str> = [6, 7]
        .iter()
        .map(|&i| data[i]["text"].as_str().unwrap())
        .collect();
    let by = |name: &str| answered.iter().filter(|a| a.1 == name).count();

    // `assay audit mix`: the shares, exactly.
    let mix_json = d.join("mix.json");
    let printed = run(&["audit", "mix", t, "--json", mix_json.to_str().unwrap()]);
    assert!(printed.contains("policy: met"), "{printed}");
    assert!(printed.contains("license CC-BY-4.0"), "{printed}");
    let mix: Value = serde_json::from_str(&std::fs::read_to_string(&mix_json).unwrap()).unwrap();
    let total = &mix["total"];
    assert_eq!(total["rows"], 8);
    assert_eq!(total["records"], json!({"imported": 6, "synthetic": 2}));
    assert_eq!(total["depths"], json!({"1": 1, "2": 1}));
    assert_eq!(total["labels"], json!({"human": 4, "llm": 4}));
    assert_eq!(total["label_shares"]["human"], 0.5);
    assert_eq!(
        total["people"],
        json!({"alice": by("alice"), "bob": by("bob")})
    );
    assert_eq!(total["synthetic_share"], 0.25);
    assert_eq!(total["expert_labels"], by("alice"));
    assert_eq!(total["max_depth"], 2);
    assert_eq!(total["mean_depth"], 3.0 / 8.0);
    let model = &total["models"][0];
    assert_eq!(model["rows"], 4);
    assert!(model["model"]
        .as_str()
        .unwrap()
        .starts_with("smollm2-135m-instruct@"));
    assert_eq!(model["model_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(model["prompt_hash"].as_str().unwrap().len(), 64);
    assert_eq!(total["generators"][0]["model_sha256"], SHA);
    assert_eq!(total["generators"][0]["rows"], 2);
    assert_eq!(mix["datasets"].as_array().unwrap().len(), 1);
    assert_eq!(mix["datasets"][0]["name"], "uci/sms-spam");

    // The export: every row with its origin and license; the card beside it.
    let out = d.join("export").join("all.jsonl");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let printed = run(&[
        "export",
        "--format",
        "labels",
        t,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(
        printed.contains("25.0% synthetic (generation depth max 2, mean 0.38)"),
        "{printed}"
    );
    let rows = read_jsonl(&out);
    assert_eq!(rows.len(), 8);
    for r in &rows {
        let text = r["text"].as_str().unwrap();
        let people = answered.iter().find(|a| a.0 == text);
        assert_eq!(r["license"], "CC-BY-4.0");
        assert_eq!(
            r["labeler"],
            if people.is_some() { "human" } else { "llm" },
            "{r}"
        );
        let generated = synthetic_text.contains(&text);
        assert_eq!(
            r["record_origin"],
            if generated { "synthetic" } else { "imported" }
        );
        assert_eq!(r["generation_depth"].as_u64().unwrap() > 0, generated);
        if let Some((_, who, answer)) = people {
            assert_eq!(r["label"], answer.as_str());
            assert_eq!(r["human_answers"][0]["annotator"], *who);
        }
    }
    // The card: the Hub's own parser reads its header.
    let card = d.join("export").join("README.md");
    let card_text = std::fs::read_to_string(&card).unwrap();
    assert!(
        card_text.contains("| final label: human | 4 | 50.0% |"),
        "{card_text}"
    );
    assert!(
        card_text.contains("Duplicates in uci/sms-spam: not run (`assay audit dups`)"),
        "{card_text}"
    );
    assert!(
        card_text.contains("Almeida and Gomez Hidalgo"),
        "{card_text}"
    );
    assert!(
        card_text.contains("| final label: human, expert-generated | 2 | 25.0% |")
            && card_text.contains("| final label: human, crowdsourced | 2 | 25.0% |"),
        "{card_text}"
    );
    assert!(card_text.contains("expert-generated when one of them answered it): alice."));
    if let Some(parsed) = dataset_card(&card) {
        let data = &parsed["data"];
        assert_eq!(data["license"], json!(["cc-by-4.0"]));
        assert_eq!(
            data["annotations_creators"],
            json!(["crowdsourced", "expert-generated", "machine-generated"])
        );
        assert_eq!(
            data["language_creators"],
            json!(["found", "machine-generated"])
        );
        assert_eq!(data["source_datasets"], json!(["extended|uci/sms-spam"]));
        assert_eq!(data["size_categories"], json!(["n<1K"]));
        assert_eq!(data["task_categories"], json!(["text-classification"]));
        assert_eq!(data["configs"][0]["data_files"][0]["path"], "all.jsonl");
        assert!(parsed["text"]
            .as_str()
            .unwrap()
            .contains("Synthetic share 25.0%"));
    }

    // `--human-only`: exactly the rows people decided whose text was not generated; no machine label.
    let human = d.join("human.jsonl");
    run(&[
        "export",
        "--format",
        "labels",
        t,
        "--human-only",
        "--output",
        human.to_str().unwrap(),
    ]);
    let kept = read_jsonl(&human);
    let mut expected: Vec<&str> = answered
        .iter()
        .map(|a| a.0.as_str())
        .filter(|t| !synthetic_text.contains(t))
        .collect();
    let mut got: Vec<&str> = kept.iter().map(|r| r["text"].as_str().unwrap()).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert!(kept
        .iter()
        .all(|r| r["labeler"] == "human" && r["record_origin"] == "imported"));
    // A README.md that assay did not write is never overwritten: the card goes beside the export.
    std::fs::write(d.join("README.md"), "# my project\n").unwrap();
    run(&[
        "export",
        "--format",
        "labels",
        t,
        "--human-only",
        "--output",
        human.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(d.join("README.md")).unwrap(),
        "# my project\n"
    );
    let beside = std::fs::read_to_string(d.join("human.jsonl.README.md")).unwrap();
    // The creators of exactly the rows kept: expert-generated where alice answered, crowdsourced where bob did.
    let mut creators = String::from("annotations_creators:\n");
    for (who, creator) in [("bob", "crowdsourced"), ("alice", "expert-generated")] {
        if kept
            .iter()
            .any(|r| r["human_answers"][0]["annotator"] == who)
        {
            creators.push_str(&format!("- \"{creator}\"\n"));
        }
    }
    assert!(
        beside.contains(&format!("{creators}language_creators")),
        "{beside}"
    );

    // Policy: a denied license fails the export, names the dataset, writes nothing.
    let denied = d.join("denied.jsonl");
    let policy = d.join("policy.toml");
    std::fs::write(&policy, "[policy]\ndeny = [\"CC-BY-*\"]\n").unwrap();
    let err = fails(&mut cmd(&[
        "export",
        "--format",
        "labels",
        t,
        "--output",
        denied.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]));
    assert!(
        err.contains("policy.deny") && err.contains("uci/sms-spam is under CC-BY-4.0"),
        "{err}"
    );
    assert!(err.contains("rows 1, 2, 3, 4, 5, 6, 7, 8"), "{err}");
    assert!(!denied.exists());
    // The synthetic share and the generation depth.
    std::fs::write(
        &policy,
        "max-synthetic-share = 0.2\nmax-generation-depth = 1\n",
    )
    .unwrap();
    let err = fails(&mut cmd(&[
        "export",
        "--format",
        "labels",
        t,
        "--output",
        denied.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]));
    assert!(
        err.contains("2 of 8 rows (25.0%) are synthetic, above the 20.0% allowed"),
        "{err}"
    );
    assert!(err.contains("uci/sms-spam rows 7, 8"), "{err}");
    assert!(
        err.contains("1 rows are deeper than generation 1 (deepest: 2); from; uci/sms-spam rows 8"),
        "{err}"
    );
    // `--human-only` leaves the generated rows out, so the same policy passes.
    ok(&mut cmd(&[
        "export",
        "--format",
        "labels",
        t,
        "--human-only",
        "--output",
        denied.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]));
    // mix = "replace" keeps only the newest generation (depth 2): the setting the guard exists against.
    std::fs::write(&policy, "mix = \"replace\"\n").unwrap();
    let printed = run(&[
        "export",
        "--format",
        "labels",
        t,
        "--output",
        denied.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(
        printed.contains("mix = \"replace\" left out 7 rows"),
        "{printed}"
    );
    assert_eq!(read_jsonl(&denied).len(), 1);
    // A license that is not SPDX, and a required license that is missing, name the dataset.
    std::fs::write(
        d.join("sms.jsonl.provenance.toml"),
        "license = \"CC BY 4\"\n",
    )
    .unwrap();
    let err = fails(&mut cmd(&["audit", "mix", t]));
    assert!(
        err.contains("dataset uci/sms-spam: `CC BY 4` is not an SPDX license expression"),
        "{err}"
    );
    std::fs::remove_file(d.join("sms.jsonl.provenance.toml")).unwrap();
    std::fs::write(&policy, "require-license = true\n").unwrap();
    let out = cmd(&["audit", "mix", t, "--policy", policy.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("policy.require-license: dataset uci/sms-spam has no license"),
        "{printed}"
    );
}

/// Issue 12: with a `[probe]`, `assay export` reads the labeler the task chose: `auto` as the last run's summary
/// recorded it, `probe` and `llm` as the task says.
#[test]
fn issue_12_export_reads_the_labeler_the_task_chose() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sms_jsonl(&d.join("sms.jsonl"), 40, &[]);
    let probe = |labeler: &str| {
        format!("\n[probe]\nembedder = \"llm\"\nlabeler = \"{labeler}\"\nmin-rows = 5\nfolds = 3\n")
    };
    let task = task_file(d, &probe("auto"));
    let db = d.join("store.db");
    let run = |args: &[&str]| ok(assay().args(args).arg("--store").arg(&db).arg("--quiet"));
    let t = task.to_str().unwrap();
    let summary = d.join("summary.json");
    run(&[
        "label",
        t,
        "--threads",
        "2",
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let chose = summary["probe"]["labeler"].as_str().unwrap().to_string();
    let labeled = read_jsonl(&d.join("labeled.jsonl"));
    let export = |name: &str| {
        let out = d.join(name);
        run(&[
            "export",
            "--format",
            "labels",
            t,
            "--output",
            out.to_str().unwrap(),
        ]);
        read_jsonl(&out)
    };
    let check = |rows: &[Value], labeler: &str| {
        assert_eq!(rows.len(), 40);
        for (r, l) in rows.iter().zip(&labeled) {
            assert_eq!(r["labeler"], labeler, "{r}");
            let annotator = r["provenance"]["annotator"].as_str().unwrap();
            let machine = if labeler == "probe" {
                assert!(annotator.starts_with("probe:"), "{annotator}");
                &l["assay"]["probe"]["label"]
            } else {
                assert!(
                    annotator.starts_with("smollm2-135m-instruct@"),
                    "{annotator}"
                );
                // The LLM's label is `assay.llm` beside the probe's when the run chose the probe.
                if l["assay"]["llm"].is_object() {
                    &l["assay"]["llm"]["label"]
                } else {
                    &l["assay"]["label"]
                }
            };
            assert_eq!(&r["model_label"], machine, "{r}");
            assert_eq!(r["label"], *machine);
        }
    };
    check(&export("auto.jsonl"), &chose);
    std::fs::write(
        &task,
        std::fs::read_to_string(&task)
            .unwrap()
            .replace("\"auto\"", "\"probe\""),
    )
    .unwrap();
    check(&export("probe.jsonl"), "probe");
    std::fs::write(
        &task,
        std::fs::read_to_string(&task)
            .unwrap()
            .replace("\"probe\"\nmin", "\"llm\"\nmin"),
    )
    .unwrap();
    check(&export("llm.jsonl"), "llm");
    let mix = d.join("mix.json");
    run(&["audit", "mix", t, "--json", mix.to_str().unwrap()]);
    let mix: Value = serde_json::from_str(&std::fs::read_to_string(&mix).unwrap()).unwrap();
    assert_eq!(mix["total"]["labels"], json!({"llm": 40}));
}
