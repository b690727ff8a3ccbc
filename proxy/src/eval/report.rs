//! report: what does a run look like to a reader?
//!
//! An [`EvalReport`] rendered three ways and written side by side: `report.md` (summary and
//! per-query tables, worst first), `report.json` (the same numbers plus each query's ranked ids)
//! and `recall.svg` (the recall curve, from [`chart`]). Rendering is pure and deterministic;
//! [`write`] is the only I/O.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::EvalReport;
use super::chart;
use super::metrics::{QueryMetrics, Summary, recall_for, worst_first};

/// What [`write`] wrote: the files, and the Markdown (for a caller that also shows it).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub files: Vec<PathBuf>,
    pub markdown: String,
}

/// Render the report and write `report.md`, `report.json` and `recall.svg` into `out` (created if
/// missing); `title` heads the Markdown. Returns the paths written; an error names the file.
pub fn write(out: &Path, title: &str, report: &EvalReport) -> anyhow::Result<Written> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let chart_title = format!("Recall@K, {} queries", report.summary.queries);
    let markdown = report.markdown(title);
    let files = [
        ("report.md", markdown.clone()),
        ("report.json", serde_json::to_string_pretty(&report.json())?),
        (
            "recall.svg",
            chart::recall_curve_svg(&report.curve, &chart_title)?,
        ),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, body) in files {
        let path = out.join(name);
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(Written {
        files: written,
        markdown,
    })
}

impl EvalReport {
    /// The Markdown report, with a note on the queries left out.
    pub fn markdown(&self, title: &str) -> String {
        let mut md = markdown(&self.summary, &self.per_query, title);
        md.push_str(&super::vectors::markdown(&self.vectors));
        if self.skipped > 0 {
            md.push_str(&format!(
                "\n{} labelled quer{} left out: no image is relevant by the labels.\n",
                self.skipped,
                if self.skipped == 1 { "y" } else { "ies" }
            ));
        }
        if !self.feedback.is_empty() {
            md.push_str(&super::feedback::markdown(&self.feedback));
        }
        if let Some(cutoff) = &self.cutoff {
            md.push_str(&super::cutoff_report::markdown(cutoff));
        }
        md
    }

    /// The JSON report: the summary, the recall curve and every query (worst first) with its
    /// ranked ids.
    pub fn json(&self) -> Value {
        let per_query: Vec<Value> = worst_first(&self.per_query)
            .iter()
            .map(|q| {
                json!({
                    "query": q.query,
                    "relevant": q.relevant,
                    "first_relevant_rank": q.first_relevant_rank,
                    "recall": recall_json(&q.recall),
                    "mrr": q.mrr,
                    "ndcg@10": q.ndcg10,
                    "ranked": self.ranked.get(&q.query),
                })
            })
            .collect();
        json!({
            "summary": {
                "queries": self.summary.queries,
                "recall": recall_json(&self.summary.recall),
                "mrr": self.summary.mrr,
                "ndcg@10": self.summary.ndcg10,
                "skipped_queries": self.skipped,
            },
            "recall_curve": self.curve.iter().map(|(k, v)| json!({"k": k, "recall": v})).collect::<Vec<_>>(),
            "per_query": per_query,
            "searched": self.retrieval.to_string(),
            "vectors": super::vectors::json(&self.vectors),
            "feedback": super::feedback::json(&self.feedback),
            "cutoff": self.cutoff.as_ref().map(super::cutoff_report::json),
        })
    }
}

