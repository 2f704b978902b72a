//! Model collapse, reproduced (issue 15 §4): models refitted generation after generation on their own samples,
//! with the training data of each generation chosen by the collapse guard's own mixing code
//! ([`assay_provenance::mix`]): replace, accumulate, or replace with a share of the human data.
//!
//! - [`gaussian`]: a 1-D Gaussian refitted to M samples drawn from the previous generation's fit. Under replace the
//!   fitted variance is the previous one times χ²_{M−1}/(M−1) each generation, so log σ² is a random walk with
//!   drift δ = E[log(χ²_{M−1}/(M−1))] = ψ((M−1)/2) + ln 2 − ln(M−1) ([`delta`]) and the median σ after n fits is
//!   exp(n·δ/2) (the walk's median is its mean for large n); [`closed_form_check`] compares the simulation with
//!   that, within the sampling error of a median of the seeds.
//! - [`BigramLm`]: a word bigram language model (interpolated with its unigram; evaluated with add-k smoothing
//!   over the original vocabulary so that forgotten words cost a finite, large amount) refitted for a few
//!   generations on its own samples: test-set perplexity and the share of the original data's rarest words it
//!   still produces ([`ngram_collapse`]).

use std::collections::HashMap;

use assay_provenance::mix::{mix, MixPolicy};

/// SplitMix64 step: the benchmarks' random stream, fixed forever for a seed.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded random stream: uniforms and standard normals (Box-Muller).
#[derive(Debug, Clone)]
pub struct Stream {
    state: u64,
    spare: Option<f64>,
}

impl Stream {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            spare: None,
        }
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (splitmix64(&mut self.state) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(splitmix64(&mut self.state)) * n as u128) >> 64) as usize
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// The digamma function ψ(x) for x > 0 (recurrence up to x ≥ 10, then the asymptotic series).
pub fn digamma(mut x: f64) -> f64 {
    let mut result = 0.0;
    while x < 10.0 {
        result -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    result + x.ln()
        - 0.5 * inv
        - inv2
            * (1.0 / 12.0
                - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 / 132.0))))
}

