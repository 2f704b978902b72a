//! Dataset formats, recognised by file extension.

use std::fmt;
use std::path::Path;

use crate::{Error, Result};

/// A dataset file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line (`.jsonl`, `.ndjson`, `.json-lines`).
    Jsonl,
    /// Comma-separated values with a header row (`.csv`).
    Csv,
    /// Tab-separated values with a header row and no quoting (`.tsv`, `.tab`).
    Tsv,
    /// Apache Parquet (`.parquet`, `.pq`).
    Parquet,
}

impl Format {
    /// The extensions [`Format::from_path`] recognises, for messages.
    pub const SUPPORTED_EXTENSIONS: &'static str =
        ".jsonl, .ndjson, .json-lines, .csv, .tsv, .tab, .parquet, .pq";

    /// The format named by `path`'s extension (case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnsupportedFormat`] when the extension is missing or unknown.
    pub fn from_path(path: &Path) -> Result<Format> {
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("jsonl" | "ndjson" | "json-lines") => Ok(Format::Jsonl),
            Some("csv") => Ok(Format::Csv),
            Some("tsv" | "tab") => Ok(Format::Tsv),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    /// A short human name: "JSONL", "CSV", "TSV" or "Parquet".
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "JSONL",
            Format::Csv => "CSV",
            Format::Tsv => "TSV",
            Format::Parquet => "Parquet",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_extensions_case_insensitively() {
        let cases = [
            ("a.jsonl", Format::Jsonl),
            ("a.NDJSON", Format::Jsonl),
            ("dir.v2/a.json-lines", Format::Jsonl),
            ("a.csv", Format::Csv),
            ("a.tsv", Format::Tsv),
            ("a.Tab", Format::Tsv),
            ("a.parquet", Format::Parquet),
            ("a.pq", Format::Parquet),
        ];
        for (path, expected) in cases {
            assert_eq!(
                Format::from_path(Path::new(path)).unwrap(),
                expected,
                "{path}"
            );
        }
    }

    #[test]
    fn unknown_extension_names_path_and_supported_ones() {
        for path in ["data.json", "data", "data.csv.gz"] {
            let error = Format::from_path(Path::new(path)).unwrap_err();
            assert!(matches!(error, Error::UnsupportedFormat { .. }), "{path}");
            let message = error.to_string();
            assert!(message.starts_with(path), "{message}");
            assert!(
                message.contains(".jsonl") && message.contains(".parquet"),
                "{message}"
            );
        }
    }
}
