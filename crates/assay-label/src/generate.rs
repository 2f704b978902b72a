//! The generation stage of a generate task (`type = "generate"`): each seed row's prompt is answered by the
//! model, and every response becomes a row of its own that says where it came from.
//!
//! 1. Ingest: the seed rows become the records of a dataset in the store (as `assay label` does), so the task's
//!    annotations attach to them.
//! 2. Generate: the pending rows, chunk by chunk ([`CHUNK_ROWS`]); each chunk's responses are committed in one
//!    transaction as annotations of (task, seed record, model), their text and token counts in `scores`. A rerun
//!    skips every seed row that has them, so it generates nothing twice; `kill -9` loses at most the chunk in
//!    flight. Each response's sampling seed is derived from the task's seed, the row and the sample number only,
//!    so a resumed run writes exactly what an uninterrupted one would.
//! 3. Write: the responses are read back from the store and written as rows with an `assay_origin` column
//!    (`kind = "synthetic"`, the generator's model, file hash, prompt hash and task, the generation depth and the
//!    parent rows), then the written file is ingested as a dataset of its own: every generated row is a record.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use assay_core::generate::{parse_instructions, GenerateMode, GenerateTaskSpec, PromptTemplate};
use assay_core::prompt::{ChatMessage, PromptSpec, Role};
use assay_core::AnnotatorKind;
use assay_llm::embedded::EmbeddedModel;
use assay_llm::sampling::{splitmix64, Generated, Sampling};
use assay_store::{AnnotationSource, NewAnnotation, NewRun, RunStatus};
use serde_json::{json, Map, Value};

use crate::run::Context;
use crate::{Error, Result};

/// Seed rows per committed chunk: generation is slow (hundreds of tokens per row), so a `kill -9` should lose
/// little.
pub const CHUNK_ROWS: usize = 4;
/// Records inserted per transaction while ingesting.
const INGEST_BATCH: usize = 5_000;
/// The column of a generated row that says where it came from (the origin contract of issues 14 and 15).
pub const ORIGIN_COLUMN: &str = "assay_origin";
/// The column with how a response was sampled (seed, tokens, whether it was truncated).
pub const GENERATION_COLUMN: &str = "assay_generation";

/// One generation run, its settings resolved.
#[derive(Debug, Clone)]
pub struct GenerateJob {
    /// The task.
    pub spec: GenerateTaskSpec,
    /// The seed rows.
    pub input: PathBuf,
    /// Where the generated rows go (.jsonl or .parquet).
    pub output: PathBuf,
    /// Generate for the first N seed rows only.
    pub limit: Option<u64>,
    /// CPU threads for llama.cpp.
    pub threads: usize,
}

/// What a generation run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenerateSummary {
    pub task: String,
    pub model: String,
    pub run_id: String,
    pub seed_rows: u64,
    /// Seed rows answered by this run.
    pub generated_this_run: u64,
    /// Seed rows whose responses an earlier run had stored.
    pub generated_before: u64,
    /// Generated rows written.
    pub rows_written: u64,
    /// Of those, responses that reached `max-tokens`.
    pub truncated: u64,
    pub tokens_generated: u64,
    pub seconds: f64,
    pub output: String,
    /// The output file's SHA-256: the dataset its rows are records of.
    pub output_sha256: String,
    pub interrupted: bool,
    /// Seed rows that could not be read or rendered, or that the model could not answer (row number, reason).
    #[serde(skip)]
    pub row_errors: Vec<(u64, String)>,
}