/// The trigamma function ψ₁(x) for x > 0.
pub fn trigamma(mut x: f64) -> f64 {
    let mut result = 0.0;
    while x < 10.0 {
        result += 1.0 / (x * x);
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    result
        + inv
        + 0.5 * inv2
        + inv * inv2 * (1.0 / 6.0 - inv2 * (1.0 / 30.0 - inv2 * (1.0 / 42.0 - inv2 / 30.0)))
}

/// δ = E[log(χ²_{M−1}/(M−1))] = ψ((M−1)/2) + ln 2 − ln(M−1): the drift per generation of the log variance
/// refitted (unbiased) to M samples.
pub fn delta(m: usize) -> f64 {
    let k = (m - 1) as f64;
    digamma(k / 2.0) + std::f64::consts::LN_2 - k.ln()
}

/// The median fitted σ after `n` fits under replace: exp(n·δ/2).
pub fn closed_form_sigma(m: usize, n: usize) -> f64 {
    (n as f64 * delta(m) / 2.0).exp()
}

/// The standard error of ln(median σ) over `seeds` runs after `n` fits: ln σ_n has variance n·ψ₁((M−1)/2)/4, and
/// a median of s draws has standard error √(π/2)·sd/√s.
pub fn log_median_standard_error(m: usize, n: usize, seeds: usize) -> f64 {
    let sd = (n as f64 * trigamma((m - 1) as f64 / 2.0) / 4.0).sqrt();
    (std::f64::consts::PI / 2.0).sqrt() * sd / (seeds as f64).sqrt()
}

/// Mean and unbiased variance.
fn fit(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// The median of values (sorted copy).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One seed of the Gaussian refit: the fitted σ after each of `generations` fits. Fit 1 is to M human samples
/// from N(0, 1); fit n + 1 is to the training set `policy` makes of the human samples and the M samples drawn from
/// each fit so far (newest last).
pub fn gaussian_run(policy: &MixPolicy, m: usize, generations: usize, seed: u64) -> Vec<f64> {
    let mut stream = Stream::new(seed);
    let human: Vec<f64> = (0..m).map(|_| stream.normal()).collect();
    let (mut mean, mut var) = fit(&human);
    let mut sigmas = vec![var.sqrt()];
    let mut generated: Vec<Vec<f64>> = Vec::new();
    for generation in 1..generations {
        let sd = var.sqrt();
        generated.push((0..m).map(|_| mean + sd * stream.normal()).collect());
        let training = mix(&human, &generated, policy, seed ^ generation as u64);
        (mean, var) = fit(&training);
        sigmas.push(var.sqrt());
    }
    sigmas
}

/// The median fitted σ over `seeds` runs at each of `checkpoints` (fit numbers, 1-based).
pub fn gaussian(policy: &MixPolicy, m: usize, checkpoints: &[usize], seeds: usize) -> Vec<f64> {
    let generations = checkpoints.iter().copied().max().unwrap_or(1);
    let runs: Vec<Vec<f64>> = (0..seeds as u64)
        .map(|seed| gaussian_run(policy, m, generations, 1_000 + seed))
        .collect();
    checkpoints
        .iter()
        .map(|&n| median(&runs.iter().map(|r| r[n - 1]).collect::<Vec<_>>()))
        .collect()
}

/// The simulated median σ under replace against exp(n·δ/2) at one checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedFormCheck {
    pub generation: usize,
    pub simulated: f64,
    pub closed_form: f64,
    /// (ln simulated − ln closed form) / its standard error.
    pub z: f64,
}

/// Replace-policy medians against the closed form at `checkpoints`.
pub fn closed_form_check(m: usize, checkpoints: &[usize], seeds: usize) -> Vec<ClosedFormCheck> {
    let simulated = gaussian(&MixPolicy::Replace, m, checkpoints, seeds);
    checkpoints
        .iter()
        .zip(simulated)
        .map(|(&n, simulated)| {
            let closed_form = closed_form_sigma(m, n);
            ClosedFormCheck {
                generation: n,
                simulated,
                closed_form,
                z: (simulated.ln() - closed_form.ln()) / log_median_standard_error(m, n, seeds),
            }
        })
        .collect()
}

/// Word ids; 0 is the end of a line (`</s>`), which also starts the next one.
pub type Sentence = Vec<u32>;

/// The words of a corpus as ids: the original vocabulary, fixed at generation 0.
#[derive(Debug, Clone, Default)]
pub struct Vocab {
    ids: HashMap<String, u32>,
    words: Vec<String>,
}

impl Vocab {
    /// The vocabulary of `text` (whitespace-separated words, one sentence per non-blank line) plus `</s>` and
    /// `<unk>`.
    pub fn of(text: &str) -> Self {
        let mut vocab = Self::default();
        vocab.id("</s>");
        vocab.id("<unk>");
        for word in text.split_whitespace() {
            vocab.id(word);
        }
        vocab
    }

    fn id(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.ids.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.ids.insert(word.to_string(), id);
        self.words.push(word.to_string());
        id
    }

    /// Words, `</s>` and `<unk>` included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Never: `</s>` and `<unk>` are always there.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The sentences of `text`, words outside the vocabulary as `<unk>`.
    pub fn sentences(&self, text: &str) -> Vec<Sentence> {
        let unk = self.ids["<unk>"];
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.split_whitespace()
                    .map(|w| self.ids.get(w).copied().unwrap_or(unk))
                    .collect()
            })
            .collect()
    }
}

/// A word bigram model: P(w | v) = λ·c(v, w)/c(v) + (1 − λ)·c(w)/N when v was seen, else c(w)/N. Sampling draws
/// from exactly that (so a word the training data lacks is never produced again: the tail is lost for good);
/// [`BigramLm::perplexity`] adds k to every word count of the original vocabulary, so that a forgotten word costs
/// a finite amount.
#[derive(Debug, Clone)]
pub struct BigramLm {
    lambda: f64,
    /// Per context: successors and their cumulative counts.
    successors: Vec<(Vec<u32>, Vec<u64>)>,
    unigram: Vec<u64>,
    unigram_cumulative: Vec<u64>,
    total: u64,
}

