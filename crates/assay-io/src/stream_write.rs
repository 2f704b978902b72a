//! Writing an output one row at a time, so a caller's memory is bounded by what it has in hand, not by the
//! whole output.
//!
//! JSONL rows go straight to a temporary file next to the output; Parquet rows are spooled to a temporary JSONL
//! file and encoded at [`OutputWriter::finish`] (its schema is inferred from every row, see
//! [`write_parquet`](crate::write_parquet)). Either way the output appears only when `finish` succeeds, by an
//! atomic rename; dropping the writer unfinished leaves any previous output untouched.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::{write_parquet, Error, Format, ParquetOptions, Result};

/// A streaming writer of JSON rows to JSONL or Parquet.
pub struct OutputWriter {
    path: PathBuf,
    format: Format,
    options: ParquetOptions,
    temporary: BufWriter<tempfile::NamedTempFile>,
    rows: u64,
}

impl OutputWriter {
    /// Start writing to `path` (JSONL or Parquet, by extension); a missing parent folder is created.
    ///
    /// # Errors
    /// [`Error::UnsupportedFormat`], [`Error::UnsupportedOutput`] for CSV or TSV, [`Error::Io`] when the folder
    /// cannot be created or written.
    pub fn create(path: &Path, options: ParquetOptions) -> Result<Self> {
        let format = Format::from_path(path)?;
        if matches!(format, Format::Csv | Format::Tsv) {
            return Err(Error::UnsupportedOutput {
                path: path.to_path_buf(),
                format,
            });
        }
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(directory)
            .map_err(|source| Error::io(directory, "create the output folder", source))?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".assay-").suffix(".tmp");
        #[cfg(unix)]
        {
            // Like `File::create`: the process umask decides, rather than tempfile's private 0600.
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temporary = builder
            .tempfile_in(directory)
            .map_err(|source| Error::io(path, "create a temporary file next to", source))?;
        Ok(Self {
            path: path.to_path_buf(),
            format,
            options,
            temporary: BufWriter::new(temporary),
            rows: 0,
        })
    }

    /// Append one row.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails (a full disk, say).
    pub fn write_row(&mut self, row: &Map<String, Value>) -> Result<()> {
        let io = |source| Error::io(&self.path, "write", source);
        serde_json::to_writer(&mut self.temporary, row)
            .map_err(std::io::Error::from)
            .map_err(io)?;
        self.temporary.write_all(b"\n").map_err(io)?;
        self.rows += 1;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Finish the file and move it into place.
    ///
    /// # Errors
    /// [`Error::Io`] when syncing, encoding or renaming fails; the previous output, if any, is left as it was.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let temporary = self
            .temporary
            .into_inner()
            .map_err(|e| Error::io(&path, "write", e.into_error()))?;
        match self.format {
            Format::Parquet => {
                let rows = read_spool(temporary.as_file(), &path)?;
                write_parquet(&path, &rows, &self.options)
            }
            _ => {
                temporary
                    .as_file()
                    .sync_all()
                    .map_err(|source| Error::io(&path, "write", source))?;
                temporary
                    .persist(&path)
                    .map_err(|e| Error::io(&path, "rename the temporary file to", e.error))?;
                Ok(())
            }
        }
    }
}

/// The rows spooled for a Parquet output.
fn read_spool(file: &File, path: &Path) -> Result<Vec<Map<String, Value>>> {
    let mut file = file;
    file.rewind()
        .map_err(|source| Error::io(path, "write", source))?;
    let mut rows = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|source| Error::io(path, "write", source))?;
        let row = serde_json::from_str(&line).map_err(|e| Error::Internal {
            path: path.to_path_buf(),
            message: format!("the spooled output is unreadable: {e}"),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::open_dataset;

    #[test]
    fn rows_stream_into_a_new_folder_and_appear_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["out.jsonl", "out.parquet"] {
            let path = dir.path().join("missing").join(name);
            let mut writer = OutputWriter::create(&path, ParquetOptions::default()).unwrap();
            for i in 0..3 {
                writer
                    .write_row(json!({"i": i, "text": "x"}).as_object().unwrap())
                    .unwrap();
            }
            assert!(!path.exists(), "{name}: visible before finish");
            writer.finish().unwrap();
            let read: Vec<_> = open_dataset(&path)
                .unwrap()
                .map(|r| r.unwrap().values)
                .collect();
            assert_eq!(read.len(), 3, "{name}");
            assert_eq!(read[2]["i"], 2, "{name}");
        }
    }

    #[test]
    fn dropping_an_unfinished_writer_keeps_the_previous_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"old\": 1}\n").unwrap();
        let mut writer = OutputWriter::create(&path, ParquetOptions::default()).unwrap();
        writer
            .write_row(json!({"new": 1}).as_object().unwrap())
            .unwrap();
        drop(writer);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"old\": 1}\n");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "the temporary file is removed");
    }
}
