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

use proxy::http::{AppState, ModelBundle, ServeConfig, TextEncoder, router};
use proxy::labels::LabelLog;
use proxy::model::{NativeTextEncoder, collection_spec, load_model};
use proxy::store::edge::EdgeStore;

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

/// The proxy's HTTP app on `127.0.0.1:<free port>`, running until dropped.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    // Dropping the runtime stops the server (fields drop in order: the runtime first).
    _runtime: tokio::runtime::Runtime,
    _state_dir: tempfile::TempDir,
}

impl Server {
    /// Serve `public_dir`, and the browser model bundle in `model_dir` when it has a manifest,
    /// over an empty embedded store and the tiny fixture model.
    pub fn start(public_dir: PathBuf, model_dir: Option<&Path>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state_dir = tempfile::tempdir().expect("a state directory");
        let loaded = load_model(
            &workspace()
                .join("clip/tests/fixtures/tiny-clip")
                .display()
                .to_string(),
            &clip::Device::Cpu,
            &mut NoProgress,
        )
        .expect("the tiny fixture model");
        let encoder: Arc<dyn TextEncoder> = Arc::new(NativeTextEncoder::new(&loaded));
        let (labels, _) = LabelLog::open(state_dir.path().join("labels.jsonl")).expect("labels");
        let state = AppState::new(
            Arc::new(EdgeStore::new(state_dir.path().join("qdrant"))),
            collection_spec("images", &loaded),
            Some(encoder),
            Arc::new(labels),
            state_dir.path().join("thumbs"),
            None,
            model_dir.and_then(|d| ModelBundle::open(d).ok()),
        );
        let app = router(
            &ServeConfig {
                public_dir,
                cors_origins: Vec::new(),
            },
            Arc::new(state),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a local port");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move { axum::serve(listener, app).await.expect("serving the app") });
        Server {
            addr,
            _state_dir: state_dir,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
