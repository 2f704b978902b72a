//! The label pipeline's errors, sorted by who must act.

use std::path::PathBuf;

/// Errors of the label pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The user's task, flags or data need a change; `hint` says which.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// The task file.
    #[error(transparent)]
    Task(#[from] assay_core::Error),
    /// Reading or writing a dataset.
    #[error(transparent)]
    Data(#[from] assay_io::Error),
    /// A file the pipeline reads or writes itself (summary JSON, examples).
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The model: embedded (llama.cpp) or served (an endpoint).
    #[error(transparent)]
    Model(#[from] assay_llm::Error),
    /// The store (SQLite or PostgreSQL).
    #[error(transparent)]
    Store(#[from] assay_store::Error),
    /// A statistic could not be computed from the data.
    #[error(transparent)]
    Quality(#[from] assay_quality::Error),
    /// A bug in assay.
    #[error("internal error (please report it): {0}")]
    Internal(String),
}

impl Error {
    /// An error the user fixes as `hint` says.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// The known fix, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Usage { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
