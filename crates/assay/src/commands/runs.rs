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
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "run", "task", "dataset", "model", "started", "status", "scored", "skipped",
    ]);
    for r in &runs {
        table.add_row([
            r.id[..8].to_string(),
            r.task.clone(),
            r.dataset.clone(),
            r.annotator.clone(),
            r.started_at
                .get(..19)
                .unwrap_or(&r.started_at)
                .replace('T', " "),
            r.status.clone(),
            r.items_scored.to_string(),
            r.rows_skipped.to_string(),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
