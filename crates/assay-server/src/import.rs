//! Creating projects and importing their rows: shared by `POST /api/projects` and `assay project create/import`.
//!
//! Rows stream from the file in chunks (a reader thread parses while the store writes); each chunk is one
//! transaction of multi-row inserts. An import takes every row (a row that cannot be read is recorded with its
//! number and reason) or fails naming the row and why; a failed import leaves no project behind: a project created
//! for it is deleted, and a project that had no dataset before gets none. Records already written stay in their
//! dataset (they are identified by the file's content, so importing the same file again completes them). Rows written by `assay label` carry an `assay` column; its label and
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
    /// Reading the rows stopped before the end of the file (the reader failed: a bug in assay, please report it).
    #[error("reading {path} stopped at row {row}: {reason}")]
    Reader {
        /// The file.
        path: PathBuf,
        /// The row being read (from 1).
        row: u64,
        /// Why.
        reason: String,
    },
    /// A chunk of rows could not be written.
    #[error("rows {first}-{last} could not be written: {source}")]
    Rows {
        /// First row of the chunk (from 1).
        first: u64,
        /// Last row of the chunk (from 1).
        last: u64,
        /// Why.
        source: assay_store::Error,
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
        (Some(path), true) => match import_file(store, project, path, reporter).await {
            Ok(summary) => Some(summary),
            Err(e) => {
                // Never a partial project: the one made for this import goes.
                if let Err(undo) = store.delete_project(project).await {
                    tracing::error!(error = %undo, project, "deleting the project of a failed import failed");
                }
                return Err(e);
            }
        },
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
    let mut runs: HashMap<String, String> = HashMap::new();
    let result = import_rows(store, &p, dataset, path, reporter, &mut runs).await;
    let mut summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let failed = json!({"source": path.display().to_string(), "error": e.to_string()});
            for run in runs.values() {
                let _ = store
                    .finish_run(run, assay_store::RunStatus::Failed, &failed)
                    .await;
            }
            if p.dataset_id.is_none() {
                if let Err(undo) = store.detach_dataset(project, &review_run).await {
                    tracing::error!(error = %undo, project, "detaching the dataset of a failed import failed");
                }
            }
            return Err(e);
        }
    };
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
    tracing::info!(routing = ?t.elapsed(), "import routed");
    Ok(summary)
}

/// Stream the file's rows into the dataset with their model labels (`runs`: annotator → the run its labels are
/// filed under, filled as annotators turn up). Fails on the first chunk that cannot be read or written.
async fn import_rows(
    store: &Store,
    p: &assay_store::Project,
    dataset: assay_store::DatasetId,
    path: &Path,
    reporter: &dyn Reporter,
    runs: &mut HashMap<String, String>,
) -> Result<ImportSummary, ImportError> {
    let read_err = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let owned = path.to_path_buf();
    let mut reader = RowReader::spawn(path, move || assay_io::open_dataset(&owned));
    let mut summary = ImportSummary::default();
    let (mut records_time, mut labels_time, mut waiting) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    loop {
        let t = std::time::Instant::now();
        let chunk = match reader.next().await? {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(read_err(e)),
            None => break,
        };
        waiting += t.elapsed();
        let rows = (chunk.rows.len() + chunk.errors.len()) as u64;
        summary.rows += rows;
        let (first, last) = chunk.span();
        let t = std::time::Instant::now();
        let written = write_chunk(
            store,
            p,
            dataset,
            chunk,
            runs,
            &mut summary,
            &mut records_time,
        )
        .await
        .map_err(|source| ImportError::Rows {
            first: first + 1,
            last: last + 1,
            source,
        })?;
        labels_time += t.elapsed().saturating_sub(written);
        reporter.advance(rows);
    }
    tracing::info!(
        ?waiting,
        ?records_time,
        ?labels_time,
        rows = summary.rows,
        "import phases"
    );
    Ok(summary)
}

