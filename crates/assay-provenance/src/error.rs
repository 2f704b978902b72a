/// What can go wrong reading origins and licenses. All of it is the user's input to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A row's origin column is malformed.
    #[error("{0}")]
    Origin(String),
    /// A dataset's license is not an SPDX expression.
    #[error("dataset {dataset}: {message}")]
    License {
        /// The dataset whose license it is.
        dataset: String,
        /// What is wrong.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
