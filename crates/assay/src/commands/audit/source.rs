//! `assay audit source`: text written by another model. Each (sampled) row's text is scored under each reference
//! model (`assay_label::source`): mean log-likelihood per token, a per-byte likelihood ratio between two models,
//! optionally the similarity to the model's own greedy answer; with labeled rows, a threshold with its
//! false-positive rate, the flagged share with a Wilson interval, AUROC and attribution accuracy.

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
    /// CPU threads for embedded models.
    #[arg(long, default_value_t = assay_llm::embedded::default_threads())]
    pub threads: usize,
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
    };
    let mut backends = Vec::new();
    for reference in &args.reference_models {
        backends.push(
            source::open_reference(reference, &settings.home)
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

    // Figures on the labeled rows.
    let is_human = |i: usize| labels[i].as_deref() == Some("human");
    let is_model = |i: usize| labels[i].as_deref().is_some_and(|l| l != "human");
    let n = texts.len();
    let of = |f: &dyn Fn(usize) -> bool| -> Vec<f64> {
        (0..n)
            .filter(|&i| f(i))
            .map(|i| verdicts.rows[i].score)
            .collect()
    };
    let auroc = source::auroc(&of(&is_model), &of(&is_human));
    let anchors: Vec<(String, Option<f64>)> = names
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let pick = |f: &dyn Fn(usize) -> bool| -> Vec<f64> {
                (0..n)
                    .filter(|&i| f(i))
                    .map(|i| scores[m][i].mean_logprob)
                    .collect()
            };
            (
                name.clone(),
                source::auroc(&pick(&is_model), &pick(&is_human)),
            )
        })
        .collect();
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

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["", "value"]);
    table.add_row(["rows checked".to_string(), format!("{n} of {total_rows}")]);
    for (m, name) in names.iter().enumerate() {
        let mean = scores[m].iter().map(|s| s.mean_logprob).sum::<f64>() / n as f64;
        table.add_row([
            format!("mean log-likelihood per token, {name}"),
            format!("{mean:.3}"),
        ]);
    }
    match &verdicts.threshold {
        Some(t) => {
            table.add_row([
                "threshold (combined score)".to_string(),
                format!(
                    "{:.3}: false-positive rate {:.1}% on {} human rows, true-positive rate {:.1}% on {} model rows",
                    t.value,
                    t.false_positive_rate * 100.0,
                    t.human_rows,
                    t.true_positive_rate * 100.0,
                    t.model_rows
                ),
            ]);
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
    if let Some(a) = auroc {
        table.add_row([
            "AUROC model vs human (combined)".to_string(),
            format!("{a:.3}"),
        ]);
    }
    for (name, a) in &anchors {
        if let Some(a) = a {
            table.add_row([
                format!("AUROC, anchor: {name} per-token likelihood only"),
                format!("{a:.3}"),
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
            "anchor_auroc": anchors.iter().map(|(n, a)| json!({"model": n, "auroc": a})).collect::<Vec<_>>(),
            "attribution_accuracy": attribution,
        });
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
