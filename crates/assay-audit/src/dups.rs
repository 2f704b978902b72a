//! Exact and near-duplicate documents: sketches in, verified pairs and clusters out.
//!
//! Documents are added in batches ([`DupCorpus::sketch_batch`] runs on all cores, [`DupCorpus::push`] appends in
//! order). [`DupCorpus::finish`] groups exact duplicates by the hash of the normalized text, bands the
//! signatures of one document per exact group ([`crate::lsh`]), verifies every candidate pair by the exact
//! Jaccard of its shingle sets, and joins pairs and exact groups into clusters with a kept member each.
//!
//! Memory per document: its band keys (8 bytes per band), its exact hash, and its shingle set (8 bytes per
//! distinct shingle) for the verification; the texts themselves are not kept.

use rayon::prelude::*;

use crate::lsh::{candidate_pairs, Banding, TARGET_RECALL_AT_THRESHOLD};
use crate::minhash::{jaccard, Sketcher};
use crate::text::Words;
use crate::{Error, Result};

/// Settings of the duplicate audit.
#[derive(Debug, Clone, PartialEq)]
pub struct DupConfig {
    /// Pairs with a Jaccard similarity at or above this are near-duplicates.
    pub threshold: f64,
    /// Shingle size in words.
    pub ngram: usize,
    /// Signature length (the counterpart of the number of permutations).
    pub bins: usize,
    /// Bands and rows; `None` picks [`Banding::for_recall`] at [`TARGET_RECALL_AT_THRESHOLD`].
    pub banding: Option<Banding>,
    /// Seed of the signature hash.
    pub seed: u64,
}

impl Default for DupConfig {
    fn default() -> Self {
        Self {
            threshold: 0.8,
            ngram: 5,
            bins: 128,
            banding: None,
            seed: 0x6173_7361_795f_6475,
        }
    }
}

/// Which side of an `--against` audit a document is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// A row of the input being audited.
    Input,
    /// A row of the existing set number `n` (0-based), which new rows are checked against.
    Reference(u16),
}

/// How much a row should be kept when it has duplicates: rows people answered first, then gold rows, then the
/// first row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeepPriority {
    /// People answered the row.
    pub answered: bool,
    /// The row has a gold label.
    pub gold: bool,
}

impl KeepPriority {
    fn rank(self) -> u8 {
        u8::from(self.answered) * 2 + u8::from(self.gold)
    }
}

/// The sketch of one document, ready to [`DupCorpus::push`].
#[derive(Debug, Clone)]
pub struct DocSketch {
    exact: u64,
    keys: Vec<u64>,
    shingles: Vec<u64>,
}

/// A verified pair of documents (indices in the order they were pushed), `a < b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DupPair {
    /// The earlier document.
    pub a: u32,
    /// The later document.
    pub b: u32,
    /// Exact Jaccard similarity of their shingle sets.
    pub jaccard: f64,
    /// Identical after normalization.
    pub exact: bool,
}

/// Documents joined by duplicate pairs (transitively), with the one to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Members in push order.
    pub members: Vec<u32>,
    /// The member kept by the rule: answered by people, then gold, then the first.
    pub keep: u32,
}

/// Everything the audit found.
#[derive(Debug, Clone)]
pub struct DupReport {
    /// The banding used.
    pub banding: Banding,
    /// The threshold used.
    pub threshold: f64,
    /// Documents audited (inputs and references).
    pub documents: usize,
    /// Input documents without a single word (left out of every comparison).
    pub empty: usize,
    /// Verified pairs: exact duplicates (each member with the first of its group) and near-duplicates between
    /// the first members of exact groups, sorted by `(a, b)`.
    pub pairs: Vec<DupPair>,
    /// Candidate pairs from the bands, each with its exact Jaccard (whether or not it passed).
    pub candidates: Vec<(u32, u32, f32)>,
    /// Clusters of two or more documents, largest first (without `--against`); empty in `--against` mode.
    pub clusters: Vec<Cluster>,
    /// In `--against` mode, the input documents that duplicate a reference document; otherwise the documents a
    /// deduplicated output drops (every cluster member but the kept one). Sorted.
    pub dropped: Vec<u32>,
}

/// The documents of one duplicate audit.
#[derive(Debug)]
pub struct DupCorpus {
    config: DupConfig,
    sketcher: Sketcher,
    banding: Banding,
    exact: Vec<u64>,
    keys: Vec<u64>,
    has_words: Vec<bool>,
    shingle_starts: Vec<usize>,
    shingles: Vec<u64>,
    sides: Vec<Side>,
    priorities: Vec<u8>,
    /// False after [`DupCorpus::without_shingles`]: the shingles come from [`DupCorpus::supply`] instead.
    keep_shingles: bool,
    supplied: std::collections::HashMap<u32, Vec<u64>>,
    /// The band join's pairs, once computed.
    candidate_list: Option<Vec<(u32, u32)>>,
}

