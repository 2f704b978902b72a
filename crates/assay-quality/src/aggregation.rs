//! Turning several people's answers into one label per item: majority vote with an explicit tie policy, and
//! Dawid and Skene's (1979) EM estimate of each annotator's confusion matrix and each item's posterior.
//!
//! Answers are sparse `(item, annotator, label)` triples: not every annotator labels every item, and an annotator
//! may answer an item more than once (each answer counts).
//!
//! ```
//! use assay_quality::aggregation::{dawid_skene, majority_vote, Answer, DawidSkeneOptions, TiePolicy};
//!
//! let answers = [
//!     Answer::new(0, 0, 1), Answer::new(0, 1, 1), Answer::new(0, 2, 0),
//!     Answer::new(1, 0, 0), Answer::new(1, 1, 0), Answer::new(1, 2, 0),
//! ];
//! let votes = majority_vote(&answers, 2, 2, TiePolicy::Report)?;
//! assert_eq!(votes[0].label, Some(1));
//! let ds = dawid_skene(&answers, 2, 3, 2, &DawidSkeneOptions::default())?;
//! assert_eq!(ds.labels, vec![Some(1), Some(0)]);
//! # Ok::<(), assay_quality::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One annotator's label for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Answer {
    /// Item index, `0..items`.
    pub item: usize,
    /// Annotator index, `0..annotators`.
    pub annotator: usize,
    /// Label code, `0..classes`.
    pub label: usize,
}

impl Answer {
    /// An answer: `annotator` gave `item` the label `label`.
    pub fn new(item: usize, annotator: usize, label: usize) -> Self {
        Self {
            item,
            annotator,
            label,
        }
    }
}

/// What majority vote does when several labels share the most votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TiePolicy {
    /// Leave the item without a label and report the tied labels.
    #[default]
    Report,
    /// Take the lowest tied code.
    Lowest,
    /// Take one of the tied labels at random; the same seed and input give the same choices.
    Random {
        /// Seed of the generator.
        seed: u64,
    },
}

/// The outcome of majority vote for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    /// The chosen label; `None` for an item with no answers, or a tie under [`TiePolicy::Report`].
    pub label: Option<usize>,
    /// The labels that shared the most votes when there was a tie (in increasing order), else empty.
    pub tied: Vec<usize>,
    /// Number of answers the item had.
    pub answers: usize,
    /// Share of the item's answers that went to the top label (0 for an item with no answers).
    pub support: f64,
}

fn check_answers(
    answers: &[Answer],
    items: usize,
    annotators: usize,
    classes: usize,
) -> Result<()> {
    if classes == 0 {
        return Err(Error::InvalidInput(
            "there must be at least one class".into(),
        ));
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
    Ok(())
}

/// Counts of each label per item, row-major `items x classes`.
fn vote_counts(answers: &[Answer], items: usize, classes: usize) -> Vec<u32> {
    let mut counts = vec![0u32; items * classes];
    for a in answers {
        counts[a.item * classes + a.label] += 1;
    }
    counts
}

/// Majority vote per item over `items` items and `classes` classes, resolving ties by `ties`.
pub fn majority_vote(
    answers: &[Answer],
    items: usize,
    classes: usize,
    ties: TiePolicy,
) -> Result<Vec<Vote>> {
    check_answers(answers, items, usize::MAX, classes)?;
    let counts = vote_counts(answers, items, classes);
    let mut rng = match ties {
        TiePolicy::Random { seed } => Some(SplitMix64(seed)),
        _ => None,
    };
    let votes = counts
        .chunks_exact(classes)
        .map(|row| {
            let total: u32 = row.iter().sum();
            let best = row.iter().copied().max().unwrap_or(0);
            if total == 0 {
                return Vote {
                    label: None,
                    tied: Vec::new(),
                    answers: 0,
                    support: 0.0,
                };
            }
            let top: Vec<usize> = (0..classes).filter(|&c| row[c] == best).collect();
            let support = f64::from(best) / f64::from(total);
            let answers = total as usize;
            if top.len() == 1 {
                return Vote {
                    label: Some(top[0]),
                    tied: Vec::new(),
                    answers,
                    support,
                };
            }
            let label = match (ties, rng.as_mut()) {
                (TiePolicy::Report, _) => None,
                (TiePolicy::Lowest, _) => Some(top[0]),
                (TiePolicy::Random { .. }, Some(rng)) => Some(top[rng.below(top.len())]),
                (TiePolicy::Random { .. }, None) => {
                    unreachable!("the generator exists for the random policy")
                }
            };
            Vote {
                label,
                tied: top,
                answers,
                support,
            }
        })
        .collect();
    Ok(votes)
}

/// A small deterministic generator (Steele, Lea and Flood 2014) so tie-breaking needs no dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-50 for the small `n` used here).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// Settings for [`dawid_skene`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DawidSkeneOptions {
    /// Stop after this many EM iterations.
    pub max_iterations: usize,
    /// Stop once no item's posterior moves by more than this between iterations.
    pub tolerance: f64,
    /// Pseudo-count added to every cell of every annotator's confusion matrix and to every class prior, so an
    /// annotator seen on few items keeps a non-zero chance of every answer.
    pub smoothing: f64,
}

