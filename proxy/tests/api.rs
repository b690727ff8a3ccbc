//! The HTTP API against an embedded store holding a few points: answers, and the bad-input table
//! (every bad request gets a clear JSON error and nothing else changes).

use std::sync::Arc;
use std::time::Duration;

use proxy::layout::DataDir;
use proxy::store::edge::EdgeStore;
use proxy::store::{Point, SharedStore, VectorStore, point_id};
use serde_json::{Value, json};
use testkit::points::{edge_store, point, spread};
use testkit::{
    TestServer, app_state, get, post, post_json, public_stub, tiny_model, tiny_spec,
    write_tiny_bundle,
};

const DIM: usize = 16;

fn unit(i: usize) -> Vec<f32> {
    spread(i, DIM)
}

struct Fixture {
    _dir: tempfile::TempDir,
    server: TestServer,
}

/// Five points `img0`..`img4`, a thumbnail and an original for `img0`.
fn fixture(admin: Option<&str>, cors: Vec<String>) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let original = dir.path().join("img0.png");
    image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]))
        .save(&original)
        .expect("original");
    let points = (0..5)
        .map(|i| {
            let mut payload = json!({
                "caption": format!("picture {i}"),
                "license": "CC0-1.0",
                "content_hash": format!("hash{i}"),
            });
            if i == 0 {
                payload["file"] = json!(original.display().to_string());
            } else {
                payload["url"] = json!(format!("https://example.com/{i}.jpg"));
            }
            point(&format!("img{i}"), unit(i), payload)
        })
        .collect();
    let store = edge_store(dir.path(), &loaded, points);
    let thumbs = DataDir::new(dir.path()).thumbs();
    std::fs::create_dir_all(&thumbs).expect("thumbs");
    std::fs::write(
        proxy::ingest::thumb_path(&thumbs, point_id("img0")),
        b"\xff\xd8\xff fake jpeg",
    )
    .expect("thumb");
    let public = public_stub(dir.path());
    let store: SharedStore = Arc::new(store);
    let server = TestServer::start(
        app_state(store, &loaded, dir.path(), admin, None),
        &public,
        cors,
    );
    Fixture { _dir: dir, server }
}

fn vector_json(v: &[f32]) -> Value {
    json!(v)
}

