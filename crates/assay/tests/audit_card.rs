//! Issue 14: the dataset card says what the audits found. `assay audit dups` and `assay audit overlap` record
//! each finished run in the store under the SHA-256 of the audited file; `assay export` of a task labeled from
//! that file (by the real model) puts the audits' counts, parameters and dates on its card, and says "not run on
//! this version of the file" once the file changed and was labeled again. `--no-record` leaves no trace.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn random_words(rng: &mut Rng, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| format!("{prefix}{}", rng.below(1_000_000)))
        .collect()
}

fn write_jsonl(path: &Path, rows: &[Value]) {
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, body).unwrap();
}

/// The value in the printed table's row whose label starts with `label`.
fn table_value(printed: &str, label: &str) -> usize {
    let line = printed
        .lines()
        .find(|l| l.trim_start_matches(['│', '|', ' ']).starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` row in:\n{printed}"));
    line.split(['│', '┆', '|'])
        .filter(|cell| !cell.trim().is_empty())
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn issue_14_the_card_names_what_the_audits_of_this_version_of_the_file_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let mut rng = Rng(14);
    // 12 rows of 25 random words; row 12 an exact copy of row 3 (case and punctuation aside), row 13 a copy of
    // row 5 with its last word changed (5-word shingles: Jaccard 20/22 = 0.91, a near-duplicate); row 10 holds 15
    // words of reference item 2 verbatim. Short rows keep the real model's labeling quick.
    let mut texts: Vec<Vec<String>> = (0..12).map(|_| random_words(&mut rng, "w", 25)).collect();
    texts.push(texts[3].iter().map(|w| w.to_uppercase()).collect());
    let mut near = texts[5].clone();
    *near.last_mut().unwrap() = "changed".into();
    texts.push(near);
    let items: Vec<Vec<String>> = (0..5).map(|_| random_words(&mut rng, "b", 20)).collect();
    texts[10].splice(10..10, items[2][3..18].iter().cloned());
    let rows: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"id": i, "text": format!("{}!", w.join(" "))}))
        .collect();
    let input = d.join("input.jsonl");
    write_jsonl(&input, &rows);
    let bench = d.join("bench.jsonl");
    let bench_rows: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"qid": format!("q{i}"), "text": w.join(" ")}))
        .collect();
    write_jsonl(&bench, &bench_rows);
    let task = d.join("task.toml");
    std::fs::write(
        &task,
        "name = \"audit-card\"\ntype = \"classify\"\ndataset = \"input.jsonl\"\noutput = \"labeled.jsonl\"\n\
         input = \"{{ text }}\"\nlabels = [\"ham\", \"spam\"]\n",
    )
    .unwrap();
    let db = d.join("store.db");
    let run = |args: &[&str]| ok(assay().arg("--store").arg(&db).arg("--quiet").args(args));
    let (i, t) = (input.to_str().unwrap(), task.to_str().unwrap());

    let dups = run(&["audit", "dups", i]);
    assert!(dups.contains("recorded in the store"), "{dups}");
    let (exact, near_pairs, clusters, dropped) = (
        table_value(&dups, "exact-duplicate rows"),
        table_value(&dups, "near-duplicate pairs"),
        table_value(&dups, "clusters"),
        table_value(&dups, "rows dropped by the keep rule"),
    );
    assert_eq!(
        (exact, near_pairs, clusters, dropped),
        (1, 1, 2, 2),
        "{dups}"
    );
    let overlap = run(&[
        "audit",
        "overlap",
        i,
        "--reference",
        bench.to_str().unwrap(),
    ]);
    assert!(
        overlap.contains("1 of 14 rows contaminated (13-grams"),
        "{overlap}"
    );
    // A run with --no-record leaves no trace.
    run(&["audit", "dups", i, "--no-record", "--threshold", "0.5"]);
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM audit_runs"), 2);

    run(&["label", t, "--threads", "2"]);
    let out = d.join("export").join("labels.jsonl");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let export = |out: &Path| {
        run(&[
            "export",
            "--format",
            "labels",
            t,
            "--output",
            out.to_str().unwrap(),
            "--croissant",
        ]);
        std::fs::read_to_string(out.parent().unwrap().join("README.md")).unwrap()
    };
    let card = export(&out);
    let today = chrono_today();
    assert!(
        card.contains(&format!(
            "- Duplicates in input.jsonl: {exact} of 14 rows are exact duplicates and {near_pairs} pairs \
             near-duplicates, in {clusters} clusters; the keep rule drops {dropped} rows ("
        )),
        "{card}"
    );
    assert!(
        card.contains(&format!("(`assay audit dups` on {today}")),
        "{card}"
    );
    assert!(
        card.contains("5-word shingles, J ≥ 0.8, 128 MinHash values, LSH 21 bands × 6 rows"),
        "{card}"
    );
    let bench_sha = assay_io::file_sha256(&bench).unwrap();
    assert!(
        card.contains(&format!(
            "- Contamination of input.jsonl: 1 of 14 rows (7.1%) share 13-grams with a reference set; `{}` \
             (sha256 `{}…`): 1 rows (7.1%), 1 of 5 items hit (20.0%) (`assay audit overlap` on {today}",
            bench.display(),
            &bench_sha[..12]
        )),
        "{card}"
    );
    if let Some(header) =
        dataset_card(&d.join("export").join("README.md")).map(|c| c["data"].clone())
    {
        assert_eq!(header["annotations_creators"], json!(["machine-generated"]));
    }
    // `--croissant`: mlcroissant reads the metadata and, through it, the same records as the export.
    let exported = read_jsonl(&out);
    if let Some((metadata, records)) = croissant_records(&d.join("export").join("croissant.json")) {
        assert_eq!(metadata["conformsTo"], "http://mlcommons.org/croissant/1.0");
        assert_eq!(
            metadata["distribution"][0]["sha256"],
            assay_io::file_sha256(&out).unwrap()
        );
        assert_eq!(
            metadata["distribution"][0]["encodingFormat"],
            "application/jsonlines"
        );
        let fields: Vec<&str> = metadata["recordSet"][0]["field"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        for column in [
            "id",
            "text",
            "label",
            "model_label",
            "confidence",
            "labeler",
            "license",
        ] {
            assert!(fields.contains(&column), "{column} not in {fields:?}");
        }
        assert!(!fields.contains(&"provenance"), "{fields:?}");
        assert_eq!(records.len(), exported.len());
        for (record, row) in records.iter().zip(&exported) {
            for field in &fields {
                let (got, want) = (&record[*field], &row[*field]);
                match (got.as_f64(), want.as_f64()) {
                    (Some(g), Some(w)) if want.is_f64() => {
                        assert!((g - w).abs() < 1e-6, "{field}: {got} {want}")
                    }
                    _ => assert_eq!(got, want, "{field}"),
                }
            }
        }
    }

    // The file changes and is labeled again: its old audits do not describe it.
    let mut edited = rows.clone();
    edited.truncate(13);
    write_jsonl(&input, &edited);
    run(&["label", t, "--threads", "2"]);
    let card = export(&d.join("export").join("edited.jsonl"));
    let new_sha = assay_io::file_sha256(&input).unwrap();
    for (what, command) in [
        ("Duplicates in", "assay audit dups"),
        ("Contamination of", "assay audit overlap"),
    ] {
        assert!(
            card.contains(&format!(
                "- {what} input.jsonl: not run on this version of the file (the last `{command}` of `{}`, on \
                 {today}",
                input.display()
            )),
            "{card}"
        );
    }
    assert!(
        card.contains(&format!("this version `{}…`)", &new_sha[..12])),
        "{card}"
    );
    // Audited again, the new version's counts are on the card: the near-duplicate row is gone.
    run(&["audit", "dups", i]);
    let card = export(&d.join("export").join("edited.jsonl"));
    assert!(
        card.contains(
            "- Duplicates in input.jsonl: 1 of 13 rows are exact duplicates and 0 pairs near-duplicates, in 1 \
             clusters; the keep rule drops 1 rows ("
        ),
        "{card}"
    );
    assert!(
        card.contains("- Contamination of input.jsonl: not run on this version"),
        "{card}"
    );
}

/// The Croissant metadata as `mlcroissant` validates it and its records as it reads them (text decoded), or
/// `None` (skipped, or failed under CI) without the package.
fn croissant_records(path: &Path) -> Option<(Value, Vec<Value>)> {
    let script = "import json, sys\nimport mlcroissant as mlc\n\
                  ds = mlc.Dataset(jsonld=sys.argv[1])\n\
                  out = []\n\
                  for r in ds.records(record_set='rows'):\n\
                  \x20   out.append({k.split('/', 1)[1]: (v.decode() if isinstance(v, bytes) else v) for k, v in r.items()})\n\
                  print(json.dumps({'metadata': ds.metadata.to_json(), 'records': out}, default=str))";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named 'mlcroissant'") {
            skip_or_fail_in_ci("croissant_records", "mlcroissant is not installed");
            return None;
        }
        panic!("mlcroissant could not read {}: {err}", path.display());
    }
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some((
        parsed["metadata"].clone(),
        parsed["records"].as_array().unwrap().clone(),
    ))
}

/// Today's date in UTC as the card writes it, from the system's `date`.
fn chrono_today() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
