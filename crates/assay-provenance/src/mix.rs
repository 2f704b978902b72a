//! How an export (or a simulated training loop) mixes the original human rows with generated ones.
//!
//! The same function decides what an export writes and what the collapse benchmark (`bench/collapse.sh`) refits
//! on, so the benchmark measures the policy the guard actually enforces. Replacing human data with generated data
//! generation after generation collapses a model (Shumailov et al., Nature 2024); accumulating it does not
//! (Gerstgrasser et al. 2024), which is why [`MixPolicy::Accumulate`] is the default.
//!
//! ```
//! use assay_provenance::mix::{mix, MixPolicy};
//! let human = vec!["h1", "h2"];
//! let generations = vec![vec!["g1"], vec!["g2"]];
//! assert_eq!(mix(&human, &generations, &MixPolicy::Accumulate, 0), ["h1", "h2", "g1", "g2"]);
//! assert_eq!(mix(&human, &generations, &MixPolicy::Replace, 0), ["g2"]);
//! ```

/// Which rows go into the next training set (or export).
#[derive(Debug, Clone, PartialEq)]
pub enum MixPolicy {
    /// Every human row plus every generation's rows: generated data is added, never substituted for human data.
    Accumulate,
    /// Only the newest generation: the setting under which models collapse.
    Replace,
    /// The newest generation plus a seeded random share (0..=1) of the human rows, e.g. 0.1 for Shumailov's
    /// "keep 10% of the original data".
    ReplaceWithHumanShare(f64),
}

impl MixPolicy {
    /// The policy's name as task files and reports spell it.
    pub fn name(&self) -> String {
        match self {
            MixPolicy::Accumulate => "accumulate".to_owned(),
            MixPolicy::Replace => "replace".to_owned(),
            MixPolicy::ReplaceWithHumanShare(share) => {
                format!("replace-with-{}%-human", share * 100.0)
            }
        }
    }
}

/// The rows `policy` keeps from the human rows and the generations so far (oldest first).
///
/// With no generation yet the human rows are the newest data, so every policy returns all of them. Under
/// `ReplaceWithHumanShare(s)` the number of human rows kept is `round(s * human.len())` (`s` clamped to 0..=1, NaN
/// counts as 0), chosen by a seeded shuffle so the same seed picks the same rows; the kept human rows come first, in
/// their original order, then the newest generation.
pub fn mix<T: Clone>(human: &[T], generations: &[Vec<T>], policy: &MixPolicy, seed: u64) -> Vec<T> {
    let Some(newest) = generations.last() else {
        return human.to_vec();
    };
    match policy {
        MixPolicy::Accumulate => human
            .iter()
            .chain(generations.iter().flatten())
            .cloned()
            .collect(),
        MixPolicy::Replace => newest.clone(),
        MixPolicy::ReplaceWithHumanShare(share) => {
            let share = if share.is_nan() {
                0.0
            } else {
                share.clamp(0.0, 1.0)
            };
            let keep = (share * human.len() as f64).round() as usize;
            let mut kept_indices = sample_indices(human.len(), keep, seed);
            kept_indices.sort_unstable();
            kept_indices
                .iter()
                .map(|&i| human[i].clone())
                .chain(newest.iter().cloned())
                .collect()
        }
    }
}

