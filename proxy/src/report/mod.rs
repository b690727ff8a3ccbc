//! report: what does the collection look like?
//!
//! `proxy report` reads everything indexed ([`data`]: payloads, thumbnail sizes, ingest's
//! failures, each point's nearest neighbours through the store), counts it ([`stats`]), draws
//! the histograms ([`charts`]) and writes one static page ([`html`], on [`page`]'s pieces) to
//! `<storage>/report/index.html`: counts, formats, pixel sizes, aspect ratios, file sizes,
//! failed rows by reason, caption lengths, near-duplicate groups and outliers, thumbnails
//! inlined. No JavaScript; `proxy serve` shows it at `/admin/report/` behind the admin token.

pub mod charts;
pub mod data;
pub mod html;
pub mod page;
pub mod stats;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::ingest::thumb_path;
use crate::layout::DataDir;
use crate::store::VectorStore;

/// How far `proxy report` looks.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Two images whose cosine similarity is at least this are near-duplicates.
    pub threshold: f32,
    /// Nearest neighbours searched per image (for near-duplicates and outliers).
    pub neighbours: usize,
    /// At most this many images are searched for neighbours (one store search each); the rest
    /// are counted but not compared.
    pub max_points: usize,
    /// Near-duplicate groups and outliers shown (with thumbnails).
    pub max_groups: usize,
    pub max_outliers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            threshold: 0.95,
            neighbours: 10,
            max_points: 20_000,
            max_groups: 30,
            max_outliers: 12,
        }
    }
}

/// `proxy report`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Cosine similarity at or above which two images count as near-duplicates (0 < T ≤ 1).
    #[arg(long, value_name = "T", default_value_t = Options::default().threshold)]
    pub threshold: f32,
    /// Nearest neighbours searched per image.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub neighbours: u16,
    /// At most this many images are searched for neighbours (one store search each): bounds the
    /// work on a large collection; the rest are counted but not compared.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub max_points: u32,
}

impl ReportArgs {
    /// The options, or why a flag is out of range.
    pub fn options(&self) -> anyhow::Result<Options> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            anyhow::bail!(
                "--threshold {}: a cosine similarity above 0 and at most 1",
                self.threshold
            );
        }
        Ok(Options {
            threshold: self.threshold,
            neighbours: usize::from(self.neighbours),
            max_points: usize::try_from(self.max_points).unwrap_or(usize::MAX),
            ..Options::default()
        })
    }
}

/// Read the collection, render the page and write it to `<storage>/report/index.html`; returns
/// the path written.
pub async fn write(
    store: &dyn VectorStore,
    data: &DataDir,
    title: &str,
    options: &Options,
) -> anyhow::Result<PathBuf> {
    let collection = data::read(store, data, options).await?;
    let analysis = html::Analysis::of(&collection, options);
    let thumbnails = read_thumbnails(data, &collection, &analysis.shown());
    let page = html::render(title, &collection, &analysis, options, &thumbnails)?;
    let path = data.data_report();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The thumbnail bytes of the items the page shows (by index); missing files are left out.
fn read_thumbnails(
    data: &DataDir,
    collection: &data::Collection,
    shown: &[usize],
) -> HashMap<usize, Vec<u8>> {
    let dir = data.thumbs();
    shown
        .iter()
        .filter_map(|&i| {
            let item = collection.items.get(i)?;
            let bytes = std::fs::read(thumb_path(&dir, item.point)).ok()?;
            Some((i, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_out_of_range_are_refused() {
        let args = |threshold| ReportArgs {
            threshold,
            neighbours: 10,
            max_points: 5,
        };
        let ok = args(0.9).options().expect("valid");
        assert_eq!((ok.threshold, ok.neighbours, ok.max_points), (0.9, 10, 5));
        assert!(args(1.0).options().is_ok());
        for bad in [0.0, -0.5, 1.01, f32::NAN, f32::INFINITY] {
            let error = args(bad).options().expect_err("out of range").to_string();
            assert!(error.contains("--threshold"), "{error}");
        }
    }
}
