//! Runs [`find_label_issues`] on labels and predicted probabilities read from a JSON file, for
//! `bench/label_errors_compare.py`.
//!
//! The file is `{"labels": [0, 1, ...], "pred_probs": [[0.9, 0.1], ...], "filter_by": "prune_by_noise_rate"}`;
//! `filter_by` takes cleanlab's names (`prune_by_class`, `prune_by_noise_rate`, `both`, `confident_learning`) and
//! defaults to `prune_by_noise_rate`. Prints `{"issues": [...]}`: the flagged indices, most likely wrong first.
//!
//! ```text
//! cargo run -p assay-quality --example label_issues_json -- input.json
//! ```

use assay_quality::label_errors::{find_label_issues, FilterBy, LabelIssueOptions};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    labels: Vec<usize>,
    pred_probs: Vec<Vec<f64>>,
    filter_by: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: label_issues_json FILE")?;
    let input: Input = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let filter_by = match input.filter_by.as_deref() {
        None | Some("prune_by_noise_rate") => FilterBy::PruneByNoiseRate,
        Some("prune_by_class") => FilterBy::PruneByClass,
        Some("both") => FilterBy::Both,
        Some("confident_learning") => FilterBy::ConfidentLearning,
        Some(other) => return Err(format!("unknown filter_by {other:?}").into()),
    };
    let options = LabelIssueOptions {
        filter_by,
        ..LabelIssueOptions::default()
    };
    let issues = find_label_issues(&input.labels, &input.pred_probs, &options)?;
    println!("{}", serde_json::json!({ "issues": issues.ranked }));
    Ok(())
}
