//! Labeling with a served model: settings from the task file, the store as the response cache, the `--plan`
//! estimate, and what a run asked and paid.

use std::collections::{HashMap, HashSet};

use assay_core::{ScoreRequest, TaskSpec};
use assay_llm::openai::{
    CachedAnswer, ItemUsage, NewAnswer, Prices, ResponseCache, ServedConfig, ServedModel,
    ServedStats,
};
use assay_store::responses::{NewResponse, RunUsage};
use assay_store::Store;
use serde_json::Value;

use crate::{Error, Result};

/// The task's served-model settings, with the API key read from the variable the task names (required unless
/// nothing will be sent).
pub fn config(spec: &TaskSpec, need_key: bool) -> Result<ServedConfig> {
    let api_key = match &spec.model.api_key_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(key) => Some(key),
            Err(_) if !need_key => None,
            Err(_) => {
                return Err(Error::usage(
                    format!("the task reads its API key from ${var}, which is not set"),
                    format!("export {var}=... (the key never goes into the task file)"),
                ))
            }
        },
    };
    Ok(ServedConfig::from_spec(&spec.model, api_key)?)
}

/// The store as the response cache: lookups and writes go through the caller's runtime, on the caller's thread.
pub struct StoreCache<'a> {
    /// The store.
    pub store: &'a Store,
    /// The runtime its calls block on.
    pub rt: &'a tokio::runtime::Runtime,
    /// The run answers are written under.
    pub run_id: String,
}

impl ResponseCache for StoreCache<'_> {
    fn get(&mut self, keys: &[String]) -> Result<HashMap<String, CachedAnswer>, String> {
        let found = self
            .rt
            .block_on(self.store.cached_responses(keys))
            .map_err(|e| e.to_string())?;
        Ok(found
            .into_iter()
            .map(|(k, r)| {
                let answer = CachedAnswer {
                    answer: r.response,
                    input_tokens: r.input_tokens,
                    output_tokens: r.output_tokens,
                };
                (k, answer)
            })
            .collect())
    }

    fn put(&mut self, answers: &[NewAnswer]) -> Result<(), String> {
        let rows: Vec<NewResponse> = answers
            .iter()
            .map(|a| NewResponse {
                key: a.key.clone(),
                model: a.model.clone(),
                endpoint_path: a.path.clone(),
                response: a.answer.clone(),
                input_tokens: a.input_tokens,
                output_tokens: a.output_tokens,
            })
            .collect();
        self.rt
            .block_on(self.store.store_responses(&self.run_id, &rows))
            .map_err(|e| e.to_string())
    }
}

/// The difference between two counter snapshots, as a `run_usage` increment.
pub fn usage_delta(model: &ServedModel, before: ServedStats, now: ServedStats) -> RunUsage {
    let d = now.since(before);
    RunUsage {
        endpoint: model.config().endpoint.clone(),
        scoring: model.mode().as_str().to_string(),
        requests: d.requests,
        cache_hits: d.cache_hits,
        retries: d.retries,
        input_tokens: d.input_tokens,
        output_tokens: d.output_tokens,
        cost_usd: d.cost_usd,
    }
}

/// What a served run asked and paid, in the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServedSummary {
    /// The server.
    pub endpoint: String,
    /// How answers were read.
    pub scoring: String,
    /// What this run asked and paid (answers from the server, from the cache, retries, tokens, USD).
    #[serde(flatten)]
    pub run: ServedStats,
    /// USD of all labeled rows' answers, whenever paid.
    pub labeled_cost_usd: f64,
    /// `labeled_cost_usd` scaled to every row read.
    pub projected_cost_usd: f64,
    /// The prices in force.
    pub prices: Prices,
}

/// The per-row usage stored with an annotation.
pub fn row_usage(scores: &Value) -> Option<ItemUsage> {
    serde_json::from_value(scores.get("usage")?.clone()).ok()
}

/// `--plan` for a served model: what the pending items would send and cost, estimated before anything is sent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServedPlan {
    /// Requests the pending items need.
    pub requests: usize,
    /// Of which the cache already answers.
    pub from_cache: usize,
    /// Of which repeat another request of this plan.
    pub repeats: usize,
    /// Requests to send.
    pub to_send: u64,
    /// Input tokens to pay.
    pub input_tokens: u64,
    /// Whether `input_tokens` is the mean of this model's stored answers (else prompt characters / 4).
    pub input_measured: bool,
    /// Output tokens to pay, at most.
    pub output_tokens: u64,
    /// USD.
    pub cost_usd: f64,
    /// The prices in force.
    pub prices: Prices,
}

/// How many requests `requests` need, how many the cache already holds, and the tokens and cost of the rest.
pub fn plan(
    model: &ServedModel,
    store: &Store,
    rt: &tokio::runtime::Runtime,
    requests: &[ScoreRequest],
) -> Result<ServedPlan> {
    let calls = model.calls(requests);
    let mut keys: Vec<String> = calls.iter().map(|c| c.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let cached = rt.block_on(store.cached_responses(&keys))?;
    let mut seen = HashSet::new();
    let (mut to_send, mut input, mut output) = (0u64, 0u64, 0u64);
    let from_cache = calls.iter().filter(|c| cached.contains_key(&c.key)).count();
    for c in &calls {
        if cached.contains_key(&c.key) || !seen.insert(c.key.clone()) {
            continue;
        }
        to_send += 1;
        input += c.estimated_input;
        output += c.max_output;
    }
    // Once answers of this model are stored, their real mean input size is a better estimate than characters / 4.
    let measured = rt.block_on(store.mean_input_tokens(&model.config().model))?;
    let input_tokens = match measured {
        Some(mean) if to_send > 0 => (mean * to_send as f64).round() as u64,
        _ => input,
    };
    let prices = model.config().prices;
    Ok(ServedPlan {
        requests: calls.len(),
        from_cache,
        repeats: calls.len() - from_cache - to_send as usize,
        to_send,
        input_tokens,
        input_measured: measured.is_some(),
        output_tokens: output,
        cost_usd: prices.cost(input_tokens, output),
        prices,
    })
}
