//! Image bytes → the model's input pixels, equal to transformers' `CLIPImageProcessor` (the
//! PIL-based one, which is also what the original OpenAI code does):
//!
//! 1. decode (JPEG, PNG, GIF — first frame —, WebP, BMP, TIFF), refusing decompression bombs
//!    from the header before any pixel is allocated: more pixels than Pillow opens, or more
//!    memory than the decode budget ([`decode_footprint`]);
//! 2. apply the EXIF orientation (PIL's `ImageOps.exif_transpose`; the processor itself does not,
//!    but a photo search that shows sideways photos is broken);
//! 3. convert to 8-bit RGB (`image.convert("RGB")`);
//! 4. resize so the shortest side is 224 with PIL's bicubic filter (`Image.resize(..., BICUBIC)`),
//!    reimplemented here with the same fixed-point arithmetic as Pillow's `Resample.c` so the
//!    8-bit result is identical, not merely close;
//! 5. center crop 224×224 (`top = (height - 224) // 2`);
//! 6. scale to [0, 1] and normalise with CLIP's mean and std, channels first.
//!
//! OpenCLIP checkpoints follow open_clip's val transform instead ([`Transform::OpenClip`], chosen
//! by the checkpoint's layout): the same resize, but torchvision's center crop rounds the offset
//! (`round((height - 224) / 2)`, halves to even), the rescale divides by 255, and the mean and
//! std are the checkpoint's; MobileCLIP's configs ask for Pillow's bilinear filter instead of
//! bicubic ([`Interpolation::Bilinear`], the same fixed-point arithmetic with a triangle kernel
//! of support 1). Steps 1–3 stay the product's for every family (open_clip itself
//! converts to RGB after cropping, which resizes palette images by nearest neighbour and drops
//! alpha instead of compositing it onto white).
//!
//! SigLIP checkpoints follow transformers' `SiglipImageProcessor` ([`Transform::Siglip`], chosen
//! by the checkpoint's config): steps 4–5 become one bicubic resize straight to the model's
//! square input (aspect not kept, nothing cropped), normalised with mean and std 0.5.

use std::io::Cursor;
use std::ops::Range;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::config::{Interpolation, Transform, VisionConfig};
use crate::error::{ClipError, Result};

/// CLIP's per-channel mean (`OPENAI_CLIP_MEAN` in transformers).
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's per-channel standard deviation (`OPENAI_CLIP_STD` in transformers).
#[allow(
    clippy::excessive_precision,
    reason = "the digits exactly as transformers writes OPENAI_CLIP_STD"
)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];
/// Pillow's `Image.MAX_IMAGE_PIXELS * 2`, the size above which PIL refuses to open an image.
pub const DEFAULT_MAX_PIXELS: u64 = 2 * 89_478_485;
/// The default decode budget: 1 GiB, a 150-megapixel 8-bit photo (7 bytes a pixel, see
/// [`decode_footprint`]) or a 97-megapixel 16-bit RGBA PNG (12 bytes a pixel).
pub const DEFAULT_MAX_DECODED_BYTES: u64 = 1 << 30;

/// The preprocessing pipeline for one model's input size.
#[derive(Debug, Clone)]
pub struct ImageProcessor {
    /// Side of the square model input (224 for ViT-B/32).
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Whose crop rounding and rescale (the model family's reference).
    pub transform: Transform,
    /// Pillow's filter for the resize (bicubic but for MobileCLIP).
    pub interpolation: Interpolation,
    /// Images whose header announces more pixels than this are refused before decoding.
    pub max_pixels: u64,
    /// Images whose decoding would hold more bytes than this ([`decode_footprint`]) are refused
    /// before decoding; the decoders' own allocations are capped at it too.
    pub max_decoded_bytes: u64,
}

impl Default for ImageProcessor {
    fn default() -> Self {
        Self {
            size: 224,
            mean: CLIP_MEAN,
            std: CLIP_STD,
            transform: Transform::Transformers,
            interpolation: Interpolation::Bicubic,
            max_pixels: DEFAULT_MAX_PIXELS,
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
        }
    }
}

impl ImageProcessor {
    /// The pipeline for a vision tower: its input size and its family's preprocessing.
    pub fn for_model(config: &VisionConfig) -> Self {
        let p = config.preprocessing;
        Self {
            size: config.image_size as u32,
            mean: p.mean,
            std: p.std,
            transform: p.transform,
            interpolation: p.interpolation,
            ..Self::default()
        }
    }

