//! Learning curves of the probe (issue 12): accuracy and macro-F1 on held-out rows against the number of people's
//! labels, for `assay-learn`'s logistic regression (c = 1, standardised) on assay's embeddings, with random and
//! active picks. Simulated annotators answer with the gold label.
//!
//! Datasets: SMS spam (deduplicated, a seeded 1,000-row pool and 1,000 held-out rows, plus a smaller subset on
//! which the slower SmolLM2 embedder runs too), Banking77 (a pool of 30 train rows per intent, 13 test rows per
//! intent held out) and PandaLM pairs (features: the difference of the embeddings of "instruction + response 1"
//! and "instruction + response 2"; label: the human majority, ties dropped; pool and test split by instruction).
//! No pick ever touches a held-out row.
//!
//! Embeddings are computed once per text and cached in `--cache` (one file per embedder key). The program writes
//! one JSON document (`--out`): the items, splits, every pick (so `bench/learning_curves.py` fits the anchors on
//! the same picks), and the probe's curves. Used by `bench/learning_curves.sh`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use assay_learn::active::{self, ActiveOptions, Candidate};
use assay_learn::cv::{argmax, splitmix};
use assay_learn::logistic::{FitOptions, LogisticRegression};
use assay_llm::cache::{assay_home, ModelCache};
use assay_llm::embed::{EmbedOptions, EmbeddedEmbedder, Embedder, Pooling};
use assay_llm::embedded::EmbeddedModel;
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    /// Write the results here (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Folder of cached embeddings.
    #[arg(long)]
    cache: PathBuf,
    /// SMS spam collection (TSV, `label<TAB>text`, header row).
    #[arg(long, default_value = "tests/data/sms_spam/SMSSpamCollection.tsv")]
    sms: PathBuf,
    /// Banking77 train CSV (`text,category`): the pool (`bench/learning_curves.sh` passes the full training set,
    /// which only bench scripts may read from beside the checkout).
    #[arg(long)]
    banking_train: PathBuf,
    /// Banking77 test CSV: the held-out rows.
    #[arg(long, default_value = "tests/data/banking77/test.csv")]
    banking_test: PathBuf,
    /// PandaLM pairs (JSON Lines with `instruction`, `input`, `response1`, `response2`, `annotator1..3`).
    #[arg(long, default_value = "examples/pandalm/pandalm-test.jsonl")]
    pandalm: PathBuf,
    /// Datasets to run, comma-separated: sms, sms-small, banking77, pandalm.
    #[arg(long, default_value = "sms,sms-small,banking77,pandalm")]
    datasets: String,
    /// SMS pool and test rows (each).
    #[arg(long, default_value_t = 1000)]
    sms_rows: usize,
    /// Pool and test rows (each) of the SMS subset that SmolLM2 embeds too.
    #[arg(long, default_value_t = 300)]
    small_rows: usize,
    /// Banking77 pool rows per intent (from train) and held-out rows per intent (from test).
    #[arg(long, default_value_t = 30)]
    banking_pool_per_class: usize,
    #[arg(long, default_value_t = 13)]
    banking_test_per_class: usize,
    /// Seeds (repetitions of the random and active picks) for SMS and PandaLM.
    #[arg(long, default_value_t = 10)]
    seeds: usize,
    /// Seeds for Banking77.
    #[arg(long, default_value_t = 3)]
    banking_seeds: usize,
    /// llama.cpp threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Tokens kept of a text (all-MiniLM-L6-v2's own limit in sentence-transformers is 256).
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Share of each active batch picked at random (the rest by uncertainty).
    #[arg(long, default_value_t = 0.1)]
    random_share: f64,
    /// Each active round adds this share of the labels so far (at least 5), stopping at every checkpoint.
    #[arg(long, default_value_t = 0.2)]
    growth: f64,
}

/// One labelled item: one text, or two for a pair.
struct Item {
    texts: Vec<String>,
    label: usize,
}

