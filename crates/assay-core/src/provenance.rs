//! Who or what produced a label, from which prompt, when.

use serde::{Deserialize, Serialize};

/// Whether an annotation came from a model or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnotatorKind {
    /// A language model.
    Model,
    /// A person.
    Human,
}

impl AnnotatorKind {
    /// The name stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotatorKind::Model => "model",
            AnnotatorKind::Human => "human",
        }
    }

    /// The kind stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "model" => Some(AnnotatorKind::Model),
            "human" => Some(AnnotatorKind::Human),
            _ => None,
        }
    }
}

impl std::fmt::Display for AnnotatorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The provenance exported with every label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Model or person.
    pub annotator_kind: AnnotatorKind,
    /// The model's name (file stem) or the person's id.
    pub annotator: String,
    /// SHA-256 of the model file; empty for people.
    pub model_sha256: String,
    /// SHA-256 of the prompt layout ([`crate::PromptBuilder::prompt_hash`]).
    pub prompt_hash: String,
    /// The task's name.
    pub task: String,
    /// The run that produced the label.
    pub run_id: String,
    /// Calibration applied to the confidence (`none`, `contextual`, `fitted`, `contextual+fitted`).
    pub calibration: String,
    /// When the label was made (RFC 3339, UTC).
    pub labeled_at: String,
}