#[test]
fn search_similar_feedback_and_export() {
    let f = fixture(Some("admin-secret"), vec![]);
    let s = &f.server;

    // By vector: the point itself first, with the contract's fields.
    let a = post_json(
        &s.url("/api/search"),
        &json!({"vector": vector_json(&unit(2)), "limit": 3}),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let body = a.json();
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["id"], "img2");
    assert!((results[0]["score"].as_f64().unwrap_or(0.0) - 1.0).abs() < 1e-4);
    assert_eq!(results[0]["url"], "/images/img2");
    assert_eq!(results[0]["thumbnail_url"], "/thumbs/img2");
    assert_eq!(results[0]["caption"], "picture 2");
    assert_eq!(results[0]["payload"]["license"], "CC0-1.0");
    assert!(
        results[0]["payload"].get("content_hash").is_none(),
        "internal fields stay inside"
    );
    assert!(body["took_ms"].as_f64().is_some());
    assert_eq!(body["next_offset"], 3);

    // Pages: offset continues.
    let page2 = post_json(
        &s.url("/api/search"),
        &json!({"vector": unit(2), "limit": 2, "offset": 3}),
    )
    .json();
    let all = post_json(
        &s.url("/api/search"),
        &json!({"vector": unit(2), "limit": 5}),
    )
    .json();
    assert_eq!(page2["results"][0]["id"], all["results"][3]["id"]);

    // Filter.
    let a = post_json(
        &s.url("/api/search"),
        &json!({"vector": unit(2), "filter": {"caption": "picture 4"}}),
    );
    assert_eq!(a.json()["results"].as_array().map(Vec::len), Some(1));

    // By text (server-side encoding): five results, unit scores in range.
    let a = post_json(&s.url("/api/search"), &json!({"text": "a red square"}));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["results"].as_array().map(Vec::len), Some(5));

    // Similar: the image itself is left out.
    let a = post_json(&s.url("/api/similar"), &json!({"id": "img1", "limit": 4}));
    assert_eq!(a.status, 200, "{}", a.text());
    let ids: Vec<String> = a.json()["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(!ids.iter().any(|id| id == "img1"));

    // Feedback, changed, and exported.
    let vote = |label: &str| {
        post_json(
            &s.url("/api/feedback"),
            &json!({"query": "red", "query_vector": unit(0), "image_id": "img0", "label": label, "client_id": "c1"}),
        )
    };
    let first = vote("irrelevant");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["ok"], true);
    let second = vote("relevant");
    assert_eq!(
        first.json()["label_id"],
        second.json()["label_id"],
        "a changed vote keeps its id"
    );
    let flag = post_json(
        &s.url("/api/feedback"),
        &json!({"query": "red", "image_id": "img3", "label": "flag", "note": "broken image"}),
    );
    assert_eq!(flag.status, 200, "{}", flag.text());

    let export = get(
        &s.url("/api/labels?format=jsonl"),
        &[("Authorization", "Bearer admin-secret")],
    );
    assert_eq!(export.status, 200, "{}", export.text());
    let lines: Vec<Value> = export
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect();
    assert_eq!(lines.len(), 2, "the changed vote replaced the first");
    assert!(
        lines
            .iter()
            .any(|l| l["image_id"] == "img0" && l["label"] == "relevant" && l["client_id"] == "c1")
    );
    assert!(lines.iter().any(|l| l["image_id"] == "img3"
        && l["label"] == "flag"
        && l["note"] == "broken image"
        && l["client_id"] == "anonymous"));
    let tsv = get(
        &s.url("/api/labels?format=tsv"),
        &[("Authorization", "Bearer admin-secret")],
    );
    assert_eq!(tsv.text().lines().count(), 3);
    assert!(
        tsv.text()
            .starts_with("label_id\ttime\tclient_id\tquery\timage_id\tlabel\tnote\n")
    );

    // Withdraw.
    assert_eq!(vote("none").status, 200);
    let export = get(
        &s.url("/api/labels"),
        &[("Authorization", "Bearer admin-secret")],
    );
    assert_eq!(export.text().lines().count(), 1);

    // Images and thumbnails, by id only.
    let a = get(&s.url("/images/img0"), &[]);
    assert_eq!((a.status, a.content_type.as_str()), (200, "image/png"));
    let a = get(&s.url("/images/img1"), &[]);
    assert_eq!(a.status, 307);
    assert_eq!(a.header("location"), Some("https://example.com/1.jpg"));
    let a = get(&s.url("/thumbs/img0"), &[]);
    assert_eq!((a.status, a.content_type.as_str()), (200, "image/jpeg"));
    let etag = a.header("etag").expect("etag").to_string();
    assert_eq!(
        get(&s.url("/thumbs/img0"), &[("If-None-Match", &etag)]).status,
        304
    );

    // Health and readiness.
    assert_eq!(get(&s.url("/healthz"), &[]).json()["status"], "ok");
    let ready = get(&s.url("/readyz"), &[]);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["points"], 5);
    // The site.
    assert!(get(&s.url("/"), &[]).text().contains("text2img"));
}

/// One bad request: its status, error code and a phrase of its message.
fn check(
    server: &TestServer,
    method: &str,
    path: &str,
    body: &str,
    status: u16,
    code: &str,
    phrase: &str,
) {
    let a = match method {
        "GET" => get(&server.url(path), &[]),
        _ => post(&server.url(path), body),
    };
    assert_eq!(a.status, status, "{method} {path} {body:.80}: {}", a.text());
    assert!(
        a.content_type.starts_with("application/json"),
        "{path}: JSON error, got {}",
        a.content_type
    );
    assert_eq!(
        a.error_code(),
        code,
        "{method} {path} {body:.80}: {}",
        a.text()
    );
    let message = a.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.contains(phrase),
        "{path}: {message:?} should contain {phrase:?}"
    );
}

