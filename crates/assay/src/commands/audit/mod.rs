//! `assay audit`: checks of a dataset itself rather than of its labels. One module per check; the algorithms
//! live in library crates, these modules only wire files, settings, progress and tables.

use std::process::ExitCode;

use clap::Subcommand;

use crate::settings::Settings;

pub mod dups;
pub mod mix;
pub mod overlap;
pub mod source;

/// The checks of `assay audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Exact and near-duplicate rows (MinHash LSH, every pair verified by its exact Jaccard).
    Dups(Box<dups::DupsArgs>),
    /// Benchmark contamination: input rows that share long n-grams with reference sets.
    Overlap(Box<overlap::OverlapArgs>),
    /// Where a task's records and labels came from: human, model, synthetic and imported shares.
    Mix(mix::MixArgs),
    /// Text written by another model: likelihood under reference models and the Binoculars score.
    Source(source::SourceArgs),
}

/// Run one audit check.
pub fn run(settings: &Settings, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Dups(args) => dups::run(settings, *args),
        AuditCommand::Overlap(args) => overlap::run(settings, *args),
        AuditCommand::Mix(args) => mix::run(settings, args),
        AuditCommand::Source(args) => source::run(settings, args),
    }
}
