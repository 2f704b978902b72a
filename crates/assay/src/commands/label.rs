//! `assay label`: read rows, score every label with the model, store each annotation durably, calibrate, write
//! the output with one `assay` column, and print a summary.
//!
//! Work is committed in chunks of [`CHUNK_ITEMS`] items, one transaction each, and chunk boundaries depend only
//! on the dataset's order; a resumed run therefore re-forms the same chunks, skips finished ones, and evaluates
//! the rest exactly as an uninterrupted run would (same batches, same KV-cache layout, same numbers).
//!
//! A served model (`model.endpoint`, see [`served`]) gets bigger chunks, [`served_chunk_items`], so that its
//! requests fill the concurrency limit; every answer is in the store before a label is derived from it.

mod served;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use assay_core::prompt::{PairOrder, PairText, RatedText, ResolvedExample};
use assay_core::task::{outcome_name, ExampleLabel, TIE};
use assay_core::{CalibrationMethod, PromptBuilder, Provenance, TaskKind, TaskSpec};
use assay_llm::cache::ModelCache;
use assay_llm::embedded::{default_threads, EmbeddedModel, ScorerOptions, Strategy};
use assay_llm::openai::{ServedModel, INTERRUPTED};
use assay_quality::calibration::{softmax, ContextualCalibration, FitOptions, FittedCalibration};
use assay_quality::metrics::{classification_report, ClassificationReport};
use assay_store::{AnnotationSource, CalibratedLabel, NewAnnotation, NewRun};
use clap::Args;
use serde_json::{json, Map, Value};

use super::Hinted;
use crate::progress::items_bar;
use crate::settings::{runtime, Settings};

/// Items per committed chunk: a `kill -9` loses at most this many items' work.
pub const CHUNK_ITEMS: usize = 16;

/// Items per committed chunk for a served model: enough requests in flight to use the concurrency limit (chunks
/// still depend only on the dataset's order and the task's settings).
pub fn served_chunk_items(concurrency: usize) -> usize {
    CHUNK_ITEMS.max(4 * concurrency)
}

/// Gold rows needed in the fit split before a fitted calibration is learned.
const MIN_FIT_ROWS: usize = 10;

/// Arguments of `assay label`.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// The task file (TOML); see docs/task-reference.toml.
    pub task: PathBuf,
    /// Input dataset (JSONL, CSV, TSV or Parquet) [default: the task's `dataset`].
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output file (.jsonl or .parquet) [default: the task's `output`, else TASK_NAME.labeled.jsonl].
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Label only the first N rows of the input.
    #[arg(long)]
    pub limit: Option<u64>,
    /// CPU threads for the model [default: the task's `model.threads`, else all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the run summary as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Estimate the requests, tokens and cost of labeling the pending rows, then stop (a served model is sent
    /// nothing).
    #[arg(long)]
    pub plan: bool,
    /// Label only the chunks numbered I modulo N (`0/2` and `1/2` split the work between two workers sharing one
    /// store, usually PostgreSQL). Chunks depend only on the input's order, so the workers never overlap; a last
    /// run without `--shard` calibrates over everything and writes the whole output, scoring nothing.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

/// A worker's share of the chunks: those whose number is `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker's residue.
    pub index: usize,
    /// How many workers share the input.
    pub count: usize,
}

