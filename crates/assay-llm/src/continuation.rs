//! How a text continues a context under a model's next-token distributions, position by position: the
//! statistics zero-shot detectors of model-written text are built from.
//!
//! At each position `j` of the continuation the model gives a distribution `p_j` over its vocabulary. With
//! `x_j` the token that is there:
//! - log-likelihood `Σ log p_j(x_j)` (perplexity detectors);
//! - expected log-likelihood `Σ E_{v~p_j} log p_j(v)` = minus the summed entropy;
//! - variance `Σ Var_{v~p_j} log p_j(v)`.
//!
//! From these, [`ContinuationStats::curvature`] is Fast-DetectGPT's analytic conditional probability curvature
//! with the same model sampling and scoring (Bao et al., ICLR 2024): a model's own samples score above their
//! expectation, people's text does not. [`ContinuationStats::binoculars`] is Binoculars' perplexity over
//! cross-perplexity (Hans et al., ICML 2024) with one model as observer and performer, where the cross-perplexity
//! is the entropy. (Two-model Binoculars needs two models over one vocabulary; the bundled models do not share
//! one.)

use std::num::NonZeroU32;
use std::ops::Range;

use assay_core::{PromptFormat, PromptSpec};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use crate::embedded::{backend, EmbeddedModel};
use crate::{Error, Result};

/// Tokens decoded per batch.
const BATCH: usize = 512;

/// The continuation's statistics, summed over its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ContinuationStats {
    /// Tokens of the continuation measured.
    pub tokens: usize,
    /// `Σ log p_j(x_j)`, natural log.
    pub logprob: f64,
    /// `Σ E_{v~p_j} log p_j(v)` (minus the summed entropy).
    pub expected_logprob: f64,
    /// `Σ Var_{v~p_j} log p_j(v)`.
    pub logprob_variance: f64,
    /// Continuation tokens left out because it was longer than the meter's limit.
    pub truncated_tokens: usize,
    /// Context tokens dropped from the front to make room.
    pub dropped_context_tokens: usize,
}

impl ContinuationStats {
    /// Mean log-likelihood per token.
    pub fn mean_logprob(&self) -> f64 {
        self.logprob / self.tokens.max(1) as f64
    }

    /// Fast-DetectGPT's analytic curvature: `(Σ log p(x) − Σ E log p) / sqrt(Σ Var log p)`. About 0 for text the
    /// model finds as surprising as its own samples at temperature 1; above for text sampled greedily or cooled.
    pub fn curvature(&self) -> f64 {
        (self.logprob - self.expected_logprob) / self.logprob_variance.max(1e-12).sqrt()
    }

    /// Binoculars with one model: log-perplexity over the entropy (mean `−log p(x)` over mean `H`). Lower: more
    /// like the model's own text.
    pub fn binoculars(&self) -> f64 {
        self.logprob / self.expected_logprob.min(-1e-12)
    }
}

/// What the continuation follows.
#[derive(Debug, Clone)]
pub enum Context<'a> {
    /// A prompt laid out as the scorer lays it out (chat template or the completion layout); the continuation
    /// follows as the answer.
    Prompt(&'a PromptSpec),
    /// Text as it is (a base model's document so far); the continuation follows it directly.
    Raw(&'a str),
}

/// Measures continuations one by one in one llama.cpp context.
pub struct ContinuationMeter<'m> {
    model: &'m EmbeddedModel,
    format: PromptFormat,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    n_ctx: usize,
    max_tokens: usize,
}