    /// Steps 1–3: bytes → upright 8-bit RGB, at full size.
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage> {
        Ok(self.decode_scaled(bytes, None)?.0)
    }

    /// Steps 1–3 where full size is not needed: a JPEG is decoded at the smallest DCT scale (1/2,
    /// 1/4 or 1/8) that keeps both sides at least `side` pixels — Pillow's draft mode,
    /// `image.draft("RGB", (side, side))`, with the same library, so the pixels equal Pillow's
    /// with draft mode on. For a 2-megapixel photo and `side` = 224 that is 1/4 scale and about
    /// half the decoding time; the model's crop then differs slightly from a full-size decode
    /// (the resize starts from fewer pixels). Other formats, and JPEG in wasm32 builds, decode
    /// at full size. Returns the image and the full size (width, height), upright.
    pub fn decode_draft(&self, bytes: &[u8], side: u32) -> Result<(RgbImage, (u32, u32))> {
        self.decode_scaled(bytes, Some(side))
    }

    fn decode_scaled(&self, bytes: &[u8], draft: Option<u32>) -> Result<(RgbImage, (u32, u32))> {
        if bytes.is_empty() {
            return Err(ClipError::Decode("empty file".into()));
        }
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| ClipError::Decode(e.to_string()))?;
        let format = reader.format();
        match format {
            None => {
                return Err(ClipError::Decode(
                    "not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF)".into(),
                ));
            }
            Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
                return Err(ClipError::Decode(
                    "truncated JPEG: the last scan has no end-of-image marker".into(),
                ));
            }
            Some(_) => {}
        }
        let mut limits = image::Limits::default();
        // The checks below cover the image buffers; this caps what a decoder allocates besides.
        limits.max_alloc = Some(self.max_decoded_bytes);
        reader.limits(limits);
        let mut decoder = reader.into_decoder().map_err(|e| match e {
            image::ImageError::Limits(_) => ClipError::Decode(format!(
                "the decoder needs more than the decode budget of {} bytes",
                self.max_decoded_bytes
            )),
            e => ClipError::Decode(e.to_string()),
        })?;
        let (width, height) = decoder.dimensions();
        self.check_size(width, height, decoder.color_type())?;
        let orientation = decoder
            .orientation()
            .map_err(|e| ClipError::Decode(e.to_string()))?;
        use image::metadata::Orientation::{Rotate90, Rotate90FlipH, Rotate270, Rotate270FlipH};
        let upright = if matches!(
            orientation,
            Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH
        ) {
            (height, width)
        } else {
            (width, height)
        };
        // Oriented after the conversion to 8-bit RGB (a rotation copies the image: the smaller
        // copy), which gives the same pixels: both are per-pixel or a permutation of pixels.
        let upright_rgb = |rgb: RgbImage| {
            let mut img = DynamicImage::ImageRgb8(rgb);
            img.apply_orientation(orientation);
            img.into_rgb8()
        };
        // JPEG natively: libjpeg-turbo, as Pillow (identical pixels); the general decoder below
        // takes what it declines (damaged data it would only warn about).
        #[cfg(not(target_arch = "wasm32"))]
        if format == Some(image::ImageFormat::Jpeg) {
            let denominator = draft.map_or(1, |side| {
                crate::jpeg::draft_denominator(width, height, side)
            });
            if let Some(rgb) = crate::jpeg::decode_rgb(bytes, denominator) {
                return Ok((upright_rgb(rgb), upright));
            }
        }
        #[cfg(target_arch = "wasm32")]
        let _ = draft;
        let img =
            DynamicImage::from_decoder(decoder).map_err(|e| ClipError::Decode(e.to_string()))?;
        Ok((upright_rgb(to_rgb8(img)), upright))
    }

    /// The header's verdict: no empty image, not more pixels than `max_pixels`, not more bytes
    /// than `max_decoded_bytes`.
    fn check_size(&self, width: u32, height: u32, color: image::ColorType) -> Result<()> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(ClipError::TooLarge {
                width,
                height,
                pixels,
                limit: self.max_pixels,
            });
        }
        if pixels == 0 {
            return Err(ClipError::Decode(format!("image is {width}x{height}")));
        }
        let bytes = decode_footprint(width, height, color);
        if bytes > self.max_decoded_bytes {
            return Err(ClipError::TooMuchMemory {
                width,
                height,
                color: format!("{color:?}"),
                bytes,
                limit: self.max_decoded_bytes,
            });
        }
        Ok(())
    }

    /// Steps 4–5: the 8-bit `size`×`size` crop the model sees. SigLIP's processor resizes
    /// straight to that size instead (aspect not kept, nothing cropped).
    pub fn resize_crop(&self, img: &RgbImage) -> RgbImage {
        let s = self.size as usize;
        if self.transform == Transform::Siglip {
            return resize_bicubic(img, s, s);
        }
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (nw, nh) = resized_size(w, h, s);
        let offset = |n: usize| crop_offset(n.saturating_sub(s), self.transform);
        let (top, left) = (offset(nh), offset(nw));
        // Only the crop is computed: each output pixel depends on the source alone.
        let window = Window {
            left,
            top,
            width: s.min(nw),
            height: s.min(nh),
        };
        resize_window(img, nw, nh, window, self.interpolation)
    }

    /// Step 6: `[3, size, size]` channels-first f32, normalised.
    pub fn normalize(&self, crop: &RgbImage) -> Vec<f32> {
        let plane = (crop.width() * crop.height()) as usize;
        let mut out = vec![0f32; 3 * plane];
        let rescale = |v: u8| match self.transform {
            // transformers: rescale (x * 1/255)
            Transform::Transformers => f32::from(v) * (1.0 / 255.0),
            // torchvision's ToTensor: x.float().div(255)
            Transform::OpenClip => f32::from(v) / 255.0,
            // SigLIP's processor: rescale in float64, then float32 (x * 0.00392156862745098).
            Transform::Siglip => (f64::from(v) * (1.0 / 255.0)) as f32,
        };
        for (i, px) in crop.pixels().enumerate() {
            for c in 0..3 {
                // then normalize ((x - mean) / std)
                out[c * plane + i] = (rescale(px.0[c]) - self.mean[c]) / self.std[c];
            }
        }
        out
    }

    /// The whole pipeline: image file bytes → `[3, size, size]` model input.
    pub fn preprocess(&self, bytes: &[u8]) -> Result<Vec<f32>> {
        Ok(self.normalize(&self.resize_crop(&self.decode(bytes)?)))
    }
}

