//! The quality gate of a generate task (`[gate]`): which generated rows are kept. Checks run in order and a row
//! dropped by one keeps that reason and is not checked further:
//!
//! 1. rules ([`rule_reason`]): empty or too short, truncated at `max-tokens`, a refusal, repeated word n-grams;
//! 2. near-duplicates ([`Shingles`]): Jaccard similarity of word-shingle sets against the seed rows' texts and
//!    against every response kept before it (an exact all-pairs comparison, fine for the thousands of rows a
//!    generation run makes; the audit's MinHash index, issue 13, had not landed when this was written);
//! 3. the judge: a `rate` task (the label pipeline itself, so resumable and cached like any labels) over the rows
//!    still in, keeping those whose expected score reaches `min-score`, or the best `top-share` of them.
//!
//! Kept rows go to one file, dropped rows with an `assay_gate` column (`check`, `reason`) to another; nothing is
//! deleted from the store (the responses stay as the generate task's annotations, the judge's as its labels).

use std::collections::HashSet;
use std::path::PathBuf;

use assay_core::generate::{DedupSpec, GateSpec, RuleSpec};
use assay_core::{TaskKind, TaskSpec};
use serde_json::{json, Map, Value};

use crate::generate::GENERATION_COLUMN;
use crate::run::{self, Context, LabelJob, Outcome};
use crate::{Backend, Error, Result};

/// Phrases that open or make a refusal, lower-case, matched anywhere in the first 200 characters.
const REFUSALS: &[&str] = &[
    "i'm sorry, but i can",
    "i am sorry, but i can",
    "i'm sorry, i can",
    "sorry, but i can't",
    "i cannot help with",
    "i can't help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm unable to",
    "i am unable to",
    "as an ai language model",
    "as an ai, i",
    "i'm not able to provide",
    "i cannot provide",
    "i can't provide",
];

/// Why the rules drop `response`, or `None` when they keep it. `truncated`: the model hit `max-tokens`.
pub fn rule_reason(rules: &RuleSpec, response: &str, truncated: bool) -> Option<String> {
    let chars = response.chars().filter(|c| !c.is_whitespace()).count();
    if chars == 0 {
        return Some("empty".into());
    }
    if chars < rules.min_chars {
        return Some(format!(
            "too short: {chars} characters, fewer than {}",
            rules.min_chars
        ));
    }
    if rules.drop_truncated && truncated {
        return Some("truncated: reached max-tokens before the model ended it".into());
    }
    if rules.drop_refusals {
        let head: String = response
            .chars()
            .take(200)
            .collect::<String>()
            .to_lowercase()
            .replace('’', "'");
        if let Some(phrase) = REFUSALS.iter().find(|p| head.contains(*p)) {
            return Some(format!("refusal: \"{phrase}\""));
        }
    }
    let share = repeated_ngram_share(response, rules.repeat_ngram);
    if share > rules.max_repeated_share {
        return Some(format!(
            "repetitive: {:.0}% of its word {}-grams repeat (more than {:.0}%)",
            share * 100.0,
            rules.repeat_ngram,
            rules.max_repeated_share * 100.0
        ));
    }
    None
}

/// Lower-case words: letters and digits, everything else separates.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The share of a text's word n-grams that are a repeat of an earlier one (0 for texts shorter than n words).
pub fn repeated_ngram_share(text: &str, n: usize) -> f64 {
    let words = words(text);
    if words.len() < n || n == 0 {
        return 0.0;
    }
    let grams: Vec<&[String]> = words.windows(n).collect();
    let mut seen = HashSet::new();
    let repeats = grams.iter().filter(|g| !seen.insert(**g)).count();
    repeats as f64 / grams.len() as f64
}

/// A text's set of word shingles (hashed), for Jaccard similarity.
#[derive(Debug, Clone)]
pub struct Shingles(HashSet<u64>);

