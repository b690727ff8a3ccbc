//! The image target: can any file bytes make ingest's decode stage panic, or hand the model a
//! malformed input?
//!
//! The bytes go through what ingest does to a fetched body: the sniff (`fetch::sniff`), then
//! `ingest::prepare` with the processor ingest uses for ViT-B/32 (224 px input, the default
//! pixel limit) at the draft scale it decodes JPEGs at, and for JPEGs also at full size
//! (`--full-decode`). A success must be a 3×224×224 finite input, a non-empty size and a
//! thumbnail JPEG whose longest side is at most 256 px.

use std::io::Cursor;
use std::sync::LazyLock;

use clip::ImageProcessor;
use proxy::ingest::{self, THUMB_SIDE, fetch};

use crate::{Outcome, shape};

/// The processor ingest builds for a 224 px vision tower, with its default limits.
static PROCESSOR: LazyLock<ImageProcessor> = LazyLock::new(ImageProcessor::default);

/// Image bytes → ingest's model input and thumbnail; panics if an invariant breaks.
pub fn image(data: &[u8]) -> Outcome {
    let sniffed = fetch::sniff(data).is_ok();
    let format = ::image::guess_format(data).ok();
    let draft = prepare(data, false);
    // Only JPEGs decode differently at full size.
    let full = (format == Some(::image::ImageFormat::Jpeg)).then(|| prepare(data, true).is_ok());
    match (&draft, sniffed) {
        (Ok(()), false) => panic!("decoded an image the sniff refuses"),
        (Ok(()), true) => format!("ok {format:?} full:{full:?}"),
        (Err(reason), _) => format!("{format:?} full:{full:?} {}", shape(reason)),
    }
}

fn prepare(data: &[u8], full_decode: bool) -> Result<(), String> {
    let processor = &*PROCESSOR;
    let prepared = ingest::prepare(data, processor, full_decode)?;
    let side = processor.size as usize;
    assert_eq!(prepared.pixels.len(), 3 * side * side, "model input size");
    assert!(
        prepared.pixels.iter().all(|p| p.is_finite()),
        "non-finite model input"
    );
    let (width, height) = prepared.size;
    assert!(width > 0 && height > 0, "size {width}x{height}");
    let thumb = ::image::ImageReader::with_format(
        Cursor::new(&prepared.thumbnail),
        ::image::ImageFormat::Jpeg,
    )
    .into_dimensions()
    .expect("the thumbnail is a JPEG");
    assert!(
        thumb.0.max(thumb.1) <= THUMB_SIDE && thumb.0.min(thumb.1) >= 1,
        "thumbnail {thumb:?} for an image of {width}x{height}"
    );
    Ok(())
}
