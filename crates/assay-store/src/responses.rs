//! Answers of served models (the response cache) and what each run of a served model asked and paid.
//!
//! An answer is stored under the hash of its request (endpoint path, model, full prompt, parameters) before any
//! label is derived from it; a resumed or repeated run looks its requests up here first and sends only the
//! missing ones.

use std::collections::HashMap;

use sqlx::Row;

use crate::{now, Result, Store, INSERT_BATCH_ROWS};

/// A stored answer.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// The answer's JSON.
    pub response: serde_json::Value,
    /// Input tokens it cost.
    pub input_tokens: u64,
    /// Output tokens it cost.
    pub output_tokens: u64,
}

/// An answer to store.
#[derive(Debug, Clone)]
pub struct NewResponse {
    /// Hex SHA-256 of the request.
    pub key: String,
    /// The model name the endpoint knows.
    pub model: String,
    /// `completions` or `chat/completions`.
    pub endpoint_path: String,
    /// The answer's JSON.
    pub response: serde_json::Value,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// What a run of a served model did (or, as an increment, what one chunk did).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunUsage {
    /// Base URL of the endpoint.
    pub endpoint: String,
    /// Scoring mode (`prompt-logprobs`, `first-token`, `generate`).
    pub scoring: String,
    /// Requests answered by the server.
    pub requests: u64,
    /// Answers taken from the cache.
    pub cache_hits: u64,
    /// Retries after transient failures.
    pub retries: u64,
    /// Input tokens paid for.
    pub input_tokens: u64,
    /// Output tokens paid for.
    pub output_tokens: u64,
    /// USD paid.
    pub cost_usd: f64,
}

