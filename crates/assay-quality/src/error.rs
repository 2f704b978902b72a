/// Errors from quality computations; all of them are about the input the caller gave.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The inputs do not fit together (lengths differ, a row's distribution has the wrong width, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// There is nothing to compute on.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
