//! People's answers flowing back into `assay label`'s output and `assay export`: the answers given in
//! `assay serve` are annotations of kind `human` on the same task version as the model's labels, and the final
//! label of an item is the people's strict plurality where they answered, else the machine's.
//!
//! A review project usually imports `assay label`'s output (to carry the machine's suggestions), which is a dataset
//! of its own: the same rows plus the `assay` column. Answers are therefore matched to items by the row's content
//! without that column, not by dataset and row number.

use std::collections::{BTreeMap, HashMap};

use assay_core::AnnotatorKind;
use assay_quality::aggregation::{majority_vote, Answer, TiePolicy};
use assay_store::LabeledRecord;
use serde_json::{json, Map, Value};

/// One person's answer to an item.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanAnswer {
    /// The person's name.
    pub annotator: String,
    /// The answer, in the shape of the model's label (a label name, a list, `"1"`/`"2"`/`"tie"`).
    pub value: Value,
    /// When it was given.
    pub answered_at: String,
}

/// A row's identity across datasets: its columns but `assay_column` (the column `assay label` adds), in key
/// order.
pub fn content_key(data: &Map<String, Value>, assay_column: &str) -> String {
    let canonical: BTreeMap<&String, &Value> =
        data.iter().filter(|(k, _)| *k != assay_column).collect();
    serde_json::to_string(&canonical).expect("JSON values serialise")
}

/// `assay`, or a variant if the input already has such a column: no input column is ever overwritten.
pub fn free_column_name(columns: &[String]) -> String {
    ["assay", "assay_label", "_assay"]
        .iter()
        .map(|s| s.to_string())
        .find(|c| !columns.contains(c))
        .unwrap_or_else(|| "__assay".to_string())
}

/// People's answers to a task version, found by row content.
#[derive(Debug, Clone, Default)]
pub struct PeopleAnswers {
    by_content: HashMap<String, Vec<HumanAnswer>>,
    assay_column: String,
}

impl PeopleAnswers {
    /// Index the `human` annotations among `labels` by the content of their rows, in a stable order (by
    /// annotator); `assay_column` is the column `assay label` added to the rows people saw.
    pub fn new(labels: &[LabeledRecord], assay_column: &str) -> Self {
        let mut by_content: HashMap<String, Vec<HumanAnswer>> = HashMap::new();
        for l in labels
            .iter()
            .filter(|l| l.annotator_kind == AnnotatorKind::Human)
        {
            let Some(data) = l.data.as_object() else {
                continue;
            };
            by_content
                .entry(content_key(data, assay_column))
                .or_default()
                .push(HumanAnswer {
                    annotator: l.annotator.clone(),
                    value: l.value.clone(),
                    answered_at: l.created_at.clone(),
                });
        }
        for answers in by_content.values_mut() {
            answers.sort_by(|a, b| a.annotator.cmp(&b.annotator));
        }
        Self {
            by_content,
            assay_column: assay_column.to_string(),
        }
    }

    /// Index people's answers for the model's `labels`: the column `assay label` added is the first name the
    /// model rows' columns leave free.
    pub fn for_model_labels(model: &[LabeledRecord], human: &[LabeledRecord]) -> Self {
        let columns: Vec<String> = model
            .first()
            .and_then(|l| l.data.as_object())
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        Self::new(human, &free_column_name(&columns))
    }

    /// The answers to the row with these columns.
    pub fn for_row(&self, data: &Map<String, Value>) -> &[HumanAnswer] {
        self.by_content
            .get(&content_key(data, &self.assay_column))
            .map_or(&[][..], Vec::as_slice)
    }

    /// The answers to a stored record's row.
    pub fn for_record(&self, label: &LabeledRecord) -> &[HumanAnswer] {
        label.data.as_object().map_or(&[][..], |d| self.for_row(d))
    }
}

