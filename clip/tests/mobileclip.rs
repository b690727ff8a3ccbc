#![cfg(not(target_arch = "wasm32"))]

//! MobileCLIP in open_clip's layout against open_clip and timm themselves (open-clip-torch 3.3,
//! timm 1.0.31, see `fixtures/NOTES.md`, made by `fixtures/generate_mobileclip.py`): the tiny
//! model's FastViT structure is read from its tensors, token ids equal open_clip's, the crops
//! (bilinear resize) and normalised pixels equal open_clip's val transform exactly, and text
//! (no causal mask) and image embeddings agree to cosine ≥ 0.99999 and max abs ≤ 1e-4.

mod common;

use clip::export::Variant;
use clip::fastvit::FastVit;
use clip::layout::Family;
use clip::load::{self, ModelSource, NoProgress};
use clip::{
    ClipModel, Device, ImageProcessor, Interpolation, Transform, VisionTower, Weights, pixel_batch,
};
use common::*;

const DIR: &str = "tiny-mobileclip";

/// The tiny MobileCLIP, loaded through the layout detection like any model directory.
fn loaded() -> load::Loaded {
    let files = load::resolve(&ModelSource::Dir(fixture(DIR)), &mut NoProgress)
        .expect("the tiny MobileCLIP resolves");
    assert_eq!(files.family, Family::OpenClip);
    load::load(&files, &Device::Cpu).unwrap()
}

/// The checkpoint's tensors under the names the model code reads.
fn weights() -> Weights<'static> {
    let bytes = Family::OpenClip
        .weights(read(&format!("{DIR}/open_clip_model.safetensors")))
        .unwrap();
    Weights::from_safetensors(bytes, &Device::Cpu).unwrap()
}

/// The tiny model with `open_clip_config.json` edited by `edit`.
fn with_config(edit: impl FnOnce(&mut serde_json::Value)) -> clip::Result<ClipModel> {
    let mut config = json(&format!("{DIR}/open_clip_config.json"));
    edit(&mut config);
    let config = Family::OpenClip.config(config.to_string().as_bytes())?;
    ClipModel::new(&config, &weights())
}

/// open_clip's ids per tokens.json row.
fn open_clip_ids() -> Vec<Vec<u32>> {
    parse_open_clip_tokens(&read("open_clip_tokens.json"))
        .into_iter()
        .map(|(ids, _)| ids)
        .collect()
}

#[test]
fn mobileclip_is_detected_and_configured() {
    let m = loaded();
    assert_eq!(m.id, DIR);
    let c = &m.model.config;
    assert_eq!(
        c.vision.tower,
        VisionTower::FastVitMci {
            timm_model_name: "fastvit_mci_tiny".into()
        }
    );
    assert_eq!((c.projection_dim, c.vision.image_size), (16, 112));
    assert!(!c.text.causal, "no_causal_mask: true");
    assert_eq!((c.text.hidden_size, c.text.num_attention_heads), (8, 2));
    let p = c.vision.preprocessing;
    assert_eq!(
        (p.mean, p.std, p.transform, p.interpolation),
        (
            [0.0; 3],
            [1.0; 3],
            Transform::OpenClip,
            Interpolation::Bilinear
        )
    );
}

/// The structure read from the tensors is the one timm built (`mobileclip.json`).
#[test]
fn fastvit_structure_comes_from_the_tensors() {
    let tower = FastVit::new(&weights().pp("visual.trunk"), "fastvit_mci_tiny", 16).unwrap();
    let reference = json("mobileclip.json")["structure"]["stages"].clone();
    let expected: Vec<(usize, usize, &str)> = reference
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let kind = match s["blocks"][0].as_str().unwrap() {
                "AttentionBlock" => "attention",
                _ => "repmixer",
            };
            (
                s["depth"].as_u64().unwrap() as usize,
                s["width"].as_u64().unwrap() as usize,
                kind,
            )
        })
        .collect();
    assert_eq!(tower.structure().stages, expected);
    assert_eq!(
        expected,
        [
            (1, 8, "repmixer"),
            (2, 16, "repmixer"),
            (1, 32, "repmixer"),
            (2, 64, "attention")
        ]
    );
}

/// A config naming a real MCi whose depths and widths the checkpoint does not have is refused,
/// as are the MCi variants this tower does not implement.
#[test]
fn a_known_variant_must_match_the_tensors() {
    let named = |name: &str| {
        with_config(|c| c["model_cfg"]["vision_cfg"]["timm_model_name"] = name.into())
            .unwrap_err()
            .to_string()
    };
    let err = named("fastvit_mci1");
    assert!(
        err.contains("fastvit_mci1") && err.contains("(4, 64), (12, 128)"),
        "{err}"
    );
    assert!(named("fastvit_mci3").contains("fastvit_mci3"));
    assert!(named("convnext_base").contains("timm vision tower"));
}

