//! SigLIP's tokenizer from the file hub SigLIP checkpoints ship, `spiece.model` (a SentencePiece
//! unigram model; transformers' `SiglipTokenizer` is a slow, Python-only tokenizer and there is
//! no `tokenizer.json`): the `tokenizer.json` that the `tokenizers` crate runs the same way.
//!
//! `SiglipTokenizer` prefixes "▁" to the text (after turning any "▁" in it into a space), then
//! canonicalises it (`str.lower()`, Python's `string.punctuation` removed, whitespace runs to one
//! space, stripped), then SentencePiece normalises (its precompiled character map, whitespace
//! runs collapsed, trailing whitespace dropped, spaces as "▁") and segments (unigram, split at
//! "▁"); `</s>` ends every text. The file here does the same steps in the same order. Known
//! differences, none in ordinary queries: Python's `str.lower()` writes a final sigma as "ς"
//! (`tokenizers` lowercases character by character), and text after a literal `</s>` or
//! `<unk>` in a query loses the "▁" before its first word in the slow tokenizer.

use base64::Engine;
use prost::Message;

use crate::error::{ClipError, Result};

/// `sentencepiece_model.proto`'s `ModelProto`, the fields read here.
#[derive(Clone, PartialEq, prost::Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<Piece>,
    #[prost(message, optional, tag = "2")]
    trainer_spec: Option<TrainerSpec>,
    #[prost(message, optional, tag = "3")]
    normalizer_spec: Option<NormalizerSpec>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Piece {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TrainerSpec {
    /// 1 unigram, 2 BPE, 3 word, 4 char.
    #[prost(int32, optional, tag = "3")]
    model_type: Option<i32>,
    #[prost(bool, optional, tag = "22")]
    split_by_whitespace: Option<bool>,
    #[prost(bool, optional, tag = "24")]
    treat_whitespace_as_suffix: Option<bool>,
    #[prost(bool, optional, tag = "35")]
    byte_fallback: Option<bool>,
    #[prost(int32, optional, tag = "40")]
    unk_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct NormalizerSpec {
    #[prost(bytes = "vec", optional, tag = "2")]
    precompiled_charsmap: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3")]
    add_dummy_prefix: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    remove_extra_whitespaces: Option<bool>,
}

/// Python's `string.punctuation`, which `SiglipTokenizer.canonicalize_text` removes.
const PUNCTUATION: &str = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;
/// The end token `SiglipTokenizer` appends (also its padding).
pub const EOS: &str = "</s>";
/// Its unknown token.
pub const UNK: &str = "<unk>";

fn refused(what: &str) -> ClipError {
    ClipError::Tokenizer(format!(
        "spiece.model: {what} (SigLIP's unigram tokenizer is implemented)"
    ))
}

/// Refuses a SentencePiece model `SiglipTokenizer`'s steps would not describe.
fn check(t: &TrainerSpec, n: &NormalizerSpec) -> Result<()> {
    if t.model_type.unwrap_or(1) != 1 {
        return Err(refused("not a unigram model"));
    }
    if t.byte_fallback.unwrap_or(false) {
        return Err(refused("byte fallback"));
    }
    if t.treat_whitespace_as_suffix.unwrap_or(false) || !t.split_by_whitespace.unwrap_or(true) {
        return Err(refused("whitespace not a word prefix"));
    }
    if !n.add_dummy_prefix.unwrap_or(true) || !n.remove_extra_whitespaces.unwrap_or(true) {
        return Err(refused("no dummy prefix or whitespace kept"));
    }
    Ok(())
}

/// `SiglipTokenizer` of the SentencePiece model `spiece_model` as a `tokenizer.json`.
pub fn siglip_tokenizer_json(spiece_model: &[u8]) -> Result<Vec<u8>> {
    let proto = ModelProto::decode(spiece_model).map_err(|e| {
        ClipError::Tokenizer(format!("spiece.model is not a SentencePiece model: {e}"))
    })?;
    let trainer = proto.trainer_spec.unwrap_or_default();
    let normalizer = proto.normalizer_spec.unwrap_or_default();
    check(&trainer, &normalizer)?;
    let vocab: Vec<(String, f32)> = proto
        .pieces
        .into_iter()
        .map(|p| (p.piece.unwrap_or_default(), p.score.unwrap_or(0.0)))
        .collect();
    let id = |token: &str| {
        vocab
            .iter()
            .position(|(p, _)| p == token)
            .ok_or_else(|| refused(&format!("no {token} piece")))
    };
    let (eos, unk) = (id(EOS)?, id(UNK)?);
    let special = |id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let punctuation: String = PUNCTUATION.chars().map(|c| format!("\\{c}")).collect();
    let replace = |pattern: &str, content: &str| serde_json::json!({"type": "Replace", "pattern": {"Regex": pattern}, "content": content});
    let strip_right =
        serde_json::json!({"type": "Strip", "strip_left": false, "strip_right": true});
    let mut normalizers = vec![
        serde_json::json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
        serde_json::json!({"type": "Prepend", "prepend": "▁"}),
        serde_json::json!({"type": "Lowercase"}),
        replace(&format!("[{punctuation}]"), ""),
        // Python's \s (str.isspace) also matches the separators \x1c-\x1f.
        replace(r"[\s\x1c-\x1f]+", " "),
        strip_right.clone(),
    ];
    if let Some(map) = normalizer.precompiled_charsmap.filter(|m| !m.is_empty()) {
        let map = base64::engine::general_purpose::STANDARD.encode(map);
        normalizers.push(serde_json::json!({"type": "Precompiled", "precompiled_charsmap": map}));
    }
    normalizers.extend([replace(" {2,}", " "), strip_right]);
    let metaspace = serde_json::json!({"type": "Metaspace", "replacement": "▁",
        "prepend_scheme": "never", "split": true});
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(eos, EOS), special(unk, UNK)],
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": metaspace,
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": EOS, "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": EOS, "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": EOS, "type_id": 0}}],
            "special_tokens": {EOS: {"id": EOS, "ids": [eos], "tokens": [EOS]}}},
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": trainer.unk_id.map_or(unk, |u| u as usize),
            "vocab": vocab, "byte_fallback": false},
    });
    serde_json::to_vec(&json).map_err(|e| ClipError::Tokenizer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(model_type: i32, byte_fallback: bool) -> Vec<u8> {
        let piece = |p: &str| Piece {
            piece: Some(p.into()),
            score: Some(0.0),
        };
        ModelProto {
            pieces: vec![piece("<pad>"), piece(EOS), piece(UNK), piece("▁a")],
            trainer_spec: Some(TrainerSpec {
                model_type: Some(model_type),
                byte_fallback: Some(byte_fallback),
                unk_id: Some(2),
                ..TrainerSpec::default()
            }),
            normalizer_spec: None,
        }
        .encode_to_vec()
    }

    #[test]
    fn a_unigram_model_becomes_a_tokenizer() {
        let json = siglip_tokenizer_json(&model(1, false)).unwrap();
        let tok = crate::ClipTokenizer::from_json(&json).unwrap();
        assert_eq!(tok.encode("A!").unwrap(), [3, 1]);
        assert_eq!(tok.encode("b").unwrap(), [2, 1]);
    }

    #[test]
    fn other_sentencepiece_models_are_refused() {
        let err = |bytes: &[u8]| siglip_tokenizer_json(bytes).unwrap_err().to_string();
        assert!(err(&model(2, false)).contains("not a unigram model"));
        assert!(err(&model(1, true)).contains("byte fallback"));
        assert!(err(b"\xff\xff").contains("not a SentencePiece model"));
    }
}
