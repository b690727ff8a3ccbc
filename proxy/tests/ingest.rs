//! Ingest on the tiny fixture model: every kind of bad input reported with its row while every
//! good row is indexed; re-runs skip, update and prune; URLs come from a local test server.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use proxy::ingest::fetch::FetchConfig;
use proxy::ingest::policy::AddressPolicy;
use proxy::ingest::{Embedder, IngestOptions, IngestPaths, Quiet, Report, run};
use proxy::layout::DataDir;
use proxy::store::edge::EdgeStore;
use proxy::store::{
    CollectionSpec, Hit, Payload, Point, Record, Result as StoreResult, SearchQuery, StoreError,
    VectorStore, all_records, point_id,
};
use testkit::{tiny_model, tiny_spec};
use uuid::Uuid;

fn png(seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(seed),
            (y as u8).wrapping_mul(3),
            seed,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 4) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    out.into_inner()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header announces `width`×`height` pixels of `bit_depth` bits and `color_type`
/// (2 RGB, 6 RGBA) in a few dozen bytes, with no pixel data behind it.
fn png_header(width: u32, height: u32, bit_depth: u8, color_type: u8) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        c.extend_from_slice(&body);
        c.extend_from_slice(&crc32(&body).to_be_bytes());
        c
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, color_type, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// A PNG whose header announces 20000×20000 pixels (1.2 GB decoded) in a few dozen bytes.
fn png_bomb() -> Vec<u8> {
    png_header(20000, 20000, 8, 2)
}

/// The local test server: good and bad images over HTTP.
struct Images {
    base: String,
    flaky_hits: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

fn image_server() -> Images {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let flaky_hits = Arc::new(AtomicUsize::new(0));
    let hits = flaky_hits.clone();
    let jpeg_bytes = jpeg();
    let half = jpeg_bytes[..jpeg_bytes.len() / 2].to_vec();
    let app = Router::new()
        .route(
            "/good.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], png(7)) }),
        )
        .route(
            "/good.jpg",
            get(move || {
                let b = jpeg_bytes.clone();
                async move { ([(header::CONTENT_TYPE, "image/jpeg")], b) }
            }),
        )
        .route(
            "/truncated.jpg",
            get(move || {
                let b = half.clone();
                async move { ([(header::CONTENT_TYPE, "image/jpeg")], b) }
            }),
        )
        .route(
            "/empty.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], Vec::<u8>::new()) }),
        )
        // A page served where an image was expected, honestly labelled…
        .route(
            "/login.jpg",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<!doctype html><p>log in",
                )
            }),
        )
        // …and labelled as an image.
        .route(
            "/lying.jpg",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "image/jpeg")],
                    "<!DOCTYPE html><html>oops</html>",
                )
            }),
        )
        // An image served without a Content-Type, and one with a generic type: known by its bytes.
        .route(
            "/untyped.png",
            get(|| async {
                let mut response = png(12).into_response();
                response.headers_mut().remove(header::CONTENT_TYPE);
                response
            }),
        )
        .route(
            "/generic.png",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    png(13),
                )
            }),
        )
        // Not an image, with a secret in its body that must not reach the failures file.
        .route(
            "/secret.bin",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    "token=hunter2",
                )
            }),
        )
        .route(
            "/bomb.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], png_bomb()) }),
        )
        .route(
            "/slow.png",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                ([(header::CONTENT_TYPE, "image/png")], png(9))
            }),
        )
        // Fails once with a 503, then works: a retry saves it.
        .route(
            "/flaky.png",
            get(move || {
                let n = hits.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
                    } else {
                        ([(header::CONTENT_TYPE, "image/png")], png(11)).into_response()
                    }
                }
            }),
        );
    let addr = testkit::server::serve_app(&runtime, app);
    Images {
        base: format!("http://{addr}"),
        flaky_hits,
        _runtime: runtime,
    }
}

fn options() -> IngestOptions {
    IngestOptions {
        batch_size: 4,
        fetch_workers: 4,
        decode_workers: 2,
        prune: false,
        shard: None,
        full_decode: false,
        fetch: FetchConfig {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            retries: 1,
            backoff: Duration::from_millis(20),
            max_bytes: 1 << 20,
            // The test servers are on loopback.
            addresses: AddressPolicy {
                allow_private: true,
                ..AddressPolicy::default()
            },
        },
    }
}

