//! Finding likely label errors with confident learning (Northcutt, Jiang and Chuang 2021, "Confident Learning:
//! Estimating Uncertainty in Dataset Labels", JAIR 70).
//!
//! The inputs are the given labels and out-of-sample predicted probabilities (`n x k`, e.g. from cross-validation
//! or from a model that never saw these items). The steps and their defaults follow Python cleanlab 2.x
//! (`cleanlab.filter.find_label_issues` and `cleanlab.count`):
//!
//! 1. Per-class thresholds `t_j`: the mean predicted probability of class `j` over the items labelled `j`
//!    (the class's mean self-confidence), floored at `2e-6`.
//! 2. The confident joint `C[given][guess]`: an item counts towards the class `guess` whose probability reaches
//!    its threshold (`p_j >= t_j - 1e-6`), the most probable such class when several do; items reaching no
//!    threshold are not counted. Each diagonal cell is raised to at least 1.
//! 3. Calibration: each row is rescaled to the number of items with that given label, the whole to `n`, and rows
//!    rounded to integers preserving their totals.
//! 4. Pruning, per given class `k` with more than `min_examples_per_class` items:
//!    - [`FilterBy::PruneByClass`]: flag the `n_k - C[k][k]` items with the lowest `p_k`;
//!    - [`FilterBy::PruneByNoiseRate`]: for each other class `j`, flag the `C[k][j]` items with the largest margin
//!      `p_j - p_k`;
//!    - [`FilterBy::Both`]: items flagged by both;
//!    - [`FilterBy::ConfidentLearning`]: the items counted off the diagonal in step 2.
//! 5. Items whose most probable class is their given label are never flagged.
//! 6. The flagged items are ranked from most to least likely wrong by [`RankBy`] (self-confidence by default),
//!    ties by index.
//!
//! Where cleanlab's order of tied items depends on NumPy's unstable sort, this module sorts stably by index.
//!
//! ```
//! use assay_quality::label_errors::{find_label_issues, LabelIssueOptions};
//!
//! let labels = [0, 0, 0, 1, 1, 1];
//! // Item 2 is labelled 0 but the model is confident it is a 1.
//! let probs = [[0.9, 0.1], [0.8, 0.2], [0.05, 0.95], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7]];
//! let issues = find_label_issues(&labels, &probs, &LabelIssueOptions::default())?;
//! assert_eq!(issues.ranked, vec![2]);
//! # Ok::<(), assay_quality::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::aggregation::argmax;
use crate::{Error, Result};

/// cleanlab's `FLOATING_POINT_COMPARISON`: slack when comparing a probability with a threshold.
const SLACK: f64 = 1e-6;
/// cleanlab's `CONFIDENT_THRESHOLDS_LOWER_BOUND`.
const THRESHOLD_FLOOR: f64 = 2.0 * SLACK;
/// cleanlab's `TINY_VALUE`, guarding divisions during calibration.
const TINY: f64 = 1e-100;

/// Which items count as label issues (cleanlab's `filter_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterBy {
    /// Per given class, the items with the lowest probability of that class, as many as the calibrated confident
    /// joint says are off its diagonal.
    PruneByClass,
    /// Per off-diagonal cell `(given k, true j)` of the calibrated confident joint, that many items labelled `k`
    /// with the largest margin `p_j - p_k` (cleanlab's default).
    #[default]
    PruneByNoiseRate,
    /// Items flagged by both of the above.
    Both,
    /// The items counted in the off-diagonal cells of the (uncalibrated) confident joint.
    ConfidentLearning,
}

/// How flagged items are ranked (cleanlab's `return_indices_ranked_by`); lower scores rank first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RankBy {
    /// The predicted probability of the given label.
    #[default]
    SelfConfidence,
    /// The probability of the given label minus the largest probability of another class, mapped to `[0, 1]`
    /// as `(margin + 1) / 2`.
    NormalizedMargin,
}

