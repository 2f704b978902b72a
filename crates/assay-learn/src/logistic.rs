//! Multinomial logistic regression with an L2 penalty on the weights (not the intercepts), fitted by L-BFGS.
//!
//! The objective is scikit-learn's for `LogisticRegression(C=c)` with the multinomial loss:
//! `c * sum_i -log p(y_i | x_i) + 0.5 * ||W||^2`. Features are standardised internally (mean 0, variance 1, over the
//! training rows) so one `c` suits embeddings of any scale; the coefficients reported back are in the original
//! space, so predictions do not depend on it.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// Inverse regularisation strength (scikit-learn's `C`); larger fits the training rows more closely.
    pub c: f64,
    /// L-BFGS iterations at most.
    pub max_iter: usize,
    /// Stop when the gradient's largest component falls below this.
    pub tolerance: f64,
    /// Standardise features before fitting (the returned model applies it itself).
    pub standardize: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            c: 1.0,
            max_iter: 500,
            tolerance: 1e-6,
            standardize: true,
        }
    }
}

/// A fitted model: per class a weight vector and an intercept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    classes: usize,
    dim: usize,
    /// `classes x dim`, row-major, in the original feature space.
    weights: Vec<f64>,
    intercepts: Vec<f64>,
    /// Iterations the fit took.
    pub iterations: usize,
}

impl LogisticRegression {
    /// Fit on rows `x` with labels `y` in `0..classes`.
    ///
    /// # Errors
    /// [`Error::Data`] when there are no rows, rows differ in width, or a label is out of range.
    pub fn fit(x: &[Vec<f64>], y: &[usize], classes: usize, options: &FitOptions) -> Result<Self> {
        let dim = check(x, y, classes)?;
        let scaler = Scaler::new(x, dim, options.standardize);
        let z: Vec<Vec<f64>> = x.iter().map(|r| scaler.apply(r)).collect();
        let problem = Problem {
            x: &z,
            y,
            classes,
            dim,
            c: options.c,
        };
        let mut theta = vec![0.0; classes * (dim + 1)];
        let iterations = lbfgs(&problem, &mut theta, options.max_iter, options.tolerance);
        let (weights, intercepts) = scaler.unscale(&theta, classes, dim);
        Ok(Self {
            classes,
            dim,
            weights,
            intercepts,
            iterations,
        })
    }

