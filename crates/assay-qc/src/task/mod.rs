//! QC of a task's labeled output (`assay qc TASK.toml`): the model as a label source against the task's gold
//! column. Each row has the gold column and an `assay` object with `label` and `confidence` (and, when the model
//! scored every label, `distribution`); [`compute`] reports accuracy, calibration (ECE, reliability bins), the
//! accuracy-vs-coverage curve, the confidence threshold that reaches a target accuracy, the confusion matrix, an
//! audit of the rows that threshold would auto-accept, and gold labels confident learning flags.

mod html;

use std::path::PathBuf;

use assay_quality::audit::{audit_decision, wilson_interval, AuditDecision, Interval};
use assay_quality::label_errors::{find_label_issues, LabelIssueOptions};
use assay_quality::metrics::{
    accuracy_coverage_curve, expected_calibration_error, reliability_bins, threshold_for_accuracy,
    CoveragePoint, ReliabilityBin, DEFAULT_ECE_BINS,
};
use assay_report::svg;
use serde_json::Value;

use crate::read::{cell_text, open_with_columns};
use crate::{pct, Error, InputFile, Result, RELIABILITY_BINS};

pub use html::html_report;

/// Labels shown in the confusion matrix; the rest are pooled as "(other)".
pub const CONFUSION_MAX: usize = 12;
/// Points of the accuracy-vs-coverage curve kept for the plot and the terminal table.
pub const CURVE_POINTS: usize = 200;

/// What task QC needs, resolved by the caller from the flags and the task file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The task file, as given.
    pub task: PathBuf,
    /// Labeled rows to read: the task's `output` or another labeled file.
    pub labels: PathBuf,
    /// The gold column.
    pub gold: String,
    /// The task: gold values are matched to its outcomes (names, aliases, case) exactly as `assay label` and
    /// `assay eval` match them ([`assay_core::TaskSpec::gold_indices`]).
    pub spec: assay_core::TaskSpec,
    /// Also compare the rows the fitted calibration learned from (`assay.calibration_fit`); by default they are
    /// left out, so the figures are on held-out rows.
    pub include_fit_rows: bool,
    /// The accuracy the auto-accept confidence threshold must reach, in (0, 1].
    pub target_accuracy: f64,
    /// The error rate the auto-accepted rows must stay under to pass the audit, in (0, 1).
    pub target_error: f64,
    /// Confidence of the audit's interval and upper bound, in (0, 1).
    pub confidence: f64,
}

/// One row compared: gold and predicted label codes, the model's confidence.
#[derive(Debug, Clone)]
pub struct Compared {
    /// The gold label's code.
    pub gold: usize,
    /// The model's label's code.
    pub predicted: usize,
    /// The model's confidence in its label.
    pub confidence: f64,
    /// 1-based row number in the labeled file.
    pub row: u64,
    /// The model's distribution over the labels (indexed like [`Data::labels`]), when the row carries one.
    pub probs: Option<Vec<f64>>,
}

/// The rows read, with label names indexed in text order.
#[derive(Debug, Clone)]
pub struct Data {
    /// Label names by code, in text order.
    pub labels: Vec<String>,
    /// The rows with a gold and a model label.
    pub rows: Vec<Compared>,
    /// Rows without a gold label (not compared).
    pub no_gold: usize,
    /// Gold rows the fitted calibration learned from, left out of the figures (0 with `include_fit_rows`).
    pub fit_rows: usize,
    /// (1-based row, reason) for rows that could not be used.
    pub bad_rows: Vec<(u64, String)>,
}

/// The model's probability per label name, as a row carries it.
type Distribution = Vec<(String, f64)>;

/// A row's gold label, the model's label and confidence, its row number, and the model's distribution.
type RawRow = (String, String, f64, u64, Option<Distribution>);

