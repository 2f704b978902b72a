//! `assay project qc NAME`: what the people's answers in `assay serve` say about the machine and about the people.
//!
//! - Per routing reason, how often the machine's label equals the people's plurality, with a Wilson interval. On
//!   `audit` items (a seeded random share of what the machine would have auto-accepted, suggestion hidden) that is
//!   an unbiased estimate of the machine's accuracy on everything it labeled alone.
//! - Per person: answers, median time, accuracy on gold items (known answers), agreement with the others.
//! - Between people: Krippendorff's alpha (nominal) and percent agreement over items at least two people answered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Context;
use assay_core::TaskSpec;
use assay_quality::agreement::{krippendorff_alpha, percent_agreement, Level, RatingMatrix};
use assay_quality::audit::wilson_interval;
use assay_store::review_qc::ReviewOutcome;
use clap::Args;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;
use serde_json::{json, Value};

use super::human::{human_majority, HumanAnswer};
use assay_core::task::preference_code;

/// Arguments of `assay project qc`.
#[derive(Debug, Args)]
pub struct QcArgs {
    /// Project name.
    pub project: String,
    /// Confidence of the intervals.
    #[arg(long, default_value_t = 0.95, value_name = "P")]
    pub confidence: f64,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// An answer reduced to what decides equality: the preference code of pair tasks, the sorted names of a
/// multi-label answer, the text of anything else.
fn answer_key(spec: &TaskSpec, value: &Value) -> Option<String> {
    if spec.judges_pairs() {
        return preference_code(value).map(|c| c.to_string());
    }
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.trim().to_string()),
        Value::Array(items) => {
            let names: BTreeSet<String> = items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            Some(names.into_iter().collect::<Vec<_>>().join(","))
        }
        other => Some(other.to_string()),
    }
}

/// Agreement counts with their interval.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct Rate {
    agree: u64,
    of: u64,
    low: Option<f64>,
    high: Option<f64>,
}

impl Rate {
    fn new(agree: u64, of: u64, confidence: f64) -> Self {
        let interval = (of > 0)
            .then(|| wilson_interval(agree, of, confidence).ok())
            .flatten();
        Self {
            agree,
            of,
            low: interval.map(|i| i.lower),
            high: interval.map(|i| i.upper),
        }
    }