    /// Class probabilities of one row.
    pub fn predict_proba(&self, row: &[f64]) -> Vec<f64> {
        let logits: Vec<f64> = (0..self.classes)
            .map(|k| {
                let w = &self.weights[k * self.dim..(k + 1) * self.dim];
                self.intercepts[k] + w.iter().zip(row).map(|(a, b)| a * b).sum::<f64>()
            })
            .collect();
        softmax(&logits)
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The weight of feature `j` for class `k`, in the original feature space.
    pub fn weight(&self, k: usize, j: usize) -> f64 {
        self.weights[k * self.dim + j]
    }

    /// The intercept of class `k`.
    pub fn intercept(&self, k: usize) -> f64 {
        self.intercepts[k]
    }
}

fn check(x: &[Vec<f64>], y: &[usize], classes: usize) -> Result<usize> {
    let first = x.first().ok_or_else(|| Error::Data("no rows".into()))?;
    let dim = first.len();
    if x.len() != y.len() {
        return Err(Error::Data(format!(
            "{} rows but {} labels",
            x.len(),
            y.len()
        )));
    }
    if let Some(i) = x.iter().position(|r| r.len() != dim) {
        return Err(Error::Data(format!(
            "row {i} has {} features, row 0 has {dim}",
            x[i].len()
        )));
    }
    if let Some(i) = y.iter().position(|&c| c >= classes) {
        return Err(Error::Data(format!(
            "label {} of row {i} is not below {classes}",
            y[i]
        )));
    }
    if x.iter().flatten().any(|v| !v.is_finite()) {
        return Err(Error::Data("a feature is not a finite number".into()));
    }
    Ok(dim)
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Per-feature standardisation.
struct Scaler {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Scaler {
    fn new(x: &[Vec<f64>], dim: usize, on: bool) -> Self {
        if !on {
            return Self {
                mean: vec![0.0; dim],
                scale: vec![1.0; dim],
            };
        }
        let n = x.len() as f64;
        let mut mean = vec![0.0; dim];
        for r in x {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v / n;
            }
        }
        let mut var = vec![0.0; dim];
        for r in x {
            for ((s, v), m) in var.iter_mut().zip(r).zip(&mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        let scale = var
            .into_iter()
            .map(|v| if v > 1e-24 { v.sqrt() } else { 1.0 })
            .collect();
        Self { mean, scale }
    }

    fn apply(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((v, m), s)| (v - m) / s)
            .collect()
    }

    /// Weights on standardised features → weights and intercepts on the original ones.
    fn unscale(&self, theta: &[f64], classes: usize, dim: usize) -> (Vec<f64>, Vec<f64>) {
        let mut weights = vec![0.0; classes * dim];
        let mut intercepts = vec![0.0; classes];
        for k in 0..classes {
            let row = &theta[k * (dim + 1)..(k + 1) * (dim + 1)];
            let mut b = row[dim];
            for j in 0..dim {
                let w = row[j] / self.scale[j];
                weights[k * dim + j] = w;
                b -= w * self.mean[j];
            }
            intercepts[k] = b;
        }
        (weights, intercepts)
    }
}

/// The penalised loss over standardised rows; parameters are per class `dim` weights then the intercept.
struct Problem<'a> {
    x: &'a [Vec<f64>],
    y: &'a [usize],
    classes: usize,
    dim: usize,
    c: f64,
}

impl Problem<'_> {
    /// Loss and gradient at `theta`.
    fn evaluate(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (k, d) = (self.classes, self.dim);
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        let mut logits = vec![0.0; k];
        for (row, &label) in self.x.iter().zip(self.y) {
            for (c, l) in logits.iter_mut().enumerate() {
                let p = &theta[c * (d + 1)..(c + 1) * (d + 1)];
                *l = p[d] + p[..d].iter().zip(row).map(|(a, b)| a * b).sum::<f64>();
            }
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_sum = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            loss += self.c * (log_sum - logits[label]);
            for (c, l) in logits.iter().enumerate() {
                let residual = self.c * ((l - log_sum).exp() - f64::from(u8::from(c == label)));
                let g = &mut grad[c * (d + 1)..(c + 1) * (d + 1)];
                for (gj, xj) in g[..d].iter_mut().zip(row) {
                    *gj += residual * xj;
                }
                g[d] += residual;
            }
        }
        for c in 0..k {
            for j in 0..d {
                let w = theta[c * (d + 1) + j];
                loss += 0.5 * w * w;
                grad[c * (d + 1) + j] += w;
            }
        }
        loss
    }
}

/// Minimise with L-BFGS (memory 10) and a backtracking Armijo line search; returns the iterations taken.
fn lbfgs(problem: &Problem<'_>, theta: &mut [f64], max_iter: usize, tolerance: f64) -> usize {
    const MEMORY: usize = 10;
    let n = theta.len();
    let mut grad = vec![0.0; n];
    let mut loss = problem.evaluate(theta, &mut grad);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let mut next_grad = vec![0.0; n];
    for iteration in 0..max_iter {
        if grad.iter().fold(0.0f64, |m, g| m.max(g.abs())) < tolerance {
            return iteration;
        }
        let direction = two_loop(&grad, &history);
        let slope: f64 = direction.iter().zip(&grad).map(|(d, g)| d * g).sum();
        let direction = if slope < 0.0 {
            direction
        } else {
            grad.iter().map(|g| -g).collect()
        };
        let slope: f64 = direction.iter().zip(&grad).map(|(d, g)| d * g).sum();
        let mut step = if history.is_empty() {
            1.0 / grad.iter().map(|g| g * g).sum::<f64>().sqrt().max(1.0)
        } else {
            1.0
        };
        let mut candidate = vec![0.0; n];
        let mut next_loss;
        loop {
            for ((c, t), d) in candidate.iter_mut().zip(theta.iter()).zip(&direction) {
                *c = t + step * d;
            }
            next_loss = problem.evaluate(&candidate, &mut next_grad);
            if next_loss <= loss + 1e-4 * step * slope || step < 1e-16 {
                break;
            }
            step *= 0.5;
        }
        let s: Vec<f64> = candidate
            .iter()
            .zip(theta.iter())
            .map(|(a, b)| a - b)
            .collect();
        let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
        theta.copy_from_slice(&candidate);
        std::mem::swap(&mut grad, &mut next_grad);
        let improvement = loss - next_loss;
        loss = next_loss;
        if sy > 1e-12 {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y, 1.0 / sy));
        }
        if improvement.abs() <= 1e-14 * loss.abs().max(1.0) {
            return iteration + 1;
        }
    }
    max_iter
}

