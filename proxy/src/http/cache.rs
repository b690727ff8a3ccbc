//! http/cache: may the browser keep what it already has?
//!
//! Thumbnails and model files carry a strong ETag (their sha256); [`not_modified`] is the one
//! `If-None-Match` check for both (a list of tags, or `*`).

use axum::http::{HeaderMap, header};

/// A quoted entity tag from a hex digest.
pub fn etag(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

/// Whether the request's `If-None-Match` names `etag` (or is `*`): answer 304.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == etag || t == "*" || t.strip_prefix("W/") == Some(etag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check(if_none_match: &[&str], want: bool) {
        let mut headers = HeaderMap::new();
        for v in if_none_match {
            headers.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        assert_eq!(not_modified(&headers, "\"ab\""), want, "{if_none_match:?}");
    }

    #[test]
    fn if_none_match_lists() {
        check(&[], false);
        check(&["\"ab\""], true);
        check(&[" \"ab\" "], true);
        check(&["\"x\", \"ab\""], true);
        check(&["\"x\"", "\"ab\""], true);
        check(&["W/\"ab\""], true);
        check(&["*"], true);
        check(&["\"abc\""], false);
        check(&["ab"], false);
    }
}
