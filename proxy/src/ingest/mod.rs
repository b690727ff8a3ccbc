//! ingest/: how do images get into the store?
//!
//! `images.tsv` → fetch (a bounded pool of threads: http(s) with timeouts and retries, or local
//! files) → content hash → decode + CLIP preprocessing + a ≤256 px thumbnail (a pool of threads,
//! one per core; JPEGs decoded at the reduced DCT scale the model needs, as Pillow's draft mode,
//! unless `full_decode`) → the vision tower in batches (this thread), and the text tower on the
//! batch's captions when the collection has caption vectors → upsert with deterministic ids.
//! Decoding goes on while the model embeds the previous batch: the stages are joined by bounded
//! channels.
//!
//! Incremental and resumable: a point's payload keeps the sha256 of its image bytes
//! (`content_hash`) and of its row (`row_hash`). A re-run skips rows whose image and row are
//! unchanged, rewrites the payload of rows whose image (and, with caption vectors, caption) is
//! unchanged, re-embeds the rest, and with `prune` deletes points whose rows left the TSV. Each batch is durable once upserted, and ids
//! are UUIDv5 of the row id, so a run killed halfway is finished by the next with no duplicate and
//! no gap.
//!
//! Sharded: with `shard` K/N a run takes only the rows whose id hashes to share K ([`shard`]),
//! so N machines can ingest one TSV into one cluster at once; everything above (skips, resumes,
//! `prune`) then holds per share.
//!
//! Architecture Invariant: ingest never prints; it reports through [`Progress`] and returns a
//! [`Report`]. Only the store trait is used, never a Qdrant type.

pub mod fetch;
pub mod policy;
pub mod shard;
pub mod thumbnail;
pub mod tsv;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use clip::Device;
use clip::{ClipModel, ClipTokenizer, ImageProcessor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::layout::DataDir;
use crate::payload::ImagePayload;
use crate::store::{self, Payload, Point, VectorStore};
use fetch::{FetchConfig, Fetcher};
pub use shard::Shard;
pub use thumbnail::{THUMB_SIDE, thumb_size};
use tsv::{Row, RowError, Source};

/// How ingest runs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Images per forward pass of the vision tower.
    pub batch_size: usize,
    /// Concurrent fetches.
    pub fetch_workers: usize,
    /// Decode + preprocess threads.
    pub decode_workers: usize,
    /// Delete points whose rows are no longer in the TSV (with `shard`, only that share's).
    pub prune: bool,
    /// Take only this share of the TSV's rows (`None`: all of them).
    pub shard: Option<Shard>,
    /// Decode JPEGs at full size. By default a JPEG is decoded at the smallest DCT scale (1/2,
    /// 1/4, 1/8) that keeps both sides at least the model's input size — Pillow's draft mode:
    /// several times less work for camera photos, and a slightly different crop (see
    /// `ImageProcessor::decode_draft`).
    pub full_decode: bool,
    pub fetch: FetchConfig,
}

impl Default for IngestOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            batch_size: 32,
            fetch_workers: 16,
            decode_workers: cores,
            prune: false,
            shard: None,
            full_decode: false,
            fetch: FetchConfig::default(),
        }
    }
}

/// Where ingest reads and writes.
#[derive(Debug, Clone)]
pub struct IngestPaths {
    pub tsv: PathBuf,
    /// Thumbnails, `<point uuid>.jpg`.
    pub thumbs: PathBuf,
    /// The failures of the last run, as TSV.
    pub failures: PathBuf,
    /// The list of folders local images were indexed from (the proxy serves originals from
    /// them; see `image_roots`).
    pub image_roots: PathBuf,
}

impl IngestPaths {
    /// The TSV, with thumbnails and the failures list in the storage directory.
    pub fn new(tsv: &Path, data: &DataDir) -> Self {
        Self {
            tsv: tsv.to_path_buf(),
            thumbs: data.thumbs(),
            failures: data.ingest_failures(),
            image_roots: data.image_roots(),
        }
    }

    /// The same, with the failures list named for `shard`, so that shares run one after another
    /// with one storage directory keep a list each (`ingest-failures-K-of-N.tsv`).
    pub fn for_shard(mut self, data: &DataDir, shard: Shard) -> Self {
        self.failures = data.ingest_failures_of(shard.index(), shard.count());
        self
    }
}

