"""Notebook 1 (LA1–LA4) executes headless on the Rust kernel: no error, no panic, and the
pictures a student should see are there, as PNGs of the right size."""
import re

import pytest

import nbrun
from conftest import ROOT, png_size

NOTEBOOK = ROOT / "notebooks" / "01-convolutions.ipynb"
H, W = 606, 517  # the portrait


@pytest.fixture(scope="module")
def executed():
    return nbrun.execute(NOTEBOOK, timeout=900)


def cells_calling(res, pattern):
    return [c for c in res.notebook.cells if c.cell_type == "code" and re.search(pattern, c.source)]


def text_of(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_runs_clean(executed):
    assert executed.ok, "\n".join(str(p) for p in executed.problems)


def test_every_show_cell_has_one_png(executed):
    showing = cells_calling(executed, r"\bshow(_row|_titled)?\(")
    assert len(showing) >= 9
    for cell in showing:
        pngs = nbrun.png_outputs(cell)
        assert len(pngs) == 1, f"{cell.source[:80]!r} shows {len(pngs)} pictures"


def test_picture_sizes(executed):
    (portrait,) = nbrun.png_outputs(cells_calling(executed, r"^// View the image")[0])
    assert png_size(portrait) == (W, H)
    # A 200×200 region is drawn at twice its size (small pictures are enlarged to ≥ 240 px).
    (region,) = nbrun.png_outputs(cells_calling(executed, r"^// View a region")[0])
    assert png_size(region) == (400, 400)
    # Portrait beside its 3×3-filtered version (604×515), titles above: 28 px band, 12 px gap.
    (row,) = nbrun.png_outputs(cells_calling(executed, r"^// Then apply it onto the image")[0])
    assert png_size(row) == (W + 12 + (W - 2), H + 28)


def test_pixel_table_and_sizes_printed(executed):
    size = text_of(cells_calling(executed, r"^// Load the grace_hopper")[0])
    assert f"{H} rows × {W} columns" in size
    table = text_of(cells_calling(executed, r"^// Print the pixel values")[0])
    assert len(table.strip().splitlines()) == 9  # header + 8 rows


def test_fast_and_naive_agree(executed):
    out = text_of(cells_calling(executed, r"convolve_fast\(&image, &filter\)")[0])
    diff = float(re.search(r"largest difference: ([0-9.e+-]+)", out).group(1))
    assert diff < 1e-3


def test_bad_input_cell_explains_each_error(executed):
    out = text_of(cells_calling(executed, r"let tiny = ")[0])
    lines = [l for l in out.splitlines() if l.startswith("error:")]
    assert len(lines) == 3, out
    assert "3×3 filter is larger than the 2×2 image" in lines[0]
    assert "3 colour channels but the filter has 4" in lines[1]
    assert "no_such_picture.jpg" in lines[2]


def test_graded_cells_pass(executed):
    for cell in executed.notebook.cells:
        if cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            assert "✓" in text_of(cell), cell.source[:80]
