//! `assay qc TASK.toml`: the model as a label source against the task's gold column. Reads the task's labeled
//! output (or `--labels FILE`), where each row has the gold column and an `assay` object with `label` and
//! `confidence`, and reports accuracy, calibration (ECE, reliability diagram), the accuracy-vs-coverage curve, the
//! confidence threshold that reaches a target accuracy, the confusion matrix, and an audit of the rows that
//! threshold would auto-accept; as terminal tables and, with `--html`, a self-contained HTML report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use assay_core::TaskSpec;
use assay_quality::audit::{audit_decision, wilson_interval, AuditDecision, Interval};
use assay_quality::label_errors::{find_label_issues, LabelIssueOptions};
use assay_quality::metrics::{
    accuracy_coverage_curve, expected_calibration_error, reliability_bins, threshold_for_accuracy,
    CoveragePoint, ReliabilityBin, DEFAULT_ECE_BINS,
};
use assay_report::{svg, Block, Card, Report, Section, Table as HtmlTable, Tone};
use serde_json::Value;

use super::qc::{cell_text, pct, right_align, table, write_atomically};
use super::Hinted;

/// Bins of the reliability diagram.
const RELIABILITY_BINS: usize = 10;
/// Labels shown in the confusion matrix; the rest are pooled as "(other)".
const CONFUSION_MAX: usize = 12;
/// Points of the accuracy-vs-coverage curve kept for the plot and the terminal table.
const CURVE_POINTS: usize = 200;
/// Row errors printed before "... and N more".
const ROW_ERRORS_SHOWN: usize = 10;
/// Flagged gold labels listed in the terminal.
const LABEL_ISSUES_SHOWN: usize = 15;

/// What `assay qc TASK.toml` needs, resolved from the flags and the task file.
pub struct TaskQcSettings {
    /// The task file, as given.
    pub task: PathBuf,
    /// Labeled rows to read: `--labels` or the task's `output`.
    pub labels: PathBuf,
    /// The gold column.
    pub gold: String,
    pub html: Option<PathBuf>,
    pub target_accuracy: f64,
    pub target_error: f64,
    pub confidence: f64,
}

impl TaskQcSettings {
    /// Reads the task file and checks the flags.
    pub fn resolve(
        task: PathBuf,
        labels: Option<PathBuf>,
        html: Option<PathBuf>,
        target_accuracy: f64,
        target_error: f64,
        confidence: f64,
    ) -> anyhow::Result<Self> {
        if !(target_accuracy > 0.0 && target_accuracy <= 1.0) {
            anyhow::bail!("--target-accuracy must be in (0, 1], not {target_accuracy}");
        }
        let spec = TaskSpec::from_path(&task)?;
        let gold = spec.gold.clone().ok_or_else(|| Hinted {
            message: format!("the task {} names no gold column", task.display()),
            hint:
                "add `gold = \"COLUMN\"` to the task file: qc compares the model's labels with it"
                    .into(),
        })?;
        let labels =
            match labels.or(spec.output.clone()) {
                Some(path) => path,
                None => return Err(Hinted {
                    message: format!("the task {} names no output file", task.display()),
                    hint: "pass the labeled file with `--labels FILE`, or set `output` in the task"
                        .into(),
                }
                .into()),
            };
        if !labels.exists() {
            return Err(Hinted {
                message: format!("the labeled file {} does not exist", labels.display()),
                hint: format!(
                    "run `assay label {}` first, or pass another file with `--labels FILE`",
                    task.display()
                ),
            }
            .into());
        }
        Ok(Self {
            task,
            labels,
            gold,
            html,
            target_accuracy,
            target_error,
            confidence,
        })
    }
}

/// One row compared: gold and predicted label codes, the model's confidence.
struct Compared {
    gold: usize,
    predicted: usize,
    confidence: f64,
    /// 1-based row number in the labeled file.
    row: u64,
    /// The model's distribution over the labels (indexed like `Data::labels`), when the row carries one.
    probs: Option<Vec<f64>>,
}

