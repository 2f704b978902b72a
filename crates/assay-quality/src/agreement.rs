//! Inter-annotator agreement: Cohen's kappa (plain and weighted), Fleiss' kappa, Krippendorff's alpha at the
//! nominal, ordinal, interval and ratio levels with missing values, and percent agreement.
//!
//! The input is reliability data: a [`RatingMatrix`] of `units x coders` cells, each holding a category code or
//! nothing. Codes index a category table; a category's *value* (used by the interval and ratio levels, and whose
//! order the ordinal level and weighted kappa use) defaults to its code and can be set with
//! [`RatingMatrix::with_values`], or comes from the data with [`RatingMatrix::from_unit_values`].
//!
//! Krippendorff's alpha follows Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": the coincidence
//! matrix is built in one pass over the units, and
//! `alpha = 1 - (n - 1) * sum(o_ck * d_ck) / sum(n_c * n_k * d_ck)`.
//!
//! ```
//! use assay_quality::agreement::{krippendorff_alpha, Level, RatingMatrix};
//!
//! // Krippendorff (2011), section C: 4 coders x 12 units, `None` where a coder gave no value.
//! let coders: Vec<Vec<Option<f64>>> = [
//!     "1 2 3 3 2 1 4 1 2 . . .",
//!     "1 2 3 3 2 2 4 1 2 5 . 3",
//!     ". 3 3 3 2 3 4 2 2 5 1 .",
//!     "1 2 3 3 2 4 4 1 2 5 1 .",
//! ]
//! .iter()
//! .map(|row| row.split(' ').map(|v| v.parse().ok()).collect())
//! .collect();
//! let data = RatingMatrix::from_coder_values(&coders)?;
//! let alpha = krippendorff_alpha(&data, Level::Nominal)?;
//! assert!((alpha - 0.743).abs() < 5e-4);
//! # Ok::<(), assay_quality::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Marks an empty cell in [`RatingMatrix::codes`].
const MISSING: u32 = u32::MAX;

/// Reliability data: `units x coders` cells, each a category code in `0..categories` or missing.
///
/// Stored row-major by unit (all coders of unit 0, then unit 1, ...), one `u32` per cell. Each category has a
/// numeric value (its code unless set otherwise), used by the interval and ratio levels; the ordinal level and
/// weighted kappa order the categories by that value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingMatrix {
    units: usize,
    coders: usize,
    categories: usize,
    codes: Vec<u32>,
    values: Vec<f64>,
}

impl RatingMatrix {
    /// An all-missing matrix; fill it with [`RatingMatrix::set`].
    ///
    /// Fails when `categories` does not fit a `u32` code.
    pub fn new(units: usize, coders: usize, categories: usize) -> Result<Self> {
        if categories >= MISSING as usize {
            return Err(Error::InvalidInput(format!(
                "{categories} categories is too many"
            )));
        }
        let cells = units.checked_mul(coders).ok_or_else(|| {
            Error::InvalidInput(format!("{units} units x {coders} coders overflows"))
        })?;
        Ok(Self {
            units,
            coders,
            categories,
            codes: vec![MISSING; cells],
            values: (0..categories).map(|c| c as f64).collect(),
        })
    }

    /// One row per unit, one column per coder (the layout most label exports have).
    pub fn from_unit_rows<R: AsRef<[Option<usize>]>>(
        rows: &[R],
        categories: usize,
    ) -> Result<Self> {
        let coders = rows.first().map_or(0, |r| r.as_ref().len());
        let mut m = Self::new(rows.len(), coders, categories)?;
        for (unit, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != coders {
                return Err(Error::InvalidInput(format!(
                    "unit {unit} has {} coders, unit 0 has {coders}",
                    row.len()
                )));
            }
            for (coder, &code) in row.iter().enumerate() {
                m.set(unit, coder, code)?;
            }
        }
        Ok(m)
    }

