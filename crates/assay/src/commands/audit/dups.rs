//! `assay audit dups`: Near-duplicate and exact-duplicate rows (MinHash LSH, verified by exact Jaccard).

use std::process::ExitCode;

use clap::Args;

use crate::settings::Settings;

/// Arguments of `assay audit dups`.
#[derive(Debug, Args)]
pub struct DupsArgs {}

/// Run `assay audit dups`.
pub fn run(_settings: &Settings, _args: DupsArgs) -> anyhow::Result<ExitCode> {
    // Scaffolding while issue 13 is built; this file's owner replaces it.
    anyhow::bail!("assay audit dups is not built yet (issue 13)")
}
