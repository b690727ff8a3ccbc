//! metrics: how well did one ranking, and a whole query set, find the relevant images?
//!
//! Recall@K, reciprocal rank (MRR) and nDCG@10 per query, their means over a query set, the
//! worst-first order of the report and the recall curve. Everything here is a pure function: a
//! query's ranked ids and its set of relevant ids go in, numbers come out. No I/O, no clock, no
//! randomness, no rendering, so the same run always gives the same numbers; reading judgments,
//! searching, rendering and writing files belong to the rest of [`crate::eval`].
//!
//! Conventions shared by every metric:
//! - Ranks are 1-based positions in the ranked list as returned (what the user saw).
//! - Relevance is binary: an id is relevant or it is not.
//! - A duplicate id counts once, at its first occurrence; later copies still take up their slot
//!   (the user saw a wasted result) but earn nothing. This keeps recall and nDCG within [0, 1].
//! - A query with no relevant ids scores 0.0 on every metric. Such a query cannot be judged, and
//!   averaging its zeros in would drag the means down, so callers should leave it out.

use std::collections::HashSet;

/// Cut-offs at which recall is reported: the issue asks for @1, @5 and @10; @20 shows how much a
/// longer result page would recover.
pub const KS: [usize; 4] = [1, 5, 10, 20];

/// The cut-off of the reported nDCG: the first page of results.
const NDCG_K: usize = 10;

/// For each position of `ranked`, whether it is a *new* relevant hit: relevant, and not a repeat
/// of an id seen earlier in the list. The single place that implements the duplicate rule.
fn new_hits<'a>(
    ranked: &'a [&'a str],
    relevant: &'a HashSet<&'a str>,
) -> impl Iterator<Item = bool> + 'a {
    let mut seen = HashSet::new();
    ranked
        .iter()
        .map(move |id| relevant.contains(id) && seen.insert(*id))
}

/// The 1-based rank of the first relevant result, if any.
fn first_relevant_rank(ranked: &[&str], relevant: &HashSet<&str>) -> Option<usize> {
    ranked
        .iter()
        .position(|id| relevant.contains(id))
        .map(|index| index + 1)
}

/// Fraction of the relevant ids found in the first `k` results.
///
/// 0.0 when `k` is 0 or the relevant set is empty (such queries should not be evaluated). A `k`
/// past the end of the list looks at the whole list; duplicates count once.
pub fn recall_at_k(ranked: &[&str], relevant: &HashSet<&str>, k: usize) -> f64 {
    if k == 0 || relevant.is_empty() {
        return 0.0;
    }
    let found = new_hits(ranked, relevant)
        .take(k)
        .filter(|&hit| hit)
        .count();
    found as f64 / relevant.len() as f64
}

/// Reciprocal rank of the first relevant result: 1/rank, or 0.0 if none is in `ranked` (or the
/// relevant set is empty). Its mean over queries is the MRR.
pub fn reciprocal_rank(ranked: &[&str], relevant: &HashSet<&str>) -> f64 {
    first_relevant_rank(ranked, relevant).map_or(0.0, |rank| 1.0 / rank as f64)
}

/// The positional discount of a hit at 1-based `rank`: 1 / log2(rank + 1), so rank 1 counts
/// fully, rank 3 half.
fn discount(rank: usize) -> f64 {
    1.0 / (rank as f64 + 1.0).log2()
}

/// nDCG@k with binary gains (Järvelin & Kekäläinen 2002, in the form of `trec_eval`'s `ndcg_cut`).
///
/// DCG = Σ `rel_i` / log2(i + 1) over ranks i (1-based) ≤ k; IDCG = the DCG of an ideal list with
/// min(k, |relevant|) relevant results at the top; nDCG = DCG / IDCG, in [0, 1]. 0.0 when `k` is
/// 0 or the relevant set is empty (such queries should not be evaluated); duplicates count once.
pub fn ndcg_at_k(ranked: &[&str], relevant: &HashSet<&str>, k: usize) -> f64 {
    if k == 0 || relevant.is_empty() {
        return 0.0;
    }
    // A fold from +0.0 rather than `sum()`: an empty float sum is -0.0, which prints "-0.000".
    let dcg = new_hits(ranked, relevant)
        .take(k)
        .enumerate()
        .filter(|&(_, hit)| hit)
        .fold(0.0, |dcg, (index, _)| dcg + discount(index + 1));
    let ideal: f64 = (1..=k.min(relevant.len())).map(discount).sum();
    dcg / ideal
}

