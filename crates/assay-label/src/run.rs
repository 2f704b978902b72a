//! `assay label` as stages: a row flows task → rows → scorer → judgment → calibration → store → output.
//!
//! 1. [`ingest`]: stream the input once; every row becomes a record of a dataset in the store (bad rows are
//!    recorded with their row numbers and reason, never fatal).
//! 2. [`score`]: stream the input again in chunks of [`Backend::chunk_items`] items; each chunk's pending items
//!    are scored and their raw log-probabilities committed in one transaction. Chunk boundaries depend only on the
//!    input's order, so a resumed run re-forms the same chunks, skips finished ones, and evaluates the rest exactly
//!    as an uninterrupted run would.
//! 3. [`fit_calibration`]: contextual calibration from content-free inputs, then a fit on the gold rows of the
//!    fit split, read back from the store block by block.
//! 4. [`write_output`]: stream the input a last time; each block's annotations are read back, calibrated,
//!    judged, joined with people's answers and written row by row.
//!
//! Memory is bounded by a chunk or block in flight plus a few numbers per row (row ids, gold decisions), never by
//! the rows themselves.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use assay_core::prompt::PairOrder;
use assay_core::{AnnotatorKind, CalibrationMethod, PromptBuilder, Provenance, TaskKind, TaskSpec};
use assay_llm::embedded::{ScorerOptions, Strategy};
use assay_llm::openai::INTERRUPTED;
use assay_llm::{ScoreStats, Scorer};
use assay_store::{
    AnnotationSource, CalibratedLabel, NewAnnotation, NewRun, RecordId, RunStatus, Store,
    StoredAnnotation,
};
use serde_json::{json, Value};

use crate::calibrate::{in_fit_split, Calibrator, FitRow, GoldDecisions};
use crate::human::{free_column_name, output_fields, PeopleAnswers};
use crate::identity::ExamplePool;
use crate::judgment::{
    compare_judgment, is_generated, label_from_units, logprobs_of, rating_json, rationales_of,
    units_from_scores, value_names, CompareSummary,
};
use crate::neighbours::{Neighbours, Picked};
use crate::rows::{blocks, Item, ItemStream};
use crate::served::{self, ServedPlan, ServedSummary, StoreCache};
use crate::{Backend, Error, Reporter, Result, Shard, TaskIdentity};

/// Rows read back from the store per query when calibrating and writing the output.
const OUTPUT_BLOCK: usize = 512;
/// Records inserted per transaction while ingesting.
const INGEST_BATCH: usize = 10_000;
/// Distinct unknown gold values listed in the warning.
const UNKNOWN_GOLD_SHOWN: usize = 10;

/// One `assay label` run, its settings resolved.
#[derive(Debug, Clone)]
pub struct LabelJob {
    /// The task.
    pub spec: TaskSpec,
    /// The input dataset.
    pub input: PathBuf,
    /// The output file (.jsonl or .parquet).
    pub output: PathBuf,
    /// Label only the first N rows.
    pub limit: Option<u64>,
    /// CPU threads for the embedded model.
    pub threads: usize,
    /// This worker's share of the chunks.
    pub shard: Option<Shard>,
    /// `$ASSAY_HOME`: where cached models are (the probe's embedder).
    pub models_home: PathBuf,
}

/// What a run came to.
pub enum Outcome {
    /// `--plan`: nothing was scored.
    Planned(Plan),
    /// Labels were scored (or resumed), calibrated and written.
    Labeled(Box<Summary>),
}

/// `--plan`: what labeling the pending rows would take.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    /// Items still to label.
    pub pending: usize,
    /// The model.
    pub model: String,
    /// Served models: requests, cache hits, tokens and cost.
    pub served: Option<ServedPlan>,
}

/// What a run did, printed as tables and stored with the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub task: String,
    pub model: String,
    pub rows_read: u64,
    pub rows_skipped: u64,
    pub rows_failed: u64,
    pub scored_this_run: u64,
    pub scored_before: u64,
    pub labeled: u64,
    pub label_counts: Vec<(String, u64)>,
    pub confidence_histogram: Vec<u64>,
    pub calibration: String,
    /// `auto` calibration: what the cross-validation compared and chose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration_choice: Option<String>,
    pub gold_rows: usize,
    pub fit_rows: usize,
    pub eval_rows: usize,
    pub before: Option<assay_quality::metrics::ClassificationReport>,
    pub after: Option<assay_quality::metrics::ClassificationReport>,
    /// Compare tasks: outcomes, position consistency and agreement with the gold column.
    pub compare: Option<CompareSummary>,
    pub items_per_second: Option<f64>,
    pub tokens_per_second: Option<f64>,
    pub output: String,
    pub interrupted: bool,
    /// Served models: requests, cache hits, tokens and cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served: Option<ServedSummary>,
    /// The probe (`[probe]`): what it trained on, how it compares with the LLM, which labeler decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::probe::ProbeSummary>,
    /// Rows that could not be read (row number, reason).
    #[serde(skip)]
    pub row_errors: Vec<(u64, String)>,
    /// Rows the model could not label (row number, reason).
    #[serde(skip)]
    pub failures: Vec<(u64, String)>,
    /// Rows whose gold value names none of the task's labels.
    #[serde(skip)]
    pub unknown_gold: u64,
    /// The model returned no log-probabilities.
    #[serde(skip)]
    pub generated: bool,
}