struct Run {
    store: EdgeStore,
    runtime: tokio::runtime::Runtime,
    loaded: clip::load::Loaded,
    paths: IngestPaths,
}

impl Run {
    fn new(root: &Path, tsv: &Path) -> Self {
        let loaded = tiny_model();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let store = EdgeStore::new(root.join("qdrant"));
        runtime
            .block_on(store.ensure_collection(&tiny_spec(&loaded)))
            .expect("collection");
        Self {
            store,
            runtime,
            loaded,
            paths: IngestPaths::new(tsv, &DataDir::new(root)),
        }
    }

    fn ingest(&self, options: &IngestOptions) -> Report {
        let device = clip::Device::Cpu;
        let embedder = Embedder::new(&self.loaded.model, &device);
        run(
            &self.paths,
            options,
            &embedder,
            &self.store,
            self.runtime.handle(),
            &Quiet,
        )
        .expect("ingest runs")
    }

    fn payloads(&self) -> BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
        self.runtime
            .block_on(all_records(&self.store))
            .expect("scroll")
            .into_iter()
            .map(|r| {
                (
                    r.payload["id"].as_str().unwrap_or("?").to_string(),
                    r.payload,
                )
            })
            .collect()
    }
}

#[test]
fn bad_inputs_are_reported_by_row_and_good_rows_indexed() {
    let server = image_server();
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir_all(data.join("images")).expect("data dir");
    std::fs::write(data.join("images/local.png"), png(3)).expect("write");
    std::fs::write(data.join("images/zero.png"), b"").expect("write");
    let j = jpeg();
    std::fs::write(data.join("images/cut.jpg"), &j[..j.len() / 2]).expect("write");
    std::fs::write(root.path().join("outside.png"), png(5)).expect("write");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let b = &server.base;
    // (id, url, caption, expected failure or None)
    let rows: Vec<(&str, String, &str, Option<&str>)> = vec![
        ("local", "images/local.png".into(), "a local file", None),
        ("remote-png", format!("{b}/good.png"), "served png", None),
        ("remote-jpg", format!("{b}/good.jpg"), "served jpeg", None),
        ("flaky", format!("{b}/flaky.png"), "a 503 then fine", None),
        (
            "untyped",
            format!("{b}/untyped.png"),
            "no content type",
            None,
        ),
        ("generic", format!("{b}/generic.png"), "octet-stream", None),
        (
            "secret",
            format!("{b}/secret.bin"),
            "",
            Some("not an image: unknown format (13 bytes)"),
        ),
        (
            "truncated-remote",
            format!("{b}/truncated.jpg"),
            "",
            Some("truncated JPEG"),
        ),
        (
            "truncated-local",
            "images/cut.jpg".into(),
            "",
            Some("truncated JPEG"),
        ),
        (
            "zero-byte",
            "images/zero.png".into(),
            "",
            Some("empty (0 bytes)"),
        ),
        (
            "zero-remote",
            format!("{b}/empty.png"),
            "",
            Some("empty (0 bytes)"),
        ),
        (
            "html",
            format!("{b}/login.jpg"),
            "",
            Some("served `text/html`, not an image"),
        ),
        (
            "html-as-jpeg",
            format!("{b}/lying.jpg"),
            "",
            Some("not an image: the content is HTML"),
        ),
        (
            "bomb",
            format!("{b}/bomb.png"),
            "",
            Some("image is 20000x20000 = 400000000 pixels, more than the limit"),
        ),
        (
            "unreachable",
            format!("http://127.0.0.1:{closed}/x.png"),
            "",
            Some("cannot connect to"),
        ),
        (
            "slow",
            format!("{b}/slow.png"),
            "",
            Some("timed out after 1s"),
        ),
        (
            "not-found",
            format!("{b}/nope.png"),
            "",
            Some("HTTP 404 from"),
        ),
        (
            "missing",
            "images/missing.png".into(),
            "",
            Some("file not found"),
        ),
        (
            "escape",
            "../outside.png".into(),
            "",
            Some("escapes the data folder"),
        ),
        (
            "local",
            "images/local.png".into(),
            "",
            Some("duplicate id `local` (first on line 2)"),
        ),
    ];
    let mut tsv = String::from("id\turl\tcaption\tlicense\n");
    for (id, url, caption, _) in &rows {
        tsv.push_str(&format!("{id}\t{url}\t{caption}\tCC0-1.0\n"));
    }
    tsv.push_str("malformed row without tabs\n");
    let tsv_path = data.join("images.tsv");
    std::fs::write(&tsv_path, &tsv).expect("tsv");

    let run = Run::new(root.path(), &tsv_path);
    let report = run.ingest(&options());

    // Every bad row, by line, with its reason.
    let mut expected: Vec<(usize, &str)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, _, why))| why.map(|w| (i + 2, w)))
        .collect();
    expected.push((rows.len() + 2, "1 tab-separated fields, the header has 4"));
    assert_failures(&report, &expected);
    // Every good row indexed, with its payload and thumbnail.
    assert_eq!(report.indexed, 6, "{report:#?}");
    assert_eq!(report.points, 6);
    assert!(
        server.flaky_hits.load(Ordering::SeqCst) >= 2,
        "the flaky URL was retried"
    );
    let payloads = run.payloads();
    assert_eq!(
        payloads.keys().collect::<Vec<_>>(),
        [
            "flaky",
            "generic",
            "local",
            "remote-jpg",
            "remote-png",
            "untyped"
        ]
    );
    assert_eq!(payloads["local"]["caption"], "a local file");
    assert_eq!(payloads["local"]["license"], "CC0-1.0");
    assert_eq!(
        (
            payloads["local"]["width"].as_u64(),
            payloads["local"]["height"].as_u64()
        ),
        (Some(48), Some(40))
    );
    for id in payloads.keys() {
        let thumb = proxy::ingest::thumb_path(&run.paths.thumbs, point_id(id));
        let img = image::open(&thumb).unwrap_or_else(|e| panic!("{}: {e}", thumb.display()));
        assert!(img.width() <= 256 && img.height() <= 256);
    }
    // The failures TSV: one line per failure, the row's line first.
    let failures_tsv = std::fs::read_to_string(&run.paths.failures).expect("failures tsv");
    let lines: Vec<&str> = failures_tsv.lines().collect();
    assert_eq!(lines[0], "line\tid\turl\treason");
    assert_eq!(lines.len(), expected.len() + 1);
    assert!(
        !failures_tsv.contains("hunter2") && !failures_tsv.contains("oops"),
        "no response body text in the failures file:\n{failures_tsv}"
    );
    assert!(lines[1].starts_with("8\tsecret\t"), "{}", lines[1]);
}

