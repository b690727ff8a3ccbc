//! Caption vectors end to end on the tiny fixture model: ingest embeds each caption beside its
//! image (and again when the caption changes), `POST /api/search` compares a query with image or
//! caption vectors or both fused (each fusion rule checked against the two single rankings), and
//! eval measures every way side by side.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use clip::load::Loaded;
use proxy::eval::{Judged, read_queries};
use proxy::ingest::{Embedder, IngestOptions, IngestPaths, Quiet, Report};
use proxy::layout::DataDir;
use proxy::model::{NativeTextEncoder, TextEncoder};
use proxy::retrieve::{Fusion, RRF_K};
use proxy::store::edge::EdgeStore;
use proxy::store::{CollectionSpec, SharedStore, all_records};
use serde_json::{Value, json};
use testkit::{TestServer, app_state, post_json, public_stub, tiny_model, tiny_spec, workspace};

/// A runtime, the tiny model and an embedded store in `dir`.
struct Fixture {
    rt: tokio::runtime::Runtime,
    loaded: Loaded,
    store: SharedStore,
}

impl Fixture {
    fn new(dir: &Path) -> Self {
        Self {
            rt: tokio::runtime::Runtime::new().expect("runtime"),
            loaded: tiny_model(),
            store: Arc::new(EdgeStore::new(dir.join("qdrant"))),
        }
    }

    fn spec(&self, captions: bool) -> CollectionSpec {
        CollectionSpec {
            captions,
            ..tiny_spec(&self.loaded)
        }
    }

    /// Ingest `tsv` into a collection asked `captions`, embedding captions when it has them.
    fn ingest(&self, tsv: &Path, data: &Path, captions: bool) -> Report {
        let found = self
            .rt
            .block_on(self.store.ensure_collection(&self.spec(captions)))
            .expect("collection");
        let device = clip::Device::Cpu;
        let embedder = Embedder::new(&self.loaded.model, &device);
        let embedder = if found.captions {
            embedder.with_captions(&self.loaded.tokenizer)
        } else {
            embedder
        };
        proxy::ingest::run(
            &IngestPaths::new(tsv, &DataDir::new(data)),
            &IngestOptions::default(),
            &embedder,
            self.store.as_ref(),
            self.rt.handle(),
            &Quiet,
        )
        .expect("ingest")
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        NativeTextEncoder::new(&self.loaded)
            .embed_text(text)
            .expect("text vector")
    }

    /// Every point's caption vector, by row id.
    fn caption_vectors(&self) -> HashMap<String, Option<Vec<f32>>> {
        let records = self
            .rt
            .block_on(all_records(self.store.as_ref()))
            .expect("scroll");
        let ids: Vec<_> = records.iter().map(|r| r.id).collect();
        let full = self.rt.block_on(self.store.get(&ids, true)).expect("get");
        full.into_iter()
            .map(|r| (r.payload["id"].as_str().expect("id").to_string(), r.caption))
            .collect()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    proxy::retrieve::cosine(a, b)
}

/// The demo TSV's captions, by row id.
fn demo_captions() -> HashMap<String, String> {
    let tsv = std::fs::read_to_string(workspace().join("data/images.tsv")).expect("demo tsv");
    tsv.lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            (cells[0].to_string(), cells[2].to_string())
        })
        .collect()
}

#[test]
fn ingest_embeds_every_caption_beside_its_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Fixture::new(dir.path());
    let report = f.ingest(&workspace().join("data/images.tsv"), dir.path(), true);
    assert_eq!(
        (report.indexed, report.failures.len()),
        (24, 0),
        "{report:?}"
    );
    let stored = f.caption_vectors();
    let captions = demo_captions();
    assert_eq!(stored.len(), 24);
    for (id, caption) in &captions {
        let vector = stored[id].as_ref().expect("a caption vector");
        let c = cosine(vector, &f.embed(caption));
        assert!(c > 0.9999, "{id}: cosine {c} to its caption's embedding");
    }
}