/// Where a run's work goes: the store, the runtime its calls block on, and who hears of progress.
pub struct Context<'a> {
    /// The store.
    pub store: &'a Store,
    /// A runtime for the store's calls.
    pub rt: &'a tokio::runtime::Runtime,
    /// Progress and notices.
    pub reporter: &'a dyn Reporter,
    /// Set to stop after the chunk in flight (Ctrl-C).
    pub interrupted: Arc<AtomicBool>,
}

/// Label `job` with `backend`; `plan_only` estimates and scores nothing.
pub fn run(
    job: &LabelJob,
    backend: &Backend,
    cx: &Context<'_>,
    plan_only: bool,
) -> Result<Outcome> {
    let identity = TaskIdentity::of(&job.spec)?;
    let ingested = ingest(job, &identity.prompts, cx)?;
    let store = cx.store;
    let task_id = cx.rt.block_on(
        store.task(
            &job.spec.name,
            job.spec.kind.as_str(),
            &identity.task_hash,
            &serde_json::to_string(&job.spec)
                .map_err(|e| Error::Internal(format!("task spec to JSON: {e}")))?,
        ),
    )?;
    let annotator = backend.annotator();
    let done = cx.rt.block_on(store.annotated_rows(
        task_id,
        AnnotatorKind::Model,
        &annotator,
        ingested.dataset_id,
    ))?;
    if plan_only {
        return plan(
            job,
            backend,
            &identity.prompts,
            identity.example_pool.as_ref(),
            &done,
            cx,
        )
        .map(Outcome::Planned);
    }
    let run_id = cx.rt.block_on(store.start_run(&NewRun {
        task_id,
        dataset_id: ingested.dataset_id,
        annotator: annotator.clone(),
        model_sha256: backend.sha256().to_string(),
        prompt_hash: identity.prompt_hash.clone(),
    }))?;
    // From here on the run is in the store: whatever stops it marks it failed, with the reason.
    let labeled = (|| -> Result<Summary> {
        if !ingested.row_errors.is_empty() {
            cx.rt
                .block_on(store.record_row_errors(&run_id, &ingested.row_errors))?;
        }
        let source = AnnotationSource {
            task_id,
            run_id: run_id.clone(),
            annotator_kind: AnnotatorKind::Model,
            annotator,
            model_sha256: backend.sha256().to_string(),
            prompt_hash: identity.prompt_hash.clone(),
        };
        let scored = score(
            job,
            backend,
            &identity.prompts,
            identity.example_pool.as_ref(),
            &ingested,
            &done,
            &source,
            cx,
        )?;
        let readback = Readback {
            task_id,
            annotator: &source.annotator,
            dataset_id: ingested.dataset_id,
            run_id: &run_id,
        };
        let calibrator = fit_calibration(
            job,
            backend,
            &identity.prompts,
            &scored.content_free,
            &readback,
            cx,
        )?;
        let trained = crate::probe::stage(job, backend, &identity, &calibrator, &readback, cx)?;
        let written = write_output(
            job,
            backend,
            &identity,
            &ingested,
            &calibrator,
            &readback,
            &scored.failures,
            trained.as_ref(),
            cx,
        )?;
        let summary = summarize(job, backend, &ingested, scored, written, &calibrator);
        let status = if summary.interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Finished
        };
        let stored = serde_json::to_value(&summary)
            .map_err(|e| Error::Internal(format!("summary to JSON: {e}")))?;
        cx.rt.block_on(store.finish_run(&run_id, status, &stored))?;
        Ok(summary)
    })();
    let summary = match labeled {
        Ok(summary) => summary,
        Err(error) => {
            let reason = json!({"error": error.to_string()});
            if let Err(e) = cx
                .rt
                .block_on(store.finish_run(&run_id, RunStatus::Failed, &reason))
            {
                tracing::warn!(run = %run_id, error = %e, "could not mark the run failed");
            }
            return Err(error);
        }
    };
    Ok(Outcome::Labeled(Box::new(summary)))
}

/// What [`ingest`] learned of the input.
pub struct Ingested {
    dataset_id: i64,
    /// Row numbers of the rows that render, in order: chunks are formed over them.
    items: Vec<u64>,
    row_errors: Vec<(u64, String)>,
    unknown_gold: u64,
    columns: Vec<String>,
    arrow_schema: Option<arrow_schema::SchemaRef>,
}

