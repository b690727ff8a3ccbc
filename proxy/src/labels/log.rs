//! labels/log: how is a vote made durable, and what does the file say after a crash?
//!
//! [`Log`] is the one writer of a JSON-lines log of [`Record`]s: it appends a line per record and
//! syncs it before answering, cuts a torn tail at open and a failed append at once, and rewrites
//! the file without superseded lines ([`super::compact`]) at open and while serving — under the
//! same mutex as the appends, so no acknowledged record is lost or reordered by a rewrite. The
//! latest record per [`Record::key`] is in force. [`LabelLog`] is the votes' log
//! (`labels.jsonl`); `review::ReviewLog` the reviewers' verdicts (`reviews.jsonl`). Callers run
//! it on blocking threads (every method but [`Log::len`] may wait for the disk).

use std::collections::HashMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::hash::Hash;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::compact::{self, CompactPolicy};
use super::{Label, LabelError, OpenReport, Vote};

/// One line of a [`Log`]: the latest record per key is in force.
pub trait Record: Serialize + DeserializeOwned + Clone + Debug + Send + 'static {
    type Key: Eq + Hash + Ord + Clone + Debug + Send;
    /// What a later record replaces an earlier one by.
    fn key(&self) -> Self::Key;
    /// Whether this record removes its key's earlier one instead of replacing it.
    fn withdraws(&self) -> bool {
        false
    }
    /// Milliseconds since the Unix epoch: the order of [`Log::all`] and of a rewritten file.
    fn time_ms(&self) -> u64;
}

/// The durable vote log.
pub type LabelLog = Log<Label>;

/// A durable log of records.
#[derive(Debug)]
pub struct Log<R: Record> {
    path: PathBuf,
    policy: CompactPolicy,
    inner: Mutex<Inner<R>>,
    /// The number of votes in force, readable without waiting for a write or a rewrite.
    in_force: AtomicUsize,
    /// An exclusive OS lock on `<log>.lock`, held while the log is open: one writer at a time
    /// across processes (a lock file, because compaction replaces the log's own file).
    _lock: File,
}

#[derive(Debug)]
struct Inner<R: Record> {
    file: File,
    current: HashMap<R::Key, R>,
    lines: usize,
    /// No rewrite before the log has this many lines (raised after a failed rewrite, so a full
    /// disk is not asked for a rewrite on every vote).
    rewrite_from: usize,
    /// A test's injected fault: the next append writes this many bytes, then fails.
    fail_next_append: Option<usize>,
}

impl Log<Label> {
    /// Record a vote; returns once it is on disk (see [`Log::put`]).
    pub fn record(&self, vote: Vote) -> Result<Label, LabelError> {
        self.put(vote.into_label())
    }
}

impl<R: Record> Log<R> {
    /// Open (or create) the log at `path` and replay it, rewriting it when the default
    /// [`CompactPolicy`] says so.
    pub fn open(path: impl Into<PathBuf>) -> Result<(Self, OpenReport), LabelError> {
        Self::open_with(path, CompactPolicy::default())
    }

