//! Equality with the reference implementation (transformers 5.23 + Pillow 13, see
//! `fixtures/NOTES.md`): token ids, preprocessed pixels, and text and image embeddings of a tiny
//! random CLIP with the real vocabulary.

mod common;

use clip::{Device, ImageProcessor, Tensor, cosine, l2_normalize, pixel_batch};
use common::*;

/// Every fixture string must tokenize to exactly the reference ids. All mismatches are listed.
#[test]
fn token_ids_equal_reference() {
    let tok = tokenizer();
    check_token_ids(&tok, &token_cases());
    // Truncation keeps the end token.
    let long = tok.encode(&"a photo of a cat ".repeat(30)).unwrap();
    assert_eq!((long.len(), long[0], long[76]), (77, 49406, 49407));
}

/// The 8-bit crop the model sees equals Pillow's, byte for byte, for every format (JPEG —
/// baseline, progressive, 4:2:0, 4:4:4, grey, CMYK, odd sizes —, PNG in all its modes, GIF, BMP,
/// TIFF, WebP; EXIF orientation, alpha compositing): decode, conversion, resize and crop are
/// exact. JPEG is exact because native builds decode it with libjpeg-turbo, as Pillow does, and
/// convert CMYK the way Pillow does.
///
/// The 16-bit PNGs are compared with the scaled conversion (`alt_crop_scaled16`): PIL clamps
/// 16-bit grey to 255, which this crate deliberately does not copy.
#[test]
fn pixels_equal_reference() {
    let proc = ImageProcessor::default();
    let mut report = Vec::new();
    let mut jpegs = 0;
    for case in image_cases() {
        let file = case["file"].as_str().unwrap();
        let expected_path = case
            .get("alt_crop_scaled16")
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| case["crop"].as_str().unwrap());
        let expected = image::load_from_memory(&read(expected_path))
            .unwrap()
            .to_rgb8();
        let decoded = proc
            .decode(&read(&format!("images/{file}")))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let oriented = case["oriented_size"].as_array().unwrap();
        assert_eq!(
            [decoded.width() as u64, decoded.height() as u64],
            [oriented[0].as_u64().unwrap(), oriented[1].as_u64().unwrap()],
            "{file}: size after EXIF orientation"
        );
        let crop = proc.resize_crop(&decoded);
        let diffs: Vec<u8> = crop
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let max = diffs.iter().copied().max().unwrap();
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        jpegs += usize::from(file.ends_with(".jpg"));
        if max != 0 {
            report.push(format!(
                "{file}: max difference {max} levels, mean {mean:.3}"
            ));
        }
    }
    assert!(jpegs >= 10, "only {jpegs} JPEGs");
    assert!(
        report.is_empty(),
        "crops differ from the reference:\n{}",
        report.join("\n")
    );
}

/// JPEG draft decoding (`decode_draft`) equals Pillow with draft mode on, byte for byte: the
/// scale chosen (1/1, 1/2, 1/4 and 1/8 all occur), the decoded pixels, and the model's crop made
/// from them (`fixtures/draft.json`, written by `generate_draft.py`).
#[test]
fn jpeg_draft_equals_pillow_draft() {
    use sha2::{Digest, Sha256};
    let proc = ImageProcessor::default();
    let draft = json("draft.json");
    let cases = draft["cases"].as_array().unwrap();
    let mut scales = std::collections::BTreeSet::new();
    let mut report = Vec::new();
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let side = case["side"].as_u64().unwrap() as u32;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bytes = std::fs::read(root.join(file)).unwrap();
        let (decoded, full) = proc
            .decode_draft(&bytes, side)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let full = [u64::from(full.0), u64::from(full.1)];
        assert_eq!(
            full.to_vec(),
            json_u64s(&case["full_size"]),
            "{file}: full size"
        );
        scales.insert(case["scale"].as_u64().unwrap());
        let size = [u64::from(decoded.width()), u64::from(decoded.height())];
        let hex = |b: &[u8]| hex::encode(Sha256::digest(b));
        if size.to_vec() != json_u64s(&case["decoded_size"]) {
            report.push(format!("{file} side {side}: decoded size {size:?}"));
        } else if hex(decoded.as_raw()) != case["decoded_sha256"].as_str().unwrap() {
            report.push(format!("{file} side {side}: decoded pixels differ"));
        } else if hex(proc.resize_crop(&decoded).as_raw()) != case["crop_sha256"].as_str().unwrap()
        {
            report.push(format!("{file} side {side}: crop differs"));
        }
    }
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    assert_eq!(scales.into_iter().collect::<Vec<_>>(), [1, 2, 4, 8]);
    assert!(report.is_empty(), "{}", report.join("\n"));
}

