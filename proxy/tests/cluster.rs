//! Cluster settings and adoption: a new collection on a server is laid out as asked and records
//! what was asked; an existing one laid out otherwise is used as it is; a collection made by hand
//! is refused until `ingest --adopt` takes it over. The server tests need `QDRANT_URL` (they say
//! so loudly otherwise); the embedded store and the binary's flags are checked always.

use proxy::store::cluster::{ClusterSettings, Layout, Quantization};
use proxy::store::edge::EdgeStore;
use proxy::store::{CollectionSpec, SearchQuery, StoreError, VectorStore};
use qdrant_client::qdrant::{CreateCollectionBuilder, Distance, VectorParamsBuilder};
use serde_json::Value;
use testkit::points::{point, spread};
use testkit::qdrant::{store, unique, url};

const DIM: usize = 8;

fn spec(name: &str) -> CollectionSpec {
    CollectionSpec {
        captions: false,
        name: name.to_string(),
        dim: DIM,
        model: "cluster-model".to_string(),
    }
}

/// Writes two points and finds the first again: the collection is usable.
async fn usable(store: &dyn VectorStore) {
    store
        .upsert(vec![
            point("a", spread(0, DIM), Value::Null),
            point("b", spread(1, DIM), Value::Null),
        ])
        .await
        .expect("upsert");
    let hits = store
        .search(&SearchQuery {
            using: proxy::store::VectorName::Image,
            vector: spread(0, DIM),
            limit: 1,
            offset: 0,
            filter: Default::default(),
        })
        .await
        .expect("search");
    assert_eq!(hits[0].payload["id"], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_has_no_layout_and_adopts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EdgeStore::new(dir.path());
    let err = store.adopt(&spec("images")).await.expect_err("refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("QDRANT_URL"), "{err}");
    store
        .ensure_collection(&spec("images"))
        .await
        .expect("create");
    assert_eq!(store.layout().await.expect("layout"), None);
}

const INGEST: &str = env!("CARGO_BIN_EXE_ingest");

/// `ingest` with the tiny model on an empty TSV, embedded, plus `extra` flags: exit code and log.
fn ingest(extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tsv = dir.path().join("images.tsv");
    std::fs::write(&tsv, "id\turl\n").expect("tsv");
    let env = dir.path().join("test.env");
    std::fs::write(&env, "").expect("env file");
    let out = testkit::command(INGEST)
        .arg("--tsv")
        .arg(&tsv)
        .arg("--storage")
        .arg(dir.path().join("storage"))
        .arg("--model")
        .arg(testkit::tiny_model_dir())
        .arg("--env-file")
        .arg(&env)
        .args(extra)
        .output()
        .expect("running ingest");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_checks_its_layout_flags() {
    for (flags, says) in [
        (
            &["--qdrant-shards", "0"][..],
            "--qdrant-shards: `0` is not a whole number between 1 and 1024",
        ),
        (
            &["--qdrant-replication-factor", "many"],
            "--qdrant-replication-factor: `many`",
        ),
        (&["--qdrant-on-disk", "perhaps"], "not true or false"),
        (&["--qdrant-quantization", "pq"], "use none, int8 or binary"),
        (
            &[
                "--qdrant-replication-factor",
                "1",
                "--qdrant-write-consistency",
                "2",
            ],
            "more than the replication factor 1",
        ),
        (&["--adopt"], "the embedded store only holds collections"),
    ] {
        let (code, log) = ingest(flags);
        assert_eq!(code, Some(2), "{flags:?}: {log}");
        assert!(log.contains(says), "{flags:?}: {log}");
    }
    // Layout settings without a server are not an error: they are said to be unused.
    let (code, log) = ingest(&["--qdrant-replication-factor", "2"]);
    assert!(matches!(code, Some(0 | 1)), "{log}");
    assert!(
        log.contains("QDRANT_URL is empty, so they are not used"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_layout_is_asked_recorded_and_kept() {
    let Some(url) = url("the cluster layout test") else {
        return;
    };
    let name = unique("text2img_layout");
    let asked = ClusterSettings {
        shards: Some(2),
        replication_factor: Some(1),
        write_consistency: Some(1),
        on_disk: Some(true),
        quantization: Some(Quantization::Int8),
    };
    let first = store(&url, asked);
    first.ensure_collection(&spec(&name)).await.expect("create");
    let layout = first.layout().await.expect("layout").expect("a server");
    assert_eq!(
        layout,
        Layout {
            shards: 2,
            replication_factor: 1,
            write_consistency: 1,
            vectors_on_disk: true,
            payload_on_disk: true,
            quantization: Quantization::Int8,
        }
    );
    assert!(layout.differences(&asked).is_empty(), "{layout}");
    usable(&first).await;

    // Another layout asked later: the collection is used as it is, and the differences named.
    let other = ClusterSettings {
        shards: Some(3),
        quantization: Some(Quantization::None),
        ..Default::default()
    };
    let second = store(&url, other);
    second.ensure_collection(&spec(&name)).await.expect("kept");
    let found = second.layout().await.expect("layout").expect("a server");
    assert_eq!(found, layout);
    assert_eq!(
        found.differences(&other),
        ["shards 2, asked 3", "quantization int8, asked none"]
    );
    assert_eq!(second.count().await.expect("count"), 2);
}

/// A collection made with Qdrant's own client, as an operator would by hand.
async fn made_by_hand(url: &str, name: &str, dim: usize, distance: Distance) {
    let client = qdrant_client::Qdrant::from_url(url)
        .api_key(
            std::env::var("QDRANT_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
        )
        .skip_compatibility_check()
        .build()
        .expect("client");
    client
        .create_collection(
            CreateCollectionBuilder::new(name)
                .vectors_config(VectorParamsBuilder::new(dim as u64, distance)),
        )
        .await
        .expect("create by hand");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_adopts_a_collection_made_by_hand() {
    let Some(url) = url("the adoption test") else {
        return;
    };
    let name = unique("text2img_adopt");
    made_by_hand(&url, &name, DIM, Distance::Cosine).await;
    let store = store(&url, ClusterSettings::default());
    let err = store
        .ensure_collection(&spec(&name))
        .await
        .expect_err("not ours yet");
    assert!(matches!(err, StoreError::NotOurs { .. }), "{err}");
    assert!(err.to_string().contains("ingest --adopt"), "{err}");

    let wider = CollectionSpec {
        dim: DIM * 2,
        ..spec(&name)
    };
    let err = store.adopt(&wider).await.expect_err("wrong dimension");
    assert!(err.to_string().contains("8-d vectors"), "{err}");

    store.adopt(&spec(&name)).await.expect("adopt");
    store
        .adopt(&spec(&name))
        .await
        .expect("adopting again is a no-op");
    store
        .ensure_collection(&spec(&name))
        .await
        .expect("ours now");
    usable(&store).await;
    let other = CollectionSpec {
        model: "another-model".into(),
        ..spec(&name)
    };
    assert!(matches!(
        store.adopt(&other).await,
        Err(StoreError::Mismatch { .. })
    ));

    let dot = unique("text2img_adopt_dot");
    made_by_hand(&url, &dot, DIM, Distance::Dot).await;
    let err = store.adopt(&spec(&dot)).await.expect_err("dot refused");
    assert!(err.to_string().contains("not cosine"), "{err}");
    let missing = unique("text2img_adopt_missing");
    assert!(matches!(
        store.adopt(&spec(&missing)).await,
        Err(StoreError::NoCollection(_))
    ));
}
