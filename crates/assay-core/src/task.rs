//! Task files: what to label, how to ask the model, and how to calibrate its answers.
//!
//! A task file is TOML with kebab-case keys; unknown keys are errors that name the key and its line.
//! `docs/task-reference.toml` documents every key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::review::ReviewSpec;
use crate::{Error, Result};

/// The name of the model used when a task names none.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// A labeling task as written in its TOML file, with relative paths resolved against the file's folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TaskSpec {
    /// Short name; runs, annotations and outputs are filed under it.
    pub name: String,
    /// What kind of answer the task wants.
    #[serde(rename = "type")]
    pub kind: TaskKind,
    /// Input file labeled when the command line gives none (JSONL, CSV, TSV or Parquet).
    #[serde(default)]
    pub dataset: Option<PathBuf>,
    /// Output file written when the command line gives none (.jsonl or .parquet).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// minijinja template over the row's columns that renders the text the model sees, e.g. `"{{ text }}"`.
    /// Required for `classify` and `multi-label`; `compare` tasks use `[compare]` instead.
    #[serde(default)]
    pub input: String,
    /// What the labels mean and how to decide: shown to the model (and, later, to people).
    #[serde(default)]
    pub guidelines: Option<String>,
    /// The label set: plain names, or tables with a description and aliases. Not used by `compare` tasks, whose
    /// outcomes are always `1`, `2` and `tie`.
    #[serde(default)]
    pub labels: Vec<LabelSpec>,
    /// Column holding a known (gold) label, used to fit calibration and to report accuracy.
    #[serde(default)]
    pub gold: Option<String>,
    /// Inline few-shot examples.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// Few-shot examples taken from a labeled file.
    #[serde(default)]
    pub examples_from: Option<ExamplesFile>,
    /// Multi-label settings.
    #[serde(default)]
    pub multi_label: MultiLabelSpec,
    /// Which model scores the labels and how it runs.
    #[serde(default)]
    pub model: ModelSpec,
    /// How raw model probabilities become calibrated confidences.
    #[serde(default)]
    pub calibration: CalibrationSpec,
    /// Pairwise preference settings (`type = "compare"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<CompareSpec>,
    /// Direct rating settings (`type = "rate"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateSpec>,
    /// Which items go to people (`assay serve`), how many answer each, who may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewSpec>,
    /// A labeler trained on embeddings from gold rows and people's answers, and which labeler decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::probe::ProbeSpec>,
    /// The dataset's license, source and attribution (also read from a sidecar beside the data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::policy::DatasetProvenance>,
    /// What an export must meet: denied licenses, a required license, synthetic share and generation depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::PolicySpec>,
}

/// The kinds of task assay knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Exactly one label per item.
    Classify,
    /// Any subset of the labels per item, decided label by label.
    MultiLabel,
    /// Which of two responses to a context is better (AI feedback), judged in both orders.
    Compare,
    /// A score for one response on an integer scale (direct RLAIF), read as a distribution over the scores.
    Rate,
}

impl TaskKind {
    /// The name used in task files and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Classify => "classify",
            TaskKind::MultiLabel => "multi-label",
            TaskKind::Compare => "compare",
            TaskKind::Rate => "rate",
        }
    }
}

/// One label: a bare name or a table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelSpec {
    /// `labels = ["ham", "spam"]`
    Name(String),
    /// `[[labels]] name = "spam" description = "..." aliases = ["1"]`
    Full(LabelDetail),
}

/// A label with its description and the gold values that mean it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LabelDetail {
    /// The label as the model writes it and as it appears in outputs.
    pub name: String,
    /// What the label means; shown to the model.
    #[serde(default)]
    pub description: Option<String>,
    /// Other spellings of this label in the gold column or example files.
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl LabelSpec {
    /// The label's name.
    pub fn name(&self) -> &str {
        match self {
            LabelSpec::Name(n) => n,
            LabelSpec::Full(d) => &d.name,
        }
    }

    /// The label's description, if any.
    pub fn description(&self) -> Option<&str> {
        match self {
            LabelSpec::Name(_) => None,
            LabelSpec::Full(d) => d.description.as_deref(),
        }
    }

    fn aliases(&self) -> &[String] {
        match self {
            LabelSpec::Name(_) => &[],
            LabelSpec::Full(d) => &d.aliases,
        }
    }
}

/// One inline few-shot example: the row's columns and its label(s).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Example {
    /// Column values, rendered with the task's `input` template.
    pub row: serde_json::Map<String, serde_json::Value>,
    /// The label (a list of labels for multi-label tasks; separate them with commas or use an array).
    pub label: ExampleLabel,
}

/// An example's answer: one label or several.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExampleLabel {
    /// One label (or comma-separated labels).
    One(String),
    /// Several labels.
    Many(Vec<String>),
}

impl ExampleLabel {
    /// The label names, split on commas for the single-string form of multi-label answers.
    pub fn names(&self, split_commas: bool) -> Vec<String> {
        match self {
            ExampleLabel::One(s) if split_commas => s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            ExampleLabel::One(s) => vec![s.clone()],
            ExampleLabel::Many(v) => v.clone(),
        }
    }
}

/// Few-shot examples read from a labeled file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExamplesFile {
    /// JSONL, CSV, TSV or Parquet file with the input columns and a label column.
    pub path: PathBuf,
    /// Column holding the label.
    pub label_column: String,
    /// Examples in each prompt: with `select = "first"` the file's first rows, with `select = "similar"` the
    /// item's nearest rows.
    #[serde(default = "default_examples_limit")]
    pub limit: usize,
    /// Which rows: the same first `limit` rows for every item (they sit in the shared prompt prefix), or per item
    /// the `limit` rows nearest to it by embedding (the whole file is the pool; the examples then follow the
    /// shared prefix, so each item evaluates them).
    #[serde(default)]
    pub select: ExampleSelect,
    /// With `select = "similar"`: the embedding model, a cached model's name or `llm` for the task's own model.
    /// Defaults to `[probe] embedder` when the task has a probe, else `llm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
}