/// Progress of a run (a terminal bar in the binary, nothing in tests).
pub trait Progress: Send + Sync {
    fn start(&self, rows: u64);
    fn advance(&self, rows: u64);
    fn finish(&self);
}

/// No progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The share this run took, if any.
    pub shard: Option<Shard>,
    /// Good rows in the TSV, all shares.
    pub tsv_rows: usize,
    /// Good rows this run took (its share's, or all).
    pub rows: usize,
    /// Rows embedded and written (new or changed image).
    pub indexed: usize,
    /// Rows whose image was unchanged but whose other columns changed: payload rewritten.
    pub updated: usize,
    /// Rows skipped: image and row unchanged.
    pub unchanged: usize,
    /// Points deleted by `prune` (with a share, of that share only).
    pub pruned: usize,
    /// Rows that failed, with the reason, in line order.
    pub failures: Vec<RowError>,
    /// Points in the collection after the run.
    pub points: usize,
}

impl Report {
    /// Whether anything is searchable from this TSV: the binary exits non-zero when not.
    pub fn any_indexed(&self) -> bool {
        self.indexed + self.updated + self.unchanged > 0
    }
}

/// Errors that stop a run (row problems do not: they are [`Report::failures`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Header(#[from] tsv::HeaderError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The model side of ingest.
#[derive(Debug)]
pub struct Embedder<'a> {
    pub model: &'a ClipModel,
    pub device: &'a Device,
    pub processor: ImageProcessor,
    /// Embeds captions too (into a collection with caption vectors).
    captions: Option<&'a ClipTokenizer>,
}

impl<'a> Embedder<'a> {
    pub fn new(model: &'a ClipModel, device: &'a Device) -> Self {
        Self {
            model,
            device,
            processor: ImageProcessor::for_model(&model.config.vision),
            captions: None,
        }
    }

    /// Also embed each row's caption with the text tower (`tokenizer` is the model's).
    pub fn with_captions(mut self, tokenizer: &'a ClipTokenizer) -> Self {
        self.captions = Some(tokenizer);
        self
    }

    fn embeds_captions(&self) -> bool {
        self.captions.is_some()
    }

    fn embed(&self, images: &[Vec<f32>]) -> clip::Result<Vec<Vec<f32>>> {
        let pixels = clip::pixel_batch(images, self.processor.size as usize, self.device)?;
        self.model.vision.embed(&pixels)
    }

    /// The caption vector of each row that has a caption, when captions are embedded.
    fn embed_captions(&self, rows: &[&Row]) -> clip::Result<Vec<Option<Vec<f32>>>> {
        let Some(tokenizer) = self.captions else {
            return Ok(vec![None; rows.len()]);
        };
        let mut sequences = Vec::new();
        for caption in rows.iter().filter_map(|r| r.caption.as_deref()) {
            sequences.push(tokenizer.encode(caption)?);
        }
        let mut vectors = if sequences.is_empty() {
            Vec::new()
        } else {
            self.model.text.embed(&sequences)?
        }
        .into_iter();
        Ok(rows
            .iter()
            .map(|r| r.caption.as_ref().and_then(|_| vectors.next()))
            .collect())
    }
}

/// An image fetched and hashed, on its way to decoding.
struct Fetched {
    row: Row,
    bytes: Vec<u8>,
    content_hash: String,
    row_hash: String,
}

/// What the pipeline hands to the embedding thread.
enum Msg {
    Ready {
        row: Row,
        pixels: Vec<f32>,
        payload: Payload,
    },
    PayloadOnly {
        row: Row,
        payload: Payload,
    },
    Unchanged,
    Failed(RowError),
}

/// What is stored already for a point: the hashes that tell whether its row changed, and the
/// size (kept when only the payload is rewritten).
#[derive(Debug, Clone)]
struct Stored {
    content_hash: String,
    row_hash: String,
    size: Option<(u32, u32)>,
    /// Whether the payload records the original's byte size and format (older ones do not: a
    /// re-run rewrites their payload).
    has_original: bool,
    /// The caption its caption vector was made from.
    caption: Option<String>,
}

impl Stored {
    /// Whether `row`'s point keeps its vectors: the same image file, and with caption vectors,
    /// the same caption.
    fn keeps_vectors(&self, content_hash: &str, row: &Row, captions: bool) -> bool {
        self.content_hash == content_hash && (!captions || self.caption == row.caption)
    }
}

