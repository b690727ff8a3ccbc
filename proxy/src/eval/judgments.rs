//! judgments: which images are relevant to each query?
//!
//! Two sources, merged: `queries.tsv` (columns `query` and `relevant_ids`, comma-separated ids;
//! a bad line is an error naming it) and the crowd's labels, where for each (query, image) the
//! majority over clients decides (a flag counts as irrelevant; a tie leaves the TSV's judgment).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use crate::labels::{Label, majority};

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
    let mut by_query: BTreeMap<String, BTreeSet<String>> = tsv
        .iter()
        .map(|j| (j.query.clone(), j.relevant.clone()))
        .collect();
    for ((query, image), verdict) in majority(labels) {
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