impl DupCorpus {
    /// An empty audit with `config`.
    ///
    /// # Errors
    /// [`Error::Config`] for a threshold outside (0, 1], an n-gram or signature length of 0, or a banding that
    /// does not fit the signature.
    pub fn new(config: DupConfig) -> Result<Self> {
        if config.ngram == 0 {
            return Err(Error::Config("the n-gram size must be at least 1".into()));
        }
        let banding = match config.banding {
            Some(b) => Banding::new(b.bands, b.rows, config.bins)?,
            None => Banding::for_recall(config.threshold, config.bins, TARGET_RECALL_AT_THRESHOLD)?,
        };
        if !(config.threshold > 0.0 && config.threshold <= 1.0) {
            return Err(Error::Config(format!(
                "the threshold must be in (0, 1], not {}",
                config.threshold
            )));
        }
        Ok(Self {
            sketcher: Sketcher::new(config.ngram, config.bins, config.seed),
            config,
            banding,
            exact: Vec::new(),
            keys: Vec::new(),
            has_words: Vec::new(),
            shingle_starts: vec![0],
            shingles: Vec::new(),
            sides: Vec::new(),
            priorities: Vec::new(),
            keep_shingles: true,
            supplied: std::collections::HashMap::new(),
            candidate_list: None,
        })
    }

    /// Keep only exact hashes and band keys of pushed documents, not their shingles (memory: 8 bytes per band
    /// per document). Before [`DupCorpus::finish`], sketch the [`DupCorpus::compared_documents`] again (a second
    /// pass over the input) and hand each to [`DupCorpus::supply`].
    pub fn without_shingles(mut self) -> Self {
        self.keep_shingles = false;
        self
    }

    /// The banding in use.
    pub fn banding(&self) -> Banding {
        self.banding
    }

    /// Documents pushed so far.
    pub fn len(&self) -> usize {
        self.exact.len()
    }

    /// No documents yet.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// Sketch a batch of texts on all cores.
    pub fn sketch_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<DocSketch> {
        let bands = self.banding.bands;
        texts
            .par_iter()
            .with_min_len(64)
            .map_init(
                || (Words::default(), vec![0u32; self.config.bins]),
                |(words, signature), text| {
                    let sketch = self.sketcher.sketch(text.as_ref(), words);
                    let keys = if sketch.shingles.is_empty() {
                        Vec::new()
                    } else {
                        signature.copy_from_slice(&sketch.signature);
                        (0..bands)
                            .map(|band| self.banding.key(signature, band))
                            .collect()
                    };
                    DocSketch {
                        exact: sketch.exact,
                        keys,
                        shingles: sketch.shingles,
                    }
                },
            )
            .collect()
    }

    /// Append one document; returns its index.
    pub fn push(&mut self, sketch: DocSketch, side: Side, priority: KeepPriority) -> u32 {
        let index = self.exact.len() as u32;
        self.exact.push(sketch.exact);
        let has_words = !sketch.keys.is_empty();
        self.has_words.push(has_words);
        if has_words {
            self.keys.extend_from_slice(&sketch.keys);
        } else {
            self.keys.extend(std::iter::repeat_n(0, self.banding.bands));
        }
        if self.keep_shingles {
            self.shingles.extend_from_slice(&sketch.shingles);
        }
        self.shingle_starts.push(self.shingles.len());
        self.sides.push(side);
        self.priorities.push(priority.rank());
        index
    }

    /// Document `doc`'s shingles as stored: in text order until [`DupCorpus::finish`] sorts those it compares.
    fn shingles(&self, doc: u32) -> &[u64] {
        if !self.keep_shingles {
            return self.supplied.get(&doc).map_or(&[], Vec::as_slice);
        }
        let doc = doc as usize;
        &self.shingles[self.shingle_starts[doc]..self.shingle_starts[doc + 1]]
    }

    /// The exact Jaccard similarity of two texts' shingle sets, with this audit's settings.
    pub fn text_jaccard(&self, a: &str, b: &str) -> f64 {
        let mut words = Words::default();
        let mut set = |text: &str| {
            let mut shingles = self.sketcher.sketch(text, &mut words).shingles;
            shingles.sort_unstable();
            shingles
        };
        let (a, b) = (set(a), set(b));
        jaccard(&a, &b)
    }

