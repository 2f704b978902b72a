//! What identifies a task's annotations in the store: the prompt (with few-shot examples, including those read
//! from `examples-from`) and the task version's hash. `assay label`, `export`, `eval` and the review server all
//! find a task's labels through [`TaskIdentity::of`].

use assay_core::prompt::ResolvedExample;
use assay_core::task::ExampleLabel;
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
}

impl TaskIdentity {
    /// Resolve the examples (reading `examples-from`) and hash the task version.
    pub fn of(spec: &TaskSpec) -> Result<Self> {
        let examples = load_examples(spec)?;
        let prompts = PromptBuilder::new(spec)?.with_examples(&examples);
        let prompt_hash = prompts.prompt_hash();
        // The task's identity covers the spec and the rendered prompt (examples read from files included).
        let task_hash =
            assay_core::sha256_hex(format!("{}{}", spec.spec_hash(), prompt_hash).as_bytes());
        Ok(Self {
            prompts,
            prompt_hash,
            task_hash,
        })
    }
}

/// Few-shot examples: inline ones, then those read from `examples-from`.
fn load_examples(spec: &TaskSpec) -> Result<Vec<ResolvedExample>> {
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
        return Ok(examples);
    };
    let reader = assay_io::open_dataset(&from.path)?;
    for row in reader.take(from.limit) {
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
    }
    Ok(examples)
}