/// The rows read, with label names indexed in text order.
struct Data {
    labels: Vec<String>,
    rows: Vec<Compared>,
    /// Rows without a gold label (not compared).
    no_gold: usize,
    /// (1-based row, reason) for rows that could not be used.
    bad_rows: Vec<(u64, String)>,
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

fn load(settings: &TaskQcSettings) -> anyhow::Result<Data> {
    let reader = assay_io::open_dataset(&settings.labels)
        .with_context(|| format!("reading the labeled file {}", settings.labels.display()))?;
    let columns = reader.columns().to_vec();
    for needed in [settings.gold.as_str(), "assay"] {
        if !columns.iter().any(|c| c == needed) {
            return Err(Hinted {
                message: format!(
                    "the labeled file {} has no column `{needed}` (its columns: {})",
                    settings.labels.display(),
                    columns.join(", ")
                ),
                hint: "qc reads the output of `assay label`: the gold column and an `assay` object per row".into(),
            }
            .into());
        }
    }
    let mut raw = Vec::new();
    let mut no_gold = 0;
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
        let parsed = assay_object(row.values.get("assay")).and_then(|a| {
            let label = cell_text(a.get("label"))
                .map_err(|e| format!("`assay.label`: {e}"))?
                .ok_or("no `assay.label`")?;
            let confidence = a
                .get("confidence")
                .and_then(Value::as_f64)
                .filter(|c| (0.0..=1.0).contains(c))
                .ok_or("`assay.confidence` is not a number in [0, 1]")?;
            let distribution: Option<Vec<(String, f64)>> =
                a.get("distribution").and_then(Value::as_object).map(|d| {
                    d.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                        .collect()
                });
            Ok::<_, String>((label, confidence, distribution))
        });
        match parsed {
            Ok((label, confidence, distribution)) => {
                raw.push((gold, label, confidence, number, distribution))
            }
            Err(e) => bad_rows.push((number, e)),
        }
    }
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
    Ok(Data {
        labels: names,
        rows,
        no_gold,
        bad_rows,
    })
}

/// The audit of the rows the threshold auto-accepts.
struct Audit {
    threshold: f64,
    accepted: u64,
    errors: u64,
    interval: Interval,
    decision: AuditDecision,
}

struct TaskQc {
    n: usize,
    accuracy: f64,
    ece: f64,
    bins: Vec<ReliabilityBin>,
    curve: Vec<CoveragePoint>,
    /// (threshold, coverage) reaching the target accuracy.
    threshold: Option<(f64, f64)>,
    audit: Option<Audit>,
    /// Confusion matrix over the shown labels (gold rows, predicted columns).
    confusion: svg::Confusion,
    /// Gold labels that look wrong by confident learning, most likely wrong first; `None` when the rows carry no
    /// distribution or the method cannot run (a single class, say).
    label_issues: Option<Vec<LabelIssue>>,
}

