//! CPU benchmark of the CLIP towers against PyTorch, at ViT-B/32 shapes with random weights (the
//! cost of a forward pass does not depend on the values).
//!
//! ```text
//! cargo run --release -p clip --example bench              # full run (a few minutes)
//! cargo run --release -p clip --example bench -- --quick   # smoke run
//! RAYON_NUM_THREADS=4 cargo run --release -p clip --example bench   # thread count
//! ```
//!
//! Measured, for text2img (candle) and then, in the same run, for a transformers `CLIPModel`
//! (`clip/bench/pytorch_reference.py`, spawned with `--threads` equal to candle's thread count):
//!
//! * image embeddings per second at batch 1, 8 and 32: `VisionEncoder::forward` on a pixel tensor
//!   prepared outside the timed region (PyTorch: `get_image_features`);
//! * text latency for one query of 7 tokens (BOS + 5 + EOS) and one of 77 tokens: token ids →
//!   feature vector, `TextEncoder::encode` (PyTorch: `get_text_features` on the unpadded ids);
//! * the same text latencies with the browser's default text tower (GGUF, `Q8_0` matrices from
//!   `clip::export`), text2img only.
//!
//! Each point: warm-up iterations, then iterations until at least `--min-seconds` (3 s) have passed
//! and at least `--min-iters` (5) were run; the median iteration time is reported. The model is
//! built once, before any timing. If Python, torch or transformers is missing, the PyTorch column
//! is left empty and the reason printed; the run still succeeds.
//!
//! Options: `--quick`, `--no-python`, `--python PATH` (default `python3`, or `$PYTHON`),
//! `--min-seconds S`, `--min-iters N`, `--warmup N`, `--batches 1,8,32` (image batch sizes).
#![allow(
    clippy::print_stdout,
    reason = "the report on standard output is what a benchmark produces"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use clip::{ClipConfig, ClipModel, Device, Tensor, VisionEncoder, Weights};

#[cfg(not(target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const BOS: u32 = 49406;
const EOS: u32 = 49407;
/// Ordinary token ids (below EOS, the largest id, so each query pools at its last position).
/// The same filler as the Python reference.
const FILLER: [u32; 5] = [320, 1125, 539, 320, 2368];

struct Options {
    quick: bool,
    python: Option<String>,
    warmup: usize,
    min_seconds: f64,
    min_iters: usize,
    batches: Vec<usize>,
    text_lengths: Vec<usize>,
    /// The vision tower through candle's ops ([`VisionEncoder::with_candle_ops`]).
    candle_vision: bool,
}

impl Options {
    fn parse() -> Res<Self> {
        let mut args = std::env::args().skip(1);
        let mut quick = false;
        let mut python = Some(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
        let (mut warmup, mut min_seconds, mut min_iters) = (None, None, None);
        let mut batches: Option<Vec<usize>> = None;
        let mut text_lengths = vec![7, 77];
        let mut candle_vision = false;
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--quick" => quick = true,
                "--candle-vision" => candle_vision = true,
                "--no-python" => python = None,
                "--python" => python = Some(value("--python")?),
                "--warmup" => warmup = Some(value("--warmup")?.parse()?),
                "--min-seconds" => min_seconds = Some(value("--min-seconds")?.parse()?),
                "--min-iters" => min_iters = Some(value("--min-iters")?.parse()?),
                "--batches" => {
                    let list = value("--batches")?;
                    let parsed = list
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<Vec<usize>, _>>();
                    match parsed {
                        Ok(v) if !v.is_empty() && !v.contains(&0) => batches = Some(v),
                        _ => {
                            return Err(
                                format!("--batches takes sizes like 1,8,32, not {list:?}").into()
                            );
                        }
                    }
                }
                "--text-lengths" => {
                    // Empty: images only (e.g. for a profile of the vision tower).
                    let list = value("--text-lengths")?;
                    text_lengths = list
                        .split(',')
                        .filter(|n| !n.is_empty())
                        .map(str::parse)
                        .collect::<Result<Vec<usize>, _>>()
                        .map_err(|_| {
                            format!("--text-lengths takes lengths like 7,77, not {list:?}")
                        })?;
                }
                "-h" | "--help" => {
                    println!(
                        "usage: bench [--quick] [--no-python] [--python PATH] [--warmup N] [--min-seconds S] [--min-iters N] [--batches 1,8,32] [--text-lengths 7,77 (empty: none)] [--candle-vision]\n\
                         --candle-vision: the vision tower through candle's ops, not the fused CPU path\n\
                         threads: RAYON_NUM_THREADS (default: all physical cores)"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?} (try --help)").into()),
            }
        }
        Ok(Self {
            quick,
            python,
            warmup: warmup.unwrap_or(if quick { 1 } else { 3 }),
            min_seconds: min_seconds.unwrap_or(if quick { 0.2 } else { 3.0 }),
            min_iters: min_iters.unwrap_or(if quick { 2 } else { 5 }),
            batches: batches.unwrap_or_else(|| if quick { vec![1, 8] } else { vec![1, 8, 32] }),
            text_lengths,
            candle_vision,
        })
    }
}

