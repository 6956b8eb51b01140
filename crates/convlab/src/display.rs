//! Showing arrays as pictures, inline in the notebook.
//!
//! Inside the evcxr Jupyter kernel, [`show`] prints the picture as a PNG between evcxr's
//! `EVCXR_BEGIN_CONTENT image/png` and `EVCXR_END_CONTENT` markers, and JupyterLab draws it
//! under the cell. Outside a notebook (tests, scripts), set `CONVLAB_DISPLAY_DIR` to a folder
//! and every shown picture is also written there as `0001.png`, `0002.png`, …; or call
//! [`Picture::png`] yourself.
//!
//! Grey arrays are scaled min–max to black–white, like matplotlib's `imshow` with the `gray`
//! colour map. Colour arrays `(H, W, 3)` are read as 0–255 values, or as 0–1 values when
//! none exceeds 1 (the output of [`vis_square`](crate::vis_square::vis_square)).
//!
//! Only one picture per cell survives in Jupyter, so put several side by side with
//! [`show_row`]:
//!
//! ```no_run
//! use convlab::display::{show_row, Picture};
//! let grey = convlab::image::load_grey("data/grace_hopper.jpg")?;
//! let edges = convlab::conv::convolve_fast(&grey, &convlab::filters::horizontal_edge())?;
//! show_row(&[Picture::new(&grey)?.titled("portrait"), Picture::new(&edges)?.titled("edges")])?;
//! # Ok::<(), convlab::Error>(())
//! ```

use crate::error::{Error, Result};
use base64::Engine;
use ndarray::{ArrayBase, ArrayView2, Data, Ix2, Ix3};
use plotters::prelude::*;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Pictures smaller than this on their longer side are enlarged (nearest neighbour) so
/// that a 10×10 crop is visible, as matplotlib stretches it to the figure.
const MIN_SIDE: u32 = 240;
const TITLE_BAND: u32 = 28;
const GAP: u32 = 12;

/// An RGB picture ready to be shown, with an optional title.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The pixels, 8-bit RGB.
    pub rgb: ::image::RgbImage,
    /// Drawn above the picture when present.
    pub title: Option<String>,
}

/// Arrays that can become a [`Picture`]: grey `(H, W)` and colour `(H, W, 3)` `f32` arrays,
/// owned or views.
pub trait ToPicture {
    /// Converts to 8-bit RGB, scaling as described in the [module docs](self).
    fn to_picture(&self) -> Result<Picture>;
}

fn check_finite<'a>(values: impl Iterator<Item = &'a f32>, shape: &[usize]) -> Result<()> {
    for v in values {
        if !v.is_finite() {
            return Err(Error::Value(format!(
                "cannot show a {:?} array holding {v}: replace NaN and infinite values first",
                shape
            )));
        }
    }
    Ok(())
}

fn check_size(shape: &[usize]) -> Result<()> {
    if shape.contains(&0) {
        return Err(Error::Value(format!(
            "cannot show an empty array of shape {shape:?}"
        )));
    }
    Ok(())
}

impl<S: Data<Elem = f32>> ToPicture for ArrayBase<S, Ix2> {
    fn to_picture(&self) -> Result<Picture> {
        check_size(self.shape())?;
        check_finite(self.iter(), self.shape())?;
        let (lo, hi) = self
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (h, w) = self.dim();
        let rgb = ::image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let v = ((self[[y as usize, x as usize]] - lo) / span * 255.0).round() as u8;
            ::image::Rgb([v, v, v])
        });
        Ok(Picture { rgb, title: None })
    }
}

impl<S: Data<Elem = f32>> ToPicture for ArrayBase<S, Ix3> {
    fn to_picture(&self) -> Result<Picture> {
        check_size(self.shape())?;
        let (h, w, c) = self.dim();
        if c != 3 {
            return Err(Error::Shape(format!(
                "a colour picture has 3 channels last (H×W×3), got {h}×{w}×{c}; show one channel with .index_axis(Axis(2), k)"
            )));
        }
        check_finite(self.iter(), self.shape())?;
        let unit = self.iter().all(|&v| v <= 1.0);
        let scale = if unit { 255.0 } else { 1.0 };
        let rgb = ::image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let px = |k: usize| {
                (self[[y as usize, x as usize, k]] * scale)
                    .round()
                    .clamp(0.0, 255.0) as u8
            };
            ::image::Rgb([px(0), px(1), px(2)])
        });
        Ok(Picture { rgb, title: None })
    }
}

