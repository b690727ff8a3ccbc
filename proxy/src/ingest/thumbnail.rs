//! What does the page show for an image? A JPEG of at most [`THUMB_SIDE`] pixels a side, made as
//! Pillow's `Image.thumbnail` makes one (`reducing_gap = 2.0`): first a box reduction by whole
//! factors while the image is more than twice the thumbnail, then Pillow's bicubic for the rest.
//!
//! The reduction is also what bounds memory for any shape: bicubic's filter weights grow with the
//! ratio of input to output (16 bytes per input pixel of the long side: 1.6 GB for a
//! 100,000,000 × 1 image), while after the reduction the ratio is below 4 and the reduced image
//! below 1024 × 1024, whatever came in.

use image::RgbImage;

/// The longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 256;

/// The thumbnail's size: the longest side at most [`THUMB_SIDE`], aspect kept, never upscaled.
pub fn thumb_size(width: u32, height: u32) -> (u32, u32) {
    let long = width.max(height).max(1);
    if long <= THUMB_SIDE {
        return (width.max(1), height.max(1));
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(THUMB_SIDE) + u64::from(long) / 2) / u64::from(long)).max(1)
            as u32
    };
    (scale(width), scale(height))
}

/// The thumbnail of an upright 8-bit image, as a JPEG file.
pub fn thumbnail(image: &RgbImage) -> Result<Vec<u8>, String> {
    let (w, h) = thumb_size(image.width(), image.height());
    // Pillow: factor = int(in / out / reducing_gap), at least 1.
    let (fx, fy) = (
        (image.width() / (w * 2)).max(1),
        (image.height() / (h * 2)).max(1),
    );
    let reduced;
    let source = if fx > 1 || fy > 1 {
        reduced = reduce(image, fx, fy);
        &reduced
    } else {
        image
    };
    let thumb = clip::preprocess::resize_bicubic(source, w as usize, h as usize);
    jpeg(&thumb).map_err(|e| format!("encoding the thumbnail: {e}"))
}

/// Box reduction (Pillow's `Image.reduce`): each output pixel is the rounded mean of an
/// `fx` × `fy` block; the blocks of the last column and row hold what is left.
fn reduce(image: &RgbImage, fx: u32, fy: u32) -> RgbImage {
    let (in_w, in_h) = (image.width() as usize, image.height() as usize);
    let (fx, fy) = (fx as usize, fy as usize);
    let (out_w, out_h) = (in_w.div_ceil(fx), in_h.div_ceil(fy));
    let src = image.as_raw();
    let mut out = Vec::with_capacity(out_w * out_h * 3);
    let mut sums = vec![0u64; out_w * 3];
    for band in 0..out_h {
        sums.fill(0);
        let rows = band * fy..((band + 1) * fy).min(in_h);
        let n_rows = rows.len();
        for y in rows {
            let row = &src[y * in_w * 3..(y + 1) * in_w * 3];
            for (x, px) in row.chunks_exact(3).enumerate() {
                let s = &mut sums[(x / fx) * 3..(x / fx) * 3 + 3];
                s[0] += u64::from(px[0]);
                s[1] += u64::from(px[1]);
                s[2] += u64::from(px[2]);
            }
        }
        for (ox, s) in sums.chunks_exact(3).enumerate() {
            let n = ((ox * fx + fx).min(in_w) - ox * fx) * n_rows;
            let n = n as u64;
            out.extend(s.iter().map(|&v| ((v + n / 2) / n) as u8));
        }
    }
    RgbImage::from_raw(out_w as u32, out_h as u32, out).expect("buffer has width*height*3 bytes")
}

/// JPEG, quality 85, 4:2:0 (libjpeg-turbo).
fn jpeg(image: &RgbImage) -> Result<Vec<u8>, turbojpeg::Error> {
    let pixels = turbojpeg::Image {
        pixels: image.as_raw().as_slice(),
        width: image.width() as usize,
        pitch: image.width() as usize * 3,
        height: image.height() as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    Ok(turbojpeg::compress(pixels, 85, turbojpeg::Subsamp::Sub2x2)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_sizes() {
        let check = |w, h, expected| assert_eq!(thumb_size(w, h), expected, "{w}x{h}");
        check(512, 512, (256, 256));
        check(1600, 1200, (256, 192));
        check(1200, 1600, (192, 256));
        check(100, 50, (100, 50));
        check(20000, 1, (256, 1));
        check(0, 0, (1, 1));
    }

    #[test]
    fn reduction_averages_blocks_and_keeps_the_remainder() {
        // 5x2, reduced by 2x2: blocks of 4, 4 and (last column) 2 pixels.
        let values = [0u8, 10, 20, 30, 41, 2, 12, 22, 32, 43];
        let img = RgbImage::from_fn(5, 2, |x, y| {
            let v = values[(y * 5 + x) as usize];
            image::Rgb([v, v, 255 - v])
        });
        let r = reduce(&img, 2, 2);
        assert_eq!(r.dimensions(), (3, 1));
        // (0+10+2+12)/4 = 6, (20+30+22+32)/4 = 26, (41+43)/2 = 42.
        let got: Vec<u8> = r.pixels().map(|p| p.0[0]).collect();
        assert_eq!(got, [6, 26, 42]);
        assert_eq!(r.get_pixel(2, 0).0[2], 255 - 42);
    }

    #[test]
    fn an_extreme_panorama_is_reduced_before_the_bicubic_pass() {
        // 20,000,000 x 1: bicubic weights straight from it would take 320 MB; the box reduction
        // leaves a few hundred pixels. A constant image stays constant through both.
        let img = RgbImage::from_pixel(20_000_000, 1, image::Rgb([30, 60, 90]));
        let jpeg = thumbnail(&img).expect("thumbnail");
        let thumb = image::load_from_memory(&jpeg).expect("a jpeg").to_rgb8();
        assert_eq!(thumb.dimensions(), (256, 1));
        for p in thumb.pixels() {
            for (got, want) in p.0.iter().zip([30u8, 60, 90]) {
                assert!(got.abs_diff(want) <= 3, "{:?}", p.0);
            }
        }
    }
}
