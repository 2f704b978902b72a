//! `assay eval`: a task's stored labels against human labels in the dataset's columns (the figures are
//! computed by `assay_label::eval`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use assay_core::{CalibrationMethod, TaskKind, TaskSpec};
use assay_label::calibrate::{in_fit_split, MIN_FIT_ROWS};
use assay_label::eval::{
    classify_figures, judged_pairs, length_baselines, ColumnFigures, JudgedPairs, LengthBaselines,
    PreferenceReport,
};
use assay_label::export::task_labels;
use assay_label::judgment::PairJudgment;
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use super::Hinted;
use crate::settings::{runtime, Settings};

/// Arguments of `assay eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The task file (labeled before with `assay label`).
    pub task: PathBuf,
    /// Dataset columns holding human labels, one per person (comma-separated or repeated). Compare tasks read
    /// `1` (response 1 better), `2`, and `0` or `tie`; other tasks read label names or aliases.
    #[arg(long, required = true, value_delimiter = ',', num_args = 1..)]
    pub human: Vec<String>,
    /// The model whose labels to evaluate (`NAME@SHA12`), when several labeled the task.
    #[arg(long)]
    pub annotator: Option<String>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Other judging variants of the same pairs to show side by side (compare tasks with chain of thought, rate
    /// tasks with `response-2`, another model): every figure is then computed on the pairs all of them judged.
    #[arg(long = "with", value_name = "TASK.toml")]
    pub with: Vec<PathBuf>,
}

