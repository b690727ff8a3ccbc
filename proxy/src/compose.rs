//! compose: which one vector does a weighted query mean?
//!
//! A composed query (`red car -night`, `2:dog + beach`, `+similar:ID`) arrives as terms, each a
//! weight and a vector (encoded in the browser) or an indexed image's id. Its vector is
//! `Σ weight × unit(term)`, scaled to unit length, and searched like any query vector (cosine).
//! [`check`] and [`compose`] are pure; [`resolve`] is the one step that reads the store (the
//! images' vectors, in one `get`).

use std::collections::HashMap;

use crate::store::{self, StoreError, VectorStore};

/// Terms in one query.
pub const MAX_TERMS: usize = 8;
/// The largest weight, either sign.
pub const MAX_WEIGHT: f32 = 10.0;
/// A sum shorter than this fraction of `Σ |weight|` has cancelled out: its direction is noise.
const CANCELLED: f64 = 1e-4;

/// What a term is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Vector(Vec<f32>),
    /// An indexed image by its row id.
    Image(String),
}

/// One weighted term.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub weight: f32,
    pub part: Part,
}

/// Why terms make no query, by class: the client's mistake, an id not in the index, or the store.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{0}")]
    Bad(String),
    #[error("term {term}: no image with id `{id}` in the index")]
    UnknownId { term: usize, id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn bad(message: impl Into<String>) -> ComposeError {
    ComposeError::Bad(message.into())
}

/// The bounds that need no store: how many terms, their weights, their vectors' shape, and at
/// least one positive term (an all-negative query ranks by unlikeness to everything asked).
pub fn check(terms: &[Term], dim: usize) -> Result<(), ComposeError> {
    if terms.is_empty() || terms.len() > MAX_TERMS {
        return Err(bad(format!(
            "`terms` has {} terms; give 1 to {MAX_TERMS}",
            terms.len()
        )));
    }
    for (n, term) in terms.iter().enumerate().map(|(i, t)| (i + 1, t)) {
        let w = term.weight;
        if !w.is_finite() || w == 0.0 || w.abs() > MAX_WEIGHT {
            return Err(bad(format!(
                "term {n}: weight {w} must be a number between -{MAX_WEIGHT} and {MAX_WEIGHT}, not 0"
            )));
        }
        match &term.part {
            Part::Vector(v) => {
                store::check_vector(v, dim).map_err(|e| bad(format!("term {n}: {e}")))?
            }
            Part::Image(id) if id.is_empty() => {
                return Err(bad(format!("term {n}: the image id is empty")));
            }
            Part::Image(_) => {}
        }
    }
    if !terms.iter().any(|t| t.weight > 0.0) {
        return Err(bad(
            "every term's weight is negative; give at least one positive term",
        ));
    }
    Ok(())
}

/// Each term as (weight, vector): images' vectors read from the store in one call.
pub async fn resolve(
    store: &dyn VectorStore,
    terms: Vec<Term>,
) -> Result<Vec<(f32, Vec<f32>)>, ComposeError> {
    let ids: Vec<_> = terms
        .iter()
        .filter_map(|t| match &t.part {
            Part::Image(id) => Some(store::point_id(id)),
            Part::Vector(_) => None,
        })
        .collect();
    let stored: HashMap<_, _> = if ids.is_empty() {
        HashMap::new()
    } else {
        store
            .get(&ids, true)
            .await?
            .into_iter()
            .filter_map(|r| Some((r.id, r.vector?)))
            .collect()
    };
    let mut weighted = Vec::with_capacity(terms.len());
    for (n, term) in terms.into_iter().enumerate() {
        let vector = match term.part {
            Part::Vector(v) => v,
            Part::Image(id) => match stored.get(&store::point_id(&id)) {
                Some(v) => v.clone(),
                None => return Err(ComposeError::UnknownId { term: n + 1, id }),
            },
        };
        weighted.push((term.weight, vector));
    }
    Ok(weighted)
}

/// `Σ weight × unit(vector)`, scaled to unit length (summed in f64). A zero vector has no
/// direction, and a sum that cancels out (`dog -dog`) is no query: both are refused.
pub fn compose(weighted: &[(f32, Vec<f32>)]) -> Result<Vec<f32>, ComposeError> {
    let dim = weighted.first().map_or(0, |(_, v)| v.len());
    let mut sum = vec![0f64; dim];
    for (n, (weight, vector)) in weighted.iter().enumerate() {
        if vector.len() != dim {
            return Err(bad(format!(
                "term {}: vector has {} values, the others {dim}",
                n + 1,
                vector.len()
            )));
        }
        let norm = norm(vector.iter().map(|&x| f64::from(x)));
        if norm == 0.0 || !norm.is_finite() {
            return Err(bad(format!(
                "term {}: the vector is all zeros and has no direction",
                n + 1
            )));
        }
        let scale = f64::from(*weight) / norm;
        for (s, &x) in sum.iter_mut().zip(vector) {
            *s += scale * f64::from(x);
        }
    }
    let total: f64 = weighted.iter().map(|(w, _)| f64::from(w.abs())).sum();
    let length = norm(sum.iter().copied());
    if !length.is_finite() || length <= CANCELLED * total {
        return Err(bad(
            "the weighted terms cancel out: their sum is (nearly) the zero vector",
        ));
    }
    Ok(sum.iter().map(|&s| (s / length) as f32).collect())
}

fn norm(values: impl Iterator<Item = f64>) -> f64 {
    values.map(|x| x * x).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(weight: f32, v: &[f32]) -> Term {
        Term {
            weight,
            part: Part::Vector(v.to_vec()),
        }
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn the_sum_of_unit_vectors_weighted_and_scaled_to_unit_length() {
        // unit([3, 4]) = [0.6, 0.8]; 2 × that + 1 × [0, 1] = [1.2, 2.6], length √8.2.
        let v = compose(&[(2.0, vec![3.0, 4.0]), (1.0, vec![0.0, 5.0])]).expect("composed");
        let len = 8.2f32.sqrt();
        assert!(close(&v, &[1.2 / len, 2.6 / len]), "{v:?}");
        // A negative term pulls away: [1, 0] − [0, 1] = [1, −1].
        let v = compose(&[(1.0, vec![2.0, 0.0]), (-1.0, vec![0.0, 7.0])]).expect("composed");
        let h = 0.5f32.sqrt();
        assert!(close(&v, &[h, -h]), "{v:?}");
        // One term is its own direction, whatever its weight.
        let v = compose(&[(0.001, vec![0.0, 2.0])]).expect("composed");
        assert!(close(&v, &[0.0, 1.0]), "{v:?}");
    }

    #[test]
    fn no_direction_is_refused() {
        let says = |weighted: &[(f32, Vec<f32>)], words: &str| {
            let e = compose(weighted).expect_err("refused").to_string();
            assert!(e.contains(words), "{e}");
        };
        says(
            &[(1.0, vec![1.0, 2.0]), (-1.0, vec![2.0, 4.0])],
            "cancel out",
        );
        says(&[(1.0, vec![1.0, 2.0]), (1.0, vec![0.0, 0.0])], "term 2");
        says(
            &[(1.0, vec![1.0, 2.0]), (1.0, vec![1.0])],
            "term 2: vector has 1",
        );
    }

    #[test]
    fn bounds_on_terms() {
        let ok = vector(1.0, &[1.0, 0.0]);
        assert!(check(&[ok.clone(), vector(-10.0, &[0.0, 1.0])], 2).is_ok());
        let says = |terms: &[Term], words: &str| {
            let e = check(terms, 2).expect_err("refused").to_string();
            assert!(e.contains(words), "{e}");
        };
        says(&vec![ok.clone(); MAX_TERMS + 1], "has 9 terms");
        says(&[], "has 0 terms");
        for w in [0.0, 10.5, -11.0, f32::NAN, f32::INFINITY] {
            says(&[ok.clone(), vector(w, &[0.0, 1.0])], "term 2: weight");
        }
        says(
            &[ok.clone(), vector(1.0, &[1.0])],
            "term 2: vector has 1 values",
        );
        says(
            &[ok.clone(), vector(1.0, &[1.0, f32::NAN])],
            "term 2: vector value 1",
        );
        says(
            &[vector(-1.0, &[1.0, 0.0])],
            "every term's weight is negative",
        );
        let empty_id = Term {
            weight: 1.0,
            part: Part::Image(String::new()),
        };
        says(&[empty_id], "term 1: the image id is empty");
    }
}
