"""Shared helpers of the grading tests: build fixture submissions from answer notebooks."""
from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import nbgrade  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def kernel_ready() -> None:
    """Fails (or, with CONVLAB_SKIP_KERNEL_TESTS=1, skips) when the rust kernel is missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "rust" in KernelSpecManager().find_kernel_specs():
        return
    msg = "the `rust` Jupyter kernel is not installed: run `make setup`"
    if os.environ.get("CONVLAB_SKIP_KERNEL_TESTS") == "1":
        pytest.skip(msg)
    pytest.fail(msg)


def build_base() -> Path:
    """The prewarmed evcxr folder the tests grade with (each worker gets a copy of it)."""
    default = nbgrade.CACHE / "evcxr-tmp-grade"
    return Path(os.environ.get("NBGRADE_BUILD_BASE", default))


def cell_by_id(nb, gid: str):
    for cell in nb.cells:
        if nbgrade.grade_id(cell) == gid:
            return cell
    raise KeyError(f"no cell with grade_id {gid!r}; the fixture needs updating")


def edit(nb, gid: str, old: str, new: str):
    """A copy of `nb` with `old` replaced by `new` in the cell `gid` (which must contain it)."""
    nb = copy.deepcopy(nb)
    cell = cell_by_id(nb, gid)
    assert old in cell.source, f"{old!r} not in cell {gid!r}; the fixture needs updating:\n{cell.source}"
    cell.source = cell.source.replace(old, new)
    return nb


def replace_cell(nb, gid: str, source: str):
    """A copy of `nb` whose cell `gid` holds `source` (metadata kept, as when a student retypes it)."""
    nb = copy.deepcopy(nb)
    cell_by_id(nb, gid).source = source
    return nb


def add_cell_before(nb, gid: str, source: str):
    """A copy of `nb` with a new code cell (a cell the student added) just before the cell `gid`."""
    nb = copy.deepcopy(nb)
    at = next(i for i, c in enumerate(nb.cells) if nbgrade.grade_id(c) == gid)
    nb.cells.insert(at, nbformat.v4.new_code_cell(source))
    return nb


def delete(nb, gid: str):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if nbgrade.grade_id(c) != gid]
    return nb


def submission_from(answer_path: Path, folder: Path, student: str, nb=None, raw: str | None = None,
                    nested: bool = False) -> Path:
    """Writes one student's submission into `folder` as a student would hand it in: the notebook
    lives in the student folder, so its `:dep` path is the student version's."""
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / student / answer_path.name) if nested else (folder / f"{student}.ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        target.write_text(raw)
        return target
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = nbgrade.rewrite_dep_paths(cell.source, answer_path.parent.resolve(),
                                                    nbgrade.STUDENT_DIR)
    nbformat.write(nb, target)
    return target


def student_of(answer_path: Path):
    nb = nbformat.read(answer_path, as_version=4)
    return nbgrade.student_version(nb, answer_path, nbgrade.STUDENT_DIR)


def points(graded, student: str) -> dict[str, float]:
    g = next(g for g in graded if g.student == student)
    return {r.exercise: r.points for r in g.rows}


def feedback(graded, student: str, exercise: str) -> str:
    g = next(g for g in graded if g.student == student)
    return next(r.feedback for r in g.rows if r.exercise == exercise)


def clean(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
