//! `ingest --shard K/N` on the tiny fixture model: the shares run one after another into one
//! store are exactly one unsharded run (every row once, the same points), a share's re-run is a
//! no-op, `--prune` with a share prunes that share only, and bad `--shard` values are usage
//! errors that name the flag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proxy::ingest::{Embedder, IngestOptions, IngestPaths, Quiet, Report, Shard, run};
use proxy::layout::DataDir;
use proxy::store::edge::EdgeStore;
use proxy::store::{Record, VectorStore, all_records};
use testkit::{tiny_model, tiny_spec};

/// Rows `img0`..`img9` of local PNGs, and a row whose file is missing (`missing`, share 2 of 2).
/// Shares of 2: img0, 3, 5, 7, 9 → 1; img1, 2, 4, 6, 8 and `missing` → 2.
fn write_images(dir: &Path, ids: &[usize]) -> PathBuf {
    let mut tsv = String::from("id\turl\tcaption\n");
    for &i in ids {
        let png = dir.join(format!("{i}.png"));
        if !png.exists() {
            image::RgbImage::from_fn(24, 20, |x, y| {
                image::Rgb([(x * 9) as u8, (y * 11) as u8, (i * 25) as u8])
            })
            .save(&png)
            .expect("png");
        }
        tsv.push_str(&format!("img{i}\t{i}.png\tpicture {i}\n"));
    }
    tsv.push_str("missing\tnot-there.png\tgone\n");
    let path = dir.join("images.tsv");
    std::fs::write(&path, tsv).expect("tsv");
    path
}

/// One storage directory with its embedded store.
struct Storage {
    root: tempfile::TempDir,
    store: EdgeStore,
    runtime: tokio::runtime::Runtime,
    loaded: clip::load::Loaded,
}

impl Storage {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let loaded = tiny_model();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let store = EdgeStore::new(root.path().join("qdrant"));
        runtime
            .block_on(store.ensure_collection(&tiny_spec(&loaded)))
            .expect("collection");
        Self {
            root,
            store,
            runtime,
            loaded,
        }
    }

    fn data(&self) -> DataDir {
        DataDir::new(self.root.path())
    }

    /// The paths as the binary chooses them: a failures list per share.
    fn paths(&self, tsv: &Path, shard: Option<Shard>) -> IngestPaths {
        let paths = IngestPaths::new(tsv, &self.data());
        match shard {
            Some(shard) => paths.for_shard(&self.data(), shard),
            None => paths,
        }
    }

    fn ingest(&self, tsv: &Path, shard: Option<Shard>, prune: bool) -> Report {
        let device = clip::Device::Cpu;
        let options = IngestOptions {
            batch_size: 3,
            fetch_workers: 2,
            decode_workers: 2,
            prune,
            shard,
            ..IngestOptions::default()
        };
        run(
            &self.paths(tsv, shard),
            &options,
            &Embedder::new(&self.loaded.model, &device),
            &self.store,
            self.runtime.handle(),
            &Quiet,
        )
        .expect("ingest runs")
    }

    /// Every point: its row id → (payload without the local file path, vector).
    fn points(&self) -> BTreeMap<String, (serde_json::Value, Vec<f32>)> {
        let records: Vec<Record> = self
            .runtime
            .block_on(all_records(&self.store))
            .expect("scroll");
        let ids: Vec<_> = records.iter().map(|r| r.id).collect();
        let with_vectors = self
            .runtime
            .block_on(self.store.get(&ids, true))
            .expect("get");
        with_vectors
            .into_iter()
            .map(|mut r| {
                let id = r.payload["id"].as_str().unwrap_or("?").to_string();
                // The same file under two storage roots: compare by the URL as written.
                r.payload.remove("file");
                let vector = r.vector.unwrap_or_default();
                (id, (serde_json::Value::Object(r.payload), vector))
            })
            .collect()
    }
}

fn shard(text: &str) -> Shard {
    text.parse().expect("shard")
}

