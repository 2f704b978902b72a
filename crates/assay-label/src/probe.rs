//! The probe: a cheap labeler that learns from people. Multinomial logistic regression (`assay-learn`) on text
//! embeddings, trained on the task's gold rows in the fit split and on people's answers from `assay serve`,
//! calibrated by temperature scaling on out-of-fold predictions (never on its own training rows), and compared
//! with the LLM by cross-validated accuracy so `labeler = "auto"` can say what it picked and why.
//!
//! Embeddings are stored (`Store::embeddings`, keyed by the embedder's identity and the embedded text's hash), so a
//! rerun embeds nothing twice; the LLM's scores are never recomputed either, so retraining after new answers costs
//! only the fit.

use std::path::Path;

use assay_core::task::preference_code;
use assay_core::{AnnotatorKind, Labeler, ProbeSpec, TaskKind, TaskSpec};
use assay_learn::cv::{accuracy, apply_temperature, fit_temperature, out_of_fold};
use assay_learn::logistic::{FitOptions, LogisticRegression};
use assay_llm::cache::ModelCache;
use assay_llm::embed::{EmbedOptions, EmbeddedEmbedder, Embedder};
use assay_llm::embedded::EmbeddedModel;
use serde_json::{json, Value};

use crate::calibrate::{in_fit_split, Calibrator, GoldDecisions};
use crate::human::{human_majority, PeopleAnswers};
use crate::judgment::{compare_judgment, logprobs_of, units_from_scores};
use crate::rows::{blocks, Item, ItemStream};
use crate::run::{Context, LabelJob, Readback};
use crate::{Backend, Error, Result};

/// The start of every probe's annotator name.
pub const PROBE_PREFIX: &str = "probe:";

/// Texts embedded per call.
const EMBED_BLOCK: usize = 64;
/// Seed of the cross-validation folds.
const FOLD_SEED: u64 = 0x5eed;

/// The model that embeds: the task's own embedded model, or a cached embedding model.
pub enum EmbedModel<'b> {
    /// The LLM of the run (`embedder = "llm"`).
    Borrowed(&'b EmbeddedModel),
    /// A model loaded for embedding.
    Owned(Box<EmbeddedModel>),
}

impl EmbedModel<'_> {
    fn model(&self) -> &EmbeddedModel {
        match self {
            Self::Borrowed(m) => m,
            Self::Owned(m) => m,
        }
    }
}

/// Load the embedder the task's `[probe]` names.
pub fn open_model<'b>(
    probe: &ProbeSpec,
    models_home: &Path,
    backend: &'b Backend,
) -> Result<EmbedModel<'b>> {
    open_embed_model(
        "probe.embedder",
        &probe.embedder,
        probe.embedder_path.as_deref(),
        models_home,
        backend,
    )
}

/// Load an embedder by name (`setting` names the task setting in errors): a GGUF file given by path, `llm` for
/// the task's own embedded model, or a cached model.
pub fn open_embed_model<'b>(
    setting: &str,
    name: &str,
    path: Option<&Path>,
    models_home: &Path,
    backend: &'b Backend,
) -> Result<EmbedModel<'b>> {
    if let Some(path) = path {
        let sha = assay_llm::cache::file_sha256(path)?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("embedder");
        return Ok(EmbedModel::Owned(Box::new(EmbeddedModel::load(
            path, name, &sha,
        )?)));
    }
    if name == "llm" {
        return match backend {
            Backend::Embedded(model) => Ok(EmbedModel::Borrowed(model)),
            _ => Err(Error::usage(
                format!("`{setting} = \"llm\"` embeds with the task's embedded model, and this task's model is served"),
                format!("set `{setting}` to a cached embedding model, e.g. \"all-minilm-l6-v2\" (`assay model fetch all-minilm-l6-v2`)"),
            )),
        };
    }
    match ModelCache::new(models_home).get(name)? {
        Some(m) => Ok(EmbedModel::Owned(Box::new(EmbeddedModel::load(
            &m.path, &m.name, &m.sha256,
        )?))),
        None => Err(Error::usage(
            format!("the embedding model `{name}` (`{setting}`) is not in the cache"),
            format!("run `assay model fetch {name}` first"),
        )),
    }
}

