//! `assay audit source`: Text written by another model: likelihood under reference models, Binoculars score.

use std::process::ExitCode;

use clap::Args;

use crate::settings::Settings;

/// Arguments of `assay audit source`.
#[derive(Debug, Args)]
pub struct SourceArgs {}

/// Run `assay audit source`.
pub fn run(_settings: &Settings, _args: SourceArgs) -> anyhow::Result<ExitCode> {
    // Scaffolding while issue 14 is built; this file's owner replaces it.
    anyhow::bail!("assay audit source is not built yet (issue 14)")
}
