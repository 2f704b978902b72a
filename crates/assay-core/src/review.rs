//! The `[review]` section of a task: which machine-labeled items go to people, how many people answer each, and
//! who may answer them.
//!
//! Routing reasons, in the order they win when an item has several: `gold` (a known answer, to score annotators),
//! `low-confidence` (below `confidence-below`, or in the `lowest-share` of confidences), `inconsistent` (a compare
//! pair whose judgment flipped with the order), `audit` (a random share of what the machine would have accepted,
//! so QC can estimate its accuracy there).

use serde::{Deserialize, Serialize};

/// How a task's items are routed to people (`[review]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReviewSpec {
    /// Route items whose calibrated machine confidence is below this.
    #[serde(default)]
    pub confidence_below: Option<f64>,
    /// Route the lowest-confidence share (0..1) of the machine-labeled items.
    #[serde(default)]
    pub lowest_share: Option<f64>,
    /// Compare tasks: route pairs whose judgment was not position-consistent.
    #[serde(default = "yes")]
    pub inconsistent: bool,
    /// Tasks with a `[probe]`: route items where the probe and the LLM give different labels (the answers that
    /// teach the probe most, and catch either labeler's mistakes).
    #[serde(default = "yes")]
    pub disagree: bool,
    /// Share (0..1) of the auto-accepted items drawn at random for an audit; their suggestion is always hidden.
    #[serde(default)]
    pub audit_rate: f64,
    /// Share (0..1) of the queue made of gold items (rows with a value in the task's `gold` column).
    #[serde(default)]
    pub gold_rate: f64,
    /// How many different people answer each routed item.
    #[serde(default = "one")]
    pub overlap: u32,
    /// A skill every annotator of this review must have.
    #[serde(default)]
    pub skill: Option<String>,
    /// A column naming the skill each item needs (empty or missing: none, or `skill`).
    #[serde(default)]
    pub skill_column: Option<String>,
    /// Show the machine's label and confidence to annotators (never for audit and gold items).
    #[serde(default = "yes")]
    pub show_suggestion: bool,
    /// Seed of the audit and gold draws.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn default_seed() -> u64 {
    17
}

impl Default for ReviewSpec {
    fn default() -> Self {
        Self {
            confidence_below: None,
            lowest_share: None,
            inconsistent: true,
            disagree: true,
            audit_rate: 0.0,
            gold_rate: 0.0,
            overlap: 1,
            skill: None,
            skill_column: None,
            show_suggestion: true,
            seed: default_seed(),
        }
    }
}

/// Why an item went to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteReason {
    /// A known answer, mixed in to score annotators.
    Gold,
    /// The machine was unsure.
    LowConfidence,
    /// A compare pair judged differently in the two orders.
    Inconsistent,
    /// A random sample of what the machine would have accepted.
    Audit,
    /// The probe and the LLM labeled it differently.
    Disagree,
}

impl RouteReason {
    /// Every reason, in the order they win.
    pub const ALL: [RouteReason; 5] = [
        RouteReason::Gold,
        RouteReason::LowConfidence,
        RouteReason::Inconsistent,
        RouteReason::Disagree,
        RouteReason::Audit,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Gold => "gold",
            RouteReason::LowConfidence => "low-confidence",
            RouteReason::Inconsistent => "inconsistent",
            RouteReason::Audit => "audit",
            RouteReason::Disagree => "disagree",
        }
    }

    /// The reason with this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether the machine's suggestion is hidden for this reason whatever the task says.
    pub fn hides_suggestion(self) -> bool {
        matches!(self, RouteReason::Gold | RouteReason::Audit)
    }
}

/// What routing needs to know about one item.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteCandidate {
    /// A stable id (the record id): the audit and gold draws hash it.
    pub id: i64,
    /// The machine's calibrated confidence; `None` when the machine has not labeled it.
    pub confidence: Option<f64>,
    /// Compare tasks: whether both orders preferred the same response.
    pub position_consistent: Option<bool>,
    /// Tasks with a probe: whether the probe's and the LLM's labels differ.
    pub labelers_disagree: Option<bool>,
    /// Whether the item has a gold answer.
    pub has_gold: bool,
}

