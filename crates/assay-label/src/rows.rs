//! Rows of the input as items to score: rendered with the task's templates, with their gold labels. The input is
//! streamed, never held whole: each pass of a run ([`crate::run`]) reads it again in the same order, so chunks
//! formed from it are the same every time.

use std::path::Path;

use assay_core::prompt::{PairText, RatedText};
use assay_core::{PromptBuilder, ScoreRequest, TaskKind, TaskSpec};
use serde_json::{Map, Value};

use crate::Result;

/// A row ready to score.
#[derive(Debug, Clone)]
pub struct Item {
    /// Row number in the input (0-based).
    pub index: u64,
    /// The row's columns.
    pub values: Map<String, Value>,
    /// The rendered input (the context for compare, the response for rate).
    pub text: String,
    /// Compare tasks: the context and both responses.
    pub pair: Option<PairText>,
    /// Rate tasks: the context and the response.
    pub rated: Option<RatedText>,
    /// Gold label indices (one for classify; for pairs 0 = response 1, 1 = response 2, 2 = tie).
    pub gold: Option<Vec<usize>>,
    /// The gold cell holds a value that names none of the task's outcomes.
    pub unknown_gold: bool,
}

impl Item {
    /// Render a row; `Err` is the row's error (a missing column, a template failure).
    pub fn render(
        spec: &TaskSpec,
        prompts: &PromptBuilder,
        index: u64,
        values: Map<String, Value>,
    ) -> std::result::Result<Self, String> {
        let (text, pair, rated) = match spec.kind {
            TaskKind::Compare => {
                let pair = prompts.render_pair(&values).map_err(|e| e.to_string())?;
                (pair.context.clone(), Some(pair), None)
            }
            TaskKind::Rate => {
                let rated = prompts.render_rated(&values).map_err(|e| e.to_string())?;
                (rated.response.clone(), None, Some(rated))
            }
            TaskKind::Classify | TaskKind::MultiLabel => (
                prompts.render_input(&values).map_err(|e| e.to_string())?,
                None,
                None,
            ),
        };
        let cell = spec.gold.as_ref().and_then(|c| values.get(c));
        let gold = spec.gold_indices(cell);
        let unknown_gold = cell.is_some_and(|v| !v.is_null()) && gold.is_none();
        Ok(Self {
            index,
            values,
            text,
            pair,
            rated,
            gold,
            unknown_gold,
        })
    }

    /// The request scoring this item (with its chain-of-thought rationales, if any).
    pub fn request(
        &self,
        prompts: &PromptBuilder,
        rationales: Option<&[String; 2]>,
    ) -> ScoreRequest {
        match (&self.pair, &self.rated, rationales) {
            (Some(pair), _, Some(r)) => prompts.compare_request_with_rationales(pair, r),
            (Some(pair), _, None) => prompts.compare_request(pair),
            (None, Some(rated), _) => prompts.rate_request(rated),
            (None, None, _) => prompts.request(&self.text),
        }
    }
}

/// One row of a pass: an item, or a row error (row number, reason).
pub type Scanned = std::result::Result<Item, (u64, String)>;

/// The rows of `input` (up to `limit`), rendered, in input order.
pub struct ItemStream<'a> {
    reader: assay_io::DatasetReader,
    spec: &'a TaskSpec,
    prompts: &'a PromptBuilder,
    limit: Option<u64>,
    text_groups: Vec<Vec<String>>,
}

impl<'a> ItemStream<'a> {
    /// Open `input` for one pass.
    pub fn open(
        input: &Path,
        spec: &'a TaskSpec,
        prompts: &'a PromptBuilder,
        limit: Option<u64>,
    ) -> Result<Self> {
        Ok(Self {
            reader: assay_io::open_dataset(input)?,
            spec,
            prompts,
            limit,
            text_groups: text_groups(spec),
        })
    }

    /// The reader (columns, format, Arrow schema).
    pub fn reader(&self) -> &assay_io::DatasetReader {
        &self.reader
    }
}