#[test]
fn shares_one_after_another_are_one_unsharded_run() {
    let images = tempfile::tempdir().expect("tempdir");
    let all: Vec<usize> = (0..10).collect();
    let tsv = write_images(images.path(), &all);

    let whole = Storage::new();
    let unsharded = whole.ingest(&tsv, None, false);
    assert_eq!((unsharded.indexed, unsharded.failures.len()), (10, 1));

    let shared = Storage::new();
    let first = shared.ingest(&tsv, Some(shard("1/2")), false);
    let second = shared.ingest(&tsv, Some(shard("2/2")), false);
    // Each share took its rows, none twice, and said how many of all.
    assert_eq!((first.rows, first.tsv_rows, first.indexed), (5, 11, 5));
    assert_eq!((second.rows, second.tsv_rows, second.indexed), (6, 11, 5));
    assert_eq!(first.shard, Some(shard("1/2")));
    assert_eq!(first.points, 5, "share 1 alone wrote its 5 points");
    assert_eq!(second.points, 10);
    // The missing file is share 2's row: reported once, by share 2, in its own list.
    assert!(first.failures.is_empty(), "{:?}", first.failures);
    assert_eq!(second.failures.len(), 1);
    assert_eq!(second.failures[0].id.as_deref(), Some("missing"));
    let data = shared.data();
    assert!(!data.ingest_failures_of(1, 2).exists());
    let listed = std::fs::read_to_string(data.ingest_failures_of(2, 2)).expect("share 2's list");
    assert!(listed.contains("missing"), "{listed}");
    assert!(
        !data.ingest_failures().exists(),
        "the unsharded list is not written"
    );

    // The same points, payloads and vectors as the unsharded run: every row once.
    let (a, b) = (whole.points(), shared.points());
    assert_eq!(a.len(), 10);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same rows"
    );
    for (id, (payload, vector)) in &a {
        assert_eq!(&b[id].0, payload, "{id}: payload");
        // Batched differently, so equal to float rounding, not bit for bit.
        let gap = vector
            .iter()
            .zip(&b[id].1)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert_eq!(vector.len(), b[id].1.len(), "{id}");
        assert!(gap < 1e-5, "{id}: vectors differ by {gap}");
    }
    // A thumbnail per point, as unsharded.
    for i in 0..10 {
        let thumb =
            proxy::ingest::thumb_path(&data.thumbs(), proxy::store::point_id(&format!("img{i}")));
        assert!(thumb.is_file(), "img{i}");
    }

    // A share's re-run is a no-op: every row of its share unchanged, nothing else touched.
    let again = shared.ingest(&tsv, Some(shard("1/2")), false);
    assert_eq!(
        (again.indexed, again.updated, again.unchanged, again.points),
        (0, 0, 5, 10),
        "{again:#?}"
    );
    assert_eq!(shared.points(), b);
}

#[test]
fn prune_with_a_share_prunes_only_that_share() {
    let images = tempfile::tempdir().expect("tempdir");
    let tsv = write_images(images.path(), &(0..10).collect::<Vec<_>>());
    let storage = Storage::new();
    storage.ingest(&tsv, None, false);
    // img7 and img9 (share 1) and img8 (share 2) leave the TSV.
    write_images(images.path(), &[0, 1, 2, 3, 4, 5, 6]);

    let first = storage.ingest(&tsv, Some(shard("1/2")), true);
    assert_eq!((first.pruned, first.points), (2, 8), "{first:#?}");
    let ids: Vec<String> = storage.points().into_keys().collect();
    assert!(ids.contains(&"img8".to_string()), "share 2's point is kept");
    assert!(!ids.contains(&"img7".to_string()) && !ids.contains(&"img9".to_string()));

    let second = storage.ingest(&tsv, Some(shard("2/2")), true);
    assert_eq!((second.pruned, second.points), (1, 7), "{second:#?}");
    // Together, one whole prune: an unsharded prune finds nothing left to delete.
    let whole = storage.ingest(&tsv, None, true);
    assert_eq!((whole.pruned, whole.points, whole.indexed), (0, 7, 0));
}

const INGEST: &str = env!("CARGO_BIN_EXE_ingest");

fn ingest_binary(args: &[&str]) -> (Option<i32>, String) {
    let out = testkit::command(INGEST)
        .args(args)
        .output()
        .expect("running ingest");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_takes_its_share_and_says_so() {
    let images = tempfile::tempdir().expect("tempdir");
    let tsv = write_images(images.path(), &(0..10).collect::<Vec<_>>());
    let storage = tempfile::tempdir().expect("tempdir");
    let env = storage.path().join("test.env");
    std::fs::write(&env, "").expect("env file");
    let model = testkit::tiny_model_dir();
    let args = |share: &str| {
        vec![
            "--tsv".to_string(),
            tsv.display().to_string(),
            "--storage".to_string(),
            storage.path().display().to_string(),
            "--model".to_string(),
            model.display().to_string(),
            "--env-file".to_string(),
            env.display().to_string(),
            "--shard".to_string(),
            share.to_string(),
        ]
    };
    let run = |share: &str| {
        let args = args(share);
        ingest_binary(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (code, log) = run("2/2");
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("shard 2/2: 6 of 11 rows"), "{log}");
    assert!(
        DataDir::new(storage.path())
            .ingest_failures_of(2, 2)
            .is_file()
    );

    // Bad values: a usage error (exit 2) that names the flag and says what is wrong, before
    // anything is loaded or written.
    for (bad, says) in [
        ("0/2", "K must be at least 1"),
        ("3/2", "K must be at most N"),
        ("1/0", "N must be at least 1"),
        ("1/2000", "N must be at most 1024"),
        ("half", "no `/`"),
        ("1/x", "whole numbers"),
        ("", "no `/`"),
    ] {
        let (code, log) = run(bad);
        assert_eq!(code, Some(2), "{bad:?}: {log}");
        assert!(log.contains("--shard"), "{bad:?}: {log}");
        assert!(log.contains(says), "{bad:?}: {log}");
    }
}
