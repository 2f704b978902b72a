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

/// A compare item: the context and the two responses as the model sees them, in the row's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairText {
    /// The context or instruction.
    pub context: String,
    /// Response 1 and response 2.
    pub responses: [String; 2],
}

/// A rate item: the context (if the task has one) and the response, as the model sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RatedText {
    /// The context or instruction.
    pub context: Option<String>,
    /// The response rated.
    pub response: String,
    /// A second response to the same context, rated on its own (`rate.response-2`).
    pub second: Option<String>,
}

/// The order a pair is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairOrder {
    /// Response 1 first (order AB).
    Forward,
    /// Response 2 first (order BA).
    Swapped,
}

/// Renders rows into [`ScoreRequest`]s for one task.
#[derive(Clone)]
pub struct PromptBuilder {
    env: Environment<'static>,
    kind: TaskKind,
    system: String,
    /// Few-shot turns (user text, assistant answer) placed before the item.
    shots: Vec<(String, String)>,
    labels: Vec<String>,
    /// Per-label questions for multi-label tasks, already rendered.
    questions: Vec<String>,
    /// Compare tasks: names and ending of the sample.
    compare: Option<CompareLayout>,
    /// Rate tasks: names and ending of the sample.
    rate: Option<RateLayout>,
}

/// How a rate sample is written.
#[derive(Debug, Clone)]
struct RateLayout {
    context_name: String,
    response_name: String,
    ending: String,
    has_context: bool,
    has_second: bool,
}

/// How a compare sample is written.
#[derive(Debug, Clone)]
struct CompareLayout {
    context_name: String,
    response_name: String,
    ending: String,
    rationale_ending: String,
}

impl CompareLayout {
    /// `Context - ...`, `Response 1 - ...`, `Response 2 - ...`, as in the RLAIF paper's prompts.
    fn sample(&self, context: &str, first: &str, second: &str) -> String {
        format!(
            "{} - {context}\n{} 1 - {first}\n{} 2 - {second}",
            self.context_name, self.response_name, self.response_name
        )
    }
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
        if let Some(compare) = &spec.compare {
            for (name, template) in [
                ("context", &compare.context),
                ("response-1", &compare.response_1),
                ("response-2", &compare.response_2),
            ] {
                env.add_template_owned(name, template.clone())
                    .map_err(|e| Error::Template(format!("compare.{name}: {e:#}")))?;
            }
        }
        if let Some(rate) = &spec.rate {
            let context = rate.context.clone().unwrap_or_default();
            let second = rate.response_2.clone().unwrap_or_default();
            for (name, template) in [
                ("rate-context", &context),
                ("rate-response", &rate.response),
                ("rate-response-2", &second),
            ] {
                env.add_template_owned(name, template.clone())
                    .map_err(|e| Error::Template(format!("{}: {e:#}", name.replace('-', "."))))?;
            }
        }
        let labels: Vec<String> = spec.label_names().iter().map(|s| s.to_string()).collect();

