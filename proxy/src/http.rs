//! http: what does the browser (or an API client) see?
//!
//! The routes of the HTTP contract (ARCHITECTURE.md, "HTTP API"): search by vector or text,
//! similar-by-id, feedback, the labels export, the model manifest and files, images and
//! thumbnails, health and readiness, and the static site from `public/` at `/`.
//!
//! Architecture Invariant: this is the only module that knows JSON wire types and status codes;
//! [`ApiError`]'s `From` impls are the one place errors become statuses. Images and thumbnails
//! are looked up by id in the store, never by a path taken from the request.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeader;

use crate::config::Secret;
use crate::labels::{Label, LabelLog, Verdict, Vote};
use crate::store::{
    self, CollectionSpec, Hit, PayloadFilter, SearchQuery, SharedStore, StoreError,
};

/// The largest request body (1 MiB): a 512-d vector in JSON is ~10 KB.
pub const MAX_BODY: usize = 1 << 20;
/// Results per page.
pub const MAX_LIMIT: usize = 100;
pub const DEFAULT_LIMIT: usize = 20;
/// Deep pages cost the store `offset + limit` candidates each.
pub const MAX_OFFSET: usize = 10_000;
/// Longest query text, note and client id accepted.
pub const MAX_QUERY_CHARS: usize = 1000;
pub const MAX_NOTE_CHARS: usize = 2000;
pub const MAX_CLIENT_ID_CHARS: usize = 128;

/// Encodes query text natively (server-side text search and the frontend's fallback).
pub trait TextEncoder: Send + Sync {
    fn embed_text(&self, text: &str) -> Result<Vec<f32>, String>;
}

/// The browser's model bundle (written by `proxy export-model`).
#[derive(Debug, Clone)]
pub struct ModelBundle {
    pub dir: PathBuf,
    pub manifest: clip::export::Manifest,
}

impl ModelBundle {
    /// Read `dir/manifest.json`.
    pub fn open(dir: &FsPath) -> anyhow::Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (write it with `proxy export-model`)",
                path.display()
            )
        })?;
        let manifest =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The sha256 of a bundle file, when the manifest lists it.
    fn sha256_of(&self, file: &str) -> Option<&str> {
        let m = &self.manifest;
        std::iter::once(&m.config)
            .chain(std::iter::once(&m.tokenizer))
            .chain(m.variants.values())
            .find(|e| e.file == file)
            .map(|e| e.sha256.as_str())
    }
}

/// Everything the handlers share.
pub struct AppState {
    pub store: SharedStore,
    pub spec: CollectionSpec,
    pub encoder: Option<Arc<dyn TextEncoder>>,
    pub labels: Arc<LabelLog>,
    pub thumbs: PathBuf,
    pub admin_token: Option<Secret>,
    pub bundle: Option<ModelBundle>,
    /// Server-side text encodings at once (CPU-bound); more wait up to `encode_wait`, then 429.
    pub encode_slots: tokio::sync::Semaphore,
    pub encode_wait: Duration,
    opened: AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl AppState {
    #[allow(
        clippy::too_many_arguments,
        reason = "built once, in `proxy serve` and the tests"
    )]
    pub fn new(
        store: SharedStore,
        spec: CollectionSpec,
        encoder: Option<Arc<dyn TextEncoder>>,
        labels: Arc<LabelLog>,
        thumbs: PathBuf,
        admin_token: Option<Secret>,
        bundle: Option<ModelBundle>,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            store,
            spec,
            encoder,
            labels,
            thumbs,
            admin_token,
            bundle,
            encode_slots: tokio::sync::Semaphore::new(cores),
            encode_wait: Duration::from_secs(2),
            opened: AtomicBool::new(false),
        }
    }

    /// Open the collection on first use, and again after a failure: a store that was down at
    /// start, or a collection ingested after the proxy started, is picked up without a restart.
    async fn store(&self) -> Result<&SharedStore, ApiError> {
        if !self.opened.load(Ordering::Acquire) {
            self.store.open_collection(&self.spec).await?;
            self.opened.store(true, Ordering::Release);
        }
        Ok(&self.store)
    }
}

/// What the server serves besides the API.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The static site: `public/` (index.html, the wasm app).
    pub public_dir: PathBuf,
    /// Origins allowed to call the API from another site; empty: same origin only.
    pub cors_origins: Vec<String>,
}