/// Run ingest. Store calls go through `runtime` (call this from a plain thread, not from inside
/// the runtime).
pub fn run(
    paths: &IngestPaths,
    options: &IngestOptions,
    embedder: &Embedder<'_>,
    store: &dyn VectorStore,
    runtime: &tokio::runtime::Handle,
    progress: &dyn Progress,
) -> Result<Report, IngestError> {
    let parsed = read_rows(paths)?;
    for column in &parsed.meta_columns {
        runtime.block_on(store.index_field(column))?;
    }
    let tsv_rows = parsed.rows.len();
    let parsed = take_share(parsed, options.shard);
    let existing = stored(store, runtime, options.shard)?;
    let mut report = Report {
        shard: options.shard,
        tsv_rows,
        rows: parsed.rows.len(),
        failures: parsed.errors.clone(),
        ..Report::default()
    };
    progress.start(parsed.rows.len() as u64);
    let stages = Stages {
        paths,
        options,
        embedder,
        store,
        runtime,
        progress,
        existing: &existing,
    };
    stages.run(&parsed.rows, &mut report)?;
    if options.prune {
        report.pruned = prune(&parsed.listed_ids, &existing, store, runtime, paths)?;
    }
    runtime.block_on(store.optimize())?;
    report.points = runtime.block_on(store.count())?;
    report.failures.sort_by_key(|f| f.line);
    write_failures(&paths.failures, &report.failures)?;
    progress.finish();
    Ok(report)
}

/// Parse the TSV (relative paths against its folder), make the thumbnail folder, and record the
/// TSV's folder as an image root when it lists local files.
fn read_rows(paths: &IngestPaths) -> Result<tsv::Parsed, IngestError> {
    let text = std::fs::read_to_string(&paths.tsv).map_err(|source| IngestError::Read {
        path: paths.tsv.clone(),
        source,
    })?;
    let base = paths
        .tsv
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parsed = tsv::parse(&text, base, &paths.tsv.display().to_string())?;
    std::fs::create_dir_all(&paths.thumbs).map_err(|source| IngestError::Write {
        path: paths.thumbs.clone(),
        source,
    })?;
    if parsed
        .rows
        .iter()
        .any(|row| matches!(row.source, tsv::Source::File { .. }))
    {
        crate::image_roots::record(&paths.image_roots, base).map_err(|source| {
            IngestError::Write {
                path: paths.image_roots.clone(),
                source,
            }
        })?;
    }
    Ok(parsed)
}

/// Only `shard`'s rows, failed rows and listed ids (all of them without a shard). A failed row
/// with no id is reported by share 1, so that each failure is reported once across the shares.
fn take_share(mut parsed: tsv::Parsed, shard: Option<Shard>) -> tsv::Parsed {
    let Some(shard) = shard else { return parsed };
    parsed.rows.retain(|row| shard.contains(&row.id));
    parsed.errors.retain(|e| match &e.id {
        Some(id) => shard.contains(id),
        None => shard.index() == 1,
    });
    parsed.listed_ids.retain(|id| shard.contains(id));
    parsed
}

/// Every stored point's hashes and size (with a shard, of that share's points: a point belongs
/// to the share of its payload's `id`).
fn stored(
    store: &dyn VectorStore,
    runtime: &tokio::runtime::Handle,
    shard: Option<Shard>,
) -> Result<HashMap<Uuid, Stored>, IngestError> {
    Ok(runtime
        .block_on(store::all_records(store))?
        .into_iter()
        .map(|r| (r.id, ImagePayload::read(r.id, r.payload)))
        .filter(|(_, p)| shard.is_none_or(|s| s.contains(&p.id)))
        .map(|(id, p)| {
            let size = p.width.zip(p.height);
            let stored = Stored {
                content_hash: p.content_hash,
                row_hash: p.row_hash,
                size,
                has_original: p.image_bytes.is_some(),
                caption: p.caption,
            };
            (id, stored)
        })
        .collect())
}

