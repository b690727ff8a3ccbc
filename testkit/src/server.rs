//! How a test gets a running proxy: the proxy's router served in-process on `127.0.0.1:<free
//! port>` until dropped, through the proxy's own serving loop (`proxy::http::serve`, with its
//! connection limits). Rate limits are off unless a test asks for them ([`TestServer::start_with`]). [`TestServer`] serves a state the test built (the proxy's API tests);
//! [`Server`] builds everything itself — an embedded store in its own temporary directory,
//! optionally the demo collection ingested, the browser model bundle — and records every request
//! and can fail chosen ones once (the end-to-end and browser tests).
//!
//! [`app_state`] is the one place a test builds the server's state.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::response::IntoResponse;
use clip::load::Loaded;
use proxy::bundle::ModelBundle;
use proxy::config::Secret;
use proxy::http::{AppState, Limits, RateLimits, ServeConfig, StateParts, TrustedProxies, router};
use proxy::ingest::{self, Embedder, IngestOptions, IngestPaths, Quiet};
use proxy::layout::DataDir;
use proxy::model::{NativeTextEncoder, TextEncoder};
use proxy::store::edge::EdgeStore;
use proxy::store::{SharedStore, VectorStore};

use crate::model::{load_model_dir, tiny_spec};
use crate::paths::{tiny_model_dir, workspace};

/// A static site with just an index page, in `dir/public`.
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

/// The server's state over `store`: the collection spec and native text encoder of `loaded`, the
/// label log `dir/labels.jsonl`, thumbnails in `dir/thumbs`, the labels export behind `admin`
/// (`TEXT2IMG_ADMIN_TOKEN`), and the browser model `bundle` if any.
pub fn app_state(
    store: SharedStore,
    loaded: &Loaded,
    dir: &Path,
    admin: Option<&str>,
    bundle: Option<ModelBundle>,
) -> AppState {
    let encoder: Arc<dyn TextEncoder> = Arc::new(NativeTextEncoder::new(loaded));
    AppState::open(StateParts {
        store,
        spec: tiny_spec(loaded),
        encoder: Some(encoder),
        data: DataDir::new(dir),
        admin_token: admin.map(Secret::new),
        bundle,
    })
    .expect("app state")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The app on `127.0.0.1:<free port>`, running until dropped.
#[derive(Debug)]
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub state: Arc<AppState>,
    // Dropping the runtime stops the server.
    _runtime: tokio::runtime::Runtime,
}

/// A configuration serving `public` with the CORS allowlist `cors`, no rate limits and no
/// trusted proxies.
pub fn serve_config(public: &Path, cors: Vec<String>) -> ServeConfig {
    ServeConfig {
        public_dir: public.to_path_buf(),
        cors_origins: cors,
        rate_limits: RateLimits::off(),
        trusted_proxies: TrustedProxies::default(),
    }
}

/// A plain app (an image host for ingest to fetch from, say) on `127.0.0.1:<free port>`, served
/// on `runtime` until it is dropped; its address.
pub fn serve_app(runtime: &tokio::runtime::Runtime, app: Router) -> std::net::SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("binding a local port");
    let addr = listener.local_addr().expect("local address");
    runtime.spawn(async move { axum::serve(listener, app).await.expect("serving the app") });
    addr
}

impl TestServer {
    /// Serves `state` with the static site `public` and the CORS allowlist `cors`, under the
    /// default connection limits and no rate limits.
    pub fn start(state: AppState, public: &Path, cors: Vec<String>) -> Self {
        Self::start_with(state, serve_config(public, cors), Limits::default())
    }

    /// Serves `state` as `config` says (rate limits, trusted proxies), under `limits`.
    pub fn start_with(state: AppState, config: ServeConfig, limits: Limits) -> Self {
        Self::serve(runtime(), state, &config, limits, |app| app)
    }