/// Settings for [`find_label_issues`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LabelIssueOptions {
    /// Which items to flag.
    pub filter_by: FilterBy,
    /// How to rank the flagged items.
    pub rank_by: RankBy,
    /// A class with at most this many items (and a class with a single item) is never pruned, and pruning leaves
    /// at least this many in each.
    pub min_examples_per_class: usize,
    /// Keep only this share of the estimated errors per cell (1.0 keeps all; applies to the prune filters).
    pub frac_noise: f64,
}

impl Default for LabelIssueOptions {
    fn default() -> Self {
        Self {
            filter_by: FilterBy::PruneByNoiseRate,
            rank_by: RankBy::SelfConfidence,
            min_examples_per_class: 1,
            frac_noise: 1.0,
        }
    }
}

/// What [`find_label_issues`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelIssues {
    /// Indices of the flagged items, most likely wrong first.
    pub ranked: Vec<usize>,
    /// Per item, whether it was flagged.
    pub is_issue: Vec<bool>,
    /// Per item, the ranking score (lower is more likely wrong).
    pub quality: Vec<f64>,
    /// The per-class thresholds of step 1.
    pub thresholds: Vec<f64>,
    /// The calibrated confident joint, row-major `k x k`, rows indexed by given label and columns by estimated
    /// true label; it sums to `n` and row `k` sums to the number of items labelled `k`.
    pub confident_joint: Vec<u64>,
}

/// Checks shapes and values, returning `k`.
fn validate<R: AsRef<[f64]>>(labels: &[usize], pred_probs: &[R]) -> Result<usize> {
    if labels.len() != pred_probs.len() {
        return Err(Error::InvalidInput(format!(
            "{} labels but {} rows of probabilities",
            labels.len(),
            pred_probs.len()
        )));
    }
    let Some(first) = pred_probs.first() else {
        return Err(Error::NotEnoughData("no items".into()));
    };
    let k = first.as_ref().len();
    if k < 2 {
        return Err(Error::InvalidInput("need at least two classes".into()));
    }
    for (i, (row, &label)) in pred_probs.iter().zip(labels).enumerate() {
        let row = row.as_ref();
        if row.len() != k {
            return Err(Error::InvalidInput(format!(
                "row {i} has {} probabilities, row 0 has {k}",
                row.len()
            )));
        }
        if label >= k {
            return Err(Error::InvalidInput(format!(
                "item {i}: label {label} is not below {k} classes"
            )));
        }
        if row.iter().any(|p| !p.is_finite() || *p < 0.0) {
            return Err(Error::InvalidInput(format!(
                "row {i} has a probability that is negative or not finite"
            )));
        }
    }
    Ok(k)
}

/// Per-class thresholds: the mean predicted probability of each class over the items given that label. A class
/// no item has gets twice the largest probability (so nothing reaches it); all are floored at `2e-6`.
pub fn confident_thresholds<R: AsRef<[f64]>>(
    labels: &[usize],
    pred_probs: &[R],
) -> Result<Vec<f64>> {
    let k = validate(labels, pred_probs)?;
    Ok(thresholds_unchecked(labels, pred_probs, k))
}

fn thresholds_unchecked<R: AsRef<[f64]>>(labels: &[usize], pred_probs: &[R], k: usize) -> Vec<f64> {
    let mut sum = vec![0.0; k];
    let mut count = vec![0usize; k];
    let mut max: f64 = 0.0;
    for (row, &l) in pred_probs.iter().zip(labels) {
        let row = row.as_ref();
        sum[l] += row[l];
        count[l] += 1;
        max = row.iter().copied().fold(max, f64::max);
    }
    (0..k)
        .map(|c| {
            let t = if count[c] > 0 {
                sum[c] / count[c] as f64
            } else {
                2.0 * max
            };
            t.max(THRESHOLD_FLOOR)
        })
        .collect()
}

