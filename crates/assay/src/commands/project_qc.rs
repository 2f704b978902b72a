//! `assay project qc NAME`: what the people's answers in `assay serve` say about the machine and about the people.
//! The figures are `assay-qc`'s (`assay_qc::project`); this module reads the project's outcomes from the store and
//! prints them as terminal tables, and with `--json` writes them to a file.

use std::path::PathBuf;

use anyhow::Context;
use assay_qc::project::{self, ProjectQc};
use clap::Args;

use super::qc::table;

/// Arguments of `assay project qc`.
#[derive(Debug, Args)]
pub struct QcArgs {
    /// Project name.
    pub project: String,
    /// Confidence of the intervals.
    #[arg(long, default_value_t = 0.95, value_name = "P")]
    pub confidence: f64,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

fn print(qc: &ProjectQc, confidence: f64) {
    let level = format!("{:.0}%", 100.0 * confidence);
    outln!("project {}", qc.project);
    let header = format!("machine = people's plurality [{level} CI]");
    let mut reasons = table(&["routed because", "items", "answered", &header]);
    for r in &qc.reasons {
        reasons.add_row([
            r.reason.clone(),
            r.items.to_string(),
            r.answered.to_string(),
            r.machine_vs_people.show(),
        ]);
    }
    outln!("{reasons}");
    outln!(
        "machine accuracy on what it auto-accepts (from the audit sample): {}",
        qc.machine_accuracy_audit.show()
    );
    let gold = format!("gold correct [{level} CI]");
    let mut people = table(&[
        "annotator",
        "answers",
        "median time",
        &gold,
        "agrees with the others",
    ]);
    for p in &qc.people {
        people.add_row([
            p.annotator.clone(),
            p.answers.to_string(),
            p.median_ms
                .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            p.gold.show(),
            p.agreement_with_others.show(),
        ]);
    }
    outln!("{people}");
    let opt = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.3}"));
    outln!(
        "between people ({} items answered by two or more): Krippendorff's alpha {}, percent agreement {}",
        qc.items_with_two_or_more_answers,
        opt(qc.krippendorff_alpha),
        opt(qc.percent_agreement)
    );
}

/// Run `assay project qc`.
pub fn run(
    rt: &tokio::runtime::Runtime,
    store: &assay_store::Store,
    args: QcArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let project = rt
        .block_on(store.project_by_name(&args.project))?
        .ok_or_else(|| super::Hinted {
            message: format!("no project named `{}`", args.project),
            hint: "list them with `assay project list`".into(),
        })?;
    let outcomes = rt.block_on(store.review_outcomes(&project))?;
    let qc = project::compute(&project.spec, &project.name, &outcomes, args.confidence)
        .map_err(super::qc::hinted)?;
    print(&qc, args.confidence);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&qc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}
