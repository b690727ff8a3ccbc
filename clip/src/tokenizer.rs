//! Text → token ids, equal to transformers' `CLIPTokenizerFast` (the `tokenizer.json` of the
//! model repository, run by the `tokenizers` crate with its pure-Rust regex engine so it also
//! runs in the browser). Snapshots saved with the slow tokenizer (`vocab.json` + `merges.txt`,
//! no `tokenizer.json`) get the `tokenizer.json` transformers' `CLIPConverter` would make of
//! them ([`json_from_vocab_merges`]). SigLIP's tokenizer (no start token, `</s>` at the end) runs
//! the same way from the `tokenizer.json` [`crate::spiece`] makes of its `spiece.model`.

use tokenizers::Tokenizer;

use crate::error::{ClipError, Result};

/// CLIP's start token `<|startoftext|>` in the released vocabulary.
pub const BOS_ID: u32 = 49406;
/// CLIP's end (and padding) token `<|endoftext|>` in the released vocabulary.
pub const EOS_ID: u32 = 49407;
/// Context length of every released CLIP text tower.
pub const CONTEXT_LENGTH: usize = 77;

/// How many merges transformers' slow `CLIPTokenizer` reads from `merges.txt`:
/// `49152 - 256 - 2` (the lines after the `#version` header).
pub const MERGES: usize = 49152 - 256 - 2;

/// The `tokenizer.json` that transformers' `CLIPConverter` makes from a slow CLIP tokenizer's
/// `vocab.json` and `merges.txt`: NFC, whitespace runs to one space, lowercase; CLIP's word
/// regex, then byte-level; BPE with the `</w>` suffix and `<|endoftext|>` as the unknown token;
/// `<|startoftext|> … <|endoftext|>` around every text.
pub fn json_from_vocab_merges(vocab_json: &[u8], merges_txt: &[u8]) -> Result<Vec<u8>> {
    let vocab: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(vocab_json)
        .map_err(|e| ClipError::Tokenizer(format!("vocab.json: {e}")))?;
    let merges = std::str::from_utf8(merges_txt)
        .map_err(|e| ClipError::Tokenizer(format!("merges.txt: {e}")))?;
    let merges: Vec<&str> = merges
        .lines()
        .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
        .take(MERGES)
        .collect();
    let id = |token: &str| {
        vocab
            .get(token)
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| ClipError::Tokenizer(format!("vocab.json has no {token} token")))
    };
    let (bos, eos) = (id("<|startoftext|>")?, id("<|endoftext|>")?);
    let added = |id: u64, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": true, "special": true})
    };
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added(bos, "<|startoftext|>"), added(eos, "<|endoftext|>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex":
                "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", eos],
            "cls": ["<|startoftext|>", bos], "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<|endoftext|>",
            "continuing_subword_prefix": "", "end_of_word_suffix": "</w>", "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    serde_json::to_vec(&json).map_err(|e| ClipError::Tokenizer(e.to_string()))
}

/// The model's tokenizer (CLIP's BPE, or SigLIP's unigram) with its context length.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    bos: Option<u32>,
    eos: u32,
    max_len: usize,
}

impl ClipTokenizer {
    /// Parses a Hugging Face `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let inner = Tokenizer::from_bytes(bytes)
            .map_err(|e| ClipError::Tokenizer(format!("cannot parse tokenizer.json: {e}")))?;
        let (bos, eos) = match inner.token_to_id("<|endoftext|>") {
            Some(eos) => {
                let bos = inner.token_to_id("<|startoftext|>").ok_or_else(|| {
                    ClipError::Tokenizer("vocabulary has no <|startoftext|> token".into())
                })?;
                (Some(bos), eos)
            }
            None => (
                None,
                inner.token_to_id(crate::spiece::EOS).ok_or_else(|| {
                    ClipError::Tokenizer(
                        "vocabulary has neither CLIP's <|endoftext|> nor SigLIP's </s> end token \
                         (SigLIP 2's Gemma tokenizer is not implemented)"
                            .into(),
                    )
                })?,
            ),
        };
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

    /// The start token's id (CLIP's; SigLIP has none).
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end token's id.
    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    /// `[BOS, tokens…, EOS]` (SigLIP: `[tokens…, EOS]`), truncated to the context length keeping
    /// the end token: the same as `tokenizer(text, truncation=True, max_length=77)["input_ids"]`
    /// in transformers (64 for SigLIP).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A tokenizer with neither CLIP's nor SigLIP's end token (SigLIP 2 ships Gemma's, whose
    /// end token is `<eos>`) is refused with the reason.
    #[test]
    fn a_tokenizer_without_a_known_end_token_is_refused() {
        let json = br#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,
            "decoder":null,"model":{"type":"WordLevel","vocab":{"<eos>":0,"a":1},"unk_token":"<eos>"}}"#;
        let err = ClipTokenizer::from_json(json).unwrap_err().to_string();
        assert!(err.contains("</s>") && err.contains("SigLIP 2"), "{err}");
    }
}
