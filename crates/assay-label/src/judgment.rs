//! From a model's raw log-probabilities to a label: distributions per branch ("units"), the label value, its
//! confidence and distribution, pair judgments debiased over both orders (Lee et al. 2023), and ratings.

use assay_core::task::{outcome_name, RateSpec, TIE};
use assay_core::{TaskKind, TaskSpec};
use assay_quality::calibration::softmax;
use serde_json::{json, Map, Value};

/// One pair judged in both orders, position-debiased (Lee et al. 2023, section 2.1.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairJudgment {
    /// P("1") with response 1 shown first (order AB), normalised over {1, 2}.
    pub p_ab: f64,
    /// P("1") with response 2 shown first (order BA): the model's P(response 2 better) in that order.
    pub p_ba: f64,
    /// Debiased P(response 1 better) = mean(p_ab, 1 - p_ba).
    pub soft: f64,
    /// `p_ab - p_ba` = 2 soft - 1, in [-1, 1]; exactly negated when the two responses are swapped.
    pub margin: f64,
    /// Both orders prefer the same response.
    pub consistent: bool,
    /// The same position won in both orders (the judgment flipped with the order).
    pub position_flip: bool,
    /// Outcome of order AB alone: 0 (response 1), 1 (response 2) or [`TIE`].
    pub single_order: usize,
    /// Debiased outcome: 0, 1 or [`TIE`].
    pub outcome: usize,
}

impl PairJudgment {
    /// The `preference` object of the output's `assay` column.
    pub fn to_json(self) -> Value {
        json!({
            "p_response_1": self.soft,
            "margin": self.margin,
            "p_ab": self.p_ab,
            "p_ba": self.p_ba,
            "position_consistent": self.consistent,
            "single_order_label": outcome_name(self.single_order),
        })
    }

    /// The response preferred for agreement with people or gold (`assay label`, `assay eval` and `assay qc` count
    /// it alike): 0 when the debiased P(response 1 better) is above 0.5, 1 when below, `None` at exactly 0.5. The
    /// tie margin is not applied: a pair agrees when the model leans towards the response people preferred.
    pub fn preferred(&self) -> Option<usize> {
        lean(self.soft)
    }

    /// [`Self::preferred`] from order AB alone (what a single-order judge would have said).
    pub fn preferred_single_order(&self) -> Option<usize> {
        lean(self.p_ab)
    }

    /// People's preference as a judgment: `code` (0: response 1, 1: response 2, [`TIE`]) chosen by `agreeing`
    /// of `answered`; the soft label is the share that chose response 1 (a tie counts half).
    pub fn of_people(code: usize, agreeing: usize, answered: usize) -> Self {
        let share = agreeing as f64 / answered.max(1) as f64;
        let soft = match code {
            0 => share,
            1 => 1.0 - share,
            _ => 0.5,
        };
        Self {
            p_ab: soft,
            p_ba: 1.0 - soft,
            soft,
            margin: 2.0 * soft - 1.0,
            consistent: true,
            position_flip: false,
            single_order: code,
            outcome: code,
        }
    }
}

/// 0 above 0.5, 1 below, `None` at exactly 0.5.
fn lean(p: f64) -> Option<usize> {
    match p.partial_cmp(&0.5) {
        Some(std::cmp::Ordering::Greater) => Some(0),
        Some(std::cmp::Ordering::Less) => Some(1),
        _ => None,
    }
}

/// Judge a pair from P("1") in each order. Ties: |soft - 0.5| <= `tie_margin` (checked as |margin| <= 2 margin,
/// which is exactly symmetric under swapping the responses).
pub fn judge_pair(p_ab: f64, p_ba: f64, tie_margin: f64) -> PairJudgment {
    let margin = p_ab - p_ba;
    let decide = |m: f64| {
        if m.abs() <= 2.0 * tie_margin {
            TIE
        } else if m > 0.0 {
            0
        } else {
            1
        }
    };
    let (ab_first, ab_second) = (p_ab > 0.5, p_ab < 0.5);
    let (ba_first, ba_second) = (p_ba > 0.5, p_ba < 0.5);
    PairJudgment {
        p_ab,
        p_ba,
        soft: 0.5 + 0.5 * margin,
        margin,
        consistent: assay_core::task::orders_agree(p_ab, p_ba),
        position_flip: (ab_first && ba_first) || (ab_second && ba_second),
        single_order: decide(2.0 * p_ab - 1.0),
        outcome: decide(margin),
    }
}

