"""Grading a class: fixture submissions made from the answer notebooks get exactly the expected
points. These run the `rust` kernel (minutes: every cell is compiled); each worker gets its own
copy of the prewarmed evcxr build folder in NBGRADE_BUILD_BASE (default
~/.cache/convlab/evcxr-tmp-grade)."""
from __future__ import annotations

import csv
import re

import nbformat
import pytest

from nbgrade_helpers import (FIXTURES, add_cell_before, build_base, delete, edit, feedback, kernel_ready,
                             nbgrade, points, replace_cell, student_of, submission_from)

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
    graded = grade(subs, TINY, out, cell_timeout=60, notebook_timeout=900)
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


def test_no_kernel_outlives_the_run(tiny_class):
    """The endless loop's kernel (and evcxr's child process running the loop) was killed."""
    import time
    from pathlib import Path

    marks = [f"EVCXR_TMPDIR={d}".encode() for d in nbgrade.worker_dirs(build_base(), WORKERS)]
    for _ in range(20):
        alive = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                env = (proc / "environ").read_bytes().split(b"\0")
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if any(m in env for m in marks):
                alive.append(cmd.decode(errors="replace"))
        if not alive:
            return
        time.sleep(0.5)
    pytest.fail(f"processes of graded kernels still running: {alive}")


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


GRADED_SOURCES = [NB1, nbgrade.NOTEBOOKS / "02-vgg16.ipynb", nbgrade.NOTEBOOKS / "03-cifar10.ipynb"]


@pytest.mark.parametrize("src", GRADED_SOURCES, ids=lambda p: p.name)
def test_answer_scores_full_marks_and_student_version_zero(src, tmp_path, monkeypatch, vgg_test_weights,
                                                           cifar_test_batches):
    """The answer notebook earns every point; the generated student notebook earns none on
    every exercise, yet every one of its cells still runs (nothing hangs or kills the kernel).
    Notebooks 2 and 3 get the data their tests need, written by the tests in the real formats."""
    monkeypatch.setenv("CONVLAB_VGG_WEIGHTS", str(vgg_test_weights))
    monkeypatch.setenv("CONVLAB_CIFAR_DIR", str(cifar_test_batches))
    monkeypatch.setenv("CONVLAB_DEVICE", "cpu")
    kernel_ready()
    subs = tmp_path / "subs"
    submission_from(src, subs, "answer", nbformat.read(src, as_version=4))
    submission_from(src, subs, "student", student_of(src))
    if src.name == "03-cifar10.ipynb":
        # one mistake costs one exercise: the optimiser and the weight quiz are checked on the
        # course's model, so an unfinished model loses only the model's points
        answer_nb = nbformat.read(src, as_version=4)
        stub = student_of(src)
        model = next(c for c in stub.cells if nbgrade.grade_id(c) == "cifar-model").source
        submission_from(src, subs, "unfinished_model", replace_cell(answer_nb, "cifar-model", model))
    graded = grade(subs, src, tmp_path / "out", cell_timeout=300, notebook_timeout=1500)
    by = {g.student: g for g in graded}
    answer, student = by["answer"], by["student"]
    if "unfinished_model" in by:
        got = {r.exercise: (r.points, r.max) for r in by["unfinished_model"].rows}
        assert got["test-cifar-model"][0] == 0, got
        assert all(p == m for e, (p, m) in got.items() if e != "test-cifar-model"), \
            [(r.exercise, r.feedback) for r in by["unfinished_model"].rows]
    assert all(r.points == r.max for r in answer.rows), \
        [(r.exercise, r.feedback) for r in answer.rows if r.points != r.max]
    assert answer.ran_to_the_end()
    assert all(r.points == 0 for r in student.rows), \
        [(r.exercise, r.feedback) for r in student.rows if r.points]
    assert student.ran_to_the_end(), {i: s for i, s in student.status.items() if s["status"] not in ("ok", "failed")}
    assert all("not answered yet" in r.feedback or "did not compile" in r.feedback for r in student.rows), \
        [r.feedback for r in student.rows]