struct Dataset {
    name: &'static str,
    title: String,
    classes: Vec<String>,
    items: Vec<Item>,
    pool: Vec<usize>,
    test: Vec<usize>,
    counts: Vec<usize>,
    per_class: Vec<usize>,
    seeds: usize,
    embedders: Vec<&'static str>,
    /// Active picks stop at this many labels.
    active_up_to: usize,
}

/// Embedders by catalog name and the pooling used.
const EMBEDDERS: [(&str, &str, Option<Pooling>); 2] = [
    ("all-minilm-l6-v2", "all-minilm-l6-v2", None),
    (
        "smollm2-135m-mean",
        "smollm2-135m-instruct",
        Some(Pooling::Mean),
    ),
];

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.cache)?;
    let wanted: Vec<&str> = args.datasets.split(',').map(str::trim).collect();
    let mut datasets = Vec::new();
    for name in &wanted {
        datasets.push(match *name {
            "sms" => sms(&args, false)?,
            "sms-small" => sms(&args, true)?,
            "banking77" => banking(&args)?,
            "pandalm" => pandalm(&args)?,
            other => bail!("unknown dataset {other} (sms, sms-small, banking77, pandalm)"),
        });
    }

    // Embed every text once per embedder (cached), timing a fresh run.
    let mut vectors: HashMap<&str, HashMap<String, Vec<f32>>> = HashMap::new();
    let mut throughput: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut embedder_info = serde_json::Map::new();
    for &(id, catalog, pooling) in &EMBEDDERS {
        let users: Vec<&Dataset> = datasets
            .iter()
            .filter(|d| d.embedders.contains(&id))
            .collect();
        if users.is_empty() {
            continue;
        }
        let cached = ModelCache::new(&assay_home()).fetch(catalog)?;
        let model = EmbeddedModel::load(&cached.path, &cached.name, &cached.sha256)?;
        let options = EmbedOptions {
            threads: args.threads,
            max_tokens: Some(args.max_tokens),
            pooling,
            ..EmbedOptions::default()
        };
        let mut embedder = EmbeddedEmbedder::new(&model, options)?;
        let info = embedder.info().clone();
        embedder_info.insert(
            id.to_string(),
            json!({"catalog": catalog, "file": cached.path.file_name().map(|f| f.to_string_lossy().to_string()),
                   "sha256": cached.sha256, "pooling": info.pooling.as_str(), "dimension": info.dimension,
                   "max_tokens": info.max_tokens, "key": info.key()}),
        );
        let cache_file = args.cache.join(format!("{}.vectors", &info.key()[..16]));
        let mut store = read_cache(&cache_file, info.dimension)?;
        for d in users {
            let mut texts: Vec<String> = d.items.iter().flat_map(|i| i.texts.clone()).collect();
            texts.sort();
            texts.dedup();
            let missing: Vec<String> = texts
                .iter()
                .filter(|t| !store.contains_key(&key(t)))
                .cloned()
                .collect();
            eprintln!(
                "{}: {} texts, {} to embed with {id}",
                d.name,
                texts.len(),
                missing.len()
            );
            let start = Instant::now();
            let mut done = 0;
            for chunk in missing.chunks(128) {
                let v = embedder.embed(chunk)?;
                append_cache(&cache_file, chunk, &v)?;
                for (t, v) in chunk.iter().zip(v) {
                    store.insert(key(t), v);
                }
                done += chunk.len();
                eprintln!(
                    "  {done}/{} ({:.1} texts/s)",
                    missing.len(),
                    done as f64 / start.elapsed().as_secs_f64()
                );
            }
            // Throughput: the fresh run when it was large enough, else a fresh run over a fixed sample.
            let (sample, seconds, fresh) = if missing.len() >= 100 {
                (missing.clone(), start.elapsed().as_secs_f64(), true)
            } else {
                let sample: Vec<String> = d
                    .items
                    .iter()
                    .flat_map(|i| i.texts.clone())
                    .take(100)
                    .collect();
                let start = Instant::now();
                embedder.embed(&sample)?;
                (sample, start.elapsed().as_secs_f64(), false)
            };
            let tokens: usize = sample.iter().map(|t| embedder.tokens(t).len()).sum();
            let per_item = d.items.first().map_or(1, |i| i.texts.len()) as f64;
            throughput.insert(
                (d.name.to_string(), id.to_string()),
                json!({"texts": sample.len(), "seconds": round(seconds, 2),
                       "texts_per_s": round(sample.len() as f64 / seconds, 2),
                       "items_per_s": round(sample.len() as f64 / seconds / per_item, 2),
                       "tokens_per_s": round(tokens as f64 / seconds, 1),
                       "mean_tokens": round(tokens as f64 / sample.len() as f64, 1),
                       "measured_on": if fresh { "the texts embedded in this run" } else { "100 texts re-embedded (the rest were cached)" }}),
            );
        }
        vectors.insert(id, store);
    }

    let mut report = Vec::new();
    for d in &datasets {
        eprintln!("{}: fitting", d.name);
        report.push(run(d, &vectors, &throughput, &args)?);
    }
    let out = json!({
        "embedders": embedder_info,
        "fit": {"c": 1.0, "standardize": true, "max_iter": FitOptions::default().max_iter,
                "tolerance": FitOptions::default().tolerance},
        "active": {"random_share": args.random_share, "disagree_share": 0.0, "growth": args.growth},
        "threads": args.threads,
        "datasets": report,
    });
    std::fs::write(&args.out, serde_json::to_string(&out)?)?;
    Ok(())
}

