//! eval/html: which queries work, which do not, and what do their results look like?
//!
//! `report.html`, written beside report.md and report.json: the summary table, the recall curve
//! (the same plotters SVG as `recall.svg`, inline and named for screen readers), and for the
//! worst and the best queries the top-10 results as thumbnails, the relevant ones marked (a ✓
//! badge, a border, and "relevant" in the text and alt), followed by each relevant image that
//! is not among them and the rank it has in a deeper search ([`DEEP`]), or "not in the top
//! [`DEEP`]". [`gather`] does the searching and file reading; [`render`] is pure; [`write`]
//! writes the file. Thumbnails are inlined as `data:` URIs: the page is one file that shows its
//! images from disk, attached to a mail or served by `proxy serve`, with no other route.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::metrics::{QueryMetrics, worst_first};
use super::{DEPTH, EvalReport, Judged, chart};
use crate::ingest::thumb_path;
use crate::layout::EVAL_HTML;
use crate::model::TextEncoder;
use crate::payload::{ImagePayload, external_id};
use crate::report::page::{Tile, document, escape, figure, table, tiles};
use crate::retrieve::Retrieval;
use crate::store::{self, SearchQuery, VectorStore};

/// How deep a shown query is searched for its missing relevant images.
pub const DEEP: usize = 100;
/// Results shown per query.
pub const TOP: usize = 10;
/// Worst and best queries shown.
pub const SHOWN: usize = 5;

/// One query as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub metrics: QueryMetrics,
    /// The top results, best first, relevance marked.
    pub top: Vec<Tile>,
    /// Relevant images not in the top: `(tile, rank in the deep search)`.
    pub missing: Vec<(Tile, Option<usize>)>,
}

/// The worst and the best queries (up to [`SHOWN`] each, never the same query twice), searched
/// again [`DEEP`] deep, with their thumbnails read from `thumbs`.
pub async fn gather(
    report: &EvalReport,
    judged: &[Judged],
    encoder: &dyn TextEncoder,
    store: &dyn VectorStore,
    thumbs: &Path,
) -> anyhow::Result<(Vec<Shown>, Vec<Shown>)> {
    let order = worst_first(&report.per_query);
    let worst_n = order.len().min(SHOWN);
    let best_n = (order.len() - worst_n).min(SHOWN);
    let mut worst = Vec::with_capacity(worst_n);
    for metrics in &order[..worst_n] {
        worst.push(shown(metrics, judged, encoder, (store, report.retrieval), thumbs).await?);
    }
    let mut best = Vec::with_capacity(best_n);
    for metrics in order.iter().rev().take(best_n) {
        best.push(shown(metrics, judged, encoder, (store, report.retrieval), thumbs).await?);
    }
    Ok((worst, best))
}

async fn shown(
    metrics: &QueryMetrics,
    judged: &[Judged],
    encoder: &dyn TextEncoder,
    (store, retrieval): (&dyn VectorStore, Retrieval),
    thumbs: &Path,
) -> anyhow::Result<Shown> {
    let relevant = judged
        .iter()
        .find(|j| j.query == metrics.query)
        .map(|j| j.relevant.clone())
        .unwrap_or_default();
    let vector = encoder
        .embed_text(&metrics.query)
        .map_err(|e| anyhow::anyhow!("encoding `{}`: {e}", metrics.query))?;
    let query = SearchQuery {
        using: crate::store::VectorName::Image,
        vector,
        limit: DEEP,
        offset: 0,
        filter: Default::default(),
    };
    let hits = crate::retrieve::search(store, &query, retrieval).await?;
    let ranked: Vec<String> = hits.iter().map(|h| external_id(h.id, &h.payload)).collect();
    let payloads: HashMap<String, ImagePayload> = hits
        .into_iter()
        .take(TOP)
        .map(|h| {
            let p = ImagePayload::read(h.id, h.payload);
            (p.id.clone(), p)
        })
        .collect();
    let top = ranked
        .iter()
        .take(TOP)
        .enumerate()
        .map(|(i, id)| {
            let caption = payloads.get(id).and_then(|p| p.caption.clone());
            tile(
                id,
                caption,
                format!("#{}", i + 1),
                relevant.contains(id),
                thumbs,
            )
        })
        .collect();
    let missing_ids: Vec<&String> = relevant
        .iter()
        .filter(|id| !ranked.iter().take(TOP).any(|r| r == *id))
        .collect();
    let points: Vec<_> = missing_ids.iter().map(|id| store::point_id(id)).collect();
    let stored: HashMap<String, ImagePayload> = store
        .get(&points, false)
        .await?
        .into_iter()
        .map(|r| {
            let p = ImagePayload::read(r.id, r.payload);
            (p.id.clone(), p)
        })
        .collect();
    let missing = missing_ids
        .into_iter()
        .map(|id| {
            let rank = ranked.iter().position(|r| r == id).map(|i| i + 1);
            let label = match (rank, stored.contains_key(id)) {
                (Some(rank), _) => format!("ranked #{rank}"),
                (None, true) => format!("not in the top {DEEP}"),
                (None, false) => "not in the index".to_string(),
            };
            let caption = stored.get(id).and_then(|p| p.caption.clone());
            (tile(id, caption, label, true, thumbs), rank)
        })
        .collect();
    Ok(Shown {
        metrics: metrics.clone(),
        top,
        missing,
    })
}