/// Stage 1: stream the input into the store as the records of a dataset (identified by the file's SHA-256).
fn ingest(job: &LabelJob, prompts: &PromptBuilder, cx: &Context<'_>) -> Result<Ingested> {
    let mut stream = ItemStream::open(&job.input, &job.spec, prompts, job.limit)?;
    let reader = stream.reader();
    crate::rows::check_columns(&job.input, &job.spec, reader)?;
    let (format, columns, arrow_schema) = (
        reader.format(),
        reader.columns().to_vec(),
        reader.arrow_schema(),
    );
    let dataset_name = job
        .input
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("dataset")
        .to_string();
    let dataset_sha = assay_io::file_sha256(&job.input)?;
    let dataset_id = cx.rt.block_on(cx.store.dataset(
        &dataset_name,
        &job.input.display().to_string(),
        &dataset_sha,
        format.name(),
    ))?;
    let (mut items, mut row_errors, mut batch) = (Vec::new(), Vec::new(), Vec::new());
    let mut unknown_gold = 0u64;
    // The first distinct gold values that name no label, for the warning.
    let mut unknown_values: Vec<String> = Vec::new();
    for scanned in stream.by_ref() {
        match scanned {
            Err(error) => row_errors.push(error),
            Ok(item) => {
                unknown_gold += u64::from(item.unknown_gold);
                if item.unknown_gold && unknown_values.len() <= UNKNOWN_GOLD_SHOWN {
                    let cell = job.spec.gold.as_ref().and_then(|g| item.values.get(g));
                    let shown = match cell {
                        Some(Value::String(s)) => format!("{s:?}"),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    if !unknown_values.contains(&shown) {
                        unknown_values.push(shown);
                    }
                }
                items.push(item.index);
                batch.push((item.index, Value::Object(item.values).to_string()));
            }
        }
        if batch.len() >= INGEST_BATCH {
            cx.rt
                .block_on(cx.store.insert_records(dataset_id, &batch))?;
            batch.clear();
        }
    }
    cx.rt
        .block_on(cx.store.insert_records(dataset_id, &batch))?;
    for (index, reason) in &row_errors {
        tracing::warn!(row = index + 1, %reason, "skipping row");
    }
    if unknown_gold > 0 {
        let more = if unknown_values.len() > UNKNOWN_GOLD_SHOWN {
            unknown_values.truncate(UNKNOWN_GOLD_SHOWN);
            ", ..."
        } else {
            ""
        };
        cx.reporter.warn(&format!(
            "{unknown_gold} rows have a gold value that is not one of the task's outcomes ({}); they count as \
             unlabeled. The outcomes: {}",
            unknown_values.join(", ") + more,
            job.spec.outcome_names().join(", ")
        ));
    }
    Ok(Ingested {
        dataset_id,
        items,
        row_errors,
        unknown_gold,
        columns,
        arrow_schema,
    })
}

/// The requests of the content-free inputs (none for pair and rate tasks: judging both orders, or the model's
/// own distribution over scores, is their calibration).
fn content_free_requests(
    spec: &TaskSpec,
    prompts: &PromptBuilder,
) -> Vec<assay_core::ScoreRequest> {
    if matches!(spec.kind, TaskKind::Compare | TaskKind::Rate) {
        return Vec::new();
    }
    spec.calibration
        .content_free
        .iter()
        .map(|t| prompts.request(t))
        .collect()
}

/// `--plan`: the pending items' requests, priced against the response cache.
fn plan(
    job: &LabelJob,
    backend: &Backend,
    prompts: &PromptBuilder,
    pool: Option<&ExamplePool>,
    done: &HashSet<u64>,
    cx: &Context<'_>,
) -> Result<Plan> {
    let served = matches!(backend, Backend::Served(_));
    // A served model is priced on the requests it would get, similar examples included.
    let embed_model = match pool {
        Some(_) if served => Some(similar_examples_embedder(job, backend)?),
        _ => None,
    };
    let mut embedder = match &embed_model {
        Some(model) => Some(crate::probe::embedder(model, job.threads)?),
        None => None,
    };
    let mut neighbours = match (pool, embedder.as_mut()) {
        (Some(pool), Some(embedder)) => Some(Neighbours::new(pool, embedder, cx)?),
        _ => None,
    };
    let mut pending = 0;
    let mut requests = Vec::new();
    let stream = ItemStream::open(&job.input, &job.spec, prompts, job.limit)?;
    for block in blocks(stream, 64) {
        let block: Vec<Item> = block
            .into_iter()
            .filter(|i| !done.contains(&i.index))
            .collect();
        pending += block.len();
        if !served {
            continue;
        }
        match neighbours.as_mut() {
            Some(n) => {
                let texts: Vec<&str> = block.iter().map(|i| i.text.as_str()).collect();
                for (item, picked) in block.iter().zip(n.pick(&texts, cx)?) {
                    requests.push(prompts.request_with_examples(&item.text, &picked.examples));
                }
            }
            None => requests.extend(block.iter().map(|i| i.request(prompts, None))),
        }
    }
    let served = match backend {
        Backend::Served(model) => {
            requests.extend(content_free_requests(&job.spec, prompts));
            Some(served::plan(model, cx.store, cx.rt, &requests)?)
        }
        Backend::Embedded(_) | Backend::Custom(_) => None,
    };
    Ok(Plan {
        pending,
        model: backend.name().to_string(),
        served,
    })
}

/// What [`score`] did.
struct Scored {
    scored_this_run: u64,
    failures: Vec<(u64, String)>,
    content_free: Vec<Vec<Vec<f64>>>,
    interrupted: bool,
    seconds: f64,
    stats: ScoreStats,
    served: Option<assay_llm::openai::ServedStats>,
}

/// Stage 2: score the pending items chunk by chunk, each chunk committed in one transaction.
#[allow(clippy::too_many_arguments)]
fn score(
    job: &LabelJob,
    backend: &Backend,
    prompts: &PromptBuilder,
    pool: Option<&ExamplePool>,
    ingested: &Ingested,
    done: &HashSet<u64>,
    source: &AnnotationSource,
    cx: &Context<'_>,
) -> Result<Scored> {
    let mut scorer: Box<dyn Scorer + '_> = match backend {
        Backend::Embedded(model) => {
            let options = ScorerOptions {
                format: job.spec.model.prompt_format,
                threads: job.threads,
                batch_tokens: job.spec.model.batch_tokens,
                strategy: Strategy::CachedBatched,
            };
            Box::new(model.scorer(&prompts.prefix_probe(), options)?)
        }
        Backend::Served(model) => {
            let cache = StoreCache {
                store: cx.store,
                rt: cx.rt,
                run_id: source.run_id.clone(),
            };
            Box::new(model.scorer(Box::new(cache), cx.interrupted.clone()))
        }
        Backend::Custom(custom) => Box::new(custom.borrow()),
    };
    // `examples-from select = "similar"`: the pool is embedded before anything is scored.
    let embed_model = match pool {
        Some(_) => Some(similar_examples_embedder(job, backend)?),
        None => None,
    };
    let mut embedder = match &embed_model {
        Some(model) => Some(crate::probe::embedder(model, job.threads)?),
        None => None,
    };
    let mut neighbours = match (pool, embedder.as_mut()) {
        (Some(pool), Some(embedder)) => Some(Neighbours::new(pool, embedder, cx)?),
        _ => None,
    };
    // Content-free inputs first, as their own call, so every run starts from the same state.
    let content_free: Vec<Vec<Vec<f64>>> = scorer
        .score(&content_free_requests(&job.spec, prompts))?
        .into_iter()
        .filter_map(std::result::Result::ok)
        .map(|s| units_from_scores(&s))
        .collect();
    let chunk_items = backend.chunk_items();
    let mine = |chunk: usize| job.shard.is_none_or(|s| s.owns(chunk));
    let pending_total: usize = ingested
        .items
        .chunks(chunk_items)
        .enumerate()
        .filter(|(c, _)| mine(*c))
        .map(|(_, chunk)| chunk.iter().filter(|i| !done.contains(*i)).count())
        .sum();
    cx.reporter.start("labeling", Some(pending_total as u64));
    let started = Instant::now();
    let stats_before = scorer.stats();
    let mut served_before = scorer.served_stats().map(|_| Default::default());
    let mut scored = Scored {
        scored_this_run: 0,
        failures: Vec::new(),
        content_free,
        interrupted: false,
        seconds: 0.0,
        stats: ScoreStats::default(),
        served: None,
    };
    let stream = ItemStream::open(&job.input, &job.spec, prompts, job.limit)?;
    for (chunk_number, chunk) in blocks(stream, chunk_items).enumerate() {
        if cx.interrupted.load(Ordering::SeqCst) {
            break;
        }
        let pending: Vec<&Item> = chunk.iter().filter(|i| !done.contains(&i.index)).collect();
        if !mine(chunk_number) || pending.is_empty() {
            continue;
        }
        let (first, last) = (pending[0].index, pending[pending.len() - 1].index);
        let record_ids = cx.rt.block_on(cx.store.record_ids_between(
            ingested.dataset_id,
            first,
            last,
        ))?;
        let annotations = score_chunk(
            job,
            backend,
            prompts,
            &record_ids,
            &pending,
            scorer.as_mut(),
            neighbours.as_mut(),
            &mut scored.failures,
            cx,
        )?;
        scored.scored_this_run += cx
            .rt
            .block_on(cx.store.insert_annotations(source, &annotations.rows))?;
        if let (Backend::Served(model), Some(before), Some(now)) =
            (backend, served_before, scorer.served_stats())
        {
            cx.rt.block_on(
                cx.store
                    .add_run_usage(&source.run_id, &served::usage_delta(model, before, now)),
            )?;
            served_before = Some(now);
        }
        cx.reporter.advance(annotations.finished);
    }
    cx.reporter.finish();
    scored.seconds = started.elapsed().as_secs_f64();
    let now = scorer.stats();
    scored.stats = ScoreStats {
        items: now.items - stats_before.items,
        tokens_evaluated: now.tokens_evaluated - stats_before.tokens_evaluated,
        prefix_tokens: now.prefix_tokens,
        decode_seconds: now.decode_seconds - stats_before.decode_seconds,
    };
    scored.served = scorer.served_stats();
    if !scored.failures.is_empty() {
        cx.rt
            .block_on(cx.store.record_row_errors(&source.run_id, &scored.failures))?;
    }
    scored.interrupted = cx.interrupted.load(Ordering::SeqCst);
    Ok(scored)
}