    /// The documents whose shingles the verification compares (sorted): after
    /// [`DupCorpus::without_shingles`], the caller sketches these again and [`DupCorpus::supply`]s them.
    pub fn compared_documents(&mut self) -> Vec<u32> {
        let mut compared: Vec<u32> = self
            .candidates()
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .collect();
        compared.sort_unstable();
        compared.dedup();
        compared
    }

    /// The shingles of document `doc` from a second sketch of its text (see [`DupCorpus::without_shingles`]).
    pub fn supply(&mut self, doc: u32, sketch: DocSketch) {
        let mut shingles = sketch.shingles;
        shingles.sort_unstable();
        self.supplied.insert(doc, shingles);
    }

    /// The band join's candidate pairs (computed once).
    fn candidates(&mut self) -> &[(u32, u32)] {
        if self.candidate_list.is_none() {
            let against = self.against();
            let representative = self.exact_representatives();
            let eligible: Vec<bool> = (0..self.len())
                .map(|d| self.has_words[d] && representative[d] == d as u32)
                .collect();
            let sides = &self.sides;
            let allowed = move |a: u32, b: u32| -> bool {
                !against
                    || ((sides[a as usize] == Side::Input) != (sides[b as usize] == Side::Input))
            };
            self.candidate_list = Some(candidate_pairs(
                &self.keys,
                self.banding.bands,
                &eligible,
                &allowed,
            ));
        }
        self.candidate_list.as_deref().expect("computed above")
    }

    /// Sort the stored shingles of `docs` (sorted, without repeats) in place, on all cores: sketches keep them
    /// in text order because only the few documents in candidate pairs are ever compared.
    fn sort_shingles_of(&mut self, docs: &[u32]) {
        let mut slices = Vec::with_capacity(docs.len());
        let mut rest: &mut [u64] = &mut self.shingles;
        let mut offset = 0;
        for &doc in docs {
            let (start, end) = (
                self.shingle_starts[doc as usize],
                self.shingle_starts[doc as usize + 1],
            );
            let tail = std::mem::take(&mut rest);
            let (_, tail) = tail.split_at_mut(start - offset);
            let (slice, tail) = tail.split_at_mut(end - start);
            slices.push(slice);
            rest = tail;
            offset = end;
        }
        slices.par_iter_mut().for_each(|s| s.sort_unstable());
    }

    /// The side of document `doc`.
    pub fn side(&self, doc: u32) -> Side {
        self.sides[doc as usize]
    }

    /// Whether some document is a reference (`--against` mode).
    fn against(&self) -> bool {
        self.sides.iter().any(|s| *s != Side::Input)
    }

