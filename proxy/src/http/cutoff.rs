//! http/cutoff: where is the "no good match" line, and which hits fall below it?
//!
//! `GET /api/cutoff` answers the line's state ([`wire::CutoffState`]): off with what is missing,
//! or the rule in force with its held-out precision and recall. It fits first when a fit is due
//! (one at a time; bounded work), so a page that asks after voting sees the new line. A plain
//! search (`vector` or `text`) gets its query's line in `Results.cutoff` and each hit below it
//! `weak`; the per-query rule needs the query's top score, taken from the first hit of a first,
//! unfiltered page and otherwise from one more search of a single hit. Searches only start a
//! refit in the background ([`schedule`]); they never wait for one.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use wire::{CutoffOff, CutoffOn, CutoffRule, CutoffState, Results, RuleScore};

use crate::cutoff::live::FitSource;
use crate::cutoff::{Cutoff, MIN_PAIRS, Rule, RuleFit};
use crate::store::{Hit, SearchQuery, StoreError, VectorStore};

use super::errors::ApiError;
use super::state::AppState;

pub async fn cutoff(State(state): State<Arc<AppState>>) -> Result<Json<CutoffState>, ApiError> {
    let source = fit_source(&state).await?;
    let cutoff = state.cutoff.refresh(&source).await;
    Ok(Json(wire_state(&cutoff)))
}

/// Fit now if due (at start: `proxy serve` fits before it listens); a store that is down is
/// tried again later.
pub async fn fit_now(state: &AppState) {
    match fit_source(state).await {
        Ok(source) => {
            state.cutoff.refresh(&source).await;
        }
        Err(e) => tracing::warn!("the \"no good match\" line is fitted later: {e}"),
    }
}

/// Start a refit in the background when one may be due (at most every few seconds).
pub fn schedule(state: &Arc<AppState>) {
    if !state.cutoff.should_schedule() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        if let Ok(source) = fit_source(&state).await {
            state.cutoff.refresh(&source).await;
        }
    });
}

async fn fit_source(state: &AppState) -> Result<FitSource, StoreError> {
    Ok(FitSource {
        labels: state.labels.clone(),
        reviews: state.reviews.clone(),
        store: state.store().await?.clone(),
        encoder: state.encoder.clone(),
        dim: state.spec.dim,
    })
}

/// The query's top score when `hits` tell it: the first hit of a first, unfiltered page.
pub fn top_of(hits: &[Hit], offset: usize, filtered: bool) -> Option<f32> {
    (offset == 0 && !filtered)
        .then(|| hits.first().map(|h| h.score))
        .flatten()
}

/// Mark `page`'s hits against the line in force for a plain query `vector`: `Results.cutoff`
/// and each hit's `weak`. `top` is the query's top score when the page told it ([`top_of`]);
/// otherwise, if the rule needs it, one more search finds it.
pub async fn mark(
    state: &AppState,
    store: &dyn VectorStore,
    vector: &[f32],
    top: Option<f32>,
    page: &mut Results,
) -> Result<(), StoreError> {
    let current = state.cutoff.current();
    let Some(chosen) = current.chosen() else {
        return Ok(());
    };
    let top = if !chosen.rule.needs_top() {
        0.0
    } else if let Some(top) = top {
        top
    } else {
        let best = store
            .search(&SearchQuery {
                using: crate::store::VectorName::Image,
                vector: vector.to_vec(),
                limit: 1,
                offset: 0,
                filter: Default::default(),
            })
            .await?;
        match best.first() {
            Some(hit) => hit.score,
            None => return Ok(()),
        }
    };
    let line = chosen.rule.line(chosen.value, top);
    page.cutoff = Some(line);
    for hit in &mut page.results {
        hit.weak = hit.score < line;
    }
    Ok(())
}

/// The state as the wire says it.
fn wire_state(cutoff: &Cutoff) -> CutoffState {
    match cutoff {
        Cutoff::Off {
            labels,
            queries,
            reason,
        } => CutoffState::Off(CutoffOff {
            labels: *labels,
            queries: *queries,
            needed: MIN_PAIRS,
            reason: reason.clone(),
        }),
        Cutoff::On {
            chosen,
            compared,
            labels,
            queries,
        } => CutoffState::On(CutoffOn {
            rule: wire_rule(chosen.rule),
            value: chosen.value,
            precision: chosen.held_out.precision,
            recall: chosen.held_out.recall,
            f1: chosen.held_out.f1,
            labels: *labels,
            queries: *queries,
            compared: compared.iter().map(rule_score).collect(),
        }),
    }
}

fn rule_score(fit: &RuleFit) -> RuleScore {
    RuleScore {
        rule: wire_rule(fit.rule),
        value: fit.value,
        precision: fit.held_out.precision,
        recall: fit.held_out.recall,
        f1: fit.held_out.f1,
    }
}

fn wire_rule(rule: Rule) -> CutoffRule {
    match rule {
        Rule::Flat => CutoffRule::Flat,
        Rule::BelowTop => CutoffRule::BelowTop,
    }
}