/// The model a generate task names: `model.path`, else the cached model `model.name` under `models_home`.
pub fn open_model(spec: &GenerateTaskSpec, models_home: &std::path::Path) -> Result<EmbeddedModel> {
    if let Some(path) = &spec.model.path {
        if !path.exists() {
            return Err(Error::usage(
                format!("model file {} does not exist", path.display()),
                "fix `model.path` in the task file, or remove it to use a cached model",
            ));
        }
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        return Ok(EmbeddedModel::load(
            path,
            name,
            &assay_llm::cache::file_sha256(path)?,
        )?);
    }
    match assay_llm::cache::ModelCache::new(models_home).get(&spec.model.name)? {
        Some(model) => Ok(EmbeddedModel::load(
            &model.path,
            &model.name,
            &model.sha256,
        )?),
        None => Err(Error::usage(
            format!("model `{}` is not in the cache", spec.model.name),
            format!("run `assay model fetch {}` first", spec.model.name),
        )),
    }
}

/// The sampling seed of response `sample` of seed row `row`: fixed by the task's seed, the row and the sample.
pub fn response_seed(task_seed: u64, row: u64, sample: u64) -> u64 {
    let mut state = task_seed
        ^ row.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ sample.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7);
    splitmix64(&mut state)
}

/// A seed row's generation depth: its own `assay_origin.depth`, or 0 for a row without an origin (human or
/// imported data).
pub fn row_depth(values: &Map<String, Value>) -> u64 {
    values
        .get(ORIGIN_COLUMN)
        .and_then(|o| o.get("depth"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// A seed row rendered into the conversation the model answers.
struct SeedRow {
    index: u64,
    values: Map<String, Value>,
    prompt_text: String,
}

/// Reads and renders the seed rows in file order; a row that does not read or render is an `Err` with its number.
struct SeedRows<'t> {
    reader: assay_io::DatasetReader,
    template: &'t PromptTemplate,
    remaining: Option<u64>,
}

impl Iterator for SeedRows<'_> {
    type Item = std::result::Result<SeedRow, (u64, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == Some(0) {
            return None;
        }
        let row = self.reader.next()?;
        if let Some(r) = self.remaining.as_mut() {
            *r -= 1;
        }
        Some(match row {
            Err(e) => Err((e.index, e.reason)),
            Ok(row) => match self.template.render(&row.values) {
                Ok(prompt_text) => Ok(SeedRow {
                    index: row.index,
                    values: row.values,
                    prompt_text,
                }),
                Err(e) => Err((row.index, e.to_string())),
            },
        })
    }
}

fn seed_rows_of<'t>(job: &GenerateJob, template: &'t PromptTemplate) -> Result<SeedRows<'t>> {
    Ok(SeedRows {
        reader: assay_io::open_dataset(&job.input)?,
        template,
        remaining: job.limit,
    })
}

fn conversation(spec: &GenerateTaskSpec, prompt_text: &str) -> PromptSpec {
    let mut messages = Vec::new();
    if let Some(system) = &spec.generate.system {
        messages.push(ChatMessage {
            role: Role::System,
            content: system.clone(),
        });
    }
    messages.push(ChatMessage {
        role: Role::User,
        content: prompt_text.to_string(),
    });
    PromptSpec { messages }
}