impl Default for DawidSkeneOptions {
    fn default() -> Self {
        Self {
            max_iterations: 100,
            tolerance: 1e-6,
            smoothing: 0.01,
        }
    }
}

/// What [`dawid_skene`] estimated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DawidSkene {
    /// Number of classes `k`.
    pub classes: usize,
    /// Posterior over the true class per item, row-major `items x k`; an item with no answers gets the prior.
    pub posteriors: Vec<f64>,
    /// The most probable class per item (lowest code on an exact tie); `None` for an item with no answers.
    pub labels: Vec<Option<usize>>,
    /// Estimated prior of each true class.
    pub priors: Vec<f64>,
    /// Per annotator, a row-major `k x k` matrix: cell `(true, given)` is the probability the annotator answers
    /// `given` for an item whose true class is `true`. Rows sum to 1.
    pub confusion: Vec<Vec<f64>>,
    /// Per annotator, the expected share of their answers that are correct under the posteriors (the mean over
    /// their answers of the posterior of the label they gave); `None` for an annotator with no answers.
    pub annotator_accuracy: Vec<Option<f64>>,
    /// Log-likelihood of the answers under the final parameters.
    pub log_likelihood: f64,
    /// EM iterations run.
    pub iterations: usize,
    /// Whether the posteriors settled within the tolerance before `max_iterations`.
    pub converged: bool,
}

impl DawidSkene {
    /// The posterior over classes for one item.
    pub fn posterior(&self, item: usize) -> &[f64] {
        &self.posteriors[item * self.classes..(item + 1) * self.classes]
    }
}

