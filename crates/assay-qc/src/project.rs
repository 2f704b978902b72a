//! QC of a review project (`assay project qc NAME`): what the people's answers in `assay serve` say about the
//! machine and about the people.
//!
//! - Per routing reason, how often the machine's label equals the people's plurality, with a Wilson interval. On
//!   `audit` items (a seeded random share of what the machine would have auto-accepted, suggestion hidden) that is
//!   an unbiased estimate of the machine's accuracy on everything it labeled alone.
//! - Per person: answers, median time, accuracy on gold items (known answers), agreement with the others.
//! - Between people: Krippendorff's alpha (nominal) and percent agreement over items at least two people answered.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use assay_core::task::preference_code;
use assay_core::TaskSpec;
use assay_quality::aggregation::{majority_vote, Answer, TiePolicy, Vote};
use assay_quality::agreement::{krippendorff_alpha, percent_agreement, Level, RatingMatrix};
use assay_quality::annotators::{score_annotators, AnnotatorInput, AnnotatorOptions};
use assay_quality::audit::wilson_interval;
use assay_store::review_qc::ReviewOutcome;
use serde_json::Value;

use crate::Result;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Rate {
    /// Cases that agree.
    pub agree: u64,
    /// Cases counted.
    pub of: u64,
    /// Lower end of the Wilson interval; `None` without cases.
    pub low: Option<f64>,
    /// Upper end of the Wilson interval.
    pub high: Option<f64>,
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

    /// "2/3 = 66.7% [20.8, 93.9]", "2/3" without an interval, "-" without cases.
    pub fn show(&self) -> String {
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

/// The items routed for one reason.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReasonRow {
    /// Why they were routed (`low-confidence`, `inconsistent`, `audit`, `gold`).
    pub reason: String,
    /// Items routed.
    pub items: usize,
    /// Items someone answered.
    pub answered: usize,
    /// The machine's label against the people's plurality, over items with one.
    pub machine_vs_people: Rate,
}

/// One person's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PersonRow {
    /// The person's name.
    pub annotator: String,
    /// Items answered.
    pub answers: usize,
    /// Median milliseconds per answer (the upper median), over answers with a time.
    pub median_ms: Option<i64>,
    /// Answers equal to the item's known answer, over the gold items answered.
    pub gold: Rate,
    /// Against the plurality of the other people on the item, where they have one.
    pub agreement_with_others: Rate,
}

/// Every figure of `assay project qc`; serialises as its `--json` output.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProjectQc {
    /// The project's name.
    pub project: String,
    /// Per routing reason, in name order.
    pub reasons: Vec<ReasonRow>,
    /// The machine's accuracy on auto-accepted items, estimated from the audit sample.
    pub machine_accuracy_audit: Rate,
    /// Per person, in name order.
    pub people: Vec<PersonRow>,
    /// Items two or more people answered: the units of the agreement below.
    pub items_with_two_or_more_answers: usize,
    /// Krippendorff's alpha (nominal) between people, where defined.
    pub krippendorff_alpha: Option<f64>,
    /// Percent agreement between people, where defined.
    pub percent_agreement: Option<f64>,
}

/// A project's outcomes coded densely: items are outcomes by position, people by name order, labels by answer
/// key.
struct Coded {
    /// People's names, sorted.
    names: Vec<String>,
    /// Codes `0..keyed` are answer keys; `keyed` itself stands for an answer without a key, which counts as an
    /// answer but matches nothing and takes no part in a plurality.
    keyed: usize,
    /// Every answer (the store keeps one per person and item).
    answers: Vec<Answer>,
    /// Milliseconds per answer, parallel to `answers`.
    millis: Vec<Option<i64>>,
    /// The machine's label code per item.
    machine: Vec<Option<usize>>,
    /// The known answer's code per item.
    gold: Vec<Option<usize>>,
}

