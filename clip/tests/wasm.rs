//! Equality with the reference in WebAssembly, where the browser runs the text tower: token ids
//! and text embeddings of the tiny reference CLIP must be the same as natively (and as
//! transformers), and every exported variant must load and run; likewise the tiny OpenCLIP
//! checkpoint, converted from open_clip's layout in wasm, against open_clip, the tiny
//! MobileCLIP's text tower (no causal mask), and the tiny SigLIP (its tokenizer made from
//! spiece.model in wasm) against transformers. The fixtures are compiled in,
//! since a wasm test has no file system.
//!
//! Run with `cargo test -p clip --target wasm32-unknown-unknown --test wasm` (Node.js through
//! wasm-bindgen-test-runner, the cargo runner in `.cargo/config.toml`).

#![cfg(target_arch = "wasm32")]

mod common;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};
use clip::export::{Variant, exported_text_encoder};
use clip::layout::Family;
use clip::q8::Q8Matrix;
use clip::{ClipConfig, ClipTokenizer, Device, TextEncoder, Weights, cosine};
use wasm_bindgen_test::wasm_bindgen_test;

const CONFIG: &[u8] = include_bytes!("fixtures/tiny-clip/config.json");
const CHECKPOINT: &[u8] = include_bytes!("fixtures/tiny-clip/model.safetensors");
const TOKENIZER: &[u8] = include_bytes!("fixtures/tiny-clip/tokenizer.json");
const TOKENS: &[u8] = include_bytes!("fixtures/tokens.json");
const REFERENCE: &[u8] = include_bytes!("fixtures/reference.safetensors");

fn token_cases() -> Vec<(String, Vec<u32>)> {
    common::parse_token_cases(TOKENS)
}

fn tokenizer() -> ClipTokenizer {
    ClipTokenizer::from_json(TOKENIZER).unwrap()
}

/// transformers' normalised text embeddings (quick_gelu, the tiny-clip config), one row per case.
fn reference_rows() -> Vec<Vec<f32>> {
    let tensors = candle_core::safetensors::load_buffer(REFERENCE, &Device::Cpu).unwrap();
    tensors["text_embeds_normalized.quick_gelu"]
        .to_vec2::<f32>()
        .unwrap()
}

fn encoder(weights: &Weights) -> TextEncoder {
    let config = ClipConfig::from_json(CONFIG).unwrap();
    TextEncoder::new(&config.text, config.projection_dim, weights).unwrap()
}

