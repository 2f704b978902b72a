//! `assay audit dups` end to end on generated corpora with exact ground truth: every pair's Jaccard is computed
//! here, independently of assay-audit (string shingles in hash sets), and the band join is rerun in DuckDB.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use common::{bare_assay, ok, read_jsonl};
use serde_json::{json, Value};

/// A deterministic generator (xorshift), so the corpus and its truth are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Words of a text as the audit normalizes them: lowercase, split on anything that is not a letter or digit.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn shingles(text: &str, n: usize) -> HashSet<String> {
    let w = words(text);
    if w.len() < n {
        return if w.is_empty() {
            HashSet::new()
        } else {
            HashSet::from([w.join(" ")])
        };
    }
    w.windows(n).map(|g| g.join(" ")).collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    let shared = a.intersection(b).count();
    shared as f64 / (a.len() + b.len() - shared) as f64
}

/// Every pair of documents with a Jaccard similarity ≥ `threshold`, with its value, found through an inverted
/// index of shingle strings (pairs sharing no shingle have Jaccard 0).
fn true_pairs(texts: &[String], n: usize, threshold: f64) -> HashMap<(usize, usize), f64> {
    let sets: Vec<HashSet<String>> = texts.iter().map(|t| shingles(t, n)).collect();
    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
    for (doc, set) in sets.iter().enumerate() {
        for s in set {
            index.entry(s.as_str()).or_default().push(doc);
        }
    }
    let mut sharing = HashSet::new();
    for docs in index.values() {
        for i in 0..docs.len() {
            for j in i + 1..docs.len() {
                sharing.insert((docs[i].min(docs[j]), docs[i].max(docs[j])));
            }
        }
    }
    sharing
        .into_iter()
        .filter_map(|(a, b)| {
            let j = jaccard(&sets[a], &sets[b]);
            (j >= threshold).then_some(((a, b), j))
        })
        .collect()
}

