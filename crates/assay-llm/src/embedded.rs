//! The embedded backend: a GGUF model run in-process by llama.cpp (through the `llama-cpp-2` crate).
//!
//! All unsafe code and FFI of assay stays behind this module (inside `llama-cpp-2`); nothing here is `unsafe`.
//!
//! Scoring keeps the task's shared prefix (instructions and examples) in the KV cache as sequence 0 for the whole
//! run, attached to every other sequence id, and evaluates each group of items as one token trie
//! ([`crate::trie`]): a batch entry per distinct token, tagged with the sequence ids of all options below it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use assay_core::prompt::ITEM_SENTINEL;
use assay_core::{PromptFormat, PromptSpec, ScoreRequest};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;

use crate::sampling::{Generated, Sampling, TokenSampler};
use crate::trie::{Leaf, Predictor, Trie};
use crate::{Error, ItemScores, ModelInfo, Result, ScoreStats, Scorer};

/// llama.cpp allows this many sequence ids; id 0 holds the shared prefix.
const MAX_SEQUENCES: usize = 256;

/// KV cells a scorer's context has after the prefix at first; it grows for a longer item, up to the model's
/// trained context ([`EmbeddedScorer::grow`]).
const FIRST_ROOM: usize = 2048;

static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();

pub(crate) fn backend() -> Result<&'static LlamaBackend> {
    BACKEND
        .get_or_init(|| {
            let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            // llama.cpp logs every tensor it loads; the CLI keeps its own, quieter, logs.
            if std::env::var_os("ASSAY_LLAMA_LOG").is_none() {
                backend.void_logs();
            }
            Ok(backend)
        })
        .as_ref()
        .map_err(|e| Error::Backend(format!("llama.cpp backend: {e}")))
}

/// Threads llama.cpp uses when a task does not say: the cores this process may use, less those other processes
/// keep busy (the 1-minute load average). llama.cpp's threads wait on each other, so a thread whose core is taken
/// slows every decode down; measured here, 2 threads on a 2-core machine with one core busy ran several times
/// slower than 1.
pub fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let busy = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| {
            l.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
        })
        .map_or(0, |load| load.round() as usize);
    free_cores(cores, busy)
}

/// Cores left when `busy` of `cores` are in use; never below one.
fn free_cores(cores: usize, busy: usize) -> usize {
    cores.saturating_sub(busy).max(1)
}

/// A GGUF model loaded into memory.
pub struct EmbeddedModel {
    model: LlamaModel,
    info: ModelInfo,
    template: Option<LlamaChatTemplate>,
}

