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
#[inline(always)]
fn hash_ascii_word(word: &[u8]) -> u64 {
    const LOWER: u64 = 0x2020_2020_2020_2020;
    let mut state = 0u64;
    let mut chunks = word.chunks_exact(8);
    for chunk in &mut chunks {
        let packed = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) | LOWER;
        state = fold_mul(state ^ packed, P1);
    }
    let rest = chunks.remainder();
    let mut packed = 0u64;
    for (k, &b) in rest.iter().enumerate() {
        packed |= u64::from(b | 0x20) << (8 * k);
    }
    fold_mul(
        state ^ packed ^ WORD_SEED,
        P2 ^ (word.len() as u64).wrapping_mul(P1),
    )
}

/// ASCII bytes that are part of words (letters and digits).
static ASCII_WORD: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    table
};

impl Words {
    /// Tokenize `text` into `self`, replacing what was there; `with_spans` also records byte ranges.
    pub fn fill(&mut self, text: &str, with_spans: bool) {
        self.hashes.clear();
        self.spans.clear();
        let bytes = text.as_bytes();
        let mut position = 0usize;
        while position < bytes.len() {
            let byte = bytes[position];
            if byte < 0x80 && !ASCII_WORD[byte as usize] {
                position += 1;
                continue;
            }
            let start = position;
            if byte < 0x80 {
                // The fast path: a word of ASCII letters and digits, hashed eight bytes at a time. OR-ing 0x20
                // lowercases ASCII letters and leaves digits as they are.
                let mut end = position;
                while end < bytes.len() && bytes[end] < 0x80 && ASCII_WORD[bytes[end] as usize] {
                    end += 1;
                }
                if end == bytes.len() || bytes[end] < 0x80 {
                    self.hashes.push(hash_ascii_word(&bytes[start..end]));
                    if with_spans {
                        self.spans.push((start as u32, end as u32));
                    }
                    position = end;
                    continue;
                }
                // The word goes on with a non-ASCII character: the general path from its start.
            }
            position = self.unicode_word(text, start, with_spans);
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