/// `count` distinct indices below `len`, chosen by a partial Fisher-Yates shuffle driven by SplitMix64. A tiny
/// generator of our own keeps this crate free of dependencies beyond serde, and its output is fixed forever, so a
/// seed recorded in a card reproduces the same export on any version.
fn sample_indices(len: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut indices: Vec<usize> = (0..len).collect();
    let count = count.min(len);
    for i in 0..count {
        let remaining = (len - i) as u64;
        // Multiply-shift maps a 64-bit draw to 0..remaining without the modulo's bias worth caring about here.
        let offset = ((u128::from(splitmix64(&mut state)) * u128::from(remaining)) >> 64) as usize;
        indices.swap(i, i + offset);
    }
    indices.truncate(count);
    indices
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn human() -> Vec<u32> {
        (0..100).collect()
    }

    fn generations() -> Vec<Vec<u32>> {
        vec![(1000..1050).collect(), (2000..2050).collect()]
    }

    #[test]
    fn accumulate_keeps_every_human_row_and_every_generation_in_order() {
        let mixed = mix(&human(), &generations(), &MixPolicy::Accumulate, 7);
        assert_eq!(mixed.len(), 200);
        assert_eq!(&mixed[..100], &human()[..]);
        assert_eq!(&mixed[100..150], &generations()[0][..]);
        assert_eq!(&mixed[150..], &generations()[1][..]);
    }

    #[test]
    fn replace_keeps_only_the_newest_generation() {
        let mixed = mix(&human(), &generations(), &MixPolicy::Replace, 7);
        assert_eq!(mixed, generations()[1]);
    }

    #[test]
    fn with_no_generation_every_policy_returns_the_human_rows() {
        for policy in [
            MixPolicy::Accumulate,
            MixPolicy::Replace,
            MixPolicy::ReplaceWithHumanShare(0.1),
        ] {
            assert_eq!(mix(&human(), &[], &policy, 3), human(), "{policy:?}");
        }
    }

    #[test]
    fn human_share_keeps_the_rounded_share_of_distinct_human_rows_then_the_newest_generation() {
        let mixed = mix(
            &human(),
            &generations(),
            &MixPolicy::ReplaceWithHumanShare(0.1),
            42,
        );
        assert_eq!(mixed.len(), 10 + 50);
        let kept_human = &mixed[..10];
        assert!(kept_human.iter().all(|row| *row < 100), "{kept_human:?}");
        assert!(
            kept_human.windows(2).all(|pair| pair[0] < pair[1]),
            "original order, no repeats: {kept_human:?}"
        );
        assert_eq!(&mixed[10..], &generations()[1][..]);
        // 12.5% of 4 rows rounds to 1 (0.5 rounds away from zero).
        assert_eq!(
            mix(
                &[1, 2, 3, 4],
                &[vec![9]],
                &MixPolicy::ReplaceWithHumanShare(0.125),
                0
            )
            .len(),
            2
        );
    }

    #[test]
    fn human_share_is_reproducible_per_seed_and_differs_across_seeds() {
        let policy = MixPolicy::ReplaceWithHumanShare(0.2);
        let first = mix(&human(), &generations(), &policy, 5);
        assert_eq!(first, mix(&human(), &generations(), &policy, 5));
        let picks: HashSet<Vec<u32>> = (0..20)
            .map(|seed| mix(&human(), &generations(), &policy, seed)[..20].to_vec())
            .collect();
        assert!(
            picks.len() > 15,
            "seeds should pick different human rows, got {} distinct picks",
            picks.len()
        );
    }

    #[test]
    fn human_share_samples_every_row_about_equally_often() {
        // Over many seeds each of 10 human rows is kept with probability 3/10; a biased shuffle (e.g. always the
        // first rows) fails this.
        let human: Vec<u32> = (0..10).collect();
        let mut counts = [0u32; 10];
        let trials = 20_000;
        for seed in 0..trials {
            for row in mix(
                &human,
                &[vec![]],
                &MixPolicy::ReplaceWithHumanShare(0.3),
                seed,
            ) {
                counts[row as usize] += 1;
            }
        }
        for (row, count) in counts.iter().enumerate() {
            let share = f64::from(*count) / trials as f64;
            assert!(
                (share - 0.3).abs() < 0.02,
                "row {row} kept in {share:.3} of trials, expected 0.3"
            );
        }
    }

    #[test]
    fn out_of_range_shares_are_clamped() {
        let all = mix(
            &human(),
            &generations(),
            &MixPolicy::ReplaceWithHumanShare(1.5),
            1,
        );
        assert_eq!(all.len(), 150);
        assert_eq!(&all[..100], &human()[..]);
        let none = mix(
            &human(),
            &generations(),
            &MixPolicy::ReplaceWithHumanShare(-0.5),
            1,
        );
        assert_eq!(none, generations()[1]);
        let nan = mix(
            &human(),
            &generations(),
            &MixPolicy::ReplaceWithHumanShare(f64::NAN),
            1,
        );
        assert_eq!(nan, generations()[1]);
    }

    #[test]
    fn policy_names() {
        assert_eq!(MixPolicy::Accumulate.name(), "accumulate");
        assert_eq!(MixPolicy::Replace.name(), "replace");
        assert_eq!(
            MixPolicy::ReplaceWithHumanShare(0.1).name(),
            "replace-with-10%-human"
        );
    }
}
