//! `assay audit source`: was a text written by another model? Each text is read as the answer to its prompt
//! under each reference model.
//!
//! - Embedded models give the full next-token distribution at every position of the text
//!   ([`assay_llm::continuation`]): the mean log-likelihood per token and per byte, Fast-DetectGPT's analytic
//!   curvature (how far the text's log-likelihood lies above what the model expects of its own samples, in
//!   standard deviations; Bao et al. 2024) and single-model Binoculars (log-perplexity over entropy; Hans et al.
//!   2024). The curvature is the detector: a text sampled from a model lies above that model's expectation,
//!   people's text does not. Served models give prompt log-probabilities only (through `echo`), so their
//!   detector is the mean log-likelihood.
//! - With labeled rows (a column naming `human` or the model that wrote each row), the labeled rows are split in
//!   two halves, alternating within each label: every model's detector is standardised against the human rows
//!   of the fitting half (z-score); with two or more models, so is the per-byte contrast (how much likelier the
//!   text is under that model than under the others). A model's evidence is the sum of the two z-scores, the
//!   combined score is the largest evidence, and the flag threshold is the smallest combined score that keeps
//!   the false-positive rate on the fitting half's human rows at or under the target. Attribution is the model
//!   under which the text is likeliest per byte. The threshold's rates are reported on both halves; the
//!   held-out half's are the honest ones.
//! - With two models, the per-byte log-likelihood ratio between them is reported too (per byte, so models with
//!   different tokenizers compare). Two-model Binoculars (cross-perplexity between an observer and a performer)
//!   needs two models over one vocabulary; the bundled SmolLM2 and Gemma do not share one, so it is not built.
//! - With a prompt column and `greedy`, each embedded model also answers the prompt greedily and the row's text
//!   is compared with that answer by word 3-gram shingle Jaccard.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use assay_core::{
    ChatMessage, PromptFormat, PromptSpec, Role, ScoreBranch, ScoreRequest, TaskSpec,
};
use assay_llm::continuation::{Context, ContinuationMeter};
use assay_llm::Scorer;
use serde::Serialize;

use crate::{Backend, Error, Result};

/// Texts scored per call.
const CHUNK: usize = 16;

/// One reference model, as given on the command line: a cached model's name, a GGUF path, or a served model as
/// `URL#MODEL` (an OpenAI-compatible `/v1` endpoint that returns prompt log-probabilities through `echo`).
/// A served model's prompt is laid out by assay in `served_template`, since the server's own template is unknown
/// here.
pub fn open_reference(
    reference: &str,
    models_home: &Path,
    served_template: assay_core::ChatTemplate,
) -> Result<Backend> {
    let model = if let Some((url, name)) = reference
        .split_once('#')
        .filter(|(u, _)| u.starts_with("http://") || u.starts_with("https://"))
    {
        format!(
            "name = {}\nendpoint = {}\nscoring = \"prompt-logprobs\"\n{}\n",
            toml_str(name),
            toml_str(url),
            match served_template {
                assay_core::ChatTemplate::Chatml => "chat-template = \"chatml\"",
                assay_core::ChatTemplate::Completion => "prompt-format = \"completion\"",
            }
        )
    } else if reference.ends_with(".gguf") {
        format!("path = {}\n", toml_str(reference))
    } else {
        format!("name = {}\n", toml_str(reference))
    };
    let text = format!(
        "name = \"audit-source\"\ntype = \"classify\"\ninput = \"{{{{ text }}}}\"\nlabels = [\"a\", \"b\"]\n\
         [model]\n{model}"
    );
    let spec = TaskSpec::from_toml_str(&text)?;
    Backend::open(&spec, models_home, false)
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// One row's text and prompt.
#[derive(Debug, Clone)]
pub struct SourceText {
    /// The row's position in the input.
    pub row_index: u64,
    /// The text to check.
    pub text: String,
    /// The prompt it answers, if the input has one.
    pub prompt: Option<String>,
}

/// A text's likelihood under one model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelScore {
    /// Log-probability of the whole text after its prompt (natural log).
    pub logprob: f64,
    /// The text's tokens under this model's tokenizer (embedded models; `None` for served ones).
    pub tokens: Option<usize>,
    /// Mean log-likelihood per token (per byte for served models, which give no token count).
    pub mean_logprob: f64,
    /// Mean log-likelihood per byte of UTF-8.
    pub per_byte: f64,
    /// Fast-DetectGPT's analytic curvature under this model (embedded models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curvature: Option<f64>,
    /// Single-model Binoculars: log-perplexity over entropy (embedded models). Lower: more like the model's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binoculars: Option<f64>,
    /// Tokens past the measured limit that were left out.
    #[serde(skip_serializing_if = "is_zero")]
    pub truncated_tokens: usize,
    /// Word 3-gram Jaccard between the text and this model's greedy answer to the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greedy_jaccard: Option<f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ModelScore {
    /// The score the verdicts use: the curvature where the model gives it, else the mean log-likelihood.
    pub fn detector(&self) -> f64 {
        self.curvature.unwrap_or(self.mean_logprob)
    }
}

