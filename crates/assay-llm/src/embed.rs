//! Text embeddings: one L2-normalised vector per text, from a GGUF model run in-process by llama.cpp
//! ([`EmbeddedEmbedder`]) or from an OpenAI-compatible `/v1/embeddings` endpoint ([`ServedEmbedder`]).
//!
//! They feed the cheap labelers people's answers train (`assay-learn`'s logistic-regression probe). What
//! identifies a set of vectors — so a store can tell whether they are still valid — is [`EmbedderInfo::key`]:
//! the model file's SHA-256 (or, for a served model, a hash of endpoint and model name), the pooling and the
//! truncation length.
//!
//! ```no_run
//! use assay_llm::embed::{EmbedOptions, EmbeddedEmbedder, Embedder};
//! use assay_llm::embedded::EmbeddedModel;
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let model = EmbeddedModel::load("all-MiniLM-L6-v2.gguf".as_ref(), "all-minilm-l6-v2", "sha")?;
//! let mut embedder = EmbeddedEmbedder::new(&model, EmbedOptions::default())?;
//! let vectors = embedder.embed(&["I loved it".to_string(), "Never again".to_string()])?;
//! assert_eq!(vectors[0].len(), embedder.info().dimension);
//! # Ok(()) }
//! ```

use std::num::NonZeroU32;
use std::path::PathBuf;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::embedded::{backend, EmbeddedModel};
use crate::openai::{CallError, Client, Limits};
use crate::{Error, Result};

/// How a text's token vectors become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Pooling {
    /// The mean over the text's tokens (special tokens included).
    Mean,
    /// The last token's vector (for decoder models, the only token that has seen the whole text).
    Last,
    /// The first token's (BERT's `[CLS]`).
    Cls,
    /// Whatever the server does: a served model's pooling is not visible to the client.
    Served,
}

impl Pooling {
    /// The name used in settings and provenance.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Last => "last",
            Pooling::Cls => "cls",
            Pooling::Served => "served",
        }
    }

    fn llama(self) -> LlamaPoolingType {
        match self {
            Pooling::Mean => LlamaPoolingType::Mean,
            Pooling::Last => LlamaPoolingType::Last,
            Pooling::Cls => LlamaPoolingType::Cls,
            Pooling::Served => LlamaPoolingType::Unspecified,
        }
    }

    /// From llama.cpp's `{arch}.pooling_type` metadata value.
    fn from_gguf(value: &str) -> Option<Self> {
        match value.trim() {
            "1" => Some(Pooling::Mean),
            "2" => Some(Pooling::Cls),
            "3" => Some(Pooling::Last),
            _ => None,
        }
    }
}

/// Where the vectors come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EmbedderSource {
    /// A GGUF file run in-process.
    File {
        /// The file.
        path: PathBuf,
        /// Hex SHA-256 of the file.
        sha256: String,
    },
    /// An OpenAI-compatible server.
    Served {
        /// Base URL (up to `/v1`).
        endpoint: String,
        /// Model name sent with each request.
        model: String,
        /// Hex SHA-256 of `"served-embeddings\n{endpoint}\n{model}"`. The server's weights are not visible: this
        /// identifies what was asked for, not what answered.
        identity_sha256: String,
    },
}

/// What an embedder is, for provenance and for keying stored vectors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbedderInfo {
    /// Name (catalog name, file stem or served model name).
    pub name: String,
    /// File or endpoint, with its hash.
    pub source: EmbedderSource,
    /// Length of every vector.
    pub dimension: usize,
    /// How token vectors are pooled.
    pub pooling: Pooling,
    /// Texts longer than this many tokens are cut to it (embedded models; `None` for served ones, where the
    /// server decides).
    pub max_tokens: Option<usize>,
}

impl EmbedderInfo {
    /// The hash of the file, or of the served endpoint and model.
    pub fn source_sha256(&self) -> &str {
        match &self.source {
            EmbedderSource::File { sha256, .. } => sha256,
            EmbedderSource::Served {
                identity_sha256, ..
            } => identity_sha256,
        }
    }

    /// Hex SHA-256 of everything that changes the vectors (source hash, pooling, truncation, dimension): two
    /// embedders with the same key give the same vectors (up to floating-point noise of thread counts).
    pub fn key(&self) -> String {
        assay_core::sha256_hex(
            format!(
                "embedder\n{}\n{}\n{:?}\n{}",
                self.source_sha256(),
                self.pooling.as_str(),
                self.max_tokens,
                self.dimension
            )
            .as_bytes(),
        )
    }
}