/// How `examples-from` picks the examples of a prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExampleSelect {
    /// The file's first rows, the same for every item.
    #[default]
    First,
    /// The rows nearest to each item by cosine similarity of their embeddings (Autolabel's
    /// `semantic_similarity`, Liu et al. 2022 "What makes good in-context examples for GPT-3?").
    Similar,
}

impl ExamplesFile {
    /// The embedder of `select = "similar"`: its own, the probe's, or the task's model.
    pub fn embedder_name<'a>(&'a self, probe: Option<&'a crate::ProbeSpec>) -> &'a str {
        self.embedder
            .as_deref()
            .or(probe.map(|p| p.embedder.as_str()))
            .unwrap_or("llm")
    }
}

fn default_examples_limit() -> usize {
    4
}

/// Multi-label settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MultiLabelSpec {
    /// The question asked per label after the input; `{{ label }}` and `{{ description }}` are available.
    #[serde(default = "default_multi_label_question")]
    pub question: String,
    /// A label applies when its calibrated P(yes) is at least this.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_multi_label_question() -> String {
    "Does the label \"{{ label }}\" apply to this text? Answer yes or no.".to_string()
}

fn default_threshold() -> f64 {
    0.5
}

impl Default for MultiLabelSpec {
    fn default() -> Self {
        Self {
            question: default_multi_label_question(),
            threshold: default_threshold(),
        }
    }
}

/// Pairwise preference settings: how a row becomes a context and two responses, and how the judgment is asked.
///
/// The prompt follows the RLAIF paper (Lee et al. 2023): a preamble (the task's `guidelines`), optional exemplars,
/// the sample (`Context - ...`, `Response 1 - ...`, `Response 2 - ...`) and an ending (`Preferred Response=`);
/// the model's probabilities for `1` and `2` are read, never generated. Every pair is judged in both orders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareSpec {
    /// minijinja template over the row's columns: the context or instruction both responses answer.
    pub context: String,
    /// Template of the first response (outcome `1`), e.g. `"{{ response1 }}"`.
    pub response_1: String,
    /// Template of the second response (outcome `2`).
    pub response_2: String,
    /// What the context is called in the prompt.
    #[serde(default = "default_context_name")]
    pub context_name: String,
    /// What a response is called in the prompt (`Response 1 - ...`).
    #[serde(default = "default_response_name")]
    pub response_name: String,
    /// The text after the sample, right before the model's `1` or `2`; default `Preferred <response-name>=`.
    #[serde(default)]
    pub ending: Option<String>,
    /// A pair is a tie when its position-debiased P(response 1 better) is within this distance of 0.5.
    #[serde(default)]
    pub tie_margin: f64,
    /// Few-shot exemplars shown in the preamble.
    #[serde(default)]
    pub examples: Vec<CompareExample>,
    /// Chain of thought (the RLAIF paper's two-step method): first greedy-generate a rationale per order with the
    /// ending replaced by [`CompareSpec::rationale_ending`], then append it and the ending and score `1`/`2`.
    /// (Left out of the serialised spec when off, so that tasks written before it keep their version hash.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chain_of_thought: bool,
    /// Most tokens generated per rationale.
    #[serde(
        default = "default_rationale_tokens",
        skip_serializing_if = "is_default_rationale_tokens"
    )]
    pub rationale_tokens: usize,
}

fn default_rationale_tokens() -> usize {
    64
}

fn is_default_rationale_tokens(n: &usize) -> bool {
    *n == default_rationale_tokens()
}

fn default_context_name() -> String {
    "Context".to_string()
}

fn default_response_name() -> String {
    "Response".to_string()
}

impl CompareSpec {
    /// The ending actually used.
    pub fn ending(&self) -> String {
        self.ending
            .clone()
            .unwrap_or_else(|| format!("Preferred {}=", self.response_name))
    }

    /// The ending that asks for a rationale (chain of thought), as in the RLAIF paper.
    pub fn rationale_ending(&self) -> String {
        let noun = self.response_name.to_lowercase();
        format!(
            "Consider the coherence, accuracy, coverage, and overall quality of each {noun} and explain which one is better. Rationale:"
        )
    }
}

/// Direct rating settings (d-RLAIF): how a row becomes a context and one response, and the scale.
///
/// The model's probabilities for every score `min`..=`max` are read (never generated); the output keeps that
/// distribution, the expected score and the expected score mapped to [-1, 1].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RateSpec {
    /// minijinja template of the context the response answers; none: the response is rated alone.
    #[serde(default)]
    pub context: Option<String>,
    /// minijinja template of the response to rate.
    pub response: String,
    /// minijinja template of a second response to the same context: both are rated on their own (no position
    /// bias: neither sees the other) and the pair's preference is P(score 1 > score 2) + P(equal) / 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_2: Option<String>,
    /// With `response-2`: a pair whose P(response 1 better) is within this of 0.5 is a tie.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tie_margin: f64,
    /// Lowest score (worst).
    #[serde(default = "default_rate_min")]
    pub min: u32,
    /// Highest score (best).
    #[serde(default = "default_rate_max")]
    pub max: u32,
    /// What the context is called in the prompt.
    #[serde(default = "default_context_name")]
    pub context_name: String,
    /// What the response is called in the prompt.
    #[serde(default = "default_response_name")]
    pub response_name: String,
    /// The text after the sample, right before the model's score; default `Rating=`.
    #[serde(default)]
    pub ending: Option<String>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn default_rate_min() -> u32 {
    1
}

fn default_rate_max() -> u32 {
    10
}

impl RateSpec {
    /// The ending actually used.
    pub fn ending(&self) -> String {
        self.ending.clone().unwrap_or_else(|| "Rating=".to_string())
    }

