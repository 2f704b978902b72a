//! Laying out prompts as text for `/v1/completions`, and reading option log-probabilities out of answers.

use assay_core::{ChatTemplate, PromptSpec};
use serde_json::Value;

/// Log-probability given to an option the answer gives no evidence for in `generate` scoring: the generated
/// label gets 0, the others this (a stand-in for -inf, which JSON cannot hold).
pub const NOT_GENERATED: f64 = -100.0;

/// The prompt as text in `template`, ending where the answer starts.
pub fn render(prompt: &PromptSpec, template: ChatTemplate) -> String {
    match template {
        ChatTemplate::Completion => prompt.render_completion(),
        ChatTemplate::Chatml => {
            let mut text = String::new();
            for m in &prompt.messages {
                text.push_str("<|im_start|>");
                text.push_str(m.role.as_str());
                text.push('\n');
                text.push_str(&m.content);
                text.push_str("<|im_end|>\n");
            }
            text.push_str("<|im_start|>assistant\n");
            text
        }
    }
}

/// What goes between the prompt and an option: a space after the completion layout's `Answer:`, nothing after a
/// chat template's opened assistant turn (as the embedded backend does).
pub fn separator(template: ChatTemplate) -> &'static str {
    match template {
        ChatTemplate::Completion => " ",
        ChatTemplate::Chatml => "",
    }
}

/// The log-probability of `option`'s tokens in an echoed `/v1/completions` answer whose prompt ended with it.
///
/// The option's tokens are found from the end: the generated tokens are dropped (`usage.completion_tokens` of
/// them, else none or one, whichever leaves the echoed text ending with the option), then tokens are taken
/// backwards until their text covers the option. A token that straddles the boundary (the option merged with
/// the prompt's end) counts, as in the embedded backend. (`text_offset` is not used: llama-cpp-python leaves
/// special tokens' text out of it, so it drifts from the prompt's characters.)
pub fn echoed_option_logprob(answer: &Value, option: &str) -> Result<f64, String> {
    let logprobs = answer
        .pointer("/choices/0/logprobs")
        .filter(|v| !v.is_null())
        .ok_or("the answer has no logprobs (does the server support echo + logprobs?)")?;
    let token_logprobs = logprobs
        .get("token_logprobs")
        .and_then(Value::as_array)
        .ok_or("the answer's logprobs have no token_logprobs")?;
    let tokens: Vec<&str> = logprobs
        .get("tokens")
        .and_then(Value::as_array)
        .ok_or("the answer's logprobs have no tokens")?
        .iter()
        .map(|t| t.as_str().unwrap_or(""))
        .collect();
    if tokens.len() != token_logprobs.len() {
        return Err("tokens and token_logprobs differ in length".into());
    }
    let mut generated_counts = Vec::new();
    if let Some(n) = answer
        .pointer("/usage/completion_tokens")
        .and_then(Value::as_u64)
    {
        generated_counts.push(n as usize);
    }
    generated_counts.extend([0, 1]);
    let option_chars = option.chars().count();
    for generated in generated_counts {
        let Some(echoed) = tokens.len().checked_sub(generated) else {
            continue;
        };
        let mut covered = 0;
        let mut first = echoed;
        while first > 0 && covered < option_chars {
            first -= 1;
            covered += tokens[first].chars().count();
        }
        if covered < option_chars || first == 0 {
            continue;
        }
        let text: String = tokens[first..echoed].concat();
        if !text.ends_with(option) {
            continue;
        }
        let mut total = 0.0;
        for (i, lp) in token_logprobs.iter().enumerate().take(echoed).skip(first) {
            total += lp
                .as_f64()
                .ok_or_else(|| format!("token {i} of the option has no log-probability"))?;
        }
        return Ok(total);
    }
    Err(format!(
        "the echoed tokens do not end with the option {option:?} (does the server echo the prompt?)"
    ))
}

