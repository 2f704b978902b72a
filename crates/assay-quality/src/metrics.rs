//! Classification metrics for one label source against gold: accuracy, macro-F1, expected calibration error and
//! accuracy at a coverage (the share of items kept when only the most confident are accepted), the
//! accuracy-vs-coverage curve over every confidence threshold, and the lowest threshold that reaches a target
//! accuracy.

use crate::{Error, Result};

/// Number of equal-width confidence bins used for ECE unless a caller says otherwise (Guo et al. 2017 use 15).
pub const DEFAULT_ECE_BINS: usize = 15;

/// Coverages reported by default: keep everything, then only the 90/75/50% most confident items.
pub const DEFAULT_COVERAGES: [f64; 4] = [1.0, 0.9, 0.75, 0.5];

/// Metrics of predictions (class codes with a confidence each) against gold codes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassificationReport {
    /// Items compared.
    pub n: usize,
    /// Share of items whose prediction equals gold.
    pub accuracy: f64,
    /// Unweighted mean of per-class F1 over classes present in gold or predictions (scikit-learn's `macro`).
    pub macro_f1: f64,
    /// Expected calibration error over [`DEFAULT_ECE_BINS`] equal-width bins.
    pub ece: f64,
    /// (coverage, accuracy among the most confident `coverage` share of items).
    pub accuracy_at_coverage: Vec<(f64, f64)>,
}

fn check_lengths(a: usize, b: usize, what: &str) -> Result<()> {
    if a != b {
        return Err(Error::InvalidInput(format!(
            "{what}: lengths differ ({a} vs {b})"
        )));
    }
    if a == 0 {
        return Err(Error::NotEnoughData(format!("{what}: no items")));
    }
    Ok(())
}

/// Share of positions where `predicted` equals `gold`.
pub fn accuracy(predicted: &[usize], gold: &[usize]) -> Result<f64> {
    check_lengths(predicted.len(), gold.len(), "accuracy")?;
    let hits = predicted.iter().zip(gold).filter(|(p, g)| p == g).count();
    Ok(hits as f64 / gold.len() as f64)
}

/// Macro-averaged F1 over the classes that occur in `gold` or `predicted`; a class with no true positives scores 0.
pub fn macro_f1(predicted: &[usize], gold: &[usize]) -> Result<f64> {
    check_lengths(predicted.len(), gold.len(), "macro-F1")?;
    let n_classes = predicted.iter().chain(gold).max().map_or(0, |m| m + 1);
    let mut true_pos = vec![0usize; n_classes];
    let mut pred_count = vec![0usize; n_classes];
    let mut gold_count = vec![0usize; n_classes];
    for (&p, &g) in predicted.iter().zip(gold) {
        pred_count[p] += 1;
        gold_count[g] += 1;
        if p == g {
            true_pos[p] += 1;
        }
    }
    let mut sum = 0.0;
    let mut classes = 0usize;
    for c in 0..n_classes {
        if pred_count[c] == 0 && gold_count[c] == 0 {
            continue;
        }
        classes += 1;
        // F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + gold); avoids 0/0 for precision or recall alone.
        sum += 2.0 * true_pos[c] as f64 / (pred_count[c] + gold_count[c]) as f64;
    }
    Ok(sum / classes as f64)
}

/// Per-bin reliability data: items, mean confidence and accuracy of one confidence bin.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReliabilityBin {
    /// Lower edge (exclusive, except for the first bin) of the bin.
    pub lower: f64,
    /// Upper edge (inclusive).
    pub upper: f64,
    /// Items whose confidence falls in the bin.
    pub count: usize,
    /// Mean confidence of those items (0 when empty).
    pub mean_confidence: f64,
    /// Share of those items that are correct (0 when empty).
    pub accuracy: f64,
}

/// Reliability diagram data: `bins` equal-width bins over [0, 1]; bin i holds confidences in (i/bins, (i+1)/bins],
/// with 0 in the first bin.
pub fn reliability_bins(
    confidence: &[f64],
    correct: &[bool],
    bins: usize,
) -> Result<Vec<ReliabilityBin>> {
    check_lengths(confidence.len(), correct.len(), "reliability bins")?;
    if bins == 0 {
        return Err(Error::InvalidInput(
            "reliability bins: need at least one bin".into(),
        ));
    }
    let mut count = vec![0usize; bins];
    let mut conf_sum = vec![0.0; bins];
    let mut hits = vec![0usize; bins];
    for (&c, &ok) in confidence.iter().zip(correct) {
        let c = c.clamp(0.0, 1.0);
        let bin = ((c * bins as f64).ceil() as usize)
            .saturating_sub(1)
            .min(bins - 1);
        count[bin] += 1;
        conf_sum[bin] += c;
        hits[bin] += usize::from(ok);
    }
    Ok((0..bins)
        .map(|b| ReliabilityBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            count: count[b],
            mean_confidence: if count[b] == 0 {
                0.0
            } else {
                conf_sum[b] / count[b] as f64
            },
            accuracy: if count[b] == 0 {
                0.0
            } else {
                hits[b] as f64 / count[b] as f64
            },
        })
        .collect())
}

