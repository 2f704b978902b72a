//! Review state: annotators, sessions, projects, routed items, overlap slots and human answers.
//!
//! Every routed item gets `overlap` rows in `review_assignments`, one per slot. A person claims an open slot
//! (atomically: one `UPDATE … WHERE status = 'open'`; on PostgreSQL the candidate row is locked with `FOR UPDATE
//! SKIP LOCKED`) and answers it; the unique constraints `(item_id, slot)` and `(item_id, annotator_id)` are what
//! guarantee that a slot has one holder and that nobody holds two slots of one item.
//!
//! Writes that people wait on (claims, answers, skips, undos) go through a [`ReviewWriter`]. On SQLite it is one
//! task owning one connection that commits whatever arrived while the previous commit was on its way to disk in a
//! single transaction (group commit), and answers each request only after that commit returned. On PostgreSQL
//! every request is its own transaction, run concurrently.

use std::collections::{BTreeMap, HashMap};

use assay_core::review::{ReviewSpec, RouteCandidate, RouteReason};
use assay_core::{TaskKind, TaskSpec};
use sqlx::{AnyConnection, Connection, Row};
use tokio::sync::{mpsc, oneshot};

use crate::{now, Backend, DatasetId, Error, RecordId, Result, Store, TaskId};

/// Row id of an annotator.
pub type AnnotatorId = i64;
/// Row id of a review project.
pub type ProjectId = i64;
/// Row id of an overlap slot (an assignment).
pub type AssignmentId = i64;

/// Items per multi-row `INSERT` of review items and imported labels.
const BATCH_ROWS: usize = 500;

/// A person who answers (and, with the `admin` role, manages) reviews.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Annotator {
    /// Row id.
    pub id: AnnotatorId,
    /// Unique name; the `annotator` of their annotations.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Skills, sorted.
    pub skills: Vec<String>,
    /// When they were added.
    pub created_at: String,
}

/// What a person may do in `assay serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages annotators and projects, and answers.
    Admin,
    /// Answers.
    Annotator,
}

impl Role {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Annotator => "annotator",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "admin" => Ok(Self::Admin),
            "annotator" => Ok(Self::Annotator),
            other => Err(format!("role is `admin` or `annotator`, not `{other}`")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A review project as stored.
#[derive(Debug, Clone)]
pub struct Project {
    /// Row id.
    pub id: ProjectId,
    /// Unique name.
    pub name: String,
    /// The task version whose labels are reviewed.
    pub task_id: TaskId,
    /// The task, with its `[review]` section.
    pub spec: TaskSpec,
    /// The dataset under review, once imported.
    pub dataset_id: Option<DatasetId>,
    /// The run human answers are filed under, once there is a dataset.
    pub run_id: Option<String>,
    /// When it was created.
    pub created_at: String,
}

impl Project {
    /// The `[review]` section, or its defaults.
    pub fn review(&self) -> ReviewSpec {
        self.spec.review.clone().unwrap_or_default()
    }
}

/// A model label brought in with imported rows.
#[derive(Debug, Clone)]
pub struct ImportedLabel {
    /// The record labeled.
    pub record_id: RecordId,
    /// Label JSON.
    pub value: serde_json::Value,
    /// Calibrated confidence.
    pub confidence: Option<f64>,
    /// Label → probability.
    pub distribution: serde_json::Value,
    /// Raw scores, if the file had them (compare pairs need them for position consistency).
    pub scores: serde_json::Value,
}

/// A human answer as stored, with its review columns.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewAnswer {
    /// The record answered.
    pub record_id: RecordId,
    /// The person's name.
    pub annotator: String,
    /// The answer.
    pub value: serde_json::Value,
    /// Time spent.
    pub duration_ms: Option<i64>,
    /// Whether the machine's suggestion was on screen.
    pub suggestion_shown: Option<bool>,
    /// Why the item was routed.
    pub reason: Option<String>,
    /// The slot answered.
    pub assignment_id: Option<AssignmentId>,
}

/// What routing did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouteSummary {
    /// Records of the dataset.
    pub records: u64,
    /// Records with a machine label.
    pub labeled: u64,
    /// Items newly routed by this call.
    pub new_items: u64,
    /// All routed items by reason.
    pub by_reason: BTreeMap<String, u64>,
}

/// An assignment with what the annotator sees.
#[derive(Debug, Clone)]
pub struct AssignmentView {
    /// Slot id.
    pub id: AssignmentId,
    /// Its project.
    pub project_id: ProjectId,
    /// Who holds it.
    pub annotator_id: Option<AnnotatorId>,
    /// `open`, `claimed` or `answered`.
    pub status: String,
    /// Why the item was routed.
    pub reason: RouteReason,
    /// The machine's calibrated confidence.
    pub confidence: Option<f64>,
    /// The machine's label.
    pub suggestion: Option<serde_json::Value>,
    /// The record's columns.
    pub data: serde_json::Value,
    /// The holder's answer, once answered.
    pub answer: Option<serde_json::Value>,
    /// When it was claimed.
    pub claimed_at: Option<String>,
    /// When it was answered.
    pub answered_at: Option<String>,
}

/// A person's answer to a slot they hold.
#[derive(Debug, Clone)]
pub struct HumanAnswer {
    /// The slot.
    pub assignment_id: AssignmentId,
    /// Who answers.
    pub annotator_id: AnnotatorId,
    /// Their name (the annotation's `annotator`).
    pub annotator: String,
    /// The answer, shaped like the model's label.
    pub value: serde_json::Value,
    /// Time spent on the item.
    pub duration_ms: i64,
    /// Whether the machine's suggestion was on screen.
    pub suggestion_shown: bool,
}

/// Why a write about a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such slot.
    NotFound,
    /// Someone else holds it.
    NotYours,
    /// It is not (or no longer) claimed by the caller: answered, skipped, or released.
    NotClaimed,
    /// The caller already has an annotation for this record and task.
    AlreadyAnswered,
}

/// Outcome of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// Committed as this annotation.
    Answered {
        /// The annotation's row id.
        annotation_id: i64,
    },
    /// Refused; nothing written.
    Refused(Refusal),
}

