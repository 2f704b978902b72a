//! `assay`: label datasets with LLMs, with calibrated confidence and provenance.

#[macro_use]
mod output;
mod commands;
mod progress;
mod settings;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Label datasets with language models, with calibrated confidence, durable state and provenance.
#[derive(Debug, Parser)]
#[command(name = "assay", version, about, long_about = None)]
struct Cli {
    /// Where state lives: a SQLite file path, sqlite://PATH or postgres://USER:PASSWORD@HOST/DB (messages show the
    /// password as ***) [default: $ASSAY_HOME/assay.db].
    #[arg(long, global = true, env = "ASSAY_STORE", hide_env_values = true)]
    store: Option<String>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Label a dataset with a task file (exit status 3: some rows failed in the model).
    Label(commands::label::LabelArgs),
    /// Fetch and list models.
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    /// List recent runs.
    Runs(commands::runs::RunsArgs),
    /// Compare a task's labels with human labels: alignment, kappa, position flips.
    Eval(commands::eval::EvalArgs),
    /// Generate rows with a model (`type = "generate"` tasks: SFT responses or self-instruct), then keep those its `[gate]` passes.
    Generate(commands::generate::GenerateArgs),
    /// Write a compare task's judgments as preference training data (DPO pairs or soft reward labels).
    Export(commands::export::ExportArgs),
    /// Check the quality of annotators' answers: agreement, aggregation, annotators, audit; HTML report.
    Qc(commands::qc::QcArgs),
    /// Serve the review API and UI: people answer what the machine is unsure of.
    Serve(commands::serve::ServeArgs),
    /// Review projects: create from a task, import rows, list.
    #[command(subcommand)]
    Project(commands::project::ProjectCommand),
    /// People who review: add (prints their token), list.
    #[command(subcommand)]
    Annotator(commands::annotator::AnnotatorCommand),
    /// Audit a dataset itself: duplicates, benchmark overlap, origin mix, text from other models.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSAY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into a log file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let settings = settings::Settings::resolve(cli.store.as_deref(), cli.quiet);
    let result = match cli.command {
        Command::Label(args) => commands::label::run(&settings, args),
        Command::Model(command) => commands::model::run(&settings, command),
        Command::Runs(args) => commands::runs::run(&settings, args),
        Command::Export(args) => commands::export::run(&settings, args),
        Command::Generate(args) => commands::generate::run(&settings, args),
        Command::Eval(args) => commands::eval::run(&settings, args),
        Command::Qc(args) => commands::qc::run(args),
        Command::Serve(args) => commands::serve::run(&settings, args),
        Command::Project(command) => commands::project::run(&settings, command),
        Command::Annotator(command) => commands::annotator::run(&settings, command),
        Command::Audit(command) => commands::audit::run(&settings, command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`assay runs | head`) is not an error.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            // Store URLs may carry a password, in our messages or in the driver's.
            eprintln!(
                "error: {}",
                settings::redact_secrets(&format!("{err:#}"), &settings.store)
            );
            if let Some(hint) = commands::hint_for(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