impl BigramLm {
    /// Fit to `sentences` over a vocabulary of `vocab_size` words.
    pub fn fit(sentences: &[Sentence], vocab_size: usize, lambda: f64) -> Self {
        let mut pairs: Vec<HashMap<u32, u64>> = vec![HashMap::new(); vocab_size];
        let mut unigram = vec![0u64; vocab_size];
        for sentence in sentences {
            let mut previous = 0u32;
            for &w in sentence.iter().chain(std::iter::once(&0)) {
                *pairs[previous as usize].entry(w).or_default() += 1;
                unigram[w as usize] += 1;
                previous = w;
            }
        }
        let successors = pairs
            .into_iter()
            .map(|counts| {
                let mut counts: Vec<(u32, u64)> = counts.into_iter().collect();
                counts.sort_unstable();
                let mut running = 0;
                let cumulative = counts
                    .iter()
                    .map(|(_, c)| {
                        running += c;
                        running
                    })
                    .collect();
                (counts.into_iter().map(|(w, _)| w).collect(), cumulative)
            })
            .collect();
        let mut running = 0;
        let unigram_cumulative = unigram
            .iter()
            .map(|c| {
                running += c;
                running
            })
            .collect();
        Self {
            lambda,
            successors,
            total: running,
            unigram,
            unigram_cumulative,
        }
    }

    fn draw(cumulative: &[u64], stream: &mut Stream) -> usize {
        let total = *cumulative.last().expect("a non-empty distribution");
        let target = ((u128::from(splitmix64(&mut stream.state)) * u128::from(total)) >> 64) as u64;
        cumulative.partition_point(|&c| c <= target)
    }

    /// Sample sentences until they hold at least `tokens` words (`</s>` counted), each at most 400 words.
    pub fn sample(&self, tokens: usize, stream: &mut Stream) -> Vec<Sentence> {
        let mut sentences = Vec::new();
        let mut produced = 0;
        while produced < tokens {
            let mut sentence = Vec::new();
            let mut previous = 0usize;
            loop {
                let (words, cumulative) = &self.successors[previous];
                let next = if !words.is_empty() && stream.uniform() < self.lambda {
                    words[Self::draw(cumulative, stream)] as usize
                } else {
                    Self::draw(&self.unigram_cumulative, stream)
                };
                produced += 1;
                if next == 0 || sentence.len() >= 400 {
                    break;
                }
                sentence.push(next as u32);
                previous = next;
            }
            sentences.push(sentence);
        }
        sentences
    }

    /// P(w | previous) with the unigram smoothed add-`k` over the vocabulary: what the test set is scored with.
    pub fn probability(&self, previous: usize, w: usize, k: f64) -> f64 {
        let vocab = self.unigram.len() as f64;
        let unigram = (self.unigram[w] as f64 + k) / (self.total as f64 + k * vocab);
        let (words, cumulative) = &self.successors[previous];
        match words.binary_search(&(w as u32)) {
            _ if words.is_empty() => unigram,
            Ok(i) => {
                let c = cumulative[i] - if i == 0 { 0 } else { cumulative[i - 1] };
                let context = *cumulative.last().unwrap() as f64;
                self.lambda * c as f64 / context + (1.0 - self.lambda) * unigram
            }
            Err(_) => (1.0 - self.lambda) * unigram,
        }
    }

    /// Perplexity of `sentences` (each with its `</s>`), the unigram smoothed with add-`k` over the vocabulary.
    pub fn perplexity(&self, sentences: &[Sentence], k: f64) -> f64 {
        let (mut log_sum, mut count) = (0.0, 0u64);
        for sentence in sentences {
            let mut previous = 0usize;
            for &w in sentence.iter().chain(std::iter::once(&0)) {
                log_sum += self.probability(previous, w as usize, k).ln();
                count += 1;
                previous = w as usize;
            }
        }
        (-log_sum / count as f64).exp()
    }
}

/// One generation of the n-gram refit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NgramGeneration {
    pub generation: usize,
    /// Perplexity of the test sentences under this generation's model.
    pub perplexity: f64,
    /// Of the original training data's rarest words (count ≤ `rare_count`), the share this generation's model
    /// produced at least once in its samples.
    pub tail_share: f64,
    /// Distinct words in this generation's training data.
    pub training_types: usize,
}

/// Settings of the n-gram refit.
#[derive(Debug, Clone, Copy)]
pub struct NgramSettings {
    pub generations: usize,
    pub lambda: f64,
    pub k: f64,
    /// A word is rare when it occurs at most this often in the human training data.
    pub rare_count: u64,
    pub seed: u64,
}