#[test]
fn token_ids_equal_open_clip() {
    let tok = loaded().tokenizer;
    let cases = token_cases();
    let reference = parse_open_clip_tokens(&read("open_clip_tokens.json"));
    let mut compared = 0;
    for ((text, _), (ids, reason)) in cases.iter().zip(&reference) {
        if reason.is_none() {
            assert_eq!(&tok.encode(text).unwrap(), ids, "{text:?}");
            compared += 1;
        }
    }
    assert!(compared >= 350, "only {compared} strings compared");
}

/// The 112×112 crop (Pillow's bilinear filter, torchvision's rounded offset) equals open_clip's
/// byte for byte on every fixture image, and the normalisation (mean 0, std 1) equals its
/// ToTensor + Normalize bit for bit on every byte value.
#[test]
fn pixels_equal_open_clip() {
    let proc = ImageProcessor::for_model(&loaded().model.config.vision);
    let ramp = image::RgbImage::from_fn(256, 1, |x, _| image::Rgb([x as u8; 3]));
    let px = proc.normalize(&ramp);
    let lut = rows(&tensors("mobileclip.safetensors")["normalize_lut"]);
    for c in 0..3 {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&px[c * 256..(c + 1) * 256]),
            bits(&lut[c]),
            "channel {c}"
        );
    }
    let images = json("mobileclip.json")["images"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(images.len(), 28);
    let mut wrong = Vec::new();
    for case in &images {
        let file = case["file"].as_str().unwrap();
        let expected = image::load_from_memory(&read(case["crop"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        let crop = proc.resize_crop(&proc.decode(&read(&format!("images/{file}"))).unwrap());
        if crop != expected {
            let diff = crop
                .as_raw()
                .iter()
                .zip(expected.as_raw())
                .filter(|(a, b)| a != b)
                .count();
            wrong.push(format!("{file}: {diff} bytes differ"));
        }
    }
    assert!(wrong.is_empty(), "crops differ: {wrong:?}");
}

/// Text embeddings equal `encode_text` of open_clip's ids zero-padded to 77: through `encode`
/// (which pads a tower without causal mask to the full context) and through `forward_ids` on
/// the padded ids.
#[test]
fn text_embeddings_equal_open_clip() {
    let ids = open_clip_ids();
    let expected = rows(&tensors("mobileclip.safetensors")["text_embeds"]);
    let text = loaded().model.text;
    assert_rows_equal("text", &rows(&text.encode(&ids).unwrap()), &expected);
    // In batches of unequal lengths, as the proxy sends them.
    let batched: Vec<Vec<f32>> = ids
        .chunks(37)
        .flat_map(|chunk| rows(&text.encode(chunk).unwrap()))
        .collect();
    assert_rows_equal("text, batches of 37", &batched, &expected);
    let padded: Vec<u32> = ids[..8]
        .iter()
        .flat_map(|r| {
            r.iter()
                .copied()
                .chain(std::iter::repeat_n(0, 77 - r.len()))
        })
        .collect();
    let padded = clip::Tensor::from_vec(padded, (8, 77), &Device::Cpu).unwrap();
    assert_rows_equal(
        "text, forward_ids",
        &rows(&text.forward_ids(&padded).unwrap()),
        &expected[..8],
    );
}

/// Image file bytes → the product's pipeline with MobileCLIP's transform → FastViT equals
/// `encode_image` of open_clip's pixels.
#[test]
fn image_embeddings_equal_open_clip() {
    let model = loaded().model;
    let proc = ImageProcessor::for_model(&model.config.vision);
    let images = json("mobileclip.json")["images"]
        .as_array()
        .unwrap()
        .clone();
    let pixels = preprocess_images(&proc, &images);
    let batch = pixel_batch(&pixels, 112, &Device::Cpu).unwrap();
    let expected = rows(&tensors("mobileclip.safetensors")["image_embeds"]);
    assert_rows_equal(
        "image",
        &rows(&model.vision.forward(&batch).unwrap()),
        &expected,
    );
    // One at a time too: nothing mixes images of a batch.
    let first = pixel_batch(&pixels[..1], 112, &Device::Cpu).unwrap();
    assert_rows_equal(
        "image, alone",
        &rows(&model.vision.forward(&first).unwrap()),
        &expected[..1],
    );
}

/// The browser bundle of MobileCLIP: its config says the tower is not causal, and every variant
/// gives open_clip's text vectors (f32 as tightly as the checkpoint; f16 and q8, which
/// quantises the 32-wide `fc2` matrices, within their rounding).
#[test]
fn browser_bundle_of_mobileclip_gives_its_text_vectors() {
    let files = load::resolve(&ModelSource::Dir(fixture(DIR)), &mut NoProgress).unwrap();
    let out =
        std::env::temp_dir().join(format!("text2img-mobileclip-bundle-{}", std::process::id()));
    let manifest = load::write_browser_bundle(&files, &Variant::ALL, &out).unwrap();
    assert_eq!((manifest.dim, manifest.context_length), (16, 77));
    let config = clip::ClipConfig::from_json(&std::fs::read(out.join("config.json")).unwrap())
        .expect("the bundle's config.json is a transformers CLIP config");
    assert!(
        !config.text.causal,
        "the bundle's config keeps the missing causal mask"
    );
    let ids = open_clip_ids();
    let reference = rows(&tensors("mobileclip.safetensors")["text_embeds_normalized"]);
    for variant in manifest.variants.keys() {
        let text = bundle_text_tower(&out, *variant);
        let got = text.embed(&ids).unwrap();
        let (min_cos, max_abs) = match variant {
            Variant::F32 => (0.99999, 1e-5),
            Variant::F16 | Variant::Q8 => (0.999, 1e-2),
            Variant::Q5 => (0.99, 5e-2),
        };
        let what = format!("{variant:?} export");
        assert_rows_close(&what, &got, &reference, (min_cos, max_abs), |_| false);
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// Opt-in: a real-size MobileCLIP with random weights (`fixtures/generate_mobileclip_real.py`,
/// not committed: 150–200 MB) in the folder `TEXT2IMG_MOBILECLIP_REAL` names loads through the
/// same code path, its structure checked against the config's `fastvit_mci*` or
/// `vit_base_mci_224`, and equals open_clip on its two random images and one text.
#[test]
fn real_size_mobileclip_equals_open_clip_when_generated() {
    let Some(dir) = std::env::var_os("TEXT2IMG_MOBILECLIP_REAL") else {
        eprintln!("SKIPPED: real-size MobileCLIP: TEXT2IMG_MOBILECLIP_REAL is not set");
        return;
    };
    let files = load::resolve(&ModelSource::Dir(dir.clone().into()), &mut NoProgress).unwrap();
    let m = load::load(&files, &Device::Cpu).unwrap();
    assert!(matches!(
        m.model.config.vision.tower,
        VisionTower::FastVitMci { .. } | VisionTower::MciVit { .. }
    ));
    let path = std::path::Path::new(&dir).join("reference.safetensors");
    let r = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let images = m.model.vision.forward(&r["pixels"]).unwrap();
    assert_rows_equal("real-size image", &rows(&images), &rows(&r["image"]));
    let ids: Vec<u32> = r["ids"].to_vec2::<i64>().unwrap()[0]
        .iter()
        .map(|&i| i as u32)
        .collect();
    let text = m.model.text.encode(&[ids]).unwrap();
    assert_rows_equal("real-size text", &rows(&text), &rows(&r["text"]));
}

// ---- MobileCLIP-B (timm's vit_base_mci_224 at tiny sizes, a causal text tower) ----

const B_DIR: &str = "tiny-mobileclip-b";

fn loaded_b() -> load::Loaded {
    let files = load::resolve(&ModelSource::Dir(fixture(B_DIR)), &mut NoProgress).unwrap();
    load::load(&files, &Device::Cpu).unwrap()
}

#[test]
fn mobileclip_b_is_detected_and_configured() {
    let c = loaded_b().model.config;
    assert_eq!(
        c.vision.tower,
        VisionTower::MciVit {
            timm_model_name: "vit_mci_tiny".into()
        }
    );
    assert_eq!((c.projection_dim, c.vision.image_size), (16, 64));
    assert!(c.text.causal, "MobileCLIP-B keeps the causal mask");
    assert_eq!(
        c.vision.preprocessing.interpolation,
        Interpolation::Bilinear
    );
}

/// Image bytes → the 64×64 crop (sha256 equal to open_clip's) → the ViT with a convolutional
/// stem equals `encode_image`; texts equal `encode_text`.
#[test]
fn mobileclip_b_embeddings_equal_open_clip() {
    use sha2::Digest;
    let model = loaded_b().model;
    let proc = ImageProcessor::for_model(&model.config.vision);
    let images = json("mobileclip_b.json")["images"]
        .as_array()
        .unwrap()
        .clone();
    let mut pixels = Vec::new();
    for case in &images {
        let file = case["file"].as_str().unwrap();
        let crop = proc.resize_crop(&proc.decode(&read(&format!("images/{file}"))).unwrap());
        let sha = hex::encode(sha2::Sha256::digest(crop.as_raw()));
        assert_eq!(sha, case["crop_sha256"].as_str().unwrap(), "{file}: crop");
        pixels.push(proc.normalize(&crop));
    }
    let reference = tensors("mobileclip_b.safetensors");
    let batch = pixel_batch(&pixels, 64, &Device::Cpu).unwrap();
    assert_rows_equal(
        "B image",
        &rows(&model.vision.forward(&batch).unwrap()),
        &rows(&reference["image_embeds"]),
    );
    assert_rows_equal(
        "B text",
        &rows(&model.text.encode(&open_clip_ids()).unwrap()),
        &rows(&reference["text_embeds"]),
    );
}
