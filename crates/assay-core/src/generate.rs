//! Generate tasks (`type = "generate"`): a model writes a response to each input row's prompt (SFT pairs), and an
//! optional `[gate]` keeps only the generated rows that pass rule filters, near-duplicate removal and a judge.
//!
//! A generate task is its own file type rather than another [`crate::TaskKind`]: it has no labels, no calibration
//! and no gold column, and what it writes is new rows, not labels of old ones. `docs/task-reference.toml`
//! documents every key.
//!
//! ```
//! let spec = assay_core::generate::GenerateTaskSpec::from_toml_str(
//!     r#"
//!     name = "answers"
//!     type = "generate"
//!     [generate]
//!     prompt = "{{ instruction }}"
//!     temperature = 0.7
//!     max-tokens = 64
//!     "#,
//! )
//! .unwrap();
//! assert_eq!(spec.generate.samples, 1);
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::task::ModelSpec;
use crate::{Error, Result};

/// The one `type` a generate task file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GenerateKind {
    /// `type = "generate"`.
    Generate,
}

/// A generate task as written in its TOML file, with relative paths resolved against the file's folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GenerateTaskSpec {
    /// Short name; runs and generated rows are filed under it.
    pub name: String,
    /// Always `generate`.
    #[serde(rename = "type")]
    pub kind: GenerateKind,
    /// The seed rows (JSONL, CSV, TSV or Parquet) when the command line gives none.
    #[serde(default)]
    pub dataset: Option<PathBuf>,
    /// Where the generated rows go (.jsonl) when the command line gives none.
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// The model that writes (embedded only for now).
    #[serde(default)]
    pub model: ModelSpec,
    /// What to generate and how to sample.
    pub generate: GenerateSpec,
    /// Which generated rows to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateSpec>,
}

/// `[generate]`: the prompt and the sampling settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GenerateSpec {
    /// `sft` (default): one response per seed row (per sample). `self-instruct`: new instructions written from
    /// seed rows sampled per call.
    #[serde(default)]
    pub mode: GenerateMode,
    /// minijinja template over the seed row's columns: the user turn the model answers (`sft`), or the seed's
    /// instruction shown as an example (`self-instruct`).
    pub prompt: String,
    /// A system message before the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Sampling temperature; 0 is greedy.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Nucleus sampling: draw only from the most likely tokens whose probabilities sum to this.
    #[serde(default = "default_top_p")]
    pub top_p: f64,
    /// Most tokens per response; a response that reaches it is marked truncated.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Seed of the sampling; each response's own seed is derived from it, the row and the sample number, so a
    /// response does not depend on which rows ran before it.
    #[serde(default)]
    pub seed: u64,
    /// Responses generated per seed row.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Output column holding the rendered prompt.
    #[serde(default = "default_prompt_column")]
    pub prompt_column: String,
    /// Output column holding the generated response.
    #[serde(default = "default_response_column")]
    pub response_column: String,
    /// Seed column copied as the parent's `id` in the row's origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
    /// Self-instruct: model calls made.
    #[serde(default = "default_calls")]
    pub calls: usize,
    /// Self-instruct: seed rows sampled (seeded, per call) and shown as examples.
    #[serde(default = "default_seeds_per_call")]
    pub seeds_per_call: usize,
    /// Self-instruct: new instructions asked for per call (n); at most this many are parsed from each answer.
    #[serde(default = "default_instructions_per_call")]
    pub instructions_per_call: usize,
    /// Self-instruct: a new instruction whose word-trigram Jaccard similarity to a seed or to an instruction kept
    /// before it reaches this is dropped as a duplicate.
    #[serde(default = "default_instruction_similarity")]
    pub max_similarity: f64,
}

/// What a generate task writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GenerateMode {
    /// A response to each seed row's prompt: SFT pairs.
    #[default]
    Sft,
    /// New instructions from a few sampled seed instructions per call (Wang et al. 2023).
    SelfInstruct,
}

fn default_calls() -> usize {
    8
}
fn default_seeds_per_call() -> usize {
    3
}
fn default_instructions_per_call() -> usize {
    4
}
fn default_instruction_similarity() -> f64 {
    0.7
}