#[test]
fn bad_requests_get_clear_json_errors() {
    let f = fixture(None, vec![]);
    let s = &f.server;
    let v15 = json!(vec![0.1f32; 15]).to_string();
    let v16 = json!(vec![0.1f32; 16]).to_string();
    let big = format!("{{\"vector\":[{}]}}", vec!["0.123456"; 200_000].join(","));
    let cases: &[(&str, &str, String, u16, &str, &str)] = &[
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":{v15}}}"),
            400,
            "bad_vector",
            "vector has 15 values, the model needs 16",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":[{}1e999]}}", "0.1,".repeat(15)),
            400,
            "malformed_json",
            "",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":[{}1e39]}}", "0.1,".repeat(15)),
            400,
            "bad_vector",
            "not a finite number",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":[{}NaN]}}", "0.1,".repeat(15)),
            400,
            "malformed_json",
            "",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":{v16},\"limit\":0}}"),
            400,
            "bad_limit",
            "between 1 and 100",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":{v16},\"limit\":101}}"),
            400,
            "bad_limit",
            "between 1 and 100",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":{v16},\"limit\":-1}}"),
            400,
            "bad_request",
            "limit",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":{v16},\"offset\":10001}}"),
            400,
            "bad_offset",
            "at most 10000",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":{v16},\"filter\":{{\"x\":1.5}}}}"),
            400,
            "bad_filter",
            "`x`",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vector\":{v16},\"text\":\"cat\"}}"),
            400,
            "bad_request",
            "not both",
        ),
        (
            "POST",
            "/api/search",
            "{}".into(),
            400,
            "bad_request",
            "give `vector`",
        ),
        (
            "POST",
            "/api/search",
            "{\"text\":\"   \"}".into(),
            400,
            "bad_text",
            "empty",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"text\":\"{}\"}}", "a".repeat(1001)),
            400,
            "bad_text",
            "1000 characters",
        ),
        (
            "POST",
            "/api/search",
            format!("{{\"vectr\":{v16}}}"),
            400,
            "bad_request",
            "unknown field `vectr`",
        ),
        (
            "POST",
            "/api/search",
            "{\"vector\":[1,2,".into(),
            400,
            "malformed_json",
            "",
        ),
        (
            "POST",
            "/api/search",
            "not json at all".into(),
            400,
            "malformed_json",
            "",
        ),
        (
            "POST",
            "/api/search",
            big,
            413,
            "body_too_large",
            "1048576-byte limit",
        ),
        (
            "POST",
            "/api/similar",
            "{\"id\":\"nope\"}".into(),
            404,
            "unknown_id",
            "no image with id `nope`",
        ),
        (
            "POST",
            "/api/feedback",
            "{\"query\":\"q\",\"image_id\":\"img0\",\"label\":\"maybe\"}".into(),
            400,
            "bad_label",
            "label `maybe`",
        ),
        (
            "POST",
            "/api/feedback",
            "{\"query\":\"q\",\"image_id\":\"nope\",\"label\":\"relevant\"}".into(),
            404,
            "unknown_id",
            "`nope`",
        ),
        (
            "POST",
            "/api/feedback",
            "{\"query\":\"\",\"image_id\":\"img0\",\"label\":\"relevant\"}".into(),
            400,
            "bad_query",
            "1 to 1000",
        ),
        (
            "POST",
            "/api/feedback",
            format!(
                "{{\"query\":\"q\",\"image_id\":\"img0\",\"label\":\"flag\",\"query_vector\":{v15}}}"
            ),
            400,
            "bad_vector",
            "15 values",
        ),
        (
            "POST",
            "/api/feedback",
            format!(
                "{{\"query\":\"q\",\"image_id\":\"img0\",\"label\":\"flag\",\"note\":\"{}\"}}",
                "n".repeat(2001)
            ),
            400,
            "bad_note",
            "2000",
        ),
        (
            "POST",
            "/api/feedback",
            format!(
                "{{\"query\":\"q\",\"image_id\":\"img0\",\"label\":\"flag\",\"client_id\":\"{}\"}}",
                "c".repeat(129)
            ),
            400,
            "bad_client_id",
            "128",
        ),
        (
            "POST",
            "/api/feedback",
            "{\"image_id\":\"img0\",\"label\":\"flag\"}".into(),
            400,
            "bad_request",
            "missing field `query`",
        ),
        (
            "GET",
            "/api/labels",
            String::new(),
            403,
            "export_disabled",
            "TEXT2IMG_ADMIN_TOKEN",
        ),
        (
            "GET",
            "/images/nope",
            String::new(),
            404,
            "unknown_id",
            "`nope`",
        ),
        (
            "GET",
            "/images/..%2F..%2Fetc%2Fpasswd",
            String::new(),
            404,
            "unknown_id",
            "no image",
        ),
        (
            "GET",
            "/thumbs/nope",
            String::new(),
            404,
            "unknown_id",
            "`nope`",
        ),
        (
            "GET",
            "/thumbs/img1",
            String::new(),
            404,
            "thumbnail_missing",
            "copy the thumbs/ folder",
        ),
        (
            "GET",
            "/api/nothing",
            String::new(),
            404,
            "no_route",
            "no such API route",
        ),
        (
            "GET",
            "/model/tokenizer.json",
            String::new(),
            404,
            "no_model",
            "export-model",
        ),
        (
            "GET",
            "/api/model",
            String::new(),
            404,
            "no_model",
            "export-model",
        ),
    ];
    for (method, path, body, status, code, phrase) in cases {
        check(s, method, path, body, *status, code, phrase);
    }
    let a = get(&s.url("/readyz"), &[]);
    assert_eq!(a.status, 200, "the server is still healthy after all that");
    assert!(s.state.labels.is_empty(), "no bad request stored a label");
    assert_eq!(a.json()["points"], 5, "no bad request changed the store");
}

