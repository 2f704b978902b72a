//! Quality-control results for `assay qc` and `assay project qc`, assembled for terminal tables and for
//! [`assay_report`] HTML reports.
//!
//! Three sources, one module each; every module reads its input, computes every figure once with
//! [`assay_quality`], and lays the figures out as an [`assay_report::Report`]. The binary only turns flags into
//! the settings, prints the same figures as tables and writes the HTML file. Nothing here prints.
//!
//! - [`answers`]: loose answer files (`item`, `annotator`, `label`, optionally `seconds`) and gold labels:
//!   agreement, majority vote against Dawid-Skene, per-annotator scores, an audit of the majority labels.
//! - [`task`]: a task's labeled output against its gold column: accuracy, calibration, the confidence threshold
//!   for a target accuracy, an audit of what it would auto-accept, suspicious gold labels.
//! - [`project`]: a review project's outcomes from the store: the machine against people, people against gold
//!   and each other.
//!
//! A bad row is data, not an error: it is kept with its row number and reason ([`BadRow`]) and the rest is used.
//!
//! ```
//! use assay_qc::answers::{self, Settings};
//! use assay_quality::agreement::Level;
//!
//! let dir = std::env::temp_dir().join(format!("assay-qc-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let annotations = dir.join("answers.csv");
//! std::fs::write(&annotations, "item,annotator,label\n1,ann,yes\n1,bob,yes\n2,ann,no\n2,bob,yes\n")?;
//! let settings = Settings {
//!     annotations,
//!     gold: None,
//!     level: Level::Nominal,
//!     target_error: 0.05,
//!     confidence: 0.95,
//! };
//! let data = answers::load(&settings)?;
//! let qc = answers::compute(&settings, &data)?;
//! assert_eq!(data.labels, ["no", "yes"]);
//! assert_eq!(qc.percent.as_ref().ok(), Some(&0.5));
//! assert_eq!(qc.ties, 1, "item 2 is split");
//! let html = answers::html_report(&settings, &data, &qc).to_html();
//! assert!(html.contains("Majority vote and Dawid-Skene"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod answers;
mod error;
pub mod project;
mod read;
pub mod task;

use assay_quality::agreement::Level;

pub use error::{Error, Result};
pub use read::{BadRow, InputFile};

/// Bins of the reliability diagrams (terminal and HTML), for answer files and tasks alike.
pub const RELIABILITY_BINS: usize = 10;

/// A share as a percentage with one decimal, "93.2%"; NaN is "n/a".
pub fn pct(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1}%", 100.0 * x)
    }
}

/// The level of measurement as the `--level` flag and the reports spell it: "nominal", "ordinal", ...
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Nominal => "nominal",
        Level::Ordinal => "ordinal",
        Level::Interval => "interval",
        Level::Ratio => "ratio",
    }
}
