//! chart: what does the recall curve look like?
//!
//! Mean recall at K = 1..=depth as a self-contained SVG line chart for the report, drawn with
//! `plotters`' SVG backend: a title, K and recall axes with their labels and gridlines, and the
//! curve with a marker per point. plotters escapes the text it writes; characters XML forbids
//! are dropped here first, so any title gives well-formed XML. Without a font feature plotters
//! only estimates text sizes for the layout and leaves the fonts to the SVG viewer.

use plotters::coord::Shift;
use plotters::prelude::*;

/// The chart's size in pixels.
const SIZE: (u32, u32) = (640, 400);
/// The curve's colour (matplotlib's first).
const LINE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// Gridlines: light enough to read the curve over them.
const GRID: RGBColor = RGBColor(0xe0, 0xe0, 0xe0);
/// Font sizes as plotters takes them: it writes `size / 1.24` into the SVG (about 16 and 12 px).
const TITLE_FONT: u32 = 20;
const LABEL_FONT: u32 = 15;

/// A self-contained SVG (640 × 400) line chart of mean recall at k: the title, axes with ticks,
/// gridlines and labels ("K", "Recall@K"), one polyline and a circle marker per point.
///
/// Points are drawn in order of k; recall values outside [0, 1] are clamped, NaN counts as 0. The
/// output starts with `<svg`, is well-formed XML, and the same input always gives the same bytes.
pub fn recall_curve_svg(points: &[(usize, f64)], title: &str) -> anyhow::Result<String> {
    let mut sorted: Vec<(i64, f64)> = points
        .iter()
        .map(|&(k, recall)| (i64::try_from(k).unwrap_or(i64::MAX), clamp_unit(recall)))
        .collect();
    sorted.sort_by_key(|&(k, _)| k);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, &sorted, &xml_chars(title))
            .and_then(|()| root.present())
            .map_err(|e| anyhow::anyhow!("drawing the recall chart: {e}"))?;
    }
    Ok(svg)
}

/// Draw the chart onto `root`: `points` are sorted by k and within [0, 1].
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[(i64, f64)],
    title: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", f64::from(TITLE_FONT)))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(k_range(points), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("K")
        .y_desc("Recall@K")
        .label_style(("sans-serif", f64::from(LABEL_FONT)))
        .axis_desc_style(("sans-serif", f64::from(LABEL_FONT)))
        .x_labels(11)
        .y_labels(6)
        .y_label_formatter(&|recall| format!("{recall:.1}"))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(RGBColor(0x33, 0x33, 0x33))
        .draw()?;
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        LINE.stroke_width(2),
    ))?;
    // Markers over the line (LineSeries' own are hollow and under it).
    chart.draw_series(
        points
            .iter()
            .map(|&point| Circle::new(point, 3, LINE.filled())),
    )?;
    Ok(())
}

/// The K axis: from the first k to the last; one k (or none) sits in the middle of a range of 2.
fn k_range(points: &[(i64, f64)]) -> std::ops::Range<i64> {
    let low = points.first().map_or(1, |&(k, _)| k);
    let high = points.last().map_or(low, |&(k, _)| k);
    if low == high {
        low.saturating_sub(1)..high.saturating_add(1)
    } else {
        low..high
    }
}

