//! `assay audit overlap` end to end: planted verbatim passages from a generated reference set, a template shared
//! by many input rows, and the truth computed here independently (n-gram strings in hash sets).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use common::{bare_assay, read_jsonl, Rng};
use serde_json::{json, Value};

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn grams(text: &str, n: usize) -> HashSet<String> {
    let w = words(text);
    if w.len() < n {
        return HashSet::new();
    }
    w.windows(n).map(|g| g.join(" ")).collect()
}

fn random_words(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n).map(|_| format!("v{}", rng.below(50_000))).collect()
}

fn write_jsonl(path: &Path, rows: &[Value]) {
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, body).unwrap();
}

#[test]
fn planted_passages_are_found_and_templates_ignored_with_exact_shares() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(99);
    // The benchmark: 300 items of 20–120 words, with ids, and one item too short to check.
    let mut items: Vec<(String, Vec<String>)> = (0..300)
        .map(|i| {
            let len = 20 + rng.below(100) as usize;
            (format!("q{i}"), random_words(&mut rng, len))
        })
        .collect();
    items.push(("tiny".into(), random_words(&mut rng, 5)));
    // A template phrase of 15 words that item q7 also contains, in 30 input rows: above the cutoff of 10.
    let template: Vec<String> = items[7].1[..15.min(items[7].1.len())].to_vec();
    let bench_rows: Vec<Value> = items
        .iter()
        .map(|(id, w)| json!({"qid": id, "question": w.join(" ")}))
        .collect();
    let bench = dir.path().join("bench.jsonl");
    write_jsonl(&bench, &bench_rows);

    // The input: 2,000 rows of 50–200 random words; 60 hold a verbatim passage of 13–40 words of some item, in
    // upper case with punctuation; 30 hold the template.
    let mut texts: Vec<String> = (0..2000)
        .map(|_| {
            let len = 50 + rng.below(150) as usize;
            random_words(&mut rng, len).join(" ")
        })
        .collect();
    let mut planted = BTreeSet::new();
    for _ in 0..60 {
        let row = rng.below(2000) as usize;
        let item = (rng.below(299) + 1) as usize; // not q0..: any but the template's q7 is fine
        if item == 7 {
            continue;
        }
        let w = &items[item].1;
        let len = (13 + rng.below(28) as usize).min(w.len());
        let start = rng.below((w.len() - len + 1) as u64) as usize;
        let passage = w[start..start + len].join(", ").to_uppercase();
        texts[row] = format!("{} {passage}. {}", texts[row], "and more words after it");
        planted.insert(row);
    }
    let mut template_rows = BTreeSet::new();
    while template_rows.len() < 30 {
        let row = rng.below(2000) as usize;
        if planted.contains(&row) {
            continue;
        }
        texts[row] = format!("{}: {}", template.join(" "), texts[row]);
        template_rows.insert(row);
    }
    let mut input_rows: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("r{i}"), "text": t}))
        .collect();
    input_rows.push(json!({"id": "bad"}));
    let input = dir.path().join("train.jsonl");
    write_jsonl(&input, &input_rows);

    // Truth: (row, item) pairs sharing a 13-gram that fewer than 11 input rows contain, with the item's share.
    let item_grams: Vec<HashSet<String>> =
        items.iter().map(|(_, w)| grams(&w.join(" "), 13)).collect();
    let row_grams: Vec<HashSet<String>> = texts.iter().map(|t| grams(t, 13)).collect();
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for g in &row_grams {
        for s in g {
            *frequency.entry(s.as_str()).or_default() += 1;
        }
    }
    let mut truth: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (row, g) in row_grams.iter().enumerate() {
        for (item, ig) in item_grams.iter().enumerate() {
            let shared = g
                .iter()
                .filter(|s| ig.contains(*s) && frequency[s.as_str()] <= 10)
                .count();
            if shared > 0 {
                truth.insert(
                    (format!("r{row}"), items[item].0.clone()),
                    shared as f64 / ig.len() as f64,
                );
            }
        }
    }
    assert!(truth.len() >= 50, "{} true hits", truth.len());

    let output = dir.path().join("hits.jsonl");
    let dropped = dir.path().join("clean.jsonl");
    let report = dir.path().join("overlap.html");
    let home = dir.path().join("home");
    let run = || {
        let out = bare_assay(&home)
            .args(["--quiet", "audit", "overlap"])
            .arg(&input)
            .arg("--reference")
            .arg(&bench)
            .args([
                "--id-column",
                "id",
                "--reference-text-column",
                "question",
                "--reference-id-column",
                "qid",
            ])
            .arg("--output")
            .arg(&output)
            .arg("--drop")
            .arg(&dropped)
            .arg("--report")
            .arg(&report)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stdout}\n{stderr}");
        (stdout, stderr)
    };
    let (stdout, stderr) = run();
    assert!(stderr.contains("row 2001: no `text` value"), "{stderr}");
    assert!(!stdout.contains("cached index"), "{stdout}");
    let lines = read_jsonl(&output);
    let mut found: BTreeMap<(String, String), f64> = BTreeMap::new();
    for line in &lines {
        assert!(line["reference"].as_str().unwrap().ends_with("bench.jsonl"));
        let id = line["id"].as_str().unwrap().to_string();
        for item in line["items"].as_array().unwrap() {
            found.insert(
                (id.clone(), item["id"].as_str().unwrap().to_string()),
                item["share"].as_f64().unwrap(),
            );
        }
        // Every span is original text of the row and made of reference words.
        let row: usize = id[1..].parse().unwrap();
        for span in line["spans"].as_array().unwrap() {
            let (s, e) = (
                span["start"].as_u64().unwrap() as usize,
                span["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(&texts[row][s..e], span["text"].as_str().unwrap());
            assert!(words(&texts[row][s..e]).len() >= 13);
        }
    }
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        truth.keys().collect::<Vec<_>>()
    );
    for (key, share) in &truth {
        assert!((found[key] - share).abs() < 1e-9, "{key:?}");
    }
    // Recall 1.0 on the planted rows; none of the template rows is reported.
    let hit_rows: BTreeSet<usize> = lines
        .iter()
        .map(|l| l["id"].as_str().unwrap()[1..].parse().unwrap())
        .collect();
    assert!(planted.is_subset(&hit_rows));
    assert!(hit_rows.is_disjoint(&template_rows));
    assert_eq!(
        read_jsonl(&dropped).len(),
        // The row without text was not checked and is kept: nothing is lost.
        input_rows.len() - hit_rows.len()
    );

    // The summary names the most-hit item with the rows that hit it.
    let (top_item, top_rows) = {
        let mut by_item: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (row, item) in truth.keys() {
            by_item.entry(item.as_str()).or_default().push(row.as_str());
        }
        let most = by_item.values().map(Vec::len).max().unwrap();
        let (item, rows) = by_item.into_iter().find(|(_, r)| r.len() == most).unwrap();
        (item.to_string(), rows.len())
    };
    assert!(
        stdout.contains(&format!("  {top_item}: {top_rows} rows (")),
        "{stdout}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Most-hit items"));
    assert!(html.contains("Benchmark contamination") && html.contains("bench.jsonl"));
    assert!(
        html.contains(&format!(">{}<", hit_rows.len())),
        "the contaminated row count"
    );

    // The second run reads the cached index and finds the same.
    let before = std::fs::read_to_string(&output).unwrap();
    let (stdout, _) = run();
    assert!(stdout.contains("cached index"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), before);
}
