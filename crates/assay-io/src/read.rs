//! Streaming dataset readers: [`open_dataset`] and the row types it yields.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use serde_json::{Map, Value};

use crate::parquet_read::ParquetRows;
use crate::{Error, Format, Result};

/// How many data lines a JSONL reader looks ahead at open time to find the first object for
/// [`DatasetReader::columns`].
const JSONL_COLUMN_LOOKAHEAD: usize = 1_000;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The longest JSONL line or CSV/TSV record a reader holds in memory unless told otherwise
/// ([`ReadOptions::max_row_bytes`]): 16 MiB.
pub const MAX_ROW_BYTES: usize = 16 << 20;

/// How [`open_dataset_with`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// The longest JSONL line or CSV/TSV record, in bytes without its line break, that is read into memory.
    ///
    /// A longer row becomes a [`RowError`] ("line longer than N bytes", "record longer than N bytes") and
    /// reading goes on with the next one; a CSV or TSV header row that long is an [`Error`]. (A CSV or TSV record
    /// is measured with its line break, so it may hold two bytes more; the parser also holds its 8 KiB
    /// read-ahead buffer.) Parquet rows come in the file's batches and are not limited here.
    pub max_row_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_row_bytes: MAX_ROW_BYTES,
        }
    }
}

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

/// Opens the dataset at `path` for streaming, choosing the format by extension (see [`Format::from_path`]), with
/// the default [`ReadOptions`].
///
/// # Errors
/// Whole-file problems: an unknown extension, a missing or unreadable file, a CSV or TSV file without a
/// header row (or with a repeated column name, or longer than [`MAX_ROW_BYTES`]), a file that is not Parquet.
/// Problems with single rows are yielded by the reader instead.
pub fn open_dataset(path: &Path) -> Result<DatasetReader> {
    open_dataset_with(path, &ReadOptions::default())
}

