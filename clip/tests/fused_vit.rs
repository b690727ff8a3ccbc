#![cfg(not(target_arch = "wasm32"))]

//! The fused CPU path of the vision tower (`clip::cpu`) against candle's ops, the path the
//! reference tests prove equal to `transformers` (`reference.rs` runs the fused path too: a
//! class-token ViT with f32 weights on the CPU takes it): the same features for every activation,
//! for batches cut into uneven slices, and at ViT-B/32's real shapes. Native only, like the
//! path.

use clip::random::random_checkpoint;
use clip::{ClipConfig, Device, Tensor, VisionEncoder, Weights, cosine};

/// Both paths over the same weights.
fn encoders(config: &ClipConfig, seed: u64) -> (VisionEncoder, VisionEncoder) {
    let weights = Weights::from_safetensors(
        random_checkpoint(config, false, seed).unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    let dim = config.projection_dim;
    let fused = VisionEncoder::new(&config.vision, dim, &weights).unwrap();
    let candle = VisionEncoder::with_candle_ops(&config.vision, dim, &weights).unwrap();
    assert!(fused.is_fused() && !candle.is_fused());
    (fused, candle)
}

/// Worst cosine and largest difference between the two paths' features for `b` random images.
fn compare(fused: &VisionEncoder, candle: &VisionEncoder, b: usize) -> (f32, f32) {
    let size = fused.config().image_size;
    let pixels = Tensor::randn(0f32, 1f32, (b, 3, size, size), &Device::Cpu).unwrap();
    let got = fused.forward(&pixels).unwrap().to_vec2::<f32>().unwrap();
    let want = candle.forward(&pixels).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!((got.len(), got[0].len()), (b, fused.dim()));
    got.iter()
        .zip(&want)
        .fold((1.0f32, 0.0f32), |(cos, diff), (g, w)| {
            let d = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            (cos.min(cosine(g, w)), diff.max(d))
        })
}

fn tiny(activation: &str) -> ClipConfig {
    let json = format!(
        r#"{{"model_type": "clip", "projection_dim": 24,
            "text_config": {{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                             "num_attention_heads": 2}},
            "vision_config": {{"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 3,
                               "num_attention_heads": 4, "image_size": 40, "patch_size": 8,
                               "hidden_act": "{activation}"}}}}"#
    );
    ClipConfig::from_json(json.as_bytes()).unwrap()
}

/// Every activation, and batch sizes that make one slice, uneven slices and more slices than
/// threads (the thread count is the machine's).
#[test]
fn fused_equals_candle_for_every_activation_and_batch() {
    for activation in ["quick_gelu", "gelu", "gelu_pytorch_tanh"] {
        let (fused, candle) = encoders(&tiny(activation), 3);
        for b in [1, 2, 5, 33, 130] {
            let (cos, diff) = compare(&fused, &candle, b);
            assert!(
                cos >= 0.99999 && diff <= 1e-4,
                "{activation}, batch {b}: cosine {cos}, max abs diff {diff}"
            );
        }
    }
}

/// An empty batch gives no features rather than a panic.
#[test]
fn an_empty_batch_gives_no_features() {
    let (fused, _) = encoders(&tiny("quick_gelu"), 5);
    let pixels = Tensor::zeros((0, 3, 40, 40), clip::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(fused.forward(&pixels).unwrap().dims(), [0, 24]);
}

/// ViT-B/32's shapes (the default model's), where the sums are long enough for rounding to
/// show.
#[test]
fn fused_equals_candle_at_vit_b_32_shapes() {
    let (fused, candle) = encoders(&ClipConfig::vit_base_patch32(), 11);
    let (cos, diff) = compare(&fused, &candle, 3);
    assert!(
        cos >= 0.99999 && diff <= 1e-3,
        "cosine {cos}, max abs diff {diff}"
    );
}