#[test]
fn reruns_skip_update_and_prune() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("dir");
    for i in 0..6u8 {
        std::fs::write(data.join(format!("{i}.png")), png(i + 1)).expect("write");
    }
    let tsv_path = data.join("images.tsv");
    let write_tsv = |rows: &[(u8, &str)]| {
        let mut tsv = String::from("id\turl\tcaption\n");
        for (i, caption) in rows {
            tsv.push_str(&format!("img{i}\t{i}.png\t{caption}\n"));
        }
        std::fs::write(&tsv_path, tsv).expect("tsv");
    };
    let run = Run::new(root.path(), &tsv_path);

    // Killed halfway, simulated: the first run sees only half of the rows.
    write_tsv(&[(0, "zero"), (1, "one"), (2, "two")]);
    let first = run.ingest(&options());
    assert_eq!((first.indexed, first.points), (3, 3));
    let vector_before = run
        .runtime
        .block_on(run.store.get(&[point_id("img1")], true))
        .expect("get")[0]
        .vector
        .clone();

    write_tsv(&[
        (0, "zero"),
        (1, "one"),
        (2, "two"),
        (3, "three"),
        (4, "four"),
        (5, "five"),
    ]);
    let second = run.ingest(&options());
    assert_eq!(
        (second.indexed, second.unchanged, second.points),
        (3, 3, 6),
        "{second:#?}"
    );

    // Nothing changed: nothing embedded.
    let third = run.ingest(&options());
    assert_eq!((third.indexed, third.updated, third.unchanged), (0, 0, 6));
    let vector_after = run
        .runtime
        .block_on(run.store.get(&[point_id("img1")], true))
        .expect("get")[0]
        .vector
        .clone();
    assert_eq!(vector_before, vector_after);

    // A caption changed: payload only. An image changed: re-embedded.
    std::fs::write(data.join("5.png"), png(200)).expect("write");
    write_tsv(&[
        (0, "zero"),
        (1, "ONE"),
        (2, "two"),
        (3, "three"),
        (4, "four"),
        (5, "five"),
    ]);
    let fourth = run.ingest(&options());
    assert_eq!(
        (fourth.indexed, fourth.updated, fourth.unchanged),
        (1, 1, 4),
        "{fourth:#?}"
    );
    assert_eq!(run.payloads()["img1"]["caption"], "ONE");

    // Rows left the TSV: kept without --prune, deleted with it (thumbnails too).
    write_tsv(&[(0, "zero"), (1, "ONE"), (2, "two")]);
    let kept = run.ingest(&options());
    assert_eq!((kept.pruned, kept.points), (0, 6));
    let pruned = run.ingest(&IngestOptions {
        prune: true,
        ..options()
    });
    assert_eq!((pruned.pruned, pruned.points, pruned.unchanged), (3, 3, 3));
    assert!(!proxy::ingest::thumb_path(&run.paths.thumbs, point_id("img4")).exists());
    assert!(
        !run.paths.failures.exists(),
        "no failures, no failures file"
    );
}

