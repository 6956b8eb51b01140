//! Loading pictures, and the errors for files that are missing, not pictures, or truncated.

use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlab-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A 40×30 JPEG with a red left half and a blue right half.
fn write_jpeg(path: &PathBuf) -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 30, |x, _| {
        if x < 20 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    img.save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn grey_and_colour_shapes_and_values() {
    let path = tmp("halves.jpg");
    write_jpeg(&path);
    let rgb = convlab::image::load_colour(&path).unwrap();
    assert_eq!(rgb.dim(), (30, 40, 3));
    assert!(rgb[[15, 5, 0]] > 230.0 && rgb[[15, 5, 2]] < 30.0);
    let grey = convlab::image::load_grey(&path).unwrap();
    assert_eq!(grey.dim(), (30, 40));
    // red → 0.299·255 ≈ 76, blue → 0.114·255 ≈ 29 (JPEG blurs a little)
    assert!((grey[[15, 5]] - 76.2).abs() < 8.0, "{}", grey[[15, 5]]);
    assert!((grey[[15, 35]] - 29.1).abs() < 8.0, "{}", grey[[15, 35]]);
}

#[test]
fn missing_file_names_the_file() {
    let e = convlab::image::load_grey("no/such/picture.jpg")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no/such/picture.jpg") && e.contains("No such file"),
        "{e}"
    );
}

#[test]
fn a_file_that_is_not_a_picture() {
    let path = tmp("notes.jpg");
    std::fs::write(&path, "these are my notes, not a picture").unwrap();
    let e = convlab::image::load_colour(&path).unwrap_err().to_string();
    assert!(
        e.contains("notes.jpg") && e.contains("not a readable image"),
        "{e}"
    );
    let empty = tmp("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let e = convlab::image::load_colour(&empty).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn truncated_jpeg_and_png_are_errors() {
    let path = tmp("cut.jpg");
    let bytes = write_jpeg(&path);
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = convlab::image::load_grey(&path).unwrap_err().to_string();
    assert!(e.contains("cut.jpg") && e.contains("truncated"), "{e}");

    let png = tmp("cut.png");
    image::RgbImage::from_pixel(50, 50, image::Rgb([1, 2, 3]))
        .save_with_format(&png, image::ImageFormat::Png)
        .unwrap();
    let bytes = std::fs::read(&png).unwrap();
    std::fs::write(&png, &bytes[..bytes.len() - 20]).unwrap();
    let e = convlab::image::load_colour(&png).unwrap_err().to_string();
    assert!(
        e.contains("cut.png") && e.contains("not a readable image"),
        "{e}"
    );
}

#[test]
fn resize_to_224() {
    let rgb = ndarray::Array3::from_shape_fn((60, 90, 3), |(_, _, c)| 50.0 * c as f32);
    let out = convlab::image::resize(&rgb.view(), 224, 224).unwrap();
    assert_eq!(out.dim(), (224, 224, 3));
    assert_eq!(out[[100, 100, 2]], 100.0);
    let grey = ndarray::Array3::<f32>::zeros((10, 10, 1));
    assert!(convlab::image::resize(&grey.view(), 224, 224).is_err());
}