/// Dawid and Skene's EM over `items` items, `annotators` annotators and `classes` classes.
///
/// Starts from the vote shares of each item (soft majority vote), then alternates the M-step (class priors and
/// per-annotator confusion matrices from the posteriors, plus `smoothing` pseudo-counts) and the E-step (each
/// item's posterior from the priors and the confusion rows of the answers it got).
pub fn dawid_skene(
    answers: &[Answer],
    items: usize,
    annotators: usize,
    classes: usize,
    options: &DawidSkeneOptions,
) -> Result<DawidSkene> {
    check_answers(answers, items, annotators, classes)?;
    if !options.smoothing.is_finite()
        || options.smoothing < 0.0
        || options.tolerance.is_nan()
        || options.tolerance < 0.0
    {
        return Err(Error::InvalidInput(
            "smoothing and tolerance must be non-negative".into(),
        ));
    }
    if answers.is_empty() {
        return Err(Error::NotEnoughData("no answers".into()));
    }
    let k = classes;
    // Answers grouped by item (CSR layout) so the E-step walks memory in order.
    let mut start = vec![0usize; items + 1];
    for a in answers {
        start[a.item + 1] += 1;
    }
    for i in 0..items {
        start[i + 1] += start[i];
    }
    let mut by_item = vec![(0usize, 0usize); answers.len()];
    let mut fill = start.clone();
    for a in answers {
        by_item[fill[a.item]] = (a.annotator, a.label);
        fill[a.item] += 1;
    }

    // Initial posteriors: vote shares.
    let counts = vote_counts(answers, items, k);
    let mut post = vec![0.0; items * k];
    for i in 0..items {
        let n = (start[i + 1] - start[i]) as f64;
        for c in 0..k {
            post[i * k + c] = if n > 0.0 {
                f64::from(counts[i * k + c]) / n
            } else {
                1.0 / k as f64
            };
        }
    }

    let s = options.smoothing;
    let mut priors = vec![0.0; k];
    let mut confusion = vec![vec![0.0; k * k]; annotators];
    let mut log_conf = vec![0.0; annotators * k * k];
    let mut log_prior = vec![0.0; k];
    let mut scratch = vec![0.0; k];
    let mut iterations = 0;
    let mut converged = false;
    let mut log_likelihood = f64::NEG_INFINITY;

    while iterations < options.max_iterations {
        iterations += 1;
        // M-step.
        priors.iter_mut().for_each(|p| *p = s);
        for i in (0..items).filter(|&i| start[i + 1] > start[i]) {
            for c in 0..k {
                priors[c] += post[i * k + c];
            }
        }
        normalize(&mut priors);
        for m in &mut confusion {
            m.iter_mut().for_each(|x| *x = s);
        }
        for i in 0..items {
            for &(j, l) in &by_item[start[i]..start[i + 1]] {
                let m = &mut confusion[j];
                for c in 0..k {
                    m[c * k + l] += post[i * k + c];
                }
            }
        }
        for (j, m) in confusion.iter_mut().enumerate() {
            for (c, row) in m.chunks_exact_mut(k).enumerate() {
                let total: f64 = row.iter().sum();
                for (l, x) in row.iter_mut().enumerate() {
                    // A row with no mass (no smoothing, class never attributed) stays uniform.
                    *x = if total > 0.0 {
                        *x / total
                    } else {
                        1.0 / k as f64
                    };
                    log_conf[(j * k + c) * k + l] = safe_ln(*x);
                }
            }
        }
        for (lp, &p) in log_prior.iter_mut().zip(&priors) {
            *lp = safe_ln(p);
        }

        // E-step.
        let mut max_change: f64 = 0.0;
        log_likelihood = 0.0;
        for i in 0..items {
            let row = &mut post[i * k..(i + 1) * k];
            if start[i + 1] == start[i] {
                row.copy_from_slice(&priors);
                continue;
            }
            scratch.copy_from_slice(&log_prior);
            for &(j, l) in &by_item[start[i]..start[i + 1]] {
                let base = j * k * k + l;
                for (c, x) in scratch.iter_mut().enumerate() {
                    *x += log_conf[base + c * k];
                }
            }
            let top = scratch.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut z = 0.0;
            for x in scratch.iter_mut() {
                *x = (*x - top).exp();
                z += *x;
            }
            log_likelihood += top + z.ln();
            for (p, x) in row.iter_mut().zip(&scratch) {
                let new = x / z;
                max_change = max_change.max((new - *p).abs());
                *p = new;
            }
        }
        if max_change <= options.tolerance {
            converged = true;
            break;
        }
    }

    let labels = (0..items)
        .map(|i| (start[i + 1] > start[i]).then(|| argmax(&post[i * k..(i + 1) * k])))
        .collect();
    let mut correct = vec![0.0; annotators];
    let mut given = vec![0usize; annotators];
    for a in answers {
        correct[a.annotator] += post[a.item * k + a.label];
        given[a.annotator] += 1;
    }
    let annotator_accuracy = correct
        .iter()
        .zip(&given)
        .map(|(&c, &n)| (n > 0).then(|| c / n as f64))
        .collect();
    Ok(DawidSkene {
        classes: k,
        posteriors: post,
        labels,
        priors,
        confusion,
        annotator_accuracy,
        log_likelihood,
        iterations,
        converged,
    })
}

fn normalize(xs: &mut [f64]) {
    let total: f64 = xs.iter().sum();
    if total > 0.0 {
        xs.iter_mut().for_each(|x| *x /= total);
    } else {
        let u = 1.0 / xs.len() as f64;
        xs.iter_mut().for_each(|x| *x = u);
    }
}

/// `ln(x)`, floored so a zero probability (no smoothing) does not poison sums with `-inf - -inf`.
fn safe_ln(x: f64) -> f64 {
    x.max(1e-300).ln()
}