/// [`open_dataset`] with other [`ReadOptions`], e.g. a smaller limit on the length of a row.
///
/// # Errors
/// As for [`open_dataset`].
pub fn open_dataset_with(path: &Path, options: &ReadOptions) -> Result<DatasetReader> {
    let format = Format::from_path(path)?;
    let (columns, arrow_schema, rows) = match format {
        Format::Jsonl => {
            let mut rows = JsonlRows::open(path, options.max_row_bytes)?;
            let columns = rows.look_ahead_for_columns();
            (columns, None, Rows::Jsonl(rows))
        }
        Format::Csv | Format::Tsv => {
            let rows = DelimitedRows::open(path, format, options.max_row_bytes)?;
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

/// Opens `path` buffered, past a UTF-8 byte order mark if there is one; also returns where that left it.
fn open_buffered(path: &Path) -> Result<(BufReader<File>, u64)> {
    let file = File::open(path).map_err(|source| Error::open(path, source))?;
    let mut reader = BufReader::new(file);
    let buffered = reader
        .fill_buf()
        .map_err(|source| Error::io(path, "read", source))?;
    if buffered.starts_with(UTF8_BOM) {
        reader.consume(UTF8_BOM.len());
        return Ok((reader, UTF8_BOM.len() as u64));
    }
    Ok((reader, 0))
}

fn invalid_utf8_reason(error: &std::str::Utf8Error, place: &str) -> String {
    format!(
        "invalid UTF-8 at byte {} of the {place}",
        error.valid_up_to() + 1
    )
}

/// What [`read_line_bounded`] found.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// The end of the file: no byte was left.
    End,
    /// A line, now in the buffer (with its `\n` if it had one).
    Line,
    /// A line longer than the limit; it was read past and dropped, the buffer is empty. `blank`: it held only
    /// ASCII whitespace.
    TooLong { blank: bool },
}

/// Reads one line (up to and including `\n`, or to the end of the file) into `line`, but keeps no more than
/// `max` bytes of it (not counting the `\n`): a longer line is read past in the reader's own buffer-sized pieces
/// and dropped, so memory stays bounded by `max` whatever the file holds.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut any = false;
    let mut too_long: Option<bool> = None;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (piece, ends) = match available.iter().position(|&byte| byte == b'\n') {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let content = piece.strip_suffix(b"\n").unwrap_or(piece);
        match &mut too_long {
            None if line.len() + content.len() <= max => line.extend_from_slice(piece),
            None => {
                too_long = Some(line.trim_ascii().is_empty() && content.trim_ascii().is_empty());
                line.clear();
            }
            Some(blank) => *blank &= content.trim_ascii().is_empty(),
        }
        let used = piece.len();
        reader.consume(used);
        if ends {
            break;
        }
    }
    Ok(match too_long {
        Some(blank) => LineRead::TooLong { blank },
        None if any => LineRead::Line,
        None => LineRead::End,
    })
}

/// JSON Lines: each non-blank line is one JSON object.
struct JsonlRows {
    reader: BufReader<File>,
    line: Vec<u8>,
    /// Longer lines are row errors ([`ReadOptions::max_row_bytes`]).
    max_line_bytes: usize,
    next_index: u64,
    /// Rows read ahead by [`JsonlRows::look_ahead_for_columns`], yielded before reading on.
    pending: VecDeque<std::result::Result<Row, RowError>>,
    done: bool,
}

impl JsonlRows {
    fn open(path: &Path, max_line_bytes: usize) -> Result<JsonlRows> {
        Ok(JsonlRows {
            reader: open_buffered(path)?.0,
            line: Vec::new(),
            max_line_bytes,
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
            match read_line_bounded(&mut self.reader, &mut self.line, self.max_line_bytes) {
                Ok(LineRead::End) => {
                    self.done = true;
                    return None;
                }
                Ok(LineRead::Line) => {}
                Ok(LineRead::TooLong { blank: true }) => continue,
                Ok(LineRead::TooLong { blank: false }) => {
                    let index = self.next_index;
                    self.next_index += 1;
                    return Some(Err(RowError {
                        index,
                        reason: format!("line longer than {} bytes", self.max_line_bytes),
                    }));
                }
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

/// The CSV parser's input: it fails with [`RecordTooLong`] rather than hand the parser more than `allowed` bytes
/// in all, so that one record (which the parser keeps whole in memory) cannot grow past the limit.
/// [`DelimitedRows`] moves `allowed` on before each record. Offsets count from `start`, where the parser began
/// (past a byte order mark), as the parser's positions do.
struct BoundedInput {
    inner: BufReader<File>,
    start: u64,
    delivered: u64,
    allowed: u64,
}

impl Seek for BoundedInput {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        let position = match position {
            SeekFrom::Start(offset) => SeekFrom::Start(self.start + offset),
            other => other,
        };
        self.delivered = self.inner.seek(position)?.saturating_sub(self.start);
        Ok(self.delivered)
    }
}

impl Read for BoundedInput {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let room = self.allowed.saturating_sub(self.delivered);
        if room == 0 {
            // At the end of the file there is nothing more to refuse.
            if self.inner.fill_buf()?.is_empty() {
                return Ok(0);
            }
            return Err(io::Error::other(RecordTooLong));
        }
        let wanted = buffer
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..wanted])?;
        self.delivered += read as u64;
        Ok(read)
    }
}

/// [`BoundedInput`]'s refusal, found again in the CSV parser's I/O error.
#[derive(Debug)]
struct RecordTooLong;

impl fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("record longer than the limit")
    }
}

impl std::error::Error for RecordTooLong {}

fn is_record_too_long(error: &csv::Error) -> bool {
    match error.kind() {
        csv::ErrorKind::Io(error) => error
            .get_ref()
            .is_some_and(|inner| inner.is::<RecordTooLong>()),
        _ => false,
    }
}

/// CSV or TSV with a header row; every value is a string.
struct DelimitedRows {
    reader: csv::Reader<BoundedInput>,
    /// Longer records are row errors ([`ReadOptions::max_row_bytes`]).
    max_record_bytes: usize,
    /// The parser's settings, for [`DelimitedRows::find_record_end`].
    delimiter: u8,
    quoting: bool,
    columns: Vec<String>,
    record: csv::ByteRecord,
    next_index: u64,
    done: bool,
}

