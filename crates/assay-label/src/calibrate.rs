//! Calibration in force for a run: contextual calibration from content-free inputs (Zhao et al. 2021), then,
//! where gold rows exist, a per-class bias + temperature fitted on a deterministic split of them; and the gold
//! metrics before and after, on the gold rows the fit never saw.

use assay_core::{CalibrationMethod, TaskKind, TaskSpec};
use assay_quality::calibration::{ContextualCalibration, FitOptions, FittedCalibration};
use assay_quality::metrics::{classification_report, ClassificationReport};

use crate::judgment::argmax;
use crate::Result;

/// Gold rows needed in the fit split before a fitted calibration is learned.
pub const MIN_FIT_ROWS: usize = 10;

/// Deterministic split of gold rows: a row is in the fit set when its hash falls below `share`.
pub fn in_fit_split(seed: u64, index: u64, share: f64) -> bool {
    // splitmix64
    let mut z = seed
        .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 <= share && share > 0.0
}

/// A gold row in the fit split: its raw units and gold label indices.
pub type FitRow = (Vec<Vec<f64>>, Vec<usize>);

/// The calibration in force for a run: contextual per unit slot, then fitted per unit slot.
#[derive(Debug, Clone)]
pub struct Calibrator {
    contextual: Option<Vec<ContextualCalibration>>,
    fitted: Option<Vec<FittedCalibration>>,
    /// `none`, `contextual`, `fitted`, `contextual+fitted`, or why pairs and ratings have none.
    pub name: String,
    /// `method = "auto"`: what the cross-validation on the fit rows compared and chose.
    pub choice: Option<String>,
}

impl Calibrator {
    /// The calibration of `spec` from the content-free inputs' units and the fit split's gold rows.
    pub fn build(spec: &TaskSpec, content_free: &[Vec<Vec<f64>>], fit: &[FitRow]) -> Result<Self> {
        if spec.calibration.method == CalibrationMethod::Auto
            && fit.len() >= MIN_FIT_ROWS
            && matches!(spec.kind, TaskKind::Classify | TaskKind::MultiLabel)
        {
            return Self::choose(spec, content_free, fit);
        }
        Self::build_with(
            spec,
            spec.calibration.method,
            !content_free.is_empty(),
            content_free,
            fit,
        )
    }

