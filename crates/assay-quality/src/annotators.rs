//! Per-annotator scores: accuracy on gold items, agreement with peers, Dawid-Skene accuracy, speed, and a flag for
//! annotators far below their peers.
//!
//! The flag compares each annotator's accuracy with the median of their peers' and flags those more than
//! `mad_threshold` median absolute deviations below it (robust to a few bad annotators pulling the mean down).
//! Accuracy on gold items is used when at least three annotators have `min_items` gold answers; otherwise the
//! Dawid-Skene estimate, when given, over annotators with `min_items` answers; otherwise nobody is flagged.
//!
//! ```
//! use assay_quality::aggregation::Answer;
//! use assay_quality::annotators::{score_annotators, AnnotatorInput, AnnotatorOptions};
//!
//! let answers = [Answer::new(0, 0, 1), Answer::new(0, 1, 1), Answer::new(1, 0, 0), Answer::new(1, 1, 1)];
//! let gold = [Some(1), Some(0)];
//! let input = AnnotatorInput { gold: &gold, ..AnnotatorInput::new(&answers, 2, 2, 2) };
//! let report = score_annotators(&input, &AnnotatorOptions::default())?;
//! assert_eq!(report.scores[0].gold_accuracy, Some(1.0));
//! assert_eq!(report.scores[1].gold_accuracy, Some(0.5));
//! # Ok::<(), assay_quality::Error>(())
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::aggregation::{Answer, DawidSkene};
use crate::agreement::{cohen_kappa, ContingencyTable, KappaWeights};
use crate::{Error, Result};

/// What [`score_annotators`] works from. Build it with [`AnnotatorInput::new`] and set the optional parts.
#[derive(Debug, Clone, Copy)]
pub struct AnnotatorInput<'a> {
    /// All answers.
    pub answers: &'a [Answer],
    /// Number of items.
    pub items: usize,
    /// Number of annotators.
    pub annotators: usize,
    /// Number of classes.
    pub classes: usize,
    /// Per item, its gold label if known; empty when there is no gold at all.
    pub gold: &'a [Option<usize>],
    /// Per answer (parallel to `answers`), the seconds it took if known; empty when unknown.
    pub seconds: &'a [Option<f64>],
    /// A Dawid-Skene fit of the same answers, for its accuracy estimates.
    pub dawid_skene: Option<&'a DawidSkene>,
}

impl<'a> AnnotatorInput<'a> {
    /// Input with answers only: no gold, no times, no Dawid-Skene fit.
    pub fn new(answers: &'a [Answer], items: usize, annotators: usize, classes: usize) -> Self {
        Self {
            answers,
            items,
            annotators,
            classes,
            gold: &[],
            seconds: &[],
            dawid_skene: None,
        }
    }
}

/// Settings for [`score_annotators`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AnnotatorOptions {
    /// An annotator needs this many gold answers (or answers, for the Dawid-Skene basis) to be judged.
    pub min_items: usize,
    /// Flag annotators more than this many median absolute deviations below the median.
    pub mad_threshold: f64,
    /// The cutoff is at least this far below the median, so a tight group (MAD near 0) does not flag an annotator
    /// for a hair's difference.
    pub min_gap: f64,
    /// Two annotators' kappa counts towards their peer agreement only when they share this many items.
    pub min_shared_items: usize,
}

impl Default for AnnotatorOptions {
    fn default() -> Self {
        Self {
            min_items: 20,
            mad_threshold: 2.0,
            min_gap: 0.05,
            min_shared_items: 10,
        }
    }
}

/// Which accuracy the flag was based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagBasis {
    /// Accuracy on gold items.
    Gold,
    /// Dawid-Skene's estimated accuracy.
    DawidSkene,
}

/// One annotator's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotatorScore {
    /// Annotator index.
    pub annotator: usize,
    /// Number of answers given.
    pub answers: usize,
    /// Number of answers given on gold items.
    pub gold_answers: usize,
    /// Share of gold answers equal to the gold label; `None` without gold answers.
    pub gold_accuracy: Option<f64>,
    /// Mean Cohen's kappa with each peer sharing at least `min_shared_items` items (on those items), over the
    /// peers where kappa is defined; `None` when there is no such peer.
    pub peer_kappa: Option<f64>,
    /// Number of peers in `peer_kappa`.
    pub peers: usize,
    /// Dawid-Skene's estimated accuracy, when a fit was given.
    pub dawid_skene_accuracy: Option<f64>,
    /// Mean seconds per answer over answers with a time.
    pub mean_seconds: Option<f64>,
    /// Whether the annotator is far below their peers.
    pub flagged: bool,
}

/// Scores of every annotator, and how the flag was set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotatorReport {
    /// One entry per annotator, by index.
    pub scores: Vec<AnnotatorScore>,
    /// The accuracy the flag used; `None` when too few annotators could be judged.
    pub flag_basis: Option<FlagBasis>,
    /// Median accuracy of the judged annotators.
    pub median: Option<f64>,
    /// Median absolute deviation of their accuracies.
    pub mad: Option<f64>,
    /// Annotators judged with accuracy below this are flagged: `median - max(mad_threshold * mad, min_gap)`.
    pub cutoff: Option<f64>,
}

