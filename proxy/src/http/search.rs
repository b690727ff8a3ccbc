//! http/search: which images match a query vector, a text, or another image?
//!
//! `POST /api/search` (a vector from the browser, text encoded here as the fallback, or
//! weighted terms composed by [`compose`], compared with image or caption vectors or both by
//! [`retrieve`]; with positive and negative examples, relevance feedback through [`examples`])
//! and
//! `POST /api/similar` (the vector of an indexed image). Both answer one page of [`Results`],
//! built from the stored [`ImagePayload`]s by [`results`].

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use wire::{Results, SearchRequest, SimilarRequest};

use crate::compose;
use crate::payload::{self, ImagePayload};
use crate::retrieve::{self, Vectors};
use crate::store::{self, Hit, PayloadFilter, SearchQuery, VectorName};

use super::cutoff;
use super::errors::{ApiError, ApiJson, unknown_image};
use super::examples::{self, Feedback};
use super::state::AppState;
use super::{DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_QUERY_CHARS};

pub async fn search(
    State(state): State<Arc<AppState>>,
    ApiJson(mut body): ApiJson<SearchRequest>,
) -> Result<Json<Results>, ApiError> {
    let started = Instant::now();
    let (limit, offset) = page(body.limit, body.offset)?;
    check_filter(&body.filter)?;
    let feedback = Feedback::take(&mut body)?;
    // The learned line is fitted on plain query vectors' cosines; composed and example-based
    // rankings score otherwise (see `ranked` for fused ones).
    let plain = body.terms.is_empty() && feedback.is_none();
    let asked = body.vectors.map(vectors_of);
    let vector = query_vector(&state, body.vector, body.text, body.terms).await?;
    let store = state.store().await?;
    match (feedback, vector) {
        (Some(_), _) if asked.is_some_and(|v| v != Vectors::Image) => Err(ApiError::bad(
            "bad_vectors",
            "`positive`/`negative` examples compare image vectors only: leave out `vectors` \
             or give `image`",
        )),
        (Some(feedback), vector) => {
            let page = examples::Page {
                limit,
                offset,
                filter: body.filter,
            };
            let hits = feedback
                .recommend(store.as_ref(), state.spec.dim, vector, page)
                .await?;
            Ok(Json(results(hits, limit, offset, started)))
        }
        (None, Some(vector)) => {
            let query = SearchQuery {
                vector,
                using: VectorName::Image,
                limit,
                offset,
                filter: body.filter,
            };
            Ok(Json(ranked(&state, query, asked, plain, started).await?))
        }
        (None, None) => Err(ApiError::bad(
            "bad_request",
            "give `vector` (the query embedding), `text`, `terms` or `positive` examples",
        )),
    }
}

/// The query's own vector: the client's, the proxy's encoding of `text`, or weighted `terms`
/// composed into one (`compose.rs`; alone, never with the others). `None` when the request has
/// only examples.
async fn query_vector(
    state: &AppState,
    vector: Option<Vec<f32>>,
    text: Option<String>,
    terms: Vec<wire::Term>,
) -> Result<Option<Vec<f32>>, ApiError> {
    match (vector, text) {
        (vector, text) if !terms.is_empty() => {
            if vector.is_some() || text.is_some() {
                return Err(ApiError::bad(
                    "bad_request",
                    "give `terms` alone, without `vector` or `text`",
                ));
            }
            let terms: Vec<_> = terms.into_iter().map(compose_term).collect();
            compose::check(&terms, state.spec.dim)?;
            let weighted = compose::resolve(state.store().await?.as_ref(), terms).await?;
            Ok(Some(compose::compose(&weighted)?))
        }
        (Some(vector), None) => {
            store::check_vector(&vector, state.spec.dim)
                .map_err(|e| ApiError::bad("bad_vector", e.to_string()))?;
            Ok(Some(vector))
        }
        (None, Some(text)) => Ok(Some(encode_text(state, text).await?)),
        (Some(_), Some(_)) => Err(ApiError::bad(
            "bad_request",
            "give either `vector` or `text`, not both",
        )),
        (None, None) => Ok(None),
    }
}

/// One page of `query` compared with the vectors `asked` (the collection's default when none),
/// marked by the learned cut-off when it is a `plain` query's image ranking (the line is fitted
/// on those cosines).
async fn ranked(
    state: &Arc<AppState>,
    query: SearchQuery,
    asked: Option<Vectors>,
    plain: bool,
    started: Instant,
) -> Result<Results, ApiError> {
    let store = state.store().await?;
    let collection = state.collection().await?;
    let vectors = asked.unwrap_or_else(|| retrieve::default_vectors(collection));
    retrieve::check(vectors, collection).map_err(|e| ApiError::bad("no_caption_vectors", e))?;
    let how = retrieve::Retrieval {
        vectors,
        fusion: state.fusion,
    };
    let hits = retrieve::search(store.as_ref(), &query, how).await?;
    let top = cutoff::top_of(&hits, query.offset, !query.filter.is_empty());
    let mut page = results_of(hits, vectors, (query.limit, query.offset), started);
    if plain && vectors == Vectors::Image {
        cutoff::mark(state, store.as_ref(), &query.vector, top, &mut page).await?;
        cutoff::schedule(state);
    }
    Ok(page)
}