/// Run `assay eval`.
pub fn run(settings: &Settings, args: EvalArgs) -> anyhow::Result<ExitCode> {
    let spec = TaskSpec::from_path(&args.task)?;
    let rt = runtime()?;
    let store = settings.open_store(&rt)?;
    let read = |spec: &TaskSpec, path: &std::path::Path, annotator: Option<&str>| {
        task_labels(
            &store,
            &rt,
            spec,
            annotator,
            path,
            &settings.store_display(),
        )
        .map(|t| t.labels)
    };
    let mut labels = read(&spec, &args.task, args.annotator.as_deref())?;
    check_human_columns(&labels, &args.human)?;
    let judge = labels[0].annotator.clone();
    let fit_rows = leave_out_fit_rows(&spec, &mut labels);
    let report = match spec.kind {
        _ if spec.judges_pairs() => {
            let main = judged_pairs(&spec, &labels, &args.human);
            let mut others = Vec::new();
            for path in &args.with {
                let other = TaskSpec::from_path(path)?;
                if !other.judges_pairs() {
                    bail!(
                        "--with {}: not a compare task or a rated pair task",
                        path.display()
                    );
                }
                let other_labels = read(&other, path, None)?;
                let judged = judged_pairs(&other, &other_labels, &args.human);
                for (row, (_, data, _)) in &judged {
                    if main
                        .get(row)
                        .is_some_and(|(_, main_data, _)| main_data != data)
                    {
                        bail!(
                            "--with {}: row {row} differs from task {}'s: the tasks must judge the same dataset",
                            path.display(),
                            spec.name
                        );
                    }
                }
                others.push((other.name.clone(), other.kind, judged));
            }
            // Side by side only means something on the same pairs.
            let common: Vec<u64> = main
                .keys()
                .filter(|row| others.iter().all(|(_, _, o)| o.contains_key(row)))
                .copied()
                .collect();
            let pick = |judged: &JudgedPairs| -> Vec<(PairJudgment, Vec<Option<usize>>)> {
                common
                    .iter()
                    .map(|row| {
                        let (j, _, humans) = &judged[row];
                        (*j, humans.clone())
                    })
                    .collect()
            };
            let mut report = PreferenceReport::compute(&pick(&main), args.human.len())?;
            for (name, kind, judged) in &others {
                let r = PreferenceReport::compute(&pick(judged), args.human.len())?;
                if *kind == TaskKind::Compare {
                    report
                        .others
                        .push((format!("{name}: order AB only"), r.single_order));
                    report
                        .others
                        .push((format!("{name}: both orders"), r.both_orders));
                } else {
                    report
                        .others
                        .push((format!("{name}: rated separately"), r.both_orders));
                }
                report
                    .other_flip_rates
                    .push((name.clone(), r.position_flip_rate));
            }
            print_preferences(
                &report,
                &spec.name,
                &judge,
                &args.human,
                spec.is_rated_pair(),
            );
            let prompts = assay_label::TaskIdentity::of(&spec)?.prompts;
            let baselines = length_baselines(&spec, &prompts, &main)?;
            print_baselines(&baselines);
            let mut value = serde_json::to_value(&report)?;
            value["length_baselines"] = serde_json::to_value(&baselines)?;
            value
        }
        TaskKind::Compare | TaskKind::Rate => {
            bail!(
                "eval of a rate task that rates one response is not built; give it `rate.response-2` to judge pairs \
                 by their ratings, or read each expected score from the output's `assay.rating`"
            );
        }
        TaskKind::Classify | TaskKind::MultiLabel => {
            if spec.kind == TaskKind::MultiLabel {
                bail!("eval of multi-label tasks is not built yet; `assay label` prints their gold metrics");
            }
            if fit_rows > 0 {
                outln!(
                    "held-out rows only: {fit_rows} rows the calibration was fitted on are left out, as in `assay label`'s gold figures"
                );
            }
            print_classify(
                &spec,
                labels.len(),
                &classify_figures(&spec, &labels, &args.human)?,
            )
        }
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Every `--human` column must exist in the labeled rows: a misspelt one would count every pair as a tie.
fn check_human_columns(
    labels: &[assay_store::LabeledRecord],
    humans: &[String],
) -> anyhow::Result<()> {
    let mut columns = std::collections::BTreeSet::new();
    for label in labels {
        if let Some(data) = label.data.as_object() {
            columns.extend(data.keys().cloned());
        }
    }
    let missing: Vec<String> = humans
        .iter()
        .filter(|h| !columns.contains(*h))
        .map(|h| format!("`{h}`"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Hinted {
        message: format!(
            "--human: no labeled row has the column{} {}",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ),
        hint: format!(
            "the columns of the labeled rows are: {}",
            columns.into_iter().collect::<Vec<_>>().join(", ")
        ),
    }
    .into())
}

/// A classify task whose calibration was fitted on part of its gold rows: those rows are left out (the figures
/// are on held-out rows, as `assay label` reports them); returns how many.
fn leave_out_fit_rows(spec: &TaskSpec, labels: &mut Vec<assay_store::LabeledRecord>) -> usize {
    let Some(gold) = spec.gold.as_deref() else {
        return 0;
    };
    let fitting = matches!(spec.kind, TaskKind::Classify | TaskKind::MultiLabel)
        && matches!(
            spec.calibration.method,
            CalibrationMethod::Fitted | CalibrationMethod::Auto
        );
    let c = &spec.calibration;
    let in_fit = |l: &assay_store::LabeledRecord| {
        spec.gold_indices(l.data.get(gold)).is_some()
            && in_fit_split(c.seed, l.row_index, c.fit_share)
    };
    let fit = labels.iter().filter(|l| in_fit(l)).count();
    if !fitting || fit < MIN_FIT_ROWS {
        return 0;
    }
    labels.retain(|l| !in_fit(l));
    fit
}

/// `rated`: the task rated each response on its own, so there are no orders to show.
fn print_preferences(
    report: &PreferenceReport,
    task: &str,
    judge: &str,
    humans: &[String],
    rated: bool,
) {
    let this = report;
    outln!("task {task}  judge {judge}  pairs {}", this.pairs);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec![
        "judging".to_string(),
        "pairs (majority not a tie)".to_string(),
        "alignment".to_string(),
        "kappa vs majority".to_string(),
    ];
    header.extend(humans.iter().map(|h| format!("kappa vs {h}")));
    table.set_header(header);
    let own = if rated {
        vec![("rated separately".to_string(), &this.both_orders)]
    } else {
        vec![
            ("order AB only".to_string(), &this.single_order),
            ("both orders (debiased)".to_string(), &this.both_orders),
        ]
    };
    for (name, v) in own
        .into_iter()
        .chain(this.others.iter().map(|(n, v)| (n.clone(), v)))
    {
        let mut row = vec![
            name,
            v.majority_pairs.to_string(),
            opt_pct(v.alignment),
            opt3(v.kappa_majority),
        ];
        row.extend(v.kappa_humans.iter().map(|k| opt3(*k)));
        table.add_row(row);
    }
    outln!("{table}");
    outln!(
        "position flip rate (same position won in both orders): {}   position-consistent: {}",
        opt_pct(this.position_flip_rate),
        opt_pct(this.position_consistent_rate)
    );
    for (name, rate) in &this.other_flip_rates {
        outln!("  {name}: position flip rate {}", opt_pct(*rate));
    }
    outln!(
        "AI ties (tie margin): {}   human majority a tie or split: {}",
        this.ai_ties,
        this.human_tie_or_split
    );
    if !this.human_kappas.is_empty() {
        let mut people = Table::new();
        people.load_preset(UTF8_FULL_CONDENSED);
        people.set_header(["people (for reference)", "Cohen's kappa"]);
        for (a, b, k) in &this.human_kappas {
            people.add_row([format!("{} vs {}", humans[*a], humans[*b]), opt3(*k)]);
        }
        outln!("{people}");
    }
}

fn print_classify(spec: &TaskSpec, labels: usize, figures: &[ColumnFigures]) -> serde_json::Value {
    outln!("task {}  labels {labels}", spec.name);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "human column",
        "rows",
        "accuracy",
        "macro-F1",
        "ECE (15 bins)",
        "Cohen's kappa",
    ]);
    for f in figures {
        let report = f.report.as_ref();
        table.add_row([
            f.column.clone(),
            f.rows.to_string(),
            opt_pct(report.map(|r| r.accuracy)),
            opt3(report.map(|r| r.macro_f1)),
            opt3(report.map(|r| r.ece)),
            opt3(f.kappa),
        ]);
    }
    outln!("{table}");
    serde_json::json!(figures)
}

fn opt_pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.1}%", 100.0 * x))
}

fn opt3(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.3}"))
}

/// The position and length baselines beside the judge, and its length preference.
fn print_baselines(b: &LengthBaselines) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        format!("baselines ({} majority pairs of unequal length)", b.pairs),
        "alignment".to_string(),
    ]);
    for (name, value) in [
        ("judge, both orders", b.judge),
        ("judge, length-controlled", b.length_controlled),
        ("always response 1 (all majority pairs)", b.always_first),
        ("always the shorter", b.always_shorter),
        ("always the longer", b.always_longer),
    ] {
        table.add_row([name.to_string(), opt_pct(value)]);
    }
    outln!("{table}");
    outln!(
        "length preference: the judge picks the shorter response in {} of these pairs, people in {}",
        opt_pct(b.judge_picks_shorter),
        opt_pct(b.humans_pick_shorter)
    );
    if let Some(m) = &b.length_model {
        outln!(
            "length control: logit P(1) = {:.3} + {:.3}·tanh(Δchars/{:.0}) over {} judged pairs; without the length \
             term the judge picks the shorter in {}",
            m.intercept,
            m.slope,
            m.scale,
            m.pairs,
            opt_pct(b.length_controlled_picks_shorter)
        );
    }
}