/// A recall value fit for plotting: clamped to [0, 1], NaN as 0.
fn clamp_unit(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// `text` without the characters XML 1.0 forbids (C0 controls other than tab, line feed and
/// carriage return; U+FFFE, U+FFFF); plotters escapes the markup characters itself.
fn xml_chars(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            !((c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}')
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small XML well-formedness check for the SVG: tags nest and close, attribute values are
    /// quoted, and text has no raw `<` and only known entities after `&`.
    fn assert_well_formed(svg: &str) {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            assert_text_ok(&rest[..start]);
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes in {tag:?}"
            );
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().expect("empty tag");
                open.push(name);
            }
            rest = &rest[end + 1..];
            if open.is_empty() {
                assert!(rest.trim().is_empty(), "content after the root: {rest:?}");
            }
        }
        assert!(open.is_empty(), "unclosed elements {open:?}");
        assert_text_ok(rest);
    }

    fn assert_text_ok(text: &str) {
        for (index, _) in text.match_indices('&') {
            let entity = &text[index..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "bare '&' in {text:?}"
            );
        }
    }

    fn chart(points: &[(usize, f64)], title: &str) -> String {
        recall_curve_svg(points, title).expect("chart")
    }

    /// The value of attribute `name` in the tag text `tag`.
    fn attribute<'a>(tag: &'a str, name: &str) -> &'a str {
        let start = tag
            .find(&format!(" {name}=\""))
            .unwrap_or_else(|| panic!("no {name} in {tag:?}"))
            + name.len()
            + 3;
        &tag[start..start + tag[start..].find('"').expect("closing quote")]
    }

    /// The text of every opening tag `<name ...>` in `svg`.
    fn tags<'a>(svg: &'a str, name: &str) -> Vec<&'a str> {
        let open = format!("<{name} ");
        svg.match_indices(&open)
            .map(|(index, _)| &svg[index..index + svg[index..].find('>').expect("tag end")])
            .collect()
    }

    fn number(text: &str) -> f64 {
        text.parse()
            .unwrap_or_else(|e| panic!("{text:?} is no number: {e}"))
    }

    /// The vertices of the curve (the one polyline in the curve's colour), in drawing order.
    fn curve(svg: &str) -> Vec<(f64, f64)> {
        let colour = format!("#{:02X}{:02X}{:02X}", LINE.0, LINE.1, LINE.2);
        let lines: Vec<&str> = tags(svg, "polyline")
            .into_iter()
            .filter(|tag| attribute(tag, "stroke") == colour)
            .collect();
        assert!(lines.len() <= 1, "more than one curve: {lines:?}");
        lines
            .iter()
            .flat_map(|tag| attribute(tag, "points").split_whitespace())
            .map(|pair| {
                let (x, y) = pair.split_once(',').expect("x,y");
                (number(x), number(y))
            })
            .collect()
    }

    /// The centres of the point markers.
    fn markers(svg: &str) -> Vec<(f64, f64)> {
        tags(svg, "circle")
            .iter()
            .map(|tag| (number(attribute(tag, "cx")), number(attribute(tag, "cy"))))
            .collect()
    }

    /// Where the `<text>` element reading `content` is anchored (plotters puts the text on a
    /// line of its own).
    fn text_at(svg: &str, content: &str) -> (f64, f64) {
        let found = svg.match_indices("<text ").find_map(|(start, _)| {
            let tag = &svg[start..start + svg[start..].find('>').expect("tag end")];
            let body = &svg[start + tag.len() + 1..];
            let text = &body[..body.find("</text>").expect("</text>")];
            (text.trim() == content).then_some(tag)
        });
        let tag = found.unwrap_or_else(|| panic!("no text {content:?} in {svg}"));
        (number(attribute(tag, "x")), number(attribute(tag, "y")))
    }

    fn check_svg(points: &[(usize, f64)], title: &str) -> String {
        let svg = chart(points, title);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        assert!(svg.contains(r#"width="640" height="400""#), "{svg}");
        assert_eq!(curve(&svg).len(), points.len(), "{svg}");
        assert_eq!(markers(&svg), curve(&svg), "a marker on every vertex");
        text_at(&svg, "K");
        text_at(&svg, "Recall@K");
        assert_well_formed(&svg);
        assert_eq!(svg, chart(points, title), "not deterministic");
        svg
    }

    #[test]
    fn recall_curve_svg_cases() {
        let points: Vec<(usize, f64)> = (1..=20).map(|k| (k, k as f64 / 20.0)).collect();
        let svg = check_svg(&points, "Recall on holiday photos");
        text_at(&svg, "Recall on holiday photos");
        // the curve rises to the right: x grows with k, y (downwards) shrinks with recall
        let vertices = curve(&svg);
        assert!(
            vertices
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 > w[1].1),
            "{vertices:?}"
        );
        // recall 1.0 and 0.6 (k = 20 and 12) sit on their ticks; so does k = 20
        assert_eq!(vertices[19].1, text_at(&svg, "1.0").1, "{svg}");
        assert_eq!(vertices[11].1, text_at(&svg, "0.6").1, "{svg}");
        assert_eq!(vertices[19].0, text_at(&svg, "20").0, "{svg}");

        // out-of-range values are clamped: 1.5 plots as 1.0, -0.2 and NaN as 0.0
        assert_eq!(
            check_svg(&[(1, 1.5), (2, -0.2), (4, f64::NAN)], "clamped"),
            chart(&[(1, 1.0), (2, 0.0), (4, 0.0)], "clamped")
        );
        // points are drawn in order of k
        assert_eq!(
            check_svg(&[(4, 0.0), (1, 1.0)], "unsorted"),
            chart(&[(1, 1.0), (4, 0.0)], "unsorted")
        );

        // a single point sits in the middle, on its tick; no points still give a valid chart
        let svg = check_svg(&[(5, 0.5)], "one");
        assert_eq!(curve(&svg)[0].0, text_at(&svg, "5").0, "{svg}");
        check_svg(&[], "empty");
    }

    #[test]
    fn a_hostile_title_is_escaped() {
        let svg = check_svg(
            &[(1, 0.1), (2, 0.5), (3, 0.9)],
            r#"A <&> "B" 'C'</text><svg>"#,
        );
        text_at(
            &svg,
            "A &lt;&amp;&gt; &quot;B&quot; &apos;C&apos;&lt;/text&gt;&lt;svg&gt;",
        );
        assert!(!svg.contains("<&>"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1, "{svg}");

        // control characters XML forbids are dropped
        let svg = check_svg(&[(1, 0.5)], "bell\u{7}\u{FFFF}");
        text_at(&svg, "bell");
        assert!(
            !svg.contains('\u{7}') && !svg.contains('\u{FFFF}'),
            "{svg:?}"
        );
    }
}
