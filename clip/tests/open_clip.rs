#![cfg(not(target_arch = "wasm32"))]

//! The OpenCLIP layout against open_clip itself (open-clip-torch 3.3, see `fixtures/NOTES.md`,
//! made by `fixtures/generate_open_clip.py`): the layout is told by its files, token ids equal
//! open_clip's wherever its text cleaning leaves the string alone, the crops and normalised
//! pixels equal open_clip's val transform exactly, and text and image embeddings agree to
//! cosine ≥ 0.99999 and max abs ≤ 1e-4.

mod common;

use clip::export::Variant;
use clip::layout::Family;
use clip::load::{self, ModelSource, NoProgress};
use clip::{ClipModel, Device, ImageProcessor, Transform, Weights, pixel_batch};
use common::*;

/// The tiny open_clip model, loaded through the layout detection like any model directory.
fn loaded() -> load::Loaded {
    let files = load::resolve(
        &ModelSource::Dir(fixture("tiny-open-clip")),
        &mut NoProgress,
    )
    .expect("the tiny open_clip model resolves");
    assert_eq!(files.family, Family::OpenClip);
    load::load(&files, &Device::Cpu).unwrap()
}

/// The model with the config of `dir` (`tiny-open-clip` or `tiny-open-clip-quickgelu`) and the
/// shared weights.
fn model_with_config(dir: &str) -> ClipModel {
    let config = Family::OpenClip
        .config(&read(&format!("{dir}/open_clip_config.json")))
        .unwrap();
    let weights = Family::OpenClip
        .weights(read("tiny-open-clip/open_clip_model.safetensors"))
        .unwrap();
    let weights = Weights::from_safetensors(weights, &Device::Cpu).unwrap();
    ClipModel::new(&config, &weights).unwrap()
}

/// open_clip's ids per tokens.json row, and why its cleaning may make them differ.
fn open_clip_tokens() -> Vec<(Vec<u32>, Option<String>)> {
    parse_open_clip_tokens(&read("open_clip_tokens.json"))
}

#[test]
fn open_clip_layout_is_detected_and_configured() {
    let m = loaded();
    assert_eq!(m.id, "tiny-open-clip");
    let c = &m.model.config;
    assert_eq!(
        (c.projection_dim, c.text.hidden_size, c.vision.hidden_size),
        (16, 24, 32)
    );
    assert_eq!(
        (c.text.intermediate_size, c.vision.num_attention_heads),
        (48, 4)
    );
    assert_eq!(c.text.activation, clip::Activation::Gelu);
    let p = c.vision.preprocessing;
    assert_eq!(
        (p.mean, p.std, p.transform),
        ([0.5; 3], [0.5; 3], Transform::OpenClip)
    );
    let qg = model_with_config("tiny-open-clip-quickgelu");
    assert_eq!(qg.config.vision.activation, clip::Activation::QuickGelu);
}