/// The payload records the original's byte size and format; a point ingested before they were
/// recorded (its payload without them) gets them on the next run, without being re-embedded.
#[test]
fn the_originals_size_and_format_are_recorded_and_filled_in_on_rerun() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("dir");
    let (p, j) = (png(5), jpeg());
    std::fs::write(data.join("a.png"), &p).expect("write");
    std::fs::write(data.join("b.jpg"), &j).expect("write");
    let tsv_path = data.join("images.tsv");
    std::fs::write(&tsv_path, "id\turl\na\ta.png\nb\tb.jpg\n").expect("tsv");
    let run = Run::new(root.path(), &tsv_path);
    assert_eq!(run.ingest(&options()).indexed, 2);
    let payloads = run.payloads();
    assert_eq!(payloads["a"]["image_bytes"], p.len() as u64);
    assert_eq!(payloads["a"]["image_format"], "png");
    assert_eq!(payloads["b"]["image_bytes"], j.len() as u64);
    assert_eq!(payloads["b"]["image_format"], "jpg");

    // An older payload: the fields removed, as an ingest before them wrote it.
    let mut old = payloads["a"].clone();
    old.remove("image_bytes");
    old.remove("image_format");
    run.runtime
        .block_on(run.store.set_payload(point_id("a"), old))
        .expect("set payload");
    let again = run.ingest(&options());
    assert_eq!(
        (again.indexed, again.updated, again.unchanged),
        (0, 1, 1),
        "{again:#?}"
    );
    assert_eq!(run.payloads()["a"]["image_bytes"], p.len() as u64);
}

