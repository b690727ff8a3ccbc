//! The text tower's precisions, as the browser bundle, `GET /api/model` and the page name them:
//! `f32`, `f16`, `q8`, `q5`. One definition of the names: `clip::export::Variant` is this type
//! (clip adds the file names), the worker and the page pass it around, the proxy picks its default
//! with [`Variant::preferred`].

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Precision of an exported text tower.
///
/// Ordered by name (`f16` < `f32` < `q5` < `q8`), so a map keyed by `Variant` lists its entries
/// in the same order as one keyed by the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// f32 safetensors: exactly the checkpoint's numbers.
    F32,
    /// f16 safetensors: half the bytes, cosine to f32 ≥ 0.999.
    F16,
    /// GGUF with `Q8_0` matrices (the token embedding apart, in `Q8_0` rows fetched as a query
    /// needs them): about a sixth of f32.
    Q8,
    /// GGUF with `Q5_0` matrices (the same token rows apart as `q8`): about a tenth of f32, the
    /// default download.
    Q5,
}

impl Variant {
    /// All variants, smallest download first: also the order of preference for the default.
    pub const ALL: [Variant; 4] = [Variant::Q5, Variant::Q8, Variant::F16, Variant::F32];

    /// The name on the wire and in file names: `f32`, `f16`, `q8` or `q5`.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::F32 => "f32",
            Variant::F16 => "f16",
            Variant::Q8 => "q8",
            Variant::Q5 => "q5",
        }
    }

    /// Parses `f32`, `f16`, `q8` or `q5`.
    pub fn parse(name: &str) -> Result<Self, UnknownVariant> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == name)
            .ok_or_else(|| UnknownVariant(name.to_string()))
    }

    /// The default among `available`: the first of [`Variant::ALL`] present (q5 > q8 > f16 >
    /// f32), or `None` when nothing is available.
    pub fn preferred(available: impl IntoIterator<Item = Variant>) -> Option<Variant> {
        let available: Vec<Variant> = available.into_iter().collect();
        Self::ALL.into_iter().find(|v| available.contains(v))
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Variant {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialOrd for Variant {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Variant {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// A variant name that is none of `f32`, `f16`, `q8`, `q5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant(pub String);

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown model variant {:?} (expected f32, f16, q8 or q5)",
            self.0
        )
    }
}

impl std::error::Error for UnknownVariant {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for v in Variant::ALL {
            assert_eq!(Variant::parse(v.as_str()), Ok(v));
            assert_eq!(v.to_string().parse::<Variant>(), Ok(v));
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
        let e = Variant::parse("q2").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown model variant "q2" (expected f32, f16, q8 or q5)"#
        );
    }

    #[test]
    fn the_default_prefers_the_smallest_download() {
        use Variant::*;
        assert_eq!(Variant::preferred([F32, F16, Q8, Q5]), Some(Q5));
        assert_eq!(Variant::preferred([F32, F16, Q8]), Some(Q8));
        assert_eq!(Variant::preferred([F32, F16]), Some(F16));
        assert_eq!(Variant::preferred([F32]), Some(F32));
        assert_eq!(Variant::preferred([]), None);
    }

    #[test]
    fn order_follows_the_names() {
        let mut all = Variant::ALL;
        all.sort();
        assert_eq!(all.map(Variant::as_str), ["f16", "f32", "q5", "q8"]);
    }
}
