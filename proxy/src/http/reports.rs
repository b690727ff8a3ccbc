//! http/reports: how does an operator look at the HTML reports from a browser?
//!
//! `GET /admin/report/` answers `proxy report`'s page (`<storage>/report/index.html`) and
//! `GET /admin/eval/` the eval report (`<storage>/eval/report.html`), behind the admin token. The
//! pages have no JavaScript, so the browser sends the token by itself: HTTP Basic
//! authentication, the token as the password (any user name). A 401 carries
//! `WWW-Authenticate: Basic`, so the browser asks once and repeats it on each request; the
//! token never enters a URL (which would land in history, logs and `Referer`s). `Authorization:
//! Bearer <token>` works too, as on `/api/labels`. The file is the one named in `layout`: no
//! path is taken from the request. Answers are not cached and carry the page's own
//! Content-Security-Policy (no script, nothing fetched).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use crate::config::Secret;
use crate::report::page::CONTENT_SECURITY_POLICY;

use super::errors::ApiError;
use super::labels::constant_time_eq;
use super::state::AppState;

/// `proxy report`'s page.
pub async fn data_report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    page(&state, &headers, state.data.data_report(), "proxy report").await
}

/// The eval report in the default folder.
pub async fn eval_report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    page(&state, &headers, state.data.eval_html(), "proxy eval").await
}

async fn page(
    state: &AppState,
    headers: &HeaderMap,
    path: PathBuf,
    command: &'static str,
) -> Result<Response, ApiError> {
    check_page_admin(state.admin_token.as_ref(), headers)?;
    let read = tokio::task::spawn_blocking(move || std::fs::read(path))
        .await
        .map_err(ApiError::task("report_failed", "report read"))?;
    let body = read.map_err(|_| {
        ApiError::not_found(
            "no_report",
            format!("no report has been written here yet: run `{command}`"),
        )
    })?;
    let mut response = body.into_response();
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    Ok(response)
}

/// The token from `Authorization: Basic` (the password; any user name) or `Bearer`, compared in
/// constant time. No token configured: the pages are off.
fn check_page_admin(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = token.ok_or(ApiError::AdminOff)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(given_token)
        .unwrap_or_default();
    if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::AdminLogin)
    }
}

/// The token an `Authorization` value carries: Bearer's, or Basic's password.
fn given_token(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn tokens_from_basic_and_bearer() {
        assert_eq!(
            given_token(&basic("admin:s3cret")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(given_token(&basic(":s3:cret")).as_deref(), Some("s3:cret"));
        assert_eq!(given_token("Bearer s3cret").as_deref(), Some("s3cret"));
        assert_eq!(given_token("bearer  s3cret ").as_deref(), Some("s3cret"));
        for bad in ["Basic !!!", "Basic", "Digest x", "", &basic("no-colon")] {
            assert_eq!(given_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_check() {
        let token = Secret::new("s3cret");
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(value).expect("header"),
            );
            h
        };
        assert!(check_page_admin(Some(&token), &with(&basic("me:s3cret"))).is_ok());
        for wrong in [basic("me:s3cre"), basic("s3cret:"), "Bearer x".into()] {
            assert!(matches!(
                check_page_admin(Some(&token), &with(&wrong)),
                Err(ApiError::AdminLogin)
            ));
        }
        assert!(matches!(
            check_page_admin(Some(&token), &HeaderMap::new()),
            Err(ApiError::AdminLogin)
        ));
        assert!(matches!(
            check_page_admin(None, &with(&basic("me:s3cret"))),
            Err(ApiError::AdminOff)
        ));
    }
}
