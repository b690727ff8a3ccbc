#![cfg(not(target_arch = "wasm32"))]

//! The sentence-transformers layout of CLIP (`modules.json` + `0_CLIPModel/`, as
//! `sentence-transformers/clip-ViT-B-32` ships) against `SentenceTransformer.encode`
//! (sentence-transformers 6.3, made by `fixtures/generate_sentence_transformers.py`).

mod common;

use clip::layout::Family;
use clip::load::{self, ModelSource, NoProgress};
use clip::{Device, ImageProcessor, cosine, pixel_batch};
use common::*;

fn loaded() -> load::Loaded {
    let files = load::resolve(&ModelSource::Dir(fixture("tiny-st-clip")), &mut NoProgress)
        .expect("the tiny sentence-transformers model resolves");
    assert_eq!(files.family, Family::SentenceTransformers);
    assert!(files.weights.ends_with("0_CLIPModel/model.safetensors"));
    load::load(&files, &Device::Cpu).unwrap()
}

/// (worst cosine, largest absolute difference) over the rows.
fn worst(got: &[Vec<f32>], expected: &[Vec<f32>]) -> (f32, f32) {
    assert_eq!(got.len(), expected.len());
    got.iter()
        .zip(expected)
        .fold((1.0f32, 0.0f32), |(c, d), (g, e)| {
            (c.min(cosine(g, e)), d.max(max_abs_diff(g, e)))
        })
}

/// Every fixture string, tokenized and encoded here, equals `encode(text)`.
#[test]
fn text_embeddings_equal_sentence_transformers() {
    let m = loaded();
    let texts: Vec<String> = token_cases().into_iter().map(|(t, _)| t).collect();
    let ids = m.tokenizer.encode_batch(&texts).unwrap();
    let got = rows(&m.model.text.encode(&ids).unwrap());
    let expected = rows(&tensors("sentence_transformers.safetensors")["text_embeds"]);
    let (cos, diff) = worst(&got, &expected);
    eprintln!("text: worst cosine {cos}, max abs diff {diff}");
    assert!(
        cos >= 0.99999 && diff <= 1e-4,
        "cosine {cos}, max abs diff {diff}"
    );
}