    /// For each document, the first document with the same normalized text (itself when it is the first).
    fn exact_representatives(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.len() as u32)
            .filter(|&d| self.has_words[d as usize])
            .collect();
        order.par_sort_unstable_by_key(|&d| (self.exact[d as usize], d));
        let mut representative: Vec<u32> = (0..self.len() as u32).collect();
        let mut start = 0;
        while start < order.len() {
            let hash = self.exact[order[start] as usize];
            let mut end = start + 1;
            while end < order.len() && self.exact[order[end] as usize] == hash {
                representative[order[end] as usize] = order[start];
                end += 1;
            }
            start = end;
        }
        representative
    }

    /// Band rows `(document, band, key)` of the documents that take part in the band join: the first document
    /// of every exact group that has words. An outside engine joining these on `(band, key)` finds the same
    /// candidate pairs as [`DupCorpus::finish`] (before the `--against` side filter).
    pub fn band_rows(&self) -> impl Iterator<Item = (u32, u32, u64)> + '_ {
        let representative = self.exact_representatives();
        let bands = self.banding.bands;
        (0..self.len() as u32)
            .filter(move |&d| self.has_words[d as usize] && representative[d as usize] == d)
            .flat_map(move |d| {
                (0..bands).map(move |band| (d, band as u32, self.keys[d as usize * bands + band]))
            })
    }

    /// Find exact duplicates, candidate pairs, verified pairs and clusters.
    pub fn finish(&mut self) -> DupReport {
        let against = self.against();
        let representative = self.exact_representatives();
        let documents = self.len();
        let mut pairs = Vec::new();
        // Exact duplicates: each later member with the first of its group (a reference in --against mode).
        for doc in 0..documents as u32 {
            let first = representative[doc as usize];
            if first == doc {
                continue;
            }
            if against && !(self.side(first) != Side::Input && self.side(doc) == Side::Input) {
                continue;
            }
            pairs.push(DupPair {
                a: first,
                b: doc,
                jaccard: 1.0,
                exact: true,
            });
        }
        let compared = self.compared_documents();
        if self.keep_shingles {
            self.sort_shingles_of(&compared);
        }
        let candidate_list = self
            .candidate_list
            .take()
            .expect("computed by compared_documents");
        let candidates: Vec<(u32, u32, f32)> = candidate_list
            .par_iter()
            .map(|&(a, b)| (a, b, jaccard(self.shingles(a), self.shingles(b)) as f32))
            .collect();
        // Verified near-duplicates (jaccard recomputed in f64 for the output).
        let threshold = self.config.threshold;
        let near: Vec<DupPair> = candidate_list
            .par_iter()
            .filter_map(|&(a, b)| {
                let similarity = jaccard(self.shingles(a), self.shingles(b));
                (similarity >= threshold).then_some(DupPair {
                    a,
                    b,
                    jaccard: similarity,
                    exact: false,
                })
            })
            .collect();
        pairs.extend(near);
        pairs.sort_by_key(|p| (p.a, p.b));

        let (clusters, dropped) = if against {
            let mut dropped: Vec<u32> = pairs
                .iter()
                .map(|p| {
                    if self.side(p.a) == Side::Input {
                        p.a
                    } else {
                        p.b
                    }
                })
                .collect();
            dropped.sort_unstable();
            dropped.dedup();
            (Vec::new(), dropped)
        } else {
            self.clusters(&pairs)
        };
        let empty = (0..documents)
            .filter(|&d| !self.has_words[d] && self.sides[d] == Side::Input)
            .count();
        DupReport {
            banding: self.banding,
            threshold,
            documents,
            empty,
            pairs,
            candidates,
            clusters,
            dropped,
        }
    }

    fn clusters(&self, pairs: &[DupPair]) -> (Vec<Cluster>, Vec<u32>) {
        let mut sets = UnionFind::new(self.len());
        for pair in pairs {
            sets.union(pair.a, pair.b);
        }
        let mut by_root: std::collections::HashMap<u32, Vec<u32>> =
            std::collections::HashMap::new();
        for pair in pairs {
            for doc in [pair.a, pair.b] {
                by_root.entry(sets.find(doc)).or_default().push(doc);
            }
        }
        let mut clusters: Vec<Cluster> = by_root
            .into_values()
            .map(|mut members| {
                members.sort_unstable();
                members.dedup();
                let keep = *members
                    .iter()
                    .max_by_key(|&&d| (self.priorities[d as usize], std::cmp::Reverse(d)))
                    .expect("a cluster has members");
                Cluster { members, keep }
            })
            .collect();
        clusters.sort_by(|x, y| {
            y.members
                .len()
                .cmp(&x.members.len())
                .then(x.members[0].cmp(&y.members[0]))
        });
        let mut dropped: Vec<u32> = clusters
            .iter()
            .flat_map(|c| c.members.iter().copied().filter(move |&d| d != c.keep))
            .collect();
        dropped.sort_unstable();
        (clusters, dropped)
    }
}

