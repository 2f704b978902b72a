//! A task's stored labels against people's labels in the dataset's columns.
//!
//! Pair tasks (Lee et al. 2023, section 3.1): alignment is the share of pairs whose AI-preferred response is the
//! human majority's, over pairs with a non-tie majority; the AI's preference there is binary (debiased P(response 1
//! better) above or below 0.5; exactly 0.5 counts as not aligned). Cohen's kappa compares the AI's three-way outcome
//! (1, 2, tie under the task's tie margin) with each person's and with the majority's; the people's own pairwise
//! kappas are given for reference; the position-flip rate is the share of pairs where the same position won in
//! both orders. Order AB alone (what a single-order judge would have said) and both orders are kept side by side.
//!
//! Classify tasks: accuracy, macro-F1 and ECE of the stored (calibrated) labels against each human column, and
//! Cohen's kappa.

use assay_core::task::{preference_code, TIE};
use assay_core::TaskSpec;
use assay_quality::aggregation::{majority_vote, Answer, TiePolicy};
use assay_quality::agreement::{cohen_kappa, ContingencyTable, KappaWeights};
use assay_quality::length_control::LengthModel;
use assay_quality::metrics::{classification_report, ClassificationReport};
use serde_json::Value;

use crate::judgment::{judgment_from_scores, PairJudgment};
use crate::Result;

/// Judgments by row index, with the row's data (to check that variants judged the same rows) and the people's
/// preference codes.
pub type JudgedPairs = std::collections::BTreeMap<u64, (PairJudgment, Value, Vec<Option<usize>>)>;

pub fn judged_pairs(
    spec: &TaskSpec,
    labels: &[assay_store::LabeledRecord],
    humans: &[String],
) -> JudgedPairs {
    labels
        .iter()
        .filter_map(|label| {
            let j = judgment_from_scores(spec, &label.scores)?;
            let codes = humans
                .iter()
                .map(|c| label.data.get(c).and_then(preference_code))
                .collect();
            Some((label.row_index, (j, label.data.clone(), codes)))
        })
        .collect()
}

/// One judging variant's agreement with people.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VariantScores {
    /// Pairs with a non-tie human majority.
    pub majority_pairs: usize,
    /// Share of them where the AI prefers the majority's response.
    pub alignment: Option<f64>,
    /// Cohen's kappa (three-way: 1, 2, tie) against the majority, over pairs with a majority.
    pub kappa_majority: Option<f64>,
    /// Cohen's kappa against each person.
    pub kappa_humans: Vec<Option<f64>>,
}

/// The preference figures of `assay eval`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreferenceReport {
    pub pairs: usize,
    pub position_flip_rate: Option<f64>,
    pub position_consistent_rate: Option<f64>,
    pub ai_ties: usize,
    /// Pairs whose human majority is a tie or that have no majority.
    pub human_tie_or_split: usize,
    pub single_order: VariantScores,
    pub both_orders: VariantScores,
    /// (person a, person b, kappa).
    pub human_kappas: Vec<(usize, usize, Option<f64>)>,
    /// Variants from `--with` tasks, on the same pairs.
    pub others: Vec<(String, VariantScores)>,
    /// Their position-flip rates.
    pub other_flip_rates: Vec<(String, Option<f64>)>,
}

impl PreferenceReport {
    pub fn compute(pairs: &[(PairJudgment, Vec<Option<usize>>)], humans: usize) -> Result<Self> {
        let answers: Vec<Answer> = pairs
            .iter()
            .enumerate()
            .flat_map(|(i, (_, h))| {
                h.iter()
                    .enumerate()
                    .filter_map(move |(a, code)| code.map(|c| Answer::new(i, a, c)))
            })
            .collect();
        let majority: Vec<Option<usize>> =
            majority_vote(&answers, pairs.len(), 3, TiePolicy::Report)?
                .into_iter()
                .map(|v| v.label)
                .collect();
        let human_column =
            |a: usize| -> Vec<Option<usize>> { pairs.iter().map(|(_, h)| h[a]).collect() };
        let variant = |binary: &dyn Fn(&PairJudgment) -> Option<usize>,
                       outcome: &dyn Fn(&PairJudgment) -> usize| {
            let (mut aligned, mut counted) = (0usize, 0usize);
            for ((j, _), m) in pairs.iter().zip(&majority) {
                if let Some(m @ (0 | 1)) = m {
                    counted += 1;
                    aligned += usize::from(binary(j) == Some(*m));
                }
            }
            let ai: Vec<Option<usize>> = pairs.iter().map(|(j, _)| Some(outcome(j))).collect();
            VariantScores {
                majority_pairs: counted,
                alignment: (counted > 0).then(|| aligned as f64 / counted as f64),
                kappa_majority: kappa(&ai, &majority),
                kappa_humans: (0..humans).map(|a| kappa(&ai, &human_column(a))).collect(),
            }
        };
        let n = pairs.len();
        let rate = |count: usize| (n > 0).then(|| count as f64 / n as f64);
        let mut human_kappas = Vec::new();
        for a in 0..humans {
            for b in a + 1..humans {
                human_kappas.push((a, b, kappa(&human_column(a), &human_column(b))));
            }
        }
        Ok(Self {
            pairs: n,
            position_flip_rate: rate(pairs.iter().filter(|(j, _)| j.position_flip).count()),
            position_consistent_rate: rate(pairs.iter().filter(|(j, _)| j.consistent).count()),
            ai_ties: pairs.iter().filter(|(j, _)| j.outcome == TIE).count(),
            human_tie_or_split: majority
                .iter()
                .filter(|m| !matches!(m, Some(0 | 1)))
                .count(),
            single_order: variant(&PairJudgment::preferred_single_order, &|j| j.single_order),
            both_orders: variant(&PairJudgment::preferred, &|j| j.outcome),
            human_kappas,
            others: Vec::new(),
            other_flip_rates: Vec::new(),
        })
    }
}

