//! `assay qc`: quality control over loose answer files, or with a task file over its labeled output
//! (`qc_task`). The figures and the HTML report are `assay-qc`'s; this module turns the flags into its settings,
//! prints the figures as terminal tables and writes the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use assay_qc::answers::{self, alpha_title, annotator_cells, annotator_order, Data, Pairwise, Qc};
use assay_qc::{pct, BadRow, InputFile};
use assay_quality::agreement::Level;
use assay_quality::annotators::{AnnotatorOptions, FlagBasis};
use assay_quality::metrics::DEFAULT_ECE_BINS;
use clap::{Args, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};

use super::Hinted;

/// Row errors printed per file before "... and N more".
pub(super) const ROW_ERRORS_SHOWN: usize = 10;

/// Arguments of `assay qc`.
#[derive(Debug, Args)]
pub struct QcArgs {
    /// A task file: check the model's labels in its output (or `--labels`) against its gold column.
    #[arg(
        value_name = "TASK.toml",
        required_unless_present = "annotations",
        conflicts_with = "annotations"
    )]
    task: Option<PathBuf>,
    /// With a task: the labeled rows to read instead of the task's `output` (JSONL or Parquet).
    #[arg(long, value_name = "FILE", requires = "task")]
    labels: Option<PathBuf>,
    /// With a task: also count the rows the fitted calibration learned from (by default the figures are on
    /// held-out rows only, as `assay label` reports them).
    #[arg(long, requires = "task")]
    include_fit_rows: bool,
    /// With a task: the accuracy the auto-accept confidence threshold must reach.
    #[arg(long, default_value_t = 0.95, value_name = "P")]
    target_accuracy: f64,
    /// Answers, one row per answer, with the columns `item`, `annotator`, `label` and optionally `seconds`
    /// (CSV, TSV, JSONL or Parquet).
    #[arg(long, value_name = "FILE")]
    annotations: Option<PathBuf>,
    /// Gold labels with the columns `item` and `label`.
    #[arg(long, value_name = "FILE")]
    gold: Option<PathBuf>,
    /// Level of measurement for Krippendorff's alpha; all but nominal need numeric labels.
    #[arg(long, value_enum, default_value_t = LevelArg::Nominal)]
    level: LevelArg,
    /// Write a self-contained HTML report (inline SVG plots) to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// The error rate the majority labels (or, with a task, the auto-accepted labels) must stay under to pass.
    #[arg(long, default_value_t = 0.05, value_name = "RATE")]
    target_error: f64,
    /// Confidence of the audit's upper bound and of the zero-defect sample size.
    #[arg(long, default_value_t = 0.95, value_name = "P")]
    confidence: f64,
    /// At most this many annotators in the terminal table, flagged ones first (the HTML report lists all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    max_annotators: usize,
}

/// `--level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LevelArg {
    Nominal,
    Ordinal,
    Interval,
    Ratio,
}

impl From<LevelArg> for Level {
    fn from(level: LevelArg) -> Self {
        match level {
            LevelArg::Nominal => Level::Nominal,
            LevelArg::Ordinal => Level::Ordinal,
            LevelArg::Interval => Level::Interval,
            LevelArg::Ratio => Level::Ratio,
        }
    }
}

/// Everything `assay qc --annotations` needs, checked before any work starts.
struct QcSettings {
    qc: answers::Settings,
    html: Option<PathBuf>,
    max_annotators: usize,
}

