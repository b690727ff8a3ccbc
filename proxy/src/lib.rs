//! The text2img proxy: the HTTP API in front of Qdrant, the static site from `public/`, and the
//! command-line tools that share its configuration (`ingest`, `eval`, `export-model`).
//!
//! Architecture Invariant: only [`http`] knows about JSON wire types and status codes.

pub mod http;
