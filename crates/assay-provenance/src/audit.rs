//! What a dataset audit found, as `assay audit dups` and `assay audit overlap` record it in the store (filed under
//! the SHA-256 of the audited file's bytes) and as the dataset card says it. The types are the JSON of the store's
//! `audit_runs.parameters` and `audit_runs.counts`.

use serde::{Deserialize, Serialize};

/// `audit_runs.kind` of a duplicate audit.
pub const DUPS: &str = "dups";
/// `audit_runs.kind` of a contamination audit.
pub const OVERLAP: &str = "overlap";

/// A file an audit read besides its input, by path and content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// The path it was read from.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// What `assay audit dups` was run with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DupsParameters {
    /// The text column.
    pub text_column: String,
    /// The Jaccard similarity at or above which two rows are near-duplicates.
    pub threshold: f64,
    /// Shingle size in words.
    pub ngram: usize,
    /// MinHash signature length.
    pub num_perm: usize,
    /// LSH bands.
    pub bands: usize,
    /// Signature values per band.
    pub rows_per_band: usize,
    /// Seed of the signature hash.
    pub seed: u64,
    /// `--against` files: only input rows duplicating one of their rows were reported.
    pub against: Vec<FileRef>,
}

/// What `assay audit dups` found, as its table printed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DupsCounts {
    /// Input rows audited.
    pub rows: usize,
    /// Rows that are exact duplicates (after normalization) of another.
    pub exact_duplicates: usize,
    /// Verified near-duplicate pairs.
    pub near_duplicate_pairs: usize,
    /// Clusters of duplicates.
    pub clusters: usize,
    /// Input rows the keep rule drops (with `against`: the input rows duplicating a reference row).
    pub rows_dropped: usize,
}

/// What `assay audit overlap` was run with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlapParameters {
    /// The input's text column.
    pub text_column: String,
    /// N-gram length in words.
    pub ngram: usize,
    /// The share of a reference item's n-grams a row must hold to hit it (0: any).
    pub min_share: f64,
    /// N-grams in more input rows than this were ignored.
    pub common_rows: usize,
    /// The reference sets.
    pub references: Vec<FileRef>,
}

/// What one reference set shares with the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceCounts {
    /// The reference set.
    pub reference: FileRef,
    /// Its items.
    pub items: usize,
    /// Items some input row hits.
    pub items_hit: usize,
    /// Input rows hitting one of its items.
    pub rows_hitting: usize,
}

/// What `assay audit overlap` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlapCounts {
    /// Input rows checked.
    pub rows: usize,
    /// Input rows hitting any reference set.
    pub contaminated_rows: usize,
    /// Per reference set, in the order given.
    pub references: Vec<ReferenceCounts>,
}

/// What the store holds about one audit of one dataset, for the card.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditStatus<P, C> {
    /// Never audited (no run of this kind on this file, in this store).
    NotRun,
    /// Audited, but the file's bytes were different then: this version was not audited.
    OtherVersion {
        /// The path audited.
        path: String,
        /// When.
        ran_at: String,
        /// The SHA-256 of the bytes audited then.
        sha256: String,
    },
    /// Audited in exactly this version.
    Found {
        /// When (RFC 3339).
        ran_at: String,
        /// What it was run with.
        parameters: P,
        /// What it found.
        counts: C,
    },
}

/// The duplicate audit of a dataset.
pub type DupsStatus = AuditStatus<DupsParameters, DupsCounts>;
/// The contamination audit of a dataset.
pub type OverlapStatus = AuditStatus<OverlapParameters, OverlapCounts>;

/// The audits of one of an export's datasets.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetAudits {
    /// The dataset's name as the card shows it.
    pub dataset: String,
    /// The SHA-256 of the dataset's bytes (as labeled).
    pub sha256: String,
    /// `assay audit dups`.
    pub dups: DupsStatus,
    /// `assay audit overlap`.
    pub overlap: OverlapStatus,
}