/// Run a generate task's generation stage with `model`.
pub fn run(job: &GenerateJob, model: &EmbeddedModel, cx: &Context<'_>) -> Result<GenerateSummary> {
    let spec = &job.spec;
    let template = PromptTemplate::new(&spec.generate)?;
    let store = cx.store;
    let dataset_sha = assay_io::file_sha256(&job.input)?;
    let dataset_name = job
        .input
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("dataset");
    let format = assay_io::Format::from_path(&job.input)?;
    let dataset_id = cx.rt.block_on(store.dataset(
        dataset_name,
        &job.input.display().to_string(),
        &dataset_sha,
        format.name(),
    ))?;
    // Stage 1: ingest.
    let (mut items, mut row_errors, mut batch) = (Vec::new(), Vec::new(), Vec::new());
    for scanned in seed_rows_of(job, &template)? {
        match scanned {
            Err(error) => row_errors.push(error),
            Ok(row) => {
                items.push(row.index);
                batch.push((row.index, Value::Object(row.values).to_string()));
            }
        }
        if batch.len() >= INGEST_BATCH {
            cx.rt.block_on(store.insert_records(dataset_id, &batch))?;
            batch.clear();
        }
    }
    cx.rt.block_on(store.insert_records(dataset_id, &batch))?;
    let spec_json = serde_json::to_string(spec)
        .map_err(|e| Error::Internal(format!("task spec to JSON: {e}")))?;
    let task_id =
        cx.rt
            .block_on(store.task(&spec.name, "generate", &spec.spec_hash(), &spec_json))?;
    let info = model.info();
    let annotator = format!("{}@{}", info.name, crate::backend::short(&info.sha256));
    let prompt_hash = spec.prompt_hash();
    if spec.generate.mode == GenerateMode::SelfInstruct {
        let seeds = SelfInstructSeeds {
            dataset_sha: &dataset_sha,
            items: &items,
            row_errors,
        };
        let ids = Identity {
            task_id,
            annotator: &annotator,
            prompt_hash: &prompt_hash,
        };
        return self_instruct(job, &template, model, seeds, ids, cx);
    }
    let done = cx.rt.block_on(store.annotated_rows(
        task_id,
        AnnotatorKind::Model,
        &annotator,
        dataset_id,
    ))?;
    let run_id = cx.rt.block_on(store.start_run(&NewRun {
        task_id,
        dataset_id,
        annotator: annotator.clone(),
        model_sha256: info.sha256.clone(),
        prompt_hash: prompt_hash.clone(),
    }))?;
    let started = Instant::now();
    let result = (|| -> Result<GenerateSummary> {
        let source = AnnotationSource {
            task_id,
            run_id: run_id.clone(),
            annotator_kind: AnnotatorKind::Model,
            annotator: annotator.clone(),
            model_sha256: info.sha256.clone(),
            prompt_hash: prompt_hash.clone(),
        };
        // Stage 2: generate.
        let pending = items.iter().filter(|i| !done.contains(i)).count();
        cx.reporter.start("generating", Some(pending as u64));
        let (mut generated_this_run, mut tokens_generated) = (0u64, 0u64);
        let mut failures = Vec::new();
        let mut chunk: Vec<SeedRow> = Vec::new();
        let mut rows = seed_rows_of(job, &template)?
            .flatten()
            .filter(|r| !done.contains(&r.index))
            .peekable();
        let mut interrupted = false;
        while rows.peek().is_some() {
            if cx.interrupted.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            chunk.clear();
            chunk.extend(rows.by_ref().take(CHUNK_ROWS));
            let first = chunk[0].index;
            let last = chunk[chunk.len() - 1].index;
            let record_ids = cx
                .rt
                .block_on(store.record_ids_between(dataset_id, first, last))?;
            let mut annotations = Vec::new();
            for row in &chunk {
                match generate_row(job, model, row) {
                    Ok(samples) => {
                        tokens_generated += samples.iter().map(|s| s.1.tokens as u64).sum::<u64>();
                        annotations.push(NewAnnotation {
                            record_id: record_ids[&row.index],
                            value: json!(samples.first().map(|s| s.1.text.clone())),
                            scores: json!({
                                "generated": true,
                                "samples": samples.iter().map(|(seed, g)| json!({
                                    "seed": seed,
                                    "text": g.text,
                                    "tokens": g.tokens,
                                    "finished": g.finished,
                                })).collect::<Vec<_>>(),
                            }),
                            confidence: None,
                            distribution: Value::Null,
                        });
                    }
                    Err(reason) => failures.push((row.index, reason)),
                }
            }
            generated_this_run += cx
                .rt
                .block_on(store.insert_annotations(&source, &annotations))?;
            cx.reporter.advance(chunk.len() as u64);
        }
        cx.reporter.finish();
        interrupted |= cx.interrupted.load(Ordering::SeqCst);
        if !failures.is_empty() {
            cx.rt
                .block_on(store.record_row_errors(&run_id, &failures))?;
        }
        row_errors.extend(failures);
        row_errors.sort();
        // Stage 3: write.
        let written = write_generated(
            job,
            &template,
            &dataset_sha,
            dataset_id,
            task_id,
            &annotator,
            info,
            cx,
        )?;
        let output_sha256 = assay_io::file_sha256(&job.output)?;
        ingest_output(job, &output_sha256, cx)?;
        let answered = written.seed_rows_answered;
        Ok(GenerateSummary {
            task: spec.name.clone(),
            model: annotator.clone(),
            run_id: run_id.clone(),
            seed_rows: items.len() as u64,
            generated_this_run,
            generated_before: answered.saturating_sub(generated_this_run),
            rows_written: written.rows,
            truncated: written.truncated,
            tokens_generated,
            seconds: started.elapsed().as_secs_f64(),
            output: job.output.display().to_string(),
            output_sha256,
            interrupted,
            row_errors: row_errors.clone(),
        })
    })();
    close_run(&run_id, &result, cx);
    result
}

