//! eval/cutoff_report: what does the learned "no good match" line look like in a report?
//!
//! A section appended to `report.md` (the rule chosen, its parameter, and the held-out
//! precision, recall and F1 of every rule compared; or why the line is off) and the `cutoff`
//! object of `report.json` (the shape `GET /api/cutoff` answers). Pure.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cutoff::{Cutoff, FOLDS, MIN_PAIRS, RuleFit};

/// The Markdown section, starting with a blank line.
pub fn markdown(cutoff: &Cutoff) -> String {
    let mut out = String::from("\n## \"No good match\" line\n\n");
    match cutoff {
        Cutoff::Off { reason, .. } => {
            let _ = writeln!(out, "Off: {reason}.");
        }
        Cutoff::On {
            chosen,
            compared,
            labels,
            queries,
        } => {
            let _ = writeln!(
                out,
                "Rule `{}`: {} (chosen by held-out F1; {labels} judged results over {queries} \
                 queries, {FOLDS}-fold by query). Held out: precision {:.3}, recall {:.3}.\n",
                chosen.rule.name(),
                chosen.rule.describe(chosen.value),
                chosen.held_out.precision,
                chosen.held_out.recall,
            );
            out.push_str("| Rule | Line | Precision | Recall | F1 |\n");
            out.push_str("|---|---|---:|---:|---:|\n");
            for fit in compared {
                let mark = if fit.rule == chosen.rule {
                    " (chosen)"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "| {}{mark} | {} | {:.3} | {:.3} | {:.3} |",
                    fit.rule.name(),
                    fit.rule.describe(fit.value),
                    fit.held_out.precision,
                    fit.held_out.recall,
                    fit.held_out.f1,
                );
            }
        }
    }
    out
}

/// The `cutoff` object of `report.json`: as `GET /api/cutoff` answers it.
pub fn json(cutoff: &Cutoff) -> Value {
    match cutoff {
        Cutoff::Off {
            labels,
            queries,
            reason,
        } => json!({
            "state": "off",
            "labels": labels,
            "queries": queries,
            "needed": MIN_PAIRS,
            "reason": reason,
        }),
        Cutoff::On {
            chosen,
            compared,
            labels,
            queries,
        } => {
            let mut on = rule_json(chosen);
            on["state"] = json!("on");
            on["labels"] = json!(labels);
            on["queries"] = json!(queries);
            on["compared"] = compared.iter().map(rule_json).collect();
            on
        }
    }
}

fn rule_json(fit: &RuleFit) -> Value {
    json!({
        "rule": fit.rule.name(),
        "value": fit.value,
        "precision": fit.held_out.precision,
        "recall": fit.held_out.recall,
        "f1": fit.held_out.f1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cutoff::{Rule, Scores};

    fn fit(rule: Rule, value: f32, f1: f64) -> RuleFit {
        RuleFit {
            rule,
            value,
            held_out: Scores {
                precision: 0.75,
                recall: 0.5,
                f1,
            },
        }
    }

    #[test]
    fn on_names_the_rule_and_every_figure() {
        let chosen = fit(Rule::BelowTop, 0.0625, 0.6);
        let cutoff = Cutoff::On {
            chosen: chosen.clone(),
            compared: vec![fit(Rule::Flat, 0.25, 0.5), chosen],
            labels: 40,
            queries: 6,
        };
        let md = markdown(&cutoff);
        assert!(md.starts_with("\n## \"No good match\" line\n"), "{md}");
        assert!(
            md.contains("Rule `below_top`: score ≥ top − 0.062 (chosen by held-out F1; 40"),
            "{md}"
        );
        assert!(md.contains("precision 0.750, recall 0.500"), "{md}");
        assert!(
            md.contains("| flat | score ≥ 0.250 | 0.750 | 0.500 | 0.500 |"),
            "{md}"
        );
        assert!(
            md.contains("| below_top (chosen) | score ≥ top − 0.062 | 0.750 | 0.500 | 0.600 |"),
            "{md}"
        );
        let j = json(&cutoff);
        assert_eq!(j["state"], "on");
        assert_eq!(j["rule"], "below_top");
        assert_eq!(j["value"], 0.0625);
        assert_eq!(j["labels"], 40);
        assert_eq!(j["compared"][0]["rule"], "flat");
        assert_eq!(j["compared"][1]["f1"], 0.6);
    }

    #[test]
    fn off_says_why() {
        let cutoff = Cutoff::Off {
            labels: 12,
            queries: 2,
            reason: "needs 18 more judged results (has 12 of 30)".into(),
        };
        assert_eq!(
            markdown(&cutoff),
            "\n## \"No good match\" line\n\nOff: needs 18 more judged results (has 12 of 30).\n"
        );
        assert_eq!(
            json(&cutoff),
            json!({"state": "off", "labels": 12, "queries": 2, "needed": 30,
                   "reason": "needs 18 more judged results (has 12 of 30)"})
        );
    }
}