    /// One row per coder, one column per unit (the layout of Krippendorff's papers and the Python `krippendorff`
    /// package's `reliability_data`).
    pub fn from_coder_rows<R: AsRef<[Option<usize>]>>(
        rows: &[R],
        categories: usize,
    ) -> Result<Self> {
        let units = rows.first().map_or(0, |r| r.as_ref().len());
        let mut m = Self::new(units, rows.len(), categories)?;
        for (coder, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != units {
                return Err(Error::InvalidInput(format!(
                    "coder {coder} has {} units, coder 0 has {units}",
                    row.len()
                )));
            }
            for (unit, &code) in row.iter().enumerate() {
                m.set(unit, coder, code)?;
            }
        }
        Ok(m)
    }

    /// One row per unit of numeric values; the categories are the distinct values, in increasing order, so a
    /// value's code is its rank. Use this for interval and ratio data.
    pub fn from_unit_values<R: AsRef<[Option<f64>]>>(rows: &[R]) -> Result<Self> {
        let coders = rows.first().map_or(0, |r| r.as_ref().len());
        for (unit, row) in rows.iter().enumerate() {
            if row.as_ref().len() != coders {
                return Err(Error::InvalidInput(format!(
                    "unit {unit} has {} coders, unit 0 has {coders}",
                    row.as_ref().len()
                )));
            }
        }
        let values = distinct_values(rows.iter().flat_map(|r| r.as_ref().iter().copied()))?;
        let mut m = Self::new(rows.len(), coders, values.len())?;
        for (unit, row) in rows.iter().enumerate() {
            for (coder, v) in row.as_ref().iter().enumerate() {
                m.set(unit, coder, v.map(|v| code_of(&values, v)))?;
            }
        }
        m.values = values;
        Ok(m)
    }

    /// One row per coder of numeric values (Krippendorff's layout); see [`RatingMatrix::from_unit_values`].
    pub fn from_coder_values<R: AsRef<[Option<f64>]>>(rows: &[R]) -> Result<Self> {
        let units = rows.first().map_or(0, |r| r.as_ref().len());
        let transposed: Vec<Vec<Option<f64>>> = (0..units)
            .map(|u| {
                rows.iter()
                    .map(|r| r.as_ref().get(u).copied().flatten())
                    .collect()
            })
            .collect();
        for (coder, row) in rows.iter().enumerate() {
            if row.as_ref().len() != units {
                return Err(Error::InvalidInput(format!(
                    "coder {coder} has {} units, coder 0 has {units}",
                    row.as_ref().len()
                )));
            }
        }
        let mut m = Self::from_unit_values(&transposed)?;
        if units == 0 {
            m.coders = rows.len();
        }
        Ok(m)
    }