/// What the probe predicts: one of a classify task's labels, or which response of a compare task's pair is
/// better (features: the difference of the two "context + response" embeddings; ties are not trained on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Labels(usize),
    Pair,
}

impl Target {
    fn of(spec: &TaskSpec) -> Self {
        if spec.kind == TaskKind::Compare {
            Self::Pair
        } else {
            Self::Labels(spec.labels.len())
        }
    }

    fn classes(self) -> usize {
        match self {
            Self::Labels(n) => n,
            Self::Pair => 2,
        }
    }

    /// The LLM's view of a row as the probe's extra features and its rival: the calibrated distribution, or for
    /// a pair the judge's debiased [P(response 1 better), P(response 2 better)]; uniform when unscored.
    fn llm(self, spec: &TaskSpec, units: Option<Vec<Vec<f64>>>) -> Vec<f64> {
        let classes = self.classes();
        let uniform = || vec![1.0 / classes as f64; classes];
        match (self, units) {
            (Self::Labels(_), Some(mut u)) if !u.is_empty() => u.swap_remove(0),
            (Self::Pair, Some(u)) => compare_judgment(spec, &u)
                .map(|j| vec![j.soft, 1.0 - j.soft])
                .unwrap_or_else(uniform),
            _ => uniform(),
        }
    }

    /// The units of a probe distribution, as the task's judgment reads them: for a pair, the two orders of a
    /// judge without position bias (AB: P("1") = P(response 1 better); BA, response 2 shown first: P("1") =
    /// P(response 2 better)).
    fn units(self, p: &[f64]) -> Vec<Vec<f64>> {
        match self {
            Self::Labels(_) => vec![p.to_vec()],
            Self::Pair => vec![vec![p[0], p[1]], vec![p[1], p[0]]],
        }
    }
}

/// The texts of an item that are embedded: its input, or for a pair the context followed by each response.
pub(crate) fn item_texts(item: &Item) -> Vec<String> {
    match &item.pair {
        Some(pair) => pair
            .responses
            .iter()
            .map(|r| format!("{}\n\n{r}", pair.context))
            .collect(),
        None => vec![item.text.clone()],
    }
}

/// The probe's input from the stored vectors of an item's texts: the vector, or for a pair the difference.
fn item_vector(target: Target, vectors: &[&Vec<f32>]) -> Vec<f32> {
    match (target, vectors) {
        (Target::Pair, [a, b]) => a.iter().zip(b.iter()).map(|(x, y)| x - y).collect(),
        (_, [v, ..]) => v.to_vec(),
        (_, []) => Vec::new(),
    }
}

/// The hex SHA-256 of a text: its key among stored embeddings.
fn text_key(text: &str) -> String {
    assay_core::sha256_hex(text.as_bytes())
}

/// The key of an embedder's stored vectors. Readable and exact: the name and pooling, then the start of the key
/// that covers file, pooling and truncation.
pub(crate) fn embedder_key(embedder: &dyn Embedder) -> String {
    let info = embedder.info();
    format!(
        "{}/{}@{}",
        info.name,
        info.pooling.as_str(),
        &info.key()[..16]
    )
}

