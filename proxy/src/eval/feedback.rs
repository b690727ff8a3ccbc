//! feedback: does one round of "more like these" find more of the relevant images?
//!
//! `proxy eval --feedback` simulates a visitor: for each judged query, the first page's top
//! [`MARKED`] results are marked — relevant ones as positive examples, the others as negative —
//! and the query is run again with them (the store's recommend, the query's vector counting as
//! one more positive, the marked images left out, as `POST /api/search` does).
//!
//! The comparison is on the *residual collection*, the usual way to measure relevance feedback:
//! the marked images are removed from both rankings, and Recall@5 and nDCG@10 count only the
//! relevant images the visitor has not seen yet. Keeping them would reward the second ranking for
//! images the visitor already had (or punish it for leaving them out). A query whose relevant
//! images were all on the first page has nothing left to find and is left out (counted).
//!
//! The pure parts ([`marks`], [`residual`], [`compare`], [`summarize`], [`markdown`]) take ranked
//! ids and judgments; [`simulate`] does the searching.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::Judged;
use super::metrics::{ndcg_at_k, recall_at_k};
use crate::payload::external_id;
use crate::retrieve::Retrieval;
use crate::store::{self, RecommendQuery, SearchQuery, Strategy, VectorStore};

/// How many of the first results the simulated visitor marks.
pub const MARKED: usize = 10;

/// How deep each ranking is read: the first page plus the residual's nDCG@10 and more.
const DEPTH: usize = super::DEPTH + MARKED;

/// What the visitor marked on the first page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    pub positive: Vec<String>,
    pub negative: Vec<String>,
}

/// The top `MARKED` of `first`: relevant ones positive, the rest negative (an unjudged image
/// counts as irrelevant, as in the metrics).
pub fn marks(first: &[String], relevant: &BTreeSet<String>) -> Marks {
    let (positive, negative) = first
        .iter()
        .take(MARKED)
        .cloned()
        .partition(|id| relevant.contains(id));
    Marks { positive, negative }
}

/// `ranked` without the `seen` images, in order.
pub fn residual<'a>(ranked: &'a [String], seen: &Marks) -> Vec<&'a str> {
    let seen: HashSet<&str> = seen
        .positive
        .iter()
        .chain(&seen.negative)
        .map(String::as_str)
        .collect();
    ranked
        .iter()
        .map(String::as_str)
        .filter(|id| !seen.contains(id))
        .collect()
}

/// Recall@5 and nDCG@10 of one ranking.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub recall5: f64,
    pub ndcg10: f64,
}

/// One query before and after the round, on the residual collection.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRound {
    pub query: String,
    pub positive: usize,
    pub negative: usize,
    /// Relevant images not on the first page's marked part.
    pub left: usize,
    pub before: Scores,
    pub after: Scores,
}

/// Score both rankings on what is left after the marks; `None` when nothing relevant is left.
pub fn compare(
    query: &str,
    relevant: &BTreeSet<String>,
    first: &[String],
    second: &[String],
) -> Option<QueryRound> {
    let marks = marks(first, relevant);
    let left: HashSet<&str> = relevant
        .iter()
        .map(String::as_str)
        .filter(|id| !marks.positive.iter().any(|p| p == id))
        .collect();
    if left.is_empty() {
        return None;
    }
    let score = |ranked: &[&str]| Scores {
        recall5: recall_at_k(ranked, &left, 5),
        ndcg10: ndcg_at_k(ranked, &left, 10),
    };
    Some(QueryRound {
        query: query.to_string(),
        positive: marks.positive.len(),
        negative: marks.negative.len(),
        left: left.len(),
        before: score(&residual(first, &marks)),
        after: score(&residual(second, &marks)),
    })
}

/// One strategy's round over every query.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackReport {
    pub strategy: Strategy,
    pub rounds: Vec<QueryRound>,
    /// Queries left out: every relevant image was among the marked ones.
    pub all_found: usize,
    pub before: Scores,
    pub after: Scores,
    /// Queries whose nDCG@10 rose, stayed, fell.
    pub helped: usize,
    pub same: usize,
    pub hurt: usize,
}