impl DelimitedRows {
    fn open(path: &Path, format: Format, max_record_bytes: usize) -> Result<DelimitedRows> {
        // TSV files do not quote: a `"` inside a field is just a character.
        let (delimiter, quoting) = match format {
            Format::Tsv => (b'\t', false),
            _ => (b',', true),
        };
        let mut builder = csv::ReaderBuilder::new();
        builder
            .has_headers(true)
            .flexible(true)
            .delimiter(delimiter)
            .quoting(quoting);
        let (inner, start) = open_buffered(path)?;
        let input = BoundedInput {
            inner,
            start,
            delivered: 0,
            allowed: 0,
        };
        let mut reader = builder.from_reader(input);
        allow_one_record(&mut reader, max_record_bytes);
        let header = reader
            .byte_headers()
            .map_err(|error| match error.into_kind() {
                csv::ErrorKind::Io(source)
                    if source.get_ref().is_some_and(|e| e.is::<RecordTooLong>()) =>
                {
                    Error::InvalidDataset {
                        path: path.to_path_buf(),
                        reason: format!("the header row is longer than {max_record_bytes} bytes"),
                    }
                }
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
            max_record_bytes,
            delimiter,
            quoting,
            columns,
            record: csv::ByteRecord::new(),
            next_index: 0,
            done: false,
        })
    }

    /// Where the record that starts at byte `start` ends, found by parsing it again from the file with a parser
    /// of the same settings that keeps none of it.
    fn find_record_end(&mut self, start: u64) -> io::Result<u64> {
        let input = self.reader.get_mut();
        input.seek(SeekFrom::Start(start))?;
        let mut parser = csv_core::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .quoting(self.quoting)
            .build();
        let (mut output, mut ends) = ([0; 4096], [0; 64]);
        let mut end = start;
        loop {
            let buffer = match input.inner.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            // What the parser writes to `output` and `ends` is dropped: a full one is simply reused.
            let (result, read, _, _) = parser.read_record(buffer, &mut output, &mut ends);
            input.inner.consume(read);
            end += read as u64;
            if matches!(
                result,
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End
            ) {
                return Ok(end);
            }
        }
    }