#[test]
fn labels_export_needs_the_token() {
    let f = fixture(Some("tok-123"), vec![]);
    let s = &f.server;
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "tok-123")],
    ] {
        let a = get(&s.url("/api/labels"), &headers);
        assert_eq!(
            (a.status, a.error_code().as_str()),
            (401, "unauthorized"),
            "{headers:?}"
        );
    }
    let a = get(
        &s.url("/api/labels?format=xml"),
        &[("Authorization", "Bearer tok-123")],
    );
    assert_eq!((a.status, a.error_code().as_str()), (400, "bad_format"));
}

#[test]
fn cors_allowlist() {
    let f = fixture(None, vec!["https://photos.example".into()]);
    let s = &f.server;
    let allowed = get(&s.url("/healthz"), &[("Origin", "https://photos.example")]);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://photos.example")
    );
    let other = get(&s.url("/healthz"), &[("Origin", "https://evil.example")]);
    assert_eq!(other.header("access-control-allow-origin"), None);
    // Same origin only by default.
    let f = fixture(None, vec![]);
    let none = get(
        &f.server.url("/healthz"),
        &[("Origin", "https://photos.example")],
    );
    assert_eq!(none.header("access-control-allow-origin"), None);
}

/// A store that cannot be reached is a 503 with the reason, and the key never shows.
#[test]
fn unreachable_store_is_503_without_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let key = "qdrant-key-must-never-leak-7f3a";
    let port = testkit::free_port();
    let store: SharedStore = Arc::new(testkit::qdrant::unreachable_store(port, Some(key)));
    let public = public_stub(dir.path());
    let server = TestServer::start(
        app_state(store, &loaded, dir.path(), None, None),
        &public,
        vec![],
    );
    for (path, body) in [
        ("/api/search", json!({"vector": unit(1)}).to_string()),
        ("/api/search", json!({"text": "cat"}).to_string()),
        ("/api/similar", json!({"id": "img1"}).to_string()),
        (
            "/api/feedback",
            json!({"query": "q", "image_id": "img1", "label": "relevant"}).to_string(),
        ),
    ] {
        let a = post(&server.url(path), &body);
        assert_eq!(a.status, 503, "{path}: {}", a.text());
        assert_eq!(a.error_code(), "store_unavailable", "{path}: {}", a.text());
        assert!(
            !a.text().contains(key),
            "{path} leaked the key: {}",
            a.text()
        );
        // Nor the store's address: that is for the log.
        assert!(
            !a.text().contains(&format!(":{port}")),
            "{path} leaked the address: {}",
            a.text()
        );
    }
    let a = get(&server.url("/readyz"), &[]);
    assert_eq!(a.status, 503);
    assert!(!a.text().contains(key));
    assert!(!a.text().contains(&format!(":{port}")), "{}", a.text());
    assert_eq!(a.json()["store"], "unavailable", "{}", a.text());
    assert!(!format!("{:?}", server.state).contains(key));
}

