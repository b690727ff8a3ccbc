//! `proxy`: serve the site and API, evaluate retrieval from labels, describe the collection, or
//! export the browser's model.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clip::export::Variant;
use clip::load::{self, ModelSource};
use proxy::bundle::ModelBundle;
use proxy::cli::{self, DownloadBar, StoreArgs};
use proxy::config::Settings;
use proxy::http::client::TrustedProxies;
use proxy::http::{AppState, Limits, Rate, RateLimits, ServeConfig, StateParts, router};
use proxy::labels::{BudgetConfig, LabelLog};
use proxy::model::{NativeTextEncoder, TextEncoder, collection_spec, load_model};
use proxy::retrieve::{self, Fusion, Retrieval, Vectors};
use proxy::store::{CollectionSpec, Strategy, VectorStore};

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
    /// Serve the web app and the search API.
    Serve {
        /// Port.
        #[arg(long, default_value_t = 8501)]
        port: u16,
        /// Address to listen on (0.0.0.0 for every interface).
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// The static site (the trunk build of frontend/).
        #[arg(long, default_value = "public")]
        public: PathBuf,
        /// The browser's model bundle, as written by `export-model` (default public/model when
        /// it has a manifest).
        #[arg(long)]
        model_dir: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        fusion: FusionArg,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Recall@K, MRR and nDCG@10 from data/queries.tsv and the stored labels.
    Eval {
        /// Labelled queries: `query`, `relevant_ids` (comma separated).
        #[arg(long, default_value = "data/queries.tsv")]
        queries: PathBuf,
        /// Where the report goes (report.md, report.json, recall.svg, report.html); default
        /// <storage>/eval.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also simulate one round of relevance feedback ("more like these": the top 10 marked
        /// by the judgments) with each strategy, and report R@5 and nDCG@10 before and after.
        #[arg(long)]
        feedback: bool,
        /// The vectors the report's queries are compared with: image, caption or fused (default:
        /// fused where the collection has caption vectors, else image). A collection with
        /// caption vectors is also measured every way, side by side.
        #[arg(long, value_enum)]
        vectors: Option<VectorsArg>,
        #[command(flatten)]
        fusion: FusionArg,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A page about the collection: counts, formats, sizes, failed rows, near-duplicates and
    /// outliers, written to <storage>/report/index.html (served at /admin/report/).
    Report {
        #[command(flatten)]
        report: proxy::report::ReportArgs,
        #[command(flatten)]
        store: StoreArgs,
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
        /// Variants to write (f32, f16, q8, q5).
        #[arg(long, value_delimiter = ',', default_value = "q5,q8,f16,f32")]
        variants: Vec<String>,
    },
}

/// How a collection's caption and image rankings are fused.
#[derive(clap::Args, Debug)]
struct FusionArg {
    /// `rrf` (reciprocal-rank fusion) or `weighted:W` (`(1 − W)·image + W·caption` cosines), for
    /// searches of a collection with caption vectors that ask for `fused` (their default).
    #[arg(long, value_name = "RULE", default_value_t = Fusion::default())]
    fusion: Fusion,
}

/// `--vectors`: the stored vectors searched.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum VectorsArg {
    Image,
    Caption,
    Fused,
}

impl From<VectorsArg> for Vectors {
    fn from(v: VectorsArg) -> Self {
        match v {
            VectorsArg::Image => Vectors::Image,
            VectorsArg::Caption => Vectors::Caption,
            VectorsArg::Fused => Vectors::Fused,
        }
    }
}