/// What is done with the texts.
#[derive(Debug, Clone, Copy)]
pub struct SourceOptions<'a> {
    /// CPU threads (embedded models).
    pub threads: usize,
    /// Also generate each embedded model's greedy answer to the prompt and compare.
    pub greedy: bool,
    /// Tokens of the greedy answer.
    pub greedy_tokens: usize,
    /// Under a base model (no chat template), read the text as the continuation of the prompt followed by this,
    /// verbatim (e.g. `\n\nAssistant:` for dialogues), instead of the `Input:`/`Answer:` layout.
    pub answer_after: Option<&'a str>,
    /// Tokens of each text measured (embedded models); the rest is left out and counted.
    pub max_tokens: usize,
}

/// Score every text under one model; `progress` is told how many texts are done.
pub fn score_texts(
    backend: &Backend,
    texts: &[SourceText],
    options: SourceOptions<'_>,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ModelScore>> {
    let mut out = match backend {
        Backend::Embedded(model) => measure_embedded(model, texts, options, progress)?,
        _ => score_served(backend, texts, progress)?,
    };
    if let (true, Backend::Embedded(model)) = (options.greedy, backend) {
        greedy_similarity(model, texts, options, &mut out)?;
    }
    Ok(out)
}

/// The row's prompt as one user message.
fn user_prompt(prompt: Option<&str>) -> PromptSpec {
    PromptSpec {
        messages: vec![ChatMessage {
            role: Role::User,
            content: prompt.unwrap_or_default().to_string(),
        }],
    }
}

/// Every text's statistics under an embedded model, from its next-token distributions.
fn measure_embedded(
    model: &assay_llm::embedded::EmbeddedModel,
    texts: &[SourceText],
    options: SourceOptions<'_>,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ModelScore>> {
    let mut meter = ContinuationMeter::new(
        model,
        PromptFormat::Chat,
        options.max_tokens,
        options.threads,
    )?;
    let raw = meter.format() == PromptFormat::Completion && options.answer_after.is_some();
    let mut out = Vec::with_capacity(texts.len());
    for t in texts {
        let prompt = user_prompt(t.prompt.as_deref());
        let raw_context = format!(
            "{}{}",
            t.prompt.as_deref().unwrap_or_default(),
            options.answer_after.unwrap_or_default()
        );
        let context = if raw {
            Context::Raw(&raw_context)
        } else {
            Context::Prompt(&prompt)
        };
        let stats = meter.measure(&context, &t.text).map_err(|why| {
            Error::usage(
                format!(
                    "row {}: the text could not be measured: {why}",
                    t.row_index + 1
                ),
                "leave the row out (--sample) or check its text",
            )
        })?;
        let bytes = t.text.len().max(1) as f64;
        out.push(ModelScore {
            logprob: stats.logprob,
            tokens: Some(stats.tokens),
            mean_logprob: stats.mean_logprob(),
            per_byte: stats.logprob / bytes,
            greedy_jaccard: None,
            curvature: Some(stats.curvature()),
            binoculars: Some(stats.binoculars()),
            truncated_tokens: stats.truncated_tokens,
        });
        if out.len() % CHUNK == 0 || out.len() == texts.len() {
            progress(out.len());
        }
    }
    Ok(out)
}