/// The embedded store held by another process is a 503; once it is released, the proxy recovers
/// without a restart.
#[test]
fn store_recovers_without_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let spec = tiny_spec(&loaded);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // Another holder of the storage (as `ingest` would be).
    let holder = EdgeStore::new(dir.path().join("qdrant"));
    rt.block_on(holder.ensure_collection(&spec))
        .expect("collection");
    rt.block_on(holder.upsert(vec![Point {
        caption: None,
        id: point_id("only"),
        vector: unit(0),
        payload: [("id".to_string(), json!("only"))].into_iter().collect(),
    }]))
    .expect("upsert");
    let store: SharedStore = Arc::new(EdgeStore::new(dir.path().join("qdrant")));
    let public = public_stub(dir.path());
    let server = TestServer::start(
        app_state(store, &loaded, dir.path(), None, None),
        &public,
        vec![],
    );
    let search = || post_json(&server.url("/api/search"), &json!({"vector": unit(0)}));
    let a = search();
    assert_eq!(a.status, 503, "{}", a.text());
    assert_eq!(a.error_code(), "store_unavailable", "{}", a.text());
    // The reason (with the storage path) is for the log only.
    assert!(
        !a.text().contains("in use by another process"),
        "{}",
        a.text()
    );
    assert!(!a.text().contains("qdrant"), "{}", a.text());
    drop(holder);
    let a = search();
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["results"][0]["id"], "only");
}

/// Server-side text encoding is bounded: past the slots and the wait, a 429 says to retry.
#[test]
fn text_search_past_capacity_is_429() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let store: SharedStore = Arc::new(EdgeStore::new(dir.path().join("qdrant")));
    let mut state = app_state(store, &loaded, dir.path(), None, None);
    // No slot free, and no waiting.
    state.encode_slots = tokio::sync::Semaphore::new(0);
    state.encode_wait = Duration::from_millis(10);
    let public = public_stub(dir.path());
    let server = TestServer::start(state, &public, vec![]);
    let a = post_json(&server.url("/api/search"), &json!({"text": "a cat"}));
    assert_eq!(
        (a.status, a.error_code().as_str()),
        (429, "busy"),
        "{}",
        a.text()
    );
    assert!(a.text().contains("retry"));
}

/// The model manifest points at content-addressed files served with an ETag and a long cache.
#[test]
fn model_manifest_and_cached_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let bundle_dir = dir.path().join("model");
    write_tiny_bundle(&bundle_dir);
    let store: SharedStore = Arc::new(EdgeStore::new(dir.path().join("qdrant")));
    let bundle = proxy::bundle::ModelBundle::open(&bundle_dir).expect("manifest");
    let state = app_state(store, &loaded, dir.path(), None, Some(bundle));
    let public = public_stub(dir.path());
    let server = TestServer::start(state, &public, vec![]);

    let m = get(&server.url("/api/model"), &[]);
    assert_eq!(m.status, 200, "{}", m.text());
    let m = m.json();
    assert_eq!(m["dim"], DIM);
    assert_eq!(m["default_variant"], "q5");
    let q5 = &m["variants"]["q5"];
    let sha = q5["sha256"].as_str().expect("sha256").to_string();
    let url = q5["url"].as_str().expect("url").to_string();
    assert!(
        url.starts_with("/model/") && url.ends_with(&format!("?sha256={sha}")),
        "{url}"
    );

    let file = get(&server.url(&url), &[]);
    assert_eq!(file.status, 200);
    assert_eq!(file.body.len() as u64, q5["bytes"].as_u64().expect("bytes"));
    assert_eq!(clip::export::sha256_hex(&file.body), sha);
    assert_eq!(file.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert!(
        file.header("cache-control")
            .is_some_and(|c| c.contains("immutable"))
    );
    let again = get(
        &server.url(&url),
        &[("If-None-Match", &format!("\"{sha}\""))],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // The tokenizer too; a file the manifest does not list is a plain 404.
    let tok = m["tokenizer"]["url"]
        .as_str()
        .expect("tokenizer url")
        .to_string();
    assert_eq!(get(&server.url(&tok), &[]).status, 200);
    assert_eq!(get(&server.url("/model/nothing.bin"), &[]).status, 404);
    // Weights go out as they are, whatever the browser accepts.
    let addr = server.url("").trim_start_matches("http://").to_string();
    let (headers, body) = testkit::http::raw_get(&addr, &url, "gzip, br");
    assert!(
        !headers.iter().any(|(k, _)| k == "content-encoding"),
        "{headers:?}"
    );
    assert_eq!(clip::export::sha256_hex(&body), sha);
    // The tokenizer (JSON) is compressed for a browser that accepts it, and unpacks to the bytes
    // the manifest's sha256 names.
    let (headers, body) = testkit::http::raw_get(&addr, &tok, "gzip");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-encoding" && v == "gzip"),
        "{headers:?}"
    );
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(body.as_slice()),
        &mut unpacked,
    )
    .expect("gunzip");
    assert!(
        body.len() < unpacked.len(),
        "{} bytes compressed",
        body.len()
    );
    assert_eq!(
        clip::export::sha256_hex(&unpacked),
        m["tokenizer"]["sha256"].as_str().expect("tokenizer sha256")
    );
    token_rows_come_one_range_at_a_time(&server, &m["token_rows"]);
}