impl Shard {
    fn owns(self, chunk: usize) -> bool {
        chunk % self.count == self.index
    }
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}`: expected I/N, as in 0/4"))?;
    let index: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("`{i}` is not a number"))?;
    let count: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a number"))?;
    if count == 0 || index >= count {
        return Err(format!("`{text}`: need 0 <= I < N"));
    }
    Ok(Shard { index, count })
}

/// The model behind a run.
enum Backend {
    Embedded(EmbeddedModel),
    Served(Box<ServedModel>),
}

/// A row ready to score.
struct Item {
    index: u64,
    values: Map<String, Value>,
    text: String,
    /// Compare tasks: the context and both responses.
    pair: Option<PairText>,
    /// Rate tasks: the context and the response.
    rated: Option<RatedText>,
    /// Gold label indices (one for classify; for compare 0 = response 1, 1 = response 2, 2 = tie).
    gold: Option<Vec<usize>>,
}

/// What a run did, printed as tables and stored with the run.
#[derive(Debug, serde::Serialize)]
struct Summary {
    task: String,
    model: String,
    rows_read: u64,
    rows_skipped: u64,
    rows_failed: u64,
    scored_this_run: u64,
    scored_before: u64,
    labeled: u64,
    label_counts: Vec<(String, u64)>,
    confidence_histogram: Vec<u64>,
    calibration: String,
    gold_rows: usize,
    fit_rows: usize,
    eval_rows: usize,
    before: Option<ClassificationReport>,
    after: Option<ClassificationReport>,
    /// Compare tasks: outcomes, position consistency and agreement with the gold column.
    compare: Option<CompareSummary>,
    items_per_second: Option<f64>,
    tokens_per_second: Option<f64>,
    output: String,
    interrupted: bool,
    /// Served models: requests, cache hits, tokens and cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    served: Option<served::ServedSummary>,
}

/// Run `assay label`.
pub fn run(settings: &Settings, args: LabelArgs) -> anyhow::Result<ExitCode> {
    let spec = TaskSpec::from_path(&args.task)?;
    let input = args
        .input
        .clone()
        .or_else(|| spec.dataset.clone())
        .ok_or_else(|| Hinted {
            message: format!(
                "task {} names no dataset and no --input was given",
                spec.name
            ),
            hint: "pass --input FILE or set `dataset = \"FILE\"` in the task file".into(),
        })?;
    let output = args
        .output
        .clone()
        .or_else(|| spec.output.clone())
        .unwrap_or_else(|| PathBuf::from(format!("{}.labeled.jsonl", spec.name)));
    assay_io::Format::from_path(&output).context("choosing the output format")?;

    // A served model is reached (and, for `scoring = "auto"`, probed) before any work; `--plan` sends nothing.
    let (backend, model_name, model_sha) = if spec.model.is_served() {
        if spec.compare.as_ref().is_some_and(|c| c.chain_of_thought) {
            bail!(Hinted {
                message: "chain-of-thought compare tasks generate rationales with the embedded model; served models do not do that yet".into(),
                hint: "remove `model.endpoint`, or set `chain-of-thought = false`".into(),
            });
        }
        let config = served::config(&spec, !args.plan)?;
        let model = if args.plan {
            ServedModel::offline(config)?
        } else {
            ServedModel::connect(config).with_context(|| {
                format!(
                    "reaching the model server {}",
                    spec.model.endpoint.as_deref().unwrap_or("")
                )
            })?
        };
        if !args.plan {
            eprintln!(
                "model: {} at {}",
                model.info().name,
                model.config().endpoint
            );
            eprintln!("scoring: {}", model.describe_mode());
            if model.mode() == assay_core::ServedScoring::Generate {
                eprintln!("warning: the server returns no log-probabilities: labels are generated answers, confidence is unavailable and no calibration is applied");
            }
        }
        let (name, sha) = (model.info().name.clone(), model.info().sha256.clone());
        (Backend::Served(Box::new(model)), name, sha)
    } else {
        let (model_path, model_name, model_sha) = resolve_model(settings, &spec)?;
        (
            Backend::Embedded(EmbeddedModel::load(&model_path, &model_name, &model_sha)?),
            model_name,
            model_sha,
        )
    };
    let (prompts, prompt_hash, task_hash) = task_identity(&spec)?;

    // Read and validate every row before loading the model: bad rows are reported, not fatal.
    let mut reader = assay_io::open_dataset(&input)?;
    let format = reader.format();
    let mut items = Vec::new();
    let mut row_errors: Vec<(u64, String)> = Vec::new();
    let mut unknown_gold = 0u64;
    for row in reader.by_ref() {
        let index = match &row {
            Ok(r) => r.index,
            Err(e) => e.index,
        };
        if args.limit.is_some_and(|limit| index >= limit) {
            break;
        }
        match row {
            Err(e) => row_errors.push((e.index, e.reason)),
            Ok(r) => match render_item(&spec, &prompts, &r.values) {
                Err(e) => row_errors.push((r.index, e.to_string())),
                Ok((text, pair, rated)) => {
                    let gold = spec
                        .gold
                        .as_ref()
                        .and_then(|column| spec.gold_indices(r.values.get(column)));
                    if spec.gold.as_ref().is_some_and(|c| {
                        r.values.get(c).is_some_and(|v| !v.is_null()) && gold.is_none()
                    }) {
                        unknown_gold += 1;
                    }
                    items.push(Item {
                        index: r.index,
                        values: r.values,
                        text,
                        pair,
                        rated,
                        gold,
                    });
                }
            },
        }
    }
    let rows_read = items.len() as u64 + row_errors.len() as u64;
    for (index, reason) in &row_errors {
        tracing::warn!(row = index + 1, %reason, "skipping row");
    }
    if unknown_gold > 0 {
        eprintln!("warning: {unknown_gold} rows have a gold value that is not one of the task's labels; they count as unlabeled");
    }

    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    let dataset_name = input
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("dataset")
        .to_string();
    let dataset_sha = assay_io::file_sha256(&input)?;
    let dataset_id = rt.block_on(store.dataset(
        &dataset_name,
        &input.display().to_string(),
        &dataset_sha,
        format.name(),
    ))?;
    for chunk in items.chunks(10_000) {
        let rows: Vec<(u64, String)> = chunk
            .iter()
            .map(|i| (i.index, Value::Object(i.values.clone()).to_string()))
            .collect();
        rt.block_on(store.insert_records(dataset_id, &rows))?;
    }
    let record_ids = rt.block_on(store.record_ids(dataset_id))?;
    let task_id = rt.block_on(store.task(
        &spec.name,
        spec.kind.as_str(),
        &task_hash,
        &serde_json::to_string(&spec)?,
    ))?;
    let annotator = format!("{model_name}@{}", &model_sha[..12]);
    let done = rt.block_on(store.annotated_records(task_id, "model", &annotator))?;
    if args.plan {
        let pending: Vec<&Item> = items
            .iter()
            .filter(|i| !done.contains(&record_ids[&i.index]))
            .collect();
        let mut requests: Vec<_> = pending
            .iter()
            .map(|i| item_request(&prompts, i, None))
            .collect();
        if !matches!(spec.kind, TaskKind::Compare | TaskKind::Rate) {
            requests.extend(
                spec.calibration
                    .content_free
                    .iter()
                    .map(|t| prompts.request(t)),
            );
        }
        return match &backend {
            Backend::Served(model) => served::plan(model, &store, &rt, pending.len(), &requests),
            Backend::Embedded(_) => {
                println!(
                    "plan: {} items to label with the embedded model {model_name}; nothing is paid",
                    pending.len()
                );
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    let run_id = rt.block_on(store.start_run(&NewRun {
        task_id,
        dataset_id,
        annotator: annotator.clone(),
        model_sha256: model_sha.clone(),
        prompt_hash: prompt_hash.clone(),
    }))?;
    if !row_errors.is_empty() {
        rt.block_on(store.record_row_errors(&run_id, &row_errors))?;
    }
    let source = AnnotationSource {
        task_id,
        run_id: run_id.clone(),
        annotator_kind: "model".into(),
        annotator: annotator.clone(),
        model_sha256: model_sha.clone(),
        prompt_hash: prompt_hash.clone(),
    };

    let threads = args
        .threads
        .or(spec.model.threads)
        .unwrap_or_else(default_threads);
    let interrupted = Arc::new(AtomicBool::new(false));
    let (mut scorer, chunk_items) = match &backend {
        Backend::Embedded(model) => {
            let options = ScorerOptions {
                format: spec.model.prompt_format,
                threads,
                batch_tokens: spec.model.batch_tokens,
                strategy: Strategy::CachedBatched,
            };
            (
                served::AnyScorer::Embedded(model.scorer(&prompts.prefix_probe(), options)?),
                CHUNK_ITEMS,
            )
        }
        Backend::Served(model) => {
            let cache = served::StoreCache {
                store: &store,
                rt: &rt,
                run_id: run_id.clone(),
            };
            (
                served::AnyScorer::Served(model.scorer(Box::new(cache), interrupted.clone())),
                served_chunk_items(model.config().limits.concurrency),
            )
        }
    };
    let generated =
        matches!(&backend, Backend::Served(m) if m.mode() == assay_core::ServedScoring::Generate);
    // Content-free inputs first, as their own call, so every run starts from the same state. Compare tasks have
    // none: judging both orders is their debiasing.
    let content_free: Vec<_> = if matches!(spec.kind, TaskKind::Compare | TaskKind::Rate) {
        Vec::new()
    } else {
        spec.calibration
            .content_free
            .iter()
            .map(|t| prompts.request(t))
            .collect()
    };
    let content_free_scores = scorer.score(&content_free)?;

    watch_ctrl_c(interrupted.clone());
    let mine = |chunk: usize| args.shard.is_none_or(|s| s.owns(chunk));
    let pending_total = items
        .chunks(chunk_items)
        .enumerate()
        .filter(|(c, _)| mine(*c))
        .flat_map(|(_, chunk)| chunk)
        .filter(|i| !done.contains(&record_ids[&i.index]))
        .count();
    let bar = items_bar(pending_total as u64, "labeling", settings.progress);
    let started = Instant::now();
    let stats_before = scorer.stats();
    let mut scored_this_run = 0u64;
    let mut failures: Vec<(u64, String)> = Vec::new();
    // Content-free requests count towards the run's usage too.
    let mut served_before = scorer.served_stats().map(|_| Default::default());
    for (chunk_number, chunk) in items.chunks(chunk_items).enumerate() {
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        if !mine(chunk_number) {
            continue;
        }
        let pending: Vec<&Item> = chunk
            .iter()
            .filter(|i| !done.contains(&record_ids[&i.index]))
            .collect();
        if pending.is_empty() {
            continue;
        }
        // Chain of thought: a greedy rationale per order first, then the judgment is scored after it.
        let rationales: Vec<Option<[String; 2]>> = match spec.compare.as_ref() {
            Some(compare) if compare.chain_of_thought => pending
                .iter()
                .map(|i| {
                    let pair = i.pair.as_ref().expect("compare items have a pair");
                    let Backend::Embedded(model) = &backend else {
                        unreachable!("chain of thought is refused for served models above");
                    };
                    let generate = |order| {
                        model.generate(
                            &prompts.compare_rationale_prompt(pair, order),
                            spec.model.prompt_format,
                            compare.rationale_tokens,
                            threads,
                        )
                    };
                    Ok(Some([
                        generate(PairOrder::Forward)?,
                        generate(PairOrder::Swapped)?,
                    ]))
                })
                .collect::<anyhow::Result<_>>()?,
            _ => vec![None; pending.len()],
        };
        let requests: Vec<_> = pending
            .iter()
            .zip(&rationales)
            .map(|(i, rationales)| item_request(&prompts, i, rationales.as_ref()))
            .collect();
        let results = scorer.score(&requests)?;
        let usage: Vec<Option<Value>> = match scorer.usage() {
            Some(u) => u.iter().map(|u| Some(json!(u))).collect(),
            None => vec![None; results.len()],
        };
        let mut annotations = Vec::new();
        let mut done_in_chunk = 0u64;
        for (((item, result), rationales), usage) in
            pending.iter().zip(results).zip(rationales).zip(usage)
        {
            match result {
                Ok(scores) => {
                    let raw = units_from_scores(&scores);
                    let (value, confidence, distribution) = label_from_units(&spec, &raw);
                    // Rationales and a served model's usage are stored beside the log-probabilities (see
                    // `logprobs_of`).
                    let scores = match (rationales, usage) {
                        (Some(r), _) => json!({"logprobs": scores, "rationales": r}),
                        (None, Some(u)) if generated => {
                            json!({"logprobs": scores, "usage": u, "generated": true})
                        }
                        (None, Some(u)) => json!({"logprobs": scores, "usage": u}),
                        (None, None) => json!(scores),
                    };
                    annotations.push(NewAnnotation {
                        record_id: record_ids[&item.index],
                        scores,
                        value,
                        confidence: (!generated).then_some(confidence),
                        distribution: if generated { Value::Null } else { distribution },
                    });
                    done_in_chunk += 1;
                }
                // Not a failure: a rerun scores it (its answers so far are in the cache).
                Err(reason) if reason == INTERRUPTED => {}
                Err(reason) => {
                    failures.push((item.index, reason));
                    done_in_chunk += 1;
                }
            }
        }
        scored_this_run += rt.block_on(store.insert_annotations(&source, &annotations))?;
        if let (Backend::Served(model), Some(before), Some(now)) =
            (&backend, served_before, scorer.served_stats())
        {
            rt.block_on(store.add_run_usage(&run_id, &served::usage_delta(model, before, now)))?;
            served_before = Some(now);
        }
        bar.inc(done_in_chunk);
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let stats = scorer.stats();
    if !failures.is_empty() {
        rt.block_on(store.record_row_errors(&run_id, &failures))?;
        for (index, reason) in &failures {
            eprintln!("row {}: not labeled: {reason}", index + 1);
        }
    }
    let was_interrupted = interrupted.load(Ordering::SeqCst);

    // Calibrate over everything the store holds for this task and model, then write the output.
    let stored = rt.block_on(store.annotations(task_id, "model", &annotator))?;
    let by_record: HashMap<i64, &assay_store::StoredAnnotation> =
        stored.iter().map(|a| (a.record_id, a)).collect();
    let labeled: Vec<(&Item, Vec<Vec<f64>>, &assay_store::StoredAnnotation)> = items
        .iter()
        .filter_map(|item| {
            let a = by_record.get(&record_ids[&item.index])?;
            let scores = logprobs_of(&a.scores)?;
            Some((item, units_from_scores(&scores), *a))
        })
        .collect();
    let content_free_units: Vec<Vec<Vec<f64>>> = content_free_scores
        .into_iter()
        .filter_map(|r| r.ok())
        .map(|s| units_from_scores(&s))
        .collect();
    let gold_items: Vec<(usize, bool)> = labeled
        .iter()
        .enumerate()
        .filter(|(_, (item, _, _))| item.gold.is_some())
        .map(|(i, (item, _, _))| {
            (
                i,
                in_fit_split(
                    spec.calibration.seed,
                    item.index,
                    spec.calibration.fit_share,
                ),
            )
        })
        .collect();
    // Generated labels carry no distribution: nothing to calibrate.
    let calibration_spec = if generated {
        let mut s = spec.clone();
        s.calibration.method = CalibrationMethod::None;
        s
    } else {
        spec.clone()
    };
    let calibrator = Calibrator::build(
        &calibration_spec,
        &content_free_units,
        &labeled,
        &gold_items,
    )?;
    let eval: Vec<usize> = gold_items
        .iter()
        .filter(|(_, fit)| !fit || calibrator.fitted.is_none())
        .map(|(i, _)| *i)
        .collect();
    let fit_rows = if calibrator.fitted.is_some() {
        gold_items.len() - eval.len()
    } else {
        0
    };

    let mut calibrated_labels = Vec::with_capacity(labeled.len());
    let mut out_rows = Vec::with_capacity(items.len());
    let mut label_counts: Vec<(String, u64)> = spec.outcome_names()
        .iter()
        .map(|n| (n.to_string(), 0))
        .collect();
    let mut histogram = vec![0u64; 10];
    let mut calibrated_units: Vec<Vec<Vec<f64>>> = Vec::with_capacity(labeled.len());
    let assay_column = free_column_name(reader.columns());
    let failed: HashMap<u64, &String> = failures.iter().map(|(i, r)| (*i, r)).collect();
    // People's answers from `assay serve` flow back: each row gets them and its final label.
    let human_answers = super::human::answers_by_content(
        &rt.block_on(store.human_annotations(task_id))?,
        &assay_column,
    );
    let mut labeled_iter = labeled.iter().peekable();
    for item in &items {
        let mut row = item.values.clone();
        let annotation = match labeled_iter.peek() {
            Some((l, _, _)) if l.index == item.index => labeled_iter.next(),
            _ => None,
        };
        let assay = match annotation {
            Some((_, units, stored)) => {
                let units = calibrator.apply(units);
                let (value, confidence, distribution) = label_from_units(&spec, &units);
                for name in value_names(&value) {
                    if let Some(entry) = label_counts.iter_mut().find(|(n, _)| *n == name) {
                        entry.1 += 1;
                    }
                }
                let was_generated = served::is_generated(&stored.scores);
                if !was_generated {
                    histogram[((confidence * 10.0) as usize).min(9)] += 1;
                }
                calibrated_labels.push(CalibratedLabel {
                    annotation_id: stored.id,
                    value: value.clone(),
                    confidence: (!was_generated).then_some(confidence),
                    distribution: if was_generated {
                        Value::Null
                    } else {
                        distribution.clone()
                    },
                });
                let judgment = compare_judgment(&spec, &units);
                let rating = rating_json(&spec, &units);
                calibrated_units.push(units);
                let provenance = Provenance {
                    annotator_kind: assay_core::AnnotatorKind::Model,
                    annotator: model_name.clone(),
                    model_sha256: model_sha.clone(),
                    prompt_hash: prompt_hash.clone(),
                    task: spec.name.clone(),
                    run_id: stored.run_id.clone(),
                    calibration: calibrator.name.clone(),
                    labeled_at: stored.created_at.clone(),
                };
                let mut assay =
                    json!({"label": value, "confidence": confidence, "distribution": distribution});
                if let Some(judgment) = judgment {
                    assay["preference"] = judgment.to_json();
                    if let Some(r) = rationales_of(&stored.scores) {
                        assay["preference"]["rationales"] = json!({"ab": r[0], "ba": r[1]});
                    }
                }
                if let Some(rating) = rating {
                    assay["rating"] = rating;
                }
                if was_generated {
                    assay["confidence"] = Value::Null;
                    assay["distribution"] = Value::Null;
                }
                if let Some(usage) = stored.scores.get("usage") {
                    assay["usage"] = usage.clone();
                }
                assay["provenance"] = json!(provenance);
                assay
            }
            None => {
                let reason = failed
                    .get(&item.index)
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "not labeled yet".into());
                json!({"label": Value::Null, "confidence": Value::Null, "error": reason})
            }
        };
        let answers = human_answers
            .get(&super::human::content_key(&item.values, &assay_column))
            .map_or(&[][..], Vec::as_slice);
        let mut assay = assay;
        let (human, final_label) = super::human::output_fields(&assay["label"], answers);
        assay["human"] = human;
        assay["final"] = final_label;
        row.insert(assay_column.clone(), assay);
        out_rows.push(row);
    }
    rt.block_on(store.update_calibrated(&calibrated_labels))?;
    let parquet = assay_io::ParquetOptions {
        input_schema: reader.arrow_schema(),
        map_columns: vec![vec![assay_column.clone(), "distribution".into()]],
    };
    assay_io::write_output(&output, &out_rows, &parquet)?;

    let (before, after) = if matches!(spec.kind, TaskKind::Compare | TaskKind::Rate) {
        (None, None)
    } else {
        gold_reports(&spec, &labeled, &calibrated_units, &eval)
    };
    let compare = spec.judges_pairs().then(|| {
        let judged: Vec<(PairJudgment, Option<usize>)> = labeled
            .iter()
            .zip(&calibrated_units)
            .filter_map(|((item, _, _), units)| {
                let gold = item.gold.as_ref().map(|g| g[0]);
                compare_judgment(&spec, units).map(|j| (j, gold))
            })
            .collect();
        CompareSummary::of(&judged)
    });
    let served_summary = match (&backend, scorer.served_stats()) {
        (Backend::Served(model), Some(now)) => {
            let labeled_cost: f64 = labeled
                .iter()
                .filter_map(|(_, _, a)| served::row_usage(&a.scores))
                .map(|u| u.cost_usd)
                .sum();
            Some(served::ServedSummary {
                endpoint: model.config().endpoint.clone(),
                scoring: model.mode().as_str().to_string(),
                run: now,
                labeled_cost_usd: labeled_cost,
                projected_cost_usd: if labeled.is_empty() {
                    0.0
                } else {
                    labeled_cost / labeled.len() as f64 * rows_read as f64
                },
                prices: model.config().prices,
            })
        }
        _ => None,
    };
    let decode_tokens = stats.tokens_evaluated - stats_before.tokens_evaluated;
    let decode_seconds = stats.decode_seconds - stats_before.decode_seconds;
    let summary = Summary {
        task: spec.name.clone(),
        model: format!("{model_name} ({})", &model_sha[..12]),
        rows_read,
        rows_skipped: row_errors.len() as u64,
        rows_failed: failures.len() as u64,
        scored_this_run,
        scored_before: labeled.len() as u64 - scored_this_run,
        labeled: labeled.len() as u64,
        label_counts,
        confidence_histogram: histogram,
        calibration: calibrator.name.clone(),
        gold_rows: gold_items.len(),
        fit_rows,
        eval_rows: eval.len(),
        before,
        after,
        compare,
        items_per_second: (scored_this_run > 0).then(|| scored_this_run as f64 / elapsed),
        tokens_per_second: (decode_seconds > 0.0).then(|| decode_tokens as f64 / decode_seconds),
        output: output.display().to_string(),
        interrupted: was_interrupted,
        served: served_summary,
    };
    let status = if was_interrupted {
        "interrupted"
    } else {
        "finished"
    };
    rt.block_on(store.finish_run(&run_id, status, &serde_json::to_value(&summary)?))?;
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print_summary(&summary, &row_errors);
    if let Some(s) = &summary.served {
        served::print_summary(s);
    }
    if generated {
        println!("confidence: unavailable (the server returned no log-probabilities); accuracy figures hold, ECE and coverage do not");
    }
    Ok(if was_interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// The model file, its name and SHA-256: the task's `model.path`, else the cached model `model.name`.
fn resolve_model(
    settings: &Settings,
    spec: &TaskSpec,
) -> anyhow::Result<(PathBuf, String, String)> {
    if let Some(path) = &spec.model.path {
        if !path.exists() {
            bail!(Hinted {
                message: format!("model file {} does not exist", path.display()),
                hint: "fix `model.path` in the task file, or remove it to use a cached model"
                    .into(),
            });
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string();
        return Ok((path.clone(), name, assay_llm::cache::file_sha256(path)?));
    }
    let cache = ModelCache::new(&settings.home);
    match cache.get(&spec.model.name)? {
        Some(model) => Ok((model.path, model.name, model.sha256)),
        None => bail!(Hinted {
            message: format!(
                "model `{}` is not in the cache ({})",
                spec.model.name,
                settings.home.join("models").display()
            ),
            hint: format!("run `assay model fetch {}` first", spec.model.name),
        }),
    }
}

/// Few-shot examples: inline ones, then those read from `examples-from`.
fn load_examples(spec: &TaskSpec) -> anyhow::Result<Vec<ResolvedExample>> {
    let prompts = PromptBuilder::new(spec)?;
    let multi = spec.kind == TaskKind::MultiLabel;
    let mut examples = Vec::new();
    let resolve = |names: Vec<String>| -> anyhow::Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                spec.label_index(n).ok_or_else(|| {
                    anyhow::anyhow!("example label `{n}` is not one of the task's labels")
                })
            })
            .collect()
    };
    for (i, e) in spec.examples.iter().enumerate() {
        let text = prompts
            .render_input(&e.row)
            .with_context(|| format!("example {}", i + 1))?;
        examples.push(ResolvedExample {
            text,
            labels: resolve(e.label.names(multi)).with_context(|| format!("example {}", i + 1))?,
        });
    }
    if let Some(from) = &spec.examples_from {
        let reader = assay_io::open_dataset(&from.path)?;
        for row in reader.take(from.limit) {
            let row = row.map_err(|e| {
                anyhow::anyhow!("{}: row {}: {}", from.path.display(), e.index + 1, e.reason)
            })?;
            let label = row
                .values
                .get(&from.label_column)
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: row {} has no text in column `{}`",
                        from.path.display(),
                        row.index + 1,
                        from.label_column
                    )
                })?;
            let text = prompts.render_input(&row.values)?;
            let labels = resolve(ExampleLabel::One(label.to_string()).names(multi))
                .with_context(|| format!("{}: row {}", from.path.display(), row.index + 1))?;
            examples.push(ResolvedExample { text, labels });
        }
    }
    Ok(examples)
}