        let mut system = String::new();
        let default_instruction = match spec.kind {
            TaskKind::Classify => "Classify the input into exactly one of the labels below. Answer with the label only.",
            TaskKind::MultiLabel => {
                "Decide for one label at a time whether it applies to the input. Answer yes or no."
            }
            TaskKind::Compare | TaskKind::Rate => "",
        };
        if let Some(rate) = spec.rate.as_ref().filter(|_| spec.kind == TaskKind::Rate) {
            return Ok(Self::new_rate(spec, rate, env));
        }
        if let Some(compare) = spec
            .compare
            .as_ref()
            .filter(|_| spec.kind == TaskKind::Compare)
        {
            return Self::new_compare(spec, compare, env);
        }
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
            compare: None,
            rate: None,
        })
    }

    /// The direct-rating layout: the preamble (guidelines and the scale), then per item the sample and the
    /// ending; the options are the scores.
    fn new_rate(spec: &TaskSpec, rate: &crate::task::RateSpec, env: Environment<'static>) -> Self {
        let mut system = String::new();
        if let Some(g) = &spec.guidelines {
            system.push_str(g.trim());
            system.push_str("\n\n");
        }
        let noun = rate.response_name.to_lowercase();
        match &rate.context {
            Some(_) => system.push_str(&format!(
                "Given a {} and a {noun}, rate the {noun} on a scale from {} to {}, where {} is the worst and {} the best. Output only the number.",
                rate.context_name.to_lowercase(), rate.min, rate.max, rate.min, rate.max
            )),
            None => system.push_str(&format!(
                "Rate the {noun} on a scale from {} to {}, where {} is the worst and {} the best. Output only the number.",
                rate.min, rate.max, rate.min, rate.max
            )),
        }
        Self {
            env,
            kind: TaskKind::Rate,
            system,
            shots: Vec::new(),
            labels: rate.scores(),
            questions: Vec::new(),
            compare: None,
            rate: Some(RateLayout {
                context_name: rate.context_name.clone(),
                response_name: rate.response_name.clone(),
                ending: rate.ending(),
                has_context: rate.context.is_some(),
                has_second: rate.response_2.is_some(),
            }),
        }
    }

    /// Render a rate row: its context (if the task has one) and the response.
    pub fn render_rated(
        &self,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<RatedText> {
        let layout = self.rate.as_ref().expect("render_rated is for rate tasks");
        let render = |name: &str| -> Result<String> {
            self.env
                .get_template(name)
                .map_err(|e| Error::Template(e.to_string()))?
                .render(row)
                .map_err(|e| {
                    Error::Row(format!(
                        "{}: {}",
                        name.replace('-', "."),
                        render_error_message(&e)
                    ))
                })
        };
        Ok(RatedText {
            context: if layout.has_context {
                Some(render("rate-context")?)
            } else {
                None
            },
            response: render("rate-response")?,
            second: if layout.has_second {
                Some(render("rate-response-2")?)
            } else {
                None
            },
        })
    }

    /// The request rating `item`: one branch whose options are the scores, lowest first; a second branch rates
    /// the second response, when the task has one, in its own prompt.
    pub fn rate_request(&self, item: &RatedText) -> ScoreRequest {
        let layout = self.rate.as_ref().expect("rate_request is for rate tasks");
        let branch = |response: &str| {
            let mut sample = String::new();
            if let Some(context) = &item.context {
                sample.push_str(&format!("{} - {context}\n", layout.context_name));
            }
            sample.push_str(&format!(
                "{} - {response}\n{}",
                layout.response_name, layout.ending
            ));
            ScoreBranch {
                prompt: PromptSpec {
                    messages: vec![
                        ChatMessage {
                            role: Role::System,
                            content: self.system.clone(),
                        },
                        ChatMessage {
                            role: Role::User,
                            content: sample,
                        },
                    ],
                },
                options: self.labels.clone(),
            }
        };
        let mut branches = vec![branch(&item.response)];
        if let Some(second) = &item.second {
            branches.push(branch(second));
        }
        ScoreRequest { branches }
    }

    /// The RLAIF layout: the preamble (guidelines and what to answer), the exemplars, then per item the sample
    /// and the ending; the options are `1` and `2`.
    fn new_compare(
        spec: &TaskSpec,
        compare: &crate::task::CompareSpec,
        env: Environment<'static>,
    ) -> Result<Self> {
        let layout = CompareLayout {
            context_name: compare.context_name.clone(),
            response_name: compare.response_name.clone(),
            ending: compare.ending(),
            rationale_ending: compare.rationale_ending(),
        };
        let mut system = String::new();
        if let Some(g) = &spec.guidelines {
            system.push_str(g.trim());
            system.push_str("\n\n");
        }
        let noun = compare.response_name.to_lowercase();
        system.push_str(&format!(
            "Given a {} and two possible {noun}s, output 1 or 2 to indicate which {noun} is better.",
            compare.context_name.to_lowercase()
        ));
        let mut builder = Self {
            env,
            kind: TaskKind::Compare,
            system: String::new(),
            shots: Vec::new(),
            labels: vec!["1".into(), "2".into()],
            questions: Vec::new(),
            compare: Some(layout),
            rate: None,
        };
        for (i, example) in compare.examples.iter().enumerate() {
            let pair = builder
                .render_pair(&example.row)
                .map_err(|e| Error::Template(format!("compare example {}: {e}", i + 1)))?;
            let layout = builder.compare.as_ref().expect("compare layout");
            system.push_str("\n\n»»»» Example »»»»\n");
            system.push_str(&layout.sample(&pair.context, &pair.responses[0], &pair.responses[1]));
            if let Some(rationale) = &example.rationale {
                system.push_str(&format!("\nRationale: {}", rationale.trim()));
            }
            system.push_str(&format!("\n{}{}", layout.ending, example.preferred));
        }
        if !compare.examples.is_empty() {
            system.push_str("\n\n»»»» Follow the instructions and the example(s) above »»»»");
        }
        builder.system = system;
        Ok(builder)
    }

    /// Render a compare row: its context and both responses.
    pub fn render_pair(
        &self,
        row: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<PairText> {
        let render = |name: &str| -> Result<String> {
            self.env
                .get_template(name)
                .map_err(|e| Error::Template(e.to_string()))?
                .render(row)
                .map_err(|e| Error::Row(format!("compare.{name}: {}", render_error_message(&e))))
        };
        Ok(PairText {
            context: render("context")?,
            responses: [render("response-1")?, render("response-2")?],
        })
    }

    /// The conversation judging `pair` shown in `order`.
    pub fn compare_prompt(&self, pair: &PairText, order: PairOrder) -> PromptSpec {
        let ending = self
            .compare
            .as_ref()
            .expect("compare_prompt is for compare tasks")
            .ending
            .clone();
        self.compare_prompt_ending(pair, order, &ending)
    }

    /// Chain of thought, step one: the conversation asking for a rationale about `pair` in `order` (the ending
    /// replaced by "...explain which one is better. Rationale:"); the model's greedy continuation is the rationale.
    pub fn compare_rationale_prompt(&self, pair: &PairText, order: PairOrder) -> PromptSpec {
        let layout = self
            .compare
            .as_ref()
            .expect("compare_rationale_prompt is for compare tasks");
        self.compare_prompt_ending(pair, order, &layout.rationale_ending)
    }

    /// Chain of thought, step two: both orders with their rationales (AB, BA) appended after the rationale
    /// request, then the ending; the options are `1` and `2` as without chain of thought.
    pub fn compare_request_with_rationales(
        &self,
        pair: &PairText,
        rationales: &[String; 2],
    ) -> ScoreRequest {
        let layout = self
            .compare
            .as_ref()
            .expect("compare_request_with_rationales is for compare tasks");
        ScoreRequest {
            branches: [PairOrder::Forward, PairOrder::Swapped]
                .into_iter()
                .zip(rationales)
                .map(|(order, rationale)| ScoreBranch {
                    prompt: self.compare_prompt_ending(
                        pair,
                        order,
                        &format!(
                            "{} {}\n{}",
                            layout.rationale_ending,
                            rationale.trim(),
                            layout.ending
                        ),
                    ),
                    options: self.labels.clone(),
                })
                .collect(),
        }
    }

    fn compare_prompt_ending(&self, pair: &PairText, order: PairOrder, ending: &str) -> PromptSpec {
        let layout = self
            .compare
            .as_ref()
            .expect("compare_prompt is for compare tasks");
        let (first, second) = match order {
            PairOrder::Forward => (&pair.responses[0], &pair.responses[1]),
            PairOrder::Swapped => (&pair.responses[1], &pair.responses[0]),
        };
        PromptSpec {
            messages: vec![
                ChatMessage {
                    role: Role::System,
                    content: self.system.clone(),
                },
                ChatMessage {
                    role: Role::User,
                    content: format!(
                        "{}\n{}",
                        layout.sample(&pair.context, first, second),
                        ending
                    ),
                },
            ],
        }
    }

    /// Both orders of a pair as two branches of one request: order AB (response 1 first), then order BA. They
    /// share the instructions and the context, so a backend evaluates those once for both.
    pub fn compare_request(&self, pair: &PairText) -> ScoreRequest {
        ScoreRequest {
            branches: [PairOrder::Forward, PairOrder::Swapped]
                .into_iter()
                .map(|order| ScoreBranch {
                    prompt: self.compare_prompt(pair, order),
                    options: self.labels.clone(),
                })
                .collect(),
        }
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
            TaskKind::MultiLabel | TaskKind::Compare | TaskKind::Rate => {}
        }
        self
    }

    /// The request for an item with its own few-shot examples (`examples-from select = "similar"`) after the
    /// task's fixed ones.
    pub fn request_with_examples(&self, text: &str, examples: &[ResolvedExample]) -> ScoreRequest {
        if examples.is_empty() {
            return self.request(text);
        }
        self.clone().with_examples(examples).request(text)
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

    /// The request for an item whose input renders to `text`. For a compare task `text` stands for the context and
    /// both responses (used for [`Self::prefix_probe`]).
    pub fn request(&self, text: &str) -> ScoreRequest {
        if self.kind == TaskKind::Compare {
            return self.compare_request(&PairText {
                context: text.to_string(),
                responses: [text.to_string(), text.to_string()],
            });
        }
        if let Some(layout) = &self.rate {
            return self.rate_request(&RatedText {
                context: layout.has_context.then(|| text.to_string()),
                response: text.to_string(),
                second: None,
            });
        }
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
            TaskKind::Compare | TaskKind::Rate => {
                unreachable!("compare and rate requests are built above")
            }
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
    fn item_examples_follow_the_fixed_ones_and_leave_the_builder_unchanged() {
        let spec = spec("classify");
        let fixed = ResolvedExample {
            text: "fixed".into(),
            labels: vec![0],
        };
        let builder = PromptBuilder::new(&spec).unwrap().with_examples(&[fixed]);
        let near = ResolvedExample {
            text: "near".into(),
            labels: vec![1],
        };
        let request = builder.request_with_examples("item", &[near]);
        let messages = &request.branches[0].prompt.messages;
        let contents: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(&contents[1..], ["fixed", "ham", "near", "spam", "item"]);
        // Without item examples it is the plain request, and the builder itself is unchanged.
        assert_eq!(
            builder.request_with_examples("item", &[]),
            builder.request("item")
        );
        assert_eq!(builder.request("item").branches[0].prompt.messages.len(), 4);
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

    fn compare_spec(examples: &str) -> TaskSpec {
        TaskSpec::from_toml_str(&format!(
            r#"
name = "pref"
type = "compare"
guidelines = "A helpful response answers the question."

[compare]
context = "{{{{ instruction }}}}"
response-1 = "{{{{ a }}}}"
response-2 = "{{{{ b }}}}"
{examples}
"#
        ))
        .unwrap()
    }

    #[test]
    fn compare_request_judges_both_orders_with_the_rlaif_layout() {
        let builder = PromptBuilder::new(&compare_spec("")).unwrap();
        let pair = builder
            .render_pair(&row(&[
                ("instruction", "Say hi"),
                ("a", "hi"),
                ("b", "bye"),
            ]))
            .unwrap();
        let request = builder.compare_request(&pair);
        assert_eq!(request.branches.len(), 2);
        let ab = &request.branches[0];
        let ba = &request.branches[1];
        assert_eq!(ab.options, ["1", "2"]);
        assert_eq!(
            ab.prompt.messages[1].content,
            "Context - Say hi\nResponse 1 - hi\nResponse 2 - bye\nPreferred Response="
        );
        assert_eq!(
            ba.prompt.messages[1].content,
            "Context - Say hi\nResponse 1 - bye\nResponse 2 - hi\nPreferred Response="
        );
        let system = &ab.prompt.messages[0].content;
        assert!(system.starts_with("A helpful response"), "{system}");
        assert!(system.contains("output 1 or 2"), "{system}");
        // The item starts after the instructions: the probe's user message is the sentinel's.
        let probe = builder.prefix_probe();
        assert!(probe.messages[1].content.starts_with("Context - \u{1}"));
    }

    #[test]
    fn compare_exemplars_go_in_the_preamble_with_rationale_and_answer() {
        let builder = PromptBuilder::new(&compare_spec(
            r#"[[compare.examples]]
row = { instruction = "2+2?", a = "5", b = "4" }
preferred = 2
rationale = "4 is right."
"#,
        ))
        .unwrap();
        let system = &builder.prefix_probe().messages[0].content;
        assert!(
            system.contains(
                "»»»» Example »»»»\nContext - 2+2?\nResponse 1 - 5\nResponse 2 - 4\nRationale: 4 is right.\nPreferred Response=2\n\n»»»» Follow"
            ),
            "{system}"
        );
        let plain = PromptBuilder::new(&compare_spec("")).unwrap();
        assert_ne!(plain.prompt_hash(), builder.prompt_hash());
    }

    #[test]
    fn compare_row_missing_a_response_column_is_a_row_error() {
        let builder = PromptBuilder::new(&compare_spec("")).unwrap();
        let err = builder
            .render_pair(&row(&[("instruction", "x"), ("a", "y")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("response-2"), "{err}");
    }

    #[test]
    fn chain_of_thought_asks_for_a_rationale_then_scores_after_it() {
        let builder = PromptBuilder::new(&compare_spec("")).unwrap();
        let pair = builder
            .render_pair(&row(&[
                ("instruction", "Say hi"),
                ("a", "hi"),
                ("b", "bye"),
            ]))
            .unwrap();
        let ask = builder.compare_rationale_prompt(&pair, PairOrder::Swapped);
        assert!(
            ask.messages[1]
                .content
                .starts_with("Context - Say hi\nResponse 1 - bye\n")
                && ask.messages[1]
                    .content
                    .ends_with("explain which one is better. Rationale:"),
            "{}",
            ask.messages[1].content
        );
        let request =
            builder.compare_request_with_rationales(&pair, &["AB why. ".into(), "BA why.".into()]);
        assert_eq!(request.branches[0].options, ["1", "2"]);
        let ab = &request.branches[0].prompt.messages[1].content;
        assert!(
            ab.starts_with("Context - Say hi\nResponse 1 - hi\n"),
            "{ab}"
        );
        assert!(
            ab.ends_with("explain which one is better. Rationale: AB why.\nPreferred Response="),
            "{ab}"
        );
        let ba = &request.branches[1].prompt.messages[1].content;
        assert!(ba.contains("Rationale: BA why.\n"), "{ba}");
        // The shared prefix is unchanged: the user message still starts with the sample.
        assert_eq!(
            request.branches[0].prompt.messages[0],
            builder.prefix_probe().messages[0]
        );
    }

    #[test]
    fn rate_request_scores_every_point_of_the_scale() {
        let spec = TaskSpec::from_toml_str(
            "name = \"r\"\ntype = \"rate\"\n[rate]\ncontext = \"{{ q }}\"\nresponse = \"{{ a }}\"\nmin = 0\nmax = 3\n",
        )
        .unwrap();
        let builder = PromptBuilder::new(&spec).unwrap();
        let item = builder
            .render_rated(&row(&[("q", "2+2?"), ("a", "4")]))
            .unwrap();
        let request = builder.rate_request(&item);
        assert_eq!(request.branches.len(), 1);
        assert_eq!(request.branches[0].options, ["0", "1", "2", "3"]);
        let messages = &request.branches[0].prompt.messages;
        assert_eq!(messages[1].content, "Context - 2+2?\nResponse - 4\nRating=");
        assert!(
            messages[0].content.contains("from 0 to 3"),
            "{}",
            messages[0].content
        );
        assert!(builder.prefix_probe().messages[1]
            .content
            .starts_with("Context - \u{1}"));
        let err = builder
            .render_rated(&row(&[("q", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate.response"), "{err}");
    }

    #[test]
    fn rate_request_with_a_second_response_rates_each_in_its_own_branch() {
        let spec = TaskSpec::from_toml_str(
            "name = \"r\"\ntype = \"rate\"\n[rate]\ncontext = \"{{ q }}\"\nresponse = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\n",
        )
        .unwrap();
        let builder = PromptBuilder::new(&spec).unwrap();
        let item = builder
            .render_rated(&row(&[("q", "2+2?"), ("a", "4"), ("b", "5")]))
            .unwrap();
        let request = builder.rate_request(&item);
        assert_eq!(request.branches.len(), 2);
        let second = &request.branches[1].prompt.messages[1].content;
        assert_eq!(second, "Context - 2+2?\nResponse - 5\nRating=");
        assert_eq!(request.branches[1].options.len(), 10);
        let err = builder
            .render_rated(&row(&[("q", "x"), ("a", "y")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate.response.2"), "{err}");
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