/// Per-annotator figures of a project.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AnnotatorProgress {
    /// Annotator id.
    pub id: AnnotatorId,
    /// Name.
    pub name: String,
    /// Slots answered.
    pub answered: u64,
    /// Items skipped.
    pub skipped: u64,
    /// Slots claimed and not answered.
    pub claimed: u64,
    /// Median time spent per answer.
    pub median_duration_ms: Option<i64>,
}

/// A project's progress.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Records of its dataset.
    pub dataset_rows: u64,
    /// Routed items.
    pub items: u64,
    /// Routed items by reason.
    pub by_reason: BTreeMap<String, u64>,
    /// Slots by status (`open`, `claimed`, `answered`).
    pub slots: BTreeMap<String, u64>,
    /// Items whose every slot is answered.
    pub items_complete: u64,
    /// Per annotator who touched the project.
    pub annotators: Vec<AnnotatorProgress>,
    /// Answers to gold items: (annotator id, gold value, answer).
    pub gold_answers: Vec<(AnnotatorId, serde_json::Value, serde_json::Value)>,
}

/// The `VALUES` rows of a multi-row insert with `cols` placeholders each, bound in order. SQLite gets anonymous `?`:
/// with numbered ones, binding costs quadratic time in the number of parameters of a statement (sqlx asks SQLite for
/// every parameter's name, and SQLite finds a name by a linear search), which made large batches slow.
pub(crate) fn values_list(backend: Backend, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => sql.push_str(&format!("${}", r * cols + c + 1)),
            }
        }
        sql.push(')');
    }
    sql
}

/// The one bound argument of a filtered listing.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Text(&'a str),
    Id(i64),
}

fn parse_json(text: Option<String>, what: &str) -> Result<Option<serde_json::Value>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| Error::Internal(format!("review {what}: {e}")))
    })
    .transpose()
}