impl Shingles {
    /// The `size`-word shingles of `text`; a text shorter than `size` words is one shingle of all its words.
    pub fn of(text: &str, size: usize) -> Self {
        use std::hash::{Hash, Hasher};
        let words = words(text);
        let hash = |gram: &[String]| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            gram.hash(&mut h);
            h.finish()
        };
        let set = if words.len() < size {
            if words.is_empty() {
                HashSet::new()
            } else {
                std::iter::once(hash(&words)).collect()
            }
        } else {
            words.windows(size).map(hash).collect()
        };
        Self(set)
    }

    /// |A ∩ B| / |A ∪ B|; 0 when both are empty.
    pub fn jaccard(&self, other: &Self) -> f64 {
        let union = self.0.union(&other.0).count();
        if union == 0 {
            return 0.0;
        }
        self.0.intersection(&other.0).count() as f64 / union as f64
    }
}

/// One gate run.
#[derive(Debug, Clone)]
pub struct GateJob {
    /// The gate section.
    pub gate: GateSpec,
    /// The generated rows (the generation stage's output).
    pub generated: PathBuf,
    /// The seed rows, for near-duplicates against them.
    pub seeds: PathBuf,
    /// Column of the generated rows holding the response.
    pub response_column: String,
    /// Where kept rows go.
    pub kept: PathBuf,
    /// Where dropped rows go, with their reasons.
    pub dropped: PathBuf,
    /// CPU threads for the judge's model.
    pub threads: usize,
    /// `$ASSAY_HOME`, for the judge's model.
    pub models_home: PathBuf,
}

impl GateJob {
    /// Where the judge's labeled rows go: beside the kept file.
    pub fn judged_path(&self) -> PathBuf {
        sibling(&self.kept, "judged")
    }

    fn judge_input_path(&self) -> PathBuf {
        sibling(&self.kept, "judge-input")
    }
}

/// `out/x.kept.jsonl` → `out/x.kept.NAME.jsonl`.
fn sibling(path: &std::path::Path, name: &str) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("gate");
    path.with_file_name(format!("{stem}.{name}.jsonl"))
}

/// What the gate did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GateSummary {
    pub rows: u64,
    pub kept: u64,
    pub dropped_by_rules: u64,
    pub dropped_as_duplicates: u64,
    pub dropped_by_judge: u64,
    /// Rows the judge could not rate (kept out, with the judge's reason).
    pub judge_failures: u64,
    /// Reasons and how many rows each dropped, most frequent first.
    pub reasons: Vec<(String, u64)>,
    pub kept_output: String,
    pub dropped_output: String,
}

