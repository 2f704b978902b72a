//! `assay audit mix`: Where a task's data and labels came from: human, model, synthetic, imported shares.

use std::process::ExitCode;

use clap::Args;

use crate::settings::Settings;

/// Arguments of `assay audit mix`.
#[derive(Debug, Args)]
pub struct MixArgs {}

/// Run `assay audit mix`.
pub fn run(_settings: &Settings, _args: MixArgs) -> anyhow::Result<ExitCode> {
    // Scaffolding while issue 14 is built; this file's owner replaces it.
    anyhow::bail!("assay audit mix is not built yet (issue 14)")
}
