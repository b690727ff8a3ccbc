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
use proxy::http::{ServeConfig, router};

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
    // Dropping the runtime stops the server.
    _runtime: tokio::runtime::Runtime,
}

impl Server {
    pub fn start(config: &ServeConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let app = router(config);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding a local port");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move { axum::serve(listener, app).await.expect("serving the app") });
        Server {
            addr,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
