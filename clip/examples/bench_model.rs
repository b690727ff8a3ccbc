//! One model's row of the model table (BENCHMARKS.md): what its browser download weighs and how
//! fast this machine embeds images with it, for any checkpoint text2img loads (random weights at
//! the real shapes, from `clip/bench/random_checkpoints.py`: cost and size do not depend on the
//! values).
//!
//! ```text
//! python clip/bench/random_checkpoints.py siglip-b16 /tmp/rc/siglip-b16
//! cargo run --release -p clip --example bench_model -- --model /tmp/rc/siglip-b16 [--runs 3]
//!     [--batch 32] [--min-seconds 3]
//! ```
//!
//! * **download**: the browser bundle with the 8-bit text tower only (`config.json`,
//!   `tokenizer.json`, `text_model.q8.gguf`, `manifest.json`), as `export-model --variants q8`
//!   writes it, in bytes; the site's own files (wasm, JS, CSS) come on top and are the same for
//!   every model;
//! * **images/s**: the vision tower on a batch of `--batch` preprocessed images (pixels made
//!   outside the timed region), `--runs` runs of at least `--min-seconds` each, the median of
//!   each run's median iteration, then the median over runs.
#![allow(
    clippy::print_stdout,
    reason = "the report on standard output is what a benchmark produces"
)]

/// Model files are read from disk: there is nothing to run in WebAssembly.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> native::Res<()> {
    native::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;
    use std::time::Instant;

    use clip::export::Variant;
    use clip::load::{self, ModelSource, NoProgress};
    use clip::{Device, ImageProcessor};

    pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

    struct Options {
        model: PathBuf,
        runs: usize,
        batch: usize,
        min_seconds: f64,
    }

    impl Options {
        fn parse() -> Res<Self> {
            let mut args = std::env::args().skip(1);
            let (mut model, mut runs, mut batch, mut min_seconds) = (None, 3, 32, 3.0);
            while let Some(arg) = args.next() {
                let mut value =
                    |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
                match arg.as_str() {
                    "--model" => model = Some(PathBuf::from(value("--model")?)),
                    "--runs" => runs = value("--runs")?.parse()?,
                    "--batch" => batch = value("--batch")?.parse()?,
                    "--min-seconds" => min_seconds = value("--min-seconds")?.parse()?,
                    "-h" | "--help" => {
                        println!(
                            "usage: bench_model --model DIR [--runs 3] [--batch 32] [--min-seconds 3]"
                        );
                        std::process::exit(0);
                    }
                    other => return Err(format!("unknown argument {other:?} (try --help)").into()),
                }
            }
            let model = model.ok_or("--model DIR is required")?;
            if runs == 0 || batch == 0 {
                return Err("--runs and --batch must be at least 1".into());
            }
            Ok(Self {
                model,
                runs,
                batch,
                min_seconds,
            })
        }
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    pub fn main() -> Res<()> {
        let opts = Options::parse()?;
        let source = ModelSource::parse(&opts.model.display().to_string());
        let files = load::resolve(&source, &mut NoProgress)?;
        let bundle = std::env::temp_dir().join(format!("bench_model-{}", std::process::id()));
        load::write_browser_bundle(&files, &[Variant::Q8], &bundle)?;
        let mut download = 0;
        for entry in std::fs::read_dir(&bundle)? {
            download += entry?.metadata()?.len();
        }
        std::fs::remove_dir_all(&bundle)?;
        let loaded = load::load(&files, &Device::Cpu)?;
        let size = ImageProcessor::for_model(&loaded.model.config.vision).size as usize;
        // Any pixel values do: the cost does not depend on them.
        let image: Vec<f32> = (0..3 * size * size)
            .map(|i| ((i * 7919) % 255) as f32 / 255.0)
            .collect();
        let pixels = clip::pixel_batch(&vec![image; opts.batch], size, &Device::Cpu)?;
        loaded.model.vision.embed(&pixels)?; // warm-up
        let mut per_run = Vec::new();
        for _ in 0..opts.runs {
            let mut times = Vec::new();
            let start = Instant::now();
            while times.len() < 3 || start.elapsed().as_secs_f64() < opts.min_seconds {
                let t0 = Instant::now();
                std::hint::black_box(loaded.model.vision.embed(&pixels)?);
                times.push(t0.elapsed().as_secs_f64());
            }
            per_run.push(opts.batch as f64 / median(&mut times));
        }
        println!(
            "model {}: download (q8 text bundle) {download} bytes ({:.1} MB); images/s at batch {} \
             (input {size} px): median {:.2} of runs {:?}",
            files.id,
            download as f64 / 1e6,
            opts.batch,
            median(&mut per_run.clone()),
            per_run
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>(),
        );
        Ok(())
    }
}