impl Store {
    /// The stored answers among `keys`.
    pub async fn cached_responses(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, StoredResponse>> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(INSERT_BATCH_ROWS) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT request_key, response, input_tokens, output_tokens FROM model_responses
                 WHERE request_key IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(key);
            }
            for row in query.fetch_all(&self.pool).await? {
                let text: String = row.get(1);
                let response = serde_json::from_str(&text).map_err(|e| {
                    crate::Error::Internal(format!("stored model response is not JSON: {e}"))
                })?;
                found.insert(
                    row.get::<String, _>(0),
                    StoredResponse {
                        response,
                        input_tokens: row.get::<i64, _>(2) as u64,
                        output_tokens: row.get::<i64, _>(3) as u64,
                    },
                );
            }
        }
        Ok(found)
    }

    /// Store answers in one transaction; an answer already stored under the same key is kept as it was.
    pub async fn store_responses(&self, run_id: &str, responses: &[NewResponse]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let created_at = now();
        for chunk in responses.chunks(INSERT_BATCH_ROWS / 8) {
            let mut sql = String::from(
                "INSERT INTO model_responses (request_key, model, endpoint_path, response, input_tokens,
                     output_tokens, run_id, created_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8
                ));
            }
            sql.push_str(" ON CONFLICT (request_key) DO NOTHING");
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(&r.key)
                    .bind(&r.model)
                    .bind(&r.endpoint_path)
                    .bind(r.response.to_string())
                    .bind(r.input_tokens as i64)
                    .bind(r.output_tokens as i64)
                    .bind(run_id)
                    .bind(&created_at);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Add a chunk's counts to a run's usage (the row is created on first use).
    pub async fn add_run_usage(&self, run_id: &str, delta: &RunUsage) -> Result<()> {
        sqlx::query(
            "INSERT INTO run_usage (run_id, endpoint, scoring, requests, cache_hits, retries, input_tokens,
                 output_tokens, cost_usd)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (run_id) DO UPDATE SET
                 requests = run_usage.requests + excluded.requests,
                 cache_hits = run_usage.cache_hits + excluded.cache_hits,
                 retries = run_usage.retries + excluded.retries,
                 input_tokens = run_usage.input_tokens + excluded.input_tokens,
                 output_tokens = run_usage.output_tokens + excluded.output_tokens,
                 cost_usd = run_usage.cost_usd + excluded.cost_usd",
        )
        .bind(run_id)
        .bind(&delta.endpoint)
        .bind(&delta.scoring)
        .bind(delta.requests as i64)
        .bind(delta.cache_hits as i64)
        .bind(delta.retries as i64)
        .bind(delta.input_tokens as i64)
        .bind(delta.output_tokens as i64)
        .bind(delta.cost_usd)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The usage of the runs among `run_ids` that used a served model.
    pub async fn run_usage(&self, run_ids: &[String]) -> Result<HashMap<String, RunUsage>> {
        let mut found = HashMap::new();
        for chunk in run_ids.chunks(INSERT_BATCH_ROWS) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT run_id, endpoint, scoring, requests, cache_hits, retries, input_tokens, output_tokens,
                        cost_usd
                 FROM run_usage WHERE run_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                found.insert(
                    row.get::<String, _>(0),
                    RunUsage {
                        endpoint: row.get(1),
                        scoring: row.get(2),
                        requests: row.get::<i64, _>(3) as u64,
                        cache_hits: row.get::<i64, _>(4) as u64,
                        retries: row.get::<i64, _>(5) as u64,
                        input_tokens: row.get::<i64, _>(6) as u64,
                        output_tokens: row.get::<i64, _>(7) as u64,
                        cost_usd: row.get(8),
                    },
                );
            }
        }
        Ok(found)
    }

    /// The mean input tokens of the stored answers of `model`, if any: what `assay label --plan` knows of a
    /// request's real size.
    pub async fn mean_input_tokens(&self, model: &str) -> Result<Option<f64>> {
        let row = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) FROM model_responses WHERE model = $1",
        )
        .bind(model)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.get(0);
        let total: i64 = row.get(1);
        Ok((n > 0).then(|| total as f64 / n as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{testing, NewRun};

    async fn responses_round_trip_and_usage_adds_up(url: &str) {
        let store = Store::open(url).await.unwrap();
        let answer = |k: &str, n: u64| NewResponse {
            key: k.into(),
            model: "smollm2".into(),
            endpoint_path: "completions".into(),
            response: serde_json::json!({"choices": [{"text": k}]}),
            input_tokens: n,
            output_tokens: 1,
        };
        store
            .store_responses("run-a", &[answer("k1", 10), answer("k2", 20)])
            .await
            .unwrap();
        // A second answer under a stored key is ignored: the first one stays.
        let mut again = answer("k1", 99);
        again.response = serde_json::json!({"other": true});
        store.store_responses("run-b", &[again]).await.unwrap();
        let found = store
            .cached_responses(&["k1".into(), "k3".into(), "k2".into()])
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found["k1"].input_tokens, 10);
        assert_eq!(found["k1"].response["choices"][0]["text"], "k1");
        assert_eq!(
            store.mean_input_tokens("smollm2").await.unwrap(),
            Some(15.0)
        );
        assert_eq!(store.mean_input_tokens("other").await.unwrap(), None);

        let dataset = store.dataset("d", "d.csv", "sha-d", "csv").await.unwrap();
        let task = store.task("t", "classify", "h", "{}").await.unwrap();
        let run = store
            .start_run(&NewRun {
                task_id: task,
                dataset_id: dataset,
                annotator: "smollm2@x".into(),
                model_sha256: "x".into(),
                prompt_hash: "p".into(),
            })
            .await
            .unwrap();
        let delta = RunUsage {
            endpoint: "http://127.0.0.1:1/v1".into(),
            scoring: "first-token".into(),
            requests: 3,
            cache_hits: 1,
            retries: 2,
            input_tokens: 300,
            output_tokens: 3,
            cost_usd: 0.5,
        };
        store.add_run_usage(&run, &delta).await.unwrap();
        store.add_run_usage(&run, &delta).await.unwrap();
        let usage = store
            .run_usage(&[run.clone(), "none".into()])
            .await
            .unwrap();
        assert_eq!(usage.len(), 1);
        let u = &usage[&run];
        assert_eq!((u.requests, u.cache_hits, u.retries), (6, 2, 4));
        assert_eq!((u.input_tokens, u.output_tokens), (600, 6));
        assert!((u.cost_usd - 1.0).abs() < 1e-12);
        assert_eq!(u.scoring, "first-token");
    }

    #[tokio::test]
    async fn responses_round_trip_and_usage_adds_up_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("r.db").to_str().unwrap().to_string();
        responses_round_trip_and_usage_adds_up(&url).await;
    }

    #[tokio::test]
    async fn responses_round_trip_and_usage_adds_up_postgres() {
        let url = testing::fresh_postgres_database().await;
        responses_round_trip_and_usage_adds_up(&url).await;
    }
}
