//! report/html: what does `proxy report`'s page say?
//!
//! [`Analysis::of`] computes every number of the page from a [`Collection`] (pure), and
//! [`render`] lays it out: a summary table, then for each measure a chart and a table of the
//! same numbers, the failed rows by kind of reason, near-duplicate groups and outliers as rows
//! of thumbnails. Every string from the data goes through `page::escape`.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::Options;
use super::charts::histogram_svg;
use super::data::{Collection, Item};
use super::page::{Tile, document, escape, figure, table, tiles};
use super::stats::{
    Histogram, bytes_label, counts, groups, human_bytes, number_label, outliers, reason_kind,
};

/// Bin edges: megapixels, width / height, original bytes, caption characters.
const MEGAPIXELS: [f64; 10] = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 50.0];
const ASPECT: [f64; 10] = [0.0, 0.5, 0.67, 0.8, 0.95, 1.05, 1.25, 1.5, 2.0, 3.0];
const BYTES: [f64; 10] = [0.0, 10e3, 50e3, 100e3, 250e3, 500e3, 1e6, 2e6, 5e6, 10e6];
const CAPTION_CHARS: [f64; 7] = [1.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];
/// Thumbnails shown per near-duplicate group (a chain can join many images).
const GROUP_TILES: usize = 12;

/// The page's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub megapixels: Histogram,
    pub aspect: Histogram,
    pub bytes: Histogram,
    pub captions: Histogram,
    pub formats: Vec<(String, usize)>,
    /// `(kind, count, an example row's id and reason)`, most common first.
    pub reasons: Vec<(String, usize, String)>,
    /// Near-duplicate groups (indexes into the items), largest first; all of them.
    pub groups: Vec<Vec<usize>>,
    /// `(item, mean cosine to its neighbours)`, least alike first.
    pub outliers: Vec<(usize, f32)>,
    max_groups: usize,
}

impl Analysis {
    pub fn of(collection: &Collection, options: &Options) -> Self {
        let items = &collection.items;
        let sized = || {
            items
                .iter()
                .filter_map(|it| it.payload.width.zip(it.payload.height))
        };
        let pairs = collection.neighbours.iter().enumerate().flat_map(|(i, n)| {
            n.iter()
                .filter(|(_, score)| *score >= options.threshold)
                .map(move |&(j, _)| (i, j))
        });
        // Outliers mean something only when each image has its full set of neighbours.
        let enough = items.len() > options.neighbours + 1;
        Self {
            megapixels: Histogram::new(
                sized().map(|(w, h)| f64::from(w) * f64::from(h) / 1e6),
                &MEGAPIXELS,
                number_label,
            ),
            aspect: Histogram::new(
                sized()
                    .filter(|&(_, h)| h > 0)
                    .map(|(w, h)| f64::from(w) / f64::from(h)),
                &ASPECT,
                number_label,
            ),
            bytes: Histogram::new(
                items
                    .iter()
                    .filter_map(|it| it.payload.image_bytes)
                    .map(|b| b as f64),
                &BYTES,
                bytes_label,
            ),
            captions: Histogram::new(
                items
                    .iter()
                    .filter_map(|it| it.payload.caption.as_deref())
                    .map(|c| c.chars().count() as f64),
                &CAPTION_CHARS,
                number_label,
            ),
            formats: counts(
                items
                    .iter()
                    .map(|it| it.payload.image_format.as_deref().unwrap_or("not recorded")),
            ),
            reasons: reasons(collection),
            groups: groups(items.len(), pairs),
            outliers: if enough {
                outliers(&collection.neighbours, options.max_outliers)
            } else {
                Vec::new()
            },
            max_groups: options.max_groups,
        }
    }

