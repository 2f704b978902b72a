//! Training data from a task's stored labels. Pair tasks: DPO rows (`prompt`, `chosen`, `rejected`: the columns
//! TRL's `DPOTrainer` and Hugging Face preference datasets use) with the judge's soft score, margin, model and
//! provenance, or reward rows with the soft label P(response 1 better) (Lee et al. 2023, section 2.3). Any task:
//! each item's final label, people's plurality where they answered.
//!
//! The judgments come from the store (the raw log-probabilities of both orders), so the tie margin in force is the
//! task file's current one; the pairs' text comes from the stored records rendered with the task's templates.
//!
//! Where a task has a `[probe]` and the probe gives the final label (`labeler = "probe"`, or `auto` and the last
//! `assay label` run chose it, as its stored summary says), the machine label is the probe's.
//!
//! Every exported row says where it came from (issue 14): `labeler` (`human`, `llm`, `probe`), `record_origin`
//! (`imported`, `human`, `synthetic`) and `generation_depth` read from the record's `assay_origin` column, and its
//! dataset's `license`. [`finish`] counts the rows by origin, keeps only people's rows for `--human-only`, mixes
//! generated rows with human ones as the policy says, and checks the policy (denied licenses, a required license,
//! the synthetic share, the generation depth), failing with the datasets and rows that break it.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use assay_core::policy::{DatasetProvenance, MixSetting, PolicySpec};
use assay_core::task::{outcome_name, preference_code, TIE};
use assay_core::{AnnotatorKind, Labeler, PromptBuilder, TaskKind, TaskSpec};
use assay_provenance::audit::{AuditStatus, DatasetAudits};
use assay_provenance::card::QcSummary;
use assay_provenance::mix::{mix, MixPolicy};
use assay_provenance::policy::{DatasetFacts, RowFacts};
use assay_provenance::{LabelOrigin, OriginMix, RecordOrigin};
use assay_store::{DatasetId, LabeledRecord, Store};
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
    /// Where each row came from, in the order of `rows`.
    pub origins: Vec<RowOrigin>,
    /// People's agreement where they answered.
    pub qc: QcSummary,
}

/// Where an exported row came from.
#[derive(Debug, Clone)]
pub struct RowOrigin {
    /// The record's dataset.
    pub dataset_id: DatasetId,
    /// The record's position in it.
    pub row_index: u64,
    /// The record's origin (`assay_origin`).
    pub record: RecordOrigin,
    /// The final label's origin.
    pub label: LabelOrigin,
}

/// What `export` and `eval` read of a task version.
pub struct TaskLabels {
    /// The task's prompt builder.
    pub prompts: PromptBuilder,
    /// The model's annotations (of one model, of the task's own dataset when it has labels there).
    pub labels: Vec<LabeledRecord>,
    /// People's answers to the task, of any dataset (matched to rows by content: see [`crate::human`]).
    pub human: Vec<LabeledRecord>,
    /// The probe whose labels replace the model's, when the task's probe gives the final label.
    pub probe: Option<String>,
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
    // The probe (`probe:<embedder>`) learns from the model's labels and people's answers. Asked for by name, it
    // is the annotator; otherwise its labels replace the model's where the task's probe gives the final label.
    let is_probe = |l: &LabeledRecord| l.annotator.starts_with(crate::probe::PROBE_PREFIX);
    let mut probe_labels = Vec::new();
    if annotator.is_none_or(|a| !a.starts_with(crate::probe::PROBE_PREFIX)) {
        (probe_labels, labels) = labels.into_iter().partition(is_probe);
    }
    let probe = match annotator {
        None => chosen_probe(store, rt, spec, &probe_labels)?,
        Some(_) => None,
    };
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
    if let Some(name) = &probe {
        let by_row: HashMap<(DatasetId, u64), LabeledRecord> = probe_labels
            .into_iter()
            .filter(|l| &l.annotator == name)
            .map(|l| ((l.dataset_id, l.row_index), l))
            .collect();
        for label in &mut labels {
            if let Some(p) = by_row.get(&(label.dataset_id, label.row_index)) {
                *label = p.clone();
            }
        }
    }
    Ok(TaskLabels {
        prompts: identity.prompts,
        labels,
        human,
        probe,
    })
}