    /// The scores, lowest first, as the model writes them: the options scored.
    pub fn scores(&self) -> Vec<String> {
        (self.min..=self.max).map(|s| s.to_string()).collect()
    }

    /// Summarise a distribution over [`Self::scores`] (same order, summing to 1).
    pub fn rating(&self, distribution: &[f64]) -> Rating {
        let expected: f64 = distribution
            .iter()
            .zip(self.min..=self.max)
            .map(|(p, s)| p * f64::from(s))
            .sum();
        let (min, max) = (f64::from(self.min), f64::from(self.max));
        Rating {
            expected,
            normalised: (expected - min) / (max - min) * 2.0 - 1.0,
        }
    }
}

impl RateSpec {
    /// P(a score drawn from `first` beats one drawn from `second`) + half the chance they are equal: the
    /// preference two independent ratings imply. Exactly `1 - p` when the two are swapped.
    pub fn pair_preference(first: &[f64], second: &[f64]) -> f64 {
        let mut p = 0.0;
        for (i, a) in first.iter().enumerate() {
            for (j, b) in second.iter().enumerate() {
                p += a
                    * b
                    * match i.cmp(&j) {
                        std::cmp::Ordering::Greater => 1.0,
                        std::cmp::Ordering::Equal => 0.5,
                        std::cmp::Ordering::Less => 0.0,
                    };
            }
        }
        p
    }
}

/// The expected score of a rating distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rating {
    /// Σ score · P(score).
    pub expected: f64,
    /// The expected score mapped linearly from [min, max] to [-1, 1].
    pub normalised: f64,
}

/// A compare exemplar: a row (rendered with the `[compare]` templates), the preferred response and an optional
/// rationale shown before the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareExample {
    /// Column values.
    pub row: serde_json::Map<String, serde_json::Value>,
    /// `1` or `2`.
    pub preferred: u8,
    /// Why; shown as `Rationale: ...` before the preference.
    #[serde(default)]
    pub rationale: Option<String>,
}

/// How the prompt is laid out for the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptFormat {
    /// The model's own chat template (from the GGUF); the label is the assistant's answer.
    #[default]
    Chat,
    /// Plain text ending in `Answer:`; for base models without a chat template.
    Completion,
}

/// The model section of a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModelSpec {
    /// A model in the cache (`assay model list`), used when `path` is not given.
    #[serde(default = "default_model_name")]
    pub name: String,
    /// A local GGUF file; wins over `name`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Chat template or plain completion layout.
    #[serde(default)]
    pub prompt_format: PromptFormat,
    /// CPU threads for llama.cpp; default: the cores available to this process.
    #[serde(default)]
    pub threads: Option<usize>,
    /// Most tokens per llama.cpp call (the batch size); items are scored one at a time.
    #[serde(default = "default_batch_tokens")]
    pub batch_tokens: usize,
    /// Base URL of an OpenAI-compatible server (`http://127.0.0.1:8080/v1`); when set, `name` is the model name
    /// that server knows and nothing runs in-process. (Every served key below is left out of the serialised spec
    /// when unset, so tasks written before served models existed keep their version hash.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Name of the environment variable holding the API key (the key itself is never written in a task file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// How a served model's answer is read: `auto` (default: the best the server supports), `prompt-logprobs`,
    /// `first-token` or `generate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<ServedScoring>,
    /// How assay lays out the chat as text for `/v1/completions` (`chatml` or `completion`). Without it a served
    /// chat task is sent as messages to `/v1/chat/completions` and the server applies its own template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<ChatTemplate>,
    /// Alternatives asked for per answer token in `first-token` scoring (OpenAI allows at most 20;
    /// llama-cpp-python up to the whole vocabulary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    /// Requests in flight at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Most requests started per minute (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Most tokens (prompt and answer, as estimated before sending) per minute (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Seconds one request may take before it is abandoned and retried (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// Retries of a request after 429, 5xx, a timeout or a dropped connection (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// USD per million input tokens (default: the shipped price table for known models, else 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_input: Option<f64>,
    /// USD per million output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_output: Option<f64>,
}

/// How a served model's answer becomes label log-probabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServedScoring {
    /// The best the server supports, probed at the start of a run.
    #[default]
    Auto,
    /// `/v1/completions` with `echo` + `logprobs`: the log-probability of every option's full token sequence after
    /// the prompt, exactly as the embedded backend scores.
    PromptLogprobs,
    /// `logprobs` + `top_logprobs` of the first answer token; exact only when the options' first tokens differ.
    FirstToken,
    /// The generated answer only; no confidence.
    Generate,
}

impl ServedScoring {
    /// The name used in task files and run summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ServedScoring::Auto => "auto",
            ServedScoring::PromptLogprobs => "prompt-logprobs",
            ServedScoring::FirstToken => "first-token",
            ServedScoring::Generate => "generate",
        }
    }
}

/// Text layouts assay renders itself for `/v1/completions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n` turns, then `<|im_start|>assistant\n` (SmolLM2, Qwen, ...).
    Chatml,
    /// The plain `Input:`/`Answer:` layout of `prompt-format = "completion"`.
    Completion,
}

