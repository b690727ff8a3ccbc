//! store/cluster: how is a collection laid out on a Qdrant server or cluster?
//!
//! [`ClusterSettings`] are what an operator asks for (shards, replicas, write consistency,
//! on-disk storage, quantization): they are written into a collection when ingest creates it,
//! recorded in its metadata, and ignored by the embedded store. [`Layout`] is what a collection
//! found on a server has, read back from the server; a collection laid out otherwise than asked
//! is still used (its model and dimension decide), and [`Layout::differences`] says what differs
//! so ingest can tell the operator. Pure: no Qdrant types, no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a collection's vectors are compressed for search (Qdrant quantization). The original
/// vectors are kept and candidates are rescored with them, so rankings stay close to exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// Full-precision vectors only.
    None,
    /// Scalar int8: a quarter of the memory, held in RAM.
    Int8,
    /// One bit per dimension: a 32nd of the memory, held in RAM; rescoring matters most here.
    Binary,
    /// Another kind (product or turbo quantization), found on a collection made by hand; never
    /// asked by text2img.
    Other,
}

impl FromStr for Quantization {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "int8" | "scalar" => Ok(Self::Int8),
            "binary" => Ok(Self::Binary),
            _ => Err(format!(
                "`{s}` is not a quantization: use none, int8 or binary"
            )),
        }
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Int8 => "int8",
            Self::Binary => "binary",
            Self::Other => "other",
        })
    }
}

/// The layout asked for a new collection. `None` leaves the choice to the server (its own
/// defaults: one shard per node at creation, replication factor 1, write consistency 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    pub shards: Option<u32>,
    pub replication_factor: Option<u32>,
    pub write_consistency: Option<u32>,
    /// Original vectors and payloads on disk (memory-mapped) instead of in RAM.
    pub on_disk: Option<bool>,
    pub quantization: Option<Quantization>,
}

/// The most shards or replicas accepted (Qdrant's own bound for shards is higher; more than this
/// is almost certainly a typo for a collection of images).
pub const MAX_SHARDS: u32 = 1024;
pub const MAX_REPLICAS: u32 = 16;

impl ClusterSettings {
    /// Whether anything differs from the server's defaults.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Check the combination: write consistency cannot exceed the replication factor (every write
    /// would wait for replicas that do not exist).
    pub fn validate(&self) -> Result<(), String> {
        if let (Some(w), Some(r)) = (self.write_consistency, self.replication_factor)
            && w > r
        {
            return Err(format!(
                "write consistency {w} is more than the replication factor {r}: \
                 a write would wait for replicas that do not exist"
            ));
        }
        if self.write_consistency.is_some_and(|w| w > 1) && self.replication_factor.is_none() {
            return Err(
                "a write consistency above 1 needs a replication factor at least as high".into(),
            );
        }
        Ok(())
    }
}

/// A collection's layout as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub shards: u32,
    pub replication_factor: u32,
    pub write_consistency: u32,
    pub vectors_on_disk: bool,
    pub payload_on_disk: bool,
    pub quantization: Quantization,
}

impl Layout {
    /// What differs from `asked`, one phrase each (`replication factor 1, asked 2`); settings
    /// left to the server are not compared.
    pub fn differences(&self, asked: &ClusterSettings) -> Vec<String> {
        let mut out = Vec::new();
        let mut compare = |what: &str, found: u32, asked: Option<u32>| {
            if let Some(asked) = asked.filter(|a| *a != found) {
                out.push(format!("{what} {found}, asked {asked}"));
            }
        };
        compare("shards", self.shards, asked.shards);
        compare(
            "replication factor",
            self.replication_factor,
            asked.replication_factor,
        );
        compare(
            "write consistency",
            self.write_consistency,
            asked.write_consistency,
        );
        let place = |on_disk: bool| if on_disk { "on disk" } else { "in RAM" };
        if let Some(on_disk) = asked.on_disk {
            for (what, found) in [
                ("vectors", self.vectors_on_disk),
                ("payload", self.payload_on_disk),
            ] {
                if found != on_disk {
                    out.push(format!("{what} {}, asked {}", place(found), place(on_disk)));
                }
            }
        }
        if let Some(asked) = asked.quantization.filter(|q| *q != self.quantization) {
            out.push(format!("quantization {}, asked {asked}", self.quantization));
        }
        out
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = |on_disk: bool| if on_disk { "on disk" } else { "in RAM" };
        write!(
            f,
            "{} shard{}, replication factor {}, write consistency {}, vectors {}, payload {}, \
             quantization {}",
            self.shards,
            if self.shards == 1 { "" } else { "s" },
            self.replication_factor,
            self.write_consistency,
            place(self.vectors_on_disk),
            place(self.payload_on_disk),
            self.quantization
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            shards: 3,
            replication_factor: 1,
            write_consistency: 1,
            vectors_on_disk: false,
            payload_on_disk: false,
            quantization: Quantization::None,
        }
    }

    #[test]
    fn quantization_names() {
        for (text, q) in [
            ("none", Quantization::None),
            ("INT8", Quantization::Int8),
            ("scalar", Quantization::Int8),
            ("binary", Quantization::Binary),
        ] {
            assert_eq!(text.parse::<Quantization>(), Ok(q));
        }
        let err = "pq".parse::<Quantization>().unwrap_err();
        assert!(err.contains("none, int8 or binary"), "{err}");
    }

    #[test]
    fn write_consistency_is_bounded_by_replicas() {
        let ok = ClusterSettings {
            replication_factor: Some(2),
            write_consistency: Some(2),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        let over = ClusterSettings {
            write_consistency: Some(3),
            ..ok
        };
        assert!(
            over.validate()
                .unwrap_err()
                .contains("more than the replication factor 2")
        );
        let alone = ClusterSettings {
            write_consistency: Some(2),
            ..Default::default()
        };
        assert!(alone.validate().is_err());
        assert!(ClusterSettings::default().validate().is_ok());
        assert!(ClusterSettings::default().is_default());
    }

    #[test]
    fn differences_name_each_setting_asked() {
        assert!(layout().differences(&ClusterSettings::default()).is_empty());
        let asked = ClusterSettings {
            shards: Some(3),
            replication_factor: Some(2),
            write_consistency: None,
            on_disk: Some(true),
            quantization: Some(Quantization::Int8),
        };
        assert_eq!(
            layout().differences(&asked),
            [
                "replication factor 1, asked 2",
                "vectors in RAM, asked on disk",
                "payload in RAM, asked on disk",
                "quantization none, asked int8",
            ]
        );
        let same = Layout {
            replication_factor: 2,
            vectors_on_disk: true,
            payload_on_disk: true,
            quantization: Quantization::Int8,
            ..layout()
        };
        assert!(same.differences(&asked).is_empty());
    }

    #[test]
    fn layout_reads_as_one_line() {
        assert_eq!(
            layout().to_string(),
            "3 shards, replication factor 1, write consistency 1, vectors in RAM, payload in RAM, \
             quantization none"
        );
    }
}