/// The curves of one dataset, with its items, splits and picks.
fn run(
    d: &Dataset,
    vectors: &HashMap<&str, HashMap<String, Vec<f32>>>,
    throughput: &BTreeMap<(String, String), Value>,
    args: &Args,
) -> Result<Value> {
    let classes = d.classes.len();
    let test_y: Vec<usize> = d.test.iter().map(|&i| d.items[i].label).collect();
    let random_orders: Vec<Vec<usize>> = (0..d.seeds)
        .map(|s| {
            let mut p = d.pool.clone();
            shuffle(&mut p, 1000 + s as u64);
            p
        })
        .collect();
    let stratified_orders: Vec<Vec<usize>> = if d.per_class.is_empty() {
        Vec::new()
    } else {
        (0..d.seeds)
            .map(|s| stratified(&d.items, &random_orders[s], classes))
            .collect()
    };
    let mut per_embedder = serde_json::Map::new();
    for &id in &d.embedders {
        let store = &vectors[id];
        let x: Vec<Vec<f64>> = d
            .items
            .iter()
            .map(|item| features(item, store))
            .collect::<Result<_>>()?;
        let test_x: Vec<&Vec<f64>> = d.test.iter().map(|&i| &x[i]).collect();
        let evaluate = |picks: &[usize]| -> Result<(f64, f64, f64)> {
            let px: Vec<Vec<f64>> = picks.iter().map(|&i| x[i].clone()).collect();
            let py: Vec<usize> = picks.iter().map(|&i| d.items[i].label).collect();
            let start = Instant::now();
            let model = LogisticRegression::fit(&px, &py, classes, &options())?;
            let seconds = start.elapsed().as_secs_f64();
            if seconds > 5.0 {
                eprintln!(
                    "  fit on {} rows: {seconds:.1} s, {} iterations",
                    px.len(),
                    model.iterations
                );
            }
            let predicted: Vec<usize> = test_x
                .iter()
                .map(|r| argmax(&model.predict_proba(r)))
                .collect();
            Ok((
                accuracy(&predicted, &test_y),
                macro_f1(&predicted, &test_y, classes),
                seconds,
            ))
        };
        let mut random = Curve::default();
        for order in &random_orders {
            for &n in d.counts.iter().filter(|&&n| n <= d.pool.len()) {
                let (a, f, s) = evaluate(&order[..n])?;
                random.add(n, a, f, s);
            }
        }
        let mut strat = Curve::default();
        for order in &stratified_orders {
            for &k in &d.per_class {
                let n = k * classes;
                if n <= order.len() {
                    let (a, f, s) = evaluate(&order[..n])?;
                    strat.add(k, a, f, s);
                }
            }
        }
        // Active: the same seed set as the random picks (the first `start` of the seed's order; for many
        // classes, one per class), then rounds of uncertainty (+ a random share) up to each checkpoint.
        let mut checkpoints: Vec<usize> = d
            .counts
            .iter()
            .copied()
            .chain(d.per_class.iter().map(|k| k * classes))
            .filter(|&n| n <= d.pool.len().min(d.active_up_to))
            .collect();
        checkpoints.sort_unstable();
        checkpoints.dedup();
        let start_size = if d.per_class.is_empty() { 10 } else { classes };
        let mut active_curve = Curve::default();
        let mut active_orders = Vec::new();
        let mut rounds = 0usize;
        let active_start = Instant::now();
        for s in 0..d.seeds {
            let initial: Vec<usize> = if d.per_class.is_empty() {
                random_orders[s][..start_size].to_vec()
            } else {
                stratified_orders[s][..start_size].to_vec()
            };
            let mut labelled = initial;
            let mut in_set = vec![false; d.items.len()];
            labelled.iter().for_each(|&i| in_set[i] = true);
            for &target in checkpoints.iter().filter(|&&n| n >= start_size) {
                while labelled.len() < target {
                    let batch = ((labelled.len() as f64 * args.growth).round() as usize)
                        .max(5)
                        .min(target - labelled.len());
                    let px: Vec<Vec<f64>> = labelled.iter().map(|&i| x[i].clone()).collect();
                    let py: Vec<usize> = labelled.iter().map(|&i| d.items[i].label).collect();
                    let model = LogisticRegression::fit(&px, &py, classes, &options())?;
                    rounds += 1;
                    let candidates: Vec<Candidate> = d
                        .pool
                        .iter()
                        .filter(|&&i| !in_set[i])
                        .map(|&i| Candidate {
                            id: i as u64,
                            probe: model.predict_proba(&x[i]),
                            llm: None,
                        })
                        .collect();
                    let options = ActiveOptions {
                        disagree_share: 0.0,
                        random_share: args.random_share,
                        seed: 7000 + (s * 100_000 + labelled.len()) as u64,
                    };
                    for (id, _) in active::select(&candidates, batch, &options) {
                        in_set[id as usize] = true;
                        labelled.push(id as usize);
                    }
                }
                let (a, f, sec) = evaluate(&labelled)?;
                active_curve.add(target, a, f, sec);
            }
            active_orders.push(labelled);
        }
        let active_seconds = active_start.elapsed().as_secs_f64();
        let mut e = json!({
            "throughput": throughput.get(&(d.name.to_string(), id.to_string())),
            "random": random.json(),
            "active": active_curve.json(),
            "active_start": start_size,
            "active_rounds": rounds,
            "active_seconds": round(active_seconds, 1),
            "active_orders": active_orders,
        });
        if !d.per_class.is_empty() {
            e["per_class"] = strat.json();
        }
        per_embedder.insert(id.to_string(), e);
        eprintln!("  {id} done");
    }
    Ok(json!({
        "name": d.name,
        "title": d.title,
        "classes": d.classes,
        "items": d.items.iter().map(|i| json!({"texts": i.texts, "label": i.label})).collect::<Vec<_>>(),
        "pool": d.pool,
        "test": d.test,
        "counts": d.counts.iter().filter(|&&n| n <= d.pool.len()).collect::<Vec<_>>(),
        "per_class_counts": d.per_class,
        "seeds": d.seeds,
        "random_orders": random_orders,
        "stratified_orders": stratified_orders,
        "embedders": per_embedder,
    }))
}