impl ModelSpec {
    /// Whether the model is served over HTTP rather than run in-process.
    pub fn is_served(&self) -> bool {
        self.endpoint.is_some()
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let Some(endpoint) = &self.endpoint else {
            let served = [
                ("api-key-env", self.api_key_env.is_some()),
                ("scoring", self.scoring.is_some()),
                ("chat-template", self.chat_template.is_some()),
                ("top-logprobs", self.top_logprobs.is_some()),
                ("concurrency", self.concurrency.is_some()),
                ("requests-per-minute", self.requests_per_minute.is_some()),
                ("tokens-per-minute", self.tokens_per_minute.is_some()),
                ("timeout-seconds", self.timeout_seconds.is_some()),
                ("max-retries", self.max_retries.is_some()),
            ];
            if let Some((key, _)) = served.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "`model.{key}` is for served models; set `model.endpoint` too"
                ));
            }
            return Ok(());
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(format!(
                "`model.endpoint` must be an http:// or https:// URL, got `{endpoint}`"
            ));
        }
        if self.path.is_some() {
            return Err("`model.path` and `model.endpoint` exclude each other".into());
        }
        if self.concurrency == Some(0) {
            return Err("`model.concurrency` must be at least 1".into());
        }
        if self.top_logprobs == Some(0) {
            return Err("`model.top-logprobs` must be at least 1".into());
        }
        if self.timeout_seconds.is_some_and(|t| t.is_nan() || t <= 0.0) {
            return Err("`model.timeout-seconds` must be positive".into());
        }
        if [self.price_input, self.price_output]
            .iter()
            .flatten()
            .any(|p| p.is_nan() || *p < 0.0)
        {
            return Err("`model.price-input` and `model.price-output` must be at least 0".into());
        }
        Ok(())
    }

    /// The same settings without those that cannot change a label (how llama.cpp is driven, where the server is,
    /// how hard it is driven, what it costs): what the task version hashes. A runtime setting is reset to its
    /// default rather than left out, so the versions of tasks written before stay what they were.
    fn labeling_identity(&self) -> Self {
        Self {
            threads: None,
            batch_tokens: default_batch_tokens(),
            endpoint: None,
            api_key_env: None,
            concurrency: None,
            requests_per_minute: None,
            tokens_per_minute: None,
            timeout_seconds: None,
            max_retries: None,
            price_input: None,
            price_output: None,
            ..self.clone()
        }
    }
}

fn default_model_name() -> String {
    DEFAULT_MODEL.to_string()
}

fn default_batch_tokens() -> usize {
    512
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            name: default_model_name(),
            path: None,
            prompt_format: PromptFormat::default(),
            threads: None,
            batch_tokens: default_batch_tokens(),
            endpoint: None,
            api_key_env: None,
            scoring: None,
            chat_template: None,
            top_logprobs: None,
            concurrency: None,
            requests_per_minute: None,
            tokens_per_minute: None,
            timeout_seconds: None,
            max_retries: None,
            price_input: None,
            price_output: None,
        }
    }
}

/// Which calibration to apply to the model's distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationMethod {
    /// Raw normalised model probabilities.
    None,
    /// Divide out the distribution the model gives content-free inputs (Zhao et al. 2021).
    Contextual,
    /// Per-class bias + temperature fitted on gold rows.
    Fitted,
    /// Contextual, then fitted on top where gold rows exist.
    #[default]
    Auto,
}

/// The calibration section of a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CalibrationSpec {
    /// `auto` (default): contextual, plus a fitted layer when the task has gold rows.
    #[serde(default)]
    pub method: CalibrationMethod,
    /// Inputs without content used to estimate the model's prior bias.
    #[serde(default = "default_content_free")]
    pub content_free: Vec<String>,
    /// Share of gold rows used to fit; the other gold rows measure the result honestly.
    #[serde(default = "default_fit_share")]
    pub fit_share: f64,
    /// Seed of the split of gold rows into fit and measure.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_content_free() -> Vec<String> {
    vec!["N/A".into(), "".into(), "[MASK]".into()]
}

fn default_fit_share() -> f64 {
    0.3
}

fn default_seed() -> u64 {
    17
}

impl Default for CalibrationSpec {
    fn default() -> Self {
        Self {
            method: CalibrationMethod::default(),
            content_free: default_content_free(),
            fit_share: default_fit_share(),
            seed: default_seed(),
        }
    }
}

/// The outcome code of a tie among pair outcomes (0 = response 1 better, 1 = response 2 better).
pub const TIE: usize = 2;

/// Pair outcome names in code order.
pub const PAIR_OUTCOMES: [&str; 3] = ["1", "2", "tie"];

/// `1`, `2` or `tie` for a pair outcome code.
pub fn outcome_name(code: usize) -> &'static str {
    PAIR_OUTCOMES[code.min(TIE)]
}

/// Whether a pair's two orders preferred the same response, from P("1") in order AB and in order BA.
pub fn orders_agree(p_ab: f64, p_ba: f64) -> bool {
    (p_ab > 0.5 && p_ba < 0.5) || (p_ab < 0.5 && p_ba > 0.5)
}

/// Whether a compare annotation's two orders preferred the same response, from its stored raw scores (per order,
/// the log-probabilities of `1` and `2`; chain-of-thought and served annotations keep them under `logprobs`).
pub fn position_consistent(scores: &serde_json::Value) -> Option<bool> {
    let scores = scores.get("logprobs").unwrap_or(scores).as_array()?;
    let p1 = |order: &serde_json::Value| -> Option<f64> {
        let lp = order.as_array()?;
        let (a, b) = (lp.first()?.as_f64()?, lp.get(1)?.as_f64()?);
        Some(1.0 / (1.0 + (b - a).exp()))
    };
    match scores.as_slice() {
        [ab, ba] => Some(orders_agree(p1(ab)?, p1(ba)?)),
        _ => None,
    }
}

/// A preference as PandaLM and most human preference data write it: `1` (response 1 better) → 0, `2` → 1,
/// `0` or `tie` → 2 ([`TIE`]). Numbers and their text both work.
pub fn preference_code(value: &serde_json::Value) -> Option<usize> {
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_lowercase(),
        _ => return None,
    };
    match text.as_str() {
        "1" | "1.0" => Some(0),
        "2" | "2.0" => Some(1),
        "0" | "0.0" | "tie" => Some(TIE),
        _ => None,
    }
}

/// A task file's text.
pub(crate) fn read_task_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Makes a path in the task file at `task_path` relative to that file's folder, unless it is absolute.
pub(crate) fn resolver(task_path: &Path) -> impl Fn(&mut PathBuf) + Copy + '_ {
    let base = task_path.parent().unwrap_or(Path::new("."));
    move |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

