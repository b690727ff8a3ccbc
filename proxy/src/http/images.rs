//! http/images: where do a result's picture and thumbnail come from, and which files may leave?
//!
//! `GET /images/{id}` answers the original (a local file, or a redirect to its http(s) URL) and
//! `GET /thumbs/{id}` the thumbnail ingest made, with the image's content hash as ETag. Both look
//! the id up in the store: a path is never taken from the request. Files are streamed from disk
//! (tower-http's `ServeFile`: `Content-Length`, `HEAD`, ranges, `Last-Modified`), never read
//! whole into memory.
//!
//! The original's path comes from the stored payload, which whoever can write to the store
//! chooses (a shared Qdrant cluster, say), so it is checked again on every request by
//! [`crate::image_roots::ImageRoots::resolve`]. A refused file is answered as a missing original
//! — the same 404 whether the file is absent or refused, so the answer says nothing about the
//! host's files — and the refusal is logged.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use tower_http::services::ServeFile;

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
    UrlPath(id): UrlPath<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let image = lookup(&state, &id).await?;
    if let Some(file) = &image.file {
        let (path, mime) = state.image_roots.resolve(file).await.map_err(|refused| {
            tracing::warn!("the original of `{id}` is not served: {refused}");
            ApiError::not_found(
                "image_missing",
                format!("the original of `{id}` is not available"),
            )
        })?;
        return serve(&path, mime, "public, max-age=3600", request).await;
    }
    if image.url.starts_with("http://") || image.url.starts_with("https://") {
        Ok(Redirect::temporary(&image.url).into_response())
    } else {
        Err(unknown_image(&id))
    }
}

pub async fn thumb(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let image = lookup(&state, &id).await?;
    let tag = (!image.content_hash.is_empty()).then(|| etag(&image.content_hash));
    if let Some(tag) = &tag
        && not_modified(request.headers(), tag)
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag.clone())]).into_response());
    }
    // Named by the point's id under the storage directory: nothing from the payload.
    let path = crate::ingest::thumb_path(&state.data.thumbs(), store::point_id(&id));
    let missing = || {
        ApiError::not_found(
            "thumbnail_missing",
            format!(
                "no thumbnail for `{id}` on this server: run ingest with this storage directory, \
                 or copy the thumbs/ folder of the machine that ingested it (DEPLOY.md)"
            ),
        )
    };
    match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_file() => {}
        _ => return Err(missing()),
    }
    let mut response = serve(&path, "image/jpeg", "public, max-age=86400", request).await?;
    if let Some(v) = tag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}

/// Stream a checked file with its content type and caching rule.
async fn serve(
    path: &Path,
    mime: &'static str,
    cache_control: &'static str,
    request: Request,
) -> Result<Response, ApiError> {
    let response = ServeFile::new(path).try_call(request).await.map_err(|e| {
        ApiError::not_found("image_missing", format!("reading the file: {}", e.kind()))
    })?;
    let (mut parts, body) = response.into_parts();
    if parts.headers.contains_key(header::CONTENT_TYPE) {
        parts
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    }
    parts.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    Ok(Response::from_parts(parts, Body::new(body)))
}
