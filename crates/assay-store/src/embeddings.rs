//! Stored embeddings: computed once per (embedder, text) and reused by every later run.

use std::collections::HashMap;

use sqlx::Row;

use crate::{now, Error, Result, Store};

/// Keys looked up per query.
const LOOKUP_BATCH: usize = 500;

impl Store {
    /// The stored vectors of `embedder` for these text hashes (those that have one).
    pub async fn embeddings(
        &self,
        embedder: &str,
        text_sha256: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let mut found = HashMap::with_capacity(text_sha256.len());
        for batch in text_sha256.chunks(LOOKUP_BATCH) {
            let placeholders: Vec<String> =
                (0..batch.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT text_sha256, dim, vector FROM embeddings WHERE embedder = $1 AND text_sha256 IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(embedder);
            for key in batch {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                let key: String = row.get(0);
                let dim: i64 = row.get(1);
                let bytes: Vec<u8> = row.get(2);
                found.insert(key, decode(&bytes, dim as usize)?);
            }
        }
        Ok(found)
    }

    /// Store vectors of `embedder` by text hash, in one transaction; existing ones are kept.
    pub async fn store_embeddings(
        &self,
        embedder: &str,
        vectors: &[(String, Vec<f32>)],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let created_at = now();
        for (key, vector) in vectors {
            sqlx::query(
                "INSERT INTO embeddings (embedder, text_sha256, dim, vector, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (embedder, text_sha256) DO NOTHING",
            )
            .bind(embedder)
            .bind(key.as_str())
            .bind(vector.len() as i64)
            .bind(encode(vector))
            .bind(&created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many vectors `embedder` has stored.
    pub async fn embedding_count(&self, embedder: &str) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM embeddings WHERE embedder = $1")
            .bind(embedder)
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }
}

fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode(bytes: &[u8], dim: usize) -> Result<Vec<f32>> {
    if bytes.len() != dim * 4 {
        return Err(Error::Internal(format!(
            "a stored embedding has {} bytes, not {dim} f32 values",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(store: Store) {
        let v = vec![0.25f32, -1.5, 3.0e-8];
        store
            .store_embeddings("e@1", &[("k1".into(), v.clone())])
            .await
            .unwrap();
        store
            .store_embeddings("e@1", &[("k1".into(), vec![9.0; 3])])
            .await
            .unwrap();
        let got = store
            .embeddings("e@1", &["k1".into(), "k2".into()])
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got["k1"], v);
        assert!(store
            .embeddings("other", &["k1".into()])
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.embedding_count("e@1").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn vectors_round_trip_and_are_kept_once_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("s.db").display().to_string();
        round_trip(Store::open(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn vectors_round_trip_and_are_kept_once_on_postgres() {
        let url = crate::testing::fresh_postgres_database().await;
        round_trip(Store::open(&url).await.unwrap()).await;
    }
}