/// The prompt builder (with examples), the prompt hash and the task version's hash: what identifies a task's
/// annotations in the store. `assay export` and `assay eval` find a task's labels through it.
pub(crate) fn task_identity(spec: &TaskSpec) -> anyhow::Result<(PromptBuilder, String, String)> {
    let examples = load_examples(spec)?;
    let prompts = PromptBuilder::new(spec)?.with_examples(&examples);
    let prompt_hash = prompts.prompt_hash();
    // The task's identity covers the spec and the rendered prompt (examples read from files included).
    let task_hash =
        assay_core::sha256_hex(format!("{}{}", spec.spec_hash(), prompt_hash).as_bytes());
    Ok((prompts, prompt_hash, task_hash))
}

/// The request scoring an item (with its chain-of-thought rationales, if any).
fn item_request(
    prompts: &PromptBuilder,
    item: &Item,
    rationales: Option<&[String; 2]>,
) -> assay_core::ScoreRequest {
    match (&item.pair, &item.rated, rationales) {
        (Some(pair), _, Some(r)) => prompts.compare_request_with_rationales(pair, r),
        (Some(pair), _, None) => prompts.compare_request(pair),
        (None, Some(rated), _) => prompts.rate_request(rated),
        (None, None, _) => prompts.request(&item.text),
    }
}

