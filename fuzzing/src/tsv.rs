//! The TSV target: can any `images.tsv` make ingest's parser panic, or let a row through that
//! ingest must not fetch?
//!
//! The bytes are read as ingest reads the file (UTF-8; other bytes replaced, since ingest refuses
//! such a file before parsing) and parsed against a data folder holding one image and a symbolic
//! link to `/`. Every good row must have a unique, bounded id without control characters, an
//! http(s) URL with a host or a file inside the folder; every line is reported at most once.

use std::collections::HashSet;
use std::path::{Component, Path};
use std::sync::LazyLock;

use proxy::ingest::tsv::{self, MAX_ID_LEN, Parsed, Source};
use proxy::payload::{INGEST_FIELDS, TSV_FIELDS};

use crate::{Outcome, shape};

/// The data folder rows are resolved against: `images/a.png`, and `outside` → `/`.
static BASE: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temporary data folder");
    std::fs::create_dir_all(dir.path().join("images")).expect("images/");
    std::fs::write(dir.path().join("images/a.png"), b"\x89PNG").expect("images/a.png");
    #[cfg(unix)]
    std::os::unix::fs::symlink("/", dir.path().join("outside")).expect("symlink");
    dir
});

/// `images.tsv` bytes → rows and row errors; panics if an invariant breaks.
pub fn tsv(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let base = BASE.path();
    match tsv::parse(&text, base, "fuzz.tsv") {
        Ok(parsed) => {
            check(&parsed, base, text.split('\n').count());
            let mut reasons: Vec<String> = parsed
                .errors
                .iter()
                .map(|e| shape(e.reason.split('`').next().unwrap_or("")))
                .collect();
            reasons.sort();
            reasons.dedup();
            format!("rows:{} {}", parsed.rows.len().min(3), reasons.join("|"))
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with("fuzz.tsv line 1 (header): "),
                "{message}"
            );
            format!(
                "header {}",
                shape(e.message.split('`').next().unwrap_or(""))
            )
        }
    }
}

fn check(parsed: &Parsed, base: &Path, lines: usize) {
    let mut seen_lines = HashSet::new();
    for line in parsed
        .rows
        .iter()
        .map(|r| r.line)
        .chain(parsed.errors.iter().map(|e| e.line))
    {
        assert!((2..=lines).contains(&line), "line {line} of {lines}");
        assert!(seen_lines.insert(line), "line {line} reported twice");
    }
    let mut ids = HashSet::new();
    for row in &parsed.rows {
        let id = &row.id;
        assert!(ids.insert(id.as_str()), "id {id:?} twice");
        assert!(!id.is_empty() && id.len() <= MAX_ID_LEN, "id {id:?}");
        assert!(!id.chars().any(char::is_control), "id {id:?}");
        assert!(id.trim() == id, "id {id:?} not trimmed");
        check_source(&row.source, base);
        for key in row.meta.keys() {
            assert!(parsed.meta_columns.contains(key), "meta {key:?}");
        }
    }
    for column in &parsed.meta_columns {
        let name = column.as_str();
        assert!(!TSV_FIELDS.contains(&name) && !INGEST_FIELDS.contains(&name));
    }
    assert!(parsed.listed_ids.len() >= parsed.rows.len());
}

fn check_source(source: &Source, base: &Path) {
    match source {
        Source::Http(url) => {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .unwrap_or_else(|| panic!("{url:?} is not http(s)"));
            assert!(
                !rest.is_empty() && !rest.starts_with(['/', '?', '#']),
                "{url:?} has no host"
            );
        }
        Source::File { written, path } => {
            let relative = Path::new(written);
            let escapes = relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
            assert!(!escapes, "{written:?} leaves the folder");
            assert!(path.starts_with(base), "{path:?} outside {base:?}");
            if let (Ok(real), Ok(root)) = (path.canonicalize(), base.canonicalize()) {
                assert!(real.starts_with(root), "{written:?} resolves to {real:?}");
            }
        }
    }
}