/// The token rows file, listed with its rows' size, answers a `Range` of one row with that row
/// (206, as the whole file holds it at its offset, cached like the other model files) and a
/// `Range` past its end with 416.
fn token_rows_come_one_range_at_a_time(server: &TestServer, rows: &Value) {
    // The tiny model's 24-value rows do not split into Q8_0 blocks: f32 rows.
    assert_eq!(rows["format"], "f32", "{rows}");
    assert_eq!(rows["row_bytes"], 24 * 4, "{rows}");
    let url = server.url(rows["file"]["url"].as_str().expect("token rows url"));
    let whole = get(&url, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.body.len() as u64,
        rows["file"]["bytes"].as_u64().expect("bytes")
    );
    assert_eq!(whole.body.len(), 49_408 * 96);
    let row = get(&url, &[("Range", "bytes=480-575")]);
    assert_eq!(row.status, 206, "{}", row.text());
    assert_eq!(row.body, whole.body[480..576]);
    assert!(
        row.header("cache-control")
            .is_some_and(|c| c.contains("immutable"))
    );
    let end = whole.body.len();
    let past = get(&url, &[("Range", &format!("bytes={end}-{}", end + 95))]);
    assert_eq!(past.status, 416);
}

/// The site goes out compressed to a browser that accepts it, and as it is to one that does not.
#[test]
fn the_site_is_compressed_for_browsers_that_accept_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let public = public_stub(dir.path());
    // Like a wasm module: repetitive enough to compress.
    let wasm: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 / 4).collect();
    std::fs::write(public.join("worker_bg.wasm"), &wasm).expect("wasm");
    let store: SharedStore = Arc::new(EdgeStore::new(dir.path().join("qdrant")));
    let state = app_state(store, &tiny_model(), dir.path(), None, None);
    let server = TestServer::start(state, &public, vec![]);
    let addr = server.url("").trim_start_matches("http://").to_string();
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };

    let (headers, body) = testkit::http::raw_get(&addr, "/worker_bg.wasm", "identity");
    assert_eq!(header(&headers, "content-encoding"), None);
    assert_eq!(body, wasm);
    for (accepts, encoding) in [("gzip", "gzip"), ("br;q=1.0, gzip;q=0.5", "br")] {
        let (headers, body) = testkit::http::raw_get(&addr, "/worker_bg.wasm", accepts);
        assert_eq!(
            header(&headers, "content-encoding").as_deref(),
            Some(encoding),
            "{accepts}: {headers:?}"
        );
        assert_eq!(
            header(&headers, "content-type").as_deref(),
            Some("application/wasm")
        );
        assert_eq!(
            header(&headers, "cache-control").as_deref(),
            Some("no-cache")
        );
        assert!(
            body.len() * 4 < wasm.len(),
            "{accepts}: {} bytes for {}",
            body.len(),
            wasm.len()
        );
        if encoding == "gzip" {
            let mut unpacked = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(body.as_slice()),
                &mut unpacked,
            )
            .expect("gunzip");
            assert_eq!(unpacked, wasm);
        }
    }
    // Other files (weights, images) and small ones go out as they are.
    std::fs::write(public.join("weights.onnx"), &wasm).expect("weights");
    std::fs::write(public.join("settings.json"), "{}").expect("settings");
    for path in ["/weights.onnx", "/settings.json"] {
        let (headers, body) = testkit::http::raw_get(&addr, path, "gzip, br");
        assert_eq!(header(&headers, "content-encoding"), None, "{path}");
        assert!(!body.is_empty(), "{path}");
    }
}
