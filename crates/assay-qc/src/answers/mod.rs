//! QC over loose answer files (`assay qc --annotations FILE`): agreement among annotators, majority vote against
//! Dawid-Skene, per-annotator scores and an audit of the majority labels against gold.
//!
//! [`load`] reads the files and indexes items, annotators and labels densely; [`compute`] runs the statistics
//! once; the terminal tables and [`html_report`] lay out the same [`Qc`] value.

mod html;
mod stats;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use assay_quality::aggregation::Answer;
use assay_quality::agreement::Level;

use crate::read::read_rows;
use crate::{BadRow, Error, InputFile, Result};

pub use html::html_report;
pub use stats::{
    alpha_title, annotator_cells, annotator_order, compute, Audit, Confidence, GoldComparison,
    PairCell, Pairwise, Qc, Share,
};

/// What QC over answer files needs, checked by the caller.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Answers, one row per answer: `item`, `annotator`, `label`, optionally `seconds`.
    pub annotations: PathBuf,
    /// Gold labels: `item`, `label`.
    pub gold: Option<PathBuf>,
    /// Level of measurement for Krippendorff's alpha.
    pub level: Level,
    /// The error rate the majority labels must stay under to pass the audit, in (0, 1).
    pub target_error: f64,
    /// Confidence of the audit's upper bound and of the zero-defect sample size, in (0, 1).
    pub confidence: f64,
}

/// The answers, indexed densely.
#[derive(Debug, Clone)]
pub struct Data {
    /// Item ids by index, in order of first appearance.
    pub items: Vec<String>,
    /// Annotator ids by index, in order of first appearance.
    pub annotators: Vec<String>,
    /// Label names by code: numeric order when every label is a number, else text order.
    pub labels: Vec<String>,
    /// The labels' numeric values when every label is a number.
    pub values: Option<Vec<f64>>,
    /// Every answer, coded.
    pub answers: Vec<Answer>,
    /// Seconds per answer (parallel to `answers`); empty without a `seconds` column.
    pub seconds: Vec<Option<f64>>,
    /// Gold label per item; empty without a gold file.
    pub gold: Vec<Option<usize>>,
    /// Gold rows whose item has no answers.
    pub gold_unmatched: usize,
    /// Answers by an annotator on an item they had already answered (agreement uses the first one).
    pub repeats: usize,
    /// Rows left out of either file.
    pub bad_rows: Vec<BadRow>,
}

/// One usable row of the annotations file.
struct RawAnswer {
    item: String,
    annotator: String,
    label: String,
    seconds: Option<f64>,
}

/// One row of the gold file: its row number, item and label.
struct RawGold {
    row: u64,
    item: String,
    label: String,
}

/// Reads the annotations and gold files and indexes them.
pub fn load(settings: &Settings) -> Result<Data> {
    let mut bad_rows = Vec::new();
    let (raw, has_seconds) = read_answers(settings, &mut bad_rows)?;
    let gold_raw = match &settings.gold {
        Some(path) => read_gold(path, &mut bad_rows)?,
        None => Vec::new(),
    };
    let (labels, values) = label_codes(&raw, &gold_raw);
    let code: HashMap<&str, usize> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let mut data = Data {
        items: Vec::new(),
        annotators: Vec::new(),
        labels: Vec::new(),
        values,
        answers: Vec::with_capacity(raw.len()),
        seconds: Vec::new(),
        gold: Vec::new(),
        gold_unmatched: 0,
        repeats: 0,
        bad_rows: Vec::new(),
    };
    let item_index = index_answers(&mut data, &raw, has_seconds, &code);
    if settings.gold.is_some() {
        match_gold(
            &mut data,
            &gold_raw,
            &item_index,
            &code,
            &labels,
            &mut bad_rows,
        );
    }
    data.labels = labels;
    data.bad_rows = bad_rows;
    Ok(data)
}