    /// Open the log with its own rewrite policy.
    pub fn open_with(
        path: impl Into<PathBuf>,
        policy: CompactPolicy,
    ) -> Result<(Self, OpenReport), LabelError> {
        let path = path.into();
        let io = |source| LabelError::Io {
            path: path.clone(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io)?;
        let lock = lock(&path)?;
        // A rewrite that crashed before its rename: the log is whole, the copy is stale.
        let removed_temp = remove_stale_temp(&path)?;
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if created {
            // The new file's name must survive a crash too, not only its lines.
            compact::sync_dir(&path)?;
        }
        let (current, mut report, good_len) = replay(&mut file, &path)?;
        if report.truncated_bytes > 0 {
            file.set_len(good_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        report.labels = current.len();
        report.removed_temp = removed_temp;
        let log = Self {
            path,
            policy,
            in_force: AtomicUsize::new(current.len()),
            inner: Mutex::new(Inner {
                file,
                current,
                lines: report.lines,
                rewrite_from: 0,
                fail_next_append: None,
            }),
            _lock: lock,
        };
        if policy.due(report.lines, report.labels) {
            log.compact(&mut log.lock_inner())?;
            report.compacted = true;
        }
        Ok((log, report))
    }

    /// The votes in force in the log at `path`, read without writing anything: no torn tail
    /// cut, no compaction, no lock, so a running server keeps writing while this reads (a line
    /// it is appending right now is left out, as a torn tail; a rewrite replaces the file by a
    /// rename, so this reads the old file or the new one, each whole). No file: no votes.
    pub fn snapshot(path: &Path) -> Result<Vec<R>, LabelError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(LabelError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let (current, _, _) = replay(&mut file, path)?;
        Ok(in_order(current.into_values()))
    }

    /// Append a record; returns once it is on disk. When superseded lines have become most of
    /// the file, the file is then rewritten (before the next record is appended); a failed
    /// rewrite is logged and leaves the log as it was, with this record in it.
    pub fn put(&self, label: R) -> Result<R, LabelError> {
        let line = line(&label, &self.path)?;
        let mut inner = self.lock_inner();
        self.append(&mut inner, line.as_bytes())?;
        inner.lines += 1;
        apply(&mut inner.current, label.clone());
        self.in_force.store(inner.current.len(), Ordering::Release);
        if inner.lines >= inner.rewrite_from
            && self.policy.due(inner.lines, inner.current.len())
            && let Err(e) = self.compact(&mut inner)
        {
            tracing::warn!("{e}: the log is kept as it is and rewritten later");
            inner.rewrite_from = inner.lines + self.policy.min_lines;
        }
        Ok(label)
    }

    /// Every vote in force, oldest first (then by id, for a stable order).
    pub fn all(&self) -> Vec<R> {
        in_order(self.lock_inner().current.values().cloned())
    }

    /// Number of votes in force (never waits for the disk).
    pub fn len(&self) -> usize {
        self.in_force.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lines in the file now (votes in force and superseded ones).
    pub fn lines(&self) -> usize {
        self.lock_inner().lines
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fault injection for tests: the next append writes `bytes` bytes of its line and then
    /// fails as a full disk does.
    #[doc(hidden)]
    pub fn fail_next_append(&self, bytes: usize) {
        self.lock_inner().fail_next_append = Some(bytes);
    }

    fn lock_inner(&self) -> std::sync::MutexGuard<'_, Inner<R>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append a line and make it durable; on failure cut a partial line back off, so the next
    /// vote does not land after it (best effort: a failed cut leaves a torn line that the next
    /// open removes).
    fn append(&self, inner: &mut Inner<R>, bytes: &[u8]) -> Result<(), LabelError> {
        let io = |source| LabelError::Io {
            path: self.path.clone(),
            source,
        };
        let before = inner.file.metadata().map_err(io)?.len();
        let written =
            match inner.fail_next_append.take() {
                Some(n) => inner.file.write_all(&bytes[..n.min(bytes.len())]).and(Err(
                    std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        "no space left on device (injected)",
                    ),
                )),
                None => inner
                    .file
                    .write_all(bytes)
                    .and_then(|()| inner.file.sync_data()),
            };
        written.map_err(|source| {
            let _ = inner.file.set_len(before);
            io(source)
        })
    }

    /// Rewrite the log with only the votes in force (see [`compact`]), holding the writer's
    /// mutex: no vote is appended to the old file after its lines were copied.
    fn compact(&self, inner: &mut Inner<R>) -> Result<(), LabelError> {
        let labels = {
            let mut labels: Vec<&R> = inner.current.values().collect();
            labels.sort_by_cached_key(|r| (r.time_ms(), r.key()));
            labels
        };
        let file = compact::write_temp(&self.path, &labels)?;
        let count = labels.len();
        let tmp = compact::temp_path(&self.path);
        fs::rename(&tmp, &self.path).map_err(|source| {
            let _ = fs::remove_file(&tmp);
            LabelError::Io {
                path: self.path.clone(),
                source,
            }
        })?;
        // From the rename on, the new file is the log: later votes go to it.
        inner.file = file;
        inner.lines = count;
        compact::sync_dir(&self.path)?;
        tracing::info!(
            "{}: rewritten with the {count} votes in force",
            self.path.display()
        );
        Ok(())
    }
}

/// Apply one record to those in force: replace its key's earlier record, or withdraw it.
fn apply<R: Record>(current: &mut HashMap<R::Key, R>, record: R) {
    if record.withdraws() {
        current.remove(&record.key());
    } else {
        current.insert(record.key(), record);
    }
}

/// Records oldest first (then by key, for a stable order).
fn in_order<R: Record>(records: impl Iterator<Item = R>) -> Vec<R> {
    let mut records: Vec<R> = records.collect();
    records.sort_by_cached_key(|r| (r.time_ms(), r.key()));
    records
}

/// A record as one line of the log at `path`, newline included.
pub(super) fn line<R: Serialize>(record: &R, path: &Path) -> Result<String, LabelError> {
    let mut line = serde_json::to_string(record).map_err(|e| LabelError::Corrupt {
        path: path.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    line.push('\n');
    Ok(line)
}

/// Take the log's writer lock (`<log>.lock`), or say who holds it.
fn lock(log: &Path) -> Result<File, LabelError> {
    let path = log.with_extension("jsonl.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LabelError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(LabelError::Busy {
            path: log.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(LabelError::Io { path, source }),
    }
}

/// Remove a rewrite's temporary file left by a crash (only the lock holder rewrites, so no one
/// is writing it now). Whether there was one.
fn remove_stale_temp(log: &Path) -> Result<bool, LabelError> {
    let tmp = compact::temp_path(log);
    match fs::remove_file(&tmp) {
        Ok(()) => {
            tracing::warn!(
                "{}: removed a rewrite left unfinished by a crash (the log was kept whole)",
                tmp.display()
            );
            compact::sync_dir(log)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(LabelError::Io { path: tmp, source }),
    }
}

/// Read the log from the start: the votes in force, what was found, and the length of its whole
/// lines. The last line may be torn (a crash mid-write leaves any bytes, half a UTF-8 character
/// included): it is left out and reported. Any other bad line is an error naming it.
#[allow(clippy::type_complexity)] // (records in force, the report, the whole lines' length)
fn replay<R: Record>(
    file: &mut File,
    path: &Path,
) -> Result<(HashMap<R::Key, R>, OpenReport, u64), LabelError> {
    let io = |source| LabelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut report = OpenReport::default();
    let mut current = HashMap::new();
    let mut good_len = 0u64;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 {
            break;
        }
        // Only the last line can be torn: the writer appends whole lines and syncs each before
        // the next, and cuts a failed append back.
        if line.last() != Some(&b'\n') {
            report.truncated_bytes = n as u64;
            break;
        }
        let label = serde_json::from_slice::<R>(&line).map_err(|e| LabelError::Corrupt {
            path: path.to_path_buf(),
            line: number,
            message: e.to_string(),
        })?;
        apply(&mut current, label);
        good_len += n as u64;
        report.lines += 1;
    }
    Ok((current, report, good_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::labels::Verdict;
    #[test]
    fn one_writer_at_a_time_and_readers_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        assert!(LabelLog::snapshot(&path).expect("no log yet").is_empty());
        let (log, _) = LabelLog::open(&path).expect("open");
        let err = LabelLog::open(&path).expect_err("a second writer");
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        log.record(vote("a", "cat", "chelsea", Verdict::Relevant))
            .expect("write");
        // A reader beside the writer, with a line being appended right now.
        let mut f = OpenOptions::new().append(true).open(&path).expect("append");
        f.write_all(b"{\"label_id\":").expect("write");
        let before = fs::read(&path).expect("read");
        let seen = LabelLog::snapshot(&path).expect("snapshot");
        assert_eq!(seen.len(), 1);
        assert_eq!(
            fs::read(&path).expect("read"),
            before,
            "a reader writes nothing"
        );
        drop(log);
        // The lock goes with the writer (and with its process, killed or not).
        let (log, report) = LabelLog::open(&path).expect("reopen after the writer is gone");
        assert_eq!((log.len(), report.truncated_bytes), (1, 12));
    }

    #[test]
    fn a_torn_multibyte_tail_is_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        {
            let (log, _) = LabelLog::open(&path).expect("open");
            log.record(vote("a", "猫", "chelsea", Verdict::Relevant))
                .expect("write");
        }
        let whole = fs::read(&path).expect("read");
        // A second vote whose query is Chinese, cut in the middle of a 3-byte character.
        let line = fs::read_to_string(&path).expect("utf-8");
        let second = line.replace("\"a\"", "\"b\"");
        let cut = second.find('猫').expect("the query") + 1;
        let mut f = OpenOptions::new().append(true).open(&path).expect("append");
        f.write_all(&second.as_bytes()[..cut]).expect("write");
        drop(f);
        let (log, report) = LabelLog::open(&path).expect("a torn tail is no reason to refuse");
        assert_eq!(report.truncated_bytes, cut as u64);
        assert_eq!(log.len(), 1);
        assert_eq!(fs::read(&path).expect("read"), whole);
    }

    #[test]
    fn a_failed_append_is_cut_back_and_the_next_vote_is_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        let (log, _) = LabelLog::open(&path).expect("open");
        log.record(vote("a", "cat", "chelsea", Verdict::Relevant))
            .expect("write");
        let good = fs::metadata(&path).expect("meta").len();
        log.fail_next_append(20);
        let err = log
            .record(vote("a", "dog", "chelsea", Verdict::Flag))
            .expect_err("the disk is full");
        assert!(err.to_string().contains("no space left"), "{err}");
        assert_eq!(fs::metadata(&path).expect("meta").len(), good);
        assert_eq!(log.len(), 1, "a failed vote is not counted");
        log.record(vote("b", "cat", "coffee", Verdict::Irrelevant))
            .expect("write");
        drop(log);
        let (log, report) = LabelLog::open(&path).expect("reopen");
        assert_eq!((report.lines, report.truncated_bytes), (2, 0));
        assert_eq!(log.len(), 2);
    }

    fn vote(client: &str, query: &str, image: &str, label: Verdict) -> Vote {
        Vote {
            query: query.into(),
            query_vector: Some(vec![0.5, -0.25]),
            image_id: image.into(),
            label,
            note: None,
            client_id: client.into(),
        }
    }

    #[test]
    fn votes_survive_reopen_and_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        {
            let (log, report) = LabelLog::open(&path).expect("open");
            assert_eq!(report, OpenReport::default());
            log.record(vote("a", "cat", "chelsea", Verdict::Relevant))
                .expect("write");
            log.record(vote("a", "cat", "coffee", Verdict::Flag))
                .expect("write");
            // The same client changes its mind: replaced, same id.
            let first = log
                .record(vote("b", "cat", "chelsea", Verdict::Irrelevant))
                .expect("write");
            let second = log
                .record(vote("b", "cat", "chelsea", Verdict::Relevant))
                .expect("write");
            assert_eq!(first.label_id, second.label_id);
            assert_eq!(log.len(), 3);
        }
        let (log, report) = LabelLog::open(&path).expect("reopen");
        assert_eq!(report.lines, 4);
        assert_eq!(report.labels, 3);
        let all = log.all();
        assert_eq!(all.len(), 3);
        assert!(
            all.iter()
                .any(|l| l.client_id == "b" && l.label == Verdict::Relevant)
        );
        assert_eq!(all[0].query_vector.as_deref(), Some(&[0.5, -0.25][..]));
    }

    #[test]
    fn withdraw_removes_the_vote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        let (log, _) = LabelLog::open(&path).expect("open");
        log.record(vote("a", "cat", "chelsea", Verdict::Relevant))
            .expect("write");
        log.record(vote("a", "cat", "chelsea", Verdict::None))
            .expect("write");
        assert!(log.is_empty());
        drop(log);
        let (log, _) = LabelLog::open(&path).expect("reopen");
        assert!(log.is_empty());
    }

    #[test]
    fn torn_last_line_is_cut_and_the_rest_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        {
            let (log, _) = LabelLog::open(&path).expect("open");
            log.record(vote("a", "cat", "chelsea", Verdict::Relevant))
                .expect("write");
        }
        let whole = fs::metadata(&path).expect("meta").len();
        let mut f = OpenOptions::new().append(true).open(&path).expect("append");
        f.write_all(b"{\"label_id\":\"0b6f").expect("write");
        drop(f);
        let (log, report) = LabelLog::open(&path).expect("reopen");
        assert_eq!(report.truncated_bytes, 17);
        assert_eq!(log.len(), 1);
        assert_eq!(fs::metadata(&path).expect("meta").len(), whole);
        // And writing after the repair gives whole lines again.
        log.record(vote("a", "dog", "chelsea", Verdict::Irrelevant))
            .expect("write");
        drop(log);
        let (log, report) = LabelLog::open(&path).expect("reopen");
        assert_eq!((report.lines, log.len(), report.truncated_bytes), (2, 2, 0));
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        fs::write(&path, "not json\n{}\n").expect("write");
        let err = LabelLog::open(&path).expect_err("corrupt").to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn compaction_keeps_votes_in_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        {
            // Written by a server that never rewrote it.
            let never = CompactPolicy {
                min_lines: usize::MAX,
                ..CompactPolicy::default()
            };
            let (log, _) = LabelLog::open_with(&path, never).expect("open");
            for i in 0..1200u32 {
                let verdict = if i.is_multiple_of(2) {
                    Verdict::Relevant
                } else {
                    Verdict::Irrelevant
                };
                log.record(vote("a", "cat", &format!("img{}", i % 5), verdict))
                    .expect("write");
            }
        }
        let (log, report) = LabelLog::open(&path).expect("reopen");
        assert!(report.compacted);
        assert_eq!(log.len(), 5);
        drop(log);
        let (log, report) = LabelLog::open(&path).expect("reopen");
        assert_eq!((report.lines, log.len()), (5, 5));
    }

    fn small_policy() -> CompactPolicy {
        CompactPolicy {
            min_lines: 40,
            superseded: (3, 4),
        }
    }

    /// One client changes its mind on three images, `n` times in all.
    fn flip_flop(log: &LabelLog, n: usize) {
        for i in 0..n {
            let verdict = if i % 6 < 3 {
                Verdict::Relevant
            } else {
                Verdict::Irrelevant
            };
            log.record(vote("a", "cat", &format!("img{}", i % 3), verdict))
                .expect("write");
        }
    }

    #[test]
    fn the_log_is_rewritten_while_serving_and_keeps_the_votes_in_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        let (log, _) = LabelLog::open_with(&path, small_policy()).expect("open");
        log.record(vote("b", "dog", "img9", Verdict::Flag))
            .expect("an old vote that stays in force");
        flip_flop(&log, 39);
        let before = fs::metadata(&path).expect("meta").len();
        assert_eq!(log.lines(), 40, "not due yet: 40 lines is the floor");
        flip_flop(&log, 1);
        // Line 41 made it due: the file now holds the four votes in force.
        assert_eq!(log.lines(), 4);
        let after = fs::metadata(&path).expect("meta").len();
        assert!(after * 5 < before, "{after} bytes after, {before} before");
        assert!(!compact::temp_path(&path).exists());
        // The vote appended after the rewrite goes to the new file.
        log.record(vote("c", "dog", "img9", Verdict::Relevant))
            .expect("write");
        let in_force = log.all();
        assert_eq!(in_force.len(), 5);
        drop(log);
        let (log, report) = LabelLog::open_with(&path, small_policy()).expect("reopen");
        assert_eq!((report.lines, report.compacted), (5, false));
        assert_eq!(log.all(), in_force);
        assert_eq!(LabelLog::snapshot(&path).expect("snapshot"), in_force);
    }

    #[test]
    fn a_rewrite_cut_short_by_a_crash_loses_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        let (log, _) = LabelLog::open(&path).expect("open");
        flip_flop(&log, 5);
        let in_force = log.all();
        drop(log);
        // A crash after the copy was (partly) written, before the rename.
        let tmp = compact::temp_path(&path);
        fs::write(&tmp, "{\"label_id\":\"half a copy").expect("write");
        let (log, report) = LabelLog::open(&path).expect("reopen");
        assert!(report.removed_temp);
        assert!(!tmp.exists(), "the stray copy is removed");
        assert_eq!((report.lines, report.truncated_bytes), (5, 0));
        assert_eq!(log.all(), in_force);
        assert_eq!(LabelLog::snapshot(&path).expect("snapshot"), in_force);
    }

