//! MinHash signatures by one-permutation hashing (OPH) with optimal densification.
//!
//! Classic MinHash hashes every shingle `k` times (k = 128: 128 hash evaluations per shingle). One-permutation
//! hashing (Li, Owen and Zhang, 2012) hashes each shingle once: the hash's high bits pick one of `k` bins and its
//! low bits are the value, and each bin keeps its minimum. A bin that no shingle fell into is filled by optimal
//! densification (Shrivastava, 2017): bin `j` probes bins with a fixed hash of `(j, attempt)` until it hits a
//! bin that was filled by a shingle and copies its value. The fill only depends on which bins are empty, so two
//! similar sets fill alike, and the collision probability of a bin stays the Jaccard similarity. Cost per
//! document: one hash per shingle plus the probes of empty bins, instead of `k` hashes per shingle.

use crate::hash::{fast_range, fold_mul, mix};

use crate::text::Words;

/// Computes the shingle sets and signatures of texts with fixed settings.
#[derive(Debug, Clone)]
pub struct Sketcher {
    ngram: usize,
    bins: usize,
    seed: u64,
    /// The first [`PROBES`] densification probes of every bin, which depend only on the bin and the seed.
    probes: Vec<u16>,
}

/// Densification probes precomputed per bin; a bin that needs more computes them.
const PROBES: usize = 32;

/// What the duplicate audit keeps of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sketch {
    /// Hash of the normalized text: equal for exact duplicates.
    pub exact: u64,
    /// The OPH signature, one value per bin; empty when the text has no words.
    pub signature: Vec<u32>,
    /// The hashes of the word n-grams in text order (a repeated n-gram repeats); sort them for [`jaccard`].
    pub shingles: Vec<u64>,
}

impl Sketcher {
    /// Word `ngram`s, `bins` signature values (the counterpart of `bins` permutations), and a seed.
    ///
    /// # Panics
    /// When `bins` exceeds 65,536.
    pub fn new(ngram: usize, bins: usize, seed: u64) -> Self {
        let bins = bins.max(1);
        assert!(bins <= 1 << 16, "at most 65,536 signature values");
        let probes = (0..bins)
            .flat_map(|bin| {
                (1..=PROBES as u64).map(move |attempt| probe(bin, attempt, bins, seed) as u16)
            })
            .collect();
        Self {
            ngram: ngram.max(1),
            bins,
            seed,
            probes,
        }
    }

    /// Signature length.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Shingle size in words.
    pub fn ngram(&self) -> usize {
        self.ngram
    }

    /// The sketch of one text; `words` is scratch space reused between calls.
    pub fn sketch(&self, text: &str, words: &mut Words) -> Sketch {
        words.fill(text, false);
        let exact = words.exact_hash();
        let mut shingles = Vec::with_capacity(words.hashes.len());
        words.ngrams(self.ngram, true, &mut shingles);
        let signature = if shingles.is_empty() {
            Vec::new()
        } else {
            let mut signature = vec![0u32; self.bins];
            self.signature_into(&shingles, &mut signature);
            signature
        };
        Sketch {
            exact,
            signature,
            shingles,
        }
    }

    /// The OPH signature of a non-empty shingle set into `out` (length [`Sketcher::bins`]).
    pub fn signature_into(&self, shingles: &[u64], out: &mut [u32]) {
        debug_assert_eq!(out.len(), self.bins);
        debug_assert!(!shingles.is_empty());
        let bins = self.bins as u32;
        out.fill(u32::MAX);
        // Filled bins, as a bitmap: a value of u32::MAX can also be a real minimum.
        let words = self.bins.div_ceil(64);
        let mut on_stack = [0u64; 16];
        let mut on_heap = Vec::new();
        let filled: &mut [u64] = if words <= on_stack.len() {
            &mut on_stack[..words]
        } else {
            on_heap.resize(words, 0);
            &mut on_heap
        };
        for &shingle in shingles {
            // Shingles are already mixed 64-bit hashes: one multiply-fold with the seed decorrelates bin and value.
            let hashed = fold_mul(shingle ^ self.seed, 0xe703_7ed1_a0b4_28db);
            let bin = fast_range((hashed >> 32) as u32, bins) as usize;
            let value = hashed as u32;
            filled[bin / 64] |= 1 << (bin % 64);
            // Branch-free: which shingle holds a bin's minimum is unpredictable.
            out[bin] = out[bin].min(value);
        }
        let is_filled = |bin: usize| filled[bin / 64] & (1 << (bin % 64)) != 0;
        for bin in 0..self.bins {
            if is_filled(bin) {
                continue;
            }
            let precomputed = &self.probes[bin * PROBES..(bin + 1) * PROBES];
            if let Some(&source) = precomputed.iter().find(|&&s| is_filled(usize::from(s))) {
                out[bin] = out[usize::from(source)];
                continue;
            }
            let mut attempt = PROBES as u64 + 1;
            loop {
                let source = probe(bin, attempt, self.bins, self.seed);
                if is_filled(source) {
                    out[bin] = out[source];
                    break;
                }
                attempt += 1;
            }
        }
    }
}