fn json_u64s(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// Normalisation equals transformers' float32 `rescale` + `normalize` (the fixture's look-up
/// table) to within 1e-6, hence the model input equals the reference to within 1e-6 wherever
/// the crops are equal.
#[test]
fn normalisation_equals_reference() {
    let lut = rows(&tensors("pixels.safetensors")["normalize_lut"]);
    let proc = ImageProcessor::default();
    let mut crop = image::RgbImage::new(256, 1);
    for (x, p) in crop.pixels_mut().enumerate() {
        *p = image::Rgb([x as u8; 3]);
    }
    let px = proc.normalize(&crop);
    for c in 0..3 {
        assert!(
            max_abs_diff(&px[c * 256..(c + 1) * 256], &lut[c]) <= 1e-6,
            "channel {c}"
        );
    }
}

/// The reference model input of each image: the fixture crop through the look-up table.
fn reference_pixels() -> Tensor {
    let lut = rows(&tensors("pixels.safetensors")["normalize_lut"]);
    let images: Vec<Vec<f32>> = image_cases()
        .iter()
        .map(|case| {
            let crop = image::load_from_memory(&read(case["crop"].as_str().unwrap()))
                .unwrap()
                .to_rgb8();
            let plane = 224 * 224;
            let mut out = vec![0f32; 3 * plane];
            for (i, p) in crop.pixels().enumerate() {
                for c in 0..3 {
                    out[c * plane + i] = lut[c][p.0[c] as usize];
                }
            }
            out
        })
        .collect();
    pixel_batch(&images, 224, &Device::Cpu).unwrap()
}

fn check_rows(what: &str, got: &[Vec<f32>], expected: &[Vec<f32>], min_cos: f32, max_abs: f32) {
    assert_eq!(got.len(), expected.len(), "{what}: row count");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let (cos, diff) = (cosine(g, e), max_abs_diff(g, e));
        assert!(
            cos >= min_cos && diff <= max_abs,
            "{what} row {i}: cosine {cos}, max abs diff {diff}"
        );
    }
}

/// Image embeddings from the reference pixels, both activations.
#[test]
fn image_embeddings_equal_reference() {
    let pixels = reference_pixels();
    let reference = tensors("reference.safetensors");
    for (dir, act) in [("tiny-clip", "quick_gelu"), ("tiny-clip-gelu", "gelu")] {
        let m = model(dir);
        let got = m.vision.forward(&pixels).unwrap();
        check_rows(
            &format!("image {act}"),
            &rows(&got),
            &rows(&reference[&format!("image_embeds.{act}")]),
            0.99999,
            1e-4,
        );
        let normalized = rows(&l2_normalize(&got).unwrap());
        check_rows(
            &format!("image {act} normalised"),
            &normalized,
            &rows(&reference[&format!("image_embeds_normalized.{act}")]),
            0.99999,
            1e-5,
        );
    }
}

/// Text embeddings of every fixture string (reference ids), batched as the product batches them.
#[test]
fn text_embeddings_equal_reference() {
    let ids: Vec<Vec<u32>> = token_cases().into_iter().map(|(_, ids)| ids).collect();
    let reference = tensors("reference.safetensors");
    for (dir, act) in [("tiny-clip", "quick_gelu"), ("tiny-clip-gelu", "gelu")] {
        let m = model(dir);
        let mut got = Vec::new();
        for chunk in ids.chunks(64) {
            got.extend(rows(&m.text.encode(chunk).unwrap()));
        }
        check_rows(
            &format!("text {act}"),
            &got,
            &rows(&reference[&format!("text_embeds.{act}")]),
            0.99999,
            1e-4,
        );
        let mut normalized = Vec::new();
        for chunk in ids.chunks(64) {
            normalized.extend(m.text.embed(chunk).unwrap());
        }
        check_rows(
            &format!("text {act} normalised"),
            &normalized,
            &rows(&reference[&format!("text_embeds_normalized.{act}")]),
            0.99999,
            1e-5,
        );
    }
}