/// The probe whose labels are final: the task's `labeler = "probe"`, or `auto` where the newest run that stored
/// the probe's labels chose it (its summary's `probe.labeler`). `None` when the LLM decides.
fn chosen_probe(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    spec: &TaskSpec,
    probe_labels: &[LabeledRecord],
) -> Result<Option<String>> {
    let (Some(probe), Some(newest)) = (
        &spec.probe,
        probe_labels
            .iter()
            .max_by(|a, b| a.created_at.cmp(&b.created_at)),
    ) else {
        return Ok(None);
    };
    let chosen = match probe.labeler {
        Labeler::Probe => true,
        Labeler::Llm => false,
        Labeler::Auto => rt
            .block_on(store.run_summary(&newest.run_id))?
            .is_some_and(|s| s["probe"]["labeler"] == Labeler::Probe.as_str()),
    };
    Ok(chosen.then(|| newest.annotator.clone()))
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
        out.qc
            .add(answers, decided.map(|(code, _)| code == machine.outcome));
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
        let origin = row_origin(label, source, answers)?;
        insert_origin(&mut row, &origin);
        out.rows.push(row);
        out.origins.push(origin);
    }
    Ok(out)
}

/// Where a row's record and final label came from; a malformed `assay_origin` is an error naming the row.
fn row_origin(
    label: &LabeledRecord,
    source: LabelSource,
    answers: &[crate::human::HumanAnswer],
) -> Result<RowOrigin> {
    let record = label
        .data
        .as_object()
        .map_or(Ok(RecordOrigin::Imported), RecordOrigin::of_row)
        .map_err(|e| {
            Error::usage(
                format!("row {} of the task's dataset: {e}", label.row_index + 1),
                "fix the row's `assay_origin` column (see docs/task-reference.toml, [policy])",
            )
        })?;
    let origin = match source {
        LabelSource::Human => LabelOrigin::Human {
            annotators: answers.iter().map(|a| a.annotator.clone()).collect(),
        },
        LabelSource::Model if label.annotator.starts_with(crate::probe::PROBE_PREFIX) => {
            LabelOrigin::Probe {
                embedder: label.annotator.clone(),
                train_sha256: label.prompt_hash.clone(),
            }
        }
        LabelSource::Model => LabelOrigin::Model {
            model: label.annotator.clone(),
            model_sha256: label.model_sha256.clone(),
            prompt_hash: label.prompt_hash.clone(),
        },
    };
    Ok(RowOrigin {
        dataset_id: label.dataset_id,
        row_index: label.row_index,
        record,
        label: origin,
    })
}

