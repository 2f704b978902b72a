//! Quality statistics for labels, with no I/O of its own: the CLI and the server feed it plain slices.
//!
//! - [`metrics`]: accuracy, macro-F1, expected calibration error, accuracy at coverage, the accuracy-vs-coverage
//!   curve and the confidence threshold that reaches a target accuracy.
//! - [`calibration`]: contextual calibration (Zhao et al. 2021) and fitted per-class bias + temperature.
//! - [`agreement`]: Cohen's kappa (plain, linear, quadratic), Fleiss' kappa, Krippendorff's alpha (nominal, ordinal,
//!   interval, ratio; missing values allowed) and percent agreement over a `units x coders` [`agreement::RatingMatrix`].
//! - [`aggregation`]: majority vote with a tie policy, and Dawid-Skene EM over sparse `(item, annotator, label)`
//!   answers.
//! - [`label_errors`]: confident learning (Northcutt et al. 2021) from out-of-sample probabilities, with cleanlab's
//!   `prune_by_class`, `prune_by_noise_rate` and `both` filters.
//! - [`audit`]: zero-defect sample sizes, Wilson score intervals, and pass/fail against a target error rate.
//! - [`annotators`]: per-annotator gold accuracy, peer kappa, Dawid-Skene accuracy, speed, and a flag for those far
//!   below their peers.

pub mod aggregation;
pub mod agreement;
pub mod annotators;
pub mod audit;
pub mod calibration;
pub mod label_errors;
pub mod length_control;
pub mod metrics;

mod error;
pub use error::{Error, Result};
