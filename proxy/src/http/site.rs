//! http/site: what does a browser get outside the API?
//!
//! The static site from `public/` (with `index.html` as the fallback for client-side routes,
//! compressed for browsers that accept gzip or brotli),
//! the model files of the bundle under `/model/` (their JSON compressed too), the API's CORS
//! policy for a site hosted on another origin, and the request-body limit.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::HttpBody as Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::Compression;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeader;

use super::errors::{ApiError, no_model};
use super::model::model_cache;
use super::state::AppState;
use super::{MAX_BODY, ServeConfig};

/// The site's files keep their names across builds (index.html, the worker's files), so the
/// browser must revalidate them (a 304 when unchanged) or it mixes an old worker with a new page.
/// The model files are content-addressed and cached for good ([`model_cache`]). The site's text
/// and wasm are compressed on the way out (gzip or brotli, as the browser accepts): the two wasm
/// files shrink to about a third. Anything else a site folder may hold (images, archives, model
/// weights) goes out as it is: it hardly compresses, and compressing it on every request would
/// cost the server a core for seconds.
pub fn static_site(
    config: &ServeConfig,
) -> Compression<SetResponseHeader<ServeDir<ServeFile>, HeaderValue>, SiteText> {
    let index = config.public_dir.join("index.html");
    Compression::new(SetResponseHeader::if_not_present(
        ServeDir::new(&config.public_dir).fallback(ServeFile::new(index)),
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    ))
    .compress_when(SiteText)
}

/// Which of the site's answers are worth compressing: text (HTML, JavaScript, CSS, JSON, SVG)
/// and wasm, over 1 KiB.
#[derive(Debug, Clone, Copy)]
pub struct SiteText;

impl Predicate for SiteText {
    fn should_compress<B: Body>(&self, response: &Response<B>) -> bool {
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let text = kind.starts_with("text/")
            || [
                "application/wasm",
                "application/javascript",
                "application/json",
                "image/svg+xml",
            ]
            .iter()
            .any(|t| kind.starts_with(t));
        text && SizeAbove::new(1024).should_compress(response)
    }
}

/// `/model/…`: the bundle's files, or a plain 404 without a bundle (not the site's index.html
/// fallback), so the web app can say that no model is installed. The tokenizer and config (JSON)
/// are compressed like the site's text (the 1.5 MB `tokenizer.json` goes out as about 0.55 MB
/// with gzip or brotli); the weights go out as they are.
pub fn model_files(state: &Arc<AppState>) -> Router {
    match &state.bundle {
        Some(bundle) => Router::new()
            .nest_service(
                "/model",
                Compression::new(ServeDir::new(&bundle.dir)).compress_when(SiteText),
            )
            .layer(middleware::from_fn_with_state(state.clone(), model_cache)),
        None => Router::new().route("/model/{*file}", get(|| async { no_model() })),
    }
}

/// Origins allowed to call the API from another site; `*` allows any.
pub fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::RANGE])
        .max_age(Duration::from_secs(3600))
}

/// A body declared longer than [`MAX_BODY`] is answered 413 after it has been read and dropped
/// (up to 4 MiB). Answering before it arrives makes the server close a connection the client is
/// still writing to, and the client then sees "broken pipe" or a reset instead of the answer.
pub async fn refuse_long_bodies(request: Request, next: Next) -> Response {
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
    ApiError::BodyTooLarge.into_response()
}
