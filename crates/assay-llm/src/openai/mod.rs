//! The HTTP backend: a model served by an OpenAI-compatible server (vLLM, llama.cpp's server, llama-cpp-python,
//! Ollama, OpenAI).
//!
//! Three ways to read an answer, the best the server supports chosen at the start of a run ([`ServedScoring`]):
//! - `prompt-logprobs`: `/v1/completions` with `echo` + `logprobs` returns the log-probability of every prompt
//!   token; each option is appended to the prompt (laid out as text by assay, [`parse::render`]) and its tokens'
//!   log-probabilities are summed: the same number the embedded backend computes. One request per option.
//! - `first-token`: `logprobs` + `top_logprobs` of the first answer token, one request per item.
//! - `generate`: the generated answer matched to a label; no confidence.
//!
//! Every answer is stored in a [`ResponseCache`] (the store, in the CLI) under the hash of the server's base URL,
//! the endpoint path and the full request body (model, prompt, parameters) before any label is derived from it,
//! so a resumed or repeated run pays for nothing twice, and another server with a model of the same name is asked
//! anew. Requests run on a small tokio runtime owned by the [`ServedModel`];
//! the [`Scorer`] interface stays synchronous, and cache writes happen on the caller's thread as answers arrive.

pub mod client;
pub mod parse;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_core::{ChatTemplate, ModelSpec, PromptFormat, PromptSpec, ScoreRequest, ServedScoring};
use serde_json::{json, Value};

pub use client::{CallError, Client, Limits};

use crate::{Error, ItemScores, ModelInfo, Result, ScoreStats, Scorer};

/// The reason given for items whose answers did not all come before Ctrl-C; they are not failures and a rerun
/// scores them.
pub const INTERRUPTED: &str = "interrupted before every answer came";

/// Default alternatives per answer token in `first-token` scoring.
pub const DEFAULT_TOP_LOGPROBS: u32 = 20;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Prices {
    /// Per million input (prompt) tokens.
    pub input: f64,
    /// Per million output (generated) tokens.
    pub output: f64,
    /// Where the prices come from: `task file`, `price table` or `none (assumed free)`.
    pub source: &'static str,
}

impl Prices {
    /// The cost of `input` and `output` tokens.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1e6
    }
}

/// List prices of hosted models (USD per million input, output tokens), matched by exact name or by the name
/// with a date suffix (`gpt-4o-mini-2024-07-18`). Published by OpenAI as of 2025-06; a task's `price-input` and
/// `price-output` override them.
pub const PRICE_TABLE: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-3.5-turbo-instruct", 1.50, 2.00),
    ("gpt-3.5-turbo", 0.50, 1.50),
];

/// The prices of `model`: the task's, else the table's, else zero.
pub fn prices_for(model: &str, input: Option<f64>, output: Option<f64>) -> Prices {
    let listed = PRICE_TABLE
        .iter()
        .filter(|(name, _, _)| {
            model == *name
                || model.strip_prefix(name).is_some_and(|rest| {
                    rest.starts_with('-') && rest[1..].starts_with(|c: char| c.is_ascii_digit())
                })
        })
        .max_by_key(|(name, _, _)| name.len());
    match (input, output, listed) {
        (None, None, Some(&(_, i, o))) => Prices {
            input: i,
            output: o,
            source: "price table",
        },
        (None, None, None) => Prices {
            input: 0.0,
            output: 0.0,
            source: "none (assumed free)",
        },
        (i, o, listed) => Prices {
            input: i.or(listed.map(|l| l.1)).unwrap_or(0.0),
            output: o.or(listed.map(|l| l.2)).unwrap_or(0.0),
            source: "task file",
        },
    }
}

/// Everything needed to talk to a served model.
#[derive(Debug, Clone)]
pub struct ServedConfig {
    /// Base URL, up to and including `/v1`.
    pub endpoint: String,
    /// The model name the server knows.
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Requested scoring (`Auto`: probe).
    pub scoring: ServedScoring,
    /// The task's prompt layout.
    pub format: PromptFormat,
    /// The text layout for `/v1/completions` when the format is chat.
    pub chat_template: Option<ChatTemplate>,
    /// Alternatives per answer token in `first-token` scoring.
    pub top_logprobs: u32,
    /// Concurrency, pacing, timeout, retries.
    pub limits: Limits,
    /// Prices.
    pub prices: Prices,
}

