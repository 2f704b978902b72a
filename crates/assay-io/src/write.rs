//! Writing datasets: JSONL, Parquet, and the atomic file replacement both use.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value};

use crate::{write_parquet, Error, Format, ParquetOptions, Result};

/// Writes `rows` to `path` in the format its extension names: JSONL or Parquet.
///
/// # Errors
/// [`Error::UnsupportedFormat`] for an unknown extension, [`Error::UnsupportedOutput`] for CSV or TSV, and
/// the errors of [`write_jsonl`] and [`write_parquet`].
pub fn write_output(
    path: &Path,
    rows: &[Map<String, Value>],
    options: &ParquetOptions,
) -> Result<()> {
    match Format::from_path(path)? {
        Format::Jsonl => write_jsonl(path, rows),
        Format::Parquet => write_parquet(path, rows, options),
        format @ (Format::Csv | Format::Tsv) => Err(Error::UnsupportedOutput {
            path: path.to_path_buf(),
            format,
        }),
    }
}

/// Writes `rows` as JSON Lines, one object per line in the maps' key order.
///
/// The file is written next to `path` under a temporary name and renamed into place, so readers never see
/// a half-written file and a failed write leaves any previous file untouched. A missing directory is created.
///
/// # Errors
/// [`Error::CreateDirectory`] when the directory is missing and cannot be created, [`Error::Io`] when it is not
/// writable or writing fails.
pub fn write_jsonl(path: &Path, rows: &[Map<String, Value>]) -> Result<()> {
    write_atomically(path, |file| {
        let mut writer = BufWriter::new(file);
        for row in rows {
            serde_json::to_writer(&mut writer, row).map_err(std::io::Error::from)?;
            writer.write_all(b"\n")?;
        }
        writer.flush()
    })
}

/// Runs `fill` on a temporary file in `path`'s directory, then syncs it and renames it to `path`.
///
/// A missing directory is created first (with its parents), so an output under a fresh `out/` works. On any
/// error the temporary file is removed and an existing file at `path` is left as it was.
pub(crate) fn write_atomically<E>(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::result::Result<(), E>,
) -> Result<()>
where
    E: Into<FillError>,
{
    let directory = output_directory(path)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".assay-").suffix(".tmp");
    #[cfg(unix)]
    {
        // Like `File::create`: the process umask decides, rather than tempfile's private 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temporary = builder
        .tempfile_in(directory)
        .map_err(|source| Error::io(path, "create a temporary file next to", source))?;
    // On error `temporary` is dropped, which deletes it.
    fill(temporary.as_file_mut()).map_err(|error| match error.into() {
        FillError::Io(source) => Error::io(path, "write", source),
        FillError::Crate(error) => error,
    })?;
    temporary
        .as_file()
        .sync_all()
        .map_err(|source| Error::io(path, "write", source))?;
    temporary
        .persist(path)
        .map_err(|error| Error::io(path, "rename the temporary file to", error.error))?;
    Ok(())
}

/// The folder `path` is written in (`.` for a bare file name), created with its parents if missing.
///
/// # Errors
/// [`Error::CreateDirectory`], naming the folder and what to do.
pub(crate) fn output_directory(path: &Path) -> Result<&Path> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !directory.is_dir() {
        std::fs::create_dir_all(directory).map_err(|source| Error::CreateDirectory {
            directory: directory.to_path_buf(),
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(directory)
}

/// What a [`write_atomically`] fill may fail with: plain I/O (reported against the path) or a finished error.
pub(crate) enum FillError {
    Io(std::io::Error),
    Crate(Error),
}

impl From<std::io::Error> for FillError {
    fn from(error: std::io::Error) -> Self {
        FillError::Io(error)
    }
}

impl From<Error> for FillError {
    fn from(error: Error) -> Self {
        FillError::Crate(error)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::open_dataset;

    fn sample_rows() -> Vec<Map<String, Value>> {
        [
            json!({"b": 1, "a": "x"}),
            json!({"text": "line\nbreak", "nested": {"k": [1, 2]}}),
        ]
        .into_iter()
        .map(|row| row.as_object().unwrap().clone())
        .collect()
    }

    #[test]
    fn jsonl_round_trip_keeps_key_order_and_replaces_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("out.jsonl");
        std::fs::write(&path, "old contents\n").unwrap();
        let rows = sample_rows();
        write_output(&path, &rows, &ParquetOptions::default()).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"b\":1,\"a\":\"x\"}\n{\"text\":\"line\\nbreak\",\"nested\":{\"k\":[1,2]}}\n"
        );
        let read: Vec<_> = open_dataset(&path)
            .unwrap()
            .map(|item| item.unwrap().values)
            .collect();
        assert_eq!(read, rows);
        // Only the output is left: the temporary file was renamed.
        let names: Vec<_> = std::fs::read_dir(directory.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.jsonl"]);
    }

    /// `make demo` on a fresh clone wrote to `out/sms-spam.labeled.jsonl` with no `out/` and failed after
    /// labeling every row ("could not create a temporary file next to").
    #[test]
    fn foundation_missing_output_folders_are_created_for_jsonl_and_parquet() {
        let directory = tempfile::tempdir().unwrap();
        for name in ["out.jsonl", "out.parquet"] {
            let path = directory.path().join("out/nested").join(name);
            write_output(&path, &sample_rows(), &ParquetOptions::default()).unwrap();
            let read: Vec<_> = open_dataset(&path)
                .unwrap()
                .map(|item| item.unwrap().values)
                .collect();
            assert_eq!(read.len(), 2, "{name}");
        }
        // Only the two outputs are there: no temporary file is left behind.
        let mut names: Vec<_> = std::fs::read_dir(directory.path().join("out/nested"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["out.jsonl", "out.parquet"]);
    }

    #[test]
    fn a_folder_that_cannot_be_created_is_named_with_the_fix() {
        let directory = tempfile::tempdir().unwrap();
        // A file where a folder should be: create_dir_all fails whoever runs the test (root included).
        let blocker = directory.path().join("blocker");
        std::fs::write(&blocker, "a file, not a folder").unwrap();
        let path = blocker.join("sub/out.jsonl");
        let error = write_jsonl(&path, &sample_rows()).unwrap_err();
        assert!(matches!(error, Error::CreateDirectory { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{}:", blocker.join("sub").display())),
            "{message}"
        );
        assert!(message.contains("out.jsonl"), "{message}");
        assert!(message.contains("create it yourself"), "{message}");
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn write_errors_name_the_path() {
        let directory = tempfile::tempdir().unwrap();

        let csv = directory.path().join("out.csv");
        let error = write_output(&csv, &sample_rows(), &ParquetOptions::default()).unwrap_err();
        assert!(
            matches!(
                error,
                Error::UnsupportedOutput {
                    format: Format::Csv,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("out.csv"), "{error}");
        assert!(!csv.exists());

        let unknown = directory.path().join("out.xlsx");
        let error = write_output(&unknown, &sample_rows(), &ParquetOptions::default()).unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedFormat { .. }),
            "{error:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn written_files_are_not_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("out.jsonl");
        write_jsonl(&path, &sample_rows()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        // 0o666 less the umask; tempfile alone would give 0o600.
        assert_ne!(mode & 0o044, 0, "mode {mode:o}");
    }
}