/// The L-BFGS two-loop recursion: -H * grad.
fn two_loop(
    grad: &[f64],
    history: &std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)>,
) -> Vec<f64> {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut q: Vec<f64> = grad.to_vec();
    let mut alphas = Vec::with_capacity(history.len());
    for (s, y, rho) in history.iter().rev() {
        let alpha = rho * dot(s, &q);
        for (qi, yi) in q.iter_mut().zip(y) {
            *qi -= alpha * yi;
        }
        alphas.push(alpha);
    }
    if let Some((s, y, _)) = history.back() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for ((s, y, rho), alpha) in history.iter().zip(alphas.into_iter().rev()) {
        let beta = rho * dot(y, &q);
        for (qi, si) in q.iter_mut().zip(s) {
            *qi += (alpha - beta) * si;
        }
    }
    q.into_iter().map(|v| -v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_training_data_is_an_error() {
        let o = FitOptions::default();
        assert!(LogisticRegression::fit(&[], &[], 2, &o).is_err());
        assert!(LogisticRegression::fit(&[vec![1.0], vec![1.0, 2.0]], &[0, 1], 2, &o).is_err());
        assert!(LogisticRegression::fit(&[vec![1.0]], &[2], 2, &o).is_err());
        assert!(LogisticRegression::fit(&[vec![f64::NAN]], &[0], 2, &o).is_err());
    }

    #[test]
    fn separable_classes_are_learned() {
        let x: Vec<Vec<f64>> = (0..60)
            .map(|i| vec![(i % 3) as f64 + 0.01 * i as f64, ((i % 3) * 2) as f64])
            .collect();
        let y: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let m = LogisticRegression::fit(
            &x,
            &y,
            3,
            &FitOptions {
                c: 10.0,
                ..FitOptions::default()
            },
        )
        .unwrap();
        let right = x.iter().zip(&y).filter(|(r, &c)| {
            let p = m.predict_proba(r);
            (0..3).all(|k| p[c] >= p[k])
        });
        assert_eq!(right.count(), 60);
    }
    /// Reference: scikit-learn 1.9.1, `LogisticRegression(C=1.0, tol=1e-10, max_iter=10000)` (lbfgs, multinomial)
    /// on these 20 rows (iris sepal length and width).
    #[test]
    fn coefficients_match_scikit_learn() {
        let x = [
            [5.1, 3.5],
            [4.9, 3.0],
            [4.7, 3.2],
            [4.6, 3.1],
            [5.0, 3.6],
            [7.0, 3.2],
            [6.4, 3.2],
            [6.9, 3.1],
            [5.5, 2.3],
            [6.5, 2.8],
            [6.3, 3.3],
            [5.8, 2.7],
            [7.1, 3.0],
            [6.3, 2.9],
            [6.5, 3.0],
            [5.7, 2.8],
            [5.4, 3.9],
            [6.7, 3.1],
            [6.0, 2.2],
            [4.8, 3.4],
        ];
        let x: Vec<Vec<f64>> = x.iter().map(|r| r.to_vec()).collect();
        let y = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 1, 0, 2, 1, 0];
        let options = FitOptions {
            c: 1.0,
            max_iter: 5000,
            tolerance: 1e-9,
            standardize: false,
        };
        let m = LogisticRegression::fit(&x, &y, 3, &options).unwrap();
        let coef = [
            [-1.49115, 0.830109],
            [0.631393, -0.78258],
            [0.859757, -0.047529],
        ];
        let intercept = [5.96264, -1.101616, -4.861024];
        for (k, row) in coef.iter().enumerate() {
            for (j, w) in row.iter().enumerate() {
                assert!(
                    (m.weight(k, j) - w).abs() < 1e-4,
                    "w[{k}][{j}] = {}",
                    m.weight(k, j)
                );
            }
            assert!(
                (m.intercept(k) - intercept[k]).abs() < 1e-3,
                "b[{k}] = {}",
                m.intercept(k)
            );
        }
        let p = m.predict_proba(&[6.0, 3.0]);
        for (a, b) in p.iter().zip([0.191812, 0.44118, 0.367008]) {
            assert!((a - b).abs() < 1e-4, "{p:?}");
        }
        // Standardising inside changes the penalty's geometry, not the data it can fit: still a good fit.
        let standardized = LogisticRegression::fit(&x, &y, 3, &FitOptions::default()).unwrap();
        assert!(standardized
            .predict_proba(&[6.0, 3.0])
            .iter()
            .all(|v| v.is_finite()));
    }
}