pub async fn similar(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<SimilarRequest>,
) -> Result<Json<Results>, ApiError> {
    let started = Instant::now();
    let (limit, offset) = page(body.limit, body.offset)?;
    check_filter(&body.filter)?;
    let store = state.store().await?;
    let point = store::point_id(&body.id);
    let vector = store
        .get(&[point], true)
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.vector)
        .ok_or_else(|| unknown_image(&body.id))?;
    // One more than asked, to leave the image itself out.
    let query = SearchQuery {
        vector,
        using: VectorName::Image,
        limit: limit + 1,
        offset,
        filter: body.filter,
    };
    let mut hits = store.search(&query).await?;
    hits.retain(|h| h.id != point);
    hits.truncate(limit);
    Ok(Json(results(hits, limit, offset, started)))
}

/// A wire term as `compose.rs` takes it.
fn compose_term(term: wire::Term) -> compose::Term {
    let part = match term.example {
        wire::Example::Vector(v) => compose::Part::Vector(v),
        wire::Example::Id(id) => compose::Part::Image(id),
    };
    compose::Term {
        weight: term.weight,
        part,
    }
}

/// Server-side encoding, for browsers that cannot run the model: a bounded number at once.
async fn encode_text(state: &AppState, text: String) -> Result<Vec<f32>, ApiError> {
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(ApiError::bad("bad_text", "`text` is empty"));
    }
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad(
            "bad_text",
            format!("`text` is over {MAX_QUERY_CHARS} characters"),
        ));
    }
    let encoder = state.encoder.clone().ok_or(ApiError::NoTextEncoder)?;
    let _slot = tokio::time::timeout(state.encode_wait, state.encode_slots.acquire())
        .await
        .map_err(|_| ApiError::Busy)?
        .map_err(|_| ApiError::ShuttingDown)?;
    let vector = tokio::task::spawn_blocking(move || encoder.embed_text(&text))
        .await
        .map_err(ApiError::task("encoder_failed", "text encoder"))??;
    Ok(vector)
}

/// A filter's values (strings, integers, booleans) and field names (the TSV's columns only).
fn check_filter(filter: &PayloadFilter) -> Result<(), ApiError> {
    store::check_filter(filter)
        .and_then(|()| payload::check_filter_fields(filter))
        .map_err(|e| ApiError::bad("bad_filter", e.to_string()))
}

fn page(limit: Option<usize>, offset: Option<usize>) -> Result<(usize, usize), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad(
            "bad_limit",
            format!("limit is {limit}; it must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::bad(
            "bad_offset",
            format!("offset is {offset}; it must be at most {MAX_OFFSET}"),
        ));
    }
    Ok((limit, offset))
}

/// The page a client sees: ids, scores, image URLs and the public part of each payload.
fn results(hits: Vec<Hit>, limit: usize, offset: usize, started: Instant) -> Results {
    results_of(hits, Vectors::Image, (limit, offset), started)
}

/// [`results`] of a ranking that compared `vectors`.
fn results_of(
    hits: Vec<Hit>,
    vectors: Vectors,
    (limit, offset): (usize, usize),
    started: Instant,
) -> Results {
    let full = hits.len() >= limit;
    let results = hits
        .into_iter()
        .map(|hit| {
            let image = ImagePayload::read(hit.id, hit.payload);
            let escaped = url_escape(&image.id);
            wire::Hit {
                url: format!("/images/{escaped}"),
                thumbnail_url: format!("/thumbs/{escaped}"),
                score: hit.score,
                payload: image.public_fields(),
                caption: image.caption,
                id: image.id,
                weak: false,
            }
        })
        .collect();
    Results {
        results,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        limit,
        offset,
        next_offset: full.then_some(offset + limit),
        cutoff: None,
        vectors: match vectors {
            Vectors::Image => wire::Vectors::Image,
            Vectors::Caption => wire::Vectors::Caption,
            Vectors::Fused => wire::Vectors::Fused,
        },
    }
}

/// The vectors a request asks for, in the proxy's terms.
fn vectors_of(asked: wire::Vectors) -> Vectors {
    match asked {
        wire::Vectors::Image => Vectors::Image,
        wire::Vectors::Caption => Vectors::Caption,
        wire::Vectors::Fused => Vectors::Fused,
    }
}

/// Percent-encode an id for a URL path segment.
pub(super) fn url_escape(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