impl ServedConfig {
    /// From a task's `[model]` section; `api_key` read by the caller from the variable the task names.
    pub fn from_spec(spec: &ModelSpec, api_key: Option<String>) -> Result<Self> {
        let endpoint = spec
            .endpoint
            .clone()
            .ok_or_else(|| Error::Served("the task's model has no `endpoint`".into()))?;
        let defaults = Limits::default();
        let limits = Limits {
            concurrency: spec.concurrency.unwrap_or(defaults.concurrency),
            requests_per_minute: spec.requests_per_minute,
            tokens_per_minute: spec.tokens_per_minute,
            timeout: spec
                .timeout_seconds
                .map_or(defaults.timeout, Duration::from_secs_f64),
            max_retries: spec.max_retries.unwrap_or(defaults.max_retries),
            ..defaults
        };
        Ok(Self {
            endpoint,
            model: spec.name.clone(),
            api_key,
            scoring: spec.scoring.unwrap_or_default(),
            format: spec.prompt_format,
            chat_template: spec.chat_template,
            top_logprobs: spec.top_logprobs.unwrap_or(DEFAULT_TOP_LOGPROBS),
            limits,
            prices: prices_for(&spec.name, spec.price_input, spec.price_output),
        })
    }

    /// How assay lays the prompt out as text for `/v1/completions`, if it knows: the completion layout, or the
    /// chat template the task names.
    pub fn text_template(&self) -> Option<ChatTemplate> {
        match self.format {
            PromptFormat::Completion => Some(ChatTemplate::Completion),
            PromptFormat::Chat => self.chat_template,
        }
    }
}

/// One HTTP request of a scoring plan.
#[derive(Debug, Clone)]
pub struct Call {
    /// Endpoint path under the base URL: `completions` or `chat/completions`.
    pub path: &'static str,
    /// The JSON body.
    pub body: Value,
    /// Cache key: hex SHA-256 of the base URL, the path and the body (model, prompt, parameters).
    pub key: String,
    /// Estimated tokens (prompt characters / 4, plus the answer's), for pacing and `--plan`.
    pub estimated_input: u64,
    /// Most tokens the answer may have.
    pub max_output: u64,
}

impl Call {
    fn new(
        base: &str,
        path: &'static str,
        body: Value,
        prompt_chars: usize,
        max_output: u64,
    ) -> Self {
        let key = assay_core::sha256_hex(format!("{base}\n{path}\n{body}").as_bytes());
        Self {
            path,
            body,
            key,
            estimated_input: (prompt_chars as u64).div_ceil(4),
            max_output,
        }
    }
}

/// How a call's answer becomes scores.
#[derive(Debug, Clone)]
enum Reader {
    /// The option's log-probability from an echoed prompt.
    Echo,
    /// All options of the branch from the first token's alternatives.
    FirstToken { space_before: bool },
    /// All options of the branch from the generated text.
    Generate,
}

/// A call and where its answer goes.
#[derive(Debug, Clone)]
struct Planned {
    branch: usize,
    /// The option scored (echo), or all of the branch's.
    option: Option<usize>,
    call: Call,
    reader: Reader,
}

/// An answer from the cache.
#[derive(Debug, Clone)]
pub struct CachedAnswer {
    /// The answer's JSON.
    pub answer: Value,
    /// Input tokens it cost.
    pub input_tokens: u64,
    /// Output tokens it cost.
    pub output_tokens: u64,
}

/// An answer to store.
#[derive(Debug, Clone)]
pub struct NewAnswer {
    /// [`Call::key`].
    pub key: String,
    /// The model name.
    pub model: String,
    /// Endpoint path.
    pub path: String,
    /// The answer (trimmed, see [`parse::trimmed_for_cache`]).
    pub answer: Value,
    /// Input tokens (the server's `usage`, else estimated).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// Where answers are kept between runs. Implemented over the store by the CLI; [`MemoryCache`] for tests.
pub trait ResponseCache {
    /// The stored answers among `keys`.
    fn get(
        &mut self,
        keys: &[String],
    ) -> std::result::Result<HashMap<String, CachedAnswer>, String>;
    /// Store answers durably (before anything is derived from them).
    fn put(&mut self, answers: &[NewAnswer]) -> std::result::Result<(), String>;
}

impl<C: ResponseCache + ?Sized> ResponseCache for &mut C {
    fn get(
        &mut self,
        keys: &[String],
    ) -> std::result::Result<HashMap<String, CachedAnswer>, String> {
        (**self).get(keys)
    }

