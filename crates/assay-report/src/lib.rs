//! Self-contained HTML reports for people to read: one file with its CSS inline and every plot as inline SVG, no
//! scripts, fonts or images fetched from anywhere, so a report can be mailed, archived or opened offline.
//!
//! A [`Report`] is a title, a few facts about where the numbers came from, and [`Section`]s of [`Block`]s: stat
//! cards, tables, notes and figures. The plots in [`svg`] take plain numbers; callers compute the statistics
//! (`assay-quality`) and this crate only draws them. Nothing here does I/O: [`Report::to_html`] returns a string.
//!
//! ```
//! use assay_report::{svg, Block, Report, Section, Tone};
//!
//! let mut report = Report::new("Quality control");
//! report.fact("annotations", "answers.csv");
//! let mut section = Section::new("Agreement");
//! section.push(Block::Cards(vec![assay_report::Card::new("Fleiss' kappa", "0.62").tone(Tone::Good)]));
//! section.push(Block::Figure {
//!     svg: svg::confusion_matrix(&svg::Confusion {
//!         labels: vec!["no".into(), "yes".into()],
//!         counts: vec![vec![40, 2], vec![5, 53]],
//!         row_title: "gold".into(),
//!         column_title: "majority vote".into(),
//!     }),
//!     caption: "Majority vote against gold.".into(),
//! });
//! report.push(section);
//! let html = report.to_html();
//! assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
//! ```

pub mod audit;
pub mod svg;

use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a value should strike the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    /// Plain.
    #[default]
    Neutral,
    /// Meets the target.
    Good,
    /// Worth a look.
    Warn,
    /// Fails the target.
    Bad,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Neutral => "neutral",
            Tone::Good => "good",
            Tone::Warn => "warn",
            Tone::Bad => "bad",
        }
    }
}

/// A headline number: a label, the value, and an optional line of detail under it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Card {
    /// What the number is, e.g. "Fleiss' kappa".
    pub label: String,
    /// The number as it should read, e.g. "0.623".
    pub value: String,
    /// A line under the value, e.g. "800 items, 10 answers each".
    pub detail: String,
    /// Colour of the value.
    pub tone: Tone,
}

impl Card {
    /// A neutral card without detail.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
            ..Self::default()
        }
    }

    /// Sets the detail line.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Sets the tone.
    pub fn tone(mut self, tone: Tone) -> Self {
        self.tone = tone;
        self
    }
}

/// A table; cells are text, numeric-looking columns are right-aligned by the caller's choice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows of cells, each as long as the header.
    pub rows: Vec<Vec<String>>,
    /// Columns (by index) whose cells are numbers: right-aligned, tabular figures.
    pub numeric: Vec<usize>,
    /// Rows (by index) to highlight, e.g. flagged annotators.
    pub highlight: Vec<usize>,
}

/// One piece of a section.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A row of headline numbers.
    Cards(Vec<Card>),
    /// A paragraph of plain text (escaped).
    Text(String),
    /// A table.
    Table(Table),
    /// An inline SVG (from [`svg`]) with a caption.
    Figure {
        /// The `<svg>` element.
        svg: String,
        /// Text under the plot.
        caption: String,
    },
    /// Blocks laid out side by side where the page is wide enough.
    Row(Vec<Block>),
}

/// A titled part of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The heading.
    pub title: String,
    /// The content, in order.
    pub blocks: Vec<Block>,
}

impl Section {
    /// An empty section.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// Appends a block.
    pub fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }
}

/// A whole report page.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The page title and top heading.
    pub title: String,
    /// (name, value) facts shown under the title: inputs, settings, version.
    pub facts: Vec<(String, String)>,
    /// The sections, in order.
    pub sections: Vec<Section>,
}

impl Report {
    /// An empty report.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            facts: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// Adds a fact under the title.
    pub fn fact(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.facts.push((name.into(), value.into()));
    }

    /// Appends a section.
    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    /// The whole page: one HTML document with its CSS inline and no external references.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        let title = escape(&self.title);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<header>\n<h1>{title}</h1>\n"
        );
        if !self.facts.is_empty() {
            out.push_str("<dl class=\"facts\">\n");
            for (name, value) in &self.facts {
                let _ = writeln!(
                    out,
                    "<div><dt>{}</dt><dd>{}</dd></div>",
                    escape(name),
                    escape(value)
                );
            }
            out.push_str("</dl>\n");
        }
        out.push_str("</header>\n");
        for section in &self.sections {
            let _ = writeln!(out, "<section>\n<h2>{}</h2>", escape(&section.title));
            for block in &section.blocks {
                render_block(&mut out, block);
            }
            out.push_str("</section>\n");
        }
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }
}

