//! `assay audit source`: was a text written by another model? Each text is scored as an "option" after its prompt
//! under each reference model (the same [`Scorer`] that labels: the log-probability of the text's tokens), giving
//! its mean log-likelihood per token and per byte. Text a model wrote is likely under that model (and under
//! models like it); people's text is less so.
//!
//! - With labeled rows (a column naming `human` or the model that wrote each row), every model's per-token score
//!   is standardised against the human rows (z-score), the combined score is the largest z, attribution is the
//!   model with the largest z, and the flag threshold is the smallest combined score that keeps the false
//!   positive rate on human rows at or under the target; the threshold and its FPR are reported.
//! - With two models, the per-byte log-likelihood ratio between them is reported too (per byte, so models with
//!   different tokenizers compare). This is not Binoculars' cross-perplexity (Hans et al. 2024), which needs both
//!   models' full next-token distributions over one vocabulary at every position; the Scorer returns sequence
//!   log-probabilities only, so that score is not built.
//! - With a prompt column and `greedy`, each embedded model also answers the prompt greedily and the row's text
//!   is compared with that answer by word 3-gram shingle Jaccard.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use assay_core::{
    ChatMessage, PromptFormat, PromptSpec, Role, ScoreBranch, ScoreRequest, TaskSpec,
};
use assay_llm::embedded::{ScorerOptions, Strategy};
use assay_llm::Scorer;
use serde::Serialize;

use crate::{Backend, Error, Result};

/// Texts scored per call.
const CHUNK: usize = 16;