/// A large JPEG is decoded at a reduced DCT scale by default (Pillow's draft mode) and at full
/// size with `full_decode`: either way the payload keeps the original, upright size, the
/// thumbnail is ≤ 256 px, and the vector is the one the matching `clip` decode path gives.
#[test]
fn large_jpegs_are_decoded_in_draft_mode_unless_full_decode() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("dir");
    // 1000x700 with fine detail: a 1/2-scale decode (min(1000/224, 700/224) = 3 → 1/2) loses
    // some of it, so the two paths give measurably different pixels.
    let img = image::RgbImage::from_fn(1000, 700, |x, y| {
        image::Rgb([((x * 7) ^ (y * 3)) as u8, (x / 4) as u8, (y / 3) as u8])
    });
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
        .encode_image(&img)
        .expect("jpeg");
    std::fs::write(data.join("big.jpg"), &bytes).expect("write");
    let tsv = data.join("images.tsv");
    std::fs::write(&tsv, "id\turl\nbig\tbig.jpg\n").expect("tsv");

    let loaded = tiny_model();
    let processor = clip::ImageProcessor::for_model(loaded.model.vision.config());
    let expected = |image: &image::RgbImage| {
        let pixels = processor.normalize(&processor.resize_crop(image));
        let batch = clip::pixel_batch(&[pixels], 224, &clip::Device::Cpu).expect("batch");
        loaded.model.vision.embed(&batch).expect("embed").remove(0)
    };
    let (draft, full_size) = processor.decode_draft(&bytes, 224).expect("draft");
    assert_eq!((draft.dimensions(), full_size), ((500, 350), (1000, 700)));
    let full = processor.decode(&bytes).expect("full");

    let mut vectors = Vec::new();
    for (name, full_decode, reference) in [("draft", false, &draft), ("full", true, &full)] {
        let run = Run::new(&root.path().join(name), &tsv);
        let report = run.ingest(&IngestOptions {
            full_decode,
            ..options()
        });
        assert_eq!(report.indexed, 1, "{name}: {report:#?}");
        let payload = &run.payloads()["big"];
        assert_eq!(
            (payload["width"].as_u64(), payload["height"].as_u64()),
            (Some(1000), Some(700)),
            "{name}: the original size"
        );
        let thumb = proxy::ingest::thumb_path(&run.paths.thumbs, point_id("big"));
        let thumb = image::open(&thumb).expect("thumbnail");
        assert_eq!((thumb.width(), thumb.height()), (256, 179), "{name}");
        let got = run
            .runtime
            .block_on(run.store.get(&[point_id("big")], true))
            .expect("get")[0]
            .vector
            .clone()
            .expect("vector");
        let want = expected(reference);
        let cos = clip::cosine(&got, &want);
        assert!(cos > 0.99999, "{name}: cosine {cos} to the {name} decode");
        vectors.push(got);
    }
    assert!(
        clip::cosine(&vectors[0], &vectors[1]) < 0.999999,
        "draft and full decodes gave the same vector: was the draft used at all?"
    );
}

/// A store whose writes fail after the first one (a server that went away mid-run).
#[derive(Debug)]
struct FailingStore {
    inner: EdgeStore,
    upserts: AtomicUsize,
}