fn render_block(out: &mut String, block: &Block) {
    match block {
        Block::Cards(cards) => {
            out.push_str("<div class=\"cards\">\n");
            for card in cards {
                let _ = write!(
                    out,
                    "<div class=\"card\"><div class=\"card-label\">{}</div><div class=\"card-value {}\">{}</div>",
                    escape(&card.label),
                    card.tone.class(),
                    escape(&card.value)
                );
                if !card.detail.is_empty() {
                    let _ = write!(
                        out,
                        "<div class=\"card-detail\">{}</div>",
                        escape(&card.detail)
                    );
                }
                out.push_str("</div>\n");
            }
            out.push_str("</div>\n");
        }
        Block::Text(text) => {
            let _ = writeln!(out, "<p>{}</p>", escape(text));
        }
        Block::Table(table) => render_table(out, table),
        Block::Figure { svg, caption } => {
            let _ = writeln!(
                out,
                "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
                escape(caption)
            );
        }
        Block::Row(blocks) => {
            out.push_str("<div class=\"row\">\n");
            for block in blocks {
                out.push_str("<div class=\"cell\">\n");
                render_block(out, block);
                out.push_str("</div>\n");
            }
            out.push_str("</div>\n");
        }
    }
}

fn render_table(out: &mut String, table: &Table) {
    out.push_str("<div class=\"table-wrap\"><table>\n<thead><tr>");
    for (i, h) in table.header.iter().enumerate() {
        let class = if table.numeric.contains(&i) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (r, row) in table.rows.iter().enumerate() {
        if table.highlight.contains(&r) {
            out.push_str("<tr class=\"highlight\">");
        } else {
            out.push_str("<tr>");
        }
        for (i, cell) in row.iter().enumerate() {
            let class = if table.numeric.contains(&i) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
}

const CSS: &str = r#"
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --panel: #ffffff; --page: #f5f7fa;
  --good: #1f7a4d; --warn: #a15c07; --bad: #b42318; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0 0 8px; font-size: 26px; letter-spacing: -0.01em; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 24px; margin: 0; color: var(--muted); font-size: 13px; }
.facts div { display: flex; gap: 6px; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 18px 22px;
  margin-top: 20px; }
h2 { margin: 0 0 14px; font-size: 18px; }
p { margin: 8px 0; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px; margin: 4px 0 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card-label { font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
.card-value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card-detail { font-size: 12.5px; color: var(--muted); }
.good { color: var(--good); } .warn { color: var(--warn); } .bad { color: var(--bad); }
.row { display: flex; flex-wrap: wrap; gap: 20px; }
.row > .cell { flex: 1 1 420px; min-width: 0; }
figure { margin: 8px 0; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
.table-wrap { overflow-x: auto; max-height: 560px; overflow-y: auto; border: 1px solid var(--line);
  border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { position: sticky; top: 0; background: #eef2f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.highlight td { background: #fdecea; color: var(--bad); }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        let mut report = Report::new("a <b> & \"c\"");
        report.fact("file", "<x>.csv");
        let mut s = Section::new("<script>");
        s.push(Block::Text("1 < 2".into()));
        s.push(Block::Table(Table {
            header: vec!["<h>".into()],
            rows: vec![vec!["<zz>".into()]],
            ..Table::default()
        }));
        report.push(s);
        let html = report.to_html();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<x>") && !html.contains("<h>") && !html.contains("<zz>"));
        assert!(html.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
    }

    #[test]
    fn the_page_references_nothing_outside_itself() {
        let mut report = Report::new("r");
        let mut s = Section::new("s");
        s.push(Block::Figure {
            svg: svg::bar_chart(&svg::BarChart {
                bars: vec![svg::Bar::new("a", 0.5)],
                ..svg::BarChart::default()
            }),
            caption: "c".into(),
        });
        report.push(s);
        let html = report.to_html();
        for needle in ["<script", "<link", "src=", "@import", "url("] {
            assert!(!html.contains(needle), "{needle}");
        }
    }

    #[test]
    fn highlighted_rows_and_numeric_columns_get_classes() {
        let mut out = String::new();
        render_table(
            &mut out,
            &Table {
                header: vec!["who".into(), "n".into()],
                rows: vec![vec!["a".into(), "1".into()], vec!["b".into(), "2".into()]],
                numeric: vec![1],
                highlight: vec![1],
            },
        );
        assert!(out.contains("<tr class=\"highlight\"><td>b</td><td class=\"num\">2</td></tr>"));
    }
}