impl ToPicture for Picture {
    fn to_picture(&self) -> Result<Picture> {
        Ok(self.clone())
    }
}

impl Picture {
    /// Makes a picture from a grey or colour array.
    ///
    /// ```
    /// let p = convlab::display::Picture::new(&ndarray::Array2::<f32>::eye(4))?;
    /// assert_eq!(p.rgb.dimensions(), (4, 4));
    /// assert_eq!(p.rgb.get_pixel(0, 0).0, [255, 255, 255]);
    /// # Ok::<(), convlab::Error>(())
    /// ```
    pub fn new(array: &impl ToPicture) -> Result<Picture> {
        array.to_picture()
    }

    /// Sets the title drawn above the picture.
    pub fn titled(mut self, title: impl Into<String>) -> Picture {
        self.title = Some(title.into());
        self
    }

    /// The picture as PNG bytes (enlarged when small, title drawn above it).
    ///
    /// ```
    /// let p = convlab::display::Picture::new(&ndarray::Array2::<f32>::zeros((300, 400)))?;
    /// let png = p.png()?;
    /// let back = image::load_from_memory(&png).unwrap();
    /// assert_eq!((back.width(), back.height()), (400, 300));
    /// # Ok::<(), convlab::Error>(())
    /// ```
    pub fn png(&self) -> Result<Vec<u8>> {
        compose(std::slice::from_ref(self))
    }

    /// Writes the PNG to `path`.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.png()?).map_err(|e| Error::io(path, e))
    }

    /// The picture enlarged (nearest neighbour, each pixel a sharp square) by the smallest
    /// whole factor that makes its longer side at least `side`; unchanged when it already is.
    ///
    /// ```
    /// let p = convlab::display::Picture::new(&ndarray::Array2::<f32>::eye(30))?;
    /// assert_eq!(p.clone().enlarged_to(100).rgb.dimensions(), (120, 120));
    /// assert_eq!(p.enlarged_to(20).rgb.dimensions(), (30, 30));
    /// # Ok::<(), convlab::Error>(())
    /// ```
    pub fn enlarged_to(self, side: u32) -> Picture {
        let (w, h) = self.rgb.dimensions();
        let k = side.div_ceil(w.max(h).max(1));
        if k <= 1 {
            return self;
        }
        let rgb = ::image::imageops::resize(
            &self.rgb,
            w * k,
            h * k,
            ::image::imageops::FilterType::Nearest,
        );
        Picture { rgb, ..self }
    }

    /// The picture shrunk (area average) so that its longer side is at most `side`;
    /// unchanged when it already is.
    ///
    /// ```
    /// let p = convlab::display::Picture::new(&ndarray::Array2::<f32>::zeros((300, 600)))?;
    /// assert_eq!(p.shrunk_to(200).rgb.dimensions(), (200, 100));
    /// # Ok::<(), convlab::Error>(())
    /// ```
    pub fn shrunk_to(self, side: u32) -> Picture {
        let (w, h) = self.rgb.dimensions();
        if w.max(h) <= side {
            return self;
        }
        let scale = side as f64 / w.max(h) as f64;
        let (nw, nh) = (
            ((w as f64 * scale).round() as u32).max(1),
            ((h as f64 * scale).round() as u32).max(1),
        );
        let rgb =
            ::image::imageops::resize(&self.rgb, nw, nh, ::image::imageops::FilterType::Triangle);
        Picture { rgb, ..self }
    }
}

/// Lays pictures out in a row, titles above, on a white background.
fn compose_row(pictures: &[Picture]) -> Result<::image::RgbImage> {
    if pictures.is_empty() {
        return Err(Error::Value(
            "nothing to show: the list of pictures is empty".into(),
        ));
    }
    let tiles: Vec<::image::RgbImage> = pictures
        .iter()
        .map(|p| p.clone().enlarged_to(MIN_SIDE).rgb)
        .collect();
    let titled = pictures.iter().any(|p| p.title.is_some());
    let band = if titled { TITLE_BAND } else { 0 };
    let width = tiles.iter().map(|t| t.width()).sum::<u32>() + GAP * (tiles.len() as u32 - 1);
    let height = tiles.iter().map(|t| t.height()).max().unwrap_or(1) + band;
    let mut canvas = ::image::RgbImage::from_pixel(width, height, ::image::Rgb([255, 255, 255]));
    let mut x = 0;
    let mut title_spots = Vec::new();
    for (tile, pic) in tiles.iter().zip(pictures) {
        ::image::imageops::replace(&mut canvas, tile, i64::from(x), i64::from(band));
        if let Some(t) = &pic.title {
            title_spots.push((t.clone(), x + tile.width() / 2));
        }
        x += tile.width() + GAP;
    }
    if !title_spots.is_empty() {
        draw_titles(&mut canvas, &title_spots)?;
    }
    Ok(canvas)
}

