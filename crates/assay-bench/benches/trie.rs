//! Building the token trie of a batch is on the labeling hot path (once per group of items).

use assay_llm::trie::{Leaf, Trie};
use criterion::{criterion_group, criterion_main, Criterion};

fn banking_like_group() -> Vec<Leaf> {
    // 4 items x 77 options of 3-6 tokens after a 400-token prefix and a 30-token item.
    let prefix: Vec<i32> = (0..400).collect();
    let mut leaves = Vec::new();
    for item in 0..4 {
        let mut base = prefix.clone();
        base.extend((0..30).map(|t| 1000 + item * 100 + t));
        for option in 0..77 {
            let mut tokens = base.clone();
            tokens.extend((0..3 + option % 4).map(|t| 5000 + option * 7 + t));
            leaves.push(Leaf {
                score_from: base.len(),
                start: prefix.len(),
                tokens,
            });
        }
    }
    leaves
}

fn bench_trie(c: &mut Criterion) {
    let leaves = banking_like_group();
    c.bench_function("trie_build_4_items_x_77_options", |b| {
        b.iter(|| Trie::build(std::hint::black_box(&leaves)))
    });
}

criterion_group!(benches, bench_trie);
criterion_main!(benches);
