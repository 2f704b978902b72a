//! `assay audit mix`: where a task's records and final labels came from: records imported, written by people or
//! generated (with their generation depth), final labels by people (who), an LLM (which model, file hash and
//! prompt hash) or the probe; shares per dataset and for the task, and the policy's verdict.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use assay_core::policy::PolicySpec;
use assay_core::TaskSpec;
use assay_label::export::{mix_report, task_labels};
use assay_provenance::OriginMix;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};
use serde_json::json;

use crate::settings::{runtime, Settings};

/// Arguments of `assay audit mix`.
#[derive(Debug, Args)]
pub struct MixArgs {
    /// The task file (labeled before with `assay label`).
    pub task: PathBuf,
    /// The model whose labels count as the machine's, when several labeled the task.
    #[arg(long)]
    pub annotator: Option<String>,
    /// A project policy file to check against instead of the task's `[policy]`.
    #[arg(long, value_name = "POLICY.toml")]
    pub policy: Option<PathBuf>,
    /// Also write the counts as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn share_cell(mix: &OriginMix, n: usize) -> String {
    format!("{n} ({:.1}%)", mix.share(n) * 100.0)
}

/// Run `assay audit mix`.
pub fn run(settings: &Settings, args: MixArgs) -> anyhow::Result<ExitCode> {
    let spec = TaskSpec::from_path(&args.task)?;
    let policy = match &args.policy {
        Some(path) => PolicySpec::from_path(path)?,
        None => spec.policy.clone().unwrap_or_default(),
    };
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    let labels = task_labels(
        &store,
        &rt,
        &spec,
        args.annotator.as_deref(),
        &args.task,
        &settings.store_display(),
    )?;
    let report = mix_report(&store, &rt, &spec, &labels, &policy)?;

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["origin".to_string()];
    header.extend(report.by_dataset.iter().map(|(d, _)| d.name.clone()));
    header.push(format!("task {}", spec.name));
    table.set_header(header);
    let columns: Vec<&OriginMix> = report
        .by_dataset
        .iter()
        .map(|(_, m)| m)
        .chain([&report.total])
        .collect();
    let mut add = |name: String, count: &dyn Fn(&OriginMix) -> usize| {
        let mut row = vec![name];
        row.extend(columns.iter().map(|m| share_cell(m, count(m))));
        table.add_row(row);
    };
    add("rows".into(), &|m| m.rows);
    for kind in ["imported", "human", "synthetic"] {
        add(format!("record: {kind}"), &|m| m.records_of(kind));
    }
    for depth in report.total.depths.keys().copied().collect::<Vec<_>>() {
        add(format!("  synthetic, depth {depth}"), &|m| {
            m.depths.get(&depth).copied().unwrap_or(0)
        });
    }
    for labeler in ["human", "llm", "probe"] {
        add(format!("final label: {labeler}"), &|m| m.labels_of(labeler));
    }
    add(
        format!(
            "  by people with an expert (skill `{}`)",
            assay_provenance::EXPERT_SKILL
        ),
        &|m| m.expert_labels,
    );
    for who in report.total.people.keys().cloned().collect::<Vec<_>>() {
        add(format!("  person {who}"), &|m| {
            m.people.get(&who).copied().unwrap_or(0)
        });
    }
    for model in report.total.models.clone() {
        add(
            format!(
                "  model {} (sha256 {}, prompt {})",
                model.model,
                short(&model.model_sha256),
                short(&model.prompt_hash)
            ),
            &|m| {
                m.models
                    .iter()
                    .find(|c| {
                        c.model == model.model
                            && c.model_sha256 == model.model_sha256
                            && c.prompt_hash == model.prompt_hash
                    })
                    .map_or(0, |c| c.rows)
            },
        );
    }
    for probe in report.total.probes.keys().cloned().collect::<Vec<_>>() {
        add(format!("  probe {probe}"), &|m| {
            m.probes.get(&probe).copied().unwrap_or(0)
        });
    }
    for g in report.total.generators.clone() {
        add(
            format!(
                "  generator {} (sha256 {}, prompt {})",
                g.model,
                short(&g.model_sha256),
                short(&g.prompt_hash)
            ),
            &|m| {
                m.generators
                    .iter()
                    .find(|c| c.model == g.model && c.model_sha256 == g.model_sha256)
                    .map_or(0, |c| c.rows)
            },
        );
    }
    for column in table.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    outln!("{table}");
    for (d, _) in &report.by_dataset {
        outln!(
            "{}: license {}, source {}",
            d.name,
            d.provenance.license.as_deref().unwrap_or("unknown"),
            d.provenance.source.as_deref().unwrap_or("unknown")
        );
    }
    outln!(
        "synthetic share {:.1}%, generation depth max {}, mean {:.2}",
        report.total.synthetic_share() * 100.0,
        report.total.max_depth(),
        report.total.mean_depth()
    );
    if report.violations.is_empty() {
        outln!("policy: met");
    } else {
        for v in &report.violations {
            outln!("policy broken: {v}");
        }
    }
    if let Some(path) = &args.json {
        let value = json!({
            "task": spec.name,
            "total": report.total.to_json(),
            "datasets": report.by_dataset.iter().map(|(d, m)| json!({
                "name": d.name,
                "license": d.provenance.license,
                "source": d.provenance.source,
                "attribution": d.provenance.attribution,
                "mix": m.to_json(),
            })).collect::<Vec<_>>(),
            "violations": report.violations,
        });
        std::fs::write(path, serde_json::to_string_pretty(&value)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The first 12 characters of a hash.
fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