/// Where an item's final label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelSource {
    /// A strict plurality of the people who answered.
    Human,
    /// The machine: nobody answered, or the people split evenly.
    Model,
}

impl LabelSource {
    /// As written in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => AnnotatorKind::Human.as_str(),
            Self::Model => AnnotatorKind::Model.as_str(),
        }
    }
}

/// The people's answer with the most votes, if one has strictly more than every other, and its votes.
pub fn human_majority(answers: &[HumanAnswer]) -> Option<(Value, usize)> {
    let mut distinct: Vec<&Value> = Vec::new();
    let coded: Vec<Answer> = answers
        .iter()
        .enumerate()
        .map(|(person, a)| {
            let code = distinct
                .iter()
                .position(|v| **v == a.value)
                .unwrap_or_else(|| {
                    distinct.push(&a.value);
                    distinct.len() - 1
                });
            Answer::new(0, person, code)
        })
        .collect();
    if coded.is_empty() {
        return None;
    }
    let votes = majority_vote(&coded, 1, distinct.len(), TiePolicy::Report).ok()?;
    let code = votes.first()?.label?;
    let agreeing = coded.iter().filter(|a| a.label == code).count();
    Some((distinct[code].clone(), agreeing))
}

/// The final label of an item: the people's majority where there is one, else the model's label.
pub fn final_label(model_label: &Value, answers: &[HumanAnswer]) -> (Value, LabelSource) {
    match human_majority(answers) {
        Some((value, _)) => (value, LabelSource::Human),
        None => (model_label.clone(), LabelSource::Model),
    }
}

/// The `human` and `final` entries of the output's `assay` column.
pub fn output_fields(model_label: &Value, answers: &[HumanAnswer]) -> (Value, Value) {
    let (label, source) = final_label(model_label, answers);
    let agreeing = match source {
        LabelSource::Human => answers.iter().filter(|a| a.value == label).count(),
        LabelSource::Model => 0,
    };
    let human: Vec<Value> = answers
        .iter()
        .map(|a| json!({"annotator": a.annotator, "label": a.value, "answered_at": a.answered_at}))
        .collect();
    (
        Value::Array(human),
        json!({
            "label": label,
            "source": source.as_str(),
            "human_answers": answers.len(),
            "human_agreeing": agreeing,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(who: &str, value: &str) -> HumanAnswer {
        HumanAnswer {
            annotator: who.into(),
            value: json!(value),
            answered_at: "t".into(),
        }
    }

    #[test]
    fn content_keys_ignore_column_order_and_the_assay_column() {
        let raw = json!({"text": "hi", "id": "2"});
        let labeled = json!({"id": "2", "text": "hi", "assay": {"label": "ham"}});
        let key = |v: &Value| content_key(v.as_object().unwrap(), "assay");
        assert_eq!(key(&raw), key(&labeled));
        assert_ne!(key(&raw), key(&json!({"text": "hi", "id": "3"})));
    }

    #[test]
    fn people_override_the_machine_only_with_a_strict_plurality() {
        let model = json!("spam");
        assert_eq!(
            final_label(&model, &[]),
            (model.clone(), LabelSource::Model)
        );
        let one = [answer("ann", "ham")];
        assert_eq!(
            final_label(&model, &one),
            (json!("ham"), LabelSource::Human)
        );
        let split = [answer("ann", "ham"), answer("bob", "spam")];
        assert_eq!(
            final_label(&model, &split),
            (model.clone(), LabelSource::Model)
        );
        let two_to_one = [
            answer("ann", "ham"),
            answer("bob", "spam"),
            answer("cy", "ham"),
        ];
        assert_eq!(
            final_label(&model, &two_to_one),
            (json!("ham"), LabelSource::Human)
        );
        let (human, fin) = output_fields(&model, &two_to_one);
        assert_eq!(human.as_array().unwrap().len(), 3);
        assert_eq!(fin["human_agreeing"], 2);
        assert_eq!(fin["source"], "human");
    }
}
