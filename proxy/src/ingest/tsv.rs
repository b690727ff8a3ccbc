//! The image list: `images.tsv` rows into typed [`Row`]s, every bad row reported by line.
//!
//! Columns (header row, tab-separated): `id`, `url` (an http(s) URL or a path relative to the
//! TSV's folder), optional `caption`; any further column becomes a payload field. A bad row is a
//! [`RowError`] naming its line; the good rows go on. Only a bad header stops everything.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::payload::{INGEST_FIELDS, TSV_FIELDS};
use crate::store::Payload;

/// The longest row id (it becomes part of URLs and file names through its UUID).
pub const MAX_ID_LEN: usize = 256;

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An http(s) URL.
    Http(String),
    /// A file inside the TSV's folder (the path as written, resolved against the folder).
    File { written: String, path: PathBuf },
}

impl Source {
    /// The `url` column as written.
    pub fn as_written(&self) -> &str {
        match self {
            Self::Http(url) => url,
            Self::File { written, .. } => written,
        }
    }
}

/// One good row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line in the file (the header is line 1).
    pub line: usize,
    pub id: String,
    pub source: Source,
    pub caption: Option<String>,
    /// The other columns, by header name (empty cells left out).
    pub meta: Payload,
}

/// A row that cannot be ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    /// The row's id when it could be read.
    pub id: Option<String>,
    /// The `url` cell when it could be read.
    pub url: Option<String>,
    pub reason: String,
}

/// A header the file cannot be read with.
#[derive(Debug, thiserror::Error)]
#[error("{path} line 1 (header): {message}")]
pub struct HeaderError {
    pub path: String,
    pub message: String,
}

/// The parsed file.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub errors: Vec<RowError>,
    /// Ids of every row with an id, good or bad (`--prune` keeps points of rows still listed,
    /// even if they failed this time).
    pub listed_ids: Vec<String>,
    /// The metadata columns (all but `id`, `url`, `caption`): payload fields, indexed for
    /// filtering.
    pub meta_columns: Vec<String>,
}

/// Parse TSV text; `base` is the folder relative paths are resolved against (the TSV's own).
pub fn parse(text: &str, base: &Path, name: &str) -> Result<Parsed, HeaderError> {
    let mut lines = text.split('\n').enumerate();
    let header =
        Header::parse(lines.next().map(|(_, line)| line)).map_err(|message| HeaderError {
            path: name.to_string(),
            message,
        })?;
    let mut parsed = Parsed {
        meta_columns: header
            .names
            .iter()
            .filter(|c| !TSV_FIELDS.contains(&c.as_str()))
            .cloned()
            .collect(),
        ..Parsed::default()
    };
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for (index, raw) in lines {
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = raw.split('\t').collect();
        let (id, url) = (
            header.cell(&cells, header.id),
            header.cell(&cells, header.url),
        );
        let line = index + 1;
        // Rows with an id count as listed (for `--prune`) even when they fail.
        if let Some(id) = &id {
            parsed.listed_ids.push(id.clone());
        }
        match header.row(line, &cells, base, &mut first_line_of) {
            Ok(row) => parsed.rows.push(row),
            Err(reason) => parsed.errors.push(RowError {
                line,
                id,
                url,
                reason,
            }),
        }
    }
    Ok(parsed)
}

/// Whether a TSV's header row names a `caption` column (read from its first line only; a file
/// that cannot be read or parsed has none: ingest reports it when it reads the rows).
pub fn has_caption_column(path: &std::path::Path) -> bool {
    use std::io::{BufRead, Read};
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    // A header longer than this is not one ingest accepts anyway.
    let mut head = std::io::BufReader::new(file).take(1 << 20);
    if head.read_line(&mut first).is_err() {
        return false;
    }
    Header::parse(Some(&first)).is_ok_and(|h| h.caption.is_some())
}

/// The header row: column names and where the columns ingest reads are.
#[derive(Debug)]
struct Header {
    names: Vec<String>,
    id: usize,
    url: usize,
    caption: Option<usize>,
}