    fn put(&mut self, answers: &[NewAnswer]) -> std::result::Result<(), String> {
        (**self).put(answers)
    }
}

/// A cache in memory.
#[derive(Debug, Default)]
pub struct MemoryCache {
    /// Stored answers by key.
    pub answers: HashMap<String, CachedAnswer>,
}

impl ResponseCache for MemoryCache {
    fn get(
        &mut self,
        keys: &[String],
    ) -> std::result::Result<HashMap<String, CachedAnswer>, String> {
        Ok(keys
            .iter()
            .filter_map(|k| self.answers.get(k).map(|a| (k.clone(), a.clone())))
            .collect())
    }

    fn put(&mut self, answers: &[NewAnswer]) -> std::result::Result<(), String> {
        for a in answers {
            self.answers.insert(
                a.key.clone(),
                CachedAnswer {
                    answer: a.answer.clone(),
                    input_tokens: a.input_tokens,
                    output_tokens: a.output_tokens,
                },
            );
        }
        Ok(())
    }
}

/// What one item's answers cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemUsage {
    /// Requests the item needs.
    pub requests: u64,
    /// Of which answered from the cache.
    pub cached: u64,
    /// Input tokens of all its answers (cached ones included).
    pub input_tokens: u64,
    /// Output tokens of all its answers.
    pub output_tokens: u64,
    /// USD of all its answers, at the run's prices.
    pub cost_usd: f64,
}

/// What a served scorer did in this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ServedStats {
    /// Answers received from the server (paid for).
    pub requests: u64,
    /// Answers taken from the cache instead.
    pub cache_hits: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Input tokens paid for.
    pub input_tokens: u64,
    /// Output tokens paid for.
    pub output_tokens: u64,
    /// USD paid.
    pub cost_usd: f64,
}

impl ServedStats {
    /// What was done since the `before` snapshot.
    pub fn since(self, before: Self) -> Self {
        Self {
            requests: self.requests - before.requests,
            cache_hits: self.cache_hits - before.cache_hits,
            retries: self.retries - before.retries,
            input_tokens: self.input_tokens - before.input_tokens,
            output_tokens: self.output_tokens - before.output_tokens,
            cost_usd: self.cost_usd - before.cost_usd,
        }
    }
}

/// A connection to a served model, its scoring mode resolved.
pub struct ServedModel {
    config: ServedConfig,
    client: Client,
    runtime: tokio::runtime::Runtime,
    mode: ServedScoring,
    info: ModelInfo,
    identity: String,
}

impl ServedModel {
    /// Connect: build the client and, for `auto`, probe what the server supports (one or two short requests).
    pub fn connect(config: ServedConfig) -> Result<Self> {
        Self::build(config, true)
    }

    /// Without sending anything (for `--plan`): `auto` is taken to mean `prompt-logprobs` where assay can lay the
    /// prompt out as text, else `first-token`.
    pub fn offline(config: ServedConfig) -> Result<Self> {
        Self::build(config, false)
    }