/// The vectors of `texts` in order: stored ones read back, the rest computed and stored. Returns them and how many
/// were computed.
pub(crate) fn embed_cached(
    embedder: &mut dyn Embedder,
    key: &str,
    texts: &[&str],
    cx: &Context<'_>,
) -> Result<(Vec<Vec<f32>>, u64)> {
    let keys: Vec<String> = texts.iter().map(|t| text_key(t)).collect();
    let mut stored = cx.rt.block_on(cx.store.embeddings(key, &keys))?;
    // A text repeated within the call is embedded once.
    let mut seen = std::collections::HashSet::new();
    let missing: Vec<(String, String)> = texts
        .iter()
        .zip(&keys)
        .filter(|(_, k)| !stored.contains_key(*k) && seen.insert(k.as_str()))
        .map(|(t, k)| (k.clone(), t.to_string()))
        .collect();
    let computed = missing.len() as u64;
    if !missing.is_empty() {
        let to_embed: Vec<String> = missing.iter().map(|(_, t)| t.clone()).collect();
        let vectors = embedder.embed(&to_embed)?;
        let rows: Vec<(String, Vec<f32>)> =
            missing.into_iter().map(|(k, _)| k).zip(vectors).collect();
        cx.rt.block_on(cx.store.store_embeddings(key, &rows))?;
        stored.extend(rows);
    }
    let vectors =
        keys.iter()
            .map(|k| {
                stored.get(k).cloned().ok_or_else(|| {
                    Error::Internal(format!("embedding {k} missing after storing it"))
                })
            })
            .collect::<Result<_>>()?;
    Ok((vectors, computed))
}

/// Stage `embed`: every item's rendered text embedded once; stored vectors are reused. Returns the embedder's key
/// and how many were computed in this run.
pub(crate) fn embed_all(
    job: &LabelJob,
    prompts: &assay_core::PromptBuilder,
    embedder: &mut dyn Embedder,
    cx: &Context<'_>,
) -> Result<(String, u64)> {
    let key = embedder_key(embedder);
    let stream = ItemStream::open(&job.input, &job.spec, prompts, job.limit)?;
    cx.reporter.start("embedding", None);
    let mut computed = 0;
    for block in blocks(stream, EMBED_BLOCK) {
        let owned: Vec<String> = block.iter().flat_map(item_texts).collect();
        let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
        computed += embed_cached(embedder, &key, &texts, cx)?.1;
        cx.reporter.advance(block.len() as u64);
    }
    cx.reporter.finish();
    Ok((key, computed))
}

/// A trained probe, or why there is none.
#[derive(Debug, Clone)]
pub struct TrainedProbe {
    target: Target,
    model: LogisticRegression,
    temperature: f64,
    llm_features: bool,
    embedder_key: String,
    /// Which labeler gives the final label.
    pub chosen: Labeler,
    /// The figures behind the choice.
    pub summary: ProbeSummary,
    /// Row numbers the probe trained on (their figures would be in-sample).
    trained_rows: std::collections::HashSet<u64>,
}

/// What the probe learned and how it compares, for the summary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProbeSummary {
    /// The embedder's identity.
    pub embedder: String,
    /// Rows it trained on: gold rows of the fit split, and rows people answered.
    pub train_rows: usize,
    /// Of which answered by people.
    pub people_rows: usize,
    /// SHA-256 of the training set (row keys and labels).
    pub train_sha256: String,
    /// Cross-validated accuracy of the probe on its training rows.
    pub cv_accuracy: f64,
    /// The LLM's (calibrated) accuracy on the same rows.
    pub llm_accuracy: f64,
    /// The temperature fitted on out-of-fold predictions.
    pub temperature: f64,
    /// The labeler that decides, and why.
    pub labeler: String,
    /// Why.
    pub reason: String,
    /// Texts embedded in this run (the rest came from the store).
    pub embedded_this_run: u64,
    /// Held-out gold rows (neither the calibration nor the probe saw them): the probe's figures.
    pub held_out_probe: Option<assay_quality::metrics::ClassificationReport>,
    /// The LLM's (calibrated) figures on the same rows.
    pub held_out_llm: Option<assay_quality::metrics::ClassificationReport>,
    /// How many rows those are.
    pub held_out_rows: usize,
}

/// A training row: its features, label and whether people gave it.
struct TrainRow {
    index: u64,
    text_keys: Vec<String>,
    label: usize,
    llm: Vec<f64>,
    by_people: bool,
}

