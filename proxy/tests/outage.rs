//! A store that fails the way a Qdrant cluster does when a node is down or a shard has no live
//! replica: every answer is the right class (503 `store_unavailable`, 500 `store_error`, 503
//! `not_ingested`), `/readyz` says which part is not ready, and no response carries the store's
//! words — an internal peer address, a storage path, a key — which go to the log, once.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use proxy::store::{
    CollectionSpec, Hit, Payload, Point, RecommendQuery, Record, Result, SearchQuery, SharedStore,
    StoreError, VectorStore,
};
use serde_json::{Value, json};
use testkit::{TestServer, app_state, get, post, public_stub, tiny_model};
use uuid::Uuid;

/// What a cluster's errors carry and a client must never see.
const PEER: &str = "10.0.0.7:6455";
const PATH: &str = "/var/lib/qdrant/storage/collections/images/0";
const KEY: &str = "sk-cluster-key-3f9e1c";

/// How the fake store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Unavailable,
    Internal,
    NoCollection,
}

/// A store whose every call but the opening fails as `fail` says, each error numbered (`call #N`) so the log
/// can be checked to hold each one exactly once.
#[derive(Debug)]
struct Broken {
    fail: Fail,
    calls: Arc<AtomicUsize>,
}

impl Broken {
    fn error<T>(&self) -> Result<T> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let detail = format!(
            "http://{PEER} (qdrant, api-key {KEY}) call #{:?}-{n}: Service internal error: 1 of 1 \
             read operations failed: Failed to connect to http://{PEER}/, error: transport error \
             ({PATH}/segments)",
            self.fail
        );
        Err(match self.fail {
            Fail::Unavailable => StoreError::Unavailable(detail),
            Fail::Internal => StoreError::Internal(detail),
            Fail::NoCollection => StoreError::NoCollection("images".into()),
        })
    }
}

#[async_trait::async_trait]
impl VectorStore for Broken {
    async fn ensure_collection(&self, _: &CollectionSpec) -> Result<CollectionSpec> {
        self.error()
    }
    /// Opens (a cluster answers its metadata from any live node), except where the collection
    /// is missing: the calls that follow fail.
    async fn open_collection(&self, spec: &CollectionSpec) -> Result<CollectionSpec> {
        match self.fail {
            Fail::NoCollection => self.error(),
            Fail::Unavailable | Fail::Internal => Ok(spec.clone()),
        }
    }
    async fn adopt(&self, _: &CollectionSpec) -> Result<()> {
        self.error()
    }
    async fn layout(&self) -> Result<Option<proxy::store::cluster::Layout>> {
        self.error()
    }
    async fn index_field(&self, _: &str) -> Result<()> {
        self.error()
    }
    async fn upsert(&self, _: Vec<Point>) -> Result<()> {
        self.error()
    }
    async fn set_payload(&self, _: Uuid, _: Payload) -> Result<()> {
        self.error()
    }
    async fn delete(&self, _: &[Uuid]) -> Result<()> {
        self.error()
    }
    async fn search(&self, _: &SearchQuery) -> Result<Vec<Hit>> {
        self.error()
    }
    async fn recommend(&self, _: &RecommendQuery) -> Result<Vec<Hit>> {
        self.error()
    }
    async fn get(&self, _: &[Uuid], _: bool) -> Result<Vec<Record>> {
        self.error()
    }
    async fn scroll(&self, _: Option<Uuid>, _: usize) -> Result<(Vec<Record>, Option<Uuid>)> {
        self.error()
    }
    async fn count(&self) -> Result<usize> {
        self.error()
    }
    async fn optimize(&self) -> Result<()> {
        self.error()
    }
    async fn ping(&self) -> Result<()> {
        self.error()
    }
}

/// Everything logged at warning level and above, from every test in this file.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .init();
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> String {
    String::from_utf8_lossy(&log().lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Every request that reaches the store, with its body (`None`: a GET).
fn requests() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("/api/search", Some(json!({"vector": vec![0.25f32; 16]}))),
        ("/api/search", Some(json!({"text": "a cat"}))),
        (
            "/api/search",
            Some(json!({"terms": [{"weight": 1.0, "id": "img1"}]})),
        ),
        (
            "/api/search",
            Some(json!({"vector": vec![0.25f32; 16], "positive": [{"id": "img1"}]})),
        ),
        ("/api/similar", Some(json!({"id": "img1"}))),
        (
            "/api/feedback",
            Some(json!({"query": "q", "image_id": "img1", "label": "relevant"})),
        ),
        ("/images/img1", None),
        ("/readyz", None),
    ]
}

