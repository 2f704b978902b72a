//! Reading Parquet files as rows of JSON values.

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrowPrimitiveType, GenericListArray, MapArray, OffsetSizeTrait, PrimitiveArray,
    RecordBatch, StructArray,
};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::{Map, Number, Value};

use crate::{Error, Result, Row, RowError};

/// Rows decoded per Arrow batch; bounds the reader's memory.
const BATCH_ROWS: usize = 1_024;

type RowResult = std::result::Result<Map<String, Value>, String>;

pub(crate) struct ParquetRows {
    schema: SchemaRef,
    batches: ParquetRecordBatchReader,
    /// Rows of the current batch not yet yielded.
    pending: VecDeque<RowResult>,
    next_index: u64,
    done: bool,
}

impl ParquetRows {
    pub(crate) fn open(path: &Path) -> Result<ParquetRows> {
        let invalid = |source| Error::InvalidParquet {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(|source| Error::open(path, source))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(invalid)?;
        let schema = builder.schema().clone();
        let batches = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(invalid)?;
        Ok(ParquetRows {
            schema,
            batches,
            pending: VecDeque::new(),
            next_index: 0,
            done: false,
        })
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Iterator for ParquetRows {
    type Item = std::result::Result<Row, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                let index = self.next_index;
                self.next_index += 1;
                return Some(
                    item.map(|values| Row { index, values })
                        .map_err(|reason| RowError { index, reason }),
                );
            }
            if self.done {
                return None;
            }
            match self.batches.next() {
                None => self.done = true,
                Some(Ok(batch)) => match batch_to_rows(&batch) {
                    Ok(rows) => self.pending.extend(rows.into_iter().map(Ok)),
                    // Keep the row numbering: every row of the batch is reported.
                    Err(reason) => self
                        .pending
                        .extend(std::iter::repeat_n(Err(reason), batch.num_rows())),
                },
                Some(Err(error)) => {
                    self.done = true;
                    return Some(Err(RowError {
                        index: self.next_index,
                        reason: format!("reading stopped: could not decode Parquet data: {error}"),
                    }));
                }
            }
        }
    }
}