    fn build(config: ServedConfig, probe_server: bool) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("assay-http")
            .enable_all()
            .build()
            .map_err(|e| Error::Served(format!("starting the HTTP runtime: {e}")))?;
        let client = Client::new(&config.endpoint, config.api_key.clone(), config.limits)?;
        if config.scoring == ServedScoring::PromptLogprobs && config.text_template().is_none() {
            return Err(Error::Served(
                "`scoring = \"prompt-logprobs\"` sends the prompt as text to /v1/completions; set `chat-template` (e.g. \"chatml\") or `prompt-format = \"completion\"`".into(),
            ));
        }
        let mode = match config.scoring {
            ServedScoring::Auto if probe_server => runtime.block_on(probe(&client, &config))?,
            ServedScoring::Auto if config.text_template().is_some() => {
                ServedScoring::PromptLogprobs
            }
            ServedScoring::Auto => ServedScoring::FirstToken,
            explicit => explicit,
        };
        // Which server answers is part of who the annotator is: another server with a model of the same name may
        // run other weights.
        let identity = assay_core::sha256_hex(
            format!(
                "served\n{}\n{}\n{}\n{:?}\n{:?}\n{}",
                client.base(),
                config.model,
                mode.as_str(),
                config.format,
                config.text_template(),
                if mode == ServedScoring::FirstToken {
                    config.top_logprobs
                } else {
                    0
                }
            )
            .as_bytes(),
        );
        let info = ModelInfo {
            name: config.model.clone(),
            path: PathBuf::from(&config.endpoint),
            // No model file: nothing to hash. What identifies the annotator is `identity`.
            sha256: String::new(),
            parameters: 0,
            has_chat_template: config.text_template().is_some()
                || config.format == PromptFormat::Chat,
        };
        Ok(Self {
            config,
            client,
            runtime,
            mode,
            info,
            identity,
        })
    }

    /// The scoring mode in use.
    pub fn mode(&self) -> ServedScoring {
        self.mode
    }

    /// The settings.
    pub fn config(&self) -> &ServedConfig {
        &self.config
    }

    /// What the model is. A served model has no file, so `sha256` is empty; see [`Self::identity`].
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// What identifies this annotator's labels, in place of a model file's SHA-256: the hex SHA-256 of the
    /// server's base URL, the model name, the scoring mode and the layout.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One line saying how answers are read, for the start of a run.
    pub fn describe_mode(&self) -> String {
        let endpoint = |chat: &str| {
            if self.config.text_template().is_some() {
                "/v1/completions, prompt laid out by assay".to_string()
            } else {
                format!("{chat}, the server's chat template")
            }
        };
        match self.mode {
            ServedScoring::PromptLogprobs => format!(
                "prompt-logprobs (/v1/completions, echo + logprobs: every option's full token sequence is scored, one request per option; {:?} layout)",
                self.config.text_template().expect("checked at connect")
            ),
            ServedScoring::FirstToken => format!(
                "first-token ({}; logprobs + top_logprobs = {} of the first answer token, one request per item; exact only where the options' first tokens differ)",
                endpoint("/v1/chat/completions"),
                self.config.top_logprobs
            ),
            ServedScoring::Generate => format!(
                "generate ({}): THE SERVER RETURNS NO LOG-PROBABILITIES; labels are the generated answers and their confidence is unavailable",
                endpoint("/v1/chat/completions")
            ),
            ServedScoring::Auto => "auto".into(),
        }
    }

    /// The HTTP calls that score `request`, or why it cannot be scored.
    fn plan(&self, request: &ScoreRequest) -> std::result::Result<Vec<Planned>, String> {
        let model = &self.config.model;
        let base = self.client.base();
        let template = self.config.text_template();
        let mut calls = Vec::new();
        for (b, branch) in request.branches.iter().enumerate() {
            match (self.mode, template) {
                (ServedScoring::PromptLogprobs, Some(t)) => {
                    let text = parse::render(&branch.prompt, t);
                    let prompt_chars = text.chars().count();
                    for (o, option) in branch.options.iter().enumerate() {
                        let full = format!("{text}{}{option}", parse::separator(t));
                        let option_chars = full.chars().count() - prompt_chars;
                        let body = json!({"model": model, "prompt": full, "max_tokens": 1,
                            "temperature": 0.0, "echo": true, "logprobs": 0});
                        calls.push(Planned {
                            branch: b,
                            option: Some(o),
                            call: Call::new(
                                base,
                                "completions",
                                body,
                                prompt_chars + option_chars,
                                1,
                            ),
                            reader: Reader::Echo,
                        });
                    }
                }
                (ServedScoring::PromptLogprobs, None) => {
                    return Err("prompt-logprobs scoring needs a text layout".into())
                }
                (ServedScoring::FirstToken, _) => {
                    let k = self.config.top_logprobs;
                    let (path, body, chars) = match template {
                        Some(t) => {
                            let text = parse::render(&branch.prompt, t);
                            let chars = text.chars().count();
                            // `min_tokens`: llama-cpp-python lists alternatives only for tokens it generates, and
                            // none at all when the first one is end-of-text; options never are, so ruling it out
                            // changes no option's share.
                            (
                                "completions",
                                json!({"model": model, "prompt": text, "max_tokens": 1, "min_tokens": 1,
                                    "temperature": 0.0, "logprobs": k}),
                                chars,
                            )
                        }
                        None => (
                            "chat/completions",
                            json!({"model": model, "messages": messages(&branch.prompt), "max_tokens": 1,
                                "temperature": 0.0, "logprobs": true, "top_logprobs": k}),
                            prompt_chars(&branch.prompt),
                        ),
                    };
                    calls.push(Planned {
                        branch: b,
                        option: None,
                        call: Call::new(base, path, body, chars, 1),
                        reader: Reader::FirstToken {
                            space_before: template == Some(ChatTemplate::Completion),
                        },
                    });
                }
                (ServedScoring::Generate | ServedScoring::Auto, _) => {
                    let longest = branch.options.iter().map(|o| o.len()).max().unwrap_or(1);
                    let max_tokens = (longest as u64 / 2 + 4).clamp(4, 64);
                    let (path, body, chars) = match template {
                        Some(t) => {
                            let text = parse::render(&branch.prompt, t);
                            let chars = text.chars().count();
                            (
                                "completions",
                                json!({"model": model, "prompt": text, "max_tokens": max_tokens,
                                    "temperature": 0.0, "stop": ["\n"]}),
                                chars,
                            )
                        }
                        None => (
                            "chat/completions",
                            json!({"model": model, "messages": messages(&branch.prompt),
                                "max_tokens": max_tokens, "temperature": 0.0}),
                            prompt_chars(&branch.prompt),
                        ),
                    };
                    calls.push(Planned {
                        branch: b,
                        option: None,
                        call: Call::new(base, path, body, chars, max_tokens),
                        reader: Reader::Generate,
                    });
                }
            }
        }
        Ok(calls)
    }

    /// The calls that would score `requests` (for `assay label --plan`); items that cannot be planned are left out.
    pub fn calls(&self, requests: &[ScoreRequest]) -> Vec<Call> {
        requests
            .iter()
            .filter_map(|r| self.plan(r).ok())
            .flatten()
            .map(|p| p.call)
            .collect()
    }

    /// A scorer that keeps answers in `cache` and stops sending when `interrupted` is set.
    pub fn scorer<'a>(
        &'a self,
        cache: Box<dyn ResponseCache + 'a>,
        interrupted: Arc<AtomicBool>,
    ) -> HttpScorer<'a> {
        HttpScorer {
            model: self,
            cache,
            interrupted,
            stats: ScoreStats::default(),
            served: ServedStats::default(),
            last_usage: Vec::new(),
        }
    }
}

