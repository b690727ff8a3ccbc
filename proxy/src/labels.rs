//! labels: where do people's relevance votes live, and when are they safe?
//!
//! An append-only JSON-lines log (`<storage>/labels.jsonl`), one vote per line ([`log`]). A vote
//! is acknowledged only after its line is written and `fdatasync`ed, so a vote acknowledged before
//! a `kill -9` (or a power cut) is there after the restart. Replaying the log gives the votes in
//! force, keyed by (client, query, image): a repeated vote from one client on one (query, image)
//! replaces the earlier one, and a `none` vote withdraws it. A torn last line (the process died
//! mid-write) is cut off, whatever its bytes; a failed append is cut back to the last whole line.
//! The log is rewritten without replaced votes ([`compact`]) at open and while serving, once they
//! are most of it, so it grows with the votes in force rather than with the votes cast. One
//! process writes the log at a time (an OS lock on `<log>.lock`); others read a
//! [`LabelLog::snapshot`] that writes nothing. How many votes a client (and everyone together)
//! may cast is [`budget`]'s question.
//!
//! Why a log file rather than a `labels` collection in Qdrant: the durability point is ours to
//! prove (write + fsync, then answer), labels stay with the proxy whichever store holds the
//! vectors (embedded or a cluster whose API key may be read-only), and the export is the file.

pub mod budget;
pub mod compact;
pub mod log;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use budget::{BudgetConfig, BudgetError, VoteBudget};
pub use compact::CompactPolicy;
pub use log::{LabelLog, Log, Record};

/// What a person said about one result for one query (the wire's names: `relevant`,
/// `irrelevant`, `flag` — counted as irrelevant in eval — and `none`, which withdraws the
/// client's earlier vote on this query and image).
pub use wire::Verdict;

/// One stored vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Stable per (client, query, image): a changed vote keeps its id.
    pub label_id: Uuid,
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_vector: Option<Vec<f32>>,
    pub image_id: String,
    pub label: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub client_id: String,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// The namespace of label ids.
const LABEL_NAMESPACE: Uuid = Uuid::from_u128(0x0b6f_7c1e_93a4_4d2b_8c55_2e9d_1a7f_4c60);

/// The label id of a (client, query, image).
pub fn label_id(client_id: &str, query: &str, image_id: &str) -> Uuid {
    let key = format!("{client_id}\u{0}{query}\u{0}{image_id}");
    Uuid::new_v5(&LABEL_NAMESPACE, key.as_bytes())
}

/// A new vote, before it gets an id and a time.
#[derive(Debug, Clone)]
pub struct Vote {
    pub query: String,
    pub query_vector: Option<Vec<f32>>,
    pub image_id: String,
    pub label: Verdict,
    pub note: Option<String>,
    pub client_id: String,
}

/// Errors of the label log.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("label log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "label log {path} is in use by another process (a running `proxy serve`); \
         one process at a time writes it (`proxy eval` only reads it)"
    )]
    Busy { path: PathBuf },
    #[error("label log {path} line {line}: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// What opening the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Lines read.
    pub lines: usize,
    /// Votes in force.
    pub labels: usize,
    /// Bytes of a torn last line that were cut off.
    pub truncated_bytes: u64,
    /// Whether the log was rewritten without replaced votes.
    pub compacted: bool,
    /// Whether a rewrite's temporary file, left by a crash before it replaced the log, was
    /// removed (the log itself was still whole).
    pub removed_temp: bool,
}

impl Vote {
    /// The stored vote: its id and the time now.
    fn into_label(self) -> Label {
        Label {
            label_id: label_id(&self.client_id, &self.query, &self.image_id),
            query: self.query,
            query_vector: self.query_vector,
            image_id: self.image_id,
            label: self.label,
            note: self.note,
            client_id: self.client_id,
            time_ms: now_ms(),
        }
    }
}

/// A vote replaces the (client, query, image)'s earlier one; `none` withdraws it.
impl Record for Label {
    type Key = Uuid;

    fn key(&self) -> Uuid {
        self.label_id
    }

    fn withdraws(&self) -> bool {
        self.label == Verdict::None
    }

    fn time_ms(&self) -> u64 {
        self.time_ms
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 UTC time of milliseconds since the epoch (for the TSV export).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// The majority verdict of each (query, image) over clients: `Some(true)` relevant,
/// `Some(false)` irrelevant (a flag counts as irrelevant), `None` on a tie.
pub fn majority(labels: &[Label]) -> HashMap<(String, String), Option<bool>> {
    let mut votes: HashMap<(String, String), (usize, usize)> = HashMap::new();
    for label in labels {
        let entry = votes
            .entry((label.query.clone(), label.image_id.clone()))
            .or_default();
        match label.label {
            Verdict::Relevant => entry.0 += 1,
            Verdict::Irrelevant | Verdict::Flag => entry.1 += 1,
            Verdict::None => {}
        }
    }
    votes
        .into_iter()
        .map(|(key, (yes, no))| {
            let verdict = match yes.cmp(&no) {
                std::cmp::Ordering::Greater => Some(true),
                std::cmp::Ordering::Less => Some(false),
                std::cmp::Ordering::Equal => None,
            };
            (key, verdict)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_counts_flags_as_irrelevant() {
        let label = |client: &str, image: &str, verdict| Label {
            label_id: label_id(client, "q", image),
            query: "q".into(),
            query_vector: None,
            image_id: image.into(),
            label: verdict,
            note: None,
            client_id: client.into(),
            time_ms: 0,
        };
        let labels = [
            label("a", "x", Verdict::Relevant),
            label("b", "x", Verdict::Relevant),
            label("c", "x", Verdict::Flag),
            label("a", "y", Verdict::Relevant),
            label("b", "y", Verdict::Flag),
            label("a", "z", Verdict::Irrelevant),
        ];
        let m = majority(&labels);
        assert_eq!(m[&("q".into(), "x".into())], Some(true));
        assert_eq!(m[&("q".into(), "y".into())], None);
        assert_eq!(m[&("q".into(), "z".into())], Some(false));
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_795_782_896_000), "2026-11-27T12:34:56.000Z");
    }
}
