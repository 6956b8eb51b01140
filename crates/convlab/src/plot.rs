//! Charts as pictures: bars (top-5 guesses), lines (training curves) and a heat map
//! (confusion matrix). Each returns a [`Picture`] to pass to
//! [`show`](crate::display::show) or [`show_row`](crate::display::show_row).
//!
//! ```no_run
//! let p = convlab::plot::bars("top-5", &["tabby", "tiger cat"], &[0.6, 0.3])?;
//! convlab::display::show(&p)?;
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::display::{font_error, Picture};
use crate::error::{Error, Result};
use plotters::prelude::*;

const W: u32 = 640;
const H: u32 = 400;

fn render(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<()>,
) -> Result<Picture> {
    crate::display::load_font()?;
    let mut buf = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(|e| font_error(&e.to_string()))?;
    }
    let rgb = ::image::RgbImage::from_raw(width, height, buf).expect("buffer has w*h*3 bytes");
    Ok(Picture { rgb, title: None })
}

fn err<E: std::fmt::Display>(e: E) -> Error {
    font_error(&e.to_string())
}

/// A horizontal bar chart, one bar per label, first label on top.
///
/// ```
/// let p = convlab::plot::bars("scores", &["a", "b"], &[0.7, 0.2])?;
/// assert_eq!(p.rgb.dimensions(), (640, 60 + 40 * 2));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn bars(title: &str, labels: &[&str], values: &[f64]) -> Result<Picture> {
    if labels.len() != values.len() || labels.is_empty() {
        return Err(Error::Shape(format!(
            "bars needs one value per label, got {} labels and {} values",
            labels.len(),
            values.len()
        )));
    }
    let max = values.iter().cloned().fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let n = labels.len();
    render(W, 60 + 40 * n as u32, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(170)
            .build_cartesian_2d(0.0..max, (0..n - 1).into_segmented())
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if *i < n => labels[n - 1 - *i].to_string(),
                _ => String::new(),
            })
            .draw()
            .map_err(err)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let row = n - 1 - i;
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(row)),
                        (v, SegmentValue::Exact(row + 1)),
                    ],
                    BLUE.mix(0.7).filled(),
                );
                bar.set_margin(6, 6, 0, 0);
                bar
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// Line chart of named series of `(x, y)` points, with a legend.
///
/// ```
/// let loss = vec![(1.0, 2.0), (2.0, 1.5), (3.0, 1.2)];
/// let p = convlab::plot::lines("loss", "epoch", "loss", &[("train", loss)])?;
/// assert_eq!(p.rgb.dimensions(), (640, 400));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<Picture> {
    let points = series.iter().flat_map(|(_, s)| s.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        if !x.is_finite() || !y.is_finite() {
            return Err(Error::Value(format!(
                "lines got a non-finite point ({x}, {y})"
            )));
        }
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return Err(Error::Value("lines got no points to draw".into()));
    }
    if x1 - x0 < 1e-12 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    let pad = ((y1 - y0) * 0.1).max(1e-6);
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    render(W, H, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(err)?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let colour = palette[i % palette.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().cloned(), colour.stroke_width(2)))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// A heat map of a square matrix of counts with the numbers written in the cells, rows =
/// true class, columns = predicted class (a confusion matrix).
///
/// ```
/// let m = vec![vec![5, 1], vec![0, 4]];
/// let p = convlab::plot::confusion("confusion", &["cat", "dog"], &m)?;
/// assert!(p.rgb.width() > 100);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn confusion(title: &str, labels: &[&str], counts: &[Vec<u64>]) -> Result<Picture> {
    check_square(labels.len(), counts)?;
    render(W, W, |root| {
        let mut chart = confusion_axes(root, title, labels)?;
        let max = counts.iter().flatten().cloned().max().unwrap_or(0).max(1) as f64;
        let n = labels.len();
        for (r, row) in counts.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                draw_cell(&mut chart, (c, n - 1 - r), v, max)?;
            }
        }
        Ok(())
    })
}

/// The confusion matrix's axes: one segment per class on each, from 0 to n - 1.
type Classes = plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordusize>;
/// The confusion matrix's chart, predicted class across, true class up.
type Grid<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<Classes, Classes>>;

/// Fails unless `counts` is an `n`×`n` matrix (and `n` > 0), naming the shape it got.
fn check_square(n: usize, counts: &[Vec<u64>]) -> Result<()> {
    if n == 0 || counts.len() != n || counts.iter().any(|r| r.len() != n) {
        return Err(Error::Shape(format!(
            "confusion needs an {n}×{n} matrix for {n} labels, got {} rows of lengths {:?}",
            counts.len(),
            counts.iter().map(Vec::len).collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// The title, the axes and the class names of a confusion matrix; the first class is at
/// the top of the vertical axis (`flip`).
fn confusion_axes<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    title: &str,
    labels: &[&str],
) -> Result<Grid<'a, 'b>> {
    let n = labels.len();
    let name = |v: &SegmentValue<usize>, flip: bool| match v {
        SegmentValue::CenterOf(i) if *i < n => {
            labels[if flip { n - 1 - *i } else { *i }].to_string()
        }
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_desc("predicted")
        .y_desc("true")
        .x_label_formatter(&|v| name(v, false))
        .y_label_formatter(&|v| name(v, true))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// One cell at `(column, row from the bottom)`: a square shaded from white (0) to blue
/// (`max`), with the count written in its middle, white on the dark cells.
fn draw_cell(chart: &mut Grid<'_, '_>, (c, y): (usize, usize), v: u64, max: f64) -> Result<()> {
    let shade = 1.0 - v as f64 / max;
    let level = (255.0 * shade) as u8;
    let fill = RGBColor(level, level, 255);
    let cell = [
        (SegmentValue::Exact(c), SegmentValue::Exact(y)),
        (SegmentValue::Exact(c + 1), SegmentValue::Exact(y + 1)),
    ];
    chart
        .draw_series(std::iter::once(Rectangle::new(cell, fill.filled())))
        .map_err(err)?;
    let ink = if shade < 0.5 { WHITE } else { BLACK };
    let centred = plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Center,
    );
    let style = ("sans-serif", 14).into_font().color(&ink).pos(centred);
    chart
        .draw_series(std::iter::once(Text::new(
            v.to_string(),
            (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y)),
            style,
        )))
        .map_err(err)?;
    Ok(())
}