#[async_trait::async_trait]
impl VectorStore for FailingStore {
    async fn ensure_collection(&self, spec: &CollectionSpec) -> StoreResult<CollectionSpec> {
        self.inner.ensure_collection(spec).await
    }
    async fn open_collection(&self, spec: &CollectionSpec) -> StoreResult<CollectionSpec> {
        self.inner.open_collection(spec).await
    }
    async fn adopt(&self, spec: &CollectionSpec) -> StoreResult<()> {
        self.inner.adopt(spec).await
    }
    async fn layout(&self) -> StoreResult<Option<proxy::store::cluster::Layout>> {
        self.inner.layout().await
    }
    async fn index_field(&self, field: &str) -> StoreResult<()> {
        self.inner.index_field(field).await
    }
    async fn upsert(&self, points: Vec<Point>) -> StoreResult<()> {
        if self.upserts.fetch_add(1, Ordering::SeqCst) >= 1 {
            return Err(StoreError::Unavailable("the server went away".into()));
        }
        self.inner.upsert(points).await
    }
    async fn set_payload(&self, id: Uuid, payload: Payload) -> StoreResult<()> {
        self.inner.set_payload(id, payload).await
    }
    async fn delete(&self, ids: &[Uuid]) -> StoreResult<()> {
        self.inner.delete(ids).await
    }
    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<Hit>> {
        self.inner.search(query).await
    }
    async fn recommend(&self, query: &proxy::store::RecommendQuery) -> StoreResult<Vec<Hit>> {
        self.inner.recommend(query).await
    }
    async fn get(&self, ids: &[Uuid], with_vector: bool) -> StoreResult<Vec<Record>> {
        self.inner.get(ids, with_vector).await
    }
    async fn scroll(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> StoreResult<(Vec<Record>, Option<Uuid>)> {
        self.inner.scroll(after, limit).await
    }
    async fn count(&self) -> StoreResult<usize> {
        self.inner.count().await
    }
    async fn optimize(&self) -> StoreResult<()> {
        self.inner.optimize().await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}

/// A store that fails mid-run ends the run with its error: the fetch and decode workers stop
/// instead of waiting forever on a full channel.
#[test]
fn a_store_failure_mid_run_ends_the_run_with_its_error() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("dir");
    let mut tsv = String::from("id\turl\n");
    for i in 0..40u8 {
        std::fs::write(data.join(format!("{i}.png")), png(i + 1)).expect("write");
        tsv.push_str(&format!("img{i}\t{i}.png\n"));
    }
    let tsv_path = data.join("images.tsv");
    std::fs::write(&tsv_path, tsv).expect("tsv");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let root_path = root.path().to_path_buf();
    // On its own thread: a run that never ends must fail this test, not hang it.
    std::thread::spawn(move || {
        let setup = Run::new(&root_path, &tsv_path);
        let store = FailingStore {
            inner: setup.store,
            upserts: AtomicUsize::new(0),
        };
        let device = clip::Device::Cpu;
        let embedder = Embedder::new(&setup.loaded.model, &device);
        let options = IngestOptions {
            batch_size: 1,
            fetch_workers: 2,
            decode_workers: 1,
            ..options()
        };
        let result = run(
            &setup.paths,
            &options,
            &embedder,
            &store,
            setup.runtime.handle(),
            &Quiet,
        );
        // What the binary does next: exit, which drops the store and its lock.
        drop(store);
        let _ = done_tx.send(result.map(|r| r.indexed).map_err(|e| e.to_string()));
    });
    let result = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("ingest ended within two minutes of the store failing");
    let err = result.expect_err("the run fails with the store's error");
    assert!(err.contains("the server went away"), "{err}");
    // Nothing of the failed run holds the collection: the next run can open it.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let again = EdgeStore::new(root.path().join("qdrant"));
    runtime
        .block_on(again.open_collection(&tiny_spec(&tiny_model())))
        .expect("the collection's lock was released");
    let written = runtime.block_on(again.count()).expect("count");
    assert!(
        written >= 1,
        "the batch written before the failure is kept: {written}"
    );
}

/// A port on `ip` that tells whether anything connected to it: the listener never accepts, so a
/// connection waits in its backlog, where [`Trap::connected`] finds it.
struct Trap {
    listener: std::net::TcpListener,
}

impl Trap {
    fn new(ip: &str) -> Self {
        let listener = std::net::TcpListener::bind((ip, 0)).expect("bind the trap");
        Self { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    fn connected(&self) -> bool {
        self.listener.set_nonblocking(true).expect("nonblocking");
        match self.listener.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("trap: {e}"),
        }
    }
}

/// Ingest `rows` (id, url, expected failure) from a TSV in a fresh data folder holding
/// `files`; checks every failure by line and returns the run.
fn ingest_rows(
    root: &Path,
    files: &[(&str, Vec<u8>)],
    rows: &[(&str, String, Option<&str>)],
    options: &IngestOptions,
) -> (Run, Report) {
    let data = root.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    for (name, bytes) in files {
        std::fs::write(data.join(name), bytes).expect("write");
    }
    let mut tsv = String::from("id\turl\n");
    for (id, url, _) in rows {
        tsv.push_str(&format!("{id}\t{url}\n"));
    }
    let tsv_path = data.join("images.tsv");
    std::fs::write(&tsv_path, tsv).expect("tsv");
    let run = Run::new(root, &tsv_path);
    let report = run.ingest(options);
    let expected: Vec<(usize, &str)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, why))| why.map(|w| (i + 2, w)))
        .collect();
    assert_failures(&report, &expected);
    (run, report)
}

