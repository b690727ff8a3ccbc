//! http/health: is the server up, and can it answer searches?
//!
//! `GET /healthz` is liveness (the process answers); `GET /readyz` also asks the store and says
//! what is being served: points, model, dimension, collection and votes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use wire::{Health, Readiness};

use super::errors::ApiError;
use super::state::AppState;

pub async fn live() -> Json<Health> {
    Json(Health::ok())
}

pub async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<Readiness>, ApiError> {
    let store = state.store().await?;
    store.ping().await?;
    Ok(Json(Readiness {
        ready: true,
        points: store.count().await?,
        model: state.spec.model.clone(),
        dim: state.spec.dim,
        collection: state.spec.name.clone(),
        labels: state.labels.len(),
    }))
}