/// The label of a row for training: people's plurality where they answered, else its gold label when it is in
/// the fit split (up to `max_gold_rows`).
fn training_label(
    spec: &TaskSpec,
    item: &Item,
    people: &PeopleAnswers,
    gold_taken: &mut usize,
    max_gold: usize,
) -> Option<(usize, bool)> {
    let pair = spec.kind == TaskKind::Compare;
    if let Some((value, _)) = human_majority(people.for_row(&item.values)) {
        let label = if pair {
            preference_code(&value).filter(|&c| c < 2)
        } else {
            value.as_str().and_then(|v| spec.label_index(v))
        };
        if let Some(i) = label {
            return Some((i, true));
        }
    }
    // A pair judged a tie teaches neither response.
    let gold = item.gold.as_ref().filter(|g| !pair || g[0] < 2)?;
    if !in_fit_split(
        spec.calibration.seed,
        item.index,
        spec.calibration.fit_share,
    ) || *gold_taken >= max_gold
    {
        return None;
    }
    *gold_taken += 1;
    Some((gold[0], false))
}

/// Stage `train`: gather the training rows, cross-validate, calibrate, fit, and choose the labeler.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train(
    job: &LabelJob,
    prompts: &assay_core::PromptBuilder,
    probe: &ProbeSpec,
    embedder_key: &str,
    calibrator: &Calibrator,
    readback: &Readback<'_>,
    people: &PeopleAnswers,
    cx: &Context<'_>,
) -> Result<Option<TrainedProbe>> {
    let spec = &job.spec;
    let target = Target::of(spec);
    let classes = target.classes();
    let mut rows: Vec<TrainRow> = Vec::new();
    let mut gold_taken = 0;
    let max_gold = probe.max_gold_rows.unwrap_or(usize::MAX);
    let stream = ItemStream::open(&job.input, spec, prompts, job.limit)?;
    for block in blocks(stream, 512) {
        let stored = readback.block(&block, cx)?;
        for item in block {
            let Some((label, by_people)) =
                training_label(spec, &item, people, &mut gold_taken, max_gold)
            else {
                continue;
            };
            let units = stored
                .get(&item.index)
                .and_then(|a| logprobs_of(&a.scores))
                .map(|s| calibrator.apply(&units_from_scores(&s)));
            let llm = target.llm(spec, units);
            rows.push(TrainRow {
                index: item.index,
                text_keys: item_texts(&item).iter().map(|t| text_key(t)).collect(),
                label,
                llm,
                by_people,
            });
        }
    }
    if rows.len() < probe.min_rows {
        cx.reporter.warn(&format!(
            "probe: {} labeled rows (gold in the fit split, or answered by people); it trains from {} (`probe.min-rows`)",
            rows.len(),
            probe.min_rows
        ));
        return Ok(None);
    }
    let keys: Vec<String> = rows.iter().flat_map(|r| r.text_keys.clone()).collect();
    let vectors = cx.rt.block_on(cx.store.embeddings(embedder_key, &keys))?;
    let x: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            let own: Vec<&Vec<f32>> = r.text_keys.iter().map(|k| &vectors[k]).collect();
            features(&item_vector(target, &own), &r.llm, probe.llm_features)
        })
        .collect();
    let y: Vec<usize> = rows.iter().map(|r| r.label).collect();
    let options = FitOptions {
        c: probe.c,
        ..FitOptions::default()
    };
    let oof = out_of_fold(&x, &y, classes, probe.folds, FOLD_SEED, &options)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let temperature = fit_temperature(&oof, &y);
    let model = LogisticRegression::fit(&x, &y, classes, &options)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let cv_accuracy = accuracy(&oof, &y);
    let llm: Vec<Vec<f64>> = rows.iter().map(|r| r.llm.clone()).collect();
    let llm_accuracy = accuracy(&llm, &y);
    let (chosen, reason) = choose(probe.labeler, cv_accuracy, llm_accuracy, rows.len());
    let train_sha256 = assay_core::sha256_hex(
        rows.iter()
            .map(|r| format!("{}:{}", r.text_keys.join("+"), r.label))
            .collect::<Vec<_>>()
            .join("\n")
            .as_bytes(),
    );
    let summary = ProbeSummary {
        embedder: embedder_key.to_string(),
        train_rows: rows.len(),
        people_rows: rows.iter().filter(|r| r.by_people).count(),
        train_sha256,
        cv_accuracy,
        llm_accuracy,
        temperature,
        labeler: chosen.as_str().to_string(),
        reason,
        ..ProbeSummary::default()
    };
    Ok(Some(TrainedProbe {
        target,
        model,
        temperature,
        llm_features: probe.llm_features,
        embedder_key: embedder_key.to_string(),
        chosen,
        summary,
        trained_rows: rows.iter().map(|r| r.index).collect(),
    }))
}

