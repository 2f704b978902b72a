//! Cross-validation: out-of-fold probabilities (every row predicted by a model that never saw it), temperature
//! scaling fitted on them, and the figures `auto` compares labelers by.

use crate::logistic::{softmax, FitOptions, LogisticRegression};
use crate::{Error, Result};

/// The fold of row `i` of `n` in `k` folds: a seeded shuffle, then round robin, so folds differ in size by at most
/// one and the same inputs give the same folds.
pub fn folds(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        state = splitmix(state);
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let mut fold = vec![0; n];
    for (position, &row) in order.iter().enumerate() {
        fold[row] = position % k.max(1);
    }
    fold
}

/// One step of splitmix64.
pub fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Out-of-fold class probabilities of every row: row `i` is predicted by the model fitted on the other folds.
/// With fewer rows than folds, folds shrink to the rows there are (at least 2).
///
/// # Errors
/// [`Error::Data`] for fewer than 2 rows or bad rows.
pub fn out_of_fold(
    x: &[Vec<f64>],
    y: &[usize],
    classes: usize,
    k: usize,
    seed: u64,
    options: &FitOptions,
) -> Result<Vec<Vec<f64>>> {
    if x.len() < 2 {
        return Err(Error::Data(format!(
            "{} rows: cross-validation needs at least 2",
            x.len()
        )));
    }
    let k = k.clamp(2, x.len());
    let fold = folds(x.len(), k, seed);
    let mut out = vec![Vec::new(); x.len()];
    for f in 0..k {
        let (train_x, train_y): (Vec<Vec<f64>>, Vec<usize>) = x
            .iter()
            .zip(y)
            .zip(&fold)
            .filter(|(_, &g)| g != f)
            .map(|((r, &c), _)| (r.clone(), c))
            .unzip();
        let model = LogisticRegression::fit(&train_x, &train_y, classes, options)?;
        for (i, _) in fold.iter().enumerate().filter(|(_, &g)| g == f) {
            out[i] = model.predict_proba(&x[i]);
        }
    }
    Ok(out)
}

/// Mean negative log-likelihood of the gold labels.
pub fn log_loss(probabilities: &[Vec<f64>], y: &[usize]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    probabilities
        .iter()
        .zip(y)
        .map(|(p, &c)| -p[c].max(1e-15).ln())
        .sum::<f64>()
        / n
}

/// Share of rows whose most probable class is the gold one.
pub fn accuracy(probabilities: &[Vec<f64>], y: &[usize]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    probabilities
        .iter()
        .zip(y)
        .filter(|(p, &c)| argmax(p) == c)
        .count() as f64
        / n
}

/// The index of the largest value (the first on a tie).
pub fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i)
}

/// Temperature scaling (Guo et al. 2017): the `t` that minimises the log-loss of `softmax(log p / t)` on
/// out-of-fold probabilities, found by golden-section search over log t in [-3, 3].
pub fn fit_temperature(probabilities: &[Vec<f64>], y: &[usize]) -> f64 {
    let loss = |log_t: f64| {
        let t = log_t.exp();
        let scaled: Vec<Vec<f64>> = probabilities
            .iter()
            .map(|p| apply_temperature(p, t))
            .collect();
        log_loss(&scaled, y)
    };
    let (mut a, mut b) = (-3.0f64, 3.0f64);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - ratio * (b - a), a + ratio * (b - a));
    for _ in 0..60 {
        if loss(c) < loss(d) {
            b = d;
        } else {
            a = c;
        }
        c = b - ratio * (b - a);
        d = a + ratio * (b - a);
    }
    ((a + b) / 2.0).exp()
}

/// `softmax(log p / t)`.
pub fn apply_temperature(p: &[f64], t: f64) -> Vec<f64> {
    let logits: Vec<f64> = p.iter().map(|v| v.max(1e-300).ln() / t).collect();
    softmax(&logits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_balanced_and_deterministic() {
        let f = folds(103, 5, 7);
        assert_eq!(f, folds(103, 5, 7));
        for k in 0..5 {
            let size = f.iter().filter(|&&g| g == k).count();
            assert!((20..=21).contains(&size), "{size}");
        }
        assert_ne!(f, folds(103, 5, 8));
    }

    #[test]
    fn temperature_sharpens_underconfident_probabilities() {
        // Always right, but only 60% sure: the best temperature is below 1 (sharper).
        let p: Vec<Vec<f64>> = (0..50)
            .map(|i| {
                if i % 2 == 0 {
                    vec![0.6, 0.4]
                } else {
                    vec![0.4, 0.6]
                }
            })
            .collect();
        let y: Vec<usize> = (0..50).map(|i| i % 2).collect();
        let t = fit_temperature(&p, &y);
        assert!(t < 0.2, "{t}");
        // Right 60% of the time at 60% confidence: already calibrated, t near 1.
        let y: Vec<usize> = (0..50)
            .map(|i| if i % 5 < 3 { i % 2 } else { 1 - i % 2 })
            .collect();
        let t = fit_temperature(&p, &y);
        assert!((t - 1.0).abs() < 0.15, "{t}");
    }

    #[test]
    fn out_of_fold_rows_are_never_predicted_by_a_model_that_saw_them() {
        // A row whose label contradicts its twin: a model that saw it would lean towards it; out of fold it
        // cannot, so the contradicting rows are predicted wrong.
        let mut x: Vec<Vec<f64>> = (0..40).map(|i| vec![(i % 2) as f64]).collect();
        let mut y: Vec<usize> = (0..40).map(|i| i % 2).collect();
        x.push(vec![0.0]);
        y.push(1);
        let p = out_of_fold(&x, &y, 2, 5, 1, &FitOptions::default()).unwrap();
        assert!(p[40][1] < 0.5, "{:?}", p[40]);
        assert!(accuracy(&p[..40], &y[..40]) > 0.99);
    }
}