    /// Sets the numeric value of each category (one per category, finite and distinct).
    pub fn with_values(mut self, values: Vec<f64>) -> Result<Self> {
        if values.len() != self.categories {
            return Err(Error::InvalidInput(format!(
                "{} values for {} categories",
                values.len(),
                self.categories
            )));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "category value {v} is not finite"
            )));
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::InvalidInput("two categories share one value".into()));
        }
        self.values = values;
        Ok(self)
    }

    /// Sets one cell; `None` clears it.
    pub fn set(&mut self, unit: usize, coder: usize, code: Option<usize>) -> Result<()> {
        if unit >= self.units || coder >= self.coders {
            return Err(Error::InvalidInput(format!(
                "cell (unit {unit}, coder {coder}) is outside {} units x {} coders",
                self.units, self.coders
            )));
        }
        let stored = match code {
            None => MISSING,
            Some(c) if c < self.categories => c as u32,
            Some(c) => {
                return Err(Error::InvalidInput(format!(
                    "code {c} at (unit {unit}, coder {coder}) is not below {} categories",
                    self.categories
                )))
            }
        };
        self.codes[unit * self.coders + coder] = stored;
        Ok(())
    }

    /// The code in one cell, `None` when missing or outside the matrix.
    pub fn get(&self, unit: usize, coder: usize) -> Option<usize> {
        if unit >= self.units || coder >= self.coders {
            return None;
        }
        match self.codes[unit * self.coders + coder] {
            MISSING => None,
            c => Some(c as usize),
        }
    }

    /// Number of units (rows).
    pub fn units(&self) -> usize {
        self.units
    }

    /// Number of coders (columns).
    pub fn coders(&self) -> usize {
        self.coders
    }

    /// Number of categories; codes are `0..categories`.
    pub fn categories(&self) -> usize {
        self.categories
    }

    /// The numeric value of each category.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The codes of one unit, one per coder.
    pub fn unit(&self, unit: usize) -> impl Iterator<Item = Option<usize>> + '_ {
        self.codes[unit * self.coders..(unit + 1) * self.coders]
            .iter()
            .map(|&c| (c != MISSING).then_some(c as usize))
    }

    /// Krippendorff's coincidence matrix, built in one pass over the units.
    ///
    /// A unit with `m >= 2` values adds, for each ordered pair of values from different coders, `1 / (m - 1)` to
    /// the pair's cell; units with fewer than two values are not pairable and add nothing.
    pub fn coincidences(&self) -> Coincidences {
        let k = self.categories;
        let mut o = vec![0.0; k * k];
        let mut count = vec![0u32; k];
        let mut present: Vec<usize> = Vec::with_capacity(self.coders.min(k));
        for row in self.codes.chunks_exact(self.coders.max(1)) {
            let mut m = 0u32;
            for &c in row {
                if c != MISSING {
                    let c = c as usize;
                    if count[c] == 0 {
                        present.push(c);
                    }
                    count[c] += 1;
                    m += 1;
                }
            }
            if m >= 2 {
                let w = 1.0 / f64::from(m - 1);
                for &c in &present {
                    let nc = f64::from(count[c]);
                    let base = c * k;
                    for &d in &present {
                        let pairs = if c == d {
                            nc * (nc - 1.0)
                        } else {
                            nc * f64::from(count[d])
                        };
                        o[base + d] += pairs * w;
                    }
                }
            }
            for &c in &present {
                count[c] = 0;
            }
            present.clear();
        }
        let marginals: Vec<f64> = o.chunks_exact(k.max(1)).map(|r| r.iter().sum()).collect();
        let total = marginals.iter().sum();
        Coincidences {
            categories: k,
            matrix: o,
            marginals,
            total,
        }
    }

    /// The contingency table of two coders over the units both coded (pairwise deletion).
    pub fn contingency(&self, coder_a: usize, coder_b: usize) -> Result<ContingencyTable> {
        if coder_a >= self.coders || coder_b >= self.coders {
            return Err(Error::InvalidInput(format!(
                "coders {coder_a} and {coder_b}: there are {}",
                self.coders
            )));
        }
        let mut t = ContingencyTable::zeros(self.categories);
        for row in self.codes.chunks_exact(self.coders) {
            let (a, b) = (row[coder_a], row[coder_b]);
            if a != MISSING && b != MISSING {
                t.counts[a as usize * self.categories + b as usize] += 1.0;
            }
        }
        Ok(t)
    }
}

/// The sorted distinct values of an iterator of optional values; fails on a non-finite value.
fn distinct_values(values: impl Iterator<Item = Option<f64>>) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for v in values.flatten() {
        if !v.is_finite() {
            return Err(Error::InvalidInput(format!("value {v} is not finite")));
        }
        out.push(v);
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    Ok(out)
}

/// The code of `v` in the sorted value table (present by construction).
fn code_of(values: &[f64], v: f64) -> usize {
    values.partition_point(|&x| x < v)
}

/// Krippendorff's coincidence matrix `o` with its marginals `n_c` and total `n` (the number of pairable values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coincidences {
    /// Number of categories `k`.
    pub categories: usize,
    /// `k x k` row-major: `matrix[c * k + d]` is `o_cd`.
    pub matrix: Vec<f64>,
    /// `n_c`: the row sums of `matrix`.
    pub marginals: Vec<f64>,
    /// `n`: the sum of all cells.
    pub total: f64,
}

/// Level of measurement for Krippendorff's alpha; it picks the difference function `delta^2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Categories are only equal or not.
    Nominal,
    /// Categories are ranked by value; the distance between two ranks counts the values that lie between them
    /// (Krippendorff 2011's marginal-sum definition).
    Ordinal,
    /// Squared difference of values.
    Interval,
    /// Squared difference over squared sum of values (values should be non-negative).
    Ratio,
}

/// Krippendorff's alpha for `data` at `level`, with missing values.
///
/// Fails with [`Error::NotEnoughData`] when no unit has two values, or when all pairable values are in one
/// category (the expected disagreement is zero, so alpha is undefined).
pub fn krippendorff_alpha(data: &RatingMatrix, level: Level) -> Result<f64> {
    alpha_from_coincidences(&data.coincidences(), data.values(), level)
}

