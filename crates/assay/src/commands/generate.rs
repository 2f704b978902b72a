//! `assay generate` (and `assay label` given a `type = "generate"` task): resolve the task, input, output and
//! model, run the generation stage (`assay_label::generate`) and then the gate (`assay_label::gate`) with progress
//! bars, and print what each did.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use assay_core::generate::GenerateTaskSpec;
use assay_label::gate::{self, GateJob, GateSummary};
use assay_label::generate::{self, GenerateJob, GenerateSummary};
use assay_label::run;
use assay_llm::embedded::default_threads;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use super::Hinted;
use crate::progress::BarReporter;
use crate::settings::{runtime, Settings};

/// Exit status when some seed rows could not be read, rendered or answered (rerunning retries them).
const EXIT_ROWS_FAILED: u8 = 3;

/// Arguments of `assay generate`. Exit status: 0 when done, 3 when some seed rows failed (the same command
/// retries them), 130 when interrupted (the same command resumes), 1 on an error.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The generate task file (TOML, `type = "generate"`); see docs/task-reference-generate.toml.
    pub task: PathBuf,
    /// Seed rows (JSONL, CSV, TSV or Parquet) [default: the task's `dataset`].
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Where the generated rows go (.jsonl) [default: the task's `output`, else TASK_NAME.generated.jsonl].
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Generate for the first N seed rows only.
    #[arg(long)]
    pub limit: Option<u64>,
    /// CPU threads for the model [default: the task's `model.threads`, else the free cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Generate only; do not run the task's `[gate]`.
    #[arg(long, conflicts_with = "gate_only")]
    pub no_gate: bool,
    /// Run only the task's `[gate]`, over the rows already generated in the output file (to try other
    /// thresholds; the judge's ratings are stored, so nothing is rated twice).
    #[arg(long)]
    pub gate_only: bool,
    /// Also write what generation and the gate did as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
}

/// `assay label TASK` where TASK is a generate task: the same as `assay generate TASK` with those flags.
pub fn run_from_label(
    settings: &Settings,
    task: PathBuf,
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    limit: Option<u64>,
    threads: Option<usize>,
    summary_json: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    run(
        settings,
        GenerateArgs {
            task,
            input,
            output,
            limit,
            threads,
            no_gate: false,
            gate_only: false,
            summary_json,
        },
    )
}

/// The kept file of the gate: `[gate] output`, else the generated file's name with `.kept.jsonl`.
fn kept_path(spec: &GenerateTaskSpec, output: &Path) -> PathBuf {
    spec.gate
        .as_ref()
        .and_then(|g| g.output.clone())
        .unwrap_or_else(|| with_suffix(output, "kept"))
}

/// `out/x.jsonl` → `out/x.NAME.jsonl`.
fn with_suffix(path: &Path, name: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("generated");
    path.with_file_name(format!("{stem}.{name}.jsonl"))
}

/// Run `assay generate`.
pub fn run(settings: &Settings, args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let spec = GenerateTaskSpec::from_path(&args.task)?;
    // The gate reads the seed rows only to compare responses with `gate.dedup.seed-columns`.
    let needs_seeds = !args.gate_only
        || spec
            .gate
            .as_ref()
            .is_some_and(|g| g.dedup.enabled && !g.dedup.seed_columns.is_empty());
    let input = args
        .input
        .clone()
        .or_else(|| spec.dataset.clone())
        .or_else(|| (!needs_seeds).then(PathBuf::new))
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
        .unwrap_or_else(|| PathBuf::from(format!("{}.generated.jsonl", spec.name)));
    assay_io::Format::from_path(&output).context("choosing the output format")?;
    let threads = args
        .threads
        .or(spec.model.threads)
        .unwrap_or_else(default_threads);
    if args.gate_only && (spec.gate.is_none() || !output.exists()) {
        return Err(Hinted {
            message: format!(
                "--gate-only needs a `[gate]` section in {} and the generated rows in {}",
                args.task.display(),
                output.display()
            ),
            hint: "run `assay generate TASK` first (it runs the gate too)".into(),
        }
        .into());
    }
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    super::label::watch_ctrl_c(interrupted.clone());
    let reporter = BarReporter::new(settings.progress);
    let cx = run::Context {
        store: &store,
        rt: &rt,
        reporter: &reporter,
        interrupted: interrupted.clone(),
    };
    let generated = if args.gate_only {
        None
    } else {
        let model = generate::open_model(&spec, &settings.home).context("loading the model")?;
        let job = GenerateJob {
            spec: spec.clone(),
            input: input.clone(),
            output: output.clone(),
            limit: args.limit,
            threads,
        };
        let generated = generate::run(&job, &model, &cx)?;
        for (index, reason) in &generated.row_errors {
            eprintln!("row {}: not generated: {reason}", index + 1);
        }
        print_generated(&generated);
        Some(generated)
    };
    let stopped = generated.as_ref().is_some_and(|g| g.interrupted);
    let gated = match (&spec.gate, args.no_gate || stopped) {
        (Some(gate_spec), false) => {
            let kept = kept_path(&spec, &output);
            let job = GateJob {
                gate: gate_spec.clone(),
                generated: output.clone(),
                seeds: input.clone(),
                response_column: spec.generate.response_column.clone(),
                dropped: with_suffix(&output, "dropped"),
                kept,
                threads,
                models_home: settings.home.clone(),
            };
            let summary = gate::run(&job, &cx).context("running the gate")?;
            print_gate(&summary);
            Some(summary)
        }
        _ => None,
    };
    if let Some(path) = &args.summary_json {
        let both = serde_json::json!({"generate": generated, "gate": gated});
        std::fs::write(path, serde_json::to_string_pretty(&both)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if interrupted.load(Ordering::SeqCst) || stopped {
        return Ok(ExitCode::from(130));
    }
    let failed = generated.as_ref().map_or(0, |g| g.row_errors.len());
    if failed > 0 {
        outln!(
            "failed: {failed} seed rows were not generated for (see `row N: not generated` above); the same command retries them (exit status {EXIT_ROWS_FAILED})"
        );
        return Ok(ExitCode::from(EXIT_ROWS_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_generated(s: &GenerateSummary) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["generate", s.task.as_str()]);
    for (name, value) in [
        ("model", s.model.clone()),
        ("seed rows", s.seed_rows.to_string()),
        ("generated by this run", s.generated_this_run.to_string()),
        ("generated before (resumed)", s.generated_before.to_string()),
        ("rows written", s.rows_written.to_string()),
        ("  truncated at max-tokens", s.truncated.to_string()),
        ("tokens generated", s.tokens_generated.to_string()),
        ("seconds", format!("{:.1}", s.seconds)),
        ("output", s.output.clone()),
    ] {
        table.add_row([name.to_string(), value]);
    }
    outln!("{table}");
    if s.interrupted {
        outln!("interrupted: the same command resumes where this run stopped");
    }
}

fn print_gate(s: &GateSummary) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["gate", "rows"]);
    for (name, value) in [
        ("generated rows", s.rows),
        ("kept", s.kept),
        ("dropped by the rules", s.dropped_by_rules),
        ("dropped as near-duplicates", s.dropped_as_duplicates),
        ("dropped by the judge", s.dropped_by_judge),
        ("not rated by the judge", s.judge_failures),
    ] {
        table.add_row([name.to_string(), value.to_string()]);
    }
    for (reason, count) in &s.reasons {
        table.add_row([format!("  {reason}"), count.to_string()]);
    }
    outln!("{table}");
    outln!("kept: {}", s.kept_output);
    outln!("dropped (with reasons): {}", s.dropped_output);
}