impl Store {
    /// Add an annotator; `None` when the name is taken.
    pub async fn create_annotator(
        &self,
        name: &str,
        role: Role,
        skills: &[String],
        token_sha256: &str,
    ) -> Result<Option<Annotator>> {
        let mut tx = self.pool.begin().await?;
        let created_at = now();
        let inserted = sqlx::query(
            "INSERT INTO annotators (name, role, token_sha256, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(token_sha256)
        .bind(&created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar("SELECT id FROM annotators WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        let mut skills: Vec<String> = skills.to_vec();
        skills.sort();
        skills.dedup();
        for skill in &skills {
            sqlx::query("INSERT INTO annotator_skills (annotator_id, skill) VALUES ($1, $2)")
                .bind(id)
                .bind(skill)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(Annotator {
            id,
            name: name.to_string(),
            role,
            skills,
            created_at,
        }))
    }

    async fn annotators_where(&self, filter: &str, arg: Option<Arg<'_>>) -> Result<Vec<Annotator>> {
        let sql = format!(
            "SELECT a.id, a.name, a.role, a.created_at, s.skill FROM annotators a
             LEFT JOIN annotator_skills s ON s.annotator_id = a.id {filter} ORDER BY a.id, s.skill"
        );
        let mut query = sqlx::query(&sql);
        match arg {
            Some(Arg::Text(t)) => query = query.bind(t),
            Some(Arg::Id(id)) => query = query.bind(id),
            None => {}
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out: Vec<Annotator> = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            if out.last().is_none_or(|a| a.id != id) {
                out.push(Annotator {
                    id,
                    name: r.get(1),
                    role: r.get::<String, _>(2).parse().map_err(Error::Internal)?,
                    skills: Vec::new(),
                    created_at: r.get(3),
                });
            }
            if let Some(skill) = r.get::<Option<String>, _>(4) {
                out.last_mut().expect("pushed above").skills.push(skill);
            }
        }
        Ok(out)
    }

    /// Every annotator, oldest first.
    pub async fn annotators(&self) -> Result<Vec<Annotator>> {
        self.annotators_where("", None).await
    }

    /// The annotator whose token hashes to this.
    pub async fn annotator_by_token(&self, token_sha256: &str) -> Result<Option<Annotator>> {
        Ok(self
            .annotators_where("WHERE a.token_sha256 = $1", Some(Arg::Text(token_sha256)))
            .await?
            .pop())
    }

    /// Open a session (id stored hashed) until `expires_at`.
    pub async fn create_session(
        &self,
        id_sha256: &str,
        annotator_id: AnnotatorId,
        csrf_token: &str,
        expires_at: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO review_sessions (id_sha256, annotator_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_sha256)
        .bind(annotator_id)
        .bind(csrf_token)
        .bind(now())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The annotator and CSRF token of a live session.
    pub async fn session(&self, id_sha256: &str) -> Result<Option<(Annotator, String)>> {
        let row = sqlx::query(
            "SELECT annotator_id, csrf_token FROM review_sessions WHERE id_sha256 = $1 AND expires_at > $2",
        )
        .bind(id_sha256)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.get(0);
        let annotator = self
            .annotators_where("WHERE a.id = $1", Some(Arg::Id(id)))
            .await?
            .pop();
        Ok(annotator.map(|a| (a, row.get(1))))
    }

    /// End a session.
    pub async fn delete_session(&self, id_sha256: &str) -> Result<()> {
        sqlx::query("DELETE FROM review_sessions WHERE id_sha256 = $1 OR expires_at < $2")
            .bind(id_sha256)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Create a project reviewing a task version; `None` when the name is taken.
    pub async fn create_project(
        &self,
        name: &str,
        task_id: TaskId,
        spec: &TaskSpec,
    ) -> Result<Option<ProjectId>> {
        let spec = serde_json::to_string(spec)
            .map_err(|e| Error::Internal(format!("task spec to JSON: {e}")))?;
        let inserted = sqlx::query(
            "INSERT INTO review_projects (name, task_id, spec, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(task_id)
        .bind(spec)
        .bind(now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        Ok(Some(
            sqlx::query_scalar("SELECT id FROM review_projects WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        ))
    }

    async fn projects_where(&self, filter: &str, arg: Option<Arg<'_>>) -> Result<Vec<Project>> {
        let sql = format!(
            "SELECT id, name, task_id, spec, dataset_id, run_id, created_at FROM review_projects {filter} ORDER BY id"
        );
        let mut query = sqlx::query(&sql);
        match arg {
            Some(Arg::Text(t)) => query = query.bind(t),
            Some(Arg::Id(id)) => query = query.bind(id),
            None => {}
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let spec: String = r.get(3);
                Ok(Project {
                    id: r.get(0),
                    name: r.get(1),
                    task_id: r.get(2),
                    spec: serde_json::from_str(&spec)
                        .map_err(|e| Error::Internal(format!("project spec: {e}")))?,
                    dataset_id: r.get(4),
                    run_id: r.get(5),
                    created_at: r.get(6),
                })
            })
            .collect()
    }

    /// Every project, oldest first.
    pub async fn projects(&self) -> Result<Vec<Project>> {
        self.projects_where("", None).await
    }

    /// A project by id.
    pub async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        Ok(self
            .projects_where("WHERE id = $1", Some(Arg::Id(id)))
            .await?
            .pop())
    }

    /// A project by name.
    pub async fn project_by_name(&self, name: &str) -> Result<Option<Project>> {
        Ok(self
            .projects_where("WHERE name = $1", Some(Arg::Text(name)))
            .await?
            .pop())
    }

    /// Give a project its dataset (once; the same dataset again is fine) and its review run; returns the run id.
    pub async fn attach_dataset(
        &self,
        project: ProjectId,
        dataset_id: DatasetId,
    ) -> Result<String> {
        let p = self
            .project(project)
            .await?
            .ok_or_else(|| Error::Invalid(format!("no project {project}")))?;
        match (p.dataset_id, p.run_id) {
            (Some(d), Some(run)) if d == dataset_id => return Ok(run),
            (Some(_), _) => {
                return Err(Error::Invalid(format!(
                    "project {} already reviews another dataset; create a new project for this one",
                    p.name
                )))
            }
            _ => {}
        }
        let run = self
            .start_run(&crate::NewRun {
                task_id: p.task_id,
                dataset_id,
                annotator: format!("review:{}", p.name),
                model_sha256: String::new(),
                prompt_hash: String::new(),
            })
            .await?;
        sqlx::query("UPDATE review_projects SET dataset_id = $1, run_id = $2 WHERE id = $3")
            .bind(dataset_id)
            .bind(&run)
            .bind(project)
            .execute(&self.pool)
            .await?;
        Ok(run)
    }

    /// Undo [`Store::attach_dataset`] after a failed first import: the project reviews no dataset again, and its
    /// review run (`run_id`) is marked failed.
    pub async fn detach_dataset(&self, project: ProjectId, run_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE review_projects SET dataset_id = NULL, run_id = NULL WHERE id = $1 AND run_id = $2",
        )
        .bind(project)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        self.finish_run(
            run_id,
            crate::RunStatus::Failed,
            &serde_json::json!({"error": "the import failed"}),
        )
        .await
    }

    /// Delete a project with its routed items, slots and skips, in one transaction (people's answers, if any, stay
    /// in `annotations`). Used when the import that created it failed.
    pub async fn delete_project(&self, project: ProjectId) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM review_skips WHERE item_id IN (SELECT id FROM review_items WHERE project_id = $1)",
        )
        .bind(project)
        .execute(&mut *tx)
        .await?;
        for table in ["review_assignments", "review_items"] {
            // Table names come from this file only.
            sqlx::query(&format!("DELETE FROM {table} WHERE project_id = $1"))
                .bind(project)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM review_projects WHERE id = $1")
            .bind(project)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Write model labels that came with imported rows, many rows per statement, in one transaction; labels the
    /// annotator already has for a record are kept. Returns how many were new.
    pub async fn import_model_labels(
        &self,
        task_id: TaskId,
        run_id: &str,
        annotator: &str,
        labels: &[ImportedLabel],
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let created_at = now();
        let mut inserted = 0;
        for batch in labels.chunks(BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO annotations (task_id, record_id, run_id, annotator_kind, annotator, model_sha256,
                     prompt_hash, scores, value, confidence, distribution, created_at) VALUES {}
                 ON CONFLICT (task_id, record_id, annotator_kind, annotator) DO NOTHING",
                values_list(self.backend, batch.len(), 12)
            );
            let mut query = sqlx::query(&sql);
            for l in batch {
                let scores = (!l.scores.is_null()).then(|| l.scores.to_string());
                query = query
                    .bind(task_id)
                    .bind(l.record_id)
                    .bind(run_id)
                    .bind(assay_core::AnnotatorKind::Model.as_str())
                    .bind(annotator)
                    .bind("")
                    .bind("")
                    .bind(scores)
                    .bind(l.value.to_string())
                    .bind(l.confidence)
                    .bind(l.distribution.to_string())
                    .bind(&created_at);
            }
            inserted += query.execute(&mut *tx).await?.rows_affected();
        }
        sqlx::query("UPDATE runs SET items_scored = items_scored + $1 WHERE id = $2")
            .bind(inserted as i64)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Route a project's dataset: decide which records go to people (see [`ReviewSpec::route`]) and give each new
    /// item its overlap slots. Items routed before stay as they are, so routing again after an import only adds.
    pub async fn route_project(&self, project: ProjectId) -> Result<RouteSummary> {
        let p = self
            .project(project)
            .await?
            .ok_or_else(|| Error::Invalid(format!("no project {project}")))?;
        let Some(dataset_id) = p.dataset_id else {
            return Ok(RouteSummary::default());
        };
        let review = p.review();
        let is_compare = p.spec.kind == TaskKind::Compare;
        // The gold and skill columns are read by the database as JSON text, so the records' data never travels.
        let mut next_param = 3;
        let mut column_sql = |column: &Option<String>| -> String {
            if column.is_none() {
                return "NULL".into();
            }
            let n = next_param;
            next_param += 1;
            match self.backend {
                Backend::Sqlite => format!("json_quote(json_extract(r.data, ${n}))"),
                Backend::Postgres => format!("(CAST(r.data AS JSON) -> CAST(${n} AS TEXT))::text"),
            }
        };
        let sql = format!(
            "SELECT r.id, a.confidence, a.value, {}, {}, {} FROM records r
             LEFT JOIN annotations a ON a.record_id = r.id AND a.task_id = $1 AND a.annotator_kind = 'model'
             WHERE r.dataset_id = $2 ORDER BY r.id, a.id",
            "a.scores",
            column_sql(&p.spec.gold),
            column_sql(&review.skill_column),
        );
        let mut query = sqlx::query(&sql).bind(p.task_id).bind(dataset_id);
        for column in [&p.spec.gold, &review.skill_column].into_iter().flatten() {
            query = query.bind(match self.backend {
                Backend::Sqlite => format!("$.\"{}\"", column.replace('"', "")),
                Backend::Postgres => column.clone(),
            });
        }
        let rows = query.fetch_all(&self.pool).await?;
        struct Info {
            confidence: Option<f64>,
            suggestion: Option<String>,
            gold: Option<String>,
            skill: Option<String>,
        }
        let mut candidates: Vec<RouteCandidate> = Vec::with_capacity(rows.len());
        let mut info: HashMap<i64, Info> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.get(0);
            let confidence: Option<f64> = r.get(1);
            let value: Option<String> = r.get(2);
            let scores = parse_json(r.get(3), "scores")?;
            let consistent = if is_compare {
                scores
                    .as_ref()
                    .and_then(assay_core::task::position_consistent)
            } else {
                None
            };
            // An imported label of a task with a probe says whether the probe and the LLM agreed.
            let mut disagree = scores
                .as_ref()
                .and_then(|s| s.get("labelers_disagree"))
                .and_then(serde_json::Value::as_bool);
            // A record labeled by two model annotators (the LLM, then the probe trained after it): they disagree
            // when their labels differ. The later one's label and confidence are the ones routed on.
            if let (Some(last), Some(prev)) = (candidates.last(), info.get(&id)) {
                if last.id == id {
                    disagree = Some(disagree.unwrap_or(false) || prev.suggestion != value);
                }
            }
            let column = |i: usize| -> Result<Option<serde_json::Value>> {
                Ok(match parse_json(r.get(i), "record column")? {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
                    Some(v) => Some(v),
                })
            };
            let gold = column(4)?;
            let skill = column(5)?
                .map(|v| match v {
                    serde_json::Value::String(s) => s.trim().to_string(),
                    v => v.to_string(),
                })
                .or_else(|| review.skill.clone());
            let candidate = RouteCandidate {
                id,
                confidence,
                position_consistent: consistent,
                labelers_disagree: disagree,
                has_gold: gold.is_some(),
            };
            // With several model labels for a record, the last written wins.
            if candidates.last().is_some_and(|c| c.id == id) {
                candidates.pop();
            }
            candidates.push(candidate);
            info.insert(
                id,
                Info {
                    confidence,
                    suggestion: value,
                    gold: gold.map(|g| g.to_string()),
                    skill,
                },
            );
        }
        let routed = review.route(&candidates);
        let mut tx = self.pool.begin().await?;
        let created_at = now();
        let mut new_items = 0;
        for batch in routed.chunks(BATCH_ROWS) {
            let sql = format!(
                "INSERT INTO review_items (project_id, record_id, reason, skill, confidence, suggestion, gold,
                     created_at) VALUES {} ON CONFLICT (project_id, record_id) DO NOTHING",
                values_list(self.backend, batch.len(), 8)
            );
            let mut query = sqlx::query(&sql);
            for (id, reason) in batch {
                let i = &info[id];
                query = query
                    .bind(project)
                    .bind(*id)
                    .bind(reason.as_str())
                    .bind(i.skill.clone())
                    .bind(i.confidence)
                    .bind(i.suggestion.clone())
                    .bind(i.gold.clone())
                    .bind(&created_at);
            }
            new_items += query.execute(&mut *tx).await?.rows_affected();
        }
        for slot in 0..i64::from(review.overlap) {
            sqlx::query(
                "INSERT INTO review_assignments (project_id, item_id, slot, priority, skill, status)
                 SELECT i.project_id, i.id, CAST($2 AS BIGINT), COALESCE(i.confidence, -1.0), i.skill, 'open'
                 FROM review_items i
                 WHERE i.project_id = $1
                   AND NOT EXISTS (SELECT 1 FROM review_assignments a WHERE a.item_id = i.id AND a.slot = $2)",
            )
            .bind(project)
            .bind(slot)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(RouteSummary {
            records: candidates.len() as u64,
            labeled: candidates.iter().filter(|c| c.confidence.is_some()).count() as u64,
            new_items,
            by_reason: self.count_by(project, "review_items", "reason").await?,
        })
    }

    async fn count_by(
        &self,
        project: ProjectId,
        table: &str,
        column: &str,
    ) -> Result<BTreeMap<String, u64>> {
        // Table and column names come from this file only.
        let sql = format!(
            "SELECT {column}, COUNT(*) FROM {table} WHERE project_id = $1 GROUP BY {column}"
        );
        let rows = sqlx::query(&sql)
            .bind(project)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1) as u64))
            .collect())
    }

    /// A project's routed items: (row index, reason), in row order.
    pub async fn review_items(&self, project: ProjectId) -> Result<Vec<(u64, String)>> {
        let rows = sqlx::query(
            "SELECT r.row_index, i.reason FROM review_items i JOIN records r ON r.id = i.record_id
             WHERE i.project_id = $1 ORDER BY r.row_index",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<i64, _>(0) as u64, r.get(1)))
            .collect())
    }

    /// Record ids of a dataset's rows `first..=last`, by row index.
    pub async fn record_ids_between(
        &self,
        dataset_id: DatasetId,
        first: u64,
        last: u64,
    ) -> Result<HashMap<u64, RecordId>> {
        let rows = sqlx::query(
            "SELECT id, row_index FROM records WHERE dataset_id = $1 AND row_index >= $2 AND row_index <= $3",
        )
        .bind(dataset_id)
        .bind(first as i64)
        .bind(last as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<i64, _>(1) as u64, r.get::<i64, _>(0)))
            .collect())
    }