fn messages(prompt: &PromptSpec) -> Value {
    Value::Array(
        prompt
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect(),
    )
}

fn prompt_chars(prompt: &PromptSpec) -> usize {
    prompt
        .messages
        .iter()
        .map(|m| m.content.chars().count() + 8)
        .sum()
}

/// Find the best scoring mode the server supports.
async fn probe(client: &Client, config: &ServedConfig) -> Result<ServedScoring> {
    let no_cancel: [Arc<AtomicBool>; 0] = [];
    let model = &config.model;
    let fatal = |e: CallError| match e {
        CallError::Exhausted(message) => Some(Error::Endpoint {
            url: client.base().to_string(),
            message,
        }),
        _ => None,
    };
    if let Some(t) = config.text_template() {
        let body = json!({"model": model, "prompt": parse::render(&PromptSpec { messages: vec![
            assay_core::ChatMessage { role: assay_core::Role::User, content: "Say yes.".into() }] }, t) + "yes",
            "max_tokens": 1, "temperature": 0.0, "echo": true, "logprobs": 0});
        match client.post("completions", &body, 16, &no_cancel).await {
            Ok(answer) => {
                let echoed = answer
                    .pointer("/choices/0/logprobs/token_logprobs")
                    .and_then(Value::as_array)
                    .is_some_and(|l| l.len() >= 3 && l.iter().filter(|x| x.is_f64()).count() >= 2);
                if echoed {
                    return Ok(ServedScoring::PromptLogprobs);
                }
                tracing::info!("the server does not echo prompt log-probabilities");
            }
            Err(e) => {
                if let Some(e) = fatal(e.clone()) {
                    return Err(e);
                }
                tracing::info!(?e, "echo + logprobs refused");
            }
        }
    }
    let k = config.top_logprobs;
    let probe_prompt = PromptSpec {
        messages: vec![assay_core::ChatMessage {
            role: assay_core::Role::User,
            content: "Say yes.".into(),
        }],
    };
    let (path, body) = match config.text_template() {
        Some(t) => (
            "completions",
            json!({"model": model, "prompt": parse::render(&probe_prompt, t), "max_tokens": 1,
                "temperature": 0.0, "logprobs": k}),
        ),
        None => (
            "chat/completions",
            json!({"model": model, "messages": messages(&probe_prompt), "max_tokens": 1,
                "temperature": 0.0, "logprobs": true, "top_logprobs": k}),
        ),
    };
    match client.post(path, &body, 16, &no_cancel).await {
        Ok(answer) if parse::first_token_alternatives(&answer).is_ok_and(|a| !a.is_empty()) => {
            Ok(ServedScoring::FirstToken)
        }
        Ok(_) => Ok(ServedScoring::Generate),
        Err(e) => match fatal(e.clone()) {
            Some(e) => Err(e),
            None => {
                tracing::info!(?e, "logprobs refused");
                Ok(ServedScoring::Generate)
            }
        },
    }
}

