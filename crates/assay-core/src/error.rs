use std::path::PathBuf;

/// Errors about task specs and prompts. All of them are the user's to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The task file is not valid TOML or has an unknown or mistyped key; the message names the key and line.
    #[error("task file {path}: {message}")]
    TaskSyntax { path: PathBuf, message: String },
    /// The task file parses but does not make sense (no labels, duplicate label, ...).
    #[error("task file {path}: {message}")]
    TaskInvalid { path: PathBuf, message: String },
    /// A file the task names could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The input template does not compile.
    #[error("input template: {0}")]
    Template(String),
    /// A row lacks what the template needs (a missing column, a wrong type).
    #[error("{0}")]
    Row(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
