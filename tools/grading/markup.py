"""The exercise markup of the answer notebooks (nbgrader's): which cell is an answer, a test, a
hidden test; how an answer region is stubbed; the source's own checks."""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat

import ownwork

BEGIN_SOLUTION = re.compile(r"^(\s*)//\s*BEGIN SOLUTION\b[\s:—-]*(.*?)\s*$")
END_SOLUTION = re.compile(r"^\s*//\s*END SOLUTION\b")
BEGIN_HIDDEN = re.compile(r"^\s*//\s*BEGIN HIDDEN TESTS\b")
END_HIDDEN = re.compile(r"^\s*//\s*END HIDDEN TESTS\b")
DEP_PATH = re.compile(r'^(\s*:dep\s+[\w-]+\s*=\s*\{.*?\bpath\s*=\s*")([^"]+)(".*)$')
TEXT_STUB = "YOUR ANSWER HERE"

# A test cell ends by printing a token made when the submission is assembled: its line in the
# test cell's own output proves that the cell ran to its end (a panic or an early `?` skips it)
# and that the kernel's output is in step with its cells (see grading.execute). Code a student
# writes cannot read the token: it lives in the test cell's own compiled code, and answers may
# not use the file system, `unsafe`, threads or the kernel's streams (rustscan.DENIED).
END_PREFIX = "nbgrade-end-"


class SourceError(ValueError):
    """An answer notebook whose exercise markup is wrong; the message names the cell."""


def nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_solution(cell) -> bool:
    return bool(nbg(cell).get("solution"))


def is_test(cell) -> bool:
    return bool(nbg(cell).get("grade")) and cell.cell_type == "code" and not is_solution(cell)


def grade_id(cell) -> str | None:
    return nbg(cell).get("grade_id")


def tests_of(nb) -> list[tuple[int, nbformat.NotebookNode]]:
    """The autograder test cells of a notebook, with their indices."""
    return [(i, c) for i, c in enumerate(nb.cells) if is_test(c)]


def end_line(token: str) -> str:
    # An absolute path: a student's own `println` macro cannot stand in for it.
    return f'\n::std::println!("{token}");'