/// Run `assay qc`.
pub fn run(args: QcArgs) -> anyhow::Result<ExitCode> {
    for (name, value) in [
        ("--target-error", args.target_error),
        ("--confidence", args.confidence),
    ] {
        if !(value > 0.0 && value < 1.0) {
            anyhow::bail!("{name} must be strictly between 0 and 1, not {value}");
        }
    }
    if let Some(task) = args.task {
        return super::qc_task::run(super::qc_task::TaskQcSettings::resolve(
            task,
            args.labels,
            args.html,
            args.target_accuracy,
            args.target_error,
            args.confidence,
            args.include_fit_rows,
        )?);
    }
    let settings = QcSettings {
        qc: answers::Settings {
            annotations: args
                .annotations
                .context("give a task file or `--annotations FILE`")?,
            gold: args.gold,
            level: args.level.into(),
            target_error: args.target_error,
            confidence: args.confidence,
        },
        html: args.html,
        max_annotators: args.max_annotators,
    };
    let data = answers::load(&settings.qc).map_err(hinted)?;
    let qc = answers::compute(&settings.qc, &data).map_err(hinted)?;
    print_summary(&settings, &data, &qc);
    if let Some(path) = &settings.html {
        write_report(path, &answers::html_report(&settings.qc, &data, &qc))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `assay-qc`'s error, with a hint where the fix is known.
pub(super) fn hinted(err: assay_qc::Error) -> anyhow::Error {
    use assay_qc::Error;
    let hint = match &err {
        Error::MissingColumns {
            file: InputFile::Gold,
            ..
        } => "the gold file needs a header with the columns item, label",
        Error::MissingColumns {
            file: InputFile::Annotations,
            ..
        } => {
            "the annotations file needs a header with the columns item, annotator, label (one row per answer) \
             and may have a seconds column"
        }
        Error::MissingColumns { .. } => {
            "qc reads the output of `assay label`: the gold column and an `assay` object per row"
        }
        Error::NonNumericLabels { level } => {
            return Hinted {
                message: format!(
                    "--level {} needs numeric labels, and some labels are not numbers",
                    assay_qc::level_name(*level)
                ),
                hint: "use --level nominal for categories without an order".into(),
            }
            .into()
        }
        Error::NoComparableRows { .. } => {
            "label rows that have gold answers, or check the task's `gold` column"
        }
        _ => return err.into(),
    };
    Hinted {
        message: err.to_string(),
        hint: hint.into(),
    }
    .into()
}

/// Writes the HTML report atomically and says where.
pub(super) fn write_report(path: &Path, report: &assay_report::Report) -> anyhow::Result<()> {
    write_atomically(path, report.to_html().as_bytes())
        .with_context(|| format!("writing the HTML report {}", path.display()))?;
    outln!("HTML report: {}", path.display());
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.html".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

// ---------------------------------------------------------------------------------------------------------------
// Terminal

fn num(r: &Result<f64, String>) -> String {
    match r {
        Ok(x) => format!("{x:.3}"),
        Err(e) => format!("n/a ({e})"),
    }
}

pub(super) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    t
}

pub(super) fn right_align(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn print_summary(settings: &QcSettings, d: &Data, qc: &Qc) {
    let gold_items = qc.gold.as_ref().map_or(0, |g| g.gold_items);
    outln!(
        "{} answers from {} annotators on {} items; labels: {}",
        d.answers.len(),
        d.annotators.len(),
        d.items.len(),
        d.labels.join(", ")
    );
    if settings.qc.gold.is_some() {
        outln!(
            "gold labels for {gold_items} of the items ({} gold rows for items without answers)",
            d.gold_unmatched
        );
    }
    if d.repeats > 0 {
        outln!(
            "{} repeated answers (same annotator, same item): agreement uses each annotator's first, aggregation all",
            d.repeats
        );
    }
    print_bad_rows(&d.bad_rows);
    print_agreement(settings, d, qc);
    print_aggregation(qc);
    print_annotators(settings, d, qc);
    print_audit(settings, qc);
}

fn print_bad_rows(bad: &[BadRow]) {
    for file in [InputFile::Annotations, InputFile::Gold] {
        let rows: Vec<&BadRow> = bad.iter().filter(|b| b.file == file).collect();
        if rows.is_empty() {
            continue;
        }
        outln!("skipped {} bad rows in the {file} file:", rows.len());
        for b in rows.iter().take(ROW_ERRORS_SHOWN) {
            outln!("  row {}: {}", b.row, b.reason);
        }
        if rows.len() > ROW_ERRORS_SHOWN {
            outln!("  ... and {} more", rows.len() - ROW_ERRORS_SHOWN);
        }
    }
}

fn print_agreement(settings: &QcSettings, d: &Data, qc: &Qc) {
    outln!("\nagreement");
    let mut t = table(&["measure", "value"]);
    t.add_row(["percent agreement".into(), num(&qc.percent)]);
    t.add_row(["Fleiss' kappa".into(), num(&qc.fleiss)]);
    t.add_row([alpha_title(settings.qc.level), num(&qc.alpha)]);
    let pair = |(_, a, b, n): (f64, usize, usize, usize)| {
        format!("{} / {} ({n} items)", d.annotators[a], d.annotators[b])
    };
    match &qc.pairwise {
        Pairwise::Summary {
            min_shared,
            pairs,
            mean,
            median,
            min,
            max,
        } => {
            t.add_row([
                format!("Cohen's kappa, mean of {pairs} pairs sharing >= {min_shared} items"),
                format!("{mean:.3}"),
            ]);
            t.add_row(["  median".into(), format!("{median:.3}")]);
            t.add_row([format!("  lowest: {}", pair(*min)), format!("{:.3}", min.0)]);
            t.add_row([
                format!("  highest: {}", pair(*max)),
                format!("{:.3}", max.0),
            ]);
        }
        Pairwise::None { min_shared } => {
            t.add_row([
                "Cohen's kappa between annotators".into(),
                format!("n/a (no pair shares {min_shared} items)"),
            ]);
        }
        Pairwise::Matrix(_) => {}
    }
    right_align(&mut t, 1);
    outln!("{t}");
    if let Pairwise::Matrix(m) = &qc.pairwise {
        if d.annotators.len() >= 2 {
            outln!("Cohen's kappa between annotators (shared items)");
            let mut header = vec![""];
            header.extend(d.annotators.iter().map(String::as_str));
            let mut t = table(&header);
            for (a, row) in m.iter().enumerate() {
                let mut cells = vec![d.annotators[a].clone()];
                cells.extend(row.iter().enumerate().map(|(b, cell)| match cell {
                    _ if a == b => "-".into(),
                    None => "no shared items".into(),
                    Some((Some(k), n)) => format!("{k:.3} ({n})"),
                    Some((None, n)) => format!("n/a ({n})"),
                }));
                t.add_row(cells);
            }
            right_align(&mut t, 1);
            outln!("{t}");
        }
    }
}

fn print_aggregation(qc: &Qc) {
    outln!("\naggregation");
    let labelled = qc.votes.iter().filter(|v| v.label.is_some()).count();
    let ds_labelled = qc.ds.labels.iter().filter(|l| l.is_some()).count();
    let mut t = table(&["", "majority vote", "Dawid-Skene"]);
    let converged = if qc.ds.converged {
        ""
    } else {
        ", not converged"
    };
    t.add_row([
        "items labelled".into(),
        format!("{labelled} ({} ties)", qc.ties),
        format!(
            "{ds_labelled} ({} EM iterations{converged})",
            qc.ds.iterations
        ),
    ]);
    if let Some(g) = &qc.gold {
        t.add_row([
            "accuracy vs gold, labelled items".into(),
            g.mv_untied.show(),
            g.ds.show(),
        ]);
        t.add_row([
            "accuracy vs gold, all gold items (ties wrong)".into(),
            g.mv_all.show(),
            g.ds.show(),
        ]);
    }
    right_align(&mut t, 1);
    outln!("{t}");
    outln!(
        "majority vote and Dawid-Skene give the same label on {} of the majority-labelled items",
        qc.mv_ds.show()
    );
    for c in &qc.confidence {
        outln!(
            "{} confidence on {} gold items: ECE ({DEFAULT_ECE_BINS} bins) {:.3}; accuracy at 50% coverage {}",
            c.name,
            c.items,
            c.ece,
            pct(c.coverage[9].1)
        );
    }
}

fn print_annotators(settings: &QcSettings, d: &Data, qc: &Qc) {
    outln!("\nannotators");
    let r = &qc.annotators;
    let flagged = r.scores.iter().filter(|s| s.flagged).count();
    match (r.flag_basis, r.median, r.cutoff) {
        (Some(basis), Some(median), Some(cutoff)) => outln!(
            "{flagged} of {} flagged: {} accuracy below {cutoff:.3} (median {median:.3}, MAD {:.3})",
            d.annotators.len(),
            match basis {
                FlagBasis::Gold => "gold",
                FlagBasis::DawidSkene => "Dawid-Skene",
            },
            r.mad.unwrap_or(0.0)
        ),
        _ => outln!(
            "nobody flagged: fewer than three annotators have {} gold answers or answers",
            AnnotatorOptions::default().min_items
        ),
    }
    let order = annotator_order(qc);
    let mut t = table(&[
        "annotator",
        "answers",
        "gold accuracy",
        "peer kappa",
        "DS accuracy",
        "mean seconds",
        "flag",
    ]);
    for &j in order.iter().take(settings.max_annotators) {
        t.add_row(annotator_cells(d, &r.scores[j]));
    }
    right_align(&mut t, 1);
    outln!("{t}");
    if order.len() > settings.max_annotators {
        outln!(
            "... and {} more annotators{}",
            order.len() - settings.max_annotators,
            if settings.html.is_some() {
                " (the HTML report lists all)"
            } else {
                " (--max-annotators shows more)"
            }
        );
    }
}

fn print_audit(settings: &QcSettings, qc: &Qc) {
    outln!("\naudit");
    let mut t = table(&["", "value"]);
    match &qc.audit {
        Some(a) => {
            t.add_row([
                "majority-label errors on gold items".into(),
                format!(
                    "{}/{} = {}",
                    a.errors,
                    a.sampled,
                    pct(a.decision.observed_rate)
                ),
            ]);
            t.add_row([
                "Wilson 95% interval of the error rate".into(),
                format!("[{}, {}]", pct(a.interval.lower), pct(a.interval.upper)),
            ]);
            t.add_row([
                format!(
                    "one-sided {:.0}% upper bound vs target {}",
                    100.0 * a.decision.confidence,
                    pct(a.decision.target)
                ),
                format!(
                    "{} {}",
                    pct(a.decision.upper_bound),
                    if a.decision.passed { "PASS" } else { "FAIL" }
                ),
            ]);
        }
        None => {
            t.add_row([
                String::from("majority-label errors on gold items"),
                String::from("n/a (no gold labels; pass --gold)"),
            ]);
        }
    }
    t.add_row([
        format!(
            "zero-defect sample for error < {} at {:.0}% confidence",
            pct(settings.qc.target_error),
            100.0 * settings.qc.confidence
        ),
        format!("{} items", qc.zero_defect),
    ]);
    right_align(&mut t, 1);
    outln!("{t}");
}
