//! chart: what does the recall curve look like?
//!
//! Mean recall at K = 1..=depth as a self-contained SVG line chart for the report.

use std::fmt::Write as _;

/// Text made safe for XML character data and attribute values: the five markup characters become
/// entities, and characters XML 1.0 forbids (most C0 controls, U+FFFE, U+FFFF) are dropped.
fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => escaped.push(c),
        }
    }
    escaped
}

/// A tick step of 1, 2 or 5 times a power of ten that cuts `span` into at most ten intervals.
fn nice_step(span: usize) -> usize {
    let wanted = span.div_ceil(10).max(1);
    let mut power = 1usize;
    loop {
        for factor in [1, 2, 5] {
            let step = power.saturating_mul(factor);
            if step >= wanted {
                return step;
            }
        }
        power = power.saturating_mul(10);
    }
}

/// The K axis ticks: the first k, then every multiple of a round step up to the last k.
fn k_ticks(low: usize, high: usize) -> Vec<usize> {
    let step = nice_step(high - low);
    let mut ticks = vec![low];
    let mut next = (low / step)
        .checked_add(1)
        .and_then(|m| m.checked_mul(step));
    while let Some(k) = next.filter(|&k| k <= high) {
        ticks.push(k);
        next = k.checked_add(step);
    }
    ticks
}