# The fixture class of notebook 1: each submission is the answer notebook with one mistake a
# student could make; every test cell's points are stated.
NB1_FULL = {"test-multiply-sum": 2, "test-convolve-size": 2, "test-convolve-reference": 3,
            "test-vertical-filter": 1, "test-transpose": 1, "test-shoulder-filter": 2,
            "test-brown-transpose": 1}
OFF_BY_ONE = dict(NB1_FULL, **{"test-convolve-size": 0, "test-convolve-reference": 0})
NB1_EXPECTED = {
    "correct": NB1_FULL,
    # the output is one row short: input − filter instead of input − filter + 1
    "off_by_one": OFF_BY_ONE,
    # a horizontal-edge filter where a vertical one was asked for
    "wrong_filter": dict(NB1_FULL, **{"test-vertical-filter": 0}),
    # `while r < 3 {}` never ends: its cell is stopped, grading goes on in a fresh kernel (the
    # cells before it run again) and only the transpose is lost
    "endless_loop": dict(NB1_FULL, **{"test-transpose": 0}),
    # a recursion without end in the vertical filter's cell overflows the stack and ends the
    # kernel's process: that exercise only
    "stack_overflow": dict(NB1_FULL, **{"test-vertical-filter": 0}),
    # the brown filter's cell asks for more memory than grading allows: that exercise only
    "out_of_memory": dict(NB1_FULL, **{"test-brown-transpose": 0}),
    # every answer zeros of the right shape, and `assert!`/`assert_eq!` made to do nothing in a
    # cell added before the first exercise: the cell is not run (the naming rule), nothing passes
    "shadows_asserts_added": {k: 0 for k in NB1_FULL},
    # the same two macros inside the multiply_sum answer cell: that cell is not run either
    "shadows_asserts_answer": {k: 0 for k in NB1_FULL},
    # a `println` macro of the student's own in the shoulder filter's answer cell: not run
    "println_macro": dict(NB1_FULL, **{"test-shoulder-filter": 0}),
    # permuted_axes([1, 2, 2]) is not a permutation: ndarray panics
    "panics": dict(NB1_FULL, **{"test-brown-transpose": 0}),
    # does not compile: the multiply_sum answer and the convolve that calls it fail; the other
    # exercises are checked on the course's reference and keep their points
    "no_compile": dict(NB1_FULL, **{"test-multiply-sum": 0, "test-convolve-size": 0,
                                    "test-convolve-reference": 0}),
    # the off-by-one bug, and the test that would catch it deleted or gutted: no gain
    "deletes_test": OFF_BY_ONE,
    "edits_test": OFF_BY_ONE,
    "corrupt": {k: 0 for k in NB1_FULL},
    # convolve answered by calling the crate's reference: its two tests earn nothing
    "calls_reference": dict(NB1_FULL, **{"test-convolve-size": 0, "test-convolve-reference": 0}),
    # the same with the reference's threaded twin (a benchmark's entry point, not public to notebooks)
    "threaded_reference": dict(NB1_FULL, **{"test-convolve-size": 0, "test-convolve-reference": 0}),
    # multiply_sum answered by the reference under another name (`use … as`): that exercise
    # only (the student's convolve, which calls it, is judged on its own)
    "renames_reference": dict(NB1_FULL, **{"test-multiply-sum": 0}),
    # a shoulder filter of zeros: right shape, sums to 0, answers nothing
    "zero_filter": dict(NB1_FULL, **{"test-shoulder-filter": 0}),
    # convolve through a helper written in a cell the student added: that cell runs
    "helper_cell": NB1_FULL,
    # the reference reached through a helper in an added cell, renamed on the way
    "helper_calls_reference": dict(NB1_FULL, **{"test-convolve-size": 0, "test-convolve-reference": 0}),
    # a wrong multiply_sum (0.0) that reads the build folder for markers, silences panics and
    # prints what it finds: its cell is not run, so multiply_sum and convolve earn nothing
    "forger": dict(NB1_FULL, **{"test-multiply-sum": 0, "test-convolve-size": 0,
                                "test-convolve-reference": 0}),
    # a right multiply_sum with a debug print: printing costs nothing
    "debug_print": NB1_FULL,
}
FORGER = """fn multiply_sum<D: Dimension>(patch: &ArrayView<f32, D>, filter: &ArrayView<f32, D>) -> f32 {
    std::panic::set_hook(Box::new(|_| {}));
    let mut stack = vec![std::path::PathBuf::from(std::env::var("EVCXR_TMPDIR").unwrap_or_default())];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().map_or(false, |e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for word in text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')) {
                    if word.starts_with("nbgrade-") || word.starts_with("__nbgrade") {
                        println!("{word}");
                    }
                }
            }
        }
    }
    let _ = (patch, filter);
    0.0
}"""
PROTOCOL_FORGER = """fn multiply_sum<D: Dimension>(patch: &ArrayView<f32, D>, filter: &ArrayView<f32, D>) -> f32 {
    println!("EVCXR_EXECUTION_COMPLETE");
    let _ = (patch, filter);
    0.0
}"""
OFF_BY_ONE_OLD = "Array2::zeros((image.shape()[0] - filter_height + 1,"
OFF_BY_ONE_NEW = "Array2::zeros((image.shape()[0] - filter_height,"