/// `2026-12-02T05:58:12.123456Z` as `2026-12-02 05:58 UTC`.
pub fn when(ran_at: &str) -> String {
    match (ran_at.get(..10), ran_at.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => ran_at.to_string(),
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        "0.0%".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

fn other_version(command: &str, path: &str, ran_at: &str, audited: &str, now: &str) -> String {
    format!(
        "not run on this version of the file (the last `{command}` of `{path}`, on {}, read other bytes: sha256 \
         `{}…`, this version `{}…`)",
        when(ran_at),
        short(audited),
        short(now)
    )
}

/// The card's sentence on a dataset's duplicate audit.
pub fn dups_text(status: &DupsStatus, sha256: &str) -> String {
    match status {
        AuditStatus::NotRun => "not run (`assay audit dups`)".into(),
        AuditStatus::OtherVersion {
            path,
            ran_at,
            sha256: audited,
        } => other_version("assay audit dups", path, ran_at, audited, sha256),
        AuditStatus::Found {
            ran_at,
            parameters: p,
            counts: c,
        } => {
            let settings = format!(
                "`assay audit dups` on {}: {}-word shingles, J ≥ {}, {} MinHash values, LSH {} bands × {} rows, \
                 seed {}, column `{}`",
                when(ran_at),
                p.ngram,
                p.threshold,
                p.num_perm,
                p.bands,
                p.rows_per_band,
                p.seed,
                p.text_column
            );
            if p.against.is_empty() {
                format!(
                    "{} of {} rows are exact duplicates and {} pairs near-duplicates, in {} clusters; the keep rule \
                     drops {} rows ({}) ({settings}).",
                    c.exact_duplicates,
                    c.rows,
                    c.near_duplicate_pairs,
                    c.clusters,
                    c.rows_dropped,
                    pct(c.rows_dropped, c.rows)
                )
            } else {
                let against: Vec<String> = p
                    .against
                    .iter()
                    .map(|f| format!("`{}` (sha256 `{}…`)", f.path, short(&f.sha256)))
                    .collect();
                format!(
                    "{} of {} rows ({}) duplicate a row of {} ({} exact, {} near-duplicate pairs) ({settings}).",
                    c.rows_dropped,
                    c.rows,
                    pct(c.rows_dropped, c.rows),
                    against.join(", "),
                    c.exact_duplicates,
                    c.near_duplicate_pairs
                )
            }
        }
    }
}

/// The card's sentence on a dataset's contamination audit.
pub fn overlap_text(status: &OverlapStatus, sha256: &str) -> String {
    match status {
        AuditStatus::NotRun => "not run (`assay audit overlap`)".into(),
        AuditStatus::OtherVersion {
            path,
            ran_at,
            sha256: audited,
        } => other_version("assay audit overlap", path, ran_at, audited, sha256),
        AuditStatus::Found {
            ran_at,
            parameters: p,
            counts: c,
        } => {
            let per: Vec<String> = c
                .references
                .iter()
                .map(|r| {
                    format!(
                        "`{}` (sha256 `{}…`): {} rows ({}), {} of {} items hit ({})",
                        r.reference.path,
                        short(&r.reference.sha256),
                        r.rows_hitting,
                        pct(r.rows_hitting, c.rows),
                        r.items_hit,
                        r.items,
                        pct(r.items_hit, r.items)
                    )
                })
                .collect();
            format!(
                "{} of {} rows ({}) share {}-grams with a reference set; {} (`assay audit overlap` on {}: a hit \
                 needs {} of an item's n-grams, n-grams in more than {} rows ignored, column `{}`).",
                c.contaminated_rows,
                c.rows,
                pct(c.contaminated_rows, c.rows),
                p.ngram,
                per.join("; "),
                when(ran_at),
                if p.min_share > 0.0 {
                    format!("{:.0}%", 100.0 * p.min_share)
                } else {
                    "any".to_string()
                },
                p.common_rows,
                p.text_column
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found_dups(against: Vec<FileRef>) -> DupsStatus {
        AuditStatus::Found {
            ran_at: "2026-12-02T05:58:12.123456Z".into(),
            parameters: DupsParameters {
                text_column: "text".into(),
                threshold: 0.8,
                ngram: 5,
                num_perm: 128,
                bands: 21,
                rows_per_band: 6,
                seed: 7,
                against,
            },
            counts: DupsCounts {
                rows: 200,
                exact_duplicates: 3,
                near_duplicate_pairs: 4,
                clusters: 5,
                rows_dropped: 7,
            },
        }
    }

    #[test]
    fn the_card_says_what_each_audit_found_or_why_not() {
        let sha = "ab".repeat(32);
        assert_eq!(
            dups_text(&AuditStatus::NotRun, &sha),
            "not run (`assay audit dups`)"
        );
        let text = dups_text(&found_dups(Vec::new()), &sha);
        assert!(
            text.starts_with(
                "3 of 200 rows are exact duplicates and 4 pairs near-duplicates, in 5 clusters; the keep rule \
                 drops 7 rows (3.5%)"
            ),
            "{text}"
        );
        assert!(text.contains("on 2026-12-02 05:58 UTC"), "{text}");
        assert!(text.contains("LSH 21 bands × 6 rows"), "{text}");
        let text = dups_text(
            &found_dups(vec![FileRef {
                path: "old.jsonl".into(),
                sha256: "cd".repeat(32),
            }]),
            &sha,
        );
        assert!(
            text.starts_with(
                "7 of 200 rows (3.5%) duplicate a row of `old.jsonl` (sha256 `cdcdcdcdcdcd…`)"
            ),
            "{text}"
        );
        let other = OverlapStatus::OtherVersion {
            path: "/d/x.jsonl".into(),
            ran_at: "2026-12-01T10:00:00Z".into(),
            sha256: "ef".repeat(32),
        };
        let text = overlap_text(&other, &sha);
        assert!(
            text.starts_with("not run on this version of the file"),
            "{text}"
        );
        assert!(
            text.contains("`/d/x.jsonl`, on 2026-12-01 10:00 UTC"),
            "{text}"
        );
        let found = OverlapStatus::Found {
            ran_at: "2026-12-02T06:00:00Z".into(),
            parameters: OverlapParameters {
                text_column: "text".into(),
                ngram: 13,
                min_share: 0.0,
                common_rows: 10,
                references: Vec::new(),
            },
            counts: OverlapCounts {
                rows: 600,
                contaminated_rows: 3,
                references: vec![ReferenceCounts {
                    reference: FileRef {
                        path: "bench.jsonl".into(),
                        sha256: "01".repeat(32),
                    },
                    items: 50,
                    items_hit: 2,
                    rows_hitting: 3,
                }],
            },
        };
        let text = overlap_text(&found, &sha);
        assert!(
            text.starts_with(
                "3 of 600 rows (0.5%) share 13-grams with a reference set; `bench.jsonl` (sha256 \
                 `010101010101…`): 3 rows (0.5%), 2 of 50 items hit (4.0%)"
            ),
            "{text}"
        );
    }

    #[test]
    fn summaries_round_trip_as_the_store_keeps_them() {
        let AuditStatus::Found { counts, .. } = found_dups(Vec::new()) else {
            unreachable!()
        };
        let json = serde_json::to_value(&counts).unwrap();
        assert_eq!(json["rows_dropped"], 7);
        assert_eq!(serde_json::from_value::<DupsCounts>(json).unwrap(), counts);
    }
}