/// Cohen's kappa over three categories of the items both coded; `None` where it is undefined.
pub fn kappa(a: &[Option<usize>], b: &[Option<usize>]) -> Option<f64> {
    let table = ContingencyTable::from_pairs(a, b, 3).ok()?;
    cohen_kappa(&table, KappaWeights::Unweighted).ok()
}

/// A classify task's labels against one human column.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnFigures {
    /// The column.
    pub column: String,
    /// Rows where both the model and the column have a label.
    pub rows: usize,
    /// Accuracy, macro-F1, ECE against the column.
    pub report: Option<ClassificationReport>,
    /// Cohen's kappa against the column.
    pub kappa: Option<f64>,
}

/// A classify task's labels against each human column.
pub fn classify_figures(
    spec: &TaskSpec,
    labels: &[assay_store::LabeledRecord],
    humans: &[String],
) -> Result<Vec<ColumnFigures>> {
    let k = spec.labels.len();
    let ai: Vec<Option<usize>> = labels
        .iter()
        .map(|l| l.value.as_str().and_then(|v| spec.label_index(v)))
        .collect();
    let human_codes = |column: &str| -> Vec<Option<usize>> {
        labels
            .iter()
            .map(|l| match l.data.get(column) {
                Some(Value::String(s)) => spec.label_index(s),
                Some(Value::Number(n)) => spec.label_index(&n.to_string()),
                _ => None,
            })
            .collect()
    };
    let mut figures = Vec::new();
    for column in humans {
        let gold = human_codes(column);
        let (mut p, mut g, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for ((a, h), l) in ai.iter().zip(&gold).zip(labels) {
            if let (Some(a), Some(h)) = (a, h) {
                p.push(*a);
                g.push(*h);
                c.push(l.confidence.unwrap_or(0.0));
            }
        }
        let table = ContingencyTable::from_pairs(&ai, &gold, k)?;
        figures.push(ColumnFigures {
            column: column.clone(),
            rows: p.len(),
            report: classification_report(&p, &g, &c).ok(),
            kappa: cohen_kappa(&table, KappaWeights::Unweighted).ok(),
        });
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judgment::judge_pair;

    #[test]
    fn alignment_excludes_human_ties_and_single_order_is_reported_apart() {
        // Pair 0: humans prefer 1; AB alone says 1, debiased says 1.
        // Pair 1: humans prefer 2; AB alone says 1 (position bias), debiased says 2.
        // Pair 2: humans split 1/2/tie: no majority, excluded from alignment.
        // Pair 3: humans say tie: excluded from alignment.
        let pairs = vec![
            (judge_pair(0.9, 0.2, 0.0), vec![Some(0), Some(0), Some(1)]),
            (judge_pair(0.6, 0.9, 0.0), vec![Some(1), Some(1), Some(1)]),
            (judge_pair(0.7, 0.7, 0.0), vec![Some(0), Some(1), Some(TIE)]),
            (
                judge_pair(0.8, 0.3, 0.0),
                vec![Some(TIE), Some(TIE), Some(0)],
            ),
        ];
        let r = PreferenceReport::compute(&pairs, 3).unwrap();
        assert_eq!(r.both_orders.majority_pairs, 2);
        assert_eq!(r.both_orders.alignment, Some(1.0));
        assert_eq!(r.single_order.alignment, Some(0.5));
        assert_eq!(r.human_tie_or_split, 2);
        // Pairs 1 and 2 won by the first position in both orders.
        assert_eq!(r.position_flip_rate, Some(0.5));
        assert_eq!(r.ai_ties, 1); // pair 2: p_ab = p_ba
        assert_eq!(r.human_kappas.len(), 3);
        // Humans 0 and 1 agree on every pair but the split one: kappa over 4 items, 3 agreements.
        // Table (0,1): codes (0,0), (1,1), (0,1), (2,2): p_o = 3/4; marginals a = [2,1,1], b = [1,2,1]:
        // p_e = (2*1 + 1*2 + 1*1) / 16 = 5/16; kappa = (12/16 - 5/16) / (11/16) = 7/11.
        let k01 = r.human_kappas[0].2.unwrap();
        assert!((k01 - 7.0 / 11.0).abs() < 1e-12, "{k01}");
    }
}

/// The baselines a judge must beat on pairs with a non-tie human majority, and its length preference (issue 12
/// item 7): preference judges, people and small models alike, tend to favour one length.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LengthBaselines {
    /// Pairs with a non-tie human majority whose responses differ in length.
    pub pairs: usize,
    /// Alignment of always picking response 1 (the position baseline), over every majority pair.
    pub always_first: Option<f64>,
    /// Alignment of always picking the shorter response.
    pub always_shorter: Option<f64>,
    /// Alignment of always picking the longer response.
    pub always_longer: Option<f64>,
    /// The judge's (debiased) alignment on the same pairs.
    pub judge: Option<f64>,
    /// Share of those pairs where the judge picked the shorter response.
    pub judge_picks_shorter: Option<f64>,
    /// Share where the human majority picked the shorter response.
    pub humans_pick_shorter: Option<f64>,
    /// The judge's preference modelled on the length difference, fitted over every judged pair whose
    /// lengths are known (its own verdicts; no human label is used).
    pub length_model: Option<LengthModel>,
    /// Alignment of the length-controlled judgment (the length term removed from each pair's log-odds).
    pub length_controlled: Option<f64>,
    /// Share of the pairs where the length-controlled judgment picked the shorter response.
    pub length_controlled_picks_shorter: Option<f64>,
}

/// A judged pair, its responses' lengths (when they render) and people's codes.
type LengthPair<'a> = (&'a PairJudgment, Option<[usize; 2]>, &'a Vec<Option<usize>>);

/// Length and position baselines over the judged pairs; lengths are the rendered responses' characters.
pub fn length_baselines(
    spec: &TaskSpec,
    prompts: &assay_core::PromptBuilder,
    judged: &JudgedPairs,
) -> Result<LengthBaselines> {
    let pairs: Vec<LengthPair<'_>> = judged
        .values()
        .map(|(j, data, codes)| {
            let lengths = data.as_object().and_then(|d| {
                if spec.kind == assay_core::TaskKind::Rate {
                    let r = prompts.render_rated(d).ok()?;
                    Some([r.response.chars().count(), r.second?.chars().count()])
                } else {
                    let p = prompts.render_pair(d).ok()?;
                    Some(p.responses.map(|r| r.chars().count()))
                }
            });
            (j, lengths, codes)
        })
        .collect();
    let answers: Vec<Answer> = pairs
        .iter()
        .enumerate()
        .flat_map(|(i, (_, _, h))| {
            h.iter()
                .enumerate()
                .filter_map(move |(a, code)| code.map(|c| Answer::new(i, a, c)))
        })
        .collect();
    let majority = majority_vote(&answers, pairs.len(), 3, TiePolicy::Report)?;
    let length_model = LengthModel::fit(
        &pairs
            .iter()
            .filter_map(|(j, lengths, _)| lengths.map(|[a, b]| (j.soft, a as f64 - b as f64)))
            .collect::<Vec<_>>(),
    );
    let (mut controlled, mut controlled_short) = (0usize, 0usize);
    let (mut first, mut counted) = (0usize, 0usize);
    let (mut shorter, mut longer, mut judge, mut judge_short, mut human_short, mut n) =
        (0, 0, 0, 0, 0, 0usize);
    for ((j, lengths, _), vote) in pairs.iter().zip(&majority) {
        let Some(m @ (0 | 1)) = vote.label else {
            continue;
        };
        counted += 1;
        first += usize::from(m == 0);
        let Some([a, b]) = lengths.filter(|[a, b]| a != b) else {
            continue;
        };
        n += 1;
        let short = usize::from(b < a); // 0 when response 1 is the shorter
        let picked = usize::from(j.soft < 0.5);
        shorter += usize::from(m == short);
        longer += usize::from(m != short);
        judge += usize::from(j.soft != 0.5 && picked == m);
        judge_short += usize::from(j.soft != 0.5 && picked == short);
        human_short += usize::from(m == short);
        if let Some(model) = &length_model {
            let soft = model.control(j.soft, a as f64 - b as f64);
            let picked = usize::from(soft < 0.5);
            controlled += usize::from(soft != 0.5 && picked == m);
            controlled_short += usize::from(soft != 0.5 && picked == short);
        }
    }
    let share = |k: usize, of: usize| (of > 0).then(|| k as f64 / of as f64);
    Ok(LengthBaselines {
        pairs: n,
        always_first: share(first, counted),
        always_shorter: share(shorter, n),
        always_longer: share(longer, n),
        judge: share(judge, n),
        judge_picks_shorter: share(judge_short, n),
        humans_pick_shorter: share(human_short, n),
        length_controlled: length_model.and_then(|_| share(controlled, n)),
        length_controlled_picks_shorter: length_model.and_then(|_| share(controlled_short, n)),
        length_model,
    })
}

#[cfg(test)]
mod length_tests {
    use super::*;
    use crate::judgment::judge_pair;

    #[test]
    fn issue_12_length_baselines_count_the_shorter_and_the_first() {
        let spec = TaskSpec::from_toml_str(
            "name = \"p\"\ntype = \"compare\"\n[compare]\ncontext = \"{{ q }}\"\nresponse-1 = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\n",
        )
        .unwrap();
        let prompts = assay_core::PromptBuilder::new(&spec).unwrap();
        let row = |a: &str, b: &str| serde_json::json!({"q": "?", "a": a, "b": b});
        let mut judged = JudgedPairs::new();
        // People prefer the shorter response in pairs 0 and 1, the longer in pair 2; the judge picks 1 always.
        judged.insert(
            0,
            (
                judge_pair(0.9, 0.2, 0.0),
                row("short", "much longer"),
                vec![Some(0)],
            ),
        );
        judged.insert(
            1,
            (
                judge_pair(0.9, 0.2, 0.0),
                row("much longer", "short"),
                vec![Some(1)],
            ),
        );
        judged.insert(
            2,
            (
                judge_pair(0.9, 0.2, 0.0),
                row("much longer", "short"),
                vec![Some(0)],
            ),
        );
        judged.insert(
            3,
            (
                judge_pair(0.9, 0.2, 0.0),
                row("tie", "tie"),
                vec![Some(TIE)],
            ),
        );
        let b = length_baselines(&spec, &prompts, &judged).unwrap();
        assert_eq!(b.pairs, 3);
        assert_eq!(b.always_first, Some(2.0 / 3.0));
        assert_eq!(b.always_shorter, Some(2.0 / 3.0));
        assert_eq!(b.always_longer, Some(1.0 / 3.0));
        assert_eq!(b.judge, Some(2.0 / 3.0));
        assert_eq!(b.judge_picks_shorter, Some(1.0 / 3.0));
    }

    #[test]
    fn issue_12_length_control_recovers_a_judge_that_length_misleads() {
        let spec = TaskSpec::from_toml_str(
            "name = \"p\"\ntype = \"compare\"\n[compare]\ncontext = \"{{ q }}\"\nresponse-1 = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\n",
        )
        .unwrap();
        let prompts = assay_core::PromptBuilder::new(&spec).unwrap();
        let mut judged = JudgedPairs::new();
        // People always prefer the good response; it is the longer one in half the pairs. The judge sees a little
        // of the quality (log-odds ±0.5) and much of the length (log-odds ±3 towards the longer).
        for i in 0..16u64 {
            let good_first = i % 2 == 0;
            let good_longer = i % 4 < 2;
            let (short, long) = ("x".repeat(10 + i as usize), "x".repeat(200 + i as usize));
            let first_longer = good_first == good_longer;
            let (a, b) = if first_longer {
                (long, short)
            } else {
                (short, long)
            };
            let logit = if good_first { 0.5 } else { -0.5 } + if first_longer { 3.0 } else { -3.0 };
            let soft = 1.0 / (1.0 + f64::exp(-logit));
            let row = serde_json::json!({"q": "?", "a": a, "b": b});
            let human = Some(if good_first { 0 } else { 1 });
            judged.insert(i, (judge_pair(soft, 1.0 - soft, 0.0), row, vec![human]));
        }
        let b = length_baselines(&spec, &prompts, &judged).unwrap();
        assert_eq!(b.pairs, 16);
        assert_eq!(b.judge, Some(0.5), "the raw judge follows length");
        assert_eq!(b.judge_picks_shorter, Some(0.0));
        let model = b.length_model.unwrap();
        assert!(model.slope > 2.0, "{model:?}");
        assert_eq!(b.length_controlled, Some(1.0), "{b:?}");
        assert_eq!(b.length_controlled_picks_shorter, Some(0.5));
    }
}