/// A generated row on its way through the gate.
struct Candidate {
    values: Map<String, Value>,
    response: String,
    verdict: Option<(&'static str, String)>,
    score: Option<f64>,
}

/// Run the gate over `job.generated`; `cx` runs the judge's label task.
pub fn run(job: &GateJob, cx: &Context<'_>) -> Result<GateSummary> {
    let mut candidates = Vec::new();
    for row in assay_io::open_dataset(&job.generated)? {
        let row = row.map_err(|e| {
            Error::Internal(format!(
                "the generated file {} has an unreadable row: {e}",
                job.generated.display()
            ))
        })?;
        let response = row
            .values
            .get(&job.response_column)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        candidates.push(Candidate {
            values: row.values,
            response,
            verdict: None,
            score: None,
        });
    }
    // 1. Rules.
    for c in &mut candidates {
        let truncated = c
            .values
            .get(GENERATION_COLUMN)
            .and_then(|g| g.get("truncated"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(reason) = rule_reason(&job.gate.rules, &c.response, truncated) {
            c.verdict = Some(("rules", reason));
        }
    }
    // 2. Near-duplicates.
    if job.gate.dedup.enabled {
        dedup(&job.gate.dedup, &job.seeds, &mut candidates)?;
    }
    // 3. The judge.
    if let Some(judge) = &job.gate.judge {
        let spec = TaskSpec::from_path(&judge.task)?;
        if spec.kind != TaskKind::Rate || spec.is_rated_pair() {
            return Err(Error::usage(
                format!(
                    "`gate.judge.task` {} is a {} task; the gate rates one response per row",
                    judge.task.display(),
                    spec.kind.as_str()
                ),
                "point `gate.judge.task` at a `type = \"rate\"` task without `response-2`",
            ));
        }
        let alive: Vec<usize> = (0..candidates.len())
            .filter(|&i| candidates[i].verdict.is_none())
            .collect();
        let rows: Vec<Map<String, Value>> = alive
            .iter()
            .map(|&i| candidates[i].values.clone())
            .collect();
        assay_io::write_jsonl(&job.judge_input_path(), &rows)?;
        let backend = Backend::open(&spec, &job.models_home, false)?;
        let label_job = LabelJob {
            spec,
            input: job.judge_input_path(),
            output: job.judged_path(),
            limit: None,
            threads: job.threads,
            shard: None,
            models_home: job.models_home.clone(),
        };
        let Outcome::Labeled(_) = run::run(&label_job, &backend, cx, false)? else {
            return Err(Error::Internal(
                "the judge planned instead of labeling".into(),
            ));
        };
        let judged: Vec<Map<String, Value>> = assay_io::open_dataset(&job.judged_path())?
            .flatten()
            .map(|r| r.values)
            .collect();
        let column = crate::human::free_column_name(
            &rows
                .first()
                .map(|r| r.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default(),
        );
        let mut scored = Vec::new();
        for (position, &i) in alive.iter().enumerate() {
            let assay = judged.get(position).and_then(|r| r.get(&column));
            match assay
                .and_then(|a| a.pointer("/rating/expected"))
                .and_then(Value::as_f64)
            {
                Some(score) => {
                    candidates[i].score = Some(score);
                    scored.push((i, score));
                }
                None => {
                    let reason = assay
                        .and_then(|a| a.get("error"))
                        .and_then(Value::as_str)
                        .unwrap_or("no rating");
                    candidates[i].verdict = Some(("judge", format!("not rated: {reason}")));
                }
            }
        }
        let keep: HashSet<usize> = match (judge.min_score, judge.top_share) {
            (Some(min), _) => scored
                .iter()
                .filter(|(_, s)| *s >= min)
                .map(|(i, _)| *i)
                .collect(),
            (None, Some(share)) => {
                let mut ranked = scored.clone();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let count = (share * ranked.len() as f64).round() as usize;
                ranked.iter().take(count).map(|(i, _)| *i).collect()
            }
            (None, None) => return Err(Error::Internal("a judge with no keep rule".into())),
        };
        let cutoff = match (judge.min_score, judge.top_share) {
            (Some(min), _) => format!("below the minimum {min}"),
            (None, Some(share)) => format!("not in the best {:.0}%", share * 100.0),
            _ => String::new(),
        };
        for (i, score) in scored {
            if !keep.contains(&i) {
                candidates[i].verdict = Some(("judge", format!("judge score {score:.2} {cutoff}")));
            }
        }
    }
    write(job, candidates)
}

/// Drop rows whose response is a near-duplicate of a seed text or of a response kept before it.
fn dedup(spec: &DedupSpec, seeds: &std::path::Path, candidates: &mut [Candidate]) -> Result<()> {
    let mut seed_texts: Vec<(u64, Shingles)> = Vec::new();
    if !spec.seed_columns.is_empty() {
        for row in assay_io::open_dataset(seeds)?.flatten() {
            for column in &spec.seed_columns {
                if let Some(text) = row.values.get(column).and_then(Value::as_str) {
                    seed_texts.push((row.index, Shingles::of(text, spec.shingle)));
                }
            }
        }
    }
    let mut kept: Vec<(usize, Shingles)> = Vec::new();
    for (i, c) in candidates.iter_mut().enumerate() {
        if c.verdict.is_some() {
            continue;
        }
        let shingles = Shingles::of(&c.response, spec.shingle);
        let closest =
            |pool: &mut dyn Iterator<Item = (u64, f64)>| pool.max_by(|a, b| a.1.total_cmp(&b.1));
        let seed = closest(
            &mut seed_texts
                .iter()
                .map(|(row, s)| (*row, s.jaccard(&shingles))),
        );
        if let Some((row, similarity)) = seed.filter(|(_, s)| *s >= spec.threshold) {
            c.verdict = Some((
                "dedup",
                format!(
                    "near-duplicate of seed row {} (Jaccard {similarity:.2})",
                    row + 1
                ),
            ));
            continue;
        }
        let earlier = closest(&mut kept.iter().map(|(j, s)| (*j as u64, s.jaccard(&shingles))));
        if let Some((row, similarity)) = earlier.filter(|(_, s)| *s >= spec.threshold) {
            c.verdict = Some((
                "dedup",
                format!(
                    "near-duplicate of generated row {} (Jaccard {similarity:.2})",
                    row + 1
                ),
            ));
            continue;
        }
        kept.push((i, shingles));
    }
    Ok(())
}

fn write(job: &GateJob, candidates: Vec<Candidate>) -> Result<GateSummary> {
    let mut summary = GateSummary {
        rows: candidates.len() as u64,
        kept_output: job.kept.display().to_string(),
        dropped_output: job.dropped.display().to_string(),
        ..Default::default()
    };
    let mut kept_writer = assay_io::OutputWriter::create(&job.kept, Default::default())?;
    let mut dropped_writer = assay_io::OutputWriter::create(&job.dropped, Default::default())?;
    let mut reasons: std::collections::BTreeMap<String, u64> = Default::default();
    for (index, mut c) in candidates.into_iter().enumerate() {
        match c.verdict {
            None => {
                c.values.insert(
                    "assay_gate".into(),
                    json!({"kept": true, "row": index, "score": c.score}),
                );
                kept_writer.write_row(&c.values)?;
                summary.kept += 1;
            }
            Some((check, reason)) => {
                match check {
                    "rules" => summary.dropped_by_rules += 1,
                    "dedup" => summary.dropped_as_duplicates += 1,
                    _ if reason.starts_with("not rated") => summary.judge_failures += 1,
                    _ => summary.dropped_by_judge += 1,
                }
                // The reason's kind, without its numbers, is what the summary counts.
                let kind = reason.split([':', '(']).next().unwrap_or(&reason).trim();
                let kind = if check == "judge" && !reason.starts_with("not rated") {
                    "judge score too low"
                } else {
                    kind
                };
                *reasons.entry(format!("{check}: {kind}")).or_default() += 1;
                c.values.insert(
                    "assay_gate".into(),
                    json!({"kept": false, "row": index, "check": check, "reason": reason, "score": c.score}),
                );
                dropped_writer.write_row(&c.values)?;
            }
        }
    }
    kept_writer.finish()?;
    dropped_writer.finish()?;
    let mut reasons: Vec<(String, u64)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    summary.reasons = reasons;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_what_they_drop() {
        let rules = RuleSpec::default();
        assert_eq!(rule_reason(&rules, "  \n", false).as_deref(), Some("empty"));
        assert!(rule_reason(&rules, "Paris is the capital.", true)
            .unwrap()
            .starts_with("truncated"));
        assert!(
            rule_reason(&rules, "I'm sorry, but I can't help with that.", false)
                .unwrap()
                .starts_with("refusal")
        );
        assert!(
            rule_reason(&rules, "As an AI language model, I have no views.", false)
                .unwrap()
                .starts_with("refusal")
        );
        let looping = "the cat sat on the mat ".repeat(6);
        assert!(rule_reason(&rules, &looping, false)
            .unwrap()
            .starts_with("repetitive"));
        assert_eq!(
            rule_reason(&rules, "Paris is the capital of France.", false),
            None
        );
        let strict = RuleSpec {
            min_chars: 40,
            ..RuleSpec::default()
        };
        assert!(rule_reason(&strict, "Paris.", false)
            .unwrap()
            .starts_with("too short"));
    }

    #[test]
    fn repeated_share_counts_repeats_of_earlier_ngrams() {
        // "a b a b a b": bigrams ab ba ab ba ab, of which 3 repeat an earlier one.
        assert!((repeated_ngram_share("a b a b a b", 2) - 0.6).abs() < 1e-12);
        assert_eq!(repeated_ngram_share("one two three four", 2), 0.0);
        assert_eq!(repeated_ngram_share("one", 3), 0.0);
    }

    #[test]
    fn jaccard_of_word_shingles() {
        // Trigrams of "a b c d" are {abc, bcd}; of "a b c e" {abc, bce}: 1 shared of 3.
        let x = Shingles::of("a b c d", 3);
        let y = Shingles::of("A, b c e", 3);
        assert!((x.jaccard(&y) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(x.jaccard(&x), 1.0);
        assert_eq!(Shingles::of("", 3).jaccard(&Shingles::of("", 3)), 0.0);
    }
}