/// A chunk's annotations, and how many of its items are finished (labeled or failed).
struct ChunkAnnotations {
    rows: Vec<NewAnnotation>,
    finished: u64,
}

/// The model that embeds for `examples-from select = "similar"`: its own embedder, else the probe's (with its
/// file), else the task's model.
fn similar_examples_embedder<'b>(
    job: &LabelJob,
    backend: &'b Backend,
) -> Result<crate::probe::EmbedModel<'b>> {
    let from = job
        .spec
        .examples_from
        .as_ref()
        .ok_or_else(|| Error::Internal("an example pool without examples-from".into()))?;
    let probe = job.spec.probe.as_ref();
    let (setting, path) = match (&from.embedder, probe) {
        (None, Some(p)) => ("probe.embedder", p.embedder_path.as_deref()),
        _ => ("examples-from.embedder", None),
    };
    crate::probe::open_embed_model(
        setting,
        from.embedder_name(probe),
        path,
        &job.models_home,
        backend,
    )
}

/// Score one chunk's pending items: chain-of-thought rationales first where the task asks for them, then every
/// option of every branch.
#[allow(clippy::too_many_arguments)]
fn score_chunk(
    job: &LabelJob,
    backend: &Backend,
    prompts: &PromptBuilder,
    record_ids: &HashMap<u64, RecordId>,
    pending: &[&Item],
    scorer: &mut dyn Scorer,
    neighbours: Option<&mut Neighbours<'_>>,
    failures: &mut Vec<(u64, String)>,
    cx: &Context<'_>,
) -> Result<ChunkAnnotations> {
    let rationales = rationales(job, backend, prompts, pending)?;
    let picked: Vec<Option<Picked>> = match neighbours {
        Some(n) => {
            let texts: Vec<&str> = pending.iter().map(|i| i.text.as_str()).collect();
            n.pick(&texts, cx)?.into_iter().map(Some).collect()
        }
        None => pending.iter().map(|_| None).collect(),
    };
    let requests: Vec<_> = pending
        .iter()
        .zip(&rationales)
        .zip(&picked)
        .map(|((i, r), p)| match p {
            Some(p) => prompts.request_with_examples(&i.text, &p.examples),
            None => i.request(prompts, r.as_ref()),
        })
        .collect();
    let results = scorer.score(&requests)?;
    let usage: Vec<Option<Value>> = match scorer.usage() {
        Some(u) => u.iter().map(|u| Some(json!(u))).collect(),
        None => vec![None; results.len()],
    };
    let generated = backend.generates();
    let mut chunk = ChunkAnnotations {
        rows: Vec::new(),
        finished: 0,
    };
    for ((((item, result), rationales), usage), picked) in pending
        .iter()
        .zip(results)
        .zip(rationales)
        .zip(usage)
        .zip(picked)
    {
        match result {
            Ok(scores) => {
                let label = label_from_units(&job.spec, &units_from_scores(&scores));
                // Rationales, a served model's usage and the rows of similar examples are stored beside the
                // log-probabilities (see `logprobs_of`).
                let mut scores = match (rationales, usage) {
                    (Some(r), _) => json!({"logprobs": scores, "rationales": r}),
                    (None, Some(u)) if generated => {
                        json!({"logprobs": scores, "usage": u, "generated": true})
                    }
                    (None, Some(u)) => json!({"logprobs": scores, "usage": u}),
                    (None, None) => json!(scores),
                };
                if let Some(p) = picked {
                    if !scores.is_object() {
                        scores = json!({"logprobs": scores});
                    }
                    scores["examples"] = json!(p.rows);
                }
                chunk.rows.push(NewAnnotation {
                    record_id: record_ids[&item.index],
                    scores,
                    value: label.value,
                    confidence: (!generated).then_some(label.confidence),
                    distribution: if generated {
                        Value::Null
                    } else {
                        label.distribution
                    },
                });
                chunk.finished += 1;
            }
            // Not a failure: a rerun scores it (its answers so far are in the cache).
            Err(reason) if reason == INTERRUPTED => {}
            Err(reason) => {
                failures.push((item.index, reason));
                chunk.finished += 1;
            }
        }
    }
    Ok(chunk)
}

