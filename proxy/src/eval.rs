//! eval: how good is retrieval, measured from labels?
//!
//! Judgments come from `data/queries.tsv` (`query`, comma-separated `relevant_ids`) and from the
//! crowdsourced labels: for each (query, image) the majority over clients decides (a flag counts
//! as irrelevant; a tie leaves the TSV's judgment). Each query is embedded natively with the same
//! `clip` crate as the browser uses, searched through the store trait, and scored with the pure
//! functions of [`crate::metrics`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::labels::{Label, majority};
use crate::metrics::{self, QueryMetrics, Summary};
use crate::model::TextEncoder;
use crate::store::{SearchQuery, VectorStore};

/// How deep each query is searched (the largest cut-off reported and the chart's last K).
pub const DEPTH: usize = 20;

/// One query and the ids that are relevant to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub query: String,
    pub relevant: BTreeSet<String>,
}

/// Read `queries.tsv`; a bad line is an error naming it.
pub fn read_queries(path: &Path) -> anyhow::Result<Vec<Judged>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parse_queries(&text, &path.display().to_string())
}

/// Parse the text of a `queries.tsv`.
pub fn parse_queries(text: &str, name: &str) -> anyhow::Result<Vec<Judged>> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| {
            l.trim_start_matches('\u{feff}')
                .split('\t')
                .map(str::trim)
                .collect()
        })
        .unwrap_or_default();
    let (Some(q_col), Some(r_col)) = (
        header.iter().position(|c| *c == "query"),
        header.iter().position(|c| *c == "relevant_ids"),
    ) else {
        anyhow::bail!(
            "{name} line 1: needs the columns `query` and `relevant_ids` (tab-separated)"
        );
    };
    let mut out: Vec<Judged> = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() != header.len() {
            anyhow::bail!(
                "{name} line {line_no}: {} tab-separated fields, the header has {}",
                cells.len(),
                header.len()
            );
        }
        let query = cells[q_col].trim().to_string();
        if query.is_empty() {
            anyhow::bail!("{name} line {line_no}: empty `query`");
        }
        if !seen.insert(query.clone()) {
            anyhow::bail!("{name} line {line_no}: query `{query}` appears twice");
        }
        let relevant = cells[r_col]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        out.push(Judged { query, relevant });
    }
    Ok(out)
}

/// Merge the TSV judgments with the label majority. Queries that end with no relevant image are
/// left out (no metric is defined for them); the returned count says how many.
pub fn judgments(tsv: &[Judged], labels: &[Label]) -> (Vec<Judged>, usize) {
    let mut by_query: BTreeMap<String, BTreeSet<String>> = tsv
        .iter()
        .map(|j| (j.query.clone(), j.relevant.clone()))
        .collect();
    for ((query, image), verdict) in majority(labels) {
        let set = by_query.entry(query).or_default();
        match verdict {
            Some(true) => {
                set.insert(image);
            }
            Some(false) => {
                set.remove(&image);
            }
            None => {}
        }
    }
    let total = by_query.len();
    let judged: Vec<Judged> = by_query
        .into_iter()
        .filter(|(_, r)| !r.is_empty())
        .map(|(query, relevant)| Judged { query, relevant })
        .collect();
    let skipped = total - judged.len();
    (judged, skipped)
}

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
}

/// Embed, search and score every judged query.
pub async fn evaluate(
    judged: &[Judged],
    skipped: usize,
    encoder: &dyn TextEncoder,
    store: &dyn VectorStore,
) -> anyhow::Result<EvalReport> {
    let mut per_query = Vec::new();
    let mut ranked_all = BTreeMap::new();
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
        let ranked: Vec<String> = hits
            .iter()
            .map(|h| match h.payload.get("id") {
                Some(Value::String(id)) => id.clone(),
                _ => h.id.to_string(),
            })
            .collect();
        ranked_all.insert(j.query.clone(), ranked);
    }
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
    })
}

impl EvalReport {
    /// The Markdown report.
    pub fn markdown(&self, title: &str) -> String {
        let mut md = metrics::markdown(&self.summary, &self.per_query, title);
        if self.skipped > 0 {
            md.push_str(&format!(
                "\n{} labelled quer{} left out: no image is relevant by the labels.\n",
                self.skipped,
                if self.skipped == 1 { "y" } else { "ies" }
            ));
        }
        md
    }

    /// The JSON report.
    pub fn json(&self) -> Value {
        let recall = |r: &[(usize, f64)]| -> Value {
            r.iter()
                .map(|(k, v)| (format!("recall@{k}"), json!(v)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let per_query: Vec<Value> = metrics::worst_first(&self.per_query)
            .iter()
            .map(|q| {
                json!({
                    "query": q.query,
                    "relevant": q.relevant,
                    "first_relevant_rank": q.first_relevant_rank,
                    "recall": recall(&q.recall),
                    "mrr": q.mrr,
                    "ndcg@10": q.ndcg10,
                    "ranked": self.ranked.get(&q.query),
                })
            })
            .collect();
        json!({
            "summary": {
                "queries": self.summary.queries,
                "recall": recall(&self.summary.recall),
                "mrr": self.summary.mrr,
                "ndcg@10": self.summary.ndcg10,
                "skipped_queries": self.skipped,
            },
            "recall_curve": self.curve.iter().map(|(k, v)| json!({"k": k, "recall": v})).collect::<Vec<_>>(),
            "per_query": per_query,
        })
    }
}
