//! cutoff: where does "no good match" begin for a query?
//!
//! Cosine scores of relevant and irrelevant images overlap from query to query, so no fixed
//! number separates them everywhere; the line is learned from judged results instead. A judged
//! result is a [`Sample`]: its query, its score (the cosine of the query's vector and the image's),
//! the query's top score, and whether it was judged relevant. Two [`Rule`]s are fitted — one
//! score for every query ([`Rule::Flat`]) and a distance below the query's own top score
//! ([`Rule::BelowTop`]) — and compared on held-out labels ([`fit`]: k-fold by query, so a
//! query's labels are never both fitted and scored); the rule with the higher held-out F1 is used,
//! if it beats no line at all (every result above it).
//! Until there are enough labels ([`MIN_PAIRS`], [`MIN_PER_CLASS`], [`MIN_QUERIES`]) the line is
//! off. [`samples`] turns the label log and the store into samples (the only I/O, through the
//! store trait); [`live`] holds the serving proxy's current line and decides when to refit.

pub mod fit;
pub mod live;
pub mod rule;
pub mod samples;

pub use fit::{Counts, Scores};
pub use live::LiveCutoff;
pub use rule::Rule;
pub use samples::{Judgment, judgments_from_labels};

/// Judged (query, image) pairs needed before the line turns on: fewer leave each held-out fold
/// with a handful of labels, and its precision and recall mean little.
pub const MIN_PAIRS: usize = 30;
/// Judged pairs needed of each class (relevant, not relevant): a line needs both sides.
pub const MIN_PER_CLASS: usize = 5;
/// Distinct queries needed: held-out evaluation leaves whole queries out, and a per-query rule
/// is only tested across queries.
pub const MIN_QUERIES: usize = 5;
/// Folds of the held-out evaluation (fewer when there are fewer queries).
pub const FOLDS: usize = 5;

/// One judged result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub query: String,
    /// Cosine similarity of the query's vector and the image's.
    pub score: f32,
    /// The query's best score over the whole collection.
    pub top: f32,
    pub relevant: bool,
}

/// One rule fitted on every sample, with its held-out figures.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFit {
    pub rule: Rule,
    /// The rule's parameter ([`Rule::line`]).
    pub value: f32,
    pub held_out: Scores,
}

/// The line in force, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Cutoff {
    Off {
        labels: usize,
        queries: usize,
        /// What is missing, in words.
        reason: String,
    },
    On {
        chosen: RuleFit,
        /// Every rule tried, in [`Rule::ALL`] order, the chosen one included.
        compared: Vec<RuleFit>,
        labels: usize,
        queries: usize,
    },
}

impl Cutoff {
    /// Off, with a reason that is not about the labels (the store was unreachable, say).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Cutoff::Off {
            labels: 0,
            queries: 0,
            reason: reason.into(),
        }
    }

    /// The rule in force, if any.
    pub fn chosen(&self) -> Option<&RuleFit> {
        match self {
            Cutoff::On { chosen, .. } => Some(chosen),
            Cutoff::Off { .. } => None,
        }
    }

    /// The score a query's results are cut at, given the query's top score (`None`: the line
    /// is off; a rule that needs the top score ignores `top` only when it is flat).
    pub fn line(&self, top: f32) -> Option<f32> {
        self.chosen().map(|fit| fit.rule.line(fit.value, top))
    }
}

/// Fit every rule to `samples`, score each on held-out folds, and choose by F1 — or say what is
/// missing when there are too few labels. Samples with a score or top that is not finite are
/// left out first.
pub fn fit(samples: &[Sample]) -> Cutoff {
    let samples: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.score.is_finite() && s.top.is_finite())
        .collect();
    let queries = fit::queries(&samples);
    if let Some(reason) = missing(&samples, queries.len()) {
        return Cutoff::Off {
            labels: samples.len(),
            queries: queries.len(),
            reason,
        };
    }
    let folds = fit::assign_folds(&samples, &queries, FOLDS);
    let compared: Vec<RuleFit> = Rule::ALL
        .iter()
        .map(|&rule| fit::fit_rule(rule, &samples, &folds))
        .collect();
    // Strictly better only: on a tie the earlier rule (the flat one) wins, being simpler.
    let chosen = compared
        .iter()
        .fold(None::<&RuleFit>, |best, fit| match best {
            Some(b) if b.held_out.f1 >= fit.held_out.f1 => Some(b),
            _ => Some(fit),
        })
        .cloned()
        .expect("Rule::ALL is not empty");
    // A line that does no better than none (everything above it) would only mislead.
    let none = no_line(&samples);
    if chosen.held_out.f1 <= none.f1 {
        return Cutoff::Off {
            labels: samples.len(),
            queries: queries.len(),
            reason: format!(
                "the best line ({}) separates held-out labels no better than none \
                 (F1 {:.3} against {:.3})",
                chosen.rule.describe(chosen.value),
                chosen.held_out.f1,
                none.f1
            ),
        };
    }
    Cutoff::On {
        chosen,
        compared,
        labels: samples.len(),
        queries: queries.len(),
    }
}

/// The scores of no line at all: every result above it.
fn no_line(samples: &[&Sample]) -> Scores {
    let mut counts = Counts::default();
    for s in samples {
        counts.add(true, s.relevant);
    }
    counts.scores()
}

