//! http/limits: how long may a connection take, and how many are served at once?
//!
//! [`Limits`] are what the serving loop ([`super::serve`]) enforces on every connection, before
//! any route runs: a request head must arrive whole within `header_timeout`, a body within
//! `body_timeout` of its head, a connection with nothing to do is closed after `idle_timeout`,
//! and at most `max_connections` are served at once. The per-client request rates are the
//! router's ([`super::rate`]).

use std::time::Duration;

/// What one connection may take. The defaults suit a small public deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head must arrive whole within this time of the connection opening, or of its
    /// first byte after a keep-alive wait. Else the connection is closed.
    pub header_timeout: Duration,
    /// A kept-alive connection waiting for its next request is closed after this long; so is one
    /// whose request makes no progress (not a byte read or written) for this long.
    pub idle_timeout: Duration,
    /// A request body must arrive whole within this time of its head; else the answer is 408
    /// and the connection is closed.
    pub body_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}
