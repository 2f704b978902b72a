//! The crate's error type.

use std::path::PathBuf;

use assay_quality::agreement::Level;

use crate::{level_name, InputFile};

/// Why quality control could not run. A bad row is not an error: it is kept as a [`crate::BadRow`] and reported.
///
/// Variants are sorted by who must act: the user's input first, then a bug in assay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // The user's input: fix the file or the options.
    /// An input file could not be opened or read as a dataset.
    #[error("reading the {file} file {}", .path.display())]
    Read {
        file: InputFile,
        path: PathBuf,
        #[source]
        source: assay_io::Error,
    },
    /// An input file lacks columns QC needs.
    #[error(
        "the {file} file {} has no column {} (its columns: {})",
        .path.display(),
        quoted(.missing),
        .columns.join(", ")
    )]
    MissingColumns {
        file: InputFile,
        path: PathBuf,
        /// The columns it lacks, in the order QC needs them.
        missing: Vec<String>,
        /// The columns it has.
        columns: Vec<String>,
    },
    /// The annotations file has no row that could be used.
    #[error("the annotations file {} has no usable answers", .path.display())]
    NoAnswers { path: PathBuf },
    /// A level of measurement other than nominal, but some labels are not numbers.
    #[error("Krippendorff's alpha at the {} level needs numeric labels, and some labels are not numbers", level_name(*.level))]
    NonNumericLabels { level: Level },
    /// No row of the labeled file has both a gold label and a model label.
    #[error("no row of {} has both a gold `{gold}` and a model label", .path.display())]
    NoComparableRows { path: PathBuf, gold: String },

    // A statistic refused its input: the options are out of range (a confidence of 1, say), or assay built the
    // input wrongly, which is a bug to report.
    /// A statistic of `assay-quality` failed.
    #[error(transparent)]
    Statistics(#[from] assay_quality::Error),
}

/// `a`, `b`: column names as the messages quote them.
fn quoted(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
