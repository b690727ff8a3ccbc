//! http/review: how does a reviewer see the queue, settle it, and take the judgments away?
//!
//! Three admin routes behind the admin token (the same check as `GET /api/labels`: 401 without
//! it, 403 when no token is configured), checked before anything else is read: `GET /api/review`
//! (one page of [`crate::review::queue`], with thumbnails and captions from the index), `POST
//! /api/review` (a verdict: checked, the image looked up in the index, answered once the review
//! log has it on disk) and `GET /api/review/export` (the reviewed judgments as `queries.tsv`).
//! Reviews are not budgeted: only the token's holder can write them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wire::{ReviewItem, ReviewQueue, ReviewRequest, ReviewResponse, ReviewVerdict, VoteCounts};

use crate::payload::ImagePayload;
use crate::review::{Decision, Review, export_tsv, queue};
use crate::store;

use super::errors::{ApiError, ApiJson, unknown_image};
use super::labels::{check_admin, note};
use super::search::url_escape;
use super::state::AppState;
use super::{DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_QUERY_CHARS};

/// The verdict stays a string until checked, so an unknown one gets its own error code.
type ReviewBody = ReviewRequest<String>;

/// `?offset=&limit=`, read as text so a bad number gets its own code.
#[derive(Debug, Deserialize)]
pub struct PagingQuery {
    offset: Option<String>,
    limit: Option<String>,
}

pub async fn queue_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    paging: Result<Query<PagingQuery>, QueryRejection>,
) -> Result<Json<ReviewQueue>, ApiError> {
    check_admin(state.admin_token.as_ref(), &headers)?;
    let Query(paging) = paging.map_err(|e| ApiError::bad("bad_request", e.body_text()))?;
    let (offset, limit) = parse_paging(&paging)?;
    let (labels, reviews) = (state.labels.clone(), state.reviews.clone());
    let page = tokio::task::spawn_blocking(move || {
        queue::page(queue::queue(&labels.all(), &reviews.all()), offset, limit)
    })
    .await
    .map_err(ApiError::task("label_store_failed", "review queue"))?;
    let captions = captions(&state, &page.items).await;
    let items = page
        .items
        .into_iter()
        .map(|item| {
            let escaped = url_escape(&item.image_id);
            ReviewItem {
                url: format!("/images/{escaped}"),
                thumbnail_url: format!("/thumbs/{escaped}"),
                caption: captions.get(&item.image_id).cloned(),
                votes: VoteCounts {
                    relevant: item.counts.relevant,
                    irrelevant: item.counts.irrelevant,
                    flag: item.counts.flag,
                },
                notes: item.notes,
                query: item.query,
                image_id: item.image_id,
            }
        })
        .collect();
    Ok(Json(ReviewQueue {
        items,
        total: page.total,
        offset,
        limit,
        next_offset: (offset + limit < page.total).then_some(offset + limit),
    }))
}

/// `offset` (default 0, at most [`MAX_OFFSET`]) and `limit` (default [`DEFAULT_LIMIT`], 1 to
/// [`MAX_LIMIT`]).
fn parse_paging(q: &PagingQuery) -> Result<(usize, usize), ApiError> {
    let number = |text: &Option<String>, default: usize| match text.as_deref() {
        None => Some(default),
        Some(t) => t.trim().parse::<usize>().ok(),
    };
    let offset = number(&q.offset, 0)
        .filter(|o| *o <= MAX_OFFSET)
        .ok_or_else(|| {
            ApiError::bad(
                "bad_offset",
                format!("`offset` must be a whole number from 0 to {MAX_OFFSET}"),
            )
        })?;
    let limit = number(&q.limit, DEFAULT_LIMIT)
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| {
            ApiError::bad(
                "bad_limit",
                format!("`limit` must be a whole number from 1 to {MAX_LIMIT}"),
            )
        })?;
    Ok((offset, limit))
}

/// The captions of the page's images, from the index. Best effort: a store that is down costs
/// the captions, not the queue.
async fn captions(state: &AppState, items: &[queue::Item]) -> HashMap<String, String> {
    let ids: Vec<_> = items.iter().map(|i| store::point_id(&i.image_id)).collect();
    if ids.is_empty() {
        return HashMap::new();
    }
    let found = match state.store().await {
        Ok(store) => store.get(&ids, false).await,
        Err(e) => Err(e),
    };
    let records = found.unwrap_or_else(|e| {
        tracing::warn!("review queue without captions: {e}");
        Vec::new()
    });
    records
        .into_iter()
        .filter_map(|r| {
            let image = ImagePayload::read(r.id, r.payload);
            Some((image.id, image.caption?))
        })
        .collect()
}

pub async fn verdict(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<ApiJson<ReviewBody>, ApiError>,
) -> Result<Json<ReviewResponse>, ApiError> {
    check_admin(state.admin_token.as_ref(), &headers)?;
    let ApiJson(body) = body?;
    let review = into_review(body)?;
    // Only images in the index can be judged.
    let known = state
        .store()
        .await?
        .get(&[store::point_id(&review.image_id)], false)
        .await?;
    if known.is_empty() {
        return Err(unknown_image(&review.image_id));
    }
    let log = state.reviews.clone();
    // Answered only once the verdict is on disk (written and fsynced).
    let review = tokio::task::spawn_blocking(move || log.put(review))
        .await
        .map_err(ApiError::task("label_store_failed", "review"))??;
    Ok(Json(ReviewResponse {
        ok: true,
        verdict: to_wire(review.verdict),
        query: review.query,
        image_id: review.image_id,
    }))
}

/// The verdict, with every field checked and trimmed.
fn into_review(body: ReviewBody) -> Result<Review, ApiError> {
    let query = body.query.trim().to_string();
    if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad(
            "bad_query",
            format!("`query` must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let verdict: ReviewVerdict = body
        .verdict
        .parse()
        .map_err(|e: wire::UnknownReviewVerdict| ApiError::bad("bad_verdict", e.to_string()))?;
    Ok(Review::new(
        query,
        body.image_id,
        from_wire(verdict),
        note(body.note)?,
    ))
}

fn from_wire(verdict: ReviewVerdict) -> Decision {
    match verdict {
        ReviewVerdict::Relevant => Decision::Relevant,
        ReviewVerdict::Irrelevant => Decision::Irrelevant,
        ReviewVerdict::Skip => Decision::Skip,
    }
}

fn to_wire(decision: Decision) -> ReviewVerdict {
    match decision {
        Decision::Relevant => ReviewVerdict::Relevant,
        Decision::Irrelevant => ReviewVerdict::Irrelevant,
        Decision::Skip => ReviewVerdict::Skip,
    }
}

pub async fn export(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(state.admin_token.as_ref(), &headers)?;
    let log = state.reviews.clone();
    let reviews = tokio::task::spawn_blocking(move || log.all())
        .await
        .map_err(ApiError::task("label_store_failed", "review export"))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/tab-separated-values; charset=utf-8",
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"queries.tsv\"",
            ),
        ],
        export_tsv(&reviews),
    )
        .into_response())
}
