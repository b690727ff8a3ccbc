//! qdrant: how does a test reach a Qdrant server — the one `QDRANT_URL` names (suites that need
//! one skip loudly without it), or a port where nobody listens (outage tests)?

use std::time::Duration;

use proxy::store::cluster::ClusterSettings;
use proxy::store::remote::{RemoteConfig, RemoteStore};

/// `QDRANT_URL` (a gRPC URL such as `http://127.0.0.1:6334`), or a skip saying that `what` did
/// not run.
pub fn url(what: &str) -> Option<String> {
    match std::env::var("QDRANT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            crate::skip(&format!(
                "{what} needs a Qdrant server: set QDRANT_URL (e.g. http://localhost:6334); it did not run"
            ));
            None
        }
    }
}

/// A store on `url` (with `QDRANT_API_KEY` when set) that lays out new collections as `cluster`
/// asks.
pub fn store(url: &str, cluster: ClusterSettings) -> RemoteStore {
    RemoteStore::new(RemoteConfig {
        url: url.to_string(),
        api_key: std::env::var("QDRANT_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        timeout: Duration::from_secs(10),
        cluster,
    })
    .expect("client")
}

/// A store on loopback `port`, where nobody listens (from [`crate::free_port`]), with `api_key`
/// (outage and scrub tests).
pub fn unreachable_store(port: u16, api_key: Option<&str>) -> RemoteStore {
    RemoteStore::new(RemoteConfig {
        url: format!("http://127.0.0.1:{port}"),
        api_key: api_key.map(str::to_string),
        timeout: Duration::from_secs(2),
        cluster: ClusterSettings::default(),
    })
    .expect("client")
}

/// A collection name no other run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}