/// By default no loopback, private, link-local or other special address is fetched from, be it
/// written as an IP (IPv4, IPv4-mapped IPv6, the unspecified address) or as a name that
/// resolves to one; the refusal comes before any connection and names the rule.
#[test]
fn special_addresses_are_refused_before_any_connection() {
    let root = tempfile::tempdir().expect("tempdir");
    let (lo, lo2) = (Trap::new("127.0.0.1"), Trap::new("127.0.0.2"));
    let hint = "(use --allow-private-urls to fetch from private networks)";
    let rows = vec![
        ("local", "good.png".to_string(), None),
        (
            "loopback",
            format!("http://127.0.0.2:{}/x.png", lo2.port()),
            Some("refused: 127.0.0.2 is a loopback address"),
        ),
        (
            "mapped",
            format!("http://[::ffff:127.0.0.2]:{}/x.png", lo2.port()),
            Some("refused: ::ffff:127.0.0.2 is a loopback address"),
        ),
        (
            "unspecified",
            format!("http://0.0.0.0:{}/x.png", lo.port()),
            Some("refused: 0.0.0.0 is the unspecified address"),
        ),
        (
            "name",
            format!("http://localhost:{}/x.png", lo.port()),
            Some("refused: localhost resolves to"),
        ),
    ];
    let options = IngestOptions {
        fetch: FetchConfig {
            addresses: AddressPolicy::default(),
            ..options().fetch
        },
        ..options()
    };
    let (_, report) = ingest_rows(root.path(), &[("good.png", png(3))], &rows, &options);
    assert_eq!(report.indexed, 1, "{report:#?}");
    for failure in &report.failures {
        assert!(failure.reason.ends_with(hint), "{}", failure.reason);
        assert!(
            !failure.reason.contains("after"),
            "not retried: {failure:?}"
        );
    }
    assert!(!lo.connected(), "nothing connected to 127.0.0.1");
    assert!(!lo2.connected(), "nothing connected to 127.0.0.2");
}

/// Redirects are followed by ingest itself, each hop checked: a redirect from an allowed server
/// to a refused address is refused without connecting to it; relative locations work; a loop,
/// a sixth redirect and a non-http(s) target are failures with their reason.
#[test]
fn redirects_are_checked_at_every_hop() {
    use axum::extract::Path as UrlPath;
    use axum::http::StatusCode;
    let trap = Trap::new("127.0.0.2");
    let to_trap = format!("http://127.0.0.2:{}/x.png", trap.port());
    let redirect = |status: StatusCode, location: String| {
        (status, [(header::LOCATION, location)]).into_response()
    };
    let app =
        Router::new()
            .route(
                "/good.png",
                get(|| async { ([(header::CONTENT_TYPE, "image/png")], png(21)) }),
            )
            .route(
                "/to-trap",
                get(move || {
                    let location = to_trap.clone();
                    async move { redirect(StatusCode::FOUND, location) }
                }),
            )
            .route(
                "/sub/relative",
                get(move || async move {
                    redirect(StatusCode::MOVED_PERMANENTLY, "../good.png".into())
                }),
            )
            .route(
                "/loop",
                get(
                    move || async move { redirect(StatusCode::TEMPORARY_REDIRECT, "/loop".into()) },
                ),
            )
            .route(
                "/to-file",
                get(
                    move || async move { redirect(StatusCode::FOUND, "file:///etc/passwd".into()) },
                ),
            )
            .route(
                "/hops/{left}",
                get(move |UrlPath(left): UrlPath<u32>| async move {
                    if left == 0 {
                        ([(header::CONTENT_TYPE, "image/png")], png(22)).into_response()
                    } else {
                        redirect(StatusCode::SEE_OTHER, format!("/hops/{}", left - 1))
                    }
                }),
            );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let b = format!("http://{}", listener.local_addr().expect("addr"));
    runtime.spawn(async move { axum::serve(listener, app).await.expect("serve") });

    let root = tempfile::tempdir().expect("tempdir");
    let rows = vec![
        ("relative", format!("{b}/sub/relative"), None),
        ("five-hops", format!("{b}/hops/5"), None),
        (
            "six-hops",
            format!("{b}/hops/6"),
            Some("more than 5 redirects"),
        ),
        ("loop", format!("{b}/loop"), Some("redirect loop")),
        (
            "to-trap",
            format!("{b}/to-trap"),
            Some("refused: 127.0.0.2 is a loopback address"),
        ),
        (
            "to-file",
            format!("{b}/to-file"),
            Some("refused: `file` URLs are not fetched (only http and https)"),
        ),
    ];
    // The test server's address only: every other special address is still refused.
    let options = IngestOptions {
        fetch: FetchConfig {
            addresses: AddressPolicy {
                allowed: vec!["127.0.0.1/32".parse().expect("network")],
                ..AddressPolicy::default()
            },
            ..options().fetch
        },
        ..options()
    };
    let (run, report) = ingest_rows(root.path(), &[], &rows, &options);
    assert_eq!(report.indexed, 2, "{report:#?}");
    assert_eq!(
        run.payloads().keys().collect::<Vec<_>>(),
        ["five-hops", "relative"]
    );
    let to_trap = &report.failures[2].reason;
    assert!(
        to_trap.contains("reached by a redirect to http://127.0.0.2:"),
        "{to_trap}"
    );
    assert!(!trap.connected(), "the refused hop was never connected to");
}

