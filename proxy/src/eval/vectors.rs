//! eval/vectors: do caption vectors find more, and which fusion ranks best?
//!
//! On a collection with caption vectors, `proxy eval` runs the same judged queries (each encoded
//! once) against the image vectors, the caption vectors, and both fused by reciprocal-rank fusion
//! and by weighted sums at a few weights ([`WEIGHTS`]), and reports each one's Recall@K, MRR and
//! nDCG@10 side by side: the figures that choose [`crate::retrieve::Fusion::default`].

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::metrics::Summary;
use super::{Judged, rank, score};
use crate::retrieve::{Fusion, Retrieval, Vectors};
use crate::store::VectorStore;

/// The caption weights `w` of the weighted sums compared.
pub const WEIGHTS: [f32; 3] = [0.25, 0.5, 0.75];

/// One way of searching and how it scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub retrieval: Retrieval,
    pub summary: Summary,
}

/// Every way compared: image, caption, fused by RRF, fused by each weighted sum.
pub fn retrievals() -> Vec<Retrieval> {
    let one = |vectors, fusion| Retrieval { vectors, fusion };
    let mut all = vec![
        one(Vectors::Image, Fusion::Rrf),
        one(Vectors::Caption, Fusion::Rrf),
        one(Vectors::Fused, Fusion::Rrf),
    ];
    all.extend(WEIGHTS.map(|w| one(Vectors::Fused, Fusion::Weighted(w))));
    all
}

/// The judged queries (their vectors in `query_vectors`, in order) searched every way.
pub async fn compare(
    judged: &[Judged],
    query_vectors: &[Vec<f32>],
    store: &dyn VectorStore,
) -> anyhow::Result<Vec<Compared>> {
    let mut out = Vec::new();
    for retrieval in retrievals() {
        let ranked = rank(judged, query_vectors, store, retrieval).await?;
        let (_, summary, _) = score(judged, &ranked);
        out.push(Compared { retrieval, summary });
    }
    Ok(out)
}

/// A short name of a way of searching: `image`, `caption`, `fused rrf`, `fused weighted:0.5`.
pub fn name(retrieval: &Retrieval) -> String {
    match retrieval.vectors {
        Vectors::Image => "image".into(),
        Vectors::Caption => "caption".into(),
        Vectors::Fused => format!("fused {}", retrieval.fusion),
    }
}

/// The Markdown section: one row per way of searching.
pub fn markdown(compared: &[Compared]) -> String {
    let Some(first) = compared.first() else {
        return String::new();
    };
    let mut out = String::from(
        "\n## Image, caption and fused vectors\n\nThe same queries against each kind of \
         vector; `fused` merges the image and caption rankings by reciprocal-rank fusion \
         (`rrf`) or by a weighted sum of the two cosines (`weighted:w`, w on the caption).\n\n\
         | Vectors |",
    );
    for (k, _) in &first.summary.recall {
        let _ = write!(out, " R@{k} |");
    }
    out.push_str(" MRR | nDCG@10 |\n|---|");
    out.push_str(&"---:|".repeat(first.summary.recall.len() + 2));
    out.push('\n');
    for c in compared {
        let _ = write!(out, "| {} |", name(&c.retrieval));
        for (_, r) in &c.summary.recall {
            let _ = write!(out, " {r:.3} |");
        }
        let _ = writeln!(out, " {:.3} | {:.3} |", c.summary.mrr, c.summary.ndcg10);
    }
    out
}

/// The JSON section: `[{"vectors": "fused rrf", "recall": {...}, "mrr": …, "ndcg@10": …}]`.
pub fn json(compared: &[Compared]) -> Value {
    compared
        .iter()
        .map(|c| {
            let recall: serde_json::Map<String, Value> = c
                .summary
                .recall
                .iter()
                .map(|(k, v)| (format!("recall@{k}"), json!(v)))
                .collect();
            json!({
                "vectors": name(&c.retrieval),
                "recall": recall,
                "mrr": c.summary.mrr,
                "ndcg@10": c.summary.ndcg10,
            })
        })
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_is_compared_once_and_named() {
        let names: Vec<String> = retrievals().iter().map(name).collect();
        assert_eq!(
            names,
            [
                "image",
                "caption",
                "fused rrf",
                "fused weighted:0.25",
                "fused weighted:0.5",
                "fused weighted:0.75"
            ]
        );
    }

    #[test]
    fn the_table_has_a_row_per_way_and_a_column_per_figure() {
        let summary = Summary {
            queries: 3,
            recall: vec![(1, 0.5), (5, 1.0)],
            mrr: 0.75,
            ndcg10: 0.8,
        };
        let compared: Vec<Compared> = retrievals()
            .into_iter()
            .map(|retrieval| Compared {
                retrieval,
                summary: summary.clone(),
            })
            .collect();
        let md = markdown(&compared);
        assert!(
            md.contains("| Vectors | R@1 | R@5 | MRR | nDCG@10 |"),
            "{md}"
        );
        assert!(
            md.contains("| fused rrf | 0.500 | 1.000 | 0.750 | 0.800 |"),
            "{md}"
        );
        assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 1 + 6);
        assert_eq!(json(&compared)[1]["vectors"], "caption");
        assert!(markdown(&[]).is_empty());
    }
}