/// Chain of thought: a greedy rationale per order of each pair (the embedded model only).
fn rationales(
    job: &LabelJob,
    backend: &Backend,
    prompts: &PromptBuilder,
    pending: &[&Item],
) -> Result<Vec<Option<[String; 2]>>> {
    let (Some(compare), Backend::Embedded(model)) = (job.spec.compare.as_ref(), backend) else {
        return Ok(vec![None; pending.len()]);
    };
    if !compare.chain_of_thought {
        return Ok(vec![None; pending.len()]);
    }
    pending
        .iter()
        .map(|item| {
            let pair = item
                .pair
                .as_ref()
                .ok_or_else(|| Error::Internal("a compare item without a pair".into()))?;
            let generate = |order| {
                model.generate(
                    &prompts.compare_rationale_prompt(pair, order),
                    job.spec.model.prompt_format,
                    compare.rationale_tokens,
                    job.threads,
                )
            };
            Ok(Some([
                generate(PairOrder::Forward)?,
                generate(PairOrder::Swapped)?,
            ]))
        })
        .collect()
}

/// Which annotations a run reads back.
pub(crate) struct Readback<'a> {
    pub(crate) task_id: i64,
    pub(crate) annotator: &'a str,
    pub(crate) dataset_id: i64,
    pub(crate) run_id: &'a str,
}

