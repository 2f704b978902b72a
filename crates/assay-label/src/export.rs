//! Training data from a task's stored labels. Pair tasks: DPO rows (`prompt`, `chosen`, `rejected`: the columns
//! TRL's `DPOTrainer` and Hugging Face preference datasets use) with the judge's soft score, margin, model and
//! provenance, or reward rows with the soft label P(response 1 better) (Lee et al. 2023, section 2.3). Any task:
//! each item's final label, people's plurality where they answered.
//!
//! The judgments come from the store (the raw log-probabilities of both orders), so the tie margin in force is the
//! task file's current one; the pairs' text comes from the stored records rendered with the task's templates.

use std::path::Path;

use assay_core::task::{outcome_name, preference_code, TIE};
use assay_core::{AnnotatorKind, PromptBuilder, TaskKind, TaskSpec};
use assay_store::{LabeledRecord, Store};
use serde_json::{json, Map, Value};

use crate::human::{final_label, human_majority, LabelSource, PeopleAnswers};
use crate::judgment::{judgment_from_scores, PairJudgment};
use crate::{Error, Result, TaskIdentity};

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `prompt`, `chosen`, `rejected` + soft score, margin, judge, provenance (TRL DPOTrainer columns).
    Dpo,
    /// `prompt`, `response_1`, `response_2`, soft label P(response 1 better), label, judge, provenance.
    Reward,
    /// Any task: the record's columns + the final `label`, `label_source`, the machine's `model_label` and
    /// `confidence`, the people's `human_answers`, and `provenance`.
    Labels,
}

impl ExportFormat {
    /// The name used in default file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpo => "dpo",
            Self::Reward => "reward",
            Self::Labels => "labels",
        }
    }
}

/// Which pairs to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct PairFilter {
    /// Keep pairs judged a tie.
    pub keep_ties: bool,
    /// Keep pairs whose two orders disagreed.
    pub keep_inconsistent: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct Exported {
    /// The rows.
    pub rows: Vec<Map<String, Value>>,
    /// Items judged (pairs) or labeled.
    pub judged: usize,
    /// Decided by people.
    pub by_people: usize,
    /// Pairs judged a tie.
    pub ties: usize,
    /// Pairs judged differently in the two orders.
    pub inconsistent: usize,
    /// Pairs whose scores or text could not be read.
    pub unreadable: usize,
}

/// What `export` and `eval` read of a task version.
pub struct TaskLabels {
    /// The task's prompt builder.
    pub prompts: PromptBuilder,
    /// The model's annotations (of one model, of the task's own dataset when it has labels there).
    pub labels: Vec<LabeledRecord>,
    /// People's answers to the task, of any dataset (matched to rows by content: see [`crate::human`]).
    pub human: Vec<LabeledRecord>,
}

