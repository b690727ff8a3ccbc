//! labels: where do people's relevance votes live, and when are they safe?
//!
//! An append-only JSON-lines log (`<storage>/labels.jsonl`), one vote per line. A vote is
//! acknowledged only after its line is written and `fdatasync`ed, so a vote acknowledged before a
//! `kill -9` (or a power cut) is there after the restart. At open, the log is replayed into a map
//! keyed by (client, query, image): a repeated vote from one client on one (query, image) replaces
//! the earlier one, and a `none` vote withdraws it. A torn last line (the process died mid-write)
//! is cut off, whatever its bytes; a failed append is cut back to the last whole line; the log is
//! compacted at open when it holds mostly replaced votes. One process writes the log at a time (an
//! OS lock on `<log>.lock`); others read a [`LabelLog::snapshot`] that writes nothing.
//!
//! Why a log file rather than a `labels` collection in Qdrant: the durability point is ours to
//! prove (write + fsync, then answer), labels stay with the proxy whichever store holds the
//! vectors (embedded or a cluster whose API key may be read-only), and the export is the file.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
}

/// The durable label log.
#[derive(Debug)]
pub struct LabelLog {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// An exclusive OS lock on `<log>.lock`, held while the log is open: one writer at a time
    /// across processes (a lock file, because compaction replaces the log's own file).
    _lock: File,
}

#[derive(Debug)]
struct Inner {
    file: File,
    current: HashMap<Uuid, Label>,
    lines: usize,
}

impl LabelLog {
    /// Open (or create) the log at `path` and replay it.
    pub fn open(path: impl Into<PathBuf>) -> Result<(Self, OpenReport), LabelError> {
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
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        let (current, mut report, good_len) = replay(&mut file, &path)?;
        if report.truncated_bytes > 0 {
            file.set_len(good_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        report.labels = current.len();
        let log = Self {
            path: path.clone(),
            inner: Mutex::new(Inner {
                file,
                current,
                lines: report.lines,
            }),
            _lock: lock,
        };
        // Rewrite when at least three quarters of the lines are replaced votes.
        if report.lines > 1000 && report.labels * 4 < report.lines {
            log.compact()?;
            report.compacted = true;
        }
        Ok((log, report))
    }

    /// The votes in force in the log at `path`, read without writing anything: no torn tail
    /// cut, no compaction, no lock, so a running server keeps writing while this reads (a line
    /// it is appending right now is left out, as a torn tail). No file: no votes.
    pub fn snapshot(path: &Path) -> Result<Vec<Label>, LabelError> {
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

    /// Record a vote; returns once it is on disk.
    pub fn record(&self, vote: Vote) -> Result<Label, LabelError> {
        let label = Label {
            label_id: label_id(&vote.client_id, &vote.query, &vote.image_id),
            query: vote.query,
            query_vector: vote.query_vector,
            image_id: vote.image_id,
            label: vote.label,
            note: vote.note,
            client_id: vote.client_id,
            time_ms: now_ms(),
        };
        let mut line = serde_json::to_string(&label).map_err(|e| LabelError::Corrupt {
            path: self.path.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        line.push('\n');
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let io = |source| LabelError::Io {
            path: self.path.clone(),
            source,
        };
        let before = inner.file.metadata().map_err(io)?.len();
        if let Err(source) = append(&mut inner.file, line.as_bytes()) {
            // Cut a partial line back off, so the next vote does not land after it (best effort:
            // a failed cut leaves a torn line that the next open removes).
            let _ = inner.file.set_len(before);
            return Err(io(source));
        }
        inner.lines += 1;
        apply(&mut inner.current, label.clone());
        Ok(label)
    }

    /// Every vote in force, oldest first (then by id, for a stable order).
    pub fn all(&self) -> Vec<Label> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        in_order(inner.current.values().cloned())
    }

    /// Number of votes in force.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrite the log with only the votes in force: temp file, fsync, rename, fsync the
    /// directory — the old log stays whole until the rename.
    fn compact(&self) -> Result<(), LabelError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let io = |source| LabelError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut labels: Vec<&Label> = inner.current.values().collect();
        labels.sort_by(|a, b| a.time_ms.cmp(&b.time_ms).then(a.label_id.cmp(&b.label_id)));
        let mut out = File::create(&tmp).map_err(io)?;
        for label in &labels {
            let mut line = serde_json::to_string(label).map_err(|e| LabelError::Corrupt {
                path: self.path.clone(),
                line: 0,
                message: e.to_string(),
            })?;
            line.push('\n');
            out.write_all(line.as_bytes()).map_err(io)?;
        }
        out.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        inner.lines = labels.len();
        inner.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        Ok(())
    }
}

/// Votes oldest first (then by id, for a stable order).
fn in_order(labels: impl Iterator<Item = Label>) -> Vec<Label> {
    let mut labels: Vec<Label> = labels.collect();
    labels.sort_by(|a, b| a.time_ms.cmp(&b.time_ms).then(a.label_id.cmp(&b.label_id)));
    labels
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

/// Read the log from the start: the votes in force, what was found, and the length of its whole
/// lines. The last line may be torn (a crash mid-write leaves any bytes, half a UTF-8 character
/// included): it is left out and reported. Any other bad line is an error naming it.
fn replay(
    file: &mut File,
    path: &Path,
) -> Result<(HashMap<Uuid, Label>, OpenReport, u64), LabelError> {
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
        let label = serde_json::from_slice::<Label>(&line).map_err(|e| LabelError::Corrupt {
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

/// Append bytes and make them durable.
fn append(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(test)]
    if let Some(n) = tests::FAIL_WRITE_AFTER.with(std::cell::Cell::take) {
        // A disk that fills up mid-line: part of the line is written, then the write fails.
        file.write_all(&bytes[..n.min(bytes.len())])?;
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device (injected)",
        ));
    }
    file.write_all(bytes)?;
    file.sync_data()
}

/// Apply one vote: replace the (client, query, image)'s earlier vote, or withdraw it.
fn apply(current: &mut HashMap<Uuid, Label>, label: Label) {
    if label.label == Verdict::None {
        current.remove(&label.label_id);
    } else {
        current.insert(label.label_id, label);
    }
}

fn now_ms() -> u64 {
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

    thread_local! {
        /// When set, the next append on this thread writes this many bytes and fails.
        pub(super) static FAIL_WRITE_AFTER: std::cell::Cell<Option<usize>> =
            const { std::cell::Cell::new(None) };
    }

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
        FAIL_WRITE_AFTER.with(|f| f.set(Some(20)));
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
            let (log, _) = LabelLog::open(&path).expect("open");
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