/// The means and the helped / same / hurt counts (by nDCG@10).
pub fn summarize(strategy: Strategy, rounds: Vec<QueryRound>, all_found: usize) -> FeedbackReport {
    let n = rounds.len().max(1) as f64;
    let mean = |f: &dyn Fn(&QueryRound) -> Scores| Scores {
        recall5: rounds.iter().map(|r| f(r).recall5).sum::<f64>() / n,
        ndcg10: rounds.iter().map(|r| f(r).ndcg10).sum::<f64>() / n,
    };
    let change = |r: &QueryRound| r.after.ndcg10 - r.before.ndcg10;
    FeedbackReport {
        strategy,
        before: mean(&|r| r.before),
        after: mean(&|r| r.after),
        helped: rounds.iter().filter(|r| change(r) > 1e-9).count(),
        hurt: rounds.iter().filter(|r| change(r) < -1e-9).count(),
        same: rounds.iter().filter(|r| change(r).abs() <= 1e-9).count(),
        rounds,
        all_found,
    }
}

fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::AverageVector => "average_vector",
        Strategy::BestScore => "best_score",
    }
}

/// The report's "Relevance feedback" section: one row per strategy, then each query.
pub fn markdown(reports: &[FeedbackReport]) -> String {
    let mut out = format!(
        "\n## Relevance feedback (one round)\n\nThe top {MARKED} of each query marked \
         (relevant: positive, others: negative) and searched again; both rankings scored \
         without the marked images, on the relevant images not yet seen.\n\n\
         | Strategy | Queries | R@5 before | R@5 after | nDCG@10 before | nDCG@10 after | \
         Helped | Same | Hurt | All found on page 1 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} |",
            strategy_name(r.strategy),
            r.rounds.len(),
            r.before.recall5,
            r.after.recall5,
            r.before.ndcg10,
            r.after.ndcg10,
            r.helped,
            r.same,
            r.hurt,
            r.all_found
        );
    }
    for r in reports {
        let _ = write!(
            out,
            "\n### {} per query\n\n| Query | + | − | Left | R@5 before | R@5 after | \
             nDCG@10 before | nDCG@10 after |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
            strategy_name(r.strategy)
        );
        for q in &r.rounds {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                q.query.replace(['|', '\r', '\n'], " "),
                q.positive,
                q.negative,
                q.left,
                q.before.recall5,
                q.after.recall5,
                q.before.ndcg10,
                q.after.ndcg10
            );
        }
    }
    out
}

/// The JSON of the same section.
pub fn json(reports: &[FeedbackReport]) -> Value {
    let scores = |s: &Scores| json!({"recall@5": s.recall5, "ndcg@10": s.ndcg10});
    reports
        .iter()
        .map(|r| {
            json!({
                "strategy": strategy_name(r.strategy),
                "marked": MARKED,
                "queries": r.rounds.len(),
                "all_found_on_first_page": r.all_found,
                "before": scores(&r.before),
                "after": scores(&r.after),
                "helped": r.helped, "same": r.same, "hurt": r.hurt,
                "per_query": r.rounds.iter().map(|q| json!({
                    "query": q.query, "positive": q.positive, "negative": q.negative,
                    "relevant_left": q.left,
                    "before": scores(&q.before), "after": scores(&q.after),
                })).collect::<Vec<_>>(),
            })
        })
        .collect::<Vec<_>>()
        .into()
}

/// Run the round for every judged query (its vector in `query_vectors`, in order) with each
/// strategy, the first page ranked by `first`
/// (the eval's own ranking: what the visitor was shown; the second compares image vectors, as
/// examples do).
pub async fn simulate(
    judged: &[Judged],
    query_vectors: &[Vec<f32>],
    (store, first): (&dyn VectorStore, Retrieval),
    strategies: &[Strategy],
) -> anyhow::Result<Vec<FeedbackReport>> {
    let mut firsts = Vec::with_capacity(judged.len());
    for vector in query_vectors {
        let query = SearchQuery {
            using: crate::store::VectorName::Image,
            vector: vector.clone(),
            limit: DEPTH,
            offset: 0,
            filter: Default::default(),
        };
        let hits = crate::retrieve::search(store, &query, first).await?;
        let ids: Vec<String> = hits.iter().map(|h| external_id(h.id, &h.payload)).collect();
        firsts.push((vector.clone(), ids));
    }
    let mut reports = Vec::new();
    for &strategy in strategies {
        let mut rounds = Vec::new();
        let mut all_found = 0;
        for (j, (vector, first)) in judged.iter().zip(&firsts) {
            let marks = marks(first, &j.relevant);
            let second = again(store, vector, &marks, strategy).await?;
            match compare(&j.query, &j.relevant, first, &second) {
                Some(round) => rounds.push(round),
                None => all_found += 1,
            }
        }
        reports.push(summarize(strategy, rounds, all_found));
    }
    Ok(reports)
}