/// The application's routes.
pub fn router(config: &ServeConfig, state: Arc<AppState>) -> Router {
    let index = config.public_dir.join("index.html");
    // The site's files keep their names across builds (index.html, the worker's files), so the
    // browser must revalidate them (a 304 when unchanged) or it mixes an old worker with a new
    // page. The model files are content-addressed and cached for good (`model_cache`).
    let site = SetResponseHeader::if_not_present(
        ServeDir::new(&config.public_dir).fallback(ServeFile::new(index)),
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    let api = Router::new()
        .route("/api/search", post(search))
        .route("/api/similar", post(similar))
        .route("/api/feedback", post(feedback))
        .route("/api/labels", get(labels_export))
        .route("/api/model", get(model))
        .route("/api/{*rest}", get(unknown_route).post(unknown_route))
        .route("/images/{id}", get(image))
        .route("/thumbs/{id}", get(thumb))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready));
    let model_files = match &state.bundle {
        Some(bundle) => Router::new()
            .nest_service("/model", ServeDir::new(&bundle.dir))
            .layer(middleware::from_fn_with_state(state.clone(), model_cache)),
        // Without a bundle, model files are a plain 404 (not the site's index.html fallback),
        // so the web app can say that no model is installed.
        None => Router::new().route(
            "/model/{*file}",
            get(|| async {
                ApiError::not_found(
                    "no_model",
                    "no browser model is installed: run `proxy export-model`",
                )
            }),
        ),
    };
    let mut app = api
        .with_state(state)
        .merge(model_files)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(refuse_long_bodies))
        .fallback_service(site);
    if !config.cors_origins.is_empty() {
        let origins = if config.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            AllowOrigin::list(
                config
                    .cors_origins
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        app = app.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
                .max_age(Duration::from_secs(3600)),
        );
    }
    app
}

// ---- errors ----------------------------------------------------------------------------------

/// An error answer: `{"error":{"code","message"}}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, "{}", self.message);
        }
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        (self.status, body).into_response()
    }
}

/// The one mapping from store errors to statuses.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match &e {
            StoreError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            StoreError::NoCollection(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ingested"),
            StoreError::Mismatch { .. } => (StatusCode::SERVICE_UNAVAILABLE, "model_mismatch"),
            StoreError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            StoreError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_error"),
        };
        Self {
            status,
            code,
            message: e.to_string(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
            }
            _ => (rejection.status(), "bad_request"),
        };
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            body_too_large_message()
        } else {
            rejection.body_text()
        };
        Self {
            status,
            code,
            message,
        }
    }
}

/// `Json` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Self(v))
            .map_err(ApiError::from)
    }
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("no_route", "no such API route")
}

// ---- search ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    vector: Option<Vec<f32>>,
    text: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    #[serde(default)]
    filter: PayloadFilter,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimilarBody {
    id: String,
    limit: Option<usize>,
    offset: Option<usize>,
    #[serde(default)]
    filter: PayloadFilter,
}

/// One result.
#[derive(Debug, Serialize)]
struct SearchHit {
    id: String,
    score: f32,
    url: String,
    thumbnail_url: String,
    caption: Option<String>,
    /// The row's other columns (and the original `url` as written in the TSV).
    payload: Value,
}

#[derive(Debug, Serialize)]
struct Results {
    results: Vec<SearchHit>,
    took_ms: f64,
    limit: usize,
    offset: usize,
    /// The offset of the next page, when this page was full.
    next_offset: Option<usize>,
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

async fn search(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Json<Results>, ApiError> {
    let started = Instant::now();
    let (limit, offset) = page(body.limit, body.offset)?;
    store::check_filter(&body.filter).map_err(|e| ApiError::bad("bad_filter", e.to_string()))?;
    let vector = match (body.vector, body.text) {
        (Some(vector), None) => {
            store::check_vector(&vector, state.spec.dim)
                .map_err(|e| ApiError::bad("bad_vector", e.to_string()))?;
            vector
        }
        (None, Some(text)) => encode_text(&state, text).await?,
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "bad_request",
                "give either `vector` or `text`, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad(
                "bad_request",
                "give `vector` (the query embedding) or `text`",
            ));
        }
    };
    let query = SearchQuery {
        vector,
        limit,
        offset,
        filter: body.filter,
    };
    let hits = state.store().await?.search(&query).await?;
    Ok(Json(results(hits, limit, offset, started)))
}

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
    let Some(encoder) = state.encoder.clone() else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "no_text_encoder",
            message: "this server has no text encoder; send `vector`".into(),
        });
    };
    let _slot = tokio::time::timeout(state.encode_wait, state.encode_slots.acquire())
        .await
        .map_err(|_| ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "busy",
            message: "too many text searches at once; retry shortly, or encode in the browser"
                .into(),
        })?
        .map_err(|_| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "shutting_down",
            message: "the server is shutting down".into(),
        })?;
    tokio::task::spawn_blocking(move || encoder.embed_text(&text))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "encoder_failed",
            message: format!("text encoder task failed: {e}"),
        })?
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "encoder_failed",
            message: e,
        })
}