/// What one connection and one client may ask of `proxy serve` (defaults: `Limits::default()`,
/// `RateLimits::default()`). Rates are COUNT/UNIT[:BURST] with units s, min, h (e.g. `5/s:20`:
/// five a second, bursts of 20), or `off`; they count per client address (IPv6: per /64), see
/// TEXT2IMG_TRUSTED_PROXIES for a server behind a proxy.
#[derive(clap::Args, Debug)]
struct LimitArgs {
    /// Seconds a request head may take to arrive whole (from the connection's start, or from
    /// its first byte after a keep-alive wait).
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request, and a request may go
    /// without a byte read or written.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().idle_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout: u64,
    /// Seconds a request body may take to arrive whole after its head (else 408).
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().body_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout: u64,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Connections one client (address; IPv6: /64) may hold open at once; more are closed at
    /// once. TEXT2IMG_TRUSTED_PROXIES are not capped.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_client as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections_per_client: u64,
    /// Votes (POST /api/feedback) per client. A RATE is COUNT/UNIT[:BURST] with units s, min,
    /// h (30/min:10: thirty a minute, bursts of ten) or off; it counts per client address
    /// (IPv6: per /64; behind a reverse proxy, set TEXT2IMG_TRUSTED_PROXIES to its address).
    #[arg(long, value_name = "RATE", default_value_t = RateLimits::default().feedback)]
    rate_feedback: Rate,
    /// Text searches (POST /api/search with `text`, encoded on this server) per client.
    #[arg(long, value_name = "RATE", default_value_t = RateLimits::default().text_search)]
    rate_text_search: Rate,
    /// Vector searches (POST /api/search with `vector`) per client.
    #[arg(long, value_name = "RATE", default_value_t = RateLimits::default().vector_search)]
    rate_vector_search: Rate,
    /// Similar-image searches (POST /api/similar) per client.
    #[arg(long, value_name = "RATE", default_value_t = RateLimits::default().similar)]
    rate_similar: Rate,
    /// Votes one client may cast an hour (the whole hour's may be spent at once; then 429
    /// vote_budget). Changing or withdrawing a vote counts.
    #[arg(long, value_name = "N", default_value_t = BudgetConfig::default().client_votes_per_hour)]
    client_votes_per_hour: NonZeroU32,
    /// Bytes of notes one client may send an hour.
    #[arg(long, value_name = "BYTES", default_value_t = BudgetConfig::default().client_note_bytes_per_hour)]
    client_note_bytes_per_hour: NonZeroU32,
    /// Votes everyone together may cast an hour: bounds how fast the label log grows.
    #[arg(long, value_name = "N", default_value_t = BudgetConfig::default().votes_per_hour)]
    votes_per_hour: NonZeroU32,
    /// Bytes of notes everyone together may send an hour.
    #[arg(long, value_name = "BYTES", default_value_t = BudgetConfig::default().note_bytes_per_hour)]
    note_bytes_per_hour: NonZeroU32,
}

impl LimitArgs {
    fn limits(&self, uncapped: &TrustedProxies) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(self.header_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_connections_per_client: usize::try_from(self.max_connections_per_client)
                .unwrap_or(usize::MAX),
            uncapped: uncapped.clone(),
        }
    }

    fn vote_budget(&self) -> BudgetConfig {
        BudgetConfig {
            client_votes_per_hour: self.client_votes_per_hour,
            client_note_bytes_per_hour: self.client_note_bytes_per_hour,
            votes_per_hour: self.votes_per_hour,
            note_bytes_per_hour: self.note_bytes_per_hour,
            ..BudgetConfig::default()
        }
    }

    fn rate_limits(&self) -> RateLimits {
        RateLimits {
            feedback: self.rate_feedback,
            text_search: self.rate_text_search,
            vector_search: self.rate_vector_search,
            similar: self.rate_similar,
            ..RateLimits::default()
        }
    }
}

/// Load (downloading once, with a progress bar) the native model on the CPU, off the async
/// threads.
async fn load_on_cpu(model: &str) -> anyhow::Result<clip::load::Loaded> {
    let model = model.to_string();
    tokio::task::spawn_blocking(move || {
        load_model(&model, &clip::Device::Cpu, &mut DownloadBar::default())
    })
    .await?
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            port,
            host,
            public,
            model_dir,
            limits,
            fusion,
            store,
        } => {
            serve(
                SocketAddr::new(host, port),
                public,
                model_dir,
                (&limits, fusion.fusion),
                &store,
            )
            .await
        }
        Command::Eval {
            queries,
            out,
            feedback,
            vectors,
            fusion,
            store,
        } => {
            let how = EvalHow {
                feedback,
                vectors: vectors.map(Vectors::from),
                fusion: fusion.fusion,
            };
            eval(&queries, out, how, &store).await
        }
        Command::Report {
            report: args,
            store,
        } => report(&args, &store).await,
        Command::ExportModel {
            model,
            out,
            variants,
        } => export_model(&model, &out, &variants),
    }
}

