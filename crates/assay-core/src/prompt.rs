//! Building what the model is asked: a chat (system, few-shot turns, the item) and the options to score after it.
//!
//! The prompt of every item starts with the same instructions and examples, so that a backend can evaluate that
//! shared prefix once and reuse it; [`PromptBuilder::prefix_probe`] marks where the item starts.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::task::{TaskKind, TaskSpec};
use crate::{Error, Result};

/// Stands for the item's text in [`PromptBuilder::prefix_probe`]; backends cut the rendered prompt here.
pub const ITEM_SENTINEL: &str = "\u{1}ASSAY_ITEM\u{1}";

/// Who says a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The person asking (the item, or a few-shot input).
    User,
    /// The model (few-shot answers).
    Assistant,
}

impl Role {
    /// The role name chat templates expect.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// A conversation whose answer the model is about to give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptSpec {
    /// The conversation so far; the last message is the user's.
    pub messages: Vec<ChatMessage>,
}

impl PromptSpec {
    /// Plain-text layout for base models: the system text, then `Input:`/`Answer:` pairs, ending in `Answer:`.
    /// Options follow after a space.
    pub fn render_completion(&self) -> String {
        let mut text = String::new();
        for message in &self.messages {
            match message.role {
                Role::System => {
                    text.push_str(&message.content);
                    text.push_str("\n\n");
                }
                Role::User => {
                    text.push_str("Input: ");
                    text.push_str(&message.content);
                    text.push('\n');
                }
                Role::Assistant => {
                    text.push_str("Answer: ");
                    text.push_str(&message.content);
                    text.push_str("\n\n");
                }
            }
        }
        text.push_str("Answer:");
        text
    }
}

/// One prompt and the answers to score after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreBranch {
    /// The conversation.
    pub prompt: PromptSpec,
    /// Candidate answers; the backend returns the log-probability of each one's full token sequence.
    pub options: Vec<String>,
}

/// Everything scored for one item: one branch for a classify task, one per label for multi-label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreRequest {
    /// The branches; they share the item's text, so a backend can share its evaluation too.
    pub branches: Vec<ScoreBranch>,
}

/// Renders rows into [`ScoreRequest`]s for one task.
pub struct PromptBuilder {
    env: Environment<'static>,
    kind: TaskKind,
    system: String,
    /// Few-shot turns (user text, assistant answer) placed before the item.
    shots: Vec<(String, String)>,
    labels: Vec<String>,
    /// Per-label questions for multi-label tasks, already rendered.
    questions: Vec<String>,
}

/// A few-shot example with its input already rendered.
#[derive(Debug, Clone)]
pub struct ResolvedExample {
    /// The input as the model sees it.
    pub text: String,
    /// Label indices.
    pub labels: Vec<usize>,
}

impl PromptBuilder {
    /// Compile the task's templates and lay out its instructions.
    pub fn new(spec: &TaskSpec) -> Result<Self> {
        let mut env = Environment::new();
        // A column the template names but the row lacks is an error, never an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(false);
        env.add_template_owned("input", spec.input.clone())
            .map_err(|e| Error::Template(format!("{e:#}")))?;
        let labels: Vec<String> = spec.label_names().iter().map(|s| s.to_string()).collect();

        let mut system = String::new();
        let default_instruction = match spec.kind {
            TaskKind::Classify => "Classify the input into exactly one of the labels below. Answer with the label only.",
            TaskKind::MultiLabel => {
                "Decide for one label at a time whether it applies to the input. Answer yes or no."
            }
        };
        match &spec.guidelines {
            Some(g) => {
                system.push_str(g.trim());
                system.push_str("\n\n");
                system.push_str(default_instruction);
            }
            None => system.push_str(default_instruction),
        }
        system.push_str("\n\nLabels:\n");
        for label in &spec.labels {
            match label.description() {
                Some(d) => system.push_str(&format!("- {}: {}\n", label.name(), d.trim())),
                None => system.push_str(&format!("- {}\n", label.name())),
            }
        }
        let system = system.trim_end().to_string();

        let mut questions = Vec::new();
        if spec.kind == TaskKind::MultiLabel {
            let mut qenv = Environment::new();
            qenv.set_undefined_behavior(UndefinedBehavior::Strict);
            let question = qenv
                .template_from_str(&spec.multi_label.question)
                .map_err(|e| Error::Template(format!("{e:#}")))?;
            for label in &spec.labels {
                let ctx = minijinja::context! { label => label.name(), description => label.description().unwrap_or("") };
                questions.push(
                    question
                        .render(ctx)
                        .map_err(|e| Error::Template(format!("{e:#}")))?,
                );
            }
        }
        Ok(Self {
            env,
            kind: spec.kind,
            system,
            shots: Vec::new(),
            labels,
            questions,
        })
    }

