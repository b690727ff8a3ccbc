//! Fixture access shared by the integration tests: the tiny reference CLIP and the outputs of
//! transformers on it (made by `fixtures/generate.py`).

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::collections::HashMap;
use std::path::PathBuf;

use clip::{ClipConfig, ClipModel, ClipTokenizer, Device, Tensor, Weights};

pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(fixture(path)).unwrap_or_else(|e| panic!("{}: {e}", fixture(path).display()))
}

pub fn json(path: &str) -> serde_json::Value {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The tiny model with the config in `config_dir` (`tiny-clip` or `tiny-clip-gelu`).
pub fn model(config_dir: &str) -> ClipModel {
    let config = ClipConfig::from_json(&read(&format!("{config_dir}/config.json"))).unwrap();
    let weights =
        Weights::from_safetensors(read("tiny-clip/model.safetensors"), &Device::Cpu).unwrap();
    ClipModel::new(&config, &weights).unwrap()
}

pub fn tokenizer() -> ClipTokenizer {
    ClipTokenizer::from_json(&read("tiny-clip/tokenizer.json")).unwrap()
}

/// Every tensor of a fixture safetensors file.
pub fn tensors(path: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load_buffer(&read(path), &Device::Cpu).unwrap()
}

pub fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().unwrap()
}

/// (text, reference ids) for every string of `tokens.json`, in embedding row order.
pub fn token_cases() -> Vec<(String, Vec<u32>)> {
    parse_token_cases(&read("tokens.json"))
}

/// open_clip's ids per `tokens.json` row, from the bytes of `open_clip_tokens.json`, each with
/// the reason open_clip's text cleaning may make them differ (`None`: it leaves the string alone).
pub fn parse_open_clip_tokens(json: &[u8]) -> Vec<(Vec<u32>, Option<String>)> {
    let rows: Vec<serde_json::Value> = serde_json::from_slice(json).unwrap();
    rows.iter()
        .map(|r| {
            let ids = r["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            (ids, r["differs_because"].as_str().map(str::to_string))
        })
        .collect()
}

/// One row of `siglip_tokens.json`: `SiglipTokenizer`'s ids, and where the tokenizer.json made
/// from spiece.model gives other ids, those and why.
pub type SiglipTokens = (Vec<u32>, Option<(Vec<u32>, String)>);

/// `SiglipTokenizer`'s ids per `tokens.json` row, from the bytes of `siglip_tokens.json`.
pub fn parse_siglip_tokens(json: &[u8]) -> Vec<SiglipTokens> {
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect()
    };
    let rows: Vec<serde_json::Value> = serde_json::from_slice(json).unwrap();
    rows.iter()
        .map(|r| {
            let fast = r.get("ids_tokenizers").map(|f| {
                let why = r["differs_because"].as_str().unwrap().to_string();
                (ids(f), why)
            });
            (ids(&r["ids"]), fast)
        })
        .collect()
}

/// [`token_cases`] from the bytes of `tokens.json` (the wasm tests embed the file).
pub fn parse_token_cases(json: &[u8]) -> Vec<(String, Vec<u32>)> {
    let cases: Vec<serde_json::Value> = serde_json::from_slice(json).unwrap();
    cases
        .iter()
        .map(|c| {
            let ids = c["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            (c["text"].as_str().unwrap().to_string(), ids)
        })
        .collect()
}

/// Asserts that every string tokenizes to exactly its reference ids, listing all mismatches.
pub fn check_token_ids(tok: &ClipTokenizer, cases: &[(String, Vec<u32>)]) {
    assert!(cases.len() >= 300, "only {} strings", cases.len());
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(text, ids)| {
            let got = tok.encode(text).unwrap();
            (&got != ids).then(|| format!("{text:?}\n  got      {got:?}\n  expected {ids:?}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} strings differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// The image entries of `images.json`, in embedding row order.
pub fn image_cases() -> Vec<serde_json::Value> {
    json("images.json")["images"].as_array().unwrap().clone()
}

/// Largest absolute difference between two equally long vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The text tower of the browser bundle in `out` for `variant`, every token row loaded.
#[cfg(not(target_arch = "wasm32"))]
pub fn bundle_text_tower(
    out: &std::path::Path,
    variant: clip::export::Variant,
) -> clip::TextEncoder {
    clip::load::bundle_text_encoder(out, variant).unwrap()
}

/// Every row of `got` at cosine ≥ 0.99999 and max abs difference ≤ 1e-4 of its `expected` row,
/// all failures listed; the worst figures are printed (`--nocapture` shows them).
pub fn assert_rows_equal(what: &str, got: &[Vec<f32>], expected: &[Vec<f32>]) {
    assert_eq!(got.len(), expected.len(), "{what}: rows");
    let mut worst = (1.0f32, 0.0f32);
    let bad: Vec<String> = got
        .iter()
        .zip(expected)
        .enumerate()
        .filter_map(|(i, (g, e))| {
            let (cos, diff) = (clip::cosine(g, e), max_abs_diff(g, e));
            worst = (worst.0.min(cos), worst.1.max(diff));
            (cos < 0.99999 || diff > 1e-4)
                .then(|| format!("row {i}: cosine {cos}, max abs diff {diff}"))
        })
        .collect();
    assert!(bad.is_empty(), "{what}:\n{}", bad.join("\n"));
    eprintln!("{what}: worst cosine {}, max abs diff {}", worst.0, worst.1);
}

/// The fixture images `cases` name (`images.json` rows), each preprocessed by `proc`.
pub fn preprocess_images<'a>(
    proc: &clip::ImageProcessor,
    cases: impl IntoIterator<Item = &'a serde_json::Value>,
) -> Vec<Vec<f32>> {
    cases
        .into_iter()
        .map(|c| {
            let file = c["file"].as_str().unwrap();
            proc.preprocess(&read(&format!("images/{file}"))).unwrap()
        })
        .collect()
}

/// Every row of `got` within `(min_cos, max_abs)` of its `reference` row (scaled to unit length
/// first), except the rows `skip` names.
pub fn assert_rows_close(
    what: &str,
    got: &[Vec<f32>],
    reference: &[Vec<f32>],
    (min_cos, max_abs): (f32, f32),
    skip: impl Fn(usize) -> bool,
) {
    assert_eq!(got.len(), reference.len(), "{what}: row count");
    for (i, (g, r)) in got.iter().zip(reference).enumerate() {
        if skip(i) {
            continue;
        }
        let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        let r: Vec<f32> = r.iter().map(|x| x / norm).collect();
        let (cos, diff) = (clip::cosine(g, &r), max_abs_diff(g, &r));
        assert!(
            cos >= min_cos && diff <= max_abs,
            "{what} row {i}: cosine {cos}, max abs diff {diff}"
        );
    }
}
