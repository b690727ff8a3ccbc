//! CLIP for text2img: text and vision encoders, tokenizer and image preprocessing, equal to the
//! Hugging Face `transformers` reference, for native code and for wasm32 (the browser).
//!
//! The core does no I/O: it takes bytes, tensors and configs and returns vectors. Reading model
//! files from disk or the Hugging Face hub lives in [`load`] (native only), and the text-only
//! browser export in [`export`].

pub mod attention_pool;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod cpu;
pub mod error;
pub mod export;
pub mod fastvit;
#[cfg(not(target_arch = "wasm32"))]
pub mod jpeg;
pub mod layout;
#[cfg(not(target_arch = "wasm32"))]
pub mod load;
pub mod model;
pub mod open_clip;
pub mod preprocess;
pub mod q8;
pub mod random;
pub mod siglip;
pub mod spiece;
pub mod timm_vit;
pub mod token_rows;
pub mod tokenizer;
pub mod weights;

pub use candle_core::{DType, Device, Tensor};
pub use config::{
    Activation, ClipConfig, Interpolation, Preprocessing, TextConfig, TextHead, Transform,
    VisionConfig, VisionHead, VisionTower,
};
pub use error::{ClipError, Result};
pub use model::{ClipModel, TextEncoder, VisionEncoder, l2_normalize};
pub use preprocess::ImageProcessor;
pub use token_rows::TokenRows;
pub use tokenizer::ClipTokenizer;
pub use weights::Weights;

/// Stacks preprocessed images (each `[3, S, S]` from [`ImageProcessor::preprocess`]) into the
/// `[b, 3, S, S]` tensor the vision tower takes.
pub fn pixel_batch(images: &[Vec<f32>], size: usize, device: &Device) -> Result<Tensor> {
    let per = 3 * size * size;
    if let Some(bad) = images.iter().find(|i| i.len() != per) {
        return Err(ClipError::Input(format!(
            "preprocessed image has {} values, expected 3x{size}x{size} = {per}",
            bad.len()
        )));
    }
    let flat: Vec<f32> = images.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(
        flat,
        (images.len(), 3, size, size),
        device,
    )?)
}

/// Cosine similarity of two vectors (a helper for tests, benchmarks and evaluation).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
