//! What a student sees: the PNG decodes to the right size and pixel values.

use convlab::display::{row_png, Picture};
use ndarray::{Array2, Array3};

fn decode(png: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a valid PNG")
        .to_rgb8()
}

#[test]
fn grey_is_scaled_min_max_like_imshow() {
    // Values 50..=250 in a 300×256 ramp: 50 → black, 250 → white.
    let a = Array2::from_shape_fn((256, 300), |(_, c)| 50.0 + 200.0 * c as f32 / 299.0);
    let img = decode(&Picture::new(&a).unwrap().png().unwrap());
    assert_eq!(img.dimensions(), (300, 256));
    assert_eq!(img.get_pixel(0, 10).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(299, 10).0, [255, 255, 255]);
    let mid = img.get_pixel(150, 10).0[0];
    assert!((126..=129).contains(&mid), "{mid}");
}

#[test]
fn colour_is_read_as_0_to_255_or_0_to_1() {
    let mut a = Array3::<f32>::zeros((250, 260, 3));
    a.slice_mut(ndarray::s![.., .., 0]).fill(200.0);
    a[[0, 0, 2]] = 300.0; // clipped
    let img = decode(&Picture::new(&a).unwrap().png().unwrap());
    assert_eq!(img.get_pixel(5, 5).0, [200, 0, 0]);
    assert_eq!(img.get_pixel(0, 0).0, [200, 0, 255]);

    let unit = Array3::<f32>::from_elem((250, 260, 3), 0.5);
    let img = decode(&Picture::new(&unit).unwrap().png().unwrap());
    assert_eq!(img.get_pixel(3, 3).0, [128, 128, 128]);
}

#[test]
fn small_pictures_are_enlarged_with_crisp_pixels() {
    let a = Array2::from_shape_fn((8, 8), |(r, c)| ((r + c) % 2) as f32);
    let img = decode(&Picture::new(&a).unwrap().png().unwrap());
    assert_eq!(img.dimensions(), (240, 240)); // 8 × 30
    assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(29, 29).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(30, 0).0, [255, 255, 255]);
}

#[test]
fn a_row_with_titles_has_a_title_band_with_ink() {
    let a = Picture::new(&Array2::<f32>::zeros((300, 250)))
        .unwrap()
        .titled("left");
    let b = Picture::new(&Array2::<f32>::zeros((280, 300)))
        .unwrap()
        .titled("right");
    let img = decode(&row_png(&[a, b]).unwrap());
    assert_eq!(img.dimensions(), (250 + 12 + 300, 300 + 28));
    let band_ink = (0..img.width())
        .flat_map(|x| (0..28).map(move |y| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 128)
        .count();
    assert!(
        band_ink > 30,
        "the titles should draw dark pixels, found {band_ink}"
    );
    // The pictures sit below the band; the gap between them stays white.
    assert_eq!(img.get_pixel(10, 40).0, [0, 0, 0]);
    assert_eq!(img.get_pixel(255, 40).0, [255, 255, 255]);
}

#[test]
fn bad_arrays_are_refused_with_a_reason() {
    let e = Picture::new(&Array2::<f32>::zeros((0, 3)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    let mut nan = Array2::<f32>::zeros((3, 3));
    nan[[1, 1]] = f32::NAN;
    assert!(Picture::new(&nan).unwrap_err().to_string().contains("NaN"));
    let e = Picture::new(&Array3::<f32>::zeros((4, 4, 2)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("4×4×2"), "{e}");
}

#[test]
fn show_writes_numbered_pngs_to_the_display_dir() {
    let dir = std::env::temp_dir().join(format!("convlab-display-{}", std::process::id()));
    std::env::set_var("CONVLAB_DISPLAY_DIR", &dir);
    convlab::display::show(&Array2::<f32>::eye(300)).unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let img = decode(&std::fs::read(&files[0]).unwrap());
    assert_eq!(img.dimensions(), (300, 300));
    assert_eq!(img.get_pixel(7, 7).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(8, 7).0, [0, 0, 0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn region_table_prints_the_values() {
    let a = Array2::from_shape_fn((10, 10), |(r, c)| (r * 10 + c) as f32);
    let t = convlab::display::region_table(&a.slice(ndarray::s![2..4, 5..8]), 2, 5);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].contains('5') && lines[0].contains('7'));
    assert!(
        lines[1].starts_with('2') && lines[1].ends_with("27.0"),
        "{t}"
    );
    assert!(convlab::display::print_region(&a, 5..12, 0..2).is_err());
}