impl EmbeddedModel {
    /// Load a GGUF file. `name` and `sha256` identify it in provenance.
    pub fn load(path: &Path, name: &str, sha256: &str) -> Result<Self> {
        if !path.exists() {
            return Err(Error::ModelMissing {
                path: path.to_path_buf(),
            });
        }
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| Error::ModelLoad {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let template = model.chat_template(None).ok();
        let info = ModelInfo {
            name: name.to_string(),
            path: PathBuf::from(path),
            sha256: sha256.to_string(),
            parameters: model.n_params(),
            has_chat_template: template.is_some(),
        };
        Ok(Self {
            model,
            info,
            template,
        })
    }

    /// What this model is.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The llama.cpp model, for the embedders in [`crate::embed`].
    pub(crate) fn llama(&self) -> &LlamaModel {
        &self.model
    }

    /// Render a conversation as the model expects it: its chat template with the assistant turn opened, or the
    /// plain completion layout (also the fallback for models without a template).
    pub fn render(&self, prompt: &PromptSpec, format: PromptFormat) -> Result<String> {
        match (format, &self.template) {
            (PromptFormat::Chat, Some(template)) => {
                let messages = prompt
                    .messages
                    .iter()
                    .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone()))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::Prompt(format!("chat message: {e}")))?;
                self.model
                    .apply_chat_template(template, &messages, true)
                    .map_err(|e| Error::Prompt(format!("applying the model's chat template: {e}")))
            }
            _ => Ok(prompt.render_completion()),
        }
    }

    /// The format actually used for `requested` (a model without a chat template falls back to completion).
    pub fn effective_format(&self, requested: PromptFormat) -> PromptFormat {
        if self.template.is_none() {
            PromptFormat::Completion
        } else {
            requested
        }
    }

    /// Token ids of `text`, with the model's BOS where it wants one; `special`: text such as `<|im_end|>` becomes
    /// the control token it names (only right for the layout's own markers, see [`Self::prompt_tokens`]).
    pub fn tokenize(&self, text: &str, special: bool) -> Vec<i32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), true, special)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// The tokens the scorer evaluates for `prompt` laid out in `format` (see [`Self::render`]): only the chat
    /// template's own markers are control tokens; the messages' text is tokenized as plain text.
    pub fn prompt_tokens(&self, prompt: &PromptSpec, format: PromptFormat) -> Result<Vec<i32>> {
        let format = self.effective_format(format);
        let rendered = self.render(prompt, format)?;
        let plain = self.plain_spans(&rendered, prompt, format)?;
        Ok(self.tokenize_layout(&rendered, &plain))
    }

    /// Where the messages' text lies in `rendered` (`prompt` laid out in `format`, possibly followed by more
    /// text): the byte ranges in which `<|im_end|>` and the like are plain text. The completion layout has no
    /// markers, so all of it is plain. Dataset rows, examples and guidelines all arrive as message text.
    pub(crate) fn plain_spans(
        &self,
        rendered: &str,
        prompt: &PromptSpec,
        format: PromptFormat,
    ) -> Result<Vec<Range<usize>>> {
        if format == PromptFormat::Completion {
            return Ok(std::iter::once(0..rendered.len()).collect());
        }
        let mut spans = Vec::new();
        let mut cursor = 0;
        for message in &prompt.messages {
            // Templates put each message in order, some trimmed.
            let found = [message.content.as_str(), message.content.trim()]
                .into_iter()
                .filter(|c| !c.is_empty())
                .find_map(|c| rendered[cursor..].find(c).map(|at| (cursor + at, c.len())));
            match found {
                Some((start, len)) => {
                    spans.push(start..start + len);
                    cursor = start + len;
                }
                None if !self.has_control_text(&message.content) => {}
                None => {
                    return Err(Error::Prompt(
                        "the model's chat template rewrites a message that holds control-token text such as \
                         `<|im_end|>`; assay cannot keep that text from being read as markers"
                            .into(),
                    ))
                }
            }
        }
        // Whatever follows the laid-out prompt (an option) is plain text too.
        Ok(spans)
    }

    /// Whether `text` holds the text of a control token.
    fn has_control_text(&self, text: &str) -> bool {
        let vocab = self.model.vocab();
        vocab
            .tokenize(text.as_bytes(), false, true)
            .into_iter()
            .any(|t| vocab.is_control(t))
    }

    /// Tokens of `text`, a laid-out prompt, where control tokens are parsed only outside the `plain` byte ranges.
    /// llama.cpp itself splits a text at control-token text and tokenizes the pieces between as plain text; this
    /// does the same, but keeps the markers found inside `plain` as part of the plain pieces. A text with no such
    /// marker gets exactly llama.cpp's tokens (so the scores of ordinary rows do not change).
    pub(crate) fn tokenize_layout(&self, text: &str, plain: &[Range<usize>]) -> Vec<i32> {
        let vocab = self.model.vocab();
        let tokens = vocab.tokenize(text.as_bytes(), true, true);
        // Byte range of each control token found in the text, in order (a BOS added in front is not in it).
        let mut markers: Vec<(usize, Range<usize>)> = Vec::new();
        let mut cursor = 0;
        for (i, &t) in tokens.iter().enumerate() {
            if !vocab.is_control(t) {
                continue;
            }
            let Some(piece) = vocab.text(t).and_then(|c| c.to_str().ok()) else {
                continue;
            };
            if let Some(at) = text[cursor..].find(piece).filter(|_| !piece.is_empty()) {
                let range = cursor + at..cursor + at + piece.len();
                cursor = range.end;
                markers.push((i, range));
            }
        }
        let injected = |r: &Range<usize>| plain.iter().any(|p| p.start < r.end && r.start < p.end);
        if !markers.iter().any(|(_, r)| injected(r)) {
            return tokens.into_iter().map(|t| t.0).collect();
        }
        // Control tokens llama.cpp added before the text (BOS) and after it (EOS), kept as they were.
        let first_text = markers.first().map_or(tokens.len(), |(i, _)| *i);
        let leading = tokens[..first_text]
            .iter()
            .take_while(|&&t| vocab.is_control(t))
            .count()
            .min(usize::from(vocab.should_add_bos()));
        let trailing =
            usize::from(vocab.should_add_eos() && tokens.last().is_some_and(|&t| t == vocab.eos()));
        let mut out: Vec<i32> = tokens[..leading].iter().map(|t| t.0).collect();
        let mut from = 0;
        let plain_piece = |out: &mut Vec<i32>, piece: &str| {
            out.extend(
                vocab
                    .tokenize(piece.as_bytes(), false, false)
                    .into_iter()
                    .map(|t| t.0),
            );
        };
        for (i, range) in markers.iter().filter(|(_, r)| !injected(r)) {
            plain_piece(&mut out, &text[from..range.start]);
            out.push(tokens[*i].0);
            from = range.end;
        }
        plain_piece(&mut out, &text[from..]);
        out.extend(tokens[tokens.len() - trailing..].iter().map(|t| t.0));
        out
    }

    /// A scorer for prompts that all begin like `prefix_probe` (rendered up to [`ITEM_SENTINEL`]).
    pub fn scorer(
        &self,
        prefix_probe: &PromptSpec,
        options: ScorerOptions,
    ) -> Result<EmbeddedScorer<'_>> {
        EmbeddedScorer::new(self, prefix_probe, options)
    }

    /// Greedy-decode up to `max_tokens` tokens after `prompt` (rendered in `format`), stopping at the model's
    /// end-of-generation token; returns the text generated. Used for chain-of-thought rationales: deterministic,
    /// so a resumed run or a re-run asks the same question with the same rationale.
    pub fn generate(
        &self,
        prompt: &PromptSpec,
        format: PromptFormat,
        max_tokens: usize,
        threads: usize,
    ) -> Result<String> {
        self.generate_sampled(prompt, format, &Sampling::greedy(max_tokens), threads)
            .map(|generated| generated.text)
    }

    /// Decode after `prompt` (rendered in `format`) with `sampling` (temperature, top-p, a seeded draw; see
    /// [`crate::sampling`]), stopping at the model's end-of-generation token or `sampling.max_tokens`. The same
    /// prompt, seed and model file give the same text, so a rerun reproduces a generation run.
    pub fn generate_sampled(
        &self,
        prompt: &PromptSpec,
        format: PromptFormat,
        sampling: &Sampling,
        threads: usize,
    ) -> Result<Generated> {
        let max_tokens = sampling.max_tokens;
        let mut sampler = TokenSampler::new(*sampling);
        let backend = backend()?;
        let tokens = self.prompt_tokens(prompt, format)?;
        let n_ctx_train = self.model.n_ctx_train() as usize;
        if tokens.len() + max_tokens > n_ctx_train {
            return Err(Error::Prompt(format!(
                "the prompt takes {} tokens; with {max_tokens} to generate it exceeds the model's {n_ctx_train}-token context",
                tokens.len()
            )));
        }
        let batch_size = 512;
        let n_ctx = ((tokens.len() + max_tokens + 1) as u32).next_multiple_of(256);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(batch_size as u32)
            .with_n_ubatch(batch_size as u32)
            .with_flash_attention_policy(0)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32);
        let mut ctx = self
            .model
            .new_context(backend, params)
            .map_err(|e| Error::Backend(format!("creating context: {e}")))?;
        let mut batch = LlamaBatch::new(batch_size, 1);
        let n = tokens.len();
        for (chunk_index, chunk) in tokens.chunks(batch_size).enumerate() {
            batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let pos = chunk_index * batch_size + i;
                batch
                    .add(LlamaToken(t), pos as i32, &[0], pos + 1 == n)
                    .map_err(|e| Error::Backend(e.to_string()))?;
            }
            ctx.decode(&mut batch)
                .map_err(|e| Error::Backend(format!("decoding the prompt: {e}")))?;
        }
        let vocab = self.model.vocab();
        let mut bytes = Vec::new();
        let (mut generated, mut finished) = (0, false);
        for pos in n..n + max_tokens {
            let logits = ctx.get_logits_ith(batch.n_tokens() - 1);
            let token = LlamaToken(sampler.pick(logits) as i32);
            if vocab.is_eog(token) {
                finished = true;
                break;
            }
            generated += 1;
            bytes.extend(vocab.token_to_piece(token, false, None));
            batch.clear();
            batch
                .add(token, pos as i32, &[0], true)
                .map_err(|e| Error::Backend(e.to_string()))?;
            ctx.decode(&mut batch)
                .map_err(|e| Error::Backend(format!("decode: {e}")))?;
        }
        Ok(Generated {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            tokens: generated,
            finished,
        })
    }

    /// Decode `tokens` tokens of filler text in batches of `batch` and report tokens per second: llama.cpp's own
    /// prompt-processing rate on this machine, the yardstick for the scorer's throughput.
    pub fn raw_prompt_rate(&self, tokens: usize, batch: usize, threads: usize) -> Result<f64> {
        let backend = backend()?;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(
                ((tokens + 256) as u32).next_multiple_of(256),
            ))
            .with_n_batch(batch as u32)
            .with_n_ubatch(batch.min(512) as u32)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32);
        let mut ctx = self
            .model
            .new_context(backend, params)
            .map_err(|e| Error::Backend(e.to_string()))?;
        let filler =
            "The quick brown fox jumps over the lazy dog while the committee reviews the budget. "
                .repeat(tokens / 8);
        let mut ids = self.tokenize(&filler, true);
        ids.truncate(tokens);
        let mut batch_buf = LlamaBatch::new(batch, 1);
        let start = Instant::now();
        for (chunk_index, chunk) in ids.chunks(batch).enumerate() {
            batch_buf.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let pos = chunk_index * batch + i;
                batch_buf
                    .add(LlamaToken(t), pos as i32, &[0], i + 1 == chunk.len())
                    .map_err(|e| Error::Backend(e.to_string()))?;
            }
            ctx.decode(&mut batch_buf)
                .map_err(|e| Error::Backend(format!("decode: {e}")))?;
        }
        Ok(ids.len() as f64 / start.elapsed().as_secs_f64())
    }
}

