//! Nearest-neighbour few-shot examples (`examples-from select = "similar"`, Autolabel's `semantic_similarity`;
//! Liu et al. 2022): each item's prompt shows the `k` rows of the examples file nearest to it by cosine
//! similarity of their embeddings, the nearest last (closest to the item). The pool and the items are embedded
//! through the store like the probe's vectors (same key), so a rerun, or a probe with the same embedder, embeds
//! nothing twice.
//!
//! What it costs: the examples can no longer sit in the shared prompt prefix, so every item evaluates its own
//! examples' tokens (the summary's tokens per item shows it), plus one embedding per item.

use assay_core::prompt::ResolvedExample;
use assay_llm::embed::Embedder;

use crate::identity::ExamplePool;
use crate::probe::{embed_cached, embedder_key};
use crate::run::Context;
use crate::Result;

/// The pool, embedded, and the embedder that embeds the items.
pub(crate) struct Neighbours<'e> {
    pool: &'e ExamplePool,
    vectors: Vec<Vec<f32>>,
    embedder: &'e mut dyn Embedder,
    key: String,
}

/// The examples picked for one item: the examples themselves and their row numbers in the examples file.
pub(crate) struct Picked {
    pub examples: Vec<ResolvedExample>,
    pub rows: Vec<u64>,
}

impl<'e> Neighbours<'e> {
    /// Embed the pool (stored vectors reused).
    pub(crate) fn new(
        pool: &'e ExamplePool,
        embedder: &'e mut dyn Embedder,
        cx: &Context<'_>,
    ) -> Result<Self> {
        let key = embedder_key(embedder);
        let texts: Vec<&str> = pool.examples.iter().map(|e| e.text.as_str()).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for block in texts.chunks(64) {
            vectors.extend(embed_cached(embedder, &key, block, cx)?.0);
        }
        Ok(Self {
            pool,
            vectors,
            embedder,
            key,
        })
    }

    /// The examples of each of `texts`.
    pub(crate) fn pick(&mut self, texts: &[&str], cx: &Context<'_>) -> Result<Vec<Picked>> {
        let (vectors, _) = embed_cached(self.embedder, &self.key, texts, cx)?;
        Ok(texts
            .iter()
            .zip(&vectors)
            .map(|(text, v)| {
                let chosen = nearest(&self.vectors, v, self.pool.k, |i| {
                    // An item never sees itself (the examples file may hold the rows being labeled).
                    self.pool.examples[i].text != *text
                });
                Picked {
                    examples: chosen
                        .iter()
                        .map(|&i| self.pool.examples[i].clone())
                        .collect(),
                    rows: chosen.iter().map(|&i| self.pool.rows[i]).collect(),
                }
            })
            .collect())
    }
}

/// The indices of the `k` vectors most similar to `query` (dot product of L2-normalised vectors: cosine) among
/// those `allowed`, least similar first, ties broken by the lower index.
fn nearest(
    vectors: &[Vec<f32>],
    query: &[f32],
    k: usize,
    allowed: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = vectors
        .iter()
        .enumerate()
        .filter(|(i, _)| allowed(*i))
        .map(|(i, v)| (v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>(), i))
        .collect();
    // Most similar first, then the lower index; keep k, then reverse so the nearest ends next to the item.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(k);
    scored.reverse();
    scored.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_keeps_the_k_most_similar_with_the_nearest_last() {
        let vectors = vec![
            vec![1.0, 0.0],
            vec![0.0, 1.0],
            vec![0.8, 0.6],
            vec![0.6, 0.8],
        ];
        assert_eq!(nearest(&vectors, &[1.0, 0.0], 2, |_| true), vec![2, 0]);
        assert_eq!(nearest(&vectors, &[0.0, 1.0], 3, |_| true), vec![2, 3, 1]);
        // Excluded rows are never picked, and k larger than the pool returns what there is.
        assert_eq!(nearest(&vectors, &[1.0, 0.0], 9, |i| i != 0), vec![1, 3, 2]);
    }

    #[test]
    fn nearest_breaks_ties_by_row_order() {
        let vectors = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        assert_eq!(nearest(&vectors, &[1.0, 0.0], 1, |_| true), vec![0]);
    }
}
