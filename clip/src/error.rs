//! The crate's error type: one enum whose variants say which class of failure happened, so that
//! callers (the proxy maps them to HTTP statuses, ingest to per-row reports) can tell bad input
//! from a broken model from an I/O failure without parsing messages.

use std::path::PathBuf;

/// Everything that can go wrong in `clip`.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// `config.json` could not be parsed or describes something we cannot run.
    #[error("invalid model config: {0}")]
    Config(String),
    /// The config names an architecture or model type this crate does not implement.
    #[error("unsupported architecture: {0}")]
    UnsupportedArchitecture(String),
    /// The config names an activation function this crate does not implement.
    #[error(
        "unsupported activation function {0:?} (supported: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)"
    )]
    UnsupportedActivation(String),
    /// A tensor the model needs is not in the weights file.
    #[error("weights have no tensor named {name:?}")]
    MissingTensor { name: String },
    /// A tensor exists but its shape does not match the config.
    #[error("tensor {name:?} has shape {found:?}, the config needs {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// The weights file itself is unreadable (not safetensors / GGUF, truncated, ...).
    #[error("unreadable weights: {0}")]
    Weights(String),
    /// The tokenizer definition is unusable.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The image bytes are not a decodable image.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// The image header announces more pixels than allowed (decompression bomb protection).
    #[error("image is {width}x{height} = {pixels} pixels, more than the limit of {limit}")]
    TooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    /// Decoding the image would take more memory than allowed (the header's size and color
    /// type tell before any pixel is allocated).
    #[error(
        "image is {width}x{height} {color}: decoding it takes {bytes} bytes, more than the decode budget of {limit}"
    )]
    TooMuchMemory {
        width: u32,
        height: u32,
        color: String,
        bytes: u64,
        limit: u64,
    },
    /// Input handed to an encoder is malformed (empty batch, wrong pixel shape, ...).
    #[error("invalid input: {0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Fetching model files from the Hugging Face hub failed.
    #[error("model download: {0}")]
    Download(String),
    /// An error from the tensor library.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result with [`ClipError`].
pub type Result<T, E = ClipError> = std::result::Result<T, E>;