async fn similar(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<SimilarBody>,
) -> Result<Json<Results>, ApiError> {
    let started = Instant::now();
    let (limit, offset) = page(body.limit, body.offset)?;
    store::check_filter(&body.filter).map_err(|e| ApiError::bad("bad_filter", e.to_string()))?;
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
        limit: limit + 1,
        offset,
        filter: body.filter,
    };
    let mut hits = store.search(&query).await?;
    hits.retain(|h| h.id != point);
    hits.truncate(limit);
    Ok(Json(results(hits, limit, offset, started)))
}

fn unknown_image(id: &str) -> ApiError {
    ApiError::not_found(
        "unknown_id",
        format!("no image with id `{id}` in the index"),
    )
}

fn results(hits: Vec<Hit>, limit: usize, offset: usize, started: Instant) -> Results {
    let full = hits.len() >= limit;
    let results = hits
        .into_iter()
        .map(|hit| {
            let mut payload = hit.payload;
            let id = match payload.remove("id") {
                Some(Value::String(id)) => id,
                _ => hit.id.to_string(),
            };
            let caption = match payload.remove("caption") {
                Some(Value::String(c)) => Some(c),
                _ => None,
            };
            // Internal fields stay inside: a local path says nothing useful to a browser.
            for internal in ["file", "content_hash", "row_hash"] {
                payload.remove(internal);
            }
            let escaped = url_escape(&id);
            SearchHit {
                url: format!("/images/{escaped}"),
                thumbnail_url: format!("/thumbs/{escaped}"),
                id,
                score: hit.score,
                caption,
                payload: Value::Object(payload),
            }
        })
        .collect();
    Results {
        results,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        limit,
        offset,
        next_offset: full.then_some(offset + limit),
    }
}

/// Percent-encode an id for a URL path segment.
fn url_escape(id: &str) -> String {
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

// ---- labels ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    query: String,
    query_vector: Option<Vec<f32>>,
    image_id: String,
    label: String,
    note: Option<String>,
    client_id: Option<String>,
}

async fn feedback(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> Result<Json<Value>, ApiError> {
    let query = body.query.trim().to_string();
    if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad(
            "bad_query",
            format!("`query` must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let Some(label) = Verdict::parse(&body.label) else {
        return Err(ApiError::bad(
            "bad_label",
            format!(
                "label `{}` is not one of relevant, irrelevant, flag (or none, to withdraw)",
                body.label
            ),
        ));
    };
    if let Some(vector) = &body.query_vector {
        store::check_vector(vector, state.spec.dim)
            .map_err(|e| ApiError::bad("bad_vector", e.to_string()))?;
    }
    let note = body
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(ApiError::bad(
            "bad_note",
            format!("`note` is over {MAX_NOTE_CHARS} characters"),
        ));
    }
    let client_id = body
        .client_id
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "anonymous".to_string());
    if client_id.chars().count() > MAX_CLIENT_ID_CHARS || client_id.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "bad_client_id",
            format!(
                "`client_id` must be at most {MAX_CLIENT_ID_CHARS} characters, no control characters"
            ),
        ));
    }
    // Only images in the index can be labelled.
    let known = state
        .store()
        .await?
        .get(&[store::point_id(&body.image_id)], false)
        .await?;
    if known.is_empty() {
        return Err(unknown_image(&body.image_id));
    }
    let vote = Vote {
        query,
        query_vector: body.query_vector,
        image_id: body.image_id,
        label,
        note,
        client_id,
    };
    let log = state.labels.clone();
    // Answered only once the vote is on disk (written and fsynced).
    let label = tokio::task::spawn_blocking(move || log.record(vote))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "label_store_failed",
            message: format!("label task failed: {e}"),
        })?
        .map_err(|e| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "label_store_failed",
            message: e.to_string(),
        })?;
    Ok(Json(
        json!({"ok": true, "label_id": label.label_id, "label": label.label}),
    ))
}

#[derive(Debug, Deserialize)]
struct LabelsQuery {
    format: Option<String>,
}

async fn labels_export(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LabelsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = &state.admin_token else {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "export_disabled",
            message: "the labels export is off: set TEXT2IMG_ADMIN_TOKEN to turn it on".into(),
        });
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "send the admin token as `Authorization: Bearer <token>`".into(),
        });
    }
    let labels = state.labels.all();
    match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => {
            let mut body = String::new();
            for label in &labels {
                body.push_str(&serde_json::to_string(label).unwrap_or_default());
                body.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
        }
        "tsv" => Ok((
            [(
                header::CONTENT_TYPE,
                "text/tab-separated-values; charset=utf-8",
            )],
            labels_tsv(&labels),
        )
            .into_response()),
        other => Err(ApiError::bad(
            "bad_format",
            format!("format `{other}`: use jsonl or tsv"),
        )),
    }
}

