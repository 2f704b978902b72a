//! Load test of `assay serve`: many annotators at once, each claiming its next item and answering it, for a fixed
//! time (or until a number of answers). Reports answers per second and the latency of the answer request, then
//! checks in the store that exactly the acknowledged answers are there: none lost, none doubled.
//!
//! Run by `bench/review-load.sh`, which seeds a project and starts the server.
//!
//! ```text
//! review-load --url http://127.0.0.1:7878 --admin-token T --project 1 --store STORE_URL [--annotators 200]
//!             [--seconds 60] [--max-answers 1000000] [--think-ms 0]
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

/// Drive a review server with concurrent annotators.
#[derive(Debug, Parser)]
struct Args {
    /// Server base URL.
    #[arg(long)]
    url: String,
    /// An admin's token (annotators are created with it).
    #[arg(long)]
    admin_token: String,
    /// The project to answer.
    #[arg(long)]
    project: i64,
    /// The server's store, for the check afterwards.
    #[arg(long)]
    store: String,
    /// Concurrent annotators.
    #[arg(long, default_value_t = 200)]
    annotators: usize,
    /// How long to answer.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Stop after this many answers.
    #[arg(long, default_value_t = 1_000_000)]
    max_answers: u64,
    /// Mean time an annotator spends reading an item before answering (uniform in 0..2x this); 0: answer at once.
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// Label of this run in the printed line (e.g. "SQLite").
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Default)]
struct Tally {
    answer_ms: Vec<f64>,
    next_ms: Vec<f64>,
    acknowledged: Vec<i64>,
    errors: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.annotators * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = args.url.trim_end_matches('/').to_string();

    // People: created through the API, one token each.
    let run = std::process::id();
    let mut tokens = Vec::new();
    for i in 0..args.annotators {
        let r = client
            .post(format!("{base}/api/annotators"))
            .bearer_auth(&args.admin_token)
            .json(&json!({"name": format!("load-{run}-{i}")}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("creating annotator {i}: {} {}", r.status(), r.text().await?);
        }
        let v: Value = r.json().await?;
        tokens.push(v["token"].as_str().context("token")?.to_string());
    }

    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let (client, base, answered, stop, tally) = (
            client.clone(),
            base.clone(),
            answered.clone(),
            stop.clone(),
            tally.clone(),
        );
        let (project, max, think) = (args.project, args.max_answers, args.think_ms);
        workers.push(tokio::spawn(async move {
            let mut mine = Tally::default();
            let mut n = i as u64;
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                if answered.fetch_add(1, Ordering::SeqCst) >= max {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                let t = Instant::now();
                let r = match client
                    .get(format!("{base}/api/projects/{project}/next"))
                    .bearer_auth(&token)
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        mine.errors += 1;
                        answered.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                };
                if r.status() == reqwest::StatusCode::NO_CONTENT {
                    answered.fetch_sub(1, Ordering::SeqCst);
                    break;
                }
                let view: Value = match r.json().await {
                    Ok(v) => v,
                    Err(_) => {
                        mine.errors += 1;
                        answered.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    }
                };
                mine.next_ms.push(t.elapsed().as_secs_f64() * 1e3);
                let Some(id) = view["assignment_id"].as_i64() else {
                    mine.errors += 1;
                    answered.fetch_sub(1, Ordering::SeqCst);
                    continue;
                };
                let options = view["options"].as_array().cloned().unwrap_or_default();
                n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let value = options
                    .get((n >> 33) as usize % options.len().max(1))
                    .map(|o| o["value"].clone())
                    .unwrap_or(Value::Null);
                if think > 0 {
                    let pause = (n >> 20) % (2 * think + 1);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                let t = Instant::now();
                let r = client
                    .post(format!("{base}/api/assignments/{id}/answer"))
                    .bearer_auth(&token)
                    .json(&json!({"value": value, "duration_ms": 1000 + (n >> 40) % 5000, "suggestion_shown": true}))
                    .send()
                    .await;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                match r {
                    Ok(r) if r.status().is_success() => {
                        mine.answer_ms.push(ms);
                        mine.acknowledged.push(id);
                    }
                    _ => {
                        mine.errors += 1;
                        answered.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
            let mut all = tally.lock().expect("tally lock");
            all.answer_ms.extend(mine.answer_ms);
            all.next_ms.extend(mine.next_ms);
            all.acknowledged.extend(mine.acknowledged);
            all.errors += mine.errors;
        }));
    }
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut tally = Arc::try_unwrap(tally)
        .map_err(|_| anyhow::anyhow!("workers still hold the tally"))?
        .into_inner()
        .expect("tally lock");
    tally.answer_ms.sort_by(f64::total_cmp);
    tally.next_ms.sort_by(f64::total_cmp);

    // The check: the store holds exactly the acknowledged answers.
    let store = assay_store::Store::open(&args.store).await?;
    let project = store
        .project(args.project)
        .await?
        .context("no such project in the store")?;
    let stored = store.review_answers(project.task_id).await?;
    let stored_ids: Vec<i64> = stored
        .iter()
        .filter(|a| a.annotator.starts_with(&format!("load-{run}-")))
        .filter_map(|a| a.assignment_id)
        .collect();
    let mut acked = tally.acknowledged.clone();
    acked.sort_unstable();
    let mut stored_sorted = stored_ids.clone();
    stored_sorted.sort_unstable();
    let duplicated_acks = acked.windows(2).filter(|w| w[0] == w[1]).count();
    let duplicated_stored = stored_sorted.windows(2).filter(|w| w[0] == w[1]).count();
    let acked_set: std::collections::BTreeSet<i64> = acked.iter().copied().collect();
    let stored_set: std::collections::BTreeSet<i64> = stored_sorted.iter().copied().collect();
    let lost = acked_set.difference(&stored_set).count();
    let extra = stored_set.difference(&acked_set).count();

    let answers = tally.answer_ms.len();
    println!(
        "| {} | {} | {} | {:.0} s | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} lost, {} duplicated, {} unacknowledged in store |",
        args.label,
        args.annotators,
        args.think_ms,
        elapsed,
        answers,
        answers as f64 / elapsed,
        percentile(&tally.answer_ms, 50.0),
        percentile(&tally.answer_ms, 99.0),
        tally.answer_ms.last().copied().unwrap_or(f64::NAN),
        percentile(&tally.next_ms, 50.0),
        percentile(&tally.next_ms, 99.0),
        tally.errors,
        lost,
        duplicated_acks + duplicated_stored,
        extra,
    );
    if lost + duplicated_acks + duplicated_stored + extra > 0 {
        bail!("the store does not hold exactly the acknowledged answers");
    }
    Ok(())
}