/// The confident joint and the items counted off its diagonal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidentJoint {
    /// Row-major `k x k` counts, rows by given label, columns by estimated true label.
    pub counts: Vec<u64>,
    /// Items whose estimated true label differs from the given one, in index order.
    pub off_diagonal: Vec<usize>,
}

/// The confident joint of step 2 (with each diagonal cell at least 1), calibrated (step 3) when `calibrate`.
pub fn confident_joint<R: AsRef<[f64]>>(
    labels: &[usize],
    pred_probs: &[R],
    thresholds: &[f64],
    calibrate: bool,
) -> Result<ConfidentJoint> {
    let k = validate(labels, pred_probs)?;
    if thresholds.len() != k {
        return Err(Error::InvalidInput(format!(
            "{} thresholds for {k} classes",
            thresholds.len()
        )));
    }
    let (mut counts, off_diagonal) = raw_joint(labels, pred_probs, thresholds, k);
    if calibrate {
        counts = calibrate_joint(&counts, labels, k);
    }
    Ok(ConfidentJoint {
        counts,
        off_diagonal,
    })
}

fn raw_joint<R: AsRef<[f64]>>(
    labels: &[usize],
    pred_probs: &[R],
    thresholds: &[f64],
    k: usize,
) -> (Vec<u64>, Vec<usize>) {
    let mut cj = vec![0u64; k * k];
    let mut off = Vec::new();
    for (i, (row, &given)) in pred_probs.iter().zip(labels).enumerate() {
        let row = row.as_ref();
        let mut confident = 0;
        let mut first = 0;
        for c in 0..k {
            if row[c] >= thresholds[c] - SLACK {
                if confident == 0 {
                    first = c;
                }
                confident += 1;
            }
        }
        if confident == 0 {
            continue;
        }
        let guess = if confident == 1 { first } else { argmax(row) };
        cj[given * k + guess] += 1;
        if guess != given {
            off.push(i);
        }
    }
    for c in 0..k {
        cj[c * k + c] = cj[c * k + c].max(1);
    }
    (cj, off)
}

/// Rescales rows to the label counts and the total to `n`, then rounds each row preserving its total.
fn calibrate_joint(cj: &[u64], labels: &[usize], k: usize) -> Vec<u64> {
    let mut label_counts = vec![0.0; k];
    for &l in labels {
        label_counts[l] += 1.0;
    }
    let mut cal = vec![0.0; k * k];
    for r in 0..k {
        let row_sum: f64 = cj[r * k..(r + 1) * k].iter().map(|&x| x as f64).sum();
        for c in 0..k {
            cal[r * k + c] = cj[r * k + c] as f64 / row_sum.max(TINY) * label_counts[r];
        }
    }
    let total: f64 = cal.iter().sum();
    let n: f64 = label_counts.iter().sum();
    cal.iter_mut().for_each(|x| *x = *x / total.max(TINY) * n);
    let mut out = Vec::with_capacity(k * k);
    for row in cal.chunks_exact(k) {
        out.extend(
            round_preserving_sum(row)
                .into_iter()
                .map(|x| x.max(0) as u64),
        );
    }
    out
}

/// Rounds half to even, then moves the largest rounding residuals up (or smallest down) one unit at a time until
/// the integers sum to the rounded float total (cleanlab's `round_preserving_sum`).
fn round_preserving_sum(floats: &[f64]) -> Vec<i64> {
    let mut ints: Vec<f64> = floats.iter().map(|x| x.round_ties_even()).collect();
    let target = floats.iter().sum::<f64>().round_ties_even();
    let mut sum: f64 = ints.iter().sum::<f64>().round_ties_even();
    while (sum - target).abs() > SLACK {
        let diff = (target - sum).round_ties_even();
        let up = diff > 0.0;
        let changes = (diff.abs() as usize).min(floats.len());
        let mut order: Vec<usize> = (0..floats.len()).collect();
        order.sort_by(|&a, &b| (floats[a] - ints[a]).total_cmp(&(floats[b] - ints[b])));
        if up {
            order.reverse();
        }
        for &i in &order[..changes] {
            ints[i] += if up { 1.0 } else { -1.0 };
        }
        sum = ints.iter().sum::<f64>().round_ties_even();
    }
    ints.into_iter().map(|x| x as i64).collect()
}

