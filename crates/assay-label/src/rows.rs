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
