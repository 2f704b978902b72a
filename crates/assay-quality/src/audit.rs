//! Audit sampling: how many labels to check, the interval an error rate lies in, and whether a batch passes.
//!
//! - [`zero_defect_sample_size`]: the smallest sample that, if it holds no error, shows with confidence `c` that
//!   the error rate is below `p`: `n = ceil(ln(1 - c) / ln(1 - p))` (299 for `c = 0.95`, `p = 0.01`).
//! - [`wilson_interval`]: the Wilson (1927) score interval for a proportion, two-sided.
//! - [`audit_decision`]: pass when the one-sided Wilson upper bound on the error rate is at most the target.
//!
//! ```
//! use assay_quality::audit::{audit_decision, wilson_interval, zero_defect_sample_size};
//!
//! assert_eq!(zero_defect_sample_size(0.95, 0.01)?, 299);
//! let ci = wilson_interval(10, 200, 0.95)?;
//! assert!((ci.lower - 0.027).abs() < 5e-4 && (ci.upper - 0.090).abs() < 5e-4);
//! assert!(audit_decision(0, 299, 0.01, 0.95)?.passed);
//! # Ok::<(), assay_quality::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

fn check_probability(name: &str, x: f64) -> Result<()> {
    if x > 0.0 && x < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{name} must be strictly between 0 and 1, not {x}"
        )))
    }
}

/// The number of items to check so that finding no error shows, with confidence `confidence`, that the error
/// rate is below `max_error_rate`: the smallest `n` with `(1 - max_error_rate)^n <= 1 - confidence`.
pub fn zero_defect_sample_size(confidence: f64, max_error_rate: f64) -> Result<u64> {
    check_probability("confidence", confidence)?;
    check_probability("max_error_rate", max_error_rate)?;
    let n = ((1.0 - confidence).ln() / (1.0 - max_error_rate).ln()).ceil();
    // `ln_1p` would be more precise for tiny rates, but the ceiling makes the two agree except at exact integers,
    // where the plain form is what the textbook formula gives.
    Ok(n as u64)
}

/// A closed interval `[lower, upper]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
}

/// The two-sided Wilson score interval at `confidence` for `successes` of `trials`.
///
/// With `z` the standard normal quantile at `(1 + confidence) / 2` and `p = successes / trials`:
/// `(p + z^2 / 2n ± z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n)`.
pub fn wilson_interval(successes: u64, trials: u64, confidence: f64) -> Result<Interval> {
    check_probability("confidence", confidence)?;
    let z = normal_quantile((1.0 + confidence) / 2.0);
    wilson(successes, trials, z)
}

/// The one-sided Wilson upper bound at `confidence` (`z` at `confidence` rather than `(1 + confidence) / 2`).
pub fn wilson_upper_bound(successes: u64, trials: u64, confidence: f64) -> Result<f64> {
    check_probability("confidence", confidence)?;
    Ok(wilson(successes, trials, normal_quantile(confidence))?.upper)
}

fn wilson(successes: u64, trials: u64, z: f64) -> Result<Interval> {
    if trials == 0 {
        return Err(Error::NotEnoughData("no trials".into()));
    }
    if successes > trials {
        return Err(Error::InvalidInput(format!(
            "{successes} successes in {trials} trials"
        )));
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Ok(Interval {
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    })
}

/// The verdict on an audited batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditDecision {
    /// Errors found in the sample.
    pub errors: u64,
    /// Items checked.
    pub sampled: u64,
    /// `errors / sampled`.
    pub observed_rate: f64,
    /// One-sided Wilson upper bound on the error rate at `confidence`.
    pub upper_bound: f64,
    /// The error rate the batch must stay at or below.
    pub target: f64,
    /// Confidence of the bound.
    pub confidence: f64,
    /// Whether `upper_bound <= target`.
    pub passed: bool,
}

/// Decides whether a batch passes: `errors` found among `sampled` checked items pass when the one-sided Wilson
/// upper bound on the error rate at `confidence` is at most `target`.
///
/// With no errors in [`zero_defect_sample_size`]`(confidence, target)` items this passes (the Wilson bound is a
/// little below the exact one there).
pub fn audit_decision(
    errors: u64,
    sampled: u64,
    target: f64,
    confidence: f64,
) -> Result<AuditDecision> {
    check_probability("target", target)?;
    let upper_bound = wilson_upper_bound(errors, sampled, confidence)?;
    Ok(AuditDecision {
        errors,
        sampled,
        observed_rate: errors as f64 / sampled as f64,
        upper_bound,
        target,
        confidence,
        passed: upper_bound <= target,
    })
}

