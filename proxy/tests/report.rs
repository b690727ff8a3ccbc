//! The HTML reports over a small store: `proxy report`'s page written from the store (near-
//! duplicates, outliers, failures, hostile text escaped), eval's page searching deeper for the
//! relevant images missing from the top 10, both served at `/admin/…` behind the admin token
//! (Basic or Bearer; 401 with a Basic challenge without it, 403 when no token is set, 404 before
//! a report is written), and the `proxy report` command itself.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use base64::Engine as _;
use proxy::eval::{Judged, evaluate, html};
use proxy::layout::DataDir;
use proxy::model::{NativeTextEncoder, TextEncoder};
use proxy::payload::ImagePayload;
use proxy::report::{Options, write};
use proxy::store::edge::EdgeStore;
use proxy::store::{Point, SearchQuery, SharedStore, VectorStore, point_id};
use testkit::{Answer, TestServer, app_state, command, get, public_stub, tiny_model, tiny_spec};

const TOKEN: &str = "report-admin";
const HOSTILE: &str = "<script>alert('x')</script><img src=x onerror=alert(1)>";

/// A 16 × 16 JPEG of one colour.
fn jpeg(shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb([shade, 90, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    out.into_inner()
}

/// `n` points `img0`..: `img0` and `img1` share a vector (near-duplicates), the others point in
/// their own directions; `img1`'s caption is hostile. Each has a thumbnail; one failed row.
fn fill(store: &EdgeStore, data: &DataDir, dim: usize, n: usize, rt: &tokio::runtime::Runtime) {
    std::fs::create_dir_all(data.thumbs()).expect("thumbs");
    let points: Vec<Point> = (0..n)
        .map(|i| {
            let id = format!("img{i}");
            let mut vector = vec![0.05; dim];
            vector[if i == 1 { 0 } else { i % dim }] = 1.0;
            if i >= dim {
                vector[(i + 3) % dim] = 0.7;
            }
            std::fs::write(
                proxy::ingest::thumb_path(&data.thumbs(), point_id(&id)),
                jpeg(i as u8 * 10),
            )
            .expect("thumbnail");
            Point {
                caption: None,
                id: point_id(&id),
                vector,
                payload: ImagePayload {
                    id,
                    caption: Some(if i == 1 {
                        HOSTILE.into()
                    } else {
                        format!("photo {i}")
                    }),
                    width: Some(640),
                    height: Some(480 + i as u32),
                    image_bytes: Some(40_000 + i as u64),
                    image_format: Some("jpg".into()),
                    ..ImagePayload::default()
                }
                .to_payload(),
            }
        })
        .collect();
    rt.block_on(store.upsert(points)).expect("upsert");
    std::fs::write(
        data.ingest_failures(),
        format!(
            "line\tid\turl\treason\n7\t{HOSTILE}\thttp://x.test/a\tHTTP 404 from http://x.test/a\n"
        ),
    )
    .expect("failures");
}

struct Fixture {
    store: SharedStore,
    data: DataDir,
    encoder: NativeTextEncoder,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

fn fixture(n: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = tiny_model();
    let spec = tiny_spec(&loaded);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The embedded store in the storage directory itself, where the binaries look.
    let store = EdgeStore::new(dir.path());
    rt.block_on(store.ensure_collection(&spec))
        .expect("collection");
    let data = DataDir::new(dir.path());
    fill(&store, &data, spec.dim, n, &rt);
    Fixture {
        store: Arc::new(store),
        data,
        encoder: NativeTextEncoder::new(&loaded),
        rt,
        dir,
    }
}

fn serve(f: &Fixture, token: Option<&str>) -> TestServer {
    let state = app_state(f.store.clone(), &tiny_model(), f.dir.path(), token, None);
    TestServer::start(state, &public_stub(f.dir.path()), vec![])
}

fn basic(password: &str) -> String {
    let pair = format!("admin:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn page(server: &TestServer, path: &str, auth: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    get(&server.url(path), &headers)
}

#[test]
fn the_collection_report_is_written_and_served_behind_the_token() {
    let f = fixture(6);
    let server = serve(&f, Some(TOKEN));
    let auth = basic(TOKEN);

    // Nothing written yet: 404 with the token, 401 (asking for Basic) without it.
    for path in ["/admin/report/", "/admin/eval/"] {
        let missing = page(&server, path, Some(&auth));
        assert_eq!(
            (missing.status, missing.error_code().as_str()),
            (404, "no_report"),
            "{path}"
        );
        let anonymous = page(&server, path, None);
        assert_eq!(anonymous.status, 401, "{path}");
        assert!(
            anonymous
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic realm=")),
            "{:?}",
            anonymous.headers
        );
    }

    let options = Options {
        neighbours: 3,
        ..Options::default()
    };
    let written =
        f.rt.block_on(write(f.store.as_ref(), &f.data, "Report <t>", &options))
            .expect("report");
    assert_eq!(written, f.data.data_report());

    let ok = page(&server, "/admin/report/", Some(&auth));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.content_type, "text/html");
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    assert!(
        ok.header("content-security-policy")
            .is_some_and(|v| v.contains("default-src 'none'")),
        "{:?}",
        ok.headers
    );
    let body = ok.text();
    assert_eq!(body, std::fs::read_to_string(&written).expect("the file"));
    assert!(body.contains("<title>Report &lt;t&gt;</title>"));
    // img0 and img1 share a vector: the one group, with both thumbnails inline
    assert!(body.contains("Group 1 (2 images)"), "{body}");
    assert!(!body.contains("Group 2"), "{body}");
    assert!(body.contains("<code>img0</code>") && body.contains("<code>img1</code>"));
    assert!(body.contains("data:image/jpeg;base64,"));
    // the hostile caption and failed row id are text
    assert!(
        !body.contains("<script") && !body.contains("<img src=x"),
        "{body}"
    );
    assert!(body.contains("HTTP 404 from &lt;url&gt;"), "{body}");
    assert!(body.contains("Outliers"));

    // Bearer works too; a wrong token or scheme does not.
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(page(&server, "/admin/report/", Some(&bearer)).status, 200);
    for wrong in [basic("nope"), format!("Bearer {TOKEN}x"), TOKEN.to_string()] {
        let refused = page(&server, "/admin/report/", Some(&wrong));
        assert_eq!(
            (refused.status, refused.error_code().as_str()),
            (401, "unauthorized")
        );
        assert!(!refused.text().contains("Group 1"));
    }
}

#[test]
fn without_an_admin_token_the_pages_are_off() {
    let f = fixture(3);
    let server = serve(&f, None);
    let answer = page(&server, "/admin/report/", Some(&basic("")));
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (403, "admin_disabled")
    );
    let answer = page(&server, "/admin/eval/", None);
    assert_eq!(answer.status, 403);
}

/// The eval page's deeper search: a relevant image ranked below the top 10 is shown with its
/// rank, one not in the index says so, and the query text is escaped.
#[test]
fn the_eval_page_ranks_the_missing_relevant_images() {
    let f = fixture(24);
    let query = format!("a photo {HOSTILE}");
    let vector = f.encoder.embed_text(&query).expect("embed");
    let hits =
        f.rt.block_on(f.store.search(&SearchQuery {
            using: proxy::store::VectorName::Image,
            vector,
            limit: 20,
            offset: 0,
            filter: Default::default(),
        }))
        .expect("search");
    let id_at =
        |rank: usize| ImagePayload::read(hits[rank - 1].id, hits[rank - 1].payload.clone()).id;
    let (top, deep) = (id_at(2), id_at(15));
    let judged = vec![Judged {
        query: query.clone(),
        relevant: BTreeSet::from([top.clone(), deep.clone(), "ghost".to_string()]),
    }];
    let vectors = proxy::eval::embed_queries(&judged, &f.encoder).expect("query vectors");
    let report =
        f.rt.block_on(evaluate(
            &judged,
            0,
            &vectors,
            f.store.as_ref(),
            proxy::retrieve::Retrieval::image(),
        ))
        .expect("eval");
    let (worst, best) =
        f.rt.block_on(html::gather(
            &report,
            &judged,
            &f.encoder,
            f.store.as_ref(),
            &f.data.thumbs(),
        ))
        .expect("gather");
    assert_eq!((worst.len(), best.len()), (1, 0), "one query: shown once");
    let shown = &worst[0];
    assert_eq!(shown.top.len(), 10);
    let marked: HashSet<&str> = shown
        .top
        .iter()
        .filter(|t| t.relevant)
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(marked, HashSet::from([top.as_str()]));
    assert!(shown.top.iter().all(|t| t.thumbnail.is_some()));
    let missing: Vec<(&str, Option<usize>, &str)> = shown
        .missing
        .iter()
        .map(|(t, rank)| (t.id.as_str(), *rank, t.label.as_str()))
        .collect();
    assert!(
        missing.contains(&(deep.as_str(), Some(15), "ranked #15")),
        "{missing:?}"
    );
    assert!(
        missing.contains(&("ghost", None, "not in the index")),
        "{missing:?}"
    );

    let page_html = html::render("Eval", &report, &worst, &best).expect("render");
    assert!(!page_html.contains("<script") && !page_html.contains("<img src=x"));
    html::write(&f.data.eval_reports(), &page_html).expect("write");
    let server = serve(&f, Some(TOKEN));
    let served = page(&server, "/admin/eval/", Some(&basic(TOKEN)));
    assert_eq!(served.status, 200);
    assert!(served.text().contains(&format!("{deep}: ranked #15")));
}

/// `proxy report` the command: a bad threshold is refused before anything is read; a good run
/// writes the page under the storage directory.
#[test]
fn the_report_command_writes_the_page() {
    let f = fixture(4);
    let env_file = f.dir.path().join("empty.env");
    std::fs::write(&env_file, "").expect("env file");
    let run = |flags: &[&str]| {
        command(env!("CARGO_BIN_EXE_proxy"))
            .arg("report")
            .args(flags)
            .arg("--storage")
            .arg(f.dir.path())
            .args(["--model", &testkit::tiny_model_dir().display().to_string()])
            .arg("--env-file")
            .arg(&env_file)
            .stdout(Stdio::null())
            .output()
            .expect("running proxy report")
    };
    // The fixture's store must be closed for the command to open it.
    drop(f.store);
    for (flags, says) in [
        (&["--threshold", "1.5"][..], "--threshold 1.5"),
        (&["--threshold", "NaN"], "--threshold NaN"),
        (&["--neighbours", "0"], "--neighbours"),
        (&["--neighbours", "101"], "--neighbours"),
        (&["--max-points", "x"], "--max-points"),
    ] {
        let bad = run(flags);
        assert!(!bad.status.success(), "{flags:?}");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
        assert!(!f.data.data_report().exists());
    }
    // At most two images searched for neighbours: the bound is kept and said.
    let good = run(&["--threshold", "0.9", "--max-points", "2"]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let written = std::fs::read_to_string(f.data.data_report()).expect("the page");
    assert!(written.contains("Images indexed"));
    assert!(
        written.contains("2 (at most 2, 10 neighbours each)"),
        "{written}"
    );
    assert!(Path::new(&f.data.data_report()).is_file());
}
