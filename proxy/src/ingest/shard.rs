//! ingest/shard: which rows of a TSV does this machine ingest?
//!
//! `ingest --shard K/N` takes share K of N: the rows whose id hashes to K. N machines running
//! shares 1/N … N/N on one TSV into one cluster together ingest every row exactly once, each
//! resumable on its own (a point's id is fixed by its row id, so shares never touch each other's
//! points). The hash is the first 8 bytes of the SHA-256 of the row id, big-endian, modulo N:
//! the same on every machine, platform and Rust version (never Rust's randomised hasher).
//! A stored point belongs to the share of its payload's `id`, so `--prune --shard K/N` prunes
//! only that share's points, and the N shares' prunes together are one whole prune.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The most shares a TSV can be cut into.
pub const MAX_SHARDS: u32 = 1024;

/// Share `index` of `count` (1 ≤ index ≤ count ≤ [`MAX_SHARDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A `--shard` value that is not `K/N` with 1 ≤ K ≤ N ≤ [`MAX_SHARDS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}`: {reason}; write K/N, e.g. 2/4 for the second of four shares")]
pub struct ShardError {
    value: String,
    reason: &'static str,
}

impl Shard {
    /// Share `index` (1-based) of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, &'static str> {
        match (index, count) {
            (_, 0) => Err("N must be at least 1"),
            (_, n) if n > MAX_SHARDS => Err("N must be at most 1024"),
            (0, _) => Err("K must be at least 1"),
            (k, n) if k > n => Err("K must be at most N"),
            (index, count) => Ok(Self { index, count }),
        }
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether the row (or point) with this id is in this share.
    pub fn contains(self, row_id: &str) -> bool {
        share_of(row_id, self.count) == self.index
    }
}

/// The share (1-based) of `count` that the row with this id belongs to.
pub fn share_of(row_id: &str, count: u32) -> u32 {
    let digest = Sha256::digest(row_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // `count` ≤ MAX_SHARDS, so the remainder fits a u32.
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32 + 1
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason| ShardError {
            value: value.to_string(),
            reason,
        };
        let (k, n) = value.split_once('/').ok_or_else(|| err("no `/`"))?;
        let number = |s: &str| {
            // Digits only: no sign, no spaces, no `+1`.
            if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("K and N must be whole numbers"));
            }
            s.parse::<u32>()
                .map_err(|_| err("K and N must be whole numbers"))
        };
        Shard::new(number(k)?, number(n)?).map_err(err)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash is fixed: these shares are what every machine computes, now and later (from
    /// SHA-256: "a" → ca978112ca1bbdca…, "img0" → dd9c8e485df97a20…). A change of hash, of byte
    /// order or of numbering moves them.
    #[test]
    fn shares_are_stable() {
        for (id, of_2, of_3, of_7, of_1024) in [
            ("a", 1, 2, 5, 459),
            ("img0", 1, 2, 1, 545),
            ("img1", 2, 2, 5, 628),
            ("img2", 2, 3, 3, 1002),
            ("img3", 1, 2, 3, 393),
            ("cat-042", 2, 3, 1, 448),
        ] {
            let got = [2, 3, 7, 1024].map(|n| share_of(id, n));
            assert_eq!(got, [of_2, of_3, of_7, of_1024], "{id}");
            assert_eq!(share_of(id, 1), 1);
        }
    }

    #[test]
    fn every_id_is_in_exactly_one_share() {
        for id in ["a", "img0", "", "ünïcode", "x/y"] {
            for count in [1, 2, 3, 10] {
                let holders = (1..=count)
                    .filter(|&k| {
                        Shard::new(k, count)
                            .map(|s| s.contains(id))
                            .unwrap_or(false)
                    })
                    .count();
                assert_eq!(holders, 1, "{id:?} of {count}");
            }
        }
    }

    #[test]
    fn shares_are_balanced() {
        let count = 4;
        let mut sizes = [0usize; 4];
        for i in 0..4000 {
            sizes[share_of(&format!("img{i}"), count) as usize - 1] += 1;
        }
        for size in sizes {
            assert!((900..=1100).contains(&size), "{sizes:?}");
        }
    }

    #[test]
    fn values_parse_or_say_what_is_wrong() {
        assert_eq!(
            "2/4".parse::<Shard>(),
            Shard::new(2, 4).map_err(|_| unreachable!())
        );
        assert_eq!(
            "1/1".parse::<Shard>().map(|s| s.to_string()),
            Ok("1/1".into())
        );
        assert_eq!("1024/1024".parse::<Shard>().map(|s| s.count()), Ok(1024));
        for (bad, says) in [
            ("", "no `/`"),
            ("3", "no `/`"),
            ("0/4", "K must be at least 1"),
            ("5/4", "K must be at most N"),
            ("1/0", "N must be at least 1"),
            ("1/1025", "N must be at most 1024"),
            ("-1/4", "whole numbers"),
            ("+1/4", "whole numbers"),
            (" 1/4", "whole numbers"),
            ("1/4/2", "whole numbers"),
            ("a/b", "whole numbers"),
            ("1.5/4", "whole numbers"),
            ("99999999999/4", "whole numbers"),
        ] {
            let e = bad.parse::<Shard>().expect_err(bad).to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(e.contains("K/N"), "{bad:?}: {e}");
        }
    }
}
