//! retrieve: which stored vectors does a query search, and how do two rankings become one?
//!
//! A collection made from a TSV with captions holds two vectors per point: the image tower's
//! embedding of the picture and the text tower's embedding of its caption
//! ([`CollectionSpec::captions`]). A query vector can be compared with either
//! ([`Vectors::Image`], [`Vectors::Caption`]) or with both, the two rankings fused
//! ([`Vectors::Fused`]) by one of two [`Fusion`] rules:
//!
//! - reciprocal-rank fusion: `Σ 1 / (k + rank)` over the rankings a point is in (`k` = 60, the
//!   constant of Cormack et al.); it ignores the scores, so image and caption cosines, which lie
//!   on different scales (text-to-text cosines run higher), need no calibration;
//! - a weighted sum of the two cosines, `(1 − w)·cos(q, image) + w·cos(q, caption)`, computed
//!   exactly from the stored vectors for every candidate; a point without a caption is scored by
//!   its image cosine alone.
//!
//! Both fuse the top [`fusion_depth`] of each ranking, so a page deep in the results is fused
//! from enough candidates. The pure rules are here; the store is only searched through the trait.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::store::{CollectionSpec, Hit, Result, SearchQuery, VectorName, VectorStore};

/// Which vectors a query is compared with (`wire::Vectors` in requests and answers, mapped in
/// `http/search.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vectors {
    /// The image tower's embeddings of the pictures.
    Image,
    /// The text tower's embeddings of the rows' captions.
    Caption,
    /// Both rankings fused into one by a [`Fusion`] rule.
    Fused,
}

/// The constant of reciprocal-rank fusion.
pub const RRF_K: f32 = 60.0;

/// How each ranking is fused from at least this many candidates.
pub const MIN_FUSION_DEPTH: usize = 100;

/// How a caption ranking and an image ranking become one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal-rank fusion (`rrf`).
    Rrf,
    /// `(1 − w)·image + w·caption` cosines (`weighted:W`, W in 0–1).
    Weighted(f32),
}

impl Default for Fusion {
    /// The rule measured best on the demo data (README, "Evaluation").
    fn default() -> Self {
        Fusion::Rrf
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fusion::Rrf => write!(f, "rrf"),
            Fusion::Weighted(w) => write!(f, "weighted:{w}"),
        }
    }
}

impl FromStr for Fusion {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("fusion `{s}`: use `rrf` or `weighted:W` with W from 0 to 1");
        match s.trim().split_once(':') {
            None if s.trim() == "rrf" => Ok(Fusion::Rrf),
            Some(("weighted", w)) => match w.trim().parse::<f32>() {
                Ok(w) if (0.0..=1.0).contains(&w) => Ok(Fusion::Weighted(w)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

/// Which vectors a query is compared with, and how two rankings are fused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retrieval {
    pub vectors: Vectors,
    pub fusion: Fusion,
}

impl Retrieval {
    /// The image vectors alone (what every collection has).
    pub fn image() -> Self {
        Retrieval {
            vectors: Vectors::Image,
            fusion: Fusion::default(),
        }
    }
}

impl fmt::Display for Retrieval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vectors {
            Vectors::Image => write!(f, "image vectors"),
            Vectors::Caption => write!(f, "caption vectors"),
            Vectors::Fused => write!(f, "image and caption vectors fused ({})", self.fusion),
        }
    }
}

/// The vectors a query searches when it does not say: both, fused, where the collection has
/// caption vectors; else the image vectors.
pub fn default_vectors(collection: &CollectionSpec) -> Vectors {
    if collection.captions {
        Vectors::Fused
    } else {
        Vectors::Image
    }
}

/// Why a query cannot search the vectors it asked for: the collection has no caption vectors.
pub fn check(asked: Vectors, collection: &CollectionSpec) -> std::result::Result<(), String> {
    if asked != Vectors::Image && !collection.captions {
        return Err(format!(
            "collection `{}` has no caption vectors (it was made from a TSV without captions, \
             or before caption vectors existed): search `image`, or re-ingest into a new \
             collection",
            collection.name
        ));
    }
    Ok(())
}

/// How many of each ranking a fused page at `offset` of `limit` results is made from.
pub fn fusion_depth(offset: usize, limit: usize) -> usize {
    MIN_FUSION_DEPTH.max(2 * (offset + limit))
}

/// One page of `query` (its `using` is ignored) compared with `vectors`, best first.
pub async fn search(
    store: &dyn VectorStore,
    query: &SearchQuery,
    Retrieval { vectors, fusion }: Retrieval,
) -> Result<Vec<Hit>> {
    let one = |using: VectorName| SearchQuery {
        using,
        ..query.clone()
    };
    match vectors {
        Vectors::Image => store.search(&one(VectorName::Image)).await,
        Vectors::Caption => store.search(&one(VectorName::Caption)).await,
        Vectors::Fused => {
            let deep = |using| SearchQuery {
                using,
                limit: fusion_depth(query.offset, query.limit),
                offset: 0,
                ..query.clone()
            };
            let images = store.search(&deep(VectorName::Image)).await?;
            let captions = store.search(&deep(VectorName::Caption)).await?;
            let fused = match fusion {
                Fusion::Rrf => rrf(images, captions),
                Fusion::Weighted(w) => {
                    weighted(store, &query.vector, w, candidates(images, captions)).await?
                }
            };
            Ok(fused
                .into_iter()
                .skip(query.offset)
                .take(query.limit)
                .collect())
        }
    }
}

/// Reciprocal-rank fusion of two rankings, best first (ranks count from 1); ties keep the order
/// in which points were first met, the image ranking's first. Scores become the fused ones.
pub fn rrf(images: Vec<Hit>, captions: Vec<Hit>) -> Vec<Hit> {
    let mut fused: Vec<Hit> = Vec::new();
    let mut at: HashMap<Uuid, usize> = HashMap::new();
    for ranking in [images, captions] {
        for (rank, hit) in ranking.into_iter().enumerate() {
            let share = 1.0 / (RRF_K + (rank + 1) as f32);
            match at.get(&hit.id) {
                Some(&i) => fused[i].score += share,
                None => {
                    at.insert(hit.id, fused.len());
                    fused.push(Hit {
                        score: share,
                        ..hit
                    });
                }
            }
        }
    }
    sort_best_first(&mut fused);
    fused
}

/// The points of both rankings, each once (the image ranking's first).
fn candidates(images: Vec<Hit>, captions: Vec<Hit>) -> Vec<Hit> {
    let mut seen = std::collections::HashSet::new();
    images
        .into_iter()
        .chain(captions)
        .filter(|h| seen.insert(h.id))
        .collect()
}

/// A point's image and caption vectors, as read back.
type Stored = (Option<Vec<f32>>, Option<Vec<f32>>);

/// `candidates` scored `(1 − w)·cos(q, image) + w·cos(q, caption)` from their stored vectors,
/// best first.
async fn weighted(
    store: &dyn VectorStore,
    query: &[f32],
    w: f32,
    candidates: Vec<Hit>,
) -> Result<Vec<Hit>> {
    let ids: Vec<Uuid> = candidates.iter().map(|h| h.id).collect();
    let vectors: HashMap<Uuid, Stored> = store
        .get(&ids, true)
        .await?
        .into_iter()
        .map(|r| (r.id, (r.vector, r.caption)))
        .collect();
    let mut scored: Vec<Hit> = candidates
        .into_iter()
        .filter_map(|hit| {
            let (image, caption) = vectors.get(&hit.id)?;
            let image = cosine(query, image.as_deref()?);
            let caption = caption.as_deref().map_or(image, |c| cosine(query, c));
            Some(Hit {
                score: (1.0 - w) * image + w * caption,
                ..hit
            })
        })
        .collect();
    sort_best_first(&mut scored);
    Ok(scored)
}

/// Highest score first; the sort is stable, so equal scores keep their order.
fn sort_best_first(hits: &mut [Hit]) {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
}

/// The cosine of two vectors (0 when either has no length).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let n = norm(a) * norm(b);
    if n > 0.0 { dot / n } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(n: u128, score: f32) -> Hit {
        Hit {
            id: Uuid::from_u128(n),
            score,
            payload: Default::default(),
        }
    }