/// `count` base documents of 40–200 words from a 20,000-word vocabulary, then near-duplicates made by replacing
/// 0.5–3% of a base document's words, and exact copies differing only in case and punctuation.
fn corpus(seed: u64, count: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    let mut texts: Vec<String> = (0..count)
        .map(|_| {
            let len = 40 + rng.below(160) as usize;
            (0..len)
                .map(|_| format!("w{}", rng.below(20_000)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for _ in 0..count / 10 {
        let base = rng.below(count as u64) as usize;
        let mut w: Vec<String> = texts[base].split(' ').map(String::from).collect();
        let edits = 1 + (w.len() as u64 * (1 + rng.below(6)) / 200) as usize;
        for _ in 0..edits {
            let at = rng.below(w.len() as u64) as usize;
            w[at] = format!("edit{}", rng.below(1_000_000));
        }
        texts.push(w.join(" "));
    }
    for _ in 0..count / 20 {
        let base = rng.below(count as u64) as usize;
        let copy = texts[base].to_uppercase().replace(' ', ",  ");
        texts.push(copy + "!");
    }
    texts
}

fn write_jsonl(path: &Path, rows: &[Value]) {
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, body).unwrap();
}

fn pair_key(row: &Value) -> (usize, usize) {
    let a = row["a"].as_u64().unwrap() as usize;
    let b = row["b"].as_u64().unwrap() as usize;
    (a.min(b), a.max(b))
}

#[test]
fn pairs_match_the_exact_jaccard_ground_truth_and_clusters_keep_by_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let texts = corpus(7, 3000);
    let mut rows: Vec<Value> = texts.iter().map(|t| json!({ "text": t })).collect();
    // A row that cannot be audited: reported, skipped, nothing else lost.
    rows.push(json!({ "text": 42 }));
    let input = dir.path().join("corpus.jsonl");
    write_jsonl(&input, &rows);
    let pairs_path = dir.path().join("pairs.jsonl");
    let clusters_path = dir.path().join("clusters.jsonl");
    let deduped = dir.path().join("deduped.jsonl");
    let report = dir.path().join("report.html");
    let out = bare_assay(dir.path())
        .args(["--quiet", "audit", "dups"])
        .arg(&input)
        .arg("--output")
        .arg(&pairs_path)
        .arg("--clusters")
        .arg(&clusters_path)
        .arg("--deduped")
        .arg(&deduped)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("row 3451: `text` is not a string but a number"),
        "{stderr}"
    );
    assert!(stdout.contains("21 bands × 6 rows"), "{stdout}");

    let truth = true_pairs(&texts, 5, 0.8);
    let exact: HashSet<(usize, usize)> = {
        let mut by_words: HashMap<Vec<String>, usize> = HashMap::new();
        let mut set = HashSet::new();
        for (doc, text) in texts.iter().enumerate() {
            match by_words.get(&words(text)) {
                Some(&first) => {
                    set.insert((first, doc));
                }
                None => {
                    by_words.insert(words(text), doc);
                }
            }
        }
        set
    };
    assert!(exact.len() >= 100, "the corpus has exact copies");
    let found = read_jsonl(&pairs_path);
    let mut found_near = HashMap::new();
    for row in &found {
        let key = pair_key(row);
        let reported = row["jaccard"].as_f64().unwrap();
        let true_j = truth
            .get(&key)
            .copied()
            .unwrap_or_else(|| panic!("{row}: a pair below the threshold (precision)"));
        assert!(
            (reported - true_j).abs() < 1e-9,
            "{row}: true Jaccard {true_j}"
        );
        if row["exact"] == true {
            assert!(exact.contains(&key), "{row} is not an exact duplicate");
        } else {
            found_near.insert(key, reported);
        }
    }
    let found_exact: HashSet<_> = found
        .iter()
        .filter(|r| r["exact"] == true)
        .map(pair_key)
        .collect();
    assert_eq!(
        found_exact, exact,
        "every exact duplicate with its group's first row"
    );
    // Near-duplicate pairs are reported between the first rows of exact groups; the truth restricted to those.
    let copies: HashSet<usize> = exact.iter().map(|&(_, b)| b).collect();
    let near_truth: Vec<_> = truth
        .keys()
        .filter(|(a, b)| !copies.contains(a) && !copies.contains(b))
        .collect();
    assert!(
        near_truth.len() >= 150,
        "{} true near pairs",
        near_truth.len()
    );
    let hit = near_truth
        .iter()
        .filter(|k| found_near.contains_key(k))
        .count();
    let recall = hit as f64 / near_truth.len() as f64;
    assert!(
        recall >= 0.95,
        "recall {recall} ({hit} of {})",
        near_truth.len()
    );

    // Clusters: connected components of the pairs; the kept row is the first (no answered or gold rows here).
    let clusters = read_jsonl(&clusters_path);
    let mut dropped = BTreeSet::new();
    for cluster in &clusters {
        let members: Vec<u64> = cluster["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_u64().unwrap())
            .collect();
        assert_eq!(cluster["keep"], json!(members.iter().min().unwrap()));
        for d in cluster["drop"].as_array().unwrap() {
            dropped.insert(d.as_u64().unwrap());
        }
    }
    let kept_rows = read_jsonl(&deduped);
    assert_eq!(kept_rows.len(), rows.len() - dropped.len());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("<svg") && html.contains("Cluster 1 of"),
        "report"
    );

    // --low-memory keeps only band keys and reads the input again for the compared rows: the same pairs.
    let lean_pairs = dir.path().join("pairs-lean.jsonl");
    ok(bare_assay(dir.path())
        .args(["--quiet", "audit", "dups", "--low-memory"])
        .arg(&input)
        .arg("--output")
        .arg(&lean_pairs));
    assert_eq!(
        std::fs::read_to_string(&lean_pairs).unwrap(),
        std::fs::read_to_string(&pairs_path).unwrap()
    );
}

#[test]
fn keep_rule_prefers_answered_then_gold_rows_and_ids_name_rows() {
    let dir = tempfile::tempdir().unwrap();
    let base: Vec<String> = (0..60).map(|i| format!("word{i}")).collect();
    let mut edited = base.clone();
    edited[30] = "other".into();
    let text = base.join(" ");
    let near = edited.join(" ");
    let rows = vec![
        json!({"id": "a", "text": text}),
        json!({"id": "b", "text": near, "gold": "spam"}),
        json!({"id": "c", "text": text, "human_answers": 2}),
        json!({"id": "d", "text": "something else entirely with its own words"}),
        json!({"id": "e", "text": near, "gold": "ham"}),
    ];
    let input = dir.path().join("rows.jsonl");
    write_jsonl(&input, &rows);
    let clusters_path = dir.path().join("clusters.jsonl");
    ok(bare_assay(dir.path())
        .args(["--quiet", "audit", "dups", "--id-column", "id"])
        .arg(&input)
        .arg("--clusters")
        .arg(&clusters_path));
    let clusters = read_jsonl(&clusters_path);
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0]["members"], json!(["a", "b", "c", "e"]));
    assert_eq!(clusters[0]["keep"], "c", "the row people answered");

    // Without the answered row, the first gold row is kept.
    let rows: Vec<Value> = rows.into_iter().filter(|r| r["id"] != "c").collect();
    write_jsonl(&input, &rows);
    ok(bare_assay(dir.path())
        .args(["--quiet", "audit", "dups", "--id-column", "id"])
        .arg(&input)
        .arg("--clusters")
        .arg(&clusters_path));
    assert_eq!(read_jsonl(&clusters_path)[0]["keep"], "b");
}

