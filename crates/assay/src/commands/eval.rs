//! `assay eval`: a task's stored labels against human labels in the dataset's columns.
//!
//! Compare tasks (Lee et al. 2023, section 3.1): alignment is the share of pairs whose AI-preferred response is the
//! human majority's, over pairs with a non-tie majority; the AI's preference there is binary (debiased P(response 1
//! better) above or below 0.5; exactly 0.5 counts as not aligned). Cohen's kappa compares the AI's three-way outcome
//! (1, 2, tie under the task's tie margin) with each person's and with the majority's; the people's own pairwise
//! kappas are printed for reference; the position-flip rate is the share of pairs where the same position won in
//! both orders. Order AB alone (what a single-order judge would have said) and both orders are shown side by side.
//!
//! Classify and multi-label tasks: accuracy, macro-F1 and ECE of the stored (calibrated) labels against each human
//! column, and Cohen's kappa.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use assay_core::{TaskKind, TaskSpec};
use assay_quality::aggregation::{majority_vote, Answer, TiePolicy};
use assay_quality::agreement::{cohen_kappa, ContingencyTable, KappaWeights};
use assay_quality::metrics::classification_report;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

use super::export::model_labels;
use assay_core::task::{preference_code, TIE};

use super::label::{judgment_from_scores, PairJudgment};
use crate::settings::Settings;

/// Arguments of `assay eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The task file (labeled before with `assay label`).
    pub task: PathBuf,
    /// Dataset columns holding human labels, one per person (comma-separated or repeated). Compare tasks read
    /// `1` (response 1 better), `2`, and `0` or `tie`; other tasks read label names or aliases.
    #[arg(long, required = true, value_delimiter = ',', num_args = 1..)]
    pub human: Vec<String>,
    /// The model whose labels to evaluate (`NAME@SHA12`), when several labeled the task.
    #[arg(long)]
    pub annotator: Option<String>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Other judging variants of the same pairs to show side by side (compare tasks with chain of thought, rate
    /// tasks with `response-2`, another model): every figure is then computed on the pairs all of them judged.
    #[arg(long = "with", value_name = "TASK.toml")]
    pub with: Vec<PathBuf>,
}

