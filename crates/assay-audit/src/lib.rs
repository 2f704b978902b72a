//! Dataset audits without I/O: the algorithms behind `assay audit dups` and `assay audit overlap`.
//!
//! - [`dups`]: exact duplicates (hash of the normalized text, [`text::NORMALIZATION`]) and near-duplicates by the
//!   Jaccard similarity of word n-gram shingle sets. Signatures by one-permutation MinHash with optimal
//!   densification ([`minhash`]), candidates by LSH banding chosen for recall at the threshold ([`lsh`]), every
//!   candidate verified by its exact Jaccard, clusters by union-find with a kept member.
//! - [`overlap`]: benchmark contamination by word 13-grams shared with reference items, with a cutoff for
//!   n-grams common in the input itself and hits measured as a share of each reference item's n-grams.
//!
//! ```
//! use assay_audit::dups::{DupConfig, DupCorpus, KeepPriority, Side};
//!
//! let mut corpus = DupCorpus::new(DupConfig::default()).unwrap();
//! let texts = [
//!     "the quick brown fox jumps over the lazy dog near the river bank today",
//!     "The quick brown fox jumps over the lazy dog, near the river bank today!",
//!     "an entirely different sentence about something else with many other words",
//! ];
//! for sketch in corpus.sketch_batch(&texts) {
//!     corpus.push(sketch, Side::Input, KeepPriority::default());
//! }
//! let report = corpus.finish();
//! assert_eq!(report.pairs.len(), 1);
//! assert!(report.pairs[0].exact);
//! assert_eq!(report.clusters[0].keep, 0);
//! ```

pub mod dups;
mod hash;
pub mod lsh;
pub mod minhash;
pub mod overlap;
pub mod text;

/// What can go wrong in an audit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting the user gave is out of range.
    #[error("{0}")]
    Config(String),
    /// A cached overlap index could not be read back (it is rebuilt).
    #[error("the cached overlap index is unusable: {0}")]
    Cache(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
