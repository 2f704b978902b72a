//! `assay qc`: quality control over loose answer files (a task's labeled output is `qc_task`'s). Agreement among annotators, majority vote against
//! Dawid-Skene, per-annotator scores and an audit of the majority labels against gold, as terminal tables and,
//! with `--html`, a self-contained HTML report with plots.
//!
//! The statistics are `assay-quality`'s; this module reads the files, indexes items, annotators and labels, runs
//! the statistics once, and lays the results out twice (terminal and HTML) from the same [`Qc`] value.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use assay_quality::aggregation::{
    dawid_skene, majority_vote, Answer, DawidSkene, DawidSkeneOptions, TiePolicy, Vote,
};
use assay_quality::agreement::{
    cohen_kappa, fleiss_kappa, krippendorff_alpha, percent_agreement, ContingencyTable,
    KappaWeights, Level, RatingMatrix,
};
use assay_quality::annotators::{
    score_annotators, AnnotatorInput, AnnotatorOptions, AnnotatorReport, FlagBasis,
};
use assay_quality::audit::{
    audit_decision, wilson_interval, zero_defect_sample_size, AuditDecision, Interval,
};
use assay_quality::metrics::{
    accuracy_at_coverage, expected_calibration_error, reliability_bins, ReliabilityBin,
    DEFAULT_ECE_BINS,
};
use assay_report::{svg, Block, Card, Report, Section, Table as HtmlTable, Tone};
use clap::{Args, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use serde_json::Value;

use super::Hinted;

/// With at most this many annotators the terminal shows every pair's Cohen's kappa; above it, a summary.
const PAIRWISE_TABLE_MAX: usize = 8;
/// Bins of the reliability diagram.
const RELIABILITY_BINS: usize = 10;
/// Row errors printed per file before "... and N more".
const ROW_ERRORS_SHOWN: usize = 10;

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

impl LevelArg {
    fn level(self) -> Level {
        match self {
            LevelArg::Nominal => Level::Nominal,
            LevelArg::Ordinal => Level::Ordinal,
            LevelArg::Interval => Level::Interval,
            LevelArg::Ratio => Level::Ratio,
        }
    }

    fn name(self) -> &'static str {
        match self {
            LevelArg::Nominal => "nominal",
            LevelArg::Ordinal => "ordinal",
            LevelArg::Interval => "interval",
            LevelArg::Ratio => "ratio",
        }
    }
}

/// Everything `assay qc` needs, checked before any work starts.
struct QcSettings {
    annotations: PathBuf,
    gold: Option<PathBuf>,
    level: LevelArg,
    html: Option<PathBuf>,
    target_error: f64,
    confidence: f64,
    max_annotators: usize,
}

impl QcSettings {
    fn resolve(args: QcArgs) -> anyhow::Result<Self> {
        for (name, value) in [
            ("--target-error", args.target_error),
            ("--confidence", args.confidence),
        ] {
            if !(value > 0.0 && value < 1.0) {
                anyhow::bail!("{name} must be strictly between 0 and 1, not {value}");
            }
        }
        Ok(Self {
            annotations: args
                .annotations
                .context("give a task file or `--annotations FILE`")?,
            gold: args.gold,
            level: args.level,
            html: args.html,
            target_error: args.target_error,
            confidence: args.confidence,
            max_annotators: args.max_annotators,
        })
    }
}