/// The JPEG decoder fills a cut-off scan with grey instead of failing (Pillow raises "image file
/// is truncated"). A complete file has an end-of-image marker (FF D9) after its last start-of-scan
/// marker (FF DA); neither byte pair can occur inside entropy-coded data, where FF is stuffed as
/// FF 00. An EXIF thumbnail's own markers come before the main image's scans, so they do not
/// mislead the check.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

/// The most bytes decoding an image holds at once: the decoder's buffer (`bytes_per_pixel` of
/// its color type) while its 8-bit RGB(A) conversion is made (4 bytes a pixel with alpha, 3
/// without), or, for an orientation that rotates, the RGB image and its rotated copy (6).
/// Everything after (the model's crop, the thumbnail) is small beside it.
pub fn decode_footprint(width: u32, height: u32, color: image::ColorType) -> u64 {
    let per_pixel = (u64::from(color.bytes_per_pixel()) + 4).max(6);
    u64::from(width) * u64::from(height) * per_pixel
}

/// transformers' `convert_rgb`: an image with an alpha channel (RGBA, LA, or a palette with a
/// transparent entry, which decoders hand over as RGBA) is composited onto opaque white,
/// `round((c·a + 255·(255 − a)) / 255)`; grey is replicated. 16-bit samples are scaled to 8 bits
/// (`(v + 128) / 257`). PIL instead clamps 16-bit grey to `min(v, 255)`, which turns a normal
/// 16-bit photo white: a deliberate, tested divergence (see the fixtures' NOTES.md).
fn to_rgb8(img: DynamicImage) -> RgbImage {
    if let DynamicImage::ImageRgb8(rgb) = img {
        return rgb;
    }
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    // The source is dropped before the RGB image is made: one conversion alive at a time.
    let rgba = img.into_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p.0[3]);
        for c in 0..3 {
            let x = u32::from(p.0[c]) * a + 255 * (255 - a);
            // round(x / 255) with halves up, in integers.
            o.0[c] = ((2 * x + 255) / 510) as u8;
        }
    }
    out
}

