//! Ingest end to end against its stages, in the same run, at ViT-B/32 shapes with random weights
//! (the cost of a forward pass does not depend on the values), beside the same work done with
//! Pillow and PyTorch (`proxy/bench/ingest_reference.py`) on the same files.
//!
//! ```text
//! cargo run --release -p proxy --example bench_ingest -- --images 64 --width 1600 --height 1200
//! # on a GPU (the cuda build of this example, see BENCHMARKS.md):
//! bench_ingest --device cuda --dtype f16 --images 2048 --batch 256
//! ```
//!
//! * preprocess, 1 thread: `ImageProcessor` decode + resize/crop + normalise, with the draft-mode
//!   JPEG decode ingest uses by default and with `--full-decode`'s full-size decode;
//! * CPU stage, all decode threads: what ingest's decode pool does per image (the content hash,
//!   then `proxy::ingest::prepare`: draft decode, preprocessing, the 256 px thumbnail as JPEG) on
//!   `--decode-workers` threads, no model: the most images per second this machine's cores can
//!   feed a GPU;
//! * model only: `VisionEncoder::embed` on pixel batches prepared before timing, on `--device` in
//!   `--dtype` (host→device copy included, as in ingest);
//! * end to end: `proxy::ingest::run` over a TSV of the JPEGs on local disk into embedded Qdrant
//!   (read, hash, decode, preprocess, thumbnail, embed, upsert, `optimize()`).
//!
//! The JPEGs (1600×1200 by default, about 2 MP, quality 90) are generated before timing.
//! `--no-python` leaves the reference out; `--python PATH` picks the interpreter.
#![allow(
    clippy::print_stdout,
    reason = "the report on standard output is what a benchmark produces"
)]

use std::path::Path;
use std::time::Instant;

use clip::{ClipConfig, ClipModel, DType, Device, ImageProcessor, Weights};
use proxy::ingest::{Embedder, IngestOptions, IngestPaths, Quiet};
use proxy::layout::DataDir;
use proxy::store::edge::EdgeStore;
use proxy::store::{CollectionSpec, VectorStore};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Debug)]
struct Options {
    images: usize,
    width: u32,
    height: u32,
    batch: usize,
    device: String,
    dtype: Option<DType>,
    decode_workers: usize,
    python: Option<String>,
    min_seconds: f64,
}

fn parse() -> Res<Options> {
    let mut o = Options {
        images: 64,
        width: 1600,
        height: 1200,
        batch: 32,
        device: "cpu".into(),
        dtype: None,
        decode_workers: IngestOptions::default().decode_workers,
        python: Some("python3".into()),
        min_seconds: 3.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--images" => o.images = value()?.parse()?,
            "--width" => o.width = value()?.parse()?,
            "--height" => o.height = value()?.parse()?,
            "--batch" => o.batch = value()?.parse()?,
            "--device" => o.device = value()?,
            "--dtype" => {
                o.dtype = Some(match value()?.as_str() {
                    "f32" => DType::F32,
                    "f16" => DType::F16,
                    other => return Err(format!("--dtype f32 or f16, not {other:?}").into()),
                })
            }
            "--decode-workers" => o.decode_workers = value()?.parse()?,
            "--python" => o.python = Some(value()?),
            "--no-python" => o.python = None,
            "--min-seconds" => o.min_seconds = value()?.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if o.images == 0 || o.batch == 0 {
        return Err("--images and --batch must be at least 1".into());
    }
    Ok(o)
}

/// Images per second of the best pass of `pass` over `count` images, passes repeated until
/// `min_seconds` have gone by (after one warm-up pass).
fn best_rate(count: usize, min_seconds: f64, mut pass: impl FnMut() -> Res<()>) -> Res<f64> {
    pass()?;
    let (started, mut best) = (Instant::now(), 0f64);
    loop {
        let t = Instant::now();
        pass()?;
        best = best.max(count as f64 / t.elapsed().as_secs_f64());
        if started.elapsed().as_secs_f64() >= min_seconds {
            return Ok(best);
        }
    }
}

/// Photo-like JPEGs: smooth gradients plus texture and noise, quality 90, camera-sized files.
fn write_jpegs(dir: &Path, o: &Options) -> Res<Vec<Vec<u8>>> {
    let mut files = Vec::new();
    let mut tsv = String::from("id\turl\n");
    for i in 0..o.images {
        let mut state = 0x9E37_79B9u32.wrapping_mul(i as u32 + 1);
        let img = image::RgbImage::from_fn(o.width, o.height, |x, y| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state & 0x0f) as u8;
            let t = ((x * 7 + y * 3 + i as u32 * 31) % 255) as u8;
            image::Rgb([
                ((x * 255 / o.width) as u8 ^ (t & 0x1f)).saturating_add(noise),
                ((y * 255 / o.height) as u8).saturating_add(noise),
                t / 2 + noise,
            ])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&img)?;
        std::fs::write(dir.join(format!("img{i}.jpg")), &bytes)?;
        tsv.push_str(&format!("img{i}\timg{i}.jpg\n"));
        files.push(bytes);
    }
    std::fs::write(dir.join("images.tsv"), tsv)?;
    Ok(files)
}

