//! `assay export`: a task's stored labels as training data (`assay_label::export` builds the rows).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use assay_core::TaskSpec;
use assay_label::export::{self, ExportFormat, PairFilter};
use clap::{Args, ValueEnum};

use crate::settings::{runtime, Settings};

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// `prompt`, `chosen`, `rejected` + soft score, margin, judge, provenance (TRL DPOTrainer columns).
    Dpo,
    /// `prompt`, `response_1`, `response_2`, soft label P(response 1 better), label, judge, provenance.
    Reward,
    /// Any task: the record's columns + the final `label` (people's plurality where they answered, else the
    /// machine's), `label_source`, the machine's `model_label` and `confidence`, the people's `human_answers`, and
    /// `provenance`.
    Labels,
}

/// Arguments of `assay export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The task file whose labels to export (labeled before with `assay label`).
    pub task: PathBuf,
    /// Output layout.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Output file, .jsonl or .parquet [default: TASK_NAME.FORMAT.jsonl].
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Keep pairs judged a tie (DPO: chosen is the response with P >= 0.5, i.e. response 1 at exactly 0.5).
    #[arg(long)]
    pub keep_ties: bool,
    /// Keep pairs whose two orders disagreed (position-inconsistent).
    #[arg(long)]
    pub keep_inconsistent: bool,
    /// The model whose judgments to export (`NAME@SHA12` as `assay runs` shows it), when several judged the task.
    #[arg(long)]
    pub annotator: Option<String>,
}

impl From<FormatArg> for ExportFormat {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Dpo => Self::Dpo,
            FormatArg::Reward => Self::Reward,
            FormatArg::Labels => Self::Labels,
        }
    }
}

/// Run `assay export`.
pub fn run(settings: &Settings, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let spec = TaskSpec::from_path(&args.task)?;
    let format = ExportFormat::from(args.format);
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.{}.jsonl", spec.name, format.as_str())));
    assay_io::Format::from_path(&output).context("choosing the output format")?;
    if format != ExportFormat::Labels && !spec.judges_pairs() {
        // Checked before reading the store, so the hint comes first.
        export::pair_rows(&spec, &empty_labels(&spec)?, format, PairFilter::default())?;
    }
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    let labels = export::task_labels(
        &store,
        &rt,
        &spec,
        args.annotator.as_deref(),
        &args.task,
        &settings.store_display(),
    )?;
    if format == ExportFormat::Labels {
        let out = export::label_rows(&spec, &labels);
        assay_io::write_output(&output, &out.rows, &assay_io::ParquetOptions::default())?;
        outln!(
            "wrote {} labels to {} ({} decided by people, {} by the model)",
            out.rows.len(),
            output.display(),
            out.by_people,
            out.rows.len() - out.by_people
        );
        return Ok(ExitCode::SUCCESS);
    }
    let filter = PairFilter {
        keep_ties: args.keep_ties,
        keep_inconsistent: args.keep_inconsistent,
    };
    let out = export::pair_rows(&spec, &labels, format, filter)?;
    assay_io::write_output(&output, &out.rows, &assay_io::ParquetOptions::default())?;
    let fate = |kept: bool| if kept { "kept" } else { "left out" };
    outln!(
        "wrote {} pairs to {} ({} judged, {} by people: {} ties, {}; {} position-inconsistent, {}{})",
        out.rows.len(),
        output.display(),
        out.judged,
        out.by_people,
        out.ties,
        fate(args.keep_ties),
        out.inconsistent,
        fate(args.keep_inconsistent),
        if out.unreadable > 0 {
            format!(", {} unreadable", out.unreadable)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// No labels: enough for `pair_rows` to refuse a task that judges no pairs.
fn empty_labels(spec: &TaskSpec) -> anyhow::Result<export::TaskLabels> {
    Ok(export::TaskLabels {
        prompts: assay_core::PromptBuilder::new(spec)?,
        labels: Vec::new(),
        human: Vec::new(),
    })
}
