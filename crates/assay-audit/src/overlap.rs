//! Benchmark contamination: input rows that share normalized word n-grams (13 by default, as in the GPT-3 and
//! Llama reports) with the items of a reference set.
//!
//! [`ReferenceIndex::build`] indexes every distinct n-gram of every reference item once (an open-addressing
//! table behind a one-probe bit filter, so the n-grams of an input row that are in no reference item, nearly
//! all of them, cost one cache-resident bit test each). [`ReferenceIndex::scan`] lists an input row's n-grams
//! found in the index. [`contamination`] then applies the two guards against false hits:
//!
//! - an n-gram found in more input rows than the cutoff ([`OverlapConfig::common_rows`]) is an instruction
//!   template or a famous quote, not a leak, and is ignored;
//! - a hit is measured as the share of the reference item's n-grams that the row contains, not a count, so a
//!   long reference item is not hit by every row that quotes one sentence of it.

use rayon::prelude::*;

use crate::text::Words;
use crate::{Error, Result};

/// Settings of the contamination check.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlapConfig {
    /// N-gram length in words.
    pub ngram: usize,
    /// A reference item counts as hit by a row when at least this share of its n-grams is in the row
    /// (0 means any shared n-gram).
    pub min_share: f64,
    /// N-grams found in more than this many input rows are ignored as templates or quotes; `None` takes
    /// [`OverlapConfig::default_common_rows`] of the input's row count.
    pub common_rows: Option<usize>,
}

impl Default for OverlapConfig {
    fn default() -> Self {
        Self {
            ngram: 13,
            min_share: 0.0,
            common_rows: None,
        }
    }
}

impl OverlapConfig {
    /// The default cutoff: 0.1% of the input rows, and at least 10.
    pub fn default_common_rows(rows: usize) -> usize {
        (rows / 1000).max(10)
    }
}

/// One item of a reference set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceItem {
    /// The item's id (its id column or row number, as text).
    pub id: String,
    /// Distinct n-grams of the item (0 when it is shorter than the n-gram).
    pub grams: u32,
}

/// The n-grams of one reference set.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceIndex {
    ngram: usize,
    filter: Vec<u64>,
    filter_mask: u64,
    /// Open-addressing table: keys (0 = empty slot), each with a range of `postings`.
    keys: Vec<u64>,
    starts: Vec<u32>,
    table_mask: u64,
    postings: Vec<u32>,
    items: Vec<ReferenceItem>,
}

const FORMAT: &[u8; 8] = b"AYOVLP02";

/// Keys are stored with 0 meaning "empty"; a real n-gram hash of 0 is stored as 1 (a harmless collision).
#[inline]
fn stored(key: u64) -> u64 {
    key.max(1)
}

