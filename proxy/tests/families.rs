//! Ingest and search with a model of another family: the tiny OpenCLIP and MobileCLIP fixtures
//! (`clip/tests/fixtures/tiny-open-clip`, `tiny-mobileclip`, `tiny-mobileclip-b`, open_clip's
//! own files) and the tiny SigLIP (`tiny-siglip`, transformers' `SiglipModel`) go through
//! `--model DIR` like any model, and the vectors stored and searched are the family's reference
//! ones (the embeddings of `generate_open_clip.py`, `generate_mobileclip.py` and
//! `generate_siglip.py`), preprocessing included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use proxy::ingest::fetch::FetchConfig;
use proxy::ingest::{Embedder, IngestOptions, IngestPaths, Quiet, run};
use proxy::layout::DataDir;
use proxy::model::{NativeTextEncoder, TextEncoder, collection_spec};
use proxy::store::edge::EdgeStore;
use proxy::store::{SearchQuery, VectorStore, point_id};
use testkit::model::load_model_dir;
use testkit::workspace;

fn fixtures() -> PathBuf {
    workspace().join("clip/tests/fixtures")
}

/// The rows of an F32 matrix in a fixture safetensors file.
fn matrix(file: &str, name: &str) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(fixtures().join(file)).expect("reference file");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let t = st.tensor(name).expect("tensor");
    let cols = t.shape()[1];
    let values: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    values.chunks(cols).map(<[f32]>::to_vec).collect()
}

fn options() -> IngestOptions {
    IngestOptions {
        batch_size: 8,
        fetch_workers: 2,
        decode_workers: 2,
        prune: false,
        shard: None,
        // Full-size decoding, as the reference pixels were made.
        full_decode: true,
        // Local files only: nothing is fetched.
        fetch: FetchConfig::default(),
    }
}

