//! `assay qc` on real crowd data: Snow et al. (2008) RTE and the PandaLM test set, converted from the slices in
//! `tests/data` into the `item,annotator,label` layout the command reads; bad rows; the HTML report, also
//! rendered in headless Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The repository's `tests/data` (see its README); missing data fails the test.
fn datasets() -> PathBuf {
    let dir = repo().join("tests/data");
    assert!(
        dir.is_dir(),
        "{} is missing: these tests read the data slices kept in the repository",
        dir.display()
    );
    dir
}

/// Writes Snow et al. (2008) RTE (800 items x 10 workers, expert gold) as `rte-answers.csv` and `rte-gold.csv`.
fn write_rte(dir: &Path) {
    let reader = assay_io::open_dataset(&datasets().join("snow2008/rte.answers.csv")).unwrap();
    let mut answers = String::from("item,annotator,label\n");
    let mut gold = String::from("item,label\n");
    let mut seen = std::collections::HashSet::new();
    for row in reader {
        let row = row.unwrap().values;
        let field = |name: &str| row[name].as_str().unwrap().to_owned();
        let item = field("orig_id");
        answers.push_str(&format!(
            "{item},{},{}\n",
            field("!amt_worker_ids"),
            field("response")
        ));
        if seen.insert(item.clone()) {
            gold.push_str(&format!("{item},{}\n", field("gold")));
        }
    }
    std::fs::write(dir.join("rte-answers.csv"), answers).unwrap();
    std::fs::write(dir.join("rte-gold.csv"), gold).unwrap();
}

/// `assay qc` run in `dir` (so relative paths, and none of the temp dir's name, show in the output).
fn qc(dir: &Path) -> Command {
    let mut cmd = bare_assay(dir);
    cmd.current_dir(dir).arg("qc");
    cmd
}

fn svg_count(html: &str, class: &str) -> usize {
    html.matches(&format!("class=\"plot {class}\"")).count()
}

/// Snow et al. (2008) report majority vote agreeing with the expert gold on 685 of the 735 RTE items without a
/// 5-5 tie (93.2%); Dawid-Skene labels all 800 (742 right, as crowd-kit 1.4.2 gets).
#[test]
fn qc_on_snow_2008_rte_shows_the_published_majority_vote_and_the_report_has_its_plots() {
    let dir = tempfile::tempdir().unwrap();
    write_rte(dir.path());
    let stdout = ok(qc(dir.path()).args([
        "--annotations",
        "rte-answers.csv",
        "--gold",
        "rte-gold.csv",
        "--html",
        "rte-report.html",
    ]));
    assert!(stdout.contains("8000 answers from 164 annotators on 800 items"));
    assert!(stdout.contains("735 (65 ties)"), "{stdout}");
    assert!(stdout.contains("685/735 = 93.2%"), "{stdout}");
    assert!(stdout.contains("742/800 = 92.8%"), "{stdout}");
    assert!(stdout.contains("Fleiss' kappa"));
    assert!(stdout.contains("FLAGGED"));
    assert!(
        stdout.contains("[5.2%, 8.9%]"),
        "Wilson interval of 50/735: {stdout}"
    );
    assert!(
        stdout.contains("59 items"),
        "zero-defect n for 5% at 95%: {stdout}"
    );
    insta::assert_snapshot!(stdout);

    let html = std::fs::read_to_string(dir.path().join("rte-report.html")).unwrap();
    assert_eq!(svg_count(&html, "confusion"), 2, "MV and DS against gold");
    assert_eq!(svg_count(&html, "bars"), 1, "per-annotator accuracy");
    assert_eq!(svg_count(&html, "lines"), 2, "reliability and coverage");
    // Majority vote against gold: 314 + 371 = 685 on the diagonal.
    assert!(html.contains(">314</text>") && html.contains(">371</text>"));
    for outside in ["<script", "<link", "src=", "url("] {
        assert!(!html.contains(outside), "the report references {outside}");
    }
}

