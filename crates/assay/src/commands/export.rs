//! `assay export`: a compare task's judgments as training data. `--format dpo` writes `prompt`, `chosen`,
//! `rejected` (the columns TRL's `DPOTrainer` and Hugging Face preference datasets use) with the judge's soft score,
//! margin, model and provenance; `--format reward` writes every pair in its own order with the soft label
//! P(response 1 better), for reward models trained on soft labels (Lee et al. 2023, section 2.3).
//!
//! The judgments come from the store (the raw log-probabilities of both orders), so the tie margin in force is the
//! task file's current one; the pairs' text comes from the stored records rendered with the task's templates.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use assay_core::{PromptBuilder, TaskKind, TaskSpec};
use assay_store::LabeledRecord;
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};

use super::human::{
    answers_by_content, content_key, final_label, human_majority, HumanAnswer, LabelSource,
};
use assay_core::task::{outcome_name, preference_code, TIE};

use super::label::{free_column_name, judgment_from_scores, task_identity, PairJudgment};
use super::Hinted;
use crate::settings::{runtime, Settings};

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// `prompt`, `chosen`, `rejected` + soft score, margin, judge, provenance (TRL DPOTrainer columns).
    Dpo,
    /// `prompt`, `response_1`, `response_2`, soft label P(response 1 better), label, judge, provenance.
    Reward,
    /// Any task: the record's columns + the final `label` (people's plurality where they answered, else the
    /// machine's), `label_source`, the machine's `model_label` and `confidence`, the people's `human_answers`, and
    /// `provenance`.
    Labels,
}

/// Arguments of `assay export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The task file whose labels to export (labeled before with `assay label`).
    pub task: PathBuf,
    /// Output layout.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Output file, .jsonl or .parquet [default: TASK_NAME.FORMAT.jsonl].
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Keep pairs judged a tie (DPO: chosen is the response with P >= 0.5, i.e. response 1 at exactly 0.5).
    #[arg(long)]
    pub keep_ties: bool,
    /// Keep pairs whose two orders disagreed (position-inconsistent).
    #[arg(long)]
    pub keep_inconsistent: bool,
    /// The model whose judgments to export (`NAME@SHA12` as `assay runs` shows it), when several judged the task.
    #[arg(long)]
    pub annotator: Option<String>,
}