fn options() -> FitOptions {
    FitOptions {
        c: 1.0,
        standardize: true,
        ..FitOptions::default()
    }
}

/// Per label count, the figures of every seed.
#[derive(Default)]
struct Curve {
    points: BTreeMap<usize, Point>,
}

/// One label count's figures, one entry per seed.
#[derive(Default)]
struct Point {
    accuracy: Vec<f64>,
    macro_f1: Vec<f64>,
    fit_seconds: Vec<f64>,
}

impl Curve {
    fn add(&mut self, n: usize, accuracy: f64, f1: f64, seconds: f64) {
        let p = self.points.entry(n).or_default();
        p.accuracy.push(accuracy);
        p.macro_f1.push(f1);
        p.fit_seconds.push(seconds);
    }

    fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (n, p) in &self.points {
            m.insert(
                n.to_string(),
                json!({"accuracy": p.accuracy, "macro_f1": p.macro_f1, "fit_seconds": p.fit_seconds}),
            );
        }
        Value::Object(m)
    }
}

/// An item's features: its text's vector, or for a pair the difference of its two texts' vectors.
fn features(item: &Item, store: &HashMap<String, Vec<f32>>) -> Result<Vec<f64>> {
    let get = |t: &String| {
        store
            .get(&key(t))
            .with_context(|| format!("no vector for {t:?}"))
    };
    match item.texts.as_slice() {
        [t] => Ok(get(t)?.iter().map(|&v| f64::from(v)).collect()),
        [a, b] => Ok(get(a)?
            .iter()
            .zip(get(b)?)
            .map(|(x, y)| f64::from(x - y))
            .collect()),
        _ => bail!("an item has {} texts", item.texts.len()),
    }
}