/// The metrics of one query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryMetrics {
    /// The query text.
    pub query: String,
    /// `(k, recall@k)` for each k in [`KS`].
    pub recall: Vec<(usize, f64)>,
    /// Reciprocal rank of the first relevant result.
    pub mrr: f64,
    /// nDCG@10.
    pub ndcg10: f64,
    /// How many ids are relevant to the query.
    pub relevant: usize,
    /// 1-based rank of the first relevant result, if any was returned.
    pub first_relevant_rank: Option<usize>,
}

/// Every metric of one query, from its ranked ids and its relevant set.
pub fn query_metrics(query: &str, ranked: &[&str], relevant: &HashSet<&str>) -> QueryMetrics {
    QueryMetrics {
        query: query.to_owned(),
        recall: KS
            .iter()
            .map(|&k| (k, recall_at_k(ranked, relevant, k)))
            .collect(),
        mrr: reciprocal_rank(ranked, relevant),
        ndcg10: ndcg_at_k(ranked, relevant, NDCG_K),
        relevant: relevant.len(),
        first_relevant_rank: first_relevant_rank(ranked, relevant),
    }
}

/// Means over a query set.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// How many queries were averaged.
    pub queries: usize,
    /// `(k, mean recall@k)` for each k in [`KS`].
    pub recall: Vec<(usize, f64)>,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Mean nDCG@10.
    pub ndcg10: f64,
}

/// The recall at cut-off `k` in a `(k, recall)` list, if reported.
pub(super) fn recall_for(recall: &[(usize, f64)], k: usize) -> Option<f64> {
    recall
        .iter()
        .find(|&&(at, _)| at == k)
        .map(|&(_, value)| value)
}

/// The arithmetic mean of `values`, 0.0 for none.
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(sum, count), v| (sum + v, count + 1));
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Means over queries (macro-averaged: every query weighs the same). An empty slice gives zeros
/// and `queries == 0`; a query without a recall value at some k counts as 0 there.
pub fn summarize(per_query: &[QueryMetrics]) -> Summary {
    Summary {
        queries: per_query.len(),
        recall: KS
            .iter()
            .map(|&k| {
                let at_k = per_query
                    .iter()
                    .map(|q| recall_for(&q.recall, k).unwrap_or(0.0));
                (k, mean(at_k))
            })
            .collect(),
        mrr: mean(per_query.iter().map(|q| q.mrr)),
        ndcg10: mean(per_query.iter().map(|q| q.ndcg10)),
    }
}

/// Per-query rows sorted worst first: by nDCG@10 ascending, then MRR ascending, then query text,
/// so that reports are stable and diffable between runs.
pub fn worst_first(per_query: &[QueryMetrics]) -> Vec<QueryMetrics> {
    let mut rows = per_query.to_vec();
    rows.sort_by(|a, b| {
        a.ndcg10
            .total_cmp(&b.ndcg10)
            .then(a.mrr.total_cmp(&b.mrr))
            .then_with(|| a.query.cmp(&b.query))
    });
    rows
}

