"""The student notebooks: generated from the answer notebooks, committed, and kept up to date.

These tests need no kernel: they check the generator, the committed student versions, and
how a submission is rebuilt from the source before grading.
"""
from __future__ import annotations

import copy
import json
import os

import nbformat
import pytest

from nbgrade_helpers import FIXTURES, ROOT, cell_by_id, delete, edit, nbgrade, student_of

TINY = FIXTURES / "tiny.ipynb"
SOURCES = nbgrade.exercise_sources()


def test_committed_student_notebooks_are_up_to_date():
    """notebooks/student/ holds exactly the generated version of each answer notebook."""
    stale = []
    for src in SOURCES:
        want = nbformat.writes(student_of(src)) + "\n"
        have = nbgrade.STUDENT_DIR / src.name
        if not have.exists() or have.read_text() != want:
            stale.append(src.name)
    assert not stale, f"student notebooks out of date with their source: {stale}; run `make student`"
    extra = {p.name for p in nbgrade.STUDENT_DIR.glob("*.ipynb")} - {s.name for s in SOURCES}
    assert not extra, f"student notebooks without an answer notebook: {sorted(extra)}"


def test_check_mode_reports_a_stale_student_notebook(tmp_path, capsys):
    assert nbgrade.main(["student", str(TINY), "--out", str(tmp_path)]) == 0
    assert nbgrade.main(["student", str(TINY), "--out", str(tmp_path), "--check"]) == 0
    target = tmp_path / TINY.name
    nb = nbformat.read(target, as_version=4)
    nb.cells[3].source += "\n// edited by hand"
    nbformat.write(nb, target)
    assert nbgrade.main(["student", str(TINY), "--out", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_quiz_answers_in_prose_are_blanked_for_students(src):
    """Each written quiz answer of an answer notebook is a solution cell, so a student sees
    "YOUR ANSWER HERE" in its place."""
    answer = nbformat.read(src, as_version=4)
    student = student_of(src)
    written = [i for i, c in enumerate(answer.cells)
               if c.cell_type == "markdown" and c.source.lstrip().startswith("**Answer")]
    assert written, f"{src.name} has no written quiz answer"
    for i in written:
        assert nbgrade.is_solution(answer.cells[i]), f"{src.name}, cell {i}: a quiz answer without solution metadata"
        assert student.cells[i].source == nbgrade.TEXT_STUB
    leaked = [i for i, c in enumerate(student.cells) if "**Answer" in c.source]
    assert not leaked, f"{src.name}: the student version shows answers in cells {leaked}"


@pytest.mark.parametrize("src", SOURCES + [TINY], ids=lambda p: p.name)
def test_student_version_hides_solutions_and_hidden_tests(src):
    answer = nbformat.read(src, as_version=4)
    student = student_of(src)
    assert len(student.cells) == len(answer.cells)
    n_solutions = n_tests = 0
    for a, s in zip(answer.cells, student.cells):
        assert a.cell_type == s.cell_type
        assert nbgrade.grade_id(a) == nbgrade.grade_id(s)
        if s.cell_type == "code":
            assert s.outputs == [] and s.execution_count is None
        if nbgrade.is_solution(a) and a.cell_type == "code":
            n_solutions += 1
            assert "BEGIN SOLUTION" not in s.source and "END SOLUTION" not in s.source
            assert "todo!(" in s.source and "YOUR CODE HERE" in s.source
            # every line of the solution regions is gone
            inside = False
            for line in a.source.splitlines():
                if nbgrade.BEGIN_SOLUTION.match(line):
                    inside = True
                elif nbgrade.END_SOLUTION.match(line):
                    inside = False
                elif inside and any(ch.isalnum() for ch in line) and not line.strip().startswith("//"):
                    assert line not in s.source.splitlines(), f"solution line left in {nbgrade.grade_id(a)}: {line}"
        elif nbgrade.is_test(a):
            n_tests += 1
            assert "HIDDEN TESTS" not in s.source
            assert s.metadata["editable"] is False and s.metadata["deletable"] is False
            assert s.source == nbgrade.strip_hidden(a.source)
        elif a.cell_type == "code" and ":dep" not in a.source:
            assert s.source == a.source
    assert n_solutions > 0 and n_tests > 0


@pytest.mark.parametrize("src", SOURCES + [TINY], ids=lambda p: p.name)
def test_student_dep_paths_resolve_to_the_crate(src):
    student = student_of(src)
    deps = [l for c in student.cells if c.cell_type == "code" for l in c.source.splitlines()
            if nbgrade.DEP_PATH.match(l)]
    assert deps, "the notebook loads no crate by path"
    crate = os.environ.get("CONVLAB_CRATE", str(ROOT / "crates" / "convlab"))
    for line in deps:
        rel = nbgrade.DEP_PATH.match(line).group(2).replace("${CONVLAB_CRATE}", crate)
        target = (nbgrade.STUDENT_DIR / rel).resolve()
        assert (target / "Cargo.toml").exists(), f"{line!r} does not resolve from notebooks/student/"
    if src.parent == nbgrade.NOTEBOOKS:
        # the kernel's launcher names the crate: the notebooks work in any folder (nbgrader's too)
        assert all('path = "${CONVLAB_CRATE}"' in l for l in deps), deps


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_exercise_markup_of_answer_notebooks(src):
    """Every exercise has an answer cell and a test cell with points after it."""
    nb = nbformat.read(src, as_version=4)
    nbgrade.check_source(nb, src.name)
    assert nb.metadata["kernelspec"]["name"] == "rust"
    pending = []
    for cell in nb.cells:
        if nbgrade.is_solution(cell) and cell.cell_type == "code":
            pending.append(nbgrade.grade_id(cell))
        elif nbgrade.is_test(cell):
            pending = []
    assert not pending, f"answer cells with no test cell after them: {pending}"


def test_stub_keeps_indentation_and_uses_the_hint():
    src = "fn f() -> u8 {\n    // BEGIN SOLUTION add one\n    1 + 1\n    // END SOLUTION\n}"
    out = nbgrade.clear_solutions(src, "f", True, "here")
    assert out.splitlines() == [
        "fn f() -> u8 {",
        "    // YOUR CODE HERE: add one",
        '    todo!("f: write your code here, then run the test cell below");',
        "}",
    ]
    # code after the region still compiles after the stub: the stub is a statement
    src = "let x: u8 = {\n    // BEGIN SOLUTION\n    1\n    // END SOLUTION\n};\nprintln!(\"{x}\");"
    assert nbgrade.clear_solutions(src, "x", True, "here").splitlines()[2].endswith(");")


@pytest.mark.parametrize("bad", [
    "// BEGIN SOLUTION\nx",
    "x\n// END SOLUTION",
    "// BEGIN SOLUTION\n// BEGIN SOLUTION\n// END SOLUTION",
])
def test_broken_solution_markers_are_refused(bad):
    with pytest.raises(nbgrade.SourceError):
        nbgrade.clear_solutions(bad, "x", True, "cell 3")


def test_broken_markup_is_refused_with_the_cell_named():
    nb = nbformat.read(TINY, as_version=4)
    nb.cells[4].metadata["nbgrader"]["grade_id"] = "double"  # duplicate of the answer cell
    with pytest.raises(nbgrade.SourceError, match="cell 4.*used twice"):
        nbgrade.check_source(nb, "tiny")
    nb = nbformat.read(TINY, as_version=4)
    del nb.cells[3].metadata["nbgrader"]
    with pytest.raises(nbgrade.SourceError, match="no nbgrader solution metadata"):
        nbgrade.check_source(nb, "tiny")


def test_hidden_tests_outside_test_cells_are_refused():
    nb = nbformat.read(TINY, as_version=4)
    nb.cells[8].source += "\n// BEGIN HIDDEN TESTS\nassert!(true);\n// END HIDDEN TESTS"
    with pytest.raises(nbgrade.SourceError, match="hidden tests outside a test cell"):
        nbgrade.student_version(nb, TINY, nbgrade.STUDENT_DIR)


def test_dep_paths_rewritten_for_a_folder_or_made_absolute():
    line = ':dep convlab = { path = "../crates/convlab" }'
    nbdir = ROOT / "notebooks"
    assert nbgrade.rewrite_dep_paths(line, nbdir, nbdir / "student") == \
        ':dep convlab = { path = "../../crates/convlab" }'
    assert nbgrade.rewrite_dep_paths(line, nbdir, None) == \
        f':dep convlab = {{ path = "{ROOT / "crates" / "convlab"}" }}'
    light = ':dep convlab = { path = "../crates/convlab", default-features = false }'
    assert nbgrade.rewrite_dep_paths(light, nbdir, None) == \
        f':dep convlab = {{ path = "{ROOT / "crates" / "convlab"}", default-features = false }}'
    other = ':dep ndarray = "0.16"'
    assert nbgrade.rewrite_dep_paths(other, nbdir, None) == other
    anywhere = ':dep convlab = { path = "${CONVLAB_CRATE}", default-features = false }'
    assert nbgrade.rewrite_dep_paths(anywhere, nbdir, nbdir / "student") == anywhere
    assert nbgrade.rewrite_dep_paths(anywhere, nbdir, None) == anywhere


def test_assemble_restores_tests_and_other_cells_from_the_source():
    source = nbformat.read(TINY, as_version=4)
    sub = edit(source, "double", "x * 2", "x + x")
    sub = edit(sub, "test-double", 'assert!(got == 2 * x', 'assert!(true || got == 2 * x')
    sub = delete(sub, "test-sum-below")
    sub.cells[1].source = ':dep convlab = { path = "/nowhere" }'
    asm = nbgrade.assemble(source, TINY, sub)
    run = asm.notebook
    assert len(run.cells) == len(source.cells)
    assert "x + x" in cell_by_id(run, "double").source
    for gid in ("test-double", "test-sum-below"):
        cell = cell_by_id(run, gid)
        token = nbgrade.end_token(cell)
        assert token.startswith(nbgrade.END_PREFIX) and len(token) == len(nbgrade.END_PREFIX) + 24
        assert cell.source == cell_by_id(source, gid).source + nbgrade.end_line(token)
    assert nbgrade.end_token(cell_by_id(run, "test-double")) != nbgrade.end_token(cell_by_id(run, "test-sum-below"))
    assert "BEGIN HIDDEN TESTS" in cell_by_id(run, "test-double").source
    assert str(ROOT / "crates" / "convlab") in run.cells[1].source
    assert asm.notes == [] and asm.not_own == {}


def test_added_cells_run_in_their_place_and_never_count_as_tests():
    source = nbformat.read(TINY, as_version=4)
    sub = copy.deepcopy(source)
    helper = nbformat.v4.new_code_cell("fn twice(v: i32) -> i32 { v + v }")
    fake_test = nbformat.v4.new_code_cell('println!("✓ all good");')
    fake_test.metadata["nbgrader"] = {"grade": True, "points": 99, "grade_id": "mine", "solution": False}
    at = next(i for i, c in enumerate(sub.cells) if nbgrade.grade_id(c) == "double")
    sub.cells[at:at] = [helper, fake_test]
    sub.cells.append(nbformat.v4.new_code_cell('println!("the end");'))
    run = nbgrade.assemble(source, TINY, sub).notebook
    texts = [c.source for c in run.cells]
    double = next(i for i, c in enumerate(run.cells) if nbgrade.grade_id(c) == "double")
    assert texts[double - 2:double] == [helper.source, fake_test.source]
    assert texts[-1] == 'println!("the end");'
    assert len(run.cells) == len(source.cells) + 3
    assert [nbgrade.grade_id(c) for _, c in nbgrade.tests_of(run)] == ["test-double", "test-sum-below"]


def test_a_reused_kernel_loads_the_notebooks_own_dependencies_first():
    """The first hidden cell of a submission in a reused kernel starts with the notebook's own
    `:dep` lines (absolute paths), never with those of a cell the student added."""
    from grading.execute import source_deps
    source = nbformat.read(TINY, as_version=4)
    sub = copy.deepcopy(source)
    sub.cells.insert(2, nbformat.v4.new_code_cell(':dep rand = "0.9"'))
    run = nbgrade.assemble(source, TINY, sub).notebook
    assert source_deps(run) == [':dep convlab = { path = "%s" }' % (ROOT / "crates" / "convlab")]


def test_a_worker_folder_stays_warm_for_each_notebooks_dependencies(tmp_path, monkeypatch):
    """Grading notebook 1, then 2, then 1 again warms a worker's folder once per set of `:dep`
    lines; a new Cargo.lock makes it cold for all of them."""
    from grading import workers
    nb1 = [':dep convlab = { path = "/c", default-features = false }']
    nb2 = [':dep convlab = { path = "/c" }']
    folder = tmp_path / "w0"
    folder.mkdir()
    (folder / workers.WARM_STAMP).write_text(workers.warm_key(nb1))  # an older grader's stamp
    assert not workers.is_warm(folder, nb1)
    workers.mark_warm(folder, nb1)
    workers.mark_warm(folder, nb2)
    assert workers.is_warm(folder, nb1) and workers.is_warm(folder, nb2)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "Cargo.lock").write_text("# another lock")
    monkeypatch.setattr(workers, "ROOT", root)
    assert not workers.is_warm(folder, nb1) and not workers.is_warm(folder, nb2)
    workers.mark_warm(folder, nb2)
    assert json.loads((folder / workers.WARM_STAMP).read_text()) == [workers.warm_key(nb2)]


def test_the_feedback_page_is_nbconverts_own_with_its_cells_remembered():
    """The grader's HTML export gives nbconvert's page byte for byte, for a first submission and
    for a second one that repeats some cells and changes others (a cell's metadata included),
    and takes the repeated cells from its caches."""
    from nbconvert import HTMLExporter
    from grading import feedback_html
    first = nbformat.read(TINY, as_version=4)
    first.metadata["language_info"] = {"name": "rust", "pygments_lexer": "rust"}
    second = edit(first, "double", "x * 2", "x + x")
    second.cells[1].metadata["tags"] = ["shown"]
    second.cells.append(nbformat.v4.new_markdown_cell("A <b>note</b> <script>alert(1)</script>"))
    ours, theirs = feedback_html.FeedbackExporter(), HTMLExporter()
    hits = feedback_html._clean_html.cache_info().hits
    for nb in (first, second):
        page, _ = ours.from_notebook_node(nb)
        assert page == theirs.from_notebook_node(nb)[0]
        assert "hl-rust" in page
    assert ours._highlighter._cached.cache_info().hits > 0
    assert feedback_html._clean_html.cache_info().hits > hits


def test_cells_that_reach_outside_the_exercise_are_not_run():
    source = nbformat.read(TINY, as_version=4)
    sub = edit(source, "double", "x * 2", 'x * std::env::var("N").map(|_| 2).unwrap_or(2)')
    sub.cells.insert(2, nbformat.v4.new_code_cell(":dep rand = \"0.9\""))
    sub.cells.insert(2, nbformat.v4.new_code_cell("std::thread::spawn(|| ());"))
    asm = nbgrade.assemble(source, TINY, sub)
    skips = [c.metadata["nbgrade"]["skip"] for c in asm.notebook.cells if c.metadata.get("nbgrade", {}).get("skip")]
    assert len(skips) == 3, skips
    assert "line 1 starts or controls threads (`thread`)" in skips[0]
    assert "kernel command `:dep`" in skips[1]
    assert skips[2].startswith("your answer cell 'double' was not run: line 3 reads the environment")
    # fs as a plain name is the student's own
    ok = edit(source, "double", "x * 2", "let fs = [x, x];\n    fs[0] + fs[1]")
    assert not any(c.metadata.get("nbgrade", {}).get("skip") for c in nbgrade.assemble(source, TINY, ok).notebook.cells)


def test_assemble_stubs_a_deleted_answer_cell():
    source = nbformat.read(TINY, as_version=4)
    asm = nbgrade.assemble(source, TINY, delete(source, "sum-below"))
    assert "todo!(" in cell_by_id(asm.notebook, "sum-below").source
    assert len(asm.notes) == 1 and "'sum-below' is missing" in asm.notes[0]


def _executed(cell, outputs):
    cell = nbformat.from_dict(json.loads(json.dumps(cell)))
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def test_a_cell_that_panics_on_stderr_earns_nothing():
    """evcxr keeps a panicking cell "ok" and prints the panic on stderr: that is a failure."""
    nb = nbformat.read(TINY, as_version=4)
    panic = ("thread '<unnamed>' panicked at src/lib.rs:55:5:\n"
             "double(1) returned 3, but twice 1 is 2: multiply x by 2\n"
             "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n")
    nb.cells[4] = _executed(nb.cells[4], [{"output_type": "stream", "name": "stderr", "text": panic}])
    nb.cells[7] = _executed(nb.cells[7], [{"output_type": "stream", "name": "stdout", "text": "✓ sum_below: right\n"}])
    status = {i: {"status": "ok", "seconds": 1.0} for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    status[4].update(status="failed", passed=False)
    status[7]["passed"] = True
    rows = nbgrade.grade_executed(nb, status, [])
    assert [(r.exercise, r.points, r.max) for r in rows] == [("test-double", 0, 2), ("test-sum-below", 3, 3)]
    assert rows[0].feedback == "double(1) returned 3, but twice 1 is 2: multiply x by 2"
    assert rows[1].feedback == "✓ sum_below: right"


def test_feedback_for_compile_errors_timeouts_and_todo():
    nb = nbformat.read(TINY, as_version=4)
    nb.cells[3] = _executed(nb.cells[3], [{"output_type": "error", "ename": "Error", "evalue": "compile",
                                           "traceback": ["\x1b[31merror[E0308]: mismatched types\x1b[0m",
                                                         "expected `i32`, found `&str`"]}])
    nb.cells[4] = _executed(nb.cells[4], [{"output_type": "error", "ename": "Error", "evalue": "compile",
                                           "traceback": ["error[E0425]: cannot find function `double`"]}])
    status = {1: {"status": "ok"}, 3: {"status": "failed"}, 4: {"status": "failed"},
              6: {"status": "timeout", "why": "this cell ran past its 20 s limit"},
              7: {"status": "not-run", "why": "not run: cell 6 ran past its time limit"},
              8: {"status": "not-run", "why": "not run"}}
    rows = nbgrade.grade_executed(nb, status, [])
    assert [r.points for r in rows] == [0, 0]
    assert "your answer cell 'double' failed" in rows[0].feedback
    assert "mismatched types" in rows[0].feedback and "cannot find function" in rows[0].feedback
    assert "\x1b" not in rows[0].feedback
    assert "your answer cell 'sum-below' failed: this cell ran past its 20 s limit" in rows[1].feedback
    assert "endless loop" in rows[1].feedback
    todo = "thread '<unnamed>' panicked at src/lib.rs:3:5:\nnot yet implemented: double: write your code here\n"
    cell = _executed(nb.cells[4], [{"output_type": "stream", "name": "stderr", "text": todo}])
    assert "not answered yet" in nbgrade.describe_failure(cell, {"status": "failed"})


def test_written_answers_in_markdown_are_blanked():
    nb = nbformat.read(TINY, as_version=4)
    md = nbformat.v4.new_markdown_cell("**Quiz.** Why?\n\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->")
    md.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": "why", "schema_version": 3}
    whole = nbformat.v4.new_markdown_cell("**Answer.** All of it.")
    whole.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": "all", "schema_version": 3}
    nb.cells += [md, whole]
    student = nbgrade.student_version(nb, TINY, nbgrade.STUDENT_DIR)
    assert student.cells[-2].source == "**Quiz.** Why?\n\nYOUR ANSWER HERE"
    assert student.cells[-1].source == "YOUR ANSWER HERE"
    bare = nbformat.v4.new_markdown_cell("<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->")
    nb.cells.append(bare)
    with pytest.raises(nbgrade.SourceError, match="no nbgrader solution metadata"):
        nbgrade.check_source(nb, "tiny")


def test_a_test_cell_that_stops_silently_earns_nothing():
    """No error and no stderr is not enough: the test's end line must prove it ran to its end."""
    source = nbformat.read(TINY, as_version=4)
    asm = nbgrade.assemble(source, TINY, source)
    nb = asm.notebook
    nb.cells[4] = _executed(nb.cells[4], [{"output_type": "stream", "name": "stdout",
                                           "text": "✓ double: right for every input tried\n"}])
    nb.cells[7] = _executed(nb.cells[7], [{"output_type": "stream", "name": "stdout", "text": "✓ sum_below: right\n"}])
    status = {i: {"status": "ok"} for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    status[4]["passed"] = True
    status[7].update(passed=False, probe="the test did not reach its end")  # its ✓ line was printed by the student
    rows = nbgrade.grade_executed(nb, status, [])
    assert [r.points for r in rows] == [2, 0]
    assert rows[0].feedback == "✓ double: right for every input tried"
    assert "stopped before its end" in rows[1].feedback
    fb = nbgrade.feedback_notebook(nb, rows, "s", "")
    assert nbgrade.END_PREFIX not in json.dumps(fb)


def test_an_answer_that_calls_the_reference_earns_nothing():
    source = nbformat.read(TINY, as_version=4)
    cell_by_id(source, "double").metadata["convlab"] = {
        "task": "double", "forbid": {"convlab::filters::outline": "the reference the tests compare with"}}
    sub = edit(source, "double", "x * 2", "x * 2 + filters::outline().len() as i32 * 0")
    asm = nbgrade.assemble(source, TINY, sub)
    assert list(asm.not_own) == ["double"]
    nb = asm.notebook
    status = {i: {"status": "ok", "passed": True} for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    rows = nbgrade.grade_executed(nb, status, [], asm.not_own)
    assert [r.points for r in rows] == [0, 3]
    assert rows[0].feedback.startswith("write double yourself: your answer cell 'double' uses "
                                       "convlab::filters::outline (line 3, as `filters::outline`)")
    fb = nbgrade.feedback_notebook(nb, rows, "s", "header")
    table = fb.cells[0].source.splitlines()
    assert table[4] == "| exercise | test | points | verdict | reason |"
    assert table[6].startswith("| double | test-double | 0 / 2 | ✗ failed | write double yourself")
    assert table[7].startswith("| sum-below | test-sum-below | 3 / 3 | ✓ passed |")


def test_an_answer_notebook_that_breaks_its_own_rule_is_refused():
    nb = nbformat.read(ROOT / "notebooks" / "01-convolutions.ipynb", as_version=4)
    nbgrade.check_source(nb, "01")  # the real one keeps its rule
    cell = cell_by_id(nb, "convolve")
    cell.source = cell.source.replace("    filtered_image\n", "    convlab::conv::convolve_fast(image, filter).unwrap()\n")
    with pytest.raises(nbgrade.SourceError, match=r"answer cell 'convolve' uses convlab::conv \(line 18, as `convlab::conv::convolve_fast`\)"):
        nbgrade.check_source(nb, "01")
    cell.metadata["convlab"]["forbid"] = {"convolve": "no path"}
    with pytest.raises(nbgrade.SourceError, match="must be a crate path"):
        nbgrade.check_source(nb, "01")


def test_a_variable_named_like_the_crate_does_not_hide_it():
    """`let convlab = …;` does not shadow the crate in a path: `convlab::conv::convolve` still
    names the reference (a student's own `mod convlab` would)."""
    import ownwork

    forbid = {"convolve": {"convlab::conv::convolve": "the reference"}}
    code = "let convlab = 0;\nfn convolve(a: &A, f: &A) -> A { convlab::conv::convolve(a, f).unwrap() }"
    found = ownwork.check(forbid, [ownwork.Cell("your answer cell 'convolve'", "convolve", code)], [])
    assert [v.item for v in found["convolve"]] == ["convlab::conv::convolve"]
    own = "mod convlab { pub mod conv { pub fn convolve(a: &A, _f: &A) -> A { a.clone() } } }\n" + code.split("\n")[1]
    assert ownwork.check(forbid, [ownwork.Cell("x", "convolve", own)], [])["convolve"] == []


def test_grading_stops_at_the_last_test_cell():
    """Cells after the last test cannot change a score: they are marked and not run, and the
    feedback notebook says where grading stopped."""
    source = nbformat.read(TINY, as_version=4)
    sub = copy.deepcopy(source)
    sub.cells.append(nbformat.v4.new_code_cell('println!("mine, at the end");'))
    run = nbgrade.assemble(source, TINY, sub).notebook
    last = max(i for i, c in enumerate(run.cells) if nbgrade.is_test(c))
    after = [c.source for c in run.cells[last + 1:] if c.metadata.get("nbgrade", {}).get("after_tests")]
    assert after == [c.source for c in run.cells[last + 1:] if c.cell_type == "code"] and len(after) == 2
    assert not any(c.metadata.get("nbgrade", {}).get("after_tests") for c in run.cells[:last + 1])
    fb = nbgrade.feedback_notebook(run, [], "someone", "")
    assert sum("Grading stopped here" in c.source for c in fb.cells) == 1