/// The transposed, adjusted prune counts: `pcm[true][given]` (cleanlab's `_keep_at_least_n_per_class` followed
/// by `_reduce_prune_counts`).
fn prune_counts(cj: &[u64], k: usize, n_min: usize, frac_noise: f64) -> Vec<i64> {
    // pcm = cj^T as floats.
    let mut pcm = vec![0.0; k * k];
    for r in 0..k {
        for c in 0..k {
            pcm[c * k + r] = cj[r * k + c] as f64;
        }
    }
    let diag: Vec<f64> = (0..k).map(|c| pcm[c * k + c]).collect();
    let new_diag: Vec<f64> = diag.iter().map(|&d| d.max(n_min as f64)).collect();
    for col in 0..k {
        let nonzero = (0..k).filter(|&r| pcm[r * k + col] != 0.0).count() as f64;
        let spread = (nonzero - 1.0).max(1.0);
        let diff = new_diag[col] - diag[col];
        for r in 0..k {
            let x = &mut pcm[r * k + col];
            *x = (*x - diff / spread).max(0.0);
        }
        pcm[col * k + col] = new_diag[col];
    }
    // Keep frac_noise of the off-diagonal counts, moving the rest of each column onto its diagonal, then truncate.
    let mut out = vec![0i64; k * k];
    for col in 0..k {
        let mut moved = 0.0;
        for r in (0..k).filter(|&r| r != col) {
            let kept = pcm[r * k + col] * frac_noise;
            moved += pcm[r * k + col] - kept;
            out[r * k + col] = kept as i64;
        }
        out[col * k + col] = (pcm[col * k + col] + moved) as i64;
    }
    out
}

/// Ranking scores of every item (see [`RankBy`]).
pub fn label_quality_scores<R: AsRef<[f64]>>(
    labels: &[usize],
    pred_probs: &[R],
    rank_by: RankBy,
) -> Result<Vec<f64>> {
    validate(labels, pred_probs)?;
    Ok(scores_unchecked(labels, pred_probs, rank_by))
}

fn scores_unchecked<R: AsRef<[f64]>>(
    labels: &[usize],
    pred_probs: &[R],
    rank_by: RankBy,
) -> Vec<f64> {
    pred_probs
        .iter()
        .zip(labels)
        .map(|(row, &l)| {
            let row = row.as_ref();
            match rank_by {
                RankBy::SelfConfidence => row[l],
                RankBy::NormalizedMargin => {
                    let other = row
                        .iter()
                        .enumerate()
                        .filter(|&(c, _)| c != l)
                        .map(|(_, &p)| p)
                        .fold(f64::NEG_INFINITY, f64::max);
                    (row[l] - other + 1.0) / 2.0
                }
            }
        })
        .collect()
}