/// Scores items through a served model, one HTTP request per option (`prompt-logprobs`) or per branch.
pub struct HttpScorer<'a> {
    model: &'a ServedModel,
    cache: Box<dyn ResponseCache + 'a>,
    interrupted: Arc<AtomicBool>,
    stats: ScoreStats,
    served: ServedStats,
    last_usage: Vec<ItemUsage>,
}

impl HttpScorer<'_> {
    /// The scoring mode.
    pub fn mode(&self) -> ServedScoring {
        self.model.mode
    }

    fn read(
        &self,
        request: &ScoreRequest,
        planned: &[Planned],
        answers: &HashMap<String, Value>,
    ) -> std::result::Result<Vec<Vec<f64>>, String> {
        let mut scores: Vec<Vec<f64>> = request
            .branches
            .iter()
            .map(|b| vec![f64::NAN; b.options.len()])
            .collect();
        for p in planned {
            let answer = &answers[&p.call.key];
            let options = &request.branches[p.branch].options;
            match (&p.reader, p.option) {
                (Reader::Echo, Some(o)) => {
                    scores[p.branch][o] = parse::echoed_option_logprob(answer, &options[o])?;
                }
                (Reader::FirstToken { space_before }, _) => {
                    let evidence = parse::first_token_evidence(answer)?;
                    scores[p.branch] = parse::first_token_scores(&evidence, options, *space_before);
                }
                (Reader::Generate, _) => {
                    let text = parse::generated_text(answer)?;
                    let chosen = parse::match_generated(&text, options).ok_or_else(|| {
                        format!(
                            "the model answered {:?}, which is none of the labels",
                            text.chars().take(80).collect::<String>()
                        )
                    })?;
                    scores[p.branch] = (0..options.len())
                        .map(|i| {
                            if i == chosen {
                                0.0
                            } else {
                                parse::NOT_GENERATED
                            }
                        })
                        .collect();
                }
                (Reader::Echo, None) => return Err("internal: echo call without an option".into()),
            }
        }
        Ok(scores)
    }
}