/// Run `assay export`.
pub fn run(settings: &Settings, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let spec = TaskSpec::from_path(&args.task)?;
    if args.format == ExportFormat::Labels {
        return export_labels(settings, &args, &spec);
    }
    if !spec.judges_pairs() {
        bail!(Hinted {
            message: format!(
                "task {} is a {} task; export writes preference pairs",
                spec.name,
                spec.kind.as_str()
            ),
            hint: "export pairs from a task with `type = \"compare\"` or a rate task with `rate.response-2`; \
                   `--format labels` exports any task's final labels"
                .into(),
        });
    }
    let TaskLabels {
        prompts,
        labels,
        human,
    } = model_labels(settings, &args.task, &spec, args.annotator.as_deref())?;
    let people = PeopleAnswers::new(&labels, &human);
    let output = args.output.clone().unwrap_or_else(|| {
        let format = match args.format {
            ExportFormat::Dpo => "dpo",
            ExportFormat::Reward => "reward",
            ExportFormat::Labels => "labels",
        };
        PathBuf::from(format!("{}.{format}.jsonl", spec.name))
    });
    assay_io::Format::from_path(&output).context("choosing the output format")?;

    let mut rows = Vec::new();
    let (mut ties, mut inconsistent, mut unreadable, mut by_people) =
        (0usize, 0usize, 0usize, 0usize);
    for label in &labels {
        let (Some(machine), Some(data)) = (
            judgment_from_scores(&spec, &label.scores),
            label.data.as_object(),
        ) else {
            unreadable += 1;
            continue;
        };
        // Where people answered in `assay serve` and agree by plurality, their preference is the label.
        let answers = people.answers(label);
        let decided = human_majority(answers)
            .and_then(|(value, agreeing)| preference_code(&value).map(|code| (code, agreeing)));
        let (judgment, source) = match decided {
            Some((code, agreeing)) => (
                people_judgment(code, agreeing, answers.len()),
                LabelSource::Human,
            ),
            None => (machine, LabelSource::Model),
        };
        by_people += usize::from(source == LabelSource::Human);
        let pair = if spec.kind == TaskKind::Rate {
            prompts.render_rated(data).map(|r| {
                let second = r.second.unwrap_or_default();
                (r.context.unwrap_or_default(), [r.response, second])
            })
        } else {
            prompts.render_pair(data).map(|p| (p.context, p.responses))
        };
        let Ok((context, [first, second])) = pair else {
            unreadable += 1;
            continue;
        };
        let tie = judgment.outcome == TIE;
        ties += usize::from(tie);
        inconsistent += usize::from(!judgment.consistent);
        if (tie && !args.keep_ties) || (!judgment.consistent && !args.keep_inconsistent) {
            continue;
        }
        let mut row = match args.format {
            ExportFormat::Dpo => dpo_row(context, first, second, &judgment, label, &spec),
            ExportFormat::Reward => reward_row(context, first, second, &judgment, label, &spec),
            ExportFormat::Labels => unreachable!("written by export_labels"),
        };
        row.insert("label_source".into(), json!(source.as_str()));
        row.insert("human_answers".into(), json!(answers.len()));
        if source == LabelSource::Human {
            let names: Vec<&str> = answers.iter().map(|a| a.annotator.as_str()).collect();
            row.insert("judge".into(), json!(format!("human:{}", names.join("+"))));
        }
        rows.push(row);
    }
    assay_io::write_output(&output, &rows, &assay_io::ParquetOptions::default())?;
    let fate = |kept: bool| if kept { "kept" } else { "left out" };
    println!(
        "wrote {} pairs to {} ({} judged, {by_people} by people: {ties} ties, {}; {inconsistent} position-inconsistent, {}{})",
        rows.len(),
        output.display(),
        labels.len(),
        fate(args.keep_ties),
        fate(args.keep_inconsistent),
        if unreadable > 0 {
            format!(", {unreadable} unreadable")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// One DPO row: the preferred response as `chosen`. `score_chosen` is the debiased P(chosen better), `margin` is
/// P(chosen better) - P(rejected better).
fn dpo_row(
    prompt: String,
    first: String,
    second: String,
    j: &PairJudgment,
    label: &LabeledRecord,
    spec: &TaskSpec,
) -> Map<String, Value> {
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
    row.insert("judge".into(), json!(judge_name(label)));
    row.insert("provenance".into(), provenance(label, spec));
    row
}

/// One reward row: the pair in its own order and the soft label.
fn reward_row(
    prompt: String,
    first: String,
    second: String,
    j: &PairJudgment,
    label: &LabeledRecord,
    spec: &TaskSpec,
) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("prompt".into(), json!(prompt));
    row.insert("response_1".into(), json!(first));
    row.insert("response_2".into(), json!(second));
    row.insert("p_response_1".into(), json!(j.soft));
    row.insert("label".into(), json!(outcome_name(j.outcome)));
    row.insert("position_consistent".into(), json!(j.consistent));
    row.insert("judge".into(), json!(judge_name(label)));
    row.insert("provenance".into(), provenance(label, spec));
    row
}

/// `--format labels`: one row per item the model labeled, with its final label and where it came from.
fn export_labels(
    settings: &Settings,
    args: &ExportArgs,
    spec: &TaskSpec,
) -> anyhow::Result<ExitCode> {
    let TaskLabels { labels, human, .. } =
        model_labels(settings, &args.task, spec, args.annotator.as_deref())?;
    let people = PeopleAnswers::new(&labels, &human);
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.labels.jsonl", spec.name)));
    assay_io::Format::from_path(&output).context("choosing the output format")?;
    let mut rows = Vec::with_capacity(labels.len());
    let mut by_people = 0usize;
    for label in &labels {
        let answers = people.answers(label);
        let (final_label, source) = final_label(&label.value, answers);
        by_people += usize::from(source == LabelSource::Human);
        let mut row = label.data.as_object().cloned().unwrap_or_default();
        row.insert("label".into(), final_label);
        row.insert("label_source".into(), json!(source.as_str()));
        row.insert("model_label".into(), label.value.clone());
        row.insert("confidence".into(), json!(label.confidence));
        row.insert(
            "human_answers".into(),
            Value::Array(
                answers
                    .iter()
                    .map(|a| json!({"annotator": a.annotator, "label": a.value}))
                    .collect(),
            ),
        );
        row.insert("provenance".into(), provenance(label, spec));
        rows.push(row);
    }
    assay_io::write_output(&output, &rows, &assay_io::ParquetOptions::default())?;
    println!(
        "wrote {} labels to {} ({by_people} decided by people, {} by the model)",
        rows.len(),
        output.display(),
        rows.len() - by_people
    );
    Ok(ExitCode::SUCCESS)
}

/// People's preference as a judgment: `code` (0: response 1, 1: response 2, [`TIE`]) chosen by `agreeing` of
/// `answered`; the soft label is the share that chose response 1 (a tie counts half).
fn people_judgment(code: usize, agreeing: usize, answered: usize) -> PairJudgment {
    let share = agreeing as f64 / answered.max(1) as f64;
    let soft = match code {
        0 => share,
        1 => 1.0 - share,
        _ => 0.5,
    };
    PairJudgment {
        p_ab: soft,
        p_ba: 1.0 - soft,
        soft,
        margin: 2.0 * soft - 1.0,
        consistent: true,
        position_flip: false,
        single_order: code,
        outcome: code,
    }
}

/// People's answers to a task version, found by row content (see [`super::human`]).
struct PeopleAnswers {
    by_content: HashMap<String, Vec<HumanAnswer>>,
    assay_column: String,
}

impl PeopleAnswers {
    fn answers(&self, label: &LabeledRecord) -> &[HumanAnswer] {
        label
            .data
            .as_object()
            .and_then(|data| self.by_content.get(&content_key(data, &self.assay_column)))
            .map_or(&[][..], Vec::as_slice)
    }
}

impl PeopleAnswers {
    /// Index `human` answers for the model's `labels` (the rows whose columns say which column `assay label`
    /// added to the rows people saw: the first name the input's columns leave free).
    fn new(labels: &[LabeledRecord], human: &[LabeledRecord]) -> Self {
        let columns: Vec<String> = labels
            .first()
            .and_then(|l| l.data.as_object())
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        let assay_column = free_column_name(&columns);
        Self {
            by_content: answers_by_content(human, &assay_column),
            assay_column,
        }
    }
}

fn judge_name(label: &LabeledRecord) -> &str {
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

/// What `export` and `eval` read of a task version.
pub(crate) struct TaskLabels {
    pub prompts: PromptBuilder,
    /// The model's annotations (of one model, of the task's own dataset when it has labels there).
    pub labels: Vec<LabeledRecord>,
    /// People's answers to the task, of any dataset (matched to rows by content: see [`super::human`]).
    pub human: Vec<LabeledRecord>,
}

/// The task's prompt builder, its model annotations (of one model) and people's answers, with their records' data.
pub(crate) fn model_labels(
    settings: &Settings,
    task_path: &std::path::Path,
    spec: &TaskSpec,
    annotator: Option<&str>,
) -> anyhow::Result<TaskLabels> {
    let (prompts, _, task_hash) = task_identity(spec)?;
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    let not_labeled = || {
        Hinted {
        message: format!(
            "the store {} has no labels for this version of task {}",
            settings.store, spec.name
        ),
        hint: format!(
            "run `assay label {}` first (with the same --store); editing the prompt makes a new task version",
            task_path.display()
        ),
    }
    };
    let Some(task_id) = rt.block_on(store.find_task(&spec.name, &task_hash))? else {
        bail!(not_labeled());
    };
    let (mut labels, human): (Vec<LabeledRecord>, Vec<LabeledRecord>) = rt
        .block_on(store.labeled_records(task_id))?
        .into_iter()
        .filter(|l| l.annotator_kind == "model" || l.annotator_kind == "human")
        .partition(|l| l.annotator_kind == "model");
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
    let mut annotators: Vec<String> = labels.iter().map(|l| l.annotator.clone()).collect();
    annotators.sort();
    annotators.dedup();
    match (annotator, annotators.len()) {
        (_, 0) => bail!(not_labeled()),
        (Some(wanted), _) => {
            labels.retain(|l| l.annotator == wanted || judge_name(l) == wanted);
            if labels.is_empty() {
                bail!(Hinted {
                    message: format!("no labels of task {} by `{wanted}`", spec.name),
                    hint: format!("annotators of this task: {}", annotators.join(", ")),
                });
            }
        }
        (None, 1) => {}
        (None, _) => bail!(Hinted {
            message: format!("several models labeled task {}", spec.name),
            hint: format!("choose one with --annotator: {}", annotators.join(", ")),
        }),
    }
    Ok(TaskLabels {
        prompts,
        labels,
        human,
    })
}
