//! http/health: is the server up, and can it answer searches?
//!
//! `GET /healthz` is liveness (the process answers); `GET /readyz` also asks the store and says
//! what is being served: points, model, dimension, collection and votes. When the store cannot
//! answer, `/readyz` is a 503 that says which part is not ready (`wire::Unready`), with the same
//! code and short message a search would get; the store's own words go to the log only.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use wire::{Health, Readiness};

use super::errors::unready;
use super::state::AppState;
use crate::store::StoreError;

pub async fn live() -> Json<Health> {
    Json(Health::ok())
}

pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    match readiness(&state).await {
        Ok(ready) => Json(ready).into_response(),
        Err(e) => unready(e),
    }
}

async fn readiness(state: &AppState) -> Result<Readiness, StoreError> {
    let store = state.store().await?;
    store.ping().await?;
    Ok(Readiness {
        ready: true,
        points: store.count().await?,
        model: state.spec.model.clone(),
        dim: state.spec.dim,
        collection: state.spec.name.clone(),
        labels: state.labels.len(),
    })
}
