//! The JSON body target: can any request body make the API panic, answer a 5xx from a healthy
//! server, or answer something that is not the JSON its contract promises?
//!
//! The first byte picks the route (`s` search, `m` similar, `f` feedback; other bytes by their
//! value) and, when it is upper case (or ≥ 0x80), a server whose store has no collection yet;
//! the rest is the body. The body is parsed as the route's `wire` request type (what parses must
//! serialise and parse again), then sent with `Content-Type: application/json` through the real
//! router ([`proxy::http::router`]), in-process with `tower::ServiceExt::oneshot`, over the tiny
//! fixture model and an embedded store in a temporary folder (in `/dev/shm` when there is one,
//! so each vote's fsync is cheap). A healthy server answers below 500; the one without a
//! collection may also answer `503 not_ingested`. Every answer is JSON: the route's answer type
//! on success, `{"error":{"code","message"}}` otherwise.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use proxy::http::{MAX_BODY, router};
use proxy::store::edge::EdgeStore;
use proxy::store::{Point, SharedStore, VectorStore, point_id};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tower::ServiceExt;
use wire::{
    ErrorBody, Example, FeedbackRequest, FeedbackResponse, Results, SearchRequest, SimilarRequest,
};

use crate::{Outcome, shape};

/// Points `img0`..`img4` in the full store.
const POINTS: usize = 5;

#[derive(Debug, Clone, Copy)]
enum Route {
    Search,
    Similar,
    Feedback,
}

impl Route {
    fn pick(byte: u8) -> Self {
        match byte.to_ascii_lowercase() {
            b's' => Self::Search,
            b'm' => Self::Similar,
            b'f' => Self::Feedback,
            other => [Self::Search, Self::Similar, Self::Feedback][usize::from(other % 3)],
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Search => "/api/search",
            Self::Similar => "/api/similar",
            Self::Feedback => "/api/feedback",
        }
    }
}

/// Two servers over the tiny model: one with five images, one whose store has no collection.
struct Servers {
    runtime: tokio::runtime::Runtime,
    full: Router,
    empty: Router,
    _dir: tempfile::TempDir,
}

static SERVERS: LazyLock<Servers> = LazyLock::new(Servers::start);

impl Servers {
    fn start() -> Self {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("temporary folder");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let loaded = testkit::tiny_model();
        let spec = testkit::tiny_spec(&loaded);
        let full = EdgeStore::new(dir.path().join("full/qdrant"));
        runtime.block_on(async {
            full.ensure_collection(&spec).await.expect("collection");
            full.upsert(points(spec.dim)).await.expect("upsert");
        });
        let empty = EdgeStore::new(dir.path().join("empty/qdrant"));
        let app = |store: SharedStore, sub: &str| {
            let data = dir.path().join(sub);
            let state = testkit::app_state(store, &loaded, &data, None, None);
            let config = testkit::server::serve_config(&testkit::public_stub(&data), vec![]);
            router(&config, Arc::new(state))
        };
        Self {
            full: app(Arc::new(full), "full"),
            empty: app(Arc::new(empty), "empty"),
            runtime,
            _dir: dir,
        }
    }
}

/// `img0`..`img4`: unit vectors with a caption and a licence.
fn points(dim: usize) -> Vec<Point> {
    (0..POINTS)
        .map(|i| {
            let mut vector: Vec<f32> = (0..dim)
                .map(|d| ((i * 31 + d * 7) % 11) as f32 - 5.0)
                .collect();
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            vector.iter_mut().for_each(|x| *x /= norm);
            let payload = json!({
                "id": format!("img{i}"),
                "caption": format!("picture {i}"),
                "license": "CC0-1.0",
                "url": format!("https://example.com/{i}.jpg"),
                "content_hash": format!("hash{i}"),
            });
            let serde_json::Value::Object(payload) = payload else {
                unreachable!("a JSON object")
            };
            Point {
                id: point_id(&format!("img{i}")),
                vector,
                caption: None,
                payload,
            }
        })
        .collect()
}

