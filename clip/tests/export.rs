//! The browser's text-tower exports (f32, f16, 8-bit, 5/4-bit) against the full-precision model, at the
//! real ViT-B/32 text shapes (random weights: quantization error depends on shapes and value
//! statistics, not on what was learned), and the model loaders' errors.

mod common;

use clip::export::{Variant, export_text, export_token_rows, exported_text_encoder};
use clip::random::random_checkpoint;
use clip::{ClipConfig, ClipError, ClipModel, Device, TextEncoder, Weights, cosine};
use common::*;

fn load_text(config: &ClipConfig, variant: Variant, checkpoint: &[u8]) -> TextEncoder {
    exported_text_encoder(config, checkpoint, variant, &Device::Cpu).unwrap()
}

/// f16 keeps cosine ≥ 0.999, 8-bit and 5/4-bit ≥ 0.99 on every one of ≥ 200 real-vocabulary
/// queries, and the exports are the expected fraction of the f32 size.
#[test]
fn exported_variants_stay_close_to_f32() {
    let config = ClipConfig::vit_base_patch32();
    let checkpoint = random_checkpoint(&config, true, 7).unwrap();
    let tok = tokenizer();
    // Query-length strings (the browser encodes queries), skipping the empty ones.
    let texts: Vec<String> = token_cases()
        .into_iter()
        .filter(|(t, ids)| !t.trim().is_empty() && ids.len() <= 24)
        .map(|(t, _)| t)
        .take(240)
        .collect();
    assert!(texts.len() >= 200);
    let ids = tok.encode_batch(&texts).unwrap();

    // One query at a time, at its own length, as the browser encodes them.
    let embed = |text: &TextEncoder| -> Vec<Vec<f32>> {
        ids.iter()
            .map(|q| text.embed(std::slice::from_ref(q)).unwrap().remove(0))
            .collect()
    };
    let reference = embed(&load_text(&config, Variant::F32, &checkpoint));
    let mut sizes = std::collections::HashMap::new();
    for (variant, min_cos) in [
        (Variant::F32, 0.999_999),
        (Variant::F16, 0.999),
        (Variant::Q8, 0.99),
        (Variant::Q5, 0.99),
    ] {
        sizes.insert(variant, export_text(&checkpoint, variant).unwrap().len());
        let got = embed(&load_text(&config, variant, &checkpoint));
        let cosines: Vec<f32> = got
            .iter()
            .zip(&reference)
            .map(|(g, r)| cosine(g, r))
            .collect();
        let worst = cosines.iter().copied().fold(1.0f32, f32::min);
        let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
        eprintln!("{variant:?}: worst cosine {worst}, mean {mean}");
        assert!(
            worst >= min_cos,
            "{variant:?}: worst cosine {worst} < {min_cos} (mean {mean})"
        );
    }
    // ViT-B/32 text tower: 63.4M parameters.
    let f32_bytes = sizes[&Variant::F32] as f64;
    assert!(
        (f32_bytes / 4.0 - 63.4e6).abs() < 0.1e6,
        "f32 export has {f32_bytes} bytes"
    );
    assert!((sizes[&Variant::F16] as f64 / f32_bytes - 0.5).abs() < 0.01);
    // The GGUF files leave out the token embedding (49,408 × 512, a third of the weights).
    // Q8_0: 34 bytes per 32 weights of the 38.0M in the layers and projection, plus small f32
    // tensors.
    assert!(
        sizes[&Variant::Q8] < 41_000_000,
        "q8 export has {} bytes",
        sizes[&Variant::Q8]
    );
    // Q5_0: 22 bytes per 32 weights, 65% of Q8_0.
    assert!(
        sizes[&Variant::Q5] < 27_000_000,
        "q5 export has {} bytes",
        sizes[&Variant::Q5]
    );
    // The token rows apart: 49,408 rows of 16 Q8_0 blocks.
    let rows = export_token_rows(&checkpoint).unwrap();
    assert_eq!(rows.bytes.len(), 49_408 * 16 * 34);
}

/// The exports of the tiny fixture model load and give the reference embeddings (its matrices are
/// too narrow for 8-bit blocks, so q8 keeps them f32 and must be exact).
#[test]
fn tiny_model_exports_load() {
    let config = ClipConfig::from_json(&read("tiny-clip/config.json")).unwrap();
    let checkpoint = read("tiny-clip/model.safetensors");
    let ids: Vec<Vec<u32>> = token_cases()
        .into_iter()
        .map(|(_, ids)| ids)
        .take(50)
        .collect();
    let full = model("tiny-clip").text.embed(&ids).unwrap();
    for variant in Variant::ALL {
        let got = load_text(&config, variant, &checkpoint)
            .embed(&ids)
            .unwrap();
        for (g, f) in got.iter().zip(&full) {
            assert!(max_abs_diff(g, f) <= 1e-6, "{variant:?}");
        }
    }
}

fn check_load_error(config_json: &str, weights: Vec<u8>, expected: &str) {
    let config = ClipConfig::from_json(config_json.as_bytes()).unwrap();
    let err = match Weights::from_safetensors(weights, &Device::Cpu) {
        Ok(w) => ClipModel::new(&config, &w).unwrap_err(),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains(expected),
        "got {err}, expected it to mention {expected:?}"
    );
}

/// Wrong checkpoints fail with the tensor's name and both shapes, never deep in a matmul.
#[test]
fn bad_weights_are_named() {
    let tiny = String::from_utf8(read("tiny-clip/config.json")).unwrap();
    let weights = read("tiny-clip/model.safetensors");
    // A config that does not match the weights.
    let wider = tiny.replacen("\"hidden_size\": 24", "\"hidden_size\": 48", 1);
    assert_ne!(wider, tiny, "fixture config layout changed");
    check_load_error(
        &wider,
        weights.clone(),
        "has shape [49408, 24], the config needs [49408, 48]",
    );
    // A checkpoint without the vision tower.
    let text_only = export_text(&weights, Variant::F32).unwrap();
    check_load_error(&tiny, text_only, "no tensor named \"vision_model.");
    // Not a weights file.
    check_load_error(
        &tiny,
        b"{\"not\": \"weights\"}".to_vec(),
        "not a safetensors file",
    );
    assert!(matches!(
        Weights::from_gguf(b"GGUF but not really", &Device::Cpu),
        Err(ClipError::Weights(_))
    ));
}