/// PandaLM (Wang et al. 2023): three annotators, pairwise Cohen's kappas 0.852, 0.879 and 0.862. With few
/// annotators `assay qc` shows every pair.
#[test]
fn qc_shows_every_pairs_kappa_for_few_annotators_pandalm() {
    let text =
        std::fs::read_to_string(datasets().join("pandalm/testset-v1.annotators.json")).unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let mut csv = String::from("item,annotator,label\n");
    for r in &records {
        for a in 1..=3 {
            csv.push_str(&format!(
                "{},annotator{a},{}\n",
                r["idx"],
                r[format!("annotator{a}")]
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pandalm.csv"), csv).unwrap();
    let stdout = ok(qc(dir.path()).args(["--annotations", "pandalm.csv", "--html", "p.html"]));
    for published in ["0.852", "0.879", "0.862"] {
        assert!(
            stdout.contains(&format!("{published} (999)")),
            "{published} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("n/a (no gold labels; pass --gold)"));
    insta::assert_snapshot!(stdout);
    // Without gold: Dawid-Skene against majority vote, bars of Dawid-Skene accuracy, no confidence plots.
    let html = std::fs::read_to_string(dir.path().join("p.html")).unwrap();
    assert_eq!(svg_count(&html, "confusion"), 1);
    assert!(html.contains("confusion matrix: majority vote (rows) against Dawid-Skene (columns)"));
    assert_eq!(svg_count(&html, "bars"), 1);
    assert_eq!(svg_count(&html, "lines"), 0);
    assert!(html.contains("0.852 (999)"));
}

#[test]
fn qc_reports_bad_rows_with_their_numbers_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("item,annotator,label,seconds\n");
    for i in 0..30 {
        for (a, label) in [("ann", i % 2), ("bob", i % 2), ("cy", (i / 3) % 2)] {
            csv.push_str(&format!("q{i},{a},{label},{}\n", 3 + i % 4));
        }
    }
    csv.push_str("q1,dee,,4\n"); // row 91: no label
    csv.push_str("q2,dee,1\n"); // row 92: too few fields
    csv.push_str("q3,dee,0,slow\n"); // row 93: seconds not a number
    std::fs::write(dir.path().join("a.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("g.csv"),
        "item,label\nq0,0\nq1,1\nq1,0\nnowhere,1\n",
    )
    .unwrap();
    let stdout = ok(qc(dir.path()).args([
        "--annotations",
        "a.csv",
        "--gold",
        "g.csv",
        "--html",
        "r.html",
    ]));
    assert!(
        stdout.contains("skipped 3 bad rows in the annotations file"),
        "{stdout}"
    );
    assert!(stdout.contains("row 91: no `label`"), "{stdout}");
    assert!(stdout.contains("row 92: "), "{stdout}");
    assert!(stdout.contains("row 93: `seconds` is not"), "{stdout}");
    assert!(stdout.contains("skipped 1 bad rows in the gold file"));
    assert!(stdout.contains("row 3: item \"q1\" already has the gold label"));
    assert!(stdout.contains("(1 gold rows for items without answers)"));
    assert!(stdout.contains("90 answers from 3 annotators on 30 items"));
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(html.contains("Input problems") && html.contains("no `label`"));
}

#[test]
fn qc_names_missing_columns_and_hints_at_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id,worker,answer\n1,w,0\n").unwrap();
    let out = qc(dir.path())
        .args(["--annotations", "a.csv"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no column `item`, `annotator`, `label`"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "hint: the annotations file needs a header with the columns item, annotator, label"
        ),
        "{stderr}"
    );
}

#[test]
fn qc_needs_numeric_labels_for_interval_alpha() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "item,annotator,label\n1,a,low\n1,b,high\n",
    )
    .unwrap();
    let out = qc(dir.path())
        .args(["--annotations", "a.csv", "--level", "interval"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs numeric labels"), "{stderr}");
    assert!(stderr.contains("hint: use --level nominal"), "{stderr}");
}

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(profile: &Path) -> Command {
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// The RTE report rendered by a real browser: the DOM Chromium builds holds the plots, and a screenshot is taken
/// (kept in `docs/qc-report.png` when `ASSAY_UPDATE_DOCS=1`).
#[test]
fn qc_report_renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        skip_or_fail_in_ci(
            "qc_report_renders_in_headless_chromium",
            &format!("{CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)"),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_rte(dir.path());
    ok(qc(dir.path()).args([
        "--annotations",
        "rte-answers.csv",
        "--gold",
        "rte-gold.csv",
        "--html",
        "rte-report.html",
    ]));
    let url = format!("file://{}", dir.path().join("rte-report.html").display());

    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path())
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert_eq!(svg_count(&dom, "confusion"), 2, "{dom}");
    assert_eq!(svg_count(&dom, "bars"), 1);
    assert_eq!(svg_count(&dom, "lines"), 2);
    assert_eq!(
        dom.matches("<rect class=\"bar").count(),
        164,
        "a bar per annotator"
    );
    assert!(dom.contains("<polyline"), "the coverage curves");
    assert!(
        dom.contains("class=\"diagonal\""),
        "the reliability diagonal"
    );

    let shot = dir.path().join("qc-report.png");
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1200,1600", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if std::env::var_os("ASSAY_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(repo().join("docs/qc-report.png"), &png).unwrap();
    }
}

/// `assay qc TASK.toml` on ten hand-made labeled rows. Sorted by confidence, correct or not:
/// .95 y, .9 y, .9 y, .8 n, .7 y, .6 y, .6 n, .55 n, .5 y, .5 y. Accuracy 7/10; at threshold .7, 4 of 5 right (80%)
/// and no lower threshold reaches 80% (.6: 5/7, .55: 5/8, .5: 7/10). The audit of those 5 rows: 1 error, Wilson
/// 95% interval [3.6%, 62.4%]. ECE over 15 bins: (.05 + 2 x .1 + .8 + .3 + 3 x .25 + 2 x .5) / 10 = 0.310.
#[test]
fn qc_on_a_task_reports_the_threshold_for_the_target_accuracy_and_audits_what_it_accepts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("task.toml"),
        "name = \"toy\"\ntype = \"classify\"\noutput = \"toy.labeled.jsonl\"\ninput = \"{{ text }}\"\n\
         gold = \"gold\"\nlabels = [\"a\", \"b\"]\n",
    )
    .unwrap();
    let rows = [
        ("a", "a", 0.95),
        ("a", "a", 0.9),
        ("b", "b", 0.9),
        ("b", "a", 0.8),
        ("a", "a", 0.7),
        ("b", "b", 0.6),
        ("a", "b", 0.6),
        ("b", "a", 0.55),
        ("a", "a", 0.5),
        ("b", "b", 0.5),
    ];
    let mut jsonl = String::new();
    for (i, (gold, label, confidence)) in rows.iter().enumerate() {
        jsonl.push_str(&format!(
            "{{\"id\":\"{i}\",\"gold\":\"{gold}\",\"assay\":{{\"label\":\"{label}\",\"confidence\":{confidence}}}}}\n"
        ));
    }
    // A row without gold is skipped; one without a model label is reported.
    jsonl.push_str("{\"id\":\"x\",\"gold\":null,\"assay\":{\"label\":\"a\",\"confidence\":0.9}}\n");
    jsonl.push_str("{\"id\":\"y\",\"gold\":\"a\"}\n");
    std::fs::write(dir.path().join("toy.labeled.jsonl"), jsonl).unwrap();

    let out = ok(qc(dir.path()).args([
        "task.toml",
        "--target-accuracy",
        "0.8",
        "--target-error",
        "0.5",
        "--html",
        "report.html",
    ]));
    assert!(
        out.contains("10 rows with gold `gold` and a model label (1 without gold, 1 unusable)"),
        "{out}"
    );
    assert!(
        out.contains("accuracy 70.0% (2 labels); ECE (15 bins) 0.310"),
        "{out}"
    );
    assert!(
        out.contains("confidence >= 0.7000 reaches 80.0% accuracy on 50.0% of the gold rows"),
        "{out}"
    );
    assert!(out.contains("1 wrong of 5 auto-accepted rows"), "{out}");
    assert!(out.contains("Wilson 95% interval [3.6%, 62.4%]"), "{out}");
    // One-sided 95% Wilson upper bound for 1 of 5 is 56.5% > 50%.
    assert!(out.contains("fails the target error 50.0%"), "{out}");
    assert!(out.contains("row 12: no `assay` object"), "{out}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(
        svg_count(&html, "lines"),
        2,
        "reliability and coverage plots"
    );
    assert_eq!(svg_count(&html, "confusion"), 1);

    // 100% is only reached by the top three rows; a 60% target error passes (upper bound 56.5%).
    let out = ok(qc(dir.path()).args([
        "task.toml",
        "--target-accuracy",
        "1",
        "--target-error",
        "0.6",
    ]));
    assert!(
        out.contains("confidence >= 0.9000 reaches 100.0% accuracy on 30.0%"),
        "{out}"
    );
    assert!(out.contains("0 wrong of 3 auto-accepted rows"), "{out}");
    let out = ok(qc(dir.path()).args([
        "task.toml",
        "--target-accuracy",
        "0.8",
        "--target-error",
        "0.6",
    ]));
    assert!(out.contains("passes the target error 60.0%"), "{out}");
}

/// Confident learning over the model's distributions flags a planted wrong gold label (and only it): 20 rows the
/// model is sure of and agrees with, one row whose gold says `b` where the model gives `a` 0.97.
#[test]
fn qc_on_a_task_flags_a_gold_label_the_model_confidently_contradicts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("task.toml"),
        "name = \"toy\"\ntype = \"classify\"\noutput = \"toy.labeled.jsonl\"\ninput = \"{{ text }}\"\n\
         gold = \"gold\"\nlabels = [\"a\", \"b\"]\n",
    )
    .unwrap();
    let mut jsonl = String::new();
    for i in 0..21 {
        let (gold, label, pa) = match i {
            13 => ("b", "a", 0.97),
            _ if i % 2 == 0 => ("a", "a", 0.9 + 0.001 * f64::from(i)),
            _ => ("b", "b", 0.1 - 0.001 * f64::from(i)),
        };
        let confidence = if label == "a" { pa } else { 1.0 - pa };
        jsonl.push_str(&format!(
            "{{\"id\":\"{i}\",\"gold\":\"{gold}\",\"assay\":{{\"label\":\"{label}\",\"confidence\":{confidence},\
             \"distribution\":{{\"a\":{pa},\"b\":{}}}}}}}\n",
            1.0 - pa
        ));
    }
    std::fs::write(dir.path().join("toy.labeled.jsonl"), jsonl).unwrap();
    let out = ok(qc(dir.path()).arg("task.toml"));
    assert!(
        out.contains(
            "Possible errors in the gold column (confident learning): 1 of 21 rows flagged"
        ),
        "{out}"
    );
    // Row 14 (1-based) is the planted one: gold b, the model suggests a.
    let line = out
        .lines()
        .find(|l| l.contains("│ 14 "))
        .unwrap_or_else(|| panic!("row 14 not listed:\n{out}"));
    assert!(
        line.contains("┆ b ") && line.contains("┆ a ") && line.contains("0.030"),
        "{line}"
    );
}

/// `assay qc TASK` on the output of a real labeling run (a 60-row slice labeled here by the bundled model).
#[test]
fn qc_on_the_sms_spam_task_output_of_a_real_labeling_run() {
    // Label a slice of the bundled sample with the real model first: the test never depends on a demo run.
    let dir = tempfile::tempdir().unwrap();
    let task = repo().join("examples/sms-spam/task.toml");
    let labeled = dir.path().join("sms.labeled.jsonl");
    ok(assay()
        .arg("--store")
        .arg(dir.path().join("store.db"))
        .arg("label")
        .arg(&task)
        .args(["--limit", "60", "--output"])
        .arg(&labeled));
    let out = ok(qc(dir.path())
        .arg(&task)
        .args(["--labels"])
        .arg(&labeled)
        .args(["--html", "report.html"]));
    assert!(
        out.contains("rows with gold `label` and a model label"),
        "{out}"
    );
    assert!(out.contains("audit:"), "{out}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(svg_count(&html, "lines"), 2);
    assert_eq!(svg_count(&html, "confusion"), 1);
}