/// Every text's log-likelihood under a served model (prompt log-probabilities through `echo`).
fn score_served(
    backend: &Backend,
    texts: &[SourceText],
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ModelScore>> {
    let mut scorer = match backend {
        Backend::Served(model) => model.scorer(
            Box::new(assay_llm::openai::MemoryCache::default()),
            Arc::new(AtomicBool::new(false)),
        ),
        _ => {
            return Err(Error::Internal(
                "audit source scores with embedded or served models".into(),
            ))
        }
    };
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(CHUNK) {
        let requests: Vec<ScoreRequest> = chunk
            .iter()
            .map(|t| ScoreRequest {
                branches: vec![ScoreBranch {
                    prompt: user_prompt(t.prompt.as_deref()),
                    options: vec![t.text.clone()],
                }],
            })
            .collect();
        let scored = scorer.score(&requests)?;
        for (t, s) in chunk.iter().zip(scored) {
            let logprob = s
                .map_err(|why| {
                    Error::usage(
                        format!(
                            "row {}: the text could not be scored: {why}",
                            t.row_index + 1
                        ),
                        "shorten the text or leave the row out (--sample)",
                    )
                })?
                .first()
                .and_then(|b| b.first())
                .copied()
                .unwrap_or(f64::NEG_INFINITY);
            let bytes = t.text.len().max(1) as f64;
            out.push(ModelScore {
                logprob,
                tokens: None,
                // Served models give no token count: per byte.
                mean_logprob: logprob / bytes,
                per_byte: logprob / bytes,
                ..ModelScore::default()
            });
        }
        progress(out.len());
    }
    Ok(out)
}

/// Each embedded model answers every prompt greedily; the row's text is compared with that answer.
fn greedy_similarity(
    model: &assay_llm::embedded::EmbeddedModel,
    texts: &[SourceText],
    options: SourceOptions<'_>,
    out: &mut [ModelScore],
) -> Result<()> {
    for (t, s) in texts.iter().zip(out.iter_mut()) {
        let Some(prompt) = &t.prompt else { continue };
        let answer = model.generate(
            &user_prompt(Some(prompt)),
            PromptFormat::Chat,
            options.greedy_tokens,
            options.threads,
        )?;
        s.greedy_jaccard = Some(shingle_jaccard(&t.text, &answer, 3));
    }
    Ok(())
}

/// Jaccard similarity of the two texts' sets of word `n`-grams (lowercased); texts shorter than `n` words count
/// as one shingle.
pub fn shingle_jaccard(a: &str, b: &str, n: usize) -> f64 {
    fn shingles(s: &str, n: usize) -> std::collections::HashSet<Vec<String>> {
        let words: Vec<String> = s.split_whitespace().map(str::to_lowercase).collect();
        if words.len() < n {
            return std::iter::once(words).collect();
        }
        words.windows(n).map(<[String]>::to_vec).collect()
    }
    let (x, y) = (shingles(a, n), shingles(b, n));
    let union = x.union(&y).count();
    if union == 0 {
        return 0.0;
    }
    x.intersection(&y).count() as f64 / union as f64
}

/// Every row's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct RowVerdict {
    /// Combined score: with labeled rows the largest per-model evidence (the z-score of the model's detector
    /// against the fitting half's human rows, plus the z-score of the per-byte contrast with the other models),
    /// else the largest detector value. Higher: more likely written by a model.
    pub score: f64,
    /// With two models: per-byte log-likelihood under the first minus under the second.
    pub likelihood_ratio: Option<f64>,
    /// The model the text is attributed to: the one under which it is likeliest per byte.
    pub attributed: String,
    /// Flagged as model-written (only with a threshold chosen on labeled rows).
    pub flagged: Option<bool>,
    /// A labeled row that fitted the reference and the threshold (`false`: held out to check them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fitted: Option<bool>,
}

/// How a threshold does on some labeled rows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rates {
    /// Share of the human rows flagged.
    pub false_positive_rate: f64,
    /// Share of the model-written rows flagged.
    pub true_positive_rate: f64,
    /// Human rows.
    pub human_rows: usize,
    /// Model-written rows.
    pub model_rows: usize,
}

/// The threshold chosen on labeled rows.
#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    /// Flag rows whose combined score is at least this.
    pub value: f64,
    /// On the rows it was chosen on.
    pub fitted: Rates,
    /// On the labeled rows held out from choosing it (none when too few rows are labeled to split).
    pub held_out: Option<Rates>,
}

/// How each model's detector looks on human rows: the reference of the z-scores.
#[derive(Debug, Clone, Serialize)]
pub struct HumanReference {
    /// Mean detector value of the fitting half's human rows.
    pub mean: f64,
    /// Its standard deviation.
    pub sd: f64,
}

