//! LSH banding: which pairs of signatures become candidates, and the recall curve of a choice of bands and rows.
//!
//! A signature of `bands × rows` values is cut into `bands` bands of `rows` values; two documents are candidates
//! when all values of at least one band agree. With per-value agreement probability `J` (the Jaccard similarity),
//! a pair is found with probability `1 - (1 - J^rows)^bands` ([`Banding::recall_at`]). Candidates are verified by
//! their exact Jaccard afterwards, so extra candidates cost time, never precision: the banding is chosen for
//! recall at the threshold ([`Banding::for_recall`]).

use rayon::prelude::*;

use crate::hash::{combine, mix};
use crate::{Error, Result};

/// The recall the default banding must reach at the threshold itself (a pair exactly at the threshold).
pub const TARGET_RECALL_AT_THRESHOLD: f64 = 0.995;

/// A choice of bands and rows per band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banding {
    /// Number of bands.
    pub bands: usize,
    /// Signature values per band.
    pub rows: usize,
}

impl Banding {
    /// `bands × rows`, checked against the signature length.
    ///
    /// # Errors
    /// [`Error::Config`] when either is 0 or they need more values than the signature has.
    pub fn new(bands: usize, rows: usize, bins: usize) -> Result<Self> {
        if bands == 0 || rows == 0 {
            return Err(Error::Config("bands and rows must be at least 1".into()));
        }
        if bands * rows > bins {
            return Err(Error::Config(format!(
                "{bands} bands of {rows} rows need {} signature values, but signatures have {bins}",
                bands * rows
            )));
        }
        Ok(Self { bands, rows })
    }

    /// Probability that a pair of similarity `jaccard` shares at least one band.
    pub fn recall_at(&self, jaccard: f64) -> f64 {
        1.0 - (1.0 - jaccard.powi(self.rows as i32)).powi(self.bands as i32)
    }

    /// The banding with the most rows per band (the fewest chance candidates) whose recall at `threshold` is at
    /// least `target`, using as many of the `bins` signature values as fit.
    ///
    /// # Errors
    /// [`Error::Config`] for a threshold outside (0, 1] or `bins` 0.
    pub fn for_recall(threshold: f64, bins: usize, target: f64) -> Result<Self> {
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(Error::Config(format!(
                "the threshold must be in (0, 1], not {threshold}"
            )));
        }
        if bins == 0 {
            return Err(Error::Config("signatures need at least 1 value".into()));
        }
        let mut best = Banding {
            bands: bins,
            rows: 1,
        };
        for rows in 1..=bins {
            let banding = Banding {
                bands: bins / rows,
                rows,
            };
            if banding.recall_at(threshold) >= target {
                best = banding;
            } else {
                break;
            }
        }
        Ok(best)
    }

    /// The key of band `band` of `signature`.
    #[inline]
    pub fn key(&self, signature: &[u32], band: usize) -> u64 {
        let values = &signature[band * self.rows..(band + 1) * self.rows];
        let mut state = mix(band as u64, 0x4241_4e44);
        for pair in values.chunks(2) {
            let word = u64::from(pair[0]) | (u64::from(*pair.get(1).unwrap_or(&0)) << 32);
            state = combine(state, word);
        }
        state
    }
}

/// Candidate pairs `(a, b)` with `a < b` among documents `0..n`, given each document's band keys in
/// `keys[doc * bands + band]`; a document whose `eligible` is false takes no part. `pair_allowed` filters pairs
/// (e.g. only input against reference). Sorted and without repeats.
pub fn candidate_pairs(
    keys: &[u64],
    bands: usize,
    eligible: &[bool],
    pair_allowed: &(dyn Fn(u32, u32) -> bool + Sync),
) -> Vec<(u32, u32)> {
    let documents = eligible.len();
    let mut pairs: Vec<u64> = (0..bands)
        .into_par_iter()
        .map(|band| {
            let mut column: Vec<(u64, u32)> = (0..documents)
                .filter(|&doc| eligible[doc])
                .map(|doc| (keys[doc * bands + band], doc as u32))
                .collect();
            column.sort_unstable();
            let mut found = Vec::new();
            let mut start = 0;
            while start < column.len() {
                let mut end = start + 1;
                while end < column.len() && column[end].0 == column[start].0 {
                    end += 1;
                }
                for i in start..end {
                    for j in i + 1..end {
                        let (a, b) = (column[i].1, column[j].1);
                        if pair_allowed(a, b) {
                            found.push((u64::from(a) << 32) | u64::from(b));
                        }
                    }
                }
                start = end;
            }
            found
        })
        .flatten_iter()
        .collect();
    pairs.par_sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|packed| ((packed >> 32) as u32, packed as u32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_curve_matches_the_formula() {
        let banding = Banding { bands: 21, rows: 6 };
        let expected = 1.0 - (1.0 - 0.8f64.powi(6)).powi(21);
        assert!((banding.recall_at(0.8) - expected).abs() < 1e-15);
        assert!(banding.recall_at(0.8) > 0.998);
        assert!(banding.recall_at(0.3) < 0.02);
        assert_eq!(banding.recall_at(1.0), 1.0);
    }

    #[test]
    fn default_banding_for_0_8_and_128_values_is_21_by_6() {
        let banding = Banding::for_recall(0.8, 128, TARGET_RECALL_AT_THRESHOLD).unwrap();
        assert_eq!(banding, Banding { bands: 21, rows: 6 });
        // One more row per band would miss the target.
        assert!(Banding { bands: 18, rows: 7 }.recall_at(0.8) < TARGET_RECALL_AT_THRESHOLD);
        assert!(Banding::for_recall(1.5, 128, 0.9).is_err());
        assert!(Banding::new(20, 7, 128).is_err());
    }

    #[test]
    fn documents_sharing_a_band_key_are_candidates() {
        // 3 documents, 2 bands: 0 and 2 share band 1, nobody shares band 0.
        let keys = vec![1, 10, 2, 20, 3, 10];
        let all = |_: u32, _: u32| true;
        assert_eq!(candidate_pairs(&keys, 2, &[true; 3], &all), vec![(0, 2)]);
        assert!(candidate_pairs(&keys, 2, &[true, true, false], &all).is_empty());
        let none = |_: u32, _: u32| false;
        assert!(candidate_pairs(&keys, 2, &[true; 3], &none).is_empty());
    }
}