/// What the samples lack before a line may be fitted, in words; `None` when nothing.
fn missing(samples: &[&Sample], queries: usize) -> Option<String> {
    let relevant = samples.iter().filter(|s| s.relevant).count();
    let irrelevant = samples.len() - relevant;
    let mut lacks = Vec::new();
    let mut need = |have: usize, want: usize, what: &str| {
        if have < want {
            lacks.push(format!(
                "{} more {what} (has {have} of {want})",
                want - have
            ));
        }
    };
    need(samples.len(), MIN_PAIRS, "judged results");
    need(queries, MIN_QUERIES, "judged queries");
    need(relevant, MIN_PER_CLASS, "results judged relevant");
    need(irrelevant, MIN_PER_CLASS, "results judged not relevant");
    (!lacks.is_empty()).then(|| format!("needs {}", lacks.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` queries; query q's top score is `base(q)`, its relevant results sit within 0.02 of
    /// its top and its irrelevant ones 0.10 below it. A flat line cannot separate them when the
    /// tops differ by more than the gap; the per-query rule can.
    fn shifted_queries(n: usize, base: impl Fn(usize) -> f32) -> Vec<Sample> {
        let mut out = Vec::new();
        for q in 0..n {
            let top = base(q);
            for (offset, relevant) in [
                (0.0, true),
                (0.01, true),
                (0.02, true),
                (0.10, false),
                (0.12, false),
                (0.14, false),
            ] {
                out.push(Sample {
                    query: format!("query {q}"),
                    score: top - offset,
                    top,
                    relevant,
                });
            }
        }
        out
    }

    #[test]
    fn off_until_enough_labels_and_says_what_is_missing() {
        let all = shifted_queries(8, |_| 0.3);
        // 4 queries × 6 = 24 pairs: too few pairs and too few queries.
        let Cutoff::Off {
            labels,
            queries,
            reason,
        } = fit(&all[..24])
        else {
            panic!("on with 24 labels")
        };
        assert_eq!((labels, queries), (24, 4));
        assert!(
            reason.contains("6 more judged results (has 24 of 30)"),
            "{reason}"
        );
        assert!(
            reason.contains("1 more judged queries (has 4 of 5)"),
            "{reason}"
        );
        // Enough pairs and queries, but one class only.
        let relevant_only: Vec<Sample> = shifted_queries(10, |_| 0.3)
            .into_iter()
            .filter(|s| s.relevant)
            .collect();
        let Cutoff::Off { reason, .. } = fit(&relevant_only) else {
            panic!("on with one class")
        };
        assert!(
            reason.contains("5 more results judged not relevant"),
            "{reason}"
        );
        assert!(!reason.contains("judged results ("), "{reason}");
        assert!(fit(&all).chosen().is_some());
    }

    #[test]
    fn non_finite_samples_are_left_out() {
        let mut all = shifted_queries(5, |_| 0.3);
        assert!(fit(&all).chosen().is_some());
        all[0].score = f32::NAN;
        let Cutoff::Off { labels, .. } = fit(&all) else {
            panic!("a NaN score counted")
        };
        assert_eq!(labels, 29);
    }

    #[test]
    fn per_query_rule_wins_when_tops_differ() {
        // Tops from 0.20 to 0.41: a relevant result of a weak query scores below an irrelevant
        // one of a strong query.
        let samples = shifted_queries(8, |q| 0.20 + 0.03 * q as f32);
        let Cutoff::On {
            chosen, compared, ..
        } = fit(&samples)
        else {
            panic!("off")
        };
        assert_eq!(chosen.rule, Rule::BelowTop);
        assert_eq!(chosen.held_out.precision, 1.0);
        assert_eq!(chosen.held_out.recall, 1.0);
        // δ between the relevant (≤ 0.02 below) and the irrelevant (≥ 0.10 below).
        assert!(chosen.value > 0.02 && chosen.value < 0.10, "{chosen:?}");
        let flat = &compared[0];
        assert_eq!(flat.rule, Rule::Flat);
        assert!(flat.held_out.f1 < 1.0, "{flat:?}");
        // The line of a query with top 0.5 is 0.5 − δ.
        let line = fit(&samples).line(0.5).expect("on");
        assert!((line - (0.5 - chosen.value)).abs() < 1e-6);
    }

    #[test]
    fn a_line_no_better_than_none_stays_off() {
        // Relevance unrelated to the score: every query has the same six scores; even queries
        // call the 1st, 3rd and 5th relevant, odd ones the others, so each score is relevant
        // in half the queries.
        let mut samples = shifted_queries(6, |_| 0.3);
        for (i, s) in samples.iter_mut().enumerate() {
            let (query, position) = (i / 6, i % 6);
            s.relevant = position % 2 == query % 2;
        }
        let Cutoff::Off { reason, labels, .. } = fit(&samples) else {
            panic!("on with random labels: {:?}", fit(&samples))
        };
        assert_eq!(labels, 36);
        assert!(reason.contains("no better than none"), "{reason}");
    }

    #[test]
    fn flat_rule_wins_ties_when_tops_are_equal() {
        let samples = shifted_queries(6, |_| 0.3);
        let Cutoff::On { chosen, .. } = fit(&samples) else {
            panic!("off")
        };
        // Both separate perfectly; the flat one is kept.
        assert_eq!(chosen.rule, Rule::Flat);
        assert_eq!(chosen.held_out.f1, 1.0);
        assert!(chosen.value > 0.2 && chosen.value < 0.28, "{chosen:?}");
        assert_eq!(fit(&samples).line(0.9), Some(chosen.value));
    }
}
