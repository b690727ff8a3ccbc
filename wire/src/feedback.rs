//! `POST /api/feedback`: a person's verdict on one result for one query, and the proxy's answer
//! once the vote is on disk.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a person said about one result for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Relevant,
    Irrelevant,
    /// The image should not be there at all (offensive, broken, wrong). Counts as irrelevant in
    /// eval.
    Flag,
    /// Withdraws the client's earlier vote on this (query, image).
    None,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Relevant,
        Verdict::Irrelevant,
        Verdict::Flag,
        Verdict::None,
    ];

    /// The name on the wire: `relevant`, `irrelevant`, `flag` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Relevant => "relevant",
            Verdict::Irrelevant => "irrelevant",
            Verdict::Flag => "flag",
            Verdict::None => "none",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verdict {
    type Err = UnknownVerdict;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVerdict(s.to_string()))
    }
}

/// A label that is none of `relevant`, `irrelevant`, `flag`, `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVerdict(pub String);

impl fmt::Display for UnknownVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "label `{}` is not one of relevant, irrelevant, flag (or none, to withdraw)",
            self.0
        )
    }
}

impl std::error::Error for UnknownVerdict {}

/// `POST /api/feedback`. `L` is the label's type: a [`Verdict`] for clients, `String` for a
/// server that reads any label and answers an unknown one with its own error (`bad_label`)
/// rather than serde's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest<L = Verdict> {
    /// The query text as typed.
    pub query: String,
    /// The query's vector, when the client encoded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_vector: Option<Vec<f32>>,
    pub image_id: String,
    pub label: L,
    /// Why a result was flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The client's anonymous id (the proxy says `anonymous` when absent); its last vote on a
    /// (query, image) is the one in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The answer to `POST /api/feedback`, sent once the vote is written and fsynced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackResponse {
    /// Always `true`.
    pub ok: bool,
    /// The vote's id (a UUID), stable per (client, query, image): a changed vote keeps it.
    pub label_id: String,
    pub label: Verdict,
}
