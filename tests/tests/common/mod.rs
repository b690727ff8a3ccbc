//! What the end-to-end tests share: the workspace's paths, the tiny fixture model published as a
//! browser bundle, and the proxy's router served in-process on a free local port.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

pub mod browser;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clip::export::Variant;
use clip::load::{ModelFiles, ModelSource, NoProgress, resolve, write_browser_bundle};
use std::sync::Arc;

use axum::response::IntoResponse;
use proxy::bundle::ModelBundle;
use proxy::config::Secret;
use proxy::http::{AppState, ServeConfig, StateParts, router};
use proxy::ingest::{self, Embedder, IngestOptions, IngestPaths, Quiet};
use proxy::layout::DataDir;
use proxy::model::{NativeTextEncoder, TextEncoder, collection_spec, load_model};
use proxy::store::VectorStore;
use proxy::store::edge::EdgeStore;
use std::sync::Mutex;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lies inside the workspace")
        .to_path_buf()
}

/// Where test screenshots go (git-ignored).
pub fn artifacts() -> PathBuf {
    let dir = workspace().join("tests/artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// The trunk build of the frontend. The browser tests test that build, so it must exist.
pub fn public_dir() -> PathBuf {
    let public = workspace().join("public");
    assert!(
        public.join("index.html").is_file(),
        "{} has no index.html: build the frontend first with `cd frontend && trunk build --release --offline`",
        public.display()
    );
    public
}

/// The tiny fixture CLIP's files (a local model directory).
pub fn tiny_model_files() -> ModelFiles {
    let dir = workspace().join("clip/tests/fixtures/tiny-clip");
    resolve(&ModelSource::Dir(dir), &mut NoProgress).expect("the tiny fixture model")
}

/// Writes the browser bundle of the tiny fixture CLIP (every variant) into `out`.
pub fn write_tiny_bundle(out: &Path) {
    write_browser_bundle(&tiny_model_files(), &Variant::ALL, out)
        .unwrap_or_else(|e| panic!("writing the tiny model bundle: {e}"));
}

/// What a test server serves.
#[derive(Debug, Default)]
pub struct ServerOptions<'a> {
    /// The browser model bundle (its `manifest.json`); `None` or a directory without one: no
    /// browser model.
    pub model_dir: Option<&'a Path>,
    /// Ingest the demo collection (`data/images.tsv`, 24 photos) with the tiny model first.
    pub demo_data: bool,
    /// `TEXT2IMG_ADMIN_TOKEN` for the labels export.
    pub admin_token: Option<&'a str>,
    /// Paths whose first request is answered with a 500 (a server hiccup mid-download).
    pub fail_once: &'a [&'a str],
    /// The native model (server-side text search, ingest); `None`: the tiny fixture CLIP.
    pub native_model: Option<&'a Path>,
    /// `TEXT2IMG_CORS_ORIGINS`.
    pub cors_origins: &'a [String],
}

/// The proxy's HTTP app on `127.0.0.1:<free port>`, running until dropped. It records the path of
/// every request it answers.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    // Dropping the runtime stops the server (fields drop in order: the runtime first).
    _runtime: tokio::runtime::Runtime,
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

    pub fn with(public_dir: PathBuf, options: &ServerOptions<'_>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state_dir = tempfile::tempdir().expect("a state directory");
        let model = options
            .native_model
            .map(Path::to_path_buf)
            .unwrap_or_else(|| workspace().join("clip/tests/fixtures/tiny-clip"));
        let loaded = load_model(
            &model.display().to_string(),
            &clip::Device::Cpu,
            &mut NoProgress,
        )
        .unwrap_or_else(|e| panic!("the model in {}: {e}", model.display()));
        let spec = collection_spec("images", &loaded);
        let store = Arc::new(EdgeStore::new(state_dir.path().join("qdrant")));
        let data = DataDir::new(state_dir.path());
        if options.demo_data {
            runtime
                .block_on(store.ensure_collection(&spec))
                .expect("the demo collection");
            let device = clip::Device::Cpu;
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
        let encoder: Arc<dyn TextEncoder> = Arc::new(NativeTextEncoder::new(&loaded));
        let state = AppState::open(StateParts {
            store,
            spec,
            encoder: Some(encoder),
            data,
            admin_token: options.admin_token.map(Secret::new),
            bundle: options.model_dir.and_then(|d| ModelBundle::open(d).ok()),
        })
        .expect("app state");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let fail_once = Arc::new(Mutex::new(
            options
                .fail_once
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        ));
        let seen = requests.clone();
        let app = router(
            &ServeConfig {
                public_dir,
                cors_origins: options.cors_origins.to_vec(),
            },
            Arc::new(state),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
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
            },
        ));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a local port");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move { axum::serve(listener, app).await.expect("serving the app") });
        Server {
            addr,
            requests,
            _state_dir: state_dir,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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
