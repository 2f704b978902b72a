//! Plots as standalone `<svg>` elements: a confusion matrix, a bar chart with reference lines, and a line chart
//! (used for reliability diagrams and accuracy against coverage).
//!
//! Each plot sizes itself with a `viewBox`, so it scales to the width of its container; every mark carries a
//! `<title>` so hovering shows the exact number. Colours come from a small palette that stays legible in print.

use std::fmt::Write as _;

use crate::escape;

/// Series colours, in order.
pub const PALETTE: [&str; 6] = [
    "#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2",
];
const AXIS: &str = "#52606d";
const GRID: &str = "#e4e7eb";
const BAD: &str = "#c8372d";

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e9 {
        format!("{x:.0}")
    } else {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// A confusion matrix: `counts[row][column]`, rows one source (e.g. gold), columns another.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Confusion {
    /// Class names, in row and column order.
    pub labels: Vec<String>,
    /// `labels.len()` rows of `labels.len()` counts.
    pub counts: Vec<Vec<u64>>,
    /// What the rows are, e.g. "gold".
    pub row_title: String,
    /// What the columns are, e.g. "majority vote".
    pub column_title: String,
}

/// Draws a confusion matrix: each cell shows its count and its share of the row; the shade follows that share,
/// blue on the diagonal (agreement) and red off it (confusion).
pub fn confusion_matrix(c: &Confusion) -> String {
    let k = c.labels.len().max(1);
    let cell = (440.0 / k as f64).clamp(18.0, 84.0);
    let left = 130.0;
    let top = 70.0;
    let width = left + cell * k as f64 + 20.0;
    let height = top + cell * k as f64 + 20.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot confusion\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         role=\"img\" aria-label=\"confusion matrix: {} (rows) against {} (columns)\" \
         style=\"max-width:{width:.0}px\">",
        escape(&c.row_title),
        escape(&c.column_title)
    );
    let label_size = if cell < 30.0 { 9 } else { 12 };
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\" fill=\"{AXIS}\">{}</text>",
        left + cell * k as f64 / 2.0,
        escape(&c.column_title)
    );
    let _ = write!(
        s,
        "<text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\" fill=\"{AXIS}\" \
         transform=\"rotate(-90 14 {:.1})\">{}</text>",
        top + cell * k as f64 / 2.0,
        top + cell * k as f64 / 2.0,
        escape(&c.row_title)
    );
    for (j, label) in c.labels.iter().enumerate() {
        let x = left + cell * (j as f64 + 0.5);
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"start\" font-size=\"{label_size}\" fill=\"{AXIS}\" \
             transform=\"rotate(-35 {x:.1} {:.1})\">{}</text>",
            top - 8.0,
            top - 8.0,
            escape(&shorten(label, 14))
        );
    }
    for (i, label) in c.labels.iter().enumerate() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\" font-size=\"{label_size}\" \
             fill=\"{AXIS}\">{}</text>",
            left - 8.0,
            top + cell * (i as f64 + 0.5),
            escape(&shorten(label, 16))
        );
    }
    for (i, row) in c.counts.iter().enumerate().take(k) {
        let total: u64 = row.iter().sum();
        for (j, &n) in row.iter().enumerate().take(k) {
            let share = if total > 0 {
                n as f64 / total as f64
            } else {
                0.0
            };
            let (r, g, b) = if i == j {
                (37.0, 99.0, 235.0)
            } else {
                (200.0, 55.0, 45.0)
            };
            // Blend from white to the colour by the share; a non-zero cell is always at least faintly shaded.
            let t = if n > 0 { 0.08 + 0.92 * share } else { 0.0 };
            let mix = |c: f64| (255.0 + (c - 255.0) * t).round() as u8;
            let x = left + cell * j as f64;
            let y = top + cell * i as f64;
            let _ = write!(
                s,
                "<g class=\"cell\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell:.1}\" height=\"{cell:.1}\" \
                 fill=\"#{:02x}{:02x}{:02x}\" stroke=\"#ffffff\" stroke-width=\"1.5\"><title>{}: {}, {}: {}: {n} \
                 ({:.1}% of the row)</title></rect>",
                mix(r),
                mix(g),
                mix(b),
                escape(&c.row_title),
                escape(&c.labels[i]),
                escape(&c.column_title),
                escape(&c.labels[j]),
                100.0 * share
            );
            if cell >= 30.0 {
                let ink = if t > 0.55 { "#ffffff" } else { "#1f2933" };
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"{}\" font-weight=\"600\" \
                     fill=\"{ink}\">{n}</text>",
                    x + cell / 2.0,
                    y + cell / 2.0 + if cell >= 50.0 { 0.0 } else { 4.0 },
                    if cell >= 50.0 { 15 } else { 11 }
                );
                if cell >= 50.0 {
                    let _ = write!(
                        s,
                        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"{ink}\">{:.1}%</text>",
                        x + cell / 2.0,
                        y + cell / 2.0 + 16.0,
                        100.0 * share
                    );
                }
            }
            s.push_str("</g>");
        }
    }
    s.push_str("</svg>");
    s
}