    /// `auto` that never makes things worse: none, contextual, fitted and contextual + fitted compared by 5-fold
    /// cross-validation on the fit rows (accuracy first, then log-loss; ties go to the simpler one), the winner
    /// refitted on all of them.
    fn choose(spec: &TaskSpec, content_free: &[Vec<Vec<f64>>], fit: &[FitRow]) -> Result<Self> {
        let has_cf = !content_free.is_empty();
        let candidates: Vec<(&str, CalibrationMethod, bool)> = [
            ("none", CalibrationMethod::None, false),
            ("contextual", CalibrationMethod::Contextual, true),
            ("fitted", CalibrationMethod::Fitted, false),
            ("contextual+fitted", CalibrationMethod::Auto, true),
        ]
        .into_iter()
        .filter(|(_, _, needs_cf)| has_cf || !needs_cf)
        .collect();
        let fold = assay_learn::cv::folds(fit.len(), CV_FOLDS, spec.calibration.seed);
        let mut scored = Vec::new();
        for (name, method, use_cf) in &candidates {
            let mut decisions = CvScore::default();
            for f in 0..CV_FOLDS {
                let train: Vec<FitRow> = fit
                    .iter()
                    .zip(&fold)
                    .filter(|(_, &g)| g != f)
                    .map(|(r, _)| r.clone())
                    .collect();
                let calibrator = Self::build_with(spec, *method, *use_cf, content_free, &train)?;
                for (row, _) in fit.iter().zip(&fold).filter(|(_, &g)| g == f) {
                    decisions.add(spec, &calibrator.apply(&row.0), &row.1);
                }
            }
            scored.push((*name, *method, *use_cf, decisions));
        }
        let best = scored
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| {
                a.3.accuracy()
                    .total_cmp(&b.3.accuracy())
                    .then(b.3.log_loss().total_cmp(&a.3.log_loss()))
                    .then(j.cmp(i))
            })
            .map(|(i, _)| i)
            .expect("`none` is always a candidate");
        let (name, method, use_cf, _) = &scored[best];
        let mut chosen = Self::build_with(spec, *method, *use_cf, content_free, fit)?;
        let figures: Vec<String> = scored
            .iter()
            .map(|(n, _, _, d)| {
                format!(
                    "{n} {:.1}% (log-loss {:.3})",
                    100.0 * d.accuracy(),
                    d.log_loss()
                )
            })
            .collect();
        chosen.choice = Some(format!(
            "auto chose {name} by 5-fold cross-validated accuracy on {} fit rows: {}",
            fit.len(),
            figures.join(", ")
        ));
        Ok(chosen)
    }

    /// The calibration of one method; `use_contextual` says whether content-free inputs apply.
    fn build_with(
        spec: &TaskSpec,
        method: CalibrationMethod,
        use_contextual: bool,
        content_free: &[Vec<Vec<f64>>],
        fit: &[FitRow],
    ) -> Result<Self> {
        let content_free = if use_contextual { content_free } else { &[] };
        let none = |name: &str| Self {
            contextual: None,
            fitted: None,
            name: name.into(),
            choice: None,
        };
        let slots = match spec.kind {
            TaskKind::Classify => 1,
            TaskKind::MultiLabel => spec.labels.len(),
            // Judging both orders is the debiasing; there is nothing to fit per position.
            TaskKind::Compare => return Ok(none("none (both orders averaged)")),
            // A rating keeps the model's own distribution over the scores.
            TaskKind::Rate => return Ok(none("none")),
        };
        let mut calibrator = none("");
        if matches!(
            method,
            CalibrationMethod::Contextual | CalibrationMethod::Auto
        ) && !content_free.is_empty()
        {
            let per_slot = (0..slots)
                .map(|s| {
                    let dists: Vec<Vec<f64>> = content_free.iter().map(|u| u[s].clone()).collect();
                    ContextualCalibration::from_content_free(&dists)
                })
                .collect::<Result<Vec<_>, _>>()?;
            calibrator.contextual = Some(per_slot);
        }
        if matches!(method, CalibrationMethod::Fitted | CalibrationMethod::Auto)
            && fit.len() >= MIN_FIT_ROWS
        {
            let fitted = (0..slots)
                .map(|s| calibrator.fit_slot(spec.kind, s, fit))
                .collect::<Result<Vec<_>>>()?;
            calibrator.fitted = Some(fitted);
        }
        calibrator.name = match (&calibrator.contextual, &calibrator.fitted) {
            (None, None) => "none",
            (Some(_), None) => "contextual",
            (None, Some(_)) => "fitted",
            (Some(_), Some(_)) => "contextual+fitted",
        }
        .to_string();
        Ok(calibrator)
    }

    fn fit_slot(&self, kind: TaskKind, slot: usize, fit: &[FitRow]) -> Result<FittedCalibration> {
        let mut dists = Vec::with_capacity(fit.len());
        let mut gold = Vec::with_capacity(fit.len());
        for (units, gold_labels) in fit {
            dists.push(self.apply_contextual(slot, &units[slot]));
            gold.push(match kind {
                TaskKind::Classify | TaskKind::Rate => gold_labels[0],
                // yes = 0, no = 1
                TaskKind::MultiLabel | TaskKind::Compare => {
                    usize::from(!gold_labels.contains(&slot))
                }
            });
        }
        Ok(FittedCalibration::fit(
            &dists,
            &gold,
            FitOptions::default(),
        )?)
    }

    /// Whether a fitted calibration was learned (then the fit split's rows are not evaluation rows).
    pub fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }

    fn apply_contextual(&self, slot: usize, p: &[f64]) -> Vec<f64> {
        match &self.contextual {
            Some(c) => c[slot].apply(p),
            None => p.to_vec(),
        }
    }

    /// Calibrated units.
    pub fn apply(&self, units: &[Vec<f64>]) -> Vec<Vec<f64>> {
        units
            .iter()
            .enumerate()
            .map(|(s, p)| {
                let p = self.apply_contextual(s, p);
                match &self.fitted {
                    Some(f) => f[s].apply(&p),
                    None => p,
                }
            })
            .collect()
    }
}

/// Folds of the cross-validation that chooses the calibration.
const CV_FOLDS: usize = 5;

/// Accuracy and log-loss of calibrated decisions on held-out fit rows.
#[derive(Debug, Clone, Default)]
struct CvScore {
    right: usize,
    decisions: usize,
    log_loss: f64,
}

impl CvScore {
    fn add(&mut self, spec: &TaskSpec, units: &[Vec<f64>], gold: &[usize]) {
        match spec.kind {
            TaskKind::Classify | TaskKind::Rate => {
                self.right += usize::from(argmax(&units[0]) == gold[0]);
                self.decisions += 1;
                self.log_loss -= units[0][gold[0]].max(1e-15).ln();
            }
            TaskKind::MultiLabel | TaskKind::Compare => {
                for (s, u) in units.iter().enumerate() {
                    let yes = gold.contains(&s);
                    self.right += usize::from((u[0] >= spec.multi_label.threshold) == yes);
                    self.decisions += 1;
                    self.log_loss -= (if yes { u[0] } else { 1.0 - u[0] }).max(1e-15).ln();
                }
            }
        }
    }

