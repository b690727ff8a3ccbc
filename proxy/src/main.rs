//! `proxy`: serve the site and API, or export the browser's model files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clip::export::Variant;
use clip::load::{self, DownloadProgress, ModelSource};
use indicatif::{ProgressBar, ProgressStyle};
use proxy::http::{ServeConfig, router};

#[derive(Parser)]
#[command(
    name = "proxy",
    version,
    about = "text2img: search your photos by describing them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app (and, as they land, the search API).
    Serve {
        /// Port on 127.0.0.1 (use --host 0.0.0.0 to listen on every interface).
        #[arg(long, default_value_t = 8501)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// The static site (the trunk build of frontend/).
        #[arg(long, default_value = "public")]
        public: PathBuf,
        /// The browser's model bundle, as written by `export-model`.
        #[arg(long)]
        model_dir: Option<PathBuf>,
    },
    /// Write the browser's model bundle: config, tokenizer, text tower as f32 / f16 / 8-bit,
    /// and manifest.json with sha256 sums.
    ExportModel {
        /// A local model directory or a Hugging Face repository id.
        #[arg(long, default_value = load::DEFAULT_MODEL)]
        model: String,
        /// Output directory.
        #[arg(long, default_value = "public/model")]
        out: PathBuf,
        /// Variants to write (f32, f16, q8).
        #[arg(long, value_delimiter = ',', default_value = "q8,f16,f32")]
        variants: Vec<String>,
    },
}

/// A terminal progress bar for model downloads.
struct Bar(Option<ProgressBar>);

impl DownloadProgress for Bar {
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            port,
            host,
            public,
            model_dir,
        } => {
            if !public.join("index.html").is_file() {
                anyhow::bail!(
                    "{}: no index.html; build the frontend first (see README)",
                    public.display()
                );
            }
            let addr = SocketAddr::new(host, port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!("serving {} on http://{addr}", public.display());
            axum::serve(
                listener,
                router(&ServeConfig {
                    public_dir: public,
                    model_dir,
                }),
            )
            .await?;
            Ok(())
        }
        Command::ExportModel {
            model,
            out,
            variants,
        } => {
            let variants = variants
                .iter()
                .map(|v| Variant::parse(v))
                .collect::<Result<Vec<_>, _>>()?;
            let source = ModelSource::parse(&model);
            let files =
                load::resolve(&source, &mut Bar(None)).with_context(|| format!("model {model}"))?;
            let manifest = load::write_browser_bundle(&files, &variants, &out)
                .with_context(|| format!("writing {}", out.display()))?;
            for (variant, entry) in &manifest.variants {
                tracing::info!(
                    "{variant}: {} ({} bytes, sha256 {})",
                    out.join(&entry.file).display(),
                    entry.bytes,
                    entry.sha256
                );
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