/// `(k, recall)` pairs as a JSON object `{"recall@k": value}`.
fn recall_json(recall: &[(usize, f64)]) -> Value {
    recall
        .iter()
        .map(|(k, v)| (format!("recall@{k}"), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The Markdown report: a heading, a summary table (Recall@K for each reported k, MRR, nDCG@10,
/// number of queries) and a per-query table, worst first (query, relevant count, first relevant
/// rank or "—", R@1, R@5, R@10, MRR, nDCG@10). Numbers have three decimals.
fn markdown(summary: &Summary, per_query: &[QueryMetrics], title: &str) -> String {
    let mut out = format!("# {}\n\n", title.replace(['\r', '\n'], " "));
    summary_table(&mut out, summary);
    per_query_table(&mut out, per_query);
    out
}

// `write!` into a String cannot fail; the results below are ignored on purpose.

/// The summary section: one header row, one row of means.
fn summary_table(out: &mut String, summary: &Summary) {
    out.push_str("## Summary\n\n|");
    for &(k, _) in &summary.recall {
        let _ = write!(out, " Recall@{k} |");
    }
    out.push_str(" MRR | nDCG@10 | Queries |\n|");
    for _ in 0..summary.recall.len() + 3 {
        out.push_str("---:|");
    }
    out.push_str("\n|");
    for &(_, value) in &summary.recall {
        let _ = write!(out, " {value:.3} |");
    }
    let _ = writeln!(
        out,
        " {:.3} | {:.3} | {} |",
        summary.mrr, summary.ndcg10, summary.queries
    );
}

/// The per-query section, worst first.
fn per_query_table(out: &mut String, per_query: &[QueryMetrics]) {
    out.push_str("\n## Per query (worst first)\n\n");
    out.push_str("| Query | Relevant | First relevant rank | R@1 | R@5 | R@10 | MRR | nDCG@10 |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in worst_first(per_query) {
        let first = row
            .first_relevant_rank
            .map_or_else(|| "—".to_owned(), |rank| rank.to_string());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.3} |",
            markdown_cell(&row.query),
            row.relevant,
            first,
            cell_number(recall_for(&row.recall, 1)),
            cell_number(recall_for(&row.recall, 5)),
            cell_number(recall_for(&row.recall, 10)),
            row.mrr,
            row.ndcg10,
        );
    }
}

/// Query text made safe for one Markdown table cell: line breaks become spaces, and `\` and `|`
/// are backslash-escaped (GFM splits cells on any pipe not preceded by a backslash).
fn markdown_cell(text: &str) -> String {
    let mut cell = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' => {
                cell.push('\\');
                cell.push(c);
            }
            '\r' | '\n' => cell.push(' '),
            _ => cell.push(c),
        }
    }
    cell
}