/// The verdicts and, with labels, the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Verdicts {
    /// Per row, in input order.
    pub rows: Vec<RowVerdict>,
    /// Chosen on labeled rows, if any.
    pub threshold: Option<Threshold>,
    /// Per model, from labeled human rows.
    pub human_reference: Option<Vec<HumanReference>>,
    /// Per model (two or more), the per-byte contrast with the other models on labeled human rows.
    pub contrast_reference: Option<Vec<HumanReference>>,
}

/// Labeled rows needed of each kind (human, model-written) before a half is held out.
const SPLIT_AT: usize = 4;

/// Combine the models' scores into verdicts. `labels[i]`: `Some("human")`, `Some(model name)` or `None`
/// (unlabeled); `max_fpr`: the largest false-positive rate on human rows the threshold may have.
pub fn verdicts(
    models: &[String],
    scores: &[Vec<ModelScore>],
    labels: &[Option<String>],
    max_fpr: f64,
) -> Verdicts {
    let rows = scores.first().map_or(0, Vec::len);
    let label = |i: usize| labels.get(i).and_then(|l| l.as_deref());
    let human_all: Vec<usize> = (0..rows).filter(|&i| label(i) == Some("human")).collect();
    let model_all: Vec<usize> = (0..rows)
        .filter(|&i| label(i).is_some_and(|l| l != "human"))
        .collect();
    // Alternate within each label, in input order: every other row of each label is held out.
    let split = human_all.len() >= SPLIT_AT && model_all.len() >= SPLIT_AT;
    let mut fitted: Vec<Option<bool>> = vec![None; rows];
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, f) in fitted.iter_mut().enumerate() {
        if let Some(l) = label(i) {
            let k = seen.entry(l).or_default();
            *f = Some(!split || k.is_multiple_of(2));
            *k += 1;
        }
    }
    let in_fit = |i: &usize| fitted[*i] == Some(true);
    let in_check = |i: &usize| fitted[*i] == Some(false);
    let human: Vec<usize> = human_all.iter().copied().filter(in_fit).collect();
    // How much likelier the text is per byte under model m than under the others on average (per byte, so
    // tokenizers compare): text a model wrote is likelier under it than under other models.
    let contrast = |m: usize, i: usize| {
        let others = scores.len() - 1;
        let rest: f64 = (0..scores.len())
            .filter(|&k| k != m)
            .map(|k| scores[k][i].per_byte)
            .sum();
        scores[m][i].per_byte - rest / others as f64
    };
    let standardise = |value: &dyn Fn(usize) -> f64| {
        let xs: Vec<f64> = human.iter().map(|&i| value(i)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
        HumanReference {
            mean,
            sd: var.sqrt().max(1e-9),
        }
    };
    let reference: Option<Vec<HumanReference>> = (human.len() >= 2).then(|| {
        scores
            .iter()
            .map(|per_model| standardise(&|i| per_model[i].detector()))
            .collect()
    });
    let contrast_reference: Option<Vec<HumanReference>> = (human.len() >= 2 && scores.len() >= 2)
        .then(|| {
            (0..scores.len())
                .map(|m| standardise(&|i| contrast(m, i)))
                .collect()
        });
    let mut out: Vec<RowVerdict> = (0..rows)
        .map(|i| {
            // The evidence that model m wrote the text: its detector's z against human rows, plus (with two or
            // more models) the z of how much likelier the text is under m than under the others.
            let evidence: Vec<f64> = scores
                .iter()
                .enumerate()
                .map(|(m, s)| match &reference {
                    Some(r) => {
                        let own = (s[i].detector() - r[m].mean) / r[m].sd;
                        own + contrast_reference
                            .as_ref()
                            .map_or(0.0, |c| (contrast(m, i) - c[m].mean) / c[m].sd)
                    }
                    None => s[i].detector(),
                })
                .collect();
            let score = evidence.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            // Attribution: the model under which the text is likeliest per byte.
            let best = (0..scores.len())
                .max_by(|&a, &b| scores[a][i].per_byte.total_cmp(&scores[b][i].per_byte))
                .unwrap_or(0);
            RowVerdict {
                score,
                likelihood_ratio: (scores.len() == 2)
                    .then(|| scores[0][i].per_byte - scores[1][i].per_byte),
                attributed: models[best].clone(),
                flagged: None,
                fitted: fitted[i],
            }
        })
        .collect();
    let model_rows: Vec<usize> = model_all.iter().copied().filter(in_fit).collect();
    let threshold = (!human.is_empty() && !model_rows.is_empty()).then(|| {
        // The smallest threshold (among the human scores, taken from above) whose FPR is within the target.
        let mut hs: Vec<f64> = human.iter().map(|&i| out[i].score).collect();
        hs.sort_by(|a, b| b.total_cmp(a));
        let allowed = (max_fpr * hs.len() as f64).floor() as usize;
        // Flag scores strictly above the (allowed+1)-th highest human score.
        let value = hs.get(allowed).map_or(f64::NEG_INFINITY, |x| next_up(*x));
        let rate = |idx: &[usize]| {
            idx.iter().filter(|&&i| out[i].score >= value).count() as f64 / idx.len() as f64
        };
        let rates = |h: &[usize], m: &[usize]| Rates {
            false_positive_rate: rate(h),
            true_positive_rate: rate(m),
            human_rows: h.len(),
            model_rows: m.len(),
        };
        let check_h: Vec<usize> = human_all.iter().copied().filter(in_check).collect();
        let check_m: Vec<usize> = model_all.iter().copied().filter(in_check).collect();
        Threshold {
            value,
            fitted: rates(&human, &model_rows),
            held_out: split.then(|| rates(&check_h, &check_m)),
        }
    });
    if let Some(t) = &threshold {
        for r in &mut out {
            r.flagged = Some(r.score >= t.value);
        }
    }
    Verdicts {
        rows: out,
        threshold,
        human_reference: reference,
        contrast_reference,
    }
}

