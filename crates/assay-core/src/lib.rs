//! The types every assay crate shares: task specs (parsed from TOML), prompts, and the provenance that travels
//! with every label.
//!
//! ```
//! let spec = assay_core::TaskSpec::from_toml_str(
//!     r#"
//!     name = "sentiment"
//!     type = "classify"
//!     input = "{{ text }}"
//!     labels = ["positive", "negative"]
//!     "#,
//! )
//! .unwrap();
//! assert_eq!(spec.labels.len(), 2);
//! ```

mod error;
pub mod generate;
pub mod policy;
pub mod probe;
pub mod prompt;
pub mod provenance;
pub mod review;
pub mod task;

pub use error::{Error, Result};
pub use probe::{Labeler, ProbeSpec};
pub use prompt::{ChatMessage, PromptBuilder, PromptSpec, Role, ScoreBranch, ScoreRequest};
pub use provenance::{AnnotatorKind, Provenance};
pub use review::{ReviewSpec, RouteReason};
pub use task::{
    CalibrationMethod, ChatTemplate, LabelSpec, ModelSpec, PromptFormat, RateSpec, Rating,
    ServedScoring, TaskKind, TaskSpec,
};

/// Hex SHA-256 of some bytes: the identity of prompts, task specs and model files.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