/// Converts a record batch to one JSON object per row. Null values are kept as explicit `null`s.
///
/// # Errors
/// A reason naming the column whose type cannot be converted.
pub(crate) fn batch_to_rows(
    batch: &RecordBatch,
) -> std::result::Result<Vec<Map<String, Value>>, String> {
    let schema = batch.schema();
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let values = array_to_values(array.as_ref()).map_err(|error| {
            format!(
                "column \"{}\" of type {} cannot be converted to JSON: {error}",
                field.name(),
                field.data_type()
            )
        })?;
        columns.push(values.into_iter());
    }
    let mut rows = Vec::with_capacity(batch.num_rows());
    for _ in 0..batch.num_rows() {
        let mut row = Map::with_capacity(columns.len());
        for (field, values) in schema.fields().iter().zip(columns.iter_mut()) {
            row.insert(field.name().clone(), values.next().unwrap_or(Value::Null));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Converts every element of `array` to a JSON value.
///
/// Numbers, booleans and strings map directly; lists become arrays; structs and maps become objects (a map's
/// non-string keys are written as their JSON text); non-finite floats become `null`; other types (decimals,
/// dates, timestamps, binary, ...) become their Arrow display string, which arrow-json parses back.
fn array_to_values(array: &dyn Array) -> std::result::Result<Vec<Value>, ArrowError> {
    let values = match array.data_type() {
        DataType::Null => vec![Value::Null; array.len()],
        DataType::Boolean => array
            .as_boolean()
            .iter()
            .map(|value| value.map_or(Value::Null, Value::Bool))
            .collect(),
        DataType::Int8 => integers(array.as_primitive::<Int8Type>()),
        DataType::Int16 => integers(array.as_primitive::<Int16Type>()),
        DataType::Int32 => integers(array.as_primitive::<Int32Type>()),
        DataType::Int64 => integers(array.as_primitive::<Int64Type>()),
        DataType::UInt8 => integers(array.as_primitive::<UInt8Type>()),
        DataType::UInt16 => integers(array.as_primitive::<UInt16Type>()),
        DataType::UInt32 => integers(array.as_primitive::<UInt32Type>()),
        DataType::UInt64 => integers(array.as_primitive::<UInt64Type>()),
        DataType::Float16 => array
            .as_primitive::<Float16Type>()
            .iter()
            .map(|value| value.map_or(Value::Null, |value| float32(value.to_f32())))
            .collect(),
        DataType::Float32 => array
            .as_primitive::<Float32Type>()
            .iter()
            .map(|value| value.map_or(Value::Null, float32))
            .collect(),
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .iter()
            .map(|value| value.map_or(Value::Null, float64))
            .collect(),
        DataType::Utf8 => strings(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => strings(array.as_string::<i64>().iter()),
        DataType::Utf8View => strings(array.as_string_view().iter()),
        DataType::List(_) => lists(array.as_list::<i32>())?,
        DataType::LargeList(_) => lists(array.as_list::<i64>())?,
        DataType::FixedSizeList(_, _) => {
            let list = array.as_fixed_size_list();
            let mut values = Vec::with_capacity(list.len());
            for position in 0..list.len() {
                values.push(if list.is_null(position) {
                    Value::Null
                } else {
                    Value::Array(array_to_values(list.value(position).as_ref())?)
                });
            }
            values
        }
        DataType::Struct(_) => structs(array.as_struct())?,
        DataType::Map(_, _) => maps(array.as_map())?,
        DataType::Dictionary(_, value_type) => {
            let plain = arrow_cast::cast(array, value_type)?;
            array_to_values(plain.as_ref())?
        }
        _ => formatted(array)?,
    };
    Ok(values)
}

fn integers<T>(array: &PrimitiveArray<T>) -> Vec<Value>
where
    T: ArrowPrimitiveType,
    T::Native: Into<Number>,
{
    array
        .iter()
        .map(|value| value.map_or(Value::Null, |value| Value::Number(value.into())))
        .collect()
}

fn float64(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// An `f32` as the `f64` with the same shortest decimal form, so 0.1f32 reads back as 0.1, not 0.100000001.
fn float32(value: f32) -> Value {
    if !value.is_finite() {
        return Value::Null;
    }
    value
        .to_string()
        .parse::<f64>()
        .map_or(Value::Null, float64)
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Vec<Value> {
    values
        .map(|value| value.map_or(Value::Null, |text| Value::String(text.to_owned())))
        .collect()
}

fn lists<O: OffsetSizeTrait>(
    list: &GenericListArray<O>,
) -> std::result::Result<Vec<Value>, ArrowError> {
    let mut items = array_to_values(list.values().as_ref())?;
    let offsets = list.value_offsets();
    Ok((0..list.len())
        .map(|position| {
            if list.is_null(position) {
                return Value::Null;
            }
            let range = offsets[position].as_usize()..offsets[position + 1].as_usize();
            Value::Array(items[range].iter_mut().map(std::mem::take).collect())
        })
        .collect())
}

fn structs(array: &StructArray) -> std::result::Result<Vec<Value>, ArrowError> {
    let mut children = Vec::with_capacity(array.num_columns());
    for (field, column) in array.fields().iter().zip(array.columns()) {
        children.push((field.name(), array_to_values(column.as_ref())?.into_iter()));
    }
    Ok((0..array.len())
        .map(|position| {
            let mut object = Map::with_capacity(children.len());
            for (name, values) in &mut children {
                object.insert((*name).clone(), values.next().unwrap_or(Value::Null));
            }
            if array.is_null(position) {
                Value::Null
            } else {
                Value::Object(object)
            }
        })
        .collect())
}

fn maps(array: &MapArray) -> std::result::Result<Vec<Value>, ArrowError> {
    let mut keys = array_to_values(array.keys().as_ref())?;
    let mut values = array_to_values(array.values().as_ref())?;
    let offsets = array.value_offsets();
    Ok((0..array.len())
        .map(|position| {
            if array.is_null(position) {
                return Value::Null;
            }
            // Offsets of a valid map array are non-negative.
            let range = offsets[position] as usize..offsets[position + 1] as usize;
            let object = range
                .map(|entry| {
                    let key = match std::mem::take(&mut keys[entry]) {
                        Value::String(key) => key,
                        other => other.to_string(),
                    };
                    (key, std::mem::take(&mut values[entry]))
                })
                .collect();
            Value::Object(object)
        })
        .collect())
}

fn formatted(array: &dyn Array) -> std::result::Result<Vec<Value>, ArrowError> {
    let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
    Ok((0..array.len())
        .map(|position| {
            if array.is_null(position) {
                Value::Null
            } else {
                Value::String(formatter.value(position).to_string())
            }
        })
        .collect())
}