/// How a scorer evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Shared prefix cached once, items packed as token tries into batches (the default).
    CachedBatched,
    /// Every option of every item evaluated from scratch: the baseline the benchmark compares against.
    Naive,
}

/// Scorer settings.
#[derive(Debug, Clone, Copy)]
pub struct ScorerOptions {
    /// Prompt layout.
    pub format: PromptFormat,
    /// CPU threads.
    pub threads: usize,
    /// Tokens per llama.cpp batch.
    pub batch_tokens: usize,
    /// Cached/batched or naive.
    pub strategy: Strategy,
}

/// Scores options of items with one llama.cpp context.
pub struct EmbeddedScorer<'m> {
    model: &'m EmbeddedModel,
    ctx: LlamaContext<'m>,
    options: ScorerOptions,
    /// Tokens of the shared prefix held in sequence 0 (minus the last one: the item may merge with it).
    prefix: Vec<i32>,
    /// Log-softmax after the last prefix token, kept because later decodes overwrite llama.cpp's logits.
    prefix_log_probs: Vec<f64>,
    /// KV cells available after the prefix.
    room: usize,
    batch: LlamaBatch<'static>,
    stats: ScoreStats,
}

/// One scoring sequence of a request: (item, branch, option) and its tokens.
struct PlannedLeaf {
    item: usize,
    branch: usize,
    option: usize,
    leaf: Leaf,
}

