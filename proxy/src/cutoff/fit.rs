//! cutoff/fit: which threshold separates the labels best, and how well does it do on labels it
//! was not fitted on?
//!
//! [`best_threshold`] sweeps every cut between distinct feature values and keeps the one with
//! the highest F1 on the points it is given. [`fit_rule`] scores a rule by k-fold
//! cross-validation by query ([`assign_folds`]: a query's samples all go to one fold, so a
//! per-query rule is never tested on a query it saw), pooling the held-out confusion counts of
//! every fold, and reports the threshold fitted on all samples.

use std::collections::BTreeSet;

use super::{Rule, RuleFit, Sample};

/// Confusion counts of "above the line = relevant".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub true_pos: usize,
    pub false_pos: usize,
    pub false_neg: usize,
    pub true_neg: usize,
}

/// Precision, recall and F1. Precision is 0 when nothing was above the line; recall is 0 when
/// nothing was relevant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Counts {
    /// Count one prediction against its label.
    pub fn add(&mut self, above: bool, relevant: bool) {
        match (above, relevant) {
            (true, true) => self.true_pos += 1,
            (true, false) => self.false_pos += 1,
            (false, true) => self.false_neg += 1,
            (false, false) => self.true_neg += 1,
        }
    }

    pub fn scores(&self) -> Scores {
        let ratio = |num: usize, den: usize| {
            if den == 0 {
                0.0
            } else {
                num as f64 / den as f64
            }
        };
        let (tp, fp, fn_) = (self.true_pos, self.false_pos, self.false_neg);
        Scores {
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
        }
    }
}

/// The threshold with the best F1 on `points` (feature, relevant): a point is above the line
/// when its feature is at least the threshold. Cuts fall midway between neighbouring distinct
/// values; ties keep the higher threshold. With no relevant point nothing is above the line
/// (`+∞`).
pub fn best_threshold(points: &[(f32, bool)]) -> f32 {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = sorted.iter().filter(|p| p.1).count();
    let (mut best, mut best_f1) = (f32::INFINITY, 0.0_f64);
    let mut tp = 0;
    for i in 1..=sorted.len() {
        tp += usize::from(sorted[i - 1].1);
        // Cut after the first i points, unless the next one has the same value.
        if i < sorted.len() && sorted[i].0 == sorted[i - 1].0 {
            continue;
        }
        let fp = i - tp;
        let fn_ = positives - tp;
        let f1 = (2 * tp) as f64 / (2 * tp + fp + fn_) as f64;
        if f1 > best_f1 {
            best_f1 = f1;
            best = match sorted.get(i) {
                Some(next) => midpoint(sorted[i - 1].0, next.0),
                None => sorted[i - 1].0,
            };
        }
    }
    best
}

/// A threshold between `above` and `below` (`above > below`) that keeps `below` under it.
fn midpoint(above: f32, below: f32) -> f32 {
    let mid = below + (above - below) / 2.0;
    if mid > below { mid } else { above }
}

/// The distinct queries of `samples`.
pub fn queries<'a>(samples: &[&'a Sample]) -> BTreeSet<&'a str> {
    samples.iter().map(|s| s.query.as_str()).collect()
}