/// The query searched again with the marks, the marked images left out.
async fn again(
    store: &dyn VectorStore,
    vector: &[f32],
    marks: &Marks,
    strategy: Strategy,
) -> anyhow::Result<Vec<String>> {
    let stored = |ids: &[String]| {
        let points: Vec<_> = ids.iter().map(|id| store::point_id(id)).collect();
        async move {
            let records = store.get(&points, true).await?;
            anyhow::Ok(
                records
                    .into_iter()
                    .filter_map(|r| r.vector)
                    .collect::<Vec<_>>(),
            )
        }
    };
    let mut positive = vec![vector.to_vec()];
    positive.extend(stored(&marks.positive).await?);
    let exclude = marks
        .positive
        .iter()
        .chain(&marks.negative)
        .map(|id| store::point_id(id))
        .collect();
    let hits = store
        .recommend(&RecommendQuery {
            positive,
            negative: stored(&marks.negative).await?,
            strategy,
            exclude,
            limit: DEPTH,
            offset: 0,
            filter: Default::default(),
        })
        .await?;
    Ok(hits.iter().map(|h| external_id(h.id, &h.payload)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn set(s: &str) -> BTreeSet<String> {
        ids(s).into_iter().collect()
    }

    #[test]
    fn the_top_ten_is_marked() {
        let first = ids("a b c d e f g h i j k l");
        let m = marks(&first, &set("b j k"));
        assert_eq!(m.positive, ids("b j"));
        assert_eq!(m.negative, ids("a c d e f g h i"));
        assert_eq!(residual(&first, &m), vec!["k", "l"]);
    }

    #[test]
    fn rankings_are_compared_on_what_is_left() {
        let first = ids("a b c d e f g h i j  k l m n o p");
        // `b` found on page 1; `o` and `p` left: after the round they come first.
        let second = ids("o p k l m n");
        let r = compare("q", &set("b o p"), &first, &second).expect("something left");
        assert_eq!((r.positive, r.negative, r.left), (1, 9, 2));
        // Before: the residual is k l m n o p: o, p at 5 and 6.
        assert!((r.before.recall5 - 0.5).abs() < 1e-12);
        assert!((r.after.recall5 - 1.0).abs() < 1e-12);
        assert!((r.after.ndcg10 - 1.0).abs() < 1e-12);
        assert!(r.before.ndcg10 < r.after.ndcg10);
        // Everything relevant was marked: nothing to measure.
        assert_eq!(compare("q", &set("a b"), &first, &second), None);
    }

    #[test]
    fn summary_counts_help_and_harm() {
        let round = |before: f64, after: f64| QueryRound {
            query: "q".into(),
            positive: 0,
            negative: 10,
            left: 1,
            before: Scores {
                recall5: before,
                ndcg10: before,
            },
            after: Scores {
                recall5: after,
                ndcg10: after,
            },
        };
        let s = summarize(
            Strategy::BestScore,
            vec![
                round(0.0, 1.0),
                round(0.5, 0.5),
                round(1.0, 0.0),
                round(0.5, 0.0),
            ],
            3,
        );
        assert_eq!((s.helped, s.same, s.hurt, s.all_found), (1, 1, 2, 3));
        assert!((s.before.ndcg10 - 0.5).abs() < 1e-12);
        assert!((s.after.recall5 - 0.375).abs() < 1e-12);
        let md = markdown(std::slice::from_ref(&s));
        assert!(
            md.contains("| best_score | 4 | 0.500 | 0.375 | 0.500 | 0.375 | 1 | 1 | 2 | 3 |"),
            "{md}"
        );
        assert_eq!(json(&[s])[0]["hurt"], 2);
    }
}