    /// Add few-shot examples. Classify examples become chat turns; multi-label examples are listed in the
    /// instructions (one turn per label would multiply the prompt).
    pub fn with_examples(mut self, examples: &[ResolvedExample]) -> Self {
        match self.kind {
            TaskKind::Classify => {
                for e in examples {
                    if let Some(&l) = e.labels.first() {
                        self.shots.push((e.text.clone(), self.labels[l].clone()));
                    }
                }
            }
            TaskKind::MultiLabel if !examples.is_empty() => {
                self.system.push_str("\n\nExamples:");
                for e in examples {
                    let names: Vec<&str> =
                        e.labels.iter().map(|&l| self.labels[l].as_str()).collect();
                    let names = if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    };
                    self.system
                        .push_str(&format!("\nInput: {}\nLabels: {names}", e.text));
                }
            }
            TaskKind::MultiLabel => {}
        }
        self
    }

    /// Render a row's input text with the task's template.
    pub fn render_input(&self, row: &serde_json::Map<String, serde_json::Value>) -> Result<String> {
        let template = self
            .env
            .get_template("input")
            .map_err(|e| Error::Template(e.to_string()))?;
        template
            .render(row)
            .map_err(|e| Error::Row(render_error_message(&e)))
    }

    /// The request for an item whose input renders to `text`.
    pub fn request(&self, text: &str) -> ScoreRequest {
        let mut messages = vec![ChatMessage {
            role: Role::System,
            content: self.system.clone(),
        }];
        for (input, answer) in &self.shots {
            messages.push(ChatMessage {
                role: Role::User,
                content: input.clone(),
            });
            messages.push(ChatMessage {
                role: Role::Assistant,
                content: answer.clone(),
            });
        }
        let branches = match self.kind {
            TaskKind::Classify => {
                messages.push(ChatMessage {
                    role: Role::User,
                    content: text.to_string(),
                });
                vec![ScoreBranch {
                    prompt: PromptSpec { messages },
                    options: self.labels.clone(),
                }]
            }
            TaskKind::MultiLabel => self
                .questions
                .iter()
                .map(|q| {
                    let mut messages = messages.clone();
                    messages.push(ChatMessage {
                        role: Role::User,
                        content: format!("{text}\n\n{q}"),
                    });
                    ScoreBranch {
                        prompt: PromptSpec { messages },
                        options: vec!["yes".into(), "no".into()],
                    }
                })
                .collect(),
        };
        ScoreRequest { branches }
    }

    /// The prompt of the first branch with [`ITEM_SENTINEL`] in place of the item: everything before the sentinel
    /// is shared by all items.
    pub fn prefix_probe(&self) -> PromptSpec {
        self.request(ITEM_SENTINEL).branches.swap_remove(0).prompt
    }

    /// Identity of the prompt layout (instructions, examples, options), recorded in every label's provenance.
    pub fn prompt_hash(&self) -> String {
        let probe = self.request(ITEM_SENTINEL);
        crate::sha256_hex(
            serde_json::to_string(&probe)
                .expect("prompt serialises")
                .as_bytes(),
        )
    }
}

/// minijinja's message for a strict-undefined error names the expression; say it in terms of columns.
fn render_error_message(e: &minijinja::Error) -> String {
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        format!("the input template uses a column this row does not have ({e})")
    } else {
        format!("the input template failed on this row ({e})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str) -> TaskSpec {
        TaskSpec::from_toml_str(&format!(
            r#"
name = "t"
type = "{kind}"
input = "Subject: {{{{ subject }}}}\n{{{{ body }}}}"
guidelines = "Spam sells something nobody asked for."
labels = ["ham", {{ name = "spam", description = "unsolicited advertising" }}]
"#
        ))
        .unwrap()
    }

    fn row(pairs: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn classify_request_has_one_branch_with_all_labels() {
        let builder = PromptBuilder::new(&spec("classify")).unwrap();
        let text = builder
            .render_input(&row(&[("subject", "hi"), ("body", "WIN NOW")]))
            .unwrap();
        assert_eq!(text, "Subject: hi\nWIN NOW");
        let request = builder.request(&text);
        assert_eq!(request.branches.len(), 1);
        assert_eq!(request.branches[0].options, ["ham", "spam"]);
        let system = &request.branches[0].prompt.messages[0].content;
        assert!(
            system.contains("- spam: unsolicited advertising"),
            "{system}"
        );
        assert!(system.starts_with("Spam sells"), "{system}");
    }

    #[test]
    fn missing_column_is_a_row_error_naming_the_problem() {
        let builder = PromptBuilder::new(&spec("classify")).unwrap();
        let err = builder
            .render_input(&row(&[("subject", "hi")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("column"), "{err}");
    }

    #[test]
    fn multi_label_asks_once_per_label_with_yes_no() {
        let builder = PromptBuilder::new(&spec("multi-label")).unwrap();
        let request = builder.request("text");
        assert_eq!(request.branches.len(), 2);
        let last = request.branches[1].prompt.messages.last().unwrap();
        assert!(last.content.contains("\"spam\""), "{}", last.content);
        assert_eq!(request.branches[1].options, ["yes", "no"]);
    }

    #[test]
    fn examples_become_turns_before_the_item_and_change_the_hash() {
        let plain = PromptBuilder::new(&spec("classify")).unwrap();
        let shots = PromptBuilder::new(&spec("classify"))
            .unwrap()
            .with_examples(&[ResolvedExample {
                text: "cheap pills".into(),
                labels: vec![1],
            }]);
        let messages = shots.request("x").branches.remove(0).prompt.messages;
        assert_eq!(messages[1].content, "cheap pills");
        assert_eq!(messages[2].content, "spam");
        assert_eq!(messages[3].content, "x");
        assert_ne!(plain.prompt_hash(), shots.prompt_hash());
    }

    #[test]
    fn completion_layout_ends_with_answer_cue() {
        let builder = PromptBuilder::new(&spec("classify")).unwrap();
        let text = builder.request("hello").branches[0]
            .prompt
            .render_completion();
        assert!(text.ends_with("Input: hello\nAnswer:"), "{text}");
    }
}
