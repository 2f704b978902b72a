//! `assay project`: review projects for `assay serve`: create one from a task, import rows, list.

use std::path::PathBuf;
use std::process::ExitCode;

use assay_core::TaskSpec;
use assay_server::import::{ImportSummary, Reporter};
use clap::{Args, Subcommand};
use comfy_table::Table;
use indicatif::ProgressBar;

use crate::settings::{runtime, Settings};

/// Subcommands of `assay project`.
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project from a task file with a `[review]` section; imports and routes the task's dataset.
    Create(CreateArgs),
    /// Import rows (JSONL, CSV, TSV, Parquet) into a project and route them. Rows written by `assay label` bring
    /// the model's label and confidence in their `assay` column.
    Import(ImportArgs),
    /// List projects and their progress.
    List,
    /// What people's answers say: the machine's accuracy per routing reason (the audit sample estimates it on
    /// what the machine auto-accepts), people's accuracy on gold, agreement between people.
    Qc(super::project_qc::QcArgs),
}

/// Arguments of `assay project create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The task file.
    task: PathBuf,
    /// Project name [default: the task's name].
    #[arg(long)]
    name: Option<String>,
    /// Do not import the task's `dataset` now.
    #[arg(long)]
    no_import: bool,
}

/// Arguments of `assay project import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Project name.
    project: String,
    /// The rows.
    file: PathBuf,
}

struct Bar {
    bar: ProgressBar,
}

impl Reporter for Bar {
    fn start(&self, total_rows: Option<u64>) {
        if let Some(total) = total_rows {
            self.bar.set_length(total);
        }
    }
    fn advance(&self, rows: u64) {
        self.bar.inc(rows);
    }
    fn routing(&self) {
        self.bar.set_message("routing");
    }
}

fn bar(settings: &Settings) -> Bar {
    let bar = crate::progress::items_bar(0, "importing", settings.progress);
    Bar { bar }
}

fn print_summary(s: &ImportSummary, seconds: f64) {
    eprintln!(
        "{} rows in {seconds:.1} s: {} new records, {} model labels; {} routed items now ({} new)",
        s.rows,
        s.new_records,
        s.new_labels,
        s.route.by_reason.values().sum::<u64>(),
        s.route.new_items,
    );
    for (reason, n) in &s.route.by_reason {
        eprintln!("  {reason:>15}: {n}");
    }
    if !s.row_errors.is_empty() {
        eprintln!("{} rows skipped:", s.row_errors.len());
        for (index, reason) in s.row_errors.iter().take(10) {
            eprintln!("  row {}: {reason}", index + 1);
        }
    }
}

/// Run `assay project`.
pub fn run(settings: &Settings, command: ProjectCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    match command {
        ProjectCommand::Qc(args) => return super::project_qc::run(&rt, &store, args),
        ProjectCommand::Create(args) => {
            let spec = TaskSpec::from_path(&args.task)?;
            let name = args.name.clone().unwrap_or_else(|| spec.name.clone());
            let started = std::time::Instant::now();
            let bar = bar(settings);
            let (id, summary) = rt.block_on(assay_server::import::create_project(
                &store,
                &name,
                spec,
                !args.no_import,
                &bar,
            ))?;
            bar.bar.finish_and_clear();
            println!("created project {name} (id {id})");
            if let Some(s) = summary {
                print_summary(&s, started.elapsed().as_secs_f64());
            }
        }
        ProjectCommand::Import(args) => {
            let project = rt
                .block_on(store.project_by_name(&args.project))?
                .ok_or_else(|| crate::commands::Hinted {
                    message: format!("no project named `{}`", args.project),
                    hint: "create it with `assay project create TASK.toml`".into(),
                })?;
            let started = std::time::Instant::now();
            let bar = bar(settings);
            let summary = rt.block_on(assay_server::import::import_file(
                &store, project.id, &args.file, &bar,
            ))?;
            bar.bar.finish_and_clear();
            print_summary(&summary, started.elapsed().as_secs_f64());
        }
        ProjectCommand::List => {
            let mut table = Table::new();
            table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header([
                "id", "name", "task", "rows", "items", "answered", "complete",
            ]);
            for p in rt.block_on(store.projects())? {
                let progress = rt.block_on(store.progress(&p))?;
                table.add_row([
                    p.id.to_string(),
                    p.name.clone(),
                    p.spec.name.clone(),
                    progress.dataset_rows.to_string(),
                    progress.items.to_string(),
                    format!(
                        "{}/{}",
                        progress.slots.get("answered").copied().unwrap_or(0),
                        progress.slots.values().sum::<u64>()
                    ),
                    progress.items_complete.to_string(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
