//! One module per subcommand.

pub mod annotator;
pub mod audit;
pub mod eval;
pub mod export;
pub mod generate;
pub mod label;
pub mod model;
pub mod project;
pub mod project_qc;
pub mod qc;
pub mod qc_task;
pub mod runs;
pub mod serve;

/// An error whose fix is known: printed as the error, then `hint: ...`.
#[derive(Debug)]
pub struct Hinted {
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// The hint attached anywhere in the error's chain: the binary's own, or a library's known fix.
pub fn hint_for(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|c| {
        c.downcast_ref::<Hinted>()
            .map(|h| h.hint.clone())
            .or_else(|| {
                c.downcast_ref::<assay_label::Error>()
                    .and_then(|e| e.hint())
                    .map(str::to_string)
            })
    })
}