/// The responses of one seed row, each with its sampling seed; `Err` is the row's reason (a prompt too long for
/// the context, say).
/// Mark a run finished, interrupted or failed (with the error), whatever ended it.
fn close_run(run_id: &str, result: &Result<GenerateSummary>, cx: &Context<'_>) {
    let (status, stored) = match result {
        Ok(summary) => (
            if summary.interrupted {
                RunStatus::Interrupted
            } else {
                RunStatus::Finished
            },
            serde_json::to_value(summary).unwrap_or(Value::Null),
        ),
        Err(e) => (RunStatus::Failed, json!({"error": e.to_string()})),
    };
    if let Err(e) = cx.rt.block_on(cx.store.finish_run(run_id, status, &stored)) {
        tracing::warn!(run = %run_id, error = %e, "could not close the run");
    }
}

fn generate_row(
    job: &GenerateJob,
    model: &EmbeddedModel,
    row: &SeedRow,
) -> std::result::Result<Vec<(u64, Generated)>, String> {
    let g = &job.spec.generate;
    let prompt = conversation(&job.spec, &row.prompt_text);
    (0..g.samples as u64)
        .map(|sample| {
            let seed = response_seed(g.seed, row.index, sample);
            let sampling = Sampling {
                temperature: g.temperature,
                top_p: g.top_p,
                max_tokens: g.max_tokens,
                seed,
            };
            model
                .generate_sampled(
                    &prompt,
                    job.spec.model.prompt_format,
                    &sampling,
                    job.threads,
                )
                .map(|generated| (seed, generated))
                .map_err(|e| e.to_string())
        })
        .collect()
}

struct Written {
    rows: u64,
    truncated: u64,
    seed_rows_answered: u64,
}

