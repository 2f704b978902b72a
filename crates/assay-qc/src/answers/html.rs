//! The HTML report of answer-file QC.

use assay_quality::annotators::{AnnotatorOptions, AnnotatorReport, AnnotatorScore, FlagBasis};
use assay_quality::metrics::DEFAULT_ECE_BINS;
use assay_report::{svg, Block, Card, Report, Section, Table as HtmlTable, Tone};

use super::{alpha_title, annotator_cells, annotator_order, Data, Pairwise, Qc, Settings};
use crate::{level_name, pct, RELIABILITY_BINS};

/// The self-contained HTML report: agreement, aggregation, confidence, annotators, audit, input problems.
pub fn html_report(settings: &Settings, d: &Data, qc: &Qc) -> Report {
    let mut report = Report::new("assay qc");
    report.fact("annotations", settings.annotations.display().to_string());
    if let Some(g) = &settings.gold {
        report.fact("gold", g.display().to_string());
    }
    report.fact("alpha level", level_name(settings.level));
    report.fact(
        "audit target",
        format!(
            "error < {} at {:.0}% confidence",
            pct(settings.target_error),
            100.0 * settings.confidence
        ),
    );
    report.fact("assay", env!("CARGO_PKG_VERSION"));
    report.push(agreement(settings, d, qc));
    report.push(aggregation(d, qc));
    if !qc.confidence.is_empty() {
        report.push(confidence(qc));
    }
    report.push(annotators(d, qc));
    report.push(audit(settings, qc));
    if !d.bad_rows.is_empty() || d.repeats > 0 || d.gold_unmatched > 0 {
        report.push(input_problems(d));
    }
    report
}

fn kappa_tone(x: &Result<f64, String>) -> Tone {
    match x {
        Ok(k) if *k >= 0.6 => Tone::Good,
        Ok(k) if *k >= 0.4 => Tone::Neutral,
        Ok(_) => Tone::Warn,
        Err(_) => Tone::Neutral,
    }
}

fn value_or_na(x: &Result<f64, String>) -> (String, String) {
    match x {
        Ok(v) => (format!("{v:.3}"), String::new()),
        Err(e) => ("n/a".into(), e.clone()),
    }
}

fn confusion(
    d: &Data,
    pairs: impl Iterator<Item = (usize, usize)>,
    rows: &str,
    columns: &str,
) -> svg::Confusion {
    let k = d.labels.len();
    let mut counts = vec![vec![0u64; k]; k];
    for (r, c) in pairs {
        counts[r][c] += 1;
    }
    svg::Confusion {
        labels: d.labels.clone(),
        counts,
        row_title: rows.into(),
        column_title: columns.into(),
    }
}

/// Overview cards, the agreement measures, and every pair's kappa for few annotators.
fn agreement(settings: &Settings, d: &Data, qc: &Qc) -> Section {
    let mut s = Section::new("Agreement");
    let mut cards = vec![
        Card::new("items", d.items.len().to_string()).detail(match &qc.gold {
            Some(g) => format!("{} with gold", g.gold_items),
            None => "no gold labels".into(),
        }),
        Card::new("annotators", d.annotators.len().to_string()),
        Card::new("answers", d.answers.len().to_string()).detail(format!(
            "{:.1} per item; labels {}",
            d.answers.len() as f64 / d.items.len() as f64,
            d.labels.join(", ")
        )),
    ];
    for (label, x) in [
        ("percent agreement", &qc.percent),
        ("Fleiss' kappa", &qc.fleiss),
        (&*alpha_title(settings.level), &qc.alpha),
    ] {
        let (value, detail) = value_or_na(x);
        let tone = if label == "percent agreement" {
            Tone::Neutral
        } else {
            kappa_tone(x)
        };
        cards.push(Card::new(label, value).detail(detail).tone(tone));
    }
    match &qc.pairwise {
        Pairwise::Summary {
            min_shared,
            pairs,
            mean,
            min,
            ..
        } => cards.push(
            Card::new("pairwise Cohen's kappa", format!("{mean:.3}")).detail(format!(
                "mean of {pairs} pairs sharing >= {min_shared} items; lowest {:.3}",
                min.0
            )),
        ),
        Pairwise::None { min_shared } => cards.push(
            Card::new("pairwise Cohen's kappa", "n/a")
                .detail(format!("no pair shares {min_shared} items")),
        ),
        Pairwise::Matrix(_) => {}
    }
    s.push(Block::Cards(cards));
    if let Pairwise::Matrix(m) = &qc.pairwise {
        if d.annotators.len() >= 2 {
            s.push(Block::Text(
                "Cohen's kappa between each pair of annotators, on the items both answered (shared items in \
                 brackets)."
                    .into(),
            ));
            s.push(Block::Table(pair_table(d, m)));
        }
    }
    s
}

