//! What an annotator sees of an item (fields, options with keys, the suggestion) and which answers are valid:
//! the same shapes as the model's labels.

use assay_core::{PromptBuilder, TaskKind, TaskSpec};
use assay_store::{AssignmentView, Project};
use serde_json::{json, Map, Value};

/// A project with what rendering its items needs, cached per project.
pub struct ProjectCtx {
    /// The project.
    pub project: Project,
    /// Renders the task's templates.
    pub prompts: PromptBuilder,
}

impl ProjectCtx {
    /// Build the renderer of a project's task.
    pub fn new(project: Project) -> Result<Self, String> {
        let prompts = PromptBuilder::new(&project.spec).map_err(|e| e.to_string())?;
        Ok(Self { project, prompts })
    }

    fn spec(&self) -> &TaskSpec {
        &self.project.spec
    }

    /// The fields shown, in order: `{name, label, text}`.
    pub fn fields(&self, data: &Value) -> Vec<Value> {
        let empty = Map::new();
        let row = data.as_object().unwrap_or(&empty);
        let field = |name: &str, label: &str, text: &str| json!({"name": name, "label": label, "text": text});
        let rendered: Result<Vec<Value>, assay_core::Error> = match self.spec().kind {
            TaskKind::Classify | TaskKind::MultiLabel => self
                .prompts
                .render_input(row)
                .map(|text| vec![field("input", "Input", &text)]),
            TaskKind::Compare => self.prompts.render_pair(row).map(|pair| {
                let (context, response) = self
                    .spec()
                    .compare
                    .as_ref()
                    .map(|c| (c.context_name.clone(), c.response_name.clone()))
                    .unwrap_or_else(|| ("Context".into(), "Response".into()));
                vec![
                    field("context", &context, &pair.context),
                    field("response_1", &format!("{response} 1"), &pair.responses[0]),
                    field("response_2", &format!("{response} 2"), &pair.responses[1]),
                ]
            }),
            TaskKind::Rate => self.prompts.render_rated(row).map(|rated| {
                let (context, response) = self
                    .spec()
                    .rate
                    .as_ref()
                    .map(|r| (r.context_name.clone(), r.response_name.clone()))
                    .unwrap_or_else(|| ("Context".into(), "Response".into()));
                let mut fields = Vec::new();
                if let Some(c) = &rated.context {
                    fields.push(field("context", &context, c));
                }
                fields.push(field("response", &response, &rated.response));
                fields
            }),
        };
        // A row the template cannot render is still shown, column by column, but never the gold column (the
        // answer people are scored against) nor the `assay` column (the machine's label, hidden on audit items).
        rendered.unwrap_or_else(|_| {
            row.iter()
                .filter(|(k, _)| !self.hidden_column(k))
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        v => v.to_string(),
                    };
                    field(k, k, &text)
                })
                .collect()
        })
    }

    /// Whether a column is never shown to people. The task marks no hidden columns of its own yet; the gold
    /// column is one.
    pub fn hidden_column(&self, name: &str) -> bool {
        self.spec().gold.as_deref() == Some(name) || name == "assay"
    }

    /// The options with their keyboard keys.
    pub fn options(&self) -> Vec<Value> {
        let digit_key = |i: usize| match i {
            0..=8 => Value::String((i + 1).to_string()),
            9 => Value::String("0".into()),
            _ => Value::Null,
        };
        match self.spec().kind {
            TaskKind::Classify | TaskKind::MultiLabel => self
                .spec()
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    json!({"value": l.name(), "label": l.name(), "description": l.description(), "key": digit_key(i)})
                })
                .collect(),
            TaskKind::Compare => {
                let noun = self
                    .spec()
                    .compare
                    .as_ref()
                    .map(|c| c.response_name.clone())
                    .unwrap_or_else(|| "Response".into());
                vec![
                    json!({"value": "1", "label": format!("{noun} 1 is better"), "description": null, "key": "1"}),
                    json!({"value": "2", "label": format!("{noun} 2 is better"), "description": null, "key": "2"}),
                    json!({"value": "tie", "label": "Tie", "description": null, "key": "t"}),
                ]
            }
            TaskKind::Rate => {
                let scores = self.spec().rate.as_ref().map(|r| r.scores()).unwrap_or_default();
                let has_zero = scores.iter().any(|s| s == "0");
                scores
                    .iter()
                    .map(|s| {
                        let key = if s.len() == 1 {
                            Value::String(s.clone())
                        } else if s == "10" && !has_zero {
                            Value::String("0".into())
                        } else {
                            Value::Null
                        };
                        json!({"value": s, "label": s, "description": null, "key": key})
                    })
                    .collect()
            }
        }
    }

    /// Whether the machine's suggestion is shown for this item.
    pub fn shows_suggestion(&self, a: &AssignmentView) -> bool {
        self.project.review().show_suggestion
            && !a.reason.hides_suggestion()
            && a.suggestion.is_some()
    }

    /// The assignment as the API returns it.
    pub fn view(&self, a: &AssignmentView) -> Value {
        let suggestion = if self.shows_suggestion(a) {
            json!({"value": a.suggestion, "confidence": a.confidence})
        } else {
            Value::Null
        };
        json!({
            "assignment_id": a.id,
            "project_id": a.project_id,
            "project": self.project.name,
            "status": a.status,
            "kind": self.spec().kind.as_str(),
            "guidelines": self.spec().guidelines,
            "fields": self.fields(&a.data),
            "options": self.options(),
            "multiple": self.spec().kind == TaskKind::MultiLabel,
            "suggestion": suggestion,
            "answer": a.answer,
            "claimed_at": a.claimed_at,
            "answered_at": a.answered_at,
        })
    }

    /// The answer in the model's label shape, or why it is not one of the options.
    pub fn validate(&self, value: &Value) -> Result<Value, String> {
        let spec = self.spec();
        let names: Vec<String> = match spec.kind {
            TaskKind::Classify | TaskKind::MultiLabel => {
                spec.label_names().iter().map(|s| s.to_string()).collect()
            }
            TaskKind::Compare => vec!["1".into(), "2".into(), "tie".into()],
            TaskKind::Rate => spec.rate.as_ref().map(|r| r.scores()).unwrap_or_default(),
        };
        let one = |v: &Value| -> Result<String, String> {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) if spec.kind != TaskKind::Classify => n.to_string(),
                _ => return Err(format!("an answer is one of {}", names.join(", "))),
            };
            if names.contains(&s) {
                Ok(s)
            } else {
                Err(format!(
                    "`{s}` is not an option; the options are {}",
                    names.join(", ")
                ))
            }
        };
        if spec.kind == TaskKind::MultiLabel {
            let Value::Array(items) = value else {
                return Err("a multi-label answer is a list of labels (possibly empty)".into());
            };
            let mut chosen = Vec::new();
            for v in items {
                let s = one(v)?;
                if !chosen.contains(&s) {
                    chosen.push(s);
                }
            }
            // In the task's label order, as the model's labels are.
            chosen.sort_by_key(|s| names.iter().position(|n| n == s));
            Ok(json!(chosen))
        } else {
            one(value).map(Value::String)
        }
    }

    /// Whether an answer matches a gold value (through the task's label aliases for classify tasks).
    pub fn matches_gold(&self, gold: &Value, answer: &Value) -> bool {
        let text = |v: &Value| match v {
            Value::String(s) => s.trim().to_string(),
            v => v.to_string(),
        };
        match (self.spec().kind, gold, answer) {
            (TaskKind::Classify, g, Value::String(a)) => {
                let g = text(g);
                match self.spec().label_index(&g) {
                    Some(i) => self.spec().label_names()[i] == a,
                    None => g == *a,
                }
            }
            (TaskKind::MultiLabel, Value::Array(g), Value::Array(a)) => {
                let mut g: Vec<String> = g.iter().map(text).collect();
                let mut a: Vec<String> = a.iter().map(text).collect();
                g.sort();
                a.sort();
                g == a
            }
            (_, g, a) => text(g) == text(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(toml: &str) -> ProjectCtx {
        let spec = TaskSpec::from_toml_str(toml).unwrap();
        ProjectCtx::new(Project {
            id: 1,
            name: "p".into(),
            task_id: 1,
            spec,
            dataset_id: None,
            run_id: None,
            created_at: String::new(),
        })
        .unwrap()
    }

    #[test]
    fn keys_and_answer_shapes_follow_the_task_kind() {
        let c = ctx("name = \"t\"\ntype = \"multi-label\"\ninput = \"{{ text }}\"\nlabels = [\"a\", \"b\", \"c\"]\n");
        assert_eq!(c.options()[2]["key"], "3");
        assert_eq!(
            c.validate(&json!(["c", "a", "a"])).unwrap(),
            json!(["a", "c"])
        );
        assert!(c.validate(&json!("a")).is_err());
        assert!(c
            .validate(&json!(["z"]))
            .unwrap_err()
            .contains("not an option"));
        let r = ctx("name = \"r\"\ntype = \"rate\"\n[rate]\nresponse = \"{{ r }}\"\n");
        let keys: Vec<Value> = r.options().iter().map(|o| o["key"].clone()).collect();
        assert_eq!(keys.last().unwrap(), "0");
        assert_eq!(keys[0], "1");
        assert_eq!(r.validate(&json!(7)).unwrap(), json!("7"));
        assert_eq!(r.fields(&json!({"r": "hello"}))[0]["text"], json!("hello"));
    }
}