impl ReviewSpec {
    /// Check ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let share = |key: &str, v: f64, upper_inclusive: bool| {
            let ok = if upper_inclusive {
                (0.0..=1.0).contains(&v)
            } else {
                (0.0..1.0).contains(&v)
            };
            if ok {
                Ok(())
            } else {
                Err(format!("`review.{key}` must be in [0, 1], got {v}"))
            }
        };
        if let Some(c) = self.confidence_below {
            share("confidence-below", c, true)?;
        }
        if let Some(s) = self.lowest_share {
            share("lowest-share", s, true)?;
        }
        share("audit-rate", self.audit_rate, true)?;
        share("gold-rate", self.gold_rate, false).map_err(|_| {
            format!(
                "`review.gold-rate` must be in [0, 1), got {}",
                self.gold_rate
            )
        })?;
        if !(1..=100).contains(&self.overlap) {
            return Err(format!(
                "`review.overlap` must be in 1..=100, got {}",
                self.overlap
            ));
        }
        if self.skill.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err("`review.skill` must not be empty".into());
        }
        Ok(())
    }

    /// Decide which candidates go to people and why. Deterministic: the same candidates and seed give the same
    /// routing. Items not returned are auto-accepted.
    pub fn route(&self, candidates: &[RouteCandidate]) -> Vec<(i64, RouteReason)> {
        let mut reasons: std::collections::BTreeMap<i64, RouteReason> = Default::default();
        // Low confidence: under the threshold, plus the lowest share of the labeled items.
        let mut labeled: Vec<(f64, i64)> = candidates
            .iter()
            .filter_map(|c| c.confidence.map(|p| (p, c.id)))
            .collect();
        labeled.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut low = std::collections::BTreeSet::new();
        if let Some(threshold) = self.confidence_below {
            low.extend(labeled.iter().filter(|(p, _)| *p < threshold).map(|x| x.1));
        }
        if let Some(share) = self.lowest_share {
            let n = (share * labeled.len() as f64).ceil() as usize;
            low.extend(labeled.iter().take(n).map(|x| x.1));
        }
        for c in candidates {
            if low.contains(&c.id) {
                reasons.insert(c.id, RouteReason::LowConfidence);
            } else if self.inconsistent && c.position_consistent == Some(false) {
                reasons.insert(c.id, RouteReason::Inconsistent);
            } else if self.disagree && c.labelers_disagree == Some(true) {
                reasons.insert(c.id, RouteReason::Disagree);
            }
        }
        // Audit: a fixed share of the rest of the machine-labeled, non-gold items, drawn by a seeded hash.
        let mut auto: Vec<(u64, i64)> = candidates
            .iter()
            .filter(|c| c.confidence.is_some() && !c.has_gold && !reasons.contains_key(&c.id))
            .map(|c| (draw(self.seed, "audit", c.id), c.id))
            .collect();
        auto.sort_unstable();
        let n_audit = (self.audit_rate * auto.len() as f64).round() as usize;
        for (_, id) in auto.into_iter().take(n_audit) {
            reasons.insert(id, RouteReason::Audit);
        }
        // Gold: enough gold items that they make `gold-rate` of the queue; a gold item already routed for another
        // reason becomes gold (its answer scores the annotator).
        if self.gold_rate > 0.0 {
            let others = reasons.len() as f64;
            let mut gold: Vec<(u64, i64)> = candidates
                .iter()
                .filter(|c| c.has_gold)
                .map(|c| (draw(self.seed, "gold", c.id), c.id))
                .collect();
            gold.sort_unstable();
            let routed_gold: Vec<i64> = gold
                .iter()
                .filter(|(_, id)| reasons.contains_key(id))
                .map(|x| x.1)
                .collect();
            let non_gold = others - routed_gold.len() as f64;
            // (Less a hair, so that a product like 0.25 * 8 that lands a rounding error above 2 stays 2.)
            let wanted =
                (self.gold_rate / (1.0 - self.gold_rate) * non_gold - 1e-9).ceil() as usize;
            for id in &routed_gold {
                reasons.insert(*id, RouteReason::Gold);
            }
            let extra = wanted.saturating_sub(routed_gold.len());
            let fresh: Vec<i64> = gold
                .into_iter()
                .filter(|(_, id)| !reasons.contains_key(id))
                .take(extra)
                .map(|x| x.1)
                .collect();
            for id in fresh {
                reasons.insert(id, RouteReason::Gold);
            }
        }
        reasons.into_iter().collect()
    }
}