/// The task's prompt builder, its model annotations (of one model: `annotator`, required when several labeled
/// it) and people's answers, with their records' data. `task_path` and `store_name` go into hints.
pub fn task_labels(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    spec: &TaskSpec,
    annotator: Option<&str>,
    task_path: &Path,
    store_name: &str,
) -> Result<TaskLabels> {
    let identity = TaskIdentity::of(spec)?;
    let not_labeled = || {
        Error::usage(
            format!("the store {store_name} has no labels for this version of task {}", spec.name),
            format!(
                "run `assay label {}` first (with the same --store); editing the prompt makes a new task version",
                task_path.display()
            ),
        )
    };
    let Some(task_id) = rt.block_on(store.find_task(&spec.name, &identity.task_hash))? else {
        return Err(not_labeled());
    };
    let (mut labels, human): (Vec<LabeledRecord>, Vec<LabeledRecord>) = rt
        .block_on(store.labeled_records(task_id))?
        .into_iter()
        .partition(|l| l.annotator_kind == AnnotatorKind::Model);
    // A task version can hold labels of several datasets (a review project imports `assay label`'s output as a
    // dataset of its own, with the machine's labels): read those of the task's own dataset when it has any.
    if let Some(path) = spec.dataset.as_deref().filter(|p| p.exists()) {
        let sha = assay_io::file_sha256(path)?;
        if let Some(dataset) = rt.block_on(store.find_dataset(&sha))? {
            if labels.iter().any(|l| l.dataset_id == dataset) {
                labels.retain(|l| l.dataset_id == dataset);
            }
        }
    }
    // The probe (`probe:<embedder>`) learns from the model's labels and people's answers; it is read only when
    // asked for by name, so a task with a `[probe]` still has one model by default.
    if annotator.is_none_or(|a| !a.starts_with(crate::probe::PROBE_PREFIX)) {
        labels.retain(|l| !l.annotator.starts_with(crate::probe::PROBE_PREFIX));
    }
    let mut annotators: Vec<String> = labels.iter().map(|l| l.annotator.clone()).collect();
    annotators.sort();
    annotators.dedup();
    match (annotator, annotators.len()) {
        (_, 0) => return Err(not_labeled()),
        (Some(wanted), _) => {
            labels.retain(|l| l.annotator == wanted || judge_name(l) == wanted);
            if labels.is_empty() {
                return Err(Error::usage(
                    format!("no labels of task {} by `{wanted}`", spec.name),
                    format!("annotators of this task: {}", annotators.join(", ")),
                ));
            }
        }
        (None, 1) => {}
        (None, _) => {
            return Err(Error::usage(
                format!("several models labeled task {}", spec.name),
                format!("choose one with --annotator: {}", annotators.join(", ")),
            ))
        }
    }
    Ok(TaskLabels {
        prompts: identity.prompts,
        labels,
        human,
    })
}

/// DPO or reward rows of a pair task's judgments; people's plurality decides where they answered.
pub fn pair_rows(
    spec: &TaskSpec,
    task: &TaskLabels,
    format: ExportFormat,
    filter: PairFilter,
) -> Result<Exported> {
    if !spec.judges_pairs() || format == ExportFormat::Labels {
        return Err(Error::usage(
            format!("task {} is a {} task; export writes preference pairs", spec.name, spec.kind.as_str()),
            "export pairs from a task with `type = \"compare\"` or a rate task with `rate.response-2`; \
             `--format labels` exports any task's final labels",
        ));
    }
    let people = PeopleAnswers::for_model_labels(&task.labels, &task.human);
    let mut out = Exported {
        judged: task.labels.len(),
        ..Exported::default()
    };
    for label in &task.labels {
        let (Some(machine), Some(data)) = (
            judgment_from_scores(spec, &label.scores),
            label.data.as_object(),
        ) else {
            out.unreadable += 1;
            continue;
        };
        // Where people answered in `assay serve` and agree by plurality, their preference is the label.
        let answers = people.for_record(label);
        let decided = human_majority(answers)
            .and_then(|(value, agreeing)| preference_code(&value).map(|code| (code, agreeing)));
        let (judgment, source) = match decided {
            Some((code, agreeing)) => (
                PairJudgment::of_people(code, agreeing, answers.len()),
                LabelSource::Human,
            ),
            None => (machine, LabelSource::Model),
        };
        out.by_people += usize::from(source == LabelSource::Human);
        let Some((context, [first, second])) = pair_text(spec, &task.prompts, data) else {
            out.unreadable += 1;
            continue;
        };
        let tie = judgment.outcome == TIE;
        out.ties += usize::from(tie);
        out.inconsistent += usize::from(!judgment.consistent);
        if (tie && !filter.keep_ties) || (!judgment.consistent && !filter.keep_inconsistent) {
            continue;
        }
        let mut row = match format {
            ExportFormat::Dpo => dpo_row(context, first, second, &judgment),
            _ => reward_row(context, first, second, &judgment),
        };
        row.insert("judge".into(), json!(judge_name(label)));
        row.insert("provenance".into(), provenance(label, spec));
        row.insert("label_source".into(), json!(source.as_str()));
        row.insert("human_answers".into(), json!(answers.len()));
        if source == LabelSource::Human {
            let names: Vec<&str> = answers.iter().map(|a| a.annotator.as_str()).collect();
            row.insert("judge".into(), json!(format!("human:{}", names.join("+"))));
        }
        out.rows.push(row);
    }
    Ok(out)
}