/// Computing only up to the end token, padded to the batch's longest member, equals the full
/// 77-token computation (padding with the end token, as transformers pads).
#[test]
fn trimmed_text_equals_full_context() {
    let m = model("tiny-clip");
    let ids: Vec<Vec<u32>> = token_cases()
        .into_iter()
        .map(|(_, ids)| ids)
        .take(120)
        .collect();
    let trimmed = rows(&m.text.encode(&ids).unwrap());
    let padded: Vec<u32> = ids
        .iter()
        .flat_map(|s| {
            s.iter()
                .copied()
                .chain(std::iter::repeat_n(49407, 77 - s.len()))
        })
        .collect();
    let full = rows(
        &m.text
            .forward_ids(&Tensor::from_vec(padded, (ids.len(), 77), &Device::Cpu).unwrap())
            .unwrap(),
    );
    for (i, (t, f)) in trimmed.iter().zip(&full).enumerate() {
        assert!(
            max_abs_diff(t, f) <= 1e-5,
            "string {i}: {}",
            max_abs_diff(t, f)
        );
    }
    // And tokens after the end token never matter: different junk there, same result.
    let junk: Vec<u32> = ids[7]
        .iter()
        .copied()
        .chain([320, 1125, 539].into_iter().cycle().take(77 - ids[7].len()))
        .collect();
    let with_junk = rows(
        &m.text
            .forward_ids(&Tensor::from_vec(junk, (1, 77), &Device::Cpu).unwrap())
            .unwrap(),
    );
    assert!(max_abs_diff(&with_junk[0], &full[7]) <= 1e-5);
}

/// End to end: image file bytes → embedding, against the reference embedding of the same file.
/// Excludes the two 16-bit PNGs, whose reference is PIL's clamped (white) conversion.
#[test]
fn image_bytes_to_embedding_matches_reference() {
    let m = model("tiny-clip");
    let proc = ImageProcessor::for_model(m.vision.config());
    let reference = rows(&tensors("reference.safetensors")["image_embeds_normalized.quick_gelu"]);
    let mut checked = 0;
    for (case, expected) in image_cases().iter().zip(&reference) {
        if case.get("alt_crop_scaled16").is_some() {
            continue;
        }
        let file = case["file"].as_str().unwrap();
        let px = proc.preprocess(&read(&format!("images/{file}"))).unwrap();
        let got = m
            .vision
            .embed(&pixel_batch(&[px], 224, &Device::Cpu).unwrap())
            .unwrap();
        let cos = cosine(&got[0], expected);
        // Equal pixels leave only float rounding.
        assert!(cos >= 0.99999, "{file}: cosine {cos}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} images checked");
}

/// Text end to end: string → tokenizer → trimmed encoder → unit vector.
#[test]
fn text_to_embedding_matches_reference() {
    let m = model("tiny-clip");
    let tok = tokenizer();
    let cases = token_cases();
    let texts: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    let reference = rows(&tensors("reference.safetensors")["text_embeds_normalized.quick_gelu"]);
    let got = m.text.embed(&tok.encode_batch(&texts).unwrap()).unwrap();
    check_rows("text end to end", &got, &reference, 0.99999, 1e-5);
}

/// The model computed in f16 (`Weights::with_dtype`, what the GPU ingest uses by default) gives
/// the f32 embeddings up to half-precision rounding, for text and images. Run here on the CPU,
/// which has every f16 kernel the GPU path uses (matmul, conv, layer norm, softmax, sigmoid).
#[test]
fn f16_embeddings_match_f32() {
    let config = clip::ClipConfig::from_json(&read("tiny-clip/config.json")).unwrap();
    let weights =
        clip::Weights::from_safetensors(read("tiny-clip/model.safetensors"), &Device::Cpu).unwrap();
    let f32_model = clip::ClipModel::new(&config, &weights).unwrap();
    let f16_model = clip::ClipModel::new(&config, &weights.with_dtype(clip::DType::F16)).unwrap();
    let tok = tokenizer();
    let ids: Vec<Vec<u32>> = ["a photo of a cat", "red car parked on a street", ""]
        .iter()
        .map(|t| tok.encode(t).unwrap())
        .collect();
    let (a, b) = (
        f32_model.text.embed(&ids).unwrap(),
        f16_model.text.embed(&ids).unwrap(),
    );
    let proc = ImageProcessor::default();
    let images: Vec<Vec<f32>> = ["images/jpeg_800x600.jpg", "images/png_rgba_200x150.png"]
        .iter()
        .map(|f| proc.preprocess(&read(f)).unwrap())
        .collect();
    let pixels = pixel_batch(&images, 224, &Device::Cpu).unwrap();
    let (c, d) = (
        f32_model.vision.embed(&pixels).unwrap(),
        f16_model.vision.embed(&pixels).unwrap(),
    );
    for (i, (x, y)) in a.iter().zip(&b).chain(c.iter().zip(&d)).enumerate() {
        let cos = cosine(x, y);
        eprintln!("f16 vs f32, embedding {i}: cosine {cos:.6}");
        assert!(cos >= 0.999, "embedding {i}: cosine {cos}");
    }
    // Not equal: f16 is not f32.
    assert!(
        a.iter()
            .zip(&b)
            .chain(c.iter().zip(&d))
            .all(|(x, y)| x != y),
        "f16 gave bit-identical vectors: it did not compute in f16"
    );
}
