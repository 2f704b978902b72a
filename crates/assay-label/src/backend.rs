//! The model behind a run: the embedded llama.cpp model (a cached model or a GGUF file) or a served one.

use std::cell::{RefCell, RefMut};
use std::path::Path;

use assay_core::ScoreRequest;
use assay_llm::openai::{ItemUsage, ServedStats};
use assay_llm::{ItemScores, ModelInfo, ScoreStats, Scorer};

use assay_core::{ServedScoring, TaskSpec};
use assay_llm::cache::ModelCache;
use assay_llm::embedded::EmbeddedModel;
use assay_llm::openai::ServedModel;

use crate::{served, Error, Result};

/// Items per committed chunk: a `kill -9` loses at most this many items' work.
pub const CHUNK_ITEMS: usize = 16;

/// Items per committed chunk for a served model: enough requests in flight to use the concurrency limit (chunks
/// still depend only on the dataset's order and the task's settings).
pub fn served_chunk_items(concurrency: usize) -> usize {
    CHUNK_ITEMS.max(4 * concurrency)
}

/// The model behind a run.
pub enum Backend {
    /// In-process through llama.cpp.
    Embedded(EmbeddedModel),
    /// An OpenAI-compatible server.
    Served(Box<ServedModel>),
    /// Any other scorer, named by its [`Scorer::info`]: benchmarks and tests script one to measure the pipeline
    /// without a model.
    Custom(CustomScorer),
}

/// A scorer handed in whole; a run borrows it for its scoring stage.
pub struct CustomScorer {
    name: String,
    sha256: String,
    scorer: RefCell<Box<dyn Scorer>>,
}

impl CustomScorer {
    /// Wrap `scorer`.
    pub fn new(scorer: Box<dyn Scorer>) -> Self {
        let info = scorer.info();
        Self {
            name: info.name.clone(),
            sha256: info.sha256.clone(),
            scorer: RefCell::new(scorer),
        }
    }

    /// The scorer, for one stage.
    pub(crate) fn borrow(&self) -> Borrowed<'_> {
        Borrowed(self.scorer.borrow_mut())
    }
}

/// A borrowed [`CustomScorer`].
pub(crate) struct Borrowed<'a>(RefMut<'a, Box<dyn Scorer>>);

impl Scorer for Borrowed<'_> {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }

    fn score(&mut self, requests: &[ScoreRequest]) -> assay_llm::Result<Vec<ItemScores>> {
        self.0.score(requests)
    }

    fn stats(&self) -> ScoreStats {
        self.0.stats()
    }

    fn usage(&self) -> Option<&[ItemUsage]> {
        self.0.usage()
    }

    fn served_stats(&self) -> Option<ServedStats> {
        self.0.served_stats()
    }
}

