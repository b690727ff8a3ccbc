//! layout: where does text2img keep its files?
//!
//! Everything text2img writes lives under one storage directory (`./qdrant_storage` or
//! `--storage`): the embedded store's shards (named by `store::edge`), the label log, the
//! reviewers' verdicts, the thumbnails, ingest's list of failed rows, the folders it indexed
//! images from, eval's reports and `proxy report`'s page. [`DataDir`] names each of these
//! paths once; nothing else joins a file name onto the storage directory.

use std::path::{Path, PathBuf};

/// The storage directory and the files text2img keeps in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself (the embedded store keeps its shards here).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The label log: one vote per line (see `labels`).
    pub fn labels(&self) -> PathBuf {
        self.root.join("labels.jsonl")
    }

    /// The reviewers' verdicts: one per line (see `review`).
    pub fn reviews(&self) -> PathBuf {
        self.root.join("reviews.jsonl")
    }

    /// Thumbnails, `<point uuid>.jpg` (see `ingest::thumb_path`).
    pub fn thumbs(&self) -> PathBuf {
        self.root.join("thumbs")
    }

    /// The rows the last ingest could not index, as TSV.
    pub fn ingest_failures(&self) -> PathBuf {
        self.root.join("ingest-failures.tsv")
    }

    /// The rows share `index` of `count` (`ingest --shard`) could not index, as TSV.
    pub fn ingest_failures_of(&self, index: u32, count: u32) -> PathBuf {
        self.root
            .join(format!("ingest-failures-{index}-of-{count}.tsv"))
    }

    /// The folders ingest indexed local images from, one per line: the proxy serves originals
    /// from them (see `image_roots`).
    pub fn image_roots(&self) -> PathBuf {
        self.root.join("image-roots.txt")
    }

    /// Where `proxy eval` writes its reports by default.
    pub fn eval_reports(&self) -> PathBuf {
        self.root.join("eval")
    }

    /// eval's HTML report in the default report folder (served at `/admin/eval/`).
    pub fn eval_html(&self) -> PathBuf {
        self.eval_reports().join(EVAL_HTML)
    }

    /// The folder of `proxy report`'s page.
    pub fn report_dir(&self) -> PathBuf {
        self.root.join("report")
    }

    /// `proxy report`'s page (served at `/admin/report/`).
    pub fn data_report(&self) -> PathBuf {
        self.report_dir().join("index.html")
    }
}

/// The name of eval's HTML report in its output folder.
pub const EVAL_HTML: &str = "report.html";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_the_root() {
        let dir = DataDir::new("/data/t2i");
        for path in [
            dir.labels(),
            dir.reviews(),
            dir.thumbs(),
            dir.ingest_failures(),
            dir.ingest_failures_of(2, 3),
            dir.image_roots(),
            dir.eval_reports(),
            dir.report_dir(),
        ] {
            assert_eq!(path.parent(), Some(Path::new("/data/t2i")), "{path:?}");
        }
        assert_eq!(dir.labels(), Path::new("/data/t2i/labels.jsonl"));
        assert_eq!(dir.data_report(), Path::new("/data/t2i/report/index.html"));
        assert_eq!(dir.eval_html(), Path::new("/data/t2i/eval/report.html"));
    }
}