impl Coded {
    fn new(spec: &TaskSpec, outcomes: &[ReviewOutcome]) -> Self {
        let names: BTreeSet<&str> = outcomes
            .iter()
            .flat_map(|o| o.answers.iter().map(|(who, _, _)| who.as_str()))
            .collect();
        let names: Vec<String> = names.into_iter().map(str::to_string).collect();
        let person: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(j, n)| (n.as_str(), j))
            .collect();
        // Codes in key order, over answers, machine labels and known answers alike.
        let keys: BTreeSet<String> = outcomes
            .iter()
            .flat_map(|o| {
                let answers = o.answers.iter().map(|(_, v, _)| v);
                answers.chain(&o.machine).chain(&o.gold)
            })
            .filter_map(|v| answer_key(spec, v))
            .collect();
        let keyed = keys.len();
        let codes: HashMap<String, usize> =
            keys.into_iter().enumerate().map(|(c, k)| (k, c)).collect();
        let code = |v: &Value| answer_key(spec, v).map(|k| codes[&k]);
        let (mut answers, mut millis, mut machine, mut gold) = (vec![], vec![], vec![], vec![]);
        for (i, o) in outcomes.iter().enumerate() {
            for (who, value, ms) in &o.answers {
                let label = code(value).unwrap_or(keyed);
                answers.push(Answer::new(i, person[who.as_str()], label));
                millis.push(*ms);
            }
            machine.push(o.machine.as_ref().and_then(code));
            gold.push(o.gold.as_ref().and_then(code));
        }
        Self {
            names,
            keyed,
            answers,
            millis,
            machine,
            gold,
        }
    }

    /// Codes in all: the answer keys and the code of an answer without one.
    fn classes(&self) -> usize {
        self.keyed + 1
    }

    /// Majority vote per item over the keyed answers that `include` keeps: a label where one has a strict
    /// plurality.
    fn plurality(&self, items: usize, include: impl Fn(&Answer) -> bool) -> Result<Vec<Vote>> {
        let keyed: Vec<Answer> = self
            .answers
            .iter()
            .filter(|a| a.label < self.keyed && include(a))
            .copied()
            .collect();
        Ok(majority_vote(
            &keyed,
            items,
            self.classes(),
            TiePolicy::Report,
        )?)
    }
}

/// Every figure of `assay project qc` over a project's outcomes, intervals at `confidence`.
pub fn compute(
    spec: &TaskSpec,
    project: &str,
    outcomes: &[ReviewOutcome],
    confidence: f64,
) -> Result<ProjectQc> {
    let coded = Coded::new(spec, outcomes);
    let reasons = reasons(outcomes, &coded, confidence)?;
    let machine_accuracy_audit = reasons
        .iter()
        .find(|r| r.reason == "audit")
        .map_or_else(Rate::default, |r| r.machine_vs_people);
    let people = people(outcomes.len(), &coded, confidence)?;
    let (units, alpha, percent) = between_people(outcomes, &coded);
    Ok(ProjectQc {
        project: project.to_string(),
        reasons,
        machine_accuracy_audit,
        people,
        items_with_two_or_more_answers: units,
        krippendorff_alpha: alpha,
        percent_agreement: percent,
    })
}

/// Per routing reason: items, items answered, and the machine against the people's plurality.
fn reasons(outcomes: &[ReviewOutcome], coded: &Coded, confidence: f64) -> Result<Vec<ReasonRow>> {
    let votes = coded.plurality(outcomes.len(), |_| true)?;
    let mut by_reason: BTreeMap<&str, (usize, usize, u64, u64)> = BTreeMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        let entry = by_reason.entry(o.reason.as_str()).or_default();
        entry.0 += 1;
        if o.answers.is_empty() {
            continue;
        }
        entry.1 += 1;
        if let (Some(people), Some(machine)) = (votes[i].label, coded.machine[i]) {
            entry.3 += 1;
            entry.2 += u64::from(people == machine);
        }
    }
    Ok(by_reason
        .iter()
        .map(|(reason, (items, answered, agree, of))| ReasonRow {
            reason: reason.to_string(),
            items: *items,
            answered: *answered,
            machine_vs_people: Rate::new(*agree, *of, confidence),
        })
        .collect())
}

