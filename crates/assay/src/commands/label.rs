//! `assay label`: resolve the task, input, output and model, run the label pipeline (`assay_label::run`) with a
//! progress bar, and print its summary as tables.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use assay_core::{ServedScoring, TaskSpec};
use assay_label::run::{self, LabelJob, Outcome, Plan, Summary};
use assay_label::served::ServedSummary;
use assay_label::{Backend, Shard};
use assay_llm::embedded::default_threads;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use super::Hinted;
use crate::progress::BarReporter;
use crate::settings::{runtime, Settings};

/// Exit status of `assay label` when every row was read and labeled but some rows failed in the model: the
/// output holds them with `assay.error`, and the last line says how many.
pub const EXIT_ROWS_FAILED: u8 = 3;

/// Arguments of `assay label`. Exit status: 0 when done, 3 when rows failed in the model (the last line says how
/// many; rerunning retries them), 130 when interrupted, 1 on an error.
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// The task file (TOML); see docs/task-reference.toml.
    pub task: PathBuf,
    /// Input dataset (JSONL, CSV, TSV or Parquet) [default: the task's `dataset`].
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output file (.jsonl or .parquet) [default: the task's `output`, else TASK_NAME.labeled.jsonl].
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Label only the first N rows of the input.
    #[arg(long)]
    pub limit: Option<u64>,
    /// CPU threads for the model [default: the task's `model.threads`, else all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the run summary as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Estimate the requests, tokens and cost of labeling the pending rows, then stop (a served model is sent
    /// nothing).
    #[arg(long)]
    pub plan: bool,
    /// Label only the chunks numbered I modulo N (`0/2` and `1/2` split the work between two workers sharing one
    /// store, usually PostgreSQL). Chunks depend only on the input's order, so the workers never overlap; a last
    /// run without `--shard` calibrates over everything and writes the whole output, scoring nothing.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

/// Flags, the task file and defaults resolved into one job.
fn resolve(args: &LabelArgs, settings: &Settings) -> anyhow::Result<LabelJob> {
    let spec = TaskSpec::from_path(&args.task)?;
    let input = args
        .input
        .clone()
        .or_else(|| spec.dataset.clone())
        .ok_or_else(|| Hinted {
            message: format!(
                "task {} names no dataset and no --input was given",
                spec.name
            ),
            hint: "pass --input FILE or set `dataset = \"FILE\"` in the task file".into(),
        })?;
    let output = args
        .output
        .clone()
        .or_else(|| spec.output.clone())
        .unwrap_or_else(|| PathBuf::from(format!("{}.labeled.jsonl", spec.name)));
    assay_io::Format::from_path(&output).context("choosing the output format")?;
    let threads = args
        .threads
        .or(spec.model.threads)
        .unwrap_or_else(default_threads);
    Ok(LabelJob {
        spec,
        input,
        output,
        limit: args.limit,
        threads,
        shard: args.shard,
        models_home: settings.home.clone(),
    })
}

/// Run `assay label`.
pub fn run(settings: &Settings, args: LabelArgs) -> anyhow::Result<ExitCode> {
    if assay_core::generate::is_generate_task(&args.task)? {
        let a = args;
        anyhow::ensure!(
            !a.plan && a.shard.is_none(),
            "--plan and --shard are for labeling tasks; {} is a generate task",
            a.task.display()
        );
        return super::generate::run_from_label(
            settings,
            a.task,
            a.input,
            a.output,
            a.limit,
            a.threads,
            a.summary_json,
        );
    }
    let job = resolve(&args, settings)?;
    // A served model is reached (and, for `scoring = "auto"`, probed) before any work; `--plan` sends nothing.
    let backend =
        Backend::open(&job.spec, &settings.home, args.plan).with_context(|| {
            match &job.spec.model.endpoint {
                Some(endpoint) => format!("reaching the model server {endpoint}"),
                None => "loading the model".to_string(),
            }
        })?;
    if let (Backend::Served(model), false) = (&backend, args.plan) {
        eprintln!(
            "model: {} at {}",
            model.info().name,
            model.config().endpoint
        );
        eprintln!("scoring: {}", model.describe_mode());
        if backend.generates() {
            eprintln!("warning: the server returns no log-probabilities: labels are generated answers, confidence is unavailable and no calibration is applied");
        }
    }
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    watch_ctrl_c(interrupted.clone());
    let reporter = BarReporter::new(settings.progress);
    let cx = run::Context {
        store: &store,
        rt: &rt,
        reporter: &reporter,
        interrupted: interrupted.clone(),
    };
    let summary = match run::run(&job, &backend, &cx, args.plan)? {
        Outcome::Planned(plan) => {
            print_plan(&plan, &backend);
            return Ok(ExitCode::SUCCESS);
        }
        Outcome::Labeled(summary) => summary,
    };
    for (index, reason) in &summary.failures {
        eprintln!("row {}: not labeled: {reason}", index + 1);
    }
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_string_pretty(&*summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print_summary(&summary);
    if let Some(choice) = &summary.calibration_choice {
        outln!("calibration: {choice}");
    }
    if let Some(p) = &summary.probe {
        print_probe(p);
    }
    if let Some(s) = &summary.served {
        print_served(s);
    }
    if summary.generated {
        outln!("confidence: unavailable (the server returned no log-probabilities); accuracy figures hold, ECE and coverage do not");
    }
    if interrupted.load(Ordering::SeqCst) {
        return Ok(ExitCode::from(130));
    }
    Ok(exit_status(&summary))
}

/// 0, or [`EXIT_ROWS_FAILED`] with a last line saying how many rows failed.
fn exit_status(summary: &Summary) -> ExitCode {
    if summary.rows_failed == 0 {
        return ExitCode::SUCCESS;
    }
    outln!(
        "failed: {} of {} rows were not labeled (see `row N: not labeled` above); the same command retries them (exit status {EXIT_ROWS_FAILED})",
        summary.rows_failed,
        summary.rows_read
    );
    ExitCode::from(EXIT_ROWS_FAILED)
}

/// Ctrl-C stops after the chunk in flight; everything committed stays.
pub(super) fn watch_ctrl_c(flag: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing the chunk in flight; run the same command again to resume");
                flag.store(true, Ordering::SeqCst);
            }
        });
    });
}