/// Delete the points (and thumbnails) of rows no longer listed; returns how many.
fn prune(
    listed_ids: &[String],
    existing: &HashMap<Uuid, Stored>,
    store: &dyn VectorStore,
    runtime: &tokio::runtime::Handle,
    paths: &IngestPaths,
) -> Result<usize, IngestError> {
    let listed: HashSet<Uuid> = listed_ids.iter().map(|id| store::point_id(id)).collect();
    let gone: Vec<Uuid> = existing
        .keys()
        .filter(|id| !listed.contains(id))
        .copied()
        .collect();
    runtime.block_on(store.delete(&gone))?;
    for id in &gone {
        // A thumbnail already missing is fine.
        let _ = std::fs::remove_file(thumb_path(&paths.thumbs, *id));
    }
    Ok(gone.len())
}

/// The pipeline: fetch workers → decode workers → batches through the model into the store.
struct Stages<'a> {
    paths: &'a IngestPaths,
    options: &'a IngestOptions,
    embedder: &'a Embedder<'a>,
    store: &'a dyn VectorStore,
    runtime: &'a tokio::runtime::Handle,
    progress: &'a dyn Progress,
    existing: &'a HashMap<Uuid, Stored>,
}

impl Stages<'_> {
    fn run(&self, rows: &[Row], report: &mut Report) -> Result<(), IngestError> {
        let options = self.options;
        let (row_tx, row_rx) = mpsc::channel::<Row>();
        for row in rows.iter().cloned() {
            // The receiver is alive: it is dropped only at the end of this function.
            let _ = row_tx.send(row);
        }
        drop(row_tx);
        let row_rx = Arc::new(Mutex::new(row_rx));
        // Fetched images wait for a decode worker: as many as there are workers, so that at most
        // `fetch_workers + 2 × decode_workers` image files are held at once.
        let (fetched_tx, fetched_rx) = mpsc::sync_channel::<Fetched>(options.decode_workers.max(1));
        let fetched_rx = Arc::new(Mutex::new(fetched_rx));
        let (msg_tx, msg_rx) = mpsc::sync_channel::<Msg>(options.batch_size.max(1) * 2);
        let fetcher = Fetcher::new(options.fetch.clone());
        std::thread::scope(|scope| -> Result<(), IngestError> {
            for _ in 0..options.fetch_workers.max(1) {
                let (rows, fetched, msgs) = (row_rx.clone(), fetched_tx.clone(), msg_tx.clone());
                let (fetcher, thumbs) = (&fetcher, &self.paths.thumbs);
                let existing = (self.existing, self.embedder.embeds_captions());
                scope
                    .spawn(move || fetch_worker(&rows, fetcher, existing, thumbs, &fetched, &msgs));
            }
            drop(fetched_tx);
            for _ in 0..options.decode_workers.max(1) {
                let (fetched, msgs) = (fetched_rx.clone(), msg_tx.clone());
                let (processor, thumbs) = (&self.embedder.processor, &self.paths.thumbs);
                let full = options.full_decode;
                scope.spawn(move || decode_worker(&fetched, processor, full, thumbs, &msgs));
            }
            // Only the decode workers may hold the receiving end: when they stop (the embed loop
            // failed and dropped `msg_rx`), the fetch workers' sends fail and they stop too,
            // instead of waiting forever on a full channel.
            drop(fetched_rx);
            drop(msg_tx);
            let result = embed_loop(
                &msg_rx,
                options.batch_size.max(1),
                self.embedder,
                self.store,
                self.runtime,
                self.progress,
                report,
            );
            // On an error, stop the workers: dropping the receiver makes their sends fail.
            drop(msg_rx);
            result
        })
    }
}

fn fetch_worker(
    rows: &Mutex<Receiver<Row>>,
    fetcher: &Fetcher,
    (existing, captions): (&HashMap<Uuid, Stored>, bool),
    thumbs: &Path,
    fetched: &SyncSender<Fetched>,
    msgs: &SyncSender<Msg>,
) {
    loop {
        let next = rows.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(row) = next else { return };
        let bytes = match fetcher
            .fetch(&row.source)
            .and_then(|b| fetch::sniff(&b).map(|()| b))
        {
            Ok(bytes) => bytes,
            Err(reason) => {
                if msgs.send(Msg::Failed(row_error(&row, reason))).is_err() {
                    return;
                }
                continue;
            }
        };
        let content_hash = hex::encode(Sha256::digest(&bytes));
        let row_hash = row_hash(&row);
        let id = store::point_id(&row.id);
        let sent = match existing.get(&id) {
            Some(stored)
                if stored.keeps_vectors(&content_hash, &row, captions)
                    && thumb_path(thumbs, id).is_file() =>
            {
                if stored.row_hash == row_hash && stored.has_original {
                    msgs.send(Msg::Unchanged).is_ok()
                } else {
                    let original = Original::of(&bytes);
                    let payload = payload(&row, &content_hash, &row_hash, stored.size, &original);
                    msgs.send(Msg::PayloadOnly { row, payload }).is_ok()
                }
            }
            _ => fetched
                .send(Fetched {
                    row,
                    bytes,
                    content_hash,
                    row_hash,
                })
                .is_ok(),
        };
        if !sent {
            return;
        }
    }
}