/// Krippendorff's alpha from a coincidence matrix and the categories' values (see [`krippendorff_alpha`]).
pub fn alpha_from_coincidences(co: &Coincidences, values: &[f64], level: Level) -> Result<f64> {
    let k = co.categories;
    if values.len() != k || co.marginals.len() != k || co.matrix.len() != k * k {
        return Err(Error::InvalidInput(format!(
            "{} values, {} marginals and {} cells for {k} categories",
            values.len(),
            co.marginals.len(),
            co.matrix.len()
        )));
    }
    if co.total <= 1.0 {
        return Err(Error::NotEnoughData(
            "no unit has two values to pair".into(),
        ));
    }
    let n = co.total;
    let (observed, expected) = if level == Level::Nominal {
        // Skip the k x k loop: with delta = [c != d], both sums are totals minus diagonals.
        let diag: f64 = (0..k).map(|c| co.matrix[c * k + c]).sum();
        let sq: f64 = co.marginals.iter().map(|m| m * m).sum();
        (n - diag, n * n - sq)
    } else {
        let delta = difference_matrix(&co.marginals, values, level);
        let mut observed = 0.0;
        let mut expected = 0.0;
        for c in 0..k {
            for d in 0..k {
                let dd = delta[c * k + d];
                observed += co.matrix[c * k + d] * dd;
                expected += co.marginals[c] * co.marginals[d] * dd;
            }
        }
        (observed, expected)
    };
    if expected <= 0.0 {
        return Err(Error::NotEnoughData(
            "all pairable values are alike, so the expected disagreement is zero and alpha is undefined".into(),
        ));
    }
    Ok(1.0 - (n - 1.0) * observed / expected)
}

/// `delta^2(c, d)` for every pair of categories, row-major `k x k`.
fn difference_matrix(marginals: &[f64], values: &[f64], level: Level) -> Vec<f64> {
    let k = values.len();
    let mut delta = vec![0.0; k * k];
    match level {
        Level::Nominal => {
            for c in 0..k {
                for d in 0..k {
                    delta[c * k + d] = if c == d { 0.0 } else { 1.0 };
                }
            }
        }
        Level::Ordinal => {
            // Rank categories by value; prefix[r] = sum of n_g over ranks below r.
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
            let mut rank = vec![0; k];
            for (r, &c) in order.iter().enumerate() {
                rank[c] = r;
            }
            let mut prefix = vec![0.0; k + 1];
            for (r, &c) in order.iter().enumerate() {
                prefix[r + 1] = prefix[r] + marginals[c];
            }
            for c in 0..k {
                for d in 0..k {
                    let (lo, hi) = if rank[c] <= rank[d] { (c, d) } else { (d, c) };
                    let between = prefix[rank[hi] + 1] - prefix[rank[lo]];
                    let x = between - (marginals[c] + marginals[d]) / 2.0;
                    delta[c * k + d] = x * x;
                }
            }
        }
        Level::Interval => {
            for c in 0..k {
                for d in 0..k {
                    let x = values[c] - values[d];
                    delta[c * k + d] = x * x;
                }
            }
        }
        Level::Ratio => {
            for c in 0..k {
                for d in 0..k {
                    let sum = values[c] + values[d];
                    let x = if sum == 0.0 {
                        0.0
                    } else {
                        (values[c] - values[d]) / sum
                    };
                    delta[c * k + d] = x * x;
                }
            }
        }
    }
    delta
}

/// Mean over units with at least two values of the share of coder pairs in the unit that agree.
///
/// For two coders this is the share of jointly coded units on which they agree. Fails when no unit has two values.
pub fn percent_agreement(data: &RatingMatrix) -> Result<f64> {
    let mut count = vec![0u32; data.categories];
    let mut sum = 0.0;
    let mut units = 0usize;
    for u in 0..data.units {
        count.iter_mut().for_each(|c| *c = 0);
        let mut m = 0u32;
        for c in data.unit(u).flatten() {
            count[c] += 1;
            m += 1;
        }
        if m >= 2 {
            let agreeing: f64 = count
                .iter()
                .map(|&n| f64::from(n) * (f64::from(n) - 1.0))
                .sum();
            sum += agreeing / (f64::from(m) * f64::from(m - 1));
            units += 1;
        }
    }
    if units == 0 {
        return Err(Error::NotEnoughData("no unit has two values".into()));
    }
    Ok(sum / units as f64)
}

