//! `ingest`: embed the images of a TSV into Qdrant (embedded by default).
//!
//! Exit codes: 0 when the collection holds the TSV's images (some rows may have failed: they are
//! listed), 1 when nothing could be indexed, 2 on a configuration error or when the store failed
//! (the run stopped; what it wrote is kept, and the next run finishes it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use clip::DType;
use proxy::cli::{self, ClusterArgs, DownloadBar, RowsBar, StoreArgs};
use proxy::config::Settings;
use proxy::ingest::fetch::FetchConfig;
use proxy::ingest::policy::AddressPolicy;
use proxy::ingest::{Embedder, IngestOptions, IngestPaths, Report, Shard};
use proxy::model::{collection_spec, load_model_as};
use proxy::store::{CollectionSpec, VectorStore};

#[derive(Parser, Debug)]
#[command(
    name = "ingest",
    version,
    about = "Embed the images listed in a TSV into Qdrant"
)]
struct Args {
    /// The image list: `id`, `url` (http(s) or a path relative to the TSV), optional `caption`,
    /// other columns become payload fields.
    #[arg(long, default_value = "data/images.tsv")]
    tsv: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Take over a collection made by hand on a Qdrant server: check that its vectors fit the
    /// model (one unnamed cosine vector of its dimension), record the model in it, then ingest.
    #[arg(long)]
    adopt: bool,
    /// Store no caption vectors in a new collection. By default, when the TSV has a `caption`
    /// column, a new collection gets a second vector per point, the text tower's embedding of
    /// the caption, so searches can match captions too (README: "Captions").
    #[arg(long)]
    no_captions: bool,
    /// Delete points whose rows are no longer in the TSV. With `--shard`, only that share's
    /// points: the N shares' prunes together are one whole prune.
    #[arg(long)]
    prune: bool,
    /// Take share K of N of the TSV's rows (by a hash of the row id): N machines running 1/N …
    /// N/N ingest one TSV into one Qdrant cluster at once, each resumable on its own.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// cpu, or cuda / cuda:N (built with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The float type the vision tower computes in: f16 on a GPU (tensor cores; embeddings within
    /// half-precision rounding of f32), f32 on the CPU (where f16 is slower), unless given.
    #[arg(long, value_enum)]
    dtype: Option<Precision>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
    batch_size: u16,
    /// Concurrent downloads.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    fetch_workers: u16,
    /// Decode threads (default: one per core).
    #[arg(long)]
    decode_workers: Option<usize>,
    /// Seconds per download before it is abandoned (then retried).
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Retries per download for transient failures.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Largest image accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    max_bytes: u64,
    /// Fetch from loopback, private, link-local and other special-purpose addresses too (refused
    /// by default: a TSV's URLs must not reach this machine's or its network's services).
    #[arg(long)]
    allow_private_urls: bool,
    /// Decode JPEGs at full size (slower). By default a JPEG is decoded at the reduced DCT scale
    /// (1/2, 1/4 or 1/8) that still covers the model's input, as Pillow's draft mode does.
    #[arg(long)]
    full_decode: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Precision {
    F32,
    F16,
}

fn main() -> ExitCode {
    cli::init_logging();
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Ok(false) when nothing could be indexed.
fn run(args: &Args) -> anyhow::Result<bool> {
    let settings = args.store.settings_with(&args.cluster)?;
    if !args.tsv.is_file() {
        anyhow::bail!("--tsv {}: no such file", args.tsv.display());
    }
    let device = cli::device(&args.device)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let dtype = match (args.dtype, device.is_cuda()) {
        (Some(Precision::F32), _) | (None, false) => DType::F32,
        (Some(Precision::F16), _) | (None, true) => DType::F16,
    };
    let loaded = load_model_as(
        &args.store.model,
        &device,
        dtype,
        &mut DownloadBar::default(),
    )?;
    let spec = CollectionSpec {
        captions: !args.no_captions && proxy::ingest::tsv::has_caption_column(&args.tsv),
        ..collection_spec(&settings.collection, &loaded)
    };
    let store = cli::store(&settings)?;
    let found = runtime.block_on(open_store(store.as_ref(), &spec, &settings, args.adopt))?;
    let embedder = Embedder::new(&loaded.model, &device);
    let embedder = if found.captions {
        tracing::info!(
            "captions are embedded too (collection `{}` has caption vectors)",
            spec.name
        );
        embedder.with_captions(&loaded.tokenizer)
    } else {
        if spec.captions {
            tracing::warn!(
                "collection `{}` has no caption vectors (it was made without them): captions \
                 are stored but not embedded; ingest into a new collection to search them",
                spec.name
            );
        }
        embedder
    };
    tracing::info!(
        "ingesting {} into {} (model on {}, {dtype:?})",
        args.tsv.display(),
        settings.describe(),
        args.device,
    );
    let data = settings.data_dir();
    let paths = match args.shard {
        Some(shard) => IngestPaths::new(&args.tsv, &data).for_shard(&data, shard),
        None => IngestPaths::new(&args.tsv, &data),
    };
    let started = Instant::now();
    let report = proxy::ingest::run(
        &paths,
        &options(args),
        &embedder,
        store.as_ref(),
        runtime.handle(),
        &RowsBar::default(),
    )?;
    summarize(&report, &spec.name, started.elapsed().as_secs_f64(), &paths);
    Ok(report.any_indexed())
}

/// Create or check the collection (adopting it first when asked), and say how it is laid out
/// on a server, warning where that differs from the layout asked.
async fn open_store(
    store: &dyn VectorStore,
    spec: &CollectionSpec,
    settings: &Settings,
    adopt: bool,
) -> anyhow::Result<CollectionSpec> {
    if adopt {
        store.adopt(spec).await?;
        tracing::info!("adopted collection `{}` for `{}`", spec.name, spec.model);
    }
    let found = store.ensure_collection(spec).await?;
    if let Some(layout) = store.layout().await? {
        tracing::info!("collection `{}`: {layout}", spec.name);
        let asked = settings.remote().map(|r| r.cluster).unwrap_or_default();
        let differences = layout.differences(&asked);
        if !differences.is_empty() {
            tracing::warn!(
                "collection `{}` exists with {}; the settings asked apply to new collections \
                 only (DEPLOY.md: changing a collection's layout)",
                spec.name,
                differences.join("; ")
            );
        }
    }
    Ok(found)
}

/// The run's settings from the flags.
fn options(args: &Args) -> IngestOptions {
    IngestOptions {
        batch_size: args.batch_size.into(),
        fetch_workers: args.fetch_workers.into(),
        decode_workers: args
            .decode_workers
            .unwrap_or(IngestOptions::default().decode_workers),
        prune: args.prune,
        shard: args.shard,
        full_decode: args.full_decode,
        fetch: FetchConfig {
            timeout: Duration::from_secs(args.timeout.max(1)),
            retries: args.retries,
            max_bytes: args.max_bytes,
            addresses: AddressPolicy {
                allow_private: args.allow_private_urls,
                ..AddressPolicy::default()
            },
            ..FetchConfig::default()
        },
    }
}

/// What the run did, and every failed row with its line and reason.
fn summarize(report: &Report, collection: &str, secs: f64, paths: &IngestPaths) {
    if let Some(shard) = report.shard {
        tracing::info!(
            "shard {shard}: {} of {} rows (the counts below are this share's; pruning, if asked, \
             pruned this share only)",
            report.rows,
            report.tsv_rows,
        );
    }
    tracing::info!(
        "{} indexed, {} updated, {} unchanged, {} failed, {} pruned; {} points in `{}` ({:.1} s, {:.1} images/s)",
        report.indexed,
        report.updated,
        report.unchanged,
        report.failures.len(),
        report.pruned,
        report.points,
        collection,
        secs,
        report.indexed as f64 / secs.max(1e-9),
    );
    for f in &report.failures {
        tracing::warn!(
            "line {} ({}): {}",
            f.line,
            f.id.as_deref().unwrap_or("no id"),
            f.reason
        );
    }
    if !report.failures.is_empty() {
        tracing::warn!("failures written to {}", paths.failures.display());
    }
}
