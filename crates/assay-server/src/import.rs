//! Creating projects and importing their rows: shared by `POST /api/projects` and `assay project create/import`.
//!
//! Rows stream from the file in chunks (a reader thread parses while the store writes); each chunk is one
//! transaction of multi-row inserts. Rows written by `assay label` carry an `assay` column; its label and
//! confidence become the model's annotation, so the machine's output can be reviewed without labeling again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assay_core::TaskSpec;
use assay_store::{ImportedLabel, ProjectId, RouteSummary, Store};
use serde_json::{json, Map, Value};

/// Rows per chunk written in one transaction.
const CHUNK_ROWS: usize = 25_000;

/// Why a project could not be created or imported into.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The name is taken.
    #[error("a project named `{0}` exists")]
    NameTaken(String),
    /// The task has no `[review]` section.
    #[error("task `{0}` has no [review] section: add one to say which items go to people (see docs/task-reference.toml)")]
    NoReview(String),
    /// The task's version could not be computed.
    #[error("task `{name}`: {message}")]
    TaskVersion {
        /// Task name.
        name: String,
        /// Why.
        message: String,
    },
    /// No such project.
    #[error("no project named `{0}`")]
    NoProject(String),
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: assay_io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] assay_store::Error),
}

/// Progress of an import; the binary draws it, the server ignores it.
pub trait Reporter: Send + Sync {
    /// Rows to come, when known.
    fn start(&self, _total_rows: Option<u64>) {}
    /// More rows written.
    fn advance(&self, _rows: u64) {}
    /// Rows are in; routing starts.
    fn routing(&self) {}
}

/// A reporter that reports nothing.
pub struct Silent;

impl Reporter for Silent {}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportSummary {
    /// Rows read (good and bad).
    pub rows: u64,
    /// Records new to the store.
    pub new_records: u64,
    /// Model labels new to the store.
    pub new_labels: u64,
    /// Rows skipped, with their row number (from 0) and why.
    pub row_errors: Vec<(u64, String)>,
    /// The routing after the import.
    pub route: RouteSummary,
}

/// Create a project reviewing `spec` (which must have a `[review]` section) and, when `import_dataset` is set and
/// the task names a dataset file, import and route it.
pub async fn create_project(
    store: &Store,
    name: &str,
    spec: TaskSpec,
    import_dataset: bool,
    reporter: &dyn Reporter,
) -> Result<(ProjectId, Option<ImportSummary>), ImportError> {
    if spec.review.is_none() {
        return Err(ImportError::NoReview(spec.name.clone()));
    }
    // The task version `assay label` computes: few-shot example files included.
    let hash = assay_label::TaskIdentity::of(&spec)
        .map_err(|e| ImportError::TaskVersion {
            name: spec.name.clone(),
            message: e.to_string(),
        })?
        .task_hash;
    let spec_json = serde_json::to_string(&spec)
        .map_err(|e| assay_store::Error::Internal(format!("task spec to JSON: {e}")))?;
    let task_id = store
        .task(&spec.name, spec.kind.as_str(), &hash, &spec_json)
        .await?;
    let project = store
        .create_project(name, task_id, &spec)
        .await?
        .ok_or_else(|| ImportError::NameTaken(name.to_string()))?;
    let summary = match (&spec.dataset, import_dataset) {
        (Some(path), true) => Some(import_file(store, project, path, reporter).await?),
        _ => None,
    };
    Ok((project, summary))
}

struct Chunk {
    rows: Vec<(u64, String)>,
    labels: Vec<(u64, String, ImportedLabel)>,
    errors: Vec<(u64, String)>,
}

