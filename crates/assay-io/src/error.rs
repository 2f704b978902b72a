//! The crate's error type.

use std::io;
use std::path::PathBuf;

use crate::Format;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whole-file problems while reading or writing a dataset.
///
/// A bad *row* is not an `Error`: readers yield it as a [`RowError`](crate::RowError) and go on.
/// Variants are sorted by who must act: the user's input, then an outside system, then a bug in assay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // The user's input: fix the path or the file.
    /// The file name's extension names no format assay reads or writes.
    #[error("{}: unrecognised file extension; supported extensions are {}", .path.display(), Format::SUPPORTED_EXTENSIONS)]
    UnsupportedFormat { path: PathBuf },

    /// The format can be read but not written.
    #[error("{}: writing {format} output is not supported; use a .jsonl or .parquet file name", .path.display())]
    UnsupportedOutput { path: PathBuf, format: Format },

    /// The input file does not exist.
    #[error("{}: file not found", .path.display())]
    NotFound { path: PathBuf },

    /// The file exists but cannot be read as a dataset at all (no CSV header row, duplicate column names, ...).
    #[error("{}: {reason}", .path.display())]
    InvalidDataset { path: PathBuf, reason: String },

    /// The file is not a Parquet file this crate can read.
    #[error("{}: not a readable Parquet file", .path.display())]
    InvalidParquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },

    // An outside system: the file system.
    /// The output's folder did not exist and could not be created.
    #[error(
        "{}: could not create the folder for the output {}; create it yourself, or choose an output path in a \
         folder you can write to",
        .directory.display(),
        .path.display()
    )]
    CreateDirectory {
        /// The folder that could not be created.
        directory: PathBuf,
        /// The output file that was to be written there.
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Reading or writing the file failed.
    #[error("{}: could not {action}", .path.display())]
    Io {
        path: PathBuf,
        /// What was being done, e.g. "read", "write", "create a temporary file next to".
        action: &'static str,
        #[source]
        source: io::Error,
    },

    // A bug in assay.
    /// Something this crate should have prevented; please report it.
    #[error("{}: internal error in assay-io (please report this bug): {message}", .path.display())]
    Internal { path: PathBuf, message: String },
}

impl Error {
    /// An I/O error from opening an input file: a missing file becomes [`Error::NotFound`].
    pub(crate) fn open(path: &std::path::Path, source: io::Error) -> Error {
        if source.kind() == io::ErrorKind::NotFound {
            Error::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                action: "open",
                source,
            }
        }
    }

    pub(crate) fn io(path: &std::path::Path, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}