/// Write one chunk's records and model labels; returns the time spent on records.
async fn write_chunk(
    store: &Store,
    p: &assay_store::Project,
    dataset: assay_store::DatasetId,
    chunk: Chunk,
    runs: &mut HashMap<String, String>,
    summary: &mut ImportSummary,
    records_time: &mut std::time::Duration,
) -> Result<std::time::Duration, assay_store::Error> {
    let t = std::time::Instant::now();
    summary.new_records += store.insert_records(dataset, &chunk.rows).await?;
    let spent = t.elapsed();
    *records_time += spent;
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
    summary.row_errors.extend(chunk.errors);
    Ok(spent)
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

impl Chunk {
    fn empty() -> Self {
        Self {
            rows: Vec::with_capacity(CHUNK_ROWS),
            labels: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// First and last row index (from 0) in the chunk.
    fn span(&self) -> (u64, u64) {
        let indices = self
            .rows
            .iter()
            .map(|r| r.0)
            .chain(self.errors.iter().map(|e| e.0));
        let (min, max) = indices.fold((u64::MAX, 0), |(lo, hi), i| (lo.min(i), hi.max(i)));
        (min.min(max), max)
    }
}

/// What the reader thread sends: chunks, then `Done` at the end of the file. A channel that closes without `Done`
/// means the reader died; that is an error, never the end of the file.
enum Message {
    Chunk(Result<Chunk, assay_io::Error>),
    Done,
}

/// The rows of a file, parsed on a thread of their own while the store writes the previous chunk.
struct RowReader {
    path: PathBuf,
    rx: tokio::sync::mpsc::Receiver<Message>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The row index (from 0) the reader is at, to name the row when it fails.
    at: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RowReader {
    fn spawn<R, F>(path: &Path, open: F) -> Self
    where
        R: Iterator<Item = Result<assay_io::Row, assay_io::RowError>>,
        F: FnOnce() -> Result<R, assay_io::Error> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::channel::<Message>(2);
        let at = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let position = at.clone();
        let thread = std::thread::spawn(move || match open() {
            Err(e) => {
                let _ = tx.blocking_send(Message::Chunk(Err(e)));
            }
            Ok(rows) => read_chunks(rows, &tx, &position),
        });
        Self {
            path: path.to_path_buf(),
            rx,
            thread: Some(thread),
            at,
        }
    }

    /// The next chunk; `None` at the end of the file; an error when the reader died before it.
    async fn next(&mut self) -> Result<Option<Result<Chunk, assay_io::Error>>, ImportError> {
        match self.rx.recv().await {
            Some(Message::Chunk(chunk)) => Ok(Some(chunk)),
            Some(Message::Done) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
                Ok(None)
            }
            None => {
                let reason = match self.thread.take().map(std::thread::JoinHandle::join) {
                    Some(Err(panic)) => panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into()),
                    _ => "the reader stopped".into(),
                };
                Err(ImportError::Reader {
                    path: self.path.clone(),
                    row: self.at.load(std::sync::atomic::Ordering::Relaxed) + 1,
                    reason: format!(
                        "the reader failed (a bug in assay, please report it): {reason}"
                    ),
                })
            }
        }
    }
}

fn read_chunks(
    rows: impl Iterator<Item = Result<assay_io::Row, assay_io::RowError>>,
    tx: &tokio::sync::mpsc::Sender<Message>,
    at: &std::sync::atomic::AtomicU64,
) {
    use std::sync::atomic::Ordering;
    let mut chunk = Chunk::empty();
    let mut next_index = 0;
    // `at` names the row being read (a failure inside the file reader) or looked at (a failure here).
    for row in rows {
        match row {
            Err(e) => {
                next_index = e.index + 1;
                chunk.errors.push((e.index, e.reason));
            }
            Ok(mut row) => {
                at.store(row.index, Ordering::Relaxed);
                next_index = row.index + 1;
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
        at.store(next_index, Ordering::Relaxed);
        if chunk.rows.len() + chunk.errors.len() >= CHUNK_ROWS
            && tx
                .blocking_send(Message::Chunk(Ok(std::mem::replace(
                    &mut chunk,
                    Chunk::empty(),
                ))))
                .is_err()
        {
            return;
        }
    }
    at.store(next_index, Ordering::Relaxed);
    if (!chunk.rows.is_empty() || !chunk.errors.is_empty())
        && tx.blocking_send(Message::Chunk(Ok(chunk))).is_err()
    {
        return;
    }
    let _ = tx.blocking_send(Message::Done);
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
    // Where the probe gave the label (`assay.labeler = "probe"`), the label is the probe's: name it.
    let probe = assay
        .get("labeler")
        .filter(|l| l.as_str() == Some("probe"))
        .and_then(|_| assay.pointer("/probe/provenance/annotator"))
        .and_then(Value::as_str);
    let annotator = match (model, sha) {
        _ if probe.is_some() => probe.unwrap_or_default().to_string(),
        ("", _) => "imported".to_string(),
        // The first 12 characters (a SHA-256 is hex, but the file may say anything: never slice bytes).
        (m, s) if s.chars().count() >= 12 => {
            format!("{m}@{}", s.chars().take(12).collect::<String>())
        }
        (m, _) => m.to_string(),
    };
    // Compare judgments keep P("1") per order; rebuild the two orders' log-probabilities from them, so routing
    // can tell position-inconsistent pairs.
    let mut scores = assay
        .get("preference")
        .and_then(|p| Some((p.get("p_ab")?.as_f64()?, p.get("p_ba")?.as_f64()?)))
        .map(|(ab, ba)| json!([[ab.ln(), (1.0 - ab).ln()], [ba.ln(), (1.0 - ba).ln()]]))
        .unwrap_or(Value::Null);
    // A task with a probe: whether the probe and the LLM agreed, for the `disagree` routing reason.
    let llm = assay.pointer("/llm/label").or_else(|| assay.get("label"));
    if let (Some(probe), Some(llm), true) = (assay.pointer("/probe/label"), llm, scores.is_null()) {
        scores = json!({"labelers_disagree": probe != llm});
    }
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

    /// Issue 12: a row whose final label came from the probe is imported as the probe's label, not the LLM's.
    #[test]
    fn issue_12_a_probe_label_is_imported_under_the_probes_name() {
        let assay = json!({"label": "spam", "labeler": "probe",
            "provenance": {"annotator": "smollm2", "model_sha256": "0123456789abcdef"},
            "probe": {"label": "spam", "provenance": {"annotator": "probe:minilm/mean@00ff"}}});
        let (annotator, _) = model_label(&assay).unwrap();
        assert_eq!(annotator, "probe:minilm/mean@00ff");
        let llm = json!({"label": "ham", "labeler": "llm",
            "provenance": {"annotator": "smollm2", "model_sha256": "0123456789abcdef"}});
        assert_eq!(model_label(&llm).unwrap().0, "smollm2@0123456789ab");
        // The probe (chosen) said spam where the LLM said ham: a disagreement, kept for routing.
        let both = json!({"label": "spam", "labeler": "probe", "llm": {"label": "ham"},
            "probe": {"label": "spam", "provenance": {"annotator": "probe:e"}}});
        assert_eq!(
            model_label(&both).unwrap().1.scores,
            json!({"labelers_disagree": true})
        );
        // The LLM chosen and the probe agreeing.
        let agree = json!({"label": "ham", "labeler": "llm", "probe": {"label": "ham"}});
        assert_eq!(
            model_label(&agree).unwrap().1.scores,
            json!({"labelers_disagree": false})
        );
    }

    #[test]
    fn issue_11_import_multibyte_model_sha() {
        // Byte 12 falls inside a character: slicing bytes panicked the reader thread.
        let assay = json!({"label": "spam", "provenance": {"annotator": "m", "model_sha256": "aéééééééééééé"}});
        let (annotator, _) = model_label(&assay).unwrap();
        assert_eq!(annotator, "m@aééééééééééé");
    }

    #[tokio::test]
    async fn issue_11_import_reader_failure_names_the_row() {
        // A reader that dies is an error naming the row it was at, never the end of the file.
        let rows = (0..5u64).map(|index| {
            assert!(index != 3, "the reader fails here");
            Ok(assay_io::Row {
                index,
                values: Map::new(),
            })
        });
        let mut reader = RowReader::spawn(Path::new("rows.jsonl"), move || {
            Ok::<_, assay_io::Error>(rows)
        });
        match reader.next().await {
            Err(ImportError::Reader { row, reason, .. }) => {
                assert_eq!(row, 4);
                assert!(reason.contains("the reader fails here"), "{reason}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a dead reader looked like data or the end of the file"),
        }
        // A reader that gets to the end says so.
        let rows = (0..3u64).map(|index| {
            Ok(assay_io::Row {
                index,
                values: Map::new(),
            })
        });
        let mut reader = RowReader::spawn(Path::new("rows.jsonl"), move || {
            Ok::<_, assay_io::Error>(rows)
        });
        let chunk = reader.next().await.unwrap().unwrap().unwrap();
        assert_eq!(chunk.rows.len(), 3);
        assert!(reader.next().await.unwrap().is_none());
    }
}