/// A request body → the `wire` types and the API's answer; panics if an invariant breaks.
pub fn json_body(data: &[u8]) -> Outcome {
    let Some((&first, body)) = data.split_first() else {
        return "empty".into();
    };
    let route = Route::pick(first);
    let empty = first.is_ascii_uppercase() || first >= 0x80;
    match route {
        Route::Search => round_trip::<SearchRequest>(body, all_vectors_finite),
        Route::Similar => round_trip::<SimilarRequest>(body, |_| true),
        Route::Feedback => {
            round_trip::<FeedbackRequest>(body, |r| finite(&r.query_vector));
            round_trip::<FeedbackRequest<String>>(body, |r| finite(&r.query_vector));
        }
    }
    let servers = &*SERVERS;
    let app = if empty { &servers.empty } else { &servers.full };
    let (status, answer) = servers.runtime.block_on(send(app.clone(), route, body));
    let outcome = check_answer(route, empty, status, &answer);
    format!("{route:?} empty:{empty} {} {outcome}", status.as_u16())
}

/// What parses as `T` serialises, and that parses again — unless it holds a number beyond
/// `f32` (`1e39` parses as infinity, which JSON writes as `null`): the proxy refuses such a
/// vector (`400 bad_vector`, checked by the answer's invariants), and
/// `regressions/json_body/vector-f32-overflow*` keep that case.
fn round_trip<T: Serialize + DeserializeOwned>(body: &[u8], all_finite: fn(&T) -> bool) {
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        let again = serde_json::to_vec(&value).expect("a parsed request serialises");
        if all_finite(&value) {
            serde_json::from_slice::<T>(&again).expect("a serialised request parses");
        }
    }
}

fn finite(vector: &Option<Vec<f32>>) -> bool {
    vector.iter().flatten().all(|v| v.is_finite())
}

/// Every vector a search body holds: the query's, the weighted terms' and the examples'.
fn all_vectors_finite(request: &SearchRequest) -> bool {
    let example = |e: &Example| match e {
        Example::Vector(v) => v.iter().all(|x| x.is_finite()),
        Example::Id(_) => true,
    };
    finite(&request.vector)
        && request.terms.iter().all(|t| example(&t.example))
        && request
            .positive
            .iter()
            .chain(&request.negative)
            .all(example)
}

async fn send(app: Router, route: Route, body: &[u8]) -> (StatusCode, Vec<u8>) {
    let mut request = Request::post(route.path())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request");
    // What the serving loop puts on every request: the peer address.
    let peer = SocketAddr::from(([127, 0, 0, 1], 40_000));
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let answer = axum::body::to_bytes(response.into_body(), MAX_BODY * 4)
        .await
        .expect("the answer body");
    (status, answer.to_vec())
}

/// The answer's invariants; returns the error code, or `ok`.
fn check_answer(route: Route, empty: bool, status: StatusCode, answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    if status.is_success() {
        let parsed = match route {
            Route::Search | Route::Similar => serde_json::from_slice::<Results>(answer).map(drop),
            Route::Feedback => serde_json::from_slice::<FeedbackResponse>(answer).map(drop),
        };
        parsed
            .unwrap_or_else(|e| panic!("{status} with a body that is not the answer: {e}: {text}"));
        return "ok".into();
    }
    let error: ErrorBody = serde_json::from_slice(answer)
        .unwrap_or_else(|e| panic!("{status} with a body that is not a JSON error: {e}: {text}"));
    let (code, message) = (error.error.code, error.error.message);
    let expected_5xx = empty && status == StatusCode::SERVICE_UNAVAILABLE && code == "not_ingested";
    assert!(
        !status.is_server_error() || expected_5xx,
        "{status} from a {} server: {text}",
        if empty { "not-ingested" } else { "healthy" }
    );
    assert!(status.is_client_error() || expected_5xx, "{status}: {text}");
    // What serde said, past axum's prefix: `invalid type: string, expected usize at line …`.
    // serde's words after the last quote (the input it quotes and the field path are the
    // client's): `, expected struct SearchRequest at line …`, or its last clause.
    let tail = message
        .rsplit_once(['"', '`'])
        .map_or_else(|| message.rsplit(": ").next().unwrap_or(""), |(_, t)| t);
    format!("{code} {}", shape(tail))
}