/// Median (and minimum) seconds per iteration of one benchmark point.
#[derive(Debug, Clone, Copy)]
struct Timing {
    median_s: f64,
    min_s: f64,
    iters: usize,
}

fn measure(opts: &Options, mut f: impl FnMut() -> Res<()>) -> Res<Timing> {
    for _ in 0..opts.warmup {
        f()?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < opts.min_iters || start.elapsed().as_secs_f64() < opts.min_seconds {
        let t0 = Instant::now();
        f()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median_s = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    Ok(Timing {
        median_s,
        min_s: times[0],
        iters: n,
    })
}

/// One query of `n` tokens: BOS, filler, EOS.
fn query(n: usize) -> Vec<u32> {
    let mut ids = vec![BOS];
    ids.extend((0..n - 2).map(|i| FILLER[i % FILLER.len()]));
    ids.push(EOS);
    ids
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[derive(Default)]
struct Results {
    /// Batch size → timing of one forward pass of that batch.
    image: BTreeMap<usize, Timing>,
    /// Query length in tokens → timing of one query.
    text: BTreeMap<usize, Timing>,
    /// The same with the browser's default text tower: GGUF with `Q8_0` matrices (text2img only).
    text_q8: BTreeMap<usize, Timing>,
}

fn bench_rust(opts: &Options) -> Res<Results> {
    let config = ClipConfig::vit_base_patch32();
    let device = Device::Cpu;
    let t0 = Instant::now();
    // Built once; nothing below the timers loads or converts weights.
    let model = {
        let bytes = clip::random::random_checkpoint(&config, false, 0)?;
        let weights = Weights::from_safetensors(bytes, &device)?;
        let mut model = ClipModel::new(&config, &weights)?;
        if opts.candle_vision {
            model.vision =
                VisionEncoder::with_candle_ops(&config.vision, config.projection_dim, &weights)?;
        }
        model
    };
    println!(
        "text2img: random ViT-B/32 model built in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let mut results = Results::default();
    let size = config.vision.image_size;
    for &b in &opts.batches {
        let pixels = Tensor::randn(0f32, 1f32, (b, 3, size, size), &device)?;
        let out = model.vision.forward(&pixels)?;
        if out.dims() != [b, config.projection_dim] {
            return Err(format!("image features have shape {:?}", out.dims()).into());
        }
        let t = measure(opts, || {
            black_box(model.vision.forward(black_box(&pixels))?);
            Ok(())
        })?;
        println!(
            "text2img: image batch {b}: {:.2} images/s ({} iterations)",
            b as f64 / t.median_s,
            t.iters
        );
        results.image.insert(b, t);
    }
    for &n in &opts.text_lengths {
        let ids = vec![query(n)];
        let out = model.text.encode(&ids)?;
        if out.dims() != [1, config.projection_dim] {
            return Err(format!("text features have shape {:?}", out.dims()).into());
        }
        let t = measure(opts, || {
            black_box(model.text.encode(black_box(&ids))?);
            Ok(())
        })?;
        println!(
            "text2img: text {n} tokens: {:.2} ms ({} iterations)",
            t.median_s * 1e3,
            t.iters
        );
        results.text.insert(n, t);
    }
    drop(model);

    // The text tower as the browser downloads it by default: 8-bit matrices (clip::export).
    let q8 = {
        let checkpoint = clip::random::random_checkpoint(&config, true, 0)?;
        clip::export::exported_text_encoder(
            &config,
            &checkpoint,
            clip::export::Variant::Q8,
            &device,
        )?
    };
    for &n in &opts.text_lengths {
        let ids = vec![query(n)];
        q8.encode(&ids)?;
        let t = measure(opts, || {
            black_box(q8.encode(black_box(&ids))?);
            Ok(())
        })?;
        println!(
            "text2img: text {n} tokens, Q8_0 weights: {:.2} ms ({} iterations)",
            t.median_s * 1e3,
            t.iters
        );
        results.text_q8.insert(n, t);
    }
    Ok(results)
}

/// Runs the PyTorch reference; `Err` carries a one-paragraph reason to print.
fn bench_pytorch(
    opts: &Options,
    python: &str,
    threads: usize,
) -> Result<(Results, serde_json::Value), String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/pytorch_reference.py");
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["--threads", &threads.to_string()])
        .args(["--batches", &join(&opts.batches)])
        .args(["--text-lengths", &join(&opts.text_lengths)])
        .args(["--warmup", &opts.warmup.to_string()])
        .args(["--min-seconds", &opts.min_seconds.to_string()])
        .args(["--min-iters", &opts.min_iters.to_string()])
        // The thread count also for OpenMP/MKL pools that start before set_num_threads.
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string());
    println!("pytorch: running {python} {script} --threads {threads} ...");
    let output = cmd
        .output()
        .map_err(|e| format!("cannot start {python:?}: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr
        .lines()
        .filter(|l| l.starts_with("pytorch_reference:"))
    {
        println!("{line}");
    }
    if !output.status.success() {
        let tail: Vec<&str> = stderr
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(format!(
            "{script} failed ({}): {}",
            output.status,
            tail.join(" | ")
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cannot parse the JSON printed by {script}: {e}"))?;
    let timing = |v: &serde_json::Value| -> Option<Timing> {
        Some(Timing {
            median_s: v.get("median_s")?.as_f64()?,
            min_s: v.get("min_s")?.as_f64()?,
            iters: v.get("iters")?.as_u64()? as usize,
        })
    };
    let mut results = Results::default();
    for &b in &opts.batches {
        let t = timing(&json["image"][b.to_string()])
            .ok_or_else(|| format!("image batch {b} missing from {script}'s JSON"))?;
        results.image.insert(b, t);
    }
    for &n in &opts.text_lengths {
        let t = timing(&json["text"][n.to_string()])
            .ok_or_else(|| format!("text length {n} missing from {script}'s JSON"))?;
        results.text.insert(n, t);
    }
    Ok((results, json))
}

fn main() -> Res<()> {
    let opts = Options::parse()?;
    let threads = candle_core::utils::get_num_threads();
    println!(
        "CLIP ViT-B/32 CPU benchmark{}: {threads} threads (RAYON_NUM_THREADS), load average at start {}",
        if opts.quick { " (--quick)" } else { "" },
        load_average()
    );

    let ours = bench_rust(&opts)?;
    let theirs = match &opts.python {
        None => Err("skipped (--no-python)".to_string()),
        Some(python) => bench_pytorch(&opts, python, threads),
    };
    let theirs = match theirs {
        Ok((results, json)) => {
            println!(
                "pytorch: torch {}, transformers {}, {} threads, attention {}",
                json["torch_version"].as_str().unwrap_or("?"),
                json["transformers_version"].as_str().unwrap_or("?"),
                json["threads"],
                json["attn_implementation"].as_str().unwrap_or("?"),
            );
            Some(results)
        }
        Err(reason) => {
            println!("\nPyTorch reference NOT measured: {reason}");
            println!(
                "(needs python3 with torch and transformers: pip install -r clip/bench/requirements.txt)"
            );
            None
        }
    };

    println!("\nload average at end: {}\n", load_average());
    println!(
        "| metric | text2img | PyTorch | ratio (>1: text2img better; throughput ours/theirs, latency theirs/ours) |"
    );
    println!("|---|---:|---:|---:|");
    let na = || "n/a".to_string();
    for (&b, t) in &ours.image {
        let ours_ips = b as f64 / t.median_s;
        let theirs_ips = theirs
            .as_ref()
            .and_then(|r| r.image.get(&b))
            .map(|t| b as f64 / t.median_s);
        println!(
            "| image embeddings/s, batch {b} | {ours_ips:.2} | {} | {} |",
            theirs_ips.map_or_else(na, |v| format!("{v:.2}")),
            theirs_ips.map_or_else(na, |v| format!("{:.2}×", ours_ips / v)),
        );
    }
    for (&n, t) in &ours.text {
        let ours_ms = t.median_s * 1e3;
        let theirs_ms = theirs
            .as_ref()
            .and_then(|r| r.text.get(&n))
            .map(|t| t.median_s * 1e3);
        println!(
            "| text latency, {n} tokens (median ms) | {ours_ms:.2} | {} | {} |",
            theirs_ms.map_or_else(na, |v| format!("{v:.2}")),
            theirs_ms.map_or_else(na, |v| format!("{:.2}×", v / ours_ms)),
        );
    }
    for (&n, t) in &ours.text_q8 {
        println!(
            "| text latency, {n} tokens, Q8_0 weights (median ms) | {:.2} | — | — |",
            t.median_s * 1e3
        );
    }
    println!(
        "\nfastest iteration (min, s): text2img image {:?}, text {:?}, text Q8_0 {:?}",
        mins(&ours.image),
        mins(&ours.text),
        mins(&ours.text_q8)
    );
    if let Some(r) = &theirs {
        println!(
            "fastest iteration (min, s): PyTorch  image {:?}, text {:?}",
            mins(&r.image),
            mins(&r.text)
        );
    }
    Ok(())
}

fn mins(m: &BTreeMap<usize, Timing>) -> Vec<(usize, f64)> {
    m.iter()
        .map(|(&k, t)| (k, (t.min_s * 1e4).round() / 1e4))
        .collect()
}