/// The ids the reference tokenizer gives, for every case.
fn reference_ids() -> Vec<Vec<u32>> {
    token_cases().into_iter().map(|(_, ids)| ids).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every row of `got` within `min_cos` and `max_abs` of the reference; all failures are listed.
fn check_rows(what: &str, got: &[Vec<f32>], expected: &[Vec<f32>], min_cos: f32, max_abs: f32) {
    assert_eq!(got.len(), expected.len(), "{what}: row count");
    let bad: Vec<String> = got
        .iter()
        .zip(expected)
        .enumerate()
        .filter_map(|(i, (g, e))| {
            let (cos, diff) = (cosine(g, e), max_abs_diff(g, e));
            (g.len() != e.len() || cos < min_cos || diff > max_abs)
                .then(|| format!("row {i}: cosine {cos}, max abs diff {diff}"))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {} rows differ:\n{}",
        bad.len(),
        got.len(),
        bad.join("\n")
    );
}

/// The tokenizer (pure-Rust regex in wasm) gives exactly the reference ids for every string.
#[wasm_bindgen_test]
fn token_ids_equal_reference() {
    common::check_token_ids(&tokenizer(), &token_cases());
}

/// String → tokenizer → text tower → unit vector in wasm equals transformers (SIMD128 kernels
/// included).
#[wasm_bindgen_test]
fn text_embeddings_equal_reference() {
    let tok = tokenizer();
    let texts: Vec<String> = token_cases().into_iter().map(|(t, _)| t).collect();
    let weights = Weights::from_safetensors(CHECKPOINT.to_vec(), &Device::Cpu).unwrap();
    let got = encoder(&weights)
        .embed(&tok.encode_batch(&texts).unwrap())
        .unwrap();
    check_rows("text end to end", &got, &reference_rows(), 0.9999, 1e-5);
}

/// The browser's downloads, exported and read back in wasm: f32 equals the reference as tightly
/// as the checkpoint, f16 within its rounding, and the GGUF (q8) file loads through the
/// quantized reader. (The tiny model's rows are not whole `Q8_0` blocks, so its q8 file keeps
/// f32 matrices; the 8-bit kernel itself is checked below.)
#[wasm_bindgen_test]
fn exported_variants_load_and_embed() {
    let ids = reference_ids();
    let reference = reference_rows();
    for variant in Variant::ALL {
        let config = ClipConfig::from_json(CONFIG).unwrap();
        let got = exported_text_encoder(&config, CHECKPOINT, variant, &Device::Cpu)
            .unwrap()
            .embed(&ids)
            .unwrap();
        let (min_cos, max_abs) = if variant == Variant::F16 {
            (0.999, 1e-2)
        } else {
            (0.9999, 1e-5)
        };
        check_rows(
            &format!("{variant:?} export"),
            &got,
            &reference,
            min_cos,
            max_abs,
        );
    }
}

/// The `Q8_0` and `Q5_0` matrix products the browser's downloads run (candle's wasm SIMD128
/// kernels, and `clip::q8`'s) agree with the dense f32 product of the same matrix.
#[wasm_bindgen_test]
fn q8_matmul_matches_dense() {
    // 50 weight rows: groups of `clip::q8`'s eight rows per pass, and two rows left over.
    let (rows, cols, batch) = (50, 64, 5);
    // Deterministic values spread over [-1, 1]: no random generator needed.
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 37 + seed * 101) % 199) as f32 / 99.0) - 1.0)
            .collect()
    };
    let w = Tensor::from_vec(values(rows * cols, 1), (rows, cols), &Device::Cpu).unwrap();
    let x_values = values(batch * cols, 2);
    let x = Tensor::from_vec(x_values.clone(), (batch, cols), &Device::Cpu).unwrap();
    let dense = x.matmul(&w.t().unwrap()).unwrap().to_vec2::<f32>().unwrap();
    // The 8-bit download and the 5-bit default: (block type, min cosine to f32).
    for (dtype, min_cos) in [(GgmlDType::Q8_0, 0.999), (GgmlDType::Q5_0, 0.99)] {
        let q = QMatMul::from_qtensor(QTensor::quantize(&w, dtype).unwrap()).unwrap();
        assert!(
            matches!(q, QMatMul::QTensor(_)),
            "the matrix stayed dense; the {dtype:?} kernel was not used"
        );
        let quantized = q.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        // The few-rows kernel the text tower uses for these layers (clip::q8), in wasm's SIMD.
        let matrix = Q8Matrix::from_qtensor(&QTensor::quantize(&w, dtype).unwrap())
            .unwrap()
            .expect("a block matrix");
        let ours: Vec<Vec<f32>> = matrix
            .matmul(&x_values, batch)
            .chunks(rows)
            .map(<[f32]>::to_vec)
            .collect();
        for (i, ((d, g), o)) in dense.iter().zip(&quantized).zip(&ours).enumerate() {
            let cos = cosine(d, g);
            assert!(
                cos >= min_cos,
                "{dtype:?} row {i}: cosine {cos} between candle's product and f32"
            );
            let cos = cosine(d, o);
            assert!(
                cos >= min_cos,
                "{dtype:?} row {i}: cosine {cos} between clip::q8 and the f32 product"
            );
            assert!(
                max_abs_diff(g, o) <= 1e-2,
                "{dtype:?} row {i}: clip::q8 vs candle's product"
            );
        }
    }
}

/// The bounds of a model whose matrices are too narrow for quantized blocks: every variant but
/// f16 keeps the f32 numbers (within `max_abs`), f16 stays within cosine 0.999.
fn exact_but_f16(max_abs: f32) -> impl Fn(Variant) -> (f32, f32) {
    move |variant| {
        if variant == Variant::F16 {
            (0.999, 1e-2)
        } else {
            (0.99999, max_abs)
        }
    }
}

/// Every exported variant of `checkpoint`'s text tower, read back in wasm, embeds `ids` as
/// `reference` within `bounds(variant)` (min cosine, max abs difference).
fn exports_equal_reference(
    what: &str,
    config: &ClipConfig,
    checkpoint: &[u8],
    ids: &[Vec<u32>],
    reference: &[Vec<f32>],
    bounds: impl Fn(Variant) -> (f32, f32),
) {
    for variant in Variant::ALL {
        let text = exported_text_encoder(config, checkpoint, variant, &Device::Cpu).unwrap();
        let (min_cos, max_abs) = bounds(variant);
        let got = text.embed(ids).unwrap();
        check_rows(
            &format!("{what} {variant:?} export"),
            &got,
            reference,
            min_cos,
            max_abs,
        );
    }
}

