//! The vision tower's fused CPU path: a class-token ViT (CLIP's, OpenCLIP's) with f32 weights,
//! computed in buffers that live across its layers instead of one candle tensor per op
//! ([`vit`]). [`crate::model::VisionEncoder`] takes it on the CPU wherever it applies; every
//! other tower, device and float type keeps the candle path, which stays the reference the
//! tests compare it with.

pub mod gemm;
pub mod kernels;
pub mod vit;
