//! `assay`: label datasets with LLMs, with calibrated confidence and provenance.

mod commands;
mod progress;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Label datasets with language models, with calibrated confidence, durable state and provenance.
#[derive(Debug, Parser)]
#[command(name = "assay", version, about, long_about = None)]
struct Cli {
    /// Where state lives: a SQLite file path or sqlite://PATH [default: $ASSAY_HOME/assay.db].
    #[arg(long, global = true, env = "ASSAY_STORE")]
    store: Option<String>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Label a dataset with a task file.
    Label(commands::label::LabelArgs),
    /// Fetch and list models.
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    /// List recent runs.
    Runs(commands::runs::RunsArgs),
    /// Compare a task's labels with human labels: alignment, kappa, position flips.
    Eval(commands::eval::EvalArgs),
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASSAY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = settings::Settings::resolve(cli.store.as_deref(), cli.quiet);
    let result = match cli.command {
        Command::Label(args) => commands::label::run(&settings, args),
        Command::Model(command) => commands::model::run(&settings, command),
        Command::Runs(args) => commands::runs::run(&settings, args),
        Command::Export(args) => commands::export::run(&settings, args),
        Command::Eval(args) => commands::eval::run(&settings, args),
        Command::Qc(args) => commands::qc::run(args),
        Command::Serve(args) => commands::serve::run(&settings, args),
        Command::Project(command) => commands::project::run(&settings, command),
        Command::Annotator(command) => commands::annotator::run(&settings, command),
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
            eprintln!("error: {err:#}");
            if let Some(hint) = commands::hint_for(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