/// A recall value fit for plotting: clamped to [0, 1], NaN as 0.
fn clamp_unit(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// A self-contained SVG (640 × 400) line chart of mean recall at k: axes, ticks, gridlines, axis
/// labels ("K", "Recall@K"), a title and one polyline with a circle marker per point.
///
/// Points are drawn in order of k; recall values outside [0, 1] are clamped. The text is escaped,
/// so the output is well-formed XML; it starts with `<svg` and ends with `</svg>`, and the same
/// input always gives the same bytes.
pub fn recall_curve_svg(points: &[(usize, f64)], title: &str) -> String {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 400.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = WIDTH - 24.0;
    const TOP: f64 = 48.0;
    const BOTTOM: f64 = HEIGHT - 56.0;
    const LINE: &str = "#1f77b4";

    let mut sorted = points.to_vec();
    sorted.sort_by_key(|&(k, _)| k);
    let low = sorted.first().map_or(1, |&(k, _)| k);
    let high = sorted.last().map_or(low, |&(k, _)| k);
    let x = |k: usize| {
        if high == low {
            f64::midpoint(LEFT, RIGHT)
        } else {
            LEFT + (k - low) as f64 / (high - low) as f64 * (RIGHT - LEFT)
        }
    };
    let y = |recall: f64| BOTTOM - clamp_unit(recall) * (BOTTOM - TOP);
    let title = xml_escape(title);

    // `write!` into a String cannot fail; the results are ignored on purpose.
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, "<title>{title}</title>");
    let _ = writeln!(
        svg,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );

    // Horizontal gridlines and recall ticks every 0.2.
    for step in 0..=5u32 {
        let recall = f64::from(step) / 5.0;
        let ty = y(recall);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT:.1}" y1="{ty:.1}" x2="{RIGHT:.1}" y2="{ty:.1}" stroke="#e0e0e0"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{recall:.1}</text>"#,
            LEFT - 8.0,
            ty + 4.0
        );
    }
    // Vertical gridlines and K ticks.
    if !sorted.is_empty() {
        for k in k_ticks(low, high) {
            let tx = x(k);
            let _ = writeln!(
                svg,
                r##"<line x1="{tx:.1}" y1="{TOP:.1}" x2="{tx:.1}" y2="{BOTTOM:.1}" stroke="#e0e0e0"/>"##
            );
            let _ = writeln!(
                svg,
                r#"<text x="{tx:.1}" y="{:.1}" text-anchor="middle">{k}</text>"#,
                BOTTOM + 18.0
            );
        }
    }
    // Axes over the gridlines.
    let _ = writeln!(
        svg,
        r##"<path d="M {LEFT:.1} {TOP:.1} V {BOTTOM:.1} H {RIGHT:.1}" fill="none" stroke="#333333"/>"##
    );
    // Title and axis labels.
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="28.0" text-anchor="middle" font-size="16">{title}</text>"#,
        WIDTH / 2.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">K</text>"#,
        f64::midpoint(LEFT, RIGHT),
        HEIGHT - 16.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18.0 {:.1}) rotate(-90)" text-anchor="middle">Recall@K</text>"#,
        f64::midpoint(TOP, BOTTOM)
    );

    // The curve, then its markers (with the exact value as a tooltip).
    let coordinates: Vec<String> = sorted
        .iter()
        .map(|&(k, recall)| format!("{:.1},{:.1}", x(k), y(recall)))
        .collect();
    let _ = writeln!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="{LINE}" stroke-width="2"/>"#,
        coordinates.join(" ")
    );
    for &(k, recall) in &sorted {
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{LINE}"><title>Recall@{k} = {:.3}</title></circle>"#,
            x(k),
            y(recall),
            clamp_unit(recall)
        );
    }
    svg.push_str("</svg>");
    svg
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

    fn check_svg(points: &[(usize, f64)], title: &str) -> String {
        let svg = recall_curve_svg(points, title);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains(r#"width="640" height="400""#), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert_eq!(svg.matches("<circle").count(), points.len(), "{svg}");
        assert!(
            svg.contains(">Recall@K</text>") && svg.contains(">K</text>"),
            "{svg}"
        );
        assert_well_formed(&svg);
        assert_eq!(svg, recall_curve_svg(points, title), "not deterministic");
        svg
    }

    #[test]
    fn recall_curve_svg_cases() {
        let curve: Vec<(usize, f64)> = (1..=20).map(|k| (k, k as f64 / 20.0)).collect();
        check_svg(&curve, "Recall on holiday photos");

        let svg = check_svg(&[(1, 0.1), (2, 0.5), (3, 0.9)], r#"A <&> "B" 'C'"#);
        assert!(
            svg.contains("A &lt;&amp;&gt; &quot;B&quot; &apos;C&apos;"),
            "{svg}"
        );
        assert!(!svg.contains("<&>"), "{svg}");

        // out-of-range values are clamped: 1.5 plots at the 1.0 line (y = 48), -0.2 and NaN at
        // the 0.0 line (y = 344); x runs from 64 (k = 1) to 616 (k = 4).
        let svg = check_svg(&[(1, 1.5), (2, -0.2), (4, f64::NAN)], "clamped");
        assert!(
            svg.contains(r#"points="64.0,48.0 248.0,344.0 616.0,344.0""#),
            "{svg}"
        );

        // points are drawn in order of k
        let svg = check_svg(&[(4, 0.0), (1, 1.0)], "unsorted");
        assert!(svg.contains(r#"points="64.0,48.0 616.0,344.0""#), "{svg}");

        // a single point sits in the middle; no points still give a valid (empty) chart
        let svg = check_svg(&[(5, 0.5)], "one");
        assert!(svg.contains(r#"points="340.0,196.0""#), "{svg}");
        check_svg(&[], "empty");

        // control characters XML forbids are dropped
        let svg = check_svg(&[(1, 0.5)], "bell\u{7}");
        assert!(svg.contains("<title>bell</title>"), "{svg}");
    }

    #[test]
    fn k_axis_ticks() {
        for (low, high, expected) in [
            // span 19: step ceil(19/10) = 2
            (1, 20, vec![1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]),
            // span 9: step 1
            (1, 10, (1..=10).collect()),
            // span 99: step ceil(99/10) = 10
            (1, 100, vec![1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]),
            // span 30: step 3, rounded up to 5
            (5, 35, vec![5, 10, 15, 20, 25, 30, 35]),
            // one k
            (3, 3, vec![3]),
        ] {
            assert_eq!(k_ticks(low, high), expected, "{low}..={high}");
        }
    }
}