impl<'m> EmbeddedScorer<'m> {
    fn new(
        model: &'m EmbeddedModel,
        prefix_probe: &PromptSpec,
        options: ScorerOptions,
    ) -> Result<Self> {
        let format = model.effective_format(options.format);
        let options = ScorerOptions { format, ..options };
        let rendered = model.render(prefix_probe, format)?;
        let cut = rendered.find(ITEM_SENTINEL).ok_or_else(|| {
            Error::Prompt(
                "the prompt layout lost the item marker; cannot find the shared prefix".into(),
            )
        })?;
        let plain: Vec<Range<usize>> = model
            .plain_spans(&rendered, prefix_probe, format)?
            .into_iter()
            .map(|r| r.start.min(cut)..r.end.min(cut))
            .collect();
        let mut prefix = model.tokenize_layout(&rendered[..cut], &plain);
        // The item's first characters may merge with the prefix's last token; share only what is certain.
        prefix.pop();
        if options.strategy == Strategy::Naive {
            prefix.clear();
        }
        let n_ctx_train = model.model.n_ctx_train() as usize;
        let room = options
            .batch_tokens
            .max(FIRST_ROOM)
            .min(n_ctx_train.saturating_sub(prefix.len()));
        if room < 64 {
            return Err(Error::Prompt(format!(
                "the instructions and examples take {} tokens, leaving no room in the model's {n_ctx_train}-token context",
                prefix.len()
            )));
        }
        let ctx = Self::context(model, prefix.len() + room, options)?;
        let mut scorer = Self {
            model,
            ctx,
            options,
            prefix,
            prefix_log_probs: Vec::new(),
            room,
            batch: LlamaBatch::new(options.batch_tokens, MAX_SEQUENCES as i32),
            stats: ScoreStats::default(),
        };
        scorer.load_prefix()?;
        Ok(scorer)
    }