/// One bar.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Bar {
    /// Name under the bar (shown when there are few bars) and in its tooltip.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Drawn in the warning colour (e.g. a flagged annotator).
    pub highlight: bool,
    /// Extra tooltip text, e.g. "312 answers".
    pub note: String,
}

impl Bar {
    /// A plain bar.
    pub fn new(label: impl Into<String>, value: f64) -> Self {
        Self {
            label: label.into(),
            value,
            ..Self::default()
        }
    }
}

/// A horizontal line across a bar chart, e.g. the median.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reference {
    /// Legend text.
    pub label: String,
    /// Height of the line.
    pub value: f64,
}

/// A vertical bar chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarChart {
    /// Bars, left to right.
    pub bars: Vec<Bar>,
    /// Title of the value axis.
    pub y_label: String,
    /// Lowest and highest value on the axis; `None` means 0 to 1.
    pub y_range: Option<(f64, f64)>,
    /// Dashed lines across the chart.
    pub references: Vec<Reference>,
    /// Legend entry for highlighted bars, e.g. "flagged".
    pub highlight_label: String,
}

/// Draws a bar chart. With more than 40 bars the names are left to the tooltips.
pub fn bar_chart(chart: &BarChart) -> String {
    let (y0, y1) = chart.y_range.unwrap_or((0.0, 1.0));
    let span = if y1 > y0 { y1 - y0 } else { 1.0 };
    let n = chart.bars.len().max(1);
    let named = chart.bars.len() <= 40;
    let longest = chart
        .bars
        .iter()
        .map(|b| b.label.chars().count().min(16))
        .max()
        .unwrap_or(0);
    let (left, right, top) = (58.0, 16.0, 34.0);
    let bottom = if named {
        24.0 + 6.0 * longest as f64
    } else {
        30.0
    };
    let plot_w = 660.0;
    let plot_h = 260.0;
    let width = left + plot_w + right;
    let height = top + plot_h + bottom;
    let y_of = |v: f64| top + plot_h - ((v - y0) / span).clamp(0.0, 1.0) * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot bars\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         role=\"img\" aria-label=\"bar chart of {}\">",
        escape(&chart.y_label)
    );
    axes_y(&mut s, left, top, plot_w, plot_h, y0, y1, &chart.y_label);
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.78).max(1.0);
    for (i, bar) in chart.bars.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let y = y_of(bar.value);
        let base = y_of(y0.max(0.0).min(y1));
        let (ry, rh) = if y <= base {
            (y, base - y)
        } else {
            (base, y - base)
        };
        let fill = if bar.highlight { BAD } else { PALETTE[0] };
        let note = if bar.note.is_empty() {
            String::new()
        } else {
            format!(", {}", bar.note)
        };
        let _ = write!(
            s,
            "<rect class=\"bar{}\" x=\"{x:.2}\" y=\"{ry:.2}\" width=\"{bar_w:.2}\" height=\"{:.2}\" fill=\"{fill}\" \
             rx=\"{:.1}\"><title>{}: {}{}</title></rect>",
            if bar.highlight { " highlight" } else { "" },
            rh.max(0.5),
            (bar_w / 6.0).min(2.0),
            escape(&bar.label),
            fmt_num(bar.value),
            escape(&note)
        );
        if named {
            let cx = x + bar_w / 2.0;
            let ly = top + plot_h + 12.0;
            let _ = write!(
                s,
                "<text x=\"{cx:.1}\" y=\"{ly:.1}\" text-anchor=\"end\" font-size=\"10.5\" fill=\"{AXIS}\" \
                 transform=\"rotate(-40 {cx:.1} {ly:.1})\">{}</text>",
                escape(&shorten(&bar.label, 16))
            );
        }
    }
    let mut legend_x = left + 8.0;
    for (i, r) in chart.references.iter().enumerate() {
        let y = y_of(r.value);
        let colour = PALETTE[(i + 1) % PALETTE.len()];
        let _ = write!(
            s,
            "<line x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"1.6\" \
             stroke-dasharray=\"6 4\"><title>{}: {}</title></line>",
            left + plot_w,
            escape(&r.label),
            fmt_num(r.value)
        );
        legend_x = legend_item(&mut s, legend_x, 14.0, colour, &r.label, true);
    }
    if chart.bars.iter().any(|b| b.highlight) && !chart.highlight_label.is_empty() {
        legend_item(&mut s, legend_x, 14.0, BAD, &chart.highlight_label, false);
    }
    s.push_str("</svg>");
    s
}