/// Turns texts into vectors.
pub trait Embedder {
    /// The model behind it.
    fn info(&self) -> &EmbedderInfo;
    /// One L2-normalised vector of [`EmbedderInfo::dimension`] per text, in order. Long texts are truncated (see
    /// [`EmbedderInfo::max_tokens`]); an error is a failure of the model or the endpoint.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// Settings of an [`EmbeddedEmbedder`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbedOptions {
    /// CPU threads.
    pub threads: usize,
    /// Tokens per llama.cpp batch: several texts share one decode, each as its own sequence.
    pub batch_tokens: usize,
    /// Texts per batch at most.
    pub max_texts_per_batch: usize,
    /// Tokens kept of a text (special tokens included); `None`: the model's training context, at most
    /// `batch_tokens`. Longer texts are cut at the end (their closing special token, BERT's `[SEP]`, kept).
    pub max_tokens: Option<usize>,
    /// Pooling; `None`: the model's own (`{arch}.pooling_type` in the GGUF), else mean.
    pub pooling: Option<Pooling>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            threads: crate::embedded::default_threads(),
            batch_tokens: 512,
            max_texts_per_batch: 64,
            max_tokens: None,
            pooling: None,
        }
    }
}

/// Embeds texts with a GGUF model in-process: an encoder (BERT) or a decoder (its mean- or last-token-pooled
/// final hidden states).
pub struct EmbeddedEmbedder<'m> {
    model: &'m EmbeddedModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    options: EmbedOptions,
    max_tokens: usize,
    info: EmbedderInfo,
}

impl<'m> EmbeddedEmbedder<'m> {
    /// A context with embeddings on for `model`.
    pub fn new(model: &'m EmbeddedModel, options: EmbedOptions) -> Result<Self> {
        let llama = model.llama();
        let batch_tokens = options.batch_tokens.max(16);
        let n_ctx_train = llama.n_ctx_train() as usize;
        let max_tokens = options
            .max_tokens
            .unwrap_or(n_ctx_train)
            .min(n_ctx_train)
            .min(batch_tokens)
            .max(2);
        let pooling = options
            .pooling
            .or_else(|| {
                let arch = llama.meta_val_str("general.architecture").ok()?;
                Pooling::from_gguf(&llama.meta_val_str(&format!("{arch}.pooling_type")).ok()?)
            })
            .unwrap_or(Pooling::Mean);
        if pooling == Pooling::Served {
            return Err(Error::Prompt(
                "pooling `served` is for served models; an embedded model pools mean, last or cls"
                    .into(),
            ));
        }
        let texts = options.max_texts_per_batch.clamp(1, 256);
        // One ubatch per batch: llama.cpp pools within a ubatch, and a non-causal model attends across all of
        // it, so a text must never be split.
        let params = LlamaContextParams::default()
            .with_embeddings(true)
            .with_pooling_type(pooling.llama())
            .with_n_ctx(NonZeroU32::new((batch_tokens as u32).next_multiple_of(256)))
            .with_n_batch(batch_tokens as u32)
            .with_n_ubatch(batch_tokens as u32)
            .with_n_seq_max(texts as u32)
            .with_kv_unified(true)
            .with_flash_attention_policy(0)
            .with_n_threads(options.threads as i32)
            .with_n_threads_batch(options.threads as i32);
        let ctx = llama
            .new_context(backend()?, params)
            .map_err(|e| Error::Backend(format!("creating an embedding context: {e}")))?;
        let model_info = model.info();
        let info = EmbedderInfo {
            name: model_info.name.clone(),
            source: EmbedderSource::File {
                path: model_info.path.clone(),
                sha256: model_info.sha256.clone(),
            },
            dimension: llama.n_embd_out().max(0) as usize,
            pooling,
            max_tokens: Some(max_tokens),
        };
        Ok(Self {
            model,
            ctx,
            batch: LlamaBatch::new(batch_tokens, texts as i32),
            options: EmbedOptions {
                batch_tokens,
                max_texts_per_batch: texts,
                ..options
            },
            max_tokens,
            info,
        })
    }

