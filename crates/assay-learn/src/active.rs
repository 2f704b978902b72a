//! Which items people should answer next (active learning): those whose answers help most.
//!
//! Three reasons, in a stated share of the budget: `uncertain` (smallest margin between the probe's two most likely
//! classes), `disagree` (the probe's label differs from the LLM's, most confident disagreements first) and
//! `random` (a seeded uniform sample, so QC estimates stay unbiased).

use serde::{Deserialize, Serialize};

use crate::cv::{argmax, splitmix};

/// Why an item was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pick {
    /// The probe is least sure of it.
    Uncertain,
    /// The probe and the LLM label it differently.
    Disagree,
    /// A random share, for unbiased quality estimates.
    Random,
}

impl Pick {
    /// The name stored with a routed item.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uncertain => "uncertain",
            Self::Disagree => "disagree",
            Self::Random => "random",
        }
    }
}

/// One candidate item: the probe's distribution and, if any, the LLM's label.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The caller's id of the item.
    pub id: u64,
    /// The probe's class probabilities.
    pub probe: Vec<f64>,
    /// The LLM's label, as a class index.
    pub llm: Option<usize>,
}

/// How to split a budget between the reasons.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActiveOptions {
    /// Share of the budget for `disagree` picks.
    pub disagree_share: f64,
    /// Share of the budget for `random` picks.
    pub random_share: f64,
    /// Seed of the random share.
    pub seed: u64,
}

impl Default for ActiveOptions {
    fn default() -> Self {
        Self {
            disagree_share: 0.25,
            random_share: 0.1,
            seed: 0,
        }
    }
}

/// The margin between the two most likely classes (0: a coin toss; 1: certain).
pub fn margin(p: &[f64]) -> f64 {
    let mut top = [0.0f64, 0.0f64];
    for &v in p {
        if v > top[0] {
            top = [v, top[0]];
        } else if v > top[1] {
            top[1] = v;
        }
    }
    top[0] - top[1]
}

/// Pick up to `budget` items: the random share first (so it is uniform over all candidates), then disagreements,
/// then the least certain; the rest of the budget goes to the least certain when a reason runs out.
pub fn select(
    candidates: &[Candidate],
    budget: usize,
    options: &ActiveOptions,
) -> Vec<(u64, Pick)> {
    let budget = budget.min(candidates.len());
    let mut taken = vec![false; candidates.len()];
    let mut picks = Vec::with_capacity(budget);
    let random = ((budget as f64) * options.random_share).round() as usize;
    let mut keyed: Vec<(u64, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                splitmix(options.seed ^ c.id.wrapping_mul(0x2545_F491_4F6C_DD1D)),
                i,
            )
        })
        .collect();
    keyed.sort_unstable();
    for &(_, i) in keyed.iter().take(random) {
        taken[i] = true;
        picks.push((candidates[i].id, Pick::Random));
    }
    let disagree = ((budget as f64) * options.disagree_share).round() as usize;
    let mut disagreeing: Vec<usize> = (0..candidates.len())
        .filter(|&i| {
            !taken[i]
                && candidates[i]
                    .llm
                    .is_some_and(|l| l != argmax(&candidates[i].probe))
        })
        .collect();
    // Most confident disagreements first: where the probe is surest the LLM is wrong, or the probe is.
    disagreeing.sort_by(|&a, &b| {
        margin(&candidates[b].probe)
            .total_cmp(&margin(&candidates[a].probe))
            .then(a.cmp(&b))
    });
    for i in disagreeing
        .into_iter()
        .take(disagree.min(budget - picks.len()))
    {
        taken[i] = true;
        picks.push((candidates[i].id, Pick::Disagree));
    }
    let mut uncertain: Vec<usize> = (0..candidates.len()).filter(|&i| !taken[i]).collect();
    uncertain.sort_by(|&a, &b| {
        margin(&candidates[a].probe)
            .total_cmp(&margin(&candidates[b].probe))
            .then(a.cmp(&b))
    });
    for i in uncertain.into_iter().take(budget - picks.len()) {
        picks.push((candidates[i].id, Pick::Uncertain));
    }
    picks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: u64, p1: f64, llm: usize) -> Candidate {
        Candidate {
            id,
            probe: vec![1.0 - p1, p1],
            llm: Some(llm),
        }
    }

    #[test]
    fn budget_splits_between_random_disagreement_and_uncertainty() {
        let candidates: Vec<Candidate> = (0..100)
            .map(|i| {
                candidate(
                    i,
                    (i as f64) / 100.0,
                    if i >= 90 { 0 } else { usize::from(i >= 50) },
                )
            })
            .collect();
        let options = ActiveOptions {
            disagree_share: 0.3,
            random_share: 0.1,
            seed: 3,
        };
        let picks = select(&candidates, 20, &options);
        assert_eq!(picks.len(), 20);
        let count = |p: Pick| picks.iter().filter(|(_, q)| *q == p).count();
        assert_eq!(count(Pick::Random), 2);
        assert_eq!(count(Pick::Disagree), 6);
        assert_eq!(count(Pick::Uncertain), 12);
        // Disagreements are items 90..99 (probe says 1, LLM 0), most confident first.
        let disagreed: Vec<u64> = picks
            .iter()
            .filter(|(_, q)| *q == Pick::Disagree)
            .map(|(i, _)| *i)
            .collect();
        assert!(disagreed.iter().all(|&i| i >= 90), "{disagreed:?}");
        // Uncertain picks sit around p = 0.5.
        assert!(picks
            .iter()
            .filter(|(_, q)| *q == Pick::Uncertain)
            .all(|(i, _)| (40..=60).contains(i)));
        let mut ids: Vec<u64> = picks.iter().map(|(i, _)| *i).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 20, "no item picked twice");
    }

    #[test]
    fn margin_of_a_distribution() {
        assert!((margin(&[0.5, 0.3, 0.2]) - 0.2).abs() < 1e-12);
        assert!((margin(&[0.1, 0.9]) - 0.8).abs() < 1e-12);
    }
}
