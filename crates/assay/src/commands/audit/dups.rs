//! `assay audit dups`: exact and near-duplicate rows (MinHash LSH, every candidate verified by its exact
//! Jaccard). The algorithms are in `assay-audit`; this module reads the files, draws progress and writes outputs.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use assay_audit::dups::{DupConfig, DupCorpus, DupReport, KeepPriority, Side};
use assay_audit::lsh::Banding;
use assay_audit::text::NORMALIZATION;
use assay_io::{open_dataset, OutputWriter, ParquetOptions};
use assay_provenance::audit::{DupsCounts, DupsParameters};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

use crate::settings::Settings;

/// Rows sketched together (on all cores) while the next batch is read.
const BATCH_ROWS: usize = 4096;

/// Arguments of `assay audit dups`.
#[derive(Debug, Args)]
pub struct DupsArgs {
    /// The dataset to audit (JSONL, CSV, TSV or Parquet).
    pub input: PathBuf,
    /// The column holding the text.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// The column that names rows in the outputs; by default the 0-based row number.
    #[arg(long)]
    pub id_column: Option<String>,
    /// Pairs with a Jaccard similarity of their shingle sets at or above this are near-duplicates.
    #[arg(long, default_value_t = 0.8)]
    pub threshold: f64,
    /// Shingle size in words.
    #[arg(long, default_value_t = 5)]
    pub ngram: usize,
    /// Signature length (the counterpart of MinHash permutations).
    #[arg(long, default_value_t = 128)]
    pub num_perm: usize,
    /// LSH bands (with --rows); by default chosen for recall ≥ 0.995 at the threshold (21 × 6 for 0.8).
    #[arg(long, requires = "rows")]
    pub bands: Option<usize>,
    /// Signature values per band (with --bands).
    #[arg(long, requires = "bands")]
    pub rows: Option<usize>,
    /// Existing datasets: report only the input rows that duplicate one of their rows (dedup new data against
    /// old). Repeatable.
    #[arg(long = "against", value_name = "REF")]
    pub against: Vec<PathBuf>,
    /// Write the verified pairs (`a`, `b`, `jaccard`, `exact`) to this JSONL or Parquet file.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Write the clusters (members, the kept row, the dropped rows) to this JSONL or Parquet file.
    #[arg(long)]
    pub clusters: Option<PathBuf>,
    /// Write the input without the rows the keep rule drops (or, with --against, without the rows that
    /// duplicate the reference) to this JSONL or Parquet file.
    #[arg(long)]
    pub deduped: Option<PathBuf>,
    /// Write an HTML report (similarity histogram, largest clusters side by side).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the band keys as (record, side, band, key) rows, so that the band join can run in another engine.
    #[arg(long, value_name = "F.parquet")]
    pub emit_bands: Option<PathBuf>,
    /// Write every candidate pair from the bands with its exact Jaccard, passed or not.
    #[arg(long)]
    pub candidates: Option<PathBuf>,
    /// A row is answered by people when this column holds a value other than null, false, 0, "" or [].
    #[arg(long, default_value = "human_answers")]
    pub answered_column: String,
    /// A row is gold when this column holds a value other than null, false, 0, "" or [].
    #[arg(long, default_value = "gold")]
    pub gold_column: String,
    /// Seed of the signature hash.
    #[arg(long, default_value_t = DupConfig::default().seed)]
    pub seed: u64,
    /// Keep only the band keys in memory (8 bytes per band per row) and read the inputs a second time for the
    /// shingles of the rows in candidate pairs.
    #[arg(long)]
    pub low_memory: bool,
    /// Do not record this run in the store (by default its summary is filed under the input's SHA-256, and the
    /// dataset card of a later `assay export` of this file says what it found).
    #[arg(long)]
    pub no_record: bool,
}

/// Which columns of a row the audits read.
pub(super) struct Columns {
    pub text: String,
    pub id: Option<String>,
    pub answered: Option<String>,
    pub gold: Option<String>,
}

/// One readable row of an audited file.
pub(super) struct TextRow {
    pub row: u64,
    pub text: String,
    pub id: Option<Value>,
    pub priority: KeepPriority,
}