fn labels_tsv(labels: &[Label]) -> String {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let mut out = String::from("label_id\ttime\tclient_id\tquery\timage_id\tlabel\tnote\n");
    for l in labels {
        let verdict = serde_json::to_value(l.label)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            l.label_id,
            crate::labels::rfc3339(l.time_ms),
            clean(&l.client_id),
            clean(&l.query),
            clean(&l.image_id),
            verdict,
            clean(l.note.as_deref().unwrap_or(""))
        ));
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn body_too_large_message() -> String {
    format!("request body is over the {MAX_BODY}-byte limit")
}

/// A body declared longer than [`MAX_BODY`] is answered 413 after it has been read and dropped
/// (up to 4 MiB). Answering before it arrives makes the server close a connection the client is
/// still writing to, and the client then sees "broken pipe" or a reset instead of the answer.
async fn refuse_long_bodies(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !declared.is_some_and(|n| n > MAX_BODY as u64) {
        return next.run(request).await;
    }
    // Longer than that, the connection is closed instead: draining is not worth more.
    let _ = axum::body::to_bytes(request.into_body(), 4 * MAX_BODY).await;
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "body_too_large",
        message: body_too_large_message(),
    }
    .into_response()
}

// ---- model -----------------------------------------------------------------------------------

async fn model(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let Some(bundle) = &state.bundle else {
        return Err(ApiError::not_found(
            "no_model",
            "no browser model is installed: run `proxy export-model`",
        ));
    };
    let m = &bundle.manifest;
    // Content-addressed URLs: a new model is a new URL, so the files can be cached for good.
    let entry = |e: &clip::export::FileEntry| json!({"url": format!("/model/{}?sha256={}", e.file, e.sha256), "sha256": e.sha256, "bytes": e.bytes});
    let variants: BTreeMap<&String, Value> =
        m.variants.iter().map(|(k, e)| (k, entry(e))).collect();
    let default = ["q8", "f16", "f32"]
        .into_iter()
        .find(|v| m.variants.contains_key(*v));
    Ok(Json(json!({
        "model_id": m.model_id,
        "dim": m.dim,
        "context_length": m.context_length,
        "config": entry(&m.config),
        "tokenizer": entry(&m.tokenizer),
        "variants": variants,
        "default_variant": default,
    })))
}

/// ETag and long caching for the model files the manifest lists.
async fn model_cache(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let file = request
        .uri()
        .path()
        .trim_start_matches("/model/")
        .to_string();
    let sha = state
        .bundle
        .as_ref()
        .and_then(|b| b.sha256_of(&file))
        .map(|s| format!("\"{s}\""));
    let Some(etag) = sha else {
        return next.run(request).await;
    };
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        next.run(request).await
    };
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response
}

// ---- images ----------------------------------------------------------------------------------

async fn image(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = state
        .store()
        .await?
        .get(&[store::point_id(&id)], false)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| unknown_image(&id))?;
    if let Some(Value::String(file)) = record.payload.get("file") {
        let bytes = tokio::fs::read(file).await.map_err(|e| ApiError {
            status: StatusCode::NOT_FOUND,
            code: "image_missing",
            message: format!("the original of `{id}` is gone from disk: {}", e.kind()),
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
    match record.payload.get("url") {
        Some(Value::String(url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(Redirect::temporary(url).into_response())
        }
        _ => Err(unknown_image(&id)),
    }
}

async fn thumb(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let point = store::point_id(&id);
    let record = state
        .store()
        .await?
        .get(&[point], false)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| unknown_image(&id))?;
    let etag = record
        .payload
        .get("content_hash")
        .and_then(Value::as_str)
        .map(|h| format!("\"{h}\""));
    if let Some(etag) = &etag
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag.clone())]).into_response());
    }
    let path = crate::ingest::thumb_path(&state.thumbs, point);
    let bytes = tokio::fs::read(&path).await.map_err(|_| ApiError {
        status: StatusCode::NOT_FOUND,
        code: "thumbnail_missing",
        message: format!("no thumbnail for `{id}`: re-run ingest"),
    })?;
    let mut response = (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
        .into_response();
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, v);
    }
    Ok(response)
}

// ---- health ----------------------------------------------------------------------------------

async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let store = state.store().await?;
    store.ping().await?;
    let points = store.count().await?;
    Ok(Json(json!({
        "ready": true,
        "points": points,
        "model": state.spec.model,
        "dim": state.spec.dim,
        "collection": state.spec.name,
        "labels": state.labels.len(),
    })))
}