impl ReferenceIndex {
    /// Index the `(id, text)` items of one reference set with `ngram`-word n-grams.
    pub fn build<S: AsRef<str> + Sync>(ngram: usize, items: &[(String, S)]) -> Self {
        let ngram = ngram.max(1);
        let grams: Vec<Vec<u64>> = items
            .par_iter()
            .map_init(Words::default, |words, (_, text)| {
                words.fill(text.as_ref(), false);
                let mut grams = Vec::new();
                words.ngrams(ngram, false, &mut grams);
                for g in &mut grams {
                    *g = stored(*g);
                }
                grams.sort_unstable();
                grams.dedup();
                grams
            })
            .collect();
        let mut pairs: Vec<(u64, u32)> = grams
            .iter()
            .enumerate()
            .flat_map(|(item, gs)| gs.iter().map(move |&g| (g, item as u32)))
            .collect();
        pairs.par_sort_unstable();
        let distinct =
            pairs.windows(2).filter(|w| w[0].0 != w[1].0).count() + usize::from(!pairs.is_empty());
        let table_size = (distinct * 2).next_power_of_two().max(16);
        let filter_bits = (distinct * 16).next_power_of_two().max(64);
        let mut index = ReferenceIndex {
            ngram,
            filter: vec![0; filter_bits / 64],
            filter_mask: filter_bits as u64 - 1,
            keys: vec![0; table_size],
            starts: Vec::with_capacity(2 * table_size),
            table_mask: table_size as u64 - 1,
            postings: Vec::with_capacity(pairs.len()),
            items: items
                .iter()
                .zip(&grams)
                .map(|((id, _), g)| ReferenceItem {
                    id: id.clone(),
                    grams: g.len() as u32,
                })
                .collect(),
        };
        // Postings are laid out per key in sorted key order: slot `s` owns postings[starts[s]..ends[s]].
        index.starts.resize(table_size, 0);
        let mut ends = vec![0u32; table_size];
        let mut at = 0;
        while at < pairs.len() {
            let key = pairs[at].0;
            let begin = index.postings.len() as u32;
            while at < pairs.len() && pairs[at].0 == key {
                index.postings.push(pairs[at].1);
                at += 1;
            }
            let slot = index.free_slot(key);
            index.keys[slot] = key;
            index.starts[slot] = begin;
            ends[slot] = index.postings.len() as u32;
            let bit = (key >> 32) & index.filter_mask;
            index.filter[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        // `starts` holds every slot's first posting, then every slot's end.
        index.starts.extend_from_slice(&ends);
        index
    }

    fn free_slot(&self, key: u64) -> usize {
        let mut slot = (key & self.table_mask) as usize;
        while self.keys[slot] != 0 {
            slot = (slot + 1) & self.table_mask as usize;
        }
        slot
    }

    fn slot_of(&self, key: u64) -> Option<usize> {
        let mut slot = (key & self.table_mask) as usize;
        loop {
            let k = self.keys[slot];
            if k == key {
                return Some(slot);
            }
            if k == 0 {
                return None;
            }
            slot = (slot + 1) & self.table_mask as usize;
        }
    }

    /// The n-gram length.
    pub fn ngram(&self) -> usize {
        self.ngram
    }

    /// The reference items.
    pub fn items(&self) -> &[ReferenceItem] {
        &self.items
    }

    /// The items containing n-gram `gram` (a hash from [`ReferenceIndex::scan`]).
    pub fn items_of(&self, gram: u64) -> &[u32] {
        match self.slot_of(stored(gram)) {
            Some(slot) => {
                let begin = self.starts[slot] as usize;
                let end = self.starts[self.keys.len() + slot] as usize;
                &self.postings[begin..end]
            }
            None => &[],
        }
    }

    /// The n-grams of `text` that are in the index, as `(word position, n-gram hash)`, in text order.
    pub fn scan(&self, text: &str, words: &mut Words) -> Vec<(u32, u64)> {
        words.fill(text, false);
        let n = self.ngram;
        let mut found = Vec::new();
        if words.hashes.len() < n {
            return found;
        }
        crate::text::for_each_ngram(&words.hashes, n, |position, hash| {
            let key = stored(hash);
            // n-gram hashes are already mixed: their high bits index the filter, their low bits the table.
            let bit = (key >> 32) & self.filter_mask;
            if self.filter[(bit / 64) as usize] & (1 << (bit % 64)) != 0
                && self.slot_of(key).is_some()
            {
                found.push((position as u32, key));
            }
        });
        found
    }

    /// [`ReferenceIndex::scan`] of a batch of `(row, text)` on all cores; rows without hits are left out.
    pub fn scan_batch<S: AsRef<str> + Sync>(&self, rows: &[(u64, S)]) -> Vec<RowHits> {
        rows.par_iter()
            .with_min_len(64)
            .map_init(Words::default, |words, (row, text)| RowHits {
                row: *row,
                hits: self.scan(text.as_ref(), words),
            })
            .filter(|r| !r.hits.is_empty())
            .collect()
    }

    /// The index as bytes, to cache it (little-endian; see [`ReferenceIndex::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            64 + self.filter.len() * 8 + self.keys.len() * 16 + self.postings.len() * 4,
        );
        out.extend_from_slice(FORMAT);
        let put = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        put(&mut out, self.ngram as u64);
        put(&mut out, self.filter.len() as u64);
        put(&mut out, self.keys.len() as u64);
        put(&mut out, self.postings.len() as u64);
        put(&mut out, self.items.len() as u64);
        for &f in &self.filter {
            put(&mut out, f);
        }
        for &k in &self.keys {
            put(&mut out, k);
        }
        for &s in &self.starts {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for &p in &self.postings {
            out.extend_from_slice(&p.to_le_bytes());
        }
        for item in &self.items {
            out.extend_from_slice(&item.grams.to_le_bytes());
            put(&mut out, item.id.len() as u64);
            out.extend_from_slice(item.id.as_bytes());
        }
        out
    }

    /// An index from [`ReferenceIndex::to_bytes`].
    ///
    /// # Errors
    /// [`Error::Cache`] when the bytes are not such an index (another version, a truncated file).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |why: &str| Error::Cache(why.to_string());
        if bytes.len() < 48 || &bytes[..8] != FORMAT {
            return Err(bad("not an overlap index of this version"));
        }
        let mut cursor = Cursor { bytes, at: 8 };
        let ngram = cursor.u64()? as usize;
        let filter_len = cursor.u64()? as usize;
        let table = cursor.u64()? as usize;
        let postings_len = cursor.u64()? as usize;
        let items_len = cursor.u64()? as usize;
        if !table.is_power_of_two() || !(filter_len * 64).is_power_of_two() {
            return Err(bad("corrupt sizes"));
        }
        let words64 = |raw: &[u8]| -> Vec<u64> {
            raw.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()
        };
        let words32 = |raw: &[u8]| -> Vec<u32> {
            raw.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let filter = words64(cursor.take(filter_len * 8)?);
        let keys = words64(cursor.take(table * 8)?);
        let starts = words32(cursor.take(table * 2 * 4)?);
        let postings = words32(cursor.take(postings_len * 4)?);
        let mut items = Vec::with_capacity(items_len);
        for _ in 0..items_len {
            let grams = u32::from_le_bytes(cursor.take(4)?.try_into().expect("4 bytes"));
            let id_len = u64::from_le_bytes(cursor.take(8)?.try_into().expect("8 bytes")) as usize;
            let id = std::str::from_utf8(cursor.take(id_len)?)
                .map_err(|_| bad("an item id is not UTF-8"))?
                .to_string();
            items.push(ReferenceItem { id, grams });
        }
        if starts.iter().any(|&s| s as usize > postings.len())
            || postings.iter().any(|&p| p as usize >= items.len())
        {
            return Err(bad("corrupt postings"));
        }
        Ok(ReferenceIndex {
            ngram,
            filter,
            filter_mask: (filter_len * 64) as u64 - 1,
            keys,
            starts,
            table_mask: table as u64 - 1,
            postings,
            items,
        })
    }
}

/// Reads a cached index front to back.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(len)
            .ok_or_else(|| Error::Cache("corrupt sizes".into()))?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| Error::Cache("truncated".into()))?;
        self.at = end;
        Ok(slice)
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

