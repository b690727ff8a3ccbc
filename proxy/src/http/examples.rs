//! http/examples: what does a search with positive and negative examples ask the store?
//!
//! Relevance feedback ("more like these") on `POST /api/search`: `positive` and `negative` are
//! indexed images (`{"id":…}`) or vectors (`{"vector":[…]}`), and `strategy` says how they make
//! one ranking (`average_vector` by default, or `best_score`). The query's own vector, when the
//! request has one (`vector`, `text`, …), counts as one more positive; examples alone need at
//! least one positive. Ids become their stored vectors, vectors are checked like a query's, and
//! the images given as examples are left out of the results: the visitor has already seen and
//! judged them. The store runs the ranking ([`VectorStore::recommend`]).

use std::collections::HashMap;

use uuid::Uuid;
use wire::{Example, SearchRequest};

use crate::store::{self, Hit, PayloadFilter, RecommendQuery, Strategy, VectorStore};

use super::errors::{ApiError, unknown_image};

/// The most positive (and, separately, negative) examples one search may give.
pub const MAX_EXAMPLES: usize = 64;

/// A search's examples, taken out of its request and checked for number.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    positive: Vec<Example>,
    negative: Vec<Example>,
    strategy: Strategy,
}

/// One page of a search: how many and from where, and the payload filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub limit: usize,
    pub offset: usize,
    pub filter: PayloadFilter,
}

impl Feedback {
    /// The request's examples (left empty in it), or `None` when it has none; `strategy` alone
    /// changes nothing. More than [`MAX_EXAMPLES`] of either kind is `bad_examples`.
    pub fn take(body: &mut SearchRequest) -> Result<Option<Feedback>, ApiError> {
        for (name, examples) in [("positive", &body.positive), ("negative", &body.negative)] {
            if examples.len() > MAX_EXAMPLES {
                return Err(ApiError::bad(
                    "bad_examples",
                    format!(
                        "`{name}` has {} examples; at most {MAX_EXAMPLES} are allowed",
                        examples.len()
                    ),
                ));
            }
        }
        if body.positive.is_empty() && body.negative.is_empty() {
            return Ok(None);
        }
        Ok(Some(Feedback {
            positive: std::mem::take(&mut body.positive),
            negative: std::mem::take(&mut body.negative),
            strategy: match body.strategy.unwrap_or_default() {
                wire::Strategy::AverageVector => Strategy::AverageVector,
                wire::Strategy::BestScore => Strategy::BestScore,
            },
        }))
    }

    /// One page ranked by the examples, `query` (the request's own vector) counting as one more
    /// positive.
    pub async fn recommend(
        self,
        store: &dyn VectorStore,
        dim: usize,
        query: Option<Vec<f32>>,
        page: Page,
    ) -> Result<Vec<Hit>, ApiError> {
        if query.is_none() && self.positive.is_empty() {
            return Err(ApiError::bad(
                "bad_examples",
                "negative examples alone cannot rank anything: give a query \
                 (`vector` or `text`) or at least one `positive` example",
            ));
        }
        check_disjoint(&self.positive, &self.negative)?;
        let stored = stored_vectors(store, self.positive.iter().chain(&self.negative)).await?;
        let mut positive: Vec<Vec<f32>> = query.into_iter().collect();
        positive.extend(vectors("positive", self.positive, &stored, dim)?);
        let negative = vectors("negative", self.negative, &stored, dim)?;
        let query = RecommendQuery {
            positive,
            negative,
            strategy: self.strategy,
            exclude: stored.values().map(|(point, _)| *point).collect(),
            limit: page.limit,
            offset: page.offset,
            filter: page.filter,
        };
        Ok(store.recommend(&query).await?)
    }
}

/// An image cannot be both like and unlike the results.
fn check_disjoint(positive: &[Example], negative: &[Example]) -> Result<(), ApiError> {
    let id = |e: &Example| match e {
        Example::Id(id) => Some(id.clone()),
        Example::Vector(_) => None,
    };
    let liked: std::collections::HashSet<String> = positive.iter().filter_map(id).collect();
    match negative.iter().filter_map(id).find(|i| liked.contains(i)) {
        Some(both) => Err(ApiError::bad(
            "bad_examples",
            format!("`{both}` is both a positive and a negative example"),
        )),
        None => Ok(()),
    }
}