/// Every pair's kappa with the shared items in brackets.
fn pair_table(d: &Data, m: &[Vec<super::PairCell>]) -> HtmlTable {
    let mut header = vec![String::new()];
    header.extend(d.annotators.iter().cloned());
    let rows = m
        .iter()
        .enumerate()
        .map(|(a, row)| {
            let mut cells = vec![d.annotators[a].clone()];
            cells.extend(row.iter().enumerate().map(|(b, cell)| match cell {
                _ if a == b => "-".into(),
                None => "-".into(),
                Some((Some(k), n)) => format!("{k:.3} ({n})"),
                Some((None, n)) => format!("n/a ({n})"),
            }));
            cells
        })
        .collect();
    HtmlTable {
        header,
        rows,
        numeric: (1..=d.annotators.len()).collect(),
        highlight: Vec::new(),
    }
}

/// Majority vote and Dawid-Skene, against gold or against each other.
fn aggregation(d: &Data, qc: &Qc) -> Section {
    let mut s = Section::new("Majority vote and Dawid-Skene");
    let labelled = qc.votes.iter().filter(|v| v.label.is_some()).count();
    let mut cards = Vec::new();
    match &qc.gold {
        Some(g) => {
            cards.push(
                Card::new("majority vote vs gold", pct(g.mv_untied.rate())).detail(format!(
                    "{}/{} labelled items; {} ties; {} over all gold items",
                    g.mv_untied.right,
                    g.mv_untied.total,
                    g.ties,
                    pct(g.mv_all.rate())
                )),
            );
            cards.push(
                Card::new("Dawid-Skene vs gold", pct(g.ds.rate())).detail(format!(
                    "{}/{} gold items; {} EM iterations",
                    g.ds.right, g.ds.total, qc.ds.iterations
                )),
            );
        }
        None => cards.push(
            Card::new("majority-labelled items", labelled.to_string())
                .detail(format!("{} ties", qc.ties)),
        ),
    }
    cards.push(
        Card::new("majority vote = Dawid-Skene", pct(qc.mv_ds.rate())).detail(format!(
            "{}/{} majority-labelled items",
            qc.mv_ds.right, qc.mv_ds.total
        )),
    );
    s.push(Block::Cards(cards));
    s.push(Block::Row(aggregation_figures(d, qc)));
    s
}

/// The confusion matrices: majority vote and Dawid-Skene against gold, or against each other without gold.
fn aggregation_figures(d: &Data, qc: &Qc) -> Vec<Block> {
    if d.gold.is_empty() {
        let m = confusion(
            d,
            qc.votes
                .iter()
                .zip(&qc.ds.labels)
                .filter_map(|(v, l)| Some((v.label?, (*l)?))),
            "majority vote",
            "Dawid-Skene",
        );
        return vec![Block::Figure {
            svg: svg::confusion_matrix(&m),
            caption: "Dawid-Skene against majority vote on the items majority vote labels (no gold given)."
                .into(),
        }];
    }
    let mv = confusion(
        d,
        d.gold
            .iter()
            .zip(&qc.votes)
            .filter_map(|(g, v)| Some(((*g)?, v.label?))),
        "gold",
        "majority vote",
    );
    let ds = confusion(
        d,
        d.gold
            .iter()
            .zip(&qc.ds.labels)
            .filter_map(|(g, l)| Some(((*g)?, (*l)?))),
        "gold",
        "Dawid-Skene",
    );
    vec![
        Block::Figure {
            svg: svg::confusion_matrix(&mv),
            caption: format!(
                "Majority vote against gold on the {} gold items it labels (ties left out). Rows are gold; \
                 shading is the share of the row.",
                qc.gold.as_ref().map_or(0, |g| g.mv_untied.total)
            ),
        },
        Block::Figure {
            svg: svg::confusion_matrix(&ds),
            caption: "Dawid-Skene against gold on all gold items.".into(),
        },
    ]
}

