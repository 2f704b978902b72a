//! Text normalization and word n-grams, shared by both audits.
//!
//! The normalization ([`NORMALIZATION`]) is: Unicode lowercase; every character that is not a letter or a digit
//! (punctuation, symbols, whitespace) separates words; words are compared by their hash. Two texts that differ
//! only in case, spacing or punctuation therefore have the same words, the same shingles and the same exact hash.

use crate::hash::{combine, hash_bytes, mix};

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
    scratch: Vec<u8>,
}

impl Words {
    /// Tokenize `text` into `self`, replacing what was there; `with_spans` also records byte ranges.
    pub fn fill(&mut self, text: &str, with_spans: bool) {
        self.hashes.clear();
        self.spans.clear();
        self.scratch.clear();
        let bytes = text.as_bytes();
        let mut start = 0usize;
        let mut position = 0usize;
        while position < bytes.len() {
            let byte = bytes[position];
            if byte < 0x80 {
                if byte.is_ascii_alphanumeric() {
                    if self.scratch.is_empty() {
                        start = position;
                    }
                    self.scratch.push(byte.to_ascii_lowercase());
                } else {
                    self.end_word(start, position, with_spans);
                }
                position += 1;
                continue;
            }
            // A multi-byte character: decode it and use Unicode's classes.
            let character = text[position..].chars().next().expect("char boundary");
            let width = character.len_utf8();
            if character.is_alphanumeric() {
                if self.scratch.is_empty() {
                    start = position;
                }
                let mut buffer = [0u8; 4];
                for lower in character.to_lowercase() {
                    self.scratch
                        .extend_from_slice(lower.encode_utf8(&mut buffer).as_bytes());
                }
            } else {
                self.end_word(start, position, with_spans);
            }
            position += width;
        }
        self.end_word(start, bytes.len(), with_spans);
    }

    #[inline]
    fn end_word(&mut self, start: usize, end: usize, with_spans: bool) {
        if self.scratch.is_empty() {
            return;
        }
        self.hashes.push(hash_bytes(&self.scratch, WORD_SEED));
        if with_spans {
            self.spans.push((start as u32, end as u32));
        }
        self.scratch.clear();
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
        let words = &self.hashes;
        if words.len() < n {
            if short_as_one && !words.is_empty() {
                out.push(ngram_hash(words));
            }
            return;
        }
        out.extend(words.windows(n).map(ngram_hash));
    }
}

/// The hash of one n-gram of word hashes.
#[inline]
pub(crate) fn ngram_hash(words: &[u64]) -> u64 {
    let mut state = mix(words.len() as u64, WORD_SEED ^ 0x9e37_79b9);
    for &word in words {
        state = combine(state, word);
    }
    state
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
    }
}
