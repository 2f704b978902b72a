//! Peak memory of `assay label`'s pipeline against the input's size: labels a synthetic classify input of ROWS
//! rows (with a gold column, so calibration reads rows back too) through the whole pipeline (ingest, score,
//! calibrate, write) with a scripted scorer in place of a model, on a SQLite store, and prints the process's peak
//! resident set (VmHWM) as one JSON line. Run it once per size in separate processes: `bench/label-memory.sh`.
//!
//! Usage: label-memory ROWS WORKDIR [gold|no-gold]
//!
//! With `no-gold` the input has no gold column: what is left is the pipeline's own memory. With `gold` (the
//! default) every row is a gold row, so the run also keeps a few numbers per row for the held-out figures.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use assay_core::ScoreRequest;
use assay_label::backend::CustomScorer;
use assay_label::run::{self, LabelJob, Outcome};
use assay_label::{Backend, Silent};
use assay_llm::{ItemScores, ModelInfo, ScoreStats, Scorer};

/// Deterministic log-probabilities from each request's text: no model, so the pipeline alone is measured.
struct ScriptedScorer {
    info: ModelInfo,
    stats: ScoreStats,
}

impl Scorer for ScriptedScorer {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn score(&mut self, requests: &[ScoreRequest]) -> assay_llm::Result<Vec<ItemScores>> {
        self.stats.items += requests.len() as u64;
        Ok(requests
            .iter()
            .map(|r| {
                let text: usize = format!("{:?}", r).len();
                Ok(r.branches
                    .iter()
                    .map(|b| {
                        (0..b.options.len())
                            .map(|o| -(((o + text) % 3) as f64) - 0.25)
                            .collect()
                    })
                    .collect())
            })
            .collect())
    }

    fn stats(&self) -> ScoreStats {
        self.stats
    }
}

fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        (3..=4).contains(&args.len()),
        "usage: label-memory ROWS WORKDIR [gold|no-gold]"
    );
    let gold = args.get(3).is_none_or(|g| g != "no-gold");
    let rows: u64 = args[1].parse()?;
    let dir = PathBuf::from(&args[2]);
    std::fs::create_dir_all(&dir)?;
    let input = dir.join(format!("synthetic-{rows}.jsonl"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input)?);
    for i in 0..rows {
        let label = if i % 7 == 0 { "spam" } else { "ham" };
        let text = format!(
            "message {i}: {}",
            "lorem ipsum dolor sit amet ".repeat(1 + (i % 5) as usize)
        );
        writeln!(
            file,
            "{}",
            serde_json::json!({"id": i, "text": text, "gold": label})
        )?;
    }
    file.flush()?;
    drop(file);
    let gold_key = if gold { "gold = \"gold\"\n" } else { "" };
    let spec = assay_core::TaskSpec::from_toml_str(&format!(
        "name = \"memory\"\ntype = \"classify\"\ninput = \"{{{{ text }}}}\"\n{gold_key}labels = [\"ham\", \"spam\"]\n"
    ))?;
    let scorer = ScriptedScorer {
        info: ModelInfo {
            name: "scripted".into(),
            path: PathBuf::new(),
            sha256: "0".repeat(64),
            parameters: 0,
            has_chat_template: false,
        },
        stats: ScoreStats::default(),
    };
    let backend = Backend::Custom(CustomScorer::new(Box::new(scorer)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store_path = dir.join(format!("store-{rows}.db"));
    let _ = std::fs::remove_file(&store_path);
    let store = rt.block_on(assay_store::Store::open(&store_path.display().to_string()))?;
    let job = LabelJob {
        spec,
        input: input.clone(),
        output: dir.join(format!("labeled-{rows}.jsonl")),
        limit: None,
        threads: 1,
        shard: None,
        models_home: dir.clone(),
    };
    let cx = run::Context {
        store: &store,
        rt: &rt,
        reporter: &Silent,
        interrupted: Arc::new(AtomicBool::new(false)),
    };
    let started = std::time::Instant::now();
    let Outcome::Labeled(summary) = run::run(&job, &backend, &cx, false)? else {
        anyhow::bail!("planned instead of labeled");
    };
    anyhow::ensure!(
        summary.labeled == rows,
        "labeled {} of {rows}",
        summary.labeled
    );
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "gold": gold,
            "labeled": summary.labeled,
            "peak_rss_kib": peak_rss_kib()?,
            "seconds": started.elapsed().as_secs_f64(),
            "input_bytes": std::fs::metadata(&input)?.len(),
        })
    );
    Ok(())
}
