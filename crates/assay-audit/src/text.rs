//! Text normalization and word n-grams, shared by both audits.
//!
//! The normalization ([`NORMALIZATION`]) is: Unicode lowercase; every character that is not a letter or a digit
//! (punctuation, symbols, whitespace) separates words; words are compared by their hash. Two texts that differ
//! only in case, spacing or punctuation therefore have the same words, the same shingles and the same exact hash.

use crate::hash::{combine, fold_mul, mix, P1, P2};

/// The normalization named in reports.
pub const NORMALIZATION: &str =
    "Unicode lowercase; any run of characters that are not letters or digits (whitespace, punctuation, symbols) \
     separates words";

const WORD_SEED: u64 = 0x5157_4f52_4453_0001;

/// The words of a text after normalization, as 64-bit hashes, with each word's byte range in the original text.
#[derive(Debug, Default, Clone)]
pub struct Words {
    /// One hash per word, in order.
    pub hashes: Vec<u64>,
    /// `(start, end)` byte offsets of each word in the original text (filled only when asked for).
    pub spans: Vec<(u32, u32)>,
    /// One bit per byte of the text: set for ASCII letters and digits and for every non-ASCII byte.
    mask: Vec<u64>,
    /// One bit per byte: set for non-ASCII bytes.
    non_ascii: Vec<u64>,
}

/// Per byte of `x`: 0x80 where the byte (below 0x80) is at least `low`.
#[inline(always)]
fn at_least(x: u64, low: u8) -> u64 {
    x.wrapping_add(u64::from(0x80 - low) * 0x0101_0101_0101_0101)
}

/// Per byte of `x`: 0x80 where the byte (below 0x80) is at most `high`.
#[inline(always)]
fn at_most(x: u64, high: u8) -> u64 {
    !x.wrapping_add(u64::from(0x7f - high) * 0x0101_0101_0101_0101)
}

/// The high bits of the eight bytes of `m` (only bits 7, 15, ..., 63 set) gathered into one byte.
#[inline(always)]
fn gather(m: u64) -> u64 {
    (m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Word bytes (ASCII letters and digits, and any non-ASCII byte) and non-ASCII bytes of eight text bytes, as
/// two 8-bit masks, without a branch.
#[inline(always)]
fn classify(x: u64) -> (u64, u64) {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let non_ascii = x & HIGH;
    let y = x & !HIGH;
    let digit = at_least(y, b'0') & at_most(y, b'9');
    let lower = y | 0x2020_2020_2020_2020;
    let letter = at_least(lower, b'a') & at_most(lower, b'z');
    (
        gather(((digit | letter) & HIGH) | non_ascii),
        gather(non_ascii),
    )
}

/// A word's hash, fed one lowercased byte at a time: eight bytes are packed into a register and folded in at once,
/// so a word of up to eight bytes costs one multiplication.
#[derive(Default)]
struct WordHasher {
    state: u64,
    packed: u64,
    filled: u32,
    length: u64,
}

impl WordHasher {
    #[inline(always)]
    fn push(&mut self, byte: u8) {
        self.packed |= u64::from(byte) << (8 * self.filled);
        self.filled += 1;
        self.length += 1;
        if self.filled == 8 {
            self.state = fold_mul(self.state ^ self.packed, P1);
            self.packed = 0;
            self.filled = 0;
        }
    }

    #[inline(always)]
    fn finish(&mut self) -> u64 {
        let hash = fold_mul(
            self.state ^ self.packed ^ WORD_SEED,
            P2 ^ self.length.wrapping_mul(P1),
        );
        *self = WordHasher::default();
        hash
    }
}

/// [`WordHasher`]'s hash of an ASCII word, eight bytes per step (the same value as pushing its lowercased bytes
/// one at a time).
#[cfg(test)]
fn hash_ascii_word(word: &[u8]) -> u64 {
    hash_ascii_word_in(word, 0, word.len())
}

/// [`hash_ascii_word`] of `text[start..end]`, reading whole eight-byte words where the text has them, so that the
/// last partial chunk is one masked load instead of a loop over its bytes.
#[inline(always)]
fn hash_ascii_word_in(text: &[u8], start: usize, end: usize) -> u64 {
    const LOWER: u64 = 0x2020_2020_2020_2020;
    let mut state = 0u64;
    let mut at = start;
    while at + 8 <= end {
        let packed = u64::from_le_bytes(text[at..at + 8].try_into().expect("8 bytes")) | LOWER;
        state = fold_mul(state ^ packed, P1);
        at += 8;
    }
    let rest = end - at;
    let mut packed = 0u64;
    if rest > 0 {
        let loaded = if at + 8 <= text.len() {
            u64::from_le_bytes(text[at..at + 8].try_into().expect("8 bytes"))
        } else {
            let mut last = [0u8; 8];
            last[..text.len() - at].copy_from_slice(&text[at..]);
            u64::from_le_bytes(last)
        };
        packed = (loaded | LOWER) & (u64::MAX >> (64 - 8 * rest));
    }
    fold_mul(
        state ^ packed ^ WORD_SEED,
        P2 ^ ((end - start) as u64).wrapping_mul(P1),
    )
}

/// Whether any bit of `mask` in positions `start..end` is set.
#[inline]
fn any_bit_in(mask: &[u64], start: usize, end: usize) -> bool {
    let mut position = start;
    while position < end {
        let block = position / 64;
        let offset = position % 64;
        let width = (64 - offset).min(end - position);
        let window = if width == 64 {
            u64::MAX
        } else {
            ((1u64 << width) - 1) << offset
        };
        if mask[block] & window != 0 {
            return true;
        }
        position += width;
    }
    false
}

/// The first position at or after `from` whose bit in `mask` is `set` (`None` past the end of the mask).
#[inline]
fn next_bit(mask: &[u64], from: usize, set: bool) -> Option<usize> {
    let mut block = from / 64;
    if block >= mask.len() {
        return None;
    }
    let flip = if set { 0 } else { u64::MAX };
    let mut bits = (mask[block] ^ flip) & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return Some(block * 64 + bits.trailing_zeros() as usize);
        }
        block += 1;
        if block >= mask.len() {
            return None;
        }
        bits = mask[block] ^ flip;
    }
}

