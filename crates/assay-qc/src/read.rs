//! Reading the input files row by row: a bad row is kept as a [`BadRow`] with its number and reason, and reading
//! goes on.

use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

/// Which input file a row or an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFile {
    /// The answers given to `assay qc --annotations`.
    Annotations,
    /// The gold labels given to `assay qc --gold`.
    Gold,
    /// A task's labeled output (the rows `assay label` wrote).
    Labeled,
}

impl InputFile {
    /// The file's name in messages: "the {name} file".
    pub fn name(self) -> &'static str {
        match self {
            InputFile::Annotations => "annotations",
            InputFile::Gold => "gold",
            InputFile::Labeled => "labeled",
        }
    }
}

impl std::fmt::Display for InputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A row the reader or QC rejected: which file, its 1-based data row number, why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    /// The file it is in.
    pub file: InputFile,
    /// 1-based data row number.
    pub row: u64,
    /// Why it was left out.
    pub reason: String,
}

/// Text of a cell: strings trimmed, numbers and booleans as written; empty and null are `None`.
pub(crate) fn cell_text(value: Option<&Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(format!("expected text or a number, found {other}")),
    }
}

/// Opens `path` and checks that it has the `required` columns; returns the reader and the file's columns.
pub(crate) fn open_with_columns(
    path: &Path,
    file: InputFile,
    required: &[&str],
) -> Result<(assay_io::DatasetReader, Vec<String>)> {
    let reader = assay_io::open_dataset(path).map_err(|source| Error::Read {
        file,
        path: path.to_path_buf(),
        source,
    })?;
    let columns = reader.columns().to_vec();
    let missing: Vec<String> = required
        .iter()
        .filter(|c| !columns.iter().any(|h| h == *c))
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingColumns {
            file,
            path: path.to_path_buf(),
            missing,
            columns,
        });
    }
    Ok((reader, columns))
}

/// A good row: its 1-based number and one cell per requested column.
pub(crate) type NumberedCells = (u64, Vec<Option<String>>);

/// Reads `path`, requiring `required` columns and keeping `optional` ones when present. Each good row comes back
/// as its 1-based row number and one cell per requested column (required first), beside whether each optional
/// column is present.
pub(crate) fn read_rows(
    path: &Path,
    file: InputFile,
    required: &[&str],
    optional: &[&str],
    bad_rows: &mut Vec<BadRow>,
) -> Result<(Vec<NumberedCells>, Vec<bool>)> {
    let (reader, columns) = open_with_columns(path, file, required)?;
    let present: Vec<bool> = optional
        .iter()
        .map(|c| columns.iter().any(|h| h == c))
        .collect();
    let mut rows = Vec::new();
    for row in reader {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                bad_rows.push(BadRow {
                    file,
                    row: e.index + 1,
                    reason: e.reason,
                });
                continue;
            }
        };
        let row_number = row.index + 1;
        match cells(&row.values, required, optional) {
            Ok(cells) => rows.push((row_number, cells)),
            Err(reason) => bad_rows.push(BadRow {
                file,
                row: row_number,
                reason,
            }),
        }
    }
    Ok((rows, present))
}

/// One cell per requested column of a row, or why the row cannot be used.
fn cells(
    values: &serde_json::Map<String, Value>,
    required: &[&str],
    optional: &[&str],
) -> Result<Vec<Option<String>>, String> {
    let mut cells = Vec::with_capacity(required.len() + optional.len());
    for &name in required.iter().chain(optional) {
        match cell_text(values.get(name)) {
            Ok(Some(text)) => cells.push(Some(text)),
            Ok(None) if optional.contains(&name) => cells.push(None),
            Ok(None) => return Err(format!("no `{name}`")),
            Err(reason) => return Err(format!("`{name}`: {reason}")),
        }
    }
    Ok(cells)
}