/// Rows that could not be audited.
#[derive(Default)]
pub(super) struct BadRows {
    pub count: u64,
    pub first: Vec<(u64, String)>,
}

impl BadRows {
    fn add(&mut self, row: u64, reason: String) {
        self.count += 1;
        if self.first.len() < 10 {
            self.first.push((row, reason));
        }
    }

    /// Print what was skipped, to stderr.
    pub fn print(&self, path: &Path) {
        if self.count == 0 {
            return;
        }
        eprintln!("{}: {} rows skipped:", path.display(), self.count);
        for (row, reason) in &self.first {
            eprintln!("  row {}: {reason}", row + 1);
        }
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

fn text_row(
    row: u64,
    mut values: Map<String, Value>,
    columns: &Columns,
) -> Result<TextRow, String> {
    let text = match values.remove(&columns.text) {
        Some(Value::String(text)) => text,
        None | Some(Value::Null) => return Err(format!("no `{}` value", columns.text)),
        Some(other) => {
            return Err(format!(
                "`{}` is not a string but {}",
                columns.text,
                kind(&other)
            ))
        }
    };
    let id = match &columns.id {
        None => None,
        Some(column) => match values.get(column) {
            None | Some(Value::Null) => return Err(format!("no `{column}` value (the id column)")),
            Some(id) => Some(id.clone()),
        },
    };
    let priority = KeepPriority {
        answered: columns
            .answered
            .as_ref()
            .is_some_and(|c| truthy(values.get(c))),
        gold: columns.gold.as_ref().is_some_and(|c| truthy(values.get(c))),
    };
    Ok(TextRow {
        row,
        text,
        id,
        priority,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Read `path` in batches of [`BATCH_ROWS`] on a reader thread and hand each batch to `each` on this one, so
/// that parsing and the work on the previous batch overlap.
pub(super) fn read_batches(
    path: &Path,
    columns: &Columns,
    mut each: impl FnMut(Vec<TextRow>) -> anyhow::Result<()>,
) -> anyhow::Result<BadRows> {
    let reader = open_dataset(path).with_context(|| format!("reading {}", path.display()))?;
    let known = reader.columns();
    if !known.is_empty() && !known.iter().any(|c| c == &columns.text) {
        bail!(
            "{} has no column `{}`\nhint: its columns are {}; name the text column with --text-column",
            path.display(),
            columns.text,
            known.join(", ")
        );
    }
    let (sender, receiver) = std::sync::mpsc::sync_channel::<(Vec<TextRow>, BadRows)>(4);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            let mut bad = BadRows::default();
            for row in reader {
                match row {
                    Ok(row) => match text_row(row.index, row.values, columns) {
                        Ok(text_row) => batch.push(text_row),
                        Err(reason) => bad.add(row.index, reason),
                    },
                    Err(error) => bad.add(error.index, error.reason),
                }
                if batch.len() == BATCH_ROWS {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                    if sender.send((full, std::mem::take(&mut bad))).is_err() {
                        return;
                    }
                }
            }
            let _ = sender.send((batch, bad));
        });
        let mut bad = BadRows::default();
        for (batch, batch_bad) in receiver {
            bad.count += batch_bad.count;
            for (row, reason) in batch_bad.first {
                if bad.first.len() < 10 {
                    bad.first.push((row, reason));
                }
            }
            each(batch)?;
        }
        Ok(bad)
    })
}

/// A progress bar counting rows with their rate.
pub(super) fn rows_bar(label: &str, visible: bool) -> ProgressBar {
    let bar = crate::progress::items_bar(0, label, visible);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} {pos} rows  {per_sec:.0}  ({elapsed})")
            .expect("valid template"),
    );
    bar
}

/// Where each audited document came from.
struct Origins {
    /// 0 for the input, 1 + n for the n-th `--against` file.
    files: Vec<u16>,
    rows: Vec<u64>,
    ids: Vec<Option<Value>>,
}

impl Origins {
    fn id(&self, doc: u32) -> Value {
        let doc = doc as usize;
        self.ids[doc]
            .clone()
            .unwrap_or_else(|| json!(self.rows[doc]))
    }
}

