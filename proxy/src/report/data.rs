//! report/data: what is in the collection, as read from the store and the storage directory?
//!
//! The I/O half of `proxy report`: every point's payload (scrolled), the size of its thumbnail
//! file, ingest's failures TSV, and each point's nearest neighbours found through the store's
//! own search (its stored vector as the query). The neighbour search is the costly part and is
//! bounded: at most [`super::Options::max_points`] points are searched (the first by point id,
//! so a re-run searches the same ones), each for `neighbours + 1` hits.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use uuid::Uuid;

use crate::ingest::thumb_path;
use crate::layout::DataDir;
use crate::payload::ImagePayload;
use crate::store::{self, SearchQuery, VectorStore};

use super::Options;

/// One indexed image.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub point: Uuid,
    pub payload: ImagePayload,
    /// The thumbnail file's size; `None`: not on disk.
    pub thumb_bytes: Option<u64>,
}

/// A row of `ingest-failures.tsv`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRow {
    pub line: String,
    pub id: String,
    pub url: String,
    pub reason: String,
}

/// Everything the report is computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collection {
    /// Every point, ordered by point id.
    pub items: Vec<Item>,
    pub failures: Vec<FailedRow>,
    /// Per searched item (index into `items`): its neighbours `(index, cosine)`, best first,
    /// itself left out. Items past the bound have none.
    pub neighbours: Vec<Vec<(usize, f32)>>,
    /// How many items were searched for neighbours.
    pub searched: usize,
}

/// Read the collection: payloads, thumbnail sizes, failures, and the neighbours of the first
/// `options.max_points` points.
pub async fn read(
    store: &dyn VectorStore,
    data: &DataDir,
    options: &Options,
) -> anyhow::Result<Collection> {
    let mut records = store::all_records(store).await?;
    records.sort_by_key(|r| r.id);
    let thumbs = data.thumbs();
    let items: Vec<Item> = records
        .into_iter()
        .map(|r| Item {
            point: r.id,
            thumb_bytes: file_size(&thumb_path(&thumbs, r.id)),
            payload: ImagePayload::read(r.id, r.payload),
        })
        .collect();
    let (neighbours, searched) = neighbours(store, &items, options).await?;
    Ok(Collection {
        failures: read_failures(&data.ingest_failures())?,
        items,
        neighbours,
        searched,
    })
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
}

/// The failures TSV (`line id url reason`, a header line first); none when the file is absent.
/// A line with fewer cells keeps what it has (the reason is the last cell there is).
pub fn read_failures(path: &Path) -> anyhow::Result<Vec<FailedRow>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(parse_failures(&text))
}

/// The rows of a failures TSV's text (see [`read_failures`]).
pub fn parse_failures(text: &str) -> Vec<FailedRow> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cells = l.splitn(4, '\t').map(str::to_string);
            let mut next = || cells.next().unwrap_or_default();
            FailedRow {
                line: next(),
                id: next(),
                url: next(),
                reason: next(),
            }
        })
        .collect()
}

/// The neighbours of the first `max_points` items, by the store's search with each one's stored
/// vector; returns them and how many items were searched.
async fn neighbours(
    store: &dyn VectorStore,
    items: &[Item],
    options: &Options,
) -> anyhow::Result<(Vec<Vec<(usize, f32)>>, usize)> {
    let index: HashMap<Uuid, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.point, i))
        .collect();
    let searched = items.len().min(options.max_points);
    let mut out = vec![Vec::new(); items.len()];
    for chunk_start in (0..searched).step_by(256) {
        let ids: Vec<Uuid> = items[chunk_start..searched.min(chunk_start + 256)]
            .iter()
            .map(|it| it.point)
            .collect();
        for record in store.get(&ids, true).await? {
            let (Some(&me), Some(vector)) = (index.get(&record.id), record.vector) else {
                continue;
            };
            let hits = store
                .search(&SearchQuery {
                    using: crate::store::VectorName::Image,
                    vector,
                    limit: options.neighbours + 1,
                    offset: 0,
                    filter: Default::default(),
                })
                .await?;
            out[me] = hits
                .iter()
                .filter(|h| h.id != record.id)
                .filter_map(|h| index.get(&h.id).map(|&i| (i, h.score)))
                .take(options.neighbours)
                .collect();
        }
    }
    Ok((out, searched))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_tsv_rows_short_lines_and_absence() {
        let rows = parse_failures(
            "line\tid\turl\treason\n3\tcat\thttp://x/cat.jpg\tHTTP 404 from http://x/cat.jpg\n\n\
             7\tdog\n9\ta\tb\treason\twith a tab\n",
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].reason, "HTTP 404 from http://x/cat.jpg");
        assert_eq!((rows[1].id.as_str(), rows[1].reason.as_str()), ("dog", ""));
        assert_eq!(rows[2].reason, "reason\twith a tab");
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(
            read_failures(&dir.path().join("none.tsv"))
                .expect("absent")
                .is_empty()
        );
        // a directory where the file should be is an error naming it
        let error = read_failures(dir.path()).expect_err("a directory");
        assert!(format!("{error:#}").contains(&dir.path().display().to_string()));
    }
}
