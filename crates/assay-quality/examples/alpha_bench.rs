//! Times Krippendorff's alpha (and, when asked, Dawid-Skene) on reliability data read from a file, for
//! `bench/quality_compare.py`.
//!
//! The file has one line per unit and one whitespace-separated field per coder: a category code, or `.` when the
//! coder gave no value. Prints one JSON object per level with alpha and the best of `REPEATS` timings. With
//! `DS_ITERATIONS`, also runs Dawid-Skene for exactly that many EM iterations (tolerance 0, smoothing `SMOOTHING`,
//! default 0) with units as items and coders as annotators, and prints one more object with the best timing (from
//! the answer list to the result) and the label of every unit.
//!
//! ```text
//! cargo run --release -p assay-quality --example alpha_bench -- units.txt [DS_ITERATIONS [SMOOTHING]]
//! ```

use std::time::{Duration, Instant};

use assay_quality::aggregation::{dawid_skene, Answer, DawidSkeneOptions};
use assay_quality::agreement::{krippendorff_alpha, Level, RatingMatrix};

const REPEATS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: alpha_bench FILE [DS_ITERATIONS [SMOOTHING]]")?;
    let text = std::fs::read_to_string(path)?;
    let rows: Vec<Vec<Option<usize>>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(|f| f.parse().ok()).collect())
        .collect();
    let categories = rows.iter().flatten().flatten().max().map_or(0, |&c| c + 1);
    let data = RatingMatrix::from_unit_rows(&rows, categories)?;
    for (level, name) in [
        (Level::Nominal, "nominal"),
        (Level::Ordinal, "ordinal"),
        (Level::Interval, "interval"),
        (Level::Ratio, "ratio"),
    ] {
        let mut best = Duration::MAX;
        let mut alpha = f64::NAN;
        for _ in 0..REPEATS {
            let start = Instant::now();
            alpha = krippendorff_alpha(std::hint::black_box(&data), level)?;
            best = best.min(start.elapsed());
        }
        println!(
            "{{\"level\": \"{name}\", \"alpha\": {alpha:.17}, \"seconds\": {:.9}, \"units\": {}, \"coders\": {}}}",
            best.as_secs_f64(),
            data.units(),
            data.coders()
        );
    }
    if let Some(iterations) = args.get(1) {
        let smoothing = args.get(2).map_or(Ok(0.0), |s| s.parse())?;
        time_dawid_skene(&rows, categories, iterations.parse()?, smoothing)?;
    }
    Ok(())
}

fn time_dawid_skene(
    rows: &[Vec<Option<usize>>],
    categories: usize,
    iterations: usize,
    smoothing: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let coders = rows.iter().map(Vec::len).max().unwrap_or(0);
    let answers: Vec<Answer> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, row)| {
            row.iter()
                .enumerate()
                .filter_map(move |(j, code)| code.map(|c| Answer::new(i, j, c)))
        })
        .collect();
    let options = DawidSkeneOptions {
        max_iterations: iterations,
        tolerance: 0.0,
        smoothing,
    };
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..REPEATS {
        let start = Instant::now();
        let ds = dawid_skene(
            std::hint::black_box(&answers),
            rows.len(),
            coders,
            categories,
            &options,
        )?;
        best = best.min(start.elapsed());
        result = Some(ds);
    }
    let ds = result.ok_or("no repeats")?;
    let labels: Vec<String> = ds
        .labels
        .iter()
        .map(|l| l.map_or("null".to_string(), |c| c.to_string()))
        .collect();
    println!(
        "{{\"method\": \"dawid_skene\", \"seconds\": {:.9}, \"iterations\": {}, \"answers\": {}, \"labels\": [{}]}}",
        best.as_secs_f64(),
        ds.iterations,
        answers.len(),
        labels.join(",")
    );
    Ok(())
}
