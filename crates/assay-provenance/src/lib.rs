//! Where data came from, without I/O: the origin of every record and label (human, model, synthetic with its
//! generation depth and parents, imported), how an export mixes human and generated rows, licenses and the policy
//! an export must meet, and the dataset card written beside every export.

pub mod audit;
pub mod card;
pub mod croissant;
mod error;
pub mod mix;
pub mod origin;
pub mod policy;

pub use error::{Error, Result};
pub use origin::{LabelOrigin, OriginMix, RecordOrigin, EXPERT_SKILL, ORIGIN_COLUMN};