/// Each sample's fold: queries are ordered by a hash of their text (FNV-1a, so the split is
/// the same on every run and unrelated to alphabetical order) and dealt round-robin into
/// `min(folds, queries)` folds.
pub fn assign_folds(samples: &[&Sample], queries: &BTreeSet<&str>, folds: usize) -> Vec<usize> {
    let folds = folds.min(queries.len()).max(1);
    let mut order: Vec<&str> = queries.iter().copied().collect();
    order.sort_by_key(|q| (fnv1a(q), *q));
    let fold_of: std::collections::HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, q)| (*q, i % folds))
        .collect();
    samples.iter().map(|s| fold_of[s.query.as_str()]).collect()
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `rule` fitted on every sample, with the held-out scores of fitting it on all folds but one
/// and counting the one left out, for each fold in turn.
pub fn fit_rule(rule: Rule, samples: &[&Sample], folds: &[usize]) -> RuleFit {
    let points: Vec<(f32, bool)> = samples
        .iter()
        .map(|s| (rule.feature(s), s.relevant))
        .collect();
    let fold_count = folds.iter().max().map_or(0, |m| m + 1);
    let mut held_out = Counts::default();
    for fold in 0..fold_count {
        let train: Vec<(f32, bool)> = points
            .iter()
            .zip(folds)
            .filter(|(_, f)| **f != fold)
            .map(|(p, _)| *p)
            .collect();
        let threshold = best_threshold(&train);
        for (point, _) in points.iter().zip(folds).filter(|(_, f)| **f == fold) {
            held_out.add(point.0 >= threshold, point.1);
        }
    }
    RuleFit {
        rule,
        value: rule.value(best_threshold(&points)),
        held_out: held_out.scores(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_threshold_separates_and_cuts_midway() {
        let points = [(0.9, true), (0.8, true), (0.4, false), (0.3, false)];
        assert!((best_threshold(&points) - 0.6).abs() < 1e-6);
        // One relevant point below an irrelevant one: F1 is best with all three above
        // (tp 2, fp 1: 0.8) rather than one above (tp 1, fn 1: 0.667).
        let points = [(0.9, true), (0.5, false), (0.4, true), (0.1, false)];
        assert!((best_threshold(&points) - 0.25).abs() < 1e-6);
        // Everything relevant: the line is the lowest value, so all are above.
        assert_eq!(best_threshold(&[(0.5, true), (0.2, true)]), 0.2);
        // Nothing relevant: nothing above.
        assert_eq!(best_threshold(&[(0.5, false)]), f32::INFINITY);
        assert_eq!(best_threshold(&[]), f32::INFINITY);
    }

    #[test]
    fn equal_values_are_never_split() {
        // Two points at 0.5, one relevant, one not: they fall on the same side.
        let points = [(0.7, true), (0.5, true), (0.5, false), (0.1, false)];
        let t = best_threshold(&points);
        // The best: above 0.5 (tp 1, fn 1: 0.667) or down to 0.5 (tp 2, fp 1: 0.8).
        assert!((t - 0.3).abs() < 1e-6, "{t}");
    }

    #[test]
    fn counts_and_scores() {
        let mut c = Counts::default();
        for (above, relevant) in [(true, true), (true, true), (true, false), (false, true)] {
            c.add(above, relevant);
        }
        let s = c.scores();
        assert_eq!((s.precision, s.recall), (2.0 / 3.0, 2.0 / 3.0));
        assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(Counts::default().scores(), Scores::default());
    }

    fn sample(query: &str, score: f32, relevant: bool) -> Sample {
        Sample {
            query: query.into(),
            score,
            top: 1.0,
            relevant,
        }
    }

    #[test]
    fn folds_keep_a_query_together_and_are_balanced() {
        let owned: Vec<Sample> = (0..10)
            .flat_map(|q| (0..3).map(move |i| sample(&format!("q{q}"), i as f32, true)))
            .collect();
        let samples: Vec<&Sample> = owned.iter().collect();
        let queries = queries(&samples);
        let folds = assign_folds(&samples, &queries, 5);
        for (a, fa) in samples.iter().zip(&folds) {
            for (b, fb) in samples.iter().zip(&folds) {
                if a.query == b.query {
                    assert_eq!(fa, fb);
                }
            }
        }
        for fold in 0..5 {
            assert_eq!(folds.iter().filter(|f| **f == fold).count(), 6);
        }
        assert_eq!(assign_folds(&samples, &queries, 5), folds, "deterministic");
        // Fewer queries than folds: one fold per query.
        let two: Vec<&Sample> = samples.iter().copied().take(6).collect();
        let f = assign_folds(&two, &super::queries(&two), 5);
        assert_eq!(f.iter().collect::<BTreeSet<_>>().len(), 2);
    }

    #[test]
    fn held_out_scores_count_only_unseen_queries() {
        // Four queries separate at 0.5; a fifth, alone in its fold, has its relevant results
        // at 0.3: fitted without it, the line misses them.
        let mut owned = Vec::new();
        for q in 0..4 {
            owned.push(sample(&format!("q{q}"), 0.8, true));
            owned.push(sample(&format!("q{q}"), 0.2, false));
        }
        owned.push(sample("odd", 0.3, true));
        owned.push(sample("odd", 0.31, true));
        let samples: Vec<&Sample> = owned.iter().collect();
        let queries = queries(&samples);
        let folds = assign_folds(&samples, &queries, 5);
        let fit = fit_rule(Rule::Flat, &samples, &folds);
        // Held out: q0..q3 right (4 tp, 4 tn), odd's two missed (2 fn).
        assert_eq!(fit.held_out.precision, 1.0);
        assert!((fit.held_out.recall - 4.0 / 6.0).abs() < 1e-12, "{fit:?}");
        // Fitted on everything, the line goes below odd's results.
        assert!(fit.value > 0.2 && fit.value <= 0.3, "{fit:?}");
    }
}
