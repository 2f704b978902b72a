//! Seeded sampling of the next token from a model's logits: temperature, then nucleus (top-p), then one draw from
//! a random stream fixed by the seed. The same logits and seed always pick the same token, on any machine and any
//! version of assay, so a generation run that is rerun (or resumed) reproduces what it wrote.

use serde::{Deserialize, Serialize};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Logits are divided by this before the softmax; 0 picks the most likely token (greedy).
    pub temperature: f64,
    /// Only the most likely tokens whose probabilities sum to at least this are drawn from (1: all).
    pub top_p: f64,
    /// Most tokens generated.
    pub max_tokens: usize,
    /// Seed of the random stream.
    pub seed: u64,
}

impl Sampling {
    /// Greedy decoding of at most `max_tokens` tokens.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            max_tokens,
            seed: 0,
        }
    }
}

/// What a generation produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    /// The text.
    pub text: String,
    /// Tokens generated.
    pub tokens: usize,
    /// Whether the model ended the text itself (an end-of-generation token) rather than hitting `max_tokens`: a
    /// text that did not is truncated.
    pub finished: bool,
}

/// Picks tokens for one generation: the random stream advances once per sampled token.
#[derive(Debug, Clone)]
pub struct TokenSampler {
    sampling: Sampling,
    state: u64,
}

impl TokenSampler {
    /// A sampler at the start of its stream.
    pub fn new(sampling: Sampling) -> Self {
        Self {
            sampling,
            state: sampling.seed,
        }
    }

    /// The index of the next token given the logits over the vocabulary.
    pub fn pick(&mut self, logits: &[f32]) -> usize {
        if self.sampling.temperature <= 0.0 || logits.len() < 2 {
            return greedy(logits);
        }
        let inverse_temperature = 1.0 / self.sampling.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut candidates: Vec<(usize, f64)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                (
                    i,
                    ((f64::from(l) - f64::from(max)) * inverse_temperature).exp(),
                )
            })
            .filter(|(_, weight)| *weight > 0.0)
            .collect();
        // Most likely first; ties by the lower token id, so the order (and the draw) never depends on the sort.
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f64 = candidates.iter().map(|(_, w)| w).sum();
        let top_p = self.sampling.top_p.clamp(0.0, 1.0);
        let mut kept = 0.0;
        let mut nucleus = 0;
        for (_, weight) in &candidates {
            kept += weight;
            nucleus += 1;
            if kept >= top_p * total {
                break;
            }
        }
        candidates.truncate(nucleus.max(1));
        let draw = unit_interval(&mut self.state) * kept.min(total);
        let mut cumulative = 0.0;
        for (index, weight) in &candidates {
            cumulative += weight;
            if draw < cumulative {
                return *index;
            }
        }
        candidates.last().map_or(0, |(i, _)| *i)
    }
}

/// The most likely token; the lowest id among equals.
pub fn greedy(logits: &[f32]) -> usize {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i)
}

/// A uniform draw in [0, 1) from 53 bits of SplitMix64.
fn unit_interval(state: &mut u64) -> f64 {
    (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
}

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, and its output for a seed is fixed forever, unlike the
/// generators of `rand`, whose streams may change between versions.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(temperature: f64, top_p: f64, seed: u64) -> Sampling {
        Sampling {
            temperature,
            top_p,
            max_tokens: 8,
            seed,
        }
    }

    #[test]
    fn splitmix64_matches_the_reference_stream() {
        // The reference C implementation (Vigna's splitmix64.c) seeded with 0 starts 0xE220A8397B1DCDAF.
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut state), 7_960_286_522_194_355_700);
    }

    #[test]
    fn zero_temperature_is_greedy_with_ties_to_the_lower_id() {
        let mut sampler = TokenSampler::new(sampling(0.0, 1.0, 9));
        assert_eq!(sampler.pick(&[0.1, 2.0, 2.0, -1.0]), 1);
    }

    #[test]
    fn the_same_seed_draws_the_same_tokens() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let draws = |seed| {
            let mut sampler = TokenSampler::new(sampling(1.0, 1.0, seed));
            (0..20).map(|_| sampler.pick(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
    }

    #[test]
    fn draws_follow_the_softmax_at_temperature() {
        // logits ln(1), ln(2), ln(3), ln(4): at temperature 1 the probabilities are .1 .2 .3 .4; at temperature 2
        // they are proportional to sqrt(1..4).
        let logits: Vec<f32> = [1.0f32, 2.0, 3.0, 4.0].iter().map(|x| x.ln()).collect();
        for (temperature, expected) in [
            (1.0, [0.1, 0.2, 0.3, 0.4]),
            (2.0, {
                let w = [1.0f64, 2f64.sqrt(), 3f64.sqrt(), 2.0];
                let s: f64 = w.iter().sum();
                [w[0] / s, w[1] / s, w[2] / s, w[3] / s]
            }),
        ] {
            let mut sampler = TokenSampler::new(sampling(temperature, 1.0, 11));
            let mut counts = [0u32; 4];
            let n = 40_000;
            for _ in 0..n {
                counts[sampler.pick(&logits)] += 1;
            }
            for (i, p) in expected.iter().enumerate() {
                let observed = f64::from(counts[i]) / f64::from(n);
                assert!(
                    (observed - p).abs() < 0.01,
                    "T={temperature} token {i}: {observed} vs {p}"
                );
            }
        }
    }

    #[test]
    fn top_p_draws_only_from_the_nucleus() {
        // Probabilities .4 .3 .2 .1: top-p .6 keeps the two most likely (.4 + .3 >= .6), renormalised to 4/7, 3/7.
        let logits: Vec<f32> = [1.0f32, 2.0, 3.0, 4.0].iter().map(|x| x.ln()).collect();
        let mut sampler = TokenSampler::new(sampling(1.0, 0.6, 5));
        let mut counts = [0u32; 4];
        let n = 20_000;
        for _ in 0..n {
            counts[sampler.pick(&logits)] += 1;
        }
        assert_eq!(counts[0] + counts[1], 0, "{counts:?}");
        let share_best = f64::from(counts[3]) / f64::from(n);
        assert!((share_best - 4.0 / 7.0).abs() < 0.015, "{share_best}");
    }
}