/// PNG bytes of a picture.
fn encode_png(rgb: ::image::RgbImage) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    ::image::DynamicImage::ImageRgb8(rgb)
        .write_to(
            &mut std::io::Cursor::new(&mut png),
            ::image::ImageFormat::Png,
        )
        .map_err(|e| Error::Value(format!("PNG encoding failed: {e}")))?;
    Ok(png)
}

/// Lays pictures out in a row, titles above, on a white background; returns PNG bytes.
fn compose(pictures: &[Picture]) -> Result<Vec<u8>> {
    encode_png(compose_row(pictures)?)
}

/// Lays pictures out on a grid, `per_row` to a row, titles above each: one picture to show
/// (rows as [`show_row`] lays them out, stacked).
///
/// ```
/// use convlab::display::{grid, Picture};
/// let a = Picture::new(&ndarray::Array2::<f32>::zeros((300, 200)))?;
/// let g = grid(&[a.clone(), a.clone(), a], 2)?;
/// assert_eq!(g.rgb.dimensions(), (200 + 12 + 200, 300 + 12 + 300));
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn grid(pictures: &[Picture], per_row: usize) -> Result<Picture> {
    if pictures.is_empty() || per_row == 0 {
        return Err(Error::Value(
            "a grid needs at least one picture and one column".into(),
        ));
    }
    let rows = pictures
        .chunks(per_row)
        .map(compose_row)
        .collect::<Result<Vec<_>>>()?;
    let width = rows.iter().map(|r| r.width()).max().unwrap_or(1);
    let height = rows.iter().map(|r| r.height()).sum::<u32>() + GAP * (rows.len() as u32 - 1);
    let mut canvas = ::image::RgbImage::from_pixel(width, height, ::image::Rgb([255, 255, 255]));
    let mut y = 0;
    for row in &rows {
        ::image::imageops::replace(&mut canvas, row, 0, i64::from(y));
        y += row.height() + GAP;
    }
    Ok(Picture {
        rgb: canvas,
        title: None,
    })
}

fn draw_titles(canvas: &mut ::image::RgbImage, spots: &[(String, u32)]) -> Result<()> {
    load_font()?;
    let (w, h) = canvas.dimensions();
    let root = BitMapBackend::with_buffer(canvas.as_mut(), (w, h)).into_drawing_area();
    let style = TextStyle::from(("sans-serif", 18).into_font())
        .color(&BLACK)
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
    for (text, cx) in spots {
        root.draw_text(text, &style, (*cx as i32, 5))
            .map_err(|e| font_error(&e.to_string()))?;
    }
    root.present().map_err(|e| font_error(&e.to_string()))?;
    Ok(())
}

pub(crate) fn font_error(detail: &str) -> Error {
    Error::Value(format!("could not draw text ({detail})"))
}

/// Where the font of titles and charts is looked for, after `CONVLAB_FONT`: DejaVu Sans as
/// Debian/Ubuntu, Fedora and Arch install it, then Arial on macOS.
const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Registers the font that titles and charts draw with as plotters' "sans-serif": the
/// TrueType file named by `CONVLAB_FONT`, else the first of [`FONT_FILES`] that exists. It
/// is read once per process. Plotters renders it itself (`ab_glyph`), so drawing text needs
/// no fontconfig or freetype.
pub(crate) fn load_font() -> Result<()> {
    static LOADED: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    let found = LOADED.get_or_init(|| {
        let path = match std::env::var_os("CONVLAB_FONT") {
            Some(p) => std::path::PathBuf::from(p),
            None => FONT_FILES
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.exists())
                .ok_or_else(|| {
                    "no font found for titles and charts: install DejaVu Sans (Debian: apt-get install fonts-dejavu-core) or set CONVLAB_FONT to a .ttf file".to_string()
                })?,
        };
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("{}: {e} (the font for titles and charts, CONVLAB_FONT)", path.display()))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a TrueType font", path.display()))
    });
    found.clone().map_err(Error::Value)
}

