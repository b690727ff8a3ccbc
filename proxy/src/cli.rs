//! cli: what the binaries (`proxy`, `ingest`) share — logging, progress bars, opening the store,
//! choosing the device.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clip::Device;
use clip::load::DownloadProgress;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::store::SharedStore;
use crate::store::edge::EdgeStore;
use crate::store::remote::RemoteStore;

/// Structured logs on stderr (`RUST_LOG` filters; default `info`).
pub fn init_logging() {
    // Qdrant Edge warns once per segment that its feature flags (a server setting) are unset.
    let default = "info,qdrant_edge=warn,qdrant_edge::common::flags=error";
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A terminal progress bar for model downloads.
#[derive(Debug, Default)]
pub struct DownloadBar(Option<ProgressBar>);

impl DownloadProgress for DownloadBar {
    fn start(&mut self, file: &str, size: u64) {
        let bar = ProgressBar::new(size).with_message(file.to_string());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        self.0 = Some(bar);
    }
    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.0 {
            b.inc(bytes);
        }
    }
    fn finish(&mut self) {
        if let Some(b) = self.0.take() {
            b.finish();
        }
    }
}

/// The ingest progress bar: rows, rate and ETA.
#[derive(Debug)]
pub struct RowsBar(ProgressBar);

impl Default for RowsBar {
    fn default() -> Self {
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bar:40} {pos}/{len} images {per_sec} eta {eta} {msg}",
            )
            .expect("valid template"),
        );
        Self(bar)
    }
}

impl crate::ingest::Progress for RowsBar {
    fn start(&self, rows: u64) {
        self.0.set_length(rows);
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
    fn advance(&self, rows: u64) {
        self.0.inc(rows);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

/// The store the settings name (not opened yet).
pub fn store(settings: &Settings) -> anyhow::Result<SharedStore> {
    Ok(match settings.remote() {
        None => Arc::new(EdgeStore::new(&settings.storage)),
        Some(remote) => Arc::new(RemoteStore::new(remote).context("QDRANT_URL")?),
    })
}

/// `cpu`, or `cuda` / `cuda:N` where built with the `cuda` feature.
pub fn device(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        cuda if cuda == "cuda" || cuda.starts_with("cuda:") => {
            let ordinal: usize = cuda
                .strip_prefix("cuda:")
                .map(|n| {
                    n.parse()
                        .with_context(|| format!("--device {cuda}: bad GPU number"))
                })
                .transpose()?
                .unwrap_or(0);
            if !cfg!(feature = "cuda") {
                anyhow::bail!(
                    "--device {cuda}: this binary was built without CUDA; build with `--features cuda`"
                );
            }
            // candle's error carries a backtrace: its first line says what went wrong.
            Device::new_cuda(ordinal).map_err(|e| {
                let e = e.to_string();
                anyhow::anyhow!(
                    "--device {cuda}: cannot open the GPU: {}",
                    e.lines().next().unwrap_or("unknown error")
                )
            })
        }
        other => anyhow::bail!("--device {other}: use cpu, cuda or cuda:N"),
    }
}

/// Where vectors live (flags > environment > qdrant.env > defaults).
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Local state: the embedded Qdrant store, thumbnails, labels, the ingest failures TSV.
    #[arg(long)]
    pub storage: Option<PathBuf>,
    /// A Qdrant server or cluster (gRPC, e.g. http://localhost:6334); unset: embedded.
    #[arg(long)]
    pub qdrant_url: Option<String>,
    /// The collection (default `images`).
    #[arg(long)]
    pub collection: Option<String>,
    /// The settings file (default ./qdrant.env when present).
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    /// A local model directory or a Hugging Face repository id.
    #[arg(long, default_value = clip::load::DEFAULT_MODEL)]
    pub model: String,
}

impl StoreArgs {
    /// The settings these flags give, layered over the environment and `qdrant.env`; warnings
    /// are logged.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        self.settings_with(&ClusterArgs::default())
    }

    /// [`Self::settings`] with the layout flags of `ingest`, which creates collections.
    pub fn settings_with(&self, cluster: &ClusterArgs) -> anyhow::Result<Settings> {
        let settings = Settings::resolve(&crate::config::Flags {
            storage: self.storage.clone(),
            qdrant_url: self.qdrant_url.clone(),
            collection: self.collection.clone(),
            env_file: self.env_file.clone(),
            cluster: cluster.flags(),
        })?;
        for warning in &settings.warnings {
            tracing::warn!("{warning}");
        }
        Ok(settings)
    }
}

/// How `ingest` lays out a collection it creates on a Qdrant server or cluster (each flag
/// overrides its `QDRANT_*` setting; an existing collection keeps its own layout).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// Shards of a new collection (QDRANT_SHARDS; default: the server's, one per node).
    #[arg(long, value_name = "N")]
    pub qdrant_shards: Option<String>,
    /// Copies of each shard on different nodes (QDRANT_REPLICATION_FACTOR; default 1). With 2,
    /// searches and votes go on while one node is down.
    #[arg(long, value_name = "N")]
    pub qdrant_replication_factor: Option<String>,
    /// Replicas that must confirm a write (QDRANT_WRITE_CONSISTENCY; default 1).
    #[arg(long, value_name = "N")]
    pub qdrant_write_consistency: Option<String>,
    /// Keep vectors and payloads on disk, memory-mapped (QDRANT_ON_DISK: true or false).
    #[arg(long, value_name = "BOOL")]
    pub qdrant_on_disk: Option<String>,
    /// Compress vectors for search: none, int8 or binary (QDRANT_QUANTIZATION); candidates are
    /// rescored with the originals.
    #[arg(long, value_name = "KIND")]
    pub qdrant_quantization: Option<String>,
}

impl ClusterArgs {
    fn flags(&self) -> crate::config::ClusterFlags {
        crate::config::ClusterFlags {
            shards: self.qdrant_shards.clone(),
            replication_factor: self.qdrant_replication_factor.clone(),
            write_consistency: self.qdrant_write_consistency.clone(),
            on_disk: self.qdrant_on_disk.clone(),
            quantization: self.qdrant_quantization.clone(),
        }
    }
}
