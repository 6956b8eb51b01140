"""Grading's rules, checked without a kernel: what an exercise may not reach is stated for every
item of the crate that returns its answer type; the tests and the grader's own lines cannot be
redirected by a name a student defines; the naming rule says what it refuses and why."""
from __future__ import annotations

import copy

import nbformat
import pytest

from nbgrade_helpers import nbgrade

import rustscan  # noqa: E402  (tools/ is on the path through nbgrade_helpers)
from grading import crate_api, steps  # noqa: E402
from grading.execute import grader_lines  # noqa: E402
from grading.markup import allowed_items, forbidden_items, grade_id, is_solution, is_test  # noqa: E402

SOURCES = sorted(nbgrade.NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def answer_cells(nb):
    return [c for c in nb.cells if is_solution(c) and c.cell_type == "code"]


def uncovered(nb, api) -> list[str]:
    """Each crate function that returns an exercise's answer type and is neither forbidden nor
    allowed (with a reason) for that exercise: 'exercise: item -> output'."""
    out = []
    for cell in answer_cells(nb):
        rules = {**allowed_items(cell), **forbidden_items(cell)}
        canon = {(api.canonical(k.split("::")) or k): why for k, why in rules.items()}
        for name, answer in crate_api.declared_types(cell.source).items():
            for f in api.functions():
                if not crate_api.returns(f.output, answer):
                    continue
                stated = [why for where, why in canon.items() if f.path == where or f.path.startswith(where + "::")]
                if not any(w.strip() for w in stated):
                    out.append(f"{grade_id(cell)} ({name}: {answer}): {f.path} -> {f.output}")
    return out


@pytest.fixture(scope="module", params=SOURCES, ids=lambda p: p.name)
def source(request):
    nb = nbformat.read(request.param, as_version=4)
    return request.param, nb, crate_api.for_notebook(nb)


def test_every_item_returning_an_answer_type_has_a_stated_rule(source):
    """An item of the crate (as the notebook loads it) that returns an exercise's answer type is
    either forbidden for that exercise or allowed with a reason, so a function added to the crate
    later is covered by its module's rule or makes this test fail."""
    path, nb, api = source
    assert uncovered(nb, api) == [], (
        f"{path.name}: state in the answer cell's metadata whether these may be used "
        "(convlab.forbid or convlab.allow, a module or an item, with the reason)")


def test_the_coverage_check_fails_without_a_rule(source):
    """The check above is not empty: take away an exercise's rules and it names the items."""
    _, nb, api = source
    nb = copy.deepcopy(nb)
    typed = [c for c in answer_cells(nb) if forbidden_items(c) and any(
        crate_api.returns(f.output, t) for t in crate_api.declared_types(c.source).values() for f in api.functions())]
    if not typed:
        pytest.skip("no exercise of this notebook has an answer type that a crate item returns")
    typed[0].metadata["convlab"].pop("forbid")
    typed[0].metadata["convlab"].pop("allow", None)
    assert any(line.startswith(grade_id(typed[0])) for line in uncovered(nb, api))


def test_every_rule_names_something_in_the_crate(source):
    path, nb, api = source
    for cell in answer_cells(nb):
        for key in {**forbidden_items(cell), **allowed_items(cell)}:
            assert api.canonical(key.split("::")), f"{path.name}, {grade_id(cell)}: {key} names nothing public"


def test_benchmark_entry_points_are_not_public_to_notebooks():
    nb = nbformat.read(nbgrade.NOTEBOOKS / "01-convolutions.ipynb", as_version=4)
    api = crate_api.for_notebook(nb)
    assert api.canonical(["convlab", "conv", "convolve_fast"]) == "convlab::conv::convolve_fast"
    for name in ("convolve_fast_threads", "convolve_fast_into"):
        assert api.canonical(["convlab", "conv", name]) is None, name


def macro_calls(source: str) -> list[tuple[str, bool, int]]:
    """(macro, written with an absolute path, line) for each macro call in the code."""
    toks = rustscan.tokens(source)
    out = []
    for i, t in enumerate(toks):
        if t.is_ident and i + 2 < len(toks) and toks[i + 1].text == "!" and toks[i + 2].text in "([{":
            j = i
            while j >= 2 and toks[j - 1].text == "::" and toks[j - 2].is_ident:
                j -= 2
            absolute = j >= 1 and toks[j - 1].text == "::" and j != i
            if t.text != "macro_rules":
                out.append((t.text, absolute, t.line))
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_test_cells_call_macros_by_absolute_paths(path):
    """`::core::assert!`, `::std::println!`, `::convlab::ndarray::array!`: a student's macro of
    the same name cannot stand in for them (the naming rule refuses one anyway)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if is_test(cell):
            bare = [(m, line) for m, absolute, line in macro_calls(cell.source) if not absolute]
            assert not bare, f"{path.name}, {grade_id(cell)}: macros called by a bare name: {bare}"


def test_the_graders_own_lines_call_macros_by_absolute_paths():
    bare = [(m, line) for m, absolute, line in macro_calls(grader_lines()) if not absolute]
    assert not bare


# ---------------------------------------------------------------------------------------------
# The naming rule

NB1 = nbformat.read(nbgrade.NOTEBOOKS / "01-convolutions.ipynb", as_version=4)
ASKED = steps.asked_names(NB1)
PROTECTED = steps.protected_names(NB1)
TITLES = {grade_id(c): grade_id(c) for c in NB1.cells if is_solution(c)}


def breaks(source: str, exercise: str | None = None) -> str | None:
    return steps.name_rule_break(source, exercise, ASKED, PROTECTED, TITLES)


def test_asked_names_are_what_the_answer_cells_define():
    assert ASKED["multiply-sum"] == {"multiply_sum"} and ASKED["convolve"] == {"convolve"}
    assert ASKED["vertical-filter"] == {"vertical"} and ASKED["brown-transpose"] == {"brown"}


def test_protected_names_come_from_tests_course_cells_and_the_grader():
    for name in ("assert", "assert_eq", "println", "array", "filters", "image", "colour", "horizontal",
                 "convlab", "core", "std", "Array2", "abs", "sum", "dim"):
        assert name in PROTECTED, name


@pytest.mark.parametrize("source, exercise, said", [
    ("macro_rules! assert { ($($t:tt)*) => { () }; }", None, "defines `assert` (macro)"),
    ("fn multiply_sum<D: Dimension>(p: &ArrayView<f32, D>, f: &ArrayView<f32, D>) -> f32 { 0.0 }\n"
     "macro_rules! assert_eq { ($($t:tt)*) => { () }; }", "multiply-sum", "line 2 defines `assert_eq`"),
    ("macro_rules! println { ($($t:tt)*) => {}; }", "shoulder-filter", "defines `println`"),
    ("let image = Array2::<f32>::zeros((2, 2));", None, "defines `image` (let)"),
    ("mod filters { pub fn horizontal_edge() {} }", None, "defines `filters` (mod)"),
    ("type Array2 = Vec<f32>;", None, "defines `Array2` (type)"),
    ("use convlab::conv::convolve;", "convolve", "makes `convolve` a use item"),
    ("use convlab::conv::convolve_fast as array;", None, "defines `array` (use)"),
    ("extern crate convlab as core;", None, "defines `core`"),
    ("fn convolve() {}", None, "the name that exercise 'convolve' asks for"),
    ("fn convolve() {}", "multiply-sum", "the name that exercise 'convolve' asks for"),
    ("use convlab::conv::*;", None, "`use …::*`"),
    ("struct Fake;\nimpl std::ops::Sub<f32> for Fake { type Output = f32; fn sub(self, _: f32) -> f32 { 0.0 } }",
     None, "implements a trait"),
    ("trait Cheat { fn abs(&self) -> f32 { 0.0 } }", None, "defines `abs` (method)"),
    ("fn helper() { struct S; impl S { fn dim(&self) {} } }", None, "defines `dim` (method)"),
    ("macro_rules! make { ($n:ident) => { fn $n() {} }; }", None, "define items"),
    ("#[macro_export]\nmacro_rules! my_m { () => {} }", None, "exports a macro"),
    ("#![no_implicit_prelude]\nfn my_f() {}", None, "sets an attribute for the whole notebook"),
    ("thread_local! { static colour: u8 = 0; }", None, "defines `colour` (static)"),
    ("let (my_a, horizontal) = (1, 2);", None, "defines `horizontal` (let)"),
    ("use convlab::{filters as my_f, image as horizontal};", None, "defines `horizontal` (use)"),
])
def test_the_naming_rule_refuses(source, exercise, said):
    why = breaks(source, exercise)
    assert why is not None and said in why, why


@pytest.mark.parametrize("source, exercise", [
    ("fn multiply_sum<D: Dimension>(p: &ArrayView<f32, D>, f: &ArrayView<f32, D>) -> f32 {\n"
     "    let patch = p; let filter = f; (patch * filter).sum()\n}", "multiply-sum"),
    ("fn patch_times(p: &ArrayView2<f32>, q: &ArrayView2<f32>) -> f32 { let x = 1.0; x * (p * q).sum() }", None),
    ("let vertical: Array2<f32> = { let f = array![[1.0, 0.0, -1.0]]; f };\nshow(&vertical)?;", "vertical-filter"),
    ("use convlab::conv as cv;\nlet my_edges = cv::convolve_fast(&image, &horizontal)?;", None),
    ("fn convolve<D: Dimension>(image: &Array<f32, D>, filter: &Array<f32, D>) -> Array2<f32> {\n"
     "    fn inner(x: usize) -> usize { x }\n    macro_rules! assert { () => {} }\n    todo!()\n}", "convolve"),
    ("#[derive(Debug, Clone)]\nstruct MyFilter { weights: Vec<f32> }", None),
])
def test_the_naming_rule_lets_pass(source, exercise):
    assert breaks(source, exercise) is None


def test_the_answer_notebooks_keep_their_own_rule():
    """Every answer cell of every answer notebook passes the rule it sets the students."""
    for path in SOURCES:
        nb = nbformat.read(path, as_version=4)
        asked, protected = steps.asked_names(nb), steps.protected_names(nb)
        for cell in answer_cells(nb):
            assert steps.name_rule_break(cell.source, grade_id(cell), asked, protected, {}) is None, \
                (path.name, grade_id(cell))


# ---------------------------------------------------------------------------------------------
# One fault costs one exercise: what a faulty cell takes with it


def test_a_fault_takes_the_names_it_defined_and_the_students_code_it_ran():
    from grading.execute import Faults

    nb = copy.deepcopy(NB1)
    faults = Faults(nb)
    cells = {grade_id(c): c for c in nb.cells if grade_id(c)}
    # the multiply_sum test ran past its limit: multiply_sum is suspect, and so is the
    # student's convolve, which calls it
    faults.add(cells["test-multiply-sum"], 15, "ran past its time limit")
    assert {"multiply_sum", "convolve"} <= set(faults.suspects)
    why = faults.why_not(cells["test-convolve-size"])
    assert why == "not run: it uses `convolve`, which ran past its time limit in cell 15", why
    # the course's cells that show a convolution are not run either; the filters' tests are
    assert faults.why_not(next(c for c in nb.cells if "let filtered = convolve" in c.source))
    for gid in ("test-vertical-filter", "test-transpose", "test-shoulder-filter", "test-brown-transpose"):
        assert faults.why_not(cells[gid]) is None, gid


def test_a_faulty_answer_cell_takes_only_its_own_names():
    from grading.execute import Faults

    nb = copy.deepcopy(NB1)
    faults = Faults(nb)
    cells = {grade_id(c): c for c in nb.cells if grade_id(c)}
    faults.add(cells["transpose"], 37, "ended the kernel's process")
    assert set(faults.suspects) == {"transposed"}
    assert "ended the kernel's process in cell 37" in faults.why_not(cells["test-transpose"])
    assert faults.why_not(cells["test-brown-transpose"]) is None


def test_another_exercises_function_is_judged_by_its_own_exercise():
    """The student's convolve calls their multiply_sum, which calls the crate's: multiply_sum
    loses, convolve does not (one mistake, one exercise). A helper that is no exercise's own
    function carries what it reaches into every answer that calls it."""
    import ownwork

    forbid = {"multiply-sum": {"convlab::conv": "x"}, "convolve": {"convlab::conv": "x"}}
    api = crate_api.for_notebook(NB1)
    mine = ownwork.Cell("your answer cell 'multiply-sum'", "multiply-sum",
                        "fn multiply_sum(p: &A, f: &A) -> f32 { convlab::conv::multiply_sum(p, f).unwrap() }\n"
                        "fn shortcut(i: &B, f: &B) -> C { convlab::conv::convolve(i, f).unwrap() }")
    conv = ownwork.Cell("your answer cell 'convolve'", "convolve",
                        "fn convolve(i: &B, f: &B) -> C { let s = multiply_sum(&i.view(), &f.view()); todo!() }")
    found = ownwork.check(forbid, [mine, conv], [], api, steps.asked_names(NB1))
    assert found["multiply-sum"] and not found["convolve"], found
    cheat = ownwork.Cell("your answer cell 'convolve'", "convolve", "fn convolve(i: &B, f: &B) -> C { shortcut(i, f) }")
    found = ownwork.check(forbid, [mine, cheat], [], api, steps.asked_names(NB1))
    assert found["convolve"] and "your answer calls `shortcut`" in found["convolve"][0].message("convolve")
