//! http/limits: how long may a connection take, and how many are served at once?
//!
//! [`Limits`] are what the serving loop ([`super::serve`]) enforces on every connection, before
//! any route runs: a request head must arrive whole within `header_timeout`, a body within
//! `body_timeout` of its head, a connection with nothing to do is closed after `idle_timeout`,
//! at most `max_connections` are served at once, and at most `max_connections_per_client` from
//! one client (its address, IPv6 by its /64; trusted proxies are not capped). The per-client
//! request rates are the router's ([`super::rate`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::TrustedProxies;
use crate::clients::client_key;

/// What one connection may take. The defaults suit a small public deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Connections one client may hold open at once; a further one is closed as soon as it is
    /// accepted, so one address cannot fill `max_connections` and lock everyone else out. A
    /// browser opens at most six per site; 32 leaves room for a few people behind one NAT, and
    /// takes 32 addresses to fill the default `max_connections`.
    pub max_connections_per_client: usize,
    /// Peers the per-client cap does not apply to: proxies in front, which carry many clients.
    pub uncapped: TrustedProxies,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_client: 32,
            uncapped: TrustedProxies::default(),
        }
    }
}

/// The connections each client holds open now (only clients with one or more: at most
/// `max_connections` entries).
#[derive(Debug, Default)]
pub(super) struct OpenPerClient(Mutex<HashMap<IpAddr, usize>>);

/// One client's place among its open connections, given back when dropped (`None`: a peer that
/// is not counted).
#[derive(Debug)]
pub(super) struct ClientSlot(Option<(Arc<OpenPerClient>, IpAddr)>);

impl OpenPerClient {
    /// A place for one more connection from `peer`, or `None` when it holds its cap already.
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr, limits: &Limits) -> Option<ClientSlot> {
        if limits.uncapped.contains(peer) {
            return Some(ClientSlot(None));
        }
        let key = client_key(peer);
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= limits.max_connections_per_client.max(1) {
            return None;
        }
        *count += 1;
        Some(ClientSlot(Some((self.clone(), key))))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some((open, key)) = &self.0 else { return };
        let mut open = open.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                open.remove(key);
            }
        }
    }
}
