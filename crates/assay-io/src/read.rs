//! Streaming dataset readers: [`open_dataset`] and the row types it yields.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use serde_json::{Map, Value};

use crate::parquet_read::ParquetRows;
use crate::{Error, Format, Result};

/// How many data lines a JSONL reader looks ahead at open time to find the first object for
/// [`DatasetReader::columns`].
const JSONL_COLUMN_LOOKAHEAD: usize = 1_000;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One data row of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 0-based position among the file's data rows: non-blank lines for JSONL, records after the header
    /// for CSV and TSV, row position for Parquet. Messages for people say "row {index + 1}".
    pub index: u64,
    /// The row's values by column name. CSV and TSV values are always strings, kept exactly as written.
    pub values: Map<String, Value>,
}

/// A row that could not be read. The reader skips it and goes on with the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 0-based position of the row, counted as for [`Row::index`].
    pub index: u64,
    /// Why the row was rejected, e.g. "not valid JSON: expected value at column 5".
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.index + 1, self.reason)
    }
}

impl std::error::Error for RowError {}

/// A streaming reader over a dataset file's rows; see [`open_dataset`].
///
/// Iterating yields each data row in file order, either as a [`Row`] or, for a row that cannot be read, as a
/// [`RowError`]; the iteration goes on after a bad row. If the file itself fails part way (an I/O error, a
/// corrupt Parquet page), the reader yields one `RowError` saying so and then ends.
pub struct DatasetReader {
    path: PathBuf,
    format: Format,
    columns: Vec<String>,
    arrow_schema: Option<SchemaRef>,
    rows: Rows,
}

enum Rows {
    Jsonl(JsonlRows),
    Delimited(DelimitedRows),
    Parquet(ParquetRows),
}

/// Opens the dataset at `path` for streaming, choosing the format by extension (see [`Format::from_path`]).
///
/// # Errors
/// Whole-file problems: an unknown extension, a missing or unreadable file, a CSV or TSV file without a
/// header row (or with a repeated column name), a file that is not Parquet. Problems with single rows are
/// yielded by the reader instead.
pub fn open_dataset(path: &Path) -> Result<DatasetReader> {
    let format = Format::from_path(path)?;
    let (columns, arrow_schema, rows) = match format {
        Format::Jsonl => {
            let mut rows = JsonlRows::open(path)?;
            let columns = rows.look_ahead_for_columns();
            (columns, None, Rows::Jsonl(rows))
        }
        Format::Csv | Format::Tsv => {
            let rows = DelimitedRows::open(path, format)?;
            (rows.columns.clone(), None, Rows::Delimited(rows))
        }
        Format::Parquet => {
            let rows = ParquetRows::open(path)?;
            let schema = rows.schema();
            let columns = schema
                .fields()
                .iter()
                .map(|field| field.name().clone())
                .collect();
            (columns, Some(schema), Rows::Parquet(rows))
        }
    };
    Ok(DatasetReader {
        path: path.to_path_buf(),
        format,
        columns,
        arrow_schema,
        rows,
    })
}

impl DatasetReader {
    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Column names: the CSV or TSV header, the Parquet schema's top-level fields, or for JSONL the keys of the
    /// first object in the file (later objects may have other keys).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The Arrow schema of a Parquet input, so that [`write_parquet`](crate::write_parquet) can keep its column
    /// types; `None` for other formats.
    pub fn arrow_schema(&self) -> Option<SchemaRef> {
        self.arrow_schema.clone()
    }
}

impl Iterator for DatasetReader {
    type Item = std::result::Result<Row, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.rows {
            Rows::Jsonl(rows) => rows.next(),
            Rows::Delimited(rows) => rows.next(),
            Rows::Parquet(rows) => rows.next(),
        }
    }
}

impl fmt::Debug for DatasetReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatasetReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

/// Opens `path` buffered, past a UTF-8 byte order mark if there is one.
fn open_buffered(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).map_err(|source| Error::open(path, source))?;
    let mut reader = BufReader::new(file);
    let buffered = reader
        .fill_buf()
        .map_err(|source| Error::io(path, "read", source))?;
    if buffered.starts_with(UTF8_BOM) {
        reader.consume(UTF8_BOM.len());
    }
    Ok(reader)
}

fn invalid_utf8_reason(error: &std::str::Utf8Error, place: &str) -> String {
    format!(
        "invalid UTF-8 at byte {} of the {place}",
        error.valid_up_to() + 1
    )
}

/// JSON Lines: each non-blank line is one JSON object.
struct JsonlRows {
    reader: BufReader<File>,
    line: Vec<u8>,
    next_index: u64,
    /// Rows read ahead by [`JsonlRows::look_ahead_for_columns`], yielded before reading on.
    pending: VecDeque<std::result::Result<Row, RowError>>,
    done: bool,
}