impl TaskSpec {
    /// Parse a task from TOML text (paths stay as written).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::parse(text, Path::new("<task>"))
    }

    /// Read and parse a task file; relative paths in it are resolved against the file's folder.
    pub fn from_path(path: &Path) -> Result<Self> {
        let mut spec = Self::parse(&read_task_file(path)?, path)?;
        let resolve = resolver(path);
        spec.dataset.as_mut().map(resolve);
        spec.output.as_mut().map(resolve);
        spec.model.path.as_mut().map(resolve);
        if let Some(e) = spec.examples_from.as_mut() {
            resolve(&mut e.path);
        }
        if let Some(p) = spec.probe.as_mut() {
            p.embedder_path.as_mut().map(resolve);
        }
        Ok(spec)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let spec: TaskSpec = toml::from_str(text).map_err(|e| Error::TaskSyntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        spec.validate()
            .and_then(|()| spec.model.validate())
            .and_then(|()| spec.review.as_ref().map_or(Ok(()), ReviewSpec::validate))
            .and_then(|()| spec.validate_probe())
            .and_then(|()| {
                spec.policy
                    .as_ref()
                    .map_or(Ok(()), crate::policy::PolicySpec::check)
            })
            .and_then(|()| spec.validate_examples_from())
            .map_err(|message| Error::TaskInvalid {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(spec)
    }

    fn validate_examples_from(&self) -> std::result::Result<(), String> {
        let Some(from) = &self.examples_from else {
            return Ok(());
        };
        if from.limit == 0 {
            return Err("`examples-from.limit` must be at least 1".into());
        }
        if from.select == ExampleSelect::First && from.embedder.is_some() {
            return Err("`examples-from.embedder` is only used with `select = \"similar\"`".into());
        }
        Ok(())
    }

    fn validate_probe(&self) -> std::result::Result<(), String> {
        let Some(probe) = &self.probe else {
            return Ok(());
        };
        if !matches!(self.kind, TaskKind::Classify | TaskKind::Compare) {
            return Err(format!(
                "`[probe]` is built for classify and compare tasks, not `{}` (not built yet)",
                self.kind.as_str()
            ));
        }
        probe.check()
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        if self.kind == TaskKind::Compare {
            return self.validate_compare();
        }
        if self.compare.is_some() {
            return Err("`[compare]` is only for `type = \"compare\"`".into());
        }
        if self.kind == TaskKind::Rate {
            return self.validate_rate();
        }
        if self.rate.is_some() {
            return Err("`[rate]` is only for `type = \"rate\"`".into());
        }
        if self.input.trim().is_empty() {
            return Err("`input`: a template is required (e.g. `input = \"{{ text }}\"`)".into());
        }
        if self.labels.len() < 2 && self.kind == TaskKind::Classify {
            return Err("`labels`: a classify task needs at least two labels".into());
        }
        if self.labels.is_empty() {
            return Err("`labels`: at least one label is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for label in &self.labels {
            if label.name().trim().is_empty() {
                return Err("`labels`: a label name is empty".into());
            }
            if !seen.insert(label.name().to_lowercase()) {
                return Err(format!("`labels`: `{}` appears twice", label.name()));
            }
        }
        if !(0.0..1.0).contains(&self.calibration.fit_share) {
            return Err(format!(
                "`calibration.fit-share` must be in [0, 1), got {}",
                self.calibration.fit_share
            ));
        }
        if !(0.0..=1.0).contains(&self.multi_label.threshold) {
            return Err("`multi-label.threshold` must be in [0, 1]".into());
        }
        if self.model.batch_tokens < 32 {
            return Err("`model.batch-tokens` must be at least 32".into());
        }
        Ok(())
    }

    fn validate_compare(&self) -> std::result::Result<(), String> {
        let Some(compare) = &self.compare else {
            return Err("a compare task needs a `[compare]` section with `context`, `response-1` and `response-2`".into());
        };
        if !self.labels.is_empty() {
            return Err(
                "`labels`: a compare task has fixed outcomes (1, 2, tie); remove `labels`".into(),
            );
        }
        if !self.input.is_empty() {
            return Err("`input`: a compare task renders `[compare] context`, `response-1` and `response-2`; remove `input`".into());
        }
        if !self.examples.is_empty() || self.examples_from.is_some() {
            return Err("a compare task takes its exemplars from `[[compare.examples]]`".into());
        }
        if self.rate.is_some() {
            return Err("`[rate]` is only for `type = \"rate\"`".into());
        }
        if compare.chain_of_thought && !(1..=1024).contains(&compare.rationale_tokens) {
            return Err(format!(
                "`compare.rationale-tokens` must be in 1..=1024, got {}",
                compare.rationale_tokens
            ));
        }
        if !(0.0..0.5).contains(&compare.tie_margin) {
            return Err(format!(
                "`compare.tie-margin` must be in [0, 0.5), got {}",
                compare.tie_margin
            ));
        }
        if let Some(e) = compare
            .examples
            .iter()
            .find(|e| !matches!(e.preferred, 1 | 2))
        {
            return Err(format!(
                "`compare.examples`: `preferred` must be 1 or 2, got {}",
                e.preferred
            ));
        }
        if !matches!(
            self.calibration.method,
            CalibrationMethod::None | CalibrationMethod::Auto
        ) {
            return Err("`calibration.method`: compare tasks are debiased by judging both orders; only \"none\" or \"auto\" (which means none) apply".into());
        }
        if self.model.batch_tokens < 32 {
            return Err("`model.batch-tokens` must be at least 32".into());
        }
        Ok(())
    }

    fn validate_rate(&self) -> std::result::Result<(), String> {
        let Some(rate) = &self.rate else {
            return Err(
                "a rate task needs a `[rate]` section with `response` (and usually `context`)"
                    .into(),
            );
        };
        if !self.labels.is_empty() {
            return Err(
                "`labels`: a rate task's outcomes are the scores `min`..=`max`; remove `labels`"
                    .into(),
            );
        }
        if !self.input.is_empty() {
            return Err(
                "`input`: a rate task renders `[rate] context` and `response`; remove `input`"
                    .into(),
            );
        }
        if !self.examples.is_empty() || self.examples_from.is_some() {
            return Err("a rate task takes no few-shot examples yet".into());
        }
        if rate.min >= rate.max || rate.max - rate.min > 100 {
            return Err(format!(
                "`rate.min` must be below `rate.max`, at most 100 apart; got {}..{}",
                rate.min, rate.max
            ));
        }
        if !(0.0..0.5).contains(&rate.tie_margin) {
            return Err(format!(
                "`rate.tie-margin` must be in [0, 0.5), got {}",
                rate.tie_margin
            ));
        }
        if !matches!(
            self.calibration.method,
            CalibrationMethod::None | CalibrationMethod::Auto
        ) {
            return Err("`calibration.method`: rate tasks keep the model's raw distribution over scores; only \"none\" or \"auto\" (which means none) apply".into());
        }
        if self.model.batch_tokens < 32 {
            return Err("`model.batch-tokens` must be at least 32".into());
        }
        Ok(())
    }

    /// A rate task that rates two responses per item and so judges a pair.
    pub fn is_rated_pair(&self) -> bool {
        self.kind == TaskKind::Rate && self.rate.as_ref().is_some_and(|r| r.response_2.is_some())
    }

    /// A task whose label is a preference between two responses (`1`, `2`, `tie`): a compare task or a rated
    /// pair.
    pub fn judges_pairs(&self) -> bool {
        self.kind == TaskKind::Compare || self.is_rated_pair()
    }

    /// The outcome names of a task, in code order: its labels, its scores (rate), or `1`, `2`, `tie` for pairs.
    pub fn outcome_names(&self) -> Vec<String> {
        match self.kind {
            _ if self.judges_pairs() => PAIR_OUTCOMES.iter().map(|s| s.to_string()).collect(),
            TaskKind::Rate => self.rate.as_ref().map(|r| r.scores()).unwrap_or_default(),
            _ => self.label_names().iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Gold label indices from a gold cell: a label name, or for multi-label a list or comma-separated names; for
    /// pair tasks the preferred response (see [`preference_code`]); for rate tasks the score. `None` when the
    /// cell is empty or names no outcome of the task.
    pub fn gold_indices(&self, value: Option<&serde_json::Value>) -> Option<Vec<usize>> {
        use serde_json::Value;
        if self.judges_pairs() {
            return preference_code(value?).map(|c| vec![c]);
        }
        if let Some(rate) = self.rate.as_ref().filter(|_| self.kind == TaskKind::Rate) {
            let text = match value? {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => return None,
            };
            return rate
                .scores()
                .iter()
                .position(|s| *s == text)
                .map(|i| vec![i]);
        }
        let names: Vec<String> = match value? {
            Value::String(s) => {
                ExampleLabel::One(s.clone()).names(self.kind == TaskKind::MultiLabel)
            }
            Value::Array(values) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Value::Number(n) => vec![n.to_string()],
            Value::Bool(b) => vec![b.to_string()],
            _ => return None,
        };
        let indices: Option<Vec<usize>> = names.iter().map(|n| self.label_index(n)).collect();
        match self.kind {
            TaskKind::Classify => indices.filter(|i| i.len() == 1),
            TaskKind::MultiLabel => indices,
            TaskKind::Compare | TaskKind::Rate => None,
        }
    }

    /// Label names in declaration order.
    pub fn label_names(&self) -> Vec<&str> {
        self.labels.iter().map(LabelSpec::name).collect()
    }

    /// Map a gold or example value to a label index: exact name, an alias, or a case-insensitive match.
    pub fn label_index(&self, value: &str) -> Option<usize> {
        let value = value.trim();
        self.labels
            .iter()
            .position(|l| l.name() == value || l.aliases().iter().any(|a| a == value))
            .or_else(|| {
                self.labels.iter().position(|l| {
                    l.name().eq_ignore_ascii_case(value)
                        || l.aliases().iter().any(|a| a.eq_ignore_ascii_case(value))
                })
            })
    }

    /// The row columns the templates render, each with the key of the template that names it (`input`,
    /// `compare.response-1`, ...): the top-level names a template reads and does not set itself. A template that
    /// does not compile names nothing here (compiling it reports the error).
    pub fn template_columns(&self) -> Vec<(String, String)> {
        let mut templates: Vec<(&str, &str)> = vec![("input", self.input.as_str())];
        if let Some(c) = self
            .compare
            .as_ref()
            .filter(|_| self.kind == TaskKind::Compare)
        {
            templates.extend([
                ("compare.context", c.context.as_str()),
                ("compare.response-1", c.response_1.as_str()),
                ("compare.response-2", c.response_2.as_str()),
            ]);
        }
        if let Some(r) = self.rate.as_ref().filter(|_| self.kind == TaskKind::Rate) {
            templates.push(("rate.response", r.response.as_str()));
            templates.extend(r.context.as_deref().map(|t| ("rate.context", t)));
            templates.extend(r.response_2.as_deref().map(|t| ("rate.response-2", t)));
        }
        let env = minijinja::Environment::new();
        let mut columns = Vec::new();
        for (key, source) in templates {
            let Ok(template) = env.template_from_str(source) else {
                continue;
            };
            let mut names: Vec<String> = template.undeclared_variables(false).into_iter().collect();
            names.sort();
            columns.extend(names.into_iter().map(|n| (key.to_string(), n)));
        }
        columns
    }

    /// A stable hash of everything that changes what the model is asked; runs with the same hash resume each other.
    pub fn spec_hash(&self) -> String {
        let mut canonical = self.clone();
        // Where input and output live does not change any label.
        canonical.dataset = None;
        canonical.output = None;
        canonical.model = canonical.model.labeling_identity();
        // Calibration is applied after scoring, to the stored raw scores: changing it must not re-score anything.
        canonical.calibration = CalibrationSpec::default();
        // Who reviews which items changes no machine label.
        canonical.review = None;
        // Nor does the probe: it learns from the stored labels, it changes none.
        canonical.probe = None;
        // Nor where the data came from or what an export must meet.
        canonical.provenance = None;
        canonical.policy = None;
        // So is the tie margin of a compare task.
        if let Some(compare) = canonical.compare.as_mut() {
            compare.tie_margin = 0.0;
        }
        if let Some(rate) = canonical.rate.as_mut() {
            rate.tie_margin = 0.0;
        }
        crate::sha256_hex(
            serde_json::to_string(&canonical)
                .expect("task spec serialises")
                .as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "spam"
type = "classify"
input = "{{ text }}"
labels = ["ham", { name = "spam", description = "unsolicited", aliases = ["1"] }]
"#;

    #[test]
    fn minimal_task_parses_with_defaults() {
        let spec = TaskSpec::from_toml_str(MINIMAL).unwrap();
        assert_eq!(spec.label_names(), ["ham", "spam"]);
        assert_eq!(spec.model.name, DEFAULT_MODEL);
        assert_eq!(spec.calibration.method, CalibrationMethod::Auto);
        assert_eq!(spec.label_index("1"), Some(1));
        assert_eq!(spec.label_index("HAM"), Some(0));
        assert_eq!(spec.label_index("eggs"), None);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = format!("{MINIMAL}\n[model]\nthreds = 2\n");
        let err = TaskSpec::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("threds"), "{err}");
        assert!(err.contains("line 8"), "{err}");
    }

    const COMPARE: &str = r#"
name = "pref"
type = "compare"

[compare]
context = "{{ instruction }}"
response-1 = "{{ response1 }}"
response-2 = "{{ response2 }}"
tie-margin = 0.05
"#;

    #[test]
    fn compare_task_parses_without_labels_or_input() {
        let spec = TaskSpec::from_toml_str(COMPARE).unwrap();
        assert_eq!(spec.kind, TaskKind::Compare);
        let compare = spec.compare.as_ref().unwrap();
        assert_eq!(compare.ending(), "Preferred Response=");
        assert_eq!(compare.tie_margin, 0.05);
    }

    #[test]
    fn compare_task_rejects_labels_typos_and_a_wide_tie_margin() {
        let err = TaskSpec::from_toml_str(&COMPARE.replace("tie-margin", "tie-margn"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tie-margn"), "{err}");
        let err = TaskSpec::from_toml_str(&COMPARE.replace("0.05", "0.5"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tie-margin"), "{err}");
        let with_labels = COMPARE.replace(
            "type = \"compare\"",
            "type = \"compare\"\nlabels = [\"a\", \"b\"]",
        );
        let err = TaskSpec::from_toml_str(&with_labels)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fixed outcomes"), "{err}");
        let err = TaskSpec::from_toml_str("name = \"x\"\ntype = \"compare\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[compare]"), "{err}");
    }

    #[test]
    fn classify_still_needs_an_input_template() {
        let err = TaskSpec::from_toml_str(&MINIMAL.replace("input = \"{{ text }}\"", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`input`"), "{err}");
    }

    #[test]
    fn rated_pair_preference_is_complementary_and_half_on_equal_ratings() {
        let a = [0.1, 0.2, 0.7];
        let b = [0.5, 0.3, 0.2];
        let p = RateSpec::pair_preference(&a, &b);
        let q = RateSpec::pair_preference(&b, &a);
        assert!((p + q - 1.0).abs() < 1e-12, "{p} + {q}");
        // P(a > b) = 0.2*0.5 + 0.7*(0.5+0.3) = 0.66; P(equal) = 0.05 + 0.06 + 0.14 = 0.25.
        assert!((p - (0.66 + 0.125)).abs() < 1e-12, "{p}");
        assert_eq!(RateSpec::pair_preference(&a, &a), 0.5);
    }

    #[test]
    fn compare_tie_margin_does_not_change_the_spec_hash_but_templates_do() {
        let a = TaskSpec::from_toml_str(COMPARE).unwrap();
        let mut b = a.clone();
        b.compare.as_mut().unwrap().tie_margin = 0.2;
        assert_eq!(a.spec_hash(), b.spec_hash());
        b.compare.as_mut().unwrap().context = "{{ prompt }}".into();
        assert_ne!(a.spec_hash(), b.spec_hash());
    }

    const RATE: &str = r#"
name = "rating"
type = "rate"

[rate]
context = "{{ prompt }}"
response = "{{ answer }}"
"#;

    #[test]
    fn rate_task_parses_with_a_one_to_ten_scale() {
        let spec = TaskSpec::from_toml_str(RATE).unwrap();
        let rate = spec.rate.as_ref().unwrap();
        assert_eq!(rate.scores().len(), 10);
        assert_eq!(rate.scores()[9], "10");
        assert_eq!(rate.ending(), "Rating=");
        let err = TaskSpec::from_toml_str(&RATE.replace("response =", "respons ="))
            .unwrap_err()
            .to_string();
        assert!(err.contains("respons"), "{err}");
        let err = TaskSpec::from_toml_str(&format!("{RATE}min = 5\nmax = 5\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate.min"), "{err}");
    }

    #[test]
    fn expected_rating_and_its_normalisation_by_hand() {
        let spec = TaskSpec::from_toml_str(&format!("{RATE}min = 1\nmax = 5\n")).unwrap();
        let rate = spec.rate.unwrap();
        // 0.1·1 + 0.2·2 + 0.4·3 + 0.2·4 + 0.1·5 = 3.0, the middle of [1, 5] → 0.
        let r = rate.rating(&[0.1, 0.2, 0.4, 0.2, 0.1]);
        assert!((r.expected - 3.0).abs() < 1e-12 && r.normalised.abs() < 1e-12);
        // 0.5·4 + 0.5·5 = 4.5 → (4.5 - 1) / 4 · 2 - 1 = 0.75.
        let r = rate.rating(&[0.0, 0.0, 0.0, 0.5, 0.5]);
        assert!((r.expected - 4.5).abs() < 1e-12 && (r.normalised - 0.75).abs() < 1e-12);
        // All mass on the ends.
        assert_eq!(rate.rating(&[1.0, 0.0, 0.0, 0.0, 0.0]).normalised, -1.0);
        assert_eq!(rate.rating(&[0.0, 0.0, 0.0, 0.0, 1.0]).normalised, 1.0);
    }

    #[test]
    fn compare_chain_of_thought_is_a_different_task_version() {
        let a = TaskSpec::from_toml_str(COMPARE).unwrap();
        let b = TaskSpec::from_toml_str(&format!("{COMPARE}chain-of-thought = true\n")).unwrap();
        assert!(b.compare.as_ref().unwrap().chain_of_thought);
        assert_eq!(b.compare.as_ref().unwrap().rationale_tokens, 64);
        assert_ne!(a.spec_hash(), b.spec_hash());
        // Tasks written before chain of thought existed keep their version.
        let json = serde_json::to_string(&a).unwrap();
        assert!(!json.contains("chain-of-thought") && !json.contains("rationale-tokens"));
    }

    #[test]
    fn served_reference_parses_and_its_driving_keys_keep_the_version() {
        let text = include_str!("../../../docs/task-reference-served.toml");
        let spec = TaskSpec::from_toml_str(text).unwrap_or_else(|e| panic!("{e}"));
        let model = &spec.model;
        assert!(model.is_served());
        assert_eq!(model.endpoint.as_deref(), Some("http://127.0.0.1:8080/v1"));
        assert_eq!(model.api_key_env.as_deref(), Some("OPENAI_API_KEY"));
        assert_eq!(model.scoring, Some(ServedScoring::Auto));
        assert_eq!(model.chat_template, Some(ChatTemplate::Chatml));
        assert_eq!(model.concurrency, Some(8));
        assert_eq!(model.price_output, Some(0.6));
        let mut b = spec.clone();
        b.model.endpoint = Some("http://10.0.0.1:9000/v1".into());
        b.model.concurrency = Some(64);
        b.model.price_input = Some(9.0);
        assert_eq!(spec.spec_hash(), b.spec_hash());
        b.model.scoring = Some(ServedScoring::FirstToken);
        assert_ne!(spec.spec_hash(), b.spec_hash());
    }

    #[test]
    fn served_keys_without_an_endpoint_or_with_a_path_are_errors() {
        let err = TaskSpec::from_toml_str(&format!("{MINIMAL}\n[model]\nconcurrency = 4\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.concurrency") && err.contains("endpoint"),
            "{err}"
        );
        let err = TaskSpec::from_toml_str(&format!(
            "{MINIMAL}\n[model]\nendpoint = \"http://x/v1\"\npath = \"m.gguf\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("exclude"), "{err}");
        let err = TaskSpec::from_toml_str(&format!(
            "{MINIMAL}\n[model]\nendpoint = \"localhost:8080\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("http://"), "{err}");
        // An embedded task's version is what it was before served models existed.
        let spec = TaskSpec::from_toml_str(MINIMAL).unwrap();
        let json = serde_json::to_string(&spec.model).unwrap();
        assert!(
            !json.contains("endpoint") && !json.contains("scoring"),
            "{json}"
        );
    }

    #[test]
    fn duplicate_labels_are_rejected() {
        let text = MINIMAL.replace("\"ham\"", "\"Spam\"");
        let err = TaskSpec::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn spec_hash_ignores_where_files_live_but_not_the_prompt() {
        let a = TaskSpec::from_toml_str(MINIMAL).unwrap();
        let mut b = a.clone();
        b.output = Some("elsewhere.jsonl".into());
        assert_eq!(a.spec_hash(), b.spec_hash());
        b.calibration.method = CalibrationMethod::None;
        assert_eq!(a.spec_hash(), b.spec_hash());
        b.input = "{{ text }}!".into();
        assert_ne!(a.spec_hash(), b.spec_hash());
    }

    /// Issue 11 §2.2: how llama.cpp is driven (threads, tokens per call) is no part of the task version, so changing
    /// it re-scores nothing; the versions of existing tasks stay what they were.
    #[test]
    fn issue_11_runtime_settings_keep_the_task_version() {
        let a = TaskSpec::from_toml_str(MINIMAL).unwrap();
        // MINIMAL's hash before the fix.
        assert_eq!(
            a.spec_hash(),
            "1c427cdaba253c1169ac8515291e022c0b6646c48a6760d433389126da31a7c0"
        );
        let mut b = a.clone();
        b.model.batch_tokens = 64;
        b.model.threads = Some(1);
        assert_eq!(a.spec_hash(), b.spec_hash());
        b.model.prompt_format = PromptFormat::Completion;
        assert_ne!(a.spec_hash(), b.spec_hash());
    }

    #[test]
    fn consistency_from_scores_in_both_layouts() {
        // Order AB prefers 1, order BA prefers 1 too (the same position): inconsistent.
        let flip = serde_json::json!([[-0.1, -2.0], [-0.2, -1.5]]);
        assert_eq!(position_consistent(&flip), Some(false));
        let same =
            serde_json::json!({"logprobs": [[-0.1, -2.0], [-1.5, -0.2]], "rationales": ["a", "b"]});
        assert_eq!(position_consistent(&same), Some(true));
        assert_eq!(position_consistent(&serde_json::json!([-0.1, -2.0])), None);
    }
}
