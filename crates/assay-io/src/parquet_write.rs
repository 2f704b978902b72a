//! Writing rows of JSON values as Parquet, with an Arrow schema inferred from the rows.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::ReaderBuilder;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};

use crate::write::write_atomically;
use crate::{Error, Result};

/// Rows encoded per Arrow record batch; bounds the writer's extra memory.
const CHUNK_ROWS: usize = 8_192;

/// The path element that stands for "the items of a list" in [`ParquetOptions::map_columns`].
pub const LIST_ITEMS: &str = "[]";

/// How [`write_parquet`] chooses the Arrow type of each column.
#[derive(Debug, Clone, Default)]
pub struct ParquetOptions {
    /// The schema of a Parquet input ([`DatasetReader::arrow_schema`](crate::DatasetReader::arrow_schema)).
    /// A column named in it keeps its Arrow type, provided every row's value fits that type; otherwise, and for
    /// columns not in it, the type is inferred from the values.
    pub input_schema: Option<SchemaRef>,
    /// Paths to object values to write as `Map<Utf8, Float64>` rather than as a struct, e.g.
    /// `["assay", "distribution"]`: the top-level column, then keys of nested objects ([`LIST_ITEMS`] steps
    /// into a list's items). Useful where the keys vary from row to row, such as label names.
    pub map_columns: Vec<Vec<String>>,
}

/// Writes `rows` as a Snappy-compressed Parquet file, atomically like [`write_jsonl`](crate::write_jsonl).
///
/// Columns appear in the order their names are first seen. Each column's Arrow type comes from
/// [`ParquetOptions::input_schema`] where the values fit it, else it is inferred from all rows:
/// booleans, `Int64` (integers), `Float64` (any other numbers, or integers mixed with them), `Utf8` (strings),
/// lists, structs for objects, and maps for [`ParquetOptions::map_columns`]. A column whose values disagree
/// (a number in one row, a string or object in another) becomes `Utf8`, the odd values written as their JSON
/// text; a column that is always null becomes `Utf8`. Integers beyond `i64` are written as `Float64`.
/// With no rows, the file gets `input_schema`'s columns (or none); rows without any keys store nothing.
///
/// # Errors
/// [`Error::Io`] when the directory is missing or not writable, or writing fails; [`Error::Internal`] if
/// Arrow or Parquet reject the data (a bug: the schema is built to fit the rows).
pub fn write_parquet(
    path: &Path,
    rows: &[Map<String, Value>],
    options: &ParquetOptions,
) -> Result<()> {
    let schema = output_schema(rows, options);
    write_atomically(path, |file| -> Result<()> {
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
            .map_err(|error| parquet_error(path, error))?;
        for chunk in rows.chunks(CHUNK_ROWS) {
            let batch = encode_chunk(chunk, &schema).map_err(|error| Error::Internal {
                path: path.to_path_buf(),
                message: format!("rows do not fit the inferred Arrow schema: {error}"),
            })?;
            writer
                .write(&batch)
                .map_err(|error| parquet_error(path, error))?;
        }
        writer.close().map_err(|error| parquet_error(path, error))?;
        Ok(())
    })
}

fn parquet_error(path: &Path, error: ParquetError) -> Error {
    let internal = |message: String| Error::Internal {
        path: path.to_path_buf(),
        message,
    };
    match error {
        ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(source) => Error::io(path, "write", *source),
            Err(inner) => internal(format!("the Parquet writer failed: {inner}")),
        },
        other => internal(format!("the Parquet writer failed: {other}")),
    }
}