/// The n-grams one input row shares with the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowHits {
    /// The row (the caller's numbering).
    pub row: u64,
    /// `(word position, n-gram hash)` from [`ReferenceIndex::scan`].
    pub hits: Vec<(u32, u64)>,
}

/// A reference item a row hits.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemHit {
    /// Index into [`ReferenceIndex::items`].
    pub item: u32,
    /// Distinct n-grams of the item found in the row.
    pub matched: u32,
    /// `matched` over the item's distinct n-grams.
    pub share: f64,
}

/// A contaminated input row.
#[derive(Debug, Clone, PartialEq)]
pub struct ContaminatedRow {
    /// The row.
    pub row: u64,
    /// The items it hits, by item.
    pub items: Vec<ItemHit>,
    /// Matched spans as word ranges `[start, end)` of the row's normalized words (overlapping n-grams merged).
    pub spans: Vec<(u32, u32)>,
}

/// What the check found against one reference set.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlapReport {
    /// Contaminated rows, in row order.
    pub rows: Vec<ContaminatedRow>,
    /// For each reference item, the rows that hit it.
    pub rows_by_item: Vec<Vec<u64>>,
    /// N-grams ignored because more input rows than the cutoff contain them.
    pub common_grams: usize,
    /// The cutoff used (rows).
    pub common_rows: usize,
}