impl Readback<'_> {
    /// The stored annotations of a block of items, by record.
    pub(crate) fn block(
        &self,
        block: &[Item],
        cx: &Context<'_>,
    ) -> Result<HashMap<u64, StoredAnnotation>> {
        let (Some(first), Some(last)) = (block.first(), block.last()) else {
            return Ok(HashMap::new());
        };
        let stored = cx.rt.block_on(cx.store.annotations_in_rows(
            self.task_id,
            AnnotatorKind::Model,
            self.annotator,
            self.dataset_id,
            first.index..=last.index,
        ))?;
        Ok(stored.into_iter().map(|a| (a.row_index, a)).collect())
    }
}

/// The calibration spec in force: generated labels carry no distribution, so nothing is calibrated.
fn calibration_spec(spec: &TaskSpec, backend: &Backend) -> TaskSpec {
    let mut spec = spec.clone();
    if backend.generates() {
        spec.calibration.method = CalibrationMethod::None;
    }
    spec
}

/// Whether a gold row of `spec` is in the fit split.
fn in_fit(spec: &TaskSpec, index: u64) -> bool {
    in_fit_split(spec.calibration.seed, index, spec.calibration.fit_share)
}

/// Stage 3: the calibration, fitted on the gold rows of the fit split (read back block by block).
fn fit_calibration(
    job: &LabelJob,
    backend: &Backend,
    prompts: &PromptBuilder,
    content_free: &[Vec<Vec<f64>>],
    readback: &Readback<'_>,
    cx: &Context<'_>,
) -> Result<Calibrator> {
    let spec = calibration_spec(&job.spec, backend);
    let fits = matches!(spec.kind, TaskKind::Classify | TaskKind::MultiLabel)
        && matches!(
            spec.calibration.method,
            CalibrationMethod::Fitted | CalibrationMethod::Auto
        )
        && spec.gold.is_some();
    let mut fit: Vec<FitRow> = Vec::new();
    if fits {
        let stream = ItemStream::open(&job.input, &spec, prompts, job.limit)?;
        for block in blocks(stream, OUTPUT_BLOCK) {
            if !block
                .iter()
                .any(|i| i.gold.is_some() && in_fit(&spec, i.index))
            {
                continue;
            }
            let stored = readback.block(&block, cx)?;
            for item in block {
                let (Some(gold), true) = (item.gold, in_fit(&spec, item.index)) else {
                    continue;
                };
                let units = stored.get(&item.index).and_then(|a| logprobs_of(&a.scores));
                if let Some(scores) = units {
                    fit.push((units_from_scores(&scores), gold));
                }
            }
        }
    }
    Calibrator::build(&spec, content_free, &fit)
}

/// What [`write_output`] counted on the way.
struct Written {
    labeled: u64,
    label_counts: Vec<(String, u64)>,
    histogram: Vec<u64>,
    gold_rows: usize,
    eval_rows: usize,
    fit_rows: usize,
    before: GoldDecisions,
    after: GoldDecisions,
    compare: Option<CompareSummary>,
    labeled_cost_usd: f64,
    probe: Option<crate::probe::ProbeSummary>,
}