#[test]
fn a_changed_caption_is_embedded_again_and_a_missing_one_has_no_vector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Fixture::new(dir.path());
    for file in ["coffee.jpg", "horse.png"] {
        let from = workspace().join("data/images").join(file);
        std::fs::copy(from, dir.path().join(file)).expect("copy");
    }
    let tsv = dir.path().join("images.tsv");
    let write = |coffee: &str| {
        let text = format!("id\turl\tcaption\ncoffee\tcoffee.jpg\t{coffee}\nhorse\thorse.png\t\n");
        std::fs::write(&tsv, text).expect("tsv");
    };
    write("a cup of coffee");
    assert_eq!(f.ingest(&tsv, dir.path(), true).indexed, 2);
    let stored = f.caption_vectors();
    assert!(
        stored["horse"].is_none(),
        "a row without a caption has no caption vector"
    );
    assert!(
        cosine(
            stored["coffee"].as_ref().expect("vector"),
            &f.embed("a cup of coffee")
        ) > 0.9999
    );
    write("latte art in a white cup");
    let again = f.ingest(&tsv, dir.path(), true);
    assert_eq!((again.indexed, again.unchanged), (1, 1), "{again:?}");
    let stored = f.caption_vectors();
    let new = stored["coffee"].as_ref().expect("vector");
    assert!(cosine(new, &f.embed("latte art in a white cup")) > 0.9999);
}

#[test]
fn a_collection_made_without_captions_stays_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Fixture::new(dir.path());
    f.ingest(&workspace().join("data/images.tsv"), dir.path(), false);
    let found =
        f.rt.block_on(f.store.open_collection(&f.spec(true)))
            .expect("open");
    assert!(!found.captions);
    assert!(f.caption_vectors().values().all(Option::is_none));
}

/// The demo data ingested with caption vectors, served with `fusion`.
fn captioned_server(dir: &Path, fusion: Fusion) -> (TestServer, Fixture) {
    let f = Fixture::new(dir);
    f.ingest(&workspace().join("data/images.tsv"), dir, true);
    let state = app_state(f.store.clone(), &f.loaded, dir, None, None).with_fusion(fusion);
    let server = TestServer::start(state, &public_stub(dir), Vec::new());
    (server, f)
}

/// `(id, score)` of a search's results.
fn search(server: &TestServer, body: Value) -> Vec<(String, f32)> {
    testkit::ranking(&server.url("/api/search"), &body)
}

fn scores(hits: &[(String, f32)]) -> HashMap<&str, f32> {
    hits.iter().map(|(id, s)| (id.as_str(), *s)).collect()
}

#[test]
fn search_compares_with_captions_and_fuses_by_reciprocal_rank() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _f) = captioned_server(dir.path(), Fusion::Rrf);
    let captions = demo_captions();
    let text = &captions["coffee"];
    let ask = |vectors: Option<&str>| {
        let mut body = json!({"text": text, "limit": 24});
        if let Some(v) = vectors {
            body["vectors"] = json!(v);
        }
        search(&server, body)
    };
    let by_caption = ask(Some("caption"));
    assert_eq!(
        by_caption[0].0, "coffee",
        "the row's own caption is the nearest"
    );
    assert!(by_caption[0].1 > 0.9999, "{:?}", by_caption[0]);
    let by_image = ask(Some("image"));
    let fused = ask(Some("fused"));
    assert_eq!(
        ask(None),
        fused,
        "fused is the default where captions exist"
    );
    // Each fused score is Σ 1/(60 + rank) over the two single rankings.
    let rank = |hits: &[(String, f32)], id: &str| hits.iter().position(|(h, _)| h == id);
    for (id, score) in &fused {
        let expected: f32 = [rank(&by_image, id), rank(&by_caption, id)]
            .into_iter()
            .flatten()
            .map(|r| 1.0 / (RRF_K + r as f32 + 1.0))
            .sum();
        assert!(
            (score - expected).abs() < 1e-6,
            "{id}: {score} vs {expected}"
        );
    }
    assert_eq!(fused.len(), 24);
    assert!(fused.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
}

#[test]
fn weighted_fusion_sums_the_two_cosines_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _f) = captioned_server(dir.path(), Fusion::Weighted(0.25));
    let text = "a grey cat sitting";
    let ask = |v: &str| search(&server, json!({"text": text, "limit": 24, "vectors": v}));
    let (image, caption, fused) = (ask("image"), ask("caption"), ask("fused"));
    let (image, caption) = (scores(&image), scores(&caption));
    assert_eq!(fused.len(), 24);
    for (id, score) in &fused {
        let expected = 0.75 * image[id.as_str()] + 0.25 * caption[id.as_str()];
        assert!(
            (score - expected).abs() < 1e-5,
            "{id}: {score} vs {expected}"
        );
    }
    // A page further on continues the same ranking.
    let second = search(
        &server,
        json!({"text": text, "limit": 5, "offset": 5, "vectors": "fused"}),
    );
    assert_eq!(second, fused[5..10].to_vec());
}