/// Apply the frequency cutoff and the share measure to the hits of every input row (`rows` in all).
///
/// # Errors
/// [`Error::Config`] for a `min_share` outside [0, 1].
pub fn contamination(
    index: &ReferenceIndex,
    mut hits: Vec<RowHits>,
    rows: usize,
    config: &OverlapConfig,
) -> Result<OverlapReport> {
    if !(0.0..=1.0).contains(&config.min_share) {
        return Err(Error::Config(format!(
            "the minimum share must be in [0, 1], not {}",
            config.min_share
        )));
    }
    let common_rows = config
        .common_rows
        .unwrap_or_else(|| OverlapConfig::default_common_rows(rows));
    // In how many rows each n-gram occurs.
    let mut frequency: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for row in &hits {
        let mut distinct: Vec<u64> = row.hits.iter().map(|h| h.1).collect();
        distinct.sort_unstable();
        distinct.dedup();
        for gram in distinct {
            *frequency.entry(gram).or_default() += 1;
        }
    }
    let common_grams = frequency.values().filter(|&&n| n > common_rows).count();
    hits.sort_by_key(|r| r.row);
    let mut rows_by_item = vec![Vec::new(); index.items().len()];
    let mut contaminated = Vec::new();
    for row in hits {
        let kept: Vec<(u32, u64)> = row
            .hits
            .into_iter()
            .filter(|(_, gram)| frequency[gram] <= common_rows)
            .collect();
        if kept.is_empty() {
            continue;
        }
        let mut by_item: std::collections::BTreeMap<u32, Vec<u64>> =
            std::collections::BTreeMap::new();
        for &(_, gram) in &kept {
            for &item in index.items_of(gram) {
                by_item.entry(item).or_default().push(gram);
            }
        }
        let items: Vec<ItemHit> = by_item
            .into_iter()
            .filter_map(|(item, mut grams)| {
                grams.sort_unstable();
                grams.dedup();
                let total = index.items()[item as usize].grams.max(1);
                let share = grams.len() as f64 / f64::from(total);
                (share >= config.min_share && share > 0.0).then_some(ItemHit {
                    item,
                    matched: grams.len() as u32,
                    share,
                })
            })
            .collect();
        if items.is_empty() {
            continue;
        }
        for hit in &items {
            rows_by_item[hit.item as usize].push(row.row);
        }
        let n = index.ngram() as u32;
        let mut spans: Vec<(u32, u32)> = Vec::new();
        for &(position, _) in &kept {
            match spans.last_mut() {
                Some(last) if position <= last.1 => last.1 = last.1.max(position + n),
                _ => spans.push((position, position + n)),
            }
        }
        contaminated.push(ContaminatedRow {
            row: row.row,
            items,
            spans,
        });
    }
    Ok(OverlapReport {
        rows: contaminated,
        rows_by_item,
        common_grams,
        common_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(prefix: &str, n: usize) -> String {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn index() -> ReferenceIndex {
        let items = vec![
            ("q1".to_string(), words("alpha", 30)),
            ("q2".to_string(), words("beta", 200)),
            ("short".to_string(), words("gamma", 5)),
        ];
        ReferenceIndex::build(13, &items)
    }

    fn scan_all(index: &ReferenceIndex, texts: &[String]) -> Vec<RowHits> {
        let mut w = Words::default();
        texts
            .iter()
            .enumerate()
            .map(|(row, t)| RowHits {
                row: row as u64,
                hits: index.scan(t, &mut w),
            })
            .filter(|r| !r.hits.is_empty())
            .collect()
    }

    #[test]
    fn a_planted_passage_is_found_with_its_span_and_share() {
        let index = index();
        assert_eq!(index.items()[0].grams, 18);
        assert_eq!(index.items()[2].grams, 0, "shorter than 13 words");
        // Row 1 holds words 5..25 of q1 (20 words: 8 n-grams), with other text around it, in other case.
        let passage: Vec<String> = (5..25).map(|i| format!("ALPHA{i},")).collect();
        let texts = vec![
            words("noise", 50),
            format!("{} {} {}", words("x", 7), passage.join(" "), words("y", 9)),
            words("other", 40),
        ];
        let report = contamination(
            &index,
            scan_all(&index, &texts),
            3,
            &OverlapConfig::default(),
        )
        .unwrap();
        assert_eq!(report.rows.len(), 1);
        let row = &report.rows[0];
        assert_eq!(row.row, 1);
        assert_eq!(row.items.len(), 1);
        assert_eq!(row.items[0].matched, 8);
        assert!((row.items[0].share - 8.0 / 18.0).abs() < 1e-12);
        assert_eq!(row.spans, vec![(7, 27)]);
        assert_eq!(report.rows_by_item[0], vec![1]);
    }

    #[test]
    fn common_input_ngrams_are_ignored_and_share_guards_long_items() {
        let index = index();
        // 15 rows quote the same 13 words of q2: above the cutoff of 10 rows, so a template, not a leak.
        let quote: String = (40..53)
            .map(|i| format!("beta{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut texts: Vec<String> = (0..15)
            .map(|i| format!("row {i} says {quote} indeed"))
            .collect();
        // One row holds a different 13 words of q2: one n-gram of 188, a share of 0.005.
        let once: String = (100..113)
            .map(|i| format!("beta{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        texts.push(once);
        let hits = scan_all(&index, &texts);
        let report =
            contamination(&index, hits.clone(), texts.len(), &OverlapConfig::default()).unwrap();
        assert_eq!(report.common_grams, 1);
        assert_eq!(report.rows.len(), 1, "only the single row");
        assert_eq!(report.rows[0].row, 15);
        assert!(report.rows[0].items[0].share < 0.01);
        let strict = OverlapConfig {
            min_share: 0.1,
            ..OverlapConfig::default()
        };
        let report = contamination(&index, hits, texts.len(), &strict).unwrap();
        assert!(report.rows.is_empty(), "a share of 0.005 is below 0.1");
    }

    #[test]
    fn the_index_survives_a_round_trip_through_bytes() {
        let index = index();
        let bytes = index.to_bytes();
        let back = ReferenceIndex::from_bytes(&bytes).unwrap();
        assert_eq!(back, index);
        assert!(ReferenceIndex::from_bytes(&bytes[..bytes.len() - 3]).is_err());
        assert!(
            ReferenceIndex::from_bytes(b"something else entirely here.....................")
                .is_err()
        );
        let mut w = Words::default();
        let text = words("beta", 20);
        assert_eq!(back.scan(&text, &mut w), index.scan(&text, &mut w));
        assert_eq!(back.scan(&text, &mut w).len(), 8);
    }
}
