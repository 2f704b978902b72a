//! Issue 14 §2: `assay audit source` with the real SmolLM2. Fluent sentences are far likelier under the model
//! than the same words reversed, so with the fluent rows labeled as the model's and the shuffled ones as human,
//! the per-token likelihoods, the curvature, the threshold (chosen on one half, checked on the other), the
//! flags, AUROC, attribution and the HTML report must come out as they do below. The detection figures on real model-written text are in
//! `bench/source_detect.sh`.

mod common;
#[path = "../../assay-llm/tests/support/llama_server.rs"]
mod llama_server;

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

#[test]
fn issue_14_audit_source_reads_a_served_models_prompt_log_probabilities() {
    if !llama_server::server_available() {
        return;
    }
    let _ = assay();
    let gguf = test_home().join("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    let server = llama_server::LlamaServer::start(&gguf);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("texts.jsonl");
    let mut lines = String::new();
    for s in &FLUENT[..4] {
        lines += &format!(
            "{}\n",
            json!({"prompt": "Say something.", "text": s, "who": "smollm2"})
        );
        lines += &format!(
            "{}\n",
            json!({"prompt": "Say something.", "text": shuffled(s), "who": "human"})
        );
    }
    std::fs::write(&input, lines).unwrap();
    let out = d.join("scored.jsonl");
    let summary = d.join("summary.json");
    let reference = format!("http://127.0.0.1:{}/v1#smollm2", server.port);
    ok(assay()
        .args(["--quiet", "audit", "source"])
        .arg(&input)
        .args(["--text-column", "text", "--prompt-column", "prompt"])
        .args(["--reference-model", &reference, "--label-column", "who"])
        // llama-cpp-python 0.3.36 shifts echoed log-probabilities by one token when the prompt starts with no
        // BOS or control token (SmolLM2 adds none): the ChatML layout starts with `<|im_start|>`.
        .args(["--served-template", "chatml"])
        .arg("--output")
        .arg(&out)
        .arg("--json")
        .arg(&summary));
    let rows = read_jsonl(&out);
    assert_eq!(rows.len(), 8);
    for pair in rows.chunks(2) {
        let m = |r: &Value| r["assay_source"]["models"]["smollm2"].clone();
        // Served models give no distributions: the log-likelihood per byte is the detector.
        assert!(m(&pair[0]).get("curvature").is_none(), "{pair:?}");
        let bytes = pair[0]["text"].as_str().unwrap().len() as f64;
        let logprob = m(&pair[0])["logprob"].as_f64().unwrap();
        assert!(logprob < 0.0);
        assert!((m(&pair[0])["mean_logprob"].as_f64().unwrap() - logprob / bytes).abs() < 1e-9);
        let score = |r: &Value| r["assay_source"]["score"].as_f64().unwrap();
        assert!(score(&pair[0]) > score(&pair[1]), "{pair:?}");
    }
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["auroc"], 1.0);
    assert_eq!(s["models"][0], "smollm2");
    // The same file in-process, with its own ChatML template: the same log-likelihoods, to llama.cpp builds'
    // rounding.
    let local = d.join("local.jsonl");
    ok(assay()
        .args(["--quiet", "audit", "source"])
        .arg(&input)
        .args(["--text-column", "text", "--prompt-column", "prompt"])
        .args([
            "--reference-model",
            "smollm2-135m-instruct",
            "--threads",
            "2",
        ])
        .arg("--output")
        .arg(&local));
    for (served, embedded) in rows.iter().zip(read_jsonl(&local)) {
        let a = served["assay_source"]["models"]["smollm2"]["logprob"]
            .as_f64()
            .unwrap();
        let b = embedded["assay_source"]["models"]["smollm2-135m-instruct"]["logprob"]
            .as_f64()
            .unwrap();
        assert!(
            (a - b).abs() < 0.02 * b.abs() + 0.1,
            "served {a}, embedded {b}"
        );
    }
}