/// The first answer token's alternatives, `(text, logprob)`: the chat (`logprobs.content[0]`) or completions
/// (`logprobs.tokens[0]`, `top_logprobs[0]`) shape.
pub fn first_token_alternatives(answer: &Value) -> Result<Vec<(String, f64)>, String> {
    let logprobs = answer
        .pointer("/choices/0/logprobs")
        .filter(|v| !v.is_null())
        .ok_or("the answer has no logprobs")?;
    let mut out = Vec::new();
    if let Some(content) = logprobs.get("content").and_then(Value::as_array) {
        let first = content.first().ok_or("the answer's logprobs are empty")?;
        if let (Some(t), Some(lp)) = (
            first.get("token").and_then(Value::as_str),
            first.get("logprob").and_then(Value::as_f64),
        ) {
            out.push((t.to_string(), lp));
        }
        for alt in first
            .get("top_logprobs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(t), Some(lp)) = (
                alt.get("token").and_then(Value::as_str),
                alt.get("logprob").and_then(Value::as_f64),
            ) {
                out.push((t.to_string(), lp));
            }
        }
    } else {
        if let (Some(t), Some(lp)) = (
            logprobs.pointer("/tokens/0").and_then(Value::as_str),
            logprobs
                .pointer("/token_logprobs/0")
                .and_then(Value::as_f64),
        ) {
            out.push((t.to_string(), lp));
        }
        if let Some(top) = logprobs
            .pointer("/top_logprobs/0")
            .and_then(Value::as_object)
        {
            for (t, lp) in top {
                if let Some(lp) = lp.as_f64() {
                    out.push((t.clone(), lp));
                }
            }
        }
    }
    // One entry per distinct text (servers repeat the chosen token among the alternatives).
    out.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    out.dedup_by(|a, b| a.0 == b.0);
    if out.is_empty() {
        return Err("the answer lists no first-token alternatives".into());
    }
    Ok(out)
}

/// The first-token evidence an answer holds: its alternatives, the probability mass they cover and the least
/// likely of them. Reads the server's shape, or the compact one [`compact_first_token`] stores.
pub type FirstTokenEvidence = (Vec<(String, f64)>, f64, f64);

/// Read [`FirstTokenEvidence`] from an answer.
pub fn first_token_evidence(answer: &Value) -> Result<FirstTokenEvidence, String> {
    if let Some(compact) = answer.get("assay_first_token") {
        let alternatives: Vec<(String, f64)> =
            serde_json::from_value(compact.get("alternatives").cloned().unwrap_or_default())
                .map_err(|e| format!("stored first-token alternatives: {e}"))?;
        let mass = compact.get("listed_mass").and_then(Value::as_f64);
        let lowest = compact.get("lowest").and_then(Value::as_f64);
        return match (mass, lowest) {
            (Some(m), Some(l)) => Ok((alternatives, m, l)),
            _ => Err("stored first-token evidence is incomplete".into()),
        };
    }
    let alternatives = first_token_alternatives(answer)?;
    let mass = alternatives.iter().map(|(_, lp)| lp.exp()).sum();
    let lowest = alternatives
        .iter()
        .map(|(_, lp)| *lp)
        .fold(f64::INFINITY, f64::min);
    Ok((alternatives, mass, lowest))
}

/// Alternatives kept besides those that start an option: the most likely ones, for the record.
const KEPT_ALTERNATIVES: usize = 20;

/// A first-token answer as stored: asking for the whole vocabulary's alternatives (the only way to see a tiny
/// model's label tokens) returns megabytes per item, so the answer keeps the most likely alternatives, every
/// alternative some option starts with, and the mass and floor of the full list; scores read from it are
/// identical to scores read from the full answer.
pub fn compact_first_token(mut answer: Value, options: &[String], space_before: bool) -> Value {
    if answer.get("assay_first_token").is_some() {
        return answer;
    }
    let Ok((mut alternatives, mass, lowest)) = first_token_evidence(&answer) else {
        return answer;
    };
    alternatives.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let kept: Vec<(String, f64)> = alternatives
        .iter()
        .enumerate()
        .filter(|(i, (t, _))| {
            let t = if space_before {
                t.trim_start_matches(' ')
            } else {
                t.as_str()
            };
            *i < KEPT_ALTERNATIVES || (!t.is_empty() && options.iter().any(|o| o.starts_with(t)))
        })
        .map(|(_, a)| a.clone())
        .collect();
    if let Some(choice) = answer
        .pointer_mut("/choices/0")
        .and_then(Value::as_object_mut)
    {
        choice.remove("logprobs");
    }
    if let Some(o) = answer.as_object_mut() {
        o.insert(
            "assay_first_token".into(),
            serde_json::json!({"alternatives": kept, "listed_mass": mass, "lowest": lowest}),
        );
    }
    answer
}