/// Stage 4: read each block's annotations back, calibrate and judge them, join people's answers, and write the
/// output row by row; the calibrated labels go back to the store.
#[allow(clippy::too_many_arguments)]
fn write_output(
    job: &LabelJob,
    backend: &Backend,
    identity: &TaskIdentity,
    ingested: &Ingested,
    calibrator: &Calibrator,
    readback: &Readback<'_>,
    failures: &[(u64, String)],
    probe: Option<&crate::probe::TrainedProbe>,
    cx: &Context<'_>,
) -> Result<Written> {
    let spec = &job.spec;
    let assay_column = free_column_name(&ingested.columns);
    // People's answers from `assay serve` flow back: each row gets them and its final label.
    let human = cx
        .rt
        .block_on(cx.store.human_annotations(readback.task_id))?;
    let people = PeopleAnswers::new(&human, &assay_column);
    let failed: HashMap<u64, &String> = failures.iter().map(|(i, r)| (*i, r)).collect();
    let options = assay_io::ParquetOptions {
        input_schema: ingested.arrow_schema.clone(),
        map_columns: vec![vec![assay_column.clone(), "distribution".into()]],
    };
    let mut writer = assay_io::OutputWriter::create(&job.output, options)?;
    let mut written = Written {
        labeled: 0,
        label_counts: spec.outcome_names().into_iter().map(|n| (n, 0)).collect(),
        histogram: vec![0; 10],
        gold_rows: 0,
        eval_rows: 0,
        fit_rows: 0,
        before: GoldDecisions::default(),
        after: GoldDecisions::default(),
        compare: spec.judges_pairs().then(CompareSummary::default),
        labeled_cost_usd: 0.0,
        probe: None,
    };
    let labeler = RowLabeler {
        spec,
        backend,
        calibrator,
        prompt_hash: &identity.prompt_hash,
    };
    let stream = ItemStream::open(&job.input, spec, &identity.prompts, job.limit)?;
    let mut held_out = crate::probe::HeldOut::default();
    for block in blocks(stream, OUTPUT_BLOCK) {
        let stored = readback.block(&block, cx)?;
        let mut calibrated = Vec::new();
        let llm_of = |index: u64| {
            let scores = logprobs_of(&stored.get(&index)?.scores)?;
            Some(calibrator.apply(&units_from_scores(&scores)))
        };
        let probe_block = probe
            .map(|p| p.block(spec, &block, &llm_of, cx))
            .transpose()?;
        let mut probe_labels = Vec::new();
        for item in block {
            let annotation = stored.get(&item.index);
            let mut assay = match annotation.and_then(|a| logprobs_of(&a.scores).map(|s| (a, s))) {
                Some((stored, scores)) => {
                    let (mut assay, label) =
                        labeler.label(&item, stored, &units_from_scores(&scores), &mut written);
                    calibrated.push(label);
                    // Rows the fitted calibration learned from: `qc` and `eval` leave them out of their figures.
                    if item.gold.is_some() && calibrator.is_fitted() && in_fit(spec, item.index) {
                        assay["calibration_fit"] = Value::Bool(true);
                    }
                    if let (Some(p), Some(pb)) = (probe, &probe_block) {
                        let held = item.gold.is_some()
                            && !(calibrator.is_fitted() && in_fit(spec, item.index));
                        let llm_label = assay["label"].clone();
                        if let Some(label) = p.apply(
                            spec,
                            &item,
                            pb,
                            llm_of(item.index),
                            held,
                            &mut assay,
                            &mut held_out,
                        ) {
                            if p.chosen == assay_core::Labeler::Probe {
                                // The summary counts final labels: the probe's replace the LLM's.
                                written.recount(&llm_label, &label.label.value);
                            }
                            probe_labels.push((item.index, label));
                        }
                    }
                    assay
                }
                None => {
                    let reason = failed
                        .get(&item.index)
                        .map_or("not labeled yet", |r| r.as_str());
                    json!({"label": Value::Null, "confidence": Value::Null, "error": reason})
                }
            };
            let (human, final_label) = output_fields(&assay["label"], people.for_row(&item.values));
            assay["human"] = human;
            assay["final"] = final_label;
            let mut row = item.values;
            row.insert(assay_column.clone(), assay);
            writer.write_row(&row)?;
        }
        cx.rt.block_on(cx.store.update_calibrated(&calibrated))?;
        if let Some(p) = probe {
            p.store_labels(readback, probe_labels, cx)?;
        }
    }
    writer.finish()?;
    written.probe = probe.map(|p| p.summary_with(held_out));
    Ok(written)
}

impl Written {
    /// Move one row's count from the label `from` to `to`.
    fn recount(&mut self, from: &Value, to: &Value) {
        for (names, step) in [(value_names(from), -1i64), (value_names(to), 1)] {
            for name in names {
                if let Some(entry) = self.label_counts.iter_mut().find(|(n, _)| *n == name) {
                    entry.1 = entry.1.saturating_add_signed(step);
                }
            }
        }
    }
}

/// Turns one stored annotation into the output's `assay` object and its calibrated label.
struct RowLabeler<'a> {
    spec: &'a TaskSpec,
    backend: &'a Backend,
    calibrator: &'a Calibrator,
    prompt_hash: &'a str,
}