/// The tokenizer gives open_clip's ids for every string its text cleaning (ftfy, HTML
/// entities, Python's lowercasing) leaves alone; the others are listed in NOTES.md.
#[test]
fn token_ids_equal_open_clip() {
    let tok = loaded().tokenizer;
    let cases = token_cases();
    let reference = open_clip_tokens();
    assert_eq!(cases.len(), reference.len());
    let mut compared = 0;
    let mut wrong = Vec::new();
    for ((text, _), (ids, reason)) in cases.iter().zip(&reference) {
        if reason.is_some() {
            continue;
        }
        compared += 1;
        let got = tok.encode(text).unwrap();
        if &got != ids {
            wrong.push(format!("{text:?}\n  got      {got:?}\n  open_clip {ids:?}"));
        }
    }
    assert!(compared >= 350, "only {compared} strings compared");
    assert!(
        wrong.is_empty(),
        "{} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The crop equals open_clip's (torchvision's rounded center-crop offset included) byte for
/// byte on every fixture image, and the normalisation equals its ToTensor + Normalize bit for
/// bit on every byte value.
#[test]
fn pixels_equal_open_clip() {
    let proc = ImageProcessor::for_model(&loaded().model.config.vision);
    let ramp = image::RgbImage::from_fn(256, 1, |x, _| image::Rgb([x as u8; 3]));
    let px = proc.normalize(&ramp);
    let lut = rows(&tensors("open_clip.safetensors")["normalize_lut"]);
    for c in 0..3 {
        let (got, expected) = (&px[c * 256..(c + 1) * 256], &lut[c]);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(got), bits(expected), "channel {c}");
    }
    let images = json("open_clip.json")["images"].as_array().unwrap().clone();
    let mut report = Vec::new();
    for case in &images {
        let file = case["file"].as_str().unwrap();
        let expected = image::load_from_memory(&read(case["crop"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        let crop = proc.resize_crop(&proc.decode(&read(&format!("images/{file}"))).unwrap());
        if crop != expected {
            report.push(file.to_string());
        }
    }
    assert_eq!(images.len(), 28);
    assert!(report.is_empty(), "crops differ: {report:?}");
    // The two rounded offsets really differ from transformers' floored ones.
    let rounded = images
        .iter()
        .filter(|c| c["crop"].as_str().unwrap().ends_with(".open_clip.png"))
        .count();
    assert_eq!(rounded, 2);
}

/// Text embeddings from open_clip's own ids equal `encode_text`, for both activations.
#[test]
fn text_embeddings_equal_open_clip() {
    let ids: Vec<Vec<u32>> = open_clip_tokens().into_iter().map(|(ids, _)| ids).collect();
    let reference = tensors("open_clip.safetensors");
    for (dir, act) in [
        ("tiny-open-clip", "gelu"),
        ("tiny-open-clip-quickgelu", "quick_gelu"),
    ] {
        let got = model_with_config(dir).text.encode(&ids).unwrap();
        assert_rows_equal(
            &format!("text {act}"),
            &rows(&got),
            &rows(&reference[&format!("text_embeds.{act}")]),
        );
    }
}

/// Image file bytes → the product's pipeline with open_clip's transform → vision tower equals
/// `encode_image` of open_clip's pixels, for both activations.
#[test]
fn image_embeddings_equal_open_clip() {
    let reference = tensors("open_clip.safetensors");
    let images = json("open_clip.json")["images"].as_array().unwrap().clone();
    for (dir, act) in [
        ("tiny-open-clip", "gelu"),
        ("tiny-open-clip-quickgelu", "quick_gelu"),
    ] {
        let model = model_with_config(dir);
        let proc = ImageProcessor::for_model(&model.config.vision);
        let pixels = preprocess_images(&proc, &images);
        let batch = pixel_batch(&pixels, 224, &Device::Cpu).unwrap();
        let got = model.vision.forward(&batch).unwrap();
        assert_rows_equal(
            &format!("image {act}"),
            &rows(&got),
            &rows(&reference[&format!("image_embeds.{act}")]),
        );
    }
}

/// The browser bundle of an open_clip checkpoint is transformers' CLIP (config and tensor
/// names), and every variant gives open_clip's text vectors: f32 and q8 (whose tiny matrices
/// stay f32) as tightly as the checkpoint, f16 within its rounding.
#[test]
fn browser_bundle_of_open_clip_gives_its_text_vectors() {
    let files = load::resolve(
        &ModelSource::Dir(fixture("tiny-open-clip")),
        &mut NoProgress,
    )
    .unwrap();
    let out =
        std::env::temp_dir().join(format!("text2img-open-clip-bundle-{}", std::process::id()));
    let manifest = load::write_browser_bundle(&files, &Variant::ALL, &out).unwrap();
    assert_eq!((manifest.dim, manifest.context_length), (16, 77));
    let ids: Vec<Vec<u32>> = open_clip_tokens().into_iter().map(|(ids, _)| ids).collect();
    let reference = rows(&tensors("open_clip.safetensors")["text_embeds_normalized.gelu"]);
    for variant in manifest.variants.keys() {
        let text = bundle_text_tower(&out, *variant);
        let got = text.embed(&ids).unwrap();
        let (min_cos, max_abs) = match variant {
            Variant::F16 => (0.999, 1e-2),
            _ => (0.99999, 1e-5),
        };
        let what = format!("{variant:?} export");
        assert_rows_close(&what, &got, &reference, (min_cos, max_abs), |_| false);
    }
    std::fs::remove_dir_all(&out).unwrap();
}