impl Iterator for ItemStream<'_> {
    type Item = Scanned;

    fn next(&mut self) -> Option<Scanned> {
        let row = self.reader.next()?;
        let index = match &row {
            Ok(r) => r.index,
            Err(e) => e.index,
        };
        if self.limit.is_some_and(|limit| index >= limit) {
            return None;
        }
        Some(match row {
            Err(e) => Err((e.index, e.reason)),
            Ok(r) => Item::render(self.spec, self.prompts, r.index, r.values)
                .and_then(|item| match empty_input(&self.text_groups, &item) {
                    Some(reason) => Err(reason),
                    None => Ok(item),
                })
                .map_err(|reason| (r.index, reason)),
        })
    }
}

/// Items only, in blocks of `size`: the chunks a run scores and commits (row errors are skipped, so chunk
/// boundaries depend only on the input and the task).
pub fn blocks(stream: ItemStream<'_>, size: usize) -> impl Iterator<Item = Vec<Item>> + '_ {
    let mut items = stream.filter_map(std::result::Result::ok).peekable();
    std::iter::from_fn(move || {
        let block: Vec<Item> = items.by_ref().take(size).collect();
        (!block.is_empty()).then_some(block)
    })
}

/// The columns the task reads (its templates' and its gold column) that no row of `input` has: an error before
/// any work, naming each such column and listing the columns that exist. The header (CSV, TSV), the schema
/// (Parquet) or the first object's keys (JSONL) decide; for JSONL a column the first object lacks is looked for
/// in every row before it counts as missing.
pub fn check_columns(
    input: &Path,
    spec: &TaskSpec,
    reader: &assay_io::DatasetReader,
) -> Result<()> {
    let mut wanted: Vec<(String, String)> = spec.template_columns();
    if let Some(gold) = &spec.gold {
        wanted.push(("gold".into(), gold.clone()));
    }
    let mut columns: Vec<String> = reader.columns().to_vec();
    if wanted.iter().all(|(_, c)| columns.contains(c)) {
        return Ok(());
    }
    if reader.format() == assay_io::Format::Jsonl {
        let mut seen: std::collections::BTreeSet<String> = columns.iter().cloned().collect();
        for row in assay_io::open_dataset(input)?.flatten() {
            seen.extend(row.values.keys().cloned());
        }
        columns = seen.into_iter().collect();
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(_, c)| !columns.contains(c))
        .map(|(key, c)| format!("`{c}` (named by `{key}`)"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(crate::Error::usage(
        format!(
            "{}: no row has the column{} {}",
            input.display(),
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ),
        format!(
            "the columns of {} are: {}; fix the task's templates or `gold`, or pass another --input",
            input.display(),
            if columns.is_empty() {
                "(none)".to_string()
            } else {
                columns.join(", ")
            }
        ),
    ))
}

/// The groups of columns an item's text is rendered from (the input; each response of a pair or a rating): a row
/// whose columns of one group are all null, missing or blank is a row error, never labeled with a confidence.
fn text_groups(spec: &TaskSpec) -> Vec<Vec<String>> {
    let keys: &[&str] = match spec.kind {
        TaskKind::Compare => &["compare.response-1", "compare.response-2"],
        TaskKind::Rate => &["rate.response", "rate.response-2"],
        TaskKind::Classify | TaskKind::MultiLabel => &["input"],
    };
    let columns = spec.template_columns();
    keys.iter()
        .map(|k| {
            columns
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, c)| c.clone())
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// Why a row's input counts as empty, if it does (see [`text_groups`]); a classify text that renders blank is
/// empty too.
fn empty_input(groups: &[Vec<String>], item: &Item) -> Option<String> {
    let blank = |c: &String| match item.values.get(c) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    };
    if let Some(group) = groups.iter().find(|g| g.iter().all(blank)) {
        let names: Vec<String> = group.iter().map(|c| format!("`{c}`")).collect();
        let verb = if names.len() > 1 { "are" } else { "is" };
        return Some(format!(
            "empty input: {} {verb} null or blank",
            names.join(", ")
        ));
    }
    (item.pair.is_none() && item.rated.is_none() && item.text.trim().is_empty())
        .then(|| "empty input: the text renders blank".to_string())
}
