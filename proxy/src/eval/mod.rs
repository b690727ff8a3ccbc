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
use crate::retrieve::{self, Retrieval};
use crate::store::{SearchQuery, VectorName, VectorStore};

pub mod chart;
pub mod cutoff_report;
pub mod feedback;
pub mod html;
pub mod judgments;
pub mod metrics;
pub mod report;
pub mod vectors;

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
    /// The vectors the queries were compared with.
    pub retrieval: Retrieval,
    /// The same queries against each kind of vector (`eval` on a collection with captions);
    /// empty otherwise.
    pub vectors: Vec<vectors::Compared>,
}

/// The query vector of every judged query, in order.
pub fn embed_queries(
    judged: &[Judged],
    encoder: &dyn TextEncoder,
) -> anyhow::Result<Vec<Vec<f32>>> {
    judged
        .iter()
        .map(|j| {
            encoder
                .embed_text(&j.query)
                .map_err(|e| anyhow::anyhow!("encoding `{}`: {e}", j.query))
        })
        .collect()
}

/// The top [`DEPTH`] ids of each query (by its vector in `vectors`) as `retrieval` ranks them.
pub async fn rank(
    judged: &[Judged],
    vectors: &[Vec<f32>],
    store: &dyn VectorStore,
    retrieval: Retrieval,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut ranked = BTreeMap::new();
    for (j, vector) in judged.iter().zip(vectors) {
        let query = SearchQuery {
            using: VectorName::Image,
            vector: vector.clone(),
            limit: DEPTH,
            offset: 0,
            filter: Default::default(),
        };
        let hits = retrieve::search(store, &query, retrieval).await?;
        ranked.insert(
            j.query.clone(),
            hits.iter().map(|h| external_id(h.id, &h.payload)).collect(),
        );
    }
    Ok(ranked)
}

/// Search and score every judged query, by its vector in `query_vectors` (from
/// [`embed_queries`], in order).
pub async fn evaluate(
    judged: &[Judged],
    skipped: usize,
    query_vectors: &[Vec<f32>],
    store: &dyn VectorStore,
    retrieval: Retrieval,
) -> anyhow::Result<EvalReport> {
    let ranked_all = rank(judged, query_vectors, store, retrieval).await?;
    let (per_query, summary, curve) = score(judged, &ranked_all);
    Ok(EvalReport {
        summary,
        per_query,
        curve,
        skipped,
        ranked: ranked_all,
        feedback: Vec::new(),
        cutoff: None,
        retrieval,
        vectors: Vec::new(),
    })
}

/// Each query's metrics, their means and the recall curve.
pub fn score(
    judged: &[Judged],
    ranked_all: &BTreeMap<String, Vec<String>>,
) -> (Vec<QueryMetrics>, Summary, Vec<(usize, f64)>) {
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
    (per_query, summary, curve)
}
