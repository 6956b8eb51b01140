"""Runs notebooks/03-cifar10.ipynb headless with the rust kernel, in quick mode, on small
synthetic CIFAR-10 batches written in the official binary format by `convlab make-test-cifar`
(the real data set cannot be downloaded here). Every cell runs for real: loading, the model,
the exercises and their tests, augmentation, training with checkpoints, curves, confusion
matrix and predictions.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import nbrun  # noqa: E402
from conftest import CIFAR_PER_BATCH  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "03-cifar10.ipynb"
PICTURE_CELLS = ["class-samples", "augment-samples", "curves", "confusion", "predictions"]


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_notebook_runs_on_test_batches(cifar_test_batches, tmp_path, monkeypatch):
    data = cifar_test_batches
    checkpoints = tmp_path / "checkpoints"
    monkeypatch.setenv("CONVLAB_CIFAR_DIR", str(data))
    monkeypatch.setenv("CONVLAB_CHECKPOINT_DIR", str(checkpoints))
    monkeypatch.setenv("CONVLAB_DEVICE", "cpu")

    res = nbrun.execute(NOTEBOOK, timeout=900)
    assert res.ok, "\n".join(str(p) for p in res.problems)
    cells = {c.get("id"): c for c in res.notebook.cells}

    for cell_id in PICTURE_CELLS:
        pngs = nbrun.png_outputs(cells[cell_id])
        assert len(pngs) == 1, f"cell {cell_id} should show one picture, showed {len(pngs)}"
        assert pngs[0].startswith(b"\x89PNG"), cell_id

    load = text_of(cells["load-data"])
    assert "training pictures (1000, 3, 32, 32), test pictures (200, 3, 32, 32)" in load, load
    assert "NOTE: Synthetic test batches" in load, load
    assert "total weights: 1,250,858" in text_of(cells["model-summary"])

    # One line per epoch, as it trains, and a checkpoint after each.
    train = text_of(cells["train"])
    for epoch in (1, 2, 3):
        assert f"epoch  {epoch}/3  loss" in train, train
    assert "img/s" in train and "left" in train, train
    progress = (checkpoints / "cifar10-quick" / "progress.txt").read_text()
    assert progress.count("\nepoch ") == 3, progress
    assert f"iterations {3 * ((5 * CIFAR_PER_BATCH + 31) // 32)}" in progress, progress
    assert (checkpoints / "cifar10-quick" / "model.safetensors").stat().st_size > 4 * 1_250_858

    assert "test accuracy:" in text_of(cells["confusion"])

    # Every autograder test cell passed and said so.
    graded = [c for c in res.notebook.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    assert len(graded) == 4
    for c in graded:
        assert "✓" in text_of(c), c.source[:80]
