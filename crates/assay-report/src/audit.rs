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

/// Values per group of rows: `(group, values)`.
pub type Groups = Vec<(String, Vec<f64>)>;

/// The figures of one `assay audit source` run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceView {
    /// Rows checked, and rows in the input.
    pub rows: (usize, usize),
    /// Rows flagged as model-written, with the 95% Wilson interval of the share, when a threshold was chosen.
    pub flagged: Option<(usize, (f64, f64))>,
    /// The threshold, as a sentence (value, rates on the fitting and held-out halves), if one was chosen.
    pub threshold: Option<(f64, String)>,
    /// Headline figures on labeled rows: `(what, value)`, e.g. AUROC and attribution accuracy.
    pub figures: Vec<(String, String)>,
    /// The detectors side by side: `(detector, AUROC on all labeled rows, AUROC on the held-out half)`.
    pub detectors: Vec<(String, Option<f64>, Option<f64>)>,
    /// The combined score of each group of rows (`human`, a model's name, `unlabeled`).
    pub combined: Groups,
    /// Per reference model: its name, its detector's name and values per group.
    pub per_model: Vec<(String, String, Groups)>,
}

/// Each group's values as a histogram line (share of the group's rows per bin), over a shared range.
fn distribution_chart(
    groups: &[(String, Vec<f64>)],
    x_label: &str,
    threshold: Option<f64>,
) -> Option<String> {
    use crate::svg::{line_chart, LineChart, Point, Series};
    let all: Vec<f64> = groups
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    if all.is_empty() {
        return None;
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let bins = 24;
    let width = (hi - lo) / bins as f64;
    let mut top: f64 = 0.0;
    let mut series: Vec<Series> = groups
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, values)| {
            let mut counts = vec![0usize; bins];
            for &v in values.iter().filter(|v| v.is_finite()) {
                counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
            }
            let points = counts
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let share = c as f64 / values.len() as f64;
                    top = top.max(share);
                    Point {
                        x: lo + (i as f64 + 0.5) * width,
                        y: share,
                        weight: c as f64,
                    }
                })
                .collect();
            Series {
                name: format!("{name} ({} rows)", values.len()),
                points,
            }
        })
        .collect();
    if let Some(t) = threshold.filter(|t| t.is_finite()) {
        series.push(Series {
            name: format!("threshold {t:.3}"),
            points: vec![
                Point {
                    x: t,
                    y: 0.0,
                    weight: 0.0,
                },
                Point {
                    x: t,
                    y: top,
                    weight: 0.0,
                },
            ],
        });
    }
    Some(line_chart(&LineChart {
        series,
        x_label: x_label.into(),
        y_label: "share of the group's rows".into(),
        x_range: (
            lo.min(threshold.unwrap_or(lo)),
            hi.max(threshold.unwrap_or(hi)),
        ),
        y_range: (0.0, top.max(1e-9)),
        diagonal: false,
        weight_label: "rows".into(),
        markers_only: false,
    }))
}

/// The section of `assay audit source`: headline figures, the detectors side by side, and the score
/// distributions of each group of rows.
pub fn source_section(view: &SourceView) -> Section {
    let mut section = Section::new("Text from other models");
    let mut cards = vec![Card::new("rows checked", view.rows.0.to_string())
        .detail(format!("of {} in the input", view.rows.1))];
    if let Some((n, (lo, hi))) = view.flagged {
        let share = if view.rows.0 == 0 {
            0.0
        } else {
            n as f64 / view.rows.0 as f64
        };
        cards.push(
            Card::new("flagged as model-written", n.to_string()).detail(format!(
                "{:.1}% (95% Wilson {:.1}%–{:.1}%)",
                share * 100.0,
                lo * 100.0,
                hi * 100.0
            )),
        );
    }
    for (what, value) in &view.figures {
        cards.push(Card::new(what.clone(), value.clone()));
    }
    section.push(Block::Cards(cards));
    match &view.threshold {
        Some((_, text)) => section.push(Block::Text(text.clone())),
        None => section.push(Block::Text(
            "No threshold: no labeled rows (--label-column) to choose one on, so nothing is flagged.".into(),
        )),
    }
    if !view.detectors.is_empty() {
        let fmt = |a: &Option<f64>| a.map_or("–".to_string(), |a| format!("{a:.3}"));
        section.push(Block::Table(Table {
            header: vec![
                "detector".into(),
                "AUROC, labeled rows".into(),
                "AUROC, held-out half".into(),
            ],
            rows: view
                .detectors
                .iter()
                .map(|(name, all, held)| vec![name.clone(), fmt(all), fmt(held)])
                .collect(),
            numeric: vec![1, 2],
            highlight: vec![0],
        }));
    }
    let threshold = view.threshold.as_ref().map(|(t, _)| *t);
    if let Some(svg) = distribution_chart(&view.combined, "combined score", threshold) {
        section.push(Block::Figure {
            svg,
            caption: "The combined score of each group of rows (higher: more like a reference model's own \
                      text), with the flag threshold."
                .into(),
        });
    }
    let figures: Vec<Block> = view
        .per_model
        .iter()
        .filter_map(|(model, detector, groups)| {
            distribution_chart(groups, detector, None).map(|svg| Block::Figure {
                svg,
                caption: format!("{detector} under {model}, per group of rows."),
            })
        })
        .collect();
    if !figures.is_empty() {
        section.push(Block::Row(figures));
    }
    section
}

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn the_source_section_plots_each_group_and_the_threshold() {
        let view = SourceView {
            rows: (6, 10),
            flagged: Some((3, (0.2, 0.8))),
            threshold: Some((0.5, "flag at 0.5".into())),
            figures: vec![("AUROC".into(), "0.900".into())],
            detectors: vec![("combined".into(), Some(0.9), Some(0.8))],
            combined: vec![
                ("human".into(), vec![-1.0, 0.0, 0.2]),
                ("smollm2".into(), vec![1.0, 2.0, 3.0]),
            ],
            per_model: vec![(
                "smollm2".into(),
                "curvature".into(),
                vec![("human".into(), vec![0.1]), ("smollm2".into(), vec![2.0])],
            )],
        };
        let section = source_section(&view);
        let figures: Vec<&String> = section
            .blocks
            .iter()
            .flat_map(|b| match b {
                Block::Figure { svg, .. } => vec![svg],
                Block::Row(blocks) => blocks
                    .iter()
                    .filter_map(|b| match b {
                        Block::Figure { svg, .. } => Some(svg),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            })
            .collect();
        assert_eq!(figures.len(), 2);
        assert!(figures[0].contains("human (3 rows)") && figures[0].contains("threshold 0.500"));
        assert!(figures[1].contains("smollm2 (1 rows)"));
        assert!(section
            .blocks
            .iter()
            .any(|b| matches!(b, Block::Table(t) if t.rows[0][2] == "0.800")));
    }

    #[test]
    fn no_values_draw_no_chart() {
        assert!(distribution_chart(&[("human".into(), vec![])], "x", None).is_none());
    }
}
