//! Where things are: the workspace root, the tiny fixture model, the trunk build of the site, and
//! the folder test artifacts (screenshots) go to. Every path is absolute, found from this crate's
//! place in the workspace, so tests do not depend on the directory they run in.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ lies inside the workspace")
        .to_path_buf()
}

/// The tiny fixture CLIP (text 24, vision 32, 16-d vectors): a local model directory.
pub fn tiny_model_dir() -> PathBuf {
    workspace().join("clip/tests/fixtures/tiny-clip")
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

/// Where test screenshots go (git-ignored), created when missing.
pub fn artifacts() -> PathBuf {
    let dir = workspace().join("tests/artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
