//! What identifies a task's annotations in the store: the prompt (with few-shot examples, including those read
//! from `examples-from`) and the task version's hash. `assay label`, `export`, `eval` and the review server all
//! find a task's labels through [`TaskIdentity::of`].

use assay_core::prompt::ResolvedExample;
use assay_core::task::{ExampleLabel, ExampleSelect};
use assay_core::{PromptBuilder, TaskKind, TaskSpec};
use serde_json::Value;

use crate::{Error, Result};

/// A task's prompt builder and its hashes.
pub struct TaskIdentity {
    /// The prompt builder, with the resolved examples.
    pub prompts: PromptBuilder,
    /// Hash of the prompt layout (system message, examples, templates).
    pub prompt_hash: String,
    /// Hash of the task version: spec + rendered prompt. Runs with the same hash resume each other.
    pub task_hash: String,
    /// `examples-from select = "similar"`: the rows each item's examples are picked from.
    pub example_pool: Option<ExamplePool>,
}

/// The labeled rows `select = "similar"` picks each item's few-shot examples from.
#[derive(Debug, Clone)]
pub struct ExamplePool {
    /// The rows, rendered, with their labels.
    pub examples: Vec<ResolvedExample>,
    /// Their 0-based row numbers in the examples file.
    pub rows: Vec<u64>,
    /// Examples per prompt.
    pub k: usize,
}

impl TaskIdentity {
    /// Resolve the examples (reading `examples-from`) and hash the task version.
    pub fn of(spec: &TaskSpec) -> Result<Self> {
        let (mut examples, file_rows) = load_examples(spec)?;
        let similar = spec
            .examples_from
            .as_ref()
            .is_some_and(|f| f.select == ExampleSelect::Similar);
        let example_pool = similar.then(|| {
            let split = examples.len() - file_rows.len();
            ExamplePool {
                examples: examples.split_off(split),
                rows: file_rows,
                k: spec.examples_from.as_ref().map_or(0, |f| f.limit),
            }
        });
        let prompts = PromptBuilder::new(spec)?.with_examples(&examples);
        let prompt_hash = prompts.prompt_hash();
        // The task's identity covers the spec and the rendered prompt (examples read from files included), and
        // the pool similar examples are picked from.
        let pool_hash = example_pool.as_ref().map_or(String::new(), |pool| {
            let mut text = String::new();
            for e in &pool.examples {
                text.push_str(&format!("{:?}\u{1f}{}\u{1e}", e.labels, e.text));
            }
            assay_core::sha256_hex(text.as_bytes())
        });
        let task_hash = assay_core::sha256_hex(
            format!("{}{}{}", spec.spec_hash(), prompt_hash, pool_hash).as_bytes(),
        );
        Ok(Self {
            prompts,
            prompt_hash,
            task_hash,
            example_pool,
        })
    }
}

/// Few-shot examples: inline ones, then those read from `examples-from` (with their row numbers in the file; with
/// `select = "similar"` the whole file).
fn load_examples(spec: &TaskSpec) -> Result<(Vec<ResolvedExample>, Vec<u64>)> {
    let prompts = PromptBuilder::new(spec)?;
    let multi = spec.kind == TaskKind::MultiLabel;
    let resolve = |names: Vec<String>, place: &str| -> Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                spec.label_index(n).ok_or_else(|| {
                    Error::usage(
                        format!("{place}: example label `{n}` is not one of the task's labels"),
                        format!("labels: {}", spec.label_names().join(", ")),
                    )
                })
            })
            .collect()
    };
    let mut examples = Vec::new();
    for (i, e) in spec.examples.iter().enumerate() {
        let place = format!("example {}", i + 1);
        let text = prompts.render_input(&e.row).map_err(|e| {
            Error::usage(
                format!("{place}: {e}"),
                "fix the example's columns in the task file",
            )
        })?;
        let labels = resolve(e.label.names(multi), &place)?;
        examples.push(ResolvedExample { text, labels });
    }
    let Some(from) = &spec.examples_from else {
        return Ok((examples, Vec::new()));
    };
    let take = match from.select {
        ExampleSelect::First => from.limit,
        ExampleSelect::Similar => usize::MAX,
    };
    let mut rows = Vec::new();
    let reader = assay_io::open_dataset(&from.path)?;
    for row in reader.take(take) {
        let row = row.map_err(|e| {
            Error::usage(
                format!("{}: row {}: {}", from.path.display(), e.index + 1, e.reason),
                "fix the row, or lower `examples-from.limit` to stop before it",
            )
        })?;
        let place = format!("{}: row {}", from.path.display(), row.index + 1);
        let label = row
            .values
            .get(&from.label_column)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::usage(
                    format!("{place} has no text in column `{}`", from.label_column),
                    "set `examples-from.label-column` to the column holding the label",
                )
            })?;
        let text = prompts.render_input(&row.values).map_err(|e| {
            Error::usage(
                format!("{place}: {e}"),
                "the examples file needs the input template's columns",
            )
        })?;
        let labels = resolve(ExampleLabel::One(label.to_string()).names(multi), &place)?;
        examples.push(ResolvedExample { text, labels });
        rows.push(row.index);
    }
    Ok((examples, rows))
}
