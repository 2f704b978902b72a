//! The sections of `assay audit` reports: duplicates (histogram of verified similarities, the largest clusters
//! with their texts side by side) and contamination (hits per reference set). Callers pass plain figures.

use crate::svg::{bar_chart, Bar, BarChart};
use crate::{Block, Card, Section, Table, Tone};

/// One cluster of near-duplicates to show: its members' ids and texts (the kept one first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    /// The kept member's id.
    pub keep: String,
    /// `(id, text, jaccard with the kept member if known)`, the kept member first.
    pub members: Vec<(String, String, Option<f64>)>,
    /// Members in the cluster (may be more than shown).
    pub size: usize,
}

/// The figures of one duplicate audit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DupsView {
    /// Rows audited.
    pub rows: usize,
    /// Rows that are exact duplicates of an earlier row (after normalization).
    pub exact_duplicates: usize,
    /// Verified near-duplicate pairs.
    pub near_pairs: usize,
    /// Clusters of two or more rows.
    pub clusters: usize,
    /// Rows a deduplicated output drops.
    pub dropped: usize,
    /// Candidate pairs checked by exact Jaccard.
    pub candidates: usize,
    /// The Jaccard threshold.
    pub threshold: f64,
    /// "21 bands × 6 rows", and the recall at the threshold.
    pub banding: String,
    /// The normalization applied before hashing.
    pub normalization: String,
    /// Exact Jaccard of every candidate pair (verified or rejected).
    pub candidate_similarities: Vec<f64>,
    /// The largest clusters.
    pub largest: Vec<ClusterView>,
}

/// Histogram counts of `values` in `bins` equal bins over [0, 1].
pub fn histogram(values: &[f64], bins: usize) -> Vec<usize> {
    let mut counts = vec![0; bins.max(1)];
    for &v in values {
        let bin = ((v.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    counts
}

/// The duplicates section.
pub fn dups_section(view: &DupsView) -> Section {
    let mut section = Section::new("Duplicates");
    let share = |n: usize| {
        if view.rows == 0 {
            0.0
        } else {
            100.0 * n as f64 / view.rows as f64
        }
    };
    section.push(Block::Cards(vec![
        Card::new("rows", view.rows.to_string()),
        Card::new("exact duplicates", view.exact_duplicates.to_string())
            .detail(format!("{:.2}% of rows", share(view.exact_duplicates)))
            .tone(if view.exact_duplicates > 0 {
                Tone::Warn
            } else {
                Tone::Good
            }),
        Card::new("near-duplicate pairs", view.near_pairs.to_string())
            .detail(format!("Jaccard ≥ {}", view.threshold)),
        Card::new("clusters", view.clusters.to_string()),
        Card::new("rows dropped by dedup", view.dropped.to_string())
            .detail(format!("{:.2}% of rows", share(view.dropped)))
            .tone(if view.dropped > 0 {
                Tone::Warn
            } else {
                Tone::Good
            }),
    ]));
    section.push(Block::Text(format!(
        "Normalization: {}. Candidates from MinHash LSH ({}); every one of the {} candidate pairs was verified by \
         the exact Jaccard similarity of its word-shingle sets.",
        view.normalization, view.banding, view.candidates
    )));
    let bins = 20;
    let counts = histogram(&view.candidate_similarities, bins);
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let low = i as f64 / bins as f64;
            let mut bar = Bar::new(format!("{low:.2}"), n as f64);
            bar.highlight = low + 1.0 / bins as f64 <= view.threshold;
            bar.note = format!("{n} pairs with Jaccard in [{low:.2}, {:.2})", low + 0.05);
            bar
        })
        .collect();
    section.push(Block::Figure {
        svg: bar_chart(&BarChart {
            bars,
            y_label: "candidate pairs".into(),
            y_range: Some((0.0, top)),
            references: Vec::new(),
            highlight_label: "rejected (below the threshold)".into(),
        }),
        caption: "Exact Jaccard similarity of the candidate pairs, in bins of 0.05.".into(),
    });
    for (n, cluster) in view.largest.iter().enumerate() {
        // The members' texts side by side, one column each, the kept one first.
        let columns = cluster
            .members
            .iter()
            .map(|(id, text, jaccard)| {
                let label = match jaccard {
                    None => format!("{id} (kept)"),
                    Some(j) => format!("{id} (Jaccard with kept {j:.3})"),
                };
                // A paragraph wraps; a table cell would not.
                Block::Text(format!("{label}: {text}"))
            })
            .collect();
        section.push(Block::Text(format!(
            "Cluster {} of {} rows; kept: {} (rows people answered first, then gold rows, then the first row).",
            n + 1,
            cluster.size,
            cluster.keep
        )));
        section.push(Block::Row(columns));
    }
    section
}

/// Contamination figures of one reference set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferenceHits {
    /// The reference file.
    pub reference: String,
    /// Items in it.
    pub items: usize,
    /// Items hit by some input row.
    pub items_hit: usize,
    /// Input rows that hit it.
    pub rows_hitting: usize,
    /// The most-hit items: `(item id, rows hitting it, the largest share of its n-grams in one row, the first
    /// rows' ids)`.
    pub top_items: Vec<(String, usize, f64, Vec<String>)>,
}