/// Finds likely label errors; see the module documentation for the steps.
///
/// `labels[i]` is item `i`'s given label in `0..k`; `pred_probs[i]` its `k` out-of-sample predicted probabilities.
pub fn find_label_issues<R: AsRef<[f64]>>(
    labels: &[usize],
    pred_probs: &[R],
    options: &LabelIssueOptions,
) -> Result<LabelIssues> {
    let k = validate(labels, pred_probs)?;
    if !(0.0..=1.0).contains(&options.frac_noise) {
        return Err(Error::InvalidInput(format!(
            "frac_noise {} is not in [0, 1]",
            options.frac_noise
        )));
    }
    let n = labels.len();
    let thresholds = thresholds_unchecked(labels, pred_probs, k);
    let (raw, off_diagonal) = raw_joint(labels, pred_probs, &thresholds, k);
    let joint = calibrate_joint(&raw, labels, k);

    let mut is_issue = vec![false; n];
    match options.filter_by {
        FilterBy::ConfidentLearning => {
            for &i in &off_diagonal {
                is_issue[i] = true;
            }
        }
        filter => {
            let pcm = prune_counts(
                &joint,
                k,
                options.min_examples_per_class,
                options.frac_noise,
            );
            let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
            for (i, &l) in labels.iter().enumerate() {
                by_class[l].push(i);
            }
            let by_class_mask =
                matches!(filter, FilterBy::PruneByClass | FilterBy::Both).then(|| {
                    prune_by_class(
                        &by_class,
                        pred_probs,
                        &pcm,
                        k,
                        options.min_examples_per_class,
                        n,
                    )
                });
            let by_noise_mask =
                matches!(filter, FilterBy::PruneByNoiseRate | FilterBy::Both).then(|| {
                    prune_by_noise_rate(
                        &by_class,
                        pred_probs,
                        &pcm,
                        k,
                        options.min_examples_per_class,
                        n,
                    )
                });
            for i in 0..n {
                is_issue[i] = match (&by_class_mask, &by_noise_mask) {
                    (Some(a), Some(b)) => a[i] && b[i],
                    (Some(a), None) => a[i],
                    (None, Some(b)) => b[i],
                    (None, None) => false,
                };
            }
        }
    }
    for (i, (row, &l)) in pred_probs.iter().zip(labels).enumerate() {
        if argmax(row.as_ref()) == l {
            is_issue[i] = false;
        }
    }
    let quality = scores_unchecked(labels, pred_probs, options.rank_by);
    let mut ranked: Vec<usize> = (0..n).filter(|&i| is_issue[i]).collect();
    ranked.sort_by(|&a, &b| quality[a].total_cmp(&quality[b]));
    Ok(LabelIssues {
        ranked,
        is_issue,
        quality,
        thresholds,
        confident_joint: joint,
    })
}

fn prune_by_class<R: AsRef<[f64]>>(
    by_class: &[Vec<usize>],
    pred_probs: &[R],
    pcm: &[i64],
    k: usize,
    min_examples: usize,
    n: usize,
) -> Vec<bool> {
    let mut mask = vec![false; n];
    for (c, members) in by_class.iter().enumerate() {
        if members.len() <= min_examples.max(1) {
            continue;
        }
        let issues = members.len() as i64 - pcm[c * k + c];
        if issues < 1 {
            continue;
        }
        let mut order = members.clone();
        order.sort_by(|&a, &b| pred_probs[a].as_ref()[c].total_cmp(&pred_probs[b].as_ref()[c]));
        for &i in order.iter().take(issues as usize) {
            mask[i] = true;
        }
    }
    mask
}

