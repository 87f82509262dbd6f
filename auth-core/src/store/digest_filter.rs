//! Every stored token's digest in a few bits each (a Bloom filter), so that a token that does
//! not exist is refused from memory: "not in the filter" is certain, "maybe" asks the store.
//!
//! Digests are keyed MACs (uniformly distributed), so the filter's bit positions are read
//! straight from a digest's bytes, with no further hashing.

use crate::secret::SecretDigest;

/// Bits per token the filter is sized for: with [`PROBES`] probes, about 0.2% of unknown tokens
/// get a "maybe" (and one store read, then the negative cache) while the filter is within size.
const BITS_PER_TOKEN: usize = 16;
const PROBES: usize = 4;
/// The least size, so that a small store's filter takes new tokens without filling up.
const MIN_TOKENS: usize = 1024;

pub(crate) struct DigestFilter {
    bits: Vec<u64>,
    /// Bit count minus one (a power of two).
    mask: u64,
}

impl DigestFilter {
    /// A filter holding `digests`.
    pub fn of(digests: &[SecretDigest]) -> Self {
        let bit_count = (digests.len().max(MIN_TOKENS) * BITS_PER_TOKEN).next_power_of_two();
        let mut filter = DigestFilter {
            bits: vec![0; bit_count / 64],
            mask: bit_count as u64 - 1,
        };
        for digest in digests {
            filter.insert(digest);
        }
        filter
    }

    fn positions(&self, digest: &SecretDigest) -> [u64; PROBES] {
        std::array::from_fn(|probe| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&digest.0[probe * 8..probe * 8 + 8]);
            u64::from_le_bytes(word) & self.mask
        })
    }

    fn insert(&mut self, digest: &SecretDigest) {
        for bit in self.positions(digest) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// False only if no digest given to [`DigestFilter::of`] is `digest`.
    pub fn may_contain(&self, digest: &SecretDigest) -> bool {
        self.positions(digest)
            .iter()
            .all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bits.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testkit::digest;

    #[test]
    fn every_digest_given_is_found_and_few_others_are() {
        let known: Vec<SecretDigest> = (0..5000).map(|i| digest(&format!("known-{i}"))).collect();
        let filter = DigestFilter::of(&known);
        assert!(known.iter().all(|d| filter.may_contain(d)));
        let false_maybes = (0..10_000)
            .filter(|i| filter.may_contain(&digest(&format!("unknown-{i}"))))
            .count();
        assert!(
            false_maybes < 100,
            "{false_maybes} of 10,000 unknown digests"
        );
        assert!(filter.bytes() <= 5000 * 4, "{} bytes", filter.bytes());
    }
}
