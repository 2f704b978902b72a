//! Times Krippendorff's alpha on reliability data read from a file, for `bench/quality_compare.py`.
//!
//! The file has one line per unit and one whitespace-separated field per coder: a category code, or `.` when the
//! coder gave no value. Prints one JSON object per level with alpha and the best of `REPEATS` timings.
//!
//! ```text
//! cargo run --release -p assay-quality --example alpha_bench -- units.txt
//! ```

use std::time::{Duration, Instant};

use assay_quality::agreement::{krippendorff_alpha, Level, RatingMatrix};

const REPEATS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: alpha_bench FILE")?;
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
    Ok(())
}
