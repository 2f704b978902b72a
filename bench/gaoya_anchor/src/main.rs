//! gaoya 0.2 on the corpus of bench/dedup_compare.sh: 5-word shingles (lowercase, split on anything that is not a
//! letter or digit, as assay does), MinHasher32 and MinHashIndex with gaoya's own bands and rows for the
//! threshold (`calculate_minhash_params(threshold, 128)`), signatures and queries on all cores (rayon). Prints
//! the pairs found as `a b` lines.
//!
//! Usage: gaoya-anchor CORPUS.jsonl THRESHOLD > pairs.txt

use std::io::{BufRead, BufReader, Write};

use gaoya::minhash::{calculate_minhash_params, MinHashIndex, MinHasher, MinHasher32};
use rayon::prelude::*;

fn shingles(text: &str, n: usize) -> Vec<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.len() < n {
        return if words.is_empty() {
            Vec::new()
        } else {
            vec![words.join(" ")]
        };
    }
    words.windows(n).map(|w| w.join(" ")).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threshold: f64 = args[2].parse().unwrap();
    let file = std::fs::File::open(&args[1]).unwrap();
    let texts: Vec<String> = BufReader::new(file)
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            row["text"].as_str().unwrap().to_string()
        })
        .collect();
    // gaoya's own bands and rows for the threshold; its index needs exactly bands x rows hash values (126 of 128).
    let (bands, rows) = calculate_minhash_params(threshold, 128);
    let hasher = MinHasher32::new(bands * rows);
    let signatures: Vec<Vec<u32>> = texts
        .par_iter()
        .map(|t| hasher.create_signature(shingles(t, 5).iter()))
        .collect();
    eprint!("{bands} bands x {rows} rows");
    let mut index: MinHashIndex<u32, u32> = MinHashIndex::new(bands, rows, threshold);
    let ids: Vec<u32> = (0..signatures.len() as u32).collect();
    index.par_bulk_insert(ids, signatures.clone());
    let found = index.par_bulk_query(&signatures);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (a, matches) in found.iter().enumerate() {
        for &b in matches {
            if (a as u32) < b {
                writeln!(out, "{a} {b}").unwrap();
            }
        }
    }
}
