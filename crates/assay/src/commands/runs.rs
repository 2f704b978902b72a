//! `assay runs`: what ran, when, and how far it got.

use std::process::ExitCode;

use clap::Args;
use comfy_table::Table;

use crate::settings::{runtime, Settings};

/// Arguments of `assay runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// How many recent runs to show.
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

/// List recent runs.
pub fn run(settings: &Settings, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    let runs = rt.block_on(store.runs(args.limit))?;
    // Runs of served models: what they asked, took from the cache and paid.
    let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let usage = rt.block_on(store.run_usage(&ids))?;
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    let mut header = vec![
        "run", "task", "dataset", "model", "started", "status", "scored", "skipped",
    ];
    if !usage.is_empty() {
        header.extend(["requests", "cached", "tokens in", "tokens out", "cost"]);
    }
    table.set_header(header);
    for r in &runs {
        let mut row = vec![
            // The whole id: a UUID v7 starts with its time, so short prefixes of runs close in time collide.
            r.id.clone(),
            r.task.clone(),
            r.dataset.clone(),
            r.annotator.clone(),
            r.started_at
                .get(..19)
                .unwrap_or(&r.started_at)
                .replace('T', " "),
            r.status.to_string(),
            r.items_scored.to_string(),
            r.rows_skipped.to_string(),
        ];
        if !usage.is_empty() {
            match usage.get(&r.id) {
                Some(u) => row.extend([
                    u.requests.to_string(),
                    u.cache_hits.to_string(),
                    u.input_tokens.to_string(),
                    u.output_tokens.to_string(),
                    format!("${:.4}", u.cost_usd),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 5)),
            }
        }
        table.add_row(row);
    }
    outln!("{table}");
    for r in runs.iter().filter(|r| r.failure.is_some()) {
        outln!(
            "run {} failed: {}",
            r.id,
            crate::settings::redact_secrets(
                r.failure.as_deref().unwrap_or_default(),
                &settings.store
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
