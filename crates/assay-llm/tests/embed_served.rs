//! The served embedder against an independent server: llama-cpp-python's (`python3 -m llama_cpp.server
//! --embedding true`) serving the all-MiniLM-L6-v2 GGUF that assay converted. Its vectors must match
//! sentence-transformers' reference and assay's in-process ones.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use assay_llm::cache::ModelCache;
use assay_llm::embed::{
    cosine, EmbedOptions, EmbeddedEmbedder, Embedder, EmbedderSource, Pooling, ServedEmbedConfig,
    ServedEmbedder,
};
use assay_llm::embedded::EmbeddedModel;
use assay_llm::openai::Limits;

#[path = "support/llama_server.rs"]
mod support;

#[path = "embed_data/minilm_reference.rs"]
mod minilm_reference;

fn test_home() -> PathBuf {
    std::env::var_os("ASSAY_TEST_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("assay-test-home"))
}

/// llama-cpp-python serving `model` for embeddings as `minilm`; killed when dropped.
struct EmbeddingServer {
    child: Child,
    port: u16,
}

impl EmbeddingServer {
    fn start(model: &Path) -> Self {
        let port = support::free_port();
        let log = std::env::temp_dir().join(format!("assay-embed-server-{port}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("python3")
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(model)
            .args([
                "--model_alias",
                "minilm",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--n_ctx",
                "512",
                "--n_threads",
                "1",
                "--n_threads_batch",
                "1",
                "--embedding",
                "true",
            ])
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("starting python3 -m llama_cpp.server");
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "embedding server exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if support::http_get(port, "/v1/models").is_some_and(|b| b.contains("minilm")) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        server.kill();
        panic!("embedding server did not answer within 120 s");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EmbeddingServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(endpoint: String) -> ServedEmbedConfig {
    ServedEmbedConfig {
        endpoint,
        model: "minilm".into(),
        api_key: None,
        limits: Limits {
            concurrency: 2,
            max_retries: 1,
            timeout: Duration::from_secs(60),
            ..Limits::default()
        },
        texts_per_request: 2,
    }
}

#[test]
fn served_minilm_matches_sentence_transformers_and_the_embedded_model() {
    if !support::server_available() {
        return;
    }
    let cached = ModelCache::new(&test_home())
        .fetch("all-minilm-l6-v2")
        .expect("fetch and convert all-MiniLM-L6-v2");
    let server = EmbeddingServer::start(&cached.path);
    let endpoint = format!("http://127.0.0.1:{}/v1", server.port);
    let mut served = ServedEmbedder::connect(config(endpoint.clone())).unwrap();
    let info = served.info().clone();
    assert_eq!(info.dimension, 384);
    assert_eq!(info.pooling, Pooling::Served);
    let EmbedderSource::Served {
        identity_sha256, ..
    } = &info.source
    else {
        panic!("{:?}", info.source)
    };
    assert_eq!(identity_sha256.len(), 64);

    let texts: Vec<String> = minilm_reference::TEXTS
        .iter()
        .map(|t| t.to_string())
        .collect();
    // Five texts, two per request, two requests in flight: order must survive.
    let vectors = served.embed(&texts).unwrap();
    assert_eq!(vectors.len(), texts.len());

    let model = EmbeddedModel::load(&cached.path, &cached.name, &cached.sha256).unwrap();
    let options = EmbedOptions {
        threads: 1,
        ..EmbedOptions::default()
    };
    let local = EmbeddedEmbedder::new(&model, options)
        .unwrap()
        .embed(&texts)
        .unwrap();
    for (i, v) in vectors.iter().enumerate() {
        let reference = cosine(v, &minilm_reference::VECTORS[i]);
        assert!(
            reference >= 0.99,
            "text {i}: cosine {reference} with sentence-transformers"
        );
        let same = cosine(v, &local[i]);
        assert!(
            same >= 0.999,
            "text {i}: cosine {same} with the embedded model"
        );
    }
}

#[test]
fn an_endpoint_that_does_not_answer_is_an_endpoint_error() {
    let port = support::free_port();
    let config = ServedEmbedConfig {
        limits: Limits {
            max_retries: 0,
            timeout: Duration::from_secs(2),
            ..Limits::default()
        },
        ..config(format!("http://127.0.0.1:{port}/v1"))
    };
    let err = ServedEmbedder::connect(config)
        .err()
        .expect("nothing listens");
    let text = err.to_string();
    assert!(text.contains("/embeddings"), "{text}");
}
