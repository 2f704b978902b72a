//! Licenses (SPDX expressions, validated with the `spdx` crate) and the checks an export must pass: denied
//! licenses, a required license, the largest synthetic share and the deepest generation. A failed check names the
//! datasets and the rows.

use assay_core::policy::{DatasetProvenance, PolicySpec};
use serde::Serialize;

use crate::{Error, Result};

/// A parsed license expression.
#[derive(Debug, Clone)]
pub struct License {
    expression: spdx::Expression,
    text: String,
}

impl License {
    /// Parse an SPDX expression (strict: `CC-BY-4.0`, `MIT OR Apache-2.0`, `LicenseRef-...`); `dataset` names
    /// whose license it is in the error.
    pub fn parse(text: &str, dataset: &str) -> Result<Self> {
        let expression = spdx::Expression::parse(text).map_err(|e| Error::License {
            dataset: dataset.to_string(),
            message: format!("`{text}` is not an SPDX license expression: {e}"),
        })?;
        Ok(Self {
            expression,
            text: text.to_string(),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The identifiers in the expression, in order (`LicenseRef-x` for references).
    pub fn ids(&self) -> Vec<String> {
        self.expression
            .requirements()
            .map(|r| item_name(&r.req.license))
            .collect()
    }

    /// The expression's license identifiers that the deny patterns forbid, if the expression cannot be met
    /// without one of them (an `OR` passes when one side is allowed).
    pub fn denied_by(&self, deny: &[String]) -> Option<Vec<String>> {
        let denied = |name: &str| deny.iter().any(|p| glob_match(p, name));
        match self
            .expression
            .evaluate_with_failures(|req| !denied(&item_name(&req.license)))
        {
            Ok(()) => None,
            Err(failures) => {
                let mut names: Vec<String> =
                    failures.iter().map(|r| item_name(&r.req.license)).collect();
                names.dedup();
                Some(names)
            }
        }
    }
}

fn item_name(item: &spdx::LicenseItem) -> String {
    match item {
        spdx::LicenseItem::Spdx { id, or_later } => {
            format!("{}{}", id.name, if *or_later { "+" } else { "" })
        }
        spdx::LicenseItem::Other { lic_ref, .. } => format!("LicenseRef-{lic_ref}"),
    }
}

/// `*` matches any run of characters; case-insensitive, as SPDX identifiers are.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((c, rest)) => t
                .split_first()
                .is_some_and(|(d, t_rest)| c.eq_ignore_ascii_case(d) && go(rest, t_rest)),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// One dataset of an export: its name and provenance, its license parsed.
#[derive(Debug, Clone)]
pub struct DatasetFacts {
    /// How messages and the card name it (the file name, or `[provenance] name`).
    pub name: String,
    /// Its license, source and attribution as found.
    pub provenance: DatasetProvenance,
    /// Its license, parsed.
    pub license: Option<License>,
}

impl DatasetFacts {
    /// Parse the license of a dataset's provenance; a malformed expression is an error naming the dataset.
    pub fn new(name: &str, provenance: DatasetProvenance) -> Result<Self> {
        let name = provenance.name.clone().unwrap_or_else(|| name.to_string());
        let license = provenance
            .license
            .as_deref()
            .map(|text| License::parse(text, &name))
            .transpose()?;
        Ok(Self {
            name,
            provenance,
            license,
        })
    }
}

/// What the policy checks of one exported row.
#[derive(Debug, Clone, Copy)]
pub struct RowFacts {
    /// Index into the export's datasets.
    pub dataset: usize,
    /// The row's position in its dataset (0-based; messages show it 1-based).
    pub row_index: u64,
    /// Its record was generated.
    pub synthetic: bool,
    /// Its generation depth (0 unless generated).
    pub depth: u32,
}

/// One rule an export broke, with the datasets and rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// The policy key (`deny`, `require-license`, `max-synthetic-share`, `max-generation-depth`).
    pub rule: String,
    /// What is wrong, with the figures.
    pub message: String,
    /// The datasets involved.
    pub datasets: Vec<String>,
    /// The offending rows (1-based), by dataset, at most [`ROWS_SHOWN`] each.
    pub rows: Vec<(String, Vec<u64>)>,
    /// How many rows offend in all.
    pub row_count: usize,
}

/// Offending rows named per dataset in a message.
pub const ROWS_SHOWN: usize = 10;

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "policy.{}: {}", self.rule, self.message)?;
        for (dataset, rows) in &self.rows {
            let shown: Vec<String> = rows.iter().map(u64::to_string).collect();
            write!(f, "; {dataset} rows {}", shown.join(", "))?;
        }
        if self.row_count > self.rows.iter().map(|(_, r)| r.len()).sum::<usize>() {
            write!(f, " ({} rows in all)", self.row_count)?;
        }
        Ok(())
    }
}

