//! image_roots: which folders may the proxy serve original images from?
//!
//! An original's path comes from the stored payload, which whoever can write to the store chooses
//! (a shared Qdrant cluster, say), so it is checked again whenever it is served:
//! [`ImageRoots::resolve`] accepts a file only if it is absolute, resolves (symlinks and `..`
//! followed) to a regular file inside one of the roots, and starts like an image of a format
//! ingest indexes. The roots are the storage directory, the folders the operator names
//! (`TEXT2IMG_IMAGE_ROOTS`), and the folders ingest recorded in the storage directory's
//! `image-roots.txt` ([`record`]: the folder of every TSV it indexed local files from), read
//! again on each check so an ingest after the server started needs no restart. The record is a
//! local file the operator's own ingest writes: nothing in the store can add a root.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::ImageFormat;
use tokio::io::AsyncReadExt;

/// The formats ingest indexes. Others are refused even inside a root: formats whose signature
/// is a few common bytes (ICO's `00 00 01 00`, PNM's `P6`) would let other files pass as images.
const SERVED: [ImageFormat; 6] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::WebP,
    ImageFormat::Bmp,
    ImageFormat::Tiff,
];

/// The folders originals may be served from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRoots {
    fixed: Vec<PathBuf>,
    /// `image-roots.txt`: more roots, one per line, as ingest recorded them.
    recorded: Option<PathBuf>,
}

/// Why a stored path is not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("`{0}` is not an absolute path")]
    Relative(PathBuf),
    #[error("`{0}`: {1}")]
    Unreadable(PathBuf, std::io::ErrorKind),
    #[error("`{0}` resolves to `{1}`, outside the image roots")]
    Outside(PathBuf, PathBuf),
    #[error("`{0}` is not a regular file")]
    NotAFile(PathBuf),
    #[error("`{0}` does not start like an image")]
    NotAnImage(PathBuf),
}

impl ImageRoots {
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            fixed: roots.into_iter().collect(),
            recorded: None,
        }
    }

    /// Also the roots listed in `file` (see [`record`]), read on every check.
    pub fn with_recorded(mut self, file: PathBuf) -> Self {
        self.recorded = Some(file);
        self
    }

    /// Add more roots.
    pub fn extend(&mut self, roots: impl IntoIterator<Item = PathBuf>) {
        self.fixed.extend(roots);
    }

    /// The roots now: the fixed ones, then the recorded ones.
    pub async fn roots(&self) -> Vec<PathBuf> {
        let mut roots = self.fixed.clone();
        if let Some(file) = &self.recorded
            && let Ok(text) = tokio::fs::read_to_string(file).await
        {
            roots.extend(text.lines().filter(|l| !l.is_empty()).map(PathBuf::from));
        }
        roots
    }

    /// The file a payload names, resolved, with its content type: only an absolute path to a
    /// regular file inside a root (both resolved, so no symlink or `..` leads out) that starts
    /// like an image. A root that does not exist holds nothing.
    pub async fn resolve(&self, stored: &str) -> Result<(PathBuf, &'static str), Refused> {
        let stored = Path::new(stored);
        if !stored.is_absolute() {
            return Err(Refused::Relative(stored.to_path_buf()));
        }
        let unreadable = |e: std::io::Error| Refused::Unreadable(stored.to_path_buf(), e.kind());
        let real = tokio::fs::canonicalize(stored).await.map_err(unreadable)?;
        if !self.contains(&real).await {
            return Err(Refused::Outside(stored.to_path_buf(), real));
        }
        let mut file = tokio::fs::File::open(&real).await.map_err(unreadable)?;
        if !file.metadata().await.map_err(unreadable)?.is_file() {
            return Err(Refused::NotAFile(real));
        }
        let mut head = Vec::with_capacity(64);
        (&mut file)
            .take(64)
            .read_to_end(&mut head)
            .await
            .map_err(unreadable)?;
        match image::guess_format(&head) {
            Ok(format) if SERVED.contains(&format) => Ok((real, format.to_mime_type())),
            _ => Err(Refused::NotAnImage(real)),
        }
    }

    /// Whether a resolved path lies inside one of the (resolved) roots.
    async fn contains(&self, real: &Path) -> bool {
        for root in self.roots().await {
            if let Ok(root) = tokio::fs::canonicalize(root).await
                && real.starts_with(&root)
            {
                return true;
            }
        }
        false
    }
}

/// Record `folder` (made absolute) as a root in the list `file`, unless it is there already.
pub fn record(file: &Path, folder: &Path) -> std::io::Result<()> {
    let folder = std::fs::canonicalize(folder)?;
    let line = folder.to_string_lossy();
    let known = match std::fs::read_to_string(file) {
        Ok(text) => text.lines().any(|l| l == line),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if known {
        return Ok(());
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    out.write_all(format!("{line}\n").as_bytes())?;
    out.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recorded_roots_are_read_on_each_check_and_kept_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let photos = dir.path().join("photos");
        std::fs::create_dir_all(&photos).expect("photos");
        let png = photos.join("a.png");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n rest").expect("png");
        let list = dir.path().join("image-roots.txt");
        let roots = ImageRoots::new([dir.path().join("storage")]).with_recorded(list.clone());
        let stored = png.to_string_lossy().to_string();
        assert!(matches!(
            roots.resolve(&stored).await,
            Err(Refused::Outside(..))
        ));
        record(&list, &photos).expect("record");
        record(&list, &photos.join("..").join("photos")).expect("record again");
        assert_eq!(
            std::fs::read_to_string(&list)
                .expect("list")
                .lines()
                .count(),
            1,
            "a folder is recorded once"
        );
        let (path, mime) = roots
            .resolve(&stored)
            .await
            .expect("served after the record");
        assert_eq!(
            (path, mime),
            (std::fs::canonicalize(&png).expect("real"), "image/png")
        );
    }
}