/// Reads the labeled file.
pub fn load(settings: &Settings) -> Result<Data> {
    let (reader, _) = open_with_columns(
        &settings.labels,
        InputFile::Labeled,
        &[settings.gold.as_str(), "assay"],
    )?;
    let mut raw: Vec<RawRow> = Vec::new();
    let mut no_gold = 0;
    let mut fit_rows = 0;
    let mut bad_rows = Vec::new();
    for row in reader {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                bad_rows.push((e.index + 1, e.reason));
                continue;
            }
        };
        let number = row.index + 1;
        let gold = match cell_text(row.values.get(&settings.gold)) {
            Ok(Some(g)) => g,
            Ok(None) => {
                no_gold += 1;
                continue;
            }
            Err(e) => {
                bad_rows.push((number, format!("`{}`: {e}", settings.gold)));
                continue;
            }
        };
        let gold = canonical_gold(&settings.spec, gold);
        if !settings.include_fit_rows && is_fit_row(row.values.get("assay")) {
            fit_rows += 1;
            continue;
        }
        match model_answer(row.values.get("assay")) {
            Ok((label, confidence, distribution)) => {
                raw.push((gold, label, confidence, number, distribution))
            }
            Err(e) => bad_rows.push((number, e)),
        }
    }
    let (labels, rows) = code_rows(&raw);
    Ok(Data {
        labels,
        rows,
        no_gold,
        fit_rows,
        bad_rows,
    })
}

/// A gold value as the outcome name it matches (an alias or another spelling becomes the label's name), or as
/// written when it matches none.
fn canonical_gold(spec: &assay_core::TaskSpec, gold: String) -> String {
    match spec
        .gold_indices(Some(&Value::String(gold.clone())))
        .as_deref()
    {
        Some([index]) => spec.outcome_names().get(*index).cloned().unwrap_or(gold),
        _ => gold,
    }
}

/// Whether a row's `assay` object marks it as one the fitted calibration learned from.
fn is_fit_row(value: Option<&Value>) -> bool {
    assay_object(value)
        .ok()
        .and_then(|a| a.get("calibration_fit").and_then(Value::as_bool))
        == Some(true)
}

/// The `assay` object of a row: an object, or (from a flat table) a JSON string holding one.
fn assay_object(value: Option<&Value>) -> Result<serde_json::Map<String, Value>, String> {
    match value {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err("`assay` is not an object".into()),
        },
        None | Some(Value::Null) => Err("no `assay` object (row not labeled)".into()),
        Some(_) => Err("`assay` is not an object".into()),
    }
}

/// The model's label, confidence and distribution from a row's `assay` value, or why the row cannot be used.
fn model_answer(value: Option<&Value>) -> Result<(String, f64, Option<Distribution>), String> {
    let a = assay_object(value)?;
    let label = cell_text(a.get("label"))
        .map_err(|e| format!("`assay.label`: {e}"))?
        .ok_or("no `assay.label`")?;
    let confidence = a
        .get("confidence")
        .and_then(Value::as_f64)
        .filter(|c| (0.0..=1.0).contains(c))
        .ok_or("`assay.confidence` is not a number in [0, 1]")?;
    let distribution = a.get("distribution").and_then(Value::as_object).map(|d| {
        d.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
            .collect()
    });
    Ok((label, confidence, distribution))
}

/// Label names in text order (gold, predicted and distribution labels), and the rows coded by them.
fn code_rows(raw: &[RawRow]) -> (Vec<String>, Vec<Compared>) {
    let mut names: Vec<String> = raw
        .iter()
        .flat_map(|(g, p, _, _, d)| {
            [g.clone(), p.clone()]
                .into_iter()
                .chain(d.iter().flatten().map(|(n, _)| n.clone()))
        })
        .collect();
    names.sort();
    names.dedup();
    let code = |s: &str| names.binary_search_by(|n| n.as_str().cmp(s)).unwrap_or(0);
    let rows = raw
        .iter()
        .map(|(g, p, c, row, d)| Compared {
            gold: code(g),
            predicted: code(p),
            confidence: *c,
            row: *row,
            probs: d.as_ref().map(|d| {
                let mut probs = vec![0.0; names.len()];
                for (n, p) in d {
                    probs[code(n)] = *p;
                }
                probs
            }),
        })
        .collect();
    (names, rows)
}