def end_token(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrade", {}).get("end")


def forbidden_items(cell) -> dict[str, str]:
    """What an answer cell's answer may not use: {crate item or module: why} from its metadata."""
    return dict(cell.get("metadata", {}).get("convlab", {}).get("forbid", {}) or {})


def allowed_items(cell) -> dict[str, str]:
    """The crate items or modules an answer may use although they return its answer type:
    {path: why} from its metadata (tests/test_grading_rules.py holds every such item to a
    forbid or an allow entry)."""
    return dict(cell.get("metadata", {}).get("convlab", {}).get("allow", {}) or {})


def exercise_title(cell) -> str:
    return cell.get("metadata", {}).get("convlab", {}).get("task") or grade_id(cell) or "this exercise"


def exercise_of_tests(nb) -> dict[int, str | None]:
    """Each test cell's exercise: the code answer cell before it (None before the first)."""
    current = None
    out = {}
    for i, cell in enumerate(nb.cells):
        if is_solution(cell) and cell.cell_type == "code":
            current = grade_id(cell)
        elif is_test(cell):
            out[i] = current
    return out


def has_solution_markers(cell) -> bool:
    if cell.cell_type == "code":
        return any(BEGIN_SOLUTION.match(l) for l in cell.source.splitlines())
    return "BEGIN SOLUTION" in cell.source


def check_cell(cell, where: str, seen: set[str]) -> None:
    """Refuses one cell whose markup would make a wrong student version (`seen`: the grade_ids
    of the cells before it)."""
    meta = nbg(cell)
    gid = grade_id(cell)
    if meta and (meta.get("solution") or meta.get("grade")):
        if not gid:
            raise SourceError(f"{where}: an exercise cell needs a grade_id in its nbgrader metadata")
        if gid in seen:
            raise SourceError(f"{where}: grade_id {gid!r} is used twice; each must be unique")
        seen.add(gid)
    if meta.get("grade"):  # a test cell, or a written answer graded by hand (nbgrader's formgrader)
        try:
            points = float(meta.get("points"))
        except (TypeError, ValueError):
            raise SourceError(f"{where}: grade cell {gid!r} needs numeric points") from None
        if points <= 0:
            raise SourceError(f"{where}: grade cell {gid!r} has {points} points; give it more than 0")
    has_markers = has_solution_markers(cell)
    if has_markers and not is_solution(cell):
        raise SourceError(f"{where}: has BEGIN SOLUTION but no nbgrader solution metadata")
    if not is_test(cell) and any(BEGIN_HIDDEN.match(l) for l in cell.source.splitlines()):
        raise SourceError(f"{where}: hidden tests outside a test cell")
    if is_solution(cell) and cell.cell_type == "code" and not has_markers:
        raise SourceError(f"{where}: solution cell {gid!r} has no // BEGIN SOLUTION region")
    for kind, entries in (("forbid", forbidden_items(cell)), ("allow", allowed_items(cell))):
        for item in entries:
            if not is_solution(cell) or not re.fullmatch(r"\w+(::\w+)+", item):
                raise SourceError(f"{where}: {kind} entry {item!r} must be a crate path (crate::module or "
                                  "crate::module::item) in an answer cell's metadata")


def check_source(nb, name: str) -> None:
    """Refuses an answer notebook whose markup would make a wrong student version, or whose own
    answers break the own-work rule they set the students."""
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        check_cell(cell, f"{name}, cell {i}", seen)
    answers = [ownwork.Cell(f"answer cell {grade_id(c)!r}", grade_id(c), c.source)
               for c in nb.cells if is_solution(c) and c.cell_type == "code"]
    from grading import crate_api

    for gid, found in ownwork.check(forbidden_of(nb), answers, context_of(nb), crate_api.for_notebook(nb)).items():
        if found:
            v = found[0]
            raise SourceError(f"{name}: answer cell {gid!r} uses {v.item} (line {v.line}, as `{v.written}`), "
                              "which its own metadata forbids to students")


def forbidden_of(nb) -> dict[str, dict[str, str]]:
    """{answer grade_id: its forbidden items} for the code answer cells that forbid any."""
    return {grade_id(c): forbidden_items(c) for c in nb.cells
            if is_solution(c) and c.cell_type == "code" and forbidden_items(c)}


def context_of(nb) -> list[str]:
    """The code of the notebook's own cells (neither answers nor tests): what answers may use."""
    return [c.source for c in nb.cells if c.cell_type == "code" and not is_solution(c) and not is_test(c)]


def code_stub(indent: str, hint: str, gid: str) -> list[str]:
    comment = f"// YOUR CODE HERE: {hint}" if hint else "// YOUR CODE HERE (see the task above)"
    # a statement (`;`): the stub compiles whether the region ends its block or code follows it
    return [indent + comment, f'{indent}todo!("{gid}: write your code here, then run the test cell below");']


def replace_regions(source: str, begin, end, replace, names: tuple[str, str], where: str,
                    strict: bool = True) -> str:
    """Replaces each region from a line that `begin(line)` matches to one that `end(line)`
    matches (both included) by the lines `replace(match)` gives. `names`: the two markers, for
    the errors; `strict`: refuse a nested region and an end without a begin too."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        opened = begin(line)
        if opened:
            if inside and strict:
                raise SourceError(f"{where}: nested {names[0]}")
            inside = True
            out.extend(replace(opened))
        elif end(line):
            if not inside and strict:
                raise SourceError(f"{where}: {names[1]} without {names[0]}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise SourceError(f"{where}: {names[0]} without {names[1]}")
    return "\n".join(out)


SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def clear_solutions(source: str, gid: str, code: bool, where: str) -> str:
    """Replaces each `// BEGIN SOLUTION` … `// END SOLUTION` region by a stub (in a written
    answer, a region marked BEGIN SOLUTION … END SOLUTION by the text TEXT_STUB)."""
    if code:
        return replace_regions(source, BEGIN_SOLUTION.match, END_SOLUTION.match,
                               lambda m: code_stub(m.group(1), m.group(2), gid), SOLUTION_MARKERS, where)
    return replace_regions(source, lambda l: "BEGIN SOLUTION" in l, lambda l: "END SOLUTION" in l,
                           lambda m: [TEXT_STUB], SOLUTION_MARKERS, where, strict=False)


def strip_hidden(source: str, replacement: str | None = None, where: str = "") -> str:
    """Removes `// BEGIN HIDDEN TESTS` … `// END HIDDEN TESTS` (optionally leaving a note)."""
    def note(m) -> list[str]:
        line = m.string
        return [line[: len(line) - len(line.lstrip())] + replacement] if replacement else []
    return replace_regions(source, BEGIN_HIDDEN.match, END_HIDDEN.match, note, HIDDEN_MARKERS, where)


def rewrite_dep_paths(source: str, old_dir: Path, new_dir: Path | None) -> str:
    """Rewrites relative `:dep x = { path = "…" }` paths written for a notebook in `old_dir`
    so they resolve from `new_dir` (relative), or to absolute paths when `new_dir` is None."""
    lines = []
    for line in source.split("\n"):
        m = DEP_PATH.match(line)
        # `${CONVLAB_CRATE}` (the kernel's launcher sets it) names the crate from anywhere
        if m and not os.path.isabs(m.group(2)) and "${" not in m.group(2):
            target = Path(os.path.normpath(old_dir / m.group(2)))
            if new_dir is None:
                new = str(target)
            else:
                new = os.path.relpath(target, new_dir)
            line = m.group(1) + new + m.group(3)
        lines.append(line)
    return "\n".join(lines)


def dep_cells(source_nb, source_path: Path) -> list[str]:
    """The `:dep` lines of a source notebook, with absolute paths (what a kernel compiles first)."""
    return [line for cell in source_nb.cells if cell.cell_type == "code"
            for line in dep_lines(rewrite_dep_paths(cell.source, source_path.parent.resolve(), None))]


def dep_lines(source: str) -> list[str]:
    """The `:dep` lines of a cell's source, stripped."""
    return [l.strip() for l in source.splitlines() if l.strip().startswith(":dep")]


def is_dep_cell(cell) -> bool:
    return bool(dep_lines(cell.source))


ROOT = Path(__file__).resolve().parent.parent.parent
CRATE_DEFAULT_DEP = ':dep convlab = { path = "%s" }' % (ROOT / "crates" / "convlab")