/// Run `assay qc`.
pub fn run(args: QcArgs) -> anyhow::Result<ExitCode> {
    if let Some(task) = args.task {
        for (name, value) in [
            ("--target-error", args.target_error),
            ("--confidence", args.confidence),
        ] {
            if !(value > 0.0 && value < 1.0) {
                anyhow::bail!("{name} must be strictly between 0 and 1, not {value}");
            }
        }
        return super::qc_task::run(super::qc_task::TaskQcSettings::resolve(
            task,
            args.labels,
            args.html,
            args.target_accuracy,
            args.target_error,
            args.confidence,
        )?);
    }
    let settings = QcSettings::resolve(args)?;
    let data = load(&settings)?;
    let qc = compute(&settings, &data)?;
    print_summary(&settings, &data, &qc);
    if let Some(path) = &settings.html {
        let html = html_report(&settings, &data, &qc).to_html();
        write_atomically(path, html.as_bytes())
            .with_context(|| format!("writing the HTML report {}", path.display()))?;
        println!("HTML report: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------------------------
// Input

/// A row the reader or this command rejected: which file, its 1-based data row number, why.
struct BadRow {
    file: &'static str,
    row: u64,
    reason: String,
}

/// The answers, indexed densely.
struct Data {
    /// Item ids by index, in order of first appearance.
    items: Vec<String>,
    /// Annotator ids by index, in order of first appearance.
    annotators: Vec<String>,
    /// Label names by code: numeric order when every label is a number, else text order.
    labels: Vec<String>,
    /// The labels' numeric values when every label is a number.
    values: Option<Vec<f64>>,
    answers: Vec<Answer>,
    /// Seconds per answer (parallel to `answers`); empty without a `seconds` column.
    seconds: Vec<Option<f64>>,
    /// Gold label per item; empty without a gold file.
    gold: Vec<Option<usize>>,
    /// Gold rows whose item has no answers.
    gold_unmatched: usize,
    /// Answers by an annotator on an item they had already answered (agreement uses the first one).
    repeats: usize,
    bad_rows: Vec<BadRow>,
}

/// Text of a cell: strings trimmed, numbers and booleans as written; empty and null are `None`.
pub(super) fn cell_text(value: Option<&Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(format!("expected text or a number, found {other}")),
    }
}

/// A good row: its 1-based number and one cell per requested column.
type NumberedCells = (u64, Vec<Option<String>>);

/// Reads `path`, requiring `required` columns and keeping `optional` ones when present. Each good row comes back
/// as its 1-based row number and one cell per requested column (required first).
fn read_rows(
    path: &Path,
    file: &'static str,
    required: &[&str],
    optional: &[&str],
    bad_rows: &mut Vec<BadRow>,
) -> anyhow::Result<(Vec<NumberedCells>, Vec<bool>)> {
    let reader = assay_io::open_dataset(path)
        .with_context(|| format!("reading the {file} file {}", path.display()))?;
    let columns = reader.columns().to_vec();
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| !columns.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(Hinted {
            message: format!(
                "the {file} file {} has no column {} (its columns: {})",
                path.display(),
                missing
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                columns.join(", ")
            ),
            hint: if file == "gold" {
                "the gold file needs a header with the columns item, label".into()
            } else {
                "the annotations file needs a header with the columns item, annotator, label (one row per answer) \
                 and may have a seconds column"
                    .into()
            },
        }
        .into());
    }
    let present: Vec<bool> = optional
        .iter()
        .map(|c| columns.iter().any(|h| h == c))
        .collect();
    let mut rows = Vec::new();
    'rows: for row in reader {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                bad_rows.push(BadRow {
                    file,
                    row: e.index + 1,
                    reason: e.reason,
                });
                continue;
            }
        };
        let number = row.index + 1;
        let mut cells = Vec::with_capacity(required.len() + optional.len());
        for &name in required.iter().chain(optional) {
            match cell_text(row.values.get(name)) {
                Ok(Some(text)) => cells.push(Some(text)),
                Ok(None) if optional.contains(&name) => cells.push(None),
                Ok(None) => {
                    bad_rows.push(BadRow {
                        file,
                        row: number,
                        reason: format!("no `{name}`"),
                    });
                    continue 'rows;
                }
                Err(reason) => {
                    bad_rows.push(BadRow {
                        file,
                        row: number,
                        reason: format!("`{name}`: {reason}"),
                    });
                    continue 'rows;
                }
            }
        }
        rows.push((number, cells));
    }
    Ok((rows, present))
}