/// The context and both responses of a pair's record.
fn pair_text(
    spec: &TaskSpec,
    prompts: &PromptBuilder,
    data: &Map<String, Value>,
) -> Option<(String, [String; 2])> {
    if spec.kind == TaskKind::Rate {
        let r = prompts.render_rated(data).ok()?;
        Some((
            r.context.unwrap_or_default(),
            [r.response, r.second.unwrap_or_default()],
        ))
    } else {
        let p = prompts.render_pair(data).ok()?;
        Some((p.context, p.responses))
    }
}

/// One DPO row: the preferred response as `chosen`. `score_chosen` is the debiased P(chosen better), `margin` is
/// P(chosen better) - P(rejected better).
fn dpo_row(prompt: String, first: String, second: String, j: &PairJudgment) -> Map<String, Value> {
    let first_wins = j.soft >= 0.5;
    let (chosen, rejected) = if first_wins {
        (first, second)
    } else {
        (second, first)
    };
    let score = if first_wins { j.soft } else { 1.0 - j.soft };
    let mut row = Map::new();
    row.insert("prompt".into(), json!(prompt));
    row.insert("chosen".into(), json!(chosen));
    row.insert("rejected".into(), json!(rejected));
    row.insert("score_chosen".into(), json!(score));
    row.insert("margin".into(), json!(2.0 * score - 1.0));
    row.insert(
        "chosen_position".into(),
        json!(if first_wins { 1 } else { 2 }),
    );
    row.insert("tie".into(), json!(j.outcome == TIE));
    row.insert("position_consistent".into(), json!(j.consistent));
    row
}

/// One reward row: the pair in its own order and the soft label.
fn reward_row(
    prompt: String,
    first: String,
    second: String,
    j: &PairJudgment,
) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("prompt".into(), json!(prompt));
    row.insert("response_1".into(), json!(first));
    row.insert("response_2".into(), json!(second));
    row.insert("p_response_1".into(), json!(j.soft));
    row.insert("label".into(), json!(outcome_name(j.outcome)));
    row.insert("position_consistent".into(), json!(j.consistent));
    row
}

/// `--format labels`: one row per item the model labeled, with its final label and where it came from.
pub fn label_rows(spec: &TaskSpec, task: &TaskLabels) -> Exported {
    let people = PeopleAnswers::for_model_labels(&task.labels, &task.human);
    let mut out = Exported {
        judged: task.labels.len(),
        ..Exported::default()
    };
    for label in &task.labels {
        let answers = people.for_record(label);
        let (final_label, source) = final_label(&label.value, answers);
        out.by_people += usize::from(source == LabelSource::Human);
        let mut row = label.data.as_object().cloned().unwrap_or_default();
        row.insert("label".into(), final_label);
        row.insert("label_source".into(), json!(source.as_str()));
        row.insert("model_label".into(), label.value.clone());
        row.insert("confidence".into(), json!(label.confidence));
        let people: Vec<Value> = answers
            .iter()
            .map(|a| json!({"annotator": a.annotator, "label": a.value}))
            .collect();
        row.insert("human_answers".into(), Value::Array(people));
        row.insert("provenance".into(), provenance(label, spec));
        out.rows.push(row);
    }
    out
}

/// The model's name without its short hash.
pub fn judge_name(label: &LabeledRecord) -> &str {
    label
        .annotator
        .split_once('@')
        .map_or(label.annotator.as_str(), |(name, _)| name)
}

fn provenance(label: &LabeledRecord, spec: &TaskSpec) -> Value {
    json!({
        "annotator_kind": label.annotator_kind,
        "annotator": label.annotator,
        "model_sha256": label.model_sha256,
        "prompt_hash": label.prompt_hash,
        "task": spec.name,
        "run_id": label.run_id,
        "row_index": label.row_index,
        "labeled_at": label.created_at,
    })
}
