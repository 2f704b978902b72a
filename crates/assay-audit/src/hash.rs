//! Small, fast, seeded 64-bit hashing (a wyhash-style multiply-fold). Stable across runs and platforms, so band
//! keys emitted by one run join with another's.

/// Multiply two words to 128 bits and fold the halves: the mixing step of wyhash.
#[inline(always)]
pub(crate) fn fold_mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

pub(crate) const P0: u64 = 0xa076_1d64_78bd_642f;
pub(crate) const P1: u64 = 0xe703_7ed1_a0b4_28db;
pub(crate) const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// Mix one word with a seed into a well-spread 64-bit value.
#[inline(always)]
pub(crate) fn mix(value: u64, seed: u64) -> u64 {
    // Two rounds: one multiply-fold of nearby inputs (0, 1, 2, ...) leaves its high and low halves correlated.
    fold_mul(fold_mul(value ^ P0, seed ^ P1) ^ P2, P0)
}

/// Combine a running hash with the next word (order matters).
#[inline(always)]
pub(crate) fn combine(state: u64, value: u64) -> u64 {
    fold_mul(state ^ P2, value ^ P0)
}

/// Map a 32-bit value uniformly onto `0..range` without a division (Lemire's fast range).
#[inline(always)]
pub(crate) fn fast_range(value: u32, range: u32) -> u32 {
    ((u64::from(value) * u64::from(range)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_sensitive() {
        assert_eq!(mix(7, 1), mix(7, 1));
        assert_ne!(mix(7, 1), mix(7, 2));
        assert_ne!(mix(7, 1), mix(8, 1));
        assert_ne!(combine(combine(0, 1), 2), combine(combine(0, 2), 1));
        assert!(fast_range(u32::MAX, 128) < 128);
    }
}