fn decode_worker(
    fetched: &Mutex<Receiver<Fetched>>,
    processor: &ImageProcessor,
    full_decode: bool,
    thumbs: &Path,
    msgs: &SyncSender<Msg>,
) {
    loop {
        let next = fetched.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(item) = next else { return };
        let msg = match decode(&item, processor, full_decode, thumbs) {
            Ok((pixels, (width, height))) => Msg::Ready {
                payload: payload(
                    &item.row,
                    &item.content_hash,
                    &item.row_hash,
                    Some((width, height)),
                    &Original::of(&item.bytes),
                ),
                row: item.row,
                pixels,
            },
            Err(reason) => Msg::Failed(row_error(&item.row, reason)),
        };
        if msgs.send(msg).is_err() {
            return;
        }
    }
}

/// Decode, preprocess for the model, and write the thumbnail. Returns the pixels and the
/// original size.
fn decode(
    item: &Fetched,
    processor: &ImageProcessor,
    full_decode: bool,
    thumbs: &Path,
) -> Result<(Vec<f32>, (u32, u32)), String> {
    let prepared = prepare(&item.bytes, processor, full_decode)?;
    let path = thumb_path(thumbs, store::point_id(&item.row.id));
    write_atomically(&prepared.thumbnail, &path)
        .map_err(|e| format!("writing thumbnail {}: {e}", path.display()))?;
    Ok((prepared.pixels, prepared.size))
}

/// What the decode stage makes of one image file.
#[derive(Debug)]
pub struct Prepared {
    /// The model's input, `[3, size, size]`.
    pub pixels: Vec<f32>,
    /// The original size (width, height), upright.
    pub size: (u32, u32),
    /// The thumbnail as a JPEG file.
    pub thumbnail: Vec<u8>,
}

/// Image file bytes → model input, original size and thumbnail: the CPU work per image.
pub fn prepare(
    bytes: &[u8],
    processor: &ImageProcessor,
    full_decode: bool,
) -> Result<Prepared, String> {
    let (image, size) = if full_decode {
        let image = processor.decode(bytes).map_err(|e| e.to_string())?;
        let size = image.dimensions();
        (image, size)
    } else {
        // At least the model's side: the thumbnail's long side (≤ 256) is then at least that too.
        processor
            .decode_draft(bytes, processor.size)
            .map_err(|e| e.to_string())?
    };
    let pixels = processor.normalize(&processor.resize_crop(&image));
    let thumbnail = thumbnail::thumbnail(&image)?;
    Ok(Prepared {
        pixels,
        size,
        thumbnail,
    })
}

/// Where a point's thumbnail lives.
pub fn thumb_path(thumbs: &Path, id: Uuid) -> PathBuf {
    thumbs.join(format!("{id}.jpg"))
}