/// A gold label confident learning flags.
struct LabelIssue {
    /// 1-based row in the labeled file.
    row: u64,
    gold: usize,
    /// The model's most likely label.
    suggested: usize,
    /// The model's probability of the gold label.
    p_gold: f64,
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

fn compute(settings: &TaskQcSettings, d: &Data) -> anyhow::Result<TaskQc> {
    if d.rows.is_empty() {
        return Err(Hinted {
            message: format!(
                "no row of {} has both a gold `{}` and a model label",
                settings.labels.display(),
                settings.gold
            ),
            hint: "label rows that have gold answers, or check the task's `gold` column".into(),
        }
        .into());
    }
    let confidence: Vec<f64> = d.rows.iter().map(|r| r.confidence).collect();
    let correct: Vec<bool> = d.rows.iter().map(|r| r.gold == r.predicted).collect();
    let n = d.rows.len();
    let hits = correct.iter().filter(|&&c| c).count();
    let threshold = threshold_for_accuracy(&confidence, &correct, settings.target_accuracy)?;
    let audit = match threshold {
        Some((t, _)) => {
            let (accepted, errors) = confidence
                .iter()
                .zip(&correct)
                .filter(|(&c, _)| c >= t)
                .fold((0u64, 0u64), |(a, e), (_, &ok)| (a + 1, e + u64::from(!ok)));
            Some(Audit {
                threshold: t,
                accepted,
                errors,
                interval: wilson_interval(errors, accepted, settings.confidence)?,
                decision: audit_decision(
                    errors,
                    accepted,
                    settings.target_error,
                    settings.confidence,
                )?,
            })
        }
        None => None,
    };
    Ok(TaskQc {
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
        out.push(*curve.last().expect("non-empty"));
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

/// Run `assay qc TASK.toml`.
pub fn run(settings: TaskQcSettings) -> anyhow::Result<ExitCode> {
    let d = load(&settings)?;
    let qc = compute(&settings, &d)?;
    print_summary(&settings, &d, &qc);
    if let Some(path) = &settings.html {
        let html = html_report(&settings, &d, &qc).to_html();
        write_atomically(path, html.as_bytes())
            .with_context(|| format!("writing the HTML report {}", path.display()))?;
        println!("HTML report: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn threshold_text(settings: &TaskQcSettings, qc: &TaskQc) -> String {
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

fn audit_text(settings: &TaskQcSettings, a: &Audit) -> String {
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

fn print_summary(settings: &TaskQcSettings, d: &Data, qc: &TaskQc) {
    println!(
        "{}: {} rows with gold `{}` and a model label ({} without gold, {} unusable)",
        settings.labels.display(),
        qc.n,
        settings.gold,
        d.no_gold,
        d.bad_rows.len()
    );
    println!(
        "accuracy {} ({} labels); ECE ({DEFAULT_ECE_BINS} bins) {:.3}",
        pct(qc.accuracy),
        d.labels.len(),
        qc.ece
    );

    let mut t = table(&["confidence", "items", "mean confidence", "accuracy"]);
    for b in qc.bins.iter().filter(|b| b.count > 0) {
        t.add_row(vec![
            format!("({:.1}, {:.1}]", b.lower, b.upper),
            b.count.to_string(),
            format!("{:.3}", b.mean_confidence),
            pct(b.accuracy),
        ]);
    }
    right_align(&mut t, 1);
    println!("\nReliability ({RELIABILITY_BINS} bins)\n{t}");

    let mut t = table(&["coverage", "threshold", "kept", "accuracy"]);
    let mut last_kept = 0;
    for target in [0.25, 0.5, 0.75, 0.9, 1.0] {
        // The first curve point covering at least `target` of the rows, each shown once.
        let point = qc.curve.iter().find(|p| p.coverage >= target - 1e-12);
        if let Some(p) = point.filter(|p| p.kept != last_kept) {
            last_kept = p.kept;
            t.add_row(vec![
                pct(p.coverage),
                format!("{:.4}", p.threshold),
                p.kept.to_string(),
                pct(p.accuracy),
            ]);
        }
    }
    right_align(&mut t, 0);
    println!("\nAccuracy vs coverage\n{t}");
    println!("threshold: {}", threshold_text(settings, qc));

    let c = &qc.confusion;
    let mut header = vec!["gold \\ model".to_string()];
    header.extend(c.labels.iter().cloned());
    let mut t = table(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for (name, row) in c.labels.iter().zip(&c.counts) {
        let mut cells = vec![name.clone()];
        cells.extend(row.iter().map(u64::to_string));
        t.add_row(cells);
    }
    right_align(&mut t, 1);
    let note = if d.labels.len() > CONFUSION_MAX {
        format!(" (the {} most frequent gold labels)", CONFUSION_MAX - 1)
    } else {
        String::new()
    };
    println!("\nConfusion matrix{note}\n{t}");

    match &qc.audit {
        Some(a) => println!("\naudit: {}", audit_text(settings, a)),
        None => println!(
            "\naudit: no threshold reaches the target accuracy, so nothing is auto-accepted"
        ),
    }
    match &qc.label_issues {
        Some(issues) if !issues.is_empty() => {
            let mut t = table(&["row", "gold label", "model suggests", "P(gold label)"]);
            for i in issues.iter().take(LABEL_ISSUES_SHOWN) {
                t.add_row(vec![
                    i.row.to_string(),
                    d.labels[i.gold].clone(),
                    d.labels[i.suggested].clone(),
                    format!("{:.3}", i.p_gold),
                ]);
            }
            let more = issues.len().saturating_sub(LABEL_ISSUES_SHOWN);
            println!(
                "\nPossible errors in the gold column (confident learning): {} of {} rows flagged, most likely \
                 wrong first{}\n{t}\nCandidates for a second look, not verdicts: confident learning trusts the \
                 model's probabilities, so a weak model also flags its own mistakes.",
                issues.len(),
                qc.n,
                if more > 0 {
                    format!(" ({more} more not shown)")
                } else {
                    String::new()
                }
            );
        }
        Some(_) => {
            println!("\nPossible errors in the gold column (confident learning): none flagged")
        }
        None => {}
    }
    if !d.bad_rows.is_empty() {
        println!("\n{} rows could not be used:", d.bad_rows.len());
        for (row, reason) in d.bad_rows.iter().take(ROW_ERRORS_SHOWN) {
            println!("  row {row}: {reason}");
        }
        if d.bad_rows.len() > ROW_ERRORS_SHOWN {
            println!("  ... and {} more", d.bad_rows.len() - ROW_ERRORS_SHOWN);
        }
    }
}

fn html_report(settings: &TaskQcSettings, d: &Data, qc: &TaskQc) -> Report {
    let mut report = Report::new(format!("Quality control: {}", settings.task.display()));
    report.fact("labels", settings.labels.display().to_string());
    report.fact("gold column", settings.gold.clone());
    report.fact("rows compared", qc.n.to_string());
    report.fact("rows without gold", d.no_gold.to_string());
    report.fact("unusable rows", d.bad_rows.len().to_string());

    let mut s = Section::new("Model against gold");
    let mut cards = vec![
        Card::new("accuracy", pct(qc.accuracy)).detail(format!(
            "{} rows, {} labels",
            qc.n,
            d.labels.len()
        )),
        Card::new("ECE", format!("{:.3}", qc.ece))
            .detail(format!("{DEFAULT_ECE_BINS} equal-width bins")),
        match qc.threshold {
            Some((t, coverage)) => Card::new(
                format!("threshold for {} accuracy", pct(settings.target_accuracy)),
                format!("{t:.4}"),
            )
            .detail(format!("coverage {}", pct(coverage)))
            .tone(Tone::Good),
            None => Card::new(
                format!("threshold for {} accuracy", pct(settings.target_accuracy)),
                "none",
            )
            .detail("no threshold reaches it")
            .tone(Tone::Warn),
        },
    ];
    if let Some(a) = &qc.audit {
        cards.push(
            Card::new(
                "auto-accepted audit",
                if a.decision.passed { "pass" } else { "fail" },
            )
            .detail(audit_text(settings, a))
            .tone(if a.decision.passed {
                Tone::Good
            } else {
                Tone::Bad
            }),
        );
    }
    s.push(Block::Cards(cards));
    let reliability = svg::LineChart {
        series: vec![svg::Series {
            name: "model".into(),
            points: qc
                .bins
                .iter()
                .filter(|b| b.count > 0)
                .map(|b| svg::Point {
                    x: b.mean_confidence,
                    y: b.accuracy,
                    weight: b.count as f64,
                })
                .collect(),
        }],
        x_label: "confidence".into(),
        y_label: "accuracy".into(),
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        diagonal: true,
        weight_label: "items".into(),
        markers_only: true,
    };
    let lowest = qc.curve.iter().map(|p| p.accuracy).fold(1.0, f64::min);
    let coverage = svg::LineChart {
        series: vec![svg::Series {
            name: "model".into(),
            points: qc
                .curve
                .iter()
                .map(|p| svg::Point {
                    x: p.coverage,
                    y: p.accuracy,
                    weight: 1.0,
                })
                .collect(),
        }],
        x_label: "coverage (share of rows kept, most confident first)".into(),
        y_label: "accuracy".into(),
        x_range: (0.0, 1.0),
        y_range: ((((lowest - 0.05) * 10.0).floor() / 10.0).max(0.0), 1.0),
        diagonal: false,
        weight_label: String::new(),
        markers_only: false,
    };
    s.push(Block::Row(vec![
        Block::Figure {
            svg: svg::line_chart(&reliability),
            caption: format!(
                "Reliability diagram: accuracy against mean confidence in {RELIABILITY_BINS} equal-width bins; \
                 marker area follows the number of rows. Points under the diagonal are overconfident."
            ),
        },
        Block::Figure {
            svg: svg::line_chart(&coverage),
            caption: format!("Accuracy against coverage; {}.", threshold_text(settings, qc)),
        },
    ]));
    report.push(s);

    let mut s = Section::new("Confusion");
    s.push(Block::Figure {
        svg: svg::confusion_matrix(&qc.confusion),
        caption: if d.labels.len() > CONFUSION_MAX {
            format!(
                "Gold (rows) against the model (columns), the {} most frequent gold labels; the rest pooled.",
                CONFUSION_MAX - 1
            )
        } else {
            "Gold (rows) against the model (columns).".into()
        },
    });
    report.push(s);

    if !d.bad_rows.is_empty() {
        let mut s = Section::new("Unusable rows");
        s.push(Block::Table(HtmlTable {
            header: vec!["row".into(), "reason".into()],
            rows: d
                .bad_rows
                .iter()
                .map(|(r, why)| vec![r.to_string(), why.clone()])
                .collect(),
            numeric: vec![0],
            highlight: Vec::new(),
        }));
        report.push(s);
    }
    report
}
