//! http/labels: how do visitors' votes come in, and how do annotators get them out?
//!
//! `POST /api/feedback` checks a vote, checks the image is in the index, charges the vote to the
//! client's and the server's budgets (over budget: 429 `vote_budget` with `Retry-After`, nothing
//! written) and answers only once the label log has it on disk; `GET /api/labels` exports every
//! vote in force (JSON lines or TSV) behind the admin token. The log is written (and read for
//! the export) on blocking threads: a write waits for the disk, and now and then for a rewrite.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wire::{FeedbackRequest, FeedbackResponse};

use crate::config::Secret;
use crate::labels::{BudgetError, Label, Verdict, Vote};
use crate::store;

use super::client::ClientIp;
use super::errors::{ApiError, ApiJson, unknown_image};
use super::state::AppState;
use super::{MAX_CLIENT_ID_CHARS, MAX_NOTE_CHARS, MAX_QUERY_CHARS};

/// The label stays a string until checked, so an unknown one gets its own error code.
type FeedbackBody = FeedbackRequest<String>;

pub async fn feedback(
    State(state): State<Arc<AppState>>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> Result<Json<FeedbackResponse>, ApiError> {
    let vote = into_vote(body, state.spec.dim)?;
    // Only images in the index can be labelled.
    let known = state
        .store()
        .await?
        .get(&[store::point_id(&vote.image_id)], false)
        .await?;
    if known.is_empty() {
        return Err(unknown_image(&vote.image_id));
    }
    // A vote that replaces this client's earlier one costs the same: it writes a line too.
    let note_bytes = vote.note.as_ref().map_or(0, String::len);
    state
        .vote_budget
        .charge(client, note_bytes)
        .map_err(over_budget)?;
    let log = state.labels.clone();
    // Answered only once the vote is on disk (written and fsynced).
    let label = tokio::task::spawn_blocking(move || log.record(vote))
        .await
        .map_err(ApiError::task("label_store_failed", "label"))??;
    Ok(Json(FeedbackResponse {
        ok: true,
        label_id: label.label_id.to_string(),
        label: label.label,
    }))
}

fn over_budget(e: BudgetError) -> ApiError {
    ApiError::RateLimited {
        code: "vote_budget",
        message: e.to_string(),
        retry_after: e.retry_after,
    }
}

/// The vote, with every field checked and trimmed.
fn into_vote(body: FeedbackBody, dim: usize) -> Result<Vote, ApiError> {
    let query = body.query.trim().to_string();
    if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad(
            "bad_query",
            format!("`query` must be 1 to {MAX_QUERY_CHARS} characters"),
        ));
    }
    let label: Verdict = body
        .label
        .parse()
        .map_err(|e: wire::UnknownVerdict| ApiError::bad("bad_label", e.to_string()))?;
    if let Some(vector) = &body.query_vector {
        store::check_vector(vector, dim).map_err(|e| ApiError::bad("bad_vector", e.to_string()))?;
    }
    Ok(Vote {
        query,
        query_vector: body.query_vector,
        image_id: body.image_id,
        label,
        note: note(body.note)?,
        client_id: client_id(body.client_id)?,
    })
}

pub(super) fn note(note: Option<String>) -> Result<Option<String>, ApiError> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(ApiError::bad(
            "bad_note",
            format!("`note` is over {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(note)
}

fn client_id(client_id: Option<String>) -> Result<String, ApiError> {
    let client_id = client_id
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "anonymous".to_string());
    if client_id.chars().count() > MAX_CLIENT_ID_CHARS || client_id.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "bad_client_id",
            format!(
                "`client_id` must be at most {MAX_CLIENT_ID_CHARS} characters, no control characters"
            ),
        ));
    }
    Ok(client_id)
}

#[derive(Debug, Deserialize)]
pub struct LabelsQuery {
    format: Option<String>,
}

pub async fn labels_export(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LabelsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_admin(state.admin_token.as_ref(), &headers)?;
    let log = state.labels.clone();
    let labels = tokio::task::spawn_blocking(move || log.all())
        .await
        .map_err(ApiError::task("label_store_failed", "label export"))?;
    match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => {
            let mut body = String::new();
            for label in &labels {
                body.push_str(&serde_json::to_string(label).unwrap_or_default());
                body.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
        }
        "tsv" => Ok((
            [(
                header::CONTENT_TYPE,
                "text/tab-separated-values; charset=utf-8",
            )],
            labels_tsv(&labels),
        )
            .into_response()),
        other => Err(ApiError::bad(
            "bad_format",
            format!("format `{other}`: use jsonl or tsv"),
        )),
    }
}

/// The admin routes need `Authorization: Bearer <token>` (compared in constant time), and are
/// off when no token is configured.
pub(super) fn check_admin(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = token.ok_or(ApiError::ExportDisabled)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn labels_tsv(labels: &[Label]) -> String {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let mut out = String::from("label_id\ttime\tclient_id\tquery\timage_id\tlabel\tnote\n");
    for l in labels {
        let verdict = serde_json::to_value(l.label)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            l.label_id,
            crate::labels::rfc3339(l.time_ms),
            clean(&l.client_id),
            clean(&l.query),
            clean(&l.image_id),
            verdict,
            clean(l.note.as_deref().unwrap_or(""))
        ));
    }
    out
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