/// `proxy serve`: the site and the API until Ctrl-C.
async fn serve(
    addr: SocketAddr,
    public: PathBuf,
    model_dir: Option<PathBuf>,
    (limits, fusion): (&LimitArgs, Fusion),
    args: &StoreArgs,
) -> anyhow::Result<()> {
    let settings = args.settings()?;
    if !public.join("index.html").is_file() {
        anyhow::bail!(
            "{}: no index.html; build the frontend first (see README)",
            public.display()
        );
    }
    let model_dir = model_dir.or_else(|| {
        let default = public.join("model");
        default.join("manifest.json").is_file().then_some(default)
    });
    let bundle = model_dir.as_deref().map(ModelBundle::open).transpose()?;
    let loaded = load_on_cpu(&args.model).await?;
    let spec = collection_spec(&settings.collection, &loaded);
    let encoder: Arc<dyn TextEncoder> = Arc::new(NativeTextEncoder::new(&loaded));
    drop(loaded);
    let store = cli::store(&settings)?;
    let state = AppState::open(StateParts {
        store: store.clone(),
        spec: spec.clone(),
        encoder: Some(encoder),
        data: settings.data_dir(),
        admin_token: settings.admin_token.clone(),
        bundle,
    })?
    .with_vote_budget(limits.vote_budget())
    .with_image_roots(settings.image_roots.clone())
    .with_fusion(fusion);
    report_store(store.as_ref(), &spec, &settings).await;
    // The "no good match" line from the votes so far (refitted later as votes come in).
    proxy::http::cutoff::fit_now(&state).await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("serving {} on http://{addr}", public.display());
    let config = ServeConfig {
        public_dir: public,
        cors_origins: settings.cors_origins.clone(),
        rate_limits: limits.rate_limits(),
        trusted_proxies: settings.trusted_proxies.clone(),
    };
    let app = router(&config, Arc::new(state));
    let limits = limits.limits(&settings.trusted_proxies);
    proxy::http::serve(listener, app, &limits, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing the requests in progress");
    })
    .await?;
    Ok(())
}

/// Opens the collection now to report problems early (a store that is down or not ingested yet
/// is retried on each request): its size and, on a server, its layout.
async fn report_store(store: &dyn VectorStore, spec: &CollectionSpec, settings: &Settings) {
    match store.open_collection(spec).await {
        Ok(found) => {
            tracing::info!(
                "{}: {} points{}",
                settings.describe(),
                store.count().await.unwrap_or(0),
                if found.captions {
                    ", with caption vectors"
                } else {
                    ""
                }
            );
            if let Ok(Some(layout)) = store.layout().await {
                tracing::info!("collection `{}`: {layout}", spec.name);
            }
        }
        Err(e) => tracing::warn!("{}: {e}", settings.describe()),
    }
}

/// `proxy eval`: the labelled queries (and the crowd's labels, and the reviewers' verdicts, which
/// win over the crowd's) against the collection.
/// What `proxy eval` measures besides the summary.
struct EvalHow {
    feedback: bool,
    /// `None`: the collection's default.
    vectors: Option<Vectors>,
    fusion: Fusion,
}