SHADOW_ASSERTS = ("macro_rules! assert { ($($t:tt)*) => { () }; }\n"
                  "macro_rules! assert_eq { ($($t:tt)*) => { () }; }")
ZERO_MULTIPLY_SUM = ("fn multiply_sum<D: Dimension>(patch: &ArrayView<f32, D>, filter: &ArrayView<f32, D>) -> f32 {\n"
                     "    let _ = (patch, filter);\n    0.0\n}")
ZERO_CONVOLVE = ("fn convolve<D: Dimension>(image: &Array<f32, D>, filter: &Array<f32, D>) -> Array2<f32> {\n"
                 "    Array2::zeros((image.shape()[0] - filter.shape()[0] + 1, image.shape()[1] - filter.shape()[1] + 1))\n}")


def zeros_everywhere(answer):
    """Every answer of notebook 1 left as zeros of the right shape."""
    nb = replace_cell(answer, "multiply-sum", ZERO_MULTIPLY_SUM)
    nb = replace_cell(nb, "convolve", ZERO_CONVOLVE)
    nb = edit(nb, "vertical-filter", "array![[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]", "Array2::zeros((3, 3))")
    nb = edit(nb, "transpose", "horizontal.t().to_owned()", "Array2::zeros((3, 3))")
    nb = edit(nb, "shoulder-filter", "    let mut f = Array3::<f32>::zeros((3, 3, 3));", "    let f = Array3::<f32>::zeros((3, 3, 3));")
    nb = edit(nb, "shoulder-filter", "    f.slice_mut(s![0, .., 2]).fill(1.0);  // blue above\n", "")
    nb = edit(nb, "shoulder-filter", "    f.slice_mut(s![2, .., 2]).fill(-1.0); // less blue below\n", "")
    return edit(nb, "brown-transpose", "brown_filter.clone().permuted_axes([1, 2, 0]).as_standard_layout().to_owned()",
                "Array3::zeros((3, 3, 3))")