fn load(settings: &QcSettings) -> anyhow::Result<Data> {
    let mut bad_rows = Vec::new();
    let (rows, present) = read_rows(
        &settings.annotations,
        "annotations",
        &["item", "annotator", "label"],
        &["seconds"],
        &mut bad_rows,
    )?;
    let has_seconds = present[0];
    let mut raw: Vec<(String, String, String, Option<f64>)> = Vec::with_capacity(rows.len());
    for (number, cells) in rows {
        let mut cells = cells.into_iter();
        let mut next = || cells.next().flatten().unwrap_or_default();
        let (item, annotator, label, seconds) = (next(), next(), next(), next());
        let seconds = if seconds.is_empty() {
            None
        } else {
            match seconds.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => Some(s),
                _ => {
                    bad_rows.push(BadRow {
                        file: "annotations",
                        row: number,
                        reason: format!("`seconds` is not a non-negative number: {seconds:?}"),
                    });
                    continue;
                }
            }
        };
        raw.push((item, annotator, label, seconds));
    }
    if raw.is_empty() {
        anyhow::bail!(
            "the annotations file {} has no usable answers",
            settings.annotations.display()
        );
    }

    let mut gold_raw: Vec<(u64, String, String)> = Vec::new();
    if let Some(path) = &settings.gold {
        let (rows, _) = read_rows(path, "gold", &["item", "label"], &[], &mut bad_rows)?;
        for (number, cells) in rows {
            let mut cells = cells.into_iter().map(Option::unwrap_or_default);
            let item = cells.next().unwrap_or_default();
            let label = cells.next().unwrap_or_default();
            gold_raw.push((number, item, label));
        }
    }

    // Label codes: numeric order when every label (answers and gold) is a number, else text order.
    let names: BTreeSet<&str> = raw
        .iter()
        .map(|r| r.2.as_str())
        .chain(gold_raw.iter().map(|g| g.2.as_str()))
        .collect();
    let mut labels: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let numbers: Option<Vec<f64>> = labels
        .iter()
        .map(|l| l.parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    let values = numbers.map(|_| {
        labels.sort_by(|a, b| {
            let (x, y) = (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap());
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
        labels
            .iter()
            .map(|l| l.parse::<f64>().unwrap())
            .collect::<Vec<_>>()
    });
    let code: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();

    let mut items = Vec::new();
    let mut item_index: HashMap<String, usize> = HashMap::new();
    let mut annotators = Vec::new();
    let mut annotator_index: HashMap<String, usize> = HashMap::new();
    let mut answers = Vec::with_capacity(raw.len());
    let mut seconds = Vec::with_capacity(if has_seconds { raw.len() } else { 0 });
    let mut seen: std::collections::HashSet<(usize, usize)> = Default::default();
    let mut repeats = 0;
    for (item, annotator, label, secs) in &raw {
        let i = *item_index.entry(item.clone()).or_insert_with(|| {
            items.push(item.clone());
            items.len() - 1
        });
        let a = *annotator_index.entry(annotator.clone()).or_insert_with(|| {
            annotators.push(annotator.clone());
            annotators.len() - 1
        });
        if !seen.insert((i, a)) {
            repeats += 1;
        }
        answers.push(Answer::new(i, a, code[label.as_str()]));
        if has_seconds {
            seconds.push(*secs);
        }
    }

    let mut gold = Vec::new();
    let mut gold_unmatched = 0;
    if settings.gold.is_some() {
        gold = vec![None; items.len()];
        for (number, item, label) in &gold_raw {
            let Some(&i) = item_index.get(item) else {
                gold_unmatched += 1;
                continue;
            };
            let c = code[label.as_str()];
            match gold[i] {
                Some(previous) if previous != c => bad_rows.push(BadRow {
                    file: "gold",
                    row: *number,
                    reason: format!(
                        "item {item:?} already has the gold label {:?}",
                        labels[previous]
                    ),
                }),
                _ => gold[i] = Some(c),
            }
        }
    }

    Ok(Data {
        items,
        annotators,
        labels,
        values,
        answers,
        seconds,
        gold,
        gold_unmatched,
        repeats,
        bad_rows,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics

/// One pair of annotators: `None` when they share no item, else (kappa where defined, shared items).
type PairCell = Option<(Option<f64>, usize)>;

/// Cohen's kappa between annotators.
enum Pairwise {
    /// Few annotators: every pair, `(kappa, shared items)`; kappa is `None` where undefined.
    Matrix(Vec<Vec<PairCell>>),
    /// Many annotators: a summary over pairs sharing at least `min_shared` items.
    Summary {
        min_shared: usize,
        pairs: usize,
        mean: f64,
        median: f64,
        /// (kappa, annotator a, annotator b, shared items) of the lowest pair.
        min: (f64, usize, usize, usize),
        max: (f64, usize, usize, usize),
    },
    /// No pair shares enough items.
    None { min_shared: usize },
}

/// A calibration curve of one label source on gold items.
struct Confidence {
    name: &'static str,
    bins: Vec<ReliabilityBin>,
    ece: f64,
    /// (coverage, accuracy among the most confident `coverage` share).
    coverage: Vec<(f64, f64)>,
    items: usize,
}

/// The audit of the majority labels on gold items.
struct Audit {
    errors: u64,
    sampled: u64,
    interval: Interval,
    decision: AuditDecision,
}

/// `right / total`, shown as "685/735 = 93.2%".
#[derive(Clone, Copy)]
struct Share {
    right: usize,
    total: usize,
}

impl Share {
    fn rate(self) -> f64 {
        if self.total == 0 {
            f64::NAN
        } else {
            self.right as f64 / self.total as f64
        }
    }

    fn show(self) -> String {
        if self.total == 0 {
            "n/a".into()
        } else {
            format!("{}/{} = {}", self.right, self.total, pct(self.rate()))
        }
    }
}

struct GoldComparison {
    /// Items with gold and answers.
    gold_items: usize,
    /// Majority vote on gold items it labels (ties left out).
    mv_untied: Share,
    /// Majority vote on all gold items, ties counted wrong.
    mv_all: Share,
    /// Gold items where majority vote tied.
    ties: usize,
    /// Dawid-Skene on all gold items.
    ds: Share,
}

struct Qc {
    percent: Result<f64, String>,
    fleiss: Result<f64, String>,
    alpha: Result<f64, String>,
    pairwise: Pairwise,
    votes: Vec<Vote>,
    ties: usize,
    ds: DawidSkene,
    /// Items where majority vote gives a label, and how many of those Dawid-Skene labels the same.
    mv_ds: Share,
    gold: Option<GoldComparison>,
    annotators: AnnotatorReport,
    audit: Option<Audit>,
    zero_defect: u64,
    confidence: Vec<Confidence>,
}

fn compute(settings: &QcSettings, d: &Data) -> anyhow::Result<Qc> {
    let (n_items, n_annotators, k) = (d.items.len(), d.annotators.len(), d.labels.len());
    let level = settings.level.level();
    if settings.level != LevelArg::Nominal && d.values.is_none() {
        return Err(Hinted {
            message: format!(
                "--level {} needs numeric labels, and some labels are not numbers",
                settings.level.name()
            ),
            hint: "use --level nominal for categories without an order".into(),
        }
        .into());
    }

    // The rating matrix holds each annotator's first answer on an item.
    let mut matrix = RatingMatrix::new(n_items, n_annotators, k)?;
    if let Some(values) = &d.values {
        matrix = matrix.with_values(values.clone())?;
    }
    let mut by_item: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n_items];
    for a in &d.answers {
        let list = &mut by_item[a.item];
        if !list.iter().any(|&(j, _)| j == a.annotator) {
            list.push((a.annotator, a.label));
            matrix.set(a.item, a.annotator, Some(a.label))?;
        }
    }
    let shown = |r: assay_quality::Result<f64>| r.map_err(|e| e.to_string());
    let percent = shown(percent_agreement(&matrix));
    let fleiss = shown(fleiss_kappa(&matrix));
    let alpha = shown(krippendorff_alpha(&matrix, level));

    let options = AnnotatorOptions::default();
    let pairwise = pairwise_kappas(&by_item, n_annotators, k, options.min_shared_items);

    let votes = majority_vote(&d.answers, n_items, k, TiePolicy::Report)?;
    let ties = votes
        .iter()
        .filter(|v| v.label.is_none() && v.answers > 0)
        .count();
    let ds = dawid_skene(
        &d.answers,
        n_items,
        n_annotators,
        k,
        &DawidSkeneOptions::default(),
    )?;
    let mut mv_ds = Share { right: 0, total: 0 };
    for (v, l) in votes.iter().zip(&ds.labels) {
        if let Some(v) = v.label {
            mv_ds.total += 1;
            mv_ds.right += usize::from(*l == Some(v));
        }
    }

    let input = AnnotatorInput {
        gold: &d.gold,
        seconds: &d.seconds,
        dawid_skene: Some(&ds),
        ..AnnotatorInput::new(&d.answers, n_items, n_annotators, k)
    };
    let annotators = score_annotators(&input, &options)?;

    let zero_defect = zero_defect_sample_size(settings.confidence, settings.target_error)?;
    let mut gold = None;
    let mut audit = None;
    let mut confidence = Vec::new();
    if !d.gold.is_empty() {
        let mut cmp = GoldComparison {
            gold_items: 0,
            mv_untied: Share { right: 0, total: 0 },
            mv_all: Share { right: 0, total: 0 },
            ties: 0,
            ds: Share { right: 0, total: 0 },
        };
        // (confidence, correct) on gold items, for Dawid-Skene (posterior max) and majority vote (vote share).
        let (mut ds_conf, mut ds_ok) = (Vec::new(), Vec::new());
        let (mut mv_conf, mut mv_ok) = (Vec::new(), Vec::new());
        for (i, g) in d.gold.iter().enumerate() {
            let Some(g) = *g else { continue };
            cmp.gold_items += 1;
            let vote = &votes[i];
            cmp.mv_all.total += 1;
            match vote.label {
                Some(l) => {
                    cmp.mv_untied.total += 1;
                    let ok = l == g;
                    cmp.mv_untied.right += usize::from(ok);
                    cmp.mv_all.right += usize::from(ok);
                    mv_conf.push(vote.support);
                    mv_ok.push(ok);
                }
                None => cmp.ties += 1,
            }
            cmp.ds.total += 1;
            if let Some(l) = ds.labels[i] {
                let ok = l == g;
                cmp.ds.right += usize::from(ok);
                ds_conf.push(ds.posterior(i)[l]);
                ds_ok.push(ok);
            }
        }
        for (name, conf, ok) in [
            ("Dawid-Skene", &ds_conf, &ds_ok),
            ("majority vote", &mv_conf, &mv_ok),
        ] {
            if conf.is_empty() {
                continue;
            }
            let coverage = (1..=20)
                .map(|c| {
                    let c = c as f64 / 20.0;
                    Ok((c, accuracy_at_coverage(conf, ok, c)?))
                })
                .collect::<assay_quality::Result<Vec<_>>>()?;
            confidence.push(Confidence {
                name,
                bins: reliability_bins(conf, ok, RELIABILITY_BINS)?,
                ece: expected_calibration_error(conf, ok, DEFAULT_ECE_BINS)?,
                coverage,
                items: conf.len(),
            });
        }
        if cmp.mv_untied.total > 0 {
            let sampled = cmp.mv_untied.total as u64;
            let errors = (cmp.mv_untied.total - cmp.mv_untied.right) as u64;
            audit = Some(Audit {
                errors,
                sampled,
                interval: wilson_interval(errors, sampled, 0.95)?,
                decision: audit_decision(
                    errors,
                    sampled,
                    settings.target_error,
                    settings.confidence,
                )?,
            });
        }
        gold = Some(cmp);
    }

    Ok(Qc {
        percent,
        fleiss,
        alpha,
        pairwise,
        votes,
        ties,
        ds,
        mv_ds,
        gold,
        annotators,
        audit,
        zero_defect,
        confidence,
    })
}

/// Cohen's kappa of every pair of annotators that share items, from each annotator's first answer per item.
fn pairwise_kappas(
    by_item: &[Vec<(usize, usize)>],
    annotators: usize,
    classes: usize,
    min_shared: usize,
) -> Pairwise {
    let mut tables: HashMap<(usize, usize), ContingencyTable> = HashMap::new();
    for list in by_item {
        for (x, &(a, la)) in list.iter().enumerate() {
            for &(b, lb) in &list[x + 1..] {
                let (key, (p, q)) = if a < b {
                    ((a, b), (la, lb))
                } else {
                    ((b, a), (lb, la))
                };
                let table = tables
                    .entry(key)
                    .or_insert_with(|| ContingencyTable::zeros(classes));
                // Codes come from the label table, so they are below `classes`.
                let _ = table.add(p, q);
            }
        }
    }
    let kappa = |t: &ContingencyTable| cohen_kappa(t, KappaWeights::Unweighted).ok();
    if annotators <= PAIRWISE_TABLE_MAX {
        let mut m = vec![vec![None; annotators]; annotators];
        for (&(a, b), t) in &tables {
            let cell = Some((kappa(t), t.total() as usize));
            m[a][b] = cell;
            m[b][a] = cell;
        }
        return Pairwise::Matrix(m);
    }
    let mut pairs: Vec<(f64, usize, usize, usize)> = tables
        .iter()
        .filter(|(_, t)| t.total() >= min_shared as f64)
        .filter_map(|(&(a, b), t)| kappa(t).map(|k| (k, a, b, t.total() as usize)))
        .collect();
    if pairs.is_empty() {
        return Pairwise::None { min_shared };
    }
    // Deterministic order (the map's is not): by kappa, then by the pair.
    pairs.sort_by(|x, y| x.0.total_cmp(&y.0).then((x.1, x.2).cmp(&(y.1, y.2))));
    let n = pairs.len();
    let mean = pairs.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        pairs[n / 2].0
    } else {
        (pairs[n / 2 - 1].0 + pairs[n / 2].0) / 2.0
    };
    Pairwise::Summary {
        min_shared,
        pairs: n,
        mean,
        median,
        min: pairs[0],
        max: pairs[n - 1],
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Terminal

pub(super) fn pct(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1}%", 100.0 * x)
    }
}

fn num(r: &Result<f64, String>) -> String {
    match r {
        Ok(x) => format!("{x:.3}"),
        Err(e) => format!("n/a ({e})"),
    }
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "-".into(), f)
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

fn level_title(settings: &QcSettings) -> String {
    format!("Krippendorff's alpha ({})", settings.level.name())
}

fn print_summary(settings: &QcSettings, d: &Data, qc: &Qc) {
    let gold_items = qc.gold.as_ref().map_or(0, |g| g.gold_items);
    println!(
        "{} answers from {} annotators on {} items; labels: {}",
        d.answers.len(),
        d.annotators.len(),
        d.items.len(),
        d.labels.join(", ")
    );
    if settings.gold.is_some() {
        println!(
            "gold labels for {gold_items} of the items ({} gold rows for items without answers)",
            d.gold_unmatched
        );
    }
    if d.repeats > 0 {
        println!(
            "{} repeated answers (same annotator, same item): agreement uses each annotator's first, aggregation all",
            d.repeats
        );
    }
    print_bad_rows(&d.bad_rows);

    println!("\nagreement");
    let mut t = table(&["measure", "value"]);
    t.add_row(["percent agreement".into(), num(&qc.percent)]);
    t.add_row(["Fleiss' kappa".into(), num(&qc.fleiss)]);
    t.add_row([level_title(settings), num(&qc.alpha)]);
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
            t.add_row([
                format!(
                    "  lowest: {} / {} ({} items)",
                    d.annotators[min.1], d.annotators[min.2], min.3
                ),
                format!("{:.3}", min.0),
            ]);
            t.add_row([
                format!(
                    "  highest: {} / {} ({} items)",
                    d.annotators[max.1], d.annotators[max.2], max.3
                ),
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
    println!("{t}");
    if let Pairwise::Matrix(m) = &qc.pairwise {
        if d.annotators.len() >= 2 {
            println!("Cohen's kappa between annotators (shared items)");
            let mut header = vec![""];
            header.extend(d.annotators.iter().map(String::as_str));
            let mut t = table(&header);
            for (a, row) in m.iter().enumerate() {
                let mut cells = vec![d.annotators[a].clone()];
                for (b, cell) in row.iter().enumerate() {
                    cells.push(match cell {
                        _ if a == b => "-".into(),
                        None => "no shared items".into(),
                        Some((Some(k), n)) => format!("{k:.3} ({n})"),
                        Some((None, n)) => format!("n/a ({n})"),
                    });
                }
                t.add_row(cells);
            }
            right_align(&mut t, 1);
            println!("{t}");
        }
    }

    println!("\naggregation");
    let labelled = qc.votes.iter().filter(|v| v.label.is_some()).count();
    let ds_labelled = qc.ds.labels.iter().filter(|l| l.is_some()).count();
    let mut t = table(&["", "majority vote", "Dawid-Skene"]);
    t.add_row([
        "items labelled".into(),
        format!("{labelled} ({} ties)", qc.ties),
        format!(
            "{ds_labelled} ({} EM iterations{})",
            qc.ds.iterations,
            if qc.ds.converged {
                ""
            } else {
                ", not converged"
            }
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
    println!("{t}");
    println!(
        "majority vote and Dawid-Skene give the same label on {} of the majority-labelled items",
        qc.mv_ds.show()
    );
    for c in &qc.confidence {
        println!(
            "{} confidence on {} gold items: ECE ({DEFAULT_ECE_BINS} bins) {:.3}; accuracy at 50% coverage {}",
            c.name,
            c.items,
            c.ece,
            pct(c.coverage[9].1)
        );
    }

    println!("\nannotators");
    let r = &qc.annotators;
    let flagged = r.scores.iter().filter(|s| s.flagged).count();
    match (r.flag_basis, r.median, r.cutoff) {
        (Some(basis), Some(median), Some(cutoff)) => println!(
            "{flagged} of {} flagged: {} accuracy below {cutoff:.3} (median {median:.3}, MAD {:.3})",
            d.annotators.len(),
            match basis {
                FlagBasis::Gold => "gold",
                FlagBasis::DawidSkene => "Dawid-Skene",
            },
            r.mad.unwrap_or(0.0)
        ),
        _ => println!(
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
        let s = &r.scores[j];
        t.add_row(annotator_cells(d, s));
    }
    right_align(&mut t, 1);
    println!("{t}");
    if order.len() > settings.max_annotators {
        println!(
            "... and {} more annotators{}",
            order.len() - settings.max_annotators,
            if settings.html.is_some() {
                " (the HTML report lists all)"
            } else {
                " (--max-annotators shows more)"
            }
        );
    }

    println!("\naudit");
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
            pct(settings.target_error),
            100.0 * settings.confidence
        ),
        format!("{} items", qc.zero_defect),
    ]);
    right_align(&mut t, 1);
    println!("{t}");
}

fn print_bad_rows(bad: &[BadRow]) {
    for file in ["annotations", "gold"] {
        let rows: Vec<&BadRow> = bad.iter().filter(|b| b.file == file).collect();
        if rows.is_empty() {
            continue;
        }
        println!("skipped {} bad rows in the {file} file:", rows.len());
        for b in rows.iter().take(ROW_ERRORS_SHOWN) {
            println!("  row {}: {}", b.row, b.reason);
        }
        if rows.len() > ROW_ERRORS_SHOWN {
            println!("  ... and {} more", rows.len() - ROW_ERRORS_SHOWN);
        }
    }
}

/// Annotators flagged first, then by answers (most first), then by id.
fn annotator_order(qc: &Qc) -> Vec<usize> {
    let scores = &qc.annotators.scores;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&scores[a], &scores[b]);
        y.flagged
            .cmp(&x.flagged)
            .then(y.answers.cmp(&x.answers))
            .then(a.cmp(&b))
    });
    order
}

fn annotator_cells(d: &Data, s: &assay_quality::annotators::AnnotatorScore) -> Vec<String> {
    vec![
        d.annotators[s.annotator].clone(),
        s.answers.to_string(),
        match s.gold_accuracy {
            Some(a) => format!("{} ({})", pct(a), s.gold_answers),
            None => "-".into(),
        },
        opt(s.peer_kappa, |k| format!("{k:.3}")),
        opt(s.dawid_skene_accuracy, pct),
        opt(s.mean_seconds, |x| format!("{x:.1}")),
        if s.flagged { "FLAGGED" } else { "" }.into(),
    ]
}

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
// HTML

fn kappa_tone(x: &Result<f64, String>) -> Tone {
    match x {
        Ok(k) if *k >= 0.6 => Tone::Good,
        Ok(k) if *k >= 0.4 => Tone::Neutral,
        Ok(_) => Tone::Warn,
        Err(_) => Tone::Neutral,
    }
}

fn value_or_na(x: &Result<f64, String>) -> (String, String) {
    match x {
        Ok(v) => (format!("{v:.3}"), String::new()),
        Err(e) => ("n/a".into(), e.clone()),
    }
}

fn confusion(
    d: &Data,
    pairs: impl Iterator<Item = (usize, usize)>,
    rows: &str,
    columns: &str,
) -> svg::Confusion {
    let k = d.labels.len();
    let mut counts = vec![vec![0u64; k]; k];
    for (r, c) in pairs {
        counts[r][c] += 1;
    }
    svg::Confusion {
        labels: d.labels.clone(),
        counts,
        row_title: rows.into(),
        column_title: columns.into(),
    }
}

fn html_report(settings: &QcSettings, d: &Data, qc: &Qc) -> Report {
    let mut report = Report::new("assay qc");
    report.fact("annotations", settings.annotations.display().to_string());
    if let Some(g) = &settings.gold {
        report.fact("gold", g.display().to_string());
    }
    report.fact("alpha level", settings.level.name());
    report.fact(
        "audit target",
        format!(
            "error < {} at {:.0}% confidence",
            pct(settings.target_error),
            100.0 * settings.confidence
        ),
    );
    report.fact("assay", env!("CARGO_PKG_VERSION"));

    // Overview and agreement.
    let mut s = Section::new("Agreement");
    let mut cards = vec![
        Card::new("items", d.items.len().to_string()).detail(match &qc.gold {
            Some(g) => format!("{} with gold", g.gold_items),
            None => "no gold labels".into(),
        }),
        Card::new("annotators", d.annotators.len().to_string()),
        Card::new("answers", d.answers.len().to_string()).detail(format!(
            "{:.1} per item; labels {}",
            d.answers.len() as f64 / d.items.len() as f64,
            d.labels.join(", ")
        )),
    ];
    for (label, x) in [
        ("percent agreement", &qc.percent),
        ("Fleiss' kappa", &qc.fleiss),
        (&*level_title(settings), &qc.alpha),
    ] {
        let (value, detail) = value_or_na(x);
        let tone = if label == "percent agreement" {
            Tone::Neutral
        } else {
            kappa_tone(x)
        };
        cards.push(Card::new(label, value).detail(detail).tone(tone));
    }
    match &qc.pairwise {
        Pairwise::Summary {
            min_shared,
            pairs,
            mean,
            min,
            ..
        } => cards.push(
            Card::new("pairwise Cohen's kappa", format!("{mean:.3}")).detail(format!(
                "mean of {pairs} pairs sharing >= {min_shared} items; lowest {:.3}",
                min.0
            )),
        ),
        Pairwise::None { min_shared } => cards.push(
            Card::new("pairwise Cohen's kappa", "n/a")
                .detail(format!("no pair shares {min_shared} items")),
        ),
        Pairwise::Matrix(_) => {}
    }
    s.push(Block::Cards(cards));
    if let Pairwise::Matrix(m) = &qc.pairwise {
        if d.annotators.len() >= 2 {
            s.push(Block::Text(
                "Cohen's kappa between each pair of annotators, on the items both answered (shared items in \
                 brackets)."
                    .into(),
            ));
            let mut header = vec![String::new()];
            header.extend(d.annotators.iter().cloned());
            let rows = m
                .iter()
                .enumerate()
                .map(|(a, row)| {
                    let mut cells = vec![d.annotators[a].clone()];
                    cells.extend(row.iter().enumerate().map(|(b, cell)| match cell {
                        _ if a == b => "-".into(),
                        None => "-".into(),
                        Some((Some(k), n)) => format!("{k:.3} ({n})"),
                        Some((None, n)) => format!("n/a ({n})"),
                    }));
                    cells
                })
                .collect();
            s.push(Block::Table(HtmlTable {
                header,
                rows,
                numeric: (1..=d.annotators.len()).collect(),
                highlight: Vec::new(),
            }));
        }
    }
    report.push(s);

    // Aggregation.
    let mut s = Section::new("Majority vote and Dawid-Skene");
    let labelled = qc.votes.iter().filter(|v| v.label.is_some()).count();
    let mut cards = Vec::new();
    match &qc.gold {
        Some(g) => {
            cards.push(
                Card::new("majority vote vs gold", pct(g.mv_untied.rate())).detail(format!(
                    "{}/{} labelled items; {} ties; {} over all gold items",
                    g.mv_untied.right,
                    g.mv_untied.total,
                    g.ties,
                    pct(g.mv_all.rate())
                )),
            );
            cards.push(
                Card::new("Dawid-Skene vs gold", pct(g.ds.rate())).detail(format!(
                    "{}/{} gold items; {} EM iterations",
                    g.ds.right, g.ds.total, qc.ds.iterations
                )),
            );
        }
        None => cards.push(
            Card::new("majority-labelled items", labelled.to_string())
                .detail(format!("{} ties", qc.ties)),
        ),
    }
    cards.push(
        Card::new("majority vote = Dawid-Skene", pct(qc.mv_ds.rate())).detail(format!(
            "{}/{} majority-labelled items",
            qc.mv_ds.right, qc.mv_ds.total
        )),
    );
    s.push(Block::Cards(cards));
    let mut figures = Vec::new();
    if !d.gold.is_empty() {
        let mv = confusion(
            d,
            d.gold
                .iter()
                .zip(&qc.votes)
                .filter_map(|(g, v)| Some(((*g)?, v.label?))),
            "gold",
            "majority vote",
        );
        figures.push(Block::Figure {
            svg: svg::confusion_matrix(&mv),
            caption: format!(
                "Majority vote against gold on the {} gold items it labels (ties left out). Rows are gold; \
                 shading is the share of the row.",
                qc.gold.as_ref().map_or(0, |g| g.mv_untied.total)
            ),
        });
        let ds = confusion(
            d,
            d.gold
                .iter()
                .zip(&qc.ds.labels)
                .filter_map(|(g, l)| Some(((*g)?, (*l)?))),
            "gold",
            "Dawid-Skene",
        );
        figures.push(Block::Figure {
            svg: svg::confusion_matrix(&ds),
            caption: "Dawid-Skene against gold on all gold items.".into(),
        });
    } else {
        let m = confusion(
            d,
            qc.votes
                .iter()
                .zip(&qc.ds.labels)
                .filter_map(|(v, l)| Some((v.label?, (*l)?))),
            "majority vote",
            "Dawid-Skene",
        );
        figures.push(Block::Figure {
            svg: svg::confusion_matrix(&m),
            caption: "Dawid-Skene against majority vote on the items majority vote labels (no gold given)."
                .into(),
        });
    }
    s.push(Block::Row(figures));
    report.push(s);

    // Confidence.
    if !qc.confidence.is_empty() {
        let mut s = Section::new("Confidence against gold");
        let reliability = svg::LineChart {
            series: qc
                .confidence
                .iter()
                .map(|c| svg::Series {
                    name: c.name.into(),
                    points: c
                        .bins
                        .iter()
                        .filter(|b| b.count > 0)
                        .map(|b| svg::Point {
                            x: b.mean_confidence,
                            y: b.accuracy,
                            weight: b.count as f64,
                        })
                        .collect(),
                })
                .collect(),
            x_label: "confidence".into(),
            y_label: "accuracy".into(),
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            diagonal: true,
            weight_label: "items".into(),
            markers_only: true,
        };
        let lowest = qc
            .confidence
            .iter()
            .flat_map(|c| c.coverage.iter().map(|p| p.1))
            .fold(1.0, f64::min);
        let coverage = svg::LineChart {
            series: qc
                .confidence
                .iter()
                .map(|c| svg::Series {
                    name: c.name.into(),
                    points: c
                        .coverage
                        .iter()
                        .map(|&(x, y)| svg::Point { x, y, weight: 1.0 })
                        .collect(),
                })
                .collect(),
            x_label: "coverage (share of items kept, most confident first)".into(),
            y_label: "accuracy".into(),
            x_range: (0.0, 1.0),
            y_range: (((lowest - 0.05) * 10.0).floor() / 10.0, 1.0),
            diagonal: false,
            weight_label: String::new(),
            markers_only: false,
        };
        s.push(Block::Cards(
            qc.confidence
                .iter()
                .map(|c| {
                    Card::new(format!("{} ECE", c.name), format!("{:.3}", c.ece)).detail(format!(
                        "{DEFAULT_ECE_BINS} bins over {} gold items; confidence is {}",
                        c.items,
                        if c.name == "Dawid-Skene" {
                            "the posterior of the chosen label"
                        } else {
                            "the share of votes for the winner"
                        }
                    ))
                })
                .collect(),
        ));
        s.push(Block::Row(vec![
            Block::Figure {
                svg: svg::line_chart(&reliability),
                caption: format!(
                    "Reliability diagram: accuracy against mean confidence in {RELIABILITY_BINS} equal-width bins; \
                     marker area follows the number of items. Points under the diagonal are overconfident."
                ),
            },
            Block::Figure {
                svg: svg::line_chart(&coverage),
                caption: "Accuracy against coverage: keeping only the most confident labels.".into(),
            },
        ]));
        report.push(s);
    }

    // Annotators.
    let mut s = Section::new("Annotators");
    let r = &qc.annotators;
    let basis = r.flag_basis.unwrap_or(if d.gold.is_empty() {
        FlagBasis::DawidSkene
    } else {
        FlagBasis::Gold
    });
    let accuracy_of = |s: &assay_quality::annotators::AnnotatorScore| match basis {
        FlagBasis::Gold => s.gold_accuracy,
        FlagBasis::DawidSkene => s.dawid_skene_accuracy,
    };
    let basis_name = match basis {
        FlagBasis::Gold => "accuracy on gold items",
        FlagBasis::DawidSkene => "Dawid-Skene estimated accuracy",
    };
    let flagged = r.scores.iter().filter(|s| s.flagged).count();
    s.push(Block::Text(match (r.flag_basis, r.median, r.cutoff) {
        (Some(_), Some(median), Some(cutoff)) => format!(
            "{flagged} of {} annotators flagged: {basis_name} below {cutoff:.3}, i.e. more than {} median absolute \
             deviations (at least {}) under the median {median:.3}.",
            d.annotators.len(),
            AnnotatorOptions::default().mad_threshold,
            AnnotatorOptions::default().min_gap
        ),
        _ => "Nobody flagged: fewer than three annotators have enough answers to judge.".into(),
    }));
    let mut bars: Vec<(f64, usize)> = r
        .scores
        .iter()
        .filter_map(|s| accuracy_of(s).map(|a| (a, s.annotator)))
        .collect();
    bars.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    if !bars.is_empty() {
        let lowest = bars.last().map_or(0.0, |b| b.0);
        let mut references = Vec::new();
        if let Some(m) = r.median {
            references.push(svg::Reference {
                label: format!("median {m:.3}"),
                value: m,
            });
        }
        if let Some(c) = r.cutoff {
            references.push(svg::Reference {
                label: format!("flag cutoff {c:.3}"),
                value: c,
            });
        }
        let chart = svg::BarChart {
            bars: bars
                .iter()
                .map(|&(a, j)| {
                    let sc = &r.scores[j];
                    svg::Bar {
                        label: d.annotators[j].clone(),
                        value: a,
                        highlight: sc.flagged,
                        note: format!(
                            "{} answers{}",
                            sc.answers,
                            if basis == FlagBasis::Gold {
                                format!(", {} on gold", sc.gold_answers)
                            } else {
                                String::new()
                            }
                        ),
                    }
                })
                .collect(),
            y_label: basis_name.into(),
            y_range: Some((if lowest >= 0.5 { 0.5 } else { 0.0 }, 1.0)),
            references,
            highlight_label: "flagged".into(),
        };
        s.push(Block::Figure {
            svg: svg::bar_chart(&chart),
            caption: format!(
                "Each annotator's {basis_name}, best first; flagged annotators in red. Hover a bar for its \
                 annotator and answer count."
            ),
        });
    }
    let order = annotator_order(qc);
    s.push(Block::Table(HtmlTable {
        header: [
            "annotator",
            "answers",
            "gold accuracy (gold answers)",
            "peer kappa",
            "DS accuracy",
            "mean seconds",
            "flag",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect(),
        rows: order
            .iter()
            .map(|&j| annotator_cells(d, &r.scores[j]))
            .collect(),
        numeric: vec![1, 2, 3, 4, 5],
        highlight: order
            .iter()
            .enumerate()
            .filter(|(_, &j)| r.scores[j].flagged)
            .map(|(i, _)| i)
            .collect(),
    }));
    report.push(s);

    // Audit.
    let mut s = Section::new("Audit");
    let mut cards = Vec::new();
    match &qc.audit {
        Some(a) => {
            cards.push(
                Card::new("majority-label error rate", pct(a.decision.observed_rate))
                    .detail(format!("{} of {} gold items", a.errors, a.sampled)),
            );
            cards.push(
                Card::new(
                    "Wilson 95% interval",
                    format!("{} – {}", pct(a.interval.lower), pct(a.interval.upper)),
                )
                .detail("two-sided, of the error rate"),
            );
            cards.push(
                Card::new(
                    "verdict",
                    if a.decision.passed { "PASS" } else { "FAIL" },
                )
                .detail(format!(
                    "one-sided {:.0}% upper bound {} vs target {}",
                    100.0 * a.decision.confidence,
                    pct(a.decision.upper_bound),
                    pct(a.decision.target)
                ))
                .tone(if a.decision.passed {
                    Tone::Good
                } else {
                    Tone::Bad
                }),
            );
        }
        None => s.push(Block::Text(
            "No gold labels were given, so the majority labels cannot be audited here; check a random sample of \
             the size below by hand."
                .into(),
        )),
    }
    cards.push(
        Card::new("zero-defect sample", format!("{} items", qc.zero_defect)).detail(format!(
            "with no error among them, error < {} at {:.0}% confidence",
            pct(settings.target_error),
            100.0 * settings.confidence
        )),
    );
    s.push(Block::Cards(cards));
    report.push(s);

    if !d.bad_rows.is_empty() || d.repeats > 0 || d.gold_unmatched > 0 {
        let mut s = Section::new("Input problems");
        if d.repeats > 0 {
            s.push(Block::Text(format!(
                "{} repeated answers (same annotator, same item): agreement uses each annotator's first, \
                 aggregation counts all.",
                d.repeats
            )));
        }
        if d.gold_unmatched > 0 {
            s.push(Block::Text(format!(
                "{} gold rows name items without answers and were left out.",
                d.gold_unmatched
            )));
        }
        if !d.bad_rows.is_empty() {
            s.push(Block::Table(HtmlTable {
                header: vec!["file".into(), "row".into(), "reason".into()],
                rows: d
                    .bad_rows
                    .iter()
                    .map(|b| vec![b.file.into(), b.row.to_string(), b.reason.clone()])
                    .collect(),
                numeric: vec![1],
                highlight: Vec::new(),
            }));
        }
        report.push(s);
    }
    report
}