/// The text shown for a row (the context for compare, the response for rate) and, for compare and rate tasks, the
/// rendered pair or rated response.
fn render_item(
    spec: &TaskSpec,
    prompts: &PromptBuilder,
    values: &Map<String, Value>,
) -> assay_core::Result<(String, Option<PairText>, Option<RatedText>)> {
    match spec.kind {
        TaskKind::Compare => {
            let pair = prompts.render_pair(values)?;
            Ok((pair.context.clone(), Some(pair), None))
        }
        TaskKind::Rate => {
            let rated = prompts.render_rated(values)?;
            Ok((rated.response.clone(), None, Some(rated)))
        }
        TaskKind::Classify | TaskKind::MultiLabel => {
            Ok((prompts.render_input(values)?, None, None))
        }
    }
}

/// The per-branch option log-probabilities of a stored annotation: a bare array, or (chain of thought) the
/// `logprobs` of an object that also holds the `rationales`.
pub(crate) fn logprobs_of(scores: &Value) -> Option<Vec<Vec<f64>>> {
    let logprobs = match scores {
        Value::Object(o) => o.get("logprobs")?,
        other => other,
    };
    serde_json::from_value(logprobs.clone()).ok()
}

/// The chain-of-thought rationales (order AB, order BA) of a stored compare annotation, if it has them.
pub(crate) fn rationales_of(scores: &Value) -> Option<[String; 2]> {
    serde_json::from_value(scores.get("rationales")?.clone()).ok()
}