/// The smallest float above `x`.
fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    let up = if x == 0.0 {
        1
    } else if x > 0.0 {
        bits + 1
    } else {
        bits - 1
    };
    f64::from_bits(up)
}

/// Area under the ROC curve: P(a positive scores above a negative), ties counting half.
pub fn auroc(positive: &[f64], negative: &[f64]) -> Option<f64> {
    if positive.is_empty() || negative.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in positive {
        for n in negative {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (positive.len() * negative.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(mean: f64) -> ModelScore {
        ModelScore {
            mean_logprob: mean,
            per_byte: mean / 4.0,
            ..ModelScore::default()
        }
    }

    #[test]
    fn shingles_compare_word_trigrams() {
        assert_eq!(shingle_jaccard("a b c d", "a b c d", 3), 1.0);
        // {abc, bcd} vs {abc, bce}: 1 of 3.
        assert!((shingle_jaccard("a b c d", "A b c e", 3) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(shingle_jaccard("x y", "z w", 3), 0.0);
    }

    #[test]
    fn auroc_counts_ties_half() {
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(auroc(&[1.0], &[1.0]), Some(0.5));
        assert_eq!(auroc(&[1.0, 3.0], &[2.0]), Some(0.5));
        assert_eq!(auroc(&[], &[1.0]), None);
    }

    #[test]
    fn labeled_rows_set_the_threshold_and_attribution() {
        let models = vec!["a".to_string(), "b".to_string()];
        // Human rows score about -3 under both; a's text scores high under a, b's under b.
        let a = vec![
            score(-3.0),
            score(-3.2),
            score(-2.8),
            score(-1.0),
            score(-2.9),
        ];
        let b = vec![
            score(-3.1),
            score(-2.9),
            score(-3.0),
            score(-2.9),
            score(-1.2),
        ];
        let labels: Vec<Option<String>> = ["human", "human", "human", "a", "b"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        let v = verdicts(&models, &[a, b], &labels, 0.0);
        let t = v.threshold.unwrap();
        assert_eq!(t.fitted.false_positive_rate, 0.0);
        assert_eq!(t.fitted.true_positive_rate, 1.0);
        // Too few labeled rows to hold any out: all of them fitted.
        assert!(t.held_out.is_none());
        assert!(v.rows.iter().all(|r| r.fitted == Some(true)));
        assert_eq!(v.rows[3].attributed, "a");
        assert_eq!(v.rows[4].attributed, "b");
        assert_eq!(v.rows[3].flagged, Some(true));
        assert!(v.rows.iter().take(3).all(|r| r.flagged == Some(false)));
        assert!(v.rows[0].likelihood_ratio.is_some());
    }

    #[test]
    fn text_likelier_under_one_model_than_the_other_counts_as_evidence() {
        let models = vec!["a".to_string(), "b".to_string()];
        let row = |detector: f64, per_byte: f64| ModelScore {
            mean_logprob: detector,
            per_byte,
            ..ModelScore::default()
        };
        // Human rows: about as likely under both. The last row looks human to both detectors, but is far
        // likelier per byte under a than under b.
        let jitter = [0.0, 0.1, -0.1, 0.05];
        let mut a: Vec<ModelScore> = jitter.iter().map(|j| row(-3.0 + j, -0.8 + j)).collect();
        let mut b: Vec<ModelScore> = jitter
            .iter()
            .map(|j| row(-3.0 - j, -0.8 + j / 2.0))
            .collect();
        a.push(row(-3.0, -0.4));
        b.push(row(-3.0, -0.9));
        let mut labels: Vec<Option<String>> = vec![Some("human".into()); 4];
        labels.push(None);
        let v = verdicts(&models, &[a.clone(), b.clone()], &labels, 0.0);
        assert_eq!(v.contrast_reference.as_ref().map(Vec::len), Some(2));
        assert_eq!(v.rows[4].attributed, "a");
        let highest_human = v.rows[..4].iter().map(|r| r.score).fold(f64::MIN, f64::max);
        assert!(v.rows[4].score > highest_human + 3.0, "{:?}", v.rows);
        // One model: no contrast, the detector alone.
        let alone = verdicts(&models[..1], &[a], &labels, 0.0);
        assert!(alone.contrast_reference.is_none());
        assert!(alone.rows[4].score < 2.0);
    }

    #[test]
    fn the_curvature_is_the_detector_where_it_is_known() {
        let s = ModelScore {
            mean_logprob: -3.0,
            curvature: Some(1.5),
            ..ModelScore::default()
        };
        assert_eq!(s.detector(), 1.5);
        assert_eq!(score(-3.0).detector(), -3.0);
    }

    #[test]
    fn every_other_labeled_row_is_held_out_and_checks_the_threshold() {
        let models = vec!["a".to_string()];
        // Eight human rows at -3 and below, eight model rows near -1, a ninth model row that looks human.
        let mut a: Vec<ModelScore> = (0..8).map(|k| score(-3.0 - 0.05 * k as f64)).collect();
        a.extend((0..8).map(|k| score(-1.0 - 0.05 * k as f64)));
        a.push(score(-3.5));
        a.push(score(-2.0));
        let mut labels: Vec<Option<String>> = vec![Some("human".into()); 8];
        labels.extend(vec![Some("a".to_string()); 9]);
        labels.push(None);
        let v = verdicts(&models, &[a], &labels, 0.0);
        let fitted: Vec<Option<bool>> = v.rows.iter().map(|r| r.fitted).collect();
        // Alternating within each label, in input order; the unlabeled row is neither.
        assert_eq!(
            &fitted[..4],
            &[Some(true), Some(false), Some(true), Some(false)]
        );
        assert_eq!(fitted[8], Some(true));
        assert_eq!(
            fitted[16],
            Some(true),
            "the ninth model row is the fifth fitted one"
        );
        assert_eq!(fitted[17], None);
        let t = v.threshold.unwrap();
        assert_eq!((t.fitted.human_rows, t.fitted.model_rows), (4, 5));
        // The one human-looking model row was fitted: it is missed there, and the held-out rows are all right.
        assert_eq!(t.fitted.true_positive_rate, 0.8);
        let held = t.held_out.unwrap();
        assert_eq!((held.human_rows, held.model_rows), (4, 4));
        assert_eq!(held.true_positive_rate, 1.0);
        assert_eq!(held.false_positive_rate, 0.0);
        // A held-out human row above every fitted one is a false positive the fitted rows cannot show.
        let mut a: Vec<ModelScore> = (0..8).map(|k| score(-3.0 + 0.05 * k as f64)).collect();
        a.extend((0..10).map(|_| score(-1.0)));
        let v = verdicts(&models, &[a], &labels, 0.0);
        let t = v.threshold.unwrap();
        assert_eq!(t.fitted.false_positive_rate, 0.0);
        assert_eq!(t.held_out.unwrap().false_positive_rate, 0.25);
    }
}