/// Fit to the human `train` sentences (generation 0), then `generations` times: sample as many tokens as the
/// human data holds, and refit to what `policy` mixes of the human data and the samples so far.
pub fn ngram_collapse(
    train: &[Sentence],
    test: &[Sentence],
    vocab_size: usize,
    policy: &MixPolicy,
    settings: NgramSettings,
) -> Vec<NgramGeneration> {
    let human_tokens: usize = train.iter().map(|s| s.len() + 1).sum();
    let mut counts = vec![0u64; vocab_size];
    for w in train.iter().flatten() {
        counts[*w as usize] += 1;
    }
    let rare: Vec<usize> = (2..vocab_size)
        .filter(|&w| counts[w] > 0 && counts[w] <= settings.rare_count)
        .collect();
    let mut stream = Stream::new(settings.seed);
    let mut generated: Vec<Vec<Sentence>> = Vec::new();
    let mut training: Vec<Sentence> = train.to_vec();
    let mut rows = Vec::new();
    for generation in 0..=settings.generations {
        let model = BigramLm::fit(&training, vocab_size, settings.lambda);
        let samples = model.sample(human_tokens, &mut stream);
        let mut produced = vec![false; vocab_size];
        for w in samples.iter().flatten() {
            produced[*w as usize] = true;
        }
        let mut types = vec![false; vocab_size];
        for w in training.iter().flatten() {
            types[*w as usize] = true;
        }
        rows.push(NgramGeneration {
            generation,
            perplexity: model.perplexity(test, settings.k),
            tail_share: rare.iter().filter(|&&w| produced[w]).count() as f64
                / rare.len().max(1) as f64,
            training_types: types.iter().filter(|t| **t).count(),
        });
        generated.push(samples);
        training = mix(
            train,
            &generated,
            policy,
            settings.seed ^ (generation as u64 + 1),
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_and_trigamma_match_published_values() {
        // Abramowitz and Stegun 6.3.2, 6.3.3 and 6.4.2: ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ₁(1) = π²/6.
        let gamma = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + gamma).abs() < 1e-12);
        assert!((digamma(0.5) + gamma + 2.0 * std::f64::consts::LN_2).abs() < 1e-12);
        assert!((trigamma(1.0) - std::f64::consts::PI.powi(2) / 6.0).abs() < 1e-12);
        assert!((trigamma(0.5) - std::f64::consts::PI.powi(2) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn delta_at_m_100_is_the_issues_figure() {
        // Issue 15: δ ≈ −0.0101 at M = 100, so exp(n·δ/2) ≈ .60 at 100 fits and .006 at 1,000.
        assert!((delta(100) + 0.0101).abs() < 0.0001, "{}", delta(100));
        assert!((closed_form_sigma(100, 1000) - 0.0063).abs() < 0.0005);
    }

    #[test]
    fn delta_matches_a_monte_carlo_mean_of_log_chi_squared() {
        let mut stream = Stream::new(3);
        let k = 9;
        let draws = 200_000;
        let mean: f64 = (0..draws)
            .map(|_| ((0..k).map(|_| stream.normal().powi(2)).sum::<f64>() / k as f64).ln())
            .sum::<f64>()
            / draws as f64;
        assert!(
            (mean - delta(k + 1)).abs() < 0.003,
            "{mean} vs {}",
            delta(k + 1)
        );
    }

    #[test]
    fn bigram_probabilities_sum_to_one_and_unseen_words_cost_finite() {
        let vocab = Vocab::of("a b c\nb c d\n");
        let train = vocab.sentences("a b c\nb c d\n");
        let lm = BigramLm::fit(&train, vocab.len(), 0.7);
        for previous in 0..vocab.len() {
            let total: f64 = (0..vocab.len())
                .map(|w| lm.probability(previous, w, 0.01))
                .sum();
            assert!(
                (total - 1.0).abs() < 1e-12,
                "P(. | {previous}) sums to {total}"
            );
        }
        let ppl = lm.perplexity(&vocab.sentences("d a\n"), 0.01);
        assert!(ppl.is_finite() && ppl > 1.0, "{ppl}");
        // A sample never produces a word absent from the training data (`<unk>` here).
        let samples = lm.sample(1_000, &mut Stream::new(1));
        assert!(samples.iter().flatten().all(|&w| w != 1));
    }
}