/// The fixture images copied next to an `images.tsv` listing them, in the order of `listing`
/// (a fixture JSON file with an `images` array, the rows of the reference embeddings).
fn write_images(data: &Path, listing: &str) -> Vec<String> {
    let images: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join(listing)).expect("image listing"))
            .expect("json");
    let files: Vec<String> = images["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["file"].as_str().expect("file").to_string())
        .collect();
    let mut tsv = String::from("id\turl\n");
    for f in &files {
        std::fs::copy(fixtures().join("images").join(f), data.join(f)).expect("copy");
        tsv.push_str(&format!("{f}\t{f}\n"));
    }
    std::fs::write(data.join("images.tsv"), tsv).expect("tsv");
    files
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// A family's tiny model and where its reference lives.
struct Family {
    /// The model folder under `clip/tests/fixtures`.
    dir: &'static str,
    /// The JSON file whose `images` are the rows of the image embeddings.
    listing: &'static str,
    /// The safetensors file with the reference embeddings.
    reference: &'static str,
    /// Its image and text embeddings.
    image_embeds: &'static str,
    text_embeds: &'static str,
    /// Whether they are stored unnormalised (then scaled to unit length here).
    unnormalised: bool,
    /// The vectors' dimension.
    dim: usize,
}

impl Family {
    /// The rows of one of its reference matrices, of unit length.
    fn reference(&self, name: &str) -> Vec<Vec<f32>> {
        let rows = matrix(self.reference, name);
        if !self.unnormalised {
            return rows;
        }
        rows.into_iter()
            .map(|r| {
                let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                r.into_iter().map(|x| x / norm).collect()
            })
            .collect()
    }
}

#[test]
fn an_open_clip_checkpoint_ingests_and_searches_as_open_clip() {
    ingests_and_searches_as_reference(&Family {
        dir: "tiny-open-clip",
        listing: "open_clip.json",
        reference: "open_clip.safetensors",
        image_embeds: "image_embeds_normalized.gelu",
        text_embeds: "text_embeds_normalized.gelu",
        unnormalised: false,
        dim: 16,
    });
}

/// SigLIP ranks by `sigmoid(scale · cos + bias)`, increasing in the cosine: the store's cosine
/// order is SigLIP's.
#[test]
fn a_siglip_checkpoint_ingests_and_searches_as_transformers() {
    ingests_and_searches_as_reference(&Family {
        dir: "tiny-siglip",
        listing: "open_clip.json",
        reference: "siglip.safetensors",
        image_embeds: "image_embeds",
        text_embeds: "text_embeds",
        unnormalised: true,
        dim: 32,
    });
}

/// MobileCLIP: FastViT image tower, bilinear 112-pixel crops, a text tower without causal mask.
#[test]
fn a_mobileclip_checkpoint_ingests_and_searches_as_open_clip() {
    ingests_and_searches_as_reference(&Family {
        dir: "tiny-mobileclip",
        listing: "mobileclip.json",
        reference: "mobileclip.safetensors",
        image_embeds: "image_embeds_normalized",
        text_embeds: "text_embeds_normalized",
        unnormalised: false,
        dim: 16,
    });
}

/// MobileCLIP-B: timm's ViT with a convolutional stem, 64-pixel crops, a causal text tower.
#[test]
fn a_mobileclip_b_checkpoint_ingests_and_searches_as_open_clip() {
    ingests_and_searches_as_reference(&Family {
        dir: "tiny-mobileclip-b",
        listing: "mobileclip_b.json",
        reference: "mobileclip_b.safetensors",
        image_embeds: "image_embeds_normalized",
        text_embeds: "text_embeds_normalized",
        unnormalised: false,
        dim: 16,
    });
}

fn ingests_and_searches_as_reference(family: &Family) {
    let loaded = load_model_dir(&fixtures().join(family.dir));
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let files = write_images(&data, family.listing);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store = EdgeStore::new(root.path().join("qdrant"));
    let spec = collection_spec("images", &loaded);
    assert_eq!((spec.dim, spec.model.as_str()), (family.dim, family.dir));
    runtime
        .block_on(store.ensure_collection(&spec))
        .expect("collection");

    let paths = IngestPaths::new(&data.join("images.tsv"), &DataDir::new(root.path()));
    let embedder = Embedder::new(&loaded.model, &clip::Device::Cpu);
    let report = run(
        &paths,
        &options(),
        &embedder,
        &store,
        runtime.handle(),
        &Quiet,
    )
    .expect("ingest runs");
    assert_eq!(report.indexed, files.len(), "{report:#?}");

    // Every stored vector is the reference image vector of that file (unit length).
    let reference = family.reference(family.image_embeds);
    let ids: Vec<_> = files.iter().map(|f| point_id(f)).collect();
    let records = runtime.block_on(store.get(&ids, true)).expect("get");
    assert_eq!(records.len(), files.len());
    for ((record, expected), file) in records.iter().zip(&reference).zip(&files) {
        let got = record.vector.as_ref().expect("vector");
        let cos = cosine(got, expected);
        let diff = got
            .iter()
            .zip(expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            cos >= 0.99999 && diff <= 1e-4,
            "{file}: cosine {cos}, max abs diff {diff}"
        );
    }

    // A text query ranks the images as the reference vectors do.
    let tokens: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(fixtures().join("tokens.json")).expect("tokens"))
            .expect("json");
    let query = "a photo of a cat";
    let row = tokens
        .iter()
        .position(|t| t["text"] == query)
        .expect("the query is a fixture string");
    let text_ref = &family.reference(family.text_embeds)[row];
    let mut expected: Vec<(&String, f32)> = files
        .iter()
        .zip(&reference)
        .map(|(f, v)| (f, cosine(text_ref, v)))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));

    let vector = NativeTextEncoder::new(&loaded)
        .embed_text(query)
        .expect("text vector");
    assert!(cosine(&vector, text_ref) >= 0.99999);
    let hits = runtime
        .block_on(store.search(&SearchQuery {
            using: proxy::store::VectorName::Image,
            vector,
            limit: 5,
            offset: 0,
            filter: Default::default(),
        }))
        .expect("search");
    let by_id: HashMap<_, _> = files.iter().map(|f| (point_id(f), f)).collect();
    let got: Vec<&String> = hits.iter().map(|h| by_id[&h.id]).collect();
    let want: Vec<&String> = expected.iter().take(5).map(|(f, _)| *f).collect();
    assert_eq!(got, want);
    for (hit, (_, score)) in hits.iter().zip(&expected) {
        assert!(
            (hit.score - score).abs() <= 1e-4,
            "{} vs {score}",
            hit.score
        );
    }
}