/// The `rating` object of a rate task's output: the expected score, it normalised to [-1, 1], and the
/// distribution over the scores.
/// A rated pair (`rate.response-2`) has `response_1` and `response_2`, each such an object.
fn rating_json(spec: &TaskSpec, units: &[Vec<f64>]) -> Option<Value> {
    let rate = spec.rate.as_ref().filter(|_| spec.kind == TaskKind::Rate)?;
    let one = |p: &Vec<f64>| {
        let rating = rate.rating(p);
        let distribution: Map<String, Value> = rate
            .scores()
            .into_iter()
            .zip(p)
            .map(|(s, p)| (s, json!(p)))
            .collect();
        json!({
            "expected": rating.expected,
            "normalised": rating.normalised,
            "distribution": distribution,
        })
    };
    match units {
        [first, second] => Some(json!({"response_1": one(first), "response_2": one(second)})),
        [only] => Some(one(only)),
        _ => None,
    }
}

/// One pair judged in both orders, position-debiased (Lee et al. 2023, section 2.1.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PairJudgment {
    /// P("1") with response 1 shown first (order AB), normalised over {1, 2}.
    pub p_ab: f64,
    /// P("1") with response 2 shown first (order BA): the model's P(response 2 better) in that order.
    pub p_ba: f64,
    /// Debiased P(response 1 better) = mean(p_ab, 1 - p_ba).
    pub soft: f64,
    /// `p_ab - p_ba` = 2 soft - 1, in [-1, 1]; exactly negated when the two responses are swapped.
    pub margin: f64,
    /// Both orders prefer the same response.
    pub consistent: bool,
    /// The same position won in both orders (the judgment flipped with the order).
    pub position_flip: bool,
    /// Outcome of order AB alone: 0 (response 1), 1 (response 2) or [`TIE`].
    pub single_order: usize,
    /// Debiased outcome: 0, 1 or [`TIE`].
    pub outcome: usize,
}

impl PairJudgment {
    /// The `preference` object of the output's `assay` column.
    pub fn to_json(self) -> Value {
        json!({
            "p_response_1": self.soft,
            "margin": self.margin,
            "p_ab": self.p_ab,
            "p_ba": self.p_ba,
            "position_consistent": self.consistent,
            "single_order_label": outcome_name(self.single_order),
        })
    }
}

/// Judge a pair from P("1") in each order. Ties: |soft - 0.5| <= `tie_margin` (checked as |margin| <= 2 margin,
/// which is exactly symmetric under swapping the responses).
pub(crate) fn judge_pair(p_ab: f64, p_ba: f64, tie_margin: f64) -> PairJudgment {
    let margin = p_ab - p_ba;
    let decide = |m: f64| {
        if m.abs() <= 2.0 * tie_margin {
            TIE
        } else if m > 0.0 {
            0
        } else {
            1
        }
    };
    let ab_first = p_ab > 0.5;
    let ab_second = p_ab < 0.5;
    let ba_first = p_ba > 0.5;
    let ba_second = p_ba < 0.5;
    PairJudgment {
        p_ab,
        p_ba,
        soft: 0.5 + 0.5 * margin,
        margin,
        consistent: (ab_first && ba_second) || (ab_second && ba_first),
        position_flip: (ab_first && ba_first) || (ab_second && ba_second),
        single_order: decide(2.0 * p_ab - 1.0),
        outcome: decide(margin),
    }
}

/// The judgment of a compare item from its units (normalised `[P("1"), P("2")]` per order, AB then BA), or of a
/// rated pair from its two rating distributions: P(response 1 better) = P(score 1 > score 2) + P(equal) / 2, and
/// as neither response was shown beside the other, the "two orders" are that and its complement.
pub(crate) fn compare_judgment(spec: &TaskSpec, units: &[Vec<f64>]) -> Option<PairJudgment> {
    if spec.is_rated_pair() {
        let rate = spec.rate.as_ref()?;
        return match units {
            [first, second] => {
                let p = assay_core::task::RateSpec::pair_preference(first, second);
                Some(judge_pair(p, 1.0 - p, rate.tie_margin))
            }
            _ => None,
        };
    }
    let compare = spec
        .compare
        .as_ref()
        .filter(|_| spec.kind == TaskKind::Compare)?;
    match units {
        [ab, ba] if ab.len() == 2 && ba.len() == 2 => {
            Some(judge_pair(ab[0], ba[0], compare.tie_margin))
        }
        _ => None,
    }
}