/// Index of the largest value; the first one on a tie.
pub(crate) fn argmax(xs: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_vote_applies_each_tie_policy() {
        // Item 0: 2 votes for 1, 1 for 0. Item 1: tie between 0 and 2. Item 2: no answers.
        let answers = [
            Answer::new(0, 0, 1),
            Answer::new(0, 1, 1),
            Answer::new(0, 2, 0),
            Answer::new(1, 0, 2),
            Answer::new(1, 1, 0),
        ];
        let report = majority_vote(&answers, 3, 3, TiePolicy::Report).unwrap();
        assert_eq!(report[0].label, Some(1));
        assert!(report[0].tied.is_empty());
        assert!((report[0].support - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(report[1].label, None);
        assert_eq!(report[1].tied, vec![0, 2]);
        assert_eq!((report[2].label, report[2].answers), (None, 0));

        let lowest = majority_vote(&answers, 3, 3, TiePolicy::Lowest).unwrap();
        assert_eq!(lowest[1].label, Some(0));
        assert_eq!(lowest[1].tied, vec![0, 2]);
    }

    #[test]
    fn random_tie_breaking_is_reproducible_and_uses_every_tied_label() {
        // 200 items, each a 0-vs-1 tie.
        let answers: Vec<Answer> = (0..200)
            .flat_map(|i| [Answer::new(i, 0, 0), Answer::new(i, 1, 1)])
            .collect();
        let a = majority_vote(&answers, 200, 2, TiePolicy::Random { seed: 7 }).unwrap();
        let b = majority_vote(&answers, 200, 2, TiePolicy::Random { seed: 7 }).unwrap();
        assert_eq!(a, b);
        let ones = a.iter().filter(|v| v.label == Some(1)).count();
        // Binomial(200, 1/2): 60..140 holds with probability 1 - 1e-8.
        assert!(
            (60..140).contains(&ones),
            "{ones} of 200 ties went to label 1"
        );
        let c = majority_vote(&answers, 200, 2, TiePolicy::Random { seed: 8 }).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn out_of_range_answers_are_rejected() {
        let bad = [Answer::new(0, 0, 5)];
        assert!(majority_vote(&bad, 1, 2, TiePolicy::Report).is_err());
        assert!(dawid_skene(&bad, 1, 1, 2, &DawidSkeneOptions::default()).is_err());
    }

    /// Two reliable annotators and one who always answers the opposite: Dawid-Skene learns the flip, so the
    /// liar's answers count as evidence for the truth instead of against it, and it fixes the items where one
    /// reliable annotator slipped and majority vote sided with the liar.
    #[test]
    fn dawid_skene_learns_an_adversarial_annotator() {
        let truth: Vec<usize> = (0..60).map(|i| usize::from(i % 3 == 0)).collect();
        let mut answers = Vec::new();
        // Annotator 0 slips on items 1, 11, ..., 51; annotator 1 on items 6, 18, ..., 54 (never the same item).
        let slips = |i: usize| (i % 10 == 1, i % 12 == 6);
        for (i, &t) in truth.iter().enumerate() {
            let (a, b) = slips(i);
            answers.push(Answer::new(i, 0, if a { 1 - t } else { t }));
            answers.push(Answer::new(i, 1, if b { 1 - t } else { t }));
            answers.push(Answer::new(i, 2, 1 - t));
        }
        let votes = majority_vote(&answers, 60, 2, TiePolicy::Report).unwrap();
        let mv_right = votes
            .iter()
            .zip(&truth)
            .filter(|(v, &t)| v.label == Some(t))
            .count();
        assert_eq!(
            mv_right,
            60 - 11,
            "majority vote follows the liar on the 11 slips"
        );
        let ds = dawid_skene(&answers, 60, 3, 2, &DawidSkeneOptions::default()).unwrap();
        assert!(ds.converged);
        let right = ds
            .labels
            .iter()
            .zip(&truth)
            .filter(|(l, &t)| **l == Some(t))
            .count();
        assert_eq!(right, 60, "labels {:?}", ds.labels);
        // The flipper's confusion matrix puts its mass off the diagonal, and its estimated accuracy is near 0.
        let flip = &ds.confusion[2];
        assert!(flip[1] > 0.9 && flip[2] > 0.9, "{flip:?}");
        assert!(ds.annotator_accuracy[2].unwrap() < 0.1);
        assert!(ds.annotator_accuracy[0].unwrap() > 0.8);
        // Every posterior and confusion row is a distribution.
        for i in 0..60 {
            assert!((ds.posterior(i).iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        for m in &ds.confusion {
            for row in m.chunks(2) {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn dawid_skene_gives_unanswered_items_the_prior_and_no_label() {
        let answers = [
            Answer::new(0, 0, 1),
            Answer::new(0, 1, 1),
            Answer::new(2, 0, 0),
        ];
        let ds = dawid_skene(&answers, 3, 2, 2, &DawidSkeneOptions::default()).unwrap();
        assert_eq!(ds.labels[1], None);
        assert_eq!(ds.posterior(1), ds.priors.as_slice());
        assert_eq!(ds.labels[0], Some(1));
        assert_eq!(ds.labels[2], Some(0));
    }
}
