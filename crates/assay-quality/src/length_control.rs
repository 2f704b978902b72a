//! Length-controlled preferences (AlpacaEval's length-controlled win rate, Dubois et al. 2024): a logistic model
//! of a judge's preference on the length difference of the two responses, fitted over a task's pairs, tells how
//! much of the judge's verdicts length explains; removing that term from each pair's log-odds gives the
//! preference the judge would have had between responses of equal length.
//!
//! The model: `logit P(response 1 preferred) = a + b · tanh((len₁ − len₂) / s)`, with `s` the standard deviation of
//! the length differences (AlpacaEval's feature: bounded, so a few very long responses do not dominate). It is fitted
//! to the judge's soft preferences (cross-entropy against soft targets) by Newton's method, with a small L2 penalty
//! so that separable data still has a finite answer.

/// A fitted length model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LengthModel {
    /// Intercept `a`: the preference for response 1 at equal length (position, after both orders: near 0).
    pub intercept: f64,
    /// Slope `b` on the length feature: positive when the judge favours the longer response.
    pub slope: f64,
    /// The scale `s` of the length differences (characters).
    pub scale: f64,
    /// Pairs it was fitted on.
    pub pairs: usize,
}

/// Soft preferences are kept this far from 0 and 1 so their log-odds are finite.
const EPS: f64 = 1e-6;
/// L2 penalty on the slope and intercept.
const RIDGE: f64 = 1e-3;

fn logit(p: f64) -> f64 {
    let p = p.clamp(EPS, 1.0 - EPS);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl LengthModel {
    /// Fit to `(soft preference for response 1, length difference len₁ − len₂)` pairs. `None` with fewer than two
    /// pairs or when every length difference is zero (length explains nothing there).
    pub fn fit(pairs: &[(f64, f64)]) -> Option<Self> {
        let n = pairs.len();
        if n < 2 {
            return None;
        }
        let mean = pairs.iter().map(|p| p.1).sum::<f64>() / n as f64;
        let var = pairs.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / n as f64;
        let scale = var.sqrt();
        if scale.is_nan() || scale <= 0.0 {
            return None;
        }
        let xs: Vec<f64> = pairs.iter().map(|p| (p.1 / scale).tanh()).collect();
        let ys: Vec<f64> = pairs.iter().map(|p| p.0.clamp(0.0, 1.0)).collect();
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for _ in 0..100 {
            // Gradient and Hessian of the mean cross-entropy plus the ridge term.
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (&x, &y) in xs.iter().zip(&ys) {
                let p = sigmoid(a + b * x);
                let w = p * (1.0 - p);
                ga += p - y;
                gb += (p - y) * x;
                haa += w;
                hab += w * x;
                hbb += w * x * x;
            }
            let nf = n as f64;
            let (ga, gb) = (ga / nf + RIDGE * a, gb / nf + RIDGE * b);
            let (haa, hab, hbb) = (haa / nf + RIDGE, hab / nf, hbb / nf + RIDGE);
            let det = haa * hbb - hab * hab;
            if det.is_nan() || det.abs() <= 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            a -= da;
            b -= db;
            if da.abs().max(db.abs()) < 1e-10 {
                break;
            }
        }
        Some(Self {
            intercept: a,
            slope: b,
            scale,
            pairs: n,
        })
    }

    /// The feature of a length difference.
    pub fn feature(&self, length_difference: f64) -> f64 {
        (length_difference / self.scale).tanh()
    }

    /// The preference with the length term removed: `σ(logit(soft) − b · feature)`.
    pub fn control(&self, soft: f64, length_difference: f64) -> f64 {
        sigmoid(logit(soft) - self.slope * self.feature(length_difference))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of uniforms in [0, 1).
    fn uniforms(seed: u64) -> impl Iterator<Item = f64> {
        let mut state = seed;
        std::iter::repeat_with(move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        })
    }

    #[test]
    fn recovers_the_slope_and_intercept_it_was_generated_with() {
        let mut u = uniforms(7);
        let pairs: Vec<(f64, f64)> = (0..4000)
            .map(|_| {
                let d = (u.next().unwrap() - 0.5) * 600.0;
                let p = sigmoid(0.3 + 1.5 * (d / 173.2).tanh());
                // Hard 0/1 verdicts drawn with that probability: the fit must average them.
                (f64::from(u.next().unwrap() < p), d)
            })
            .collect();
        let m = LengthModel::fit(&pairs).unwrap();
        // The scale is the standard deviation of uniform(-300, 300): 300/√3 ≈ 173.2.
        assert!((m.scale - 173.2).abs() < 6.0, "{m:?}");
        assert!((m.slope - 1.5).abs() < 0.2, "{m:?}");
        assert!((m.intercept - 0.3).abs() < 0.1, "{m:?}");
    }

    #[test]
    fn control_removes_a_pure_length_preference() {
        // A judge that only looks at length: prefers the longer response with log-odds 2·feature.
        let pairs: Vec<(f64, f64)> = (-50..=50)
            .map(|i| {
                let d = f64::from(i) * 4.0;
                (sigmoid(2.0 * (d / 116.6).tanh()), d)
            })
            .collect();
        let m = LengthModel::fit(&pairs).unwrap();
        assert!(m.slope > 1.8, "{m:?}");
        for &(soft, d) in &pairs {
            assert!((m.control(soft, d) - 0.5).abs() < 0.03, "{soft} {d}");
        }
        // Equal lengths are left as they were.
        assert!((m.control(0.8, 0.0) - 0.8).abs() < 1e-9);
    }

    #[test]
    fn no_model_without_length_differences() {
        assert!(LengthModel::fit(&[(0.7, 0.0), (0.2, 0.0)]).is_none());
        assert!(LengthModel::fit(&[(0.7, 10.0)]).is_none());
    }
}