    /// The items whose thumbnails the page shows.
    pub fn shown(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .shown_groups()
            .iter()
            .flat_map(|g| g.iter().take(GROUP_TILES).copied())
            .chain(self.outliers.iter().map(|(i, _)| *i))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn shown_groups(&self) -> &[Vec<usize>] {
        &self.groups[..self.groups.len().min(self.max_groups)]
    }
}

/// Failed rows by kind of reason, with the first row of each kind as an example.
fn reasons(collection: &Collection) -> Vec<(String, usize, String)> {
    let kinds: Vec<String> = collection
        .failures
        .iter()
        .map(|f| reason_kind(&f.reason))
        .collect();
    counts(kinds.iter().map(String::as_str))
        .into_iter()
        .map(|(kind, n)| {
            let example = collection
                .failures
                .iter()
                .zip(&kinds)
                .find(|(_, k)| **k == kind)
                .map(|(f, _)| format!("{} (line {}): {}", f.id, f.line, f.reason))
                .unwrap_or_default();
            (kind, n, example)
        })
        .collect()
}

/// The whole page. `thumbnails` holds the JPEG bytes of (at least) [`Analysis::shown`].
pub fn render(
    title: &str,
    collection: &Collection,
    analysis: &Analysis,
    options: &Options,
    thumbnails: &HashMap<usize, Vec<u8>>,
) -> anyhow::Result<String> {
    let mut body = summary(collection, options);
    let charts = [
        (
            "megapixels",
            "Pixel size",
            "megapixels (width × height)",
            &analysis.megapixels,
        ),
        (
            "aspect",
            "Aspect ratio",
            "width / height (1 = square, above 1 = landscape)",
            &analysis.aspect,
        ),
        (
            "bytes",
            "File size of the originals",
            "bytes as fetched by ingest",
            &analysis.bytes,
        ),
        (
            "captions",
            "Caption length",
            "characters (images with a caption)",
            &analysis.captions,
        ),
    ];
    for (id, name, unit, histogram) in charts {
        body.push_str(&histogram_section(id, name, unit, histogram)?);
    }
    body.push_str(&formats_section(analysis));
    body.push_str(&failures_section(collection, analysis));
    body.push_str(&groups_section(collection, analysis, options, thumbnails));
    body.push_str(&outliers_section(collection, analysis, options, thumbnails));
    Ok(document(title, &body))
}

fn summary(collection: &Collection, options: &Options) -> String {
    let items = &collection.items;
    let count = |f: &dyn Fn(&Item) -> bool| items.iter().filter(|it| f(it)).count().to_string();
    let thumbs: Vec<u64> = items.iter().filter_map(|it| it.thumb_bytes).collect();
    let rows = vec![
        vec!["Images indexed".into(), items.len().to_string()],
        vec![
            "… from local files".into(),
            count(&|it| it.payload.file.is_some()),
        ],
        vec!["… from URLs".into(), count(&|it| it.payload.file.is_none())],
        vec![
            "… with a caption".into(),
            count(&|it| it.payload.caption.is_some()),
        ],
        vec![
            "… with their size in pixels".into(),
            count(&|it| it.payload.width.is_some()),
        ],
        vec![
            "… with their file size recorded".into(),
            count(&|it| it.payload.image_bytes.is_some()),
        ],
        vec![
            "Rows the last ingest could not index".into(),
            collection.failures.len().to_string(),
        ],
        vec!["Thumbnails on disk".into(), thumbs.len().to_string()],
        vec![
            "… their total size".into(),
            human_bytes(thumbs.iter().sum::<u64>() as f64),
        ],
        vec![
            "Images compared with their neighbours".into(),
            format!(
                "{} (at most {}, {} neighbours each)",
                collection.searched, options.max_points, options.neighbours
            ),
        ],
        vec![
            "Near-duplicate threshold (cosine)".into(),
            format!("{:.3}", options.threshold),
        ],
    ];
    format!(
        "<h2>Summary</h2>\n{}",
        table("Counts", &["What", "Count"], &rows)
    )
}

fn histogram_section(id: &str, name: &str, unit: &str, h: &Histogram) -> anyhow::Result<String> {
    let svg = histogram_svg(h, name, unit)?;
    let desc = format!(
        "Bar chart of {} images by {unit}: {}.",
        h.total(),
        h.bins
            .iter()
            .map(|(l, n)| format!("{l}: {n}"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let rows: Vec<Vec<String>> = h
        .bins
        .iter()
        .map(|(l, n)| vec![l.clone(), n.to_string()])
        .collect();
    Ok(format!(
        "<section aria-labelledby=\"{id}-h\">\n<h2 id=\"{id}-h\">{}</h2>\n<div class=\"pair\">\n{}{}</div>\n</section>\n",
        escape(name),
        figure(id, &svg, name, &desc),
        table(
            &format!("{name}: images per bin ({unit})"),
            &["Bin", "Images"],
            &rows
        ),
    ))
}

fn formats_section(analysis: &Analysis) -> String {
    let rows: Vec<Vec<String>> = analysis
        .formats
        .iter()
        .map(|(f, n)| vec![f.clone(), n.to_string()])
        .collect();
    format!(
        "<h2>Formats</h2>\n<p class=\"note\">As the bytes say; \"not recorded\": ingested before \
         formats were recorded (a re-run of ingest fills them in).</p>\n{}",
        table("Images per format", &["Format", "Images"], &rows)
    )
}

fn failures_section(collection: &Collection, analysis: &Analysis) -> String {
    let mut out = String::from("<h2>Failed rows</h2>\n");
    if collection.failures.is_empty() {
        out.push_str("<p>The last ingest indexed every row.</p>\n");
        return out;
    }
    let rows: Vec<Vec<String>> = analysis
        .reasons
        .iter()
        .map(|(kind, n, example)| vec![kind.clone(), n.to_string(), example.clone()])
        .collect();
    out.push_str(&table(
        "Failed rows by reason (URLs, paths and numbers merged)",
        &["Reason", "Rows", "Example"],
        &rows,
    ));
    out
}

fn tile(
    collection: &Collection,
    i: usize,
    label: String,
    thumbnails: &HashMap<usize, Vec<u8>>,
) -> Tile {
    let payload = &collection.items[i].payload;
    Tile {
        id: payload.id.clone(),
        caption: payload.caption.clone(),
        thumbnail: thumbnails.get(&i).cloned(),
        label,
        relevant: false,
    }
}

fn groups_section(
    collection: &Collection,
    analysis: &Analysis,
    options: &Options,
    thumbnails: &HashMap<usize, Vec<u8>>,
) -> String {
    let mut out = format!(
        "<h2>Near-duplicate groups</h2>\n<p class=\"note\">Images whose cosine similarity to \
         another in the group is at least {:.3} (joined through chains), among their {} nearest \
         neighbours.</p>\n",
        options.threshold, options.neighbours
    );
    if analysis.groups.is_empty() {
        out.push_str("<p>No near-duplicates found.</p>\n");
        return out;
    }
    for (n, group) in analysis.shown_groups().iter().enumerate() {
        let _ = writeln!(out, "<h3>Group {} ({} images)</h3>", n + 1, group.len());
        let row: Vec<Tile> = group
            .iter()
            .take(GROUP_TILES)
            .map(|&i| tile(collection, i, String::new(), thumbnails))
            .collect();
        out.push_str(&tiles(
            &format!("near-duplicate group {}", n + 1),
            &row,
            false,
        ));
        if group.len() > GROUP_TILES {
            let _ = writeln!(out, "<p>… and {} more.</p>", group.len() - GROUP_TILES);
        }
    }
    let hidden = analysis.groups.len() - analysis.shown_groups().len();
    if hidden > 0 {
        let _ = writeln!(out, "<p>{hidden} more groups not shown.</p>");
    }
    out
}

fn outliers_section(
    collection: &Collection,
    analysis: &Analysis,
    options: &Options,
    thumbnails: &HashMap<usize, Vec<u8>>,
) -> String {
    let mut out = format!(
        "<h2>Outliers</h2>\n<p class=\"note\">The images least like the rest: the lowest mean \
         cosine similarity to their {} nearest neighbours.</p>\n",
        options.neighbours
    );
    if analysis.outliers.is_empty() {
        out.push_str("<p>Too few images to tell.</p>\n");
        return out;
    }
    let row: Vec<Tile> = analysis
        .outliers
        .iter()
        .map(|&(i, mean)| tile(collection, i, format!("mean cosine {mean:.3}"), thumbnails))
        .collect();
    out.push_str(&tiles("outliers, least alike first", &row, true));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::ImagePayload;
    use crate::report::data::FailedRow;
    use uuid::Uuid;

    const HOSTILE: &str = "<img src=x onerror=alert(1)>\"'&";

    fn item(n: u128, w: u32, h: u32, caption: Option<&str>) -> Item {
        Item {
            point: Uuid::from_u128(n),
            payload: ImagePayload {
                id: format!("img{n}"),
                caption: caption.map(str::to_string),
                width: Some(w),
                height: Some(h),
                image_bytes: Some(u64::from(w) * 10),
                image_format: Some("png".into()),
                ..ImagePayload::default()
            },
            thumb_bytes: Some(1000),
        }
    }

    /// Four images: 0 and 1 near-duplicates (0.99), 2 close to them, 3 far from all.
    fn collection() -> Collection {
        Collection {
            items: vec![
                item(0, 100, 100, Some("a cat")),
                item(1, 200, 100, Some(HOSTILE)),
                item(2, 4000, 3000, None),
                item(3, 100, 400, Some("x")),
            ],
            failures: vec![
                FailedRow {
                    line: "3".into(),
                    id: HOSTILE.into(),
                    url: "u".into(),
                    reason: "HTTP 404 from http://h/a".into(),
                },
                FailedRow {
                    line: "5".into(),
                    id: "b".into(),
                    url: "u".into(),
                    reason: "HTTP 404 from http://h/b".into(),
                },
                FailedRow {
                    line: "6".into(),
                    id: "c".into(),
                    url: "u".into(),
                    reason: "not an image: unknown format (3 bytes)".into(),
                },
            ],
            neighbours: vec![
                vec![(1, 0.99), (2, 0.7), (3, 0.1)],
                vec![(0, 0.99), (2, 0.6), (3, 0.1)],
                vec![(0, 0.7), (1, 0.6), (3, 0.2)],
                vec![(2, 0.2), (0, 0.1), (1, 0.1)],
            ],
            searched: 4,
        }
    }

    fn options() -> Options {
        Options {
            neighbours: 2,
            ..Options::default()
        }
    }

    #[test]
    fn the_numbers() {
        let a = Analysis::of(&collection(), &options());
        assert_eq!(a.groups, [vec![0, 1]]);
        assert_eq!(a.outliers[0].0, 3, "{:?}", a.outliers);
        assert_eq!(a.formats, [("png".to_string(), 4)]);
        assert_eq!(a.reasons[0].0, "HTTP 404 from <url>");
        assert_eq!(a.reasons[0].1, 2);
        assert_eq!(a.reasons[1].1, 1);
        assert_eq!(a.captions.total(), 3);
        // aspect: 1.0, 2.0, 1.33, 0.25
        let aspect: Vec<usize> = a.aspect.bins.iter().map(|(_, n)| *n).collect();
        assert_eq!(aspect, [1, 0, 0, 0, 1, 0, 1, 0, 1, 0]);
        // 12 megapixels in the 8–16 bin
        assert_eq!(a.megapixels.bins[7], ("8 – 16".to_string(), 1));
        assert_eq!(a.shown(), [0, 1, 2, 3]);
        // a higher threshold: no group
        let strict = Analysis::of(
            &collection(),
            &Options {
                threshold: 0.999,
                ..options()
            },
        );
        assert!(strict.groups.is_empty());
        // too few images for their neighbours: no outliers
        let few = Analysis::of(
            &collection(),
            &Options {
                neighbours: 3,
                ..options()
            },
        );
        assert!(few.outliers.is_empty());
    }

    #[test]
    fn the_page_escapes_data_and_shows_every_part() {
        let collection = collection();
        let a = Analysis::of(&collection, &options());
        let thumbs = HashMap::from([(0, vec![0xff, 0xd8]), (1, vec![0xff, 0xd8])]);
        let page = render("Report <x>", &collection, &a, &options(), &thumbs).expect("render");
        assert!(
            !page.contains("<img src=x"),
            "hostile caption or id unescaped"
        );
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(page.contains("<title>Report &lt;x&gt;</title>"));
        for part in [
            "Pixel size",
            "Aspect ratio",
            "File size of the originals",
            "Caption length",
            "Formats",
            "Failed rows by reason",
            "Group 1 (2 images)",
            "Outliers",
        ] {
            assert!(page.contains(part), "{part} missing");
        }
        assert_eq!(page.matches("role=\"img\"").count(), 4, "four charts");
        assert!(!page.contains("<script"));
        // group 1's two thumbnails, and the outliers without thumbnails say so
        assert!(page.matches("data:image/jpeg;base64,").count() >= 2);
        assert!(page.contains("no thumbnail"));
    }

    #[test]
    fn a_large_group_shows_its_first_thumbnails_and_counts_the_rest() {
        let n = GROUP_TILES + 3;
        let collection = Collection {
            items: (0..n as u128).map(|i| item(i, 10, 10, None)).collect(),
            neighbours: (0..n).map(|i| vec![((i + 1) % n, 0.99)]).collect(),
            searched: n,
            ..Collection::default()
        };
        let a = Analysis::of(&collection, &options());
        assert_eq!(a.groups.len(), 1);
        assert_eq!(a.groups[0].len(), n);
        // the group's first 12 (the outliers, all alike here, are among them by id)
        assert_eq!(a.shown(), (0..GROUP_TILES).collect::<Vec<_>>());
        let page = render("Big", &collection, &a, &options(), &HashMap::new()).expect("render");
        assert!(page.contains(&format!("Group 1 ({n} images)")), "{page}");
        assert!(page.contains("… and 3 more."), "{page}");
    }

    #[test]
    fn an_empty_collection_renders() {
        let empty = Collection::default();
        let a = Analysis::of(&empty, &options());
        let page = render("Empty", &empty, &a, &options(), &HashMap::new()).expect("render");
        assert!(page.contains("No near-duplicates found"));
        assert!(page.contains("The last ingest indexed every row"));
        assert!(page.contains("Too few images to tell"));
    }
}