/// The judgment of a compare item from its units (normalised `[P("1"), P("2")]` per order, AB then BA), or of a
/// rated pair from its two rating distributions: P(response 1 better) = P(score 1 > score 2) + P(equal) / 2, and
/// as neither response was shown beside the other, the "two orders" are that and its complement.
pub fn compare_judgment(spec: &TaskSpec, units: &[Vec<f64>]) -> Option<PairJudgment> {
    if spec.is_rated_pair() {
        let rate = spec.rate.as_ref()?;
        return match units {
            [first, second] => {
                let p = RateSpec::pair_preference(first, second);
                Some(judge_pair(p, 1.0 - p, rate.tie_margin))
            }
            _ => None,
        };
    }
    let compare = spec
        .compare
        .as_ref()
        .filter(|_| spec.kind == TaskKind::Compare)?;
    match units {
        [ab, ba] if ab.len() == 2 && ba.len() == 2 => {
            Some(judge_pair(ab[0], ba[0], compare.tie_margin))
        }
        _ => None,
    }
}

/// Raw log-probabilities (per order, per option) → the judgment; what `export` and `eval` read from the store.
pub fn judgment_from_scores(spec: &TaskSpec, scores: &Value) -> Option<PairJudgment> {
    let scores = logprobs_of(scores)?;
    compare_judgment(spec, &units_from_scores(&scores))
}

pub use assay_core::task::position_consistent;

/// The per-branch option log-probabilities of a stored annotation: a bare array, or (chain of thought, served
/// usage) the `logprobs` of an object that also holds the `rationales` or `usage`.
pub fn logprobs_of(scores: &Value) -> Option<Vec<Vec<f64>>> {
    let logprobs = match scores {
        Value::Object(o) => o.get("logprobs")?,
        other => other,
    };
    serde_json::from_value(logprobs.clone()).ok()
}

/// The chain-of-thought rationales (order AB, order BA) of a stored compare annotation, if it has them.
pub fn rationales_of(scores: &Value) -> Option<[String; 2]> {
    serde_json::from_value(scores.get("rationales")?.clone()).ok()
}

/// Whether an annotation's label was generated (no log-probabilities, no confidence).
pub fn is_generated(scores: &Value) -> bool {
    scores.get("generated").and_then(Value::as_bool) == Some(true)
}

/// Per-branch option log-probabilities → per-branch distributions (a unit per branch).
pub fn units_from_scores(scores: &[Vec<f64>]) -> Vec<Vec<f64>> {
    scores.iter().map(|s| softmax(s)).collect()
}

/// A label: its value (a name, a list, a score, `1`/`2`/`tie`), confidence and distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// The label as JSON.
    pub value: Value,
    /// The confidence in it.
    pub confidence: f64,
    /// Outcome name → probability.
    pub distribution: Value,
}

/// Label value, confidence and distribution from units. Classify: argmax of the one unit. Multi-label: every label
/// whose P(yes) reaches the threshold; confidence is that of the least certain yes/no decision.
pub fn label_from_units(spec: &TaskSpec, units: &[Vec<f64>]) -> Label {
    let label = |value: Value, confidence: f64, distribution: Value| Label {
        value,
        confidence,
        distribution,
    };
    if spec.judges_pairs() {
        return match compare_judgment(spec, units) {
            Some(j) => label(
                json!(outcome_name(j.outcome)),
                j.soft.max(1.0 - j.soft),
                json!({"1": j.soft, "2": 1.0 - j.soft}),
            ),
            None => label(Value::Null, 0.0, json!({})),
        };
    }
    let named = |names: &[String], p: &[f64]| -> Value {
        let map: Map<String, Value> = names
            .iter()
            .zip(p)
            .map(|(n, p)| (n.clone(), json!(p)))
            .collect();
        Value::Object(map)
    };
    let names = spec.outcome_names();
    match spec.kind {
        TaskKind::Rate | TaskKind::Classify | TaskKind::Compare => {
            let p = &units[0];
            let best = argmax(p);
            label(json!(names[best]), p[best], named(&names, p))
        }
        TaskKind::MultiLabel => {
            let yes: Vec<f64> = units.iter().map(|u| u[0]).collect();
            let chosen: Vec<&String> = names
                .iter()
                .zip(&yes)
                .filter(|(_, &p)| p >= spec.multi_label.threshold)
                .map(|(n, _)| n)
                .collect();
            let confidence = yes.iter().map(|&p| p.max(1.0 - p)).fold(1.0, f64::min);
            label(json!(chosen), confidence, named(&names, &yes))
        }
    }
}