/// The Arrow schema `rows` are written with; see [`write_parquet`].
///
/// Kept hand-written rather than `arrow_json::reader::infer_json_schema` (issue 11 §1.12): that inference knows
/// neither the input Parquet schema a column must keep nor the paths to write as `Map<Utf8, Float64>`
/// (label distributions), and it fails on a column whose values disagree where this writes them as text.
fn output_schema(rows: &[Map<String, Value>], options: &ParquetOptions) -> SchemaRef {
    if rows.is_empty() {
        if let Some(input) = &options.input_schema {
            return input.clone();
        }
    }
    let mut names: Vec<&str> = Vec::new();
    let mut kinds: Vec<Kind> = Vec::new();
    let mut positions: HashMap<&str, usize> = HashMap::new();
    let mut path = Vec::new();
    for row in rows {
        for (name, value) in row {
            let position = *positions.entry(name.as_str()).or_insert_with(|| {
                names.push(name);
                kinds.push(Kind::Null);
                kinds.len() - 1
            });
            path.push(name.as_str());
            kinds[position].observe(value, &mut path, &options.map_columns);
            path.pop();
        }
    }
    let fields: Vec<Field> = names
        .into_iter()
        .zip(kinds)
        .map(|(name, kind)| {
            let input_type = options
                .input_schema
                .as_ref()
                .and_then(|schema| schema.field_with_name(name).ok())
                .map(|field| field.data_type());
            let data_type = match input_type {
                Some(data_type)
                    if rows.iter().all(|row| {
                        row.get(name)
                            .is_none_or(|value| fits(value, data_type, true))
                    }) =>
                {
                    data_type.clone()
                }
                _ => kind.data_type(),
            };
            Field::new(name, data_type, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// What the values seen at one place in the rows have in common.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Only nulls so far.
    Null,
    Bool,
    Int,
    Float,
    /// Strings, or values that disagree: written as text.
    Text,
    List(Box<Kind>),
    /// Objects, as a struct of the union of their keys in first-seen order.
    Object(Vec<(String, Kind)>),
    /// Objects at a [`ParquetOptions::map_columns`] path, with the kind of their values.
    Map(Box<Kind>),
}

impl Kind {
    /// Widens `self` to cover `value`, found at `path` (which this may extend and restore).
    fn observe<'a>(&mut self, value: &'a Value, path: &mut Vec<&'a str>, maps: &[Vec<String>]) {
        match value {
            Value::Null => {}
            Value::Bool(_) => self.observe_scalar(Kind::Bool),
            Value::Number(number) if number.is_i64() => self.observe_scalar(Kind::Int),
            Value::Number(_) => self.observe_scalar(Kind::Float),
            Value::String(_) => self.observe_scalar(Kind::Text),
            Value::Array(items) => {
                match self {
                    Kind::Null => *self = Kind::List(Box::new(Kind::Null)),
                    Kind::List(_) => {}
                    _ => *self = Kind::Text,
                }
                if let Kind::List(item) = self {
                    path.push(LIST_ITEMS);
                    for value in items {
                        item.observe(value, path, maps);
                    }
                    path.pop();
                }
            }
            Value::Object(object) if maps.iter().any(|map| is_path(map, path)) => {
                match self {
                    Kind::Null => *self = Kind::Map(Box::new(Kind::Null)),
                    Kind::Map(_) => {}
                    _ => *self = Kind::Text,
                }
                if let Kind::Map(values) = self {
                    for value in object.values() {
                        values.observe(value, path, maps);
                    }
                }
            }
            Value::Object(object) => {
                match self {
                    Kind::Null => *self = Kind::Object(Vec::new()),
                    Kind::Object(_) => {}
                    _ => *self = Kind::Text,
                }
                if let Kind::Object(fields) = self {
                    for (name, value) in object {
                        let position = match fields.iter().position(|(seen, _)| seen == name) {
                            Some(position) => position,
                            None => {
                                fields.push((name.clone(), Kind::Null));
                                fields.len() - 1
                            }
                        };
                        path.push(name);
                        fields[position].1.observe(value, path, maps);
                        path.pop();
                    }
                }
            }
        }
    }

    fn observe_scalar(&mut self, seen: Kind) {
        match (&*self, &seen) {
            (Kind::Null, _) | (Kind::Int, Kind::Float) => *self = seen,
            (Kind::Float, Kind::Int) => {}
            (current, seen) if current == seen => {}
            _ => *self = Kind::Text,
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Kind::Null | Kind::Text => DataType::Utf8,
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::List(item) => {
                DataType::List(Arc::new(Field::new_list_field(item.data_type(), true)))
            }
            // Parquet cannot store a struct without fields; `{}` is written as text.
            Kind::Object(fields) if fields.is_empty() => DataType::Utf8,
            Kind::Object(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|(name, kind)| Field::new(name, kind.data_type(), true))
                    .collect(),
            ),
            Kind::Map(values) => map_type(match **values {
                Kind::Null | Kind::Int | Kind::Float => DataType::Float64,
                ref other => other.data_type(),
            }),
        }
    }
}

fn is_path(map: &[String], path: &[&str]) -> bool {
    map.iter().map(String::as_str).eq(path.iter().copied())
}

/// `Map<Utf8, value_type>` with arrow-rs's usual field names.
fn map_type(value_type: DataType) -> DataType {
    let entries = Fields::from(vec![
        Field::new("keys", DataType::Utf8, false),
        Field::new("values", value_type, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

/// The value type of a map type.
fn map_value_type(entries: &Field) -> Option<&Field> {
    match entries.data_type() {
        DataType::Struct(fields) if fields.len() == 2 => Some(&fields[1]),
        _ => None,
    }
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Whether arrow-json decodes `value` as `data_type` without losing anything.
fn fits(value: &Value, data_type: &DataType, nullable: bool) -> bool {
    if value.is_null() {
        return nullable;
    }
    let integer = |fits_in: fn(i64) -> bool| value.as_i64().is_some_and(fits_in);
    let unsigned = |fits_in: fn(u64) -> bool| value.as_u64().is_some_and(fits_in);
    match data_type {
        DataType::Boolean => value.is_boolean(),
        DataType::Int8 => integer(|n| i8::try_from(n).is_ok()),
        DataType::Int16 => integer(|n| i16::try_from(n).is_ok()),
        DataType::Int32 => integer(|n| i32::try_from(n).is_ok()),
        DataType::Int64 => value.is_i64(),
        DataType::UInt8 => unsigned(|n| u8::try_from(n).is_ok()),
        DataType::UInt16 => unsigned(|n| u16::try_from(n).is_ok()),
        DataType::UInt32 => unsigned(|n| u32::try_from(n).is_ok()),
        DataType::UInt64 => value.is_u64(),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => value.is_number(),
        // Numbers and booleans are written as their text (`with_coerce_primitive`).
        text if is_text(text) => value.is_string() || value.is_number() || value.is_boolean(),
        DataType::List(item) | DataType::LargeList(item) => value.as_array().is_some_and(|items| {
            items
                .iter()
                .all(|value| fits(value, item.data_type(), item.is_nullable()))
        }),
        DataType::Struct(fields) => value.as_object().is_some_and(|object| {
            object.keys().all(|name| fields.find(name).is_some())
                && fields.iter().all(|field| {
                    fits(
                        object.get(field.name()).unwrap_or(&Value::Null),
                        field.data_type(),
                        field.is_nullable(),
                    )
                })
        }),
        DataType::Map(entries, false) => {
            let key_is_text = match entries.data_type() {
                DataType::Struct(fields) if fields.len() == 2 => is_text(fields[0].data_type()),
                _ => false,
            };
            key_is_text
                && map_value_type(entries).is_some_and(|values| {
                    value.as_object().is_some_and(|object| {
                        object
                            .values()
                            .all(|value| fits(value, values.data_type(), values.is_nullable()))
                    })
                })
        }
        DataType::Null | DataType::Map(_, true) => false,
        // Dates, timestamps, decimals, ...: whatever arrow-json itself accepts.
        other => decodes_as(value, other),
    }
}

fn decodes_as(value: &Value, data_type: &DataType) -> bool {
    let field = Field::new("value", data_type.clone(), true);
    let Ok(mut decoder) = ReaderBuilder::new_with_field(field).build_decoder() else {
        return false;
    };
    decoder.serialize(std::slice::from_ref(value)).is_ok() && decoder.flush().is_ok()
}

/// `value` made to decode as `data_type`: where the schema says text and the value is not a string, its JSON
/// text. [`output_schema`] guarantees every other value already fits.
fn conform(value: &Value, data_type: &DataType) -> Value {
    match (data_type, value) {
        (_, Value::Null) => Value::Null,
        (text, Value::String(_)) if is_text(text) => value.clone(),
        (text, other) if is_text(text) => Value::String(other.to_string()),
        (DataType::List(item) | DataType::LargeList(item), Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|value| conform(value, item.data_type()))
                .collect(),
        ),
        (DataType::Struct(fields), Value::Object(object)) => Value::Object(
            object
                .iter()
                .filter_map(|(name, value)| {
                    let (_, field) = fields.find(name)?;
                    Some((name.clone(), conform(value, field.data_type())))
                })
                .collect(),
        ),
        (DataType::Map(entries, _), Value::Object(object)) => match map_value_type(entries) {
            Some(values) => Value::Object(
                object
                    .iter()
                    .map(|(name, value)| (name.clone(), conform(value, values.data_type())))
                    .collect(),
            ),
            None => value.clone(),
        },
        _ => value.clone(),
    }
}

fn encode_chunk(
    rows: &[Map<String, Value>],
    schema: &SchemaRef,
) -> std::result::Result<RecordBatch, ArrowError> {
    let conformed: Vec<Map<String, Value>> = rows
        .iter()
        .map(|row| {
            schema
                .fields()
                .iter()
                .filter_map(|field| {
                    let value = row.get(field.name())?;
                    Some((field.name().clone(), conform(value, field.data_type())))
                })
                .collect()
        })
        .collect();
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .with_coerce_primitive(true)
        .build_decoder()?;
    decoder.serialize(&conformed)?;
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{
        Date32Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray,
    };
    use arrow_schema::TimeUnit;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use serde_json::json;

    use super::*;
    use crate::{open_dataset, write_output, Format, Row};

    fn rows(values: Value) -> Vec<Map<String, Value>> {
        let Value::Array(rows) = values else {
            panic!("not an array")
        };
        rows.into_iter()
            .map(|row| match row {
                Value::Object(row) => row,
                other => panic!("not an object: {other}"),
            })
            .collect()
    }

    fn read_back(path: &Path) -> Vec<Map<String, Value>> {
        open_dataset(path)
            .unwrap()
            .map(|item| item.unwrap_or_else(|error| panic!("{error}")).values)
            .collect()
    }

    fn file_schema(path: &Path) -> SchemaRef {
        ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .schema()
            .clone()
    }

    fn distribution_map() -> ParquetOptions {
        ParquetOptions {
            input_schema: None,
            map_columns: vec![vec!["assay".to_owned(), "distribution".to_owned()]],
        }
    }

    #[test]
    fn parquet_round_trip_with_assay_struct_and_distribution_map() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("labels.parquet");
        let written = rows(json!([
            {
                "text": "win a prize", "votes": 3, "score": 0.5, "flagged": true, "tags": ["a", "b"],
                "assay": {
                    "label": ["spam", "promo"],
                    "confidence": 0.875,
                    "distribution": {"spam": 0.75, "promo": 0.125, "ham": 0.125},
                    "provenance": {"model": "qwen", "prompt_sha256": "abc"}
                }
            },
            {
                "text": "see you at 5", "votes": -1, "score": 2.25, "flagged": false, "tags": [],
                "assay": {
                    "label": ["ham"],
                    "confidence": null,
                    "distribution": {"ham": 1.5, "other": 0.25},
                    "provenance": {"model": "qwen", "prompt_sha256": "def"}
                }
            }
        ]));
        write_parquet(&path, &written, &distribution_map()).unwrap();

        let schema = file_schema(&path);
        let field = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
        assert_eq!(field("text"), DataType::Utf8);
        assert_eq!(field("votes"), DataType::Int64);
        assert_eq!(field("score"), DataType::Float64);
        assert_eq!(field("flagged"), DataType::Boolean);
        assert!(
            matches!(field("tags"), DataType::List(item) if item.data_type() == &DataType::Utf8)
        );
        let DataType::Struct(assay) = field("assay") else {
            panic!("assay is not a struct: {}", field("assay"));
        };
        let assay_field = |name: &str| assay.find(name).unwrap().1.data_type().clone();
        assert!(
            matches!(assay_field("label"), DataType::List(item) if item.data_type() == &DataType::Utf8)
        );
        assert_eq!(assay_field("confidence"), DataType::Float64);
        let DataType::Map(entries, false) = assay_field("distribution") else {
            panic!("distribution is not a map: {}", assay_field("distribution"));
        };
        let DataType::Struct(entries) = entries.data_type() else {
            panic!()
        };
        assert_eq!(entries[0].data_type(), &DataType::Utf8);
        assert_eq!(entries[1].data_type(), &DataType::Float64);
        assert!(matches!(assay_field("provenance"), DataType::Struct(fields) if fields.len() == 2));

        let reader = open_dataset(&path).unwrap();
        assert_eq!(reader.format(), Format::Parquet);
        assert_eq!(
            reader.columns(),
            ["text", "votes", "score", "flagged", "tags", "assay"]
        );
        assert_eq!(reader.arrow_schema().unwrap(), schema);
        let read: Vec<Row> = reader.map(Result::unwrap).collect();
        assert_eq!(read.iter().map(|row| row.index).collect::<Vec<_>>(), [0, 1]);
        let read: Vec<_> = read.into_iter().map(|row| row.values).collect();
        assert_eq!(read, written);
    }

    #[test]
    fn parquet_input_column_types_survive_a_rewrite() {
        let directory = tempfile::tempdir().unwrap();
        let input = directory.path().join("input.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("small", DataType::Int32, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("changes", DataType::Int32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(Int32Array::from(vec![Some(7), None, Some(-7)])),
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(Date32Array::from(vec![Some(19_000), None, Some(0)])),
                Arc::new(TimestampMillisecondArray::from(vec![
                    1_700_000_000_123,
                    0,
                    1,
                ])),
                Arc::new(Int32Array::from(vec![1, 2, 3])),
            ],
        )
        .unwrap();
        let mut writer = ArrowWriter::try_new(File::create(&input).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();

        let reader = open_dataset(&input).unwrap();
        let options = ParquetOptions {
            input_schema: reader.arrow_schema(),
            ..distribution_map()
        };
        let mut rows: Vec<Map<String, Value>> = reader.map(|item| item.unwrap().values).collect();
        assert_eq!(rows[0]["day"], json!("2022-01-08"));
        assert_eq!(rows[1]["small"], Value::Null);
        for row in &mut rows {
            row.insert(
                "assay".to_owned(),
                json!({"label": "x", "distribution": {"x": 1}}),
            );
        }
        // A value that no longer fits its column's input type: the column falls back to text.
        rows[2]["changes"] = json!("three");

        let output = directory.path().join("output.pq");
        write_output(&output, &rows, &options).unwrap();
        let schema = file_schema(&output);
        let field = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
        assert_eq!(field("id"), DataType::Int64);
        assert_eq!(field("small"), DataType::Int32);
        assert_eq!(field("text"), DataType::Utf8);
        assert_eq!(field("day"), DataType::Date32);
        assert_eq!(
            field("at"),
            DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(field("changes"), DataType::Utf8);

        let mut batches = ParquetRecordBatchReaderBuilder::try_new(File::open(&output).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batch = batches.next().unwrap().unwrap();
        let ids = batch
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(ids.values(), &[1, 2, 3]);

        let read = read_back(&output);
        assert_eq!(read[0]["at"], json!("2023-11-14T22:13:20.123"));
        assert_eq!(read[1]["day"], Value::Null);
        let changes: Vec<&Value> = read.iter().map(|row| &row["changes"]).collect();
        assert_eq!(changes, [&json!("1"), &json!("2"), &json!("three")]);
        let mut expected = rows.clone();
        for row in &mut expected {
            row["changes"] = json!(row["changes"].to_string().trim_matches('"'));
            // The distribution map holds Float64 values.
            row["assay"] = json!({"label": "x", "distribution": {"x": 1.0}});
        }
        assert_eq!(read, expected);
    }

    #[test]
    fn values_that_disagree_become_text_instead_of_failing() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("mixed.parquet");
        let written = rows(json!([
            {"mixed": 1, "numbers": 1, "empty": {}, "nothing": null, "list": [1, "two"]},
            {"mixed": "x", "numbers": 2.5, "empty": {}, "nothing": null, "list": [3]},
            {"mixed": {"a": [1]}, "numbers": 3},
            {"mixed": [true], "later": "only here"}
        ]));
        write_parquet(&path, &written, &ParquetOptions::default()).unwrap();

        let schema = file_schema(&path);
        let field = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
        assert_eq!(field("mixed"), DataType::Utf8);
        assert_eq!(field("numbers"), DataType::Float64);
        assert_eq!(field("empty"), DataType::Utf8);
        assert_eq!(field("nothing"), DataType::Utf8);
        assert!(
            matches!(field("list"), DataType::List(item) if item.data_type() == &DataType::Utf8)
        );

        let read = read_back(&path);
        let column = |name: &str| read.iter().map(|row| row[name].clone()).collect::<Vec<_>>();
        assert_eq!(
            column("mixed"),
            [
                json!("1"),
                json!("x"),
                json!("{\"a\":[1]}"),
                json!("[true]")
            ]
        );
        assert_eq!(
            column("numbers"),
            [json!(1.0), json!(2.5), json!(3.0), Value::Null]
        );
        assert_eq!(
            column("empty"),
            [json!("{}"), json!("{}"), Value::Null, Value::Null]
        );
        assert_eq!(
            column("list"),
            [json!(["1", "two"]), json!(["3"]), Value::Null, Value::Null]
        );
        assert_eq!(
            column("later"),
            [Value::Null, Value::Null, Value::Null, json!("only here")]
        );
    }

    #[test]
    fn many_rows_are_written_in_chunks() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("many.parquet");
        let written: Vec<Map<String, Value>> = (0..20_000)
            .map(|id| rows(json!([{"id": id, "even": id % 2 == 0}])).remove(0))
            .collect();
        write_parquet(&path, &written, &ParquetOptions::default()).unwrap();
        let read = read_back(&path);
        assert_eq!(read.len(), 20_000);
        assert_eq!(read, written);
    }

    #[test]
    fn no_rows_write_the_input_schema() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("empty.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let options = ParquetOptions {
            input_schema: Some(schema.clone()),
            map_columns: Vec::new(),
        };
        write_parquet(&path, &[], &options).unwrap();
        assert_eq!(file_schema(&path).fields(), schema.fields());
        assert_eq!(read_back(&path).len(), 0);
    }

    #[test]
    fn map_column_with_text_values_stays_a_map() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("maps.parquet");
        let written = rows(json!([{"scores": {"a": 1, "b": "high"}}, {"scores": null}]));
        let options = ParquetOptions {
            input_schema: None,
            map_columns: vec![vec!["scores".to_owned()]],
        };
        write_parquet(&path, &written, &options).unwrap();
        let schema = file_schema(&path);
        assert!(matches!(schema.field(0).data_type(), DataType::Map(..)));
        let read = read_back(&path);
        assert_eq!(read[0]["scores"], json!({"a": "1", "b": "high"}));
        assert_eq!(read[1]["scores"], Value::Null);
    }
}
