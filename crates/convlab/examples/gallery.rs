//! Writes what the notebooks show into a folder, to look at without Jupyter:
//! `cargo run -p convlab --example gallery -- build/gallery`.

use convlab::display::Picture;
use convlab::prelude::*;

fn main() -> convlab::Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("build/gallery".into()));
    std::fs::create_dir_all(&out).map_err(|e| convlab::Error::Value(e.to_string()))?;
    let portrait = convlab::data::ensure("grace_hopper.jpg")?;
    let grey = load_grey(&portrait)?;
    let colour = load_colour(&portrait)?;
    let edges = convlab::conv::convolve_fast(&grey, &filters::horizontal_edge())?;
    let outline = convlab::conv::convolve_fast(&grey, &filters::outline())?;
    let brown = convlab::conv::convolve_fast(&colour, &filters::brown())?;
    let write = |name: &str, png: Vec<u8>| {
        std::fs::write(out.join(name), png).map_err(|e| convlab::Error::Value(e.to_string()))
    };
    write(
        "row.png",
        convlab::display::row_png(&[
            Picture::new(&colour)?.titled("portrait"),
            Picture::new(&outline)?.titled("outline"),
            Picture::new(&edges)?.titled("horizontal edges"),
            Picture::new(&brown)?.titled("brown"),
        ])?,
    )?;
    write(
        "region.png",
        Picture::new(&grey.slice(s![0..8, 0..8]))?.png()?,
    )?;
    write(
        "bars.png",
        convlab::plot::bars(
            "top-5",
            &[
                "tabby",
                "tiger cat",
                "Egyptian cat",
                "lynx",
                "remote control",
            ],
            &[0.41, 0.3, 0.2, 0.05, 0.01],
        )?
        .png()?,
    )?;
    let a: Vec<(f64, f64)> = (1..=10).map(|e| (e as f64, 2.0 / e as f64)).collect();
    let b: Vec<(f64, f64)> = (1..=10).map(|e| (e as f64, 2.2 / e as f64 + 0.1)).collect();
    write(
        "lines.png",
        convlab::plot::lines("loss", "epoch", "loss", &[("train", a), ("test", b)])?.png()?,
    )?;
    let m: Vec<Vec<u64>> = (0..10)
        .map(|r| {
            (0..10)
                .map(|c| if r == c { 80 } else { (r * c % 7) as u64 })
                .collect()
        })
        .collect();
    let labels = convlab::cifar::CLASSES;
    write(
        "confusion.png",
        convlab::plot::confusion("confusion matrix", &labels, &m)?.png()?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
