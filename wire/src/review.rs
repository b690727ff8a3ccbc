//! The admin review queue: `GET /api/review` (the pairs waiting for a reviewer), `POST
//! /api/review` (a verdict) and its answer. `GET /api/review/export` answers plain
//! `queries.tsv` text, not JSON.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a reviewer decides about one (query, image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewVerdict {
    Relevant,
    Irrelevant,
    /// Out of the queue without a judgment: the crowd's majority stands.
    Skip,
}

impl ReviewVerdict {
    pub const ALL: [ReviewVerdict; 3] = [
        ReviewVerdict::Relevant,
        ReviewVerdict::Irrelevant,
        ReviewVerdict::Skip,
    ];

    /// The name on the wire: `relevant`, `irrelevant` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewVerdict::Relevant => "relevant",
            ReviewVerdict::Irrelevant => "irrelevant",
            ReviewVerdict::Skip => "skip",
        }
    }
}

impl fmt::Display for ReviewVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReviewVerdict {
    type Err = UnknownReviewVerdict;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownReviewVerdict(s.to_string()))
    }
}

/// A verdict that is none of `relevant`, `irrelevant`, `skip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownReviewVerdict(pub String);

impl fmt::Display for UnknownReviewVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "verdict `{}` is not one of relevant, irrelevant, skip",
            self.0
        )
    }
}

impl std::error::Error for UnknownReviewVerdict {}

/// The crowd's votes in force on one (query, image).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteCounts {
    pub relevant: usize,
    pub irrelevant: usize,
    pub flag: usize,
}

/// One (query, image) waiting for a reviewer: flagged, or with votes both ways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub query: String,
    pub image_id: String,
    /// The proxy's relative URLs, as in search results.
    pub url: String,
    pub thumbnail_url: String,
    /// The image's caption, when the index has the image and a caption.
    pub caption: Option<String>,
    pub votes: VoteCounts,
    /// The voters' notes, oldest first.
    pub notes: Vec<String>,
}

/// `GET /api/review?offset=&limit=`: one page of the queue, most flags and closest splits
/// first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewQueue {
    pub items: Vec<ReviewItem>,
    /// Items in the whole queue.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    /// Where the next page starts; `null` on the last page.
    pub next_offset: Option<usize>,
}

/// `POST /api/review`. `V` is the verdict's type: a [`ReviewVerdict`] for clients, `String` for a
/// server that answers an unknown verdict with its own error (`bad_verdict`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest<V = ReviewVerdict> {
    pub query: String,
    pub image_id: String,
    pub verdict: V,
    /// The reviewer's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The answer to `POST /api/review`, sent once the verdict is written and fsynced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewResponse {
    /// Always `true`.
    pub ok: bool,
    pub query: String,
    pub image_id: String,
    pub verdict: ReviewVerdict,
}
