//! Turning a model's biased label distribution into a calibrated one.
//!
//! - [`ContextualCalibration`] (Zhao et al. 2021, "Calibrate Before Use"): score content-free inputs such as "N/A",
//!   take the mean distribution `p_cf` as the model's prior bias, and divide it out: `q ∝ p / p_cf`. Needs no gold.
//! - [`FittedCalibration`]: where some rows carry gold labels, learn `q = softmax(a · log p + b)` (an inverse
//!   temperature `a` and a per-class bias `b`) by minimising the regularised negative log-likelihood on them. The
//!   objective is convex in (a, b), so plain gradient descent with backtracking finds its optimum.

use crate::{Error, Result};

/// Floor for probabilities before taking logs, so a zero never becomes −∞.
const MIN_PROB: f64 = 1e-12;

/// Normalise non-negative weights to sum to one; all-zero input becomes uniform.
pub fn normalise(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    if total > 0.0 && total.is_finite() {
        weights.iter().map(|w| w / total).collect()
    } else {
        vec![1.0 / weights.len() as f64; weights.len()]
    }
}

/// Softmax of log-weights, computed stably.
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return vec![1.0 / logits.len() as f64; logits.len()];
    }
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    normalise(&exp)
}

/// Contextual calibration: the model's mean distribution on content-free inputs, divided out of every prediction.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContextualCalibration {
    /// Mean distribution over labels that the model gives content-free inputs.
    pub content_free: Vec<f64>,
}

impl ContextualCalibration {
    /// Estimate the bias from the distributions the model gave each content-free input.
    pub fn from_content_free(distributions: &[Vec<f64>]) -> Result<Self> {
        let first = distributions.first().ok_or_else(|| {
            Error::NotEnoughData(
                "contextual calibration needs at least one content-free input".into(),
            )
        })?;
        let k = first.len();
        let mut mean = vec![0.0; k];
        for d in distributions {
            if d.len() != k {
                return Err(Error::InvalidInput(format!(
                    "content-free distributions have {} and {k} labels",
                    d.len()
                )));
            }
            for (m, p) in mean.iter_mut().zip(d) {
                *m += p / distributions.len() as f64;
            }
        }
        Ok(Self {
            content_free: normalise(&mean),
        })
    }

    /// Calibrated distribution: `p / p_cf`, renormalised.
    pub fn apply(&self, distribution: &[f64]) -> Vec<f64> {
        let divided: Vec<f64> = distribution
            .iter()
            .zip(&self.content_free)
            .map(|(p, cf)| p / cf.max(MIN_PROB))
            .collect();
        normalise(&divided)
    }
}

/// Fitted calibration `softmax(a · log p + b)`; `a` is the inverse temperature, `b` a per-class bias.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FittedCalibration {
    /// Inverse temperature: > 1 sharpens, < 1 flattens.
    pub inverse_temperature: f64,
    /// Additive bias per class on the log scale.
    pub bias: Vec<f64>,
}

/// Settings of [`FittedCalibration::fit`].
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// L2 penalty on the bias; keeps classes with few or no gold rows near 0.
    pub l2: f64,
    /// Upper bound on gradient steps.
    pub max_iterations: usize,
    /// Stop when the objective improves by less than this.
    pub tolerance: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            l2: 1e-2,
            max_iterations: 2_000,
            tolerance: 1e-10,
        }
    }
}

impl FittedCalibration {
    /// The identity transform for `k` classes.
    pub fn identity(k: usize) -> Self {
        Self {
            inverse_temperature: 1.0,
            bias: vec![0.0; k],
        }
    }