/// Expected calibration error: Σ over bins of (bin share) · |accuracy − mean confidence|.
pub fn expected_calibration_error(
    confidence: &[f64],
    correct: &[bool],
    bins: usize,
) -> Result<f64> {
    let n = confidence.len() as f64;
    Ok(reliability_bins(confidence, correct, bins)?
        .iter()
        .map(|b| b.count as f64 / n * (b.accuracy - b.mean_confidence).abs())
        .sum())
}

/// Accuracy among the ⌈coverage · n⌉ most confident items (ties in confidence keep input order, so the result is
/// deterministic).
pub fn accuracy_at_coverage(confidence: &[f64], correct: &[bool], coverage: f64) -> Result<f64> {
    check_lengths(confidence.len(), correct.len(), "accuracy at coverage")?;
    if !(coverage > 0.0 && coverage <= 1.0) {
        return Err(Error::InvalidInput(format!(
            "coverage must be in (0, 1], got {coverage}"
        )));
    }
    let order = order_by_confidence(confidence);
    let keep = ((coverage * confidence.len() as f64).ceil() as usize).max(1);
    let hits = order[..keep].iter().filter(|&&i| correct[i]).count();
    Ok(hits as f64 / keep as f64)
}

/// Indices sorted by descending confidence, stable.
fn order_by_confidence(confidence: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..confidence.len()).collect();
    order.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    order
}

/// One point of the accuracy-vs-coverage curve: accept the items with confidence >= `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CoveragePoint {
    /// Confidence threshold (one of the observed confidences).
    pub threshold: f64,
    /// Items with confidence >= `threshold`.
    pub kept: usize,
    /// `kept / n`.
    pub coverage: f64,
    /// Share of the kept items that are correct.
    pub accuracy: f64,
}

fn check_confidences(confidence: &[f64]) -> Result<()> {
    if let Some(i) = confidence.iter().position(|c| c.is_nan()) {
        return Err(Error::InvalidInput(format!(
            "confidence of item {i} is NaN"
        )));
    }
    Ok(())
}

/// Accuracy and coverage at every distinct confidence, thresholds descending (so coverage ascending): the point
/// for threshold `t` keeps every item with confidence >= `t`, ties included. The last point keeps all items.
pub fn accuracy_coverage_curve(confidence: &[f64], correct: &[bool]) -> Result<Vec<CoveragePoint>> {
    check_lengths(confidence.len(), correct.len(), "accuracy-coverage curve")?;
    check_confidences(confidence)?;
    let order = order_by_confidence(confidence);
    let n = confidence.len();
    let mut points = Vec::new();
    let mut hits = 0usize;
    for (rank, &i) in order.iter().enumerate() {
        hits += usize::from(correct[i]);
        let kept = rank + 1;
        // Close a point at the end of each run of equal confidences.
        if kept == n || confidence[order[kept]] != confidence[i] {
            points.push(CoveragePoint {
                threshold: confidence[i],
                kept,
                coverage: kept as f64 / n as f64,
                accuracy: hits as f64 / kept as f64,
            });
        }
    }
    Ok(points)
}

/// The lowest confidence threshold such that the items with confidence >= threshold are at least `target`
/// accurate, as `(threshold, coverage)`; `None` when no threshold reaches it (not even the highest confidence).
///
/// Candidate thresholds are the observed confidences; accuracy need not fall monotonically as the threshold
/// drops, and the lowest passing threshold is returned even if some higher one fails.
pub fn threshold_for_accuracy(
    confidence: &[f64],
    correct: &[bool],
    target: f64,
) -> Result<Option<(f64, f64)>> {
    if !(target > 0.0 && target <= 1.0) {
        return Err(Error::InvalidInput(format!(
            "target accuracy must be in (0, 1], got {target}"
        )));
    }
    let curve = accuracy_coverage_curve(confidence, correct)?;
    Ok(curve
        .iter()
        .rev()
        .find(|p| p.accuracy >= target)
        .map(|p| (p.threshold, p.coverage)))
}

