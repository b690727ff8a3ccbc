//! review: what has a reviewer decided, and which judgments does that make?
//!
//! A reviewer settles a (query, image) that the crowd flagged or disagrees on ([`queue`]): it is
//! relevant, irrelevant, or skipped (left to the crowd, and out of the queue). Each verdict is a
//! [`Review`], one line of `<storage>/reviews.jsonl` — a second [`Log`] with the same machinery as
//! the votes (written and fsynced before the answer, torn tails cut, failed appends cut back,
//! rewritten while serving, one writer, snapshots for `proxy eval`). The latest verdict per
//! (query, image) is in force. A file of its own rather than a second kind of line in
//! `labels.jsonl`: the vote log's format, export and budget stay as they are, and the reviews
//! (few, and worth more) are never rewritten or locked together with the crowd's.
//!
//! In `eval` a reviewed verdict wins over the crowd's majority ([`crate::eval::judgments`]), and
//! [`export_tsv`] writes the reviewed judgments as a `queries.tsv` to commit as a test set.

pub mod queue;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::labels::{Label, Log, Record, majority};

/// What a reviewer decided about one (query, image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Relevant,
    Irrelevant,
    /// Out of the queue without a judgment: the crowd's majority stands.
    Skip,
}

/// One stored verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub query: String,
    pub image_id: String,
    pub verdict: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl Review {
    /// A verdict made now.
    pub fn new(query: String, image_id: String, verdict: Decision, note: Option<String>) -> Self {
        Self {
            query,
            image_id,
            verdict,
            note,
            time_ms: crate::labels::now_ms(),
        }
    }
}

/// A later verdict on the same (query, image) replaces the earlier one.
impl Record for Review {
    type Key = (String, String);

    fn key(&self) -> (String, String) {
        (self.query.clone(), self.image_id.clone())
    }

    fn time_ms(&self) -> u64 {
        self.time_ms
    }
}

/// The durable log of reviewers' verdicts (`reviews.jsonl`).
pub type ReviewLog = Log<Review>;

/// The verdict in force per (query, image) (the last of each, when given a whole history).
pub fn decisions(reviews: &[Review]) -> HashMap<(String, String), Decision> {
    reviews
        .iter()
        .map(|r| ((r.query.clone(), r.image_id.clone()), r.verdict))
        .collect()
}

/// Whether each judged (query, image) is relevant: the crowd's majority ([`majority`]; `None`
/// for a tie), a reviewer's verdict winning over it, `skip` leaving it. The one rule `eval` and
/// the "no good match" line both judge by.
pub fn verdicts(labels: &[Label], reviews: &[Review]) -> HashMap<(String, String), Option<bool>> {
    let mut verdicts = majority(labels);
    for (pair, decision) in decisions(reviews) {
        match decision {
            Decision::Relevant => verdicts.insert(pair, Some(true)),
            Decision::Irrelevant => verdicts.insert(pair, Some(false)),
            Decision::Skip => None,
        };
    }
    verdicts
}

/// The reviewed judgments as a `queries.tsv` (`query`, `relevant_ids` comma-joined), queries and
/// ids sorted; only queries with at least one image reviewed relevant. A tab or line break in a
/// query becomes a space; an id that holds a comma, tab or line break cannot be written in the
/// format and is left out.
pub fn export_tsv(reviews: &[Review]) -> String {
    let mut relevant: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((query, image), verdict) in decisions(reviews) {
        let writable = !image.contains([',', '\t', '\n', '\r']);
        if verdict == Decision::Relevant && writable {
            relevant
                .entry(query.replace(['\t', '\n', '\r'], " "))
                .or_default()
                .insert(image);
        }
    }
    let mut out = String::from("query\trelevant_ids\n");
    for (query, ids) in relevant {
        let ids: Vec<String> = ids.into_iter().collect();
        out.push_str(&format!("{query}\t{}\n", ids.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(query: &str, image: &str, verdict: Decision, time_ms: u64) -> Review {
        Review {
            query: query.into(),
            image_id: image.into(),
            verdict,
            note: None,
            time_ms,
        }
    }

    #[test]
    fn the_export_holds_reviewed_relevant_images_only_and_parses_back() {
        let reviews = [
            review("cat", "tabby", Decision::Relevant, 1),
            review("cat", "chelsea", Decision::Relevant, 2),
            review("cat", "dog", Decision::Irrelevant, 3),
            review("dog", "dog", Decision::Skip, 4),
            review("only no", "car", Decision::Irrelevant, 5),
            review("a\ttab", "x", Decision::Relevant, 6),
            review("cat", "a,b", Decision::Relevant, 7),
            // The latest verdict on a pair wins.
            review("bird", "tabby", Decision::Relevant, 8),
            review("bird", "tabby", Decision::Irrelevant, 9),
        ];
        let tsv = export_tsv(&reviews);
        assert_eq!(
            tsv, "query\trelevant_ids\na tab\tx\ncat\tchelsea,tabby\n",
            "{tsv}"
        );
        let parsed = crate::eval::parse_queries(&tsv, "export").expect("a valid queries.tsv");
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[1].relevant,
            ["chelsea", "tabby"].map(String::from).into()
        );
    }

    #[test]
    fn reviews_survive_reopen_and_the_latest_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("reviews.jsonl");
        {
            let (log, _) = ReviewLog::open(&path).expect("open");
            log.put(review("cat", "tabby", Decision::Irrelevant, 1))
                .expect("write");
            log.put(review("cat", "tabby", Decision::Relevant, 2))
                .expect("write");
            log.put(review("cat", "dog", Decision::Skip, 3))
                .expect("write");
        }
        let (log, report) = ReviewLog::open(&path).expect("reopen");
        assert_eq!((report.lines, report.labels), (3, 2));
        let all = log.all();
        assert_eq!(all[0].verdict, Decision::Relevant);
        assert_eq!(ReviewLog::snapshot(&path).expect("snapshot"), all);
        let err = ReviewLog::open(&path).expect_err("one writer");
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[test]
    fn a_torn_verdict_is_cut_at_open_and_skipped_by_a_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("reviews.jsonl");
        {
            let (log, _) = ReviewLog::open(&path).expect("open");
            log.put(review("cat", "tabby", Decision::Relevant, 1))
                .expect("write");
        }
        let whole = std::fs::read(&path).expect("read");
        // A crash in the middle of the next verdict's line.
        let fragment = b"{\"query\":\"dog\",\"image_";
        let mut torn = whole.clone();
        torn.extend_from_slice(fragment);
        std::fs::write(&path, &torn).expect("write");
        assert_eq!(ReviewLog::snapshot(&path).expect("snapshot").len(), 1);
        assert_eq!(
            std::fs::read(&path).expect("read"),
            torn,
            "a reader cuts nothing"
        );
        let (log, report) = ReviewLog::open(&path).expect("a torn tail is no reason to refuse");
        assert_eq!(
            (report.truncated_bytes, log.len()),
            (fragment.len() as u64, 1)
        );
        assert_eq!(std::fs::read(&path).expect("read"), whole);
    }
}