#[test]
fn against_reports_only_new_rows_that_duplicate_the_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let texts = corpus(11, 400);
    // The old set: the first 200 base documents (Parquet, to read that format too).
    let old: Vec<_> = texts[..200]
        .iter()
        .map(|t| json!({"text": t}).as_object().unwrap().clone())
        .collect();
    let old_path = dir.path().join("old.parquet");
    assay_io::write_output(&old_path, &old, &assay_io::ParquetOptions::default()).unwrap();
    // The new set: base documents 200..400 and every generated copy (of bases anywhere in 0..400).
    let new: Vec<String> = texts[200..].to_vec();
    let new_path = dir.path().join("new.jsonl");
    write_jsonl(
        &new_path,
        &new.iter().map(|t| json!({"text": t})).collect::<Vec<_>>(),
    );
    let pairs_path = dir.path().join("pairs.jsonl");
    ok(bare_assay(dir.path())
        .args(["--quiet", "audit", "dups"])
        .arg(&new_path)
        .arg("--against")
        .arg(&old_path)
        .arg("--output")
        .arg(&pairs_path));
    // Truth: new rows with J ≥ 0.8 to some old row.
    let old_sets: Vec<_> = texts[..200].iter().map(|t| shingles(t, 5)).collect();
    let expected: BTreeSet<usize> = new
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            let s = shingles(t, 5);
            old_sets.iter().any(|o| jaccard(&s, o) >= 0.8)
        })
        .map(|(i, _)| i)
        .collect();
    assert!(expected.len() >= 10, "{expected:?}");
    let found = read_jsonl(&pairs_path);
    let found_rows: BTreeSet<usize> = found
        .iter()
        .map(|r| r["a"].as_u64().unwrap() as usize)
        .collect();
    assert!(found_rows.is_subset(&expected), "precision");
    assert!(
        found_rows.len() as f64 >= 0.95 * expected.len() as f64,
        "{} of {}",
        found_rows.len(),
        expected.len()
    );
    for row in &found {
        assert!(row["reference"].as_str().unwrap().ends_with("old.parquet"));
        let (a, b) = (
            row["a"].as_u64().unwrap() as usize,
            row["b"].as_u64().unwrap() as usize,
        );
        let truth = jaccard(&shingles(&new[a], 5), &old_sets[b]);
        assert!((row["jaccard"].as_f64().unwrap() - truth).abs() < 1e-9);
    }
}

/// The band keys of `--emit-bands`, joined in DuckDB on (band, key), give exactly the candidate pairs of the
/// in-process join.
#[test]
fn duckdb_band_join_finds_the_same_candidate_pairs() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import duckdb"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        common::skip_or_fail_in_ci(
            "duckdb_band_join_finds_the_same_candidate_pairs",
            "python3 cannot import duckdb (pip install duckdb)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let texts = corpus(5, 1500);
    let input = dir.path().join("corpus.jsonl");
    write_jsonl(
        &input,
        &texts.iter().map(|t| json!({"text": t})).collect::<Vec<_>>(),
    );
    let bands = dir.path().join("bands.parquet");
    let candidates = dir.path().join("candidates.jsonl");
    // Fewer rows per band than the default, so that the join also finds pairs verification rejects.
    ok(bare_assay(dir.path())
        .args(["--quiet", "audit", "dups", "--bands", "32", "--rows", "3"])
        .arg(&input)
        .arg("--emit-bands")
        .arg(&bands)
        .arg("--candidates")
        .arg(&candidates));
    let script = r#"
import sys, duckdb
rows = duckdb.sql(f"""
    SELECT DISTINCT least(x.record, y.record) AS a, greatest(x.record, y.record) AS b
    FROM read_parquet('{sys.argv[1]}') x JOIN read_parquet('{sys.argv[1]}') y
      ON x.band = y.band AND x.key = y.key AND x.record < y.record
    ORDER BY a, b""").fetchall()
for a, b in rows:
    print(a, b)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&bands)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let joined: BTreeSet<(usize, usize)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut it = l.split(' ').map(|x| x.parse().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    let in_process: BTreeSet<(usize, usize)> =
        read_jsonl(&candidates).iter().map(pair_key).collect();
    let rejected = read_jsonl(&candidates)
        .iter()
        .filter(|r| r["jaccard"].as_f64().unwrap() < 0.8)
        .count();
    assert!(
        in_process.len() > 100 && rejected > 0,
        "{} candidates, {rejected} rejected",
        in_process.len()
    );
    assert_eq!(joined, in_process);
}
