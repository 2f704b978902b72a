//! `assay audit overlap`: benchmark contamination, i.e. input rows sharing normalized word n-grams (13 by
//! default) with the items of reference sets. The index of each reference file is built once and cached under
//! `$ASSAY_HOME/cache/overlap/`, keyed by the file's SHA-256 and the settings.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use assay_audit::overlap::{contamination, OverlapConfig, OverlapReport, ReferenceIndex, RowHits};
use assay_audit::text::{Words, NORMALIZATION};
use assay_io::{OutputWriter, ParquetOptions};
use assay_provenance::audit::{FileRef, OverlapCounts, OverlapParameters, ReferenceCounts};
use clap::Args;
use serde_json::{json, Map, Value};

use super::dups::{read_batches, rows_bar, write_without, Columns};
use crate::settings::Settings;

/// Arguments of `assay audit overlap`.
#[derive(Debug, Args)]
pub struct OverlapArgs {
    /// The dataset to check (JSONL, CSV, TSV or Parquet).
    pub input: PathBuf,
    /// A benchmark or evaluation set to check against. Repeatable.
    #[arg(long = "reference", value_name = "BENCH", required = true)]
    pub references: Vec<PathBuf>,
    /// N-gram length in words.
    #[arg(long, default_value_t = 13)]
    pub ngram: usize,
    /// The input's text column.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// The column that names input rows in the outputs; by default the 0-based row number.
    #[arg(long)]
    pub id_column: Option<String>,
    /// The reference sets' text column [default: --text-column].
    #[arg(long)]
    pub reference_text_column: Option<String>,
    /// The column that names reference items; by default the 0-based row number.
    #[arg(long)]
    pub reference_id_column: Option<String>,
    /// A reference item is hit when at least this share of its n-grams is in one row (0: any shared n-gram).
    #[arg(long, default_value_t = 0.0)]
    pub min_share: f64,
    /// N-grams found in more input rows than this are ignored as templates or quotes [default: 0.1% of the
    /// input rows, at least 10].
    #[arg(long)]
    pub common_rows: Option<usize>,
    /// Write one line per contaminated input row and reference set (id, reference, item ids, spans) to this
    /// JSONL or Parquet file.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Write the input without its contaminated rows to this JSONL or Parquet file.
    #[arg(long)]
    pub drop: Option<PathBuf>,
    /// Write an HTML report.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Build the reference indexes again instead of reading the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Do not record this run in the store (by default its summary is filed under the input's SHA-256, and the
    /// dataset card of a later `assay export` of this file says what it found).
    #[arg(long)]
    pub no_record: bool,
}

/// Load the index of `path` from the cache, or build and cache it; with whether it was cached and the file's
/// SHA-256.
fn reference_index(
    settings: &Settings,
    args: &OverlapArgs,
    path: &Path,
) -> anyhow::Result<(ReferenceIndex, bool, String)> {
    let text_column = args
        .reference_text_column
        .clone()
        .unwrap_or_else(|| args.text_column.clone());
    let sha = assay_io::file_sha256(path).with_context(|| format!("reading {}", path.display()))?;
    let key = format!(
        "{sha}-n{}-{}-{}",
        args.ngram,
        hex::encode(text_column.as_bytes()),
        hex::encode(args.reference_id_column.as_deref().unwrap_or("").as_bytes())
    );
    let cache = settings
        .home
        .join("cache")
        .join("overlap")
        .join(format!("{key}.idx"));
    if !args.no_cache {
        if let Ok(bytes) = std::fs::read(&cache) {
            match ReferenceIndex::from_bytes(&bytes) {
                Ok(index) => return Ok((index, true, sha)),
                Err(error) => {
                    tracing::warn!(cache = %cache.display(), %error, "rebuilding the index")
                }
            }
        }
    }
    let columns = Columns {
        text: text_column,
        id: args.reference_id_column.clone(),
        answered: None,
        gold: None,
    };
    let mut items: Vec<(String, String)> = Vec::new();
    let bad = read_batches(path, &columns, |batch| {
        for row in batch {
            let id = match row.id {
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => row.row.to_string(),
            };
            items.push((id, row.text));
        }
        Ok(())
    })?;
    bad.print(path);
    let index = ReferenceIndex::build(args.ngram, &items);
    // A cache that cannot be written only costs the next run a rebuild.
    let written = cache
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| {
            let temporary = cache.with_extension("tmp");
            std::fs::write(&temporary, index.to_bytes())?;
            std::fs::rename(&temporary, &cache)
        });
    if let Err(error) = written {
        tracing::warn!(cache = %cache.display(), %error, "the overlap index was not cached");
    }
    Ok((index, false, sha))
}