/// ECE cards, the reliability diagram and the accuracy-vs-coverage curves on gold items.
fn confidence(qc: &Qc) -> Section {
    let mut s = Section::new("Confidence against gold");
    let reliability = svg::LineChart {
        series: qc
            .confidence
            .iter()
            .map(|c| svg::Series {
                name: c.name.into(),
                points: c
                    .bins
                    .iter()
                    .filter(|b| b.count > 0)
                    .map(|b| svg::Point {
                        x: b.mean_confidence,
                        y: b.accuracy,
                        weight: b.count as f64,
                    })
                    .collect(),
            })
            .collect(),
        x_label: "confidence".into(),
        y_label: "accuracy".into(),
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        diagonal: true,
        weight_label: "items".into(),
        markers_only: true,
    };
    let lowest = qc
        .confidence
        .iter()
        .flat_map(|c| c.coverage.iter().map(|p| p.1))
        .fold(1.0, f64::min);
    let coverage = svg::LineChart {
        series: qc
            .confidence
            .iter()
            .map(|c| svg::Series {
                name: c.name.into(),
                points: c
                    .coverage
                    .iter()
                    .map(|&(x, y)| svg::Point { x, y, weight: 1.0 })
                    .collect(),
            })
            .collect(),
        x_label: "coverage (share of items kept, most confident first)".into(),
        y_label: "accuracy".into(),
        x_range: (0.0, 1.0),
        y_range: (((lowest - 0.05) * 10.0).floor() / 10.0, 1.0),
        diagonal: false,
        weight_label: String::new(),
        markers_only: false,
    };
    s.push(Block::Cards(
        qc.confidence
            .iter()
            .map(|c| {
                Card::new(format!("{} ECE", c.name), format!("{:.3}", c.ece)).detail(format!(
                    "{DEFAULT_ECE_BINS} bins over {} gold items; confidence is {}",
                    c.items,
                    if c.name == "Dawid-Skene" {
                        "the posterior of the chosen label"
                    } else {
                        "the share of votes for the winner"
                    }
                ))
            })
            .collect(),
    ));
    s.push(Block::Row(vec![
        Block::Figure {
            svg: svg::line_chart(&reliability),
            caption: format!(
                "Reliability diagram: accuracy against mean confidence in {RELIABILITY_BINS} equal-width bins; \
                 marker area follows the number of items. Points under the diagonal are overconfident."
            ),
        },
        Block::Figure {
            svg: svg::line_chart(&coverage),
            caption: "Accuracy against coverage: keeping only the most confident labels.".into(),
        },
    ]));
    s
}

/// The accuracy the flag used (or would use), and its name.
fn flag_basis(d: &Data, r: &AnnotatorReport) -> (FlagBasis, &'static str) {
    let basis = r.flag_basis.unwrap_or(if d.gold.is_empty() {
        FlagBasis::DawidSkene
    } else {
        FlagBasis::Gold
    });
    let name = match basis {
        FlagBasis::Gold => "accuracy on gold items",
        FlagBasis::DawidSkene => "Dawid-Skene estimated accuracy",
    };
    (basis, name)
}

/// Who was flagged and why, a bar per annotator, and the table of every annotator.
fn annotators(d: &Data, qc: &Qc) -> Section {
    let mut s = Section::new("Annotators");
    let r = &qc.annotators;
    let (_, basis_name) = flag_basis(d, r);
    let flagged = r.scores.iter().filter(|s| s.flagged).count();
    s.push(Block::Text(match (r.flag_basis, r.median, r.cutoff) {
        (Some(_), Some(median), Some(cutoff)) => format!(
            "{flagged} of {} annotators flagged: {basis_name} below {cutoff:.3}, i.e. more than {} median absolute \
             deviations (at least {}) under the median {median:.3}.",
            d.annotators.len(),
            AnnotatorOptions::default().mad_threshold,
            AnnotatorOptions::default().min_gap
        ),
        _ => "Nobody flagged: fewer than three annotators have enough answers to judge.".into(),
    }));
    if let Some(figure) = accuracy_bars(d, r) {
        s.push(figure);
    }
    let order = annotator_order(qc);
    s.push(Block::Table(HtmlTable {
        header: [
            "annotator",
            "answers",
            "gold accuracy (gold answers)",
            "peer kappa",
            "DS accuracy",
            "mean seconds",
            "flag",
        ]
        .iter()
        .map(|h| h.to_string())
        .collect(),
        rows: order
            .iter()
            .map(|&j| annotator_cells(d, &r.scores[j]))
            .collect(),
        numeric: vec![1, 2, 3, 4, 5],
        highlight: order
            .iter()
            .enumerate()
            .filter(|(_, &j)| r.scores[j].flagged)
            .map(|(i, _)| i)
            .collect(),
    }));
    s
}