impl Backend {
    /// The task's model: `model.endpoint` (reached, and for `scoring = "auto"` probed, unless `offline`, which
    /// sends nothing: `--plan`), else `model.path`, else the cached model `model.name` under `models_home`.
    pub fn open(spec: &TaskSpec, models_home: &Path, offline: bool) -> Result<Self> {
        if !spec.model.is_served() {
            let (path, name, sha) = resolve_model(spec, models_home)?;
            return Ok(Self::Embedded(EmbeddedModel::load(&path, &name, &sha)?));
        }
        if spec.compare.as_ref().is_some_and(|c| c.chain_of_thought) {
            return Err(Error::usage(
                "chain-of-thought compare tasks generate rationales with the embedded model; served models do not do that yet",
                "remove `model.endpoint`, or set `chain-of-thought = false`",
            ));
        }
        let config = served::config(spec, !offline)?;
        let model = if offline {
            ServedModel::offline(config)?
        } else {
            ServedModel::connect(config)?
        };
        Ok(Self::Served(Box::new(model)))
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Embedded(m) => &m.info().name,
            Self::Served(m) => &m.info().name,
            Self::Custom(c) => &c.name,
        }
    }

    /// The model file's SHA-256, what provenance and the store's `model_sha256` columns record; empty for a
    /// served model, which has no file (those columns stay, and hold an empty string for its labels).
    pub fn sha256(&self) -> &str {
        match self {
            Self::Embedded(m) => &m.info().sha256,
            Self::Served(m) => &m.info().sha256,
            Self::Custom(c) => &c.sha256,
        }
    }

    /// What tells this model's labels apart from other models': the file's SHA-256, or for a served model the
    /// hash of the server's base URL, the model name, the scoring mode and the layout
    /// ([`ServedModel::identity`]), so that another server with a model of the same name is another annotator.
    pub fn identity(&self) -> &str {
        match self {
            Self::Served(m) => m.identity(),
            _ => self.sha256(),
        }
    }

    /// The annotator name its labels are stored under: `NAME@ID12`, the first 12 characters of
    /// [`Self::identity`].
    pub fn annotator(&self) -> String {
        format!("{}@{}", self.name(), short(self.identity()))
    }

    /// A served model that returns no log-probabilities: labels are generated answers, with no confidence.
    pub fn generates(&self) -> bool {
        matches!(self, Self::Served(m) if m.mode() == ServedScoring::Generate)
    }

    /// Items per committed chunk.
    pub fn chunk_items(&self) -> usize {
        match self {
            Self::Embedded(_) | Self::Custom(_) => CHUNK_ITEMS,
            Self::Served(m) => served_chunk_items(m.config().limits.concurrency),
        }
    }
}

/// The first 12 characters of a hash.
pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The model file, its name and SHA-256: the task's `model.path`, else the cached model `model.name`.
fn resolve_model(
    spec: &TaskSpec,
    models_home: &Path,
) -> Result<(std::path::PathBuf, String, String)> {
    if let Some(path) = &spec.model.path {
        if !path.exists() {
            return Err(Error::usage(
                format!("model file {} does not exist", path.display()),
                "fix `model.path` in the task file, or remove it to use a cached model",
            ));
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("model")
            .to_string();
        return Ok((path.clone(), name, assay_llm::cache::file_sha256(path)?));
    }
    match ModelCache::new(models_home).get(&spec.model.name)? {
        Some(model) => Ok((model.path, model.name, model.sha256)),
        None => Err(Error::usage(
            format!(
                "model `{}` is not in the cache ({})",
                spec.model.name,
                models_home.join("models").display()
            ),
            format!("run `assay model fetch {}` first", spec.model.name),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_llm::openai::ServedConfig;

    fn served(endpoint: &str) -> Backend {
        let spec = TaskSpec::from_toml_str(&format!(
            "name = \"t\"\ntype = \"classify\"\ninput = \"{{{{ text }}}}\"\nlabels = [\"a\", \"b\"]\n\
             [model]\nname = \"smollm2\"\nendpoint = \"{endpoint}\"\nscoring = \"first-token\"\n"
        ))
        .unwrap();
        let config = ServedConfig::from_spec(&spec.model, None).unwrap();
        Backend::Served(Box::new(ServedModel::offline(config).unwrap()))
    }

    /// Issue 11 §1.5: the same model name behind another server is another annotator, and a served model records
    /// no model-file hash (before, its "SHA-256" was a hash of its name and settings, the same for every server).
    #[test]
    fn issue_11_served_annotator_names_the_server() {
        let a = served("http://127.0.0.1:8080/v1");
        let b = served("http://10.0.0.2:8080/v1");
        assert_ne!(a.annotator(), b.annotator());
        assert_eq!(
            a.annotator(),
            served("http://127.0.0.1:8080/v1/").annotator(),
            "a trailing slash is the same server"
        );
        assert!(a.annotator().starts_with("smollm2@"), "{}", a.annotator());
        assert_eq!(a.sha256(), "");
        assert_eq!(a.identity().len(), 64);
    }
}