fn default_temperature() -> f64 {
    0.7
}
fn default_top_p() -> f64 {
    0.9
}
fn default_max_tokens() -> usize {
    256
}
fn default_samples() -> usize {
    1
}
fn default_prompt_column() -> String {
    "prompt".into()
}
fn default_response_column() -> String {
    "response".into()
}

/// `[gate]`: which generated rows to keep. Checks run in order (rules, near-duplicates, judge); a row dropped by
/// one keeps that reason and is not judged further.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GateSpec {
    /// Where kept rows go (.jsonl); default: the output with `.kept.jsonl`. Dropped rows, each with its reason,
    /// go beside it as `.dropped.jsonl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Rule filters.
    #[serde(default)]
    pub rules: RuleSpec,
    /// Near-duplicate removal.
    #[serde(default)]
    pub dedup: DedupSpec,
    /// A rate task over the generated rows (its `[rate]` templates name the output's columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeSpec>,
}

/// Rule filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleSpec {
    /// Drop responses with fewer non-blank characters than this.
    #[serde(default = "default_min_chars")]
    pub min_chars: usize,
    /// Drop responses that reached `max-tokens` before the model ended them.
    #[serde(default = "yes")]
    pub drop_truncated: bool,
    /// Drop responses that refuse ("I'm sorry, but I can't ...", "As an AI language model ...").
    #[serde(default = "yes")]
    pub drop_refusals: bool,
    /// Word n-gram size of the repetition check.
    #[serde(default = "default_repeat_ngram")]
    pub repeat_ngram: usize,
    /// Drop responses in which more than this share of the word n-grams repeat an earlier one.
    #[serde(default = "default_max_repeated_share")]
    pub max_repeated_share: f64,
}

fn yes() -> bool {
    true
}
fn default_min_chars() -> usize {
    1
}
fn default_repeat_ngram() -> usize {
    3
}
fn default_max_repeated_share() -> f64 {
    0.3
}

impl Default for RuleSpec {
    fn default() -> Self {
        Self {
            min_chars: default_min_chars(),
            drop_truncated: true,
            drop_refusals: true,
            repeat_ngram: default_repeat_ngram(),
            max_repeated_share: default_max_repeated_share(),
        }
    }
}

/// Near-duplicate removal: Jaccard similarity of word-shingle sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DedupSpec {
    /// Off with `false`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Words per shingle.
    #[serde(default = "default_shingle")]
    pub shingle: usize,
    /// A response at least this similar to a seed row's text, or to a response kept before it, is dropped.
    #[serde(default = "default_dedup_threshold")]
    pub threshold: f64,
    /// Seed columns a response is compared against (e.g. the human response); none: only among responses.
    #[serde(default)]
    pub seed_columns: Vec<String>,
}

fn default_shingle() -> usize {
    3
}
fn default_dedup_threshold() -> f64 {
    0.7
}

impl Default for DedupSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            shingle: default_shingle(),
            threshold: default_dedup_threshold(),
            seed_columns: Vec::new(),
        }
    }
}

/// The judge: a `rate` task file run over the generated rows that passed the rules and dedup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JudgeSpec {
    /// The rate task (relative to this task file).
    pub task: PathBuf,
    /// Keep rows whose expected score is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    /// Keep this share (0..=1) of the judged rows, the best first (ties: the earlier row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_share: Option<f64>,
}

