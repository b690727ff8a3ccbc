//! cutoff/samples: which results have been judged, and how did each score for its query?
//!
//! The judgments are plain `(query, image, relevant)` triples ([`Judgment`]): the crowd's
//! majority per (query, image), a reviewer's verdict winning over it ([`judgments_from_labels`];
//! a flag counts as not relevant, a tie is left out, a reviewer's `skip` leaves the majority). A judged result's score is the cosine of its query's vector and
//! the image's stored vector; its query's top score is the best hit of a search with that
//! vector. A query's vector is the one its votes carried (the browser sends it), else the server's
//! text encoder's. The work is bounded: at most [`MAX_QUERIES`] queries (the most recently voted
//! on) and [`MAX_PAIRS`] judged results, one search per query and one batched lookup per
//! [`GET_BATCH`] images. Queries whose vector has the wrong length (a vote cast under another
//! model) and images no longer in the index are left out.

use std::collections::{BTreeMap, HashMap};

use crate::labels::Label;
use crate::model::TextEncoder;
use crate::payload::external_id;
use crate::review::{Review, verdicts};
use crate::store::{self, SearchQuery, StoreError, VectorStore};

use super::Sample;

/// Queries used in one fit, the most recently voted on first.
pub const MAX_QUERIES: usize = 1_000;
/// Judged results used in one fit.
pub const MAX_PAIRS: usize = 20_000;
/// Images looked up in one store call.
pub const GET_BATCH: usize = 256;

/// One judged result: is `image_id` relevant to `query`?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgment {
    pub query: String,
    pub image_id: String,
    pub relevant: bool,
}

/// The judgments the labels give (the crowd's majority per query and image, a reviewer's
/// verdict winning over it; `skip` leaves the majority), in order: the most recently voted-on
/// queries first, each query's images by id; bounded by [`MAX_QUERIES`] and [`MAX_PAIRS`].
pub fn judgments_from_labels(labels: &[Label], reviews: &[Review]) -> Vec<Judgment> {
    let verdicts = verdicts(labels, reviews);
    let order = recent_queries(labels);
    let mut by_query: BTreeMap<usize, Vec<Judgment>> = BTreeMap::new();
    for ((query, image_id), verdict) in verdicts {
        let (Some(relevant), Some(rank)) = (verdict, order.get(&query)) else {
            continue;
        };
        by_query.entry(*rank).or_default().push(Judgment {
            query,
            image_id,
            relevant,
        });
    }
    by_query
        .into_values()
        .flat_map(|mut judged| {
            judged.sort_by(|a, b| a.image_id.cmp(&b.image_id));
            judged
        })
        .take(MAX_PAIRS)
        .collect()
}

/// Each query's place among the [`MAX_QUERIES`] most recently voted on (0: the latest).
fn recent_queries(labels: &[Label]) -> HashMap<String, usize> {
    let mut latest: HashMap<&str, u64> = HashMap::new();
    for label in labels {
        let t = latest.entry(&label.query).or_default();
        *t = (*t).max(label.time_ms);
    }
    let mut queries: Vec<(&str, u64)> = latest.into_iter().collect();
    queries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    queries
        .into_iter()
        .take(MAX_QUERIES)
        .enumerate()
        .map(|(rank, (q, _))| (q.to_owned(), rank))
        .collect()
}

/// The vector of each judged query: the latest vote's that carried one of length `dim`, else
/// the encoder's (when there is one and it succeeds). Runs the encoder: call it off the async
/// threads.
pub fn query_vectors(
    judgments: &[Judgment],
    labels: &[Label],
    encoder: Option<&dyn TextEncoder>,
    dim: usize,
) -> HashMap<String, Vec<f32>> {
    let mut vectors: HashMap<String, Vec<f32>> = HashMap::new();
    for label in labels {
        if let Some(v) = &label.query_vector
            && store::check_vector(v, dim).is_ok()
        {
            vectors.insert(label.query.clone(), v.clone());
        }
    }
    let mut out = HashMap::new();
    for judgment in judgments {
        if out.contains_key(&judgment.query) {
            continue;
        }
        let vector = match vectors.remove(&judgment.query) {
            Some(v) => Some(v),
            None => encoder
                .and_then(|e| e.embed_text(&judgment.query).ok())
                .filter(|v| store::check_vector(v, dim).is_ok()),
        };
        if let Some(v) = vector {
            out.insert(judgment.query.clone(), v);
        }
    }
    out
}

/// The samples: each judgment whose query has a vector and whose image is in the index, with
/// its score and its query's top score.
pub async fn samples(
    judgments: &[Judgment],
    vectors: &HashMap<String, Vec<f32>>,
    store: &dyn VectorStore,
) -> Result<Vec<Sample>, StoreError> {
    let tops = top_scores(vectors, store).await?;
    let images = image_vectors(judgments, store).await?;
    Ok(judgments
        .iter()
        .filter_map(|j| {
            let query = vectors.get(&j.query)?;
            let image = images.get(&j.image_id)?;
            Some(Sample {
                query: j.query.clone(),
                score: cosine(query, image)?,
                top: *tops.get(&j.query)?,
                relevant: j.relevant,
            })
        })
        .collect())
}

/// Each query's best score in the whole collection (no filter).
async fn top_scores(
    vectors: &HashMap<String, Vec<f32>>,
    store: &dyn VectorStore,
) -> Result<HashMap<String, f32>, StoreError> {
    let mut tops = HashMap::new();
    for (query, vector) in vectors {
        let hits = store
            .search(&SearchQuery {
                using: crate::store::VectorName::Image,
                vector: vector.clone(),
                limit: 1,
                offset: 0,
                filter: Default::default(),
            })
            .await?;
        if let Some(hit) = hits.first() {
            tops.insert(query.clone(), hit.score);
        }
    }
    Ok(tops)
}