    /// A slot with the item's data, the machine's suggestion and the holder's answer.
    pub async fn assignment(&self, id: AssignmentId) -> Result<Option<AssignmentView>> {
        let row = sqlx::query(
            "SELECT a.id, a.project_id, a.annotator_id, a.status, i.reason, i.confidence, i.suggestion, r.data,
                    n.value, a.claimed_at, a.answered_at
             FROM review_assignments a
             JOIN review_items i ON i.id = a.item_id
             JOIN records r ON r.id = i.record_id
             LEFT JOIN annotations n ON n.id = a.annotation_id
             WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let reason: String = r.get(4);
        Ok(Some(AssignmentView {
            id: r.get(0),
            project_id: r.get(1),
            annotator_id: r.get(2),
            status: r.get(3),
            reason: RouteReason::parse(&reason)
                .ok_or_else(|| Error::Internal(format!("unknown route reason {reason}")))?,
            confidence: r.get(5),
            suggestion: parse_json(r.get(6), "suggestion")?,
            data: parse_json(r.get(7), "record data")?.unwrap_or_default(),
            answer: parse_json(r.get(8), "answer")?,
            claimed_at: r.get(9),
            answered_at: r.get(10),
        }))
    }

    /// A project's figures.
    pub async fn progress(&self, project: &Project) -> Result<Progress> {
        let dataset_rows: i64 = match project.dataset_id {
            Some(d) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE dataset_id = $1")
                    .bind(d)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => 0,
        };
        let by_reason = self.count_by(project.id, "review_items", "reason").await?;
        let slots = self
            .count_by(project.id, "review_assignments", "status")
            .await?;
        let items_complete: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM review_items i WHERE i.project_id = $1
               AND NOT EXISTS (SELECT 1 FROM review_assignments a WHERE a.item_id = i.id AND a.status <> 'answered')",
        )
        .bind(project.id)
        .fetch_one(&self.pool)
        .await?;
        let names: HashMap<i64, String> = self
            .annotators()
            .await?
            .into_iter()
            .map(|a| (a.id, a.name))
            .collect();
        let mut per: BTreeMap<i64, AnnotatorProgress> = BTreeMap::new();
        fn entry<'a>(
            per: &'a mut BTreeMap<i64, AnnotatorProgress>,
            names: &HashMap<i64, String>,
            id: i64,
        ) -> &'a mut AnnotatorProgress {
            per.entry(id).or_insert_with(|| AnnotatorProgress {
                id,
                name: names.get(&id).cloned().unwrap_or_default(),
                ..AnnotatorProgress::default()
            })
        }
        let rows = sqlx::query(
            "SELECT annotator_id, status, COUNT(*) FROM review_assignments
             WHERE project_id = $1 AND annotator_id IS NOT NULL GROUP BY annotator_id, status",
        )
        .bind(project.id)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let status: String = r.get(1);
            let n = r.get::<i64, _>(2) as u64;
            let e = entry(&mut per, &names, r.get(0));
            match status.as_str() {
                "answered" => e.answered += n,
                "claimed" => e.claimed += n,
                _ => {}
            }
        }
        let rows = sqlx::query(
            "SELECT s.annotator_id, COUNT(*) FROM review_skips s JOIN review_items i ON i.id = s.item_id
             WHERE i.project_id = $1 GROUP BY s.annotator_id",
        )
        .bind(project.id)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            entry(&mut per, &names, r.get(0)).skipped = r.get::<i64, _>(1) as u64;
        }
        let rows = sqlx::query(
            "SELECT a.annotator_id, n.duration_ms, i.reason, i.gold, n.value
             FROM review_assignments a
             JOIN annotations n ON n.id = a.annotation_id
             JOIN review_items i ON i.id = a.item_id
             WHERE a.project_id = $1 AND a.status = 'answered'",
        )
        .bind(project.id)
        .fetch_all(&self.pool)
        .await?;
        let mut durations: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut gold_answers = Vec::new();
        for r in &rows {
            let id: i64 = r.get(0);
            if let Some(d) = r.get::<Option<i64>, _>(1) {
                durations.entry(id).or_default().push(d);
            }
            let reason: String = r.get(2);
            if reason == RouteReason::Gold.as_str() {
                if let (Some(gold), Some(answer)) = (
                    parse_json(r.get(3), "gold")?,
                    parse_json(r.get(4), "answer")?,
                ) {
                    gold_answers.push((id, gold, answer));
                }
            }
        }
        for (id, mut d) in durations {
            d.sort_unstable();
            entry(&mut per, &names, id).median_duration_ms = d.get(d.len() / 2).copied();
        }
        Ok(Progress {
            dataset_rows: dataset_rows as u64,
            items: by_reason.values().sum(),
            by_reason,
            slots,
            items_complete: items_complete as u64,
            annotators: per.into_values().collect(),
            gold_answers,
        })
    }

    /// How many of a project's slots this annotator has answered and could still claim.
    pub async fn my_counts(
        &self,
        project: ProjectId,
        annotator: AnnotatorId,
    ) -> Result<(u64, u64)> {
        let answered: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM review_assignments WHERE project_id = $1 AND annotator_id = $2
               AND status = 'answered'",
        )
        .bind(project)
        .bind(annotator)
        .fetch_one(&self.pool)
        .await?;
        let open: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(DISTINCT a.item_id) FROM review_assignments a WHERE {OPEN_FOR}"
        ))
        .bind(project)
        .bind(annotator)
        .fetch_one(&self.pool)
        .await?;
        Ok((answered as u64, open as u64))
    }

    /// The slot of a project this annotator holds claimed and has not answered, if any.
    pub async fn held_slot(
        &self,
        project: ProjectId,
        annotator: AnnotatorId,
    ) -> Result<Option<AssignmentId>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM review_assignments WHERE project_id = $1 AND annotator_id = $2 AND status = 'claimed'
             ORDER BY id LIMIT 1",
        )
        .bind(project)
        .bind(annotator)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every human answer of a task with its review columns, by record and annotator.
    pub async fn review_answers(&self, task_id: TaskId) -> Result<Vec<ReviewAnswer>> {
        let rows = sqlx::query(
            "SELECT record_id, annotator, value, duration_ms, suggestion_shown, review_reason, assignment_id
             FROM annotations WHERE task_id = $1 AND annotator_kind = 'human' ORDER BY record_id, annotator",
        )
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReviewAnswer {
                    record_id: r.get(0),
                    annotator: r.get(1),
                    value: parse_json(r.get(2), "answer")?.unwrap_or_default(),
                    duration_ms: r.get(3),
                    suggestion_shown: r.get::<Option<i64>, _>(4).map(|b| b != 0),
                    reason: r.get(5),
                    assignment_id: r.get(6),
                })
            })
            .collect()
    }

    /// A writer for claims, answers, skips and undos (see the module docs). Needs a Tokio runtime.
    pub fn review_writer(&self) -> ReviewWriter {
        match self.backend {
            Backend::Sqlite => {
                let (tx, rx) = mpsc::channel(4096);
                tokio::spawn(group_commit(self.clone(), rx));
                ReviewWriter {
                    inner: WriterInner::Batched(tx),
                }
            }
            Backend::Postgres => ReviewWriter {
                inner: WriterInner::Direct(self.clone()),
            },
        }
    }
}