/// Per person: answers and gold accuracy from `assay_quality::annotators`, median time, agreement with the others.
///
/// `score_annotators` has neither of the last two: it reports mean seconds, where this reports the median (one
/// forgotten open tab would swamp a mean), and pairwise Cohen's kappa with each peer, where this compares each
/// answer with the plurality of the *other* people on the item, which is what routing to several people decides
/// on.
fn people(items: usize, coded: &Coded, confidence: f64) -> Result<Vec<PersonRow>> {
    let input = AnnotatorInput {
        gold: &coded.gold,
        ..AnnotatorInput::new(&coded.answers, items, coded.names.len(), coded.classes())
    };
    let scores = score_annotators(&input, &AnnotatorOptions::default())?.scores;
    let mut rows = Vec::with_capacity(coded.names.len());
    for (j, name) in coded.names.iter().enumerate() {
        let others = coded.plurality(items, |a| a.annotator != j)?;
        let (mut agree, mut agree_of) = (0, 0);
        let mut times = Vec::new();
        for (a, ms) in coded.answers.iter().zip(&coded.millis) {
            if a.annotator != j {
                continue;
            }
            times.extend(*ms);
            if let Some(theirs) = others[a.item].label {
                agree_of += 1;
                agree += u64::from(a.label == theirs);
            }
        }
        times.sort_unstable();
        let s = &scores[j];
        // The share times the count gives back the count of right answers; rounding only undoes the division.
        let gold_right = (s.gold_accuracy.unwrap_or(0.0) * s.gold_answers as f64).round() as u64;
        rows.push(PersonRow {
            annotator: name.clone(),
            answers: s.answers,
            median_ms: times.get(times.len() / 2).copied(),
            gold: Rate::new(gold_right, s.gold_answers as u64, confidence),
            agreement_with_others: Rate::new(agree, agree_of, confidence),
        });
    }
    Ok(rows)
}

/// Agreement between people: one unit per item answered by two or more, one coder per person. Returns the units,
/// Krippendorff's alpha and percent agreement.
fn between_people(outcomes: &[ReviewOutcome], coded: &Coded) -> (usize, Option<f64>, Option<f64>) {
    let mut rows: Vec<Vec<Option<usize>>> = Vec::new();
    let mut unit = vec![None; outcomes.len()];
    for (i, o) in outcomes.iter().enumerate() {
        if o.answers.len() >= 2 {
            unit[i] = Some(rows.len());
            rows.push(vec![None; coded.names.len()]);
        }
    }
    for a in coded.answers.iter().filter(|a| a.label < coded.keyed) {
        if let Some(u) = unit[a.item] {
            rows[u][a.annotator] = Some(a.label);
        }
    }
    let matrix = RatingMatrix::from_unit_rows(&rows, coded.classes()).ok();
    let finite = |x: Option<f64>| x.filter(|a| a.is_finite());
    (
        rows.len(),
        finite(
            matrix
                .as_ref()
                .and_then(|m| krippendorff_alpha(m, Level::Nominal).ok()),
        ),
        finite(matrix.as_ref().and_then(|m| percent_agreement(m).ok())),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
        let qc = compute(&spec, "p", &outcomes, 0.95).unwrap();
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

    /// An answer without a key (null) counts as an answer and as wrong on gold, and takes no part in a plurality.
    #[test]
    fn an_answer_without_a_key_counts_but_decides_nothing() {
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"classify\"\ninput = \"{{ x }}\"\nlabels = [\"ham\", \"spam\"]\n",
        )
        .unwrap();
        let mut item = outcome("gold", Some("ham"), "ham", &[("bob", "ham")]);
        item.answers.push(("ann".into(), Value::Null, Some(3000)));
        let qc = compute(&spec, "p", &[item], 0.95).unwrap();
        let ann = &qc.people[0];
        assert_eq!(ann.annotator, "ann");
        assert_eq!((ann.answers, ann.gold.agree, ann.gold.of), (1, 0, 1));
        assert_eq!(ann.median_ms, Some(3000));
        assert_eq!(ann.agreement_with_others.of, 1, "bob's answer decides");
        let bob = &qc.people[1];
        assert_eq!(
            bob.agreement_with_others.of, 0,
            "ann's null decides nothing"
        );
        assert_eq!(qc.reasons[0].machine_vs_people.agree, 1);
    }
}