/// All of the metrics above at once, with the default bins and coverages.
pub fn classification_report(
    predicted: &[usize],
    gold: &[usize],
    confidence: &[f64],
) -> Result<ClassificationReport> {
    check_lengths(predicted.len(), confidence.len(), "classification report")?;
    let correct: Vec<bool> = predicted.iter().zip(gold).map(|(p, g)| p == g).collect();
    let accuracy_at_coverage = DEFAULT_COVERAGES
        .iter()
        .map(|&c| Ok((c, accuracy_at_coverage(confidence, &correct, c)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(ClassificationReport {
        n: gold.len(),
        accuracy: accuracy(predicted, gold)?,
        macro_f1: macro_f1(predicted, gold)?,
        ece: expected_calibration_error(confidence, &correct, DEFAULT_ECE_BINS)?,
        accuracy_at_coverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_matches_scikit_learn_example() {
        // scikit-learn's f1_score docs: y_true = [0,1,2,0,1,2], y_pred = [0,2,1,0,0,1], average='macro' -> 0.2666...
        let f1 = macro_f1(&[0, 2, 1, 0, 0, 1], &[0, 1, 2, 0, 1, 2]).unwrap();
        assert!((f1 - 0.26666666666666666).abs() < 1e-12, "{f1}");
    }

    #[test]
    fn ece_of_perfectly_calibrated_bins_is_zero_and_of_overconfidence_is_the_gap() {
        // Four items at confidence 0.75, three right: calibrated.
        let ece = expected_calibration_error(&[0.75; 4], &[true, true, true, false], 15).unwrap();
        assert!(ece.abs() < 1e-12);
        // Always 0.9 confident, right half the time: gap 0.4.
        let ece = expected_calibration_error(&[0.9; 4], &[true, false, true, false], 15).unwrap();
        assert!((ece - 0.4).abs() < 1e-12);
    }

    #[test]
    fn bins_put_edges_in_the_lower_bin() {
        let bins = reliability_bins(&[0.0, 0.5, 1.0], &[true, true, true], 2).unwrap();
        assert_eq!(bins[0].count, 2);
        assert_eq!(bins[1].count, 1);
    }

    #[test]
    fn accuracy_at_coverage_keeps_the_most_confident() {
        let conf = [0.9, 0.2, 0.8, 0.4];
        let correct = [true, false, true, false];
        assert_eq!(accuracy_at_coverage(&conf, &correct, 0.5).unwrap(), 1.0);
        assert_eq!(accuracy_at_coverage(&conf, &correct, 1.0).unwrap(), 0.5);
        assert_eq!(
            accuracy_at_coverage(&conf, &correct, 0.75).unwrap(),
            2.0 / 3.0
        );
    }

    #[test]
    fn curve_has_one_point_per_distinct_confidence() {
        // Sorted: 0.9 ok, 0.8 ok, 0.8 wrong, 0.5 ok, 0.3 wrong.
        let conf = [0.8, 0.3, 0.9, 0.5, 0.8];
        let correct = [true, false, true, true, false];
        let curve = accuracy_coverage_curve(&conf, &correct).unwrap();
        let got: Vec<(f64, usize, f64)> = curve
            .iter()
            .map(|p| (p.threshold, p.kept, p.accuracy))
            .collect();
        assert_eq!(
            got,
            vec![
                (0.9, 1, 1.0),
                (0.8, 3, 2.0 / 3.0),
                (0.5, 4, 0.75),
                (0.3, 5, 0.6)
            ]
        );
        assert_eq!(curve[3].coverage, 1.0);
    }

    #[test]
    fn threshold_is_the_lowest_that_reaches_the_target() {
        let conf = [0.8, 0.3, 0.9, 0.5, 0.8];
        let correct = [true, false, true, true, false];
        // 0.75 is first reached at threshold 0.5 (3 of 4 kept items right), coverage 4/5.
        assert_eq!(
            threshold_for_accuracy(&conf, &correct, 0.75).unwrap(),
            Some((0.5, 0.8))
        );
        // Only the single 0.9 item is 100% right.
        assert_eq!(
            threshold_for_accuracy(&conf, &correct, 1.0).unwrap(),
            Some((0.9, 0.2))
        );
        // 0.6 holds for everything.
        assert_eq!(
            threshold_for_accuracy(&conf, &correct, 0.6).unwrap(),
            Some((0.3, 1.0))
        );
    }

    #[test]
    fn threshold_skips_a_failing_higher_threshold_and_is_none_when_unreachable() {
        // The most confident item is wrong, so no threshold gives 100%, but 0.5 does give 2 of 3.
        let conf = [0.9, 0.6, 0.5];
        let correct = [false, true, true];
        assert_eq!(threshold_for_accuracy(&conf, &correct, 1.0).unwrap(), None);
        let (t, cov) = threshold_for_accuracy(&conf, &correct, 0.6)
            .unwrap()
            .unwrap();
        assert_eq!((t, cov), (0.5, 1.0));
        assert!(threshold_for_accuracy(&conf, &correct, 0.0).is_err());
        assert!(threshold_for_accuracy(&[f64::NAN], &[true], 0.5).is_err());
    }

    #[test]
    fn mismatched_lengths_are_an_error() {
        assert!(accuracy(&[0, 1], &[0]).is_err());
        assert!(accuracy(&[], &[]).is_err());
    }
}