    /// Moves past the over-long record that starts at `start`; an error says why reading cannot go on.
    fn skip_record(&mut self, start: u64) -> std::result::Result<(), String> {
        let end = self
            .find_record_end(start)
            .map_err(|error| format!("could not read the file: {error}"))?;
        let mut position = csv::Position::new();
        position.set_byte(end);
        self.reader
            .seek(position)
            .map_err(|error| format!("could not read the file: {error}"))
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
        let start = allow_one_record(&mut self.reader, self.max_record_bytes);
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => {
                self.done = true;
                return None;
            }
            Err(error) if is_record_too_long(&error) => {
                // The parser stops at its input's refusal; it goes on from the end of the record.
                self.next_index += 1;
                let mut reason = format!("record longer than {} bytes", self.max_record_bytes);
                if let Err(why) = self.skip_record(start) {
                    self.done = true;
                    reason.push_str(&format!("; reading stopped: {why}"));
                }
                return Some(Err(RowError { index, reason }));
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

/// Lets the parser read the next record, from where it stands, up to `max` bytes plus a `\r\n`, and returns where
/// the record starts. What the parser read ahead lies within the last record's allowance, so no record can pass
/// its own.
fn allow_one_record(reader: &mut csv::Reader<BoundedInput>, max: usize) -> u64 {
    let start = reader.position().byte();
    reader.get_mut().allowed = start.saturating_add(max as u64).saturating_add(2);
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A file of the repository's `tests/data` (real datasets; see its README). A missing file fails the test.
    fn test_data(relative: &str) -> PathBuf {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data")
            .join(relative);
        assert!(path.is_file(), "{} is missing", path.display());
        path
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

    /// Each item's index and whether it is a row (`true`) or a row error.
    fn outline(items: &[std::result::Result<Row, RowError>]) -> Vec<(u64, bool)> {
        items
            .iter()
            .map(|item| match item {
                Ok(row) => (row.index, true),
                Err(error) => (error.index, false),
            })
            .collect()
    }

    #[test]
    fn jsonl_line_over_the_default_limit_is_a_row_error_and_reading_goes_on() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("long.jsonl");
        let mut contents = b"{\"id\": 0}\n{\"id\": 1, \"text\": \"".to_vec();
        contents.resize(contents.len() + MAX_ROW_BYTES, b'x');
        contents.extend_from_slice(b"\"}\n{\"id\": 2}\n");
        std::fs::write(&path, &contents).unwrap();
        drop(contents);

        let items: Vec<_> = open_dataset(&path).unwrap().collect();
        assert_eq!(outline(&items), [(0, true), (1, false), (2, true)]);
        let error = items[1].as_ref().unwrap_err();
        assert_eq!(error.to_string(), "row 2: line longer than 16777216 bytes");
        assert_eq!(items[2].as_ref().unwrap().values["id"], json!(2));
    }

    #[test]
    fn jsonl_line_limit_is_exact_and_configurable() {
        let directory = tempfile::tempdir().unwrap();
        let options = ReadOptions { max_row_bytes: 16 };
        // 16 bytes is allowed, 17 is not; `\r\n` counts its `\r`; a long blank line is still blank; the last
        // line may lack its `\n`. The lines are far shorter than the read buffer and longer than it.
        let exact = b"{\"a\": \"1234567\"}";
        assert_eq!(exact.len(), 16);
        let mut contents = Vec::new();
        contents.extend_from_slice(exact);
        contents.extend_from_slice(b"\n{\"a\": \"12345678\"}\n");
        contents.extend_from_slice(exact);
        contents.extend_from_slice(b"\r\n");
        contents.extend_from_slice(&vec![b' '; 100_000]);
        contents.extend_from_slice(b"\n{\"a\": \"");
        contents.extend_from_slice(&vec![b'1'; 100_000]);
        contents.extend_from_slice(b"\"}\n{}\n{\"a\": \"no newline at the end\"}");
        let path = write_file(&directory, "rows.jsonl", &contents);

        let items: Vec<_> = open_dataset_with(&path, &options).unwrap().collect();
        assert_eq!(
            outline(&items),
            [
                (0, true),
                (1, false),
                (2, false),
                (3, false),
                (4, true),
                (5, false)
            ]
        );
        for index in [1, 2, 3, 5] {
            assert_eq!(
                items[index].as_ref().unwrap_err().reason,
                "line longer than 16 bytes",
                "item {index}"
            );
        }
        // The default limit reads all of them.
        let items: Vec<_> = open_dataset(&path).unwrap().collect();
        assert_eq!(
            outline(&items),
            [
                (0, true),
                (1, true),
                (2, true),
                (3, true),
                (4, true),
                (5, true)
            ]
        );
    }

    #[test]
    fn read_line_bounded_keeps_memory_within_the_limit() {
        // A reader with a small buffer, so that one line comes in many pieces.
        let mut input =
            std::io::BufReader::with_capacity(7, &b"short\nthis line is too long\n\nend"[..]);
        let mut line = Vec::new();
        let mut next = || {
            let read = read_line_bounded(&mut input, &mut line, 10).unwrap();
            assert!(line.len() <= 11);
            (read, String::from_utf8(line.clone()).unwrap())
        };
        assert_eq!(next(), (LineRead::Line, "short\n".into()));
        assert_eq!(next(), (LineRead::TooLong { blank: false }, String::new()));
        assert_eq!(next(), (LineRead::Line, "\n".into()));
        assert_eq!(next(), (LineRead::Line, "end".into()));
        assert_eq!(next(), (LineRead::End, String::new()));
    }

    #[test]
    fn csv_record_over_the_limit_is_a_row_error_and_reading_goes_on() {
        let directory = tempfile::tempdir().unwrap();
        let options = ReadOptions { max_row_bytes: 32 };
        // Short and long records, long ones with quoted line breaks, commas and doubled quotes; a byte order mark
        // (the offsets count past it); the last record has no line break.
        let mut contents = b"\xEF\xBB\xBFid,text\n1,\"fine,\nstill \"\"fine\"\"\"\n2,\"".to_vec();
        for _ in 0..100_000 {
            contents.extend_from_slice(b"a \"\"b\"\",\nc");
        }
        contents.extend_from_slice(
            b"\"\n3,after it\r\n4,\"far too long for the limit of 32 bytes\"\n5,last",
        );
        let path = write_file(&directory, "rows.csv", &contents);

        let items: Vec<_> = open_dataset_with(&path, &options).unwrap().collect();
        assert_eq!(
            outline(&items),
            [(0, true), (1, false), (2, true), (3, false), (4, true)]
        );
        let row = |index: usize| &items[index].as_ref().unwrap().values;
        assert_eq!(row(0)["text"], "fine,\nstill \"fine\"");
        assert_eq!(
            items[1].as_ref().unwrap_err().to_string(),
            "row 2: record longer than 32 bytes"
        );
        assert_eq!(row(2), &object(json!({"id": "3", "text": "after it"})));
        assert_eq!(
            items[3].as_ref().unwrap_err().reason,
            "record longer than 32 bytes"
        );
        assert_eq!(row(4)["text"], "last");

        // The default limit reads them all.
        let items: Vec<_> = open_dataset(&path).unwrap().collect();
        assert_eq!(
            outline(&items),
            [(0, true), (1, true), (2, true), (3, true), (4, true)]
        );
        assert_eq!(
            items[1].as_ref().unwrap().values["text"]
                .as_str()
                .unwrap()
                .len(),
            800_000,
            "each doubled quote is one character"
        );
    }

    #[test]
    fn tsv_record_over_the_limit_is_a_row_error_and_the_limit_is_exact() {
        let directory = tempfile::tempdir().unwrap();
        let options = ReadOptions { max_row_bytes: 32 };
        // 32 bytes and their line break are allowed, 34 are not; TSV quote characters do not quote.
        let exact = b"1\t012345678901234567890123456789";
        assert_eq!(exact.len(), 32);
        let mut contents = b"id\ttext\n".to_vec();
        contents.extend_from_slice(exact);
        contents.extend_from_slice(b"\r\n2\t\"");
        contents.extend_from_slice(&vec![b'x'; 100_000]);
        contents.extend_from_slice(b"\n3\t\"01234567890123456789012345678901\n4\tend\n");
        let path = write_file(&directory, "rows.tsv", &contents);
        let items: Vec<_> = open_dataset_with(&path, &options).unwrap().collect();
        assert_eq!(
            outline(&items),
            [(0, true), (1, false), (2, false), (3, true)]
        );
        assert_eq!(items[3].as_ref().unwrap().values["text"], "end");

        // A record that ends exactly at the limit and the end of the file is read.
        let path = write_file(&directory, "end.tsv", &[&b"id\ttext\n"[..], exact].concat());
        let items: Vec<_> = open_dataset_with(&path, &options).unwrap().collect();
        assert_eq!(outline(&items), [(0, true)]);
    }

    #[test]
    fn csv_header_over_the_limit_is_an_error_naming_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let mut contents = vec![b'h'; 100_000];
        contents.extend_from_slice(b"\n1\n");
        let path = write_file(&directory, "wide.csv", &contents);
        let error = open_dataset_with(&path, &ReadOptions { max_row_bytes: 32 }).unwrap_err();
        assert!(matches!(error, Error::InvalidDataset { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .ends_with("wide.csv: the header row is longer than 32 bytes"),
            "{error}"
        );
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
        let reader = open_dataset(&test_data("sms_spam/SMSSpamCollection.tsv")).unwrap();
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
        let reader = open_dataset(&test_data("banking77/test.csv")).unwrap();
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