/// Draws a legend entry at (x, y) and returns where the next one starts.
fn legend_item(s: &mut String, x: f64, y: f64, colour: &str, label: &str, dashed: bool) -> f64 {
    if dashed {
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2\" \
             stroke-dasharray=\"5 3\"/>",
            x + 20.0
        );
    } else {
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{colour}\"/>",
            x + 4.0,
            y - 6.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"{AXIS}\">{}</text>",
        x + 26.0,
        y + 4.0,
        escape(label)
    );
    x + 40.0 + 6.5 * label.chars().count() as f64
}

/// Ticks for an axis from `lo` to `hi`: about five round steps.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return vec![lo];
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn axes_y(s: &mut String, left: f64, top: f64, w: f64, h: f64, y0: f64, y1: f64, label: &str) {
    let span = if y1 > y0 { y1 - y0 } else { 1.0 };
    for t in ticks(y0, y1) {
        let y = top + h - (t - y0) / span * h;
        let _ = write!(
            s,
            "<line x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{GRID}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\" fill=\"{AXIS}\">{}</text>",
            left + w,
            left - 6.0,
            y + 4.0,
            fmt_num(t)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{left:.1}\" x2=\"{left:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\" stroke=\"{AXIS}\"/>\
         <line x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{AXIS}\"/>\
         <text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" fill=\"{AXIS}\" \
         transform=\"rotate(-90 14 {:.1})\">{}</text>",
        top + h,
        left + w,
        top + h,
        top + h,
        top + h / 2.0,
        top + h / 2.0,
        escape(label)
    );
}

/// A point of a [`Series`]; `weight` (e.g. the number of items in a reliability bin) sets the marker's size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
    /// Marker weight; 0 draws no marker.
    pub weight: f64,
}

/// A named line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, in drawing order.
    pub points: Vec<Point>,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    /// The lines.
    pub series: Vec<Series>,
    /// Title of the horizontal axis.
    pub x_label: String,
    /// Title of the vertical axis.
    pub y_label: String,
    /// Horizontal range.
    pub x_range: (f64, f64),
    /// Vertical range.
    pub y_range: (f64, f64),
    /// Draw the dashed `y = x` line (perfect calibration in a reliability diagram).
    pub diagonal: bool,
    /// What the marker weight means in tooltips, e.g. "items"; empty draws every marker small.
    pub weight_label: String,
    /// Draw markers only, no connecting line (a reliability diagram's bins are separate estimates).
    pub markers_only: bool,
}

