//! `assay audit overlap`: Benchmark contamination: rows sharing long n-grams with reference sets.

use std::process::ExitCode;

use clap::Args;

use crate::settings::Settings;

/// Arguments of `assay audit overlap`.
#[derive(Debug, Args)]
pub struct OverlapArgs {}

/// Run `assay audit overlap`.
pub fn run(_settings: &Settings, _args: OverlapArgs) -> anyhow::Result<ExitCode> {
    // Scaffolding while issue 13 is built; this file's owner replaces it.
    anyhow::bail!("assay audit overlap is not built yet (issue 13)")
}