/// Strings → CLIP's tokenizer → an open_clip-layout text tower (`checkpoint`, converted) →
/// unit vectors equal `reference` (open_clip's `encode_text`) wherever open_clip's text
/// cleaning leaves the string alone; the ids equal open_clip's too.
fn open_clip_text_equals_reference(
    what: &str,
    config: &ClipConfig,
    checkpoint: Vec<u8>,
    reference: &[Vec<f32>],
) {
    let weights = Weights::from_safetensors(checkpoint, &Device::Cpu).unwrap();
    let text = TextEncoder::new(&config.text, config.projection_dim, &weights).unwrap();
    let tok = tokenizer();
    let (mut got, mut expected) = (Vec::new(), Vec::new());
    for (((s, _), (ids, cleaned)), r) in token_cases().iter().zip(open_clip_tokens()).zip(reference)
    {
        if cleaned {
            continue;
        }
        let ours = tok.encode(s).unwrap();
        assert_eq!(ours, ids, "{s:?}");
        got.push(ours);
        expected.push(r.clone());
    }
    assert!(got.len() >= 350, "only {} strings", got.len());
    let got = text.embed(&got).unwrap();
    check_rows(&format!("{what} text"), &got, &expected, 0.99999, 1e-5);
}

// ---- The OpenCLIP layout (fixtures/generate_open_clip.py): converted in wasm as natively ----

const OPEN_CLIP_CONFIG: &[u8] = include_bytes!("fixtures/tiny-open-clip/open_clip_config.json");
const OPEN_CLIP_CHECKPOINT: &[u8] =
    include_bytes!("fixtures/tiny-open-clip/open_clip_model.safetensors");
const OPEN_CLIP_TOKENS: &[u8] = include_bytes!("fixtures/open_clip_tokens.json");
const OPEN_CLIP_REFERENCE: &[u8] = include_bytes!("fixtures/open_clip.safetensors");

/// open_clip's ids per tokens.json row, and whether its text cleaning may change them.
fn open_clip_tokens() -> Vec<(Vec<u32>, bool)> {
    common::parse_open_clip_tokens(OPEN_CLIP_TOKENS)
        .into_iter()
        .map(|(ids, reason)| (ids, reason.is_some()))
        .collect()
}

/// The open_clip checkpoint as transformers' CLIP (config and renamed tensors), and open_clip's
/// normalised text embeddings.
fn open_clip_text() -> (ClipConfig, Vec<u8>, Vec<Vec<f32>>) {
    let config = Family::OpenClip.config(OPEN_CLIP_CONFIG).unwrap();
    let weights = Family::OpenClip
        .weights(OPEN_CLIP_CHECKPOINT.to_vec())
        .unwrap();
    let tensors = candle_core::safetensors::load_buffer(OPEN_CLIP_REFERENCE, &Device::Cpu).unwrap();
    let reference = tensors["text_embeds_normalized.gelu"]
        .to_vec2::<f32>()
        .unwrap();
    (config, weights, reference)
}

/// Strings → tokenizer → converted open_clip text tower → unit vectors equal open_clip's
/// `encode_text` wherever open_clip's text cleaning leaves the string alone (the ids too).
#[wasm_bindgen_test]
fn open_clip_text_embeddings_equal_reference() {
    let (config, checkpoint, reference) = open_clip_text();
    open_clip_text_equals_reference("open_clip", &config, checkpoint, &reference);
}

/// The browser's downloads of the open_clip checkpoint, exported and read back in wasm.
#[wasm_bindgen_test]
fn open_clip_exports_load_and_embed() {
    let (config, checkpoint, reference) = open_clip_text();
    let ids: Vec<Vec<u32>> = open_clip_tokens().into_iter().map(|(ids, _)| ids).collect();
    exports_equal_reference(
        "open_clip",
        &config,
        &checkpoint,
        &ids,
        &reference,
        exact_but_f16(1e-5),
    );
}

// ---- SigLIP (fixtures/generate_siglip.py): spiece.model converted and the text tower run in wasm ----

const SIGLIP_CONFIG: &[u8] = include_bytes!("fixtures/tiny-siglip/config.json");
const SIGLIP_CHECKPOINT: &[u8] = include_bytes!("fixtures/tiny-siglip/model.safetensors");
const SIGLIP_SPIECE: &[u8] = include_bytes!("fixtures/tiny-siglip/spiece.model");
const SIGLIP_TOKENS: &[u8] = include_bytes!("fixtures/siglip_tokens.json");
const SIGLIP_REFERENCE: &[u8] = include_bytes!("fixtures/siglip.safetensors");

