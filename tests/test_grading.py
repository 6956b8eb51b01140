"""Grading a class: fixture submissions made from the answer notebooks get exactly the expected
points. These run the `rust` kernel (minutes: every cell is compiled); each worker gets its own
copy of the prewarmed evcxr build folder in NBGRADE_BUILD_BASE (default
~/.cache/convlab/evcxr-tmp-grade)."""
from __future__ import annotations

import csv

import nbformat
import pytest

from nbgrade_helpers import (FIXTURES, build_base, delete, edit, feedback, kernel_ready, nbgrade,
                             points, student_of, submission_from)

TINY = FIXTURES / "tiny.ipynb"
NB1 = nbgrade.NOTEBOOKS / "01-convolutions.ipynb"
WORKERS = 2


def grade(folder, source, out, cell_timeout=60, notebook_timeout=600):
    return nbgrade.grade_class(folder, source, out, workers=WORKERS, cell_timeout=cell_timeout,
                               notebook_timeout=notebook_timeout, html=True, build_base=build_base())


@pytest.fixture(scope="module")
def tiny_class(tmp_path_factory):
    """The fixture class on the tiny notebook: one submission per way of going wrong."""
    kernel_ready()
    root = tmp_path_factory.mktemp("tiny")
    subs = root / "submissions"
    answer = nbformat.read(TINY, as_version=4)
    submission_from(TINY, subs, "correct", answer)
    submission_from(TINY, subs, "nested", answer, nested=True)
    submission_from(TINY, subs, "blank", nbgrade.student_version(answer, TINY, nbgrade.STUDENT_DIR))
    submission_from(TINY, subs, "wrong", edit(answer, "double", "x * 2", "x * 3"))
    submission_from(TINY, subs, "loops", edit(answer, "sum-below", "for i in 0..n {", "for i in (0..n).cycle() {"))
    submission_from(TINY, subs, "panics", edit(answer, "double", "x * 2", 'panic!("I give up")'))
    submission_from(TINY, subs, "no_compile", edit(answer, "double", "x * 2", "x * "))
    cheat = edit(answer, "double", "x * 2", "x * 3")
    cheat = edit(cheat, "test-double", "assert!(got == 2 * x", "assert!(true || got == 2 * x")
    submission_from(TINY, subs, "edits_test", cheat)
    submission_from(TINY, subs, "deletes_test", delete(edit(answer, "double", "x * 2", "x * 3"), "test-double"))
    submission_from(TINY, subs, "deletes_answer", delete(answer, "sum-below"))
    submission_from(TINY, subs, "corrupt", raw='{"cells": [ this is not json')
    out = root / "grades"
    graded = grade(subs, TINY, out, cell_timeout=20, notebook_timeout=300)
    return graded, out


EXPECTED_TINY = {
    "correct": {"test-double": 2, "test-sum-below": 3},
    "nested": {"test-double": 2, "test-sum-below": 3},
    "blank": {"test-double": 0, "test-sum-below": 0},
    "wrong": {"test-double": 0, "test-sum-below": 3},
    "loops": {"test-double": 2, "test-sum-below": 0},
    "panics": {"test-double": 0, "test-sum-below": 3},
    "no_compile": {"test-double": 0, "test-sum-below": 3},
    "edits_test": {"test-double": 0, "test-sum-below": 3},
    "deletes_test": {"test-double": 0, "test-sum-below": 3},
    "deletes_answer": {"test-double": 2, "test-sum-below": 0},
    "corrupt": {"test-double": 0, "test-sum-below": 0},
}


def test_tiny_class_gets_exactly_the_expected_points(tiny_class):
    graded, _ = tiny_class
    got = {g.student: points(graded, g.student) for g in graded}
    assert got == EXPECTED_TINY


def test_tiny_class_feedback_says_what_to_fix(tiny_class):
    graded, _ = tiny_class
    assert feedback(graded, "correct", "test-double") == "✓ double: right for every input tried"
    assert "double(0) returned 0" not in feedback(graded, "wrong", "test-double")
    assert "double(1) returned 3, but twice 1 is 2: multiply x by 2" == feedback(graded, "wrong", "test-double")
    assert "not answered yet" in feedback(graded, "blank", "test-double")
    assert "endless loop" in feedback(graded, "loops", "test-sum-below")
    assert "I give up" in feedback(graded, "panics", "test-double")
    assert "did not compile" in feedback(graded, "no_compile", "test-double")
    assert "not a valid notebook" in feedback(graded, "corrupt", "test-double")
    assert "'sum-below' is missing" in feedback(graded, "deletes_answer", "test-double")
    # the restored test cell ran, hidden test included, and said why
    assert "multiply x by 2" in feedback(graded, "deletes_test", "test-double")


def test_tiny_gradebook_and_feedback_files(tiny_class):
    graded, out = tiny_class
    with open(out / "gradebook.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student", "exercise", "points", "max", "feedback"]
    assert len(rows) == 2 * len(EXPECTED_TINY)
    by = {(r["student"], r["exercise"]): r for r in rows}
    assert by[("wrong", "test-double")]["points"] == "0" and by[("wrong", "test-double")]["max"] == "2"
    assert by[("correct", "test-sum-below")]["points"] == "3"
    fb = nbformat.read(out / "feedback" / "wrong.ipynb", as_version=4)
    assert fb.cells[0].source.startswith("# Feedback for wrong: 3 / 5 points")
    text = "\n".join(c.source for c in fb.cells)
    assert "double(1000)" not in text, "hidden tests must not show in the feedback"
    assert "✗ test-double: 0 / 2" in text and "✓ test-sum-below: 3 / 3" in text
    html = (out / "feedback" / "wrong.html").read_text()
    assert "multiply x by 2" in html
    # a corrupt file has no notebook to give back, but it is in the gradebook
    assert not (out / "feedback" / "corrupt.ipynb").exists()


def test_hidden_tests_count(tmp_path):
    """A solution that passes the visible tests but not the hidden one loses the points."""
    kernel_ready()
    answer = nbformat.read(TINY, as_version=4)
    sneaky = edit(answer, "double", "x * 2", "if x.abs() < 100 { x * 2 } else { x }")
    submission_from(TINY, tmp_path / "subs", "sneaky", sneaky)
    graded = grade(tmp_path / "subs", TINY, tmp_path / "out")
    assert points(graded, "sneaky") == {"test-double": 0, "test-sum-below": 3}
    assert "double(1000) returned 1000, not 2000" in feedback(graded, "sneaky", "test-double")


# ---------------------------------------------------------------------------------------------
# Notebook 1


needs_nb1 = pytest.mark.skipif(not NB1.exists(), reason="notebooks/01-convolutions.ipynb not written yet")