/// Fleiss' kappa for units that each have the same number (at least two) of ratings; units with no rating are
/// skipped. Fleiss (1971) does not allow other missing values: use [`krippendorff_alpha`] for those.
pub fn fleiss_kappa(data: &RatingMatrix) -> Result<f64> {
    let mut rows = Vec::with_capacity(data.units);
    for u in 0..data.units {
        let mut row = vec![0u32; data.categories];
        let mut any = false;
        for c in data.unit(u).flatten() {
            row[c] += 1;
            any = true;
        }
        if any {
            rows.push(row);
        }
    }
    fleiss_kappa_from_counts(&rows)
}

/// Fleiss' kappa from a `subjects x categories` table whose cell `(i, j)` counts the raters who put subject `i` in
/// category `j` (the layout of Fleiss 1971). Every row must sum to the same number of raters, at least two.
pub fn fleiss_kappa_from_counts<R: AsRef<[u32]>>(counts: &[R]) -> Result<f64> {
    let Some(first) = counts.first() else {
        return Err(Error::NotEnoughData("no subjects".into()));
    };
    let k = first.as_ref().len();
    let raters: u64 = first.as_ref().iter().map(|&c| u64::from(c)).sum();
    if raters < 2 {
        return Err(Error::NotEnoughData(format!(
            "{raters} raters per subject; need at least two"
        )));
    }
    let mut column = vec![0u64; k];
    let mut agreement = 0.0;
    for (i, row) in counts.iter().enumerate() {
        let row = row.as_ref();
        if row.len() != k {
            return Err(Error::InvalidInput(format!(
                "subject {i} has {} categories, subject 0 has {k}",
                row.len()
            )));
        }
        let n: u64 = row.iter().map(|&c| u64::from(c)).sum();
        if n != raters {
            return Err(Error::InvalidInput(format!(
                "subject {i} has {n} ratings, subject 0 has {raters}; Fleiss' kappa needs the same number"
            )));
        }
        let sq: u64 = row.iter().map(|&c| u64::from(c) * u64::from(c)).sum();
        agreement += (sq - raters) as f64 / (raters * (raters - 1)) as f64;
        for (col, &c) in column.iter_mut().zip(row) {
            *col += u64::from(c);
        }
    }
    let subjects = counts.len() as f64;
    let p_bar = agreement / subjects;
    let all = subjects * raters as f64;
    let p_e: f64 = column.iter().map(|&c| (c as f64 / all).powi(2)).sum();
    if p_e >= 1.0 {
        return Err(Error::NotEnoughData(
            "every rating is in one category, so chance agreement is 1 and kappa is undefined"
                .into(),
        ));
    }
    Ok((p_bar - p_e) / (1.0 - p_e))
}

/// A square table of two raters' codes: cell `(i, j)` counts the items rater A coded `i` and rater B coded `j`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContingencyTable {
    categories: usize,
    counts: Vec<f64>,
}

impl ContingencyTable {
    /// An empty `categories x categories` table.
    pub fn zeros(categories: usize) -> Self {
        Self {
            categories,
            counts: vec![0.0; categories * categories],
        }
    }

    /// A table from its rows; it must be square, with finite non-negative counts.
    pub fn from_rows<R: AsRef<[f64]>>(rows: &[R]) -> Result<Self> {
        let k = rows.len();
        let mut t = Self::zeros(k);
        for (i, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != k {
                return Err(Error::InvalidInput(format!(
                    "row {i} has {} cells; the table needs {k}",
                    row.len()
                )));
            }
            for (j, &c) in row.iter().enumerate() {
                if !(c.is_finite() && c >= 0.0) {
                    return Err(Error::InvalidInput(format!("cell ({i}, {j}) is {c}")));
                }
                t.counts[i * k + j] = c;
            }
        }
        Ok(t)
    }