/// The origin columns of an exported row (the license is added by [`finish`], which knows the datasets).
fn insert_origin(row: &mut Map<String, Value>, origin: &RowOrigin) {
    row.insert("labeler".into(), json!(origin.label.labeler()));
    row.insert("record_origin".into(), json!(origin.record.kind()));
    row.insert("generation_depth".into(), json!(origin.record.depth()));
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
pub fn label_rows(spec: &TaskSpec, task: &TaskLabels) -> Result<Exported> {
    let people = PeopleAnswers::for_model_labels(&task.labels, &task.human);
    let mut out = Exported {
        judged: task.labels.len(),
        ..Exported::default()
    };
    for label in &task.labels {
        let answers = people.for_record(label);
        let (final_label, source) = final_label(&label.value, answers);
        out.qc.add(
            answers,
            (source == LabelSource::Human).then(|| final_label == label.value),
        );
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
        let origin = row_origin(label, source, answers)?;
        insert_origin(&mut row, &origin);
        out.rows.push(row);
        out.origins.push(origin);
    }
    Ok(out)
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

/// People's agreement, counted as rows are exported.
trait CountAgreement {
    fn add(&mut self, answers: &[crate::human::HumanAnswer], machine_agrees: Option<bool>);
}

impl CountAgreement for QcSummary {
    /// `machine_agrees`: where people's plurality decided, whether the machine's label is the same.
    fn add(&mut self, answers: &[crate::human::HumanAnswer], machine_agrees: Option<bool>) {
        if answers.len() >= 2 {
            self.multi_answered += 1;
            self.unanimous += usize::from(answers.iter().all(|a| a.value == answers[0].value));
        }
        if let Some(agrees) = machine_agrees {
            self.compared += 1;
            self.machine_agrees += usize::from(agrees);
        }
    }
}

/// How an export treats its rows' origins.
#[derive(Debug, Clone, Default)]
pub struct OriginOptions {
    /// Keep only rows whose final label came from people and whose record was not generated.
    pub human_only: bool,
    /// The policy to meet (the task's `[policy]`, or a project policy file).
    pub policy: PolicySpec,
}

/// An export's rows after `--human-only`, the mix policy and the policy check, with their origins counted.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The rows to write, each with its dataset's `license`.
    pub rows: Vec<Map<String, Value>>,
    /// The rows counted by origin.
    pub mix: OriginMix,
    /// The datasets the rows came from, with their licenses.
    pub datasets: Vec<DatasetFacts>,
    /// The store's ids of `datasets`, in the same order.
    pub dataset_ids: Vec<DatasetId>,
    /// Rows `--human-only` left out.
    pub not_human: usize,
    /// Rows the mix policy left out.
    pub mixed_out: usize,
    /// The mix policy applied.
    pub mix_policy: MixSetting,
}

/// The licenses of the rows' datasets: the task's `[provenance]`, gaps filled from the sidecar file beside each
/// dataset's source file (`DATA.provenance.toml`).
pub fn dataset_facts(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    spec: &TaskSpec,
    origins: &[RowOrigin],
) -> Result<(Vec<DatasetFacts>, HashMap<DatasetId, usize>)> {
    let mut facts = Vec::new();
    let mut index = HashMap::new();
    for o in origins {
        if index.contains_key(&o.dataset_id) {
            continue;
        }
        let (name, source) = rt.block_on(store.dataset_info(o.dataset_id))?.map_or_else(
            || (format!("dataset {}", o.dataset_id), String::new()),
            |d| (d.name, d.source),
        );
        let data = (!source.is_empty()).then(|| Path::new(&source));
        let provenance = DatasetProvenance::resolve(spec.provenance.as_ref(), data)?;
        let dataset = DatasetFacts::new(&name, provenance).map_err(|e| {
            Error::usage(
                e.to_string(),
                "write the license as an SPDX expression (https://spdx.org/licenses/), e.g. `CC-BY-4.0`",
            )
        })?;
        index.insert(o.dataset_id, facts.len());
        facts.push(dataset);
    }
    Ok((facts, index))
}

/// Keep people's rows for `--human-only`, mix generated rows with human ones as `policy.mix` says, add each
/// row's `license`, count the origins and check the policy: a violation is an error naming datasets and rows.
pub fn finish(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    spec: &TaskSpec,
    exported: Exported,
    options: &OriginOptions,
) -> Result<Finished> {
    let (datasets, index) = dataset_facts(store, rt, spec, &exported.origins)?;
    let mut pairs: Vec<(Map<String, Value>, RowOrigin)> =
        exported.rows.into_iter().zip(exported.origins).collect();
    let before = pairs.len();
    if options.human_only {
        pairs.retain(|(_, o)| o.label.labeler() == "human" && !o.record.is_synthetic());
    }
    let not_human = before - pairs.len();
    // Generation g holds the rows of depth g; human and imported rows are generation 0.
    let deepest = pairs
        .iter()
        .map(|(_, o)| o.record.depth())
        .max()
        .unwrap_or(0);
    let policy = match options.policy.mix {
        MixSetting::Accumulate => MixPolicy::Accumulate,
        MixSetting::Replace => MixPolicy::Replace,
    };
    let before_mix = pairs.len();
    if deepest > 0 {
        let mut generations: Vec<Vec<(Map<String, Value>, RowOrigin)>> =
            vec![Vec::new(); deepest as usize + 1];
        for pair in pairs {
            generations[pair.1.record.depth() as usize].push(pair);
        }
        let human = generations.remove(0);
        pairs = mix(&human, &generations, &policy, 0);
    }
    let mixed_out = before_mix - pairs.len();
    let mut mix_counts = OriginMix::with_experts(experts(store, rt)?);
    let mut facts = Vec::with_capacity(pairs.len());
    let mut rows = Vec::with_capacity(pairs.len());
    for (mut row, o) in pairs {
        mix_counts.add(&o.record, Some(&o.label));
        let d = index[&o.dataset_id];
        facts.push(RowFacts {
            dataset: d,
            row_index: o.row_index,
            synthetic: o.record.is_synthetic(),
            depth: o.record.depth(),
        });
        row.insert(
            "license".into(),
            json!(datasets[d].license.as_ref().map(|l| l.as_str())),
        );
        rows.push(row);
    }
    let violations = assay_provenance::policy::check(&options.policy, &datasets, &facts);
    if !violations.is_empty() {
        let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
        return Err(Error::usage(
            format!(
                "the export breaks the task's policy, nothing was written:\n  {}",
                lines.join("\n  ")
            ),
            "change the data or the `[policy]` section; `assay audit mix TASK.toml` shows the origins",
        ));
    }
    let mut dataset_ids = vec![0; datasets.len()];
    for (id, n) in &index {
        dataset_ids[*n] = *id;
    }
    Ok(Finished {
        rows,
        mix: mix_counts,
        datasets,
        dataset_ids,
        not_human,
        mixed_out,
        mix_policy: options.policy.mix,
    })
}

/// The people marked as experts: annotators with the skill [`assay_provenance::EXPERT_SKILL`].
pub fn experts(store: &Store, rt: &tokio::runtime::Runtime) -> Result<BTreeSet<String>> {
    Ok(rt
        .block_on(store.annotators())?
        .into_iter()
        .filter(|a| a.skills.iter().any(|s| s == assay_provenance::EXPERT_SKILL))
        .map(|a| a.name)
        .collect())
}

/// What the store's newest `assay audit dups` and `assay audit overlap` runs say about each of the export's
/// datasets: found when one audited the same bytes (the dataset's SHA-256 as labeled), "another version" when the
/// newest audit of the same path read other bytes, else not run.
pub fn dataset_audits(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    finished: &Finished,
) -> Result<Vec<DatasetAudits>> {
    use assay_provenance::audit::{DUPS, OVERLAP};
    let mut out = Vec::with_capacity(finished.datasets.len());
    for (facts, id) in finished.datasets.iter().zip(&finished.dataset_ids) {
        let (sha256, source) = rt
            .block_on(store.dataset_info(*id))?
            .map(|d| (d.sha256, d.source))
            .unwrap_or_default();
        let path = audited_path(Path::new(&source));
        out.push(DatasetAudits {
            dataset: facts.name.clone(),
            dups: audit_status(store, rt, DUPS, &sha256, &path)?,
            overlap: audit_status(store, rt, OVERLAP, &sha256, &path)?,
            sha256,
        });
    }
    Ok(out)
}

/// The path an audit files a dataset under: absolute where the file exists, as given otherwise.
pub fn audited_path(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn audit_status<P, C>(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    kind: &str,
    sha256: &str,
    path: &str,
) -> Result<AuditStatus<P, C>>
where
    P: serde::de::DeserializeOwned,
    C: serde::de::DeserializeOwned,
{
    if let Some(found) = rt.block_on(store.latest_audit(kind, sha256))? {
        fn parse<T: serde::de::DeserializeOwned>(kind: &str, value: Value) -> Result<T> {
            serde_json::from_value(value).map_err(|e| {
                Error::Internal(format!(
                    "the stored `{kind}` audit summary does not parse: {e}"
                ))
            })
        }
        return Ok(AuditStatus::Found {
            ran_at: found.ran_at,
            parameters: parse(kind, found.parameters)?,
            counts: parse(kind, found.counts)?,
        });
    }
    Ok(match rt.block_on(store.latest_audit_of_path(kind, path))? {
        Some(other) => AuditStatus::OtherVersion {
            path: other.dataset_path,
            ran_at: other.ran_at,
            sha256: other.dataset_sha256,
        },
        None => AuditStatus::NotRun,
    })
}

/// The dataset card of an export (`assay_provenance::card`), with what the audits of its datasets found.
pub fn card(
    spec: &TaskSpec,
    format: ExportFormat,
    finished: &Finished,
    qc: &QcSummary,
    data_file: &str,
    audits: &[DatasetAudits],
) -> String {
    let task_categories = match spec.kind {
        TaskKind::Classify | TaskKind::MultiLabel => vec!["text-classification".to_string()],
        _ if spec.judges_pairs() => vec!["text-generation".to_string()],
        _ => vec!["text-classification".to_string()],
    };
    assay_provenance::card::render(&assay_provenance::card::CardInput {
        pretty_name: spec.name.clone(),
        task: spec.name.clone(),
        format: format.as_str().to_string(),
        task_categories,
        data_file: data_file.to_string(),
        mix: finished.mix.clone(),
        datasets: finished.datasets.clone(),
        qc: Some(qc.clone()),
        audits: audits.to_vec(),
        mix_policy: finished.mix_policy.as_str().to_string(),
        mixed_out: finished.mixed_out,
    })
}

/// The Croissant 1.0 metadata of an export (`assay_provenance::croissant`), as pretty JSON. `data_file` is the
/// export's name relative to the metadata file, `sha256` its bytes' hash, `encoding_format` its MIME type.
pub fn croissant(
    spec: &TaskSpec,
    format: ExportFormat,
    finished: &Finished,
    data_file: &str,
    sha256: &str,
    encoding_format: &str,
) -> String {
    let mut licenses: Vec<String> = finished
        .datasets
        .iter()
        .flat_map(|d| d.license.as_ref().map(|l| l.ids()).unwrap_or_default())
        .collect();
    licenses.sort();
    licenses.dedup();
    let mix = &finished.mix;
    let description = format!(
        "{} rows exported by `assay export --format {}` from task `{}`: {:.1}% of the final labels by people, \
         {:.1}% of the records synthetic. The dataset card (README.md) says where every row came from.",
        mix.rows,
        format.as_str(),
        spec.name,
        100.0 * mix.share(mix.labels_of("human")),
        100.0 * mix.synthetic_share()
    );
    let doc = assay_provenance::croissant::render(&assay_provenance::croissant::CroissantInput {
        name: &spec.name,
        description,
        licenses,
        data_file,
        sha256,
        encoding_format,
        rows: &finished.rows,
    });
    serde_json::to_string_pretty(&doc).expect("JSON serialises") + "\n"
}

/// Where the card of an export goes: `README.md` in the export's folder, unless a README.md there was not
/// written by assay (a project's own), then `OUTPUT_FILE.README.md` beside the export.
pub fn card_path(output: &Path) -> std::path::PathBuf {
    let folder = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let readme = folder.join("README.md");
    let ours = std::fs::read_to_string(&readme)
        .map(|t| t.contains(assay_provenance::card::CARD_MARKER))
        .unwrap_or(true);
    if ours {
        readme
    } else {
        let mut name = output.as_os_str().to_os_string();
        name.push(".README.md");
        name.into()
    }
}

/// Write the card, or the Croissant metadata (through a temporary file renamed into place).
pub fn write_card(path: &Path, card: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let io = |source| Error::File {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, card).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// `assay audit mix`: a task's rows (as `--format labels` would export them) counted by origin, in all and per
/// dataset, with the policy's verdict.
#[derive(Debug, Clone)]
pub struct MixReport {
    /// All rows.
    pub total: OriginMix,
    /// Per dataset, in the order first seen.
    pub by_dataset: Vec<(DatasetFacts, OriginMix)>,
    /// The rules of the policy the rows break.
    pub violations: Vec<assay_provenance::policy::Violation>,
    /// People's agreement.
    pub qc: QcSummary,
}

/// Count a task's rows by origin, per dataset, and check them against `policy`.
pub fn mix_report(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    spec: &TaskSpec,
    task: &TaskLabels,
    policy: &PolicySpec,
) -> Result<MixReport> {
    let exported = label_rows(spec, task)?;
    let (datasets, index) = dataset_facts(store, rt, spec, &exported.origins)?;
    let mut total = OriginMix::with_experts(experts(store, rt)?);
    let mut per: Vec<OriginMix> = vec![total.clone(); datasets.len()];
    let mut facts = Vec::new();
    for o in &exported.origins {
        let d = index[&o.dataset_id];
        total.add(&o.record, Some(&o.label));
        per[d].add(&o.record, Some(&o.label));
        facts.push(RowFacts {
            dataset: d,
            row_index: o.row_index,
            synthetic: o.record.is_synthetic(),
            depth: o.record.depth(),
        });
    }
    let violations = assay_provenance::policy::check(policy, &datasets, &facts);
    Ok(MixReport {
        total,
        by_dataset: datasets.into_iter().zip(per).collect(),
        violations,
        qc: exported.qc,
    })
}
