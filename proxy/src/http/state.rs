//! http/state: what do the handlers share, and how is it built?
//!
//! [`AppState::open`] is the one way to build the server's state, from [`StateParts`]: `proxy
//! serve`, the tests and the search benchmark all go through it, so the label log is opened (and
//! its torn tail reported) and the paths under the storage directory are chosen in one place.
//! The vote budgets and the folders originals may come from have safe defaults;
//! [`AppState::with_vote_budget`] and [`AppState::with_image_roots`] set them from settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use crate::bundle::ModelBundle;
use crate::config::Secret;
use crate::cutoff::LiveCutoff;
use crate::labels::{BudgetConfig, LabelError, LabelLog, VoteBudget};
use crate::layout::DataDir;
use crate::model::TextEncoder;
use crate::retrieve::Fusion;
use crate::review::ReviewLog;
use crate::store::{CollectionSpec, SharedStore, StoreError};

use crate::image_roots::ImageRoots;

/// What the server state is made of.
#[derive(Clone)]
pub struct StateParts {
    pub store: SharedStore,
    /// The collection the model's vectors belong in.
    pub spec: CollectionSpec,
    /// Server-side text encoding; `None`: text searches are refused (send a vector).
    pub encoder: Option<Arc<dyn TextEncoder>>,
    /// Where the label log and the thumbnails are.
    pub data: DataDir,
    /// Turns the labels export on.
    pub admin_token: Option<Secret>,
    /// The browser's model files, served under `/model/`.
    pub bundle: Option<ModelBundle>,
}

impl std::fmt::Debug for StateParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateParts")
            .field("spec", &self.spec)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

/// Everything the handlers share.
pub struct AppState {
    pub store: SharedStore,
    pub spec: CollectionSpec,
    pub encoder: Option<Arc<dyn TextEncoder>>,
    pub labels: Arc<LabelLog>,
    /// The reviewers' verdicts (the admin review queue).
    pub reviews: Arc<ReviewLog>,
    /// Votes per client and per hour, and everyone's together (checked before a vote is
    /// written).
    pub vote_budget: VoteBudget,
    pub data: DataDir,
    /// Where originals may be served from: the storage directory, and more by
    /// [`AppState::with_image_roots`].
    pub image_roots: ImageRoots,
    pub admin_token: Option<Secret>,
    pub bundle: Option<ModelBundle>,
    /// Server-side text encodings at once (CPU-bound); more wait up to `encode_wait`, then 429.
    pub encode_slots: tokio::sync::Semaphore,
    pub encode_wait: Duration,
    /// The learned "no good match" line in force, refitted as votes come in.
    pub cutoff: LiveCutoff,
    /// The collection as opened (its own spec: whether it has caption vectors); unset until
    /// it opens.
    opened: OnceLock<CollectionSpec>,
    /// How caption and image rankings are fused (`--fusion`).
    pub fusion: Fusion,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Build the state: open (or create) the label log and the review log under `parts.data`,
    /// cutting a torn last line left by an interrupted write (and saying so in the log).
    pub fn open(parts: StateParts) -> Result<Self, LabelError> {
        let (labels, report) = LabelLog::open(parts.data.labels())?;
        if report.truncated_bytes > 0 {
            tracing::warn!(
                "{}: cut a torn last line ({} bytes) left by an interrupted write",
                labels.path().display(),
                report.truncated_bytes
            );
        }
        if report.compacted {
            tracing::info!(
                "{}: rewritten with the {} votes in force ({} lines before)",
                labels.path().display(),
                report.labels,
                report.lines
            );
        }
        let (reviews, report) = ReviewLog::open(parts.data.reviews())?;
        if report.truncated_bytes > 0 {
            tracing::warn!(
                "{}: cut a torn last line ({} bytes) left by an interrupted write",
                reviews.path().display(),
                report.truncated_bytes
            );
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            store: parts.store,
            spec: parts.spec,
            encoder: parts.encoder,
            labels: Arc::new(labels),
            reviews: Arc::new(reviews),
            vote_budget: VoteBudget::default(),
            image_roots: ImageRoots::new([parts.data.root().to_path_buf()])
                .with_recorded(parts.data.image_roots()),
            data: parts.data,
            admin_token: parts.admin_token,
            bundle: parts.bundle,
            encode_slots: tokio::sync::Semaphore::new(cores),
            encode_wait: Duration::from_secs(2),
            cutoff: LiveCutoff::default(),
            opened: OnceLock::new(),
            fusion: Fusion::default(),
        })
    }

    /// Replace the vote budgets (default: [`BudgetConfig::default`]).
    pub fn with_vote_budget(mut self, config: BudgetConfig) -> Self {
        self.vote_budget = VoteBudget::new(config);
        self
    }

    /// Also serve originals from these folders (besides the storage directory).
    pub fn with_image_roots(mut self, roots: impl IntoIterator<Item = PathBuf>) -> Self {
        self.image_roots.extend(roots);
        self
    }

    /// Open the collection on first use, and again after a failure: a store that was down at
    /// start, or a collection ingested after the proxy started, is picked up without a restart.
    pub async fn store(&self) -> Result<&SharedStore, StoreError> {
        self.collection().await?;
        Ok(&self.store)
    }

    /// The collection's spec as found when it opened (opening it if needed).
    pub async fn collection(&self) -> Result<&CollectionSpec, StoreError> {
        if let Some(found) = self.opened.get() {
            return Ok(found);
        }
        let found = self.store.open_collection(&self.spec).await?;
        Ok(self.opened.get_or_init(|| found))
    }

    /// Fuse caption and image rankings by `fusion` (default: [`Fusion::default`]).
    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }
}
