//! Progress bars (indicatif) for long work; hidden with `--quiet` or when stderr is not a terminal. The library
//! crates report through their `Reporter` traits; this is the one place that draws.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `total` items showing the rate and ETA.
pub fn items_bar(total: u64, label: &str, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:32.cyan/blue}] {pos}/{len} items  {per_sec:.1}  ETA {eta}  ({elapsed})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

/// Draws the label pipeline's stages as bars and prints its warnings.
pub struct BarReporter {
    visible: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl BarReporter {
    /// Bars only when `visible`; warnings always.
    pub fn new(visible: bool) -> Self {
        Self {
            visible,
            bar: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().expect("bar lock").as_ref() {
            f(bar);
        }
    }
}

impl assay_label::Reporter for BarReporter {
    fn start(&self, stage: &str, total: Option<u64>) {
        let bar = items_bar(total.unwrap_or(0), stage, self.visible);
        *self.bar.lock().expect("bar lock") = Some(bar);
    }

    fn advance(&self, items: u64) {
        self.with_bar(|b| b.inc(items));
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("bar lock").take() {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, message: &str) {
        match self.bar.lock().expect("bar lock").as_ref() {
            Some(bar) => bar.suspend(|| eprintln!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}