    /// A llama.cpp context of at least `cells` KV cells.
    fn context(
        model: &'m EmbeddedModel,
        cells: usize,
        options: ScorerOptions,
    ) -> Result<LlamaContext<'m>> {
        let n_ctx = (cells as u32).next_multiple_of(256);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            // llama.cpp reserves outputs for at least every sequence id, and no more than one batch holds.
            .with_n_batch(options.batch_tokens.max(MAX_SEQUENCES) as u32)
            .with_n_ubatch(options.batch_tokens.min(512) as u32)
            .with_n_seq_max(MAX_SEQUENCES as u32)
            .with_kv_unified(true)
            // Flash attention on the CPU made scores depend on what else was in the batch; plain attention is exact.
            .with_flash_attention_policy(0)
            .with_n_threads(options.threads as i32)
            .with_n_threads_batch(options.threads as i32);
        model
            .model
            .new_context(backend()?, params)
            .map_err(|e| Error::Backend(format!("creating context: {e}")))
    }

    /// Make room for an item of `tokens` tokens after the prefix (at most the model's trained context): a new,
    /// larger context, kept for the rest of the run, with the prefix decoded into it again. Scores do not depend
    /// on the context's size (tests/embedded.rs checks that items after a long one score bit-identically).
    fn grow(&mut self, tokens: usize) -> Result<()> {
        let n_ctx_train = self.model.model.n_ctx_train() as usize;
        let room = tokens
            .next_multiple_of(1024)
            .min(n_ctx_train.saturating_sub(self.prefix.len()))
            .max(tokens);
        tracing::debug!(from = self.room, to = room, "growing the llama.cpp context");
        self.ctx = Self::context(self.model, self.prefix.len() + room, self.options)?;
        self.room = room;
        self.load_prefix()
    }

    /// Decode the prefix into sequence 0 and attach it to every other sequence id.
    fn load_prefix(&mut self) -> Result<()> {
        self.ctx.clear_kv_cache();
        if self.prefix.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let prefix = self.prefix.clone();
        let n = prefix.len();
        for (chunk_index, chunk) in prefix.chunks(self.options.batch_tokens).enumerate() {
            self.batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let pos = chunk_index * self.options.batch_tokens + i;
                self.batch
                    .add(LlamaToken(t), pos as i32, &[0], pos + 1 == n)
                    .map_err(|e| Error::Backend(e.to_string()))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| Error::Backend(format!("decoding the prefix: {e}")))?;
        }
        self.prefix_log_probs = log_softmax(self.ctx.get_logits_ith(self.batch.n_tokens() - 1));
        for seq in 1..MAX_SEQUENCES as i32 {
            self.ctx
                .copy_kv_cache_seq(0, seq, None, None)
                .map_err(|e| Error::Backend(e.to_string()))?;
        }
        self.stats.prefix_tokens = n as u64;
        self.stats.tokens_evaluated += n as u64;
        self.stats.decode_seconds += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// The scoring sequences of one request and the KV cells they need after the prefix, or why it cannot be
    /// scored.
    fn plan(
        &self,
        item: usize,
        request: &ScoreRequest,
    ) -> std::result::Result<(Vec<PlannedLeaf>, usize), String> {
        let mut leaves = Vec::new();
        let separator = match self.options.format {
            PromptFormat::Chat => "",
            PromptFormat::Completion => " ",
        };
        for (b, branch) in request.branches.iter().enumerate() {
            let prompt = self
                .model
                .render(&branch.prompt, self.options.format)
                .map_err(|e| e.to_string())?;
            let plain = self
                .model
                .plain_spans(&prompt, &branch.prompt, self.options.format)
                .map_err(|e| e.to_string())?;
            let prompt_tokens = self.model.tokenize_layout(&prompt, &plain);
            for (o, option) in branch.options.iter().enumerate() {
                // The option is plain text too.
                let full = format!("{prompt}{separator}{option}");
                let mut with_option = plain.clone();
                with_option.push(prompt.len()..full.len());
                let tokens = self.model.tokenize_layout(&full, &with_option);
                // Score the option's own tokens; if the option merged with the prompt's end, score from where the
                // two tokenizations part.
                let common = prompt_tokens
                    .iter()
                    .zip(&tokens)
                    .take_while(|(a, b)| a == b)
                    .count();
                if common >= tokens.len() {
                    return Err(format!("option `{option}` adds no tokens after the prompt"));
                }
                let shares_prefix = !self.prefix.is_empty() && tokens.starts_with(&self.prefix);
                let start = if shares_prefix { self.prefix.len() } else { 0 };
                leaves.push(PlannedLeaf {
                    item,
                    branch: b,
                    option: o,
                    leaf: Leaf {
                        tokens,
                        start,
                        score_from: common.max(start),
                    },
                });
            }
        }
        let own_tokens: usize =
            Trie::build(&leaves.iter().map(|l| l.leaf.clone()).collect::<Vec<_>>())
                .nodes
                .len();
        let n_ctx_train = self.model.model.n_ctx_train() as usize;
        let room = n_ctx_train.saturating_sub(self.prefix.len());
        if own_tokens > room {
            return Err(format!(
                "the item needs {own_tokens} tokens after the {} of the instructions and examples; the model was \
                 trained on a context of {n_ctx_train} tokens, leaving room for {room}",
                self.prefix.len()
            ));
        }
        if leaves.len() >= MAX_SEQUENCES {
            return Err(format!(
                "the item needs {} sequences (one per option); llama.cpp allows {}",
                leaves.len(),
                MAX_SEQUENCES - 1
            ));
        }
        Ok((leaves, own_tokens))
    }

    /// Score one group of leaves that fits the context and the sequence ids; returns one score per leaf.
    fn score_group(&mut self, leaves: &[Leaf]) -> Result<Vec<f64>> {
        let started = Instant::now();
        let trie = Trie::build(leaves);
        let prefix_len = self.prefix.len() as u32;
        // Sequence ids: leaf i is i + 1. Leaves that do not share the prefix must not see it.
        for (i, leaf) in leaves.iter().enumerate() {
            if leaf.start == 0 && prefix_len > 0 {
                self.clear_seq(i as i32 + 1, 0)?;
            }
        }
        let needed = trie.needed();
        let mut decoded = 0usize;
        let mut log_probs: HashMap<(Predictor, i32), f64> = HashMap::new();
        if let Some(tokens) = needed.get(&Predictor::Prefix) {
            for &t in tokens {
                log_probs.insert((Predictor::Prefix, t), self.prefix_log_probs[t as usize]);
            }
        }
        // One sequence id per token (see `Trie::sequences`) and one chain of tokens per llama.cpp call, depth first:
        // a branch's cells are removed before its sibling is evaluated. Measured on llama.cpp's CPU backend,
        // keeping cells of sequences with different histories at the same positions (other items, sibling
        // branches) made scores drift from a from-scratch evaluation by up to 0.2 nats; evaluated this way they
        // are bit-identical to it. A chain's last token is never decoded when nothing reads the logits after it.
        let node_seq = trie.sequences();
        let needs_decoding = trie.nodes_to_decode();
        let mut chains: Vec<(usize, Vec<usize>)> = Vec::new();
        for i in (0..trie.nodes.len()).filter(|&i| needs_decoding[i]) {
            match chains.iter_mut().find(|(seq, _)| *seq == node_seq[i]) {
                Some((_, nodes)) => nodes.push(i),
                None => chains.push((node_seq[i], vec![i])),
            }
        }
        let chain_of_seq: HashMap<usize, usize> = chains
            .iter()
            .enumerate()
            .map(|(c, (seq, _))| (*seq, c))
            .collect();
        let parent_chain = |c: usize| {
            trie.nodes[chains[c].1[0]]
                .parent
                .map(|p| chain_of_seq[&node_seq[p]])
        };
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); chains.len()];
        for c in 0..chains.len() {
            if let Some(p) = parent_chain(c) {
                children[p].push(c);
            }
        }
        // Latest branch point first, so the parent can be cut back step by step.
        for list in &mut children {
            list.sort_by_key(|&c| std::cmp::Reverse(trie.nodes[chains[c].1[0]].pos));
        }
        let roots: Vec<usize> = (0..chains.len())
            .filter(|&c| parent_chain(c).is_none())
            .collect();
        let walk = ChainWalk {
            trie: &trie,
            chains: &chains,
            children: &children,
            node_seq: &node_seq,
            needed: &needed,
        };
        for root in roots {
            self.decode_chain(&walk, root, &mut log_probs, &mut decoded)?;
        }
        // Free the group's cells; re-attach the prefix to sequences that were cut from it.
        for (i, leaf) in leaves.iter().enumerate() {
            let seq = i as i32 + 1;
            if leaf.start == 0 && prefix_len > 0 {
                self.clear_seq(seq, 0)?;
                self.ctx
                    .copy_kv_cache_seq(0, seq, None, None)
                    .map_err(|e| Error::Backend(e.to_string()))?;
            } else {
                self.clear_seq(seq, prefix_len)?;
            }
        }
        self.stats.tokens_evaluated += decoded as u64;
        self.stats.decode_seconds += started.elapsed().as_secs_f64();
        Ok(trie.leaf_scores(|p, t| log_probs[&(p, t)]))
    }

    /// Evaluate chain `c`, then each child after cutting this chain back to the child's branch point, so no two
    /// sequences with different histories hold cells at the same positions.
    fn decode_chain(
        &mut self,
        walk: &ChainWalk<'_>,
        c: usize,
        log_probs: &mut HashMap<(Predictor, i32), f64>,
        decoded: &mut usize,
    ) -> Result<()> {
        let (seq, ref nodes) = walk.chains[c];
        let first = &walk.trie.nodes[nodes[0]];
        if let Some(parent) = first.parent {
            let from = walk.node_seq[parent] as i32 + 1;
            self.ctx
                .copy_kv_cache_seq(from, seq as i32 + 1, None, Some(first.pos as u32))
                .map_err(|e| Error::Backend(e.to_string()))?;
        }
        for segment in nodes.chunks(self.options.batch_tokens) {
            self.batch.clear();
            for &i in segment {
                let node = &walk.trie.nodes[i];
                self.batch
                    .add(
                        LlamaToken(node.token),
                        node.pos as i32,
                        &[seq as i32 + 1],
                        node.logits,
                    )
                    .map_err(|e| Error::Backend(e.to_string()))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| Error::Backend(format!("decode: {e}")))?;
            *decoded += segment.len();
            for (offset, &i) in segment.iter().enumerate() {
                let predictor = Predictor::Node(i);
                if let Some(tokens) = walk.needed.get(&predictor) {
                    let logits = self.ctx.get_logits_ith(offset as i32);
                    let lse = log_sum_exp(logits);
                    for &t in tokens {
                        log_probs.insert((predictor, t), f64::from(logits[t as usize]) - lse);
                    }
                }
            }
        }
        for &child in &walk.children[c] {
            let branch = walk.trie.nodes[walk.chains[child].1[0]].pos as u32;
            self.clear_seq(seq as i32 + 1, branch)?;
            self.decode_chain(walk, child, log_probs, decoded)?;
            self.clear_seq(walk.chains[child].0 as i32 + 1, branch)?;
        }
        Ok(())
    }

    fn clear_seq(&mut self, seq: i32, from: u32) -> Result<()> {
        self.ctx
            .clear_kv_cache_seq(Some(seq as u32), Some(from), None)
            .map_err(|e| Error::Backend(e.to_string()))?;
        Ok(())
    }

    fn score_naive(&mut self, leaves: &[Leaf]) -> Result<Vec<f64>> {
        let mut scores = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            self.ctx.clear_kv_cache();
            let unshared = Leaf {
                start: 0,
                ..leaf.clone()
            };
            scores.extend(self.score_group(std::slice::from_ref(&unshared))?);
        }
        Ok(scores)
    }
}