/// A metric with three decimals, or an em dash where it was not reported.
fn cell_number(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::eval::metrics::{query_metrics, summarize};

    fn set<'a>(ids: &[&'a str]) -> HashSet<&'a str> {
        ids.iter().copied().collect()
    }

    #[test]
    fn markdown_report() {
        let per_query = [
            // relevant {a,b}, ranked [x,y,a,z,b]: R@1 = 0, R@5 = R@10 = 2/2 = 1; RR = 1/3;
            // DCG = 0.5 + 1/log2(6) = 0.5 + 0.3869 = 0.8869; IDCG = 1.6309; nDCG = 0.5438
            query_metrics("cat | dog", &["x", "y", "a", "z", "b"], &set(&["a", "b"])),
            // relevant {a}, ranked [a]: everything 1
            query_metrics("sunset", &["a"], &set(&["a"])),
            // relevant {a}, ranked [x]: everything 0, no first rank
            query_metrics("lost", &["x"], &set(&["a"])),
        ];
        let summary = summarize(&per_query);
        let report = markdown(&summary, &per_query, "Eval: holiday photos");

        assert!(report.starts_with("# Eval: holiday photos\n"), "{report}");
        assert!(
            report.contains(
                "| Recall@1 | Recall@5 | Recall@10 | Recall@20 | MRR | nDCG@10 | Queries |"
            ),
            "{report}"
        );
        // means: R@1 = (0 + 1 + 0)/3; R@5 = R@10 = R@20 = (1 + 1 + 0)/3; MRR = (1/3 + 1 + 0)/3
        // = 0.4444; nDCG = (0.5438 + 1 + 0)/3 = 0.5146
        assert!(
            report.contains("| 0.333 | 0.667 | 0.667 | 0.667 | 0.444 | 0.515 | 3 |"),
            "{report}"
        );
        let pipe_row = r"| cat \| dog | 2 | 3 | 0.000 | 1.000 | 1.000 | 0.333 | 0.544 |";
        let lost_row = "| lost | 1 | — | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 |";
        let sunset_row = "| sunset | 1 | 1 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 |";
        let position = |line: &str| {
            report
                .find(line)
                .unwrap_or_else(|| panic!("missing row {line:?} in:\n{report}"))
        };
        // worst first: lost (nDCG 0), cat | dog (0.544), sunset (1)
        assert!(position(lost_row) < position(pipe_row));
        assert!(position(pipe_row) < position(sunset_row));
        assert!(!report.contains("cat | dog"), "unescaped pipe:\n{report}");
    }

    #[test]
    fn markdown_cell_escapes() {
        for (text, expected) in [
            ("plain", "plain"),
            ("a|b", r"a\|b"),
            (r"a\|b", r"a\\\|b"),
            ("two\nlines", "two lines"),
        ] {
            assert_eq!(markdown_cell(text), expected, "{text:?}");
        }
    }

    fn small_report() -> EvalReport {
        let per_query = vec![query_metrics("sunset", &["a", "x"], &set(&["a"]))];
        EvalReport {
            retrieval: crate::retrieve::Retrieval::image(),
            vectors: Vec::new(),
            summary: summarize(&per_query),
            per_query,
            curve: vec![(1, 1.0), (2, 1.0)],
            skipped: 1,
            ranked: [("sunset".to_owned(), vec!["a".to_owned(), "x".to_owned()])].into(),
            feedback: Vec::new(),
            cutoff: Some(crate::cutoff::Cutoff::Off {
                labels: 3,
                queries: 1,
                reason: "needs more".into(),
            }),
        }
    }

    #[test]
    fn write_puts_the_three_files_in_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("nested").join("eval");
        let report = small_report();
        let written = write(&out, "Eval: a <b>", &report).expect("write");
        assert_eq!(written.markdown, report.markdown("Eval: a <b>"));
        let names: Vec<_> = written
            .files
            .iter()
            .map(|p| p.strip_prefix(&out).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                Path::new("report.md"),
                Path::new("report.json"),
                Path::new("recall.svg")
            ]
        );
        let read = |name: &str| std::fs::read_to_string(out.join(name)).expect(name);
        assert_eq!(read("report.md"), report.markdown("Eval: a <b>"));
        assert!(read("report.md").contains("1 labelled query left out"));
        assert!(read("report.md").ends_with("line\n\nOff: needs more.\n"));
        let json: Value = serde_json::from_str(&read("report.json")).expect("json");
        assert_eq!(json, report.json());
        assert_eq!(json["summary"]["skipped_queries"], 1);
        assert_eq!(json["per_query"][0]["ranked"], json!(["a", "x"]));
        assert_eq!(json["cutoff"]["state"], "off");
        assert!(read("recall.svg").starts_with("<svg"));
        assert!(read("recall.svg").contains("Recall@K, 1 queries"));
    }

    #[test]
    fn write_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file where the directory should be: creating it fails.
        let blocker = dir.path().join("eval");
        std::fs::write(&blocker, "").expect("blocker");
        let error = write(&blocker, "t", &small_report()).expect_err("a file is no directory");
        assert!(
            format!("{error:#}").contains(&blocker.display().to_string()),
            "{error:#}"
        );
        // A directory where a report file should be: writing it fails.
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("report.json")).expect("dir");
        let error = write(&out, "t", &small_report()).expect_err("a directory is no file");
        let message = format!("{error:#}");
        assert!(
            message.contains(&out.join("report.json").display().to_string()),
            "{message}"
        );
    }
}