    #[test]
    fn a_failed_rewrite_keeps_the_log_and_the_vote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        let (log, _) = LabelLog::open_with(&path, small_policy()).expect("open");
        // Something in the copy's way: the rewrite fails before it touches the log.
        let tmp = compact::temp_path(&path);
        fs::create_dir(&tmp).expect("a directory where the copy goes");
        flip_flop(&log, 42);
        assert_eq!(
            log.lines(),
            42,
            "the rewrite failed; every line is still there"
        );
        assert_eq!(log.len(), 3);
        // It is not retried on every vote, and is retried later.
        flip_flop(&log, 3);
        assert_eq!(log.lines(), 45);
        fs::remove_dir(&tmp).expect("rmdir");
        flip_flop(&log, 40);
        assert!(log.lines() < 45, "rewritten once the way is clear");
        let in_force = log.all();
        drop(log);
        let (log, _) = LabelLog::open_with(&path, small_policy()).expect("reopen");
        assert_eq!(log.all(), in_force);
    }

    #[test]
    fn a_snapshot_during_rewrites_sees_a_whole_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("labels.jsonl");
        let policy = CompactPolicy {
            min_lines: 8,
            superseded: (3, 4),
        };
        let (log, _) = LabelLog::open_with(&path, policy).expect("open");
        flip_flop(&log, 3);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut reads = 0;
                while !done.load(Ordering::Acquire) || reads == 0 {
                    let seen = LabelLog::snapshot(&path).expect("a snapshot never fails");
                    // Three images, each with one vote in force, whichever file was read.
                    let mut images: Vec<&str> = seen.iter().map(|l| l.image_id.as_str()).collect();
                    images.sort_unstable();
                    assert_eq!(images, ["img0", "img1", "img2"], "read {reads}");
                    reads += 1;
                }
                reads
            });
            // Each 9th vote or so rewrites the file: ~50 rewrites.
            flip_flop(&log, 500);
            done.store(true, Ordering::Release);
            assert!(reader.join().expect("reader") > 0);
        });
        assert!(log.lines() <= 9);
    }
}