def write_nb1_class(subs, prefix: str = "") -> None:
    """The fixture class of notebook 1 in the folder `subs` (names after `prefix`; the grading
    benchmark, tools/gradebench.py, writes copies of it)."""
    answer = nbformat.read(NB1, as_version=4)

    def add(student, nb=None, raw=None):
        submission_from(NB1, subs, prefix + student, nb, raw=raw)

    off = edit(answer, "convolve", OFF_BY_ONE_OLD, OFF_BY_ONE_NEW)
    add("correct", answer)
    add("off_by_one", off)
    add("wrong_filter", edit(
        answer, "vertical-filter", "array![[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]",
        "array![[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]]"))
    add("endless_loop", edit(
        answer, "transpose", "horizontal.t().to_owned()",
        "let mut r = 0;\n    while r < 3 {\n        // forgot r += 1\n    }\n    horizontal.t().to_owned()"))
    add("panics", edit(answer, "brown-transpose", "permuted_axes([1, 2, 0])", "permuted_axes([1, 2, 2])"))
    add("no_compile", edit(answer, "multiply-sum", "(patch * filter).sum()", "(patch * filter).sum() as f64"))
    add("deletes_test", delete(off, "test-convolve-reference"))
    add("edits_test", edit(
        edit(off, "test-convolve-size", "assert_eq!(out.dim(), (h - 2, w - 2),", "assert_eq!(0, 0,"),
        "test-convolve-reference", "assert_eq!(got.dim(), want.dim(),", "assert_eq!(0, 0,"))
    add("corrupt", raw=NB1.read_text()[:5000])
    body = "(patch * filter).sum()"
    add("calls_reference", edit(
        answer, "convolve", "    let filter_height = filter.shape()[0];",
        "    return convlab::conv::convolve(image, filter).unwrap();\n    #[allow(unreachable_code)]\n    let filter_height = filter.shape()[0];"))
    add("renames_reference", edit(
        answer, "multiply-sum", body, "{ use convlab::conv::multiply_sum as times; times(patch, filter).unwrap() }"))
    zero = edit(answer, "shoulder-filter", "    f.slice_mut(s![0, .., 2]).fill(1.0);  // blue above\n", "")
    add("zero_filter", edit(zero, "shoulder-filter", "    f.slice_mut(s![2, .., 2]).fill(-1.0); // less blue below\n", ""))
    with_helper = edit(answer, "convolve", "filtered_image[[x, y]] = multiply_sum(&patch, &filter.view());",
                       "filtered_image[[x, y]] = patch_times(&patch, &filter.view());")
    add("helper_cell", add_cell_before(
        with_helper, "convolve", "// my helper\nfn patch_times<D: Dimension>(p: &ArrayView<f32, D>, f: &ArrayView<f32, D>) -> f32 {\n    multiply_sum(p, f)\n}"))
    via_helper = edit(answer, "convolve", "    let filter_height = filter.shape()[0];",
                      "    return shortcut(image, filter);\n    #[allow(unreachable_code)]\n    let filter_height = filter.shape()[0];")
    add("helper_calls_reference", add_cell_before(
        via_helper, "convolve", "use convlab::conv as c;\nfn shortcut<D: Dimension>(i: &Array<f32, D>, f: &Array<f32, D>) -> Array2<f32> {\n    c::convolve(i, f).unwrap()\n}"))
    add("forger", replace_cell(answer, "multiply-sum", FORGER))
    add("protocol_forger", replace_cell(answer, "multiply-sum", PROTOCOL_FORGER))
    add("threaded_reference", edit(
        answer, "convolve", "    let filter_height = filter.shape()[0];",
        "    return convlab::conv::convolve_fast_threads(image, filter, 1).unwrap();\n    #[allow(unreachable_code)]\n    let filter_height = filter.shape()[0];"))
    add("stack_overflow", edit(
        answer, "vertical-filter", "    array![[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]",
        "    fn depth(n: u64) -> u64 { if n == u64::MAX { 0 } else { 1 + depth(n + 1) } }\n"
        "    println!(\"{}\", depth(0));\n    array![[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]"))
    add("out_of_memory", edit(
        answer, "brown-transpose", "    brown_filter.clone()",
        "    let big = vec![1u8; 64usize << 30];\n    println!(\"{}\", big[big.len() / 2]);\n    brown_filter.clone()"))
    zeros = zeros_everywhere(answer)
    add("shadows_asserts_added", add_cell_before(zeros, "multiply-sum", SHADOW_ASSERTS))
    add("shadows_asserts_answer", replace_cell(zeros, "multiply-sum", ZERO_MULTIPLY_SUM + "\n" + SHADOW_ASSERTS))
    add("println_macro", edit(answer, "shoulder-filter", "// Answer\n",
                              "// Answer\nmacro_rules! println { ($($t:tt)*) => {}; }\n"))
    add("debug_print", edit(
        answer, "multiply-sum", body, '{ if patch.len() == 4 { eprintln!("debug: patch {patch:?}"); } (patch * filter).sum() }'))


@pytest.fixture(scope="module")
def nb1_class(tmp_path_factory):
    kernel_ready()
    root = tmp_path_factory.mktemp("nb1")
    subs = root / "submissions"
    write_nb1_class(subs)
    graded = grade(subs, NB1, root / "grades", cell_timeout=nbgrade.CELL_TIMEOUT, notebook_timeout=1200)
    return graded, root / "grades"