/// Stage 3: stream the seed rows again; each block's stored responses become output rows.
#[allow(clippy::too_many_arguments)]
fn write_generated(
    job: &GenerateJob,
    template: &PromptTemplate,
    dataset_sha: &str,
    dataset_id: i64,
    task_id: i64,
    annotator: &str,
    info: &assay_llm::ModelInfo,
    cx: &Context<'_>,
) -> Result<Written> {
    let g = &job.spec.generate;
    let mut writer = assay_io::OutputWriter::create(&job.output, Default::default())?;
    let mut written = Written {
        rows: 0,
        truncated: 0,
        seed_rows_answered: 0,
    };
    let generator = json!({
        "model": info.name,
        "model_sha256": info.sha256,
        "prompt_hash": job.spec.prompt_hash(),
        "task": job.spec.name,
    });
    let mut rows = seed_rows_of(job, template)?.flatten().peekable();
    while rows.peek().is_some() {
        let block: Vec<SeedRow> = rows.by_ref().take(512).collect();
        let (first, last) = (block[0].index, block[block.len() - 1].index);
        let stored: HashMap<u64, Value> = cx
            .rt
            .block_on(cx.store.annotations_in_rows(
                task_id,
                AnnotatorKind::Model,
                annotator,
                dataset_id,
                first..=last,
            ))?
            .into_iter()
            .map(|a| (a.row_index, a.scores))
            .collect();
        for row in &block {
            let Some(scores) = stored.get(&row.index) else {
                continue;
            };
            written.seed_rows_answered += 1;
            let parent_id = g
                .id_column
                .as_ref()
                .and_then(|c| row.values.get(c))
                .cloned()
                .unwrap_or(Value::Null);
            let origin = json!({
                "kind": "synthetic",
                "generator": generator,
                "depth": row_depth(&row.values) + 1,
                "parents": [{"dataset_sha256": dataset_sha, "row_index": row.index, "id": parent_id}],
            });
            let samples = scores
                .get("samples")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (sample, s) in samples.iter().enumerate() {
                let finished = s.get("finished").and_then(Value::as_bool).unwrap_or(false);
                let mut out = Map::new();
                out.insert(g.prompt_column.clone(), json!(row.prompt_text));
                out.insert(
                    g.response_column.clone(),
                    s.get("text").cloned().unwrap_or(Value::Null),
                );
                out.insert(ORIGIN_COLUMN.into(), origin.clone());
                out.insert(
                    GENERATION_COLUMN.into(),
                    json!({
                        "sample": sample,
                        "seed": s.get("seed"),
                        "tokens": s.get("tokens"),
                        "truncated": !finished,
                        "temperature": g.temperature,
                        "top_p": g.top_p,
                        "max_tokens": g.max_tokens,
                    }),
                );
                written.truncated += u64::from(!finished);
                writer.write_row(&out)?;
                written.rows += 1;
            }
        }
    }
    writer.finish()?;
    Ok(written)
}

/// The written rows become the records of a dataset of their own (named by the file's hash), so that each
/// generated row is a record, as a later task over the file would make it.
fn ingest_output(job: &GenerateJob, sha256: &str, cx: &Context<'_>) -> Result<()> {
    let name = job
        .output
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("generated");
    let format = assay_io::Format::from_path(&job.output)?;
    let id = cx.rt.block_on(cx.store.dataset(
        name,
        &job.output.display().to_string(),
        sha256,
        format.name(),
    ))?;
    let mut batch = Vec::new();
    for row in assay_io::open_dataset(&job.output)?.flatten() {
        batch.push((row.index, Value::Object(row.values).to_string()));
        if batch.len() >= INGEST_BATCH {
            cx.rt.block_on(cx.store.insert_records(id, &batch))?;
            batch.clear();
        }
    }
    cx.rt.block_on(cx.store.insert_records(id, &batch))?;
    Ok(())
}

/// The seed rows a self-instruct run samples from.
struct SelfInstructSeeds<'a> {
    dataset_sha: &'a str,
    items: &'a [u64],
    row_errors: Vec<(u64, String)>,
}

/// The task version and the annotator the calls are filed under.
struct Identity<'a> {
    task_id: i64,
    annotator: &'a str,
    prompt_hash: &'a str,
}

/// Which `k` of the seed rows call `call` shows: a seeded partial shuffle, fixed by the task's seed and the call.
pub fn call_seed_rows(task_seed: u64, call: u64, items: &[u64], k: usize) -> Vec<u64> {
    let mut state = response_seed(task_seed ^ 0x5E1F_1257_0C41_0000, call, 1);
    let mut pool = items.to_vec();
    let k = k.min(pool.len());
    for i in 0..k {
        let offset =
            ((u128::from(splitmix64(&mut state)) * (pool.len() - i) as u128) >> 64) as usize;
        pool.swap(i, i + offset);
    }
    pool.truncate(k);
    pool
}