    /// The tokens of `text` as embedded: with the model's special tokens, cut to `max_tokens` (keeping a closing
    /// special token), never empty.
    pub fn tokens(&self, text: &str) -> Vec<LlamaToken> {
        let vocab = self.model.llama().vocab();
        let mut tokens = vocab.tokenize(text.as_bytes(), true, false);
        if tokens.len() > self.max_tokens {
            let closing = (vocab.should_add_sep() || vocab.should_add_eos())
                .then(|| tokens.last().copied())
                .flatten();
            match closing {
                Some(last) => {
                    tokens.truncate(self.max_tokens - 1);
                    tokens.push(last);
                }
                None => tokens.truncate(self.max_tokens),
            }
        }
        if tokens.is_empty() {
            tokens.push(vocab.bos());
        }
        tokens
    }

    fn decode_group(&mut self, group: &[Vec<LlamaToken>], out: &mut Vec<Vec<f32>>) -> Result<()> {
        self.ctx.clear_kv_cache();
        self.batch.clear();
        for (seq, tokens) in group.iter().enumerate() {
            for (pos, &t) in tokens.iter().enumerate() {
                self.batch
                    .add(t, pos as i32, &[seq as i32], true)
                    .map_err(|e| Error::Backend(e.to_string()))?;
            }
        }
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| Error::Backend(format!("decoding texts to embed: {e}")))?;
        for seq in 0..group.len() {
            let v = self
                .ctx
                .embeddings_seq_ith(seq as i32)
                .map_err(|e| Error::Backend(format!("reading embedding {seq}: {e}")))?;
            out.push(normalize(v.to_vec()));
        }
        Ok(())
    }
}

impl Embedder for EmbeddedEmbedder<'_> {
    fn info(&self) -> &EmbedderInfo {
        &self.info
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        let mut group: Vec<Vec<LlamaToken>> = Vec::new();
        let mut group_tokens = 0;
        for text in texts {
            let tokens = self.tokens(text);
            if !group.is_empty()
                && (group_tokens + tokens.len() > self.options.batch_tokens
                    || group.len() == self.options.max_texts_per_batch)
            {
                self.decode_group(&group, &mut out)?;
                group.clear();
                group_tokens = 0;
            }
            group_tokens += tokens.len();
            group.push(tokens);
        }
        if !group.is_empty() {
            self.decode_group(&group, &mut out)?;
        }
        Ok(out)
    }
}

/// Settings of a [`ServedEmbedder`].
#[derive(Debug, Clone, PartialEq)]
pub struct ServedEmbedConfig {
    /// Base URL up to and including `/v1`.
    pub endpoint: String,
    /// Model name sent with each request.
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Concurrency, pacing, timeouts and retries.
    pub limits: Limits,
    /// Texts per request.
    pub texts_per_request: usize,
}

/// Embeds texts through an OpenAI-compatible `/v1/embeddings` endpoint, with the served backend's client (bounded
/// concurrency, pacing, retries with backoff).
pub struct ServedEmbedder {
    client: Client,
    runtime: tokio::runtime::Runtime,
    config: ServedEmbedConfig,
    info: EmbedderInfo,
}

impl ServedEmbedder {
    /// Connect and ask for one embedding, to learn the dimension.
    pub fn connect(config: ServedEmbedConfig) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("assay-embed-http")
            .enable_all()
            .build()
            .map_err(|e| Error::Served(format!("starting the HTTP runtime: {e}")))?;
        let client = Client::new(&config.endpoint, config.api_key.clone(), config.limits)?;
        let identity_sha256 = assay_core::sha256_hex(
            format!("served-embeddings\n{}\n{}", client.base(), config.model).as_bytes(),
        );
        let mut embedder = Self {
            info: EmbedderInfo {
                name: config.model.clone(),
                source: EmbedderSource::Served {
                    endpoint: client.base().to_string(),
                    model: config.model.clone(),
                    identity_sha256,
                },
                dimension: 0,
                pooling: Pooling::Served,
                max_tokens: None,
            },
            client,
            runtime,
            config,
        };
        let probe = embedder.request(&["dimension probe".to_string()])?;
        embedder.info.dimension = probe[0].len();
        Ok(embedder)
    }

    fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let per_request = self.config.texts_per_request.max(1);
        let chunks: Vec<Vec<String>> = texts.chunks(per_request).map(<[String]>::to_vec).collect();
        let model = self.config.model.clone();
        let client = self.client.clone();
        let answers = self.runtime.block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for (i, chunk) in chunks.into_iter().enumerate() {
                let client = client.clone();
                let model = model.clone();
                set.spawn(async move {
                    let chars: usize = chunk.iter().map(|t| t.chars().count()).sum();
                    let body = json!({"model": model, "input": chunk, "encoding_format": "float"});
                    let answer = client
                        .post("embeddings", &body, (chars / 4 + 1) as u64, &[])
                        .await;
                    (i, chunk.len(), answer)
                });
            }
            let mut answers = Vec::new();
            while let Some(joined) = set.join_next().await {
                answers.push(joined.expect("embedding request task"));
            }
            answers.sort_by_key(|a| a.0);
            answers
        });
        let url = format!("{}/embeddings", self.client.base());
        let mut out = Vec::with_capacity(texts.len());
        for (_, n, answer) in answers {
            let answer = answer.map_err(|e| Error::Endpoint {
                url: url.clone(),
                message: match e {
                    CallError::Rejected(m) | CallError::Exhausted(m) => m,
                    CallError::Cancelled => "cancelled".into(),
                },
            })?;
            let vectors = parse_embeddings(&answer, n).map_err(|message| Error::Endpoint {
                url: url.clone(),
                message,
            })?;
            out.extend(vectors.into_iter().map(normalize));
        }
        Ok(out)
    }
}

