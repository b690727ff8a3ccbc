//! report/page: what do text2img's HTML reports share?
//!
//! The pieces both static reports (`proxy eval`'s `report.html` and `proxy report`'s
//! `index.html`) are built from: [`escape`] (every string that comes from data goes through it),
//! [`document`] (one page: language, a Content-Security-Policy that allows no script and no
//! outside request, the style sheet), [`table`], and [`Tile`] (a thumbnail with its text, the
//! image inlined as a `data:` URI so the page shows it from disk, attached to a mail or served).
//! Rendering is pure: thumbnails arrive as bytes.

use std::fmt::Write as _;

use base64::Engine as _;

/// `text` safe in HTML text and in a quoted attribute value: `& < > " ' /` become character
/// references.
pub fn escape(text: &str) -> String {
    html_escape::encode_safe(text).into_owned()
}

/// What the page allows itself: no script, nothing fetched from anywhere; inline styles and
/// `data:` images only. Served as a header too (`http::admin`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// A whole HTML document: `title` (escaped here) and `body` (HTML, already escaped).
pub fn document(title: &str, body: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n"
    )
}

/// Readable without a style sheet; with it, tiles in a grid and marked relevance.
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#1a1a1a;background:#fff}\
table{border-collapse:collapse;margin:.5rem 0 1rem}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:right}\
th:first-child,td:first-child{text-align:left}\
caption{text-align:left;font-weight:600;padding:.25rem 0}\
figure.chart{margin:1rem 0}\
.pair{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}\
.chart svg{max-width:100%;height:auto}\
ol.tiles,ul.tiles{list-style:none;display:flex;flex-wrap:wrap;gap:.5rem;padding:0;margin:.5rem 0}\
.tiles li{width:9rem;border:3px solid #ccc;padding:.25rem;font-size:.8rem;overflow-wrap:anywhere}\
.tiles li.relevant{border-color:#1b7f3b;background:#eaf6ee}\
.tiles img{display:block;width:100%;height:8rem;object-fit:contain;background:#f3f3f3}\
.badge{display:inline-block;font-weight:700;padding:0 .3rem;border-radius:.2rem;color:#fff;background:#1b7f3b}\
.miss{color:#8a1c1c;font-weight:600}\
.note{color:#444}";

/// A table: a caption, header cells and rows of cells (all text, escaped here). The first column
/// is left-aligned (a name); the others right-aligned (numbers).
pub fn table(caption: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "<table>\n<caption>{}</caption>\n<thead><tr>",
        escape(caption)
    );
    for h in headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let tag = if i == 0 { "th scope=\"row\"" } else { "td" };
            let close = if i == 0 { "th" } else { "td" };
            let _ = write!(out, "<{tag}>{}</{close}>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// A JPEG as a `data:` URI.
pub fn jpeg_data_uri(jpeg: &[u8]) -> String {
    format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    )
}

/// One image in a row of tiles: its thumbnail (or a note that there is none) and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// The row id.
    pub id: String,
    pub caption: Option<String>,
    /// The thumbnail's JPEG bytes; `None`: missing on disk.
    pub thumbnail: Option<Vec<u8>>,
    /// A line above the id (`#3`, `0.972`); plain text.
    pub label: String,
    /// Marked relevant: a ✓ badge, a green border, and "relevant" in the text and alt.
    pub relevant: bool,
}

impl Tile {
    /// The `<li>`: alt text and caption say the same as the picture's marks.
    pub fn html(&self) -> String {
        let mark = if self.relevant { ", relevant" } else { "" };
        let alt = match &self.caption {
            Some(caption) => format!("{} ({}){mark}", caption, self.id),
            None => format!("image {}{mark}", self.id),
        };
        let picture = match &self.thumbnail {
            Some(jpeg) => format!(
                "<img src=\"{}\" alt=\"{}\" width=\"128\" height=\"128\">",
                jpeg_data_uri(jpeg),
                escape(&alt)
            ),
            None => "<p class=\"note\">(no thumbnail: re-run ingest)</p>".to_string(),
        };
        let badge = if self.relevant {
            " <span class=\"badge\">✓ relevant</span>"
        } else {
            ""
        };
        let class = if self.relevant {
            " class=\"relevant\""
        } else {
            ""
        };
        format!(
            "<li{class}>{picture}<div>{}{badge}</div><div><code>{}</code></div>{}</li>\n",
            escape(&self.label),
            escape(&self.id),
            self.caption
                .as_deref()
                .map(|c| format!("<div>{}</div>", escape(c)))
                .unwrap_or_default(),
        )
    }
}

/// A list of tiles (`ol` when the order means something, a ranking).
pub fn tiles(label: &str, tiles: &[Tile], ordered: bool) -> String {
    let tag = if ordered { "ol" } else { "ul" };
    let mut out = format!("<{tag} class=\"tiles\" aria-label=\"{}\">\n", escape(label));
    for tile in tiles {
        out.push_str(&tile.html());
    }
    let _ = writeln!(out, "</{tag}>");
    out
}

/// An SVG chart (from `plotters`) made an accessible image: `role="img"`, a `<title>` and a
/// `<desc>` that name it for screen readers (the chart draws its title itself), in a `<figure>`. `id`
/// must be unique in the page and plain (letters, digits, `-`).
pub fn figure(id: &str, svg: &str, title: &str, desc: &str) -> String {
    let open_end = svg.find('>').unwrap_or(0);
    let (open, rest) = svg.split_at(open_end);
    let rest = rest.strip_prefix('>').unwrap_or(rest);
    format!(
        "<figure class=\"chart\">\n{open} role=\"img\" aria-labelledby=\"{id}-title {id}-desc\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>{rest}\n</figure>\n",
        escape(title),
        escape(desc),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = r#"<script>alert("x")</script>' onerror=alert(1) & </li>"#;

    #[test]
    fn escape_neutralises_markup() {
        let escaped = escape(HOSTILE);
        for raw in ['<', '>', '"', '\''] {
            assert!(!escaped.contains(raw), "{raw} survived: {escaped}");
        }
        assert!(escaped.starts_with("&lt;script&gt;"), "{escaped}");
        assert!(escaped.contains("&amp;"), "{escaped}");
        assert_eq!(escape("plain text 42"), "plain text 42");
    }

    #[test]
    fn a_hostile_tile_stays_text() {
        let tile = Tile {
            id: HOSTILE.into(),
            caption: Some(HOSTILE.into()),
            thumbnail: Some(vec![0xff, 0xd8, 0xff]),
            label: HOSTILE.into(),
            relevant: true,
        };
        let html = tile.html();
        assert!(!html.contains("<script"), "{html}");
        assert!(
            !html.contains("' onerror") && !html.contains("\" onerror"),
            "{html}"
        );
        assert!(
            html.contains("src=\"data:image/jpeg;base64,/9j/\""),
            "{html}"
        );
        assert!(html.contains(", relevant\""), "alt says relevant: {html}");
        assert!(html.contains("✓ relevant"), "{html}");
        // exactly the tags we wrote
        assert_eq!(
            html.matches('<').count(),
            html.matches('>').count(),
            "{html}"
        );
        let no_thumb = Tile {
            thumbnail: None,
            relevant: false,
            ..tile
        };
        let html = no_thumb.html();
        assert!(
            !html.contains("<img") && html.contains("no thumbnail"),
            "{html}"
        );
        assert!(!html.contains("relevant"), "{html}");
    }

    #[test]
    fn documents_and_tables_escape_their_text() {
        let page = document(
            HOSTILE,
            &table(HOSTILE, &[HOSTILE], &[vec![HOSTILE.into()]]),
        );
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("<html lang=\"en\">"), "{page}");
        assert!(page.contains("default-src 'none'"), "{page}");
        assert_eq!(page.matches("<th scope").count(), 2, "{page}");
    }

    #[test]
    fn a_figure_names_its_svg() {
        let svg =
            "<svg width=\"10\" height=\"10\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect/></svg>";
        let html = figure("sizes", svg, "File <sizes>", "counts per bin");
        assert!(
            html.contains(
                "<svg width=\"10\" height=\"10\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
                 aria-labelledby=\"sizes-title sizes-desc\"><title id=\"sizes-title\">File \
                 &lt;sizes&gt;</title><desc id=\"sizes-desc\">counts per bin</desc>\n<rect/></svg>"
            ),
            "{html}"
        );
    }
}