/// Self-instruct: `calls` model calls, each shown `seeds-per-call` sampled seed instructions and asked for
/// `instructions-per-call` new ones. The calls are the records of a dataset of their own (named by the seed file,
/// the task version and the call count), so a call's answer is stored like a label and a rerun or a resumed run
/// makes no call twice. The answers are parsed line by line; an instruction too close (word-trigram Jaccard) to
/// a seed or to an instruction kept before it goes to `<output>.duplicates.jsonl` with its reason.
fn self_instruct(
    job: &GenerateJob,
    template: &PromptTemplate,
    model: &EmbeddedModel,
    seeds: SelfInstructSeeds<'_>,
    ids: Identity<'_>,
    cx: &Context<'_>,
) -> Result<GenerateSummary> {
    let (spec, g, store) = (&job.spec, &job.spec.generate, cx.store);
    if seeds.items.is_empty() {
        return Err(Error::usage(
            format!(
                "{}: no seed row could be read and rendered",
                job.input.display()
            ),
            "check the seed file and `generate.prompt`",
        ));
    }
    // The seed rows, rendered: what calls show, what new instructions are compared with, whose depth they extend.
    let mut seed_rows: HashMap<u64, SeedRow> = HashMap::new();
    for row in seed_rows_of(job, template)?.flatten() {
        seed_rows.insert(row.index, row);
    }
    let calls_identity =
        json!({"seeds": seeds.dataset_sha, "task": spec.spec_hash(), "calls": g.calls});
    let calls_sha = assay_core::sha256_hex(calls_identity.to_string().as_bytes());
    let calls_dataset = cx.rt.block_on(store.dataset(
        &format!("{}.self-instruct-calls", spec.name),
        &job.input.display().to_string(),
        &calls_sha,
        "self-instruct-calls",
    ))?;
    let calls: Vec<(u64, Vec<u64>)> = (0..g.calls as u64)
        .map(|c| (c, call_seed_rows(g.seed, c, seeds.items, g.seeds_per_call)))
        .collect();
    let records: Vec<(u64, String)> = calls
        .iter()
        .map(|(c, rows)| (*c, json!({"call": c, "seed_rows": rows}).to_string()))
        .collect();
    cx.rt
        .block_on(store.insert_records(calls_dataset, &records))?;
    let done = cx.rt.block_on(store.annotated_rows(
        ids.task_id,
        AnnotatorKind::Model,
        ids.annotator,
        calls_dataset,
    ))?;
    let info = model.info();
    let run_id = cx.rt.block_on(store.start_run(&NewRun {
        task_id: ids.task_id,
        dataset_id: calls_dataset,
        annotator: ids.annotator.to_string(),
        model_sha256: info.sha256.clone(),
        prompt_hash: ids.prompt_hash.to_string(),
    }))?;
    let started = Instant::now();
    let result = (|| -> Result<GenerateSummary> {
        let source = AnnotationSource {
            task_id: ids.task_id,
            run_id: run_id.clone(),
            annotator_kind: AnnotatorKind::Model,
            annotator: ids.annotator.to_string(),
            model_sha256: info.sha256.clone(),
            prompt_hash: ids.prompt_hash.to_string(),
        };
        let pending: Vec<&(u64, Vec<u64>)> =
            calls.iter().filter(|(c, _)| !done.contains(c)).collect();
        cx.reporter
            .start("self-instruct calls", Some(pending.len() as u64));
        let (mut made, mut tokens_generated, mut interrupted) = (0u64, 0u64, false);
        let mut failures = Vec::new();
        for chunk in pending.chunks(CHUNK_ROWS) {
            if cx.interrupted.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            let record_ids = cx.rt.block_on(store.record_ids_between(
                calls_dataset,
                chunk[0].0,
                chunk[chunk.len() - 1].0,
            ))?;
            let mut annotations = Vec::new();
            for (call, rows) in chunk.iter().map(|c| (c.0, &c.1)) {
                let examples: Vec<String> = rows
                    .iter()
                    .map(|r| seed_rows[r].prompt_text.clone())
                    .collect();
                let prompt = conversation(spec, &g.self_instruct_prompt(&examples));
                let seed = response_seed(g.seed, call, 0);
                let sampling = Sampling {
                    temperature: g.temperature,
                    top_p: g.top_p,
                    max_tokens: g.max_tokens,
                    seed,
                };
                match model.generate_sampled(
                    &prompt,
                    spec.model.prompt_format,
                    &sampling,
                    job.threads,
                ) {
                    Ok(generated) => {
                        tokens_generated += generated.tokens as u64;
                        annotations.push(NewAnnotation {
                            record_id: record_ids[&call],
                            value: json!(generated.text),
                            scores: json!({
                                "generated": true,
                                "samples": [{"seed": seed, "text": generated.text, "tokens": generated.tokens, "finished": generated.finished}],
                            }),
                            confidence: None,
                            distribution: Value::Null,
                        });
                    }
                    Err(e) => {
                        failures.push((call, format!("self-instruct call {}: {e}", call + 1)))
                    }
                }
            }
            made += cx
                .rt
                .block_on(store.insert_annotations(&source, &annotations))?;
            cx.reporter.advance(chunk.len() as u64);
        }
        cx.reporter.finish();
        interrupted |= cx.interrupted.load(Ordering::SeqCst);
        if !failures.is_empty() {
            cx.rt
                .block_on(store.record_row_errors(&run_id, &failures))?;
        }
        let written = write_instructions(
            job,
            &seeds,
            &seed_rows,
            &calls,
            calls_dataset,
            &ids,
            info,
            cx,
        )?;
        let output_sha256 = assay_io::file_sha256(&job.output)?;
        ingest_output(job, &output_sha256, cx)?;
        let mut row_errors = seeds.row_errors.clone();
        row_errors.extend(failures);
        Ok(GenerateSummary {
            task: spec.name.clone(),
            model: ids.annotator.to_string(),
            run_id: run_id.clone(),
            seed_rows: seeds.items.len() as u64,
            generated_this_run: made,
            generated_before: written.seed_rows_answered.saturating_sub(made),
            rows_written: written.rows,
            truncated: written.truncated,
            tokens_generated,
            seconds: started.elapsed().as_secs_f64(),
            output: job.output.display().to_string(),
            output_sha256,
            interrupted,
            row_errors,
        })
    })();
    close_run(&run_id, &result, cx);
    result
}