static SHOWN: AtomicUsize = AtomicUsize::new(0);

/// Sends PNG bytes to the notebook (inside evcxr) and to `CONVLAB_DISPLAY_DIR` when set.
pub fn emit_png(png: &[u8]) -> Result<()> {
    let n = SHOWN.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(dir) = std::env::var_os("CONVLAB_DISPLAY_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join(format!("{n:04}.png"));
        std::fs::write(&path, png).map_err(|e| Error::io(&path, e))?;
    }
    if std::env::var_os("EVCXR_IS_RUNTIME").is_some() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "EVCXR_BEGIN_CONTENT image/png\n{b64}\nEVCXR_END_CONTENT"
        );
        let _ = out.flush();
    }
    Ok(())
}

/// Shows one grey or colour array inline.
///
/// ```no_run
/// let grey = convlab::image::load_grey("data/grace_hopper.jpg")?;
/// convlab::display::show(&grey)?;
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn show(array: &impl ToPicture) -> Result<()> {
    emit_png(&array.to_picture()?.png()?)
}

/// Shows one array with a title above it.
pub fn show_titled(title: &str, array: &impl ToPicture) -> Result<()> {
    emit_png(&array.to_picture()?.titled(title).png()?)
}

/// Shows several pictures side by side, each with its title, as one PNG.
pub fn show_row(pictures: &[Picture]) -> Result<()> {
    emit_png(&compose(pictures)?)
}

/// The PNG that [`show_row`] would show, for tests and files.
///
/// ```
/// use convlab::display::{row_png, Picture};
/// let a = Picture::new(&ndarray::Array2::<f32>::zeros((300, 200)))?;
/// let png = row_png(&[a.clone(), a])?;
/// let back = image::load_from_memory(&png).unwrap();
/// assert_eq!(back.width(), 200 + 12 + 200);
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn row_png(pictures: &[Picture]) -> Result<Vec<u8>> {
    compose(pictures)
}

/// Formats a region of pixel values as an aligned table, one row per line, with row and
/// column numbers, like printing a NumPy slice.
///
/// ```
/// use ndarray::array;
/// let a = array![[0.0f32, 255.0], [12.5, 3.0]];
/// let t = convlab::display::region_table(&a.view(), 10, 20);
/// assert!(t.contains("255.0"));
/// assert!(t.lines().count() == 3);
/// ```
pub fn region_table(region: &ArrayView2<f32>, first_row: usize, first_col: usize) -> String {
    let cells: Vec<Vec<String>> = region
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|v| format!("{v:.1}")).collect())
        .collect();
    let width = cells
        .iter()
        .flatten()
        .map(|s| s.len())
        .max()
        .unwrap_or(1)
        .max(format!("{}", first_col + region.ncols()).len());
    let label = format!("{}", first_row + region.nrows()).len();
    let mut out = format!("{:>label$} |", "");
    for c in 0..region.ncols() {
        out += &format!(" {:>width$}", first_col + c);
    }
    out.push('\n');
    for (r, row) in cells.iter().enumerate() {
        out += &format!("{:>label$} |", first_row + r);
        for v in row {
            out += &format!(" {v:>width$}");
        }
        out.push('\n');
    }
    out
}

/// Prints `image[rows, cols]` as a table (see [`region_table`]).
///
/// ```
/// let grey = ndarray::Array2::<f32>::zeros((20, 20));
/// convlab::display::print_region(&grey, 0..5, 0..5)?;
/// # Ok::<(), convlab::Error>(())
/// ```
pub fn print_region<S: Data<Elem = f32>>(
    image: &ArrayBase<S, Ix2>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Result<()> {
    let (h, w) = image.dim();
    if rows.end > h || cols.end > w || rows.is_empty() || cols.is_empty() {
        return Err(Error::Shape(format!(
            "the region rows {rows:?}, columns {cols:?} is not inside the {h}×{w} image"
        )));
    }
    let region = image.slice(ndarray::s![rows.clone(), cols.clone()]);
    print!("{}", region_table(&region, rows.start, cols.start));
    Ok(())
}