fn prune_by_noise_rate<R: AsRef<[f64]>>(
    by_class: &[Vec<usize>],
    pred_probs: &[R],
    pcm: &[i64],
    k: usize,
    min_examples: usize,
    n: usize,
) -> Vec<bool> {
    let mut mask = vec![false; n];
    for (given, members) in by_class.iter().enumerate() {
        if members.len() <= min_examples.max(1) {
            continue;
        }
        for truth in (0..k).filter(|&j| j != given) {
            let count = pcm[truth * k + given];
            if count <= 0 {
                continue;
            }
            let margin = |i: usize| {
                let row = pred_probs[i].as_ref();
                row[truth] - row[given]
            };
            let mut order = members.clone();
            order.sort_by(|&a, &b| margin(b).total_cmp(&margin(a)));
            for &i in order.iter().take(count as usize) {
                mask[i] = true;
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_preserving_sum_keeps_the_total() {
        // 0.5 and 2.5 round half to even (0 and 2), giving 6; the total 3.6 + 0.5 + 2.5 + 0.4 = 7 needs one more
        // unit, which goes to the largest residual. Indices 1 and 2 tie at 0.5; as in NumPy's reversed stable
        // order, the later index gets it.
        let r = round_preserving_sum(&[3.6, 0.5, 2.5, 0.4]);
        assert_eq!(r.iter().sum::<i64>(), 7);
        assert_eq!(r, vec![4, 0, 3, 0]);
    }

    /// A case small enough to follow by hand: two classes, eight items.
    ///
    /// Labels 0,0,0,0,1,1,1,1 with p(class 1) = .1,.2,.9,.3 | .8,.7,.9,.1.
    /// Thresholds: t0 = mean p0 over items labelled 0 = (.9+.8+.1+.7)/4 = .625;
    ///             t1 = mean p1 over items labelled 1 = (.8+.7+.9+.1)/4 = .625.
    /// Confident guesses (p >= t): item 0 -> 0, 1 -> 0, 2 -> 1, 3 -> 0, 4 -> 1, 5 -> 1, 6 -> 1, 7 -> 0.
    /// Confident joint [[3, 1], [1, 3]] already sums to the label counts, so calibration leaves it.
    /// prune_by_noise_rate: one item labelled 0 with the largest p1 - p0 (item 2) and one labelled 1 with the
    /// largest p0 - p1 (item 7); prune_by_class flags the same two (lowest p_given in each class). Both have
    /// argmax != label, so both stay; ranked by self-confidence (p_given .1 for both, tie broken by index).
    #[test]
    fn hand_worked_two_class_case() {
        let labels = [0, 0, 0, 0, 1, 1, 1, 1];
        let p1 = [0.1, 0.2, 0.9, 0.3, 0.8, 0.7, 0.9, 0.1];
        let probs: Vec<[f64; 2]> = p1.iter().map(|&p| [1.0 - p, p]).collect();
        for filter_by in [
            FilterBy::PruneByNoiseRate,
            FilterBy::PruneByClass,
            FilterBy::Both,
            FilterBy::ConfidentLearning,
        ] {
            let options = LabelIssueOptions {
                filter_by,
                ..Default::default()
            };
            let issues = find_label_issues(&labels, &probs, &options).unwrap();
            for (t, want) in issues.thresholds.iter().zip([0.625, 0.625]) {
                assert!((t - want).abs() < 1e-12);
            }
            assert_eq!(issues.confident_joint, vec![3, 1, 1, 3]);
            assert_eq!(issues.ranked, vec![2, 7], "{filter_by:?}");
        }
    }

    /// Calibration scales the confident joint to the label counts: with 10 items labelled 0 of which 2 reach
    /// no threshold, the raw row [6, 2] becomes [7.5, 2.5] -> rounded half to even [8, 2] and corrected to keep
    /// the total 10.
    #[test]
    fn calibration_scales_rows_to_label_counts() {
        let mut labels = vec![0; 10];
        labels.extend([1; 4]);
        let mut probs = Vec::new();
        // Six confident 0s, two confident 1s (mislabelled), two unsure rows that reach no threshold.
        probs.extend([[0.95, 0.05]; 6]);
        probs.extend([[0.02, 0.98]; 2]);
        probs.extend([[0.5, 0.5]; 2]);
        probs.extend([[0.1, 0.9]; 4]);
        let t = confident_thresholds(&labels, &probs).unwrap();
        // t0 = (6*.95 + 2*.02 + 2*.5)/10 = .674; t1 = .9
        assert!((t[0] - 0.674).abs() < 1e-12 && (t[1] - 0.9).abs() < 1e-12);
        let raw = confident_joint(&labels, &probs, &t, false).unwrap();
        assert_eq!(raw.counts, vec![6, 2, 0, 4]);
        assert_eq!(raw.off_diagonal, vec![6, 7]);
        let cal = confident_joint(&labels, &probs, &t, true).unwrap();
        // Row 0 -> [7.5, 2.5]: round half even gives [8, 2] (sum 10 = target), row 1 -> [0, 4].
        assert_eq!(cal.counts, vec![8, 2, 0, 4]);
        // Two items to prune from class 0, the two confidently-1 rows.
        let issues = find_label_issues(&labels, &probs, &LabelIssueOptions::default()).unwrap();
        assert_eq!(issues.ranked, vec![6, 7]);
    }

    #[test]
    fn items_predicted_as_their_label_are_never_flagged() {
        // Labelled 0: items 0, 1 (confident 0), 2 and 7 (unsure, argmax still 0), 6 (confident 1).
        // t0 = (.9 + .9 + .55 + .1 + .58) / 5 = .606, so 2 and 7 reach no threshold; raw row 0 is [2, 1], which
        // calibrates to [3.33, 1.67] -> [3, 2]: two items to prune from class 0. Both filters pick item 6 and
        // item 2 (lowest p0; largest p1 - p0), but item 2's argmax is its label, so only item 6 remains.
        let labels = [0, 0, 0, 1, 1, 1, 0, 0];
        let probs = [
            [0.9, 0.1],
            [0.9, 0.1],
            [0.55, 0.45],
            [0.1, 0.9],
            [0.1, 0.9],
            [0.2, 0.8],
            [0.1, 0.9],
            [0.58, 0.42],
        ];
        for filter_by in [FilterBy::PruneByClass, FilterBy::PruneByNoiseRate] {
            let options = LabelIssueOptions {
                filter_by,
                ..Default::default()
            };
            let issues = find_label_issues(&labels, &probs, &options).unwrap();
            assert_eq!(issues.confident_joint, vec![3, 2, 0, 3]);
            assert!(!issues.is_issue[2]);
            assert_eq!(issues.ranked, vec![6], "{filter_by:?}");
        }
    }

    #[test]
    fn bad_shapes_are_rejected() {
        assert!(find_label_issues(&[0, 1], &[[0.5, 0.5]], &LabelIssueOptions::default()).is_err());
        assert!(find_label_issues(&[2], &[[0.5, 0.5]], &LabelIssueOptions::default()).is_err());
        assert!(
            find_label_issues(&[0], &[[f64::NAN, 0.5]], &LabelIssueOptions::default()).is_err()
        );
        let probs: [[f64; 2]; 0] = [];
        assert!(find_label_issues(&[], &probs, &LabelIssueOptions::default()).is_err());
    }

    /// Property: take items a model predicts confidently and correctly, flip some labels, and every flipped item
    /// is flagged while no untouched item is (the model still backs their labels).
    #[test]
    fn flipped_confident_labels_are_flagged() {
        let k = 3;
        let n = 300;
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let truth: Vec<usize> = (0..n).map(|i| i % k).collect();
        let probs: Vec<Vec<f64>> = truth
            .iter()
            .map(|&t| {
                let top = 0.9 + 0.05 * next();
                let rest = 1.0 - top;
                let split = next();
                let mut row = vec![0.0; k];
                row[t] = top;
                row[(t + 1) % k] = rest * split;
                row[(t + 2) % k] = rest * (1.0 - split);
                row
            })
            .collect();
        let mut labels = truth.clone();
        let flipped: Vec<usize> = (0..n).filter(|i| i % 17 == 5).collect();
        for &i in &flipped {
            labels[i] = (labels[i] + 1 + i % 2) % k;
        }
        for filter_by in [
            FilterBy::PruneByNoiseRate,
            FilterBy::PruneByClass,
            FilterBy::Both,
            FilterBy::ConfidentLearning,
        ] {
            let options = LabelIssueOptions {
                filter_by,
                ..Default::default()
            };
            let issues = find_label_issues(&labels, &probs, &options).unwrap();
            let mut found = issues.ranked.clone();
            found.sort_unstable();
            assert_eq!(found, flipped, "{filter_by:?}");
            // Ranked by increasing self-confidence.
            for w in issues.ranked.windows(2) {
                assert!(issues.quality[w[0]] <= issues.quality[w[1]]);
            }
        }
    }
}