/// The open slots of project `$1` that annotator `$2` may claim: not an item they hold or held a slot of, not
/// an item they skipped, and a skill they have.
const OPEN_FOR: &str = "a.project_id = $1 AND a.status = 'open'
      AND NOT EXISTS (SELECT 1 FROM review_assignments b WHERE b.item_id = a.item_id AND b.annotator_id = $2)
      AND NOT EXISTS (SELECT 1 FROM review_skips s WHERE s.item_id = a.item_id AND s.annotator_id = $2)
      AND (a.skill IS NULL OR EXISTS
            (SELECT 1 FROM annotator_skills k WHERE k.annotator_id = $2 AND k.skill = a.skill))";

/// One write a person waits on.
#[derive(Debug)]
enum Op {
    Claim {
        project: ProjectId,
        annotator: AnnotatorId,
    },
    Answer(HumanAnswer),
    Skip {
        assignment: AssignmentId,
        annotator: AnnotatorId,
    },
    Undo {
        annotator: AnnotatorId,
    },
    ReleaseStale {
        claimed_before: String,
    },
}

#[derive(Debug)]
enum Reply {
    Claim(Option<AssignmentId>),
    Answer(AnswerOutcome),
    Skip(std::result::Result<(), Refusal>),
    Undo(Option<AssignmentId>),
    Released(u64),
}