    /// Serves on `runtime`, the router passed through `wrap` (extra layers) first.
    fn serve(
        runtime: tokio::runtime::Runtime,
        state: AppState,
        config: &ServeConfig,
        limits: Limits,
        wrap: impl FnOnce(Router) -> Router,
    ) -> Self {
        let state = Arc::new(state);
        let app = wrap(router(config, state.clone()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a local port");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move {
            proxy::http::serve(listener, app, &limits, std::future::pending())
                .await
                .expect("serving the app")
        });
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

/// What a [`Server`] serves.
#[derive(Debug, Default)]
pub struct ServerOptions<'a> {
    /// The browser model bundle (its `manifest.json`); `None` or a directory without one: no
    /// browser model.
    pub model_dir: Option<&'a Path>,
    /// Ingest the demo collection (`data/images.tsv`, 24 photos) with the native model first.
    pub demo_data: bool,
    /// `TEXT2IMG_ADMIN_TOKEN` for the labels export.
    pub admin_token: Option<&'a str>,
    /// Paths whose first request is answered with a 500 (a server hiccup mid-download).
    pub fail_once: &'a [&'a str],
    /// The native model (server-side text search, ingest); `None`: the tiny fixture CLIP.
    pub native_model: Option<&'a Path>,
    /// `TEXT2IMG_CORS_ORIGINS`.
    pub cors_origins: &'a [String],
    /// Drop every request's `Range` header, like a host that always sends whole files.
    pub ignore_range: bool,
}

/// The proxy's HTTP app over its own embedded store, on `127.0.0.1:<free port>` until dropped. It
/// records the path of every request it answers.
#[derive(Debug)]
pub struct Server {
    // Fields drop in order: the server (and its runtime) before the directory it uses.
    server: TestServer,
    requests: Arc<Mutex<Vec<String>>>,
    _state_dir: tempfile::TempDir,
}

impl Server {
    /// Serve `public_dir`, and the browser model bundle in `model_dir` when it has a manifest,
    /// over an empty embedded store and the tiny fixture model.
    pub fn start(public_dir: PathBuf, model_dir: Option<&Path>) -> Self {
        Self::with(
            public_dir,
            &ServerOptions {
                model_dir,
                ..ServerOptions::default()
            },
        )
    }

    /// Serve `public_dir` as `options` say.
    pub fn with(public_dir: PathBuf, options: &ServerOptions<'_>) -> Self {
        let runtime = runtime();
        let state_dir = tempfile::tempdir().expect("a state directory");
        let loaded = load_model_dir(
            &options
                .native_model
                .map_or_else(tiny_model_dir, Path::to_path_buf),
        );
        let store = Arc::new(EdgeStore::new(state_dir.path().join("qdrant")));
        if options.demo_data {
            runtime
                .block_on(store.ensure_collection(&tiny_spec(&loaded)))
                .expect("the demo collection");
            let device = clip::Device::Cpu;
            let data = DataDir::new(state_dir.path());
            let paths = IngestPaths::new(&workspace().join("data/images.tsv"), &data);
            let report = ingest::run(
                &paths,
                &IngestOptions::default(),
                &Embedder::new(&loaded.model, &device),
                &*store,
                runtime.handle(),
                &Quiet,
            )
            .expect("ingesting the demo data");
            assert!(
                report.failures.is_empty() && report.indexed == 24,
                "the demo data did not ingest whole: {report:?}"
            );
        }
        let state = app_state(
            store,
            &loaded,
            state_dir.path(),
            options.admin_token,
            options.model_dir.and_then(|d| ModelBundle::open(d).ok()),
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fail_once = Arc::new(Mutex::new(
            options
                .fail_once
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        ));
        let seen = requests.clone();
        let ignore_range = options.ignore_range;
        let record = move |mut request: axum::extract::Request, next: axum::middleware::Next| {
            if ignore_range {
                request.headers_mut().remove(axum::http::header::RANGE);
            }
            let path = request.uri().path().to_string();
            seen.lock().expect("request log").push(path.clone());
            let fail = {
                let mut failing = fail_once.lock().expect("failures");
                let hit = failing.iter().position(|p| *p == path);
                hit.map(|i| failing.remove(i)).is_some()
            };
            async move {
                if fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                } else {
                    next.run(request).await
                }
            }
        };
        let server = TestServer::serve(
            runtime,
            state,
            &serve_config(&public_dir, options.cors_origins.to_vec()),
            Limits::default(),
            |app| app.layer(axum::middleware::from_fn(record)),
        );
        Server {
            server,
            requests,
            _state_dir: state_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The served state: its store, storage directory and encoder (to write reports into).
    pub fn state(&self) -> &Arc<AppState> {
        &self.server.state
    }

    /// The server's storage directory (its label and review logs), for a test to read as
    /// `proxy eval` does.
    pub fn data_dir(&self) -> DataDir {
        DataDir::new(self._state_dir.path())
    }

    /// How many requests for exactly `path` the server has answered.
    pub fn requests_for(&self, path: &str) -> usize {
        self.requests
            .lock()
            .expect("request log")
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}