impl GenerateTaskSpec {
    /// Parse a task from TOML text (paths stay as written).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::parse(text, Path::new("<task>"))
    }

    /// Read and parse a task file; relative paths are resolved against the file's folder.
    pub fn from_path(path: &Path) -> Result<Self> {
        let mut spec = Self::parse(&crate::task::read_task_file(path)?, path)?;
        let resolve = crate::task::resolver(path);
        spec.dataset.as_mut().map(resolve);
        spec.output.as_mut().map(resolve);
        spec.model.path.as_mut().map(resolve);
        if let Some(gate) = spec.gate.as_mut() {
            gate.output.as_mut().map(resolve);
            if let Some(judge) = gate.judge.as_mut() {
                resolve(&mut judge.task);
            }
        }
        Ok(spec)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let spec: Self = toml::from_str(text).map_err(|e| Error::TaskSyntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        spec.validate().map_err(|message| Error::TaskInvalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(spec)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        let g = &self.generate;
        if g.prompt.trim().is_empty() {
            return Err(
                "`generate.prompt`: a template is required (e.g. `prompt = \"{{ instruction }}\"`)"
                    .into(),
            );
        }
        if minijinja::Environment::new()
            .template_from_str(&g.prompt)
            .is_err()
        {
            return Err("`generate.prompt` is not a valid minijinja template".into());
        }
        if !(0.0..=10.0).contains(&g.temperature) {
            return Err(format!(
                "`generate.temperature` must be in [0, 10], got {}",
                g.temperature
            ));
        }
        if !(g.top_p > 0.0 && g.top_p <= 1.0) {
            return Err(format!(
                "`generate.top-p` must be in (0, 1], got {}",
                g.top_p
            ));
        }
        if !(1..=4096).contains(&g.max_tokens) {
            return Err(format!(
                "`generate.max-tokens` must be in 1..=4096, got {}",
                g.max_tokens
            ));
        }
        if g.mode == GenerateMode::SelfInstruct {
            if g.samples != 1 {
                return Err("`generate.samples`: self-instruct tasks make `calls` calls; leave `samples` at 1".into());
            }
            if !(1..=100_000).contains(&g.calls)
                || !(1..=32).contains(&g.seeds_per_call)
                || !(1..=64).contains(&g.instructions_per_call)
            {
                return Err("`generate.calls` (1..=100000), `generate.seeds-per-call` (1..=32) and `generate.instructions-per-call` (1..=64) are out of range".into());
            }
            if !(0.0..=1.0).contains(&g.max_similarity) {
                return Err("`generate.max-similarity` must be in [0, 1]".into());
            }
        }
        if !(1..=64).contains(&g.samples) {
            return Err(format!(
                "`generate.samples` must be in 1..=64, got {}",
                g.samples
            ));
        }
        if g.prompt_column == g.response_column || g.response_column.starts_with("assay") {
            return Err("`generate.prompt-column` and `generate.response-column` must differ and not start with `assay`".into());
        }
        if self.model.is_served() {
            return Err("`model.endpoint`: generate tasks run the embedded model only so far (served generation is not built yet)".into());
        }
        if let Some(gate) = &self.gate {
            gate.validate()?;
        }
        Ok(())
    }

    /// A stable hash of everything that changes what is generated: runs with the same hash resume each other.
    /// Where the files live and how the gate keeps rows change no generated text.
    pub fn spec_hash(&self) -> String {
        let mut canonical = self.clone();
        canonical.dataset = None;
        canonical.output = None;
        canonical.gate = None;
        canonical.model.threads = None;
        canonical.model.batch_tokens = 512;
        crate::sha256_hex(
            serde_json::to_string(&canonical)
                .expect("generate spec serialises")
                .as_bytes(),
        )
    }

    /// The hash of the prompt the model is shown (template and system message), recorded in every row's origin.
    pub fn prompt_hash(&self) -> String {
        let mut prompt = serde_json::json!({
            "system": self.generate.system,
            "prompt": self.generate.prompt,
            "format": self.model.prompt_format,
        });
        if self.generate.mode == GenerateMode::SelfInstruct {
            // The call's wording is fixed in assay; what varies is how many instructions it asks for.
            prompt["self_instruct"] = serde_json::json!({
                "instructions_per_call": self.generate.instructions_per_call,
                "wording": self.generate.self_instruct_prompt(&[]),
            });
        }
        crate::sha256_hex(prompt.to_string().as_bytes())
    }
}

impl GenerateSpec {
    /// The user turn of one self-instruct call: the sampled seed instructions as numbered examples, then the ask
    /// for `instructions-per-call` new ones, one per numbered line.
    pub fn self_instruct_prompt(&self, examples: &[String]) -> String {
        let n = self.instructions_per_call;
        let mut text = format!(
            "Come up with {n} new tasks that a person could ask an AI assistant to do. Make them diverse and \
             different from the examples. Write one task per line, numbered 1 to {n}, and nothing else.\n\nExamples:\n"
        );
        for (i, example) in examples.iter().enumerate() {
            text.push_str(&format!(
                "{}. {}\n",
                i + 1,
                example.replace('\n', " ").trim()
            ));
        }
        text.push_str("\nNew tasks:");
        text
    }
}

/// The instructions in a self-instruct answer: one per line, with list markers (`1.`, `2)`, `-`, `*`) removed,
/// blank lines and lines of fewer than three words dropped, at most `limit`. When the answer was cut off at
/// `max-tokens` its last line is dropped too: it is probably unfinished.
pub fn parse_instructions(answer: &str, truncated: bool, limit: usize) -> Vec<String> {
    let mut lines: Vec<&str> = answer.lines().collect();
    if truncated {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|line| {
            let line = line.trim();
            let unnumbered = line.trim_start_matches(|c: char| c.is_ascii_digit());
            let unnumbered = if unnumbered.len() < line.len() {
                unnumbered.trim_start_matches(['.', ')', ':'])
            } else {
                line.trim_start_matches(['-', '*', '•'])
            };
            unnumbered.trim().to_string()
        })
        .filter(|line| line.split_whitespace().count() >= 3)
        .take(limit)
        .collect()
}

/// `generate.prompt` compiled once; renders seed rows.
pub struct PromptTemplate {
    env: minijinja::Environment<'static>,
}

impl PromptTemplate {
    /// Compile the task's prompt template; a column the template names that a row lacks is an error of that row.
    pub fn new(spec: &GenerateSpec) -> Result<Self> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template_owned("prompt", spec.prompt.clone())
            .map_err(|e| Error::Template(format!("`generate.prompt`: {e}")))?;
        Ok(Self { env })
    }

    /// The user turn for one seed row; `Err` names what the row lacks.
    pub fn render(&self, row: &serde_json::Map<String, serde_json::Value>) -> Result<String> {
        let template = self
            .env
            .get_template("prompt")
            .map_err(|e| Error::Template(e.to_string()))?;
        let text = template
            .render(row)
            .map_err(|e| Error::Row(format!("rendering `generate.prompt`: {e}")))?;
        if text.trim().is_empty() {
            return Err(Error::Row("`generate.prompt` renders empty".into()));
        }
        Ok(text)
    }
}

