//! Issue 11 (section 3): property tests over untrusted input. Task TOML (`TaskSpec::from_toml_str`) and the
//! dataset readers (`open_dataset` with each extension) never panic on random or mutated input, and every row a
//! reader yields is a `Row` or a `RowError`. Bounded case counts keep them in `cargo test`.

use std::io::Write as _;

use assay_core::TaskSpec;
use proptest::prelude::*;

/// Cases per property (proptest's default is 256; these run on every `cargo test`).
const CASES: u32 = 256;

/// Task files to mutate: the reference file and a few minimal tasks of each kind.
fn seeds() -> Vec<String> {
    let reference = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/task-reference.toml"),
    )
    .unwrap_or_default();
    vec![
        reference,
        "name = \"t\"\ntype = \"classify\"\ninput = \"{{ text }}\"\ngold = \"label\"\nlabels = [\"a\", { name = \"b\", aliases = [\"B\"] }]\n".into(),
        "name = \"t\"\ntype = \"multi-label\"\ninput = \"{{ x }}\"\nlabels = [\"a\", \"b\"]\n[multi-label]\nthreshold = 0.4\n".into(),
        "name = \"p\"\ntype = \"compare\"\n[compare]\ncontext = \"{{ q }}\"\nresponse-1 = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\ntie-margin = 0.1\n".into(),
        "name = \"r\"\ntype = \"rate\"\n[rate]\nresponse = \"{{ a }}\"\nresponse-2 = \"{{ b }}\"\nmin = 1\nmax = 10\n".into(),
    ]
}

/// One edit of a task file's text.
#[derive(Debug, Clone)]
enum Edit {
    /// Delete `len` bytes at `at` (both taken modulo the text's length).
    Delete { at: usize, len: usize },
    /// Insert a TOML-ish fragment at `at`.
    Insert { at: usize, text: String },
    /// Swap two lines.
    SwapLines { a: usize, b: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let fragment = prop_oneof![
        Just("=".to_string()),
        Just("\"".to_string()),
        Just("[".to_string()),
        Just("]]\n".to_string()),
        Just("\n[compare]\n".to_string()),
        Just("\n[rate]\nmin = 10\nmax = 1\n".to_string()),
        Just("\n[calibration]\nfit-share = 1e308\n".to_string()),
        Just("{{ ".to_string()),
        Just("{% for x in y %}".to_string()),
        Just("labels = []\n".to_string()),
        Just("type = \"compare\"\n".to_string()),
        Just("-1".to_string()),
        Just("nan".to_string()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ];
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), fragment).prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
    ]
}

/// A char boundary of `text` near `at`.
fn boundary(text: &str, at: usize) -> usize {
    let mut i = at % (text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, edit: &Edit) {
    match edit {
        Edit::Delete { at, len } => {
            let start = boundary(text, *at);
            let end = boundary(text, (start + len).min(text.len()));
            text.replace_range(start..end.max(start), "");
        }
        Edit::Insert { at, text: t } => {
            let at = boundary(text, *at);
            text.insert_str(at, t);
        }
        Edit::SwapLines { a, b } => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let (a, b) = (a % lines.len(), b % lines.len());
                lines.swap(a, b);
            }
            *text = lines.join("\n");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// Random text is an error or a task, never a panic.
    #[test]
    fn task_toml_from_random_text_never_panics(text in "\\PC{0,400}") {
        let _ = TaskSpec::from_toml_str(&text);
    }

    /// Mutated task files: an error or a task, never a panic; a task that parses also yields its template
    /// columns, identity hash and outcome names without panicking.
    #[test]
    fn task_toml_mutations_never_panic(
        seed in 0usize..5,
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let mut text = seeds()[seed].clone();
        for e in &edits {
            apply(&mut text, e);
        }
        if let Ok(spec) = TaskSpec::from_toml_str(&text) {
            let _ = spec.template_columns();
            let _ = spec.outcome_names();
            let _ = spec.gold_indices(Some(&serde_json::json!("a")));
        }
    }

    /// Random bytes under each extension: opening is an error or a reader, every row is a `Row` or a
    /// `RowError`, and reading ends.
    #[test]
    fn readers_on_random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        ext in prop_oneof![Just("jsonl"), Just("csv"), Just("tsv"), Just("parquet")],
    ) {
        read_all(&bytes, ext);
    }

    /// Near-valid inputs: lines of JSON objects, CSV records and a real Parquet file, each with bytes flipped,
    /// cut or inserted.
    #[test]
    fn readers_on_mutated_files_never_panic(
        kind in 0usize..3,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        let (mut bytes, ext) = match kind {
            0 => (b"{\"text\": \"a\", \"n\": 1}\n{\"text\": \"\\u00e9\", \"n\": [1, {}]}\n\n{\"x\": null}\n".to_vec(), "jsonl"),
            1 => (b"id,text,label\n1,\"a, b\",x\n2,\"multi\nline\",y\n3,c\n".to_vec(), "csv"),
            _ => (parquet_bytes(), "parquet"),
        };
        for (at, byte) in &flips {
            let at = at % bytes.len();
            bytes[at] = *byte;
        }
        bytes.truncate(bytes.len() - cut % (bytes.len() / 4 + 1));
        read_all(&bytes, ext);
    }
}

/// Write `bytes` as `data.EXT`, open it and read every row.
fn read_all(bytes: &[u8], ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("data.{ext}"));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    let Ok(reader) = assay_io::open_dataset(&path) else {
        return;
    };
    let _ = reader.columns();
    let mut rows = 0usize;
    for row in reader {
        match row {
            Ok(r) => assert!(r.values.len() < 10_000),
            Err(e) => assert!(!e.reason.is_empty()),
        }
        rows += 1;
        assert!(rows <= 1_000_000, "a reader must end");
    }
}

/// A small valid Parquet file written by our own writer.
fn parquet_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.parquet");
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = (0..5)
        .map(|i| {
            serde_json::json!({"id": i, "text": format!("row {i}"), "score": i as f64 / 2.0})
                .as_object()
                .unwrap()
                .clone()
        })
        .collect();
    assay_io::write_output(&path, &rows, &assay_io::ParquetOptions::default()).unwrap();
    std::fs::read(&path).unwrap()
}