/// The stored vector of each judged image still in the index, by row id.
async fn image_vectors(
    judgments: &[Judgment],
    store: &dyn VectorStore,
) -> Result<HashMap<String, Vec<f32>>, StoreError> {
    let mut ids: Vec<&str> = judgments.iter().map(|j| j.image_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::new();
    for batch in ids.chunks(GET_BATCH) {
        let points: Vec<_> = batch.iter().map(|id| store::point_id(id)).collect();
        for record in store.get(&points, true).await? {
            if let Some(vector) = record.vector {
                out.insert(external_id(record.id, &record.payload), vector);
            }
        }
    }
    Ok(out)
}

/// Cosine similarity; `None` for vectors of different lengths or with no length.
pub fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() {
        return None;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let cos = dot / (norm(a) * norm(b));
    cos.is_finite().then_some(cos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Verdict, label_id};
    use crate::review::Decision;

    fn label(client: &str, query: &str, image: &str, verdict: Verdict, time_ms: u64) -> Label {
        Label {
            label_id: label_id(client, query, image),
            query: query.into(),
            query_vector: None,
            image_id: image.into(),
            label: verdict,
            note: None,
            client_id: client.into(),
            time_ms,
        }
    }

    #[test]
    fn judgments_are_the_majority_latest_queries_first() {
        let labels = [
            label("a", "old", "x", Verdict::Relevant, 1),
            label("a", "new", "y", Verdict::Irrelevant, 5),
            label("a", "new", "x", Verdict::Relevant, 2),
            label("b", "new", "x", Verdict::Flag, 3),
            label("c", "new", "x", Verdict::Flag, 4),
            label("a", "tie", "z", Verdict::Relevant, 0),
            label("b", "tie", "z", Verdict::Irrelevant, 0),
        ];
        let j = |q: &str, i: &str, relevant| Judgment {
            query: q.into(),
            image_id: i.into(),
            relevant,
        };
        assert_eq!(
            judgments_from_labels(&labels, &[]),
            [
                j("new", "x", false),
                j("new", "y", false),
                j("old", "x", true)
            ]
        );
    }

    #[test]
    fn a_reviewers_verdict_wins_over_the_majority_and_skip_leaves_it() {
        let labels = [
            label("a", "q", "x", Verdict::Relevant, 1),
            label("b", "q", "x", Verdict::Relevant, 2),
            label("a", "q", "y", Verdict::Flag, 3),
            label("a", "q", "z", Verdict::Relevant, 4),
            label("b", "q", "z", Verdict::Irrelevant, 5),
        ];
        let review = |image: &str, verdict| Review {
            query: "q".into(),
            image_id: image.into(),
            verdict,
            note: None,
            time_ms: 6,
        };
        let reviews = [
            review("x", Decision::Irrelevant),
            review("y", Decision::Skip),
            review("z", Decision::Relevant),
        ];
        let judged: Vec<(String, bool)> = judgments_from_labels(&labels, &reviews)
            .into_iter()
            .map(|j| (j.image_id, j.relevant))
            .collect();
        assert_eq!(
            judged,
            [("x".into(), false), ("y".into(), false), ("z".into(), true)]
        );
    }

    #[test]
    fn judgments_keep_the_most_recently_voted_queries() {
        let labels: Vec<Label> = (0..MAX_QUERIES as u64 + 5)
            .map(|t| label("a", &format!("q{t}"), "x", Verdict::Relevant, t))
            .collect();
        let judged = judgments_from_labels(&labels, &[]);
        assert_eq!(judged.len(), MAX_QUERIES);
        assert_eq!(judged[0].query, format!("q{}", MAX_QUERIES + 4));
        assert!(judged.iter().all(|j| j.query != "q4" && j.query != "q0"));
        assert!(judged.iter().any(|j| j.query == "q5"));
    }

    #[test]
    fn query_vectors_skip_the_wrong_length_and_fall_back_to_the_encoder() {
        struct Fixed;
        impl TextEncoder for Fixed {
            fn embed_text(&self, text: &str) -> Result<Vec<f32>, crate::model::EncodeError> {
                match text {
                    "broken" => Err(crate::model::EncodeError("no".into())),
                    _ => Ok(vec![0.0, 1.0]),
                }
            }
        }
        let mut stored = label("a", "stored", "x", Verdict::Relevant, 0);
        stored.query_vector = Some(vec![1.0, 0.0]);
        let mut old_model = label("a", "old model", "x", Verdict::Relevant, 0);
        old_model.query_vector = Some(vec![1.0, 0.0, 0.0]);
        let labels = [
            stored,
            old_model,
            label("a", "broken", "x", Verdict::Relevant, 0),
        ];
        let judgments = judgments_from_labels(&labels, &[]);
        let with = query_vectors(&judgments, &labels, Some(&Fixed), 2);
        assert_eq!(with["stored"], [1.0, 0.0]);
        assert_eq!(with["old model"], [0.0, 1.0], "re-encoded");
        assert!(!with.contains_key("broken"));
        let without = query_vectors(&judgments, &labels, None, 2);
        assert_eq!(without.keys().collect::<Vec<_>>(), ["stored"]);
    }

    #[test]
    fn cosine_of_odd_vectors_is_none() {
        assert_eq!(cosine(&[1.0, 0.0], &[2.0, 0.0]), Some(1.0));
        assert_eq!(cosine(&[1.0, 0.0], &[1.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), None);
    }
}