/// `--plan`: what labeling the pending rows would send and cost.
fn print_plan(plan: &Plan, backend: &Backend) {
    let (Some(p), Backend::Served(model)) = (&plan.served, backend) else {
        outln!(
            "plan: {} items to label with the embedded model {}; nothing is paid",
            plan.pending,
            plan.model
        );
        return;
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["plan", "estimate"]);
    let basis = if p.input_measured {
        "mean of this model's stored answers"
    } else {
        "prompt characters / 4"
    };
    for (name, value) in [
        ("items to label", plan.pending.to_string()),
        ("requests", p.requests.to_string()),
        ("  answered from the cache", p.from_cache.to_string()),
        ("  repeats of another request", p.repeats.to_string()),
        ("  to send", p.to_send.to_string()),
        (
            "input tokens to pay",
            format!("{} ({basis})", p.input_tokens),
        ),
        (
            "output tokens to pay (at most)",
            p.output_tokens.to_string(),
        ),
        ("cost", format!("${:.4}", p.cost_usd)),
    ] {
        table.add_row([name.to_string(), value]);
    }
    let config = model.config();
    let scoring = if config.scoring == ServedScoring::Auto {
        format!(
            "scoring {} if the server supports it",
            model.mode().as_str()
        )
    } else {
        format!("scoring {}", model.mode().as_str())
    };
    outln!(
        "plan for {} at {} ({scoring}; nothing was sent)",
        config.model,
        config.endpoint
    );
    outln!("{table}");
    outln!(
        "prices: ${}/M input, ${}/M output ({})",
        p.prices.input,
        p.prices.output,
        p.prices.source
    );
}