/// Draws a line chart; markers are sized by the square root of their weight relative to the largest.
pub fn line_chart(chart: &LineChart) -> String {
    let (x0, x1) = chart.x_range;
    let (y0, y1) = chart.y_range;
    let xs = if x1 > x0 { x1 - x0 } else { 1.0 };
    let ys = if y1 > y0 { y1 - y0 } else { 1.0 };
    let (left, right, top, bottom) = (58.0, 16.0, 34.0, 44.0);
    let (w, h) = (420.0, 320.0);
    let width = left + w + right;
    let height = top + h + bottom;
    let px = |x: f64| left + ((x - x0) / xs).clamp(0.0, 1.0) * w;
    let py = |y: f64| top + h - ((y - y0) / ys).clamp(0.0, 1.0) * h;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot lines\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         role=\"img\" aria-label=\"{} against {}\" style=\"max-width:{:.0}px\">",
        escape(&chart.y_label),
        escape(&chart.x_label),
        width * 1.25
    );
    axes_y(&mut s, left, top, w, h, y0, y1, &chart.y_label);
    for t in ticks(x0, x1) {
        let x = px(t);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{:.1}\" stroke=\"{GRID}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"{AXIS}\">{}</text>",
            top + h,
            top + h + 16.0,
            fmt_num(t)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" fill=\"{AXIS}\">{}</text>",
        left + w / 2.0,
        top + h + 36.0,
        escape(&chart.x_label)
    );
    if chart.diagonal {
        let lo = x0.max(y0);
        let hi = x1.min(y1);
        if hi > lo {
            let _ = write!(
                s,
                "<line class=\"diagonal\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9aa5b1\" \
                 stroke-dasharray=\"5 4\"><title>perfect calibration</title></line>",
                px(lo),
                py(lo),
                px(hi),
                py(hi)
            );
        }
    }
    let max_weight = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.weight))
        .fold(0.0, f64::max);
    let mut legend_x = left + 8.0;
    for (i, series) in chart.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        if series.points.len() > 1 && !chart.markers_only {
            let path: Vec<String> = series
                .points
                .iter()
                .map(|p| format!("{:.1},{:.1}", px(p.x), py(p.y)))
                .collect();
            let _ = write!(
                s,
                "<polyline class=\"series\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" \
                 stroke-linejoin=\"round\"/>",
                path.join(" ")
            );
        }
        for p in &series.points {
            if p.weight <= 0.0 {
                continue;
            }
            let r = if max_weight > 0.0 && !chart.weight_label.is_empty() {
                2.5 + 5.5 * (p.weight / max_weight).sqrt()
            } else {
                3.0
            };
            let weight = if chart.weight_label.is_empty() {
                String::new()
            } else {
                format!(", {} {}", fmt_num(p.weight), chart.weight_label)
            };
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"{colour}\" fill-opacity=\"0.8\" \
                 stroke=\"#ffffff\"><title>{}: {} {}, {} {}{}</title></circle>",
                px(p.x),
                py(p.y),
                escape(&series.name),
                escape(&chart.x_label),
                fmt_num(p.x),
                escape(&chart.y_label),
                fmt_num(p.y),
                escape(&weight)
            );
        }
        legend_x = legend_item(&mut s, legend_x, 14.0, colour, &series.name, false);
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(0.0, 1.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        let t = ticks(0.5, 1.0);
        assert_eq!(t.first(), Some(&0.5));
        assert!((t.last().unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_confusion_matrix_has_one_cell_per_pair_with_its_count() {
        let svg = confusion_matrix(&Confusion {
            labels: vec!["a".into(), "b".into(), "c".into()],
            counts: vec![vec![5, 1, 0], vec![0, 7, 2], vec![1, 0, 9]],
            row_title: "gold".into(),
            column_title: "vote".into(),
        });
        assert_eq!(svg.matches("<g class=\"cell\">").count(), 9);
        assert!(svg.contains(">7</text>"));
        assert!(svg.contains("gold: b, vote: c: 2 (22.2% of the row)"));
    }

    #[test]
    fn bars_and_references_are_drawn_and_many_bars_go_unnamed() {
        let few = bar_chart(&BarChart {
            bars: vec![
                Bar::new("w1", 0.9),
                Bar {
                    highlight: true,
                    ..Bar::new("w2", 0.4)
                },
            ],
            references: vec![Reference {
                label: "median".into(),
                value: 0.8,
            }],
            highlight_label: "flagged".into(),
            ..BarChart::default()
        });
        assert_eq!(few.matches("<rect class=\"bar").count(), 2);
        assert_eq!(few.matches("class=\"bar highlight\"").count(), 1);
        assert!(
            few.contains(">w1</text>")
                && few.contains(">median</text>")
                && few.contains(">flagged</text>")
        );
        let many = bar_chart(&BarChart {
            bars: (0..100).map(|i| Bar::new(format!("w{i}"), 0.5)).collect(),
            ..BarChart::default()
        });
        assert_eq!(many.matches("<rect class=\"bar").count(), 100);
        assert!(!many.contains(">w1</text>"));
    }

    #[test]
    fn a_line_chart_draws_each_series_and_the_diagonal() {
        let svg = line_chart(&LineChart {
            series: vec![Series {
                name: "DS".into(),
                points: vec![
                    Point {
                        x: 0.55,
                        y: 0.5,
                        weight: 10.0,
                    },
                    Point {
                        x: 0.95,
                        y: 0.97,
                        weight: 300.0,
                    },
                ],
            }],
            x_range: (0.0, 1.0),
            y_range: (0.0, 1.0),
            diagonal: true,
            weight_label: "items".into(),
            ..LineChart::default()
        });
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("class=\"diagonal\""));
        assert!(svg.contains("300 items"));
    }
}