impl Reply {
    /// Whether the job's writes must be rolled back (a refusal after a partial write). `AlreadyAnswered` is
    /// the exception: what it wrote (the slot back in the pool) must commit.
    fn refused(&self) -> bool {
        matches!(
            self,
            Reply::Answer(AnswerOutcome::Refused(r)) if *r != Refusal::AlreadyAnswered
        ) || matches!(self, Reply::Skip(Err(_)))
    }
}

type Job = (Op, oneshot::Sender<Result<Reply>>);

/// Where claims, answers, skips and undos are written: one group-committing task on SQLite, concurrent
/// transactions on PostgreSQL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReviewWriter {
    inner: WriterInner,
}

#[derive(Debug, Clone)]
enum WriterInner {
    Batched(mpsc::Sender<Job>),
    Direct(Store),
}

impl ReviewWriter {
    async fn run(&self, op: Op) -> Result<Reply> {
        match &self.inner {
            WriterInner::Batched(tx) => {
                let (reply, wait) = oneshot::channel();
                tx.send((op, reply))
                    .await
                    .map_err(|_| Error::Internal("the review writer stopped".into()))?;
                wait.await
                    .map_err(|_| Error::Internal("the review writer dropped a request".into()))?
            }
            WriterInner::Direct(store) => {
                // A claim can lose a race for a row (unique violation); it is retried a few times.
                let mut attempt = 0;
                loop {
                    let mut tx = store.pool.begin().await?;
                    match execute(&mut tx, store.backend, &op).await {
                        Ok(reply) if reply.refused() => {
                            tx.rollback().await?;
                            return Ok(reply);
                        }
                        Ok(reply) => {
                            tx.commit().await?;
                            return Ok(reply);
                        }
                        Err(Error::Database(sqlx::Error::Database(e)))
                            if e.is_unique_violation() && attempt < 5 =>
                        {
                            attempt += 1;
                            tx.rollback().await?;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Claim the next slot of a project for an annotator (or give back the one they hold); `None` when there is
    /// nothing left for them.
    pub async fn claim(
        &self,
        project: ProjectId,
        annotator: AnnotatorId,
    ) -> Result<Option<AssignmentId>> {
        match self.run(Op::Claim { project, annotator }).await? {
            Reply::Claim(a) => Ok(a),
            other => Err(Error::Internal(format!("claim answered {other:?}"))),
        }
    }

    /// Record an answer; returns after it committed.
    pub async fn answer(&self, answer: HumanAnswer) -> Result<AnswerOutcome> {
        match self.run(Op::Answer(answer)).await? {
            Reply::Answer(a) => Ok(a),
            other => Err(Error::Internal(format!("answer answered {other:?}"))),
        }
    }

    /// Give a claimed slot back; the annotator is not offered the item again.
    pub async fn skip(
        &self,
        assignment: AssignmentId,
        annotator: AnnotatorId,
    ) -> Result<std::result::Result<(), Refusal>> {
        match self
            .run(Op::Skip {
                assignment,
                annotator,
            })
            .await?
        {
            Reply::Skip(a) => Ok(a),
            other => Err(Error::Internal(format!("skip answered {other:?}"))),
        }
    }

    /// Delete the annotator's most recent answer and give them its slot back as claimed.
    pub async fn undo(&self, annotator: AnnotatorId) -> Result<Option<AssignmentId>> {
        match self.run(Op::Undo { annotator }).await? {
            Reply::Undo(a) => Ok(a),
            other => Err(Error::Internal(format!("undo answered {other:?}"))),
        }
    }

    /// Put slots claimed before this time (RFC 3339) and never answered back in the pool.
    pub async fn release_stale(&self, claimed_before: String) -> Result<u64> {
        match self.run(Op::ReleaseStale { claimed_before }).await? {
            Reply::Released(n) => Ok(n),
            other => Err(Error::Internal(format!("release answered {other:?}"))),
        }
    }
}

/// The SQLite writer: every request that arrived while the previous batch committed goes into one transaction,
/// each in a savepoint; replies go out after the commit.
async fn group_commit(store: Store, mut rx: mpsc::Receiver<Job>) {
    const MAX_BATCH: usize = 1024;
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match run_batch(&store, &jobs).await {
            Ok(replies) => {
                for ((_, reply_to), reply) in jobs.into_iter().zip(replies) {
                    let _ = reply_to.send(reply);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = jobs.len(), "review batch failed; nothing in it was saved");
                let message = e.to_string();
                for (_, reply_to) in jobs {
                    let _ = reply_to.send(Err(Error::Batch(message.clone())));
                }
            }
        }
    }
}

/// One transaction for the whole batch, each job in a savepoint of its own: a job that fails (or is refused) is
/// rolled back alone and answered with its error; the others commit. Only a failure of the transaction itself
/// (begin, a savepoint statement, commit) fails the whole batch, and then no request in it is acknowledged.
async fn run_batch(store: &Store, jobs: &[Job]) -> Result<Vec<Result<Reply>>> {
    let mut conn = store.pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let mut replies = Vec::with_capacity(jobs.len());
    for (op, _) in jobs {
        sqlx::query("SAVEPOINT review_job")
            .execute(&mut *tx)
            .await?;
        let reply = execute(&mut tx, store.backend, op).await;
        if reply.as_ref().map_or(true, Reply::refused) {
            if let Err(e) = &reply {
                tracing::warn!(error = %e, ?op, "review write failed; the rest of its batch goes on");
            }
            sqlx::query("ROLLBACK TO SAVEPOINT review_job")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("RELEASE SAVEPOINT review_job")
            .execute(&mut *tx)
            .await?;
        replies.push(reply);
    }
    tx.commit().await?;
    Ok(replies)
}

async fn execute(conn: &mut AnyConnection, backend: Backend, op: &Op) -> Result<Reply> {
    match op {
        Op::Claim { project, annotator } => claim(conn, backend, *project, *annotator)
            .await
            .map(Reply::Claim),
        Op::Answer(answer) => record_answer(conn, answer).await.map(Reply::Answer),
        Op::Skip {
            assignment,
            annotator,
        } => skip(conn, *assignment, *annotator).await.map(Reply::Skip),
        Op::Undo { annotator } => undo(conn, *annotator).await.map(Reply::Undo),
        Op::ReleaseStale { claimed_before } => {
            let n = sqlx::query(
                "UPDATE review_assignments SET status = 'open', annotator_id = NULL, claimed_at = NULL
                 WHERE status = 'claimed' AND claimed_at < $1",
            )
            .bind(claimed_before)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(Reply::Released(n))
        }
    }
}

async fn claim(
    conn: &mut AnyConnection,
    backend: Backend,
    project: ProjectId,
    annotator: AnnotatorId,
) -> Result<Option<AssignmentId>> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM review_assignments WHERE annotator_id = $2 AND project_id = $1 AND status = 'claimed'
         ORDER BY claimed_at, id LIMIT 1",
    )
    .bind(project)
    .bind(annotator)
    .fetch_optional(&mut *conn)
    .await?;
    if held.is_some() {
        return Ok(held);
    }
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE review_assignments SET annotator_id = $2, status = 'claimed', claimed_at = $3
         WHERE status = 'open' AND id = (
             SELECT a.id FROM review_assignments a WHERE {OPEN_FOR}
             ORDER BY a.priority, a.item_id, a.slot LIMIT 1 {lock})
         RETURNING id"
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(project)
        .bind(annotator)
        .bind(now())
        .fetch_optional(&mut *conn)
        .await?)
}

async fn record_answer(conn: &mut AnyConnection, answer: &HumanAnswer) -> Result<AnswerOutcome> {
    let row = sqlx::query(
        "SELECT a.annotator_id, a.status, i.record_id, i.reason, p.task_id, p.run_id
         FROM review_assignments a
         JOIN review_items i ON i.id = a.item_id
         JOIN review_projects p ON p.id = a.project_id
         WHERE a.id = $1",
    )
    .bind(answer.assignment_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(AnswerOutcome::Refused(Refusal::NotFound));
    };
    let holder: Option<i64> = row.get(0);
    let status: String = row.get(1);
    if holder != Some(answer.annotator_id) {
        return Ok(AnswerOutcome::Refused(if status == "open" {
            Refusal::NotClaimed
        } else {
            Refusal::NotYours
        }));
    }
    if status != "claimed" {
        return Ok(AnswerOutcome::Refused(Refusal::NotClaimed));
    }
    let run_id: Option<String> = row.get(5);
    let run_id = run_id.ok_or_else(|| Error::Internal("project without a review run".into()))?;
    let annotation_id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO annotations (task_id, record_id, run_id, annotator_kind, annotator, model_sha256, prompt_hash,
             scores, value, confidence, distribution, created_at, duration_ms, suggestion_shown, assignment_id,
             review_reason)
         VALUES ($1, $2, $3, 'human', $4, '', '', NULL, $5, NULL, NULL, $6, $7, $8, $9, $10)
         ON CONFLICT (task_id, record_id, annotator_kind, annotator) DO NOTHING
         RETURNING id",
    )
    .bind(row.get::<i64, _>(4))
    .bind(row.get::<i64, _>(2))
    .bind(&run_id)
    .bind(&answer.annotator)
    .bind(answer.value.to_string())
    .bind(now())
    .bind(answer.duration_ms)
    .bind(i64::from(answer.suggestion_shown))
    .bind(answer.assignment_id)
    .bind(row.get::<String, _>(3))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(annotation_id) = annotation_id else {
        // The person answered this record for this task version already, in another project over the same task
        // version and records. Nothing was written; their slot goes back to the pool (it would otherwise stay
        // claimed) and the item is not offered to them again.
        release_to_others(conn, answer.assignment_id, answer.annotator_id).await?;
        return Ok(AnswerOutcome::Refused(Refusal::AlreadyAnswered));
    };
    let updated = sqlx::query(
        "UPDATE review_assignments SET status = 'answered', answered_at = $1, annotation_id = $2
         WHERE id = $3 AND annotator_id = $4 AND status = 'claimed'",
    )
    .bind(now())
    .bind(annotation_id)
    .bind(answer.assignment_id)
    .bind(answer.annotator_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        // Released between the check and the update (PostgreSQL, a concurrent sweep): take the answer back.
        sqlx::query("DELETE FROM annotations WHERE id = $1")
            .bind(annotation_id)
            .execute(&mut *conn)
            .await?;
        return Ok(AnswerOutcome::Refused(Refusal::NotClaimed));
    }
    Ok(AnswerOutcome::Answered { annotation_id })
}

/// Give a claimed slot back to the pool and remember that this annotator is not to be offered its item again.
/// Returns whether the slot was theirs and claimed.
async fn release_to_others(
    conn: &mut AnyConnection,
    assignment: AssignmentId,
    annotator: AnnotatorId,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE review_assignments SET status = 'open', annotator_id = NULL, claimed_at = NULL
         WHERE id = $1 AND annotator_id = $2 AND status = 'claimed'",
    )
    .bind(assignment)
    .bind(annotator)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO review_skips (item_id, annotator_id, skipped_at)
         SELECT item_id, $2, $3 FROM review_assignments WHERE id = $1
         ON CONFLICT (item_id, annotator_id) DO NOTHING",
    )
    .bind(assignment)
    .bind(annotator)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

async fn skip(
    conn: &mut AnyConnection,
    assignment: AssignmentId,
    annotator: AnnotatorId,
) -> Result<std::result::Result<(), Refusal>> {
    let row =
        sqlx::query("SELECT annotator_id, status, item_id FROM review_assignments WHERE id = $1")
            .bind(assignment)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else {
        return Ok(Err(Refusal::NotFound));
    };
    let holder: Option<i64> = row.get(0);
    let status: String = row.get(1);
    if holder != Some(annotator) {
        return Ok(Err(if status == "open" {
            Refusal::NotClaimed
        } else {
            Refusal::NotYours
        }));
    }
    if !release_to_others(conn, assignment, annotator).await? {
        return Ok(Err(Refusal::NotClaimed));
    }
    Ok(Ok(()))
}

async fn undo(conn: &mut AnyConnection, annotator: AnnotatorId) -> Result<Option<AssignmentId>> {
    let row = sqlx::query(
        "SELECT id, annotation_id FROM review_assignments WHERE annotator_id = $1 AND status = 'answered'
         ORDER BY answered_at DESC, id DESC LIMIT 1",
    )
    .bind(annotator)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.get(0);
    if let Some(annotation) = row.get::<Option<i64>, _>(1) {
        sqlx::query("DELETE FROM annotations WHERE id = $1")
            .bind(annotation)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE review_assignments SET status = 'claimed', claimed_at = $1, answered_at = NULL,
             annotation_id = NULL WHERE id = $2",
    )
    .bind(now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SQLite store with one project of three routed items (overlap 3) and annotators `alice`, `mallory`, `bob`.
    async fn project_store(dir: &std::path::Path) -> (Store, ProjectId, Vec<AnnotatorId>) {
        let store = Store::open(&dir.join("store.db").display().to_string())
            .await
            .unwrap();
        let spec = TaskSpec::from_toml_str(
            "name = \"t\"\ntype = \"classify\"\ninput = \"{{ text }}\"\nlabels = [\"a\", \"b\"]\n\
             [review]\nconfidence-below = 0.9\noverlap = 3\n",
        )
        .unwrap();
        let task = store
            .task(
                "t",
                "classify",
                "hash",
                &serde_json::to_string(&spec).unwrap(),
            )
            .await
            .unwrap();
        let project = store
            .create_project("p", task, &spec)
            .await
            .unwrap()
            .unwrap();
        let dataset = store.dataset("d", "d.jsonl", "sha", "jsonl").await.unwrap();
        let rows: Vec<(u64, String)> = (0..3)
            .map(|i| {
                (
                    i,
                    serde_json::json!({"text": format!("row {i}")}).to_string(),
                )
            })
            .collect();
        store.insert_records(dataset, &rows).await.unwrap();
        store.attach_dataset(project, dataset).await.unwrap();
        let run = store
            .start_run(&crate::NewRun {
                task_id: task,
                dataset_id: dataset,
                annotator: "m".into(),
                model_sha256: String::new(),
                prompt_hash: String::new(),
            })
            .await
            .unwrap();
        let ids = store.record_ids(dataset).await.unwrap();
        let labels: Vec<ImportedLabel> = ids
            .values()
            .map(|&record_id| ImportedLabel {
                record_id,
                value: serde_json::json!("a"),
                confidence: Some(0.5),
                distribution: serde_json::json!({}),
                scores: serde_json::Value::Null,
            })
            .collect();
        store
            .import_model_labels(task, &run, "m", &labels)
            .await
            .unwrap();
        assert_eq!(store.route_project(project).await.unwrap().new_items, 3);
        let mut people = Vec::new();
        for name in ["alice", "mallory", "bob"] {
            let a = store
                .create_annotator(name, Role::Annotator, &[], &format!("token-{name}"))
                .await
                .unwrap()
                .unwrap();
            people.push(a.id);
        }
        (store, project, people)
    }

    fn job(op: Op) -> Job {
        (op, oneshot::channel().0)
    }

    #[tokio::test]
    async fn issue_11_one_failed_write_fails_one_request() {
        let dir = tempfile::tempdir().unwrap();
        let (store, project, people) = project_store(dir.path()).await;
        let claims: Vec<Job> = people
            .iter()
            .map(|&annotator| job(Op::Claim { project, annotator }))
            .collect();
        let slots: Vec<AssignmentId> = run_batch(&store, &claims)
            .await
            .unwrap()
            .into_iter()
            .map(|r| match r.unwrap() {
                Reply::Claim(Some(id)) => id,
                other => panic!("{other:?}"),
            })
            .collect();
        // Mallory's answer fails in the database; Alice's and Bob's, in the same batch, must not.
        sqlx::query(
            "CREATE TRIGGER boom BEFORE INSERT ON annotations WHEN NEW.annotator = 'mallory'
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let answers: Vec<Job> = ["alice", "mallory", "bob"]
            .iter()
            .zip(&people)
            .zip(&slots)
            .map(|((name, &annotator_id), &assignment_id)| {
                job(Op::Answer(HumanAnswer {
                    assignment_id,
                    annotator_id,
                    annotator: name.to_string(),
                    value: serde_json::json!("b"),
                    duration_ms: 1,
                    suggestion_shown: false,
                }))
            })
            .collect();
        let replies = run_batch(&store, &answers)
            .await
            .expect("the batch as a whole commits");
        assert!(matches!(
            replies[0],
            Ok(Reply::Answer(AnswerOutcome::Answered { .. }))
        ));
        let err = replies[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("boom"), "{err}");
        assert!(matches!(
            replies[2],
            Ok(Reply::Answer(AnswerOutcome::Answered { .. }))
        ));
        let task = store.project(project).await.unwrap().unwrap().task_id;
        let mut saved: Vec<String> = store
            .review_answers(task)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.annotator)
            .collect();
        saved.sort();
        assert_eq!(saved, ["alice", "bob"]);
        // Mallory's slot is still hers, claimed, and can be answered once the fault is gone.
        let view = store.assignment(slots[1]).await.unwrap().unwrap();
        assert_eq!(view.status, "claimed");
    }
}