/// The stored vector of every example given by id, in one read: id → (point, vector). An id
/// not in the index is `unknown_id` (404), as for `/api/similar`.
async fn stored_vectors(
    store: &dyn VectorStore,
    examples: impl Iterator<Item = &Example>,
) -> Result<HashMap<String, (Uuid, Vec<f32>)>, ApiError> {
    let mut ids: Vec<&str> = examples
        .filter_map(|e| match e {
            Example::Id(id) => Some(id.as_str()),
            Example::Vector(_) => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let points: Vec<Uuid> = ids.iter().map(|id| store::point_id(id)).collect();
    let mut found: HashMap<Uuid, Vec<f32>> = store
        .get(&points, true)
        .await?
        .into_iter()
        .filter_map(|r| Some((r.id, r.vector?)))
        .collect();
    ids.into_iter()
        .zip(points)
        .map(|(id, point)| match found.remove(&point) {
            Some(vector) => Ok((id.to_string(), (point, vector))),
            None => Err(unknown_image(id)),
        })
        .collect()
}

/// Each example's vector: the stored one for an id, the given one (checked: the model's length,
/// finite, not all zero) for a vector; `bad_vector` names the example (`positive[2]`).
fn vectors(
    name: &str,
    examples: Vec<Example>,
    stored: &HashMap<String, (Uuid, Vec<f32>)>,
    dim: usize,
) -> Result<Vec<Vec<f32>>, ApiError> {
    examples
        .into_iter()
        .enumerate()
        .map(|(i, example)| match example {
            Example::Id(id) => Ok(stored[&id].1.clone()),
            Example::Vector(vector) => {
                let bad =
                    |why: String| ApiError::bad("bad_vector", format!("`{name}[{i}]`: {why}"));
                store::check_vector(&vector, dim).map_err(|e| bad(e.to_string()))?;
                if vector.iter().all(|v| *v == 0.0) {
                    return Err(bad("the vector is all zeros and has no direction".into()));
                }
                Ok(vector)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(positive: usize, negative: usize) -> SearchRequest {
        SearchRequest {
            positive: vec![Example::Id("a".into()); positive],
            negative: vec![Example::Id("b".into()); negative],
            ..SearchRequest::default()
        }
    }

    #[test]
    fn examples_are_taken_and_counted() {
        assert_eq!(Feedback::take(&mut request(0, 0)).ok(), Some(None));
        let mut body = request(2, 1);
        body.strategy = Some(wire::Strategy::BestScore);
        let feedback = Feedback::take(&mut body).ok().flatten().expect("examples");
        assert_eq!(feedback.strategy, Strategy::BestScore);
        assert_eq!((feedback.positive.len(), feedback.negative.len()), (2, 1));
        assert!(body.positive.is_empty() && body.negative.is_empty());
        assert!(Feedback::take(&mut request(MAX_EXAMPLES, MAX_EXAMPLES)).is_ok());
        for body in [request(MAX_EXAMPLES + 1, 0), request(0, MAX_EXAMPLES + 1)] {
            let e = Feedback::take(&mut body.clone()).expect_err("too many");
            assert!(e.to_string().contains("at most 64"), "{e}");
        }
    }

    #[test]
    fn one_image_cannot_be_both() {
        let a = || vec![Example::Id("a".into())];
        assert!(check_disjoint(&a(), &[Example::Id("b".into())]).is_ok());
        let e = check_disjoint(&a(), &a()).expect_err("both");
        assert!(e.to_string().contains("`a` is both"), "{e}");
    }

    #[test]
    fn vectors_are_checked_and_named() {
        let stored = HashMap::from([("a".to_string(), (Uuid::nil(), vec![1.0, 0.0]))]);
        let ok = vectors(
            "positive",
            vec![Example::Id("a".into()), Example::Vector(vec![0.0, 2.0])],
            &stored,
            2,
        );
        assert_eq!(ok.ok(), Some(vec![vec![1.0, 0.0], vec![0.0, 2.0]]));
        for (bad, says) in [
            (vec![1.0], "`negative[1]`: vector has 1 values"),
            (vec![f32::NAN, 1.0], "not a finite number"),
            (vec![0.0, 0.0], "all zeros"),
        ] {
            let examples = vec![Example::Id("a".into()), Example::Vector(bad)];
            let e = vectors("negative", examples, &stored, 2).expect_err("bad");
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