/// One reference model, as given on the command line: a cached model's name, a GGUF path, or a served model as
/// `URL#MODEL` (an OpenAI-compatible `/v1` endpoint that returns prompt log-probabilities through `echo`).
pub fn open_reference(reference: &str, models_home: &Path) -> Result<Backend> {
    let model = if let Some((url, name)) = reference
        .split_once('#')
        .filter(|(u, _)| u.starts_with("http://") || u.starts_with("https://"))
    {
        format!(
            "name = {}\nendpoint = {}\nscoring = \"prompt-logprobs\"\n",
            toml_str(name),
            toml_str(url)
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
    /// Word 3-gram Jaccard between the text and this model's greedy answer to the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greedy_jaccard: Option<f64>,
}

/// What is done with the texts.
#[derive(Debug, Clone, Copy)]
pub struct SourceOptions {
    /// CPU threads (embedded models).
    pub threads: usize,
    /// Also generate each embedded model's greedy answer to the prompt and compare.
    pub greedy: bool,
    /// Tokens of the greedy answer.
    pub greedy_tokens: usize,
}

/// Score every text under one model; `progress` is told how many texts are done.
pub fn score_texts(
    backend: &Backend,
    texts: &[SourceText],
    options: SourceOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ModelScore>> {
    let probe = PromptSpec {
        messages: vec![ChatMessage {
            role: Role::User,
            content: assay_core::prompt::ITEM_SENTINEL.to_string(),
        }],
    };
    let (mut scorer, completion): (Box<dyn Scorer + '_>, bool) = match backend {
        Backend::Embedded(model) => {
            let scorer_options = ScorerOptions {
                format: PromptFormat::Chat,
                threads: options.threads,
                batch_tokens: 512,
                strategy: Strategy::CachedBatched,
            };
            let completion = model.effective_format(PromptFormat::Chat) == PromptFormat::Completion;
            (Box::new(model.scorer(&probe, scorer_options)?), completion)
        }
        Backend::Served(model) => (
            Box::new(model.scorer(
                Box::new(assay_llm::openai::MemoryCache::default()),
                Arc::new(AtomicBool::new(false)),
            )),
            false,
        ),
        Backend::Custom(_) => {
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
                    prompt: PromptSpec {
                        messages: vec![ChatMessage {
                            role: Role::User,
                            content: t.prompt.clone().unwrap_or_default(),
                        }],
                    },
                    // The completion layout ends in `Answer:`; the answer follows after a space.
                    options: vec![if completion {
                        format!(" {}", t.text)
                    } else {
                        t.text.clone()
                    }],
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
            let tokens = match backend {
                Backend::Embedded(model) => Some(
                    model
                        .tokenize(&t.text, false)
                        .len()
                        .saturating_sub(model.tokenize("", false).len())
                        .max(1),
                ),
                _ => None,
            };
            let bytes = t.text.len().max(1) as f64;
            out.push(ModelScore {
                logprob,
                tokens,
                mean_logprob: logprob / tokens.map_or(bytes, |n| n as f64),
                per_byte: logprob / bytes,
                greedy_jaccard: None,
            });
        }
        progress(out.len());
    }
    drop(scorer);
    if let (true, Backend::Embedded(model)) = (options.greedy, backend) {
        for (t, s) in texts.iter().zip(out.iter_mut()) {
            let Some(prompt) = &t.prompt else { continue };
            let spec = PromptSpec {
                messages: vec![ChatMessage {
                    role: Role::User,
                    content: prompt.clone(),
                }],
            };
            let answer = model.generate(
                &spec,
                PromptFormat::Chat,
                options.greedy_tokens,
                options.threads,
            )?;
            s.greedy_jaccard = Some(shingle_jaccard(&t.text, &answer, 3));
        }
    }
    Ok(out)
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
    /// Combined score: with labeled rows the largest per-model z-score against human rows, else the largest mean
    /// log-likelihood per token. Higher: more likely written by a model.
    pub score: f64,
    /// With two models: per-byte log-likelihood under the first minus under the second.
    pub likelihood_ratio: Option<f64>,
    /// The model the text is attributed to (the one with the largest score).
    pub attributed: String,
    /// Flagged as model-written (only with a threshold chosen on labeled rows).
    pub flagged: Option<bool>,
}

/// The threshold chosen on labeled rows.
#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    /// Flag rows whose combined score is at least this.
    pub value: f64,
    /// Share of labeled human rows flagged at it.
    pub false_positive_rate: f64,
    /// Share of labeled model-written rows flagged at it.
    pub true_positive_rate: f64,
    /// Labeled human and model-written rows it was chosen on.
    pub human_rows: usize,
    /// Labeled model rows.
    pub model_rows: usize,
}

/// How each model's scores look on human rows: the reference of the z-scores.
#[derive(Debug, Clone, Serialize)]
pub struct HumanReference {
    /// Mean per-token log-likelihood of human rows.
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
}

/// Combine the models' scores into verdicts. `labels[i]`: `Some("human")`, `Some(model name)` or `None`
/// (unlabeled); `max_fpr`: the largest false-positive rate on human rows the threshold may have.
pub fn verdicts(
    models: &[String],
    scores: &[Vec<ModelScore>],
    labels: &[Option<String>],
    max_fpr: f64,
) -> Verdicts {
    let rows = scores.first().map_or(0, Vec::len);
    let human: Vec<usize> = (0..rows)
        .filter(|&i| labels.get(i).and_then(|l| l.as_deref()) == Some("human"))
        .collect();
    let reference: Option<Vec<HumanReference>> = (human.len() >= 2).then(|| {
        scores
            .iter()
            .map(|per_model| {
                let xs: Vec<f64> = human.iter().map(|&i| per_model[i].mean_logprob).collect();
                let mean = xs.iter().sum::<f64>() / xs.len() as f64;
                let var =
                    xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
                HumanReference {
                    mean,
                    sd: var.sqrt().max(1e-9),
                }
            })
            .collect()
    });
    let mut out: Vec<RowVerdict> = (0..rows)
        .map(|i| {
            let per: Vec<f64> = scores
                .iter()
                .enumerate()
                .map(|(m, s)| match &reference {
                    Some(r) => (s[i].mean_logprob - r[m].mean) / r[m].sd,
                    None => s[i].mean_logprob,
                })
                .collect();
            let (best, score) =
                per.iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |acc, (m, x)| if x > acc.1 { (m, x) } else { acc },
                    );
            RowVerdict {
                score,
                likelihood_ratio: (scores.len() == 2)
                    .then(|| scores[0][i].per_byte - scores[1][i].per_byte),
                attributed: models[best].clone(),
                flagged: None,
            }
        })
        .collect();
    let model_rows: Vec<usize> = (0..rows)
        .filter(|&i| {
            labels
                .get(i)
                .and_then(|l| l.as_deref())
                .is_some_and(|l| l != "human")
        })
        .collect();
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
        Threshold {
            value,
            false_positive_rate: rate(&human),
            true_positive_rate: rate(&model_rows),
            human_rows: human.len(),
            model_rows: model_rows.len(),
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
        assert_eq!(t.false_positive_rate, 0.0);
        assert_eq!(t.true_positive_rate, 1.0);
        assert_eq!(v.rows[3].attributed, "a");
        assert_eq!(v.rows[4].attributed, "b");
        assert_eq!(v.rows[3].flagged, Some(true));
        assert!(v.rows.iter().take(3).all(|r| r.flagged == Some(false)));
        assert!(v.rows[0].likelihood_ratio.is_some());
    }
}