/// Where a center crop starts when the image is `excess` pixels longer than the crop:
/// transformers' `center_crop` floors `excess / 2`; torchvision's `CenterCrop` computes
/// `int(round(excess / 2.0))`, and Python rounds halves to even.
pub fn crop_offset(excess: usize, transform: Transform) -> usize {
    let half = excess / 2;
    match transform {
        Transform::Transformers | Transform::Siglip => half,
        Transform::OpenClip if excess % 2 == 1 && half % 2 == 1 => half + 1,
        Transform::OpenClip => half,
    }
}

/// `get_resize_output_image_size(default_to_square=False)`: the shortest side becomes `short`,
/// the other `int(short * long / short_side)`. Returns (width, height).
pub fn resized_size(width: usize, height: usize, short: usize) -> (usize, usize) {
    let (s, l) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let long = ((short * l) as f64 / s as f64) as usize;
    if width <= height {
        (short, long)
    } else {
        (long, short)
    }
}

// ---- Pillow's Resample.c, bicubic, 8 bits per channel ----

/// Pillow keeps filter weights as fixed point with this many fractional bits.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `bicubic_filter` (a = -0.5), support 2.
fn bicubic_filter(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `bilinear_filter` (a triangle), support 1.
fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// A filter as Pillow describes one: the kernel and its support at scale 1.
fn filter(interpolation: Interpolation) -> (fn(f64) -> f64, f64) {
    match interpolation {
        Interpolation::Bicubic => (bicubic_filter, 2.0),
        Interpolation::Bilinear => (bilinear_filter, 1.0),
    }
}

/// For the output pixels `first..first + bounds.len()`: first input index, taps, and
/// fixed-point weights (`precompute_coeffs` + `normalize_coeffs_8bpc`).
struct Coeffs {
    first: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

impl Coeffs {
    /// Output pixel `xx`'s first input index and weights.
    fn of(&self, xx: usize) -> (usize, &[i32]) {
        let i = xx - self.first;
        let (min, n) = self.bounds[i];
        (min, &self.weights[i * self.ksize..i * self.ksize + n])
    }

    /// The input pixels the output pixels `out` read (`out` within those computed).
    fn span(&self, out: &Range<usize>) -> Range<usize> {
        let (last, k) = self.of(out.end - 1);
        self.of(out.start).0..last + k.len()
    }
}

/// Pillow's coefficients for resizing `in_size` pixels to `out_size`, computed only for the
/// output pixels `first..first + count` (each depends on its index alone, so a crop of a huge
/// resize costs no more than the crop).
fn precompute_coeffs(
    in_size: usize,
    out_size: usize,
    first: usize,
    count: usize,
    interpolation: Interpolation,
) -> Coeffs {
    let (kernel, support) = filter(interpolation);
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(count);
    let mut weights = vec![0i32; count * ksize];
    let mut k = vec![0f64; ksize];
    for (i, xx) in (first..first + count).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) cast truncates toward zero, as `as` does.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = kernel((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for x in 0..xmax {
            let w = if ww != 0.0 { k[x] / ww } else { k[x] };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[i * ksize + x] = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs {
        first,
        bounds,
        weights,
        ksize,
    }
}

/// Pillow's rounding of a fixed-point sum to 8 bits (`clip8`): `v >> 22` clamped to 0..=255,
/// branch-free so that the loops below vectorise.
#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// A rectangle of the resized image, in its pixels.
#[derive(Debug, Clone, Copy)]
struct Window {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
}

/// `Image.resize((width, height), Image.BICUBIC)` for RGB: two separable passes, each rounded
/// to 8 bits, in the order Pillow chooses (`ImagingResampleInner`, see [`vertical_first`]).
pub fn resize_bicubic(img: &RgbImage, width: usize, height: usize) -> RgbImage {
    let all = Window {
        left: 0,
        top: 0,
        width,
        height,
    };
    resize_window(img, width, height, all, Interpolation::Bicubic)
}

/// Pillow 13's order of the passes: vertical first when the height shrinks by more than twice
/// as many pixels as the width does (`(in_h - h) > 0 && (in_h - h) > (in_w - w) * 2`), else
/// horizontal first. The order changes the 8-bit rounding between the passes.
fn vertical_first(in_w: usize, in_h: usize, width: usize, height: usize) -> bool {
    let shrink_h = in_h as i64 - height as i64;
    let shrink_w = in_w as i64 - width as i64;
    shrink_h > 0 && shrink_h > shrink_w * 2
}

/// 8-bit RGB pixels holding columns `left..left + width` and rows `top..` of some image.
struct Raster<'a> {
    data: std::borrow::Cow<'a, [u8]>,
    width: usize,
    left: usize,
    top: usize,
}

impl Raster<'_> {
    /// Row `y` (in the image's coordinates), columns `xs`.
    fn row(&self, y: usize, xs: &Range<usize>) -> &[u8] {
        let start = ((y - self.top) * self.width + xs.start - self.left) * 3;
        &self.data[start..start + xs.len() * 3]
    }

    /// Columns `xs` of rows `ys`.
    fn crop(&self, xs: Range<usize>, ys: Range<usize>) -> Raster<'static> {
        let mut data = Vec::with_capacity(xs.len() * ys.len() * 3);
        for y in ys.clone() {
            data.extend_from_slice(self.row(y, &xs));
        }
        Raster {
            data: data.into(),
            width: xs.len(),
            left: xs.start,
            top: ys.start,
        }
    }

    /// The horizontal pass (`ImagingResampleHorizontal_8bpc`): output columns `xs` of rows `ys`.
    fn horizontal(&self, c: &Coeffs, xs: Range<usize>, ys: Range<usize>) -> Raster<'static> {
        let half = 1i32 << (PRECISION_BITS - 1);
        let row_len = xs.len() * 3;
        let mut data = vec![0u8; ys.len() * row_len];
        for (y, out_row) in ys.clone().zip(data.chunks_exact_mut(row_len)) {
            for (xx, out) in xs.clone().zip(out_row.chunks_exact_mut(3)) {
                let (xmin, k) = c.of(xx);
                let taps = self.row(y, &(xmin..xmin + k.len()));
                let mut acc = [half; 3];
                for (p, &kx) in taps.chunks_exact(3).zip(k) {
                    acc[0] += i32::from(p[0]) * kx;
                    acc[1] += i32::from(p[1]) * kx;
                    acc[2] += i32::from(p[2]) * kx;
                }
                out[0] = clip8(acc[0]);
                out[1] = clip8(acc[1]);
                out[2] = clip8(acc[2]);
            }
        }
        Raster {
            data: data.into(),
            width: xs.len(),
            left: xs.start,
            top: ys.start,
        }
    }

    /// The vertical pass (`ImagingResampleVertical_8bpc`): output rows `ys` of columns `xs`, a
    /// whole row at a time (tap-major, so it vectorises).
    fn vertical(&self, c: &Coeffs, xs: Range<usize>, ys: Range<usize>) -> Raster<'static> {
        let half = 1i32 << (PRECISION_BITS - 1);
        let row_len = xs.len() * 3;
        let mut data = vec![0u8; ys.len() * row_len];
        let mut acc = vec![0i32; row_len];
        for (yy, out_row) in ys.clone().zip(data.chunks_exact_mut(row_len)) {
            let (ymin, k) = c.of(yy);
            acc.fill(half);
            for (y, &ky) in k.iter().enumerate() {
                for (a, &p) in acc.iter_mut().zip(self.row(ymin + y, &xs)) {
                    *a += i32::from(p) * ky;
                }
            }
            for (o, &a) in out_row.iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
        Raster {
            data: data.into(),
            width: xs.len(),
            left: xs.start,
            top: ys.start,
        }
    }
}

