//! Items/s and tokens/s of naive per-item, per-option scoring versus assay's cached prefix + token-trie batches,
//! on the same inputs, next to llama.cpp's raw prompt-processing rate. Prints a Markdown table. For a compare task
//! an item is a pair judged in both orders, so the rates are pairs/s with and without prefix sharing.
//!
//! Usage: label-throughput MODEL.gguf TASK.toml INPUT ROWS THREADS [naive-rows]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use assay_core::{PromptBuilder, TaskKind, TaskSpec};
use assay_llm::embedded::{EmbeddedModel, ScorerOptions, Strategy};
use assay_llm::Scorer;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        anyhow::bail!(
            "usage: label-throughput MODEL.gguf TASK.toml INPUT ROWS THREADS [NAIVE_ROWS]"
        );
    }
    let model_path = PathBuf::from(&args[1]);
    let spec = TaskSpec::from_path(args[2].as_ref())?;
    let input = PathBuf::from(&args[3]);
    let rows: usize = args[4].parse()?;
    let threads: usize = args[5].parse()?;
    let naive_rows: usize = args.get(6).map(|s| s.parse()).transpose()?.unwrap_or(rows);

    let model = EmbeddedModel::load(&model_path, "bench", "")?;
    let prompts = PromptBuilder::new(&spec)?;
    // Compare tasks: one item is a pair judged in both orders (two branches of one request); rate tasks: one
    // response over every score; others: the `input` template.
    let requests: Vec<_> = assay_io::open_dataset(&input)?
        .filter_map(Result::ok)
        .filter_map(|r| match spec.kind {
            TaskKind::Compare => prompts
                .render_pair(&r.values)
                .ok()
                .map(|pair| prompts.compare_request(&pair)),
            TaskKind::Rate => prompts
                .render_rated(&r.values)
                .ok()
                .map(|item| prompts.rate_request(&item)),
            TaskKind::Classify | TaskKind::MultiLabel => prompts
                .render_input(&r.values)
                .ok()
                .map(|text| prompts.request(&text)),
        })
        .take(rows)
        .collect();
    anyhow::ensure!(!requests.is_empty(), "no rows in {}", input.display());
    let unit = if spec.kind == TaskKind::Compare {
        "pairs (both orders)"
    } else {
        "items"
    };

    let raw = model.raw_prompt_rate(2048, spec.model.batch_tokens, threads)?;
    println!("| task | strategy | threads | {unit} | {unit}/s | tokens evaluated | tokens/s | vs raw llama.cpp |");
    println!("|---|---|---|---|---|---|---|---|");
    println!("| - | raw llama.cpp prompt processing (2048 tokens, batch {}) | {threads} | - | - | 2048 | {raw:.0} | 1.00 |", spec.model.batch_tokens);
    let mut rates = Vec::new();
    for (strategy, n) in [
        (Strategy::Naive, naive_rows.min(requests.len())),
        (Strategy::CachedBatched, requests.len()),
    ] {
        let options = ScorerOptions {
            format: spec.model.prompt_format,
            threads,
            batch_tokens: spec.model.batch_tokens,
            strategy,
        };
        let started = Instant::now();
        let mut scorer = model
            .scorer(&prompts.prefix_probe(), options)
            .context("scorer")?;
        let mut done = 0;
        for chunk in requests[..n].chunks(16) {
            for result in scorer.score(chunk)? {
                result.map_err(|e| anyhow::anyhow!(e))?;
            }
            done += chunk.len();
        }
        let seconds = started.elapsed().as_secs_f64();
        let stats = scorer.stats();
        let items_per_s = done as f64 / seconds;
        let tokens_per_s = stats.tokens_evaluated as f64 / seconds;
        rates.push(items_per_s);
        println!(
            "| {} | {:?} | {threads} | {done} | {items_per_s:.2} | {} | {tokens_per_s:.0} | {:.2} |",
            spec.name,
            strategy,
            stats.tokens_evaluated,
            tokens_per_s / raw
        );
    }
    println!();
    println!(
        "speed-up of cached+batched over naive on {}: {:.1}x {unit}/s",
        spec.name,
        rates[1] / rates[0]
    );
    Ok(())
}