impl RowLabeler<'_> {
    fn label(
        &self,
        item: &Item,
        stored: &StoredAnnotation,
        raw: &[Vec<f64>],
        written: &mut Written,
    ) -> (Value, CalibratedLabel) {
        let spec = self.spec;
        let units = self.calibrator.apply(raw);
        let label = label_from_units(spec, &units);
        let generated = is_generated(&stored.scores);
        self.count(item, raw, &units, &label, generated, written);
        if let Some(usage) = served::row_usage(&stored.scores) {
            written.labeled_cost_usd += usage.cost_usd;
        }
        let provenance = Provenance {
            annotator_kind: AnnotatorKind::Model,
            annotator: self.backend.name().to_string(),
            model_sha256: self.backend.sha256().to_string(),
            prompt_hash: self.prompt_hash.to_string(),
            task: spec.name.clone(),
            run_id: stored.run_id.clone(),
            calibration: self.calibrator.name.clone(),
            labeled_at: stored.created_at.clone(),
        };
        let mut assay = json!({"label": label.value, "confidence": label.confidence, "distribution": label.distribution});
        if let Some(judgment) = compare_judgment(spec, &units) {
            assay["preference"] = judgment.to_json();
            if let Some(r) = rationales_of(&stored.scores) {
                assay["preference"]["rationales"] = json!({"ab": r[0], "ba": r[1]});
            }
        }
        if let Some(rating) = rating_json(spec, &units) {
            assay["rating"] = rating;
        }
        if generated {
            assay["confidence"] = Value::Null;
            assay["distribution"] = Value::Null;
        } else if self.calibrator.name != "none" && !spec.judges_pairs() {
            // The model's own distribution stays beside the calibrated one.
            assay["raw_distribution"] = label_from_units(spec, raw).distribution;
        }
        if let Some(usage) = stored.scores.get("usage") {
            assay["usage"] = usage.clone();
        }
        // `select = "similar"`: the examples file's rows (0-based) this item's prompt showed, the nearest last.
        if let Some(rows) = stored.scores.get("examples") {
            assay["examples"] = rows.clone();
        }
        assay["provenance"] = json!(provenance);
        let calibrated = CalibratedLabel {
            annotation_id: stored.id,
            value: label.value,
            confidence: (!generated).then_some(label.confidence),
            distribution: if generated {
                Value::Null
            } else {
                label.distribution
            },
        };
        (assay, calibrated)
    }

    /// Count a labeled row in the summary: label counts, confidence histogram, gold decisions, pair outcomes.
    fn count(
        &self,
        item: &Item,
        raw: &[Vec<f64>],
        units: &[Vec<f64>],
        label: &crate::judgment::Label,
        generated: bool,
        written: &mut Written,
    ) {
        let spec = self.spec;
        written.labeled += 1;
        for name in value_names(&label.value) {
            if let Some(entry) = written.label_counts.iter_mut().find(|(n, _)| *n == name) {
                entry.1 += 1;
            }
        }
        if !generated {
            written.histogram[((label.confidence * 10.0) as usize).min(9)] += 1;
        }
        if let (Some(summary), Some(judgment)) =
            (written.compare.as_mut(), compare_judgment(spec, units))
        {
            summary.add(&judgment, item.gold.as_ref().map(|g| g[0]));
        }
        let Some(gold) = &item.gold else {
            return;
        };
        written.gold_rows += 1;
        if self.calibrator.is_fitted() && in_fit(spec, item.index) {
            written.fit_rows += 1;
        } else if !matches!(spec.kind, TaskKind::Compare | TaskKind::Rate) {
            written.eval_rows += 1;
            written.before.add(spec, raw, gold);
            written.after.add(spec, units, gold);
        } else {
            written.eval_rows += 1;
        }
    }
}

/// The run's summary from what its stages counted.
fn summarize(
    job: &LabelJob,
    backend: &Backend,
    ingested: &Ingested,
    scored: Scored,
    written: Written,
    calibrator: &Calibrator,
) -> Summary {
    let rows_read = ingested.items.len() as u64 + ingested.row_errors.len() as u64;
    let served = match (backend, scored.served) {
        (Backend::Served(model), Some(now)) => Some(ServedSummary {
            endpoint: model.config().endpoint.clone(),
            scoring: model.mode().as_str().to_string(),
            run: now,
            labeled_cost_usd: written.labeled_cost_usd,
            projected_cost_usd: if written.labeled == 0 {
                0.0
            } else {
                written.labeled_cost_usd / written.labeled as f64 * rows_read as f64
            },
            prices: model.config().prices,
        }),
        _ => None,
    };
    let stats = scored.stats;
    Summary {
        task: job.spec.name.clone(),
        model: format!(
            "{} ({})",
            backend.name(),
            crate::backend::short(backend.sha256())
        ),
        rows_read,
        rows_skipped: ingested.row_errors.len() as u64,
        rows_failed: scored.failures.len() as u64,
        scored_this_run: scored.scored_this_run,
        scored_before: written.labeled.saturating_sub(scored.scored_this_run),
        labeled: written.labeled,
        label_counts: written.label_counts,
        confidence_histogram: written.histogram,
        calibration: calibrator.name.clone(),
        calibration_choice: calibrator.choice.clone(),
        gold_rows: written.gold_rows,
        fit_rows: written.fit_rows,
        eval_rows: written.eval_rows,
        before: written.before.report(),
        after: written.after.report(),
        compare: written.compare,
        items_per_second: (scored.scored_this_run > 0)
            .then(|| scored.scored_this_run as f64 / scored.seconds),
        tokens_per_second: (stats.decode_seconds > 0.0)
            .then(|| stats.tokens_evaluated as f64 / stats.decode_seconds),
        output: job.output.display().to_string(),
        interrupted: scored.interrupted,
        served,
        probe: written.probe,
        row_errors: ingested.row_errors.clone(),
        failures: scored.failures,
        unknown_gold: ingested.unknown_gold,
        generated: backend.generates(),
    }
}
