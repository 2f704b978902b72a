//! The label pipeline as a library: a row flows one way, task → rows → scorer → judgment → calibration → store →
//! output, and `assay export` / `assay eval` read the stored labels back.
//!
//! - [`identity`]: what identifies a task's annotations (prompt with few-shot examples, task version hash).
//! - [`rows`]: input rows rendered as items, streamed, never held whole.
//! - [`backend`]: the embedded llama.cpp model or a served one; [`served`]: the response cache, plan and cost.
//! - [`judgment`]: from log-probabilities to labels, pair judgments debiased over both orders, ratings.
//! - [`calibrate`]: contextual and fitted calibration, gold metrics before and after.
//! - [`run`]: the stages of `assay label`; [`human`]: people's answers joined to rows, the final label.
//! - [`export`] and [`eval`]: training data and agreement with people from the stored labels.
//!
//! Long work reports through [`Reporter`]; the library never prints.
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc};
//! use assay_label::{run, Backend, Silent};
//! # fn demo(store: &assay_store::Store, rt: &tokio::runtime::Runtime) -> assay_label::Result<()> {
//! let spec = assay_core::TaskSpec::from_path("examples/sms-spam/task.toml".as_ref())?;
//! let backend = Backend::open(&spec, "/root/.cache/assay".as_ref(), false)?;
//! let job = run::LabelJob {
//!     input: spec.dataset.clone().unwrap(),
//!     output: "out/sms.labeled.jsonl".into(),
//!     spec, limit: None, threads: 2, shard: None, models_home: "/root/.cache/assay".into(),
//! };
//! let cx = run::Context { store, rt, reporter: &Silent, interrupted: Arc::new(AtomicBool::new(false)) };
//! if let run::Outcome::Labeled(summary) = run::run(&job, &backend, &cx, false)? {
//!     println!("{} labeled", summary.labeled);
//! }
//! # Ok(()) }
//! ```

pub mod backend;
pub mod calibrate;
mod error;
pub mod eval;
pub mod export;
pub mod gate;
pub mod generate;
pub mod human;
pub mod identity;
pub mod judgment;
mod neighbours;
pub mod probe;
pub mod rows;
pub mod run;
pub mod served;
mod shard;
pub mod source;

pub use backend::Backend;
pub use error::{Error, Result};
pub use identity::TaskIdentity;
pub use shard::Shard;

/// Where long work reports its progress and its notices; the binary draws bars, the server streams events,
/// tests stay [`Silent`].
pub trait Reporter: Send + Sync {
    /// A stage starts, with its item count when known.
    fn start(&self, _stage: &str, _total: Option<u64>) {}
    /// More items done.
    fn advance(&self, _items: u64) {}
    /// The stage is over.
    fn finish(&self) {}
    /// Something the user should know (a row count that looks wrong, a missing capability).
    fn warn(&self, _message: &str) {}
}

/// A reporter that reports nothing.
pub struct Silent;

impl Reporter for Silent {}
