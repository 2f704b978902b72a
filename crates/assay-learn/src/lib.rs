//! Learned labelers, with no I/O: the machine gets better from people's answers.
//!
//! - [`logistic`]: multinomial logistic regression with an L2 penalty, fitted by L-BFGS (the objective of
//!   scikit-learn's `LogisticRegression(C=...)`, checked against its coefficients in the tests).
//! - [`cv`]: deterministic k-fold out-of-fold probabilities, temperature scaling fitted on them, and the
//!   cross-validated comparison `auto` uses to choose a labeler.
//! - [`active`]: which unlabeled items people should answer next: least certain under the probe, probe and LLM
//!   disagreeing, and a seeded random share for unbiased QC.
//!
//! ```
//! use assay_learn::logistic::{FitOptions, LogisticRegression};
//! let x = vec![vec![0.0, 0.1], vec![0.2, 0.0], vec![1.0, 0.9], vec![0.9, 1.1]];
//! let y = vec![0, 0, 1, 1];
//! let model = LogisticRegression::fit(&x, &y, 2, &FitOptions::default())?;
//! let p = model.predict_proba(&[0.95, 1.0]);
//! assert!(p[1] > 0.5);
//! # Ok::<(), assay_learn::Error>(())
//! ```

pub mod active;
pub mod cv;
pub mod logistic;

/// Errors of the learners.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The training data cannot train anything (no rows, rows of different widths, a label out of range).
    #[error("training data: {0}")]
    Data(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