/// Import a file's rows into a project's dataset (the file's content identifies the dataset; a project has one),
/// with the model labels found in an `assay` column, then route.
pub async fn import_file(
    store: &Store,
    project: ProjectId,
    path: &Path,
    reporter: &dyn Reporter,
) -> Result<ImportSummary, ImportError> {
    let read_err = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let p = store
        .project(project)
        .await?
        .ok_or_else(|| ImportError::NoProject(project.to_string()))?;
    let format = assay_io::Format::from_path(path).map_err(read_err)?;
    let owned = path.to_path_buf();
    let (sha, total) = tokio::task::spawn_blocking(move || -> Result<_, assay_io::Error> {
        let sha = assay_io::file_sha256(&owned)?;
        let total = if format == assay_io::Format::Jsonl {
            count_lines(&owned).ok()
        } else {
            None
        };
        Ok((sha, total))
    })
    .await
    .map_err(|e| assay_store::Error::Internal(format!("import reader: {e}")))?
    .map_err(read_err)?;
    reporter.start(total);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("dataset")
        .to_string();
    let dataset = store
        .dataset(&name, &path.display().to_string(), &sha, format.name())
        .await?;
    let review_run = store.attach_dataset(project, dataset).await?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Chunk, assay_io::Error>>(2);
    let owned = path.to_path_buf();
    let reader = std::thread::spawn(move || read_chunks(&owned, &tx));
    let mut summary = ImportSummary::default();
    let (mut records_time, mut labels_time, mut waiting) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    let mut runs: HashMap<String, String> = HashMap::new();
    loop {
        let t = std::time::Instant::now();
        let Some(chunk) = rx.recv().await else { break };
        waiting += t.elapsed();
        let chunk = chunk.map_err(read_err)?;
        summary.rows += (chunk.rows.len() + chunk.errors.len()) as u64;
        let t = std::time::Instant::now();
        summary.new_records += store.insert_records(dataset, &chunk.rows).await?;
        records_time += t.elapsed();
        let t = std::time::Instant::now();
        if let (Some(first), Some(last)) = (
            chunk.labels.first().map(|l| l.0),
            chunk.labels.last().map(|l| l.0),
        ) {
            let ids = store.record_ids_between(dataset, first, last).await?;
            let mut by_annotator: HashMap<String, Vec<ImportedLabel>> = HashMap::new();
            for (index, annotator, mut label) in chunk.labels {
                if let Some(id) = ids.get(&index) {
                    label.record_id = *id;
                    by_annotator.entry(annotator).or_default().push(label);
                }
            }
            for (annotator, labels) in by_annotator {
                let run = match runs.get(&annotator) {
                    Some(run) => run.clone(),
                    None => {
                        let sha = annotator.rsplit_once('@').map(|x| x.1).unwrap_or("");
                        let run = store
                            .start_run(&assay_store::NewRun {
                                task_id: p.task_id,
                                dataset_id: dataset,
                                annotator: annotator.clone(),
                                model_sha256: sha.to_string(),
                                prompt_hash: String::new(),
                            })
                            .await?;
                        runs.insert(annotator.clone(), run.clone());
                        run
                    }
                };
                summary.new_labels += store
                    .import_model_labels(p.task_id, &run, &annotator, &labels)
                    .await?;
            }
        }
        labels_time += t.elapsed();
        reporter.advance((chunk.rows.len() + chunk.errors.len()) as u64);
        summary.row_errors.extend(chunk.errors);
    }
    let _ = reader.join();
    for run in runs.values() {
        store
            .finish_run(
                run,
                assay_store::RunStatus::Imported,
                &json!({"source": path.display().to_string()}),
            )
            .await?;
    }
    if !summary.row_errors.is_empty() {
        store
            .record_row_errors(&review_run, &summary.row_errors)
            .await?;
    }
    reporter.routing();
    let t = std::time::Instant::now();
    summary.route = store.route_project(project).await?;
    tracing::info!(
        ?waiting,
        ?records_time,
        ?labels_time,
        routing = ?t.elapsed(),
        "import phases"
    );
    Ok(summary)
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buffer[n - 1];
    }
    Ok(lines + u64::from(last != b'\n'))
}

fn read_chunks(path: &Path, tx: &tokio::sync::mpsc::Sender<Result<Chunk, assay_io::Error>>) {
    let reader = match assay_io::open_dataset(path) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    let empty = || Chunk {
        rows: Vec::with_capacity(CHUNK_ROWS),
        labels: Vec::new(),
        errors: Vec::new(),
    };
    let mut chunk = empty();
    for row in reader {
        match row {
            Err(e) => chunk.errors.push((e.index, e.reason)),
            Ok(mut row) => {
                if let Some(assay) = row.values.remove("assay") {
                    if let Some((annotator, label)) = model_label(&assay) {
                        chunk.labels.push((row.index, annotator, label));
                    }
                }
                chunk
                    .rows
                    .push((row.index, Value::Object(row.values).to_string()));
            }
        }
        if chunk.rows.len() + chunk.errors.len() >= CHUNK_ROWS
            && tx
                .blocking_send(Ok(std::mem::replace(&mut chunk, empty())))
                .is_err()
        {
            return;
        }
    }
    if !chunk.rows.is_empty() || !chunk.errors.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
}

/// The model label in an `assay` column as `assay label` writes it: (annotator as the store names it, label).
fn model_label(assay: &Value) -> Option<(String, ImportedLabel)> {
    let value = assay.get("label").filter(|v| !v.is_null())?.clone();
    let provenance = assay.get("provenance").and_then(Value::as_object);
    let text = |key: &str| {
        provenance
            .and_then(|p: &Map<String, Value>| p.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let (model, sha) = (text("annotator"), text("model_sha256"));
    let annotator = match (model, sha) {
        ("", _) => "imported".to_string(),
        (m, s) if s.len() >= 12 => format!("{m}@{}", &s[..12]),
        (m, _) => m.to_string(),
    };
    // Compare judgments keep P("1") per order; rebuild the two orders' log-probabilities from them, so routing
    // can tell position-inconsistent pairs.
    let scores = assay
        .get("preference")
        .and_then(|p| Some((p.get("p_ab")?.as_f64()?, p.get("p_ba")?.as_f64()?)))
        .map(|(ab, ba)| json!([[ab.ln(), (1.0 - ab).ln()], [ba.ln(), (1.0 - ba).ln()]]))
        .unwrap_or(Value::Null);
    Some((
        annotator,
        ImportedLabel {
            record_id: 0,
            value,
            confidence: assay.get("confidence").and_then(Value::as_f64),
            distribution: assay.get("distribution").cloned().unwrap_or(json!({})),
            scores,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assay_column_becomes_the_models_label() {
        let assay = json!({"label": "spam", "confidence": 0.61, "distribution": {"ham": 0.39, "spam": 0.61},
            "provenance": {"annotator": "smollm2", "model_sha256": "0123456789abcdef"}});
        let (annotator, label) = model_label(&assay).unwrap();
        assert_eq!(annotator, "smollm2@0123456789ab");
        assert_eq!(label.value, json!("spam"));
        assert_eq!(label.confidence, Some(0.61));
        assert!(model_label(&json!({"label": null, "error": "not labeled"})).is_none());
        let pair =
            json!({"label": "1", "confidence": 0.6, "preference": {"p_ab": 0.8, "p_ba": 0.7}});
        let (_, label) = model_label(&pair).unwrap();
        assert_eq!(
            assay_label::judgment::position_consistent(&label.scores),
            Some(false)
        );
    }
}