/// The contamination section.
pub fn overlap_section(
    ngram: usize,
    rows: usize,
    contaminated: usize,
    references: &[ReferenceHits],
) -> Section {
    let mut section = Section::new("Benchmark contamination");
    section.push(Block::Cards(vec![
        Card::new("rows checked", rows.to_string()),
        Card::new("contaminated rows", contaminated.to_string()).tone(if contaminated > 0 {
            Tone::Bad
        } else {
            Tone::Good
        }),
    ]));
    let mut table = Table {
        header: vec![
            "reference".into(),
            "items".into(),
            "items hit".into(),
            "share hit".into(),
            "input rows hitting".into(),
        ],
        numeric: vec![1, 2, 3, 4],
        ..Table::default()
    };
    for r in references {
        let share = if r.items == 0 {
            0.0
        } else {
            r.items_hit as f64 / r.items as f64
        };
        table.rows.push(vec![
            r.reference.clone(),
            r.items.to_string(),
            r.items_hit.to_string(),
            format!("{:.1}%", 100.0 * share),
            r.rows_hitting.to_string(),
        ]);
    }
    section.push(Block::Text(format!(
        "Normalized word {ngram}-grams shared between input rows and reference items."
    )));
    section.push(Block::Table(table));
    for r in references.iter().filter(|r| !r.top_items.is_empty()) {
        let mut items = Table {
            header: vec![
                "item".into(),
                "rows hitting".into(),
                "largest share of its n-grams".into(),
                "rows".into(),
            ],
            numeric: vec![1, 2],
            ..Table::default()
        };
        for (id, rows, share, first) in &r.top_items {
            let more = if *rows > first.len() { ", …" } else { "" };
            items.rows.push(vec![
                id.clone(),
                rows.to_string(),
                format!("{:.1}%", 100.0 * share),
                format!("{}{more}", first.join(", ")),
            ]);
        }
        section.push(Block::Text(format!("Most-hit items of {}:", r.reference)));
        section.push(Block::Table(items));
    }
    section
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Report;

    #[test]
    fn dups_section_shows_the_histogram_and_clusters_side_by_side() {
        let view = DupsView {
            rows: 10,
            exact_duplicates: 1,
            near_pairs: 2,
            clusters: 1,
            dropped: 2,
            candidates: 3,
            threshold: 0.8,
            banding: "21 bands × 6 rows".into(),
            normalization: "lowercase".into(),
            candidate_similarities: vec![0.5, 0.85, 0.97],
            largest: vec![ClusterView {
                keep: "7".into(),
                members: vec![
                    ("7".into(), "a <b>".into(), None),
                    ("9".into(), "a b".into(), Some(0.9)),
                ],
                size: 2,
            }],
        };
        let mut report = Report::new("Audit");
        report.push(dups_section(&view));
        let html = report.to_html();
        assert!(html.contains("<svg"));
        assert!(html.contains("a &lt;b&gt;"), "texts are escaped");
        assert!(html.contains("9 (Jaccard with kept 0.900)"));
        assert!(html.contains("7 (kept)") && html.contains("class=\"row\""));
        assert_eq!(histogram(&[0.0, 0.99, 1.0, 0.5], 20)[19], 2);
    }
}