/// Disjoint sets over `0..n` with path halving and union by size.
#[derive(Debug)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    /// The root of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grandparent = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grandparent;
            x = grandparent;
        }
        x
    }

    /// Join the sets of `a` and `b`.
    pub fn union(&mut self, a: u32, b: u32) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a as usize] < self.size[b as usize] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random text of `n` words from a vocabulary of 5,000.
    fn text(seed: u64, n: usize) -> Vec<String> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("w{}", state % 5000)
            })
            .collect()
    }

    fn corpus(texts: &[String], sides: &[Side], priorities: &[KeepPriority]) -> DupReport {
        let mut corpus = DupCorpus::new(DupConfig::default()).unwrap();
        let sketches = corpus.sketch_batch(texts);
        for (i, s) in sketches.into_iter().enumerate() {
            corpus.push(s, sides[i], priorities[i]);
        }
        corpus.finish()
    }

    #[test]
    fn finds_exact_and_near_duplicates_and_keeps_by_the_rule() {
        let base = text(1, 200);
        let mut edited = base.clone();
        edited[100] = "changed".into(); // 5 of 196 shingles change: J = 191/201
        let texts = vec![
            base.join(" "),                // 0
            text(2, 200).join(" "),        // 1: unrelated
            edited.join(" "),              // 2: near-duplicate of 0
            base.join(" ").to_uppercase(), // 3: exact duplicate of 0
            "".into(),                     // 4: empty
            text(3, 150).join(" "),        // 5: unrelated
        ];
        let sides = vec![Side::Input; texts.len()];
        let mut priorities = vec![KeepPriority::default(); texts.len()];
        priorities[2].gold = true;
        let report = corpus(&texts, &sides, &priorities);
        assert_eq!(report.empty, 1);
        let pairs: Vec<(u32, u32, bool)> =
            report.pairs.iter().map(|p| (p.a, p.b, p.exact)).collect();
        assert_eq!(pairs, vec![(0, 2, false), (0, 3, true)]);
        assert!((report.pairs[0].jaccard - 191.0 / 201.0).abs() < 1e-12);
        assert_eq!(report.clusters.len(), 1);
        assert_eq!(report.clusters[0].members, vec![0, 2, 3]);
        assert_eq!(report.clusters[0].keep, 2, "the gold row is kept");
        assert_eq!(report.dropped, vec![0, 3]);

        priorities[3].answered = true;
        let report = corpus(&texts, &sides, &priorities);
        assert_eq!(report.clusters[0].keep, 3, "answered beats gold");
        priorities[2].gold = false;
        priorities[3].answered = false;
        let report = corpus(&texts, &sides, &priorities);
        assert_eq!(report.clusters[0].keep, 0, "otherwise the first");
    }

    #[test]
    fn against_mode_reports_only_new_rows_that_duplicate_the_reference() {
        let old = text(10, 120);
        let mut new_copy = old.clone();
        new_copy[3] = "x".into();
        let fresh = text(11, 120);
        let texts = vec![
            old.join(" "),      // 0: reference
            new_copy.join(" "), // 1: input, near-duplicate of 0
            fresh.join(" "),    // 2: input
            fresh.join(" "),    // 3: input, exact duplicate of 2 (within the input: not reported)
        ];
        let sides = vec![Side::Reference(0), Side::Input, Side::Input, Side::Input];
        let report = corpus(&texts, &sides, &[KeepPriority::default(); 4]);
        let pairs: Vec<(u32, u32)> = report.pairs.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(pairs, vec![(0, 1)]);
        assert_eq!(report.dropped, vec![1]);
        assert!(report.clusters.is_empty());
    }

    #[test]
    fn candidates_below_the_threshold_are_rejected_by_verification() {
        let base = text(20, 100);
        let mut far = base.clone();
        for i in (0..100).step_by(12) {
            far[i] = format!("edit{i}");
        }
        let texts = vec![base.join(" "), far.join(" ")];
        let config = DupConfig {
            banding: Some(Banding {
                bands: 128,
                rows: 1,
            }),
            ..DupConfig::default()
        };
        let mut corpus = DupCorpus::new(config).unwrap();
        for s in corpus.sketch_batch(&texts) {
            corpus.push(s, Side::Input, KeepPriority::default());
        }
        let report = corpus.finish();
        assert_eq!(report.candidates.len(), 1, "some band of one row agrees");
        assert!(report.candidates[0].2 < 0.8);
        assert!(report.pairs.is_empty());
        assert_eq!(corpus.band_rows().count(), 2 * 128);
    }

    #[test]
    fn a_second_pass_for_the_compared_shingles_gives_the_same_report() {
        let mut texts: Vec<String> = (0..200).map(|i| text(100 + i, 80).join(" ")).collect();
        for i in 0..20 {
            let mut w = text(100 + i, 80);
            w[40] = "edited".into();
            texts.push(w.join(" "));
        }
        texts.push(texts[3].clone());
        let sides = vec![Side::Input; texts.len()];
        let full = corpus(&texts, &sides, &vec![KeepPriority::default(); texts.len()]);

        let mut lean = DupCorpus::new(DupConfig::default())
            .unwrap()
            .without_shingles();
        for s in lean.sketch_batch(&texts) {
            lean.push(s, Side::Input, KeepPriority::default());
        }
        let compared = lean.compared_documents();
        assert_eq!(compared.len(), 40, "the 20 pairs");
        let again: Vec<&str> = compared
            .iter()
            .map(|&d| texts[d as usize].as_str())
            .collect();
        for (&doc, sketch) in compared.iter().zip(lean.sketch_batch(&again)) {
            lean.supply(doc, sketch);
        }
        let report = lean.finish();
        assert_eq!(report.pairs, full.pairs);
        assert_eq!(report.clusters, full.clusters);
        assert_eq!(full.pairs.len(), 21);
        assert!((lean.text_jaccard(&texts[0], &texts[200]) - full.pairs[0].jaccard).abs() < 1e-12);
    }

    #[test]
    fn union_find_joins_transitively() {
        let mut sets = UnionFind::new(5);
        sets.union(0, 1);
        sets.union(3, 4);
        sets.union(1, 4);
        assert_eq!(sets.find(0), sets.find(3));
        assert_ne!(sets.find(2), sets.find(0));
    }
}
