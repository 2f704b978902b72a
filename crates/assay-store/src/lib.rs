//! Durable state for assay: datasets, records, tasks, runs and annotations.
//!
//! SQLite (through sqlx, WAL, `synchronous = FULL`) is the default; every write that acknowledges work is one
//! transaction, so a killed process loses at most what it had not yet committed. The SQL is kept portable so the
//! PostgreSQL store can share it.
//!
//! ```no_run
//! # async fn demo() -> assay_store::Result<()> {
//! let store = assay_store::Store::open("sqlite:///tmp/assay.db").await?;
//! let dataset = store.dataset("sms", "sms.csv", "ab12…", "csv").await?;
//! # Ok(()) }
//! ```

pub mod audits;
mod embeddings;
pub mod responses;
pub mod review;
pub mod review_qc;
pub mod testing;

pub use audits::{NewAudit, StoredAudit};

/// What the store knows of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// Its name (the file name).
    pub name: String,
    /// The path it was read from.
    pub source: String,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
}
pub use review::{
    Annotator, AnnotatorId, AnswerOutcome, AssignmentId, AssignmentView, HumanAnswer,
    ImportedLabel, Project, ProjectId, Refusal, ReviewAnswer, ReviewWriter, Role, RouteSummary,
};

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use assay_core::AnnotatorKind;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store URL is not one assay understands.
    #[error(
        "unsupported store URL `{0}` (use sqlite://PATH, a file path, sqlite::memory:, or postgres://USER:PASSWORD@HOST/DB)"
    )]
    UnsupportedUrl(String),
    /// The database refused or failed an operation (full disk, locked file, I/O).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema failed.
    #[error("applying migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The request does not fit the stored state (a project that reviews another dataset, a missing project).
    #[error("{0}")]
    Invalid(String),
    /// A group of review writes failed together; none of them was saved.
    #[error("database error (nothing in this batch was saved): {0}")]
    Batch(String),
    /// A row the store wrote itself does not parse back: a bug in assay, please report it.
    #[error("internal error (please report): {0}")]
    Internal(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Row id of a dataset.
pub type DatasetId = i64;
/// Row id of a record.
pub type RecordId = i64;
/// Row id of a task version.
pub type TaskId = i64;

/// A model annotation about to be written.
#[derive(Debug, Clone)]
pub struct NewAnnotation {
    /// The record labeled.
    pub record_id: RecordId,
    /// Raw scores as JSON (log-probabilities per option).
    pub scores: serde_json::Value,
    /// Label as JSON (string, or list for multi-label).
    pub value: serde_json::Value,
    /// Confidence of the label.
    pub confidence: Option<f64>,
    /// Label → probability as JSON.
    pub distribution: serde_json::Value,
}

/// Who made a batch of annotations, within which run.
#[derive(Debug, Clone)]
pub struct AnnotationSource {
    /// The task version.
    pub task_id: TaskId,
    /// The run.
    pub run_id: String,
    /// A model or a person.
    pub annotator_kind: AnnotatorKind,
    /// Model name or person id.
    pub annotator: String,
    /// SHA-256 of the model file (empty for people).
    pub model_sha256: String,
    /// Prompt layout hash.
    pub prompt_hash: String,
}

/// An annotation as stored.
#[derive(Debug, Clone)]
pub struct StoredAnnotation {
    /// Row id.
    pub id: i64,
    /// The record.
    pub record_id: RecordId,
    /// The record's position in its dataset.
    pub row_index: u64,
    /// The run that wrote it.
    pub run_id: String,
    /// Raw scores.
    pub scores: serde_json::Value,
    /// When it was written.
    pub created_at: String,
}

/// Calibrated result for an existing annotation.
#[derive(Debug, Clone)]
pub struct CalibratedLabel {
    /// The annotation's row id.
    pub annotation_id: i64,
    /// Label as JSON.
    pub value: serde_json::Value,
    /// Confidence.
    pub confidence: Option<f64>,
    /// Label → probability.
    pub distribution: serde_json::Value,
}

/// An annotation with its record's data: what `assay export` and `assay eval` read.
#[derive(Debug, Clone)]
pub struct LabeledRecord {
    /// The record's dataset.
    pub dataset_id: DatasetId,
    /// The record's position in its dataset.
    pub row_index: u64,
    /// The record's columns as stored.
    pub data: serde_json::Value,
    /// A model or a person.
    pub annotator_kind: AnnotatorKind,
    /// Model name (with its short SHA-256) or person id.
    pub annotator: String,
    /// SHA-256 of the model file.
    pub model_sha256: String,
    /// Prompt layout hash.
    pub prompt_hash: String,
    /// The run that wrote it.
    pub run_id: String,
    /// Raw scores.
    pub scores: serde_json::Value,
    /// Calibrated label.
    pub value: serde_json::Value,
    /// Calibrated confidence.
    pub confidence: Option<f64>,
    /// Calibrated distribution.
    pub distribution: serde_json::Value,
    /// When it was written.
    pub created_at: String,
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Task version.
    pub task_id: TaskId,
    /// Dataset labeled.
    pub dataset_id: DatasetId,
    /// Model name.
    pub annotator: String,
    /// Model file SHA-256.
    pub model_sha256: String,
    /// Prompt layout hash.
    pub prompt_hash: String,
}

/// A run as `assay runs` lists it.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// Task name.
    pub task: String,
    /// Dataset name.
    pub dataset: String,
    /// Model name.
    pub annotator: String,
    /// Start time.
    pub started_at: String,
    /// End time, if it ended.
    pub finished_at: Option<String>,
    /// Where the run stands.
    pub status: RunStatus,
    /// Items scored by this run (not counting items earlier runs had done).
    pub items_scored: u64,
    /// Rows skipped as malformed.
    pub rows_skipped: u64,
    /// Why a failed run stopped (the error it ended with).
    pub failure: Option<String>,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started and not ended (or ended without saying so: a crash).
    Running,
    /// Every pending item was scored.
    Finished,
    /// Stopped by Ctrl-C after a chunk; rerunning resumes.
    Interrupted,
    /// Stopped on an error; the summary says which.
    Failed,
    /// Model labels imported from a labeled file into a review project.
    Imported,
}