@needs_nb1
def test_nb1_class_gets_exactly_the_expected_points(nb1_class):
    graded, _ = nb1_class
    got = {g.student: points(graded, g.student) for g in graded}
    # a wrong multiply_sum that prints the kernel's end-of-cell line to end its test early: the
    # kernel's output is out of step from there on, so what follows may fail too
    forged = got.pop("protocol_forger")
    assert forged["test-multiply-sum"] == forged["test-convolve-size"] == forged["test-convolve-reference"] == 0, forged
    assert got == NB1_EXPECTED


@needs_nb1
def test_nb1_class_feedback_says_what_to_fix(nb1_class):
    graded, out = nb1_class
    size = feedback(graded, "off_by_one", "test-convolve-size")
    assert "your output is" in size or "gives a 2×2 output" in size, size
    assert "input − filter + 1" in size or "3 − 2 + 1" in size, size
    assert "for a 9×11 image and a 3×3 filter the output is (7, 9), yours is (6, 9)" in \
        feedback(graded, "deletes_test", "test-convolve-reference")
    # a horizontal-edge filter gives 0 on a vertical edge
    assert "it should answer strongly there" in feedback(graded, "wrong_filter", "test-vertical-filter")
    assert "endless loop" in feedback(graded, "endless_loop", "test-transpose")
    assert "not run: it uses `transposed`, which ran past its time limit" in feedback(graded, "endless_loop", "test-transpose")
    assert "ended the kernel's process" in feedback(graded, "stack_overflow", "test-vertical-filter")
    assert "GiB of memory grading allows" in feedback(graded, "out_of_memory", "test-brown-transpose")
    assert "your answer cell 'brown-transpose' failed" in feedback(graded, "panics", "test-brown-transpose")
    assert "your answer cell 'multiply-sum' failed: did not compile" in \
        feedback(graded, "no_compile", "test-multiply-sum")
    assert "not a valid notebook" in feedback(graded, "corrupt", "test-multiply-sum")
    with open(out / "totals.csv") as f:
        totals = {r["student"]: r for r in csv.DictReader(f)}
    assert totals["correct"]["points"] == "12" and totals["correct"]["max"] == "12"
    html = (out / "feedback" / "off_by_one.html").read_text()
    assert "3 − 2 + 1" in html and "Your answer (<code>convolve</code>)" in html


@needs_nb1
def test_nb1_answers_must_be_the_students_own(nb1_class):
    graded, _ = nb1_class
    assert feedback(graded, "calls_reference", "test-convolve-size").startswith(
        "write convolve yourself: your answer cell 'convolve' uses convlab::conv (line 4, as "
        "`convlab::conv::convolve`), everything that convolves")
    assert "uses convlab::conv (line 6, as `times`, which is `convlab::conv::multiply_sum`)" in \
        feedback(graded, "renames_reference", "test-multiply-sum")
    assert feedback(graded, "helper_calls_reference", "test-convolve-reference").startswith(
        "write convolve yourself: your answer calls `shortcut`, which uses convlab::conv "
        "(the cell you added after cell ")
    # the helper's cell is not run either: `c` is a name the tests use
    assert "defines `c` (use), a name the tests or the course's cells use" in \
        feedback(graded, "helper_calls_reference", "test-multiply-sum")
    assert "convolve_fast_threads" in feedback(graded, "threaded_reference", "test-convolve-size")


@needs_nb1
def test_nb1_tests_cannot_be_redirected(nb1_class):
    """A student's `assert`, `assert_eq` or `println` macro is refused where it is defined, with
    the line and the reason; an added cell that defines one is not run and costs nothing else."""
    graded, _ = nb1_class
    said = feedback(graded, "shadows_asserts_added", "test-multiply-sum")
    assert "the cell you added after cell 13 was not run: line 1 defines `assert` (macro), a name the tests" in said, said
    said = feedback(graded, "shadows_asserts_answer", "test-multiply-sum")
    assert "your answer cell 'multiply-sum' was not run: line 5 defines `assert` (macro)" in said, said
    said = feedback(graded, "println_macro", "test-shoulder-filter")
    assert "your answer cell 'shoulder-filter' was not run: line 2 defines `println` (macro)" in said, said
    assert "all zeros" in feedback(graded, "zero_filter", "test-shoulder-filter")