impl Header {
    fn parse(line: Option<&str>) -> Result<Self, String> {
        let names: Vec<String> = match line {
            Some(line) if !line.trim().is_empty() => line
                .trim_end_matches('\r')
                .trim_start_matches('\u{feff}')
                .split('\t')
                .map(|c| c.trim().to_string())
                .collect(),
            _ => {
                return Err("the file is empty; expected a header row `id\\turl\\tcaption`".into());
            }
        };
        let column = |name: &str| names.iter().position(|c| c == name);
        let (Some(id), Some(url)) = (column("id"), column("url")) else {
            let found: Vec<String> = names.iter().map(|c| format!("`{c}`")).collect();
            return Err(format!(
                "needs columns `id` and `url` (tab-separated); found {}",
                found.join(", ")
            ));
        };
        let caption = column("caption");
        check_names(&names)?;
        Ok(Self {
            names,
            id,
            url,
            caption,
        })
    }

    /// A trimmed, non-empty cell.
    fn cell(&self, cells: &[&str], column: usize) -> Option<String> {
        cells
            .get(column)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// One data row, or why it cannot be ingested.
    fn row(
        &self,
        line: usize,
        cells: &[&str],
        base: &Path,
        first_line_of: &mut HashMap<String, usize>,
    ) -> Result<Row, String> {
        if cells.len() != self.names.len() {
            return Err(format!(
                "{} tab-separated fields, the header has {}",
                cells.len(),
                self.names.len()
            ));
        }
        let id = self.cell(cells, self.id).ok_or("empty `id`")?;
        if id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
            return Err(format!(
                "`id` must be at most {MAX_ID_LEN} bytes without control characters"
            ));
        }
        if let Some(first) = first_line_of.get(&id) {
            return Err(format!("duplicate id `{id}` (first on line {first})"));
        }
        first_line_of.insert(id.clone(), line);
        let url = self.cell(cells, self.url).ok_or("empty `url`")?;
        Ok(Row {
            line,
            source: source(&url, base)?,
            caption: self.caption.and_then(|c| self.cell(cells, c)),
            meta: self.meta(cells),
            id,
        })
    }

    /// The row's other columns (empty cells left out).
    fn meta(&self, cells: &[&str]) -> Payload {
        let ingested = |i: usize| i == self.id || i == self.url || Some(i) == self.caption;
        self.names
            .iter()
            .zip(cells)
            .enumerate()
            .filter(|(i, (_, cell))| !ingested(*i) && !cell.trim().is_empty())
            .map(|(_, (name, cell))| (name.clone(), Value::String(cell.trim().to_string())))
            .collect()
    }
}

/// Every column named, no name twice, none of ingest's own.
fn check_names(names: &[String]) -> Result<(), String> {
    let mut seen = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(format!("column {} has no name", i + 1));
        }
        if let Some(first) = seen.insert(name.as_str(), i) {
            return Err(format!(
                "column `{name}` appears twice (columns {} and {})",
                first + 1,
                i + 1
            ));
        }
        if INGEST_FIELDS.contains(&name.as_str()) {
            return Err(format!(
                "column `{name}` is reserved (ingest writes it); rename the column"
            ));
        }
    }
    Ok(())
}