/// The usable rows of the annotations file, and whether it has a `seconds` column.
fn read_answers(settings: &Settings, bad_rows: &mut Vec<BadRow>) -> Result<(Vec<RawAnswer>, bool)> {
    let file = InputFile::Annotations;
    let (rows, present) = read_rows(
        &settings.annotations,
        file,
        &["item", "annotator", "label"],
        &["seconds"],
        bad_rows,
    )?;
    let mut raw = Vec::with_capacity(rows.len());
    for (row, cells) in rows {
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
                        file,
                        row,
                        reason: format!("`seconds` is not a non-negative number: {seconds:?}"),
                    });
                    continue;
                }
            }
        };
        raw.push(RawAnswer {
            item,
            annotator,
            label,
            seconds,
        });
    }
    if raw.is_empty() {
        return Err(Error::NoAnswers {
            path: settings.annotations.clone(),
        });
    }
    Ok((raw, present[0]))
}

/// The usable rows of the gold file.
fn read_gold(path: &std::path::Path, bad_rows: &mut Vec<BadRow>) -> Result<Vec<RawGold>> {
    let (rows, _) = read_rows(path, InputFile::Gold, &["item", "label"], &[], bad_rows)?;
    Ok(rows
        .into_iter()
        .map(|(row, cells)| {
            let mut cells = cells.into_iter().map(Option::unwrap_or_default);
            let item = cells.next().unwrap_or_default();
            let label = cells.next().unwrap_or_default();
            RawGold { row, item, label }
        })
        .collect())
}

/// Label names by code, and their values when every label (answers and gold) is a number: numeric order then,
/// else text order.
fn label_codes(raw: &[RawAnswer], gold: &[RawGold]) -> (Vec<String>, Option<Vec<f64>>) {
    let names: BTreeSet<&str> = raw
        .iter()
        .map(|r| r.label.as_str())
        .chain(gold.iter().map(|g| g.label.as_str()))
        .collect();
    let mut labels: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let number = |l: &str| l.parse::<f64>().ok().filter(|v| v.is_finite());
    if !labels.iter().all(|l| number(l).is_some()) {
        return (labels, None);
    }
    labels.sort_by(|a, b| {
        let (x, y) = (number(a).unwrap_or(0.0), number(b).unwrap_or(0.0));
        x.total_cmp(&y).then_with(|| a.cmp(b))
    });
    let values = labels.iter().map(|l| number(l).unwrap_or(0.0)).collect();
    (labels, Some(values))
}

/// Fills the items, annotators, answers, seconds and repeats of `data`; returns the item index by id.
fn index_answers(
    data: &mut Data,
    raw: &[RawAnswer],
    has_seconds: bool,
    code: &HashMap<&str, usize>,
) -> HashMap<String, usize> {
    let mut item_index: HashMap<String, usize> = HashMap::new();
    let mut annotator_index: HashMap<String, usize> = HashMap::new();
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    for r in raw {
        let i = *item_index.entry(r.item.clone()).or_insert_with(|| {
            data.items.push(r.item.clone());
            data.items.len() - 1
        });
        let a = *annotator_index
            .entry(r.annotator.clone())
            .or_insert_with(|| {
                data.annotators.push(r.annotator.clone());
                data.annotators.len() - 1
            });
        if !seen.insert((i, a)) {
            data.repeats += 1;
        }
        data.answers.push(Answer::new(i, a, code[r.label.as_str()]));
        if has_seconds {
            data.seconds.push(r.seconds);
        }
    }
    item_index
}

/// Fills the gold labels of `data`, counting gold rows without answers and recording conflicting ones.
fn match_gold(
    data: &mut Data,
    gold_raw: &[RawGold],
    item_index: &HashMap<String, usize>,
    code: &HashMap<&str, usize>,
    labels: &[String],
    bad_rows: &mut Vec<BadRow>,
) {
    data.gold = vec![None; data.items.len()];
    for g in gold_raw {
        let Some(&i) = item_index.get(&g.item) else {
            data.gold_unmatched += 1;
            continue;
        };
        let c = code[g.label.as_str()];
        match data.gold[i] {
            Some(previous) if previous != c => bad_rows.push(BadRow {
                file: InputFile::Gold,
                row: g.row,
                reason: format!(
                    "item {:?} already has the gold label {:?}",
                    g.item, labels[previous]
                ),
            }),
            _ => data.gold[i] = Some(c),
        }
    }
}
