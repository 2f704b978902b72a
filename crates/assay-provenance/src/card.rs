//! The dataset card written beside every export: a Hugging Face dataset-card YAML header (`license`,
//! `annotations_creators` from the actual origin mix, `source_datasets`, `size_categories`, `task_categories`)
//! and a body with the origin shares, the models and prompts, the QC summary, duplicates and contamination, and
//! the licenses. Figures that were not computed say "not run".
//!
//! The header is written as YAML flow scalars quoted as JSON strings (JSON is YAML), so no value can break it.

use serde_json::json;

use crate::audit::{dups_text, overlap_text, DatasetAudits};
use crate::origin::{OriginMix, EXPERT_SKILL};
use crate::policy::DatasetFacts;

/// The first line of the body: marks a README.md as assay's own, so a later export may overwrite it.
pub const CARD_MARKER: &str = "<!-- dataset card written by assay export -->";

/// People's agreement and the machine's agreement with them, where people answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QcSummary {
    /// Items with two or more answers.
    pub multi_answered: usize,
    /// Of which every person gave the same answer.
    pub unanimous: usize,
    /// Items with people's plurality and a machine label.
    pub compared: usize,
    /// Of which the machine's label equals people's.
    pub machine_agrees: usize,
}

/// The Wilson score interval of `k` successes in `n` trials at 95% (z = 1.96).
pub fn wilson(k: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n, z) = (k as f64, n as f64, 1.96f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Everything the card says.
#[derive(Debug, Clone, Default)]
pub struct CardInput {
    /// The card's title.
    pub pretty_name: String,
    /// The task's name.
    pub task: String,
    /// The export layout (`dpo`, `reward`, `labels`).
    pub format: String,
    /// Hugging Face task categories (`text-classification`, ...).
    pub task_categories: Vec<String>,
    /// The export's file name.
    pub data_file: String,
    /// The export's rows counted by origin.
    pub mix: OriginMix,
    /// The datasets the rows came from.
    pub datasets: Vec<DatasetFacts>,
    /// People's agreement, when people answered.
    pub qc: Option<QcSummary>,
    /// What the duplicate and contamination audits (part 1 of the audit) of each dataset found, in the order of
    /// `datasets`; a dataset without an entry says "not run".
    pub audits: Vec<DatasetAudits>,
    /// The mix policy applied (`accumulate`, `replace`).
    pub mix_policy: String,
    /// Rows the mix policy left out.
    pub mixed_out: usize,
}

/// The Hugging Face size bucket of `n` rows.
pub fn size_category(n: usize) -> &'static str {
    match n {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        1_000_000..10_000_000 => "1M<n<10M",
        10_000_000..100_000_000 => "10M<n<100M",
        100_000_000..1_000_000_000 => "100M<n<1B",
        _ => "n>1T",
    }
}

/// `annotations_creators` from who gave the final labels: `expert-generated` where people decided with an expert
/// among them, `crowdsourced` where people without one did, and `machine-generated` where a model or the probe did.
pub fn annotations_creators(mix: &OriginMix) -> Vec<&'static str> {
    let mut out = Vec::new();
    if mix.crowd_labels() > 0 {
        out.push("crowdsourced");
    }
    if mix.expert_labels > 0 {
        out.push("expert-generated");
    }
    if mix.labels_of("llm") + mix.labels_of("probe") > 0 {
        out.push("machine-generated");
    }
    if out.is_empty() {
        out.push("no-annotation");
    }
    out
}

/// `language_creators` from where the records' text came from.
fn language_creators(mix: &OriginMix) -> Vec<&'static str> {
    let mut out = Vec::new();
    if mix.records_of("imported") + mix.records_of("human") > 0 {
        out.push("found");
    }
    if mix.records_of("synthetic") > 0 {
        out.push("machine-generated");
    }
    out
}

/// The license ids as the Hub writes them (lowercase SPDX ids; `other` for references and unknowns).
fn hub_licenses(datasets: &[DatasetFacts]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in datasets {
        let ids = d.license.as_ref().map(|l| l.ids()).unwrap_or_default();
        if ids.is_empty() {
            out.push("unknown".into());
        }
        for id in ids {
            let hub = if id.starts_with("LicenseRef-") {
                "other".to_string()
            } else {
                id.to_lowercase()
            };
            out.push(hub);
        }
    }
    out.sort();
    out.dedup();
    out
}

fn yaml_list(key: &str, values: &[impl AsRef<str>]) -> String {
    let mut s = format!("{key}:\n");
    for v in values {
        s.push_str(&format!("- {}\n", json!(v.as_ref())));
    }
    s
}

fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// The card's Markdown: the YAML header and the body.
pub fn render(input: &CardInput) -> String {
    let mix = &input.mix;
    let mut y = String::from("---\n");
    y.push_str(&format!("pretty_name: {}\n", json!(input.pretty_name)));
    let licenses = hub_licenses(&input.datasets);
    y.push_str(&yaml_list("license", &licenses));
    y.push_str(&yaml_list(
        "annotations_creators",
        &annotations_creators(mix),
    ));
    let language = language_creators(mix);
    if !language.is_empty() {
        y.push_str(&yaml_list("language_creators", &language));
    }
    let sources: Vec<String> = input
        .datasets
        .iter()
        .map(|d| match &d.provenance.name {
            Some(name) => format!("extended|{name}"),
            None => "original".to_string(),
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    y.push_str(&yaml_list("source_datasets", &sources));
    y.push_str(&yaml_list("size_categories", &[size_category(mix.rows)]));
    y.push_str(&yaml_list("task_categories", &input.task_categories));
    y.push_str(&yaml_list("tags", &["assay", input.format.as_str()]));
    y.push_str("configs:\n- config_name: default\n  data_files:\n");
    y.push_str(&format!(
        "  - split: train\n    path: {}\n",
        json!(input.data_file)
    ));
    y.push_str("---\n");

    let mut b = format!("{CARD_MARKER}\n\n# {}\n\n", input.pretty_name);
    b.push_str(&format!(
        "{} rows exported by `assay export --format {}` from task `{}` (file `{}`).\n\n",
        mix.rows, input.format, input.task, input.data_file
    ));
    b.push_str("## Origin\n\n| of the rows | count | share |\n|---|---:|---:|\n");
    for (kind, n) in &mix.records {
        b.push_str(&format!(
            "| record: {kind} | {n} | {} |\n",
            pct(mix.share(*n))
        ));
    }
    for (labeler, n) in &mix.labels {
        b.push_str(&format!(
            "| final label: {labeler} | {n} | {} |\n",
            pct(mix.share(*n))
        ));
        if labeler == "human" {
            for (creator, n) in [
                ("expert-generated", mix.expert_labels),
                ("crowdsourced", mix.crowd_labels()),
            ] {
                b.push_str(&format!(
                    "| final label: human, {creator} | {n} | {} |\n",
                    pct(mix.share(n))
                ));
            }
        }
    }
    b.push_str(&format!(
        "\nSynthetic share {}; generation depth max {}, mean {:.2} (over all rows; human and imported rows are \
         depth 0). Mix policy: {}{}.\n\n",
        pct(mix.synthetic_share()),
        mix.max_depth(),
        mix.mean_depth(),
        input.mix_policy,
        if input.mixed_out > 0 {
            format!(" ({} rows left out by it)", input.mixed_out)
        } else {
            String::new()
        }
    ));
    if !mix.people.is_empty() {
        b.push_str("People who decided labels:");
        for (who, n) in &mix.people {
            b.push_str(&format!(" {who} ({n})"));
        }
        b.push_str("\n\n");
        let experts: Vec<&str> = mix
            .people
            .keys()
            .filter(|who| mix.experts.contains(*who))
            .map(String::as_str)
            .collect();
        b.push_str(&format!(
            "Experts (annotators with the skill `{EXPERT_SKILL}`; a label people decided counts as \
             expert-generated when one of them answered it): {}.\n\n",
            if experts.is_empty() {
                "none answered".to_string()
            } else {
                experts.join(", ")
            }
        ));
    }
    b.push_str("## Models and prompts\n\n");
    if mix.models.is_empty() && mix.probes.is_empty() && mix.generators.is_empty() {
        b.push_str("No model gave a final label or generated a record.\n\n");
    } else {
        b.push_str(
            "| role | model | model SHA-256 | prompt hash | rows |\n|---|---|---|---|---:|\n",
        );
        for m in &mix.models {
            b.push_str(&format!(
                "| labeler | {} | `{}` | `{}` | {} |\n",
                m.model, m.model_sha256, m.prompt_hash, m.rows
            ));
        }
        for (probe, n) in &mix.probes {
            b.push_str(&format!("| labeler (probe) | {probe} | | | {n} |\n"));
        }
        for g in &mix.generators {
            b.push_str(&format!(
                "| generator | {} | `{}` | `{}` | {} |\n",
                g.model, g.model_sha256, g.prompt_hash, g.rows
            ));
        }
        b.push('\n');
    }
    b.push_str("## Quality control\n\n");
    match &input.qc {
        Some(qc) if qc.compared > 0 || qc.multi_answered > 0 => {
            if let Some((lo, hi)) = wilson(qc.machine_agrees, qc.compared) {
                b.push_str(&format!(
                    "- Machine label vs people's plurality: {} of {} agree ({}; 95% Wilson interval {}-{}).\n",
                    qc.machine_agrees,
                    qc.compared,
                    pct(qc.machine_agrees as f64 / qc.compared as f64),
                    pct(lo),
                    pct(hi)
                ));
            }
            if qc.multi_answered > 0 {
                b.push_str(&format!(
                    "- People's agreement: {} of {} items answered by two or more were unanimous.\n",
                    qc.unanimous, qc.multi_answered
                ));
            } else {
                b.push_str("- People's agreement: not run (no item has two answers).\n");
            }
            b.push('\n');
        }
        _ => b.push_str("Not run: nobody answered in `assay serve`.\n\n"),
    }
    b.push_str("## Duplicates and contamination\n\n");
    b.push_str(
        "Each dataset's newest `assay audit dups` and `assay audit overlap` run in the store, matched by the \
         SHA-256 of the file's bytes as labeled.\n\n",
    );
    for (n, d) in input.datasets.iter().enumerate() {
        match input.audits.get(n) {
            Some(a) => b.push_str(&format!(
                "- Duplicates in {}: {}\n- Contamination of {}: {}\n",
                d.name,
                dups_text(&a.dups, &a.sha256),
                d.name,
                overlap_text(&a.overlap, &a.sha256)
            )),
            None => b.push_str(&format!(
                "- Duplicates in {}: not run (`assay audit dups`)\n- Contamination of {}: not run \
                 (`assay audit overlap`)\n",
                d.name, d.name
            )),
        }
    }
    b.push('\n');
    b.push_str("## Licenses\n\n| dataset | license | source | attribution |\n|---|---|---|---|\n");
    for d in &input.datasets {
        let p = &d.provenance;
        b.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            d.name,
            p.license.as_deref().unwrap_or("unknown"),
            p.source.as_deref().unwrap_or("unknown"),
            p.attribution.as_deref().unwrap_or("none given")
        ));
    }
    format!("{y}{b}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::{LabelOrigin, RecordOrigin};
    use assay_core::policy::DatasetProvenance;

    #[test]
    fn wilson_matches_the_textbook() {
        // Newcombe (1998), Table I: 81/263 → 0.2553-0.3662.
        let (lo, hi) = wilson(81, 263).unwrap();
        assert!(
            (lo - 0.2553).abs() < 1e-4 && (hi - 0.3662).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn the_header_follows_the_mix() {
        let mut mix = OriginMix::default();
        mix.add(
            &RecordOrigin::Imported,
            Some(&LabelOrigin::Human {
                annotators: vec!["ann".into()],
            }),
        );
        let datasets = vec![DatasetFacts::new(
            "d.jsonl",
            DatasetProvenance {
                name: Some("org/data".into()),
                license: Some("CC-BY-4.0 OR LicenseRef-Custom".into()),
                ..Default::default()
            },
        )
        .unwrap()];
        let card = render(&CardInput {
            pretty_name: "t \"quoted\"".into(),
            format: "labels".into(),
            mix,
            datasets,
            data_file: "t.jsonl".into(),
            task_categories: vec!["text-classification".into()],
            mix_policy: "accumulate".into(),
            ..Default::default()
        });
        assert!(
            card.starts_with("---\npretty_name: \"t \\\"quoted\\\"\"\n"),
            "{card}"
        );
        assert!(
            card.contains("license:\n- \"cc-by-4.0\"\n- \"other\"\n"),
            "{card}"
        );
        assert!(
            card.contains("annotations_creators:\n- \"crowdsourced\"\n"),
            "{card}"
        );
        assert!(card.contains("- \"extended|org/data\""), "{card}");
        assert!(card.contains("- \"n<1K\""), "{card}");
        assert!(
            card.contains("Duplicates in org/data: not run (`assay audit dups`)"),
            "{card}"
        );
        assert!(
            card.contains("| final label: human, crowdsourced | 1 | 100.0% |"),
            "{card}"
        );
        assert_eq!(size_category(1_000), "1K<n<10K");
        let mut experts = OriginMix::with_experts(["eve".to_string()].into());
        let by = |who: &str| LabelOrigin::Human {
            annotators: vec![who.into()],
        };
        experts.add(&RecordOrigin::Imported, Some(&by("eve")));
        assert_eq!(annotations_creators(&experts), vec!["expert-generated"]);
        experts.add(&RecordOrigin::Imported, Some(&by("ann")));
        assert_eq!(
            annotations_creators(&experts),
            vec!["crowdsourced", "expert-generated"]
        );
    }
}
