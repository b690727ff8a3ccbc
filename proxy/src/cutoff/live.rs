//! cutoff/live: which line does the serving proxy use now, and when is it fitted again?
//!
//! [`LiveCutoff`] holds the current [`Cutoff`] (read by every search without waiting) and the
//! mark of the last fit: the label log's line count then, and when. A refit is due ([`due`])
//! after [`REFIT_AFTER_VOTES`] lines were appended (or the log was rewritten), after
//! [`REFIT_INTERVAL`] when any line changed, [`RETRY_AFTER`] a failed fit, or before the first.
//! [`LiveCutoff::refresh`] fits when due, one fit at a time (a second caller waits for the fit in
//! progress and sees its outcome); [`LiveCutoff::should_schedule`] lets the search path start a
//! refresh in the background at most once per [`CHECK_EVERY`], so a search never waits for one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::labels::{Label, LabelLog};
use crate::model::TextEncoder;
use crate::review::{Review, ReviewLog};
use crate::store::{StoreError, VectorStore};

use super::samples::{judgments_from_labels, query_vectors, samples};
use super::{Cutoff, fit};

/// Appended votes (log lines) after which the line is fitted again.
pub const REFIT_AFTER_VOTES: usize = 10;
/// Any change to the log is taken in after this long.
pub const REFIT_INTERVAL: Duration = Duration::from_secs(600);
/// A fit that failed (the store was down) is tried again after this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// The search path looks at most this often whether a refit is due.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The last fit: the log's line count then, when it ended, and whether it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub lines: usize,
    pub at: Instant,
    pub failed: bool,
}

/// Whether a fit is due, given the last one (`None`: never fitted), the log's line count now
/// and the time now.
pub fn due(last: Option<Mark>, lines: usize, now: Instant) -> bool {
    let Some(mark) = last else {
        return true;
    };
    let since = now.saturating_duration_since(mark.at);
    if mark.failed {
        return since >= RETRY_AFTER;
    }
    let changed = lines.abs_diff(mark.lines);
    changed >= REFIT_AFTER_VOTES || (changed > 0 && since >= REFIT_INTERVAL)
}

/// Fit the line from labels and reviewers' verdicts: the judgments, their query vectors (from the votes, else `encoder`;
/// blocking work) and the store's scores. For `proxy eval`, which runs nothing else.
pub async fn fit_labels(
    labels: &[Label],
    reviews: &[Review],
    encoder: Option<&dyn TextEncoder>,
    store: &dyn VectorStore,
    dim: usize,
) -> Result<Cutoff, StoreError> {
    let judgments = judgments_from_labels(labels, reviews);
    let vectors = query_vectors(&judgments, labels, encoder, dim);
    let samples = samples(&judgments, &vectors, store).await?;
    Ok(fit(&samples))
}

/// What a serving fit reads.
pub struct FitSource {
    pub labels: Arc<LabelLog>,
    pub reviews: Arc<ReviewLog>,
    pub store: Arc<dyn VectorStore>,
    pub encoder: Option<Arc<dyn TextEncoder>>,
    pub dim: usize,
}

impl std::fmt::Debug for FitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FitSource")
            .field("labels", &self.labels.path())
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

/// The serving proxy's current line.
#[derive(Debug)]
pub struct LiveCutoff {
    current: RwLock<Arc<Cutoff>>,
    /// Held for the whole of a fit: one at a time.
    last: tokio::sync::Mutex<Option<Mark>>,
    /// Milliseconds since `epoch` of the search path's last look.
    checked_ms: AtomicU64,
    epoch: Instant,
}

impl Default for LiveCutoff {
    fn default() -> Self {
        Self {
            current: RwLock::new(Arc::new(Cutoff::unavailable("not fitted yet"))),
            last: tokio::sync::Mutex::new(None),
            checked_ms: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
        }
    }
}