/// Run `assay audit dups`.
pub fn run(settings: &Settings, args: DupsArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if args.against.len() > usize::from(u16::MAX) {
        bail!("at most {} --against files", u16::MAX);
    }
    let fingerprint = super::Fingerprint::start(&args.input, !args.no_record);
    let banding = match (args.bands, args.rows) {
        (Some(bands), Some(rows)) => Some(Banding { bands, rows }),
        _ => None,
    };
    let config = DupConfig {
        threshold: args.threshold,
        ngram: args.ngram,
        bins: args.num_perm,
        banding,
        seed: args.seed,
    };
    let mut corpus = DupCorpus::new(config)?;
    if args.low_memory {
        corpus = corpus.without_shingles();
    }
    let columns = Columns {
        text: args.text_column.clone(),
        id: args.id_column.clone(),
        answered: Some(args.answered_column.clone()),
        gold: Some(args.gold_column.clone()),
    };
    let mut origins = Origins {
        files: Vec::new(),
        rows: Vec::new(),
        ids: Vec::new(),
    };
    // Reference rows first, so that an exact group's first member is a reference row when there is one.
    let mut files: Vec<(&Path, Side)> = args
        .against
        .iter()
        .enumerate()
        .map(|(n, p)| (p.as_path(), Side::Reference(n as u16)))
        .collect();
    files.push((args.input.as_path(), Side::Input));
    let mut input_rows = 0usize;
    for (file_number, (path, side)) in files.iter().enumerate() {
        let file_code = if *side == Side::Input {
            0
        } else {
            file_number as u16 + 1
        };
        let bar = rows_bar(
            if *side == Side::Input {
                "input"
            } else {
                "reference"
            },
            settings.progress,
        );
        let bad = read_batches(path, &columns, |batch| {
            let texts: Vec<&str> = batch.iter().map(|r| r.text.as_str()).collect();
            let sketches = corpus.sketch_batch(&texts);
            for (row, sketch) in batch.iter().zip(sketches) {
                corpus.push(sketch, *side, row.priority);
                origins.files.push(file_code);
                origins.rows.push(row.row);
                origins.ids.push(row.id.clone());
            }
            bar.inc(batch.len() as u64);
            Ok(())
        })?;
        if *side == Side::Input {
            input_rows = bar.position() as usize;
        }
        bar.finish_and_clear();
        bad.print(path);
    }
    if args.low_memory {
        // The second pass: sketch again only the rows whose shingles the verification compares.
        let mut wanted: HashMap<(u16, u64), u32> = HashMap::new();
        for doc in corpus.compared_documents() {
            wanted.insert(
                (origins.files[doc as usize], origins.rows[doc as usize]),
                doc,
            );
        }
        for (file_number, (path, side)) in files.iter().enumerate() {
            let file_code = if *side == Side::Input {
                0
            } else {
                file_number as u16 + 1
            };
            read_batches(path, &columns, |batch| {
                let picked: Vec<(u32, &str)> = batch
                    .iter()
                    .filter_map(|r| {
                        wanted
                            .get(&(file_code, r.row))
                            .map(|&doc| (doc, r.text.as_str()))
                    })
                    .collect();
                let texts: Vec<&str> = picked.iter().map(|(_, text)| *text).collect();
                for ((doc, _), sketch) in picked.iter().zip(corpus.sketch_batch(&texts)) {
                    corpus.supply(*doc, sketch);
                }
                Ok(())
            })?;
        }
    }
    let sketched = started.elapsed().as_secs_f64();
    let report = corpus.finish();
    let found = started.elapsed().as_secs_f64();

    let against_name = |doc: u32| -> Value {
        match corpus.side(doc) {
            Side::Input => Value::Null,
            Side::Reference(n) => json!(args.against[usize::from(n)].display().to_string()),
        }
    };
    if let Some(path) = &args.output {
        let mut writer = OutputWriter::create(path, ParquetOptions::default())?;
        for pair in &report.pairs {
            // With --against, `a` is the input row and `b` the reference row.
            let (a, b) = if corpus.side(pair.a) == Side::Input {
                (pair.a, pair.b)
            } else {
                (pair.b, pair.a)
            };
            let mut row = Map::new();
            row.insert("a".into(), origins.id(a));
            row.insert("b".into(), origins.id(b));
            row.insert("jaccard".into(), json!(pair.jaccard));
            row.insert("exact".into(), json!(pair.exact));
            if !args.against.is_empty() {
                row.insert("reference".into(), against_name(b));
            }
            writer.write_row(&row)?;
        }
        writer.finish()?;
    }
    if let Some(path) = &args.clusters {
        let mut writer = OutputWriter::create(path, ParquetOptions::default())?;
        for (n, cluster) in report.clusters.iter().enumerate() {
            let members: Vec<Value> = cluster.members.iter().map(|&d| origins.id(d)).collect();
            let dropped: Vec<Value> = cluster
                .members
                .iter()
                .filter(|&&d| d != cluster.keep)
                .map(|&d| origins.id(d))
                .collect();
            let mut row = Map::new();
            row.insert("cluster".into(), json!(n));
            row.insert("size".into(), json!(cluster.members.len()));
            row.insert("keep".into(), origins.id(cluster.keep));
            row.insert("members".into(), Value::Array(members));
            row.insert("drop".into(), Value::Array(dropped));
            writer.write_row(&row)?;
        }
        writer.finish()?;
    }
    if let Some(path) = &args.candidates {
        let mut writer = OutputWriter::create(path, ParquetOptions::default())?;
        for &(a, b, jaccard) in &report.candidates {
            let mut row = Map::new();
            row.insert("a".into(), origins.id(a));
            row.insert("b".into(), origins.id(b));
            row.insert("jaccard".into(), json!(jaccard));
            writer.write_row(&row)?;
        }
        writer.finish()?;
    }
    if let Some(path) = &args.emit_bands {
        write_band_rows(
            path,
            &corpus,
            &origins,
            &args.against,
            args.id_column.is_some(),
        )?;
    }
    let dropped_rows: HashSet<u64> = report
        .dropped
        .iter()
        .filter(|&&d| origins.files[d as usize] == 0)
        .map(|&d| origins.rows[d as usize])
        .collect();
    if let Some(path) = &args.deduped {
        write_without(&args.input, path, &dropped_rows)?;
    }
    if let Some(path) = &args.report {
        let html = html_report(&args, &corpus, &report, &origins, input_rows, &columns)?;
        std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
    }
    let total = started.elapsed().as_secs_f64();
    print_summary(
        &args,
        &report,
        input_rows,
        &dropped_rows,
        sketched,
        found,
        total,
    );
    if !args.no_record {
        let parameters = DupsParameters {
            text_column: args.text_column.clone(),
            threshold: report.threshold,
            ngram: args.ngram,
            num_perm: args.num_perm,
            bands: report.banding.bands,
            rows_per_band: report.banding.rows,
            seed: args.seed,
            against: args
                .against
                .iter()
                .map(|p| super::file_ref(p))
                .collect::<anyhow::Result<_>>()?,
        };
        // The same figures as the table above.
        let counts = DupsCounts {
            rows: input_rows,
            exact_duplicates: report.pairs.iter().filter(|p| p.exact).count(),
            near_duplicate_pairs: report.pairs.iter().filter(|p| !p.exact).count(),
            clusters: report.clusters.len(),
            rows_dropped: dropped_rows.len(),
        };
        super::record(
            settings,
            fingerprint,
            assay_provenance::audit::DUPS,
            serde_json::to_value(parameters)?,
            serde_json::to_value(counts)?,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Stream the band rows `(record, side, band, key)` to a Parquet file in batches: these are `bands` rows per
/// audited row, too many to spool as JSON. `record` is the row number (Int64) or, with `--id-column`, the id as
/// text; `key` is the 64-bit band key's bits as a signed integer, the widest integer every engine reads.
fn write_band_rows(
    path: &Path,
    corpus: &DupCorpus,
    origins: &Origins,
    against: &[PathBuf],
    text_ids: bool,
) -> anyhow::Result<()> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;

    const BATCH: usize = 65_536;
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "record",
            if text_ids {
                DataType::Utf8
            } else {
                DataType::Int64
            },
            false,
        ),
        Field::new("side", DataType::Utf8, false),
        Field::new("band", DataType::Int32, false),
        Field::new("key", DataType::Int64, false),
    ]));
    let side_names: Vec<String> = std::iter::once("input".to_string())
        .chain(against.iter().map(|p| p.display().to_string()))
        .collect();
    let temporary = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), None)?;
    let mut records_text: Vec<String> = Vec::new();
    let mut records_number: Vec<i64> = Vec::new();
    let mut sides: Vec<&str> = Vec::new();
    let mut bands: Vec<i32> = Vec::new();
    let mut keys: Vec<i64> = Vec::new();
    let mut flush = |records_text: &mut Vec<String>,
                     records_number: &mut Vec<i64>,
                     sides: &mut Vec<&str>,
                     bands: &mut Vec<i32>,
                     keys: &mut Vec<i64>|
     -> anyhow::Result<()> {
        if bands.is_empty() {
            return Ok(());
        }
        let record: ArrayRef = if text_ids {
            Arc::new(StringArray::from(std::mem::take(records_text)))
        } else {
            Arc::new(Int64Array::from(std::mem::take(records_number)))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                record,
                Arc::new(StringArray::from(std::mem::take(sides))),
                Arc::new(Int32Array::from(std::mem::take(bands))),
                Arc::new(Int64Array::from(std::mem::take(keys))),
            ],
        )?;
        writer.write(&batch)?;
        Ok(())
    };
    for (doc, band, key) in corpus.band_rows() {
        if text_ids {
            records_text.push(match origins.id(doc) {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            records_number.push(origins.rows[doc as usize] as i64);
        }
        let side = match corpus.side(doc) {
            Side::Input => 0,
            Side::Reference(n) => usize::from(n) + 1,
        };
        sides.push(side_names[side].as_str());
        bands.push(band as i32);
        keys.push(key as i64);
        if bands.len() == BATCH {
            flush(
                &mut records_text,
                &mut records_number,
                &mut sides,
                &mut bands,
                &mut keys,
            )?;
        }
    }
    flush(
        &mut records_text,
        &mut records_number,
        &mut sides,
        &mut bands,
        &mut keys,
    )?;
    writer.close()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming {} to {}", temporary.display(), path.display()))?;
    Ok(())
}

/// Copy `input` to `output` without the rows numbered in `drop`.
pub(super) fn write_without(
    input: &Path,
    output: &Path,
    drop: &HashSet<u64>,
) -> anyhow::Result<()> {
    let reader = open_dataset(input).with_context(|| format!("reading {}", input.display()))?;
    let options = ParquetOptions {
        input_schema: reader.arrow_schema(),
        ..ParquetOptions::default()
    };
    let mut writer = OutputWriter::create(output, options)?;
    for row in reader.flatten() {
        if !drop.contains(&row.index) {
            writer.write_row(&row.values)?;
        }
    }
    writer.finish()?;
    Ok(())
}

/// The texts of the given input rows (a second pass over the file).
fn texts_of(
    path: &Path,
    text_column: &str,
    wanted: &HashSet<u64>,
) -> anyhow::Result<HashMap<u64, String>> {
    let mut texts = HashMap::new();
    if wanted.is_empty() {
        return Ok(texts);
    }
    for row in open_dataset(path)?.flatten() {
        if wanted.contains(&row.index) {
            if let Some(Value::String(text)) = row.values.get(text_column) {
                texts.insert(row.index, text.clone());
            }
        }
    }
    Ok(texts)
}

fn banding_text(report: &DupReport) -> String {
    format!(
        "{} bands × {} rows; recall at J = {}: {:.4}",
        report.banding.bands,
        report.banding.rows,
        report.threshold,
        report.banding.recall_at(report.threshold)
    )
}

fn html_report(
    args: &DupsArgs,
    corpus: &DupCorpus,
    report: &DupReport,
    origins: &Origins,
    input_rows: usize,
    columns: &Columns,
) -> anyhow::Result<String> {
    use assay_report::audit::{dups_section, ClusterView, DupsView};
    const SHOWN_CLUSTERS: usize = 5;
    const SHOWN_MEMBERS: usize = 4;
    let shown: Vec<_> = report.clusters.iter().take(SHOWN_CLUSTERS).collect();
    let wanted: HashSet<u64> = shown
        .iter()
        .flat_map(|c| {
            std::iter::once(c.keep)
                .chain(c.members.iter().copied().filter(|&d| d != c.keep))
                .take(SHOWN_MEMBERS)
        })
        .map(|d| origins.rows[d as usize])
        .collect();
    let texts = texts_of(&args.input, &columns.text, &wanted)?;
    let id_text = |doc: u32| match origins.id(doc) {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let largest = shown
        .iter()
        .map(|cluster| {
            let members = std::iter::once(cluster.keep)
                .chain(
                    cluster
                        .members
                        .iter()
                        .copied()
                        .filter(|&d| d != cluster.keep),
                )
                .take(SHOWN_MEMBERS)
                .map(|doc| {
                    let text = texts
                        .get(&origins.rows[doc as usize])
                        .cloned()
                        .unwrap_or_default();
                    let kept_text = texts
                        .get(&origins.rows[cluster.keep as usize])
                        .map_or("", String::as_str);
                    let jaccard =
                        (doc != cluster.keep).then(|| corpus.text_jaccard(kept_text, &text));
                    (id_text(doc), text, jaccard)
                })
                .collect();
            ClusterView {
                keep: id_text(cluster.keep),
                members,
                size: cluster.members.len(),
            }
        })
        .collect();
    let view = DupsView {
        rows: input_rows,
        exact_duplicates: report.pairs.iter().filter(|p| p.exact).count(),
        near_pairs: report.pairs.iter().filter(|p| !p.exact).count(),
        clusters: report.clusters.len(),
        dropped: report.dropped.len(),
        candidates: report.candidates.len(),
        threshold: report.threshold,
        banding: banding_text(report),
        normalization: NORMALIZATION.into(),
        candidate_similarities: report.candidates.iter().map(|c| f64::from(c.2)).collect(),
        largest,
    };
    let mut page = assay_report::Report::new("Duplicate audit");
    page.fact("input", args.input.display().to_string());
    for reference in &args.against {
        page.fact("against", reference.display().to_string());
    }
    page.fact("shingles", format!("{}-word", args.ngram));
    page.fact("assay", env!("CARGO_PKG_VERSION"));
    page.push(dups_section(&view));
    Ok(page.to_html())
}

fn print_summary(
    args: &DupsArgs,
    report: &DupReport,
    input_rows: usize,
    dropped_rows: &HashSet<u64>,
    sketched: f64,
    found: f64,
    total: f64,
) {
    let exact = report.pairs.iter().filter(|p| p.exact).count();
    let near = report.pairs.iter().filter(|p| !p.exact).count();
    let mut table = super::super::qc::table(&["", "count"]);
    table.add_row(vec!["rows audited".to_string(), input_rows.to_string()]);
    if report.empty > 0 {
        table.add_row(vec![
            "rows without words".to_string(),
            report.empty.to_string(),
        ]);
    }
    table.add_row(vec!["exact-duplicate rows".to_string(), exact.to_string()]);
    table.add_row(vec![
        format!("near-duplicate pairs (J ≥ {})", report.threshold),
        near.to_string(),
    ]);
    table.add_row(vec![
        "candidate pairs verified".to_string(),
        report.candidates.len().to_string(),
    ]);
    if args.against.is_empty() {
        table.add_row(vec![
            "clusters".to_string(),
            report.clusters.len().to_string(),
        ]);
        table.add_row(vec![
            "rows dropped by the keep rule".to_string(),
            dropped_rows.len().to_string(),
        ]);
    } else {
        table.add_row(vec![
            "input rows duplicating the reference".to_string(),
            dropped_rows.len().to_string(),
        ]);
    }
    super::super::qc::right_align(&mut table, 1);
    outln!("{table}");
    outln!("normalization: {NORMALIZATION}");
    outln!(
        "MinHash: one-permutation hashing, {} values, {}-word shingles; LSH {}",
        args.num_perm,
        args.ngram,
        banding_text(report)
    );
    let rate = if total > 0.0 {
        input_rows as f64 / total
    } else {
        0.0
    };
    outln!(
        "{input_rows} rows in {total:.2} s ({rate:.0} rows/s; sketches {sketched:.2} s, pairs {:.2} s)",
        found - sketched
    );
}