/// The audit of the rows the threshold auto-accepts.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Rows with at least this confidence are auto-accepted.
    pub threshold: f64,
    /// Gold rows at or above the threshold.
    pub accepted: u64,
    /// Those where the model is wrong.
    pub errors: u64,
    /// Wilson interval of the error rate at the settings' confidence.
    pub interval: Interval,
    /// Pass or fail against the target error.
    pub decision: AuditDecision,
}

/// Every figure of task QC.
#[derive(Debug, Clone)]
pub struct Qc {
    /// Rows compared.
    pub n: usize,
    /// Share of rows where the model's label is the gold label.
    pub accuracy: f64,
    /// Expected calibration error over [`DEFAULT_ECE_BINS`] bins.
    pub ece: f64,
    /// [`RELIABILITY_BINS`] equal-width reliability bins.
    pub bins: Vec<ReliabilityBin>,
    /// At most [`CURVE_POINTS`] points of the accuracy-vs-coverage curve.
    pub curve: Vec<CoveragePoint>,
    /// (threshold, coverage) reaching the target accuracy.
    pub threshold: Option<(f64, f64)>,
    /// The audit of the rows the threshold auto-accepts.
    pub audit: Option<Audit>,
    /// Confusion matrix over the shown labels (gold rows, predicted columns).
    pub confusion: svg::Confusion,
    /// Gold labels that look wrong by confident learning, most likely wrong first; `None` when the rows carry no
    /// distribution or the method cannot run (a single class, say).
    pub label_issues: Option<Vec<LabelIssue>>,
}

/// A gold label confident learning flags.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelIssue {
    /// 1-based row in the labeled file.
    pub row: u64,
    /// The gold label's code.
    pub gold: usize,
    /// The model's most likely label.
    pub suggested: usize,
    /// The model's probability of the gold label.
    pub p_gold: f64,
}

/// Confident learning (Northcutt et al. 2021, cleanlab's defaults) over the model's distributions: gold labels the
/// model confidently disagrees with, beyond what its per-class thresholds expect.
fn label_issues(d: &Data) -> Option<Vec<LabelIssue>> {
    let probs: Vec<&Vec<f64>> = d
        .rows
        .iter()
        .map(|r| r.probs.as_ref())
        .collect::<Option<_>>()?;
    let given: Vec<usize> = d.rows.iter().map(|r| r.gold).collect();
    let found = find_label_issues(&given, &probs, &LabelIssueOptions::default()).ok()?;
    Some(
        found
            .ranked
            .iter()
            .map(|&i| {
                let r = &d.rows[i];
                let p = probs[i];
                let suggested = (0..p.len())
                    .max_by(|&a, &b| p[a].total_cmp(&p[b]))
                    .unwrap_or(r.predicted);
                LabelIssue {
                    row: r.row,
                    gold: r.gold,
                    suggested,
                    p_gold: p[r.gold],
                }
            })
            .collect(),
    )
}

/// Runs every statistic over the compared rows.
pub fn compute(settings: &Settings, d: &Data) -> Result<Qc> {
    if d.rows.is_empty() {
        return Err(Error::NoComparableRows {
            path: settings.labels.clone(),
            gold: settings.gold.clone(),
        });
    }
    let confidence: Vec<f64> = d.rows.iter().map(|r| r.confidence).collect();
    let correct: Vec<bool> = d.rows.iter().map(|r| r.gold == r.predicted).collect();
    let n = d.rows.len();
    let hits = correct.iter().filter(|&&c| c).count();
    let threshold = threshold_for_accuracy(&confidence, &correct, settings.target_accuracy)?;
    let audit = match threshold {
        Some((t, _)) => Some(audit(settings, &confidence, &correct, t)?),
        None => None,
    };
    Ok(Qc {
        n,
        accuracy: hits as f64 / n as f64,
        ece: expected_calibration_error(&confidence, &correct, DEFAULT_ECE_BINS)?,
        bins: reliability_bins(&confidence, &correct, RELIABILITY_BINS)?,
        curve: thin(accuracy_coverage_curve(&confidence, &correct)?),
        threshold,
        audit,
        confusion: confusion(d),
        label_issues: label_issues(d),
    })
}