/// `auto`: the probe when its cross-validated accuracy is at least the LLM's on the same rows.
fn choose(labeler: Labeler, probe: f64, llm: f64, rows: usize) -> (Labeler, String) {
    let figures = format!(
        "cross-validated accuracy on {rows} labeled rows: probe {:.1}%, llm {:.1}%",
        100.0 * probe,
        100.0 * llm
    );
    match labeler {
        Labeler::Auto if probe >= llm => {
            (Labeler::Probe, format!("auto chose the probe: {figures}"))
        }
        Labeler::Auto => (Labeler::Llm, format!("auto chose the llm: {figures}")),
        other => (
            other,
            format!("the task chose {}: {figures}", other.as_str()),
        ),
    }
}

/// The probe's input: the embedding, and the LLM's calibrated distribution when stacking.
fn features(vector: &[f32], llm: &[f64], with_llm: bool) -> Vec<f64> {
    let mut x: Vec<f64> = vector.iter().map(|&v| f64::from(v)).collect();
    if with_llm {
        x.extend_from_slice(llm);
    }
    x
}

/// A probe's label of one row, and for a pair the log-probabilities of its two orders (stored like a judge's).
pub(crate) struct ProbeLabel {
    pub label: crate::judgment::Label,
    logprobs: Option<Value>,
}

/// The probe's view of one block of rows: its distributions by row number.
pub(crate) struct ProbeBlock {
    distributions: std::collections::HashMap<u64, Vec<f64>>,
}

impl TrainedProbe {
    /// The probe's calibrated distributions for a block (rows without a stored embedding are left out).
    pub(crate) fn block(
        &self,
        spec: &TaskSpec,
        block: &[Item],
        llm: &dyn Fn(u64) -> Option<Vec<Vec<f64>>>,
        cx: &Context<'_>,
    ) -> Result<ProbeBlock> {
        let keys: Vec<Vec<String>> = block
            .iter()
            .map(|i| item_texts(i).iter().map(|t| text_key(t)).collect())
            .collect();
        let all: Vec<String> = keys.iter().flatten().cloned().collect();
        let vectors = cx
            .rt
            .block_on(cx.store.embeddings(&self.embedder_key, &all))?;
        let mut distributions = std::collections::HashMap::new();
        for (item, keys) in block.iter().zip(&keys) {
            let Some(own) = keys
                .iter()
                .map(|k| vectors.get(k))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let llm = self.target.llm(spec, llm(item.index));
            let p = self.model.predict_proba(&features(
                &item_vector(self.target, &own),
                &llm,
                self.llm_features,
            ));
            distributions.insert(item.index, apply_temperature(&p, self.temperature));
        }
        Ok(ProbeBlock { distributions })
    }

    /// Whether the probe trained on this row.
    pub(crate) fn trained_on(&self, index: u64) -> bool {
        self.trained_rows.contains(&index)
    }

    /// The annotator name of its labels.
    pub fn annotator(&self) -> String {
        format!("{PROBE_PREFIX}{}", self.embedder_key)
    }

