//! The HTML report of task QC.

use assay_quality::metrics::DEFAULT_ECE_BINS;
use assay_report::{svg, Block, Card, Report, Section, Table as HtmlTable, Tone};

use super::{audit_text, threshold_text, Data, Qc, Settings, CONFUSION_MAX};
use crate::{pct, RELIABILITY_BINS};

/// The self-contained HTML report: the model against gold with its plots, the confusion matrix, unusable rows.
pub fn html_report(settings: &Settings, d: &Data, qc: &Qc) -> Report {
    let mut report = Report::new(format!("Quality control: {}", settings.task.display()));
    report.fact("labels", settings.labels.display().to_string());
    report.fact("gold column", settings.gold.clone());
    report.fact("rows compared", qc.n.to_string());
    report.fact("rows without gold", d.no_gold.to_string());
    report.fact(
        "rows left out (the calibration was fitted on them)",
        d.fit_rows.to_string(),
    );
    report.fact("unusable rows", d.bad_rows.len().to_string());

    let mut s = Section::new("Model against gold");
    s.push(Block::Cards(cards(settings, d, qc)));
    s.push(Block::Row(vec![
        Block::Figure {
            svg: svg::line_chart(&reliability(qc)),
            caption: format!(
                "Reliability diagram: accuracy against mean confidence in {RELIABILITY_BINS} equal-width bins; \
                 marker area follows the number of rows. Points under the diagonal are overconfident."
            ),
        },
        Block::Figure {
            svg: svg::line_chart(&coverage(qc)),
            caption: format!("Accuracy against coverage; {}.", threshold_text(settings, qc)),
        },
    ]));
    report.push(s);

    let mut s = Section::new("Confusion");
    s.push(Block::Figure {
        svg: svg::confusion_matrix(&qc.confusion),
        caption: if d.labels.len() > CONFUSION_MAX {
            format!(
                "Gold (rows) against the model (columns), the {} most frequent gold labels; the rest pooled.",
                CONFUSION_MAX - 1
            )
        } else {
            "Gold (rows) against the model (columns).".into()
        },
    });
    report.push(s);

    if !d.bad_rows.is_empty() {
        let mut s = Section::new("Unusable rows");
        s.push(Block::Table(HtmlTable {
            header: vec!["row".into(), "reason".into()],
            rows: d
                .bad_rows
                .iter()
                .map(|(r, why)| vec![r.to_string(), why.clone()])
                .collect(),
            numeric: vec![0],
            highlight: Vec::new(),
        }));
        report.push(s);
    }
    report
}

/// Accuracy, ECE, the threshold for the target accuracy and the audit of what it accepts.
fn cards(settings: &Settings, d: &Data, qc: &Qc) -> Vec<Card> {
    let mut cards = vec![
        Card::new("accuracy", pct(qc.accuracy)).detail(format!(
            "{} rows, {} labels",
            qc.n,
            d.labels.len()
        )),
        Card::new("ECE", format!("{:.3}", qc.ece))
            .detail(format!("{DEFAULT_ECE_BINS} equal-width bins")),
        match qc.threshold {
            Some((t, coverage)) => Card::new(
                format!("threshold for {} accuracy", pct(settings.target_accuracy)),
                format!("{t:.4}"),
            )
            .detail(format!("coverage {}", pct(coverage)))
            .tone(Tone::Good),
            None => Card::new(
                format!("threshold for {} accuracy", pct(settings.target_accuracy)),
                "none",
            )
            .detail("no threshold reaches it")
            .tone(Tone::Warn),
        },
    ];
    if let Some(a) = &qc.audit {
        cards.push(
            Card::new(
                "auto-accepted audit",
                if a.decision.passed { "pass" } else { "fail" },
            )
            .detail(audit_text(settings, a))
            .tone(if a.decision.passed {
                Tone::Good
            } else {
                Tone::Bad
            }),
        );
    }
    cards
}

/// The reliability diagram's chart.
fn reliability(qc: &Qc) -> svg::LineChart {
    svg::LineChart {
        series: vec![svg::Series {
            name: "model".into(),
            points: qc
                .bins
                .iter()
                .filter(|b| b.count > 0)
                .map(|b| svg::Point {
                    x: b.mean_confidence,
                    y: b.accuracy,
                    weight: b.count as f64,
                })
                .collect(),
        }],
        x_label: "confidence".into(),
        y_label: "accuracy".into(),
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        diagonal: true,
        weight_label: "items".into(),
        markers_only: true,
    }
}

/// The accuracy-vs-coverage chart.
fn coverage(qc: &Qc) -> svg::LineChart {
    let lowest = qc.curve.iter().map(|p| p.accuracy).fold(1.0, f64::min);
    svg::LineChart {
        series: vec![svg::Series {
            name: "model".into(),
            points: qc
                .curve
                .iter()
                .map(|p| svg::Point {
                    x: p.coverage,
                    y: p.accuracy,
                    weight: 1.0,
                })
                .collect(),
        }],
        x_label: "coverage (share of rows kept, most confident first)".into(),
        y_label: "accuracy".into(),
        x_range: (0.0, 1.0),
        y_range: ((((lowest - 0.05) * 10.0).floor() / 10.0).max(0.0), 1.0),
        diagonal: false,
        weight_label: String::new(),
        markers_only: false,
    }
}