impl RunStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Interrupted => "interrupted",
            Self::Failed => "failed",
            Self::Imported => "imported",
        }
    }

    /// The status stored as `text`.
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "running" => Self::Running,
            "finished" => Self::Finished,
            "interrupted" => Self::Interrupted,
            "failed" => Self::Failed,
            "imported" => Self::Imported,
            other => return Err(Error::Internal(format!("unknown run status `{other}`"))),
        })
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server, for teams and many workers.
    Postgres,
}

/// The store.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Rows per multi-row `INSERT`: few enough to stay far below both engines' limits on bound parameters.
const INSERT_BATCH_ROWS: usize = 500;

impl Store {
    /// Open (creating if needed) the store at `url` and apply pending migrations.
    ///
    /// SQLite: `sqlite://PATH`, `sqlite:PATH`, a plain file path, or `sqlite::memory:`. PostgreSQL:
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://`); the database must exist.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, connect_url) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                (Backend::Postgres, url.to_string())
            } else if url == "sqlite::memory:" {
                (Backend::Sqlite, url.to_string())
            } else if let Some(path) = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
            {
                (Backend::Sqlite, sqlite_url(path))
            } else if url.contains("://") {
                return Err(Error::UnsupportedUrl(url.to_string()));
            } else {
                (Backend::Sqlite, sqlite_url(url))
            };
        let pool = match backend {
            Backend::Sqlite => {
                let max_connections = if url == "sqlite::memory:" { 1 } else { 4 };
                AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .after_connect(|conn, _meta| Box::pin(sqlite_pragmas(conn)))
                    .connect(&connect_url)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(&connect_url)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self { pool, backend })
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The dataset with this content hash, created if new.
    pub async fn dataset(
        &self,
        name: &str,
        source: &str,
        sha256: &str,
        format: &str,
    ) -> Result<DatasetId> {
        sqlx::query(
            "INSERT INTO datasets (name, source, sha256, format, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(name)
        .bind(source)
        .bind(sha256)
        .bind(format)
        .bind(now())
        .execute(&self.pool)
        .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM datasets WHERE sha256 = $1")
            .bind(sha256)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    /// The dataset with this content hash, if the store has it.
    pub async fn find_dataset(&self, sha256: &str) -> Result<Option<DatasetId>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM datasets WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Add records (row index, JSON data) to a dataset in one transaction; rows already present are left alone.
    /// Returns how many were new.
    pub async fn insert_records(
        &self,
        dataset_id: DatasetId,
        rows: &[(u64, String)],
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for batch in rows.chunks(INSERT_BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO records (dataset_id, row_index, data) VALUES {} ON CONFLICT (dataset_id, row_index) DO NOTHING",
                review::values_list(self.backend, batch.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for (index, data) in batch {
                query = query
                    .bind(dataset_id)
                    .bind(*index as i64)
                    .bind(data.as_str());
            }
            inserted += query.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Record ids of a dataset by row index.
    pub async fn record_ids(&self, dataset_id: DatasetId) -> Result<HashMap<u64, RecordId>> {
        let rows = sqlx::query("SELECT id, row_index FROM records WHERE dataset_id = $1")
            .bind(dataset_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<i64, _>(1) as u64, r.get::<i64, _>(0)))
            .collect())
    }

    /// The task version with this name and spec hash, created if new.
    pub async fn task(
        &self,
        name: &str,
        kind: &str,
        spec_hash: &str,
        spec_json: &str,
    ) -> Result<TaskId> {
        sqlx::query(
            "INSERT INTO tasks (name, kind, spec_hash, spec, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name, spec_hash) DO NOTHING",
        )
        .bind(name)
        .bind(kind)
        .bind(spec_hash)
        .bind(spec_json)
        .bind(now())
        .execute(&self.pool)
        .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM tasks WHERE name = $1 AND spec_hash = $2")
            .bind(name)
            .bind(spec_hash)
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    /// Start a run; returns its id (a time-ordered UUID).
    pub async fn start_run(&self, run: &NewRun) -> Result<String> {
        let id = uuid_v7();
        sqlx::query(
            "INSERT INTO runs (id, task_id, dataset_id, annotator, model_sha256, prompt_hash, started_at, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'running')",
        )
        .bind(&id)
        .bind(run.task_id)
        .bind(run.dataset_id)
        .bind(&run.annotator)
        .bind(&run.model_sha256)
        .bind(&run.prompt_hash)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Close a run with its status and a JSON summary.
    pub async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        summary: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query("UPDATE runs SET status = $1, finished_at = $2, summary = $3 WHERE id = $4")
            .bind(status.as_str())
            .bind(now())
            .bind(summary.to_string())
            .bind(run_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The JSON summary a run was closed with (`None`: no such run, or it has not ended).
    pub async fn run_summary(&self, run_id: &str) -> Result<Option<serde_json::Value>> {
        let text: Option<Option<String>> =
            sqlx::query_scalar("SELECT summary FROM runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
        text.flatten()
            .map(|t| {
                serde_json::from_str(&t).map_err(|e| Error::Internal(format!("run summary: {e}")))
            })
            .transpose()
    }

    /// A dataset's name, source (the path it was read from) and content hash, by id.
    pub async fn dataset_info(&self, id: DatasetId) -> Result<Option<DatasetInfo>> {
        let row = sqlx::query("SELECT name, source, sha256 FROM datasets WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| DatasetInfo {
            name: r.get(0),
            source: r.get(1),
            sha256: r.get(2),
        }))
    }

    /// Records that already carry an annotation from this annotator for this task.
    pub async fn annotated_records(
        &self,
        task_id: TaskId,
        annotator_kind: AnnotatorKind,
        annotator: &str,
    ) -> Result<HashSet<RecordId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT record_id FROM annotations WHERE task_id = $1 AND annotator_kind = $2 AND annotator = $3",
        )
        .bind(task_id)
        .bind(annotator_kind.as_str())
        .bind(annotator)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// Row numbers of the records of one dataset that already carry an annotation from this annotator for this
    /// task: what a resumed run skips. Decoded row by row, so memory holds the numbers only.
    pub async fn annotated_rows(
        &self,
        task_id: TaskId,
        annotator_kind: AnnotatorKind,
        annotator: &str,
        dataset_id: DatasetId,
    ) -> Result<HashSet<u64>> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT r.row_index FROM annotations a JOIN records r ON r.id = a.record_id
             WHERE a.task_id = $1 AND a.annotator_kind = $2 AND a.annotator = $3 AND r.dataset_id = $4",
        )
        .bind(task_id)
        .bind(annotator_kind.as_str())
        .bind(annotator)
        .bind(dataset_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| r as u64).collect())
    }

    /// Write annotations in one transaction and count them on the run. An annotation that already exists for the
    /// same (task, record, annotator) is kept as it was, so a batch written twice is not written twice.
    /// Returns how many were new.
    pub async fn insert_annotations(
        &self,
        source: &AnnotationSource,
        annotations: &[NewAnnotation],
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let created_at = now();
        let mut inserted = 0;
        for a in annotations {
            inserted += write_annotation(&mut tx, "DO NOTHING", source, a, &created_at).await?;
        }
        sqlx::query("UPDATE runs SET items_scored = items_scored + $1 WHERE id = $2")
            .bind(inserted as i64)
            .bind(&source.run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Write annotations in one transaction, replacing this annotator's earlier annotation of the same records:
    /// for labelers that are retrained (the probe), whose latest label is the one that counts.
    pub async fn upsert_annotations(
        &self,
        source: &AnnotationSource,
        annotations: &[NewAnnotation],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let created_at = now();
        for a in annotations {
            write_annotation(&mut tx, REPLACE_ANNOTATION, source, a, &created_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// All annotations of an annotator for a task, with their records' row indices, in row order.
    pub async fn annotations(
        &self,
        task_id: TaskId,
        annotator_kind: AnnotatorKind,
        annotator: &str,
    ) -> Result<Vec<StoredAnnotation>> {
        let rows = sqlx::query(
            "SELECT a.id, a.record_id, r.row_index, a.run_id, a.scores, a.created_at
             FROM annotations a JOIN records r ON r.id = a.record_id
             WHERE a.task_id = $1 AND a.annotator_kind = $2 AND a.annotator = $3
             ORDER BY r.row_index",
        )
        .bind(task_id)
        .bind(annotator_kind.as_str())
        .bind(annotator)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_annotation).collect()
    }

    /// The annotations of an annotator for a task on the records of one dataset whose row numbers lie in
    /// `rows` (inclusive), in row order: what a run reads back one block at a time.
    pub async fn annotations_in_rows(
        &self,
        task_id: TaskId,
        annotator_kind: AnnotatorKind,
        annotator: &str,
        dataset_id: DatasetId,
        rows: std::ops::RangeInclusive<u64>,
    ) -> Result<Vec<StoredAnnotation>> {
        let rows = sqlx::query(
            "SELECT a.id, a.record_id, r.row_index, a.run_id, a.scores, a.created_at
             FROM annotations a JOIN records r ON r.id = a.record_id
             WHERE a.task_id = $1 AND a.annotator_kind = $2 AND a.annotator = $3
               AND r.dataset_id = $4 AND r.row_index BETWEEN $5 AND $6
             ORDER BY r.row_index",
        )
        .bind(task_id)
        .bind(annotator_kind.as_str())
        .bind(annotator)
        .bind(dataset_id)
        .bind(*rows.start() as i64)
        .bind(*rows.end() as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_annotation).collect()
    }

    /// The task version with this name and spec hash, if it was ever labeled.
    pub async fn find_task(&self, name: &str, spec_hash: &str) -> Result<Option<TaskId>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM tasks WHERE name = $1 AND spec_hash = $2")
                .bind(name)
                .bind(spec_hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every annotation of a task version with its record's data, by dataset, row and annotator.
    pub async fn labeled_records(&self, task_id: TaskId) -> Result<Vec<LabeledRecord>> {
        self.labeled_records_of(task_id, None).await
    }

    /// The people's answers (`annotator_kind = 'human'`) of a task version, with their records' data.
    pub async fn human_annotations(&self, task_id: TaskId) -> Result<Vec<LabeledRecord>> {
        self.labeled_records_of(task_id, Some(AnnotatorKind::Human))
            .await
    }

    async fn labeled_records_of(
        &self,
        task_id: TaskId,
        annotator_kind: Option<AnnotatorKind>,
    ) -> Result<Vec<LabeledRecord>> {
        let rows = sqlx::query(
            "SELECT r.dataset_id, r.row_index, r.data, a.annotator_kind, a.annotator, a.model_sha256,
                    a.prompt_hash, a.run_id, a.scores, a.value, a.confidence, a.distribution, a.created_at
             FROM annotations a JOIN records r ON r.id = a.record_id
             WHERE a.task_id = $1 AND ($2 IS NULL OR a.annotator_kind = $2)
             ORDER BY r.dataset_id, r.row_index, a.annotator_kind, a.annotator",
        )
        .bind(task_id)
        .bind(annotator_kind.map(AnnotatorKind::as_str))
        .fetch_all(&self.pool)
        .await?;
        let json = |text: Option<String>, what: &str| -> Result<serde_json::Value> {
            match text {
                Some(t) => serde_json::from_str(&t)
                    .map_err(|e| Error::Internal(format!("annotation {what}: {e}"))),
                None => Ok(serde_json::Value::Null),
            }
        };
        rows.iter()
            .map(|r| {
                Ok(LabeledRecord {
                    dataset_id: r.get(0),
                    row_index: r.get::<i64, _>(1) as u64,
                    data: json(r.get(2), "record data")?,
                    annotator_kind: {
                        let kind: String = r.get(3);
                        AnnotatorKind::parse(&kind).ok_or_else(|| {
                            Error::Internal(format!("unknown annotator kind `{kind}`"))
                        })?
                    },
                    annotator: r.get(4),
                    model_sha256: r.get(5),
                    prompt_hash: r.get(6),
                    run_id: r.get(7),
                    scores: json(r.get(8), "scores")?,
                    value: json(r.get(9), "value")?,
                    confidence: r.get(10),
                    distribution: json(r.get(11), "distribution")?,
                    created_at: r.get(12),
                })
            })
            .collect()
    }

    /// Rewrite the calibrated label of existing annotations, in one transaction.
    pub async fn update_calibrated(&self, labels: &[CalibratedLabel]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for l in labels {
            sqlx::query(
                "UPDATE annotations SET value = $1, confidence = $2, distribution = $3 WHERE id = $4",
            )
            .bind(l.value.to_string())
            .bind(l.confidence)
            .bind(l.distribution.to_string())
            .bind(l.annotation_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Remember rows a run could not use, with the reason.
    pub async fn record_row_errors(&self, run_id: &str, errors: &[(u64, String)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (index, reason) in errors {
            sqlx::query("INSERT INTO row_errors (run_id, row_index, reason) VALUES ($1, $2, $3)")
                .bind(run_id)
                .bind(*index as i64)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE runs SET rows_skipped = rows_skipped + $1 WHERE id = $2")
            .bind(errors.len() as i64)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The most recent runs, newest first.
    pub async fn runs(&self, limit: u32) -> Result<Vec<RunSummary>> {
        let rows = sqlx::query(
            "SELECT r.id, t.name, d.name, r.annotator, r.started_at, r.finished_at, r.status, r.items_scored,
                    r.rows_skipped, r.summary
             FROM runs r JOIN tasks t ON t.id = r.task_id JOIN datasets d ON d.id = r.dataset_id
             ORDER BY r.started_at DESC, r.id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let status = RunStatus::parse(&r.get::<String, _>(6))?;
                // A failed run's summary is `{"error": reason}` (see `assay_label::run`).
                let failure = (status == RunStatus::Failed)
                    .then(|| r.get::<Option<String>, _>(9))
                    .flatten()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string));
                Ok(RunSummary {
                    id: r.get(0),
                    task: r.get(1),
                    dataset: r.get(2),
                    annotator: r.get(3),
                    started_at: r.get(4),
                    finished_at: r.get(5),
                    status,
                    items_scored: r.get::<i64, _>(7) as u64,
                    rows_skipped: r.get::<i64, _>(8) as u64,
                    failure,
                })
            })
            .collect()
    }
}

/// Settings every SQLite connection gets. WAL: readers never wait for the writer. FULL: a commit that returned is on
/// disk, not only in the OS cache.
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    conn.execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 30000;",
    )
    .await?;
    Ok(())
}

/// A SQLite URL for a file path that creates the file if missing.
fn sqlite_url(path: &str) -> String {
    format!("sqlite://{path}?mode=rwc")
}

/// A time-ordered UUID, so run ids sort by start time.
fn uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What an annotation that exists for the same (task, record, annotator) becomes: replaced by the new one.
const REPLACE_ANNOTATION: &str = "DO UPDATE SET
    run_id = excluded.run_id, model_sha256 = excluded.model_sha256, prompt_hash = excluded.prompt_hash,
    scores = excluded.scores, value = excluded.value, confidence = excluded.confidence,
    distribution = excluded.distribution, created_at = excluded.created_at";

/// Insert one annotation inside `tx`; `on_conflict` is what happens to an existing one (`DO NOTHING` keeps it).
/// Returns how many rows were written.
async fn write_annotation(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    on_conflict: &str,
    source: &AnnotationSource,
    a: &NewAnnotation,
    created_at: &str,
) -> Result<u64> {
    let sql = format!(
        "INSERT INTO annotations (task_id, record_id, run_id, annotator_kind, annotator, model_sha256,
             prompt_hash, scores, value, confidence, distribution, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (task_id, record_id, annotator_kind, annotator) {on_conflict}"
    );
    let result = sqlx::query(&sql)
        .bind(source.task_id)
        .bind(a.record_id)
        .bind(&source.run_id)
        .bind(source.annotator_kind.as_str())
        .bind(&source.annotator)
        .bind(&source.model_sha256)
        .bind(&source.prompt_hash)
        .bind(a.scores.to_string())
        .bind(a.value.to_string())
        .bind(a.confidence)
        .bind(a.distribution.to_string())
        .bind(created_at)
        .execute(&mut **tx)
        .await?;
    Ok(result.rows_affected())
}

/// A row of `id, record_id, row_index, run_id, scores, created_at` as a [`StoredAnnotation`].
fn stored_annotation(r: &sqlx::any::AnyRow) -> Result<StoredAnnotation> {
    let scores: Option<String> = r.get(4);
    let scores = match scores {
        Some(s) => serde_json::from_str(&s)
            .map_err(|e| Error::Internal(format!("annotation scores: {e}")))?,
        None => serde_json::Value::Null,
    };
    Ok(StoredAnnotation {
        id: r.get(0),
        record_id: r.get(1),
        row_index: r.get::<i64, _>(2) as u64,
        run_id: r.get(3),
        scores,
        created_at: r.get(5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn annotations_are_written_once_per_record_and_survive_reopening_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("t.db").to_str().unwrap().to_string();
        annotations_are_written_once_per_record_and_survive_reopening(&url).await;
    }

    #[tokio::test]
    async fn annotations_are_written_once_per_record_and_survive_reopening_postgres() {
        let url = testing::fresh_postgres_database().await;
        annotations_are_written_once_per_record_and_survive_reopening(&url).await;
    }

    async fn annotations_are_written_once_per_record_and_survive_reopening(url: &str) {
        let store = Store::open(url).await.unwrap();
        let dataset = store.dataset("d", "d.csv", "abc", "csv").await.unwrap();
        assert_eq!(
            store.dataset("d", "d.csv", "abc", "csv").await.unwrap(),
            dataset
        );
        let new = store
            .insert_records(dataset, &[(0, "{}".into()), (1, "{}".into())])
            .await
            .unwrap();
        assert_eq!(new, 2);
        let new = store
            .insert_records(dataset, &[(1, "{}".into())])
            .await
            .unwrap();
        assert_eq!(new, 0);
        let ids = store.record_ids(dataset).await.unwrap();
        assert_eq!(ids.len(), 2);
        let task = store.task("t", "classify", "h", "{}").await.unwrap();
        let run = store
            .start_run(&NewRun {
                task_id: task,
                dataset_id: dataset,
                annotator: "m".into(),
                model_sha256: "s".into(),
                prompt_hash: "p".into(),
            })
            .await
            .unwrap();
        let source = AnnotationSource {
            task_id: task,
            run_id: run.clone(),
            annotator_kind: AnnotatorKind::Model,
            annotator: "m".into(),
            model_sha256: "s".into(),
            prompt_hash: "p".into(),
        };
        let a = NewAnnotation {
            record_id: ids[&0],
            scores: serde_json::json!([-0.1, -2.0]),
            value: serde_json::json!("ham"),
            confidence: Some(0.9),
            distribution: serde_json::json!({"ham": 0.9, "spam": 0.1}),
        };
        assert_eq!(
            store
                .insert_annotations(&source, std::slice::from_ref(&a))
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.insert_annotations(&source, &[a]).await.unwrap(), 0);
        drop(store);

        let store = Store::open(url).await.unwrap();
        let done = store
            .annotated_records(task, AnnotatorKind::Model, "m")
            .await
            .unwrap();
        assert_eq!(done, HashSet::from([ids[&0]]));
        let stored = store
            .annotations(task, AnnotatorKind::Model, "m")
            .await
            .unwrap();
        assert_eq!(stored[0].scores, serde_json::json!([-0.1, -2.0]));
        assert_eq!(store.find_task("t", "h").await.unwrap(), Some(task));
        assert_eq!(store.find_task("t", "other").await.unwrap(), None);
        let labeled = store.labeled_records(task).await.unwrap();
        assert_eq!(labeled.len(), 1);
        assert_eq!(labeled[0].row_index, 0);
        assert_eq!(labeled[0].data, serde_json::json!({}));
        assert_eq!(labeled[0].value, serde_json::json!("ham"));
        assert_eq!(labeled[0].confidence, Some(0.9));
        assert_eq!(labeled[0].annotator, "m");
        assert!(store.human_annotations(task).await.unwrap().is_empty());
        assert_eq!(store.find_dataset("abc").await.unwrap(), Some(dataset));
        assert_eq!(store.find_dataset("nope").await.unwrap(), None);
        let runs = store.runs(10).await.unwrap();
        assert_eq!(runs[0].items_scored, 1);
        assert_eq!(runs[0].status, RunStatus::Running);
    }

    #[tokio::test]
    async fn many_records_insert_in_batches_on_both_engines() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = dir.path().join("t.db").to_str().unwrap().to_string();
        let postgres = testing::fresh_postgres_database().await;
        for url in [sqlite, postgres] {
            let store = Store::open(&url).await.unwrap();
            let dataset = store.dataset("d", "d.jsonl", "h", "jsonl").await.unwrap();
            let rows: Vec<(u64, String)> =
                (0..1234).map(|i| (i, format!("{{\"i\":{i}}}"))).collect();
            assert_eq!(store.insert_records(dataset, &rows).await.unwrap(), 1234);
            assert_eq!(
                store.insert_records(dataset, &rows[1000..]).await.unwrap(),
                0
            );
            let ids = store.record_ids(dataset).await.unwrap();
            assert_eq!(ids.len(), 1234, "{url}");
        }
    }

    #[tokio::test]
    async fn foreign_urls_are_refused() {
        let err = Store::open("mysql://x").await.unwrap_err();
        assert!(err.to_string().contains("unsupported store URL"), "{err}");
    }

    #[test]
    fn uuids_are_v7_shaped_and_distinct() {
        let a = uuid_v7();
        let b = uuid_v7();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
    }
}