/// Scores every annotator; see the module documentation for the flag.
pub fn score_annotators(
    input: &AnnotatorInput<'_>,
    options: &AnnotatorOptions,
) -> Result<AnnotatorReport> {
    let AnnotatorInput {
        answers,
        items,
        annotators,
        classes,
        gold,
        seconds,
        dawid_skene,
    } = *input;
    if !gold.is_empty() && gold.len() != items {
        return Err(Error::InvalidInput(format!(
            "{} gold entries for {items} items",
            gold.len()
        )));
    }
    if !seconds.is_empty() && seconds.len() != answers.len() {
        return Err(Error::InvalidInput(format!(
            "{} times for {} answers",
            seconds.len(),
            answers.len()
        )));
    }
    if let Some(ds) = dawid_skene {
        if ds.annotator_accuracy.len() != annotators {
            return Err(Error::InvalidInput(format!(
                "the Dawid-Skene fit has {} annotators, not {annotators}",
                ds.annotator_accuracy.len()
            )));
        }
    }
    for (i, a) in answers.iter().enumerate() {
        if a.item >= items || a.annotator >= annotators || a.label >= classes {
            return Err(Error::InvalidInput(format!(
                "answer {i} (item {}, annotator {}, label {}) is outside {items} items, {annotators} annotators, \
                 {classes} classes",
                a.item, a.annotator, a.label
            )));
        }
    }
    if let Some((i, g)) = gold
        .iter()
        .enumerate()
        .find(|(_, g)| g.is_some_and(|g| g >= classes))
    {
        return Err(Error::InvalidInput(format!(
            "gold label {g:?} of item {i} is not below {classes}"
        )));
    }

    let mut count = vec![0usize; annotators];
    let mut gold_n = vec![0usize; annotators];
    let mut gold_right = vec![0usize; annotators];
    let mut secs = vec![(0.0, 0usize); annotators];
    for (i, a) in answers.iter().enumerate() {
        count[a.annotator] += 1;
        if let Some(Some(g)) = gold.get(a.item) {
            gold_n[a.annotator] += 1;
            gold_right[a.annotator] += usize::from(*g == a.label);
        }
        if let Some(Some(s)) = seconds.get(i) {
            if s.is_finite() {
                secs[a.annotator].0 += s;
                secs[a.annotator].1 += 1;
            }
        }
    }
    let (peer_kappa, peers) = peer_kappas(
        answers,
        items,
        annotators,
        classes,
        options.min_shared_items,
    );

    let mut scores: Vec<AnnotatorScore> = (0..annotators)
        .map(|j| AnnotatorScore {
            annotator: j,
            answers: count[j],
            gold_answers: gold_n[j],
            gold_accuracy: (gold_n[j] > 0).then(|| gold_right[j] as f64 / gold_n[j] as f64),
            peer_kappa: peer_kappa[j],
            peers: peers[j],
            dawid_skene_accuracy: dawid_skene.and_then(|ds| ds.annotator_accuracy[j]),
            mean_seconds: (secs[j].1 > 0).then(|| secs[j].0 / secs[j].1 as f64),
            flagged: false,
        })
        .collect();

    let judged = |basis: FlagBasis| -> Vec<(usize, f64)> {
        scores
            .iter()
            .filter_map(|s| match basis {
                FlagBasis::Gold if s.gold_answers >= options.min_items => {
                    s.gold_accuracy.map(|a| (s.annotator, a))
                }
                FlagBasis::DawidSkene if s.answers >= options.min_items => {
                    s.dawid_skene_accuracy.map(|a| (s.annotator, a))
                }
                _ => None,
            })
            .collect()
    };
    let mut report = AnnotatorReport {
        scores: Vec::new(),
        flag_basis: None,
        median: None,
        mad: None,
        cutoff: None,
    };
    for basis in [FlagBasis::Gold, FlagBasis::DawidSkene] {
        let pool = judged(basis);
        if pool.len() < 3 {
            continue;
        }
        let mut xs: Vec<f64> = pool.iter().map(|&(_, a)| a).collect();
        let med = median(&mut xs);
        let mut dev: Vec<f64> = xs.iter().map(|x| (x - med).abs()).collect();
        let mad = median(&mut dev);
        let cutoff = med - (options.mad_threshold * mad).max(options.min_gap);
        for &(j, a) in &pool {
            scores[j].flagged = a < cutoff;
        }
        report.flag_basis = Some(basis);
        report.median = Some(med);
        report.mad = Some(mad);
        report.cutoff = Some(cutoff);
        break;
    }
    report.scores = scores;
    Ok(report)
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Per annotator, the mean pairwise Cohen's kappa over peers sharing at least `min_shared` items, and how many
/// peers that was. Uses each annotator's first answer on an item.
fn peer_kappas(
    answers: &[Answer],
    items: usize,
    annotators: usize,
    classes: usize,
    min_shared: usize,
) -> (Vec<Option<f64>>, Vec<usize>) {
    let mut by_item: Vec<Vec<(usize, usize)>> = vec![Vec::new(); items];
    for a in answers {
        let list = &mut by_item[a.item];
        if !list.iter().any(|&(j, _)| j == a.annotator) {
            list.push((a.annotator, a.label));
        }
    }
    let mut tables: HashMap<(usize, usize), ContingencyTable> = HashMap::new();
    for list in &by_item {
        for (x, &(a, la)) in list.iter().enumerate() {
            for &(b, lb) in &list[x + 1..] {
                let (key, pair) = if a < b {
                    ((a, b), (la, lb))
                } else {
                    ((b, a), (lb, la))
                };
                let table = tables
                    .entry(key)
                    .or_insert_with(|| ContingencyTable::zeros(classes));
                // Labels were checked against `classes` by the caller.
                let _ = table.add(pair.0, pair.1);
            }
        }
    }
    let mut sum = vec![0.0; annotators];
    let mut n = vec![0usize; annotators];
    for ((a, b), table) in &tables {
        if table.total() < min_shared as f64 {
            continue;
        }
        if let Ok(k) = cohen_kappa(table, KappaWeights::Unweighted) {
            sum[*a] += k;
            n[*a] += 1;
            sum[*b] += k;
            n[*b] += 1;
        }
    }
    let mean = sum
        .iter()
        .zip(&n)
        .map(|(&s, &c)| (c > 0).then(|| s / c as f64))
        .collect();
    (mean, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::{dawid_skene, DawidSkeneOptions};

    /// Five annotators label 40 items with gold; four are right on all but 1-3 items, one is wrong on half.
    fn crowd() -> (Vec<Answer>, Vec<Option<usize>>) {
        let gold: Vec<Option<usize>> = (0..40).map(|i| Some(i % 2)).collect();
        let mut answers = Vec::new();
        for i in 0..40 {
            let t = i % 2;
            for j in 0..5 {
                let wrong = match j {
                    4 => i % 2 == 0,
                    _ => i % 20 == j,
                };
                answers.push(Answer::new(i, j, if wrong { 1 - t } else { t }));
            }
        }
        (answers, gold)
    }

    #[test]
    fn the_annotator_far_below_peers_on_gold_is_flagged() {
        let (answers, gold) = crowd();
        let seconds: Vec<Option<f64>> = answers
            .iter()
            .map(|a| Some(if a.annotator == 4 { 2.0 } else { 10.0 }))
            .collect();
        let input = AnnotatorInput {
            gold: &gold,
            seconds: &seconds,
            ..AnnotatorInput::new(&answers, 40, 5, 2)
        };
        let report = score_annotators(&input, &AnnotatorOptions::default()).unwrap();
        assert_eq!(report.flag_basis, Some(FlagBasis::Gold));
        let flagged: Vec<usize> = report
            .scores
            .iter()
            .filter(|s| s.flagged)
            .map(|s| s.annotator)
            .collect();
        assert_eq!(flagged, vec![4]);
        // Annotators 1..3 each miss 2 of 40 (items j and 20 + j); annotator 0 misses items 0 and 20.
        assert_eq!(report.scores[1].gold_accuracy, Some(38.0 / 40.0));
        assert_eq!(report.scores[4].gold_accuracy, Some(0.5));
        assert_eq!(report.scores[4].mean_seconds, Some(2.0));
        // The bad annotator agrees with nobody beyond chance; the good ones agree well with each other.
        assert!(report.scores[4].peer_kappa.unwrap() < 0.2);
        assert!(report.scores[0].peer_kappa.unwrap() > 0.5);
        assert_eq!(report.scores[0].peers, 4);
    }

    #[test]
    fn without_gold_the_flag_uses_dawid_skene() {
        let (answers, _) = crowd();
        let ds = dawid_skene(&answers, 40, 5, 2, &DawidSkeneOptions::default()).unwrap();
        let input = AnnotatorInput {
            dawid_skene: Some(&ds),
            ..AnnotatorInput::new(&answers, 40, 5, 2)
        };
        let report = score_annotators(&input, &AnnotatorOptions::default()).unwrap();
        assert_eq!(report.flag_basis, Some(FlagBasis::DawidSkene));
        assert!(report.scores[4].flagged);
        assert_eq!(report.scores.iter().filter(|s| s.flagged).count(), 1);
    }

    #[test]
    fn nobody_is_flagged_when_too_few_can_be_judged() {
        let (answers, gold) = crowd();
        let input = AnnotatorInput {
            gold: &gold,
            ..AnnotatorInput::new(&answers, 40, 5, 2)
        };
        let options = AnnotatorOptions {
            min_items: 41,
            ..AnnotatorOptions::default()
        };
        let report = score_annotators(&input, &options).unwrap();
        assert_eq!(report.flag_basis, None);
        assert!(report.scores.iter().all(|s| !s.flagged));
    }

    #[test]
    fn mismatched_lengths_are_rejected() {
        let (answers, _) = crowd();
        let input = AnnotatorInput {
            gold: &[Some(0)],
            ..AnnotatorInput::new(&answers, 40, 5, 2)
        };
        assert!(score_annotators(&input, &AnnotatorOptions::default()).is_err());
    }
}