/// A uniform 64-bit draw for an item: FNV-1a over the seed, the purpose and the id, then a final mix.
fn draw(seed: u64, purpose: &str, id: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed
        .to_le_bytes()
        .iter()
        .chain(purpose.as_bytes())
        .chain(&id.to_le_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser, so neighbouring ids do not give neighbouring draws.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i64, confidence: f64) -> RouteCandidate {
        RouteCandidate {
            id,
            confidence: Some(confidence),
            position_consistent: None,
            labelers_disagree: None,
            has_gold: false,
        }
    }

    /// Issue 12: items where the probe and the LLM disagree go to people, after the low-confidence ones.
    #[test]
    fn issue_12_disagreements_between_probe_and_llm_are_routed() {
        let mut items: Vec<RouteCandidate> = (0..10).map(|i| c(i, 0.99)).collect();
        items[3].labelers_disagree = Some(true);
        items[7].labelers_disagree = Some(true);
        items[5].labelers_disagree = Some(false);
        let spec = ReviewSpec::default();
        let routed = spec.route(&items);
        assert_eq!(
            routed,
            vec![(3, RouteReason::Disagree), (7, RouteReason::Disagree)]
        );
        let off = ReviewSpec {
            disagree: false,
            ..ReviewSpec::default()
        };
        assert!(off.route(&items).is_empty());
        assert_eq!(RouteReason::parse("disagree"), Some(RouteReason::Disagree));
    }

    #[test]
    fn threshold_share_audit_and_gold_pick_the_expected_items() {
        let mut items: Vec<RouteCandidate> =
            (0..20).map(|i| c(i, 0.5 + i as f64 * 0.025)).collect();
        items[19].has_gold = true;
        items[18].has_gold = true;
        let spec = ReviewSpec {
            confidence_below: Some(0.55),
            audit_rate: 0.25,
            gold_rate: 0.2,
            ..ReviewSpec::default()
        };
        let routed = spec.route(&items);
        let of = |r: RouteReason| -> Vec<i64> {
            routed.iter().filter(|x| x.1 == r).map(|x| x.0).collect()
        };
        // 0.5 and 0.525 are below 0.55.
        assert_eq!(of(RouteReason::LowConfidence), vec![0, 1]);
        // 16 auto-accepted non-gold items, a quarter of them.
        assert_eq!(of(RouteReason::Audit).len(), 4);
        assert!(of(RouteReason::Audit).iter().all(|id| (2..18).contains(id)));
        // 6 others; gold makes 20% of the queue: ceil(0.25 * 6) = 2.
        assert_eq!(of(RouteReason::Gold), vec![18, 19]);
        assert_eq!(spec.route(&items), routed, "deterministic");
    }

    #[test]
    fn lowest_share_and_inconsistent_pairs() {
        let mut items: Vec<RouteCandidate> = (0..10).map(|i| c(i, 0.9 - i as f64 * 0.01)).collect();
        items[0].position_consistent = Some(false);
        let spec = ReviewSpec {
            lowest_share: Some(0.2),
            ..ReviewSpec::default()
        };
        let routed = spec.route(&items);
        assert_eq!(
            routed,
            vec![
                (0, RouteReason::Inconsistent),
                (8, RouteReason::LowConfidence),
                (9, RouteReason::LowConfidence)
            ]
        );
        let off = ReviewSpec {
            inconsistent: false,
            ..spec
        };
        assert_eq!(off.route(&items).len(), 2);
    }

    #[test]
    fn bad_ranges_name_the_key() {
        let spec = ReviewSpec {
            audit_rate: 1.5,
            ..ReviewSpec::default()
        };
        assert!(spec.validate().unwrap_err().contains("review.audit-rate"));
        let spec = ReviewSpec {
            overlap: 0,
            ..ReviewSpec::default()
        };
        assert!(spec.validate().unwrap_err().contains("review.overlap"));
    }
}