fn print_summary(s: &Summary) {
    let row_errors = &s.row_errors;
    let mut rows = Table::new();
    rows.load_preset(UTF8_FULL_CONDENSED);
    rows.set_header(["rows", "count"]);
    rows.add_row(["read".to_string(), s.rows_read.to_string()]);
    rows.add_row(["labeled".to_string(), s.labeled.to_string()]);
    rows.add_row([
        "  scored in this run".to_string(),
        s.scored_this_run.to_string(),
    ]);
    rows.add_row([
        "  from earlier runs".to_string(),
        s.scored_before.to_string(),
    ]);
    rows.add_row([
        "skipped (malformed)".to_string(),
        s.rows_skipped.to_string(),
    ]);
    rows.add_row(["failed (model)".to_string(), s.rows_failed.to_string()]);
    outln!(
        "task {}  model {}  calibration {}",
        s.task,
        s.model,
        s.calibration
    );
    outln!("{rows}");
    for (index, reason) in row_errors.iter().take(10) {
        outln!("  row {}: {reason}", index + 1);
    }
    if row_errors.len() > 10 {
        outln!(
            "  ... and {} more (see the store's row_errors)",
            row_errors.len() - 10
        );
    }

    let mut labels = Table::new();
    labels.load_preset(UTF8_FULL_CONDENSED);
    labels.set_header(["label", "count", "share"]);
    let total: u64 = s.label_counts.iter().map(|(_, c)| c).sum::<u64>().max(1);
    let mut counts = s.label_counts.clone();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (name, count) in counts.iter().take(15) {
        labels.add_row([
            name.clone(),
            count.to_string(),
            format!("{:.1}%", 100.0 * *count as f64 / total as f64),
        ]);
    }
    if counts.len() > 15 {
        labels.add_row([
            format!("({} more labels)", counts.len() - 15),
            String::new(),
            String::new(),
        ]);
    }
    outln!("{labels}");

    let max = s
        .confidence_histogram
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    outln!("confidence");
    for (i, count) in s.confidence_histogram.iter().enumerate() {
        let width = (30 * count).div_ceil(max) as usize;
        outln!(
            "  {:.1}-{:.1} {:>6} {}",
            i as f64 / 10.0,
            (i + 1) as f64 / 10.0,
            count,
            "#".repeat(width)
        );
    }

    if let (Some(before), Some(after)) = (&s.before, &s.after) {
        let mut gold = Table::new();
        gold.load_preset(UTF8_FULL_CONDENSED);
        gold.set_header([
            "gold rows".to_string(),
            "raw model".to_string(),
            format!("calibrated ({})", s.calibration),
        ]);
        gold.add_row([
            "accuracy".to_string(),
            pct(before.accuracy),
            pct(after.accuracy),
        ]);
        gold.add_row([
            "macro-F1".to_string(),
            format!("{:.3}", before.macro_f1),
            format!("{:.3}", after.macro_f1),
        ]);
        gold.add_row([
            "ECE (15 bins)".to_string(),
            format!("{:.3}", before.ece),
            format!("{:.3}", after.ece),
        ]);
        for ((coverage, b), (_, a)) in before
            .accuracy_at_coverage
            .iter()
            .zip(&after.accuracy_at_coverage)
        {
            gold.add_row([
                format!("accuracy at {:.0}% coverage", coverage * 100.0),
                pct(*b),
                pct(*a),
            ]);
        }
        outln!(
            "measured on {} gold rows not used for fitting ({} gold rows, {} used to fit)",
            s.eval_rows,
            s.gold_rows,
            s.fit_rows
        );
        outln!("{gold}");
    }
    if let Some(c) = &s.compare {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["pairs (both orders judged)", "count", "share"]);
        let share = |n: usize, of: usize| {
            if of == 0 {
                "-".to_string()
            } else {
                pct(n as f64 / of as f64)
            }
        };
        for (name, n) in [
            ("position-consistent", c.position_consistent),
            ("position flip (same position won twice)", c.position_flips),
        ] {
            table.add_row([name.to_string(), n.to_string(), share(n, c.pairs)]);
        }
        if c.gold_pairs > 0 {
            table.add_row([
                "gold pairs (gold ties excluded)".to_string(),
                c.gold_pairs.to_string(),
                String::new(),
            ]);
            table.add_row([
                "  agree, both orders (debiased)".to_string(),
                c.gold_agree.to_string(),
                share(c.gold_agree, c.gold_pairs),
            ]);
            table.add_row([
                "  agree, order AB only".to_string(),
                c.gold_agree_single_order.to_string(),
                share(c.gold_agree_single_order, c.gold_pairs),
            ]);
        }
        outln!("{table}");
        if c.gold_pairs > 0 {
            outln!("agree: the model leans (P > 0.5) to the response gold prefers; the tie margin is not applied (as in `assay eval`'s alignment)");
        }
    }
    if let (Some(items), Some(tokens)) = (s.items_per_second, s.tokens_per_second) {
        outln!("throughput: {items:.2} items/s, {tokens:.0} tokens/s evaluated");
    }
    outln!("output: {}", s.output);
    if s.interrupted {
        outln!("interrupted: run the same command again to resume");
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn print_served(s: &ServedSummary) {
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
    outln!("scoring: {} via {}", s.scoring, s.endpoint);
    outln!("{table}");
    outln!(
        "prices: ${}/M input, ${}/M output ({})",
        s.prices.input,
        s.prices.output,
        s.prices.source
    );
}

/// The probe: what it learned from, and it beside the LLM on rows neither saw.
fn print_probe(p: &assay_label::probe::ProbeSummary) {
    outln!(
        "probe on {}: trained on {} labeled rows ({} answered by people), {} texts embedded in this run",
        p.embedder, p.train_rows, p.people_rows, p.embedded_this_run
    );
    outln!("labeler: {} ({})", p.labeler, p.reason);
    let (Some(probe), Some(llm)) = (&p.held_out_probe, &p.held_out_llm) else {
        outln!("no held-out gold rows to compare them on");
        return;
    };
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        format!("{} held-out gold rows", p.held_out_rows),
        "llm (calibrated)".to_string(),
        "probe".to_string(),
    ]);
    for (name, a, b) in [
        ("accuracy", pct(llm.accuracy), pct(probe.accuracy)),
        (
            "macro-F1",
            format!("{:.3}", llm.macro_f1),
            format!("{:.3}", probe.macro_f1),
        ),
        (
            "ECE (15 bins)",
            format!("{:.3}", llm.ece),
            format!("{:.3}", probe.ece),
        ),
    ] {
        table.add_row([name.to_string(), a, b]);
    }
    outln!("{table}");
}