/// The `rating` object of a rate task's output: the expected score, it normalised to [-1, 1], and the
/// distribution over the scores. A rated pair (`rate.response-2`) has `response_1` and `response_2`, each such an
/// object.
pub fn rating_json(spec: &TaskSpec, units: &[Vec<f64>]) -> Option<Value> {
    let rate = spec.rate.as_ref().filter(|_| spec.kind == TaskKind::Rate)?;
    let one = |p: &Vec<f64>| {
        let rating = rate.rating(p);
        let distribution: Map<String, Value> = rate
            .scores()
            .into_iter()
            .zip(p)
            .map(|(s, p)| (s, json!(p)))
            .collect();
        json!({
            "expected": rating.expected,
            "normalised": rating.normalised,
            "distribution": distribution,
        })
    };
    match units {
        [first, second] => Some(json!({"response_1": one(first), "response_2": one(second)})),
        [only] => Some(one(only)),
        _ => None,
    }
}

/// The label names of a label value (one for classify, several for multi-label).
pub fn value_names(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(v) => v
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The index of the largest probability (the first on a tie).
pub fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i)
}

/// What a run's pair judgments came to, for the summary; built one judgment at a time.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CompareSummary {
    /// Pairs judged.
    pub pairs: usize,
    /// Judged: response 1 better.
    pub response_1: usize,
    /// Judged: response 2 better.
    pub response_2: usize,
    /// Judged a tie.
    pub ties: usize,
    /// Both orders agreed.
    pub position_consistent: usize,
    /// The same position won in both orders.
    pub position_flips: usize,
    /// Gold pairs that are not ties, and how many of them the debiased and AB-only judgments match.
    pub gold_pairs: usize,
    /// Debiased judgments leaning to a non-tie gold preference ([`PairJudgment::preferred`]: the tie margin is
    /// not applied, as in `assay eval`'s alignment).
    pub gold_agree: usize,
    /// Order-AB-only judgments leaning to a non-tie gold preference.
    pub gold_agree_single_order: usize,
}

