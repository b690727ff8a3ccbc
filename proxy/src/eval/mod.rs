//! eval: how good is retrieval, measured from labels?
//!
//! A run takes the judged queries ([`judgments`]), embeds each natively with the same `clip`
//! crate as the browser uses, searches it through the store trait, and scores the ranked ids with
//! the pure functions of [`metrics`]; [`report`] renders the outcome (Markdown, JSON and the
//! [`chart`] of the recall curve) and writes it to a directory; [`html`] adds `report.html`, with
//! the worst and best queries' results as thumbnails.

use std::collections::{BTreeMap, HashSet};

use crate::model::TextEncoder;
use crate::payload::external_id;
use crate::store::{SearchQuery, VectorStore};

pub mod chart;
pub mod cutoff_report;
pub mod feedback;
pub mod html;
pub mod judgments;
pub mod metrics;
pub mod report;

pub use judgments::{Judged, judgments, judgments_reviewed, parse_queries, read_queries};
pub use metrics::{QueryMetrics, Summary};

/// How deep each query is searched (the largest cut-off reported and the chart's last K).
pub const DEPTH: usize = 20;

/// The outcome of an eval run.
#[derive(Debug, Clone)]
pub struct EvalReport {
    pub summary: Summary,
    pub per_query: Vec<QueryMetrics>,
    /// Mean recall at K = 1..=DEPTH.
    pub curve: Vec<(usize, f64)>,
    /// Queries left out for having no relevant image.
    pub skipped: usize,
    /// The ranked ids per query (for the JSON report).
    pub ranked: BTreeMap<String, Vec<String>>,
    /// One round of relevance feedback per strategy (`eval --feedback`); empty otherwise.
    pub feedback: Vec<feedback::FeedbackReport>,
    /// The learned "no good match" line and its held-out figures, when it was fitted.
    pub cutoff: Option<crate::cutoff::Cutoff>,
}

/// Embed, search and score every judged query.
pub async fn evaluate(
    judged: &[Judged],
    skipped: usize,
    encoder: &dyn TextEncoder,
    store: &dyn VectorStore,
) -> anyhow::Result<EvalReport> {
    let mut ranked_all: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for j in judged {
        let vector = encoder
            .embed_text(&j.query)
            .map_err(|e| anyhow::anyhow!("encoding `{}`: {e}", j.query))?;
        let hits = store
            .search(&SearchQuery {
                vector,
                limit: DEPTH,
                offset: 0,
                filter: Default::default(),
            })
            .await?;
        ranked_all.insert(
            j.query.clone(),
            hits.iter().map(|h| external_id(h.id, &h.payload)).collect(),
        );
    }
    let mut per_query = Vec::new();
    let mut runs = Vec::new();
    for j in judged {
        let ranked: Vec<&str> = ranked_all[&j.query].iter().map(String::as_str).collect();
        let relevant: HashSet<&str> = j.relevant.iter().map(String::as_str).collect();
        per_query.push(metrics::query_metrics(&j.query, &ranked, &relevant));
        runs.push((ranked, relevant));
    }
    let summary = metrics::summarize(&per_query);
    let curve = metrics::recall_curve(&runs, DEPTH);
    Ok(EvalReport {
        summary,
        per_query,
        curve,
        skipped,
        ranked: ranked_all,
        feedback: Vec::new(),
        cutoff: None,
    })
}
