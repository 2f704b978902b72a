//! `assay audit source`: text written by another model. Each (sampled) row's text is read under each reference
//! model (`assay_label::source`): mean log-likelihood per token, Fast-DetectGPT's curvature and single-model
//! Binoculars (embedded models), a per-byte likelihood ratio between two models, optionally the similarity to
//! the model's own greedy answer; with labeled rows, a threshold chosen on one half with its false-positive rate
//! on both, the flagged share with a Wilson interval, AUROC beside single-model anchors, attribution accuracy,
//! and an HTML report of the score distributions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use assay_label::source::{self, SourceOptions, SourceText};
use assay_provenance::card::wilson;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::{json, Map, Value};

use crate::progress::items_bar;
use crate::settings::Settings;

/// Arguments of `assay audit source`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The dataset to check (JSONL, CSV, TSV or Parquet).
    pub input: PathBuf,
    /// The column holding the text.
    #[arg(long)]
    pub text_column: String,
    /// The column holding the prompt the text answers (the text is scored as the answer to it).
    #[arg(long)]
    pub prompt_column: Option<String>,
    /// A reference model: a cached model's name, a .gguf path, or a served model as `URL#MODEL` (an
    /// OpenAI-compatible /v1 endpoint with prompt log-probabilities through `echo`). Repeat for two.
    #[arg(long = "reference-model", required = true)]
    pub reference_models: Vec<String>,
    /// Check a seeded random sample of this many rows (the whole input when it is smaller).
    #[arg(long)]
    pub sample: Option<usize>,
    /// Seed of the sample.
    #[arg(long, default_value_t = 14)]
    pub seed: u64,
    /// A column saying who wrote each labeled row: `human`, or a reference model's name; rows with an empty cell
    /// are unlabeled. The threshold, AUROC and attribution accuracy come from the labeled rows.
    #[arg(long)]
    pub label_column: Option<String>,
    /// The largest false-positive rate on labeled human rows the flag threshold may have.
    #[arg(long, default_value_t = 0.05)]
    pub max_fpr: f64,
    /// Also generate each embedded model's greedy answer to the prompt and compare it with the text (word
    /// 3-gram Jaccard). Slow: one generation per row and model.
    #[arg(long)]
    pub greedy: bool,
    /// Per-row output (.jsonl): the input columns plus an `assay_source` column.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Under a base model (no chat template), read the text as the continuation of the prompt followed by this
    /// text, verbatim (e.g. $'\n\nAssistant:' for dialogues), instead of the `Input:`/`Answer:` layout.
    #[arg(long)]
    pub answer_after: Option<String>,
    /// How assay lays out the prompt for a served reference model: `chatml`, or `completion` (`Input:`/`Answer:`).
    #[arg(long, value_enum, default_value_t = ServedLayout::Completion)]
    pub served_template: ServedLayout,
    /// Tokens of each text measured under embedded models; longer texts are measured on their start.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Write an HTML report (the detectors side by side, the score distributions per group).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// CPU threads for embedded models.
    #[arg(long, default_value_t = assay_llm::embedded::default_threads())]
    pub threads: usize,
}

/// The prompt layouts assay renders for a served model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServedLayout {
    /// `<|im_start|>user ... <|im_start|>assistant` turns.
    Chatml,
    /// `Input: ... Answer:`.
    Completion,
}

