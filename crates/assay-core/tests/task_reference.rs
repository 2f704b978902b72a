//! The commented reference task file documents every key; it must parse, and with non-default values.

use assay_core::{CalibrationMethod, PromptFormat, TaskKind, TaskSpec};

#[test]
fn docs_task_reference_parses() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/task-reference.toml");
    let spec = TaskSpec::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.kind, TaskKind::Classify);
    assert_eq!(spec.label_names(), ["billing", "shipping", "other"]);
    assert_eq!(spec.label_index("delivery"), Some(1));
    assert_eq!(spec.examples.len(), 2);
    let from = spec.examples_from.as_ref().unwrap();
    assert!(
        from.path.ends_with("docs/few-shot.csv"),
        "relative paths resolve against the file: {from:?}"
    );
    assert_eq!(spec.model.prompt_format, PromptFormat::Chat);
    assert_eq!(spec.model.threads, Some(2));
    assert_eq!(spec.calibration.method, CalibrationMethod::Auto);
    assert_eq!(spec.calibration.content_free.len(), 3);
}

#[test]
fn docs_compare_reference_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/task-reference-compare.toml");
    let spec = TaskSpec::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.kind, TaskKind::Compare);
    let compare = spec.compare.as_ref().unwrap();
    assert_eq!(compare.ending(), "Preferred Response=");
    assert_eq!(compare.tie_margin, 0.02);
    assert_eq!(compare.examples.len(), 1);
    assert_eq!(compare.examples[0].preferred, 2);
    assert_eq!(spec.calibration.method, CalibrationMethod::None);
    let prompts = assay_core::PromptBuilder::new(&spec).unwrap();
    let system = &prompts.prefix_probe().messages[0].content;
    assert!(
        system.contains("Rationale: Response 2 is correct"),
        "{system}"
    );
}

#[test]
fn example_tasks_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for task in [
        "sms-spam/task.toml",
        "banking77/task.toml",
        "pandalm/task.toml",
        "hh-harmless/task.toml",
    ] {
        let spec = TaskSpec::from_path(&root.join(task)).unwrap_or_else(|e| panic!("{task}: {e}"));
        assert!(
            spec.dataset.as_ref().unwrap().exists(),
            "{task}: dataset missing"
        );
    }
}

#[test]
fn docs_rate_reference_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/task-reference-rate.toml");
    let spec = TaskSpec::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.kind, TaskKind::Rate);
    assert!(spec.dataset.as_ref().unwrap().exists(), "dataset missing");
    let rate = spec.rate.as_ref().unwrap();
    assert_eq!((rate.min, rate.max), (1, 10));
    assert_eq!(rate.ending(), "Rating=");
    let prompts = assay_core::PromptBuilder::new(&spec).unwrap();
    let row = serde_json::json!({"instruction": "Say hi", "input": "", "response1": "hi", "response2": "bye"});
    let item = prompts.render_rated(row.as_object().unwrap()).unwrap();
    let request = prompts.rate_request(&item);
    assert_eq!(
        request.branches[0].prompt.messages[1].content,
        "Instruction - Say hi\nResponse - hi\nRating="
    );
    assert_eq!(
        request.branches[1].prompt.messages[1].content,
        "Instruction - Say hi\nResponse - bye\nRating="
    );
    assert_eq!(request.branches[0].options.len(), 10);
    assert_eq!(rate.tie_margin, 0.02);
}

#[test]
fn docs_task_reference_review_section_parses() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/task-reference.toml");
    let spec = TaskSpec::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
    let review = spec.review.expect("a [review] section");
    assert_eq!(review.confidence_below, Some(0.7));
    assert_eq!(review.lowest_share, Some(0.05));
    assert_eq!(review.overlap, 2);
    assert_eq!(review.skill_column.as_deref(), Some("team"));
    assert!(review.show_suggestion && review.inconsistent);
}