impl Embedder for ServedEmbedder {
    fn info(&self) -> &EmbedderInfo {
        &self.info
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let out = self.request(texts)?;
        if let Some(bad) = out.iter().find(|v| v.len() != self.info.dimension) {
            return Err(Error::Endpoint {
                url: self.client.base().to_string(),
                message: format!(
                    "an embedding of {} values; the first had {}",
                    bad.len(),
                    self.info.dimension
                ),
            });
        }
        Ok(out)
    }
}

/// `{"data": [{"index": i, "embedding": [...]}, ...]}`, `n` of them, in index order.
fn parse_embeddings(answer: &Value, n: usize) -> std::result::Result<Vec<Vec<f32>>, String> {
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the answer has no `data` list")?;
    if data.len() != n {
        return Err(format!("{} embeddings for {n} inputs", data.len()));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
    for (position, item) in data.iter().enumerate() {
        let index = item
            .get("index")
            .and_then(Value::as_u64)
            .map_or(position, |i| i as usize);
        let vector = item
            .get("embedding")
            .and_then(Value::as_array)
            .ok_or("an item has no `embedding` list (base64 encoding is not read)")?;
        // A server that does not pool returns one vector per token.
        if vector.first().is_some_and(Value::is_array) {
            return Err("the server returned one vector per token (it does not pool); start it with pooling on".into());
        }
        let vector: Vec<f32> = vector
            .iter()
            .map(|x| {
                x.as_f64()
                    .map(|x| x as f32)
                    .ok_or("a non-number in an embedding")
            })
            .collect::<std::result::Result<_, _>>()?;
        let slot = out
            .get_mut(index)
            .ok_or_else(|| format!("index {index} of {n}"))?;
        *slot = Some(vector);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| format!("no embedding for input {i}")))
        .collect()
}

/// `v / |v|`; a zero vector stays zero.
pub fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        v.iter_mut()
            .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
    v
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_normalised_and_zero_stays_zero() {
        let v = normalize(vec![3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        assert_eq!(normalize(vec![0.0, 0.0]), vec![0.0, 0.0]);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn served_answers_are_put_in_index_order() {
        let answer = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]}
        ]});
        assert_eq!(
            parse_embeddings(&answer, 2).unwrap(),
            vec![vec![1.0, 0.0], vec![0.0, 1.0]]
        );
        assert!(parse_embeddings(&answer, 3)
            .unwrap_err()
            .contains("2 embeddings for 3"));
        let per_token = json!({"data": [{"index": 0, "embedding": [[1.0], [2.0]]}]});
        assert!(parse_embeddings(&per_token, 1)
            .unwrap_err()
            .contains("per token"));
    }

    #[test]
    fn the_key_changes_with_pooling_and_truncation() {
        let info = EmbedderInfo {
            name: "m".into(),
            source: EmbedderSource::File {
                path: "m.gguf".into(),
                sha256: "abc".into(),
            },
            dimension: 4,
            pooling: Pooling::Mean,
            max_tokens: Some(512),
        };
        let last = EmbedderInfo {
            pooling: Pooling::Last,
            ..info.clone()
        };
        let short = EmbedderInfo {
            max_tokens: Some(128),
            ..info.clone()
        };
        assert_ne!(info.key(), last.key());
        assert_ne!(info.key(), short.key());
        assert_eq!(info.key(), info.clone().key());
    }
}
