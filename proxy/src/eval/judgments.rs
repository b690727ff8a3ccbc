//! judgments: which images are relevant to each query?
//!
//! Two sources, merged: `queries.tsv` (columns `query` and `relevant_ids`, comma-separated ids;
//! a bad line is an error naming it) and the crowd's labels, where for each (query, image) the
//! majority over clients decides (a flag counts as irrelevant; a tie leaves the TSV's judgment).
//! A reviewer's verdict on a (query, image) ([`crate::review`]) wins over both; a `skip` leaves
//! them as they are.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use crate::labels::Label;
use crate::review::{Review, verdicts};

/// One query and the ids that are relevant to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub query: String,
    pub relevant: BTreeSet<String>,
}

/// Read `queries.tsv`; a bad line is an error naming it.
pub fn read_queries(path: &Path) -> anyhow::Result<Vec<Judged>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parse_queries(&text, &path.display().to_string())
}

/// Parse the text of a `queries.tsv`.
pub fn parse_queries(text: &str, name: &str) -> anyhow::Result<Vec<Judged>> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| {
            l.trim_start_matches('\u{feff}')
                .split('\t')
                .map(str::trim)
                .collect()
        })
        .unwrap_or_default();
    let (Some(q_col), Some(r_col)) = (
        header.iter().position(|c| *c == "query"),
        header.iter().position(|c| *c == "relevant_ids"),
    ) else {
        anyhow::bail!(
            "{name} line 1: needs the columns `query` and `relevant_ids` (tab-separated)"
        );
    };
    let mut out: Vec<Judged> = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split('\t').collect();
        if cells.len() != header.len() {
            anyhow::bail!(
                "{name} line {line_no}: {} tab-separated fields, the header has {}",
                cells.len(),
                header.len()
            );
        }
        let query = cells[q_col].trim().to_string();
        if query.is_empty() {
            anyhow::bail!("{name} line {line_no}: empty `query`");
        }
        if !seen.insert(query.clone()) {
            anyhow::bail!("{name} line {line_no}: query `{query}` appears twice");
        }
        let relevant = cells[r_col]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        out.push(Judged { query, relevant });
    }
    Ok(out)
}

/// Merge the TSV judgments with the label majority. Queries that end with no relevant image are
/// left out (no metric is defined for them); the returned count says how many.
pub fn judgments(tsv: &[Judged], labels: &[Label]) -> (Vec<Judged>, usize) {
    judgments_reviewed(tsv, labels, &[])
}

/// [`judgments`], with the reviewers' verdicts in force applied last: a reviewed (query, image)
/// is relevant or not as the reviewer said, whatever the TSV and the crowd say.
pub fn judgments_reviewed(
    tsv: &[Judged],
    labels: &[Label],
    reviews: &[Review],
) -> (Vec<Judged>, usize) {
    let mut by_query: BTreeMap<String, BTreeSet<String>> = tsv
        .iter()
        .map(|j| (j.query.clone(), j.relevant.clone()))
        .collect();
    for ((query, image), verdict) in verdicts(labels, reviews) {
        let set = by_query.entry(query).or_default();
        match verdict {
            Some(true) => {
                set.insert(image);
            }
            Some(false) => {
                set.remove(&image);
            }
            None => {}
        }
    }
    let total = by_query.len();
    let judged: Vec<Judged> = by_query
        .into_iter()
        .filter(|(_, r)| !r.is_empty())
        .map(|(query, relevant)| Judged { query, relevant })
        .collect();
    let skipped = total - judged.len();
    (judged, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Verdict, label_id};
    use crate::review::Decision;

    fn vote(client: &str, image: &str, verdict: Verdict) -> Label {
        Label {
            label_id: label_id(client, "cat", image),
            query: "cat".into(),
            query_vector: None,
            image_id: image.into(),
            label: verdict,
            note: None,
            client_id: client.into(),
            time_ms: 0,
        }
    }

    #[test]
    fn a_reviewed_verdict_wins_over_the_majority_and_skip_leaves_it() {
        let labels = [
            // The crowd: `tabby` relevant 2 to 1, `lion` irrelevant 2 to 1, `dog` relevant.
            vote("a", "tabby", Verdict::Relevant),
            vote("b", "tabby", Verdict::Relevant),
            vote("c", "tabby", Verdict::Flag),
            vote("a", "lion", Verdict::Irrelevant),
            vote("b", "lion", Verdict::Flag),
            vote("c", "lion", Verdict::Relevant),
            vote("a", "dog", Verdict::Relevant),
        ];
        let tsv = parse_queries("query\trelevant_ids\ncat\tchelsea\n", "q").expect("tsv");
        let review = |image: &str, verdict| Review::new("cat".into(), image.into(), verdict, None);
        let reviews = [
            review("tabby", Decision::Irrelevant),
            review("lion", Decision::Relevant),
            review("dog", Decision::Skip),
            review("chelsea", Decision::Irrelevant),
        ];
        let relevant = |judged: &[Judged]| judged[0].relevant.clone();
        let (crowd, _) = judgments(&tsv, &labels);
        assert_eq!(
            relevant(&crowd),
            ["chelsea", "dog", "tabby"].map(String::from).into()
        );
        let (reviewed, skipped) = judgments_reviewed(&tsv, &labels, &reviews);
        assert_eq!(skipped, 0);
        assert_eq!(
            relevant(&reviewed),
            ["dog", "lion"].map(String::from).into()
        );
    }
}