impl JsonlRows {
    fn open(path: &Path) -> Result<JsonlRows> {
        Ok(JsonlRows {
            reader: open_buffered(path)?,
            line: Vec::new(),
            next_index: 0,
            pending: VecDeque::new(),
            done: false,
        })
    }

    /// Reads ahead to the first object (at most [`JSONL_COLUMN_LOOKAHEAD`] rows) and returns its keys.
    fn look_ahead_for_columns(&mut self) -> Vec<String> {
        while self.pending.len() < JSONL_COLUMN_LOOKAHEAD {
            let Some(item) = self.read_row() else { break };
            let columns = item
                .as_ref()
                .ok()
                .map(|row| row.values.keys().cloned().collect());
            self.pending.push_back(item);
            if let Some(columns) = columns {
                return columns;
            }
        }
        Vec::new()
    }

    fn read_row(&mut self) -> Option<std::result::Result<Row, RowError>> {
        if self.done {
            return None;
        }
        loop {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(error) => {
                    self.done = true;
                    return Some(Err(RowError {
                        index: self.next_index,
                        reason: format!("reading stopped: could not read the file: {error}"),
                    }));
                }
            }
            if self.line.trim_ascii().is_empty() {
                continue;
            }
            let line = self.line.trim_ascii_end();
            let index = self.next_index;
            self.next_index += 1;
            return Some(
                parse_jsonl_line(line)
                    .map(|values| Row { index, values })
                    .map_err(|reason| RowError { index, reason }),
            );
        }
    }
}

impl Iterator for JsonlRows {
    type Item = std::result::Result<Row, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.pending.pop_front().or_else(|| self.read_row())
    }
}

