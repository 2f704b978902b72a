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
}

impl Calibrator {
    /// The calibration of `spec` from the content-free inputs' units and the fit split's gold rows.
    pub fn build(spec: &TaskSpec, content_free: &[Vec<Vec<f64>>], fit: &[FitRow]) -> Result<Self> {
        let method = spec.calibration.method;
        let none = |name: &str| Self {
            contextual: None,
            fitted: None,
            name: name.into(),
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

    #[test]
    fn fit_split_is_deterministic_and_near_its_share() {
        let picked = (0..10_000).filter(|&i| in_fit_split(7, i, 0.3)).count();
        assert!((2_800..3_200).contains(&picked), "{picked}");
        assert_eq!(in_fit_split(7, 42, 0.3), in_fit_split(7, 42, 0.3));
        assert!(!(0..1000).any(|i| in_fit_split(7, i, 0.0)));
    }
}
