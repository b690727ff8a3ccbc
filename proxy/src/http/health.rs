//! http/health: is the server up, and can it answer searches?
//!
//! `GET /healthz` is liveness (the process answers); `GET /readyz` also asks the store and says
//! what is being served: points, model, dimension, collection and votes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::state::AppState;

pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let store = state.store().await?;
    store.ping().await?;
    let points = store.count().await?;
    Ok(Json(json!({
        "ready": true,
        "points": points,
        "model": state.spec.model,
        "dim": state.spec.dim,
        "collection": state.spec.name,
        "labels": state.labels.len(),
    })))
}