    /// Fit on distributions (not logs) and the gold class of each.
    pub fn fit(distributions: &[Vec<f64>], gold: &[usize], options: FitOptions) -> Result<Self> {
        if distributions.len() != gold.len() {
            return Err(Error::InvalidInput(format!(
                "{} distributions but {} gold labels",
                distributions.len(),
                gold.len()
            )));
        }
        let k = distributions.first().map(Vec::len).ok_or_else(|| {
            Error::NotEnoughData("fitted calibration needs at least one gold row".into())
        })?;
        let mut logs = Vec::with_capacity(distributions.len());
        for (d, &g) in distributions.iter().zip(gold) {
            if d.len() != k || g >= k {
                return Err(Error::InvalidInput(format!(
                    "a row has {} labels (expected {k}) or gold {g} out of range",
                    d.len()
                )));
            }
            logs.push(d.iter().map(|p| p.max(MIN_PROB).ln()).collect::<Vec<f64>>());
        }
        let objective = |params: &FittedCalibration| -> (f64, f64, Vec<f64>) {
            let n = logs.len() as f64;
            let mut loss = 0.0;
            let mut grad_a = 0.0;
            let mut grad_b = vec![0.0; k];
            for (s, &y) in logs.iter().zip(gold) {
                let z: Vec<f64> = s
                    .iter()
                    .zip(&params.bias)
                    .map(|(s, b)| params.inverse_temperature * s + b)
                    .collect();
                let q = softmax(&z);
                loss -= q[y].max(MIN_PROB).ln() / n;
                for c in 0..k {
                    let residual = q[c] - f64::from(u8::from(c == y));
                    grad_a += residual * s[c] / n;
                    grad_b[c] += residual / n;
                }
            }
            for (g, b) in grad_b.iter_mut().zip(&params.bias) {
                loss += options.l2 * b * b;
                *g += 2.0 * options.l2 * b;
            }
            (loss, grad_a, grad_b)
        };

        let mut params = Self::identity(k);
        let (mut loss, mut grad_a, mut grad_b) = objective(&params);
        let mut step = 1.0;
        for _ in 0..options.max_iterations {
            let grad_norm2 = grad_a * grad_a + grad_b.iter().map(|g| g * g).sum::<f64>();
            if grad_norm2 < 1e-20 {
                break;
            }
            // Backtracking line search (Armijo) along the negative gradient.
            let mut accepted = None;
            while step > 1e-12 {
                let candidate = Self {
                    inverse_temperature: params.inverse_temperature - step * grad_a,
                    bias: params
                        .bias
                        .iter()
                        .zip(&grad_b)
                        .map(|(b, g)| b - step * g)
                        .collect(),
                };
                let evaluated = objective(&candidate);
                if evaluated.0 <= loss - 0.5 * step * grad_norm2 {
                    accepted = Some((candidate, evaluated));
                    break;
                }
                step *= 0.5;
            }
            let Some((candidate, (new_loss, new_grad_a, new_grad_b))) = accepted else {
                break;
            };
            let improvement = loss - new_loss;
            params = candidate;
            (loss, grad_a, grad_b) = (new_loss, new_grad_a, new_grad_b);
            step *= 2.0;
            if improvement < options.tolerance {
                break;
            }
        }
        Ok(params)
    }

    /// Calibrated distribution for one row's distribution.
    pub fn apply(&self, distribution: &[f64]) -> Vec<f64> {
        let z: Vec<f64> = distribution
            .iter()
            .zip(&self.bias)
            .map(|(p, b)| self.inverse_temperature * p.max(MIN_PROB).ln() + b)
            .collect();
        softmax(&z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contextual_calibration_removes_a_constant_bias() {
        // A model that always leans 80/20 towards class 0 on content-free input.
        let cal =
            ContextualCalibration::from_content_free(&[vec![0.8, 0.2], vec![0.8, 0.2]]).unwrap();
        let q = cal.apply(&[0.8, 0.2]);
        assert!((q[0] - 0.5).abs() < 1e-12);
        // A row the model rated 0.6/0.4 is, relative to its bias, evidence for class 1.
        let q = cal.apply(&[0.6, 0.4]);
        assert!(q[1] > 0.5, "{q:?}");
    }

    #[test]
    fn fitted_calibration_recovers_a_shifted_sharpened_model() {
        // Ground truth: class 1 is right whenever the model gives it > 0.3 (a bias towards class 0).
        let mut dists = Vec::new();
        let mut gold = Vec::new();
        for i in 0..200 {
            let p1 = (i as f64 + 0.5) / 200.0;
            dists.push(vec![1.0 - p1, p1]);
            gold.push(usize::from(p1 > 0.3));
        }
        let raw_hits = dists
            .iter()
            .zip(&gold)
            .filter(|(d, &g)| usize::from(d[1] > d[0]) == g)
            .count();
        let cal = FittedCalibration::fit(&dists, &gold, FitOptions::default()).unwrap();
        let fitted_hits = dists
            .iter()
            .zip(&gold)
            .filter(|(d, &g)| {
                let q = cal.apply(d);
                usize::from(q[1] > q[0]) == g
            })
            .count();
        assert!(raw_hits < 170, "raw {raw_hits}");
        assert!(fitted_hits >= 195, "fitted {fitted_hits}, params {cal:?}");
        assert!(cal.bias[1] > cal.bias[0]);
    }

    #[test]
    fn identity_changes_nothing() {
        let q = FittedCalibration::identity(3).apply(&[0.2, 0.3, 0.5]);
        for (a, b) in q.iter().zip([0.2, 0.3, 0.5]) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn mismatched_gold_is_an_error() {
        assert!(FittedCalibration::fit(&[vec![0.5, 0.5]], &[2], FitOptions::default()).is_err());
        assert!(ContextualCalibration::from_content_free(&[]).is_err());
    }
}