impl Words {
    /// Tokenize `text` into `self`, replacing what was there; `with_spans` also records byte ranges.
    ///
    /// Word bytes are found eight at a time (bit masks, no branch per byte); a run of ASCII letters and digits is
    /// hashed eight bytes per step, a run with non-ASCII bytes goes character by character through Unicode's
    /// classes.
    pub fn fill(&mut self, text: &str, with_spans: bool) {
        self.hashes.clear();
        self.spans.clear();
        let bytes = text.as_bytes();
        self.build_masks(bytes);
        let mut position = 0usize;
        while let Some(start) = next_bit(&self.mask, position, true) {
            if start >= bytes.len() {
                break;
            }
            let end = next_bit(&self.mask, start, false)
                .unwrap_or(bytes.len())
                .min(bytes.len());
            let has_non_ascii = any_bit_in(&self.non_ascii, start, end);
            if has_non_ascii {
                position = self.unicode_word(text, start, with_spans);
                continue;
            }
            self.hashes.push(hash_ascii_word_in(bytes, start, end));
            if with_spans {
                self.spans.push((start as u32, end as u32));
            }
            position = end;
        }
    }

    fn build_masks(&mut self, bytes: &[u8]) {
        let blocks = bytes.len().div_ceil(64);
        self.mask.clear();
        self.mask.resize(blocks, 0);
        self.non_ascii.clear();
        self.non_ascii.resize(blocks, 0);
        let mut chunks = bytes.chunks_exact(8);
        let mut index = 0usize;
        for chunk in &mut chunks {
            let (word, high) = classify(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            self.mask[index / 8] |= word << (8 * (index % 8));
            self.non_ascii[index / 8] |= high << (8 * (index % 8));
            index += 1;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            let (word, high) = classify(u64::from_le_bytes(last));
            self.mask[index / 8] |= word << (8 * (index % 8));
            self.non_ascii[index / 8] |= high << (8 * (index % 8));
        }
    }

    /// Hash the word starting at `start` character by character with Unicode's classes and lowercase; returns
    /// where it ends (or `start` + one character when that character is not part of a word).
    fn unicode_word(&mut self, text: &str, start: usize, with_spans: bool) -> usize {
        let mut word = WordHasher::default();
        let mut position = start;
        for character in text[start..].chars() {
            if !character.is_alphanumeric() {
                break;
            }
            let mut buffer = [0u8; 4];
            for lower in character.to_lowercase() {
                for &b in lower.encode_utf8(&mut buffer).as_bytes() {
                    word.push(b);
                }
            }
            position += character.len_utf8();
        }
        if word.length == 0 {
            // A non-ASCII separator (a dash, a symbol): skip it.
            return start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
        self.end_word(&mut word, start, position, with_spans);
        position
    }

    #[inline(always)]
    fn end_word(&mut self, word: &mut WordHasher, start: usize, end: usize, with_spans: bool) {
        self.hashes.push(word.finish());
        if with_spans {
            self.spans.push((start as u32, end as u32));
        }
    }

    /// The hash of the whole normalized text (the words in order): equal for exact duplicates.
    pub fn exact_hash(&self) -> u64 {
        let mut state = mix(self.hashes.len() as u64, WORD_SEED);
        for &word in &self.hashes {
            state = combine(state, word);
        }
        state
    }

    /// Push the hash of every word `n`-gram into `out` (a text shorter than `n` words, but not empty, gives one
    /// shingle of all its words when `short_as_one` is set, and none otherwise).
    pub fn ngrams(&self, n: usize, short_as_one: bool, out: &mut Vec<u64>) {
        let n = n.max(1);
        if self.hashes.len() < n {
            if short_as_one && !self.hashes.is_empty() {
                out.push(ngram_hash(&self.hashes));
            }
            return;
        }
        out.reserve(self.hashes.len() + 1 - n);
        for_each_ngram(&self.hashes, n, |_, hash| out.push(hash));
    }
}

/// The multiplier of the rolling n-gram hash.
const ROLL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Call `f(position, hash)` for every `n`-gram of `words` (at least `n` of them), in order. The hash is a
/// polynomial in the word hashes, rolled forward one word at a time (two multiplications per n-gram whatever
/// `n` is), then mixed; [`ngram_hash`] gives the same value for one n-gram.
#[inline]
pub(crate) fn for_each_ngram(words: &[u64], n: usize, mut f: impl FnMut(usize, u64)) {
    debug_assert!(n >= 1 && words.len() >= n);
    let top = ROLL.wrapping_pow(n as u32 - 1);
    let mut state = 0u64;
    for &word in &words[..n] {
        state = state.wrapping_mul(ROLL).wrapping_add(word);
    }
    let seed = mix(n as u64, WORD_SEED ^ 0x9e37_79b9);
    f(0, fold_mul(state ^ seed, P1));
    for position in 1..=words.len() - n {
        state = state
            .wrapping_sub(words[position - 1].wrapping_mul(top))
            .wrapping_mul(ROLL)
            .wrapping_add(words[position + n - 1]);
        f(position, fold_mul(state ^ seed, P1));
    }
}

/// The hash of one n-gram of word hashes (the value [`for_each_ngram`] gives it).
pub(crate) fn ngram_hash(words: &[u64]) -> u64 {
    let mut state = 0u64;
    for &word in words {
        state = state.wrapping_mul(ROLL).wrapping_add(word);
    }
    fold_mul(state ^ mix(words.len() as u64, WORD_SEED ^ 0x9e37_79b9), P1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Words {
        let mut w = Words::default();
        w.fill(text, true);
        w
    }

    #[test]
    fn case_spacing_and_punctuation_do_not_matter() {
        let a = words("Hello,   World! It's   here.");
        let b = words("hello world it s here");
        assert_eq!(a.hashes, b.hashes);
        assert_eq!(a.exact_hash(), b.exact_hash());
        assert_eq!(a.hashes.len(), 5);
        assert_ne!(a.exact_hash(), words("hello world it s there").exact_hash());
    }

    #[test]
    fn unicode_letters_are_words_and_spans_point_into_the_original() {
        let text = "Ünïcode — ÉTÉ déjà vu";
        let w = words(text);
        assert_eq!(w.hashes.len(), 4);
        assert_eq!(w.hashes, words("ünïcode été DÉJÀ VU").hashes);
        let (s, e) = w.spans[1];
        assert_eq!(&text[s as usize..e as usize], "ÉTÉ");
    }

    #[test]
    fn byte_classes_match_a_byte_by_byte_check() {
        let mut state = 0x1234_5678_9abc_def1u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (word, high) = classify(state);
            for (k, b) in state.to_le_bytes().into_iter().enumerate() {
                let expected = b >= 0x80 || b.is_ascii_alphanumeric();
                assert_eq!(word >> k & 1 == 1, expected, "byte {b:#x}");
                assert_eq!(high >> k & 1 == 1, b >= 0x80, "byte {b:#x}");
            }
        }
        assert_eq!(next_bit(&[0b1000, 0], 0, true), Some(3));
        assert_eq!(next_bit(&[u64::MAX, 0b10], 5, false), Some(64));
        assert_eq!(next_bit(&[0, 0b10], 5, true), Some(65));
        assert_eq!(next_bit(&[0], 5, true), None);
        assert!(any_bit_in(&[0, 1], 60, 65));
        assert!(!any_bit_in(&[0, 1], 60, 64));
        assert!(any_bit_in(&[1 << 63, 0], 0, 64));
    }

    #[test]
    fn words_across_64_byte_blocks_and_mixed_scripts() {
        let text = format!("{} {}", "a".repeat(70), "Straße—über x");
        let w = words(&text);
        assert_eq!(w.hashes.len(), 4);
        assert_eq!(w.spans[0], (0, 70));
        assert_eq!(
            &text[w.spans[1].0 as usize..w.spans[1].1 as usize],
            "Straße"
        );
        assert_eq!(&text[w.spans[2].0 as usize..w.spans[2].1 as usize], "über");
        assert_eq!(w.hashes[1], words("straße").hashes[0]);
        assert_eq!(w.hashes[0], words(&"A".repeat(70)).hashes[0]);
    }

    #[test]
    fn long_and_short_words_hash_apart() {
        let w = words("abcdefgh1 abcdefgh2 abcdefgh abcdefghabcdefgh a aa ab ba");
        let mut distinct = w.hashes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), w.hashes.len());
        assert_eq!(
            words("ABCDEFGHIJKLMNOP").hashes,
            words("abcdefghijklmnop").hashes
        );
        // The ASCII fast path and the general path agree: "école" goes the general way, and an ASCII word next
        // to a non-ASCII separator is the same word as next to a space.
        assert_eq!(words("cafe—bar").hashes, words("cafe bar").hashes);
        assert_eq!(words("ÉCOLE école").hashes[0], words("école").hashes[0]);
        let mut slow = WordHasher::default();
        for b in b"abcdefghij12" {
            slow.push(*b);
        }
        let expected = slow.finish();
        assert_eq!(expected, hash_ascii_word(b"ABCDEFGHIJ12"));
        // At the end of a text (no eight bytes to load) and inside one.
        assert_eq!(
            expected,
            hash_ascii_word_in(b"xx ABCDEFGHIJ12 yyyyyyyy", 3, 15)
        );
        assert_eq!(words("--abcdefghij12").hashes, vec![expected]);
    }

    #[test]
    fn ngrams_slide_over_words() {
        let w = words("a b c d e f");
        let mut out = Vec::new();
        w.ngrams(5, true, &mut out);
        assert_eq!(out.len(), 2);
        let mut short = Vec::new();
        words("a b").ngrams(5, true, &mut short);
        assert_eq!(short.len(), 1);
        let mut none = Vec::new();
        words("a b").ngrams(5, false, &mut none);
        assert!(none.is_empty());
        // The same words in another text give the same n-gram hash.
        let mut other = Vec::new();
        words("x a b c d e").ngrams(5, true, &mut other);
        assert_eq!(other[1], out[0]);
        // The rolled hash of every window is the hash of that window on its own.
        let long = words(
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen",
        );
        let mut rolled = Vec::new();
        for_each_ngram(&long.hashes, 13, |p, h| rolled.push((p, h)));
        assert_eq!(rolled.len(), 2);
        for (p, h) in rolled {
            assert_eq!(h, ngram_hash(&long.hashes[p..p + 13]));
        }
    }
}