/// Raw log-probabilities (per order, per option) → the judgment; what `export` and `eval` read from the store.
pub(crate) fn judgment_from_scores(spec: &TaskSpec, scores: &Value) -> Option<PairJudgment> {
    let scores = logprobs_of(scores)?;
    compare_judgment(spec, &units_from_scores(&scores))
}

/// A judgment and the gold preference code of its pair, if any.
type JudgedWithGold = (PairJudgment, Option<usize>);

/// What a compare run found, for the summary.
#[derive(Debug, serde::Serialize)]
struct CompareSummary {
    pairs: usize,
    response_1: usize,
    response_2: usize,
    ties: usize,
    position_consistent: usize,
    position_flips: usize,
    /// Gold pairs that are not ties, and how many of them the debiased and AB-only judgments match.
    gold_pairs: usize,
    gold_agree: usize,
    gold_agree_single_order: usize,
}

impl CompareSummary {
    fn of(judged: &[JudgedWithGold]) -> Self {
        let count = |f: &dyn Fn(&JudgedWithGold) -> bool| judged.iter().filter(|j| f(j)).count();
        Self {
            pairs: judged.len(),
            response_1: count(&|(j, _)| j.outcome == 0),
            response_2: count(&|(j, _)| j.outcome == 1),
            ties: count(&|(j, _)| j.outcome == TIE),
            position_consistent: count(&|(j, _)| j.consistent),
            position_flips: count(&|(j, _)| j.position_flip),
            gold_pairs: count(&|(_, g)| matches!(g, Some(0 | 1))),
            gold_agree: count(&|(j, g)| matches!(g, Some(0 | 1)) && Some(j.outcome) == *g),
            gold_agree_single_order: count(&|(j, g)| {
                matches!(g, Some(0 | 1)) && Some(j.single_order) == *g
            }),
        }
    }
}

/// Per-branch option log-probabilities → per-branch distributions (a unit per branch).
fn units_from_scores(scores: &[Vec<f64>]) -> Vec<Vec<f64>> {
    scores.iter().map(|s| softmax(s)).collect()
}

/// Label value, confidence and distribution from units. Classify: argmax of the one unit. Multi-label: every label
/// whose P(yes) reaches the threshold; confidence is that of the least certain yes/no decision.
fn label_from_units(spec: &TaskSpec, units: &[Vec<f64>]) -> (Value, f64, Value) {
    if spec.judges_pairs() {
        return match compare_judgment(spec, units) {
            Some(j) => (
                json!(outcome_name(j.outcome)),
                j.soft.max(1.0 - j.soft),
                json!({"1": j.soft, "2": 1.0 - j.soft}),
            ),
            None => (Value::Null, 0.0, json!({})),
        };
    }
    let names = spec.label_names();
    match spec.kind {
        TaskKind::Compare => unreachable!("pair tasks returned above"),
        TaskKind::Rate => {
            let scores = spec.rate.as_ref().map(|r| r.scores()).unwrap_or_default();
            let p = &units[0];
            let best = argmax(p);
            let distribution: Map<String, Value> = scores
                .iter()
                .zip(p)
                .map(|(s, p)| (s.clone(), json!(p)))
                .collect();
            (json!(scores[best]), p[best], Value::Object(distribution))
        }
        TaskKind::Classify => {
            let p = &units[0];
            let best = argmax(p);
            let distribution: Map<String, Value> = names
                .iter()
                .zip(p)
                .map(|(n, p)| (n.to_string(), json!(p)))
                .collect();
            (json!(names[best]), p[best], Value::Object(distribution))
        }
        TaskKind::MultiLabel => {
            let yes: Vec<f64> = units.iter().map(|u| u[0]).collect();
            let chosen: Vec<&str> = names
                .iter()
                .zip(&yes)
                .filter(|(_, &p)| p >= spec.multi_label.threshold)
                .map(|(n, _)| *n)
                .collect();
            let confidence = yes.iter().map(|&p| p.max(1.0 - p)).fold(1.0, f64::min);
            let distribution: Map<String, Value> = names
                .iter()
                .zip(&yes)
                .map(|(n, p)| (n.to_string(), json!(p)))
                .collect();
            (json!(chosen), confidence, Value::Object(distribution))
        }
    }
}

fn value_names(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(v) => v
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i)
}

/// Deterministic split of gold rows: a row is in the fit set when its hash falls below `share`.
fn in_fit_split(seed: u64, index: u64, share: f64) -> bool {
    // splitmix64
    let mut z = seed
        .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 <= share && share > 0.0
}

/// The calibration in force for a run: contextual per unit slot, then fitted per unit slot.
struct Calibrator {
    contextual: Option<Vec<ContextualCalibration>>,
    fitted: Option<Vec<FittedCalibration>>,
    name: String,
}

