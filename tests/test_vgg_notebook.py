"""Runs notebooks/02-vgg16.ipynb headless with the rust kernel, with and without weights.

The real weights cannot be downloaded here, so the "with weights" run uses random
VGG-16-shaped weights written by `convlab make-test-weights` (the notebook then says its
predictions are meaningless): every cell runs for real on them.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import nbrun  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "02-vgg16.ipynb"
# Cells that show one picture when weights are loaded (by cell id).
PICTURE_CELLS = ["show-cat", "output-plot", "top5-chart", "filters-grid", "brown-filter",
                 "act-conv1", "act-conv2", "act-conv8", "act-last"]


def cells_by_id(nb) -> dict:
    return {c.get("id"): c for c in nb.cells}


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def run_notebook(weights: Path, monkeypatch) -> nbrun.Result:
    monkeypatch.setenv("CONVLAB_VGG_WEIGHTS", str(weights))
    res = nbrun.execute(NOTEBOOK, timeout=1200)
    assert res.ok, "\n".join(str(p) for p in res.problems)
    return res


def test_notebook_runs_with_weights(vgg_test_weights, monkeypatch):
    res = run_notebook(vgg_test_weights, monkeypatch)
    cells = cells_by_id(res.notebook)
    for cell_id in PICTURE_CELLS:
        pngs = nbrun.png_outputs(cells[cell_id])
        assert len(pngs) == 1, f"cell {cell_id} should show one picture, showed {len(pngs)}"
        assert pngs[0].startswith(b"\x89PNG"), cell_id
    assert "138,357,544" in text_of(cells["vgg-summary"])
    load = text_of(cells["load-weights"])
    assert "loaded 32 tensors (138,357,544 weights)" in load, load
    assert "RANDOM TEST WEIGHTS" in load, load
    assert "meaningless" in text_of(cells["top5-chart"])
    assert "closest to the brown filter: filter" in text_of(cells["brown-filter"])
    # Every autograder test cell passed and said so.
    graded = [c for c in res.notebook.cells if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    assert len(graded) == 4
    for c in graded:
        assert "✓" in text_of(c), c.source[:80]


def test_notebook_runs_without_weights(tmp_path, monkeypatch):
    res = run_notebook(tmp_path / "absent.safetensors", monkeypatch)
    cells = cells_by_id(res.notebook)
    load = text_of(cells["load-weights"])
    assert "No VGG-16 weights at" in load and "fetch-weights" in load, load
    assert len(nbrun.png_outputs(cells["show-cat"])) == 1
    for cell_id in PICTURE_CELLS[1:]:
        assert nbrun.png_outputs(cells[cell_id]) == [], cell_id
        assert "skipped" in text_of(cells[cell_id]), cell_id