/// Option log-probabilities from the first answer token's alternatives: each option takes the longest
/// alternative it starts with (leading spaces of the alternative ignored when the layout puts a space before
/// the answer). Options whose start is not among the alternatives share the mass left over, capped at the
/// least likely alternative listed.
pub fn first_token_scores(
    evidence: &FirstTokenEvidence,
    options: &[String],
    space_before: bool,
) -> Vec<f64> {
    let (alternatives, listed, lowest) = (&evidence.0, evidence.1, evidence.2);
    let matches = |option: &str| {
        alternatives
            .iter()
            .filter_map(|(t, lp)| {
                let t = if space_before {
                    t.trim_start_matches(' ')
                } else {
                    t.as_str()
                };
                (!t.is_empty() && option.starts_with(t)).then_some((t.len(), *lp))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
            .map(|(_, lp)| lp)
    };
    let found: Vec<Option<f64>> = options.iter().map(|o| matches(o)).collect();
    let unseen = found.iter().filter(|f| f.is_none()).count().max(1) as f64;
    let rest = ((1.0 - listed).max(1e-12) / unseen).ln().min(lowest);
    found.into_iter().map(|f| f.unwrap_or(rest)).collect()
}

/// The generated text of a chat or completions answer.
pub fn generated_text(answer: &Value) -> Result<String, String> {
    answer
        .pointer("/choices/0/message/content")
        .or_else(|| answer.pointer("/choices/0/text"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "the answer has no generated text".to_string())
}

/// Which option a generated answer names: exactly, then ignoring case, then the longest option the answer
/// starts with; `None` when it names none.
pub fn match_generated(text: &str, options: &[String]) -> Option<usize> {
    let t = text
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '.' || c == '`');
    options
        .iter()
        .position(|o| o == t)
        .or_else(|| options.iter().position(|o| o.eq_ignore_ascii_case(t)))
        .or_else(|| {
            let lower = t.to_lowercase();
            options
                .iter()
                .enumerate()
                .filter(|(_, o)| lower.starts_with(&o.to_lowercase()))
                .max_by_key(|(_, o)| o.len())
                .map(|(i, _)| i)
        })
}

/// Tokens used by an answer (`usage.prompt_tokens`, `usage.completion_tokens`), if it says.
pub fn usage(answer: &Value) -> Option<(u64, u64)> {
    let u = answer.get("usage")?;
    Some((
        u.get("prompt_tokens")?.as_u64()?,
        u.get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    ))
}

/// The answer as stored in the cache: echoed answers lose their per-token `top_logprobs` (unused, and most of
/// the bytes); everything else is kept.
pub fn trimmed_for_cache(mut answer: Value) -> Value {
    if let Some(lp) = answer
        .pointer_mut("/choices/0/logprobs")
        .and_then(Value::as_object_mut)
    {
        if lp.contains_key("token_logprobs") && lp.contains_key("tokens") {
            lp.remove("top_logprobs");
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_core::{ChatMessage, Role};
    use serde_json::json;

    #[test]
    fn chatml_matches_the_smollm2_template_with_the_assistant_turn_open() {
        let prompt = PromptSpec {
            messages: vec![
                ChatMessage {
                    role: Role::System,
                    content: "Sys".into(),
                },
                ChatMessage {
                    role: Role::User,
                    content: "Hi".into(),
                },
            ],
        };
        assert_eq!(
            render(&prompt, ChatTemplate::Chatml),
            "<|im_start|>system\nSys<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(render(&prompt, ChatTemplate::Completion).ends_with("Input: Hi\nAnswer:"));
    }

    /// An echoed answer as llama-cpp-python writes it for prompt "<s>ab" + option "cde" (special tokens' text
    /// missing from `text_offset`), with no generated token.
    fn echoed() -> Value {
        json!({"choices": [{"text": "<s>abcde", "logprobs": {
            "tokens": ["<s>", "a", "b", "cd", "e"],
            "text_offset": [0, 0, 1, 2, 4],
            "token_logprobs": [null, -1.0, -0.5, -0.25, -3.0],
            "top_logprobs": [null, {"a": -1.0}, {"b": -0.5}, {"cd": -0.25}, {"e": -3.0}]
        }}], "usage": {"prompt_tokens": 5, "completion_tokens": 0}})
    }

    #[test]
    fn echoed_option_sums_the_option_tokens_only() {
        assert_eq!(echoed_option_logprob(&echoed(), "cde"), Ok(-3.25));
        // The option merged with the prompt's last character: the straddling token counts.
        assert_eq!(echoed_option_logprob(&echoed(), "de"), Ok(-3.25));
        assert_eq!(echoed_option_logprob(&echoed(), "e"), Ok(-3.0));
        // A generated token after the option (vLLM, OpenAI) is dropped, by usage or by the text.
        let mut a = echoed();
        a["choices"][0]["logprobs"]["tokens"]
            .as_array_mut()
            .unwrap()
            .push(json!("X"));
        a["choices"][0]["logprobs"]["token_logprobs"]
            .as_array_mut()
            .unwrap()
            .push(json!(-9.0));
        assert_eq!(echoed_option_logprob(&a, "cde"), Ok(-3.25));
        a["usage"]["completion_tokens"] = json!(1);
        assert_eq!(echoed_option_logprob(&a, "cde"), Ok(-3.25));
        assert!(echoed_option_logprob(&echoed(), "xyz").is_err());
        assert!(echoed_option_logprob(&json!({"choices": [{"text": "x"}]}), "x").is_err());
        assert_eq!(usage(&echoed()), Some((5, 0)));
        let trimmed = trimmed_for_cache(echoed());
        assert!(trimmed
            .pointer("/choices/0/logprobs/top_logprobs")
            .is_none());
        assert_eq!(echoed_option_logprob(&trimmed, "cde"), Ok(-3.25));
    }

    #[test]
    fn first_token_scores_take_the_longest_match_and_share_the_rest() {
        let chat = json!({"choices": [{"logprobs": {"content": [{"token": "sp", "logprob": -0.2,
            "top_logprobs": [{"token": "sp", "logprob": -0.2}, {"token": "spam", "logprob": -1.0},
                             {"token": "h", "logprob": -2.5}]}]}}]});
        assert_eq!(first_token_alternatives(&chat).unwrap().len(), 3);
        let evidence = first_token_evidence(&chat).unwrap();
        let options = ["ham".to_string(), "spam".to_string(), "other".to_string()];
        let scores = first_token_scores(&evidence, &options, false);
        assert_eq!(scores[0], -2.5);
        assert_eq!(scores[1], -1.0);
        let rest = 1.0 - (-0.2f64).exp() - (-1.0f64).exp() - (-2.5f64).exp();
        assert!((scores[2] - rest.max(1e-12).ln().min(-2.5)).abs() < 1e-12);
        // Completions shape, with a space before the answer.
        let completion = json!({"choices": [{"logprobs": {"tokens": [" ham"], "token_logprobs": [-0.1],
            "top_logprobs": [{" ham": -0.1, " spam": -2.4}]}}]});
        let compact = compact_first_token(chat.clone(), &options, false);
        assert!(compact.pointer("/choices/0/logprobs").is_none());
        assert_eq!(
            first_token_scores(&first_token_evidence(&compact).unwrap(), &options, false),
            scores
        );
        let evidence = first_token_evidence(&completion).unwrap();
        assert_eq!(
            first_token_scores(&evidence, &options[..2], true),
            vec![-0.1, -2.4]
        );
    }

    #[test]
    fn generated_answers_match_labels_loosely() {
        let options = [
            "card_arrival".to_string(),
            "card".to_string(),
            "Spam".to_string(),
        ];
        assert_eq!(match_generated(" card_arrival\n", &options), Some(0));
        assert_eq!(match_generated("\"spam\".", &options), Some(2));
        assert_eq!(match_generated("card_arrival is it", &options), Some(0));
        assert_eq!(match_generated("nothing", &options), None);
        let chat = json!({"choices": [{"message": {"role": "assistant", "content": "Spam"}}]});
        assert_eq!(generated_text(&chat).unwrap(), "Spam");
    }

    mod fuzz {
        //! Issue 11 §3: whatever a server sends, reading it never panics; every parser returns `Ok` or `Err`.
        //! 256 cases per property, 4 properties (1,024 cases per `cargo test`).

        use super::super::*;
        use assay_core::{ChatMessage, Role};
        use proptest::prelude::*;
        use serde_json::json;

        /// Keys the parsers look for, and some they do not.
        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    "choices",
                    "logprobs",
                    "tokens",
                    "token_logprobs",
                    "top_logprobs",
                    "content",
                    "token",
                    "logprob",
                    "usage",
                    "prompt_tokens",
                    "completion_tokens",
                    "text",
                    "message",
                    "assay_first_token",
                    "alternatives",
                    "listed_mass",
                    "lowest",
                    "0",
                ])
                .prop_map(str::to_string),
                ".{0,6}",
            ]
        }

        /// Any JSON value, nested up to 4 deep.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|i| json!(i)),
                any::<u64>().prop_map(|i| json!(i)),
                any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
                    .map(Value::Number)),
                prop::sample::select(vec![-0.0, -1e-300, -1e300, 0.5, 1.0, -700.0])
                    .prop_map(|f| json!(f)),
                ".{0,12}".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                    prop::collection::vec((key(), inner), 0..8)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        /// Answers shaped like the servers' (chat, completions, echoed, compact), with random parts.
        fn answer() -> impl Strategy<Value = Value> {
            let tokens = prop::collection::vec(
                prop_oneof![".{0,4}".prop_map(Value::String), json_value()],
                0..10,
            );
            let numbers = prop::collection::vec(
                prop_oneof![
                    any::<f64>().prop_map(|f| json!(f)),
                    Just(Value::Null),
                    json_value()
                ],
                0..10,
            );
            prop_oneof![
                json_value(),
                (tokens.clone(), numbers.clone(), json_value(), json_value()).prop_map(|(t, l, top, usage)| {
                    json!({"choices": [{"text": "x", "logprobs": {"tokens": t, "token_logprobs": l,
                        "top_logprobs": top}}], "usage": usage})
                }),
                (json_value(), prop::collection::vec(json_value(), 0..5)).prop_map(|(first, alts)| {
                    json!({"choices": [{"logprobs": {"content": [{"token": first, "logprob": -0.5,
                        "top_logprobs": alts}]}, "message": {"content": first}}]})
                }),
                (json_value(), json_value(), json_value()).prop_map(|(a, m, l)| {
                    json!({"assay_first_token": {"alternatives": a, "listed_mass": m, "lowest": l}})
                }),
            ]
        }

        /// Every parser on one answer, with the given options.
        fn read_all(answer: &Value, options: &[String], space_before: bool) {
            for option in options {
                let _ = echoed_option_logprob(answer, option);
            }
            let _ = first_token_alternatives(answer);
            if let Ok(evidence) = first_token_evidence(answer) {
                let _ = first_token_scores(&evidence, options, space_before);
            }
            let compact = compact_first_token(answer.clone(), options, space_before);
            if let Ok(evidence) = first_token_evidence(&compact) {
                let _ = first_token_scores(&evidence, options, space_before);
            }
            if let Ok(text) = generated_text(answer) {
                let _ = match_generated(&text, options);
            }
            let _ = usage(answer);
            let _ = echoed_option_logprob(&trimmed_for_cache(answer.clone()), "a");
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_json_value_is_read_without_panicking(
                answer in answer(),
                options in prop::collection::vec(".{0,6}", 0..4),
                space_before in any::<bool>(),
            ) {
                read_all(&answer, &options, space_before);
            }

            #[test]
            fn any_string_is_read_without_panicking(
                text in prop_oneof![".{0,64}", "[\\[\\]{}\",:0-9a-z. -]{0,64}"],
                options in prop::collection::vec(".{0,6}", 0..4),
            ) {
                if let Ok(answer) = serde_json::from_str::<Value>(&text) {
                    read_all(&answer, &options, false);
                }
                let _ = match_generated(&text, &options);
                for option in &options {
                    let _ = echoed_option_logprob(&json!({"choices": [{"logprobs": {
                        "tokens": [text.clone()], "token_logprobs": [-1.0]}}]}), option);
                }
            }

            #[test]
            fn echoed_answers_of_any_tokens_are_read_without_panicking(
                tokens in prop::collection::vec(".{0,3}", 0..12),
                logprobs in prop::collection::vec(prop_oneof![any::<f64>().prop_map(|f| json!(f)), Just(Value::Null)], 0..12),
                completion in prop_oneof![Just(Value::Null), any::<u64>().prop_map(|n| json!(n)), (0u64..4).prop_map(|n| json!(n))],
                option in ".{0,6}",
            ) {
                let answer = json!({"choices": [{"logprobs": {"tokens": tokens, "token_logprobs": logprobs}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": completion}});
                let _ = echoed_option_logprob(&answer, &option);
            }

            #[test]
            fn any_prompt_is_laid_out_without_panicking(
                messages in prop::collection::vec((0..3u8, ".{0,16}"), 0..5),
            ) {
                let prompt = PromptSpec {
                    messages: messages
                        .into_iter()
                        .map(|(r, content)| ChatMessage {
                            role: [Role::System, Role::User, Role::Assistant][r as usize],
                            content,
                        })
                        .collect(),
                };
                for template in [ChatTemplate::Chatml, ChatTemplate::Completion] {
                    let _ = render(&prompt, template) + separator(template);
                }
            }
        }
    }
}
