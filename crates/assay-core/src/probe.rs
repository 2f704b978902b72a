//! The `[probe]` section of a task: a cheap labeler (multinomial logistic regression on text embeddings) trained
//! on the task's gold rows in the fit split and on people's answers from `assay serve`, and which labeler gives
//! the final label.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which labeler gives a row's final label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Labeler {
    /// The language model (calibrated).
    Llm,
    /// The probe.
    Probe,
    /// Whichever has the higher cross-validated accuracy on the probe's training rows (ties go to the probe).
    #[default]
    Auto,
}

impl Labeler {
    /// The name used in settings and outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Probe => "probe",
            Self::Auto => "auto",
        }
    }
}

/// `[probe]`: train a labeler on embeddings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProbeSpec {
    /// The embedding model: a cached model's name (`assay model fetch NAME`), or `llm` for the task's own model
    /// (mean-pooled hidden states).
    #[serde(default = "default_embedder")]
    pub embedder: String,
    /// A GGUF file to embed with instead of a cached model (relative to the task file).
    #[serde(default)]
    pub embedder_path: Option<PathBuf>,
    /// Which labeler gives the final label.
    #[serde(default)]
    pub labeler: Labeler,
    /// Inverse L2 strength of the logistic regression (scikit-learn's `C`).
    #[serde(default = "default_c")]
    pub c: f64,
    /// Folds of the cross-validation that calibrates the probe and compares it with the LLM.
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// Labeled rows needed before a probe is trained.
    #[serde(default = "default_min_rows")]
    pub min_rows: usize,
    /// Also feed the LLM's calibrated distribution to the probe (stacking).
    #[serde(default)]
    pub llm_features: bool,
    /// Train on at most this many of the fit split's gold rows (people's answers always count): the demo treats
    /// a fixed 100 gold rows as people's answers.
    #[serde(default)]
    pub max_gold_rows: Option<usize>,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        Self {
            embedder: default_embedder(),
            embedder_path: None,
            labeler: Labeler::default(),
            c: default_c(),
            folds: default_folds(),
            min_rows: default_min_rows(),
            llm_features: false,
            max_gold_rows: None,
        }
    }
}

fn default_embedder() -> String {
    "llm".into()
}

fn default_c() -> f64 {
    1.0
}

fn default_folds() -> usize {
    5
}

fn default_min_rows() -> usize {
    10
}

impl ProbeSpec {
    /// Why these settings cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(format!(
                "`probe.c` must be a positive number, got {}",
                self.c
            ));
        }
        if self.folds < 2 {
            return Err(format!(
                "`probe.folds` must be at least 2, got {}",
                self.folds
            ));
        }
        if self.min_rows < 2 {
            return Err(format!(
                "`probe.min-rows` must be at least 2, got {}",
                self.min_rows
            ));
        }
        Ok(())
    }
}
