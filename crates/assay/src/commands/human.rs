//! People's answers flowing back into `assay label`'s output and `assay export`: the answers given in
//! `assay serve` are annotations of kind `human` on the same task version as the model's labels, and the final
//! label of an item is the people's majority where they answered, else the machine's.
//!
//! A review project usually imports `assay label`'s output (to carry the machine's suggestions), which is a dataset
//! of its own: the same rows plus the `assay` column. Answers are therefore matched to items by the row's content
//! without that column, not by dataset and row number.

use std::collections::{BTreeMap, HashMap};

use assay_store::LabeledRecord;
use serde_json::{json, Value};

/// One person's answer to an item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HumanAnswer {
    /// The person's name.
    pub annotator: String,
    /// The answer, in the shape of the model's label (a label name, a list, `"1"`/`"2"`/`"tie"`).
    pub value: Value,
    /// When it was given.
    pub answered_at: String,
}

/// A row's identity across datasets: its columns but `assay_column` (the column `assay label` adds), in key
/// order.
pub(crate) fn content_key(data: &serde_json::Map<String, Value>, assay_column: &str) -> String {
    let canonical: BTreeMap<&String, &Value> =
        data.iter().filter(|(k, _)| *k != assay_column).collect();
    serde_json::to_string(&canonical).expect("JSON values serialise")
}

/// People's answers by [`content_key`], from a task version's annotations, in a stable order (by annotator).
pub(crate) fn answers_by_content(
    labels: &[LabeledRecord],
    assay_column: &str,
) -> HashMap<String, Vec<HumanAnswer>> {
    let mut by_row: HashMap<String, Vec<HumanAnswer>> = HashMap::new();
    for l in labels.iter().filter(|l| l.annotator_kind == "human") {
        let Some(data) = l.data.as_object() else {
            continue;
        };
        by_row
            .entry(content_key(data, assay_column))
            .or_default()
            .push(HumanAnswer {
                annotator: l.annotator.clone(),
                value: l.value.clone(),
                answered_at: l.created_at.clone(),
            });
    }
    for answers in by_row.values_mut() {
        answers.sort_by(|a, b| a.annotator.cmp(&b.annotator));
    }
    by_row
}

/// Where an item's final label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LabelSource {
    /// A strict plurality of the people who answered.
    Human,
    /// The machine: nobody answered, or the people split evenly.
    Model,
}

impl LabelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Model => "model",
        }
    }
}

/// The people's answer with the most votes, if one has strictly more than every other.
pub(crate) fn human_majority(answers: &[HumanAnswer]) -> Option<(Value, usize)> {
    let mut counts: Vec<(&Value, usize)> = Vec::new();
    for a in answers {
        match counts.iter_mut().find(|(v, _)| **v == a.value) {
            Some(entry) => entry.1 += 1,
            None => counts.push((&a.value, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    match counts.as_slice() {
        [] => None,
        [(top, n)] => Some(((*top).clone(), *n)),
        [(top, n), (_, m), ..] if n > m => Some(((*top).clone(), *n)),
        _ => None,
    }
}

/// The final label of an item: the people's majority where there is one, else the model's label.
pub(crate) fn final_label(model_label: &Value, answers: &[HumanAnswer]) -> (Value, LabelSource) {
    match human_majority(answers) {
        Some((value, _)) => (value, LabelSource::Human),
        None => (model_label.clone(), LabelSource::Model),
    }
}

/// The `human` and `final` entries of the output's `assay` column.
pub(crate) fn output_fields(model_label: &Value, answers: &[HumanAnswer]) -> (Value, Value) {
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