@needs_nb1
def test_nb1_a_pass_cannot_be_forged_and_printing_costs_nothing(nb1_class):
    graded, out = nb1_class
    forged = feedback(graded, "forger", "test-multiply-sum")
    assert "your answer cell 'multiply-sum' was not run: line 2 replaces the panic hook" in forged
    assert "nbgrade-" not in forged and "__nbgrade" not in forged
    # its test failed: out of step, or the real assertion's report that arrived behind the forged end
    said = feedback(graded, "protocol_forger", "test-multiply-sum")
    assert "out of step" in said or "but your function returned 0" in said, said
    fb = nbformat.read(out / "feedback" / "debug_print.ipynb", as_version=4)
    at = next(i for i, c in enumerate(fb.cells) if nbgrade.grade_id(c) == "test-convolve-size")
    printed = "".join(o.get("text", "") for o in fb.cells[at].outputs if o.get("output_type") == "stream")
    assert "debug: patch" in printed and "✓ convolve" in printed
    assert "printing never changes a grade" in fb.cells[at + 1].source
    # the debug lines of the multiply-sum test stay with that test
    first = next(i for i, c in enumerate(fb.cells) if nbgrade.grade_id(c) == "test-multiply-sum")
    assert "debug: patch" in "".join(o.get("text", "") for o in fb.cells[first].outputs)
    table = fb.cells[0].source
    assert "| multiply_sum | test-multiply-sum | 2 / 2 | ✓ passed |" in table


# ---------------------------------------------------------------------------------------------
# Resuming and sharding


def test_a_second_run_keeps_what_is_graded(tiny_class):
    """Results are saved as they come: grading the same folder into the same place again grades
    nothing (an interrupted run resumes), and the gradebook stays the same."""
    graded, out = tiny_class
    before = (out / "gradebook.csv").read_text()
    said = []
    again = nbgrade.grade_class(out.parent / "submissions", TINY, out, workers=WORKERS, cell_timeout=60,
                                notebook_timeout=900, html=True, build_base=build_base(), log=said.append)
    assert f"{len(EXPECTED_TINY)} submission(s) already graded" in said[0], said
    assert not any(s.startswith("[") for s in said), said
    assert {g.student: points(again, g.student) for g in again} == EXPECTED_TINY
    assert (out / "gradebook.csv").read_text() == before


def test_shards_merge_into_the_one_run_gradebook(tiny_class, tmp_path):
    """Six shards cover every submission once; merged, they give the one run's gradebook. Shard 1
    is graded for real; the others reuse the one run's results (same source, file and limits)."""
    import shutil

    graded, out = tiny_class
    subs = out.parent / "submissions"
    names = [s for s, _ in nbgrade.find_submissions(subs, TINY.name)]
    shards = []
    for k in range(1, 7):
        shard_out = tmp_path / f"shard-{k}"
        mine = nbgrade.gradebook.shard_of(names, k, 6)
        if k > 1:
            (shard_out / "results").mkdir(parents=True)
            (shard_out / "feedback").mkdir()
            for s in mine:
                shutil.copy2(out / "results" / f"{s}.json", shard_out / "results")
                for fb in (out / "feedback").glob(f"{s}.*"):
                    shutil.copy2(fb, shard_out / "feedback")
        said = []
        part = nbgrade.grade_class(subs, TINY, shard_out, workers=WORKERS, cell_timeout=60, notebook_timeout=900,
                                   html=True, build_base=build_base(), log=said.append, shard=(k, 6))
        assert [g.student for g in part] == mine
        assert any(s.startswith(f"[{len(mine)}/{len(mine)}]") for s in said) == (k == 1), said
        shards.append(shard_out)
    merged = tmp_path / "merged"
    assert nbgrade.main(["merge", str(merged), *map(str, shards)]) == 0
    assert (merged / "gradebook.csv").read_text() == (out / "gradebook.csv").read_text()
    assert sorted(p.name for p in (merged / "feedback").glob("*.ipynb")) == \
        sorted(p.name for p in (out / "feedback").glob("*.ipynb"))
    with pytest.raises(SystemExit, match="graded in two shards"):
        nbgrade.gradebook.merge(tmp_path / "twice", [shards[1], shards[1]])


