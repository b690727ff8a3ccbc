//! Text → token ids, equal to transformers' `CLIPTokenizerFast` (the `tokenizer.json` of the
//! model repository, run by the `tokenizers` crate with its pure-Rust regex engine so it also
//! runs in the browser).

use tokenizers::Tokenizer;

use crate::error::{ClipError, Result};

/// CLIP's start token `<|startoftext|>` in the released vocabulary.
pub const BOS_ID: u32 = 49406;
/// CLIP's end (and padding) token `<|endoftext|>` in the released vocabulary.
pub const EOS_ID: u32 = 49407;
/// Context length of every released CLIP text tower.
pub const CONTEXT_LENGTH: usize = 77;

/// The CLIP BPE tokenizer with the model's context length.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    bos: u32,
    eos: u32,
    max_len: usize,
}

impl ClipTokenizer {
    /// Parses a Hugging Face `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let inner = Tokenizer::from_bytes(bytes)
            .map_err(|e| ClipError::Tokenizer(format!("cannot parse tokenizer.json: {e}")))?;
        let id = |tok: &str| {
            inner
                .token_to_id(tok)
                .ok_or_else(|| ClipError::Tokenizer(format!("vocabulary has no {tok} token")))
        };
        let (bos, eos) = (id("<|startoftext|>")?, id("<|endoftext|>")?);
        Ok(Self {
            inner,
            bos,
            eos,
            max_len: CONTEXT_LENGTH,
        })
    }

    /// Uses another context length (the text tower's `max_position_embeddings`).
    pub fn with_max_len(mut self, max_len: usize) -> Result<Self> {
        if max_len < 2 {
            return Err(ClipError::Tokenizer(format!(
                "context length {max_len} leaves no room for the start and end tokens"
            )));
        }
        self.max_len = max_len;
        Ok(self)
    }

    /// The start token's id.
    pub fn bos_id(&self) -> u32 {
        self.bos
    }

    /// The end token's id.
    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    /// `[BOS, tokens…, EOS]`, truncated to the context length keeping the end token: the same as
    /// `tokenizer(text, truncation=True, max_length=77)["input_ids"]` in transformers.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| ClipError::Tokenizer(format!("cannot tokenize {text:?}: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        if ids.len() > self.max_len {
            ids.truncate(self.max_len - 1);
            ids.push(self.eos);
        }
        Ok(ids)
    }

    /// [`Self::encode`] for each text.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        texts.iter().map(|t| self.encode(t.as_ref())).collect()
    }
}
