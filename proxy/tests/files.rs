//! Serving originals whose path comes from the store's payload: only files inside the image roots
//! (resolved: no `..` or symlink out), only images, every refusal the same 404 as a missing
//! file; a normal original streamed byte for byte, large ones included.

use std::path::Path;
use std::sync::Arc;

use proxy::store::SharedStore;
use serde_json::json;
use testkit::points::{axis, edge_store, point};
use testkit::{
    Server, ServerOptions, TestServer, app_state, get, public_stub, tiny_model, tiny_spec,
    workspace,
};

/// A PNG signature and then `len` bytes: enough to be known as an image by its first bytes.
fn png_like(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut x = 0x9e37_79b9_u32;
    bytes.extend((0..len).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    bytes
}

/// The server over points whose payload `file`s are `files` (id, path), with the storage
/// directory `data` and the extra image roots `roots`.
fn serve(data: &Path, files: &[(&str, String)], roots: Vec<std::path::PathBuf>) -> TestServer {
    let loaded = tiny_model();
    let spec = tiny_spec(&loaded);
    let points = files
        .iter()
        .enumerate()
        .map(|(i, (id, file))| point(id, axis(i, spec.dim), json!({ "file": file })))
        .collect();
    let store = edge_store(data, &loaded, points);
    let store: SharedStore = Arc::new(store);
    let state = app_state(store, &loaded, data, None, None).with_image_roots(roots);
    TestServer::start(state, &public_stub(data), vec![])
}

#[test]
fn originals_outside_the_roots_are_the_same_404_as_missing_ones() {
    let data = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("secret.png");
    std::fs::write(&secret, png_like(100)).expect("an image outside the roots");
    std::fs::create_dir_all(data.path().join("photos")).expect("mkdir");
    std::fs::write(data.path().join("photos/notes.txt"), "not an image").expect("write");
    // Inside the root, and known to the image crate by a signature any binary file may start
    // with: not a format ingest indexes.
    std::fs::write(
        data.path().join("photos/shard.ico"),
        b"\0\0\x01\0 a store's binary file",
    )
    .expect("write");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&secret, data.path().join("photos/link.png")).expect("ln");
        std::os::unix::fs::symlink("/etc", data.path().join("photos/etc")).expect("ln");
    }
    let root = data.path().display().to_string();
    let files = [
        ("passwd", "/etc/passwd".to_string()),
        ("relative", "../../x".to_string()),
        ("relative-inside", "photos/notes.txt".to_string()),
        ("outside", secret.display().to_string()),
        (
            "dotdot",
            format!("{root}/photos/../../{}", outside_name(&secret)),
        ),
        ("symlink", format!("{root}/photos/link.png")),
        ("symlinked-dir", format!("{root}/photos/etc/passwd")),
        ("not-an-image", format!("{root}/photos/notes.txt")),
        ("a-directory", format!("{root}/photos")),
        ("ico-signature", format!("{root}/photos/shard.ico")),
        ("the-label-log", format!("{root}/labels.jsonl")),
        ("missing", format!("{root}/photos/gone.png")),
    ];
    let server = serve(data.path(), &files, vec![]);
    for (id, _) in &files {
        let a = get(&server.url(&format!("/images/{id}")), &[]);
        assert_eq!(
            (a.status, a.error_code().as_str()),
            (404, "image_missing"),
            "{id}: {}",
            a.text()
        );
        // Refused or absent, the answer is the same: it tells nothing about the host's files.
        assert_eq!(
            a.json()["error"]["message"],
            format!("the original of `{id}` is not available"),
            "{id}"
        );
        assert!(!a.body.windows(4).any(|w| w == b"root"), "{id}");
    }
}

/// `../<outside dir name>/secret.png` as seen from the data directory's parent.
fn outside_name(secret: &Path) -> String {
    let dir = secret.parent().and_then(Path::file_name).expect("dir name");
    format!("{}/secret.png", dir.to_string_lossy())
}

#[test]
fn a_large_original_is_streamed_whole_and_roots_can_be_added() {
    let data = tempfile::tempdir().expect("tempdir");
    let photos = tempfile::tempdir().expect("tempdir");
    let big = png_like(20 << 20);
    let big_path = data.path().join("big.png");
    std::fs::write(&big_path, &big).expect("20 MB");
    let jpeg = [b"\xff\xd8\xff\xe0".as_slice(), &[7u8; 1000]].concat();
    let elsewhere = photos.path().join("photo.jpg");
    std::fs::write(&elsewhere, &jpeg).expect("write");
    let files = [
        ("big", big_path.display().to_string()),
        ("elsewhere", elsewhere.display().to_string()),
    ];
    let server = serve(data.path(), &files, vec![photos.path().to_path_buf()]);

    let a = get(&server.url("/images/big"), &[]);
    assert_eq!((a.status, a.content_type.as_str()), (200, "image/png"));
    assert_eq!(
        a.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    assert_eq!(a.header("cache-control"), Some("public, max-age=3600"));
    assert!(a.body == big, "the body is the file, byte for byte");
    // HEAD: the length, no body.
    let head = ureq::head(&server.url("/images/big")).call().expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut head.into_reader(), &mut body).expect("read");
    assert!(body.is_empty());
    // Ranges come with streaming.
    let a = get(&server.url("/images/big"), &[("Range", "bytes=0-7")]);
    assert_eq!(a.status, 206);
    assert_eq!(a.body, b"\x89PNG\r\n\x1a\n");

    let a = get(&server.url("/images/elsewhere"), &[]);
    assert_eq!((a.status, a.content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(a.body, jpeg);
}

#[test]
fn ingested_local_originals_are_served_without_configuration() {
    // Ingest records the TSV's folder (data/) as an image root in the storage directory.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::with(
        public_stub(dir.path()),
        &ServerOptions {
            demo_data: true,
            ..ServerOptions::default()
        },
    );
    let answer = get(&server.url("/images/brick"), &[]);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let original = std::fs::read(workspace().join("data/images/brick.png")).expect("brick.png");
    assert_eq!(answer.body, original);
    assert_eq!(answer.header("content-type"), Some("image/png"));
}