/// Write the parsed, deduplicated instructions of every answered call, in call order.
#[allow(clippy::too_many_arguments)]
fn write_instructions(
    job: &GenerateJob,
    seeds: &SelfInstructSeeds<'_>,
    seed_rows: &HashMap<u64, SeedRow>,
    calls: &[(u64, Vec<u64>)],
    calls_dataset: i64,
    ids: &Identity<'_>,
    info: &assay_llm::ModelInfo,
    cx: &Context<'_>,
) -> Result<Written> {
    let g = &job.spec.generate;
    let stored: HashMap<u64, Value> = cx
        .rt
        .block_on(cx.store.annotations_in_rows(
            ids.task_id,
            AnnotatorKind::Model,
            ids.annotator,
            calls_dataset,
            0..=calls.len().saturating_sub(1) as u64,
        ))?
        .into_iter()
        .map(|a| (a.row_index, a.scores))
        .collect();
    let generator = json!({
        "model": info.name,
        "model_sha256": info.sha256,
        "prompt_hash": ids.prompt_hash,
        "task": job.spec.name,
    });
    let shingles = |text: &str| crate::gate::Shingles::of(text, 3);
    let seed_shingles: Vec<(u64, crate::gate::Shingles)> = seed_rows
        .iter()
        .map(|(i, r)| (*i, shingles(&r.prompt_text)))
        .collect();
    let mut kept: Vec<crate::gate::Shingles> = Vec::new();
    let mut writer = assay_io::OutputWriter::create(&job.output, Default::default())?;
    let duplicates_path = {
        let stem = job
            .output
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("generated");
        job.output
            .with_file_name(format!("{stem}.duplicates.jsonl"))
    };
    let mut duplicates = assay_io::OutputWriter::create(&duplicates_path, Default::default())?;
    let mut written = Written {
        rows: 0,
        truncated: 0,
        seed_rows_answered: 0,
    };
    for (call, rows) in calls {
        let Some(sample) = stored.get(call).and_then(|s| s.pointer("/samples/0")) else {
            continue;
        };
        written.seed_rows_answered += 1;
        let finished = sample
            .get("finished")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        written.truncated += u64::from(!finished);
        let text = sample.get("text").and_then(Value::as_str).unwrap_or("");
        let parents: Vec<Value> = rows
            .iter()
            .map(|r| {
                let id = g
                    .id_column
                    .as_ref()
                    .and_then(|c| seed_rows[r].values.get(c))
                    .cloned()
                    .unwrap_or(Value::Null);
                json!({"dataset_sha256": seeds.dataset_sha, "row_index": r, "id": id})
            })
            .collect();
        let depth = rows
            .iter()
            .map(|r| row_depth(&seed_rows[r].values))
            .max()
            .unwrap_or(0)
            + 1;
        for (position, instruction) in parse_instructions(text, !finished, g.instructions_per_call)
            .into_iter()
            .enumerate()
        {
            let own = shingles(&instruction);
            let near_seed = seed_shingles
                .iter()
                .map(|(i, s)| (*i, s.jaccard(&own)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .filter(|(_, j)| *j >= g.max_similarity);
            let near_kept = kept
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.jaccard(&own)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .filter(|(_, j)| *j >= g.max_similarity);
            let mut out = Map::new();
            out.insert(g.prompt_column.clone(), json!(instruction));
            out.insert(ORIGIN_COLUMN.into(), json!({"kind": "synthetic", "generator": generator, "depth": depth, "parents": parents}));
            out.insert(
                GENERATION_COLUMN.into(),
                json!({"call": call, "position": position, "seed": sample.get("seed"), "tokens": sample.get("tokens"),
                       "truncated": false, "temperature": g.temperature, "top_p": g.top_p, "max_tokens": g.max_tokens}),
            );
            let reason = match (near_seed, near_kept) {
                (Some((row, j)), _) => Some(format!(
                    "near-duplicate of seed row {} (Jaccard {j:.2})",
                    row + 1
                )),
                (None, Some((row, j))) => Some(format!(
                    "near-duplicate of new instruction {} (Jaccard {j:.2})",
                    row + 1
                )),
                (None, None) => None,
            };
            match reason {
                Some(reason) => {
                    out.insert(
                        "assay_gate".into(),
                        json!({"kept": false, "check": "dedup", "reason": reason}),
                    );
                    duplicates.write_row(&out)?;
                }
                None => {
                    kept.push(own);
                    writer.write_row(&out)?;
                    written.rows += 1;
                }
            }
        }
    }
    writer.finish()?;
    duplicates.finish()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_seeds_depend_on_row_and_sample_only() {
        assert_eq!(response_seed(7, 3, 0), response_seed(7, 3, 0));
        let seeds: std::collections::HashSet<u64> = (0..50)
            .flat_map(|row| (0..4).map(move |s| response_seed(7, row, s)))
            .collect();
        assert_eq!(seeds.len(), 200, "every (row, sample) gets its own seed");
        assert_ne!(response_seed(7, 3, 0), response_seed(8, 3, 0));
    }

    #[test]
    fn depth_is_the_rows_own_or_zero() {
        let human: Map<String, Value> = serde_json::from_str(r#"{"text": "hi"}"#).unwrap();
        assert_eq!(row_depth(&human), 0);
        let generated: Map<String, Value> = serde_json::from_str(
            r#"{"text": "hi", "assay_origin": {"kind": "synthetic", "depth": 2}}"#,
        )
        .unwrap();
        assert_eq!(row_depth(&generated), 2);
    }
}