/// transformers' SigLIP text embeddings, normalised, one row per tokens.json case.
fn siglip_reference() -> Vec<Vec<f32>> {
    let tensors = candle_core::safetensors::load_buffer(SIGLIP_REFERENCE, &Device::Cpu).unwrap();
    let rows = tensors["text_embeds"].to_vec2::<f32>().unwrap();
    rows.into_iter()
        .map(|r| {
            let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            r.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// Strings → the tokenizer made from spiece.model → SigLIP's text tower (the whole 64-token
/// context, no causal mask) → unit vectors equal transformers'; the ids equal
/// `SiglipTokenizer`'s (or, on the one string NOTES.md lists, the same pipeline's in Python).
#[wasm_bindgen_test]
fn siglip_text_embeddings_equal_reference() {
    let config = ClipConfig::from_json(SIGLIP_CONFIG).unwrap();
    let json = clip::spiece::siglip_tokenizer_json(SIGLIP_SPIECE).unwrap();
    let tok = ClipTokenizer::from_json(&json)
        .unwrap()
        .with_max_len(config.text.max_position_embeddings)
        .unwrap();
    let reference = common::parse_siglip_tokens(SIGLIP_TOKENS);
    let (mut ids, mut expected) = (Vec::new(), Vec::new());
    for (((s, _), (slow, fast)), r) in token_cases().iter().zip(&reference).zip(siglip_reference())
    {
        let ours = tok.encode(s).unwrap();
        assert_eq!(&ours, fast.as_ref().map_or(slow, |(f, _)| f), "{s:?}");
        if fast.is_none() {
            ids.push(ours);
            expected.push(r);
        }
    }
    assert!(ids.len() >= 390, "only {} strings", ids.len());
    let weights = Weights::from_safetensors(SIGLIP_CHECKPOINT.to_vec(), &Device::Cpu).unwrap();
    let text = TextEncoder::new(&config.text, config.projection_dim, &weights).unwrap();
    check_rows(
        "siglip text",
        &text.embed(&ids).unwrap(),
        &expected,
        0.99999,
        1e-4,
    );
}

/// The browser's downloads of the SigLIP checkpoint, exported and read back in wasm.
#[wasm_bindgen_test]
fn siglip_exports_load_and_embed() {
    let config = ClipConfig::from_json(SIGLIP_CONFIG).unwrap();
    let ids: Vec<Vec<u32>> = common::parse_siglip_tokens(SIGLIP_TOKENS)
        .into_iter()
        .map(|(ids, _)| ids)
        .collect();
    let reference = siglip_reference();
    exports_equal_reference(
        "siglip",
        &config,
        SIGLIP_CHECKPOINT,
        &ids,
        &reference,
        exact_but_f16(1e-4),
    );
}

// ---- MobileCLIP (fixtures/generate_mobileclip.py): a text tower without causal mask ----

const MOBILECLIP_CONFIG: &[u8] = include_bytes!("fixtures/tiny-mobileclip/open_clip_config.json");
const MOBILECLIP_CHECKPOINT: &[u8] =
    include_bytes!("fixtures/tiny-mobileclip/open_clip_model.safetensors");
const MOBILECLIP_REFERENCE: &[u8] = include_bytes!("fixtures/mobileclip.safetensors");

/// The MobileCLIP checkpoint converted in wasm, its config as the browser bundle writes it and
/// the worker reads it back (the missing causal mask must survive), and open_clip's normalised
/// text embeddings.
fn mobileclip_text() -> (ClipConfig, Vec<u8>, Vec<Vec<f32>>) {
    let config = Family::OpenClip.config(MOBILECLIP_CONFIG).unwrap();
    let config = ClipConfig::from_json(config.to_json().to_string().as_bytes()).unwrap();
    assert!(!config.text.causal);
    let weights = Family::OpenClip
        .weights(MOBILECLIP_CHECKPOINT.to_vec())
        .unwrap();
    let tensors =
        candle_core::safetensors::load_buffer(MOBILECLIP_REFERENCE, &Device::Cpu).unwrap();
    let reference = tensors["text_embeds_normalized"].to_vec2::<f32>().unwrap();
    (config, weights, reference)
}

/// Strings → tokenizer → MobileCLIP's text tower (full padded context, no mask) → unit vectors
/// equal open_clip's `encode_text` wherever its text cleaning leaves the string alone.
#[wasm_bindgen_test]
fn mobileclip_text_embeddings_equal_reference() {
    let (config, checkpoint, reference) = mobileclip_text();
    open_clip_text_equals_reference("mobileclip", &config, checkpoint, &reference);
}

/// The browser's downloads of the MobileCLIP text tower, exported and read back in wasm (f16
/// and q8, which quantises the 32-wide `fc2` matrices, within their rounding).
#[wasm_bindgen_test]
fn mobileclip_exports_load_and_embed() {
    let (config, checkpoint, reference) = mobileclip_text();
    let ids: Vec<Vec<u32>> = open_clip_tokens().into_iter().map(|(ids, _)| ids).collect();
    exports_equal_reference(
        "mobileclip",
        &config,
        &checkpoint,
        &ids,
        &reference,
        |variant| match variant {
            Variant::F32 => (0.99999, 1e-5),
            Variant::Q5 => (0.99, 5e-2),
            _ => (0.999, 1e-2),
        },
    );
}