fn tile(id: &str, caption: Option<String>, label: String, relevant: bool, thumbs: &Path) -> Tile {
    Tile {
        id: id.to_string(),
        caption,
        thumbnail: std::fs::read(thumb_path(thumbs, store::point_id(id))).ok(),
        label,
        relevant,
    }
}

/// The page: summary, recall curve, worst and best queries.
pub fn render(
    title: &str,
    report: &EvalReport,
    worst: &[Shown],
    best: &[Shown],
) -> anyhow::Result<String> {
    let mut body = summary(report);
    let chart_title = format!("Recall@K, {} queries", report.summary.queries);
    let svg = chart::recall_curve_svg(&report.curve, &chart_title)?;
    let desc = format!(
        "Mean recall at K for K = 1 to {}: {}.",
        report.curve.len(),
        report
            .curve
            .iter()
            .map(|(k, r)| format!("K={k}: {r:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = write!(
        body,
        "<section aria-labelledby=\"curve-h\">\n<h2 id=\"curve-h\">Recall curve</h2>\n{}</section>\n",
        figure("curve", &svg, &chart_title, &desc)
    );
    body.push_str(&queries_section(
        "worst",
        "Queries that do not perform well",
        "The lowest nDCG@10 first.",
        worst,
    ));
    body.push_str(&queries_section(
        "best",
        "Queries that perform best",
        "The highest nDCG@10 first.",
        best,
    ));
    Ok(document(title, &body))
}

fn summary(report: &EvalReport) -> String {
    let s = &report.summary;
    let mut rows: Vec<Vec<String>> = s
        .recall
        .iter()
        .map(|(k, v)| vec![format!("Recall@{k}"), format!("{v:.3}")])
        .collect();
    rows.push(vec!["MRR".into(), format!("{:.3}", s.mrr)]);
    rows.push(vec!["nDCG@10".into(), format!("{:.3}", s.ndcg10)]);
    rows.push(vec!["Queries".into(), s.queries.to_string()]);
    rows.push(vec![
        "Queries left out (no relevant image)".into(),
        report.skipped.to_string(),
    ]);
    format!(
        "<h2>Summary</h2>\n{}",
        table("Means over the queries", &["Metric", "Value"], &rows)
    )
}

fn queries_section(id: &str, heading: &str, note: &str, shown: &[Shown]) -> String {
    let mut out = format!(
        "<section aria-labelledby=\"{id}-h\">\n<h2 id=\"{id}-h\">{heading}</h2>\n<p class=\"note\">{note}</p>\n"
    );
    if shown.is_empty() {
        out.push_str("<p>No queries.</p>\n");
    }
    for (n, q) in shown.iter().enumerate() {
        let m = &q.metrics;
        let first = m
            .first_relevant_rank
            .map_or_else(|| format!("not in the top {DEPTH}"), |r| format!("#{r}"));
        let _ = write!(
            out,
            "<article>\n<h3>“{}”</h3>\n<p>nDCG@10 {:.3} · MRR {:.3} · {} relevant · first relevant {}</p>\n",
            escape(&m.query),
            m.ndcg10,
            m.mrr,
            m.relevant,
            escape(&first),
        );
        out.push_str(&tiles(
            &format!("top {TOP} results for query {} of this section", n + 1),
            &q.top,
            true,
        ));
        if !q.missing.is_empty() {
            let _ = writeln!(out, "<h4>Relevant images not in the top {TOP}</h4>");
            let missing: Vec<Tile> = q.missing.iter().map(|(t, _)| t.clone()).collect();
            let _ = writeln!(
                out,
                "<p class=\"miss\">{}</p>",
                escape(
                    &q.missing
                        .iter()
                        .map(|(t, _)| format!("{}: {}", t.id, t.label))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            );
            out.push_str(&tiles(
                "relevant images missing from the top results",
                &missing,
                false,
            ));
        }
        out.push_str("</article>\n");
    }
    out.push_str("</section>\n");
    out
}

/// Write `report.html` into `out` (created if missing); returns its path.
pub fn write(out: &Path, page: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join(EVAL_HTML);
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;
    use crate::eval::metrics::{query_metrics, summarize};

    const HOSTILE: &str = "</h3><script>alert('q')</script><img src=x onerror=alert(1)>";

    fn report(queries: &[&str]) -> EvalReport {
        let relevant: HashSet<&str> = ["a"].into();
        let per_query: Vec<QueryMetrics> = queries
            .iter()
            .map(|q| query_metrics(q, &["x", "a"], &relevant))
            .collect();
        EvalReport {
            retrieval: crate::retrieve::Retrieval::image(),
            vectors: Vec::new(),
            summary: summarize(&per_query),
            per_query,
            curve: vec![(1, 0.0), (2, 1.0)],
            skipped: 2,
            ranked: BTreeMap::new(),
            feedback: Vec::new(),
            cutoff: None,
        }
    }

    fn shown(query: &str) -> Shown {
        let t = |id: &str, label: &str, relevant: bool| Tile {
            id: id.into(),
            caption: Some(format!("caption of {id}")),
            thumbnail: Some(vec![0xff, 0xd8, 0xff]),
            label: label.into(),
            relevant,
        };
        Shown {
            metrics: report(&[query]).per_query.remove(0),
            top: vec![t("x", "#1", false), t("a", "#2", true)],
            missing: vec![
                (t("deep", "ranked #37", true), Some(37)),
                (t(HOSTILE, "not in the top 100", true), None),
            ],
        }
    }

    #[test]
    fn the_page_marks_relevance_and_escapes_queries() {
        let page = render(
            "Eval <t>",
            &report(&[HOSTILE, "b"]),
            &[shown(HOSTILE)],
            &[shown("b")],
        )
        .expect("render");
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(page.contains("“&lt;&#x2F;h3&gt;&lt;script&gt;"), "{page}");
        assert!(page.contains("Queries that do not perform well"));
        assert!(page.contains("Queries that perform best"));
        assert!(page.contains("role=\"img\" aria-labelledby=\"curve-title curve-desc\""));
        assert!(
            page.contains("K=2: 1.000"),
            "the curve's numbers in its description"
        );
        // relevant marked in text and alt: the ✓ badge on the relevant top result and on each
        // missing one (2 sections × 3)
        assert_eq!(page.matches("✓ relevant").count(), 6, "{page}");
        assert_eq!(page.matches(", relevant\"").count(), 6, "{page}");
        assert!(page.contains("deep: ranked #37"), "{page}");
        assert!(page.contains("not in the top 100"), "{page}");
        assert!(page.contains("<td>2</td>"), "queries left out");
        assert_eq!(page.matches("<img ").count(), 8, "{page}");
    }

    #[test]
    fn no_queries_still_renders() {
        let page = render("Eval", &report(&[]), &[], &[]).expect("render");
        assert_eq!(page.matches("<p>No queries.</p>").count(), 2);
    }

    #[test]
    fn write_names_the_path_it_could_not_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "<p>x</p>").expect("write");
        assert_eq!(path, dir.path().join("report.html"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "<p>x</p>");
        std::fs::remove_file(&path).expect("rm");
        std::fs::create_dir(&path).expect("a directory in the way");
        let error = write(dir.path(), "x").expect_err("a directory is no file");
        assert!(format!("{error:#}").contains(&path.display().to_string()));
    }
}