/// The decode budget is checked from the header: a 16-bit RGBA PNG whose decoding would take
/// more than 1 GiB is a failed row (no pixel allocated), the good row beside it is indexed, and a
/// 100,000,000 × 1 PNG — under the budget — is indexed with a 256 × 1 thumbnail, made without
/// filter weights for its whole width.
#[test]
fn the_decode_budget_is_checked_from_the_header() {
    use image::ImageEncoder as _;
    let wide = {
        let img = image::RgbImage::from_pixel(100_000_000, 1, image::Rgb([40, 120, 200]));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Sub,
        )
        .write_image(img.as_raw(), 100_000_000, 1, image::ExtendedColorType::Rgb8)
        .expect("png");
        out
    };
    let root = tempfile::tempdir().expect("tempdir");
    let rows = vec![
        ("good", "good.png".to_string(), None),
        (
            "deep",
            "deep.png".to_string(),
            Some(
                "image is 10000x10000 Rgba16: decoding it takes 1200000000 bytes, \
                 more than the decode budget of 1073741824",
            ),
        ),
        ("wide", "wide.png".to_string(), None),
    ];
    let files = [
        ("good.png", png(4)),
        ("deep.png", png_header(10000, 10000, 16, 6)),
        ("wide.png", wide),
    ];
    let options = IngestOptions {
        decode_workers: 1,
        fetch: FetchConfig {
            max_bytes: 64 << 20,
            ..options().fetch
        },
        ..options()
    };
    let (run, report) = ingest_rows(root.path(), &files, &rows, &options);
    assert_eq!(report.indexed, 2, "{report:#?}");
    let payload = &run.payloads()["wide"];
    assert_eq!(
        (payload["width"].as_u64(), payload["height"].as_u64()),
        (Some(100_000_000), Some(1))
    );
    let thumb = proxy::ingest::thumb_path(&run.paths.thumbs, point_id("wide"));
    let thumb = image::open(&thumb).expect("thumbnail");
    assert_eq!((thumb.width(), thumb.height()), (256, 1));
}

/// The binary with a store that stops answering (a Qdrant URL whose server accepts connections
/// and says nothing): ingest exits with status 2 and the store's error once the store timeout
/// has passed, instead of waiting forever.
#[test]
fn the_binary_exits_with_the_store_error_when_the_store_stops_answering() {
    let root = tempfile::tempdir().expect("tempdir");
    let silent = Trap::new("127.0.0.1");
    std::fs::write(root.path().join("a.png"), png(5)).expect("write");
    std::fs::write(root.path().join("images.tsv"), "id\turl\na\ta.png\n").expect("tsv");
    let env = root.path().join("test.env");
    std::fs::write(
        &env,
        format!(
            "QDRANT_URL=http://127.0.0.1:{}\nQDRANT_TIMEOUT_SECS=2\n",
            silent.port()
        ),
    )
    .expect("env file");
    let mut child = testkit::command(env!("CARGO_BIN_EXE_ingest"))
        .arg("--tsv")
        .arg(root.path().join("images.tsv"))
        .arg("--model")
        .arg(testkit::tiny_model_dir())
        .arg("--env-file")
        .arg(&env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ingest");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("ingest still running a minute after the store stopped answering");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut log)
        .expect("log");
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("error: the vector store is unavailable"),
        "{log}"
    );
    assert!(silent.connected(), "the store was asked");
}

/// The run's failed rows are exactly `expected`: (line, a part of the reason), in line order.
fn assert_failures(report: &Report, expected: &[(usize, &str)]) {
    let failures: Vec<(usize, &str)> = report
        .failures
        .iter()
        .map(|f| (f.line, f.reason.as_str()))
        .collect();
    assert_eq!(failures.len(), expected.len(), "{failures:#?}");
    for ((line, reason), (want_line, want)) in failures.iter().zip(expected) {
        assert_eq!(line, want_line, "{failures:#?}");
        assert!(
            reason.contains(want),
            "line {line}: {reason:?} should contain {want:?}"
        );
    }
}