    /// Provenance of its labels.
    pub fn provenance(&self) -> Value {
        json!({
            "annotator_kind": AnnotatorKind::Model.as_str(),
            "annotator": self.annotator(),
            "train_rows": self.summary.train_rows,
            "people_rows": self.summary.people_rows,
            "train_sha256": self.summary.train_sha256,
            "temperature": self.temperature,
            "calibration": "temperature (out-of-fold)",
        })
    }
}

impl ProbeBlock {
    /// The probe's distribution of a row.
    pub(crate) fn get(&self, index: u64) -> Option<&Vec<f64>> {
        self.distributions.get(&index)
    }
}

/// Held-out figures of the probe and the LLM on the same rows, accumulated one row at a time.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeldOut {
    pub probe: GoldDecisions,
    pub llm: GoldDecisions,
    pub rows: usize,
}

/// Open the embedder and embed every item; `None` when the task has no `[probe]`.
pub(crate) fn embedder<'m>(
    model: &'m EmbedModel<'_>,
    threads: usize,
) -> Result<EmbeddedEmbedder<'m>> {
    let options = EmbedOptions {
        threads,
        ..EmbedOptions::default()
    };
    Ok(EmbeddedEmbedder::new(model.model(), options)?)
}

/// Stage `probe` (tasks with `[probe]`): embed every item (stored vectors reused), then train on gold rows of
/// the fit split and people's answers. `None` without `[probe]`, or with too few labeled rows.
pub(crate) fn stage(
    job: &LabelJob,
    backend: &Backend,
    identity: &crate::TaskIdentity,
    calibrator: &Calibrator,
    readback: &Readback<'_>,
    cx: &Context<'_>,
) -> Result<Option<TrainedProbe>> {
    let Some(probe) = &job.spec.probe else {
        return Ok(None);
    };
    let model = open_model(probe, &job.models_home, backend)?;
    let (key, computed) = {
        let mut embedder = embedder(&model, job.threads)?;
        embed_all(job, &identity.prompts, &mut embedder, cx)?
    };
    let human = cx
        .rt
        .block_on(cx.store.human_annotations(readback.task_id))?;
    let columns = ItemStream::open(&job.input, &job.spec, &identity.prompts, job.limit)?
        .reader()
        .columns()
        .to_vec();
    let people = PeopleAnswers::new(&human, &crate::human::free_column_name(&columns));
    let trained = train(
        job,
        &identity.prompts,
        probe,
        &key,
        calibrator,
        readback,
        &people,
        cx,
    )?;
    Ok(trained.map(|mut t| {
        t.summary.embedded_this_run = computed;
        t
    }))
}

