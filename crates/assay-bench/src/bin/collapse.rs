//! Model collapse under the collapse guard's mixing policies (issue 15 §4), run by `bench/collapse.sh`:
//!
//! 1. a 1-D Gaussian refitted to M samples of the previous fit, under replace against the closed form
//!    exp(n·δ/2), and under accumulate and replace-with-10%-human;
//! 2. with `--wikitext DIR`: a word bigram model fitted to wikitext-2 (`valid.txt` is the human training data,
//!    `test.txt` the test set), refitted on its own samples for `--generations` generations under the same three
//!    policies: test perplexity and the share of the rarest original words still produced.
//!
//! Prints Markdown tables; `--json FILE` also writes every figure.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use assay_bench::collapse::{
    closed_form_check, delta, gaussian, log_median_standard_error, ngram_collapse, NgramSettings,
    Vocab,
};
use assay_provenance::mix::MixPolicy;
use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Samples per generation of the Gaussian (M).
    #[arg(long, default_value_t = 100)]
    m: usize,
    /// Seeds per policy of the Gaussian.
    #[arg(long, default_value_t = 200)]
    seeds: usize,
    /// Fits at which the Gaussian's median σ is reported (the last is how long it runs).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,300,1000")]
    checkpoints: Vec<usize>,
    /// Fits of the accumulate run (its cost grows with the square of this).
    #[arg(long, default_value_t = 300)]
    accumulate_generations: usize,
    /// wikitext-2 folder (valid.txt, test.txt); without it only the Gaussian runs.
    #[arg(long)]
    wikitext: Option<PathBuf>,
    /// Generations of the bigram refit.
    #[arg(long, default_value_t = 10)]
    generations: usize,
    /// Share of the human data kept by replace-with-human-share.
    #[arg(long, default_value_t = 0.1)]
    human_share: f64,
    /// Fail (exit 1) when a replace median lies more than this many standard errors from the closed form.
    #[arg(long, default_value_t = 4.0)]
    max_z: f64,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let policies = [
        MixPolicy::Replace,
        MixPolicy::ReplaceWithHumanShare(args.human_share),
        MixPolicy::Accumulate,
    ];
    let started = Instant::now();
    println!(
        "## Gaussian refit: median fitted σ over {} seeds, M = {} (δ = {:.6})\n",
        args.seeds,
        args.m,
        delta(args.m)
    );
    let checks = closed_form_check(args.m, &args.checkpoints, args.seeds);
    let shared = gaussian(&policies[1], args.m, &args.checkpoints, args.seeds);
    let accumulate_checkpoints: Vec<usize> = args
        .checkpoints
        .iter()
        .copied()
        .filter(|&n| n <= args.accumulate_generations)
        .collect();
    let accumulated = gaussian(
        &MixPolicy::Accumulate,
        args.m,
        &accumulate_checkpoints,
        args.seeds,
    );
    println!(
        "| fit n | closed form exp(n·δ/2) | replace | replace / closed form | z | {} | accumulate |",
        policies[1].name()
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut worst_z: f64 = 0.0;
    let mut gaussian_rows = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        worst_z = worst_z.max(check.z.abs());
        let acc = accumulated.get(i).copied();
        println!(
            "| {} | {:.4} | {:.4} | {:.3} | {:+.2} | {:.4} | {} |",
            check.generation,
            check.closed_form,
            check.simulated,
            check.simulated / check.closed_form,
            check.z,
            shared[i],
            acc.map_or("not run".to_string(), |a| format!("{a:.4}"))
        );
        gaussian_rows.push(json!({
            "fit": check.generation,
            "closed_form": check.closed_form,
            "replace": check.simulated,
            "z": check.z,
            "log_median_standard_error": log_median_standard_error(args.m, check.generation, args.seeds),
            "replace_with_human_share": shared[i],
            "accumulate": acc,
        }));
    }
    println!(
        "\nreplace against the closed form: largest |z| = {worst_z:.2} (limit {}); {:.1} s\n",
        args.max_z,
        started.elapsed().as_secs_f64()
    );
    let mut ngram_json = Vec::new();
    if let Some(dir) = &args.wikitext {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("reading {}", dir.join(name).display()))
        };
        let (train_text, test_text) = (read("valid.txt")?, read("test.txt")?);
        let vocab = Vocab::of(&train_text);
        let (train, test) = (vocab.sentences(&train_text), vocab.sentences(&test_text));
        let settings = NgramSettings {
            generations: args.generations,
            lambda: 0.7,
            k: 0.01,
            rare_count: 2,
            seed: 7,
        };
        let train_tokens: usize = train.iter().map(|s| s.len() + 1).sum();
        println!(
            "## Word bigram LM on wikitext-2: {} training tokens (valid.txt), {} test sentences (test.txt), vocabulary {}; λ = {}, add-{} smoothing at test; rare = count ≤ {}\n",
            train_tokens,
            test.len(),
            vocab.len(),
            settings.lambda,
            settings.k,
            settings.rare_count
        );
        let runs: Vec<_> = policies
            .iter()
            .map(|p| {
                (
                    p.name(),
                    ngram_collapse(&train, &test, vocab.len(), p, settings),
                )
            })
            .collect();
        let names: Vec<&str> = runs.iter().map(|(n, _)| n.as_str()).collect();
        println!(
            "| generation | {} |",
            names
                .iter()
                .map(|n| format!("perplexity {n} | tail share {n}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        println!("|---:|{}", "---:|---:|".repeat(names.len()));
        for g in 0..=args.generations {
            let cells: Vec<String> = runs
                .iter()
                .map(|(_, rows)| format!("{:.1} | {:.3}", rows[g].perplexity, rows[g].tail_share))
                .collect();
            println!("| {g} | {} |", cells.join(" | "));
        }
        for (name, rows) in &runs {
            ngram_json.push(json!({
                "policy": name,
                "generations": rows.iter().map(|r| json!({
                    "generation": r.generation,
                    "perplexity": r.perplexity,
                    "tail_share": r.tail_share,
                    "training_types": r.training_types,
                })).collect::<Vec<_>>(),
            }));
        }
        println!("\n{:.1} s in all", started.elapsed().as_secs_f64());
    }
    if let Some(path) = &args.json {
        let doc = json!({
            "m": args.m,
            "seeds": args.seeds,
            "delta": delta(args.m),
            "gaussian": gaussian_rows,
            "ngram": ngram_json,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    if worst_z > args.max_z {
        bail!("the replace simulation is {worst_z:.2} standard errors from the closed form exp(n·δ/2)");
    }
    Ok(())
}