fn main() -> Res<()> {
    let o = parse()?;
    let device = proxy::cli::device(&o.device)?;
    let dtype = o.dtype.unwrap_or(if device.is_cuda() {
        DType::F16
    } else {
        DType::F32
    });
    let config = ClipConfig::vit_base_patch32();
    let checkpoint = clip::random::random_checkpoint(&config, false, 7)?;
    let weights = Weights::from_safetensors(checkpoint, &device)?.with_dtype(dtype);
    let model = ClipModel::new(&config, &weights)?;

    let temp = tempfile::tempdir()?;
    let images_dir = temp.path().join("images");
    std::fs::create_dir_all(&images_dir)?;
    let files = write_jpegs(&images_dir, &o)?;
    let kb = files.iter().map(Vec::len).sum::<usize>() / o.images / 1000;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .to_string()
    });
    println!(
        "{} JPEGs of {}x{} (~{kb} KB each); model on {} in {dtype:?}, batch {}; {} decode \
         threads; candle CPU threads {threads}",
        o.images, o.width, o.height, o.device, o.batch, o.decode_workers
    );

    // Preprocessing alone, one thread: draft (ingest's default) and full-size decoding.
    let processor = ImageProcessor::for_model(&config.vision);
    let side = processor.size;
    let draft_1 = best_rate(o.images, o.min_seconds, || {
        for b in &files {
            let (img, _) = processor.decode_draft(b, side)?;
            std::hint::black_box(processor.normalize(&processor.resize_crop(&img)));
        }
        Ok(())
    })?;
    let full_1 = best_rate(o.images, o.min_seconds, || {
        for b in &files {
            std::hint::black_box(processor.preprocess(b)?);
        }
        Ok(())
    })?;

    // The CPU stage on all decode threads, no model.
    let cpu_stage = best_rate(o.images, o.min_seconds, || {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..o.decode_workers.max(1))
                .map(|_| {
                    s.spawn(|| -> Result<(), String> {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(b) = files.get(i) else { return Ok(()) };
                            let digest = <sha2::Sha256 as sha2::Digest>::digest(b);
                            let prepared = proxy::ingest::prepare(b, &processor, false)?;
                            std::hint::black_box((digest, prepared));
                        }
                    })
                })
                .collect();
            workers.into_iter().try_for_each(|w| {
                w.join()
                    .map_err(|_| "a decode thread panicked".to_string())?
            })
        })?;
        Ok(())
    })?;

    // Model only: pixels prepared before timing; batches copied to the device as ingest does.
    let pixels: Vec<Vec<f32>> = files
        .iter()
        .map(|b| {
            let (img, _) = processor.decode_draft(b, side)?;
            Ok(processor.normalize(&processor.resize_crop(&img)))
        })
        .collect::<Res<_>>()?;
    let model_only = best_rate(o.images, o.min_seconds, || {
        for chunk in pixels.chunks(o.batch) {
            let t = clip::pixel_batch(chunk, side as usize, &device)?;
            // embed returns host vectors, so each batch is finished before the next starts.
            std::hint::black_box(model.vision.embed(&t)?);
        }
        Ok(())
    })?;

    // End to end, into a fresh collection each pass.
    let runtime = tokio::runtime::Runtime::new()?;
    let options = IngestOptions {
        batch_size: o.batch,
        decode_workers: o.decode_workers,
        ..IngestOptions::default()
    };
    let embedder = Embedder::new(&model, &device);
    let mut pass = 0;
    let end_to_end = best_rate(o.images, o.min_seconds, || {
        pass += 1;
        let root = temp.path().join(format!("run{pass}"));
        let store = EdgeStore::new(root.join("qdrant"));
        runtime.block_on(store.ensure_collection(&CollectionSpec {
            captions: false,
            name: "bench".into(),
            dim: 512,
            model: "random".into(),
        }))?;
        let paths = IngestPaths::new(&images_dir.join("images.tsv"), &DataDir::new(&root));
        let report = proxy::ingest::run(
            &paths,
            &options,
            &embedder,
            &store,
            runtime.handle(),
            &Quiet,
        )?;
        if report.indexed != o.images {
            return Err(format!("indexed {} of {}: {report:?}", report.indexed, o.images).into());
        }
        Ok(())
    })?;

    let reference = o.python.as_deref().and_then(|python| {
        reference(python, &images_dir, &o, &device, dtype)
            .map_err(|e| eprintln!("bench_ingest: no reference figures: {e}"))
            .ok()
    });
    let r = |key: &str| reference.as_ref().and_then(|v| v[key].as_f64());
    let row = |what: &str, ours: f64, theirs: Option<f64>| {
        let (theirs, ratio) = theirs.map_or(("—".into(), "—".into()), |t| {
            (format!("{t:.1}"), format!("{:.2}×", ours / t))
        });
        println!("| {what} | {ours:.1} | {theirs} | {ratio} |");
    };
    println!("\n| stage (images/s) | text2img | Pillow / PyTorch | ratio |\n|---|---:|---:|---:|");
    row(
        "preprocess, 1 thread, full-size decode",
        full_1,
        r("preprocess_1"),
    );
    row("preprocess, 1 thread, draft decode", draft_1, r("draft_1"));
    row(
        &format!(
            "CPU stage, {} threads (+ hash, thumbnail; Pillow: preprocess only)",
            o.decode_workers
        ),
        cpu_stage,
        r("draft_n"),
    );
    row(
        &format!("model only ({}, {dtype:?}, batch {})", o.device, o.batch),
        model_only,
        r("model"),
    );
    row(
        "end to end (+ thumbnails, upsert, index)",
        end_to_end,
        r("end_to_end"),
    );
    println!(
        "\nend to end / model only = {:.0}% (target ≥ 90%)",
        100.0 * end_to_end / model_only
    );
    if let Some(v) = &reference {
        println!("\nreference: {v}");
    }
    Ok(())
}

/// Runs `proxy/bench/ingest_reference.py` on the same files and reads its JSON.
fn reference(
    python: &str,
    dir: &Path,
    o: &Options,
    device: &Device,
    dtype: DType,
) -> Res<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/ingest_reference.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .args(["--dir", &dir.display().to_string()])
        .args(["--processes", &o.decode_workers.to_string()])
        .args(["--device", if device.is_cuda() { "cuda" } else { "cpu" }])
        .args(["--dtype", if dtype == DType::F16 { "fp16" } else { "fp32" }])
        .args(["--batch", &o.batch.to_string()])
        .args(["--min-seconds", &o.min_seconds.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("{python} exited with {}", output.status).into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}
