//! Summaries of finished dataset audits (`assay audit dups`, `assay audit overlap`), filed under the SHA-256 of the
//! audited file's bytes, so that `assay export` can put on the dataset card what the audits of exactly the
//! exported data found. The parameters and counts are JSON the audit commands define; the store keeps them as
//! they are.

use sqlx::Row;

use crate::{now, Error, Result, Store};

/// An audit run's summary about to be stored.
#[derive(Debug, Clone)]
pub struct NewAudit {
    /// Which audit: `dups` or `overlap`.
    pub kind: String,
    /// SHA-256 (hex) of the audited file's bytes.
    pub dataset_sha256: String,
    /// The audited file's path (absolute where it could be resolved).
    pub dataset_path: String,
    /// What it was run with (thresholds, n-gram sizes, reference files).
    pub parameters: serde_json::Value,
    /// What it found.
    pub counts: serde_json::Value,
}

/// An audit run's summary as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAudit {
    /// Row id.
    pub id: i64,
    /// Which audit.
    pub kind: String,
    /// SHA-256 of the audited file's bytes.
    pub dataset_sha256: String,
    /// The audited file's path.
    pub dataset_path: String,
    /// What it was run with.
    pub parameters: serde_json::Value,
    /// What it found.
    pub counts: serde_json::Value,
    /// When it was stored (RFC 3339, UTC).
    pub ran_at: String,
}

const COLUMNS: &str = "id, kind, dataset_sha256, dataset_path, parameters, counts, ran_at";

impl Store {
    /// Store a finished audit's summary; returns its row id.
    pub async fn record_audit(&self, audit: &NewAudit) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_runs (kind, dataset_sha256, dataset_path, parameters, counts, ran_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&audit.kind)
        .bind(&audit.dataset_sha256)
        .bind(&audit.dataset_path)
        .bind(audit.parameters.to_string())
        .bind(audit.counts.to_string())
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// The newest audit of this kind of the file with these bytes.
    pub async fn latest_audit(&self, kind: &str, sha256: &str) -> Result<Option<StoredAudit>> {
        self.latest_audit_where(kind, "dataset_sha256", sha256)
            .await
    }

    /// The newest audit of this kind of the file at this path, whatever its bytes were then: how the card tells
    /// "audited, but another version of the file" from "never audited".
    pub async fn latest_audit_of_path(
        &self,
        kind: &str,
        path: &str,
    ) -> Result<Option<StoredAudit>> {
        self.latest_audit_where(kind, "dataset_path", path).await
    }

    /// The newest audit of this kind whose `column` (one of this module's, never user text) equals `value`.
    async fn latest_audit_where(
        &self,
        kind: &str,
        column: &str,
        value: &str,
    ) -> Result<Option<StoredAudit>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_runs WHERE kind = $1 AND {column} = $2
             ORDER BY ran_at DESC, id DESC LIMIT 1"
        );
        let row = sqlx::query(&sql)
            .bind(kind)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored_audit).transpose()
    }
}

fn stored_audit(r: &sqlx::any::AnyRow) -> Result<StoredAudit> {
    let json = |i: usize| -> Result<serde_json::Value> {
        let text: String = r.get(i);
        serde_json::from_str(&text)
            .map_err(|e| Error::Internal(format!("stored audit summary is not JSON: {e}")))
    };
    Ok(StoredAudit {
        id: r.get(0),
        kind: r.get(1),
        dataset_sha256: r.get(2),
        dataset_path: r.get(3),
        parameters: json(4)?,
        counts: json(5)?,
        ran_at: r.get(6),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn audit(kind: &str, sha: &str, path: &str, rows: u64) -> NewAudit {
        NewAudit {
            kind: kind.into(),
            dataset_sha256: sha.into(),
            dataset_path: path.into(),
            parameters: json!({"threshold": 0.8, "ngram": 5}),
            counts: json!({"rows": rows}),
        }
    }

    async fn newest_audit_per_file_and_kind(store: Store) {
        assert_eq!(store.latest_audit("dups", "sha-a").await.unwrap(), None);
        let first = store
            .record_audit(&audit("dups", "sha-a", "/d/a.jsonl", 10))
            .await
            .unwrap();
        let second = store
            .record_audit(&audit("dups", "sha-a", "/d/a.jsonl", 11))
            .await
            .unwrap();
        store
            .record_audit(&audit("overlap", "sha-a", "/d/a.jsonl", 12))
            .await
            .unwrap();
        // The file edited: new bytes at the same path.
        store
            .record_audit(&audit("dups", "sha-b", "/d/a.jsonl", 13))
            .await
            .unwrap();
        assert!(second > first);
        let newest = store.latest_audit("dups", "sha-a").await.unwrap().unwrap();
        assert_eq!(newest.id, second);
        assert_eq!(newest.counts, json!({"rows": 11}));
        assert_eq!(newest.parameters["threshold"], 0.8);
        assert_eq!(newest.dataset_path, "/d/a.jsonl");
        assert!(newest.ran_at.ends_with('Z'), "{}", newest.ran_at);
        let overlap = store
            .latest_audit("overlap", "sha-a")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(overlap.counts, json!({"rows": 12}));
        assert_eq!(store.latest_audit("overlap", "sha-b").await.unwrap(), None);
        let by_path = store
            .latest_audit_of_path("dups", "/d/a.jsonl")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_path.dataset_sha256, "sha-b");
        assert_eq!(
            store
                .latest_audit_of_path("dups", "/d/other.jsonl")
                .await
                .unwrap(),
            None
        );
        let dataset = store
            .dataset("a", "/d/a.jsonl", "sha-a", "jsonl")
            .await
            .unwrap();
        assert_eq!(
            store
                .dataset_info(dataset)
                .await
                .unwrap()
                .map(|d| d.sha256)
                .as_deref(),
            Some("sha-a")
        );
        assert_eq!(store.dataset_info(dataset + 100).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_newest_audit_of_each_file_and_kind_is_found_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("a.db").display().to_string();
        newest_audit_per_file_and_kind(Store::open(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn the_newest_audit_of_each_file_and_kind_is_found_on_postgres() {
        let url = crate::testing::fresh_postgres_database().await;
        newest_audit_per_file_and_kind(Store::open(&url).await.unwrap()).await;
    }
}