    fn accuracy(&self) -> f64 {
        self.right as f64 / self.decisions.max(1) as f64
    }

    fn log_loss(&self) -> f64 {
        self.log_loss / self.decisions.max(1) as f64
    }
}

/// Decisions on gold rows, accumulated one row at a time: (predicted, gold, confidence) per decision; multi-label
/// tasks make one yes/no decision per (row, label).
#[derive(Debug, Clone, Default)]
pub struct GoldDecisions {
    // Compact: a run may hold one decision per row of a large input.
    predicted: Vec<u32>,
    gold: Vec<u32>,
    confidence: Vec<f32>,
}

impl GoldDecisions {
    /// Add one gold row's units.
    pub fn add(&mut self, spec: &TaskSpec, units: &[Vec<f64>], gold: &[usize]) {
        match spec.kind {
            TaskKind::Classify | TaskKind::Rate => {
                let best = argmax(&units[0]);
                self.predicted.push(best as u32);
                self.confidence.push(units[0][best] as f32);
                self.gold.push(gold[0] as u32);
            }
            TaskKind::MultiLabel | TaskKind::Compare => {
                for (s, u) in units.iter().enumerate() {
                    let yes = u[0] >= spec.multi_label.threshold;
                    self.predicted.push(u32::from(!yes));
                    self.confidence.push(u[0].max(1.0 - u[0]) as f32);
                    self.gold.push(u32::from(!gold.contains(&s)));
                }
            }
        }
    }

    /// Add one pair with a non-tie gold preference (`0`: response 1, `1`: response 2): the decision is the
    /// response with P(better) above one half (`2`, a tie, at exactly one half); gold ties are not decisions.
    pub fn add_pair(&mut self, p_first: f64, gold: usize) {
        if gold > 1 {
            return;
        }
        let predicted = if p_first > 0.5 {
            0
        } else if p_first < 0.5 {
            1
        } else {
            2
        };
        self.predicted.push(predicted);
        self.confidence.push(p_first.max(1.0 - p_first) as f32);
        self.gold.push(gold as u32);
    }

    /// Accuracy, macro-F1, ECE and accuracy at coverage; `None` without decisions.
    pub fn report(&self) -> Option<ClassificationReport> {
        if self.gold.is_empty() {
            return None;
        }
        let predicted: Vec<usize> = self.predicted.iter().map(|&p| p as usize).collect();
        let gold: Vec<usize> = self.gold.iter().map(|&g| g as usize).collect();
        let confidence: Vec<f64> = self.confidence.iter().map(|&c| f64::from(c)).collect();
        classification_report(&predicted, &gold, &confidence).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 item 6: `auto` never picks a calibration that cross-validates worse than none. Here the raw
    /// model is right 90% of the time and its content-free prior is misleading: dividing it out would flip most
    /// labels, so contextual calibration must lose.
    #[test]
    fn issue_12_auto_calibration_never_makes_accuracy_worse() {
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"classify\"\ninput = \"{{ x }}\"\nlabels = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let fit: Vec<FitRow> = (0..60)
            .map(|i| {
                let gold = i % 2;
                let right = i % 10 != 0;
                let p_a = if (gold == 0) == right { 0.6 } else { 0.4 };
                (vec![vec![p_a, 1.0 - p_a]], vec![gold])
            })
            .collect();
        // Content-free inputs that say the model leans hard towards `b`.
        let content_free = vec![vec![vec![0.02, 0.98]]; 3];
        let chosen = Calibrator::build(&spec, &content_free, &fit).unwrap();
        let choice = chosen.choice.clone().unwrap();
        assert!(!chosen.name.starts_with("contextual"), "{choice}");
        let accuracy = |c: &Calibrator| {
            fit.iter()
                .filter(|(u, g)| argmax(&c.apply(u)[0]) == g[0])
                .count()
        };
        let none =
            Calibrator::build_with(&spec, CalibrationMethod::None, false, &[], &fit).unwrap();
        assert!(accuracy(&chosen) >= accuracy(&none), "{choice}");
    }

    #[test]
    fn fit_split_is_deterministic_and_near_its_share() {
        let picked = (0..10_000).filter(|&i| in_fit_split(7, i, 0.3)).count();
        assert!((2_800..3_200).contains(&picked), "{picked}");
        assert_eq!(in_fit_split(7, 42, 0.3), in_fit_split(7, 42, 0.3));
        assert!(!(0..1000).any(|i| in_fit_split(7, i, 0.0)));
    }
}