/// The recall curve: mean recall@k over the runs (each a query's ranked ids and relevant set) for
/// k = `1..=max_k`, by the same definition as [`recall_at_k`]. No runs give zeros; `max_k == 0`
/// gives no points.
pub fn recall_curve(runs: &[(Vec<&str>, HashSet<&str>)], max_k: usize) -> Vec<(usize, f64)> {
    let mut sums = vec![0.0; max_k];
    for (ranked, relevant) in runs {
        if relevant.is_empty() {
            continue; // recall 0 at every k, as in `recall_at_k`
        }
        // One pass per run: the running count of new hits is the recall numerator at each k.
        let mut hits = new_hits(ranked, relevant);
        let mut found = 0usize;
        for sum in &mut sums {
            if hits.next() == Some(true) {
                found += 1;
            }
            *sum += found as f64 / relevant.len() as f64;
        }
    }
    sums.into_iter()
        .enumerate()
        .map(|(index, sum)| {
            let mean = if runs.is_empty() {
                0.0
            } else {
                sum / runs.len() as f64
            };
            (index + 1, mean)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-4;

    fn set<'a>(ids: &[&'a str]) -> HashSet<&'a str> {
        ids.iter().copied().collect()
    }

    fn assert_close(actual: f64, expected: f64, what: &str) {
        assert!(
            (actual - expected).abs() < EPS,
            "{what}: got {actual}, expected {expected}"
        );
    }

    /// (relevant, ranked, k, expected)
    type Case<'a> = (&'a [&'a str], &'a [&'a str], usize, f64);

    fn check_recall(cases: &[Case]) {
        for &(relevant, ranked, k, expected) in cases {
            let what = format!("recall@{k} of {ranked:?} against {relevant:?}");
            assert_close(recall_at_k(ranked, &set(relevant), k), expected, &what);
        }
    }

    fn check_rr(cases: &[(&[&str], &[&str], f64)]) {
        for &(relevant, ranked, expected) in cases {
            let what = format!("RR of {ranked:?} against {relevant:?}");
            assert_close(reciprocal_rank(ranked, &set(relevant)), expected, &what);
        }
    }

    fn check_ndcg(cases: &[Case]) {
        for &(relevant, ranked, k, expected) in cases {
            let what = format!("nDCG@{k} of {ranked:?} against {relevant:?}");
            assert_close(ndcg_at_k(ranked, &set(relevant), k), expected, &what);
        }
    }

    #[test]
    fn recall_at_k_cases() {
        check_recall(&[
            // perfect: both relevant in the top 2: 2/2
            (&["a", "b"], &["a", "b", "c"], 2, 1.0),
            // none found: 0/1
            (&["x"], &["a", "b", "c"], 3, 0.0),
            // relevant beyond k: c is at rank 3 > 2: 0/1
            (&["c"], &["a", "b", "c"], 2, 0.0),
            // partial: a and c of {a,c,d} in the top 3: 2/3
            (&["a", "c", "d"], &["a", "b", "c"], 3, 0.6667),
            // k = 1 sees only the first result: a of {a,c}: 1/2
            (&["a", "c"], &["a", "b", "c"], 1, 0.5),
            // k larger than the list: the whole list, a of {a,z}: 1/2
            (&["a", "z"], &["a", "b"], 10, 0.5),
            // duplicates count once: a thrice of {a,b}: 1/2 (not 3/2)
            (&["a", "b"], &["a", "a", "a"], 3, 0.5),
            // a duplicate takes its slot: top 2 is [a,a]: 1/2
            (&["a", "b"], &["a", "a", "b"], 2, 0.5),
            // ... and b at rank 3 is found at k = 3: 2/2
            (&["a", "b"], &["a", "a", "b"], 3, 1.0),
            // empty relevant set: defined as 0
            (&[], &["a", "b"], 1, 0.0),
            // k = 0: nothing looked at
            (&["a"], &["a"], 0, 0.0),
            // empty ranked list: 0/1
            (&["a"], &[], 5, 0.0),
        ]);
    }

    #[test]
    fn reciprocal_rank_cases() {
        check_rr(&[
            // first relevant at rank 1: 1/1
            (&["a"], &["a", "b", "c"], 1.0),
            // first relevant at rank 2: 1/2
            (&["b", "c"], &["a", "b", "c"], 0.5),
            // first relevant at rank 3: 1/3
            (&["c"], &["a", "b", "c"], 0.3333),
            // duplicates before it still take slots: b at rank 3: 1/3
            (&["b"], &["a", "a", "b"], 0.3333),
            // none found
            (&["x"], &["a", "b", "c"], 0.0),
            // empty relevant set
            (&[], &["a", "b"], 0.0),
            // empty ranked list
            (&["a"], &[], 0.0),
        ]);
    }

    #[test]
    fn ndcg_at_k_cases() {
        // Discounts: 1/log2(2) = 1, 1/log2(3) = 0.6309, 1/log2(4) = 0.5, 1/log2(5) = 0.4307.
        check_ndcg(&[
            // perfect: DCG = 1 + 0.6309 = IDCG: 1
            (&["a", "b"], &["a", "b", "c"], 10, 1.0),
            // relevant {a,c}, ranked [b,a,c]: DCG = 1/log2(3) + 1/log2(4) = 0.6309 + 0.5
            // = 1.1309; IDCG = 1 + 0.6309 = 1.6309; nDCG = 0.6934
            (&["a", "c"], &["b", "a", "c"], 10, 0.6934),
            // one relevant at rank 2: DCG = 0.6309; IDCG = 1; nDCG = 0.6309
            (&["b"], &["a", "b"], 10, 0.6309),
            // relevant beyond k: c at rank 3 > 2: DCG = 0
            (&["c"], &["a", "b", "c"], 2, 0.0),
            // k larger than the list and than |relevant|: IDCG over min(3, 1) = 1 rank: 1/1
            (&["a"], &["a", "b", "c"], 3, 1.0),
            // |relevant| > k: DCG@2 = 1 (b is at 3); IDCG@2 = 1 + 0.6309 = 1.6309; 1/1.6309
            // = 0.6131
            (&["a", "b", "c"], &["a", "x", "b"], 2, 0.6131),
            // relevant missing from the list: DCG = 1; IDCG = 1 + 0.6309 + 0.5 = 2.1309;
            // 1/2.1309 = 0.4693
            (&["a", "b", "c"], &["a"], 10, 0.4693),
            // duplicates count once: [a,a,b]: DCG = 1 + 0 + 0.5 = 1.5; IDCG = 1.6309;
            // 1.5/1.6309 = 0.9197
            (&["a", "b"], &["a", "a", "b"], 3, 0.9197),
            // none found
            (&["x"], &["a", "b"], 10, 0.0),
            // empty relevant set
            (&[], &["a", "b"], 10, 0.0),
            // k = 0
            (&["a"], &["a"], 0, 0.0),
        ]);
    }

    fn check_query_metrics(actual: &QueryMetrics, expected: &QueryMetrics) {
        let what = &actual.query;
        assert_eq!(actual.query, expected.query);
        assert_eq!(actual.relevant, expected.relevant, "{what}: relevant");
        assert_eq!(
            actual.first_relevant_rank, expected.first_relevant_rank,
            "{what}: first relevant rank"
        );
        assert_eq!(
            actual.recall.len(),
            expected.recall.len(),
            "{what}: recall cut-offs"
        );
        for (&(k, got), &(want_k, want)) in actual.recall.iter().zip(&expected.recall) {
            assert_eq!(k, want_k, "{what}: recall cut-off");
            assert_close(got, want, &format!("{what}: recall@{k}"));
        }
        assert_close(actual.mrr, expected.mrr, &format!("{what}: MRR"));
        assert_close(actual.ndcg10, expected.ndcg10, &format!("{what}: nDCG@10"));
    }

    #[test]
    fn query_metrics_cases() {
        // relevant {a,b,c}, ranked [x,y,a,b]: R@1 = 0; R@5 = R@10 = R@20 = 2/3; RR = 1/3;
        // DCG = 1/log2(4) + 1/log2(5) = 0.5 + 0.4307 = 0.9307; IDCG = 1 + 0.6309 + 0.5 = 2.1309;
        // nDCG@10 = 0.4367
        let expected = QueryMetrics {
            query: "red car".to_owned(),
            recall: vec![(1, 0.0), (5, 0.6667), (10, 0.6667), (20, 0.6667)],
            mrr: 0.3333,
            ndcg10: 0.4367,
            relevant: 3,
            first_relevant_rank: Some(3),
        };
        let actual = query_metrics("red car", &["x", "y", "a", "b"], &set(&["a", "b", "c"]));
        check_query_metrics(&actual, &expected);

        // nothing relevant returned: zeros, no first rank
        let expected = QueryMetrics {
            query: "nothing".to_owned(),
            recall: vec![(1, 0.0), (5, 0.0), (10, 0.0), (20, 0.0)],
            mrr: 0.0,
            ndcg10: 0.0,
            relevant: 1,
            first_relevant_rank: None,
        };
        check_query_metrics(
            &query_metrics("nothing", &["x", "y"], &set(&["a"])),
            &expected,
        );
    }

    fn row(query: &str, recall: [f64; 4], mrr: f64, ndcg10: f64) -> QueryMetrics {
        QueryMetrics {
            query: query.to_owned(),
            recall: KS.iter().copied().zip(recall).collect(),
            mrr,
            ndcg10,
            relevant: 1,
            first_relevant_rank: None,
        }
    }

    fn check_summary(per_query: &[QueryMetrics], expected: &Summary) {
        let actual = summarize(per_query);
        assert_eq!(actual.queries, expected.queries, "queries");
        assert_eq!(
            actual.recall.len(),
            expected.recall.len(),
            "recall cut-offs"
        );
        for (&(k, got), &(want_k, want)) in actual.recall.iter().zip(&expected.recall) {
            assert_eq!(k, want_k, "recall cut-off");
            assert_close(got, want, &format!("mean recall@{k}"));
        }
        assert_close(actual.mrr, expected.mrr, "MRR");
        assert_close(actual.ndcg10, expected.ndcg10, "mean nDCG@10");
    }

    #[test]
    fn summarize_cases() {
        // R@1 = (1 + 0)/2 = 0.5; R@5 = (1 + 0.5)/2 = 0.75; R@10 = 0.75; R@20 = (1 + 1)/2 = 1;
        // MRR = (1 + 0.25)/2 = 0.625; nDCG@10 = (1 + 0.4)/2 = 0.7
        check_summary(
            &[
                row("q1", [1.0, 1.0, 1.0, 1.0], 1.0, 1.0),
                row("q2", [0.0, 0.5, 0.5, 1.0], 0.25, 0.4),
            ],
            &Summary {
                queries: 2,
                recall: vec![(1, 0.5), (5, 0.75), (10, 0.75), (20, 1.0)],
                mrr: 0.625,
                ndcg10: 0.7,
            },
        );
        // one query: its own values; R@1 = 0.2/1, MRR = 0.5/1, nDCG = 0.3/1
        check_summary(
            &[row("q", [0.2, 0.4, 0.6, 0.8], 0.5, 0.3)],
            &Summary {
                queries: 1,
                recall: vec![(1, 0.2), (5, 0.4), (10, 0.6), (20, 0.8)],
                mrr: 0.5,
                ndcg10: 0.3,
            },
        );
        // no queries: zeros
        check_summary(
            &[],
            &Summary {
                queries: 0,
                recall: vec![(1, 0.0), (5, 0.0), (10, 0.0), (20, 0.0)],
                mrr: 0.0,
                ndcg10: 0.0,
            },
        );
    }

    fn check_worst_first(rows: &[QueryMetrics], expected: &[&str]) {
        let order: Vec<String> = worst_first(rows).into_iter().map(|q| q.query).collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn worst_first_cases() {
        let rows = [
            row("b", [0.0; 4], 0.5, 0.5),
            row("e", [0.0; 4], 1.0, 1.0),
            row("a", [0.0; 4], 0.5, 0.5),
            row("c", [0.0; 4], 0.2, 0.5),
            row("d", [0.0; 4], 1.0, 0.1),
        ];
        // d has the lowest nDCG (0.1); c, a, b tie on nDCG 0.5 and c has the lowest MRR (0.2);
        // a and b tie on both and go by text; e is best (nDCG 1).
        check_worst_first(&rows, &["d", "c", "a", "b", "e"]);
        // the order does not depend on the input order
        let mut reversed = rows.to_vec();
        reversed.reverse();
        check_worst_first(&reversed, &["d", "c", "a", "b", "e"]);
        check_worst_first(&[], &[]);
    }

    fn check_curve(runs: &[(Vec<&str>, HashSet<&str>)], max_k: usize, expected: &[(usize, f64)]) {
        let curve = recall_curve(runs, max_k);
        assert_eq!(curve.len(), expected.len(), "{curve:?}");
        for (&(k, got), &(want_k, want)) in curve.iter().zip(expected) {
            assert_eq!(k, want_k);
            assert_close(got, want, &format!("mean recall@{k}"));
        }
    }

    #[test]
    fn recall_curve_cases() {
        let runs = vec![
            (vec!["a", "b", "c"], set(&["b", "c"])),
            (vec!["x", "y"], set(&["y"])),
        ];
        // k = 1: (0/2 + 0/1)/2 = 0; k = 2: (1/2 + 1/1)/2 = 0.75; k = 3: (2/2 + 1/1)/2 = 1;
        // k = 4: past both lists, still 1
        check_curve(&runs, 4, &[(1, 0.0), (2, 0.75), (3, 1.0), (4, 1.0)]);
        check_curve(&runs, 0, &[]);
        check_curve(&[], 2, &[(1, 0.0), (2, 0.0)]);
        // an empty relevant set counts as 0 (and in the mean): k = 1: (1/1 + 0)/2 = 0.5
        check_curve(
            &[(vec!["a"], set(&["a"])), (vec!["a"], set(&[]))],
            1,
            &[(1, 0.5)],
        );
    }

    #[test]
    fn recall_curve_agrees_with_recall_at_k() {
        let ranked = vec!["a", "x", "a", "b", "b", "y", "c"];
        let relevant = set(&["a", "b", "c", "d"]);
        let curve = recall_curve(&[(ranked.clone(), relevant.clone())], 9);
        for (k, value) in curve {
            assert_close(
                value,
                recall_at_k(&ranked, &relevant, k),
                &format!("k = {k}"),
            );
        }
    }
}
