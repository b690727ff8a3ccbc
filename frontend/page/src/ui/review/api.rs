//! The review page's calls to the proxy's admin routes, each with the admin token as
//! `Authorization: Bearer`: a page of the queue, a verdict, the `queries.tsv` export. A refused
//! token is its own error, so the page can ask for it again.

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use wire::{ReviewQueue, ReviewRequest, ReviewResponse, join_url};

use crate::ui::api::error_message;

/// Items per page of the queue.
pub const PAGE_SIZE: usize = 20;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// 401 or 403: no token, a wrong one, or the routes are off.
    Refused(String),
    Other(String),
}

impl CallError {
    pub fn message(&self) -> &str {
        match self {
            CallError::Refused(m) | CallError::Other(m) => m,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdminApi {
    pub base: String,
    pub token: String,
}

impl AdminApi {
    pub fn url(&self, path: &str) -> String {
        join_url(&self.base, path)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub async fn queue(&self, offset: usize) -> Result<ReviewQueue, CallError> {
        let url = self.url(&format!("/api/review?offset={offset}&limit={PAGE_SIZE}"));
        let response = Request::get(&url)
            .header("Authorization", &self.bearer())
            .send()
            .await
            .map_err(|e| unreachable_server(&url, e))?;
        let text = read(&url, response).await?;
        parse(&url, &text)
    }

    /// Resolves once the proxy has the verdict on disk.
    pub async fn verdict(&self, body: &ReviewRequest) -> Result<ReviewResponse, CallError> {
        let url = self.url("/api/review");
        let body = serde_json::to_string(body).map_err(|e| CallError::Other(e.to_string()))?;
        let request = Request::post(&url)
            .header("Authorization", &self.bearer())
            .header("content-type", "application/json")
            .body(body)
            .map_err(|e| CallError::Other(format!("{url}: {e}")))?;
        let response = request
            .send()
            .await
            .map_err(|e| unreachable_server(&url, e))?;
        let text = read(&url, response).await?;
        parse(&url, &text)
    }

    /// The reviewed judgments as `queries.tsv` text.
    pub async fn export(&self) -> Result<String, CallError> {
        let url = self.url("/api/review/export");
        let response = Request::get(&url)
            .header("Authorization", &self.bearer())
            .send()
            .await
            .map_err(|e| unreachable_server(&url, e))?;
        read(&url, response).await
    }
}

fn unreachable_server(url: &str, e: gloo_net::Error) -> CallError {
    CallError::Other(format!("cannot reach the search server at {url}: {e}"))
}

/// The body of a successful answer, or the proxy's error.
async fn read(url: &str, response: Response) -> Result<String, CallError> {
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| CallError::Other(format!("{url}: the answer broke off: {e}")))?;
    match status {
        200..=299 => Ok(text),
        401 | 403 => Err(CallError::Refused(error_message(status, &text))),
        _ => Err(CallError::Other(error_message(status, &text))),
    }
}

fn parse<T: DeserializeOwned>(url: &str, text: &str) -> Result<T, CallError> {
    serde_json::from_str(text)
        .map_err(|e| CallError::Other(format!("{url}: unexpected answer ({e})")))
}
