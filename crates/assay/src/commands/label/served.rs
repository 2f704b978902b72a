//! `assay label` with a served model: settings from the task file, the store as the response cache, `--plan`,
//! and what a run asked and paid.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use assay_core::{ScoreRequest, ServedScoring, TaskSpec};
use assay_llm::embedded::EmbeddedScorer;
use assay_llm::openai::{
    CachedAnswer, HttpScorer, ItemUsage, NewAnswer, ResponseCache, ServedConfig, ServedModel,
    ServedStats,
};
use assay_llm::{ItemScores, ScoreStats, Scorer};
use assay_store::responses::{NewResponse, RunUsage};
use assay_store::Store;
use serde_json::Value;

use super::super::Hinted;

/// The task's served-model settings, with the API key read from the variable the task names (required unless
/// nothing will be sent).
pub(super) fn config(spec: &TaskSpec, need_key: bool) -> anyhow::Result<ServedConfig> {
    let api_key = match &spec.model.api_key_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(key) => Some(key),
            Err(_) if !need_key => None,
            Err(_) => {
                return Err(Hinted {
                    message: format!("the task reads its API key from ${var}, which is not set"),
                    hint: format!("export {var}=... (the key never goes into the task file)"),
                }
                .into())
            }
        },
    };
    Ok(ServedConfig::from_spec(&spec.model, api_key)?)
}

/// The store as the response cache: lookups and writes go through the caller's runtime, on the caller's thread.
pub(super) struct StoreCache<'a> {
    pub store: &'a Store,
    pub rt: &'a tokio::runtime::Runtime,
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
                (
                    k,
                    CachedAnswer {
                        answer: r.response,
                        input_tokens: r.input_tokens,
                        output_tokens: r.output_tokens,
                    },
                )
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

/// The embedded or the served scorer.
pub(super) enum AnyScorer<'m> {
    Embedded(EmbeddedScorer<'m>),
    Served(HttpScorer<'m>),
}

impl AnyScorer<'_> {
    pub fn score(&mut self, requests: &[ScoreRequest]) -> assay_llm::Result<Vec<ItemScores>> {
        match self {
            AnyScorer::Embedded(s) => s.score(requests),
            AnyScorer::Served(s) => s.score(requests),
        }
    }

    pub fn stats(&self) -> ScoreStats {
        match self {
            AnyScorer::Embedded(s) => s.stats(),
            AnyScorer::Served(s) => s.stats(),
        }
    }

    /// Per item of the last call, for served models.
    pub fn usage(&self) -> Option<&[ItemUsage]> {
        match self {
            AnyScorer::Embedded(_) => None,
            AnyScorer::Served(s) => Some(s.last_usage()),
        }
    }

    pub fn served_stats(&self) -> Option<ServedStats> {
        match self {
            AnyScorer::Embedded(_) => None,
            AnyScorer::Served(s) => Some(s.served_stats()),
        }
    }
}

/// The difference between two counter snapshots, as a `run_usage` increment.
pub(super) fn usage_delta(model: &ServedModel, before: ServedStats, now: ServedStats) -> RunUsage {
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
#[derive(Debug, serde::Serialize)]
pub(super) struct ServedSummary {
    pub endpoint: String,
    pub scoring: String,
    /// What this run asked and paid (answers from the server, from the cache, retries, tokens, USD).
    #[serde(flatten)]
    pub run: ServedStats,
    /// USD of all labeled rows' answers, whenever paid.
    pub labeled_cost_usd: f64,
    /// `labeled_cost_usd` scaled to every row read.
    pub projected_cost_usd: f64,
    pub prices: assay_llm::openai::Prices,
}

/// The per-row usage stored with an annotation.
pub(super) fn row_usage(scores: &Value) -> Option<ItemUsage> {
    serde_json::from_value(scores.get("usage")?.clone()).ok()
}

/// Whether an annotation's label was generated (no log-probabilities, no confidence).
pub(super) fn is_generated(scores: &Value) -> bool {
    scores.get("generated").and_then(Value::as_bool) == Some(true)
}

pub(super) fn print_summary(s: &ServedSummary) {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["served model", "this run"]);
    for (name, value) in [
        ("requests answered", s.run.requests.to_string()),
        ("answers from the cache", s.run.cache_hits.to_string()),
        ("retries", s.run.retries.to_string()),
        ("input tokens", s.run.input_tokens.to_string()),
        ("output tokens", s.run.output_tokens.to_string()),
        ("cost", format!("${:.4}", s.run.cost_usd)),
        (
            "cost of all labeled rows",
            format!("${:.4}", s.labeled_cost_usd),
        ),
        (
            "projected cost, all rows",
            format!("${:.4}", s.projected_cost_usd),
        ),
    ] {
        table.add_row([name.to_string(), value]);
    }
    println!("scoring: {} via {}", s.scoring, s.endpoint);
    println!("{table}");
    println!(
        "prices: ${}/M input, ${}/M output ({})",
        s.prices.input, s.prices.output, s.prices.source
    );
}

/// `--plan`: how many requests the pending items need, how many the cache already holds, and the tokens and cost
/// of the rest, estimated before anything is sent.
pub(super) fn plan(
    model: &ServedModel,
    store: &Store,
    rt: &tokio::runtime::Runtime,
    pending_items: usize,
    requests: &[ScoreRequest],
) -> anyhow::Result<ExitCode> {
    let calls = model.calls(requests);
    let mut keys: Vec<String> = calls.iter().map(|c| c.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let cached = rt
        .block_on(store.cached_responses(&keys))
        .context("reading the response cache")?;
    let mut seen = std::collections::HashSet::new();
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
    let estimated_input = match measured {
        Some(mean) if to_send > 0 => (mean * to_send as f64).round() as u64,
        _ => input,
    };
    let prices = model.config().prices;
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["plan", "estimate"]);
    for (name, value) in [
        ("items to label", pending_items.to_string()),
        ("requests", calls.len().to_string()),
        ("  answered from the cache", from_cache.to_string()),
        (
            "  repeats of another request",
            (calls.len() - from_cache - to_send as usize).to_string(),
        ),
        ("  to send", to_send.to_string()),
        (
            "input tokens to pay",
            format!(
                "{estimated_input} ({})",
                if measured.is_some() {
                    "mean of this model's stored answers"
                } else {
                    "prompt characters / 4"
                }
            ),
        ),
        ("output tokens to pay (at most)", output.to_string()),
        (
            "cost",
            format!("${:.4}", prices.cost(estimated_input, output)),
        ),
    ] {
        table.add_row([name.to_string(), value]);
    }
    println!(
        "plan for {} at {} ({}; nothing was sent)",
        model.config().model,
        model.config().endpoint,
        if model.config().scoring == ServedScoring::Auto {
            format!(
                "scoring {} if the server supports it",
                model.mode().as_str()
            )
        } else {
            format!("scoring {}", model.mode().as_str())
        }
    );
    println!("{table}");
    println!(
        "prices: ${}/M input, ${}/M output ({})",
        prices.input, prices.output, prices.source
    );
    Ok(ExitCode::SUCCESS)
}