/// Classify a `url` cell: an http(s) URL, or a relative path that stays inside `base`.
fn source(cell: &str, base: &Path) -> Result<Source, String> {
    if cell.starts_with("http://") || cell.starts_with("https://") {
        let host = cell.split_once("://").map(|(_, r)| r).unwrap_or("");
        if host.split(['/', '?', '#']).next().unwrap_or("").is_empty() {
            return Err(format!("`{cell}` has no host"));
        }
        return Ok(Source::Http(cell.to_string()));
    }
    if let Some((scheme, _)) = cell.split_once("://") {
        return Err(format!(
            "`{cell}`: scheme `{scheme}` is not supported (use http(s) or a path relative to the TSV)"
        ));
    }
    let path = Path::new(cell);
    // Lexical check first: absolute paths and `..` never leave a data folder on purpose.
    let escapes = path.is_absolute()
        || path.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        });
    if escapes {
        return Err(format!(
            "path `{cell}` escapes the data folder (use a path relative to the TSV, without `..`)"
        ));
    }
    let path = base.join(path);
    // A symlink inside the folder may still point outside it: check the resolved path too.
    if let (Ok(real), Ok(root)) = (path.canonicalize(), base.canonicalize())
        && !real.starts_with(&root)
    {
        return Err(format!(
            "path `{cell}` resolves outside the data folder (a symbolic link)"
        ));
    }
    Ok(Source::File {
        written: cell.to_string(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Parsed {
        parse(text, Path::new("/data"), "images.tsv").expect("header is valid")
    }

    /// One row in, one error (its reason containing `expected`) out.
    fn check_row_error(row: &str, expected: &str) {
        let parsed = parse_ok(&format!("id\turl\tcaption\n{row}\n"));
        assert!(parsed.rows.is_empty(), "{row:?} should fail");
        assert_eq!(parsed.errors.len(), 1, "{row:?}");
        assert_eq!(parsed.errors[0].line, 2);
        assert!(
            parsed.errors[0].reason.contains(expected),
            "{row:?}: {:?} should contain {expected:?}",
            parsed.errors[0].reason
        );
    }

    #[test]
    fn bad_rows() {
        check_row_error(
            "a\timages/a.png",
            "2 tab-separated fields, the header has 3",
        );
        check_row_error("a\timages/a.png\tx\ty", "4 tab-separated fields");
        check_row_error("\timages/a.png\tx", "empty `id`");
        check_row_error("a\t\tx", "empty `url`");
        check_row_error("a\t../secret.png\tx", "escapes the data folder");
        check_row_error("a\t/etc/passwd\tx", "escapes the data folder");
        check_row_error("a\timages/../../x.png\tx", "escapes the data folder");
        check_row_error("a\tfile:///etc/passwd\tx", "scheme `file` is not supported");
        check_row_error("a\thttp:///x.png\tx", "has no host");
        check_row_error(
            &format!("{}\tx.png\tx", "i".repeat(300)),
            "at most 256 bytes",
        );
    }

    #[test]
    fn bad_headers() {
        let check = |text: &str, expected: &str| {
            let err = parse(text, Path::new("/d"), "x.tsv")
                .expect_err("bad header")
                .to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
            assert!(err.starts_with("x.tsv line 1"), "{err}");
        };
        check("", "the file is empty");
        check("id,url,caption\n", "needs columns `id` and `url`");
        check("id\turl\tid\n", "column `id` appears twice");
        check("id\turl\tfile\n", "column `file` is reserved");
        check("id\turl\t\n", "column 3 has no name");
    }

    #[test]
    fn good_rows_keep_going_after_bad_ones() {
        let parsed = parse_ok(
            "\u{feff}id\turl\tcaption\tlicense\r\n\
             a\timages/a.png\tA cat\tCC0\r\n\
             b\thttps://example.com/b.jpg\t\tpublic-domain\n\
             \n\
             a\timages/c.png\tdup\tCC0\n\
             broken row\n\
             d\timages/d.png\t\t\n",
        );
        assert_eq!(parsed.rows.len(), 3);
        let a = &parsed.rows[0];
        assert_eq!(
            (a.line, a.id.as_str(), a.caption.as_deref()),
            (2, "a", Some("A cat"))
        );
        assert_eq!(
            a.source,
            Source::File {
                written: "images/a.png".into(),
                path: PathBuf::from("/data/images/a.png")
            }
        );
        assert_eq!(a.meta.get("license"), Some(&Value::String("CC0".into())));
        assert_eq!(
            parsed.rows[1].source,
            Source::Http("https://example.com/b.jpg".into())
        );
        assert_eq!(parsed.rows[1].caption, None);
        assert_eq!(parsed.rows[2].id, "d");
        assert!(parsed.rows[2].meta.is_empty());
        let errors: Vec<(usize, &str)> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (5, "duplicate id `a` (first on line 2)"),
                (6, "1 tab-separated fields, the header has 4")
            ]
        );
        assert_eq!(parsed.listed_ids, ["a", "b", "a", "broken row", "d"]);
        assert_eq!(parsed.meta_columns, ["license"]);
    }
}