/// Write a file atomically (temp file + rename): a reader never sees half a thumbnail.
fn write_atomically(bytes: &[u8], path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("jpg.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn embed_loop(
    msgs: &Receiver<Msg>,
    batch_size: usize,
    embedder: &Embedder<'_>,
    store: &dyn VectorStore,
    runtime: &tokio::runtime::Handle,
    progress: &dyn Progress,
    report: &mut Report,
) -> Result<(), IngestError> {
    let mut batch: Vec<(Row, Vec<f32>, Payload)> = Vec::with_capacity(batch_size);
    let flush = |batch: &mut Vec<(Row, Vec<f32>, Payload)>,
                 report: &mut Report|
     -> Result<(), IngestError> {
        if batch.is_empty() {
            return Ok(());
        }
        let images: Vec<Vec<f32>> = batch
            .iter_mut()
            .map(|(_, p, _)| std::mem::take(p))
            .collect();
        let n = batch.len() as u64;
        let rows: Vec<&Row> = batch.iter().map(|(row, _, _)| row).collect();
        let embedded = embedder
            .embed(&images)
            .and_then(|v| Ok((v, embedder.embed_captions(&rows)?)));
        match embedded {
            Ok((vectors, captions)) => {
                let points = batch
                    .drain(..)
                    .zip(vectors.into_iter().zip(captions))
                    .map(|((row, _, payload), (vector, caption))| Point {
                        id: store::point_id(&row.id),
                        vector,
                        caption,
                        payload,
                    })
                    .collect::<Vec<_>>();
                runtime.block_on(store.upsert(points))?;
                report.indexed += n as usize;
            }
            Err(e) => {
                for (row, _, _) in batch.drain(..) {
                    report
                        .failures
                        .push(row_error(&row, format!("embedding failed: {e}")));
                }
            }
        }
        progress.advance(n);
        Ok(())
    };
    for msg in msgs {
        match msg {
            Msg::Ready {
                row,
                pixels,
                payload,
            } => {
                batch.push((row, pixels, payload));
                if batch.len() >= batch_size {
                    flush(&mut batch, report)?;
                }
            }
            Msg::PayloadOnly { row, payload } => {
                runtime.block_on(store.set_payload(store::point_id(&row.id), payload))?;
                report.updated += 1;
                progress.advance(1);
            }
            Msg::Unchanged => {
                report.unchanged += 1;
                progress.advance(1);
            }
            Msg::Failed(error) => {
                report.failures.push(error);
                progress.advance(1);
            }
        }
    }
    flush(&mut batch, report)
}

/// What the payload records of the original file: its size in bytes and its format.
#[derive(Debug, Clone, PartialEq)]
struct Original {
    bytes: u64,
    format: Option<String>,
}

impl Original {
    /// The format is the one the bytes start like (`fetch::sniff` accepted it), named by its
    /// usual extension.
    fn of(bytes: &[u8]) -> Self {
        let format = image::guess_format(bytes)
            .ok()
            .and_then(|f| f.extensions_str().first().map(|e| (*e).to_string()));
        Self {
            bytes: bytes.len() as u64,
            format,
        }
    }
}

/// The payload of a row's point.
fn payload(
    row: &Row,
    content_hash: &str,
    row_hash: &str,
    size: Option<(u32, u32)>,
    original: &Original,
) -> Payload {
    let file = match &row.source {
        Source::File { path, .. } => {
            let path = path.canonicalize().unwrap_or_else(|_| path.clone());
            Some(path.display().to_string())
        }
        Source::Http(_) => None,
    };
    ImagePayload {
        id: row.id.clone(),
        url: row.source.as_written().to_string(),
        caption: row.caption.clone(),
        file,
        content_hash: content_hash.to_string(),
        row_hash: row_hash.to_string(),
        width: size.map(|(w, _)| w),
        height: size.map(|(_, h)| h),
        image_bytes: Some(original.bytes),
        image_format: original.format.clone(),
        columns: row.meta.clone(),
    }
    .to_payload()
}

/// The hash of what a row says besides its image: a change re-writes the payload only.
fn row_hash(row: &Row) -> String {
    let mut h = Sha256::new();
    h.update(row.source.as_written().as_bytes());
    h.update([0]);
    h.update(row.caption.as_deref().unwrap_or("").as_bytes());
    h.update([0]);
    // serde_json's Map is ordered (BTreeMap): the same columns hash the same.
    h.update(Value::Object(row.meta.clone()).to_string().as_bytes());
    hex::encode(h.finalize())
}

fn row_error(row: &Row, reason: String) -> RowError {
    RowError {
        line: row.line,
        id: Some(row.id.clone()),
        url: Some(row.source.as_written().to_string()),
        reason,
    }
}

/// The failures as TSV (`line id url reason`), replaced at each run; removed when none.
fn write_failures(path: &Path, failures: &[RowError]) -> Result<(), IngestError> {
    let err = |source| IngestError::Write {
        path: path.to_path_buf(),
        source,
    };
    if failures.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(e)),
            _ => Ok(()),
        };
    }
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let mut out = Vec::new();
    let _ = writeln!(out, "line\tid\turl\treason");
    for f in failures {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}",
            f.line,
            clean(f.id.as_deref().unwrap_or("")),
            clean(f.url.as_deref().unwrap_or("")),
            clean(&f.reason)
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, out).map_err(err)
}
