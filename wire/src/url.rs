//! URLs in the proxy's answers (`/thumbs/…`, `/images/…`, `/model/…`) are relative to the proxy,
//! whose origin the client knows as `api_base` (`settings.json`, [`crate::worker::ToWorker`]):
//! [`join_url`] is how a client resolves one against the other.

/// `base` + `path`, where `base` is the proxy's origin (`""` for the page's own) and `path` starts
/// with `/`; an absolute `path` (`http(s)://…`) is kept as it is.
pub fn join_url(base: &str, path: &str) -> String {
    if path.starts_with("http://") || path.starts_with("https://") {
        return path.to_string();
    }
    format!("{}{path}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_base_and_path() {
        let check = |base: &str, path: &str, want: &str| assert_eq!(join_url(base, path), want);
        check("", "/api/search", "/api/search");
        check(
            "https://api.example.org",
            "/api/search",
            "https://api.example.org/api/search",
        );
        check(
            "https://api.example.org/",
            "/thumbs/a",
            "https://api.example.org/thumbs/a",
        );
        check(
            "https://x.org/t2i/",
            "/model/m?sha256=1",
            "https://x.org/t2i/model/m?sha256=1",
        );
        check(
            "https://x.org",
            "https://cdn.org/a.jpg",
            "https://cdn.org/a.jpg",
        );
    }
}
