//! Embedding throughput and what the vectors are worth: embeds the first N texts of the SMS spam collection with
//! one embedder, reports texts/s and the process's peak RSS, and the 5-fold cross-validated accuracy and macro-F1
//! of `assay-learn`'s logistic regression (c = 1, standardised) on the vectors against the gold labels. One
//! embedder per run, so each peak RSS is its own.
//!
//! `--vectors FILE` evaluates vectors made elsewhere instead (a JSON list of lists, one per text, in order: what
//! `bench/embed_compare.py` writes for sentence-transformers), and with `--model` also reports the cosine between
//! assay's vectors and those.
//!
//! Prints one JSON line. Used by `bench/embed_compare.sh`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use assay_learn::cv;
use assay_learn::logistic::FitOptions;
use assay_llm::cache::{assay_home, ModelCache};
use assay_llm::embed::{cosine, EmbedOptions, EmbeddedEmbedder, Embedder, Pooling};
use assay_llm::embedded::EmbeddedModel;
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Catalog model to embed with (fetched into $ASSAY_HOME if needed); omit with --vectors to only evaluate.
    #[arg(long)]
    model: Option<String>,
    /// Pooling: mean, last or cls; default: the model's own.
    #[arg(long)]
    pooling: Option<String>,
    /// TSV of `label<TAB>text` with a header row.
    #[arg(long, default_value = "tests/data/sms_spam/SMSSpamCollection.tsv")]
    data: PathBuf,
    /// Texts (the first N rows).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// llama.cpp threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Tokens per llama.cpp batch.
    #[arg(long, default_value_t = 512)]
    batch_tokens: usize,
    /// Vectors made elsewhere (JSON list of lists), evaluated with the same probe.
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// Write assay's vectors here (JSON).
    #[arg(long)]
    write_vectors: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    let mut labels = Vec::new();
    let mut texts = Vec::new();
    for line in text.lines().skip(1).take(args.n) {
        let (label, body) = line.split_once('\t').context("a row without a tab")?;
        labels.push(label.to_string());
        texts.push(body.to_string());
    }
    let classes: Vec<String> = {
        let mut c = labels.clone();
        c.sort();
        c.dedup();
        c
    };
    let y: Vec<usize> = labels
        .iter()
        .map(|l| classes.iter().position(|c| c == l).expect("a class"))
        .collect();

    let external: Option<Vec<Vec<f32>>> = match &args.vectors {
        Some(path) => {
            let v: Vec<Vec<f32>> = serde_json::from_str(&std::fs::read_to_string(path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            if v.len() != texts.len() {
                bail!(
                    "{} has {} vectors for {} texts",
                    path.display(),
                    v.len(),
                    texts.len()
                );
            }
            Some(v)
        }
        None => None,
    };

    let mut report = json!({"texts": texts.len(), "classes": classes, "threads": args.threads});
    let vectors = match &args.model {
        Some(name) => {
            let cached = ModelCache::new(&assay_home()).fetch(name)?;
            let model = EmbeddedModel::load(&cached.path, &cached.name, &cached.sha256)?;
            let pooling = match args.pooling.as_deref() {
                None => None,
                Some("mean") => Some(Pooling::Mean),
                Some("last") => Some(Pooling::Last),
                Some("cls") => Some(Pooling::Cls),
                Some(other) => bail!("unknown pooling {other} (mean, last, cls)"),
            };
            let options = EmbedOptions {
                threads: args.threads,
                batch_tokens: args.batch_tokens,
                pooling,
                ..EmbedOptions::default()
            };
            let mut embedder = EmbeddedEmbedder::new(&model, options)?;
            let tokens: usize = texts.iter().map(|t| embedder.tokens(t).len()).sum();
            let start = Instant::now();
            let vectors = embedder.embed(&texts)?;
            let seconds = start.elapsed().as_secs_f64();
            let info = embedder.info();
            report["embedder"] = json!(format!("assay {name} ({})", info.pooling.as_str()));
            report["dimension"] = json!(info.dimension);
            report["tokens"] = json!(tokens);
            report["seconds"] = json!(round(seconds, 2));
            report["texts_per_s"] = json!(round(texts.len() as f64 / seconds, 1));
            report["tokens_per_s"] = json!(round(tokens as f64 / seconds, 0));
            if let Some(other) = &external {
                let c: Vec<f64> = vectors
                    .iter()
                    .zip(other)
                    .map(|(a, b)| cosine(a, b))
                    .collect();
                let min = c.iter().copied().fold(f64::INFINITY, f64::min);
                report["cosine_vs_vectors"] = json!({
                    "mean": round(c.iter().sum::<f64>() / c.len() as f64, 5),
                    "min": round(min, 5),
                });
            }
            if let Some(path) = &args.write_vectors {
                std::fs::write(path, serde_json::to_string(&vectors)?)?;
            }
            vectors
        }
        None => {
            report["embedder"] = json!(format!(
                "vectors from {}",
                args.vectors
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            ));
            external.clone().context("--model or --vectors")?
        }
    };
    report["peak_rss_mib"] = json!(peak_rss_mib());

    let x: Vec<Vec<f64>> = vectors
        .iter()
        .map(|v| v.iter().map(|&f| f64::from(f)).collect())
        .collect();
    let options = FitOptions {
        c: 1.0,
        standardize: true,
        ..FitOptions::default()
    };
    let start = Instant::now();
    let p = cv::out_of_fold(&x, &y, classes.len(), 5, 12, &options)?;
    report["cv_seconds"] = json!(round(start.elapsed().as_secs_f64(), 2));
    report["cv5_accuracy"] = json!(round(cv::accuracy(&p, &y), 4));
    report["cv5_macro_f1"] = json!(round(macro_f1(&p, &y, classes.len()), 4));
    println!("{report}");
    Ok(())
}

/// Mean over classes of F1 at argmax.
fn macro_f1(p: &[Vec<f64>], y: &[usize], classes: usize) -> f64 {
    let predicted: Vec<usize> = p.iter().map(|r| cv::argmax(r)).collect();
    let mut total = 0.0;
    for k in 0..classes {
        let tp = predicted
            .iter()
            .zip(y)
            .filter(|(a, b)| **a == k && **b == k)
            .count() as f64;
        let fp = predicted
            .iter()
            .zip(y)
            .filter(|(a, b)| **a == k && **b != k)
            .count() as f64;
        let fn_ = predicted
            .iter()
            .zip(y)
            .filter(|(a, b)| **a != k && **b == k)
            .count() as f64;
        let f1 = if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (2.0 * tp + fp + fn_)
        };
        total += f1;
    }
    total / classes as f64
}

/// `VmHWM` of this process, MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| round(kib / 1024.0, 1))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