/// The rows matching `offends`, grouped by dataset name.
fn offending(
    datasets: &[DatasetFacts],
    rows: &[RowFacts],
    offends: impl Fn(&RowFacts) -> bool,
) -> (Vec<(String, Vec<u64>)>, usize) {
    let mut by: Vec<(String, Vec<u64>)> = Vec::new();
    let mut count = 0;
    for r in rows.iter().filter(|r| offends(r)) {
        count += 1;
        let name = &datasets[r.dataset].name;
        let entry = match by.iter().position(|(n, _)| n == name) {
            Some(i) => &mut by[i],
            None => {
                by.push((name.clone(), Vec::new()));
                by.last_mut().expect("just pushed")
            }
        };
        if entry.1.len() < ROWS_SHOWN {
            entry.1.push(r.row_index + 1);
        }
    }
    (by, count)
}

/// Every rule of `policy` the rows break; empty when the export may be written.
pub fn check(policy: &PolicySpec, datasets: &[DatasetFacts], rows: &[RowFacts]) -> Vec<Violation> {
    let mut out = Vec::new();
    let used = |i: usize| rows.iter().any(|r| r.dataset == i);
    for (i, d) in datasets.iter().enumerate().filter(|(i, _)| used(*i)) {
        let denied = d.license.as_ref().and_then(|l| l.denied_by(&policy.deny));
        if let (Some(ids), Some(license)) = (denied, &d.license) {
            let (by, row_count) = offending(datasets, rows, |r| r.dataset == i);
            out.push(Violation {
                rule: "deny".into(),
                message: format!(
                    "dataset {} is under {} ({} denied by {:?})",
                    d.name,
                    license.as_str(),
                    ids.join(", "),
                    policy.deny
                ),
                datasets: vec![d.name.clone()],
                rows: by,
                row_count,
            });
        }
        if policy.require_license && d.license.is_none() {
            let (by, row_count) = offending(datasets, rows, |r| r.dataset == i);
            out.push(Violation {
                rule: "require-license".into(),
                message: format!(
                    "dataset {} has no license (set `[provenance] license` in the task or a license in \
                     the sidecar file DATA{})",
                    d.name,
                    assay_core::policy::SIDECAR_SUFFIX
                ),
                datasets: vec![d.name.clone()],
                rows: by,
                row_count,
            });
        }
    }
    let synthetic = rows.iter().filter(|r| r.synthetic).count();
    if let Some(max) = policy.max_synthetic_share {
        let share = if rows.is_empty() {
            0.0
        } else {
            synthetic as f64 / rows.len() as f64
        };
        if share > max {
            let (by, row_count) = offending(datasets, rows, |r| r.synthetic);
            out.push(Violation {
                rule: "max-synthetic-share".into(),
                message: format!(
                    "{synthetic} of {} rows ({:.1}%) are synthetic, above the {:.1}% allowed; synthetic rows from",
                    rows.len(),
                    share * 100.0,
                    max * 100.0
                ),
                datasets: by.iter().map(|(n, _)| n.clone()).collect(),
                rows: by,
                row_count,
            });
        }
    }
    if let Some(max) = policy.max_generation_depth {
        let (by, row_count) = offending(datasets, rows, |r| r.depth > max);
        if row_count > 0 {
            let deepest = rows.iter().map(|r| r.depth).max().unwrap_or(0);
            out.push(Violation {
                rule: "max-generation-depth".into(),
                message: format!(
                    "{row_count} rows are deeper than generation {max} (deepest: {deepest}); from"
                ),
                datasets: by.iter().map(|(n, _)| n.clone()).collect(),
                rows: by,
                row_count,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str, license: Option<&str>) -> DatasetFacts {
        DatasetFacts::new(
            name,
            DatasetProvenance {
                license: license.map(str::to_string),
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn licenses_are_validated_and_denied_by_pattern() {
        assert!(License::parse("CC-BY-4.0", "d").is_ok());
        let err = License::parse("CC-BY-4", "hh").unwrap_err().to_string();
        assert!(err.contains("hh") && err.contains("CC-BY-4"), "{err}");
        assert!(License::parse("MIT AND", "d").is_err());
        let deny = vec!["CC-BY-NC-*".to_string()];
        let nc = License::parse("CC-BY-NC-4.0", "d").unwrap();
        assert_eq!(nc.denied_by(&deny), Some(vec!["CC-BY-NC-4.0".into()]));
        assert_eq!(License::parse("MIT", "d").unwrap().denied_by(&deny), None);
        // A choice: one allowed side is enough; a conjunction needs every side.
        let or = License::parse("CC-BY-NC-4.0 OR MIT", "d").unwrap();
        assert_eq!(or.denied_by(&deny), None);
        let and = License::parse("CC-BY-NC-SA-4.0 AND MIT", "d").unwrap();
        assert!(and.denied_by(&deny).is_some());
        assert!(glob_match("cc-by-nc-*", "CC-BY-NC-SA-4.0"));
        assert!(!glob_match("CC-BY-NC-*", "CC-BY-4.0"));
    }

    #[test]
    fn violations_name_datasets_and_rows() {
        let datasets = vec![
            facts("web.jsonl", Some("CC-BY-NC-4.0")),
            facts("ok.jsonl", Some("MIT")),
            facts("unknown.jsonl", None),
        ];
        let row = |dataset, row_index, depth| RowFacts {
            dataset,
            row_index,
            synthetic: depth > 0,
            depth,
        };
        let rows = vec![
            row(0, 0, 0),
            row(0, 4, 0),
            row(1, 0, 1),
            row(1, 1, 3),
            row(2, 7, 0),
        ];
        let policy = PolicySpec {
            deny: vec!["CC-BY-NC-*".into()],
            require_license: true,
            max_synthetic_share: Some(0.3),
            max_generation_depth: Some(2),
            ..Default::default()
        };
        let v = check(&policy, &datasets, &rows);
        let rules: Vec<&str> = v.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "deny",
                "require-license",
                "max-synthetic-share",
                "max-generation-depth"
            ]
        );
        assert_eq!(v[0].rows, vec![("web.jsonl".to_string(), vec![1, 5])]);
        assert!(v[0].to_string().contains("web.jsonl"), "{}", v[0]);
        assert_eq!(v[1].datasets, ["unknown.jsonl"]);
        assert!(
            v[2].message.contains("2 of 5 rows (40.0%)"),
            "{}",
            v[2].message
        );
        assert_eq!(v[3].rows, vec![("ok.jsonl".to_string(), vec![2])]);
        // Within the limits: nothing.
        let lax = PolicySpec {
            max_synthetic_share: Some(0.4),
            max_generation_depth: Some(3),
            ..Default::default()
        };
        assert!(check(&lax, &datasets, &rows).is_empty());
    }
}
