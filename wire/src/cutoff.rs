//! `GET /api/cutoff`: is the learned "no good match" line on, and what is it?
//!
//! Off until there are enough judged (query, image) pairs to fit it; then the rule chosen by
//! held-out F1, its parameter, its held-out precision and recall, and every rule it was compared
//! with. A search answer carries the line itself as [`crate::Results::cutoff`].

use serde::{Deserialize, Serialize};

/// `GET /api/cutoff`: `{"state":"off",…}` or `{"state":"on",…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CutoffState {
    /// Too few labels: no hit is marked weak.
    Off(CutoffOff),
    /// Hits scored below the rule's line are marked weak.
    On(CutoffOn),
}

/// Why the line is off, and how far it is from turning on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutoffOff {
    /// Judged (query, image) pairs usable for fitting.
    pub labels: usize,
    /// Distinct queries among them.
    pub queries: usize,
    /// Judged pairs needed before the line can turn on.
    pub needed: usize,
    /// What is missing, in words.
    pub reason: String,
}

/// The rule in force and how well it separated held-out labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoffOn {
    pub rule: CutoffRule,
    /// `flat`: the score itself; `below_top`: δ, the distance below the query's top score.
    pub value: f32,
    /// Held-out precision, recall and F1 of "above the line = relevant".
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Judged pairs and queries it was fitted on.
    pub labels: usize,
    pub queries: usize,
    /// Every rule tried, the chosen one included, with its held-out figures.
    pub compared: Vec<RuleScore>,
}

/// One rule's parameter (fitted on every label) and held-out figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleScore {
    pub rule: CutoffRule,
    pub value: f32,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// How a query's line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutoffRule {
    /// One score for every query: `score ≥ value`.
    Flat,
    /// Relative to the query's best score: `score ≥ top − value`.
    BelowTop,
}