/// Bin `bin`'s densification probe number `attempt`: a bin chosen by a fixed hash of the two.
fn probe(bin: usize, attempt: u64, bins: usize, seed: u64) -> usize {
    let hashed = mix(((bin as u64) << 32) | attempt, seed ^ 0xd3a5_17e1_0f0c_0001);
    fast_range(hashed as u32, bins as u32) as usize
}

/// The exact Jaccard similarity of two sets given as sorted slices (repeats are counted once).
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j) = (0, 0);
    let (mut shared, mut only_a, mut only_b) = (0usize, 0usize, 0usize);
    let skip = |s: &[u64], mut k: usize| {
        let v = s[k];
        while k < s.len() && s[k] == v {
            k += 1;
        }
        k
    };
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                only_a += 1;
                i = skip(a, i);
            }
            std::cmp::Ordering::Greater => {
                only_b += 1;
                j = skip(b, j);
            }
            std::cmp::Ordering::Equal => {
                shared += 1;
                i = skip(a, i);
                j = skip(b, j);
            }
        }
    }
    while i < a.len() {
        only_a += 1;
        i = skip(a, i);
    }
    while j < b.len() {
        only_b += 1;
        j = skip(b, j);
    }
    shared as f64 / (shared + only_a + only_b) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets of `shared + only_a` and `shared + only_b` shingle hashes (hashes, as shingles are).
    fn sets(shared: u64, only_a: u64, only_b: u64) -> (Vec<u64>, Vec<u64>) {
        let shingle = |i: u64| mix(i, 0x5eed);
        let mut a: Vec<u64> = (0..shared + only_a).map(shingle).collect();
        let mut b: Vec<u64> = (0..shared)
            .chain(1_000_000..1_000_000 + only_b)
            .map(shingle)
            .collect();
        a.sort_unstable();
        b.sort_unstable();
        (a, b)
    }

    #[test]
    fn jaccard_counts_the_shared_share() {
        let (a, b) = sets(8, 2, 0);
        assert!((jaccard(&a, &b) - 0.8).abs() < 1e-12);
        assert_eq!(jaccard(&[], &[]), 1.0);
        assert_eq!(jaccard(&[1], &[2]), 0.0);
        assert!(
            (jaccard(&[1, 1, 2, 3], &[2, 2, 3, 4, 4]) - 0.5).abs() < 1e-12,
            "repeats count once"
        );
    }

    #[test]
    fn signature_agreement_estimates_jaccard_without_bias() {
        // Over many seeds, the share of equal bins averages to the true Jaccard, for dense and sparse sets.
        for (shared, extra, bins) in [(400u64, 100u64, 128usize), (40, 10, 128), (160, 40, 64)] {
            let (a, b) = sets(shared, extra, extra);
            let truth = jaccard(&a, &b);
            let mut total = 0.0;
            let trials = 300;
            for seed in 0..trials {
                let sketcher = Sketcher::new(5, bins, seed);
                let mut sa = vec![0; bins];
                let mut sb = vec![0; bins];
                sketcher.signature_into(&a, &mut sa);
                sketcher.signature_into(&b, &mut sb);
                let equal = sa.iter().zip(&sb).filter(|(x, y)| x == y).count();
                total += equal as f64 / bins as f64;
            }
            let estimate = total / trials as f64;
            assert!(
                (estimate - truth).abs() < 0.02,
                "shared {shared}: estimate {estimate} vs {truth}"
            );
        }
    }

    #[test]
    fn exact_duplicates_share_sketches_and_empty_text_has_no_signature() {
        let sketcher = Sketcher::new(5, 128, 7);
        let mut words = Words::default();
        let a = sketcher.sketch("The cat sat on the mat, and then it slept.", &mut words);
        let b = sketcher.sketch("the CAT sat on the mat and then  it slept", &mut words);
        assert_eq!(a, b);
        assert_eq!(a.shingles.len(), 6);
        let empty = sketcher.sketch(" ... ", &mut words);
        assert!(empty.signature.is_empty() && empty.shingles.is_empty());
    }
}