impl Scorer for HttpScorer<'_> {
    fn info(&self) -> &ModelInfo {
        &self.model.info
    }

    /// Per item of the last call: requests, cache hits, tokens and cost.
    fn usage(&self) -> Option<&[ItemUsage]> {
        Some(&self.last_usage)
    }

    fn served_stats(&self) -> Option<ServedStats> {
        Some(self.served)
    }

    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ItemScores>> {
        let started = Instant::now();
        let plans: Vec<std::result::Result<Vec<Planned>, String>> =
            requests.iter().map(|r| self.model.plan(r)).collect();
        let mut keys: Vec<String> = plans
            .iter()
            .flatten()
            .flatten()
            .map(|p| p.call.key.clone())
            .collect();
        keys.sort();
        keys.dedup();
        let mut cached: HashMap<String, CachedAnswer> = HashMap::new();
        for chunk in keys.chunks(500) {
            cached.extend(self.cache.get(chunk).map_err(Error::Cache)?);
        }
        // Answers that cost something in this call: key -> (input, output tokens).
        let mut paid: HashMap<String, (u64, u64)> = HashMap::new();
        let mut answers: HashMap<String, Value> = cached
            .iter()
            .map(|(k, a)| (k.clone(), a.answer.clone()))
            .collect();
        let mut rejected: HashMap<String, String> = HashMap::new();
        let mut fatal: Option<String> = None;

        // Send what the cache lacks, each distinct request once, in plan order (the semaphore is fair, so items are
        // answered roughly in order and a server's prefix cache sees one item's options together).
        let abort = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<(Call, std::result::Result<Value, CallError>)>();
        let mut sent = std::collections::HashSet::new();
        let mut compaction: HashMap<String, (bool, Vec<String>)> = HashMap::new();
        for (request, plan) in requests.iter().zip(&plans) {
            for p in plan.iter().flatten() {
                if let Reader::FirstToken { space_before } = p.reader {
                    compaction.insert(
                        p.call.key.clone(),
                        (space_before, request.branches[p.branch].options.clone()),
                    );
                }
            }
        }
        for p in plans.iter().flatten().flatten() {
            if answers.contains_key(&p.call.key) || !sent.insert(p.call.key.clone()) {
                continue;
            }
            let client = self.model.client.clone();
            let call = p.call.clone();
            let tx = tx.clone();
            let cancel = [self.interrupted.clone(), abort.clone()];
            self.model.runtime.spawn(async move {
                let tokens = call.estimated_input + call.max_output;
                let result = client.post(call.path, &call.body, tokens, &cancel).await;
                let _ = tx.send((call, result));
            });
        }
        drop(tx);
        let mut waiting = sent.len();
        while waiting > 0 {
            let Ok(first) = rx.recv() else { break };
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            waiting -= batch.len();
            let mut to_store = Vec::new();
            for (call, result) in batch {
                match result {
                    Ok(answer) => {
                        let (input, output) = parse::usage(&answer)
                            .unwrap_or((call.estimated_input, call.max_output));
                        let answer = match compaction.get(&call.key) {
                            Some((space_before, options)) => {
                                parse::compact_first_token(answer, options, *space_before)
                            }
                            None => parse::trimmed_for_cache(answer),
                        };
                        to_store.push(NewAnswer {
                            key: call.key.clone(),
                            model: self.model.config.model.clone(),
                            path: call.path.to_string(),
                            answer: answer.clone(),
                            input_tokens: input,
                            output_tokens: output,
                        });
                        paid.insert(call.key.clone(), (input, output));
                        answers.insert(call.key, answer);
                    }
                    Err(CallError::Rejected(message)) => {
                        rejected.insert(call.key, message);
                    }
                    Err(CallError::Exhausted(message)) => {
                        abort.store(true, Ordering::SeqCst);
                        fatal.get_or_insert(message);
                    }
                    Err(CallError::Cancelled) => {}
                }
            }
            if !to_store.is_empty() {
                if let Err(e) = self.cache.put(&to_store) {
                    abort.store(true, Ordering::SeqCst);
                    fatal.get_or_insert(format!("storing answers: {e}"));
                }
            }
        }
        self.served.requests += paid.len() as u64;
        self.served.cache_hits += plans
            .iter()
            .flatten()
            .flatten()
            .filter(|p| cached.contains_key(&p.call.key))
            .count() as u64;
        self.served.retries = self.model.client.counters.retries.load(Ordering::Relaxed);
        for (input, output) in paid.values() {
            self.served.input_tokens += input;
            self.served.output_tokens += output;
            self.served.cost_usd += self.model.config.prices.cost(*input, *output);
        }
        self.stats.tokens_evaluated = self.served.input_tokens;
        self.stats.decode_seconds += started.elapsed().as_secs_f64();
        if let Some(message) = fatal {
            return Err(Error::Endpoint {
                url: self.model.config.endpoint.clone(),
                message,
            });
        }

        let prices = self.model.config.prices;
        self.last_usage = Vec::with_capacity(requests.len());
        let mut results = Vec::with_capacity(requests.len());
        for (request, plan) in requests.iter().zip(&plans) {
            let mut usage = ItemUsage::default();
            let result = match plan {
                Err(reason) => Err(reason.clone()),
                Ok(planned) => {
                    for p in planned {
                        usage.requests += 1;
                        let tokens = match cached.get(&p.call.key) {
                            Some(c) => {
                                usage.cached += 1;
                                Some((c.input_tokens, c.output_tokens))
                            }
                            None => paid.get(&p.call.key).copied(),
                        };
                        if let Some((i, o)) = tokens {
                            usage.input_tokens += i;
                            usage.output_tokens += o;
                        }
                    }
                    usage.cost_usd = prices.cost(usage.input_tokens, usage.output_tokens);
                    if let Some(reason) = planned.iter().find_map(|p| rejected.get(&p.call.key)) {
                        Err(format!("the server refused a request: {reason}"))
                    } else if planned.iter().any(|p| !answers.contains_key(&p.call.key)) {
                        Err(INTERRUPTED.to_string())
                    } else {
                        self.read(request, planned, &answers)
                    }
                }
            };
            if result.is_ok() {
                self.stats.items += 1;
            }
            self.last_usage.push(usage);
            results.push(result);
        }
        Ok(results)
    }

    fn stats(&self) -> ScoreStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline(endpoint: &str, scoring: ServedScoring) -> ServedModel {
        let spec = ModelSpec {
            name: "smollm2".into(),
            endpoint: Some(endpoint.into()),
            scoring: Some(scoring),
            chat_template: Some(ChatTemplate::Chatml),
            ..ModelSpec::default()
        };
        ServedModel::offline(ServedConfig::from_spec(&spec, None).unwrap()).unwrap()
    }

    /// Issue 11 §1.5: an answer stored from one server is never taken for another server's, even with a model of
    /// the same name; the same server written with a trailing slash shares them.
    #[test]
    fn issue_11_cache_keys_and_identity_name_the_server() {
        let task = assay_core::TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"classify\"\ninput = \"{{ text }}\"\nlabels = [\"ham\", \"spam\"]\n",
        )
        .unwrap();
        let request = assay_core::PromptBuilder::new(&task).unwrap().request("hi");
        for scoring in [
            ServedScoring::PromptLogprobs,
            ServedScoring::FirstToken,
            ServedScoring::Generate,
        ] {
            let keys = |endpoint: &str| -> Vec<String> {
                let model = offline(endpoint, scoring);
                model
                    .calls(std::slice::from_ref(&request))
                    .into_iter()
                    .map(|c| c.key)
                    .collect()
            };
            let here = keys("http://127.0.0.1:8080/v1");
            let there = keys("http://10.1.2.3:8080/v1");
            assert!(!here.is_empty());
            assert!(here.iter().all(|k| !there.contains(k)), "{scoring:?}");
            assert_eq!(here, keys("http://127.0.0.1:8080/v1/"), "{scoring:?}");
        }
        let (a, b) = (
            offline("http://127.0.0.1:8080/v1", ServedScoring::FirstToken),
            offline("http://10.1.2.3:8080/v1", ServedScoring::FirstToken),
        );
        assert_ne!(a.identity(), b.identity());
        assert_eq!(a.info().sha256, "", "a served model has no file to hash");
    }

    #[test]
    fn prices_come_from_the_task_then_the_table_then_zero() {
        let p = prices_for("gpt-4o-mini-2024-07-18", None, None);
        assert_eq!((p.input, p.output, p.source), (0.15, 0.60, "price table"));
        assert_eq!(prices_for("gpt-4o", None, None).input, 2.50);
        assert_eq!(
            prices_for("gpt-4o-minimal", None, None).source,
            "none (assumed free)"
        );
        let p = prices_for("gpt-4o", Some(1.0), None);
        assert_eq!((p.input, p.output, p.source), (1.0, 10.0, "task file"));
        assert_eq!(prices_for("smollm2", None, None).cost(1_000_000, 5), 0.0);
        assert!(
            (Prices {
                input: 0.15,
                output: 0.6,
                source: ""
            }
            .cost(2_000_000, 500_000)
                - 0.6)
                .abs()
                < 1e-12
        );
    }
}