impl TrainedProbe {
    /// Put the probe's label into a row's `assay` object (and, when the probe decides, make it the row's label,
    /// keeping the LLM's under `llm`); count held-out rows. Returns the probe's label to store.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &self,
        spec: &TaskSpec,
        item: &Item,
        block: &ProbeBlock,
        llm: Option<Vec<Vec<f64>>>,
        held_out_row: bool,
        assay: &mut Value,
        held_out: &mut HeldOut,
    ) -> Option<ProbeLabel> {
        let p = block.get(item.index)?;
        let units = self.target.units(p);
        let label = crate::judgment::label_from_units(spec, &units);
        if let (true, Some(gold), Some(llm)) = (
            held_out_row && !self.trained_on(item.index),
            &item.gold,
            llm,
        ) {
            match self.target {
                Target::Labels(_) => {
                    held_out.rows += 1;
                    held_out.probe.add(spec, &units, gold);
                    held_out
                        .llm
                        .add(spec, &[self.target.llm(spec, Some(llm))], gold);
                }
                Target::Pair if gold[0] < 2 => {
                    held_out.rows += 1;
                    held_out.probe.add_pair(p[0], gold[0]);
                    held_out
                        .llm
                        .add_pair(self.target.llm(spec, Some(llm))[0], gold[0]);
                }
                Target::Pair => {}
            }
        }
        let judgment = compare_judgment(spec, &units);
        assay["probe"] = json!({
            "label": label.value,
            "confidence": label.confidence,
            "distribution": label.distribution,
            "provenance": self.provenance(),
        });
        if let Some(j) = &judgment {
            assay["probe"]["preference"] = j.to_json();
        }
        if self.chosen == Labeler::Probe {
            let raw = assay
                .as_object_mut()
                .and_then(|o| o.remove("raw_distribution"))
                .unwrap_or(Value::Null);
            assay["llm"] = json!({
                "label": assay["label"].clone(),
                "confidence": assay["confidence"].clone(),
                "distribution": assay["distribution"].clone(),
                "raw_distribution": raw,
            });
            if let Some(j) = &judgment {
                assay["llm"]["preference"] = assay["preference"].take();
                assay["preference"] = j.to_json();
            }
            assay["label"] = label.value.clone();
            assay["confidence"] = json!(label.confidence);
            assay["distribution"] = label.distribution.clone();
        }
        assay["labeler"] = json!(self.chosen.as_str());
        Some(ProbeLabel {
            logprobs: (self.target == Target::Pair).then(|| {
                json!(units
                    .iter()
                    .map(|u| u.iter().map(|p| p.max(1e-300).ln()).collect::<Vec<_>>())
                    .collect::<Vec<_>>())
            }),
            label,
        })
    }

    /// Store a block's probe labels as annotations of their own (replacing the previous probe's).
    pub(crate) fn store_labels(
        &self,
        readback: &Readback<'_>,
        labels: Vec<(u64, ProbeLabel)>,
        cx: &Context<'_>,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (labels.first().map(|l| l.0), labels.last().map(|l| l.0))
        else {
            return Ok(());
        };
        let ids = cx.rt.block_on(
            cx.store
                .record_ids_between(readback.dataset_id, first, last),
        )?;
        let rows: Vec<assay_store::NewAnnotation> = labels
            .into_iter()
            .filter_map(|(index, ProbeLabel { label, logprobs })| {
                let mut scores =
                    json!({"probe": label.distribution, "train_sha256": self.summary.train_sha256});
                // A pair's probe annotation reads like a judge's (see `judgment_from_scores`), so `export` and
                // `eval` take it as they take the LLM's.
                if let Some(logprobs) = logprobs {
                    scores["logprobs"] = logprobs;
                }
                Some(assay_store::NewAnnotation {
                    record_id: *ids.get(&index)?,
                    scores,
                    value: label.value,
                    confidence: Some(label.confidence),
                    distribution: label.distribution,
                })
            })
            .collect();
        let source = assay_store::AnnotationSource {
            task_id: readback.task_id,
            run_id: readback.run_id.to_string(),
            annotator_kind: AnnotatorKind::Model,
            annotator: self.annotator(),
            model_sha256: String::new(),
            prompt_hash: self.summary.train_sha256.clone(),
        };
        cx.rt
            .block_on(cx.store.upsert_annotations(&source, &rows))?;
        Ok(())
    }

    /// The summary with the held-out figures.
    pub(crate) fn summary_with(&self, held_out: HeldOut) -> ProbeSummary {
        ProbeSummary {
            held_out_probe: held_out.probe.report(),
            held_out_llm: held_out.llm.report(),
            held_out_rows: held_out.rows,
            ..self.summary.clone()
        }
    }
}

/// Reasons for the choice, tested without a model.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_the_probe_on_ties_and_says_why() {
        let (l, why) = choose(Labeler::Auto, 0.9, 0.9, 50);
        assert_eq!(l, Labeler::Probe);
        assert!(
            why.contains("probe 90.0%") && why.contains("llm 90.0%"),
            "{why}"
        );
        assert_eq!(choose(Labeler::Auto, 0.6, 0.9, 50).0, Labeler::Llm);
        assert_eq!(choose(Labeler::Llm, 0.99, 0.1, 50).0, Labeler::Llm);
    }
}
