//! The text2img browser app: a Leptos page ([`ui`]) and a Web Worker ([`worker`]) that turns the
//! query text into a CLIP vector, so the text never leaves the browser. They speak [`protocol`]'s
//! messages. Two wasm binaries (`src/main.rs`, `src/bin/worker.rs`) start one side each; trunk
//! builds both into `public/`.

pub mod protocol;
pub mod ui;
pub mod worker;

/// `12.3 MB` (decimal megabytes, as download sizes are usually given).
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `base` + `path`, where `base` is the proxy's origin (`""` for the page's own) and `path` starts
/// with `/`.
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

    #[test]
    fn megabytes_are_decimal() {
        assert_eq!(megabytes(67_800_000), "67.8 MB");
        assert_eq!(megabytes(0), "0.0 MB");
    }
}