    fn show(&self) -> String {
        match (self.of, self.low, self.high) {
            (0, _, _) => "-".into(),
            (of, Some(lo), Some(hi)) => format!(
                "{}/{of} = {:.1}% [{:.1}, {:.1}]",
                self.agree,
                100.0 * self.agree as f64 / of as f64,
                100.0 * lo,
                100.0 * hi
            ),
            (of, _, _) => format!("{}/{of}", self.agree),
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct ReasonRow {
    reason: String,
    items: usize,
    answered: usize,
    /// The machine's label against the people's plurality, over items with one.
    machine_vs_people: Rate,
}

#[derive(Debug, serde::Serialize)]
struct PersonRow {
    annotator: String,
    answers: usize,
    median_ms: Option<i64>,
    gold: Rate,
    /// Against the plurality of the other people on the item, where they have one.
    agreement_with_others: Rate,
}

#[derive(Debug, serde::Serialize)]
struct ProjectQc {
    project: String,
    reasons: Vec<ReasonRow>,
    /// The machine's accuracy on auto-accepted items, estimated from the audit sample.
    machine_accuracy_audit: Rate,
    people: Vec<PersonRow>,
    items_with_two_or_more_answers: usize,
    krippendorff_alpha: Option<f64>,
    percent_agreement: Option<f64>,
}

fn compute(spec: &TaskSpec, name: &str, outcomes: &[ReviewOutcome], confidence: f64) -> ProjectQc {
    let key = |v: &Value| answer_key(spec, v);
    let plurality = |answers: &[&(String, Value, Option<i64>)]| -> Option<String> {
        let keyed: Vec<HumanAnswer> = answers
            .iter()
            .filter_map(|(who, v, _)| {
                Some(HumanAnswer {
                    annotator: who.clone(),
                    value: Value::String(key(v)?),
                    answered_at: String::new(),
                })
            })
            .collect();
        human_majority(&keyed).and_then(|(v, _)| v.as_str().map(str::to_string))
    };

    let mut by_reason: BTreeMap<&str, (usize, usize, u64, u64)> = BTreeMap::new();
    for o in outcomes {
        let entry = by_reason.entry(o.reason.as_str()).or_default();
        entry.0 += 1;
        if o.answers.is_empty() {
            continue;
        }
        entry.1 += 1;
        let all: Vec<_> = o.answers.iter().collect();
        if let (Some(people), Some(machine)) = (plurality(&all), o.machine.as_ref().and_then(key)) {
            entry.3 += 1;
            entry.2 += u64::from(people == machine);
        }
    }
    let reasons: Vec<ReasonRow> = by_reason
        .iter()
        .map(|(reason, (items, answered, agree, of))| ReasonRow {
            reason: reason.to_string(),
            items: *items,
            answered: *answered,
            machine_vs_people: Rate::new(*agree, *of, confidence),
        })
        .collect();
    let machine_accuracy_audit = reasons
        .iter()
        .find(|r| r.reason == "audit")
        .map_or_else(Rate::default, |r| r.machine_vs_people);

    let names: BTreeSet<&str> = outcomes
        .iter()
        .flat_map(|o| o.answers.iter().map(|(who, _, _)| who.as_str()))
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    let mut people = Vec::new();
    for name in &names {
        let mut times = Vec::new();
        let (mut answers, mut gold_ok, mut gold_of, mut agree, mut agree_of) = (0, 0, 0, 0, 0);
        for o in outcomes {
            let Some(mine) = o.answers.iter().find(|(who, _, _)| who == name) else {
                continue;
            };
            answers += 1;
            times.extend(mine.2);
            let my_key = key(&mine.1);
            if let Some(gold) = o.gold.as_ref().and_then(key) {
                gold_of += 1;
                gold_ok += u64::from(my_key.as_deref() == Some(gold.as_str()));
            }
            let others: Vec<_> = o.answers.iter().filter(|(who, _, _)| who != name).collect();
            if let Some(theirs) = plurality(&others) {
                agree_of += 1;
                agree += u64::from(my_key.as_deref() == Some(theirs.as_str()));
            }
        }
        times.sort_unstable();
        people.push(PersonRow {
            annotator: name.to_string(),
            answers,
            median_ms: times.get(times.len() / 2).copied(),
            gold: Rate::new(gold_ok, gold_of, confidence),
            agreement_with_others: Rate::new(agree, agree_of, confidence),
        });
    }

    // Agreement between people: one unit per item answered by two or more, one coder per person.
    let mut categories: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows: Vec<Vec<Option<usize>>> = Vec::new();
    for o in outcomes.iter().filter(|o| o.answers.len() >= 2) {
        let mut row = vec![None; names.len()];
        for (who, value, _) in &o.answers {
            if let (Some(k), Some(coder)) = (key(value), names.iter().position(|n| n == who)) {
                let next = categories.len();
                row[coder] = Some(*categories.entry(k).or_insert(next));
            }
        }
        rows.push(row);
    }
    let matrix = RatingMatrix::from_unit_rows(&rows, categories.len().max(1)).ok();
    ProjectQc {
        project: name.to_string(),
        reasons,
        machine_accuracy_audit,
        people,
        items_with_two_or_more_answers: rows.len(),
        krippendorff_alpha: matrix
            .as_ref()
            .and_then(|m| krippendorff_alpha(m, Level::Nominal).ok())
            .filter(|a| a.is_finite()),
        percent_agreement: matrix
            .as_ref()
            .and_then(|m| percent_agreement(m).ok())
            .filter(|a| a.is_finite()),
    }
}

fn print(qc: &ProjectQc, confidence: f64) {
    let level = format!("{:.0}%", 100.0 * confidence);
    println!("project {}", qc.project);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "routed because".to_string(),
        "items".into(),
        "answered".into(),
        format!("machine = people's plurality [{level} CI]"),
    ]);
    for r in &qc.reasons {
        table.add_row([
            r.reason.clone(),
            r.items.to_string(),
            r.answered.to_string(),
            r.machine_vs_people.show(),
        ]);
    }
    println!("{table}");
    println!(
        "machine accuracy on what it auto-accepts (from the audit sample): {}",
        qc.machine_accuracy_audit.show()
    );
    let mut people = Table::new();
    people.load_preset(UTF8_FULL_CONDENSED);
    people.set_header([
        "annotator".to_string(),
        "answers".into(),
        "median time".into(),
        format!("gold correct [{level} CI]"),
        "agrees with the others".into(),
    ]);
    for p in &qc.people {
        people.add_row([
            p.annotator.clone(),
            p.answers.to_string(),
            p.median_ms
                .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            p.gold.show(),
            p.agreement_with_others.show(),
        ]);
    }
    println!("{people}");
    let opt = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.3}"));
    println!(
        "between people ({} items answered by two or more): Krippendorff's alpha {}, percent agreement {}",
        qc.items_with_two_or_more_answers,
        opt(qc.krippendorff_alpha),
        opt(qc.percent_agreement)
    );
}

