//! The JSON that text2img's parts exchange, defined once: the proxy's HTTP request and answer
//! bodies (ARCHITECTURE.md, "HTTP API"), the browser model's manifest (`GET /api/model`), the
//! text-tower [`Variant`]s, and the messages between the page and its model worker
//! ([`worker`]). Plain serde types with no behaviour beyond parsing names, so the proxy, `clip`,
//! the page and the worker can all depend on it, natively and on wasm32.
//!
//! Each type serialises to exactly the JSON the proxy writes (field order, `null` versus an
//! omitted field; `tests/golden.rs` holds the strings), and request bodies refuse unknown fields
//! as the proxy does.

mod cutoff;
mod error;
mod feedback;
mod health;
mod model;
mod readiness;
mod review;
mod search;
mod url;
mod variant;
pub mod worker;

pub use cutoff::{CutoffOff, CutoffOn, CutoffRule, CutoffState, RuleScore};
pub use error::{ErrorBody, ErrorDetail};
pub use feedback::{FeedbackRequest, FeedbackResponse, UnknownVerdict, Verdict};
pub use health::{Health, Readiness};
pub use model::{FileRef, ModelManifest, RowFormat, TokenRows};
pub use readiness::{PartState, Unready};
pub use review::{
    ReviewItem, ReviewQueue, ReviewRequest, ReviewResponse, ReviewVerdict, UnknownReviewVerdict,
    VoteCounts,
};
pub use search::{
    Example, Filter, Hit, Results, SearchRequest, SimilarRequest, Strategy, Term, Vectors,
};
pub use url::join_url;
pub use variant::{UnknownVariant, Variant};
