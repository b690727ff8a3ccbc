//! On a GPU, embeddings equal the CPU ones (cosine ≥ 0.9999): the tiny fixture model, text and
//! images, once on the CPU and once through candle's CUDA backend, in f32; and in f16 (what
//! `ingest --device cuda` computes in by default) within half-precision rounding (≥ 0.999).
//!
//! Runs with `--features cuda` on a machine with an NVIDIA GPU; otherwise it says loudly that it
//! skipped (built without CUDA, or no GPU found) and passes without checking anything.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::Write;

use clip::{ClipConfig, ClipModel, DType, Device, ImageProcessor, Weights};
use common::{read, tokenizer};

/// Reports the skip as `testkit::skip` does (this crate cannot depend on testkit, which depends
/// on `proxy` and so on `clip`): the line `SKIPPED: <test>: <reason>` straight to stderr (the
/// harness captures `eprintln!`, and a skip must show), and appended to the file named by
/// `TEXT2IMG_SKIP_LOG` when set (`.ci/test` lists those lines at the end of its log).
fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("gpu_embeddings_equal_cpu")
        .to_string();
    let line = format!("SKIPPED: {test}: the GPU equality test did not run: {why}");
    let _ = writeln!(std::io::stderr(), "\n{line}\n");
    if let Some(path) = std::env::var_os("TEXT2IMG_SKIP_LOG").filter(|p| !p.is_empty()) {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    }
}

fn model_on(device: &Device, dtype: DType) -> ClipModel {
    let config = ClipConfig::from_json(&read("tiny-clip/config.json")).expect("config");
    let weights =
        Weights::from_safetensors(read("tiny-clip/model.safetensors"), device).expect("weights");
    ClipModel::new(&config, &weights.with_dtype(dtype)).expect("model")
}

#[test]
fn gpu_embeddings_equal_cpu() {
    if !cfg!(feature = "cuda") {
        skip("built without the `cuda` feature (cargo test -p clip --features cuda)");
        return;
    }
    let gpu = match Device::new_cuda(0) {
        Ok(device) => device,
        Err(e) => {
            skip(&format!("no CUDA GPU ({e})"));
            return;
        }
    };
    let cpu_model = model_on(&Device::Cpu, DType::F32);
    for (dtype, min) in [(DType::F32, 0.9999), (DType::F16, 0.999)] {
        let gpu_model = model_on(&gpu, dtype);
        compare(&cpu_model, &gpu_model, &gpu, min, &format!("{dtype:?}"));
    }
}

fn compare(cpu_model: &ClipModel, gpu_model: &ClipModel, gpu: &Device, min: f32, what: &str) {
    let tok = tokenizer();
    let texts = [
        "a photo of a cat",
        "red car parked on a street",
        "",
        "🚀 rocket launch at night",
    ];
    let ids: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| tok.encode(t).expect("tokens"))
        .collect();
    let (a, b) = (
        cpu_model.text.embed(&ids).expect("cpu text"),
        gpu_model.text.embed(&ids).expect("gpu text"),
    );
    for ((x, y), text) in a.iter().zip(&b).zip(texts) {
        let cos = clip::cosine(x, y);
        assert!(cos >= min, "{what}: text {text:?}: cosine {cos}");
    }
    let processor = ImageProcessor::for_model(cpu_model.vision.config());
    let images: Vec<Vec<f32>> = [
        "images/png_rgb_224x224.png",
        "images/jpeg_800x600.jpg",
        "images/png_gray_17x9.png",
    ]
    .iter()
    .map(|p| processor.preprocess(&read(p)).expect("preprocess"))
    .collect();
    let size = processor.size as usize;
    let on = |model: &ClipModel, device: &Device| {
        model
            .vision
            .embed(&clip::pixel_batch(&images, size, device).expect("batch"))
            .expect("embed")
    };
    for (i, (x, y)) in on(cpu_model, &Device::Cpu)
        .iter()
        .zip(&on(gpu_model, gpu))
        .enumerate()
    {
        let cos = clip::cosine(x, y);
        assert!(cos >= min, "{what}: image {i}: cosine {cos}");
    }
}