async fn eval(
    queries: &Path,
    out: Option<PathBuf>,
    how: EvalHow,
    args: &StoreArgs,
) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let data = settings.data_dir();
    let judged_tsv = proxy::eval::read_queries(queries)?;
    // Read beside a running server: nothing is locked, cut or compacted.
    let labels = LabelLog::snapshot(&data.labels())?;
    let reviews = proxy::review::ReviewLog::snapshot(&data.reviews())?;
    let (judged, skipped) = proxy::eval::judgments_reviewed(&judged_tsv, &labels, &reviews);
    if judged.is_empty() {
        anyhow::bail!(
            "{}: no query has a relevant image (and no labels add one)",
            queries.display()
        );
    }
    let loaded = load_on_cpu(&args.model).await?;
    let spec = collection_spec(&settings.collection, &loaded);
    let encoder = NativeTextEncoder::new(&loaded);
    let store = cli::store(&settings)?;
    let found = store.open_collection(&spec).await?;
    let vectors = how
        .vectors
        .unwrap_or_else(|| retrieve::default_vectors(&found));
    retrieve::check(vectors, &found).map_err(anyhow::Error::msg)?;
    let retrieval = Retrieval {
        vectors,
        fusion: how.fusion,
    };
    // Each query is encoded once, for every ranking below.
    let query_vectors = proxy::eval::embed_queries(&judged, &encoder)?;
    let mut report =
        proxy::eval::evaluate(&judged, skipped, &query_vectors, store.as_ref(), retrieval).await?;
    if found.captions {
        report.vectors =
            proxy::eval::vectors::compare(&judged, &query_vectors, store.as_ref()).await?;
    }
    if how.feedback {
        let strategies = [Strategy::AverageVector, Strategy::BestScore];
        report.feedback = proxy::eval::feedback::simulate(
            &judged,
            &query_vectors,
            (store.as_ref(), retrieval),
            &strategies,
        )
        .await?;
    }
    let cutoff = proxy::cutoff::live::fit_labels(
        &labels,
        &reviews,
        Some(&encoder),
        store.as_ref(),
        spec.dim,
    );
    report.cutoff = Some(cutoff.await?);
    let out = out.unwrap_or_else(|| data.eval_reports());
    let title = format!(
        "text2img eval: {} on `{}`, {retrieval}",
        spec.model, spec.name
    );
    let sources = EvalSources {
        judged: &judged,
        encoder: &encoder,
        store: store.as_ref(),
        thumbs: &data.thumbs(),
    };
    write_eval(&out, &title, &report, sources).await
}

/// What `report.html` shows the queries with: their judgments, vectors, results and thumbnails.
struct EvalSources<'a> {
    judged: &'a [proxy::eval::Judged],
    encoder: &'a dyn TextEncoder,
    store: &'a dyn proxy::store::VectorStore,
    thumbs: &'a Path,
}

/// `report.md`, `report.json`, `recall.svg` and `report.html` in `out`; the Markdown on stdout.
async fn write_eval(
    out: &Path,
    title: &str,
    report: &proxy::eval::EvalReport,
    sources: EvalSources<'_>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let written = proxy::eval::report::write(out, title, report)?;
    let (worst, best) = proxy::eval::html::gather(
        report,
        sources.judged,
        sources.encoder,
        sources.store,
        sources.thumbs,
    )
    .await?;
    proxy::eval::html::write(
        out,
        &proxy::eval::html::render(title, report, &worst, &best)?,
    )?;
    std::io::stdout().write_all(written.markdown.as_bytes())?;
    tracing::info!(
        "wrote report.md, report.json, recall.svg and report.html in {}",
        out.display()
    );
    Ok(())
}

/// `proxy report`: the collection's page.
async fn report(args: &proxy::report::ReportArgs, store_args: &StoreArgs) -> anyhow::Result<()> {
    let options = args.options()?;
    let settings = store_args.settings()?;
    let loaded = load_on_cpu(&store_args.model).await?;
    let spec = collection_spec(&settings.collection, &loaded);
    drop(loaded);
    let store = cli::store(&settings)?;
    store.open_collection(&spec).await?;
    let title = format!("text2img collection `{}` ({})", spec.name, spec.model);
    let path = proxy::report::write(store.as_ref(), &settings.data_dir(), &title, &options).await?;
    tracing::info!("wrote {}", path.display());
    Ok(())
}

/// `proxy export-model`: the browser's model bundle.
fn export_model(model: &str, out: &Path, variants: &[String]) -> anyhow::Result<()> {
    let variants = variants
        .iter()
        .map(|v| Variant::parse(v))
        .collect::<Result<Vec<_>, _>>()?;
    let source = ModelSource::parse(model);
    let files = load::resolve(&source, &mut DownloadBar::default())
        .with_context(|| format!("model {model}"))?;
    let manifest = load::write_browser_bundle(&files, &variants, out)
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

fn main() -> ExitCode {
    cli::init_logging();
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
