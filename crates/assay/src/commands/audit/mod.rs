//! `assay audit`: checks of a dataset itself rather than of its labels. One module per check; the algorithms
//! live in library crates, these modules only wire files, settings, progress and tables.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::JoinHandle;

use anyhow::Context as _;
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

/// The SHA-256 of the audited file, computed on a thread of its own while the audit reads the file, so that
/// recording the run costs no extra pass on the critical path. `None` with `--no-record`.
pub(super) struct Fingerprint(Option<(PathBuf, JoinHandle<assay_io::Result<String>>)>);

impl Fingerprint {
    /// Start hashing `path` unless the run is not to be recorded.
    pub fn start(path: &Path, record: bool) -> Self {
        Self(record.then(|| {
            let owned = path.to_path_buf();
            (
                path.to_path_buf(),
                std::thread::spawn(move || assay_io::file_sha256(&owned)),
            )
        }))
    }
}

/// A file an audit read besides its input, hashed for the record.
pub(super) fn file_ref(path: &Path) -> anyhow::Result<assay_provenance::audit::FileRef> {
    Ok(assay_provenance::audit::FileRef {
        path: assay_label::export::audited_path(path),
        sha256: assay_io::file_sha256(path)
            .with_context(|| format!("reading {}", path.display()))?,
    })
}

/// Store a finished audit's summary in the store the settings resolve, filed under the input's SHA-256, for the
/// dataset card of later exports (`assay export`).
pub(super) fn record(
    settings: &Settings,
    fingerprint: Fingerprint,
    kind: &str,
    parameters: serde_json::Value,
    counts: serde_json::Value,
) -> anyhow::Result<()> {
    let Some((path, hashing)) = fingerprint.0 else {
        return Ok(());
    };
    let sha256 = hashing
        .join()
        .map_err(|_| anyhow::anyhow!("hashing {} panicked", path.display()))?
        .with_context(|| format!("reading {}", path.display()))?;
    let rt = crate::settings::runtime()?;
    let audit = assay_store::NewAudit {
        kind: kind.to_string(),
        dataset_sha256: sha256,
        dataset_path: assay_label::export::audited_path(&path),
        parameters,
        counts,
    };
    settings
        .open_store(&rt)
        .and_then(|store| Ok(rt.block_on(store.record_audit(&audit))?))
        .with_context(|| {
            format!(
                "recording the audit in the store {}\nhint: the results above are complete; pass --no-record to \
                 audit without recording",
                settings.store_display()
            )
        })?;
    outln!(
        "recorded in the store {} for the dataset card of `assay export` (--no-record leaves no trace)",
        settings.store_display()
    );
    Ok(())
}