/// Each annotator's accuracy as a bar, best first, with the median and the cutoff; `None` without accuracies.
fn accuracy_bars(d: &Data, r: &AnnotatorReport) -> Option<Block> {
    let (basis, basis_name) = flag_basis(d, r);
    let accuracy_of = |s: &AnnotatorScore| match basis {
        FlagBasis::Gold => s.gold_accuracy,
        FlagBasis::DawidSkene => s.dawid_skene_accuracy,
    };
    let mut bars: Vec<(f64, usize)> = r
        .scores
        .iter()
        .filter_map(|s| accuracy_of(s).map(|a| (a, s.annotator)))
        .collect();
    bars.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let lowest = bars.last()?.0;
    let mut references = Vec::new();
    if let Some(m) = r.median {
        references.push(svg::Reference {
            label: format!("median {m:.3}"),
            value: m,
        });
    }
    if let Some(c) = r.cutoff {
        references.push(svg::Reference {
            label: format!("flag cutoff {c:.3}"),
            value: c,
        });
    }
    let chart = svg::BarChart {
        bars: bars
            .iter()
            .map(|&(a, j)| {
                let sc = &r.scores[j];
                svg::Bar {
                    label: d.annotators[j].clone(),
                    value: a,
                    highlight: sc.flagged,
                    note: format!(
                        "{} answers{}",
                        sc.answers,
                        if basis == FlagBasis::Gold {
                            format!(", {} on gold", sc.gold_answers)
                        } else {
                            String::new()
                        }
                    ),
                }
            })
            .collect(),
        y_label: basis_name.into(),
        y_range: Some((if lowest >= 0.5 { 0.5 } else { 0.0 }, 1.0)),
        references,
        highlight_label: "flagged".into(),
    };
    Some(Block::Figure {
        svg: svg::bar_chart(&chart),
        caption: format!(
            "Each annotator's {basis_name}, best first; flagged annotators in red. Hover a bar for its \
             annotator and answer count."
        ),
    })
}

/// The audit of the majority labels, and the zero-defect sample size.
fn audit(settings: &Settings, qc: &Qc) -> Section {
    let mut s = Section::new("Audit");
    let mut cards = Vec::new();
    match &qc.audit {
        Some(a) => {
            cards.push(
                Card::new("majority-label error rate", pct(a.decision.observed_rate))
                    .detail(format!("{} of {} gold items", a.errors, a.sampled)),
            );
            cards.push(
                Card::new(
                    "Wilson 95% interval",
                    format!("{} – {}", pct(a.interval.lower), pct(a.interval.upper)),
                )
                .detail("two-sided, of the error rate"),
            );
            cards.push(
                Card::new(
                    "verdict",
                    if a.decision.passed { "PASS" } else { "FAIL" },
                )
                .detail(format!(
                    "one-sided {:.0}% upper bound {} vs target {}",
                    100.0 * a.decision.confidence,
                    pct(a.decision.upper_bound),
                    pct(a.decision.target)
                ))
                .tone(if a.decision.passed {
                    Tone::Good
                } else {
                    Tone::Bad
                }),
            );
        }
        None => s.push(Block::Text(
            "No gold labels were given, so the majority labels cannot be audited here; check a random sample of \
             the size below by hand."
                .into(),
        )),
    }
    cards.push(
        Card::new("zero-defect sample", format!("{} items", qc.zero_defect)).detail(format!(
            "with no error among them, error < {} at {:.0}% confidence",
            pct(settings.target_error),
            100.0 * settings.confidence
        )),
    );
    s.push(Block::Cards(cards));
    s
}

/// Repeated answers, gold rows without answers, and the rows left out.
fn input_problems(d: &Data) -> Section {
    let mut s = Section::new("Input problems");
    if d.repeats > 0 {
        s.push(Block::Text(format!(
            "{} repeated answers (same annotator, same item): agreement uses each annotator's first, \
             aggregation counts all.",
            d.repeats
        )));
    }
    if d.gold_unmatched > 0 {
        s.push(Block::Text(format!(
            "{} gold rows name items without answers and were left out.",
            d.gold_unmatched
        )));
    }
    if !d.bad_rows.is_empty() {
        s.push(Block::Table(HtmlTable {
            header: vec!["file".into(), "row".into(), "reason".into()],
            rows: d
                .bad_rows
                .iter()
                .map(|b| vec![b.file.to_string(), b.row.to_string(), b.reason.clone()])
                .collect(),
            numeric: vec![1],
            highlight: Vec::new(),
        }));
    }
    s
}