/// The standard normal quantile, Wichura's (1988) algorithm AS 241 (PPND16), accurate to about 1e-16.
pub fn normal_quantile(p: f64) -> f64 {
    const SPLIT1: f64 = 0.425;
    const SPLIT2: f64 = 5.0;
    const CONST1: f64 = 0.180_625;
    const CONST2: f64 = 1.6;
    const A: [f64; 8] = [
        3.387_132_872_796_366_5,
        1.331_416_678_917_843_8e2,
        1.971_590_950_306_551_3e3,
        1.373_169_376_550_946e4,
        4.592_195_393_154_987e4,
        6.726_577_092_700_87e4,
        3.343_057_558_358_813e4,
        2.509_080_928_730_122_7e3,
    ];
    const B: [f64; 8] = [
        1.0,
        4.231_333_070_160_091e1,
        6.871_870_074_920_579e2,
        5.394_196_021_424_751e3,
        2.121_379_430_158_659_7e4,
        3.930_789_580_009_271e4,
        2.872_908_573_572_194_3e4,
        5.226_495_278_852_545e3,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_5,
        4.630_337_846_156_546,
        5.769_497_221_460_691,
        3.647_848_324_763_204_5,
        1.270_458_252_452_368_4,
        2.417_807_251_774_506e-1,
        2.272_384_498_926_918_4e-2,
        7.745_450_142_783_414e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_759,
        1.676_384_830_183_803_8,
        6.897_673_349_851e-1,
        1.481_039_764_274_800_8e-1,
        1.519_866_656_361_645_7e-2,
        5.475_938_084_995_345e-4,
        1.050_750_071_644_416_9e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103,
        5.463_784_911_164_114,
        1.784_826_539_917_291_3,
        2.965_605_718_285_048_7e-1,
        2.653_218_952_657_612_4e-2,
        1.242_660_947_388_078_4e-3,
        2.711_555_568_743_487_6e-5,
        2.010_334_399_292_288_1e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        5.998_322_065_558_88e-1,
        1.369_298_809_227_358e-1,
        1.487_536_129_085_061_5e-2,
        7.868_691_311_456_133e-4,
        1.846_318_317_510_054_8e-5,
        1.421_511_758_316_446e-7,
        2.043_131_979_923_469e-15,
    ];
    fn poly(c: &[f64; 8], x: f64) -> f64 {
        c.iter().rev().fold(0.0, |acc, &k| acc * x + k)
    }
    if p.is_nan() || p <= 0.0 || p >= 1.0 {
        return match p {
            0.0 => f64::NEG_INFINITY,
            1.0 => f64::INFINITY,
            _ => f64::NAN,
        };
    }
    let q = p - 0.5;
    if q.abs() <= SPLIT1 {
        let r = CONST1 - q * q;
        return q * poly(&A, r) / poly(&B, r);
    }
    let r = if q < 0.0 { p } else { 1.0 - p };
    let r = (-r.ln()).sqrt();
    let x = if r <= SPLIT2 {
        let r = r - CONST2;
        poly(&C, r) / poly(&D, r)
    } else {
        let r = r - SPLIT2;
        poly(&E, r) / poly(&F, r)
    };
    if q < 0.0 {
        -x
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_tables() {
        // Standard normal table values.
        for (p, z) in [
            (0.975, 1.959_963_984_540_054),
            (0.95, 1.644_853_626_951_472_2),
            (0.5, 0.0),
            (0.995, 2.575_829_303_548_900_4),
            (1e-10, -6.361_340_902_404_056),
        ] {
            assert!((normal_quantile(p) - z).abs() < 1e-12, "p = {p}");
        }
        assert!((normal_quantile(0.025) + normal_quantile(0.975)).abs() < 1e-15);
    }

    #[test]
    fn sample_sizes_match_the_rule_of_three_table() {
        // ln(0.05)/ln(0.99) = 298.07 -> 299; ln(0.05)/ln(0.95) = 58.4 -> 59; ln(0.01)/ln(0.99) = 458.2 -> 459.
        assert_eq!(zero_defect_sample_size(0.95, 0.01).unwrap(), 299);
        assert_eq!(zero_defect_sample_size(0.95, 0.05).unwrap(), 59);
        assert_eq!(zero_defect_sample_size(0.99, 0.01).unwrap(), 459);
        assert!(zero_defect_sample_size(1.0, 0.01).is_err());
        assert!(zero_defect_sample_size(0.95, 0.0).is_err());
    }

    #[test]
    fn wilson_intervals_match_published_values() {
        // 0 of 100 -> [0, 0.037]; 10 of 200 -> [0.027, 0.090] (95%).
        let a = wilson_interval(0, 100, 0.95).unwrap();
        assert_eq!(a.lower, 0.0);
        assert!((a.upper - 0.037).abs() < 5e-4, "{a:?}");
        let b = wilson_interval(10, 200, 0.95).unwrap();
        assert!(
            (b.lower - 0.027).abs() < 5e-4 && (b.upper - 0.090).abs() < 5e-4,
            "{b:?}"
        );
        // Newcombe (1998), Table I, example (81 of 263): Wilson 95% interval 0.2553 to 0.3662.
        let c = wilson_interval(81, 263, 0.95).unwrap();
        assert!(
            (c.lower - 0.2553).abs() < 5e-5 && (c.upper - 0.3662).abs() < 5e-5,
            "{c:?}"
        );
        assert!(wilson_interval(3, 2, 0.95).is_err());
        assert!(wilson_interval(0, 0, 0.95).is_err());
    }

    #[test]
    fn audit_passes_a_clean_zero_defect_sample_and_fails_a_dirty_one() {
        let n = zero_defect_sample_size(0.95, 0.01).unwrap();
        let clean = audit_decision(0, n, 0.01, 0.95).unwrap();
        assert!(clean.passed, "{clean:?}");
        // One error in 299 puts the one-sided 95% upper bound near 1.5%: fail against 1%.
        let dirty = audit_decision(1, n, 0.01, 0.95).unwrap();
        assert!(!dirty.passed && dirty.upper_bound > 0.014, "{dirty:?}");
        // Far too small a sample cannot pass even with no errors: 0 of 50 gives an upper bound near 5%.
        assert!(!audit_decision(0, 50, 0.01, 0.95).unwrap().passed);
    }
}