#[test]
fn caption_searches_are_refused_where_they_cannot_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Fixture::new(dir.path());
    f.ingest(&workspace().join("data/images.tsv"), dir.path(), false);
    let state = app_state(f.store.clone(), &f.loaded, dir.path(), None, None);
    let server = TestServer::start(state, &public_stub(dir.path()), Vec::new());
    let url = server.url("/api/search");
    for vectors in ["caption", "fused"] {
        let answer = post_json(&url, &json!({"text": "a cat", "vectors": vectors}));
        assert_eq!(answer.status, 400, "{}", answer.text());
        assert_eq!(answer.error_code(), "no_caption_vectors");
        assert!(
            answer.text().contains("no caption vectors"),
            "{}",
            answer.text()
        );
    }
    let answer = post_json(&url, &json!({"text": "a cat", "vectors": "pixels"}));
    assert_eq!(answer.status, 400, "{}", answer.text());
    let answer = post_json(
        &url,
        &json!({"positive": [{"id": "chelsea"}], "vectors": "caption"}),
    );
    assert_eq!(answer.error_code(), "bad_vectors", "{}", answer.text());
    // Image searches answer as before.
    let plain = post_json(&url, &json!({"text": "a cat"}));
    assert_eq!(plain.status, 200, "{}", plain.text());
}

#[test]
fn eval_measures_every_way_on_the_same_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = Fixture::new(dir.path());
    f.ingest(&workspace().join("data/images.tsv"), dir.path(), true);
    let judged: Vec<Judged> = read_queries(&workspace().join("data/queries.tsv")).expect("queries");
    let encoder = NativeTextEncoder::new(&f.loaded);
    let vectors = proxy::eval::embed_queries(&judged, &encoder).expect("vectors");
    let compared =
        f.rt.block_on(proxy::eval::vectors::compare(
            &judged,
            &vectors,
            f.store.as_ref(),
        ))
        .expect("compare");
    let names: Vec<String> = compared
        .iter()
        .map(|c| proxy::eval::vectors::name(&c.retrieval))
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    // Each row is what an eval of that way alone reports.
    for c in &compared {
        let alone =
            f.rt.block_on(proxy::eval::evaluate(
                &judged,
                0,
                &vectors,
                f.store.as_ref(),
                c.retrieval,
            ))
            .expect("eval");
        assert_eq!(
            alone.summary,
            c.summary,
            "{}",
            proxy::eval::vectors::name(&c.retrieval)
        );
    }
    assert!(compared.iter().all(|c| c.summary.queries == judged.len()));
}

/// The binaries: `ingest` embeds captions unless `--no-captions`, `proxy eval` then refuses to
/// search caption vectors that are not there, and a bad `--fusion` is refused naming the flag.
#[test]
fn the_binaries_ask_for_captions_and_check_the_fusion_rule() {
    use testkit::{command, tiny_model_dir};
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("empty.env");
    std::fs::write(&env, "").expect("env file");
    let run = |bin: &str, storage: &str, args: &[&str]| {
        let out = command(bin)
            .args(args)
            .arg("--storage")
            .arg(dir.path().join(storage))
            .arg("--model")
            .arg(tiny_model_dir())
            .arg("--env-file")
            .arg(&env)
            .output()
            .expect("the binary runs");
        let log = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        (out.status.code(), log)
    };
    let tsv = workspace().join("data/images.tsv");
    let tsv = tsv.to_str().expect("a UTF-8 path");
    let queries = workspace().join("data/queries.tsv");
    let queries = queries.to_str().expect("a UTF-8 path");
    let ingest = env!("CARGO_BIN_EXE_ingest");
    let proxy = env!("CARGO_BIN_EXE_proxy");

    let (code, log) = run(ingest, "with", &["--tsv", tsv]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("captions are embedded too"), "{log}");
    let (code, log) = run(ingest, "without", &["--tsv", tsv, "--no-captions"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("captions are embedded"), "{log}");

    let eval = |storage: &str, extra: &[&str]| {
        let out = dir.path().join(format!("eval-{storage}"));
        let mut args = vec!["eval", "--queries", queries, "--out"];
        let out = out.to_str().expect("a UTF-8 path").to_string();
        args.push(&out);
        args.extend_from_slice(extra);
        run(proxy, storage, &args)
    };
    let (code, log) = eval("with", &["--vectors", "caption"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("caption vectors"), "{log}");
    assert!(log.contains("## Image, caption and fused vectors"), "{log}");
    let (code, log) = eval("without", &["--vectors", "fused"]);
    assert_ne!(code, Some(0), "{log}");
    assert!(log.contains("has no caption vectors"), "{log}");
    let (code, log) = eval("with", &["--fusion", "weighted:1.5"]);
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("--fusion") && log.contains("with W from 0 to 1"),
        "{log}"
    );
}
