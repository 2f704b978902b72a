//! Issue 14 §2: `assay audit source` with the real SmolLM2. Fluent sentences are far likelier under the model
//! than the same words reversed, so with the fluent rows labeled as the model's and the shuffled ones as human,
//! the per-token likelihoods, the curvature, the threshold (chosen on one half, checked on the other), the
//! flags, AUROC, attribution and the HTML report must come out as they do below. The detection figures on real model-written text are in
//! `bench/source_detect.sh`.

mod common;

use common::*;
use serde_json::{json, Value};

const FLUENT: [&str; 6] = [
    "The weather today is sunny and warm, so we are going to the park.",
    "I think you should talk to your doctor before you stop taking the medicine.",
    "Thank you for your help, I really appreciate it.",
    "Here are a few tips to help you sleep better at night.",
    "It is important to drink enough water every day.",
    "Please let me know if you have any other questions.",
];

/// The words of `s` in reverse order.
fn shuffled(s: &str) -> String {
    let mut words: Vec<&str> = s.split_whitespace().collect();
    words.reverse();
    words.join(" ")
}

#[test]
fn issue_14_audit_source_scores_flags_and_attributes_with_the_real_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("texts.jsonl");
    let mut lines = Vec::new();
    for s in FLUENT {
        lines.push(json!({"prompt": "Say something.", "text": s, "who": "smollm2-135m-instruct"}));
        lines.push(json!({"prompt": "Say something.", "text": shuffled(s), "who": "human"}));
    }
    lines.push(json!({"prompt": "Say something.", "text": "", "who": "human"}));
    std::fs::write(
        &input,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let out = d.join("scored.jsonl");
    let summary = d.join("summary.json");
    let report = d.join("source.html");
    let run = |extra: &[&str]| {
        let mut cmd = assay();
        cmd.args(["--quiet", "audit", "source"])
            .arg(&input)
            .args([
                "--text-column",
                "text",
                "--prompt-column",
                "prompt",
                "--reference-model",
                "smollm2-135m-instruct",
                "--threads",
                "2",
            ])
            .args(extra);
        cmd.output().unwrap()
    };
    let result = run(&[
        "--label-column",
        "who",
        "--max-fpr",
        "0.2",
        "--output",
        out.to_str().unwrap(),
        "--json",
        summary.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{result:?}");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("row 13: no text in column `text`; left out"),
        "{stderr}"
    );
    let rows = read_jsonl(&out);
    assert_eq!(rows.len(), 12);
    for r in &rows {
        let m = &r["assay_source"]["models"]["smollm2-135m-instruct"];
        let tokens = m["tokens"].as_f64().unwrap();
        assert!(tokens >= 5.0, "{r}");
        let logprob = m["logprob"].as_f64().unwrap();
        assert!(logprob < 0.0);
        assert!((m["mean_logprob"].as_f64().unwrap() - logprob / tokens).abs() < 1e-9);
        let bytes = r["text"].as_str().unwrap().len() as f64;
        assert!((m["per_byte"].as_f64().unwrap() - logprob / bytes).abs() < 1e-9);
        assert_eq!(r["assay_source"]["attributed"], "smollm2-135m-instruct");
        assert!(m["curvature"].as_f64().unwrap().is_finite(), "{r}");
        assert!(m["binoculars"].as_f64().unwrap() > 0.0, "{r}");
    }
    // Labeled rows alternate between fitting and checking, within each label.
    let fitted: Vec<bool> = rows
        .iter()
        .map(|r| r["assay_source"]["fitted"].as_bool().unwrap())
        .collect();
    assert_eq!(
        fitted,
        [true, true, false, false, true, true, false, false, true, true, false, false]
    );
    // Every fluent sentence is likelier per token than its own words reversed.
    for pair in rows.chunks(2) {
        let score = |r: &Value| r["assay_source"]["score"].as_f64().unwrap();
        assert!(score(&pair[0]) > score(&pair[1]), "{pair:?}");
    }
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["rows_checked"], 12);
    assert_eq!(s["rows_left_out"], 1);
    assert_eq!(s["auroc"], 1.0);
    assert_eq!(s["anchor_auroc"][0]["auroc"], 1.0);
    assert_eq!(s["attribution_accuracy"], 1.0);
    assert_eq!(s["auroc_held_out"], 1.0);
    let t = &s["threshold"];
    assert!(
        t["fitted"]["false_positive_rate"].as_f64().unwrap() <= 0.2,
        "{t}"
    );
    assert_eq!(t["fitted"]["true_positive_rate"], 1.0);
    assert_eq!(t["fitted"]["human_rows"], 3);
    assert_eq!(t["held_out"]["model_rows"], 3);
    // The anchors: one model's likelihood, curvature and Binoculars, each with its held-out figure.
    let detectors: Vec<&str> = s["anchor_auroc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["detector"].as_str().unwrap())
        .collect();
    assert_eq!(
        detectors,
        [
            "mean log-likelihood",
            "Fast-DetectGPT curvature",
            "Binoculars (one model)"
        ]
    );
    let html = std::fs::read_to_string(&report).unwrap();
    for needle in [
        "Text from other models",
        "human (6 rows)",
        "smollm2-135m-instruct (6 rows)",
        "Fast-DetectGPT curvature under smollm2-135m-instruct",
        "AUROC, held-out half",
    ] {
        assert!(html.contains(needle), "{needle} not in the report");
    }
    // The flags are the threshold applied to the score, and the summary counts them.
    let flagged = rows
        .iter()
        .filter(|r| r["assay_source"]["flagged"] == true)
        .count();
    for r in &rows {
        let above = r["assay_source"]["score"].as_f64().unwrap() >= t["value"].as_f64().unwrap();
        assert_eq!(r["assay_source"]["flagged"], above);
    }
    assert_eq!(s["flagged"], flagged);
    let interval = s["flagged_interval"].as_array().unwrap();
    let share = flagged as f64 / 12.0;
    assert!(interval[0].as_f64().unwrap() < share && share < interval[1].as_f64().unwrap());

    // A sample is seeded: the same rows each time, fewer than the input.
    let sampled = |name: &str| {
        let path = d.join(name);
        let r = run(&["--sample", "3", "--output", path.to_str().unwrap()]);
        assert!(r.status.success(), "{r:?}");
        let texts: Vec<String> = read_jsonl(&path)
            .iter()
            .map(|r| r["text"].as_str().unwrap().to_string())
            .collect();
        texts
    };
    let a = sampled("a.jsonl");
    assert_eq!(a.len(), 3);
    assert_eq!(a, sampled("b.jsonl"));
    // Without labels there is no threshold, so nothing is flagged.
    let printed = String::from_utf8_lossy(&run(&["--sample", "2"]).stdout).into_owned();
    assert!(printed.contains("no threshold"), "{printed}");
    // A label naming no reference model is an error that says so.
    std::fs::write(
        &input,
        "{\"prompt\": \"hi\", \"text\": \"hello there\", \"who\": \"gpt-9\"}\n",
    )
    .unwrap();
    let r = run(&["--label-column", "who"]);
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr)
            .contains("`gpt-9` is neither `human` nor a reference model"),
        "{r:?}"
    );
}