impl GateSpec {
    fn validate(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.rules.max_repeated_share) {
            return Err("`gate.rules.max-repeated-share` must be in [0, 1]".into());
        }
        if self.rules.repeat_ngram == 0 || self.dedup.shingle == 0 {
            return Err(
                "`gate.rules.repeat-ngram` and `gate.dedup.shingle` must be at least 1".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.dedup.threshold) {
            return Err("`gate.dedup.threshold` must be in [0, 1]".into());
        }
        if let Some(judge) = &self.judge {
            match (judge.min_score, judge.top_share) {
                (None, None) | (Some(_), Some(_)) => {
                    return Err(
                        "`gate.judge`: set exactly one of `min-score` and `top-share`".into(),
                    )
                }
                (_, Some(share)) if !(0.0..=1.0).contains(&share) => {
                    return Err(format!(
                        "`gate.judge.top-share` must be in [0, 1], got {share}"
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether the task file at `path` is a generate task (`type = "generate"`): what `assay label` checks before
/// parsing it as a labeling task.
pub fn is_generate_task(path: &Path) -> Result<bool> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| {
            t.get("type")
                .and_then(|v| v.as_str().map(|s| s == "generate"))
        })
        .unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "answers"
type = "generate"
[generate]
prompt = "{{ instruction }}"
"#;

    #[test]
    fn minimal_task_has_the_documented_defaults() {
        let spec = GenerateTaskSpec::from_toml_str(MINIMAL).unwrap();
        let g = &spec.generate;
        assert_eq!(
            (g.temperature, g.top_p, g.max_tokens, g.seed, g.samples),
            (0.7, 0.9, 256, 0, 1)
        );
        assert_eq!(
            (g.prompt_column.as_str(), g.response_column.as_str()),
            ("prompt", "response")
        );
        assert!(spec.gate.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_the_key() {
        let err =
            GenerateTaskSpec::from_toml_str(&format!("{MINIMAL}temprature = 0.5\n")).unwrap_err();
        assert!(err.to_string().contains("temprature"), "{err}");
        let err = GenerateTaskSpec::from_toml_str(&format!("{MINIMAL}top-p = 0\n")).unwrap_err();
        assert!(err.to_string().contains("generate.top-p"), "{err}");
        let err = GenerateTaskSpec::from_toml_str(&format!(
            "{MINIMAL}[gate.judge]\ntask = \"j.toml\"\nmin-score = 5\ntop-share = 0.5\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }

    #[test]
    fn the_gate_and_file_locations_do_not_change_the_version() {
        let plain = GenerateTaskSpec::from_toml_str(MINIMAL).unwrap();
        let gated = GenerateTaskSpec::from_toml_str(&format!(
            "dataset = \"a.jsonl\"\n{MINIMAL}[gate.judge]\ntask = \"j.toml\"\ntop-share = 0.5\n"
        ))
        .unwrap();
        assert_eq!(plain.spec_hash(), gated.spec_hash());
        let hotter =
            GenerateTaskSpec::from_toml_str(&format!("{MINIMAL}temperature = 1.0\n")).unwrap();
        assert_ne!(plain.spec_hash(), hotter.spec_hash());
        assert_eq!(
            plain.prompt_hash(),
            hotter.prompt_hash(),
            "sampling is not the prompt"
        );
    }

    #[test]
    fn self_instruct_answers_are_parsed_line_by_line() {
        let answer = "1. Write a poem about autumn leaves.\n2) List three uses of baking soda\n\n- Explain how tides work.\nok\n4. Describe the water cycle in simple";
        assert_eq!(
            parse_instructions(answer, true, 10),
            [
                "Write a poem about autumn leaves.",
                "List three uses of baking soda",
                "Explain how tides work."
            ]
        );
        assert_eq!(parse_instructions(answer, false, 2).len(), 2);
        assert_eq!(
            parse_instructions(answer, false, 10).len(),
            4,
            "an answer that ended keeps its last line"
        );
        let spec = GenerateTaskSpec::from_toml_str(&format!("{MINIMAL}mode = \"self-instruct\"\n"))
            .unwrap();
        let prompt = spec
            .generate
            .self_instruct_prompt(&["Say hi.".into(), "Add 2 and 3.".into()]);
        assert!(
            prompt.contains("Come up with 4 new tasks")
                && prompt.contains("1. Say hi.\n2. Add 2 and 3.\n"),
            "{prompt}"
        );
        let err = GenerateTaskSpec::from_toml_str(&format!(
            "{MINIMAL}mode = \"self-instruct\"\nsamples = 2\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("samples"), "{err}");
    }

    #[test]
    fn docs_generate_reference_parses_with_non_default_values() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/task-reference-generate.toml");
        let spec = GenerateTaskSpec::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.generate.mode, GenerateMode::Sft);
        assert_eq!(spec.generate.id_column.as_deref(), Some("id"));
        let gate = spec.gate.as_ref().unwrap();
        assert_eq!(gate.dedup.seed_columns, ["answer"]);
        let judge = gate.judge.as_ref().unwrap();
        assert!(
            judge.task.ends_with("docs/judge.toml"),
            "relative to the file: {judge:?}"
        );
        assert_eq!(judge.top_share, Some(0.5));
        assert!(is_generate_task(&path).unwrap());
    }

    #[test]
    fn a_generate_file_is_told_apart_from_a_labeling_task() {
        let dir = std::env::temp_dir().join(format!("assay-generate-kind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let generate = dir.join("g.toml");
        std::fs::write(&generate, MINIMAL).unwrap();
        let label = dir.join("l.toml");
        std::fs::write(&label, "name = \"x\"\ntype = \"classify\"\n").unwrap();
        assert!(is_generate_task(&generate).unwrap());
        assert!(!is_generate_task(&label).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