impl LiveCutoff {
    /// The line in force now (never waits for a fit).
    pub fn current(&self) -> Arc<Cutoff> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the search path should start a [`LiveCutoff::refresh`] now: at most once per
    /// [`CHECK_EVERY`], and not while a fit runs.
    pub fn should_schedule(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.checked_ms.load(Ordering::Acquire);
        let every = CHECK_EVERY.as_millis() as u64;
        if last != u64::MAX && now.saturating_sub(last) < every {
            return false;
        }
        self.checked_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && self.last.try_lock().is_ok()
    }

    /// Fit again if due, and return the line in force. Waits for a fit in progress; a failed
    /// fit (the store unreachable) keeps the previous line and is retried later.
    pub async fn refresh(&self, source: &FitSource) -> Arc<Cutoff> {
        let mut last = self.last.lock().await;
        let (log, reviews) = (source.labels.clone(), source.reviews.clone());
        let lines = move || log.lines() + reviews.lines();
        let Ok(lines) = tokio::task::spawn_blocking(lines).await else {
            return self.current();
        };
        if !due(*last, lines, Instant::now()) {
            return self.current();
        }
        let outcome = self.fit(source).await;
        let failed = outcome.is_err();
        match outcome {
            Ok(cutoff) => {
                describe(&cutoff);
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(cutoff);
            }
            Err(e) => tracing::warn!("the \"no good match\" line was not fitted: {e}"),
        }
        *last = Some(Mark {
            lines,
            at: Instant::now(),
            failed,
        });
        self.current()
    }

    /// One fit: the log's votes and the encoder off the async threads, then the store.
    async fn fit(&self, source: &FitSource) -> Result<Cutoff, String> {
        let (log, reviews) = (source.labels.clone(), source.reviews.clone());
        let encoder = source.encoder.clone();
        let dim = source.dim;
        let (judgments, vectors) = tokio::task::spawn_blocking(move || {
            let labels = log.all();
            let judgments = judgments_from_labels(&labels, &reviews.all());
            let vectors = query_vectors(&judgments, &labels, encoder.as_deref(), dim);
            (judgments, vectors)
        })
        .await
        .map_err(|e| e.to_string())?;
        let samples = samples(&judgments, &vectors, source.store.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || fit(&samples))
            .await
            .map_err(|e| e.to_string())
    }
}

/// Say in the log what was fitted.
fn describe(cutoff: &Cutoff) {
    match cutoff {
        Cutoff::On {
            chosen,
            labels,
            queries,
            ..
        } => tracing::info!(
            "\"no good match\" line: {} (held-out precision {:.2}, recall {:.2}; {labels} \
             judged results over {queries} queries)",
            chosen.rule.describe(chosen.value),
            chosen.held_out.precision,
            chosen.held_out.recall,
        ),
        Cutoff::Off { reason, .. } => tracing::info!("\"no good match\" line off: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refits_after_votes_time_or_a_failure() {
        let t0 = Instant::now();
        let mark = |lines, failed| {
            Some(Mark {
                lines,
                at: t0,
                failed,
            })
        };
        assert!(due(None, 0, t0), "never fitted");
        assert!(
            !due(mark(100, false), 100, t0 + REFIT_INTERVAL * 2),
            "nothing changed"
        );
        assert!(!due(mark(100, false), 109, t0), "9 votes");
        assert!(due(mark(100, false), 110, t0), "10 votes");
        assert!(due(mark(100, false), 40, t0), "the log was rewritten");
        assert!(!due(mark(100, false), 101, t0 + REFIT_INTERVAL / 2));
        assert!(due(mark(100, false), 101, t0 + REFIT_INTERVAL));
        assert!(
            !due(mark(100, true), 100, t0 + RETRY_AFTER / 2),
            "failed just now"
        );
        assert!(
            due(mark(100, true), 100, t0 + RETRY_AFTER),
            "failed a while ago"
        );
    }

    #[test]
    fn the_search_path_looks_at_most_once_per_interval() {
        let live = LiveCutoff::default();
        assert!(live.should_schedule());
        assert!(!live.should_schedule(), "again at once");
        assert!(
            live.current().chosen().is_none(),
            "off before the first fit"
        );
    }
}