# ---------------------------------------------------------------------------------------------
# One kernel per worker, cleared between submissions


ISOLATION = FIXTURES / "isolation.ipynb"
EXPECTED_ISOLATION = {
    "a_leaves": {"test-fresh-start": 1, "test-answer": 2, "test-seven": 1},
    # its answer is the variable the last submission left behind: gone, so it does not compile
    "b_looks": {"test-fresh-start": 1, "test-answer": 0, "test-seven": 1},
    # a wrong seven() that prints evcxr's end-of-cell line to end its test early
    "c_forges": {"test-fresh-start": 1, "test-answer": 2, "test-seven": 0},
}
FORGED_SEVEN = 'fn seven() -> i32 {\n    println!("EVCXR_EXECUTION_COMPLETE");\n    0\n}'


def test_a_reused_kernel_carries_nothing_from_one_submission_to_the_next(tmp_path, monkeypatch):
    """Each submission of the fixture leaves a variable, a file, an environment variable, a panic
    hook and its process id behind (a cell before its last exercise). Graded one after another by one worker, the
    three run in one kernel, cleared in between (a new one after the forger's out-of-step output):
    each starts in a new process without what the last one left, the forged end of a test still fails its end line, and every score is the one
    the submission gets in a kernel of its own."""
    kernel_ready()
    answer = nbformat.read(ISOLATION, as_version=4)
    subs = tmp_path / "subs"
    submission_from(ISOLATION, subs, "a_leaves", answer)
    submission_from(ISOLATION, subs, "b_looks", replace_cell(answer, "answer", "let answer: i32 = left_behind;"))
    submission_from(ISOLATION, subs, "c_forges", replace_cell(answer, "seven", FORGED_SEVEN))
    runs = {}
    for mode in ("reused", "fresh"):
        shared = tmp_path / f"{mode}-processes"
        shared.mkdir()
        monkeypatch.setenv("NBGRADE_ISOLATION_DIR", str(shared))
        said: list[str] = []
        graded = nbgrade.grade_class(subs, ISOLATION, tmp_path / mode, workers=1, cell_timeout=60,
                                     notebook_timeout=600, html=False, build_base=build_base(),
                                     reuse_kernels=mode == "reused", log=lambda m: (said.append(m), print(m)))
        # The order they ran in (a worker takes whichever is next), and each one's kernel and
        # process (the file it left holds its working folder, named after the student).
        order = [re.match(r"\[\d+/\d+\] (\w+):", m).group(1) for m in said if re.match(r"\[\d+/\d+\] \w+:", m)]
        procs = {next(s for s in EXPECTED_ISOLATION if f"/{s}/" in p.read_text()): p.name.split("-child-")
                 for p in shared.iterdir()}
        runs[mode] = ({g.student: points(graded, g.student) for g in graded}, order, procs)
    (reused, order, reused_procs), (fresh, _, fresh_procs) = runs["reused"], runs["fresh"]
    assert reused == fresh == EXPECTED_ISOLATION
    # Each in a process of its own; in one kernel, except that the forger's out-of-step output
    # gets the submission after it (if any) a new kernel.
    assert sorted(order) == sorted(EXPECTED_ISOLATION) and len(reused_procs) == 3, (order, reused_procs)
    assert len({c for _, c in reused_procs.values()}) == 3, reused_procs
    kernels = [reused_procs[s][0] for s in order]
    after_forger = order.index("c_forges") + 1
    assert len(set(kernels[:after_forger])) == 1, (order, reused_procs)
    assert all(k != kernels[0] for k in kernels[after_forger:]), (order, reused_procs)
    assert len({k for k, _ in fresh_procs.values()}) == 3, fresh_procs
    fb = feedback(nbgrade.grade_class(subs, ISOLATION, tmp_path / "reused", workers=1, cell_timeout=60,
                                      notebook_timeout=600, html=False, build_base=build_base(),
                                      log=lambda _: None), "b_looks", "test-answer")
    assert "your answer cell 'answer' failed: did not compile or run: not found in this scope" in fb, fb
