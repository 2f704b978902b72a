//! What people answered on a project's routed items, beside the machine's label and the gold answer: the input of
//! `assay project qc` (the machine's accuracy on audit items, people's accuracy on gold, their agreement).

use std::collections::BTreeMap;

use sqlx::Row;

use crate::review::Project;
use crate::{Error, RecordId, Result, Store};

/// One routed item and everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewOutcome {
    /// The record.
    pub record_id: RecordId,
    /// Why it was routed (`low-confidence`, `inconsistent`, `audit`, `gold`).
    pub reason: String,
    /// The known answer, when the item has one.
    pub gold: Option<serde_json::Value>,
    /// The machine's (calibrated) label, when it labeled the item.
    pub machine: Option<serde_json::Value>,
    /// The machine's confidence.
    pub confidence: Option<f64>,
    /// People's answers: (name, answer, milliseconds spent), by name.
    pub answers: Vec<(String, serde_json::Value, Option<i64>)>,
}

fn json(text: Option<String>, what: &str) -> Result<Option<serde_json::Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| Error::Internal(format!("{what}: {e}"))))
        .transpose()
}

impl Store {
    /// Every routed item of a project with the machine's label and the people's answers, by record.
    pub async fn review_outcomes(&self, project: &Project) -> Result<Vec<ReviewOutcome>> {
        let items = sqlx::query(
            "SELECT i.record_id, i.reason, i.gold,
                    (SELECT m.value FROM annotations m WHERE m.record_id = i.record_id AND m.task_id = $1
                       AND m.annotator_kind = 'model' ORDER BY m.id LIMIT 1),
                    i.confidence
             FROM review_items i WHERE i.project_id = $2 ORDER BY i.record_id",
        )
        .bind(project.task_id)
        .bind(project.id)
        .fetch_all(&self.pool)
        .await?;
        let mut outcomes: BTreeMap<RecordId, ReviewOutcome> = BTreeMap::new();
        for r in &items {
            let record_id: RecordId = r.get(0);
            outcomes.insert(
                record_id,
                ReviewOutcome {
                    record_id,
                    reason: r.get(1),
                    gold: json(r.get(2), "review item gold")?,
                    machine: json(r.get(3), "model label")?,
                    confidence: r.get(4),
                    answers: Vec::new(),
                },
            );
        }
        let answers = sqlx::query(
            "SELECT a.record_id, a.annotator, a.value, a.duration_ms FROM annotations a
             JOIN review_items i ON i.record_id = a.record_id AND i.project_id = $1
             WHERE a.task_id = $2 AND a.annotator_kind = 'human'
             ORDER BY a.record_id, a.annotator",
        )
        .bind(project.id)
        .bind(project.task_id)
        .fetch_all(&self.pool)
        .await?;
        for r in &answers {
            let record_id: RecordId = r.get(0);
            if let (Some(outcome), Some(value)) =
                (outcomes.get_mut(&record_id), json(r.get(2), "answer")?)
            {
                outcome.answers.push((r.get(1), value, r.get(3)));
            }
        }
        Ok(outcomes.into_values().collect())
    }
}