fn parse_jsonl_line(line: &[u8]) -> std::result::Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(line).map_err(|error| invalid_utf8_reason(&error, "line"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(values)) => Ok(values),
        Ok(other) => Err(format!(
            "JSON line is not an object (it is {})",
            json_kind(&other)
        )),
        Err(error) => {
            // serde_json says "... at line 1 column 5"; a JSONL row is one line, so only the column helps.
            let message = error.to_string();
            let suffix = format!(" at line {} column {}", error.line(), error.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            Err(format!(
                "not valid JSON: {message} at column {}",
                error.column()
            ))
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// CSV or TSV with a header row; every value is a string.
struct DelimitedRows {
    reader: csv::Reader<BufReader<File>>,
    columns: Vec<String>,
    record: csv::ByteRecord,
    next_index: u64,
    done: bool,
}

impl DelimitedRows {
    fn open(path: &Path, format: Format) -> Result<DelimitedRows> {
        let mut builder = csv::ReaderBuilder::new();
        builder.has_headers(true).flexible(true);
        if format == Format::Tsv {
            // TSV files do not quote: a `"` inside a field is just a character.
            builder.delimiter(b'\t').quoting(false);
        }
        let mut reader = builder.from_reader(open_buffered(path)?);
        let header = reader
            .byte_headers()
            .map_err(|error| match error.into_kind() {
                csv::ErrorKind::Io(source) => Error::io(path, "read", source),
                other => Error::InvalidDataset {
                    path: path.to_path_buf(),
                    reason: format!("could not read the header row: {other:?}"),
                },
            })?;
        let invalid = |reason: String| Error::InvalidDataset {
            path: path.to_path_buf(),
            reason,
        };
        if header.is_empty() {
            return Err(invalid(format!(
                "{format} file has no header row (the first line must name the columns)"
            )));
        }
        let mut columns: Vec<String> = Vec::with_capacity(header.len());
        for (position, name) in header.iter().enumerate() {
            let name = std::str::from_utf8(name).map_err(|error| {
                invalid(format!(
                    "header row: column {}: {}",
                    position + 1,
                    invalid_utf8_reason(&error, "name")
                ))
            })?;
            if columns.iter().any(|seen| seen == name) {
                return Err(invalid(format!(
                    "header row names column \"{name}\" twice; column names must be unique"
                )));
            }
            columns.push(name.to_owned());
        }
        Ok(DelimitedRows {
            reader,
            columns,
            record: csv::ByteRecord::new(),
            next_index: 0,
            done: false,
        })
    }

    fn record_values(&self) -> std::result::Result<Map<String, Value>, String> {
        if self.record.len() != self.columns.len() {
            return Err(format!(
                "has {} fields, header has {}",
                self.record.len(),
                self.columns.len()
            ));
        }
        let mut values = Map::with_capacity(self.columns.len());
        for (column, field) in self.columns.iter().zip(self.record.iter()) {
            let text = std::str::from_utf8(field).map_err(|error| {
                format!(
                    "column \"{column}\": {}",
                    invalid_utf8_reason(&error, "field")
                )
            })?;
            values.insert(column.clone(), Value::String(text.to_owned()));
        }
        Ok(values)
    }
}

impl Iterator for DelimitedRows {
    type Item = std::result::Result<Row, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let index = self.next_index;
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return None;
            }
            Err(error) => {
                // With `flexible(true)` and byte records, what is left is I/O failure: stop here.
                self.done = true;
                return Some(Err(RowError {
                    index,
                    reason: format!("reading stopped: {error}"),
                }));
            }
        }
        self.next_index += 1;
        Some(
            self.record_values()
                .map(|values| Row { index, values })
                .map_err(|reason| RowError { index, reason }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shared_dataset(relative: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/datasets")
            .join(relative)
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    fn write_file(directory: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
        let path = directory.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn jsonl_bad_lines_are_reported_with_their_row_and_reading_goes_on() {
        let directory = tempfile::tempdir().unwrap();
        let contents: &[u8] = b"{\"id\": 1, \"text\": \"first\"}\n\
            \n\
            {\"id\": 2, \"text\": }\n\
            [1, 2]\n\
            {\"text\": \"caf\xE9\"}\n   \t\n\
            {\"id\": 5, \"text\": \"last\"}\r\n";
        let path = write_file(&directory, "rows.jsonl", contents);

        let reader = open_dataset(&path).unwrap();
        assert_eq!(reader.format(), Format::Jsonl);
        assert_eq!(reader.columns(), ["id", "text"]);
        assert!(reader.arrow_schema().is_none());
        let items: Vec<_> = reader.collect();
        assert_eq!(items.len(), 5, "{items:?}");

        assert_eq!(
            items[0],
            Ok(Row {
                index: 0,
                values: object(json!({"id": 1, "text": "first"}))
            })
        );
        let error = items[1].as_ref().unwrap_err();
        assert_eq!(error.index, 1);
        assert_eq!(error.reason, "not valid JSON: expected value at column 19");
        let error = items[2].as_ref().unwrap_err();
        assert_eq!(error.index, 2);
        assert_eq!(error.reason, "JSON line is not an object (it is an array)");
        let error = items[3].as_ref().unwrap_err();
        assert_eq!(error.index, 3);
        // `{"text": "caf` is 13 bytes; the 14th is the Latin-1 é.
        assert_eq!(error.reason, "invalid UTF-8 at byte 14 of the line");
        assert_eq!(
            error.to_string(),
            "row 4: invalid UTF-8 at byte 14 of the line"
        );
        assert_eq!(
            items[4],
            Ok(Row {
                index: 4,
                values: object(json!({"id": 5, "text": "last"}))
            })
        );
    }

    #[test]
    fn jsonl_columns_come_from_the_first_object_even_after_bad_lines() {
        let directory = tempfile::tempdir().unwrap();
        let path = write_file(
            &directory,
            "rows.ndjson",
            b"\xEF\xBB\xBFnope\n\"string\"\n{\"b\": 1, \"a\": 2}\n{\"c\": 3}\n",
        );
        let reader = open_dataset(&path).unwrap();
        // Key order is the file's, not sorted.
        assert_eq!(reader.columns(), ["b", "a"]);
        let items: Vec<_> = reader.collect();
        let indices: Vec<(u64, bool)> = items
            .iter()
            .map(|item| match item {
                Ok(row) => (row.index, true),
                Err(error) => (error.index, false),
            })
            .collect();
        assert_eq!(indices, [(0, false), (1, false), (2, true), (3, true)]);
        // The byte order mark is not part of the first line.
        assert_eq!(
            items[0].as_ref().unwrap_err().reason,
            "not valid JSON: expected ident at column 2"
        );
    }

    #[test]
    fn jsonl_with_a_million_rows_streams() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("big.jsonl");
        let mut writer = std::io::BufWriter::new(File::create(&path).unwrap());
        for id in 0..1_000_000u64 {
            std::io::Write::write_all(&mut writer, format!("{{\"id\":{id}}}\n").as_bytes())
                .unwrap();
        }
        std::io::Write::flush(&mut writer).unwrap();
        drop(writer);

        let mut count = 0u64;
        for item in open_dataset(&path).unwrap() {
            let row = item.unwrap();
            assert_eq!(row.index, count);
            assert_eq!(row.values["id"], json!(count));
            count += 1;
        }
        assert_eq!(count, 1_000_000);
    }

    #[test]
    fn csv_quoted_fields_wrong_field_counts_and_bad_utf8() {
        let directory = tempfile::tempdir().unwrap();
        let contents: &[u8] = b"id,text\n\
            007,\"hello, world\"\n\
            2,\"line one\nline two\"\n\
            3,\"she said \"\"hi\"\"\"\n\
            4,a,b\n\
            5,caf\xE9\n\
            6,\n\
            7,last\n";
        let path = write_file(&directory, "rows.csv", contents);
        let reader = open_dataset(&path).unwrap();
        assert_eq!(reader.format(), Format::Csv);
        assert_eq!(reader.columns(), ["id", "text"]);
        let items: Vec<_> = reader.collect();
        assert_eq!(items.len(), 7, "{items:?}");

        let row = |index: usize| &items[index].as_ref().unwrap().values;
        // Values are the exact text: no number guessing.
        assert_eq!(
            row(0),
            &object(json!({"id": "007", "text": "hello, world"}))
        );
        assert_eq!(row(1)["text"], "line one\nline two");
        assert_eq!(row(2)["text"], "she said \"hi\"");
        let error = items[3].as_ref().unwrap_err();
        assert_eq!(
            (error.index, error.reason.as_str()),
            (3, "has 3 fields, header has 2")
        );
        let error = items[4].as_ref().unwrap_err();
        assert_eq!(error.index, 4);
        assert_eq!(
            error.reason,
            "column \"text\": invalid UTF-8 at byte 4 of the field"
        );
        assert_eq!(row(5), &object(json!({"id": "6", "text": ""})));
        assert_eq!(items[6].as_ref().unwrap().index, 6);
        assert_eq!(row(6)["text"], "last");
    }

    #[test]
    fn tsv_keeps_quote_characters_as_text() {
        let directory = tempfile::tempdir().unwrap();
        let path = write_file(
            &directory,
            "rows.tsv",
            b"label\ttext\nham\t\"quoted\" start\nspam\tsay \"hi\nham\tx, y\n",
        );
        let rows: Vec<Row> = open_dataset(&path)
            .unwrap()
            .map(|item| item.unwrap())
            .collect();
        let texts: Vec<&Value> = rows.iter().map(|row| &row.values["text"]).collect();
        assert_eq!(
            texts,
            [
                &json!("\"quoted\" start"),
                &json!("say \"hi"),
                &json!("x, y")
            ]
        );
    }

    #[test]
    fn tsv_reads_the_sms_spam_collection() {
        let reader =
            open_dataset(&shared_dataset("classify/sms_spam/SMSSpamCollection.tsv")).unwrap();
        assert_eq!(reader.format(), Format::Tsv);
        assert_eq!(reader.columns(), ["Label", "SMS"]);
        let mut rows = 0;
        let mut with_quotes = 0;
        for item in reader {
            let row = item.unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(row.index, rows);
            let label = row.values["Label"].as_str().unwrap();
            assert!(label == "ham" || label == "spam", "{label}");
            if row.values["SMS"].as_str().unwrap().contains('"') {
                with_quotes += 1;
            }
            rows += 1;
        }
        assert_eq!(rows, 5_574);
        assert!(
            with_quotes > 0,
            "the file has quote characters inside fields"
        );
    }

    #[test]
    fn csv_reads_banking77_test_split() {
        let reader = open_dataset(&shared_dataset("classify/banking77/test.csv")).unwrap();
        assert_eq!(reader.columns(), ["text", "category"]);
        let rows: Vec<Row> = reader
            .map(|item| item.unwrap_or_else(|error| panic!("{error}")))
            .collect();
        assert_eq!(rows.len(), 3_080);
        assert_eq!(
            rows[1].values["text"],
            "I still have not received my new card, I ordered over a week ago."
        );
        assert_eq!(rows[1].values["category"], "card_arrival");
    }

    #[test]
    fn whole_file_problems_are_errors_naming_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let missing = directory.path().join("missing.jsonl");
        let error = open_dataset(&missing).unwrap_err();
        assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
        assert!(error.to_string().contains("missing.jsonl"), "{error}");

        let empty = write_file(&directory, "empty.csv", b"");
        let error = open_dataset(&empty).unwrap_err();
        assert!(matches!(error, Error::InvalidDataset { .. }), "{error:?}");
        assert!(error.to_string().contains("no header row"), "{error}");

        let duplicate = write_file(&directory, "duplicate.csv", b"a,b,a\n1,2,3\n");
        let error = open_dataset(&duplicate).unwrap_err();
        assert!(error.to_string().contains("\"a\" twice"), "{error}");

        let not_parquet = write_file(&directory, "fake.parquet", b"{\"a\": 1}\n");
        let error = open_dataset(&not_parquet).unwrap_err();
        assert!(matches!(error, Error::InvalidParquet { .. }), "{error:?}");
        assert!(error.to_string().contains("fake.parquet"), "{error}");

        let unknown = write_file(&directory, "data.xlsx", b"");
        let error = open_dataset(&unknown).unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedFormat { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn reader_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<DatasetReader>();
    }
}
