//! report/charts: what does a histogram look like?
//!
//! A histogram's bins as a horizontal bar chart, an SVG drawn with `plotters`' SVG backend (the
//! eval report's recall curve is drawn the same way, `eval::chart`): one bar per bin, top to
//! bottom in bin order, the bin's label at the left where long labels fit, counts along the
//! bottom. The page puts a `<title>`, a `<desc>` and a table of the same numbers beside it
//! (`page::figure`). Labels and titles are the report's own text, never data.

use plotters::prelude::*;

use super::stats::Histogram;

/// Bars: the same blue as the recall curve.
const BAR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const GRID: RGBColor = RGBColor(0xe0, 0xe0, 0xe0);
const WIDTH: u32 = 640;
/// Height per bar, and around the bars (title, axis).
const ROW: u32 = 26;
const FRAME: u32 = 110;

/// The histogram as a self-contained SVG: `title` on top, `x_desc` under the count axis.
/// Deterministic; an empty histogram gives an empty chart.
pub fn histogram_svg(histogram: &Histogram, title: &str, x_desc: &str) -> anyhow::Result<String> {
    let n = histogram.bins.len();
    let height = FRAME + ROW * u32::try_from(n.max(1)).unwrap_or(u32::MAX / ROW);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        draw(&root, histogram, title, x_desc)
            .and_then(|()| root.present())
            .map_err(|e| anyhow::anyhow!("drawing the chart `{title}`: {e}"))?;
    }
    Ok(svg)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    histogram: &Histogram,
    title: &str,
    x_desc: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let n = histogram.bins.len();
    let max = histogram.bins.iter().map(|(_, c)| *c).max().unwrap_or(0);
    // Headroom, and at least 1 so an empty chart still has an axis.
    let top = u32::try_from(max)
        .unwrap_or(u32::MAX)
        .saturating_add(1)
        .max(1);
    let rows = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    // Bin i is drawn at row n-1-i, so the first bin is on top.
    let row_of = |i: usize| rows - 1 - u32::try_from(i).unwrap_or(0);
    let labels: Vec<&str> = histogram.bins.iter().map(|(l, _)| l.as_str()).collect();
    let label_of = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(row) => (rows - 1)
            .checked_sub(*row)
            .and_then(|i| labels.get(usize::try_from(i).ok()?))
            .map_or_else(String::new, |l| (*l).to_string()),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20.0))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(130)
        .build_cartesian_2d(0u32..top, (0u32..rows).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_desc(x_desc)
        .x_labels(6)
        .x_label_formatter(&|v| v.to_string())
        .y_labels(n.max(1))
        .y_label_formatter(&label_of)
        .label_style(("sans-serif", 13.0))
        .axis_desc_style(("sans-serif", 14.0))
        .axis_style(RGBColor(0x33, 0x33, 0x33))
        .draw()?;
    chart.draw_series(histogram.bins.iter().enumerate().map(|(i, (_, count))| {
        let row = row_of(i);
        let count = u32::try_from(*count).unwrap_or(u32::MAX);
        let mut bar = Rectangle::new(
            [
                (0, SegmentValue::Exact(row)),
                (count, SegmentValue::Exact(row + 1)),
            ],
            BAR.filled(),
        );
        bar.set_margin(3, 3, 0, 0);
        bar
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stats::number_label;

    fn rect_widths(svg: &str) -> Vec<f64> {
        let colour = format!("#{:02X}{:02X}{:02X}", BAR.0, BAR.1, BAR.2);
        svg.match_indices("<rect ")
            .map(|(i, _)| &svg[i..i + svg[i..].find("/>").expect("rect end")])
            .filter(|tag| tag.contains(&format!("fill=\"{colour}\"")))
            .map(|tag| {
                let at = tag.find("width=\"").expect("width") + 7;
                tag[at..at + tag[at..].find('"').expect("quote")]
                    .parse()
                    .expect("a number")
            })
            .collect()
    }

    #[test]
    fn one_bar_per_bin_as_long_as_its_count() {
        let h = Histogram::new(
            [0.5, 1.5, 1.6, 2.5, 2.6, 2.7],
            &[0.0, 1.0, 2.0],
            number_label,
        );
        let svg = histogram_svg(&h, "Aspect ratio", "images").expect("svg");
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        let widths = rect_widths(&svg);
        assert_eq!(widths.len(), 3, "{svg}");
        // counts 1, 2, 3: widths in that ratio (within a pixel of rounding)
        assert!((widths[1] - 2.0 * widths[0]).abs() <= 2.0, "{widths:?}");
        assert!((widths[2] - 3.0 * widths[0]).abs() <= 2.0, "{widths:?}");
        for label in ["0 – 1", "1 – 2", "≥ 2", "Aspect ratio", "images"] {
            assert!(svg.contains(label), "{label} missing: {svg}");
        }
        assert_eq!(
            svg,
            histogram_svg(&h, "Aspect ratio", "images").expect("svg")
        );
    }

    #[test]
    fn an_empty_histogram_still_draws() {
        let none = Histogram { bins: vec![] };
        let svg = histogram_svg(&none, "Nothing", "images").expect("svg");
        assert!(svg.contains("Nothing"), "{svg}");
        let zeros = Histogram::new([], &[0.0, 1.0], number_label);
        assert!(histogram_svg(&zeros, "Zeros", "images").is_ok());
    }
}
