//! vis_square: normalisation, grid layout and padding, as the seed's NumPy version.

use convlab::vis_square::vis_square;
use ndarray::{Array3, Array4};

#[test]
fn grey_tiles_on_a_square_grid() {
    // 5 tiles of 2×2, tile k filled with k: n = ceil(sqrt(5)) = 3, tiles of 2 + 1 padding.
    let data = Array3::from_shape_fn((5, 2, 2), |(k, _, _)| k as f32 * 10.0 + 5.0);
    let grid = vis_square(&data.view().into_dyn(), 1, -1.0).unwrap();
    assert_eq!(grid.shape(), &[9, 9]);
    // Normalised to 0–1: tile 0 → 0, tile 4 → 1, tile 2 → 0.5.
    assert_eq!(grid[[0, 0]], 0.0);
    assert_eq!(grid[[0, 3]], 0.25); // tile 1, first row
    assert_eq!(grid[[3, 3]], 1.0); // tile 4 is row 1, column 1
    assert_eq!(grid[[1, 7]], 0.5); // tile 2 at row 0, column 2
                                   // Padding after each tile and the 4 empty places keep padval.
    assert_eq!(grid[[2, 0]], -1.0);
    assert_eq!(grid[[0, 2]], -1.0);
    assert_eq!(grid[[6, 6]], -1.0); // place 8 is empty
    assert_eq!(grid[[3, 6]], -1.0); // place 5 is empty
}

#[test]
fn colour_tiles_keep_their_channels() {
    let data = Array4::from_shape_fn((4, 3, 3, 3), |(k, _, _, c)| (k * 3 + c) as f32);
    let grid = vis_square(&data.view().into_dyn(), 0, 0.0).unwrap();
    assert_eq!(grid.shape(), &[6, 6, 3]);
    let max = 11.0;
    assert_eq!(grid[[0, 0, 2]], 2.0 / max);
    assert_eq!(grid[[5, 5, 1]], 10.0 / max); // tile 3, channel 1
}

#[test]
fn wrong_layout_is_explained() {
    let data = Array4::<f32>::zeros((64, 3, 3, 3 + 1));
    let e = vis_square(&data.view().into_dyn(), 1, 0.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("N×H×W×3") && e.contains("[64, 3, 3, 4]"), "{e}");
}
