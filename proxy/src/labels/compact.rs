//! labels/compact: when is the label log rewritten, and why can a rewrite never lose a vote?
//!
//! Every vote appends a line, and a changed or withdrawn vote leaves its earlier line behind, so
//! the file grows with the votes cast while only the votes in force matter. [`CompactPolicy`]
//! says when the superseded lines are enough of the file to rewrite it; [`write_temp`] writes the
//! votes in force to `<log>.tmp` and makes them durable, the caller renames it over the log and
//! [`sync_dir`] makes the rename durable. Until the rename the old log is whole (a crash leaves
//! only a stray temporary file, removed at the next open); after it the new one is. A reader in
//! another process that opens the log by name gets one file or the other, each complete.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::LabelError;
use super::log::{Record, line};

/// When the log is rewritten without its superseded lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactPolicy {
    /// Never below this many lines: a small log costs nothing to replay.
    pub min_lines: usize,
    /// The share of lines that must be superseded (replaced or withdrawn votes), as
    /// (numerator, denominator).
    pub superseded: (usize, usize),
}

impl Default for CompactPolicy {
    /// Over 1,000 lines of which at least three quarters are superseded: the file stays within
    /// four times the votes in force (or 1,000 lines), and a rewrite writes fewer lines than were
    /// appended since the one before (at most two for every three), so rewriting at most doubles
    /// the bytes written.
    fn default() -> Self {
        Self {
            min_lines: 1000,
            superseded: (3, 4),
        }
    }
}

impl CompactPolicy {
    /// Whether a log of `lines` lines holding `in_force` votes in force is due for a rewrite.
    pub fn due(&self, lines: usize, in_force: usize) -> bool {
        let (num, den) = self.superseded;
        lines > self.min_lines && lines.saturating_sub(in_force) * den >= lines * num
    }
}

/// The temporary file a rewrite of `log` writes before it replaces the log.
pub fn temp_path(log: &Path) -> PathBuf {
    log.with_extension("jsonl.tmp")
}

/// Write `labels` as the lines of a fresh `<log>.tmp` and make them durable. Returns the file,
/// open for appending: renamed over the log it *is* the log, whatever fails after the rename. On
/// an error the temporary file is removed (best effort) and the log is untouched.
pub fn write_temp<R: Record>(log: &Path, labels: &[&R]) -> Result<File, LabelError> {
    let tmp = temp_path(log);
    let written = write_lines(&tmp, log, labels);
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn write_lines<R: Record>(tmp: &Path, log: &Path, labels: &[&R]) -> Result<File, LabelError> {
    let io = |source| LabelError::Io {
        path: tmp.to_path_buf(),
        source,
    };
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .append(true)
        .open(tmp)
        .map_err(io)?;
    let mut out = BufWriter::new(file);
    for label in labels {
        out.write_all(line(*label, log)?.as_bytes()).map_err(io)?;
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(file)
}

/// Make a file's creation, removal or rename in `path`'s directory durable.
pub fn sync_dir(path: &Path) -> Result<(), LabelError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| LabelError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_only_past_the_size_and_the_share() {
        let policy = CompactPolicy::default();
        assert!(!policy.due(1000, 0), "not at 1,000 lines");
        assert!(policy.due(1001, 250), "3/4 superseded");
        assert!(!policy.due(1001, 251), "just under 3/4 superseded");
        assert!(!policy.due(5000, 5000));
        let small = CompactPolicy {
            min_lines: 10,
            superseded: (1, 2),
        };
        assert!(small.due(12, 6));
        assert!(!small.due(12, 7));
    }
}
