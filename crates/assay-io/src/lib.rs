//! Dataset readers and writers for assay: JSONL, CSV, TSV and Parquet in; JSONL and Parquet out.
//!
//! Readers stream: [`open_dataset`] picks the format from the file extension and yields one
//! [`Row`] (a JSON object) per data row, or a [`RowError`] for a row that cannot be read, and goes on. Only
//! whole-file problems (a missing file, a CSV without a header, a file that is not Parquet) are an
//! [`Error`]. A JSONL line or CSV record longer than [`MAX_ROW_BYTES`] (16 MiB; [`open_dataset_with`] takes
//! another limit) is a `RowError` too, so a reader's memory stays bounded whatever the file holds. CSV and TSV
//! values are kept as the exact text of the field; Parquet values become JSON numbers, strings, arrays and
//! objects.
//!
//! Writers take rows as JSON objects and replace the output file atomically. [`write_parquet`] infers an
//! Arrow schema from the rows, keeping the types of a Parquet input's columns ([`ParquetOptions`]).
//!
//! ```
//! use assay_io::{open_dataset, write_output, ParquetOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let directory = tempfile::tempdir()?;
//! # let input = directory.path().join("reviews.jsonl");
//! # std::fs::write(&input, "{\"text\": \"great\"}\nnot json\n{\"text\": \"awful\"}\n")?;
//! let mut reader = open_dataset(&input)?;
//! let options = ParquetOptions { input_schema: reader.arrow_schema(), ..ParquetOptions::default() };
//! let mut rows = Vec::new();
//! for row in &mut reader {
//!     match row {
//!         Ok(row) => rows.push(row.values),
//!         Err(bad) => eprintln!("skipping {bad}"), // "skipping row 2: not valid JSON: ..."
//!     }
//! }
//! assert_eq!(rows.len(), 2);
//! write_output(&directory.path().join("reviews.parquet"), &rows, &options)?;
//! # Ok(())
//! # }
//! ```

mod error;
mod format;
mod parquet_read;
mod parquet_write;
mod read;
mod stream_write;
mod write;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

pub use error::{Error, Result};
pub use format::Format;
pub use parquet_write::{write_parquet, ParquetOptions, LIST_ITEMS};
pub use read::{
    open_dataset, open_dataset_with, DatasetReader, ReadOptions, Row, RowError, MAX_ROW_BYTES,
};
pub use stream_write::OutputWriter;
pub use write::{write_jsonl, write_output};

/// The SHA-256 of the file at `path` as lowercase hex, read in a streaming fashion.
///
/// # Errors
/// [`Error::NotFound`] or [`Error::Io`].
pub fn file_sha256(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|source| Error::open(path, source))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(Error::io(path, "read", source)),
        };
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_published_test_vectors() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("abc.txt");
        // FIPS 180-2 appendix B.1.
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(
            file_sha256(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // FIPS 180-2 appendix B.3: one million "a", longer than the read buffer.
        std::fs::write(&path, "a".repeat(1_000_000)).unwrap();
        assert_eq!(
            file_sha256(&path).unwrap(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        let error = file_sha256(&directory.path().join("missing")).unwrap_err();
        assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    }
}
