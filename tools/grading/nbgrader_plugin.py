"""The course's grading checks inside nbgrader: two preprocessors an instructor adds in
`nbgrader_config.py`, so that `nbgrader autograde` gives the verdicts `make grade` gives.

    import sys
    sys.path.insert(0, "/path/to/the/course/tools")
    from nbgrader.preprocessors import *  # noqa
    from grading.nbgrader_plugin import ConvlabChecks, ConvlabVerdicts
    c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                          OverwriteCells, CheckCellMetadata, ConvlabChecks]
    c.Autograde.autograde_preprocessors = [Execute, ConvlabVerdicts, IgnorePattern, ClearMetadataPreprocessor,
                                           LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]

`ConvlabChecks` (after nbgrader has put the test cells back) applies the rules of
docs/grading.md to the student's cells — the own-work rule, the constructs grading does not
run, the naming rule — and prepares the run: a first cell of the grader's own (stderr to
stdout, a lower priority, the memory limit, the panic hook that reports a panic under its own
cell), and an end line with a token of its own at the end of each test cell. `ConvlabVerdicts`
(right after nbgrader's Execute) turns a panic's report back into the stderr output of the cell
that panicked, fails a test cell whose end line did not show (a forged pass: nothing the
student's code prints decides a test), and takes the grader's lines out again. The rules come
from the answer notebook in nbgrader's `source/ASSIGNMENT/` folder (a student's copy of the
metadata is not trusted)."""
from __future__ import annotations

import secrets
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

import nbrun
from grading import crate_api, steps
from grading.execute import CHILD_SETUP, hide_end_lines, rust_str
from grading.markup import (END_PREFIX, context_of, end_line, exercise_of_tests, exercise_title, forbidden_of,
                            grade_id, is_solution, is_test)

GRADER_CELL = "convlab_grader_cell"
END_KEY = "convlab_end"


def _source_notebook(pre: Preprocessor, resources: dict) -> nbformat.NotebookNode:
    """The instructor's answer notebook of the notebook being graded."""
    info = resources.get("nbgrader", {})
    name = f"{info.get('notebook', '')}.ipynb"
    candidates = []
    if pre.source_notebook:
        candidates.append(Path(pre.source_notebook))
    try:
        from nbgrader.coursedir import CourseDirectory

        course = CourseDirectory(config=pre.config)
        candidates.append(Path(course.root) / course.source_directory / info.get("assignment", "") / name)
    except Exception:  # nbgrader not importable here: only the explicit path
        pass
    for path in candidates:
        if path.is_file():
            return nbformat.read(path, as_version=4)
    raise FileNotFoundError(f"ConvlabChecks: no answer notebook for {name} (looked at "
                            f"{', '.join(map(str, candidates)) or 'nothing'}); set ConvlabChecks.source_notebook")


def _not_run(cell, why: str) -> None:
    """A student's cell that is not run: its code becomes a comment saying why."""
    lines = [f"// {why}", "// (your code, not run:)"] + [f"// {line}" for line in cell.source.splitlines()]
    cell.source = "\n".join(lines)


class ConvlabChecks(Preprocessor):
    """The own-work rule, the denied constructs and the naming rule on a submission; the
    grader's first cell and the test cells' end lines (module docstring)."""

    enabled = Bool(True)  # nbconvert runs a preprocessor only when it is enabled
    source_notebook = Unicode("", help="The answer notebook (default: nbgrader's source/ASSIGNMENT/NOTEBOOK.ipynb)"
                              ).tag(config=True)

    def preprocess(self, nb, resources):
        source = _source_notebook(self, resources)
        students = steps.student_code(_mark_added(source, nb))
        asked, protected = steps.asked_names(source), steps.protected_names(source)
        titles = {grade_id(c): exercise_title(c) for c in source.cells if is_solution(c)}
        not_own: dict[str, list[str]] = {}
        skipped = set()
        for cell, label, gid in students:
            why = steps.student_check(cell, label) or steps.name_rule_break(cell.source, gid, asked, protected, titles)
            if why:
                why = why if why.startswith(label) else f"{label} was not run: {why}"
                skipped.add(id(cell))
                if gid:
                    not_own.setdefault(gid, []).append(why)
                _not_run(cell, why)
        import ownwork

        checked = [ownwork.Cell(label, gid, cell.source) for cell, label, gid in students if id(cell) not in skipped]
        found = ownwork.check(forbidden_of(source), checked, context_of(source), crate_api.for_notebook(source), asked)
        for gid, violations in found.items():
            if violations:
                not_own.setdefault(gid, []).extend(v.message(titles.get(gid, gid)) for v in violations)
        exercise = exercise_of_tests(nb)
        for index, cell in enumerate(nb.cells):
            if not is_test(cell):
                continue
            if exercise.get(index) in not_own:
                message = " | ".join(not_own[exercise[index]])
                # (in braces: evcxr takes a cell's first lines that start with `:` for its commands)
                cell.source = f"// {message}\n{{ ::core::panic!(\"{{}}\", {rust_str(message)}); }}"
            token = END_PREFIX + secrets.token_hex(12)
            cell.metadata[END_KEY] = token
            cell.source += end_line(token)
        first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
        grader = nbformat.v4.new_code_cell("\n".join((CHILD_SETUP, nbrun.PANIC_HOOK)))
        grader.metadata[GRADER_CELL] = True
        # after the notebook's `:dep` cell when it is the first: evcxr commands come first
        at = first + 1 if first < len(nb.cells) and nb.cells[first].source.lstrip().startswith(":dep") else first
        nb.cells.insert(at, grader)
        return nb, resources


def _mark_added(source, nb):
    """`nb` with the cells the student added marked as steps.student_code expects (their
    metadata says so; the source notebook's own cells are matched by id, grade_id or text)."""
    added = {id(c) for cells in steps.added_cells(source, nb).values() for c in cells}
    for k, cell in enumerate(nb.cells):
        if id(cell) in added and cell.cell_type == "code":
            cell.metadata.setdefault("nbgrade", {}).update(added=True, label=f"the cell you added (cell {k})")
    return nb


class ConvlabVerdicts(Preprocessor):
    """After nbgrader's Execute: panics reported under the cell that panicked, a test cell
    without its end line failed, the grader's lines taken out (module docstring)."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            nbrun.promote_panic_report(cell)
            token = cell.metadata.pop(END_KEY, None)
            if token:
                reached = any(token in o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
                if cell.source.endswith(end_line(token)):
                    cell.source = cell.source[: -len(end_line(token))]
                hide_end_lines(cell)
                failed = any(o.get("output_type") == "error" or o.get("name") == "stderr" for o in cell.outputs)
                if not reached and not failed:  # no message, yet it stopped early: a forged end
                    cell.outputs.append(nbformat.v4.new_output(
                        "error", ename="NotFinished", evalue="the test did not reach its end",
                        traceback=["the test did not reach its end (its last line did not run)"]))
            cell.metadata.get("nbgrade", {}).clear()
            cell.metadata.pop("nbgrade", None)
        nb.cells = [c for c in nb.cells if not c.metadata.get(GRADER_CELL)]
        return nb, resources
