//! Ingest end to end against the vision tower alone, in the same run, at ViT-B/32 shapes with
//! random weights (the cost of a forward pass does not depend on the values).
//!
//! ```text
//! cargo run --release -p proxy --example bench_ingest -- --images 64 --width 1600 --height 1200
//! ```
//!
//! * model-only: `VisionEncoder::embed` on pixel batches prepared before timing (batch 32);
//! * decode-only: `ImageProcessor::decode` + resize/crop + normalise of the JPEGs, one thread;
//! * end to end: `proxy::ingest::run` over a TSV of the JPEGs on local disk into embedded Qdrant
//!   (fetch, hash, decode, preprocess, thumbnail, embed, upsert, optimize).
//!
//! The JPEGs (≈2 MP by default) are generated before timing. Threads: `RAYON_NUM_THREADS` for
//! candle; ingest's decode pool has one thread per core.
#![allow(
    clippy::print_stdout,
    reason = "the report on standard output is what a benchmark produces"
)]

use std::time::Instant;

use clip::{ClipConfig, ClipModel, Device, ImageProcessor, Weights};
use proxy::ingest::{Embedder, IngestOptions, IngestPaths, Quiet};
use proxy::store::edge::EdgeStore;
use proxy::store::{CollectionSpec, VectorStore};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let mut images = 64usize;
    let (mut width, mut height) = (1600u32, 1200u32);
    let mut batch = 32usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--images" => images = value()?.parse()?,
            "--width" => width = value()?.parse()?,
            "--height" => height = value()?.parse()?,
            "--batch" => batch = value()?.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let device = Device::Cpu;
    let config = ClipConfig::vit_base_patch32();
    let checkpoint = clip::random::random_checkpoint(&config, false, 7)?;
    let model = ClipModel::new(&config, &Weights::from_safetensors(checkpoint, &device)?)?;

    // The photos: smooth gradients plus texture, JPEG quality 90, like camera output in size.
    let temp = tempfile::tempdir()?;
    let mut tsv = String::from("id\turl\n");
    let mut files = Vec::new();
    for i in 0..images {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            let t = ((x * 7 + y * 3 + i as u32 * 31) % 255) as u8;
            image::Rgb([
                (x * 255 / width) as u8 ^ (t & 0x1f),
                (y * 255 / height) as u8,
                t,
            ])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&img)?;
        let name = format!("img{i}.jpg");
        std::fs::write(temp.path().join(&name), &bytes)?;
        tsv.push_str(&format!("img{i}\t{name}\n"));
        files.push(bytes);
    }
    let tsv_path = temp.path().join("images.tsv");
    std::fs::write(&tsv_path, tsv)?;
    let kb: usize = files.iter().map(Vec::len).sum::<usize>() / images / 1000;
    println!(
        "{images} JPEGs of {width}x{height} (~{kb} KB each), batch {batch}, {} threads",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string())
    );

    // Decode-only, one thread.
    let processor = ImageProcessor::for_model(&config.vision);
    let started = Instant::now();
    let pixels: Vec<Vec<f32>> = files
        .iter()
        .map(|b| processor.preprocess(b))
        .collect::<Result<_, _>>()?;
    let decode = images as f64 / started.elapsed().as_secs_f64();

    // Model-only.
    let embed = |chunk: &[Vec<f32>]| -> Res<()> {
        let t = clip::pixel_batch(chunk, 224, &device)?;
        model.vision.embed(&t)?;
        Ok(())
    };
    embed(&pixels[..batch.min(images)])?; // warm-up
    let started = Instant::now();
    for chunk in pixels.chunks(batch) {
        embed(chunk)?;
    }
    let model_only = images as f64 / started.elapsed().as_secs_f64();

    // End to end.
    let runtime = tokio::runtime::Runtime::new()?;
    let store = EdgeStore::new(temp.path().join("qdrant"));
    runtime.block_on(store.ensure_collection(&CollectionSpec {
        name: "bench".into(),
        dim: 512,
        model: "random".into(),
    }))?;
    let paths = IngestPaths {
        tsv: tsv_path,
        thumbs: temp.path().join("thumbs"),
        failures: temp.path().join("failures.tsv"),
    };
    let options = IngestOptions {
        batch_size: batch,
        ..IngestOptions::default()
    };
    let embedder = Embedder::new(&model, &device);
    let started = Instant::now();
    let report = proxy::ingest::run(
        &paths,
        &options,
        &embedder,
        &store,
        runtime.handle(),
        &Quiet,
    )?;
    let end_to_end = images as f64 / started.elapsed().as_secs_f64();
    assert_eq!(report.indexed, images, "{report:?}");

    println!("\n| stage | images/s |\n|---|---:|");
    println!("| decode + preprocess (1 thread) | {decode:.1} |");
    println!("| model only (vision tower, batch {batch}) | {model_only:.1} |");
    println!("| ingest end to end | {end_to_end:.1} |");
    println!(
        "\nend to end / model only = {:.0}% (target ≥ 90%)",
        100.0 * end_to_end / model_only
    );
    Ok(())
}