fn sms(args: &Args, small: bool) -> Result<Dataset> {
    let text = std::fs::read_to_string(&args.sms)
        .with_context(|| format!("reading {}", args.sms.display()))?;
    let classes = vec!["ham".to_string(), "spam".to_string()];
    let mut seen = std::collections::HashSet::new();
    let mut items = Vec::new();
    for line in text.lines().skip(1) {
        let (label, body) = line.split_once('\t').context("an SMS row without a tab")?;
        // Exact duplicates (about 400) would put the same message in the pool and the test set.
        if !seen.insert(body.to_string()) {
            continue;
        }
        let label = classes
            .iter()
            .position(|c| c == label)
            .with_context(|| format!("unknown SMS label {label}"))?;
        items.push(Item {
            texts: vec![body.to_string()],
            label,
        });
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    shuffle(&mut order, 5574);
    let n = args.sms_rows.min(order.len() / 2);
    let (pool, test) = if small {
        let m = args.small_rows.min(n);
        (order[..m].to_vec(), order[n..n + m].to_vec())
    } else {
        (order[..n].to_vec(), order[n..2 * n].to_vec())
    };
    let keep: Vec<usize> = pool.iter().chain(&test).copied().collect();
    let (items, pool, test) = compact(items, &keep, &pool, &test);
    let spam = test.iter().filter(|&&i| items[i].label == 1).count();
    Ok(Dataset {
        name: if small { "sms-small" } else { "sms" },
        title: format!(
            "SMS spam{}: pool {} rows, {} held-out rows ({spam} spam)",
            if small {
                " (subset embedded by SmolLM2 too)"
            } else {
                ""
            },
            pool.len(),
            test.len()
        ),
        classes,
        items,
        pool,
        test,
        counts: vec![10, 20, 50, 100, 200, 500],
        per_class: Vec::new(),
        seeds: args.seeds,
        embedders: if small {
            vec!["all-minilm-l6-v2", "smollm2-135m-mean"]
        } else {
            vec!["all-minilm-l6-v2"]
        },
        active_up_to: usize::MAX,
    })
}

fn banking(args: &Args) -> Result<Dataset> {
    let read = |path: &Path| -> Result<Vec<(String, String)>> {
        let mut rows = Vec::new();
        for r in
            assay_io::open_dataset(path).with_context(|| format!("reading {}", path.display()))?
        {
            let r = r?;
            let field = |c: &str| r.values.get(c).and_then(Value::as_str).map(str::to_string);
            match (field("text"), field("category")) {
                (Some(t), Some(c)) => rows.push((t, c)),
                _ => bail!(
                    "{}: row {} lacks text or category",
                    path.display(),
                    r.index + 1
                ),
            }
        }
        Ok(rows)
    };
    let train = read(&args.banking_train)?;
    let test = read(&args.banking_test)?;
    let mut classes: Vec<String> = test.iter().map(|r| r.1.clone()).collect();
    classes.sort();
    classes.dedup();
    let mut items = Vec::new();
    let mut pool = Vec::new();
    let mut held = Vec::new();
    for (rows, per_class, out, seed) in [
        (&train, args.banking_pool_per_class, &mut pool, 77u64),
        (&test, args.banking_test_per_class, &mut held, 78u64),
    ] {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        shuffle(&mut order, seed);
        let mut taken = vec![0usize; classes.len()];
        for i in order {
            let (text, label) = &rows[i];
            let c = classes
                .binary_search(label)
                .map_err(|_| anyhow::anyhow!("intent {label} is not in the test set"))?;
            if taken[c] < per_class {
                taken[c] += 1;
                out.push(items.len());
                items.push(Item {
                    texts: vec![text.clone()],
                    label: c,
                });
            }
        }
    }
    Ok(Dataset {
        name: "banking77",
        title: format!(
            "Banking77: pool {} train rows ({} per intent), {} held-out test rows ({} per intent)",
            pool.len(),
            args.banking_pool_per_class,
            held.len(),
            args.banking_test_per_class
        ),
        classes,
        items,
        pool,
        test: held,
        counts: vec![10, 20, 50, 100, 200, 500, 770],
        per_class: vec![5, 10, 20],
        seeds: args.banking_seeds,
        embedders: vec!["all-minilm-l6-v2"],
        // Active rounds up to 10 per intent (the goal's count); beyond it each round costs tens of seconds.
        active_up_to: 10 * 77,
    })
}

fn pandalm(args: &Args) -> Result<Dataset> {
    let text = std::fs::read_to_string(&args.pandalm)
        .with_context(|| format!("reading {}", args.pandalm.display()))?;
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut items = Vec::new();
    let mut groups = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let r: Value = serde_json::from_str(line)?;
        let votes: Vec<i64> = (1..=3)
            .map(|k| r[format!("annotator{k}")].as_i64().unwrap_or(0))
            .collect();
        let majority = [1, 2, 0]
            .into_iter()
            .find(|v| votes.iter().filter(|x| *x == v).count() >= 2);
        let label = match majority {
            Some(1) => 0,
            Some(2) => 1,
            _ => continue,
        };
        let context = match s(&r["input"]).as_str() {
            "" => s(&r["instruction"]),
            input => format!("{}\n\n{input}", s(&r["instruction"])),
        };
        items.push(Item {
            texts: vec![
                format!("{context}\n\n{}", s(&r["response1"])),
                format!("{context}\n\n{}", s(&r["response2"])),
            ],
            label,
        });
        groups.push(context);
    }
    // Split by instruction: pairs that share one (and often a response) stay on one side.
    let mut contexts: Vec<&String> = groups.iter().collect();
    contexts.sort();
    contexts.dedup();
    contexts.sort_by_key(|c| splitmix(u64::from_str_radix(&key(c)[..15], 16).unwrap_or(0)));
    let mut test_contexts = std::collections::HashSet::new();
    let mut test_pairs = 0;
    for c in contexts {
        if test_pairs >= items.len() / 3 {
            break;
        }
        test_pairs += groups.iter().filter(|g| *g == c).count();
        test_contexts.insert(c.clone());
    }
    let (test, pool): (Vec<usize>, Vec<usize>) =
        (0..items.len()).partition(|&i| test_contexts.contains(&groups[i]));
    Ok(Dataset {
        name: "pandalm",
        title: format!(
            "PandaLM pairs with a non-tie human majority: pool {} pairs, {} held-out pairs (split by instruction)",
            pool.len(),
            test.len()
        ),
        classes: vec!["response 1".into(), "response 2".into()],
        items,
        pool,
        test,
        counts: vec![10, 20, 50, 100, 200, 500],
        per_class: Vec::new(),
        seeds: args.seeds,
        embedders: vec!["all-minilm-l6-v2"],
        active_up_to: usize::MAX,
    })
}