impl CompareSummary {
    /// Count one judgment and its pair's gold preference code, if any.
    pub fn add(&mut self, j: &PairJudgment, gold: Option<usize>) {
        self.pairs += 1;
        self.response_1 += usize::from(j.outcome == 0);
        self.response_2 += usize::from(j.outcome == 1);
        self.ties += usize::from(j.outcome == TIE);
        self.position_consistent += usize::from(j.consistent);
        self.position_flips += usize::from(j.position_flip);
        if let Some(g @ (0 | 1)) = gold {
            self.gold_pairs += 1;
            self.gold_agree += usize::from(j.preferred() == Some(g));
            self.gold_agree_single_order += usize::from(j.preferred_single_order() == Some(g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::human::free_column_name;
    use assay_core::task::preference_code;

    #[test]
    fn existing_assay_column_is_not_overwritten() {
        assert_eq!(free_column_name(&["text".into()]), "assay");
        assert_eq!(free_column_name(&["assay".into()]), "assay_label");
    }

    #[test]
    fn multi_label_picks_labels_over_threshold_with_weakest_confidence() {
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"multi-label\"\ninput = \"{{ x }}\"\nlabels = [\"a\", \"b\", \"c\"]\n",
        )
        .unwrap();
        let label = label_from_units(&spec, &[vec![0.9, 0.1], vec![0.4, 0.6], vec![0.7, 0.3]]);
        assert_eq!(label.value, json!(["a", "c"]));
        assert!((label.confidence - 0.6).abs() < 1e-12);
    }

    const COMPARE_TASK: &str = "name = \"p\"\ntype = \"compare\"\n[compare]\ncontext = \"{{ q }}\"\nresponse-1 = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\ntie-margin = 0.1\n";

    /// Issue 3: judging (A, B) and (B, A) gives exactly complementary debiased soft labels. Swapping the responses
    /// in the row swaps the two prompts, so order AB of the swapped pair is order BA of the original.
    #[test]
    fn issue_3_swapping_the_responses_complements_the_debiased_judgment() {
        let spec = TaskSpec::from_toml_str(COMPARE_TASK).unwrap();
        // Fixed log-probabilities of ["1", "2"]: AB prompt, BA prompt. Position bias: "1" is favoured in both.
        let ab_prompt = vec![-0.3, -1.7];
        let ba_prompt = vec![-0.6, -1.1];
        for (x, y) in [
            (ab_prompt.clone(), ba_prompt.clone()),
            (vec![-2.0, -0.01], vec![-0.2, -3.0]),
            (vec![-0.7, -0.7], vec![-0.5, -0.9]),
        ] {
            let original = judgment_from_scores(&spec, &json!([x, y])).unwrap();
            let swapped = judgment_from_scores(&spec, &json!([y, x])).unwrap();
            assert_eq!(original.margin, -swapped.margin);
            assert!((original.soft + swapped.soft - 1.0).abs() < 1e-15);
            assert_eq!(original.consistent, swapped.consistent);
            let mirrored = [1, 0, TIE][original.outcome];
            assert_eq!(swapped.outcome, mirrored);
        }
        // The worked example: P_AB("1") = softmax(-0.3, -1.7)[0], P_BA("1") = softmax(-0.6, -1.1)[0].
        let p_ab = 1.0 / (1.0 + (-1.4f64).exp());
        let p_ba = 1.0 / (1.0 + (-0.5f64).exp());
        let j = judgment_from_scores(&spec, &json!([ab_prompt, ba_prompt])).unwrap();
        assert!((j.p_ab - p_ab).abs() < 1e-12 && (j.p_ba - p_ba).abs() < 1e-12);
        assert!((j.soft - (p_ab + 1.0 - p_ba) / 2.0).abs() < 1e-12);
        // "1" won in both orders: a position flip, not consistent; debiased it is a tie (soft 0.55, margin 0.1).
        assert!(j.position_flip && !j.consistent);
        assert_eq!(j.single_order, 0);
        assert_eq!(j.outcome, TIE);
    }

    /// Issue 11 (2.3): `assay label`'s agreement with gold and `assay eval`'s alignment are one definition: a pair
    /// judged a tie under the tie margin still agrees when it leans towards the preferred response.
    #[test]
    fn issue_11_label_and_eval_count_agreement_alike() {
        use crate::eval::PreferenceReport;
        let margin = 0.1;
        // soft: 0.85 (clear 1), 0.55 (a tie under the margin, leaning 1), 0.45 (tie, leaning 2), 0.2 (clear 2),
        // 0.5 (no lean).
        let judged = [
            (judge_pair(0.9, 0.2, margin), 0),
            (judge_pair(0.6, 0.5, margin), 0),
            (judge_pair(0.5, 0.6, margin), 0),
            (judge_pair(0.2, 0.8, margin), 1),
            (judge_pair(0.5, 0.5, margin), 1),
        ];
        let mut summary = CompareSummary::default();
        for (j, gold) in &judged {
            summary.add(j, Some(*gold));
        }
        let people: Vec<_> = judged.iter().map(|(j, g)| (*j, vec![Some(*g)])).collect();
        let report = PreferenceReport::compute(&people, 1).unwrap();
        assert_eq!(summary.gold_pairs, report.both_orders.majority_pairs);
        assert_eq!(summary.gold_agree, 3, "{summary:?}");
        let label_share = summary.gold_agree as f64 / summary.gold_pairs as f64;
        assert_eq!(Some(label_share), report.both_orders.alignment);
        let single = summary.gold_agree_single_order as f64 / summary.gold_pairs as f64;
        assert_eq!(Some(single), report.single_order.alignment);
    }

    #[test]
    fn debiased_outcomes_respect_the_tie_margin() {
        let clear = judge_pair(0.9, 0.2, 0.1);
        assert_eq!((clear.outcome, clear.consistent), (0, true));
        assert!((clear.soft - 0.85).abs() < 1e-12);
        assert_eq!(judge_pair(0.2, 0.9, 0.1).outcome, 1);
        assert_eq!(judge_pair(0.6, 0.45, 0.1).outcome, TIE); // soft 0.575
        assert_eq!(judge_pair(0.6, 0.45, 0.0).outcome, 0);
        assert_eq!(judge_pair(0.5, 0.5, 0.0).outcome, TIE);
    }

    #[test]
    fn human_preferences_parse_as_pandalm_writes_them() {
        assert_eq!(preference_code(&json!(1)), Some(0));
        assert_eq!(preference_code(&json!("2")), Some(1));
        assert_eq!(preference_code(&json!(0)), Some(TIE));
        assert_eq!(preference_code(&json!("Tie")), Some(TIE));
        assert_eq!(preference_code(&json!(3)), None);
        assert_eq!(preference_code(&json!(null)), None);
    }

    #[test]
    fn gold_values_map_through_aliases_and_lists() {
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"multi-label\"\ninput = \"{{ x }}\"\nlabels = [\"a\", {name = \"b\", aliases = [\"B!\"]}]\n",
        )
        .unwrap();
        assert_eq!(spec.gold_indices(Some(&json!("a, B!"))), Some(vec![0, 1]));
        assert_eq!(spec.gold_indices(Some(&json!(["b"]))), Some(vec![1]));
        assert_eq!(spec.gold_indices(Some(&json!("zzz"))), None);
    }
}
