//! The page's calls to the proxy (DESIGN §3): search by vector or text, similar, feedback, and
//! the static site's `settings.json`. Errors carry the proxy's own message, or say which URL
//! failed and how.

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wire::{
    CutoffState, ErrorBody, Example, FeedbackRequest, FeedbackResponse, Results, SearchRequest,
    SimilarRequest, Term, join_url,
};

/// Results per page (the proxy's default).
pub const PAGE_SIZE: usize = 20;

/// `settings.json` beside `index.html`: where the proxy is when the site is hosted elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The proxy's origin, e.g. `https://search.example.org`; empty: the page's own origin.
    #[serde(default)]
    pub api_base: String,
}

impl Settings {
    /// Reads `settings.json`. A missing file means the defaults; a broken one is an error that
    /// names the file and what is wrong, since a silently ignored setting is worse.
    pub async fn load() -> Result<Settings, String> {
        let url = "settings.json";
        let response = match Request::get(url).send().await {
            Ok(r) => r,
            Err(e) => return Err(format!("cannot read {url}: {e}")),
        };
        if response.status() == 404 {
            return Ok(Settings::default());
        }
        let text = response
            .text()
            .await
            .map_err(|e| format!("cannot read {url}: {e}"))?;
        // A static host with a single-page fallback answers a missing file with index.html.
        if text.trim_start().starts_with('<') {
            return Ok(Settings::default());
        }
        Settings::parse(&text).map_err(|e| format!("{url}: {e}"))
    }

    pub fn parse(text: &str) -> Result<Settings, String> {
        let settings: Settings = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let base = &settings.api_base;
        if !(base.is_empty() || base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "api_base {base:?} must be empty (same origin) or an http(s) URL"
            ));
        }
        Ok(settings)
    }
}

/// What a search asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Encoded in the browser: only the vector goes to the proxy.
    Vector(Vec<f32>),
    /// Encoded by the proxy (the fallback when the browser cannot run the model).
    Text(String),
    /// Weighted terms (`red car -night`): text encoded in the browser, images by id; the proxy
    /// composes them into one vector.
    Terms(Vec<Term>),
}

/// Images the visitor marked for this query ("More like the ones I marked"): results should be
/// like the positives and unlike the negatives. Ids are kept sorted, so the same marks always
/// make the same request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Examples {
    pub positive: Vec<String>,
    pub negative: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Api {
    base: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api {
            base: base.to_string(),
        }
    }

    /// A URL the proxy gave (`/thumbs/…`, `/images/…`) as the page must use it.
    pub fn url(&self, path: &str) -> String {
        join_url(&self.base, path)
    }

    pub async fn search(&self, query: &Query, offset: usize) -> Result<Results, String> {
        self.search_like(query, &Examples::default(), offset).await
    }

    /// A search with the visitor's marks as examples (the query counts as one more positive).
    pub async fn search_like(
        &self,
        query: &Query,
        like: &Examples,
        offset: usize,
    ) -> Result<Results, String> {
        let ids = |ids: &[String]| ids.iter().cloned().map(Example::Id).collect();
        let mut body = SearchRequest {
            limit: Some(PAGE_SIZE),
            offset: Some(offset),
            positive: ids(&like.positive),
            negative: ids(&like.negative),
            ..SearchRequest::default()
        };
        match query {
            Query::Vector(v) => body.vector = Some(v.clone()),
            Query::Text(t) => body.text = Some(t.clone()),
            Query::Terms(t) => body.terms = t.clone(),
        }
        self.post("/api/search", &body).await
    }

    pub async fn similar(&self, id: &str, offset: usize) -> Result<Results, String> {
        let body = SimilarRequest {
            id: id.to_string(),
            limit: Some(PAGE_SIZE),
            offset: Some(offset),
            ..SimilarRequest::default()
        };
        self.post("/api/similar", &body).await
    }

    /// The learned "no good match" line: off (and what it needs) or on.
    pub async fn cutoff(&self) -> Result<CutoffState, String> {
        let url = self.url("/api/cutoff");
        let response = Request::get(&url)
            .send()
            .await
            .map_err(|e| format!("cannot reach the search server at {url}: {e}"))?;
        read_json(&url, response).await
    }

    /// Resolves once the proxy has the vote on disk.
    pub async fn feedback(&self, vote: &FeedbackRequest) -> Result<(), String> {
        self.post::<_, FeedbackResponse>("/api/feedback", vote)
            .await
            .map(|_| ())
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, String> {
        let url = self.url(path);
        let body = serde_json::to_string(body).map_err(|e| format!("{url}: {e}"))?;
        let request = Request::post(&url)
            .header("content-type", "application/json")
            .body(body)
            .map_err(|e| format!("{url}: {e}"))?;
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach the search server at {url}: {e}"))?;
        read_json(&url, response).await
    }
}

/// The answer's JSON, or the proxy's error message (`{"error":{"code","message"}}`).
async fn read_json<T: DeserializeOwned>(url: &str, response: Response) -> Result<T, String> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{url}: the answer broke off: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(error_message(status, &text));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: unexpected answer ({e})"))
}

/// The proxy's message for a failed call, or the status when the body is not the proxy's.
pub fn error_message(status: u16, body: &str) -> String {
    serde_json::from_str::<ErrorBody>(body)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| format!("the search server answered HTTP {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let ok = |text: &str, base: &str| {
            assert_eq!(
                Settings::parse(text).map(|s| s.api_base),
                Ok(base.to_string())
            )
        };
        ok("{}", "");
        ok(r#"{"api_base": ""}"#, "");
        ok(r#"{"api_base": "https://x.org"}"#, "https://x.org");
        let bad = |text: &str, says: &str| {
            let e = Settings::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        };
        bad(r#"{"api_base": "x.org"}"#, "must be empty");
        bad(r#"{"apibase": ""}"#, "unknown field `apibase`");
        bad("{", "EOF");
    }

    #[test]
    fn errors_carry_the_proxys_message() {
        let body = r#"{"error":{"code":"busy","message":"the server is busy"}}"#;
        assert_eq!(error_message(429, body), "the server is busy");
        assert_eq!(
            error_message(502, "<html>bad gateway</html>"),
            "the search server answered HTTP 502"
        );
    }
}
