//! The page's calls to the proxy (DESIGN §3): search by vector or text, similar, feedback, and
//! the static site's `settings.json`. Errors carry the proxy's own message, or say which URL
//! failed and how.

use gloo_net::http::{Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::join_url;

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

/// One result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hit {
    pub id: String,
    pub score: f32,
    pub url: String,
    pub thumbnail_url: String,
    pub caption: Option<String>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Results {
    pub results: Vec<Hit>,
    pub took_ms: f64,
    pub next_offset: Option<usize>,
}

/// What a search asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Encoded in the browser: only the vector goes to the proxy.
    Vector(Vec<f32>),
    /// Encoded by the proxy (the fallback when the browser cannot run the model).
    Text(String),
}

/// The labels of DESIGN §3; `None` withdraws the vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    Relevant,
    Irrelevant,
    Flag,
    None,
}

/// A vote as the proxy wants it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback<'a> {
    pub query: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_vector: Option<&'a [f32]>,
    pub image_id: &'a str,
    pub label: Label,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
    pub client_id: &'a str,
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
        let mut body = json!({"limit": PAGE_SIZE, "offset": offset});
        match query {
            Query::Vector(v) => body["vector"] = json!(v),
            Query::Text(t) => body["text"] = json!(t),
        }
        self.post("/api/search", &body).await
    }

    pub async fn similar(&self, id: &str, offset: usize) -> Result<Results, String> {
        let body = json!({"id": id, "limit": PAGE_SIZE, "offset": offset});
        self.post("/api/similar", &body).await
    }

    /// Resolves once the proxy has the vote on disk.
    pub async fn feedback(&self, vote: &Feedback<'_>) -> Result<(), String> {
        let body = serde_json::to_value(vote).map_err(|e| e.to_string())?;
        self.post::<Value>("/api/feedback", &body).await.map(|_| ())
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, String> {
        let url = self.url(path);
        let request = Request::post(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .map_err(|e| format!("{url}: {e}"))?;
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach the search server at {url}: {e}"))?;
        read_json(&url, response).await
    }
}

/// The answer's JSON, or the proxy's error message (`{"error":{"code","message"}}`).
async fn read_json<T: for<'de> Deserialize<'de>>(
    url: &str,
    response: Response,
) -> Result<T, String> {
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
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("the search server answered HTTP {status}"))
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

    #[test]
    fn feedback_wire_format() {
        let vote = Feedback {
            query: "red car",
            query_vector: Some(&[0.5]),
            image_id: "cat",
            label: Label::None,
            note: None,
            client_id: "c",
        };
        assert_eq!(
            serde_json::to_string(&vote).unwrap(),
            r#"{"query":"red car","query_vector":[0.5],"image_id":"cat","label":"none","client_id":"c"}"#
        );
    }
}
