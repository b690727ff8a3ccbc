//! The text2img proxy: the HTTP API in front of Qdrant, the static site from `public/`, and the
//! command-line tools that share its configuration (`ingest`, `proxy eval`, `proxy export-model`).
//!
//! Architecture Invariant: only [`http`] speaks the wire types (defined once in the `wire` crate,
//! shared with the frontend) and knows status codes; only [`store`] knows Qdrant's types;
//! [`payload`] is the one definition of what is stored with a vector, [`layout`] of where files
//! go; library code never prints (the binaries report through [`cli`]'s progress bars and
//! `tracing`). `tests/invariants.rs` checks these.

pub mod bundle;
pub mod cli;
pub mod clients;
pub mod compose;
pub mod config;
pub mod cutoff;
pub mod eval;
pub mod http;
pub mod image_roots;
pub mod ingest;
pub mod labels;
pub mod layout;
pub mod model;
pub mod payload;
pub mod report;
pub mod retrieve;
pub mod review;
pub mod store;

/// Every binary of this crate (`proxy`, `ingest`, the examples) allocates through mimalloc.
/// candle gives each op a fresh output buffer, up to 20 MB at an ingest batch of 32, and glibc's
/// allocator hands such large blocks back to the kernel when they are freed, so every op paid for
/// page faults and zeroed pages again (about 7% of a batch's time in `perf`). mimalloc keeps freed
/// memory for the next op: 7–11% more images/s (BENCHMARKS.md, medians of three runs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