impl Calibrator {
    fn build(
        spec: &TaskSpec,
        content_free: &[Vec<Vec<f64>>],
        labeled: &[(&Item, Vec<Vec<f64>>, &assay_store::StoredAnnotation)],
        gold_items: &[(usize, bool)],
    ) -> anyhow::Result<Self> {
        let method = spec.calibration.method;
        let slots = match spec.kind {
            TaskKind::Classify => 1,
            TaskKind::MultiLabel => spec.labels.len(),
            // Judging both orders is the debiasing; there is nothing to fit per position.
            TaskKind::Compare => {
                return Ok(Self {
                    contextual: None,
                    fitted: None,
                    name: "none (both orders averaged)".into(),
                })
            }
            // A rating keeps the model's own distribution over the scores.
            TaskKind::Rate => {
                return Ok(Self {
                    contextual: None,
                    fitted: None,
                    name: "none".into(),
                })
            }
        };
        let contextual = if matches!(
            method,
            CalibrationMethod::Contextual | CalibrationMethod::Auto
        ) && !content_free.is_empty()
        {
            Some(
                (0..slots)
                    .map(|s| {
                        let dists: Vec<Vec<f64>> =
                            content_free.iter().map(|units| units[s].clone()).collect();
                        ContextualCalibration::from_content_free(&dists)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else {
            None
        };
        let mut calibrator = Self {
            contextual,
            fitted: None,
            name: String::new(),
        };
        let fit: Vec<usize> = gold_items
            .iter()
            .filter(|(_, f)| *f)
            .map(|(i, _)| *i)
            .collect();
        if matches!(method, CalibrationMethod::Fitted | CalibrationMethod::Auto)
            && fit.len() >= MIN_FIT_ROWS
        {
            let mut fitted = Vec::with_capacity(slots);
            for s in 0..slots {
                let mut dists = Vec::with_capacity(fit.len());
                let mut gold = Vec::with_capacity(fit.len());
                for &i in &fit {
                    let (item, units, _) = &labeled[i];
                    let gold_labels = item.gold.as_ref().expect("gold rows only");
                    dists.push(calibrator.apply_contextual(s, &units[s]));
                    gold.push(match spec.kind {
                        TaskKind::Classify | TaskKind::Rate => gold_labels[0],
                        // yes = 0, no = 1
                        TaskKind::MultiLabel | TaskKind::Compare => {
                            usize::from(!gold_labels.contains(&s))
                        }
                    });
                }
                fitted.push(FittedCalibration::fit(
                    &dists,
                    &gold,
                    FitOptions::default(),
                )?);
            }
            calibrator.fitted = Some(fitted);
        }
        calibrator.name = match (&calibrator.contextual, &calibrator.fitted) {
            (None, None) => "none",
            (Some(_), None) => "contextual",
            (None, Some(_)) => "fitted",
            (Some(_), Some(_)) => "contextual+fitted",
        }
        .to_string();
        Ok(calibrator)
    }

    fn apply_contextual(&self, slot: usize, p: &[f64]) -> Vec<f64> {
        match &self.contextual {
            Some(c) => c[slot].apply(p),
            None => p.to_vec(),
        }
    }

    fn apply(&self, units: &[Vec<f64>]) -> Vec<Vec<f64>> {
        units
            .iter()
            .enumerate()
            .map(|(s, p)| {
                let p = self.apply_contextual(s, p);
                match &self.fitted {
                    Some(f) => f[s].apply(&p),
                    None => p,
                }
            })
            .collect()
    }
}

/// Gold metrics before (raw) and after calibration on the evaluation rows. Multi-label: over (row, label)
/// yes/no decisions.
fn gold_reports(
    spec: &TaskSpec,
    labeled: &[(&Item, Vec<Vec<f64>>, &assay_store::StoredAnnotation)],
    calibrated: &[Vec<Vec<f64>>],
    eval: &[usize],
) -> (Option<ClassificationReport>, Option<ClassificationReport>) {
    if eval.is_empty() {
        return (None, None);
    }
    let report = |units_of: &dyn Fn(usize) -> Vec<Vec<f64>>| {
        let (mut predicted, mut gold, mut confidence) = (Vec::new(), Vec::new(), Vec::new());
        for &i in eval {
            let units = units_of(i);
            let gold_labels = labeled[i].0.gold.as_ref().expect("gold rows only");
            match spec.kind {
                TaskKind::Classify | TaskKind::Rate => {
                    let best = argmax(&units[0]);
                    predicted.push(best);
                    confidence.push(units[0][best]);
                    gold.push(gold_labels[0]);
                }
                TaskKind::MultiLabel | TaskKind::Compare => {
                    for (s, u) in units.iter().enumerate() {
                        let yes = u[0] >= spec.multi_label.threshold;
                        predicted.push(usize::from(!yes));
                        confidence.push(u[0].max(1.0 - u[0]));
                        gold.push(usize::from(!gold_labels.contains(&s)));
                    }
                }
            }
        }
        classification_report(&predicted, &gold, &confidence).ok()
    };
    let before = report(&|i| labeled[i].1.clone());
    let after = report(&|i| calibrated[i].clone());
    (before, after)
}

/// `assay`, or a variant if the input already has such a column: no input column is ever overwritten.
pub(crate) fn free_column_name(columns: &[String]) -> String {
    ["assay", "assay_label", "_assay"]
        .iter()
        .map(|s| s.to_string())
        .find(|c| !columns.contains(c))
        .unwrap_or_else(|| "__assay".to_string())
}

/// Ctrl-C stops after the chunk in flight; everything committed stays.
fn watch_ctrl_c(flag: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing the chunk in flight; run the same command again to resume");
                flag.store(true, Ordering::SeqCst);
            }
        });
    });
}

