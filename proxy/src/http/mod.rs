//! http: what does the browser (or an API client) see?
//!
//! The routes of the HTTP contract (ARCHITECTURE.md, "HTTP API"), one concern per module:
//! [`search`] (by vector, text, or similar-by-id), [`labels`] (feedback and the export),
//! [`review`] (the admin review queue),
//! [`cutoff`] (the learned "no good match" line and the weak hits),
//! [`model`] (the browser's model manifest and file caching), [`images`] (originals and
//! thumbnails), [`reports`] (the HTML reports, behind the admin token), [`health`], and [`site`]
//! (the static site, CORS, the body limit). [`state`] builds what they share. [`serve`] is the
//! serving loop, with the connection [`limits`] its [`watchdog`] and [`deadline`] enforce;
//! [`rate`] limits each client's requests, and [`client`] says who the client is.
//!
//! Architecture Invariant: this is the only module that knows JSON wire types and status codes,
//! and [`errors::ApiError::class`] is the one place a failure becomes a status. Images and
//! thumbnails are looked up by id in the store, never by a path taken from the request.

pub mod cache;
pub mod client;
pub mod cutoff;
pub mod deadline;
pub mod errors;
pub mod examples;
pub mod health;
pub mod images;
pub mod labels;
pub mod limits;
pub mod model;
pub mod rate;
pub mod reports;
pub mod review;
pub mod search;
pub mod serve;
pub mod site;
pub mod state;
pub mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::{Extension, Router};

pub use client::TrustedProxies;
pub use errors::ApiError;
pub use limits::Limits;
pub use rate::{Rate, RateLimits};
pub use serve::serve;
pub use state::{AppState, StateParts};

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

/// What the server serves besides the API.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The static site: `public/` (index.html, the wasm app).
    pub public_dir: PathBuf,
    /// Origins allowed to call the API from another site; empty: same origin only.
    pub cors_origins: Vec<String>,
    /// Each client's request rates.
    pub rate_limits: RateLimits,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

/// The application's routes.
pub fn router(config: &ServeConfig, state: Arc<AppState>) -> Router {
    let rates = rate::RateGuards::new(&config.rate_limits);
    let api = Router::new()
        .route("/api/search", rates.search(post(search::search)))
        .route("/api/similar", rates.similar(post(search::similar)))
        .route("/api/feedback", rates.feedback(post(labels::feedback)))
        .route("/api/labels", get(labels::labels_export))
        .route("/api/review", get(review::queue_page).post(review::verdict))
        .route("/api/review/export", get(review::export))
        .route("/api/model", get(model::model))
        // A refit may be due on a call: the similar-image bucket bounds how often one client asks.
        .route("/api/cutoff", rates.similar(get(cutoff::cutoff)))
        .route("/api/{*rest}", get(unknown_route).post(unknown_route))
        .route("/images/{id}", get(images::image))
        .route("/thumbs/{id}", get(images::thumb))
        .route("/admin/report/", get(reports::data_report))
        .route("/admin/eval/", get(reports::eval_report))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready));
    let model_files = site::model_files(&state);
    let app = api
        .with_state(state)
        .merge(model_files)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(site::refuse_long_bodies))
        .fallback_service(site::static_site(config))
        .layer(Extension(config.trusted_proxies.clone()));
    if config.cors_origins.is_empty() {
        app
    } else {
        app.layer(site::cors(&config.cors_origins))
    }
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("no_route", "no such API route")
}