/// Run `assay project qc`.
pub fn run(
    rt: &tokio::runtime::Runtime,
    store: &assay_store::Store,
    args: QcArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let project = rt
        .block_on(store.project_by_name(&args.project))?
        .ok_or_else(|| super::Hinted {
            message: format!("no project named `{}`", args.project),
            hint: "list them with `assay project list`".into(),
        })?;
    let outcomes = rt.block_on(store.review_outcomes(&project))?;
    let qc = compute(&project.spec, &project.name, &outcomes, args.confidence);
    print(&qc, args.confidence);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&json!(qc))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(
        reason: &str,
        gold: Option<&str>,
        machine: &str,
        answers: &[(&str, &str)],
    ) -> ReviewOutcome {
        ReviewOutcome {
            record_id: 0,
            reason: reason.into(),
            gold: gold.map(|g| json!(g)),
            machine: Some(json!(machine)),
            confidence: Some(0.6),
            answers: answers
                .iter()
                .map(|(who, v)| (who.to_string(), json!(v), Some(1000)))
                .collect(),
        }
    }

    #[test]
    fn audit_agreement_estimates_machine_accuracy_and_gold_scores_people() {
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"classify\"\ninput = \"{{ x }}\"\nlabels = [\"ham\", \"spam\"]\n",
        )
        .unwrap();
        let outcomes = vec![
            outcome("audit", None, "ham", &[("ann", "ham"), ("bob", "ham")]),
            outcome("audit", None, "ham", &[("ann", "spam"), ("bob", "spam")]),
            outcome("audit", None, "spam", &[("ann", "spam")]),
            outcome("audit", None, "ham", &[("ann", "ham"), ("bob", "spam")]), // split: not decided
            outcome(
                "gold",
                Some("spam"),
                "ham",
                &[("ann", "spam"), ("bob", "ham")],
            ),
            outcome("low-confidence", None, "ham", &[]),
        ];
        let qc = compute(&spec, "p", &outcomes, 0.95);
        let audit = qc.machine_accuracy_audit;
        assert_eq!((audit.agree, audit.of), (2, 3));
        assert!(audit.low.unwrap() < 2.0 / 3.0 && audit.high.unwrap() > 2.0 / 3.0);
        let low = qc
            .reasons
            .iter()
            .find(|r| r.reason == "low-confidence")
            .unwrap();
        assert_eq!((low.items, low.answered), (1, 0));
        let ann = qc.people.iter().find(|p| p.annotator == "ann").unwrap();
        assert_eq!((ann.gold.agree, ann.gold.of), (1, 1));
        assert_eq!(ann.answers, 5);
        // ann vs bob on the 4 items both answered: agree on 2.
        assert_eq!(
            (
                ann.agreement_with_others.agree,
                ann.agreement_with_others.of
            ),
            (2, 4)
        );
        assert_eq!(qc.items_with_two_or_more_answers, 4);
        assert!((qc.percent_agreement.unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn pair_answers_compare_by_preference_code() {
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"compare\"\n[compare]\ncontext = \"{{ q }}\"\nresponse-1 = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\n",
        )
        .unwrap();
        assert_eq!(answer_key(&spec, &json!(1)), answer_key(&spec, &json!("1")));
        assert_eq!(
            answer_key(&spec, &json!(0)),
            answer_key(&spec, &json!("tie"))
        );
    }
}