/// `Image.resize((width, height), filter)` computed only inside `window`: the same pixels as
/// cropping the full result, without the work outside it (a quarter of a landscape photo's
/// columns for CLIP's crop). Each pass runs only over the source rows or columns the other
/// pass reads.
fn resize_window(
    img: &RgbImage,
    width: usize,
    height: usize,
    window: Window,
    interpolation: Interpolation,
) -> RgbImage {
    let (in_w, in_h) = (img.width() as usize, img.height() as usize);
    let xs = window.left..window.left + window.width;
    let ys = window.top..window.top + window.height;
    let coeffs = |n: usize, out: usize, r: &Range<usize>| {
        (out != n).then(|| precompute_coeffs(n, out, r.start, r.len(), interpolation))
    };
    let (horiz, vert) = (coeffs(in_w, width, &xs), coeffs(in_h, height, &ys));
    // The source columns and rows the passes read.
    let x_need = horiz.as_ref().map_or(xs.clone(), |c| c.span(&xs));
    let y_need = vert.as_ref().map_or(ys.clone(), |c| c.span(&ys));
    let src = Raster {
        data: img.as_raw().as_slice().into(),
        width: in_w,
        left: 0,
        top: 0,
    };
    let out = if vertical_first(in_w, in_h, width, height) {
        let mid = match &vert {
            Some(v) => src.vertical(v, x_need, ys.clone()),
            None => src.crop(x_need, ys.clone()),
        };
        match &horiz {
            Some(h) => mid.horizontal(h, xs, ys),
            None => mid.crop(xs, ys),
        }
    } else {
        let mid = match &horiz {
            Some(h) => src.horizontal(h, xs.clone(), y_need),
            None => src.crop(xs.clone(), y_need),
        };
        match &vert {
            Some(v) => mid.vertical(v, xs, ys),
            None => mid.crop(xs, ys),
        }
    };
    RgbImage::from_raw(
        window.width as u32,
        window.height as u32,
        out.data.into_owned(),
    )
    .expect("buffer has width*height*3 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_size(w: usize, h: usize, expected: (usize, usize)) {
        assert_eq!(resized_size(w, h, 224), expected, "{w}x{h}");
    }

    #[test]
    fn resized_size_matches_transformers() {
        check_size(640, 480, (298, 224));
        check_size(480, 640, (224, 298));
        check_size(224, 224, (224, 224));
        check_size(17, 9, (423, 224));
        check_size(333, 257, (290, 224));
        check_size(1, 10_000, (224, 2_240_000));
    }

    #[test]
    fn crop_offsets_floor_or_round_half_to_even() {
        // excess: 0, 1 (0.5 -> 0), 3 (1.5 -> 2), 5 (2.5 -> 2), 74, 115 (57.5 -> 58), 199 (99.5 -> 100)
        let excess = [0, 1, 3, 5, 74, 115, 199];
        let floor: Vec<usize> = excess
            .iter()
            .map(|&e| crop_offset(e, Transform::Transformers))
            .collect();
        let round: Vec<usize> = excess
            .iter()
            .map(|&e| crop_offset(e, Transform::OpenClip))
            .collect();
        assert_eq!(floor, [0, 0, 1, 2, 37, 57, 99]);
        assert_eq!(round, [0, 0, 2, 2, 37, 58, 100]);
    }

    #[test]
    fn filter_weights_sum_to_one() {
        let sizes = [(640, 224), (17, 224), (224, 224), (1000, 3)];
        for ((i, o), f) in sizes
            .into_iter()
            .flat_map(|s| [Interpolation::Bicubic, Interpolation::Bilinear].map(|f| (s, f)))
        {
            let c = precompute_coeffs(i, o, 0, o, f);
            for xx in 0..o {
                let (_, k) = c.of(xx);
                let sum: i64 = k.iter().map(|&w| i64::from(w)).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                    "{i}->{o} pixel {xx}: {sum}"
                );
            }
        }
    }

    #[test]
    fn coefficients_of_a_range_equal_those_of_the_whole() {
        for (i, o, first, count) in [(640, 298, 37, 224), (17, 423, 99, 224), (1000, 3, 1, 2)] {
            let whole = precompute_coeffs(i, o, 0, o, Interpolation::Bicubic);
            let part = precompute_coeffs(i, o, first, count, Interpolation::Bicubic);
            for xx in first..first + count {
                assert_eq!(part.of(xx), whole.of(xx), "{i}->{o} pixel {xx}");
            }
        }
    }

    #[test]
    fn the_crop_of_an_extreme_panorama_costs_only_the_crop() {
        // 2,000,000 x 1 resizes to 448,000,000 x 224: coefficients for every column would take
        // 7 GB; only the crop's 224 columns are computed.
        let img = RgbImage::from_pixel(2_000_000, 1, image::Rgb([9, 99, 199]));
        let crop = ImageProcessor::default().resize_crop(&img);
        assert_eq!(crop.dimensions(), (224, 224));
        assert!(crop.pixels().all(|p| p.0 == [9, 99, 199]));
    }

    #[test]
    fn pillow_runs_the_vertical_pass_first_when_the_height_shrinks_most() {
        // (in_w, in_h, w, h) and Pillow 13's order, observed with Image.resize.
        for (w0, h0, w, h, vertical) in [
            (150, 500, 112, 373, true),
            (116, 151, 195, 110, true),
            (68, 154, 61, 126, true),
            (119, 15, 110, 13, false),
            (69, 86, 192, 151, false),
            (176, 121, 62, 28, false),
            (640, 480, 298, 224, false),
        ] {
            assert_eq!(
                vertical_first(w0, h0, w, h),
                vertical,
                "{w0}x{h0} -> {w}x{h}"
            );
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = RgbImage::from_pixel(37, 91, image::Rgb([200, 10, 0]));
        let out = resize_bicubic(&img, 224, 551);
        assert!(out.pixels().all(|p| p.0 == [200, 10, 0]));
    }

    #[test]
    fn the_decode_budget_counts_bytes_per_pixel() {
        use image::ColorType;
        assert_eq!(
            decode_footprint(10_000, 10_000, ColorType::Rgba16),
            1_200_000_000
        );
        assert_eq!(decode_footprint(100, 10, ColorType::Rgb8), 7_000);
        assert_eq!(decode_footprint(100, 10, ColorType::L8), 6_000);
        // A real 48x40 RGB PNG (13,440 bytes to decode) under a 10,000-byte budget.
        let mut png = std::io::Cursor::new(Vec::new());
        RgbImage::new(48, 40)
            .write_to(&mut png, image::ImageFormat::Png)
            .expect("png");
        let tight = ImageProcessor {
            max_decoded_bytes: 10_000,
            ..ImageProcessor::default()
        };
        let err = tight.decode(png.get_ref()).expect_err("over the budget");
        assert!(
            matches!(err, ClipError::TooMuchMemory { bytes: 13_440, .. }),
            "{err}"
        );
        assert!(ImageProcessor::default().decode(png.get_ref()).is_ok());
    }

    #[test]
    fn bad_bytes_are_errors() {
        let p = ImageProcessor::default();
        assert!(
            p.decode(b"")
                .unwrap_err()
                .to_string()
                .contains("empty file")
        );
        assert!(
            p.decode(b"<html>not an image</html>")
                .unwrap_err()
                .to_string()
                .contains("supported format")
        );
    }
}
