//! http/images: where do a result's picture and thumbnail come from?
//!
//! `GET /images/{id}` answers the original (a local file, or a redirect to its http(s) URL) and
//! `GET /thumbs/{id}` the thumbnail ingest made, with the image's content hash as ETag. Both look
//! the id up in the store: a path is never taken from the request.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::payload::ImagePayload;
use crate::store;

use super::cache::{etag, not_modified};
use super::errors::{ApiError, unknown_image};
use super::state::AppState;

/// The stored payload of an indexed image.
async fn lookup(state: &AppState, id: &str) -> Result<ImagePayload, ApiError> {
    let point = store::point_id(id);
    let record = state
        .store()
        .await?
        .get(&[point], false)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| unknown_image(id))?;
    Ok(ImagePayload::read(point, record.payload))
}

pub async fn image(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let image = lookup(&state, &id).await?;
    if let Some(file) = &image.file {
        let bytes = tokio::fs::read(file).await.map_err(|e| {
            ApiError::not_found(
                "image_missing",
                format!("the original of `{id}` is gone from disk: {}", e.kind()),
            )
        })?;
        let mime = image::guess_format(&bytes)
            .map(|f| f.to_mime_type())
            .unwrap_or("application/octet-stream");
        return Ok((
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            bytes,
        )
            .into_response());
    }
    if image.url.starts_with("http://") || image.url.starts_with("https://") {
        Ok(Redirect::temporary(&image.url).into_response())
    } else {
        Err(unknown_image(&id))
    }
}

pub async fn thumb(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let image = lookup(&state, &id).await?;
    let tag = (!image.content_hash.is_empty()).then(|| etag(&image.content_hash));
    if let Some(tag) = &tag
        && not_modified(&headers, tag)
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag.clone())]).into_response());
    }
    let path = crate::ingest::thumb_path(&state.data.thumbs(), store::point_id(&id));
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        ApiError::not_found(
            "thumbnail_missing",
            format!("no thumbnail for `{id}`: re-run ingest"),
        )
    })?;
    let mut response = (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
        .into_response();
    if let Some(v) = tag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}
