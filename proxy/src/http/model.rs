//! http/model: which model files does the browser download, and may it cache them?
//!
//! `GET /api/model` answers the manifest of the browser's model bundle with content-addressed
//! URLs (`/model/<file>?sha256=…`); [`model_cache`] gives those files an ETag and a year of
//! caching, so a reload downloads nothing and a new model is a new URL. The token rows file is
//! read a row at a time with `Range` requests (the file service answers them, 206).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use wire::{FileRef, ModelManifest, TokenRows, Variant};

use super::cache::{etag, not_modified};
use super::errors::{ApiError, no_model};
use super::state::AppState;

pub async fn model(State(state): State<Arc<AppState>>) -> Result<Json<ModelManifest>, ApiError> {
    let bundle = state.bundle.as_ref().ok_or_else(no_model)?;
    let m = &bundle.manifest;
    let variants: BTreeMap<Variant, FileRef> =
        m.variants.iter().map(|(&v, e)| (v, file_ref(e))).collect();
    Ok(Json(ModelManifest {
        model_id: m.model_id.clone(),
        dim: m.dim,
        context_length: m.context_length,
        config: file_ref(&m.config),
        tokenizer: file_ref(&m.tokenizer),
        default_variant: Variant::preferred(variants.keys().copied()),
        variants,
        token_rows: m.token_rows.as_ref().map(|r| TokenRows {
            file: file_ref(&r.file),
            rows: r.rows,
            row_bytes: r.row_bytes,
            format: r.format,
        }),
    }))
}

/// A content-addressed URL: a new model is a new URL, so the files can be cached for good.
fn file_ref(e: &clip::export::FileEntry) -> FileRef {
    FileRef {
        url: format!("/model/{}?sha256={}", e.file, e.sha256),
        sha256: e.sha256.clone(),
        bytes: e.bytes,
    }
}

/// ETag and long caching for the model files the manifest lists.
pub async fn model_cache(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let file = request.uri().path().trim_start_matches("/model/");
    let Some(tag) = state
        .bundle
        .as_ref()
        .and_then(|b| b.sha256_of(file))
        .map(etag)
    else {
        return next.run(request).await;
    };
    let mut response = if not_modified(request.headers(), &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        next.run(request).await
    };
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&tag) {
            headers.insert(header::ETAG, v);
        }
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response
}
