//! What the proxy's integration tests share: paths, the tiny fixture model, an in-process server
//! on a free port, and a small HTTP client.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clip::load::Loaded;
use proxy::http::{AppState, ServeConfig, StateParts, router};
use proxy::layout::DataDir;
use proxy::model::{NativeTextEncoder, TextEncoder, collection_spec, load_model};
use proxy::store::{CollectionSpec, SharedStore};
use serde_json::Value;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("proxy/ lies inside the workspace")
        .to_path_buf()
}

/// The tiny fixture CLIP (text 24, vision 32, 16-d vectors).
pub fn tiny_model_dir() -> PathBuf {
    workspace().join("clip/tests/fixtures/tiny-clip")
}

pub fn tiny_model() -> Loaded {
    load_model(
        &tiny_model_dir().display().to_string(),
        &clip::Device::Cpu,
        &mut clip::load::NoProgress,
    )
    .expect("the tiny fixture model loads")
}

pub fn tiny_spec(loaded: &Loaded) -> CollectionSpec {
    collection_spec("images", loaded)
}

/// A static site with just an index page.
pub fn public_stub(dir: &Path) -> PathBuf {
    let public = dir.join("public");
    std::fs::create_dir_all(&public).expect("public dir");
    std::fs::write(
        public.join("index.html"),
        "<!doctype html><title>text2img</title>",
    )
    .expect("index.html");
    public
}

/// The app on `127.0.0.1:<free port>`, running until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    _runtime: tokio::runtime::Runtime,
}

impl TestServer {
    pub fn start(state: AppState, public: &Path, cors: Vec<String>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state = Arc::new(state);
        let app = router(
            &ServeConfig {
                public_dir: public.to_path_buf(),
                cors_origins: cors,
            },
            state.clone(),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a local port");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move { axum::serve(listener, app).await.expect("serving") });
        Self {
            addr,
            state,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// An app state over `store` with the tiny model's text encoder and labels in `dir`.
pub fn state(store: SharedStore, loaded: &Loaded, dir: &Path, admin: Option<&str>) -> AppState {
    let encoder: Arc<dyn TextEncoder> = Arc::new(NativeTextEncoder::new(loaded));
    AppState::open(StateParts {
        store,
        spec: tiny_spec(loaded),
        encoder: Some(encoder),
        data: DataDir::new(dir),
        admin_token: admin.map(proxy::config::Secret::new),
        bundle: None,
    })
    .expect("app state")
}

/// An HTTP answer: status, headers we look at, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error code of a JSON error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(std::time::Duration::from_secs(60))
        .build()
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let content_type = response.content_type().to_string();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| response.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("reading the body");
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    for (k, v) in headers {
        request = request.set(k, v);
    }
    answer(request.call())
}

pub fn post(url: &str, body: &str) -> Answer {
    answer(
        agent()
            .post(url)
            .set("Content-Type", "application/json")
            .send_string(body),
    )
}

pub fn post_json(url: &str, body: &Value) -> Answer {
    post(url, &body.to_string())
}