impl<'m> ContinuationMeter<'m> {
    /// A meter for `model` with prompts laid out in `format`; continuations longer than `max_tokens` are
    /// measured on their first `max_tokens` tokens. The context holds `max_tokens` plus up to 1024 tokens of
    /// context (fewer if the model was trained on less).
    pub fn new(
        model: &'m EmbeddedModel,
        format: PromptFormat,
        max_tokens: usize,
        threads: usize,
    ) -> Result<Self> {
        let format = model.effective_format(format);
        let n_ctx_train = model.llama().n_ctx_train() as usize;
        let n_ctx = (max_tokens.max(1) + 1024).min(n_ctx_train);
        if n_ctx < 64 {
            return Err(Error::Prompt(format!(
                "the model's context of {n_ctx_train} tokens is too small to measure text in"
            )));
        }
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new((n_ctx as u32).next_multiple_of(256)))
            .with_n_batch(BATCH as u32)
            .with_n_ubatch(BATCH as u32)
            // Plain attention, as the scorer uses: exact, whatever else is in the batch.
            .with_flash_attention_policy(0)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads as i32);
        let ctx = model
            .llama()
            .new_context(backend()?, params)
            .map_err(|e| Error::Backend(format!("creating context: {e}")))?;
        Ok(Self {
            model,
            format,
            ctx,
            batch: LlamaBatch::new(BATCH, 1),
            n_ctx,
            max_tokens: max_tokens.min(n_ctx - 16),
        })
    }

    /// The layout prompts are rendered in (the model's, when it has no chat template).
    pub fn format(&self) -> PromptFormat {
        self.format
    }

    /// The tokens of `context` followed by `continuation`, and where the continuation's own tokens start.
    /// Tokenized together, as the scorer does, so a continuation's first characters may merge with the context's
    /// last token; measured from where the two tokenizations part.
    fn tokens(&self, context: &Context<'_>, continuation: &str) -> Result<(Vec<i32>, usize)> {
        let (rendered, mut plain, separator): (String, Vec<Range<usize>>, &str) = match context {
            Context::Prompt(prompt) => {
                let rendered = self.model.render(prompt, self.format)?;
                let plain = self.model.plain_spans(&rendered, prompt, self.format)?;
                let separator = match self.format {
                    PromptFormat::Chat => "",
                    PromptFormat::Completion => " ",
                };
                (rendered, plain, separator)
            }
            Context::Raw(text) => {
                let separator = if text.is_empty()
                    || text.ends_with(char::is_whitespace)
                    || continuation.starts_with(char::is_whitespace)
                {
                    ""
                } else {
                    " "
                };
                (
                    text.to_string(),
                    std::iter::once(0..text.len()).collect(),
                    separator,
                )
            }
        };
        let context_tokens = self.model.tokenize_layout(&rendered, &plain);
        let full = format!("{rendered}{separator}{continuation}");
        plain.push(rendered.len()..full.len());
        let tokens = self.model.tokenize_layout(&full, &plain);
        let common = context_tokens
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count()
            // The first token is predicted from at least one token before it.
            .max(1);
        if common >= tokens.len() {
            return Err(Error::Prompt(
                "the text adds no tokens after its context".into(),
            ));
        }
        Ok((tokens, common))
    }

    /// Measure `continuation` after `context`.
    pub fn measure(
        &mut self,
        context: &Context<'_>,
        continuation: &str,
    ) -> Result<ContinuationStats> {
        let (mut tokens, mut start) = self.tokens(context, continuation)?;
        let mut stats = ContinuationStats::default();
        let own = tokens.len() - start;
        if own > self.max_tokens {
            stats.truncated_tokens = own - self.max_tokens;
            tokens.truncate(start + self.max_tokens);
        }
        if tokens.len() > self.n_ctx {
            // Keep the first token (BOS, or the text's start) and the most recent context.
            let drop = tokens.len() - self.n_ctx;
            tokens.drain(1..1 + drop);
            start -= drop;
            stats.dropped_context_tokens = drop;
        }
        self.ctx.clear_kv_cache();
        let n = tokens.len();
        for (chunk_index, chunk) in tokens.chunks(BATCH).enumerate() {
            self.batch.clear();
            let first = chunk_index * BATCH;
            for (i, &t) in chunk.iter().enumerate() {
                let pos = first + i;
                // Position `pos` predicts token `pos + 1`: logits wherever that token is the continuation's.
                let wanted = pos + 1 >= start && pos + 1 < n;
                self.batch
                    .add(LlamaToken(t), pos as i32, &[0], wanted)
                    .map_err(|e| Error::Backend(e.to_string()))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| Error::Backend(format!("decoding the text: {e}")))?;
            for i in 0..chunk.len() {
                let pos = first + i;
                if pos + 1 < start || pos + 1 >= n {
                    continue;
                }
                let logits = self.ctx.get_logits_ith(i as i32);
                let next = tokens[pos + 1] as usize;
                let (actual, expected, variance) = position_stats(logits, next);
                stats.logprob += actual;
                stats.expected_logprob += expected;
                stats.logprob_variance += variance;
                stats.tokens += 1;
            }
        }
        Ok(stats)
    }
}

/// At one position with `logits`: `log p(next)`, `E log p` and `Var log p` under `p = softmax(logits)`.
fn position_stats(logits: &[f32], next: usize) -> (f64, f64, f64) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let lse = f64::from(max) + sum.ln();
    let (mut mean, mut square) = (0.0, 0.0);
    for &l in logits {
        let lp = f64::from(l) - lse;
        let p = lp.exp();
        mean += p * lp;
        square += p * lp * lp;
    }
    let actual = logits
        .get(next)
        .map_or(f64::NEG_INFINITY, |&l| f64::from(l) - lse);
    (actual, mean, (square - mean * mean).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uniform_distribution_has_no_variance_and_its_entropy() {
        let (actual, expected, variance) = position_stats(&[0.0; 4], 2);
        assert!((actual - (0.25f64).ln()).abs() < 1e-12);
        assert!((expected - (0.25f64).ln()).abs() < 1e-12);
        assert!(variance.abs() < 1e-12);
    }

    #[test]
    fn position_stats_match_the_definitions() {
        let logits = [2.0f32, 0.5, -1.0];
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        let p: Vec<f64> = logits.iter().map(|&l| f64::from(l).exp() / z).collect();
        let mean: f64 = p.iter().map(|q| q * q.ln()).sum();
        let var: f64 = p.iter().map(|q| q * (q.ln() - mean).powi(2)).sum();
        let (actual, expected, variance) = position_stats(&logits, 0);
        assert!((actual - p[0].ln()).abs() < 1e-9);
        assert!((expected - mean).abs() < 1e-9);
        assert!((variance - var).abs() < 1e-9);
    }

    #[test]
    fn the_argmax_scores_above_expectation_and_a_rare_token_below() {
        let logits = [3.0f32, 1.0, 0.0, -2.0];
        let at = |next| {
            let (a, e, v) = position_stats(&logits, next);
            ContinuationStats {
                tokens: 1,
                logprob: a,
                expected_logprob: e,
                logprob_variance: v,
                ..Default::default()
            }
        };
        assert!(at(0).curvature() > 0.0);
        assert!(at(3).curvature() < 0.0);
        assert!(at(0).binoculars() < 1.0 && at(3).binoculars() > 1.0);
    }
}
