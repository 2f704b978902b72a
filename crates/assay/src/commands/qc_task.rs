//! `assay qc TASK.toml`: the model as a label source against the task's gold column. The figures and the HTML
//! report are `assay-qc`'s (`assay_qc::task`); this module resolves the task file into its settings and prints the
//! figures as terminal tables.

use std::path::PathBuf;
use std::process::ExitCode;

use assay_core::TaskSpec;
use assay_qc::task::{self, audit_text, threshold_text, Data, Qc, CONFUSION_MAX};
use assay_qc::{pct, RELIABILITY_BINS};
use assay_quality::metrics::DEFAULT_ECE_BINS;

use super::qc::{hinted, right_align, table, write_report, ROW_ERRORS_SHOWN};
use super::Hinted;

/// Flagged gold labels listed in the terminal.
const LABEL_ISSUES_SHOWN: usize = 15;

/// What `assay qc TASK.toml` needs, resolved from the flags and the task file.
pub struct TaskQcSettings {
    qc: task::Settings,
    html: Option<PathBuf>,
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
        include_fit_rows: bool,
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
            match labels.or_else(|| spec.output.clone()) {
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
            qc: task::Settings {
                task,
                labels,
                gold,
                spec,
                include_fit_rows,
                target_accuracy,
                target_error,
                confidence,
            },
            html,
        })
    }
}

/// Run `assay qc TASK.toml`.
pub fn run(settings: TaskQcSettings) -> anyhow::Result<ExitCode> {
    let d = task::load(&settings.qc).map_err(hinted)?;
    let qc = task::compute(&settings.qc, &d).map_err(hinted)?;
    print_summary(&settings.qc, &d, &qc);
    if let Some(path) = &settings.html {
        write_report(path, &task::html_report(&settings.qc, &d, &qc))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(settings: &task::Settings, d: &Data, qc: &Qc) {
    outln!(
        "{}: {} rows with gold `{}` and a model label ({} without gold, {} unusable)",
        settings.labels.display(),
        qc.n,
        settings.gold,
        d.no_gold,
        d.bad_rows.len()
    );
    if d.fit_rows > 0 {
        outln!(
            "held-out rows only: {} rows the calibration was fitted on are left out (--include-fit-rows counts them)",
            d.fit_rows
        );
    }
    outln!(
        "accuracy {} ({} labels); ECE ({DEFAULT_ECE_BINS} bins) {:.3}",
        pct(qc.accuracy),
        d.labels.len(),
        qc.ece
    );
    print_curves(settings, qc);
    print_confusion(d, qc);
    match &qc.audit {
        Some(a) => outln!("\naudit: {}", audit_text(settings, a)),
        None => {
            outln!("\naudit: no threshold reaches the target accuracy, so nothing is auto-accepted")
        }
    }
    print_label_issues(d, qc);
    if !d.bad_rows.is_empty() {
        outln!("\n{} rows could not be used:", d.bad_rows.len());
        for (row, reason) in d.bad_rows.iter().take(ROW_ERRORS_SHOWN) {
            outln!("  row {row}: {reason}");
        }
        if d.bad_rows.len() > ROW_ERRORS_SHOWN {
            outln!("  ... and {} more", d.bad_rows.len() - ROW_ERRORS_SHOWN);
        }
    }
}

/// The reliability bins, accuracy at a few coverages, and the threshold.
fn print_curves(settings: &task::Settings, qc: &Qc) {
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
    outln!("\nReliability ({RELIABILITY_BINS} bins)\n{t}");

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
    outln!("\nAccuracy vs coverage\n{t}");
    outln!("threshold: {}", threshold_text(settings, qc));
}

fn print_confusion(d: &Data, qc: &Qc) {
    let c = &qc.confusion;
    let mut header = vec!["gold \\ model"];
    header.extend(c.labels.iter().map(String::as_str));
    let mut t = table(&header);
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
    outln!("\nConfusion matrix{note}\n{t}");
}

fn print_label_issues(d: &Data, qc: &Qc) {
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
            outln!(
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
            outln!("\nPossible errors in the gold column (confident learning): none flagged")
        }
        None => {}
    }
}