fn print_summary(s: &Summary, row_errors: &[(u64, String)]) {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
    let mut rows = Table::new();
    rows.load_preset(UTF8_FULL_CONDENSED);
    rows.set_header(["rows", "count"]);
    rows.add_row(["read".to_string(), s.rows_read.to_string()]);
    rows.add_row(["labeled".to_string(), s.labeled.to_string()]);
    rows.add_row([
        "  scored in this run".to_string(),
        s.scored_this_run.to_string(),
    ]);
    rows.add_row([
        "  from earlier runs".to_string(),
        s.scored_before.to_string(),
    ]);
    rows.add_row([
        "skipped (malformed)".to_string(),
        s.rows_skipped.to_string(),
    ]);
    rows.add_row(["failed (model)".to_string(), s.rows_failed.to_string()]);
    println!(
        "task {}  model {}  calibration {}",
        s.task, s.model, s.calibration
    );
    println!("{rows}");
    for (index, reason) in row_errors.iter().take(10) {
        println!("  row {}: {reason}", index + 1);
    }
    if row_errors.len() > 10 {
        println!(
            "  ... and {} more (see the store's row_errors)",
            row_errors.len() - 10
        );
    }

    let mut labels = Table::new();
    labels.load_preset(UTF8_FULL_CONDENSED);
    labels.set_header(["label", "count", "share"]);
    let total: u64 = s.label_counts.iter().map(|(_, c)| c).sum::<u64>().max(1);
    let mut counts = s.label_counts.clone();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (name, count) in counts.iter().take(15) {
        labels.add_row([
            name.clone(),
            count.to_string(),
            format!("{:.1}%", 100.0 * *count as f64 / total as f64),
        ]);
    }
    if counts.len() > 15 {
        labels.add_row([
            format!("({} more labels)", counts.len() - 15),
            String::new(),
            String::new(),
        ]);
    }
    println!("{labels}");

    let max = s
        .confidence_histogram
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    println!("confidence");
    for (i, count) in s.confidence_histogram.iter().enumerate() {
        let width = (30 * count).div_ceil(max) as usize;
        println!(
            "  {:.1}-{:.1} {:>6} {}",
            i as f64 / 10.0,
            (i + 1) as f64 / 10.0,
            count,
            "#".repeat(width)
        );
    }

    if let (Some(before), Some(after)) = (&s.before, &s.after) {
        let mut gold = Table::new();
        gold.load_preset(UTF8_FULL_CONDENSED);
        gold.set_header([
            "gold rows".to_string(),
            "raw model".to_string(),
            format!("calibrated ({})", s.calibration),
        ]);
        gold.add_row([
            "accuracy".to_string(),
            pct(before.accuracy),
            pct(after.accuracy),
        ]);
        gold.add_row([
            "macro-F1".to_string(),
            format!("{:.3}", before.macro_f1),
            format!("{:.3}", after.macro_f1),
        ]);
        gold.add_row([
            "ECE (15 bins)".to_string(),
            format!("{:.3}", before.ece),
            format!("{:.3}", after.ece),
        ]);
        for ((coverage, b), (_, a)) in before
            .accuracy_at_coverage
            .iter()
            .zip(&after.accuracy_at_coverage)
        {
            gold.add_row([
                format!("accuracy at {:.0}% coverage", coverage * 100.0),
                pct(*b),
                pct(*a),
            ]);
        }
        println!(
            "measured on {} gold rows not used for fitting ({} gold rows, {} used to fit)",
            s.eval_rows, s.gold_rows, s.fit_rows
        );
        println!("{gold}");
    }
    if let Some(c) = &s.compare {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["pairs (both orders judged)", "count", "share"]);
        let share = |n: usize, of: usize| {
            if of == 0 {
                "-".to_string()
            } else {
                pct(n as f64 / of as f64)
            }
        };
        for (name, n) in [
            ("position-consistent", c.position_consistent),
            ("position flip (same position won twice)", c.position_flips),
        ] {
            table.add_row([name.to_string(), n.to_string(), share(n, c.pairs)]);
        }
        if c.gold_pairs > 0 {
            table.add_row([
                "gold pairs (ties excluded)".to_string(),
                c.gold_pairs.to_string(),
                String::new(),
            ]);
            table.add_row([
                "  agree, both orders".to_string(),
                c.gold_agree.to_string(),
                share(c.gold_agree, c.gold_pairs),
            ]);
            table.add_row([
                "  agree, order AB only".to_string(),
                c.gold_agree_single_order.to_string(),
                share(c.gold_agree_single_order, c.gold_pairs),
            ]);
        }
        println!("{table}");
    }
    if let (Some(items), Some(tokens)) = (s.items_per_second, s.tokens_per_second) {
        println!("throughput: {items:.2} items/s, {tokens:.0} tokens/s evaluated");
    }
    println!("output: {}", s.output);
    if s.interrupted {
        println!("interrupted: run the same command again to resume");
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_own_their_residue() {
        let s = parse_shard("1/3").unwrap();
        assert_eq!((s.index, s.count), (1, 3));
        assert!(s.owns(1) && s.owns(4) && !s.owns(3));
        for bad in ["3/3", "1/0", "x/2", "2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fit_split_is_deterministic_and_near_the_share() {
        let picked = (0..10_000).filter(|&i| in_fit_split(17, i, 0.3)).count();
        assert!((2_800..3_200).contains(&picked), "{picked}");
        assert_eq!(in_fit_split(17, 5, 0.3), in_fit_split(17, 5, 0.3));
        assert!(!(0..100).any(|i| in_fit_split(17, i, 0.0)));
    }

    #[test]
    fn existing_assay_column_is_not_overwritten() {
        assert_eq!(free_column_name(&["text".into()]), "assay");
        assert_eq!(free_column_name(&["assay".into()]), "assay_label");
    }

    #[test]
    fn multi_label_picks_labels_over_threshold_with_weakest_confidence() {
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"multi-label\"\ninput = \"{{ x }}\"\nlabels = [\"a\", \"b\", \"c\"]\n",
        )
        .unwrap();
        let (value, confidence, _) =
            label_from_units(&spec, &[vec![0.9, 0.1], vec![0.4, 0.6], vec![0.7, 0.3]]);
        assert_eq!(value, json!(["a", "c"]));
        assert!((confidence - 0.6).abs() < 1e-12);
    }

    const COMPARE_TASK: &str = "name = \"p\"\ntype = \"compare\"\n[compare]\ncontext = \"{{ q }}\"\nresponse-1 = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\ntie-margin = 0.1\n";

    /// Issue 3: judging (A, B) and (B, A) gives exactly complementary debiased soft labels. Swapping the responses
    /// in the row swaps the two prompts, so order AB of the swapped pair is order BA of the original.
    #[test]
    fn issue_3_swapping_the_responses_complements_the_debiased_judgment() {
        let spec = TaskSpec::from_toml_str(COMPARE_TASK).unwrap();
        // Fixed log-probabilities of ["1", "2"]: AB prompt, BA prompt. Position bias: "1" is favoured in both.
        let ab_prompt = vec![-0.3, -1.7];
        let ba_prompt = vec![-0.6, -1.1];
        for (x, y) in [
            (ab_prompt.clone(), ba_prompt.clone()),
            (vec![-2.0, -0.01], vec![-0.2, -3.0]),
            (vec![-0.7, -0.7], vec![-0.5, -0.9]),
        ] {
            let original = judgment_from_scores(&spec, &json!([x, y])).unwrap();
            let swapped = judgment_from_scores(&spec, &json!([y, x])).unwrap();
            assert_eq!(original.margin, -swapped.margin);
            assert!((original.soft + swapped.soft - 1.0).abs() < 1e-15);
            assert_eq!(original.consistent, swapped.consistent);
            let mirrored = [1, 0, TIE][original.outcome];
            assert_eq!(swapped.outcome, mirrored);
        }
        // The worked example: P_AB("1") = softmax(-0.3, -1.7)[0], P_BA("1") = softmax(-0.6, -1.1)[0].
        let p_ab = 1.0 / (1.0 + (-1.4f64).exp());
        let p_ba = 1.0 / (1.0 + (-0.5f64).exp());
        let j = judgment_from_scores(&spec, &json!([ab_prompt, ba_prompt])).unwrap();
        assert!((j.p_ab - p_ab).abs() < 1e-12 && (j.p_ba - p_ba).abs() < 1e-12);
        assert!((j.soft - (p_ab + 1.0 - p_ba) / 2.0).abs() < 1e-12);
        // "1" won in both orders: a position flip, not consistent; debiased it is a tie (soft 0.55, margin 0.1).
        assert!(j.position_flip && !j.consistent);
        assert_eq!(j.single_order, 0);
        assert_eq!(j.outcome, TIE);
    }

    #[test]
    fn debiased_outcomes_respect_the_tie_margin() {
        let clear = judge_pair(0.9, 0.2, 0.1);
        assert_eq!((clear.outcome, clear.consistent), (0, true));
        assert!((clear.soft - 0.85).abs() < 1e-12);
        assert_eq!(judge_pair(0.2, 0.9, 0.1).outcome, 1);
        assert_eq!(judge_pair(0.6, 0.45, 0.1).outcome, TIE); // soft 0.575
        assert_eq!(judge_pair(0.6, 0.45, 0.0).outcome, 0);
        assert_eq!(judge_pair(0.5, 0.5, 0.0).outcome, TIE);
    }

    #[test]
    fn human_preferences_parse_as_pandalm_writes_them() {
        assert_eq!(preference_code(&json!(1)), Some(0));
        assert_eq!(preference_code(&json!("2")), Some(1));
        assert_eq!(preference_code(&json!(0)), Some(TIE));
        assert_eq!(preference_code(&json!("Tie")), Some(TIE));
        assert_eq!(preference_code(&json!(3)), None);
        assert_eq!(preference_code(&json!(null)), None);
    }

    #[test]
    fn gold_values_map_through_aliases_and_lists() {
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"multi-label\"\ninput = \"{{ x }}\"\nlabels = [\"a\", {name = \"b\", aliases = [\"B!\"]}]\n",
        )
        .unwrap();
        assert_eq!(gold_of(&spec, Some(&json!("a, B!"))), Some(vec![0, 1]));
        assert_eq!(gold_of(&spec, Some(&json!(["b"]))), Some(vec![1]));
        assert_eq!(gold_of(&spec, Some(&json!("zzz"))), None);
    }
}