/// Keep only the items in `keep`, renumbering the pool and test indices.
fn compact(
    items: Vec<Item>,
    keep: &[usize],
    pool: &[usize],
    test: &[usize],
) -> (Vec<Item>, Vec<usize>, Vec<usize>) {
    let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    let mut index = HashMap::new();
    let mut out = Vec::new();
    for &i in keep {
        index.insert(i, out.len());
        out.push(slots[i].take().expect("each item kept once"));
    }
    let map = |v: &[usize]| v.iter().map(|i| index[i]).collect();
    (out, map(pool), map(test))
}

/// Round robin over classes along `order`: the first `k * classes` entries hold `k` items of every class (where
/// the pool has them).
fn stratified(items: &[Item], order: &[usize], classes: usize) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for &i in order {
        by_class[items[i].label].push(i);
    }
    let depth = by_class.iter().map(Vec::len).max().unwrap_or(0);
    (0..depth)
        .flat_map(|r| by_class.iter().filter_map(move |c| c.get(r).copied()))
        .collect()
}

/// Seeded Fisher-Yates.
fn shuffle(v: &mut [usize], seed: u64) {
    let mut state = seed;
    for i in (1..v.len()).rev() {
        state = splitmix(state);
        v.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

fn key(text: &str) -> String {
    assay_core::sha256_hex(text.as_bytes())
}

/// Cached vectors: records of a 64-byte hex SHA-256 of the text and `dimension` little-endian f32.
fn read_cache(path: &Path, dimension: usize) -> Result<HashMap<String, Vec<f32>>> {
    let mut map = HashMap::new();
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(map);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let record = 64 + 4 * dimension;
    for r in bytes.chunks_exact(record) {
        let k = String::from_utf8(r[..64].to_vec())?;
        let v = r[64..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        map.insert(k, v);
    }
    Ok(map)
}

fn append_cache(path: &Path, texts: &[String], vectors: &[Vec<f32>]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut buf = Vec::new();
    for (t, v) in texts.iter().zip(vectors) {
        buf.extend_from_slice(key(t).as_bytes());
        for x in v {
            buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    file.write_all(&buf)?;
    Ok(())
}

fn accuracy(predicted: &[usize], y: &[usize]) -> f64 {
    predicted.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len().max(1) as f64
}

/// Mean over all classes of F1 (0 for a class never predicted correctly), as scikit-learn's
/// `f1_score(average="macro", labels=all, zero_division=0)`.
fn macro_f1(predicted: &[usize], y: &[usize], classes: usize) -> f64 {
    let mut tp = vec![0.0; classes];
    let mut fp = vec![0.0; classes];
    let mut fn_ = vec![0.0; classes];
    for (&p, &t) in predicted.iter().zip(y) {
        if p == t {
            tp[p] += 1.0;
        } else {
            fp[p] += 1.0;
            fn_[t] += 1.0;
        }
    }
    (0..classes)
        .map(|k| {
            let d = 2.0 * tp[k] + fp[k] + fn_[k];
            if d == 0.0 {
                0.0
            } else {
                2.0 * tp[k] / d
            }
        })
        .sum::<f64>()
        / classes as f64
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}