    /// A table from two raters' codes for the same items; items either rater left empty are skipped.
    pub fn from_pairs(a: &[Option<usize>], b: &[Option<usize>], categories: usize) -> Result<Self> {
        if a.len() != b.len() {
            return Err(Error::InvalidInput(format!(
                "{} codes against {}",
                a.len(),
                b.len()
            )));
        }
        let mut t = Self::zeros(categories);
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            if let (Some(x), Some(y)) = (x, y) {
                t.add(x, y).map_err(|_| {
                    Error::InvalidInput(format!(
                        "item {i}: codes ({x}, {y}) not below {categories}"
                    ))
                })?;
            }
        }
        Ok(t)
    }

    /// Counts one item coded `a` by rater A and `b` by rater B.
    pub fn add(&mut self, a: usize, b: usize) -> Result<()> {
        if a >= self.categories || b >= self.categories {
            return Err(Error::InvalidInput(format!(
                "codes ({a}, {b}) not below {} categories",
                self.categories
            )));
        }
        self.counts[a * self.categories + b] += 1.0;
        Ok(())
    }

    /// Number of categories.
    pub fn categories(&self) -> usize {
        self.categories
    }

    /// Cell `(a, b)`.
    pub fn get(&self, a: usize, b: usize) -> f64 {
        self.counts[a * self.categories + b]
    }

    /// Sum of all cells: the number of items both raters coded.
    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }
}

/// Disagreement weights for Cohen's kappa over categories ordered by code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KappaWeights {
    /// Every disagreement weighs the same (Cohen 1960).
    #[default]
    Unweighted,
    /// Weight `|i - j|` (Cicchetti and Allison 1971).
    Linear,
    /// Weight `(i - j)^2` (Fleiss and Cohen 1973).
    Quadratic,
}