/// Serves a [`Broken`] store failing as `fail`; asks every request; checks each answer's status
/// and code, that none carries the store's words, and that each error was logged once. Returns
/// the `/readyz` body.
fn check_outage(fail: Fail, status: u16, code: &str) -> Value {
    log();
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let calls = Arc::new(AtomicUsize::new(0));
    let store: SharedStore = Arc::new(Broken {
        fail,
        calls: calls.clone(),
    });
    let public = public_stub(dir.path());
    let server = TestServer::start(
        app_state(store, &loaded, dir.path(), None, None),
        &public,
        vec![],
    );
    let mut ready = Value::Null;
    for (path, body) in requests() {
        let a = match &body {
            Some(body) => post(&server.url(path), &body.to_string()),
            None => get(&server.url(path), &[]),
        };
        let text = format!("{} {:?}", a.text(), a.headers);
        for secret in [
            PEER,
            "10.0.0.7",
            PATH,
            "/var/lib",
            KEY,
            "call #",
            "transport",
        ] {
            assert!(
                !text.contains(secret),
                "{fail:?} {path} leaked {secret}: {text}"
            );
        }
        assert_eq!(a.error_code(), code, "{fail:?} {path}: {}", a.text());
        if path == "/readyz" {
            // Not ready is always a 503, whatever the class.
            assert_eq!(a.status, 503, "{fail:?} {path}: {}", a.text());
            ready = a.json();
        } else {
            assert_eq!(a.status, status, "{fail:?} {path}: {}", a.text());
        }
    }
    let issued = calls.load(Ordering::SeqCst);
    if fail != Fail::NoCollection {
        assert_eq!(issued, requests().len(), "one store call per request");
        let log = logged();
        for n in 0..issued {
            let seen = log.matches(&format!("call #{fail:?}-{n}:")).count();
            assert_eq!(seen, 1, "{fail:?}: error #{n} logged {seen} times:\n{log}");
        }
        assert!(log.contains(PEER), "the log has the details:\n{log}");
    }
    ready
}

#[test]
fn a_store_that_is_down_is_503_store_unavailable_without_its_words() {
    let ready = check_outage(Fail::Unavailable, 503, "store_unavailable");
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["store"], "unavailable");
    assert_eq!(ready["labels"], "ok");
    assert_eq!(
        ready["error"]["message"],
        "the vector store is unavailable; try again shortly"
    );
}

#[test]
fn a_store_that_fails_is_500_store_error_without_its_words() {
    let ready = check_outage(Fail::Internal, 500, "store_error");
    assert_eq!(ready["store"], "failed");
    assert_eq!(ready["labels"], "ok");
    assert_eq!(
        ready["error"]["message"],
        "the vector store failed; the server log has the details"
    );
}

#[test]
fn a_collection_not_ingested_is_503_not_ingested_and_says_so() {
    let ready = check_outage(Fail::NoCollection, 503, "not_ingested");
    assert_eq!(ready["store"], "not_ingested");
    let message = ready["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("run `ingest`"), "{message}");
}

/// A filter field name the server would refuse is refused before the server is asked, in the
/// proxy's own words (a 400), while a good one reaches the (closed) port and is unavailable.
#[test]
fn a_bad_filter_field_is_refused_before_the_store_is_asked() {
    let port = testkit::free_port();
    let store = testkit::qdrant::unreachable_store(port, None);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let spec = testkit::tiny_spec(&tiny_model());
    // Down: the name is remembered, the check fails as unavailable.
    assert!(matches!(
        runtime.block_on(store.open_collection(&spec)),
        Err(StoreError::Unavailable(_))
    ));
    let query = |key: &str| SearchQuery {
        using: proxy::store::VectorName::Image,
        vector: vec![0.25; 16],
        limit: 5,
        offset: 0,
        filter: [(key.to_string(), json!("x"))].into_iter().collect(),
    };
    match runtime.block_on(store.search(&query("a["))) {
        Err(StoreError::Invalid(message)) => {
            assert!(message.contains("`a[`"), "{message}");
            assert!(!message.contains(&port.to_string()), "{message}");
        }
        other => panic!("a bad field name: {other:?}"),
    }
    assert!(matches!(
        runtime.block_on(store.search(&query("license"))),
        Err(StoreError::Unavailable(_))
    ));
}