    fn ids(hits: &[Hit]) -> Vec<u128> {
        hits.iter().map(|h| h.id.as_u128()).collect()
    }

    #[test]
    fn rrf_rewards_agreement_and_ignores_the_scales() {
        // 2 is second in both; 1 and 3 are first in one ranking only and absent from the other.
        let images = vec![hit(1, 0.31), hit(2, 0.30)];
        let captions = vec![hit(3, 0.92), hit(2, 0.91)];
        let fused = rrf(images, captions);
        assert_eq!(ids(&fused), [2, 1, 3]);
        let expected = 2.0 / (RRF_K + 2.0);
        assert!(
            (fused[0].score - expected).abs() < 1e-7,
            "{}",
            fused[0].score
        );
        // 1 and 3 tie: the image ranking's is first.
        assert_eq!(fused[1].score, fused[2].score);
    }

    #[test]
    fn fusion_is_read_from_its_words() {
        assert_eq!("rrf".parse::<Fusion>(), Ok(Fusion::Rrf));
        assert_eq!(
            "weighted:0.25".parse::<Fusion>(),
            Ok(Fusion::Weighted(0.25))
        );
        for bad in [
            "",
            "weighted",
            "weighted:1.5",
            "weighted:-0.1",
            "weighted:x",
            "sum",
        ] {
            let err = bad.parse::<Fusion>().unwrap_err();
            assert!(err.contains("rrf"), "{bad}: {err}");
        }
        assert_eq!(Fusion::Weighted(0.25).to_string(), "weighted:0.25");
    }

    #[test]
    fn caption_vectors_are_asked_only_of_a_collection_that_has_them() {
        let mut spec = CollectionSpec {
            name: "images".into(),
            dim: 4,
            model: "m".into(),
            captions: false,
        };
        assert_eq!(default_vectors(&spec), Vectors::Image);
        assert!(check(Vectors::Image, &spec).is_ok());
        for asked in [Vectors::Caption, Vectors::Fused] {
            let err = check(asked, &spec).unwrap_err();
            assert!(err.contains("no caption vectors"), "{err}");
        }
        spec.captions = true;
        assert_eq!(default_vectors(&spec), Vectors::Fused);
        assert!(check(Vectors::Caption, &spec).is_ok());
    }

    #[test]
    fn deep_pages_are_fused_from_deeper_rankings() {
        assert_eq!(fusion_depth(0, 20), MIN_FUSION_DEPTH);
        assert_eq!(fusion_depth(200, 20), 440);
    }

    #[test]
    fn cosine_is_scale_free() {
        assert!((cosine(&[1.0, 0.0], &[3.0, 0.0]) - 1.0).abs() < 1e-7);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 0.0]), 0.0);
    }
}