/// Cohen's kappa of a contingency table: `1 - sum(w * observed) / sum(w * expected)` where `expected` is the
/// product of the marginals over the total; with unweighted disagreement this is `(p_o - p_e) / (1 - p_e)`.
///
/// Fails when the table is empty or chance disagreement is zero (both raters used one and the same category).
pub fn cohen_kappa(table: &ContingencyTable, weights: KappaWeights) -> Result<f64> {
    let k = table.categories;
    let total = table.total();
    if total <= 0.0 {
        return Err(Error::NotEnoughData("no items coded by both raters".into()));
    }
    let rows: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| table.get(i, j)).sum())
        .collect();
    let cols: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| table.get(i, j)).sum())
        .collect();
    let mut observed = 0.0;
    let mut expected = 0.0;
    for (i, &row) in rows.iter().enumerate() {
        for (j, &col) in cols.iter().enumerate() {
            let d = i.abs_diff(j) as f64;
            let w = match weights {
                KappaWeights::Unweighted => f64::from(u8::from(i != j)),
                KappaWeights::Linear => d,
                KappaWeights::Quadratic => d * d,
            };
            observed += w * table.get(i, j);
            expected += w * row * col / total;
        }
    }
    if expected <= 0.0 {
        return Err(Error::NotEnoughData(
            "chance disagreement is zero (both raters used one category), so kappa is undefined"
                .into(),
        ));
    }
    Ok(1.0 - observed / expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} != {b} (tolerance {tol})");
    }

    #[test]
    fn cohen_kappa_of_a_perfect_table_is_one_and_of_an_independent_table_is_zero() {
        let perfect = ContingencyTable::from_rows(&[[5.0, 0.0], [0.0, 7.0]]).unwrap();
        close(
            cohen_kappa(&perfect, KappaWeights::Unweighted).unwrap(),
            1.0,
            1e-12,
        );
        // Rows and columns independent: observed agreement equals chance agreement.
        let independent = ContingencyTable::from_rows(&[[4.0, 6.0], [8.0, 12.0]]).unwrap();
        close(
            cohen_kappa(&independent, KappaWeights::Unweighted).unwrap(),
            0.0,
            1e-12,
        );
    }

    #[test]
    fn weighted_kappa_matches_cohen_1968_definition_by_hand() {
        // Three ordered categories; A and B disagree only by one step, except one item two steps apart.
        // rows = [3, 3, 2], cols = [3, 2, 3], total 8.
        let t = ContingencyTable::from_rows(&[[2.0, 1.0, 0.0], [0.0, 1.0, 2.0], [1.0, 0.0, 1.0]])
            .unwrap();
        // Linear: observed = 1*1 + 1*2 + 2*1 = 5; expected = sum |i-j| r_i c_j / 8
        //   = (3*2*1 + 3*3*2 + 3*3*1 + 3*3*1 + 2*3*2 + 2*2*1) / 8 = (6+18+9+9+12+4)/8 = 58/8.
        close(
            cohen_kappa(&t, KappaWeights::Linear).unwrap(),
            1.0 - 5.0 / (58.0 / 8.0),
            1e-12,
        );
        // Quadratic: observed = 1 + 2 + 4 = 7; expected = (6 + 36 + 9 + 9 + 24 + 4) / 8 = 88/8.
        close(
            cohen_kappa(&t, KappaWeights::Quadratic).unwrap(),
            1.0 - 7.0 / (88.0 / 8.0),
            1e-12,
        );
    }

    #[test]
    fn kappa_is_undefined_when_both_raters_use_one_category() {
        let t = ContingencyTable::from_rows(&[[4.0, 0.0], [0.0, 0.0]]).unwrap();
        assert!(matches!(
            cohen_kappa(&t, KappaWeights::Unweighted),
            Err(Error::NotEnoughData(_))
        ));
    }

    #[test]
    fn coincidences_skip_units_with_one_value_and_weight_pairs_by_one_over_m_minus_one() {
        // Unit 0: values 0, 0, 1 (m = 3); unit 1: a lone value (not pairable); unit 2: 1, 1.
        let m = RatingMatrix::from_unit_rows(
            &[
                vec![Some(0), Some(0), Some(1)],
                vec![Some(1), None, None],
                vec![None, Some(1), Some(1)],
            ],
            2,
        )
        .unwrap();
        let co = m.coincidences();
        // Unit 0: o00 += 2*1/2 = 1, o01 += 2*1/2 = 1, o10 += 1, o11 += 0. Unit 2: o11 += 2*1/1 = 2.
        assert_eq!(co.matrix, vec![1.0, 1.0, 1.0, 2.0]);
        assert_eq!(co.marginals, vec![2.0, 3.0]);
        assert_eq!(co.total, 5.0);
    }

    #[test]
    fn alpha_is_undefined_when_every_value_is_alike() {
        let m = RatingMatrix::from_unit_rows(&[[Some(1), Some(1)], [Some(1), Some(1)]], 3).unwrap();
        assert!(matches!(
            krippendorff_alpha(&m, Level::Nominal),
            Err(Error::NotEnoughData(_))
        ));
        let lonely = RatingMatrix::from_unit_rows(&[[Some(1), None]], 3).unwrap();
        assert!(matches!(
            krippendorff_alpha(&lonely, Level::Nominal),
            Err(Error::NotEnoughData(_))
        ));
    }

    #[test]
    fn nominal_alpha_with_two_coders_and_no_missing_values_matches_scotts_pi() {
        // Krippendorff's alpha for two coders is Scott's pi with a small-sample correction:
        // alpha = 1 - (n - 1) D_o / D_e with n = 2N pairable values.
        let rows = [[0, 0], [0, 1], [1, 1], [1, 1], [2, 2], [2, 0]];
        let rows: Vec<Vec<Option<usize>>> = rows
            .iter()
            .map(|r| r.iter().map(|&c| Some(c)).collect())
            .collect();
        let m = RatingMatrix::from_unit_rows(&rows, 3).unwrap();
        // Pooled proportions over the 12 values: 0 -> 4, 1 -> 5, 2 -> 3. Disagreeing units: 2 of 6.
        let n: f64 = 12.0;
        let p_o = 4.0 / 6.0;
        let p_e = (16.0 + 25.0 + 9.0) / (n * n);
        let pi = (p_o - p_e) / (1.0 - p_e);
        let alpha = 1.0 - (n - 1.0) / n * (1.0 - p_o) / (1.0 - p_e);
        close(
            krippendorff_alpha(&m, Level::Nominal).unwrap(),
            alpha,
            1e-12,
        );
        assert!(alpha > pi, "the correction raises alpha above pi");
    }

    #[test]
    fn values_table_orders_ordinal_categories_and_scales_interval_ones() {
        // Codes whose values reverse their order: ordinal alpha depends only on the order, so reversing the
        // values leaves it unchanged; doubling every value leaves interval alpha unchanged.
        let rows = vec![
            vec![Some(0), Some(1), None],
            vec![Some(2), Some(2), Some(1)],
            vec![Some(0), Some(0), Some(0)],
            vec![Some(1), Some(2), Some(2)],
        ];
        let m = RatingMatrix::from_unit_rows(&rows, 3).unwrap();
        let reversed = m.clone().with_values(vec![2.0, 1.0, 0.0]).unwrap();
        close(
            krippendorff_alpha(&m, Level::Ordinal).unwrap(),
            krippendorff_alpha(&reversed, Level::Ordinal).unwrap(),
            1e-12,
        );
        let doubled = m.clone().with_values(vec![0.0, 2.0, 4.0]).unwrap();
        close(
            krippendorff_alpha(&m, Level::Interval).unwrap(),
            krippendorff_alpha(&doubled, Level::Interval).unwrap(),
            1e-12,
        );
        // Moving the middle value changes interval alpha but not ordinal alpha.
        let skewed = m.clone().with_values(vec![0.0, 0.1, 4.0]).unwrap();
        assert!(
            (krippendorff_alpha(&m, Level::Interval).unwrap()
                - krippendorff_alpha(&skewed, Level::Interval).unwrap())
            .abs()
                > 1e-3
        );
        close(
            krippendorff_alpha(&m, Level::Ordinal).unwrap(),
            krippendorff_alpha(&skewed, Level::Ordinal).unwrap(),
            1e-12,
        );
    }

    #[test]
    fn constructors_reject_bad_input() {
        assert!(RatingMatrix::from_unit_rows(&[vec![Some(3)]], 3).is_err());
        assert!(RatingMatrix::from_unit_rows(&[vec![Some(0)], vec![Some(0), None]], 3).is_err());
        assert!(RatingMatrix::from_unit_values(&[[Some(f64::NAN)]]).is_err());
        assert!(RatingMatrix::new(1, 1, 2)
            .unwrap()
            .with_values(vec![1.0, 1.0])
            .is_err());
        assert!(fleiss_kappa_from_counts(&[[2u32, 1], [1, 1]]).is_err());
    }

    #[test]
    fn from_values_codes_values_by_rank() {
        let m = RatingMatrix::from_coder_values(&[
            [Some(2.5), None, Some(-1.0)],
            [Some(2.5), Some(7.0), None],
        ])
        .unwrap();
        assert_eq!((m.units(), m.coders(), m.categories()), (3, 2, 3));
        assert_eq!(m.values(), &[-1.0, 2.5, 7.0]);
        assert_eq!(m.get(0, 0), Some(1));
        assert_eq!(m.get(1, 0), None);
        assert_eq!(m.get(1, 1), Some(2));
        assert_eq!(m.get(2, 0), Some(0));
    }

    #[test]
    fn percent_agreement_averages_agreeing_pairs_per_unit() {
        // Unit 0: three coders, two agree -> 1 agreeing pair of 3. Unit 1: two agree -> 1. Unit 2: lone value.
        let m = RatingMatrix::from_unit_rows(
            &[
                [Some(0), Some(0), Some(1)],
                [Some(2), Some(2), None],
                [None, None, Some(1)],
            ],
            3,
        )
        .unwrap();
        close(
            percent_agreement(&m).unwrap(),
            (1.0 / 3.0 + 1.0) / 2.0,
            1e-12,
        );
    }

    #[test]
    fn fleiss_kappa_from_a_matrix_equals_kappa_from_its_counts() {
        let m = RatingMatrix::from_unit_rows(
            &[
                [Some(0), Some(0), Some(1)],
                [Some(1), Some(1), Some(1)],
                [None, None, None],
                [Some(2), Some(0), Some(2)],
            ],
            3,
        )
        .unwrap();
        let counts = [[2u32, 1, 0], [0, 3, 0], [1, 0, 2]];
        close(
            fleiss_kappa(&m).unwrap(),
            fleiss_kappa_from_counts(&counts).unwrap(),
            1e-15,
        );
    }
}