/// Image file bytes → the product's pipeline → vision tower equals `encode(PIL image)` wherever
/// sentence-transformers' processor (transformers' default, the torchvision backend) makes the
/// same pixels as the PIL processor the product follows. Elsewhere that backend's rounding (up to
/// 2 levels on some pixels) moves the vectors by up to about 1.4e-3, still at cosine ≥ 0.99999.
/// The two 16-bit PNGs are left out: PIL converts them its own way, which the product
/// deliberately does not copy (see NOTES.md).
#[test]
fn image_embeddings_equal_sentence_transformers() {
    let m = loaded();
    let proc = ImageProcessor::for_model(&m.model.config.vision);
    let sixteen_bit: Vec<String> = image_cases()
        .iter()
        .filter(|c| c.get("alt_crop_scaled16").is_some())
        .map(|c| c["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sixteen_bit.len(), 2);
    let all = json("sentence_transformers.json")["images"]
        .as_array()
        .unwrap()
        .clone();
    let reference = rows(&tensors("sentence_transformers.safetensors")["image_embeds"]);
    let (cases, expected): (Vec<_>, Vec<_>) = all
        .iter()
        .zip(reference)
        .filter(|(c, _)| !sixteen_bit.iter().any(|f| c["file"] == f.as_str()))
        .unzip();
    let pixels = preprocess_images(&proc, cases.iter().copied());
    let batch = pixel_batch(&pixels, 224, &Device::Cpu).unwrap();
    let got = rows(&m.model.vision.forward(&batch).unwrap());
    let same = |c: &&serde_json::Value| c["processor_equals_pil"].as_bool().unwrap();
    let pick = |want: bool, v: &[Vec<f32>]| -> Vec<Vec<f32>> {
        v.iter()
            .zip(&cases)
            .filter(|(_, c)| same(c) == want)
            .map(|(r, _)| r.clone())
            .collect()
    };
    let equal = pick(true, &got);
    assert_eq!(equal.len(), 2, "images with the same pixels");
    let (cos, diff) = worst(&equal, &pick(true, &expected));
    eprintln!("images, same pixels: worst cosine {cos}, max abs diff {diff}");
    assert!(
        cos >= 0.99999 && diff <= 1e-4,
        "cosine {cos}, max abs diff {diff}"
    );
    let (cos, diff) = worst(&pick(false, &got), &pick(false, &expected));
    eprintln!("images, torchvision-backend pixels: worst cosine {cos}, max abs diff {diff}");
    assert!(
        cos >= 0.99999 && diff <= 2e-3,
        "cosine {cos}, max abs diff {diff}"
    );
}

/// The browser bundle of the sentence-transformers layout: every variant gives
/// `encode(text)`'s directions (f16 within its rounding).
#[test]
fn browser_bundle_of_sentence_transformers_gives_its_text_vectors() {
    use clip::export::Variant;
    let files = load::resolve(&ModelSource::Dir(fixture("tiny-st-clip")), &mut NoProgress).unwrap();
    let out = std::env::temp_dir().join(format!("text2img-st-bundle-{}", std::process::id()));
    let manifest = load::write_browser_bundle(&files, &Variant::ALL, &out).unwrap();
    let ids: Vec<Vec<u32>> = token_cases().into_iter().map(|(_, ids)| ids).collect();
    let expected = rows(&tensors("sentence_transformers.safetensors")["text_embeds"]);
    for variant in manifest.variants.keys() {
        let text = clip::load::bundle_text_encoder(&out, *variant).unwrap();
        let got = text.embed(&ids).unwrap();
        let min_cos = if *variant == Variant::F16 {
            0.999
        } else {
            0.99999
        };
        let (cos, _) = worst(&got, &expected);
        assert!(cos >= min_cos, "{variant:?}: worst cosine {cos}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// A snapshot saved with the slow tokenizer (`vocab.json` + `merges.txt`, no `tokenizer.json`,
/// as older sentence-transformers and transformers folders are): the tokenizer made from them
/// gives `tokenizer.json`'s ids on every string, and the model `encode(text)`'s vectors.
#[test]
fn slow_tokenizer_files_load() {
    let dir = std::env::temp_dir().join(format!("text2img-st-slow-{}", std::process::id()));
    let module = dir.join("0_CLIPModel");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::copy(
        fixture("tiny-st-clip/modules.json"),
        dir.join("modules.json"),
    )
    .unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(
            fixture(&format!("tiny-st-clip/0_CLIPModel/{f}")),
            module.join(f),
        )
        .unwrap();
    }
    // vocab.json and merges.txt as transformers' slow CLIPTokenizer saves them.
    let fast = json("tiny-clip/tokenizer.json");
    std::fs::write(
        module.join("vocab.json"),
        serde_json::to_vec(&fast["model"]["vocab"]).unwrap(),
    )
    .unwrap();
    let merges: Vec<&str> = fast["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    std::fs::write(
        module.join("merges.txt"),
        format!("#version: 0.2\n{}\n", merges.join("\n")),
    )
    .unwrap();

    let files = load::resolve(&ModelSource::Dir(dir.clone()), &mut NoProgress).unwrap();
    assert_eq!(files.merges, Some(module.join("merges.txt")));
    let m = load::load(&files, &Device::Cpu).unwrap();
    check_token_ids(&m.tokenizer, &token_cases());
    let texts: Vec<String> = token_cases().into_iter().map(|(t, _)| t).collect();
    let ids = m.tokenizer.encode_batch(&texts).unwrap();
    let got = rows(&m.model.text.encode(&ids).unwrap());
    let expected = rows(&tensors("sentence_transformers.safetensors")["text_embeds"]);
    let (cos, diff) = worst(&got, &expected);
    assert!(
        cos >= 0.99999 && diff <= 1e-4,
        "cosine {cos}, max abs diff {diff}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
