//! cutoff/rule: how is a query's line drawn from a rule's parameter?
//!
//! A rule is a feature of a judged result and a threshold on it: the result is above the line
//! (judged likely relevant) when its feature is at least the threshold. [`Rule::Flat`]'s feature is
//! the score; [`Rule::BelowTop`]'s is the score minus the query's top score, so its threshold
//! is −δ and its line `top − δ`.

use super::Sample;

/// How a query's line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `score ≥ value`, whatever the query.
    Flat,
    /// `score ≥ top − value`: within δ of the query's best score.
    BelowTop,
}

impl Rule {
    /// Every rule, in the order they are compared (the first wins a tie).
    pub const ALL: [Rule; 2] = [Rule::Flat, Rule::BelowTop];

    /// The name used in reports and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Flat => "flat",
            Rule::BelowTop => "below_top",
        }
    }

    /// The feature the threshold applies to.
    pub fn feature(self, sample: &Sample) -> f32 {
        match self {
            Rule::Flat => sample.score,
            Rule::BelowTop => sample.score - sample.top,
        }
    }

    /// The rule's parameter for a threshold on its feature: the score, or δ.
    pub fn value(self, threshold: f32) -> f32 {
        match self {
            Rule::Flat => threshold,
            Rule::BelowTop => -threshold,
        }
    }

    /// The score a query whose best score is `top` is cut at.
    pub fn line(self, value: f32, top: f32) -> f32 {
        match self {
            Rule::Flat => value,
            Rule::BelowTop => top - value,
        }
    }

    /// Whether the line depends on the query's top score.
    pub fn needs_top(self) -> bool {
        matches!(self, Rule::BelowTop)
    }

    /// The rule in words: `score ≥ 0.270`, `score ≥ top − 0.050`.
    pub fn describe(self, value: f32) -> String {
        match self {
            Rule::Flat => format!("score ≥ {value:.3}"),
            Rule::BelowTop => format!("score ≥ top − {value:.3}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_threshold_and_line_agree() {
        let sample = Sample {
            query: "q".into(),
            score: 0.25,
            top: 0.31,
            relevant: true,
        };
        for rule in Rule::ALL {
            let threshold = rule.feature(&sample) - 0.01;
            let value = rule.value(threshold);
            // Above the threshold on the feature ⇔ above the line on the score.
            assert!(rule.feature(&sample) >= threshold);
            assert!(
                sample.score >= rule.line(value, sample.top) - 1e-6,
                "{rule:?}"
            );
        }
        assert_eq!(Rule::BelowTop.line(0.05, 0.3), 0.3 - 0.05);
        assert_eq!(Rule::Flat.line(0.2, 0.9), 0.2);
        assert_eq!(Rule::BelowTop.describe(0.05), "score ≥ top − 0.050");
        assert_eq!(Rule::Flat.describe(0.27), "score ≥ 0.270");
    }
}