/// A seeded sample of `count` of `len` indices, in input order (SplitMix64 partial Fisher-Yates).
fn sample_indices(len: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut idx: Vec<usize> = (0..len).collect();
    let count = count.min(len);
    for i in 0..count {
        let j = i + (next() % (len - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(count);
    idx.sort_unstable();
    idx
}

/// Run `assay audit source`.
pub fn run(settings: &Settings, args: SourceArgs) -> anyhow::Result<ExitCode> {
    if args.reference_models.len() > 2 {
        bail!("at most two --reference-model (the likelihood ratio compares two)");
    }
    if !(0.0..1.0).contains(&args.max_fpr) {
        bail!("--max-fpr must be in [0, 1), got {}", args.max_fpr);
    }
    let reader = assay_io::open_dataset(&args.input)?;
    let mut rows: Vec<Map<String, Value>> = Vec::new();
    let mut bad: Vec<(u64, String)> = Vec::new();
    let mut texts = Vec::new();
    for row in reader {
        match row {
            Ok(row) => {
                let text = row
                    .values
                    .get(&args.text_column)
                    .and_then(Value::as_str)
                    .filter(|t| !t.trim().is_empty())
                    .map(str::to_string);
                let prompt = match &args.prompt_column {
                    None => Ok(None),
                    Some(c) => row
                        .values
                        .get(c)
                        .and_then(Value::as_str)
                        .map(|p| Some(p.to_string()))
                        .ok_or_else(|| format!("no text in column `{c}`")),
                };
                match (text, prompt) {
                    (Some(text), Ok(prompt)) => {
                        texts.push(SourceText {
                            row_index: row.index,
                            text,
                            prompt,
                        });
                        rows.push(row.values);
                    }
                    (None, _) => bad.push((
                        row.index,
                        format!("no text in column `{}`", args.text_column),
                    )),
                    (_, Err(why)) => bad.push((row.index, why)),
                }
            }
            Err(e) => bad.push((e.index, e.reason)),
        }
    }
    for (index, reason) in bad.iter().take(10) {
        eprintln!("warning: row {}: {reason}; left out", index + 1);
    }
    if texts.is_empty() {
        bail!(
            "{}: no row has text in column `{}`",
            args.input.display(),
            args.text_column
        );
    }
    let total_rows = texts.len();
    if let Some(n) = args.sample.filter(|&n| n < texts.len()) {
        let keep = sample_indices(texts.len(), n, args.seed);
        texts = keep.iter().map(|&i| texts[i].clone()).collect();
        rows = keep.iter().map(|&i| rows[i].clone()).collect();
    }

    let options = SourceOptions {
        threads: args.threads,
        greedy: args.greedy,
        greedy_tokens: 64,
        answer_after: args.answer_after.as_deref(),
        max_tokens: args.max_tokens,
    };
    let mut backends = Vec::new();
    for reference in &args.reference_models {
        backends.push(
            source::open_reference(
                reference,
                &settings.home,
                match args.served_template {
                    ServedLayout::Chatml => assay_core::ChatTemplate::Chatml,
                    ServedLayout::Completion => assay_core::ChatTemplate::Completion,
                },
            )
            .with_context(|| format!("opening reference model `{reference}`"))?,
        );
    }
    let names: Vec<String> = backends.iter().map(|b| b.name().to_string()).collect();
    let labels: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            args.label_column.as_ref().and_then(|c| {
                r.get(c)
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_string)
            })
        })
        .collect();
    if let Some(unknown) = labels
        .iter()
        .flatten()
        .find(|l| *l != "human" && !names.contains(l))
    {
        bail!(
            "--label-column: `{unknown}` is neither `human` nor a reference model ({})",
            names.join(", ")
        );
    }
    let mut scores = Vec::new();
    for backend in &backends {
        let bar = items_bar(texts.len() as u64, backend.name(), settings.progress);
        let scored = source::score_texts(backend, &texts, options, &mut |done| {
            bar.set_position(done as u64)
        })?;
        bar.finish_and_clear();
        scores.push(scored);
    }
    let verdicts = source::verdicts(&names, &scores, &labels, args.max_fpr);

    // Figures on the labeled rows, on all of them and on the half held out from fitting.
    let n = texts.len();
    let is_human = |i: usize| labels[i].as_deref() == Some("human");
    let is_model = |i: usize| labels[i].as_deref().is_some_and(|l| l != "human");
    let held_out = |i: usize| verdicts.rows[i].fitted == Some(false);
    let auroc_of = |value: &dyn Fn(usize) -> f64, only_held_out: bool| {
        let pick = |f: &dyn Fn(usize) -> bool| -> Vec<f64> {
            (0..n)
                .filter(|&i| f(i) && (!only_held_out || held_out(i)))
                .map(value)
                .collect()
        };
        source::auroc(&pick(&is_model), &pick(&is_human))
    };
    let combined = |i: usize| verdicts.rows[i].score;
    let auroc = auroc_of(&combined, false);
    let auroc_held_out = auroc_of(&combined, true);
    // Single-model anchors: what a detector built on one model alone gets.
    let mut anchors: Vec<(String, String, Option<f64>, Option<f64>)> = Vec::new();
    for (m, name) in names.iter().enumerate() {
        let mean = |i: usize| scores[m][i].mean_logprob;
        anchors.push((
            name.clone(),
            "mean log-likelihood".into(),
            auroc_of(&mean, false),
            auroc_of(&mean, true),
        ));
        if scores[m].iter().all(|s| s.curvature.is_some()) {
            let curvature = |i: usize| scores[m][i].curvature.unwrap_or(f64::NAN);
            // Lower Binoculars ratio: more machine-like.
            let binoculars = |i: usize| -scores[m][i].binoculars.unwrap_or(f64::NAN);
            anchors.push((
                name.clone(),
                "Fast-DetectGPT curvature".into(),
                auroc_of(&curvature, false),
                auroc_of(&curvature, true),
            ));
            anchors.push((
                name.clone(),
                "Binoculars (one model)".into(),
                auroc_of(&binoculars, false),
                auroc_of(&binoculars, true),
            ));
        }
    }
    if names.len() == 2 {
        let ratio = |i: usize| verdicts.rows[i].likelihood_ratio.unwrap_or(f64::NAN).abs();
        anchors.push((
            format!("{} / {}", names[0], names[1]),
            "|per-byte likelihood ratio|".into(),
            auroc_of(&ratio, false),
            auroc_of(&ratio, true),
        ));
    }
    let written: Vec<usize> = (0..n).filter(|&i| is_model(i)).collect();
    let attribution = (!written.is_empty()).then(|| {
        written
            .iter()
            .filter(|&&i| Some(verdicts.rows[i].attributed.as_str()) == labels[i].as_deref())
            .count() as f64
            / written.len() as f64
    });
    let flagged = verdicts
        .rows
        .iter()
        .filter(|r| r.flagged == Some(true))
        .count();
    let interval = verdicts.threshold.as_ref().and_then(|_| wilson(flagged, n));
    let truncated = (0..n)
        .filter(|&i| scores.iter().any(|s| s[i].truncated_tokens > 0))
        .count();
    let threshold_text = verdicts.threshold.as_ref().map(|t| {
        let rates = |r: &source::Rates| {
            format!(
                "false-positive rate {:.1}% on {} human rows, true-positive rate {:.1}% on {} model rows",
                r.false_positive_rate * 100.0,
                r.human_rows,
                r.true_positive_rate * 100.0,
                r.model_rows
            )
        };
        match &t.held_out {
            Some(h) => format!(
                "{:.3}, chosen on half the labeled rows: {}; on the held-out half: {}",
                t.value,
                rates(&t.fitted),
                rates(h)
            ),
            None => format!(
                "{:.3}: {} (too few labeled rows to hold half out)",
                t.value,
                rates(&t.fitted)
            ),
        }
    });

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["", "value"]);
    table.add_row(["rows checked".to_string(), format!("{n} of {total_rows}")]);
    if truncated > 0 {
        table.add_row([
            "rows measured on their first tokens".to_string(),
            format!("{truncated} (longer than --max-tokens {})", args.max_tokens),
        ]);
    }
    for (m, name) in names.iter().enumerate() {
        let mean = scores[m].iter().map(|s| s.mean_logprob).sum::<f64>() / n as f64;
        table.add_row([
            format!("mean log-likelihood per token, {name}"),
            format!("{mean:.3}"),
        ]);
    }
    match &threshold_text {
        Some(text) => {
            table.add_row(["threshold (combined score)".to_string(), text.clone()]);
            let (lo, hi) = interval.unwrap_or((0.0, 0.0));
            table.add_row([
                "flagged as model-written".to_string(),
                format!(
                    "{flagged} ({:.1}%; 95% Wilson {:.1}%-{:.1}%)",
                    flagged as f64 / n as f64 * 100.0,
                    lo * 100.0,
                    hi * 100.0
                ),
            ]);
        }
        None => {
            table.add_row([
                "flagged".to_string(),
                "no threshold: give labeled rows (--label-column) to choose one".to_string(),
            ]);
        }
    }
    let both = |all: Option<f64>, held: Option<f64>| match (all, held) {
        (Some(a), Some(h)) => format!("{a:.3} (held-out half {h:.3})"),
        (Some(a), None) => format!("{a:.3}"),
        _ => "-".into(),
    };
    if auroc.is_some() {
        table.add_row([
            "AUROC model vs human (combined)".to_string(),
            both(auroc, auroc_held_out),
        ]);
        for (name, detector, all, held) in &anchors {
            table.add_row([
                format!("AUROC, anchor: {name}, {detector} only"),
                both(*all, *held),
            ]);
        }
    }
    if let Some(a) = attribution {
        table.add_row([
            "attribution accuracy (model rows)".to_string(),
            format!("{:.1}%", a * 100.0),
        ]);
    }
    outln!("{table}");

    if let Some(path) = &args.report {
        let group_of = |i: usize| labels[i].clone().unwrap_or_else(|| "unlabeled".into());
        let mut groups: Vec<String> = (0..n).map(group_of).collect();
        groups.sort();
        groups.dedup();
        let by_group = |value: &dyn Fn(usize) -> f64| -> Vec<(String, Vec<f64>)> {
            groups
                .iter()
                .map(|g| {
                    let values = (0..n).filter(|&i| &group_of(i) == g).map(value).collect();
                    (g.clone(), values)
                })
                .collect()
        };
        let mut detectors = vec![("combined score".to_string(), auroc, auroc_held_out)];
        detectors.extend(
            anchors
                .iter()
                .map(|(name, detector, all, held)| (format!("{name}: {detector}"), *all, *held)),
        );
        let per_model = names
            .iter()
            .enumerate()
            .map(|(m, name)| {
                let detector = if scores[m].iter().all(|s| s.curvature.is_some()) {
                    "Fast-DetectGPT curvature"
                } else {
                    "mean log-likelihood"
                };
                (
                    name.clone(),
                    detector.to_string(),
                    by_group(&|i| scores[m][i].detector()),
                )
            })
            .collect();
        let mut figures = Vec::new();
        if let Some(a) = attribution {
            figures.push((
                "attribution accuracy".to_string(),
                format!("{:.1}%", a * 100.0),
            ));
        }
        let view = assay_report::audit::SourceView {
            rows: (n, total_rows),
            flagged: interval.map(|i| (flagged, i)),
            threshold: verdicts
                .threshold
                .as_ref()
                .zip(threshold_text.clone())
                .map(|(t, text)| (t.value, format!("Threshold {text}."))),
            figures,
            detectors: if auroc.is_some() {
                detectors
            } else {
                Vec::new()
            },
            combined: by_group(&combined),
            per_model,
        };
        let mut page = assay_report::Report::new("Source audit");
        page.fact("input", args.input.display().to_string());
        for name in &names {
            page.fact("reference model", name.clone());
        }
        page.fact("assay", env!("CARGO_PKG_VERSION"));
        page.push(assay_report::audit::source_section(&view));
        std::fs::write(path, page.to_html())
            .with_context(|| format!("writing {}", path.display()))?;
    }

    if let Some(path) = &args.output {
        let out: Vec<Map<String, Value>> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut row = r.clone();
                let models: Map<String, Value> = names
                    .iter()
                    .enumerate()
                    .map(|(m, name)| (name.clone(), json!(scores[m][i])))
                    .collect();
                let v = &verdicts.rows[i];
                row.insert(
                    "assay_source".into(),
                    json!({
                        "row_index": texts[i].row_index,
                        "models": models,
                        "score": v.score,
                        "likelihood_ratio": v.likelihood_ratio,
                        "attributed": v.attributed,
                        "flagged": v.flagged,
                        "fitted": v.fitted,
                    }),
                );
                row
            })
            .collect();
        assay_io::write_output(path, &out, &assay_io::ParquetOptions::default())?;
    }
    if let Some(path) = &args.json {
        let summary = json!({
            "input": args.input.display().to_string(),
            "rows_checked": n,
            "rows_in_input": total_rows,
            "rows_left_out": bad.len(),
            "models": names,
            "threshold": verdicts.threshold,
            "human_reference": verdicts.human_reference,
            "flagged": flagged,
            "flagged_share": flagged as f64 / n as f64,
            "flagged_interval": interval.map(|(lo, hi)| json!([lo, hi])),
            "auroc": auroc,
            "auroc_held_out": auroc_held_out,
            "anchor_auroc": anchors
                .iter()
                .map(|(n, d, a, h)| json!({"model": n, "detector": d, "auroc": a, "auroc_held_out": h}))
                .collect::<Vec<_>>(),
            "rows_truncated": truncated,
            "attribution_accuracy": attribution,
        });
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
