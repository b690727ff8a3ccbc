//! The HTTP layer: routes, static files and health checks.
//!
//! Serves the static site (the trunk build of `frontend/`) at `/`, and the browser's model files
//! (the text-tower export of `clip`, see `proxy export-model`) under `/model/`.

use std::path::PathBuf;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tower_http::services::{ServeDir, ServeFile};

/// What the server serves.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The static site: `public/` (index.html, the wasm app).
    pub public_dir: PathBuf,
    /// The browser's model bundle (manifest.json, tokenizer.json, text-tower weights).
    pub model_dir: Option<PathBuf>,
}

/// The application's routes.
pub fn router(config: &ServeConfig) -> Router {
    let index = config.public_dir.join("index.html");
    let site = ServeDir::new(&config.public_dir).fallback(ServeFile::new(index));
    let mut app = Router::new().route("/healthz", get(|| async { "ok" }));
    app = match &config.model_dir {
        Some(model) => app.nest_service("/model", ServeDir::new(model)),
        // Without a bundle, model files are a plain 404 (not the site's index.html fallback),
        // so the web app can say that no model is installed.
        None => app.route("/model/{*file}", get(|| async { StatusCode::NOT_FOUND })),
    };
    app.fallback_service(site)
}
