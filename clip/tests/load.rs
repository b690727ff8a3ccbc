#![cfg(not(target_arch = "wasm32"))]

//! Reading models from disk and writing the browser bundle (the crate's only I/O), and the
//! image decoder's refusals.

mod common;

use clip::export::{Manifest, Variant, sha256_hex};
use clip::load::{self, ModelSource, NoProgress};
use clip::{Device, ImageProcessor};
use common::*;

#[test]
fn model_sources_parse() {
    let dir = fixture("tiny-clip");
    assert_eq!(
        ModelSource::parse(dir.to_str().unwrap()),
        ModelSource::Dir(dir.clone())
    );
    assert_eq!(
        ModelSource::parse("openai/clip-vit-base-patch32"),
        ModelSource::Hub {
            repo: "openai/clip-vit-base-patch32".into(),
            revision: "main".into()
        }
    );
    assert_eq!(
        ModelSource::parse("laion/x@v2"),
        ModelSource::Hub {
            repo: "laion/x".into(),
            revision: "v2".into()
        }
    );
}

/// A local model directory loads with no network and gives the reference embeddings.
#[test]
fn local_directory_loads() {
    let files = load::resolve(
        &ModelSource::parse(fixture("tiny-clip").to_str().unwrap()),
        &mut NoProgress,
    )
    .unwrap();
    let loaded = load::load(&files, &Device::Cpu).unwrap();
    assert_eq!(loaded.id, "tiny-clip");
    let (text, ids) = &token_cases()[7];
    assert_eq!(&loaded.tokenizer.encode(text).unwrap(), ids);
    let reference = rows(&tensors("reference.safetensors")["text_embeds_normalized.quick_gelu"]);
    let got = loaded.model.text.embed(std::slice::from_ref(ids)).unwrap();
    assert!(max_abs_diff(&got[0], &reference[7]) <= 1e-5);
}

/// A hub model already in the Hugging Face cache resolves with no network: the cache layout of
/// `huggingface_hub` (refs/<revision> holds the commit, snapshots/<commit>/ the files).
#[test]
fn cached_hub_model_resolves_offline() {
    let hub = std::env::temp_dir().join(format!("text2img-hf-cache-{}", std::process::id()));
    let repo = hub.join("models--someone--tiny-clip");
    let snapshot = repo.join("snapshots/0123456789abcdef");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123456789abcdef").unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture(&format!("tiny-clip/{f}")), snapshot.join(f)).unwrap();
    }
    let source = ModelSource::parse("someone/tiny-clip");
    let resolved = load::resolve_in(&source, Some(&hub), &mut NoProgress);
    if cfg!(feature = "hub") {
        let files = resolved.unwrap();
        assert_eq!(files.weights, snapshot.join("model.safetensors"));
        assert_eq!(
            load::load(&files, &Device::Cpu).unwrap().id,
            "someone/tiny-clip"
        );
    } else {
        // Without the feature a repository id is refused, and says why.
        let err = resolved.unwrap_err().to_string();
        assert!(err.contains("no hub support"), "{err}");
    }
    std::fs::remove_dir_all(&hub).unwrap();
}

/// An OpenCLIP repository in the cache (open_clip's files and the tokenizer only) resolves from
/// the cache alone, as that family: no request for the transformers files it lacks.
#[test]
fn cached_open_clip_hub_model_resolves_offline() {
    let hub = std::env::temp_dir().join(format!("text2img-hf-cache-oc-{}", std::process::id()));
    let repo = hub.join("models--someone--tiny-open-clip");
    let snapshot = repo.join("snapshots/0123456789abcdef");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123456789abcdef").unwrap();
    for f in [
        "open_clip_config.json",
        "open_clip_model.safetensors",
        "tokenizer.json",
    ] {
        std::fs::copy(fixture(&format!("tiny-open-clip/{f}")), snapshot.join(f)).unwrap();
    }
    let source = ModelSource::parse("someone/tiny-open-clip");
    let resolved = load::resolve_in(&source, Some(&hub), &mut NoProgress);
    if cfg!(feature = "hub") {
        let files = resolved.unwrap();
        assert_eq!(files.family, clip::layout::Family::OpenClip);
        assert_eq!(files.weights, snapshot.join("open_clip_model.safetensors"));
        let loaded = load::load(&files, &Device::Cpu).unwrap();
        assert_eq!(loaded.model.config.projection_dim, 16);
    } else {
        let err = resolved.unwrap_err().to_string();
        assert!(err.contains("no hub support"), "{err}");
    }
    std::fs::remove_dir_all(&hub).unwrap();
}

/// Missing files are reported with their path.
#[test]
fn missing_model_files_are_named() {
    let empty = std::env::temp_dir().join(format!("text2img-empty-model-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let err = load::resolve(&ModelSource::Dir(empty.clone()), &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&empty.join("config.json").display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(&empty).unwrap();
}

/// The bundle holds every file the manifest lists, with the listed size and sha256.
#[test]
fn browser_bundle_matches_its_manifest() {
    let files = load::resolve(&ModelSource::Dir(fixture("tiny-clip")), &mut NoProgress).unwrap();
    let out = std::env::temp_dir().join(format!("text2img-bundle-{}", std::process::id()));
    let manifest = load::write_browser_bundle(&files, &Variant::ALL, &out).unwrap();
    let on_disk: Manifest =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(on_disk, manifest);
    assert_eq!((manifest.dim, manifest.context_length), (16, 77));
    // Keyed by the variants' names, every variant once.
    assert_eq!(
        manifest.variants.keys().copied().collect::<Vec<_>>(),
        [Variant::F16, Variant::F32, Variant::Q5, Variant::Q8]
    );
    for entry in manifest
        .variants
        .values()
        .chain([&manifest.config, &manifest.tokenizer])
    {
        let data = std::fs::read(out.join(&entry.file)).unwrap();
        assert_eq!(
            (data.len() as u64, sha256_hex(&data)),
            (entry.bytes, entry.sha256.clone()),
            "{}",
            entry.file
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// A PNG whose header announces `width`×`height` pixels (and holds one row of data).
fn png_with_header(width: u32, height: u32) -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::new(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    // IHDR data starts after the 8-byte signature, the 4-byte length and the 4-byte type.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn check_refused(bytes: &[u8], expected: &str) {
    match ImageProcessor::default().preprocess(bytes) {
        Ok(_) => panic!("decoded, expected an error containing {expected:?}"),
        Err(e) => assert!(
            e.to_string().contains(expected),
            "got {e:?}, expected {expected:?}"
        ),
    }
}

#[test]
fn bad_images_are_refused_clearly() {
    // A decompression bomb is refused from its header, before any allocation.
    check_refused(
        &png_with_header(20_000, 20_000),
        "20000x20000 = 400000000 pixels, more than the limit",
    );
    let jpeg = read("images/jpeg_420_640x480.jpg");
    check_refused(&jpeg[..jpeg.len() / 3], "truncated JPEG");
    check_refused(&jpeg[..jpeg.len() - 2], "truncated JPEG");
    check_refused(b"", "empty file");
    check_refused(
        b"<!doctype html><html><body>404</body></html>",
        "not an image",
    );
    check_refused(&png_with_header(0, 5), "cannot decode image");
}