/// Run `assay audit overlap`.
pub fn run(settings: &Settings, args: OverlapArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let fingerprint = super::Fingerprint::start(&args.input, !args.no_record);
    let mut indexes = Vec::new();
    let mut reference_shas = Vec::new();
    for path in &args.references {
        let (index, cached, sha) = reference_index(settings, &args, path)?;
        indexes.push((path, index, cached));
        reference_shas.push(sha);
    }
    let indexed = started.elapsed().as_secs_f64();
    let columns = Columns {
        text: args.text_column.clone(),
        id: args.id_column.clone(),
        answered: None,
        gold: None,
    };
    let mut hits: Vec<Vec<RowHits>> = vec![Vec::new(); indexes.len()];
    // Rows with any hit keep their text and id for the spans of the output.
    let mut hit_rows: HashMap<u64, (String, Option<Value>)> = HashMap::new();
    let mut rows = 0usize;
    let bar = rows_bar("checking", settings.progress);
    let scan_started = Instant::now();
    let bad = read_batches(&args.input, &columns, |batch| {
        let texts: Vec<(u64, &str)> = batch.iter().map(|r| (r.row, r.text.as_str())).collect();
        let mut any = HashSet::new();
        for (n, (_, index, _)) in indexes.iter().enumerate() {
            let found = index.scan_batch(&texts);
            any.extend(found.iter().map(|h| h.row));
            hits[n].extend(found);
        }
        let count = texts.len();
        drop(texts);
        for row in batch {
            if any.contains(&row.row) {
                hit_rows.insert(row.row, (row.text, row.id));
            }
        }
        rows += count;
        bar.inc(count as u64);
        Ok(())
    })?;
    bar.finish_and_clear();
    bad.print(&args.input);
    let scanned = scan_started.elapsed().as_secs_f64();

    let config = OverlapConfig {
        ngram: args.ngram,
        min_share: args.min_share,
        common_rows: args.common_rows,
    };
    let mut reports = Vec::new();
    for ((_, index, _), found) in indexes.iter().zip(hits) {
        reports.push(contamination(index, found, rows, &config)?);
    }
    let contaminated: HashSet<u64> = reports
        .iter()
        .flat_map(|r| r.rows.iter().map(|c| c.row))
        .collect();
    if let Some(path) = &args.output {
        write_hits(path, &indexes, &reports, &hit_rows)?;
    }
    if let Some(path) = &args.drop {
        write_without(&args.input, path, &contaminated)?;
    }
    if let Some(path) = &args.report {
        let references: Vec<_> = indexes
            .iter()
            .zip(&reports)
            .map(
                |((path, index, _), report)| assay_report::audit::ReferenceHits {
                    reference: path.display().to_string(),
                    items: index.items().len(),
                    items_hit: report.rows_by_item.iter().filter(|r| !r.is_empty()).count(),
                    rows_hitting: report.rows.len(),
                    top_items: top_items(index, report, &hit_rows, 20),
                },
            )
            .collect();
        let mut page = assay_report::Report::new("Contamination audit");
        page.fact("input", args.input.display().to_string());
        page.fact("normalization", NORMALIZATION);
        page.fact("assay", env!("CARGO_PKG_VERSION"));
        page.push(assay_report::audit::overlap_section(
            args.ngram,
            rows,
            contaminated.len(),
            &references,
        ));
        std::fs::write(path, page.to_html())
            .with_context(|| format!("writing {}", path.display()))?;
    }

    let mut table = super::super::qc::table(&[
        "reference",
        "items",
        "too short",
        "items hit",
        "share hit",
        "rows hitting",
        "common n-grams ignored",
    ]);
    for ((path, index, cached), report) in indexes.iter().zip(&reports) {
        let items = index.items().len();
        let hit = report.rows_by_item.iter().filter(|r| !r.is_empty()).count();
        table.add_row(vec![
            format!(
                "{}{}",
                path.display(),
                if *cached { " (cached index)" } else { "" }
            ),
            items.to_string(),
            index
                .items()
                .iter()
                .filter(|i| i.grams == 0)
                .count()
                .to_string(),
            hit.to_string(),
            format!("{:.1}%", 100.0 * hit as f64 / items.max(1) as f64),
            report.rows.len().to_string(),
            report.common_grams.to_string(),
        ]);
    }
    super::super::qc::right_align(&mut table, 1);
    outln!("{table}");
    for ((path, index, _), report) in indexes.iter().zip(&reports) {
        let top = top_items(index, report, &hit_rows, 5);
        if top.is_empty() {
            continue;
        }
        outln!("most-hit items of {}:", path.display());
        for (id, rows, share, first) in top {
            let more = if rows > first.len() { ", ..." } else { "" };
            outln!(
                "  {id}: {rows} rows ({}{more}), up to {:.1}% of its n-grams in one row",
                first.join(", "),
                100.0 * share
            );
        }
    }
    let common = reports.first().map_or(0, |r| r.common_rows);
    outln!(
        "{} of {rows} rows contaminated ({}-grams; n-grams in more than {common} rows ignored; a hit needs {} of an \
         item's n-grams)",
        contaminated.len(),
        args.ngram,
        if args.min_share > 0.0 {
            format!("{:.0}%", 100.0 * args.min_share)
        } else {
            "any".to_string()
        }
    );
    outln!("normalization: {NORMALIZATION}");
    let total = started.elapsed().as_secs_f64();
    outln!(
        "{rows} rows in {total:.2} s: indexes {indexed:.2} s, check {scanned:.2} s ({:.1} µs per row)",
        1e6 * scanned / rows.max(1) as f64
    );
    if !args.no_record {
        let files: Vec<FileRef> = indexes
            .iter()
            .zip(reference_shas)
            .map(|((path, _, _), sha256)| FileRef {
                path: assay_label::export::audited_path(path),
                sha256,
            })
            .collect();
        let parameters = OverlapParameters {
            text_column: args.text_column.clone(),
            ngram: args.ngram,
            min_share: args.min_share,
            common_rows: common,
            references: files.clone(),
        };
        // The same figures as the table above.
        let counts = OverlapCounts {
            rows,
            contaminated_rows: contaminated.len(),
            references: indexes
                .iter()
                .zip(&reports)
                .zip(files)
                .map(|(((_, index, _), report), reference)| ReferenceCounts {
                    reference,
                    items: index.items().len(),
                    items_hit: report.rows_by_item.iter().filter(|r| !r.is_empty()).count(),
                    rows_hitting: report.rows.len(),
                })
                .collect(),
        };
        super::record(
            settings,
            fingerprint,
            assay_provenance::audit::OVERLAP,
            serde_json::to_value(parameters)?,
            serde_json::to_value(counts)?,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The `count` items hit by the most rows: `(item id, rows, largest share in one row, the first 5 rows' ids)`.
fn top_items(
    index: &ReferenceIndex,
    report: &OverlapReport,
    hit_rows: &HashMap<u64, (String, Option<Value>)>,
    count: usize,
) -> Vec<(String, usize, f64, Vec<String>)> {
    let mut largest = vec![0.0f64; index.items().len()];
    for row in &report.rows {
        for hit in &row.items {
            let share = &mut largest[hit.item as usize];
            *share = share.max(hit.share);
        }
    }
    let mut items: Vec<usize> = (0..index.items().len())
        .filter(|&i| !report.rows_by_item[i].is_empty())
        .collect();
    items.sort_by_key(|&i| (std::cmp::Reverse(report.rows_by_item[i].len()), i));
    items
        .into_iter()
        .take(count)
        .map(|i| {
            let first = report.rows_by_item[i]
                .iter()
                .take(5)
                .map(
                    |row| match hit_rows.get(row).and_then(|(_, id)| id.clone()) {
                        Some(Value::String(s)) => s,
                        Some(other) => other.to_string(),
                        None => row.to_string(),
                    },
                )
                .collect();
            (
                index.items()[i].id.clone(),
                report.rows_by_item[i].len(),
                largest[i],
                first,
            )
        })
        .collect()
}

fn write_hits(
    path: &Path,
    indexes: &[(&PathBuf, ReferenceIndex, bool)],
    reports: &[OverlapReport],
    hit_rows: &HashMap<u64, (String, Option<Value>)>,
) -> anyhow::Result<()> {
    let mut writer = OutputWriter::create(path, ParquetOptions::default())?;
    let mut lines: Vec<(u64, usize, Map<String, Value>)> = Vec::new();
    let mut words = Words::default();
    for (n, ((reference, index, _), report)) in indexes.iter().zip(reports).enumerate() {
        for row in &report.rows {
            let (text, id) = &hit_rows[&row.row];
            words.fill(text, true);
            let spans: Vec<Value> = row
                .spans
                .iter()
                .map(|&(first, end)| {
                    let start = words.spans[first as usize].0 as usize;
                    let stop = words.spans[end as usize - 1].1 as usize;
                    json!({"start": start, "end": stop, "text": &text[start..stop]})
                })
                .collect();
            let items: Vec<Value> = row
                .items
                .iter()
                .map(|hit| {
                    json!({
                        "id": index.items()[hit.item as usize].id,
                        "share": hit.share,
                        "matched_ngrams": hit.matched,
                    })
                })
                .collect();
            let mut line = Map::new();
            line.insert("id".into(), id.clone().unwrap_or_else(|| json!(row.row)));
            line.insert("reference".into(), json!(reference.display().to_string()));
            line.insert("items".into(), Value::Array(items));
            line.insert("spans".into(), Value::Array(spans));
            lines.push((row.row, n, line));
        }
    }
    lines.sort_by_key(|(row, n, _)| (*row, *n));
    for (_, _, line) in &lines {
        writer.write_row(line)?;
    }
    writer.finish()?;
    Ok(())
}