impl Scorer for EmbeddedScorer<'_> {
    fn info(&self) -> &ModelInfo {
        &self.model.info
    }

    fn score(&mut self, requests: &[ScoreRequest]) -> Result<Vec<ItemScores>> {
        let mut results: Vec<ItemScores> = requests
            .iter()
            .map(|r| {
                Ok(r.branches
                    .iter()
                    .map(|b| vec![f64::NAN; b.options.len()])
                    .collect())
            })
            .collect();
        // Items are scored one at a time (see `score_group` for why they are not packed together); an item that
        // cannot be scored gets its reason.
        for (i, request) in requests.iter().enumerate() {
            let planned = match self.plan(i, request) {
                Ok((planned, cells)) => {
                    if cells > self.room {
                        self.grow(cells)?;
                    }
                    planned
                }
                Err(reason) => {
                    results[i] = Err(reason);
                    continue;
                }
            };
            let leaves: Vec<Leaf> = planned.iter().map(|p| p.leaf.clone()).collect();
            let scores = match self.options.strategy {
                Strategy::CachedBatched => self.score_group(&leaves)?,
                Strategy::Naive => self.score_naive(&leaves)?,
            };
            for (p, score) in planned.iter().zip(scores) {
                if let Ok(item) = &mut results[p.item] {
                    item[p.branch][p.option] = score;
                }
            }
        }
        self.stats.items += requests.len() as u64;
        Ok(results)
    }

    fn stats(&self) -> ScoreStats {
        self.stats
    }
}

/// What [`EmbeddedScorer::decode_chain`] walks: chains of nodes sharing a sequence id, and their children.
struct ChainWalk<'a> {
    trie: &'a Trie,
    chains: &'a [(usize, Vec<usize>)],
    children: &'a [Vec<usize>],
    node_seq: &'a [usize],
    needed: &'a HashMap<Predictor, Vec<i32>>,
}

fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    f64::from(max) + sum.ln()
}

fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let lse = log_sum_exp(logits);
    logits.iter().map(|&l| f64::from(l) - lse).collect()
}

#[cfg(test)]
mod tests {
    use super::free_cores;

    #[test]
    fn thread_default_leaves_busy_cores_alone() {
        assert_eq!(free_cores(2, 0), 2);
        assert_eq!(free_cores(2, 1), 1);
        assert_eq!(free_cores(2, 6), 1);
        assert_eq!(free_cores(16, 3), 13);
    }
}