/// The audit of the rows with confidence at least `threshold`.
fn audit(
    settings: &Settings,
    confidence: &[f64],
    correct: &[bool],
    threshold: f64,
) -> Result<Audit> {
    let (accepted, errors) = confidence
        .iter()
        .zip(correct)
        .filter(|(&c, _)| c >= threshold)
        .fold((0u64, 0u64), |(a, e), (_, &ok)| (a + 1, e + u64::from(!ok)));
    Ok(Audit {
        threshold,
        accepted,
        errors,
        interval: wilson_interval(errors, accepted, settings.confidence)?,
        decision: audit_decision(errors, accepted, settings.target_error, settings.confidence)?,
    })
}

/// At most [`CURVE_POINTS`] points of the curve, evenly spread by rank, always keeping the last (full coverage).
fn thin(curve: Vec<CoveragePoint>) -> Vec<CoveragePoint> {
    if curve.len() <= CURVE_POINTS {
        return curve;
    }
    let step = curve.len() as f64 / CURVE_POINTS as f64;
    let mut out: Vec<CoveragePoint> = (0..CURVE_POINTS)
        .map(|i| curve[((i as f64 + 1.0) * step) as usize - 1])
        .collect();
    if out.last() != curve.last() {
        out.extend(curve.last().copied());
    }
    out
}

/// The confusion matrix over the [`CONFUSION_MAX`] most frequent gold labels, the rest pooled as "(other)".
fn confusion(d: &Data) -> svg::Confusion {
    let mut frequency = vec![0usize; d.labels.len()];
    for r in &d.rows {
        frequency[r.gold] += 1;
    }
    let mut order: Vec<usize> = (0..d.labels.len()).collect();
    order.sort_by(|&a, &b| frequency[b].cmp(&frequency[a]).then(a.cmp(&b)));
    let pooled = d.labels.len() > CONFUSION_MAX;
    let shown = if pooled {
        CONFUSION_MAX - 1
    } else {
        d.labels.len()
    };
    let mut slot = vec![shown; d.labels.len()];
    let mut labels = Vec::new();
    let mut kept = order[..shown].to_vec();
    kept.sort_unstable();
    for (i, &c) in kept.iter().enumerate() {
        slot[c] = i;
        labels.push(d.labels[c].clone());
    }
    if pooled {
        labels.push("(other)".into());
    }
    let k = labels.len();
    let mut counts = vec![vec![0u64; k]; k];
    for r in &d.rows {
        counts[slot[r.gold]][slot[r.predicted]] += 1;
    }
    svg::Confusion {
        labels,
        counts,
        row_title: "gold".into(),
        column_title: "model".into(),
    }
}

/// "confidence >= 0.7000 reaches 80.0% accuracy on 50.0% of the gold rows", or that none does.
pub fn threshold_text(settings: &Settings, qc: &Qc) -> String {
    match qc.threshold {
        Some((t, coverage)) => format!(
            "confidence >= {t:.4} reaches {} accuracy on {} of the gold rows",
            pct(settings.target_accuracy),
            pct(coverage)
        ),
        None => format!(
            "no confidence threshold reaches {} accuracy",
            pct(settings.target_accuracy)
        ),
    }
}

/// The audit in one sentence: errors among the auto-accepted rows, the interval, pass or fail.
pub fn audit_text(settings: &Settings, a: &Audit) -> String {
    format!(
        "{} wrong of {} auto-accepted rows (confidence >= {:.4}): error rate {}, Wilson {:.0}% interval [{}, {}]; \
         {} the target error {} (one-sided upper bound {})",
        a.errors,
        a.accepted,
        a.threshold,
        pct(a.decision.observed_rate),
        100.0 * settings.confidence,
        pct(a.interval.lower),
        pct(a.interval.upper),
        if a.decision.passed { "passes" } else { "fails" },
        pct(settings.target_error),
        pct(a.decision.upper_bound)
    )
}