/// Run `assay eval`.
pub fn run(settings: &Settings, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let spec = TaskSpec::from_path(&args.task)?;
    let labels = model_labels(settings, &args.task, &spec, args.annotator.as_deref())?.labels;
    let judge = labels[0].annotator.clone();
    let report = match spec.kind {
        _ if spec.judges_pairs() => {
            let main = judged_pairs(&spec, &labels, &args.human);
            let mut others = Vec::new();
            for path in &args.with {
                let other = TaskSpec::from_path(path)?;
                if !other.judges_pairs() {
                    bail!(
                        "--with {}: not a compare task or a rated pair task",
                        path.display()
                    );
                }
                let other_labels = model_labels(settings, path, &other, None)?.labels;
                let judged = judged_pairs(&other, &other_labels, &args.human);
                for (row, (_, data, _)) in &judged {
                    if main
                        .get(row)
                        .is_some_and(|(_, main_data, _)| main_data != data)
                    {
                        bail!(
                            "--with {}: row {row} differs from task {}'s: the tasks must judge the same dataset",
                            path.display(),
                            spec.name
                        );
                    }
                }
                others.push((other.name.clone(), other.kind, judged));
            }
            // Side by side only means something on the same pairs.
            let common: Vec<u64> = main
                .keys()
                .filter(|row| others.iter().all(|(_, _, o)| o.contains_key(row)))
                .copied()
                .collect();
            let pick = |judged: &JudgedPairs| -> Vec<(PairJudgment, Vec<Option<usize>>)> {
                common
                    .iter()
                    .map(|row| {
                        let (j, _, humans) = &judged[row];
                        (*j, humans.clone())
                    })
                    .collect()
            };
            let mut report = PreferenceReport::compute(&pick(&main), args.human.len())?;
            for (name, kind, judged) in &others {
                let r = PreferenceReport::compute(&pick(judged), args.human.len())?;
                if *kind == TaskKind::Compare {
                    report
                        .others
                        .push((format!("{name}: order AB only"), r.single_order));
                    report
                        .others
                        .push((format!("{name}: both orders"), r.both_orders));
                } else {
                    report
                        .others
                        .push((format!("{name}: rated separately"), r.both_orders));
                }
                report
                    .other_flip_rates
                    .push((name.clone(), r.position_flip_rate));
            }
            report.print(&spec.name, &judge, &args.human, spec.is_rated_pair());
            serde_json::to_value(&report)?
        }
        TaskKind::Compare | TaskKind::Rate => {
            bail!(
                "eval of a rate task that rates one response is not built; give it `rate.response-2` to judge pairs \
                 by their ratings, or read each expected score from the output's `assay.rating`"
            );
        }
        TaskKind::Classify | TaskKind::MultiLabel => {
            if spec.kind == TaskKind::MultiLabel {
                bail!("eval of multi-label tasks is not built yet; `assay label` prints their gold metrics");
            }
            classify_report(&spec, &labels, &args.human)?
        }
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Judgments by row index, with the row's data (to check that variants judged the same rows) and the people's
/// preference codes.
type JudgedPairs = std::collections::BTreeMap<u64, (PairJudgment, Value, Vec<Option<usize>>)>;

fn judged_pairs(
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
struct VariantScores {
    /// Pairs with a non-tie human majority.
    majority_pairs: usize,
    /// Share of them where the AI prefers the majority's response.
    alignment: Option<f64>,
    /// Cohen's kappa (three-way: 1, 2, tie) against the majority, over pairs with a majority.
    kappa_majority: Option<f64>,
    /// Cohen's kappa against each person.
    kappa_humans: Vec<Option<f64>>,
}

/// The preference figures of `assay eval`.
#[derive(Debug, Clone, serde::Serialize)]
struct PreferenceReport {
    pairs: usize,
    position_flip_rate: Option<f64>,
    position_consistent_rate: Option<f64>,
    ai_ties: usize,
    /// Pairs whose human majority is a tie or that have no majority.
    human_tie_or_split: usize,
    single_order: VariantScores,
    both_orders: VariantScores,
    /// (person a, person b, kappa).
    human_kappas: Vec<(usize, usize, Option<f64>)>,
    /// Variants from `--with` tasks, on the same pairs.
    others: Vec<(String, VariantScores)>,
    /// Their position-flip rates.
    other_flip_rates: Vec<(String, Option<f64>)>,
}

impl PreferenceReport {
    fn compute(
        pairs: &[(PairJudgment, Vec<Option<usize>>)],
        humans: usize,
    ) -> anyhow::Result<Self> {
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
        let sign = |x: f64| match x.partial_cmp(&0.5) {
            Some(std::cmp::Ordering::Greater) => Some(0),
            Some(std::cmp::Ordering::Less) => Some(1),
            _ => None,
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
            single_order: variant(&|j| sign(j.p_ab), &|j| j.single_order),
            both_orders: variant(&|j| sign(j.soft), &|j| j.outcome),
            human_kappas,
            others: Vec::new(),
            other_flip_rates: Vec::new(),
        })
    }

    /// `rated`: the task rated each response on its own, so there are no orders to show.
    fn print(&self, task: &str, judge: &str, humans: &[String], rated: bool) {
        println!("task {task}  judge {judge}  pairs {}", self.pairs);
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        let mut header = vec![
            "judging".to_string(),
            "pairs (majority not a tie)".to_string(),
            "alignment".to_string(),
            "kappa vs majority".to_string(),
        ];
        header.extend(humans.iter().map(|h| format!("kappa vs {h}")));
        table.set_header(header);
        let own = if rated {
            vec![("rated separately".to_string(), &self.both_orders)]
        } else {
            vec![
                ("order AB only".to_string(), &self.single_order),
                ("both orders (debiased)".to_string(), &self.both_orders),
            ]
        };
        for (name, v) in own
            .into_iter()
            .chain(self.others.iter().map(|(n, v)| (n.clone(), v)))
        {
            let mut row = vec![
                name,
                v.majority_pairs.to_string(),
                opt_pct(v.alignment),
                opt3(v.kappa_majority),
            ];
            row.extend(v.kappa_humans.iter().map(|k| opt3(*k)));
            table.add_row(row);
        }
        println!("{table}");
        println!(
            "position flip rate (same position won in both orders): {}   position-consistent: {}",
            opt_pct(self.position_flip_rate),
            opt_pct(self.position_consistent_rate)
        );
        for (name, rate) in &self.other_flip_rates {
            println!("  {name}: position flip rate {}", opt_pct(*rate));
        }
        println!(
            "AI ties (tie margin): {}   human majority a tie or split: {}",
            self.ai_ties, self.human_tie_or_split
        );
        if !self.human_kappas.is_empty() {
            let mut people = Table::new();
            people.load_preset(UTF8_FULL_CONDENSED);
            people.set_header(["people (for reference)", "Cohen's kappa"]);
            for (a, b, k) in &self.human_kappas {
                people.add_row([format!("{} vs {}", humans[*a], humans[*b]), opt3(*k)]);
            }
            println!("{people}");
        }
    }
}

/// Cohen's kappa over three categories of the items both coded; `None` where it is undefined.
fn kappa(a: &[Option<usize>], b: &[Option<usize>]) -> Option<f64> {
    let table = ContingencyTable::from_pairs(a, b, 3).ok()?;
    cohen_kappa(&table, KappaWeights::Unweighted).ok()
}

fn classify_report(
    spec: &TaskSpec,
    labels: &[assay_store::LabeledRecord],
    humans: &[String],
) -> anyhow::Result<Value> {
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
    println!("task {}  labels {}", spec.name, labels.len());
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "human column",
        "rows",
        "accuracy",
        "macro-F1",
        "ECE (15 bins)",
        "Cohen's kappa",
    ]);
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
        let report = classification_report(&p, &g, &c).ok();
        let table_k = ContingencyTable::from_pairs(&ai, &gold, k)?;
        let kappa = cohen_kappa(&table_k, KappaWeights::Unweighted).ok();
        table.add_row([
            column.clone(),
            p.len().to_string(),
            opt_pct(report.as_ref().map(|r| r.accuracy)),
            opt3(report.as_ref().map(|r| r.macro_f1)),
            opt3(report.as_ref().map(|r| r.ece)),
            opt3(kappa),
        ]);
        figures.push(serde_json::json!({"column": column, "rows": p.len(), "report": report, "kappa": kappa}));
    }
    println!("{table}");
    Ok(Value::Array(figures))
}

fn opt_pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.1}%", 100.0 * x))
}

fn opt3(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::label::judge_pair;

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
