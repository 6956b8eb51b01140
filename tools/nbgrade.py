#!/usr/bin/env python3
"""Student notebooks and autograding for the course's Rust (evcxr) notebooks.

The answer notebooks in notebooks/ are the single source. Exercises follow nbgrader's
conventions: solution code between `// BEGIN SOLUTION` and `// END SOLUTION` in cells whose
metadata says `"nbgrader": {"solution": true, "grade_id": ...}`; autograder test cells say
`"nbgrader": {"grade": true, "points": N, "grade_id": ...}`; hidden test code sits between
`// BEGIN HIDDEN TESTS` and `// END HIDDEN TESTS`.

    python tools/nbgrade.py student                   # notebooks/*.ipynb -> notebooks/student/
    python tools/nbgrade.py student --check           # fail when notebooks/student/ is stale
    python tools/nbgrade.py grade SUBMISSIONS --source notebooks/01-convolutions.ipynb \\
        --out build/grades --workers 2                # gradebook.csv + feedback per student
    python tools/nbgrade.py grade SUBMISSIONS --source NB --out build/grades/shard-3 --shard 3/8
    python tools/nbgrade.py merge build/grades/all build/grades/shard-*   # one gradebook
    python tools/nbgrade.py prewarm --workers 2       # warm each worker's evcxr build folder

A folder of submissions holds one notebook per student: `NAME.ipynb`, or `NAME/*.ipynb`
(the file named like the source, or the only notebook in the folder).

Grading rebuilds every submission from the source: the student's answer cells (matched by
grade_id) go into the source's cells, so test cells, hidden tests and every other cell are
the original ones whatever the student did to them. A test cell earns its points when it
ran to the end with no error output and nothing on stderr (evcxr reports a panic only on
stderr and keeps the cell "ok"). Each submission runs in its own process with a per-cell
and a per-notebook time limit; a cell that runs past its limit gets its kernel killed and
the rest of that notebook counts as failed. Parallel workers each get their own copy of a
prewarmed evcxr build folder (two kernels must never share one).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gradebook  # noqa: E402
import ownwork  # noqa: E402
import rustscan  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STUDENT_DIR = NOTEBOOKS / "student"
CRATE = ROOT / "crates" / "convlab"
KERNEL = "rust"
CACHE = Path(os.environ.get("CONVLAB_CACHE", Path.home() / ".cache" / "convlab"))

BEGIN_SOLUTION = re.compile(r"^(\s*)//\s*BEGIN SOLUTION\b[\s:—-]*(.*?)\s*$")
END_SOLUTION = re.compile(r"^\s*//\s*END SOLUTION\b")
BEGIN_HIDDEN = re.compile(r"^\s*//\s*BEGIN HIDDEN TESTS\b")
END_HIDDEN = re.compile(r"^\s*//\s*END HIDDEN TESTS\b")
DEP_PATH = re.compile(r'^(\s*:dep\s+[\w-]+\s*=\s*\{.*?\bpath\s*=\s*")([^"]+)(".*)$')
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TEXT_STUB = "YOUR ANSWER HERE"


class SourceError(ValueError):
    """An answer notebook whose exercise markup is wrong; the message names the cell."""


# ---------------------------------------------------------------------------------------------
# Cells and their nbgrader metadata


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


def check_source(nb, name: str) -> None:
    """Refuses an answer notebook whose markup would make a wrong student version."""
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        meta = nbg(cell)
        gid = grade_id(cell)
        if meta and (meta.get("solution") or meta.get("grade")):
            if not gid:
                raise SourceError(f"{where}: an exercise cell needs a grade_id in its nbgrader metadata")
            if gid in seen:
                raise SourceError(f"{where}: grade_id {gid!r} is used twice; each must be unique")
            seen.add(gid)
        if is_test(cell):
            try:
                points = float(meta.get("points"))
            except (TypeError, ValueError):
                raise SourceError(f"{where}: test cell {gid!r} needs numeric points") from None
            if points <= 0:
                raise SourceError(f"{where}: test cell {gid!r} has {points} points; give it more than 0")
        if cell.cell_type == "code":
            has_markers = any(BEGIN_SOLUTION.match(l) for l in cell.source.splitlines())
        else:
            has_markers = "BEGIN SOLUTION" in cell.source
        if has_markers and not is_solution(cell):
            raise SourceError(f"{where}: has BEGIN SOLUTION but no nbgrader solution metadata")
        if not is_test(cell) and any(BEGIN_HIDDEN.match(l) for l in cell.source.splitlines()):
            raise SourceError(f"{where}: hidden tests outside a test cell")
        if is_solution(cell) and cell.cell_type == "code" and not has_markers:
            raise SourceError(f"{where}: solution cell {gid!r} has no // BEGIN SOLUTION region")
        for item in forbidden_items(cell):
            if not is_solution(cell) or not re.fullmatch(r"\w+(::\w+)+", item):
                raise SourceError(f"{where}: forbid entry {item!r} must be a crate path (crate::module::item) "
                                  "in an answer cell's metadata")
    # The answers themselves must be their own work by the same rule the students' are.
    answers = [ownwork.Cell(f"answer cell {grade_id(c)!r}", grade_id(c), c.source)
               for c in nb.cells if is_solution(c) and c.cell_type == "code"]
    context = [c.source for c in nb.cells if c.cell_type == "code" and not is_solution(c) and not is_test(c)]
    forbid = {grade_id(c): forbidden_items(c) for c in nb.cells if is_solution(c) and forbidden_items(c)}
    for gid, found in ownwork.check(forbid, answers, context).items():
        if found:
            v = found[0]
            raise SourceError(f"{name}: answer cell {gid!r} uses {v.item} (line {v.line}, as `{v.written}`), "
                              "which its own metadata forbids to students")


# ---------------------------------------------------------------------------------------------
# Student versions


def code_stub(indent: str, hint: str, gid: str) -> list[str]:
    comment = f"// YOUR CODE HERE: {hint}" if hint else "// YOUR CODE HERE (see the task above)"
    # a statement (`;`): the stub compiles whether the region ends its block or code follows it
    return [indent + comment, f'{indent}todo!("{gid}: write your code here, then run the test cell below");']


def clear_solutions(source: str, gid: str, code: bool, where: str) -> str:
    """Replaces each `// BEGIN SOLUTION` … `// END SOLUTION` region by a stub."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        begin = BEGIN_SOLUTION.match(line) if code else None
        if code and begin:
            if inside:
                raise SourceError(f"{where}: nested BEGIN SOLUTION")
            inside = True
            out.extend(code_stub(begin.group(1), begin.group(2), gid))
        elif code and END_SOLUTION.match(line):
            if not inside:
                raise SourceError(f"{where}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif not code and "BEGIN SOLUTION" in line:
            inside = True
            out.append(TEXT_STUB)
        elif not code and "END SOLUTION" in line:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise SourceError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return "\n".join(out)


def strip_hidden(source: str, replacement: str | None = None, where: str = "") -> str:
    """Removes `// BEGIN HIDDEN TESTS` … `// END HIDDEN TESTS` (optionally leaving a note)."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        if BEGIN_HIDDEN.match(line):
            if inside:
                raise SourceError(f"{where}: nested BEGIN HIDDEN TESTS")
            inside = True
            if replacement:
                out.append(line[: len(line) - len(line.lstrip())] + replacement)
        elif END_HIDDEN.match(line):
            if not inside:
                raise SourceError(f"{where}: END HIDDEN TESTS without BEGIN HIDDEN TESTS")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise SourceError(f"{where}: BEGIN HIDDEN TESTS without END HIDDEN TESTS")
    return "\n".join(out)


def rewrite_dep_paths(source: str, old_dir: Path, new_dir: Path | None) -> str:
    """Rewrites relative `:dep x = { path = "…" }` paths written for a notebook in `old_dir`
    so they resolve from `new_dir` (relative), or to absolute paths when `new_dir` is None."""
    lines = []
    for line in source.split("\n"):
        m = DEP_PATH.match(line)
        if m and not os.path.isabs(m.group(2)):
            target = Path(os.path.normpath(old_dir / m.group(2)))
            if new_dir is None:
                new = str(target)
            else:
                new = os.path.relpath(target, new_dir)
            line = m.group(1) + new + m.group(3)
        lines.append(line)
    return "\n".join(lines)


def student_version(source_nb, source_path: Path, out_dir: Path) -> nbformat.NotebookNode:
    """The student notebook of an answer notebook: solutions stubbed, hidden tests removed,
    outputs cleared, test cells locked, `:dep` paths rewritten for `out_dir`."""
    name = source_path.name
    check_source(source_nb, name)
    nb = copy.deepcopy(source_nb)
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.source = rewrite_dep_paths(cell.source, source_path.parent.resolve(), out_dir.resolve())
        if is_solution(cell) and cell.cell_type != "code" and "BEGIN SOLUTION" not in cell.source:
            cell.source = TEXT_STUB  # a written answer without a marked region: all of it
        elif is_solution(cell):
            cell.source = clear_solutions(cell.source, grade_id(cell), cell.cell_type == "code", where)
        if is_test(cell):
            cell.source = strip_hidden(cell.source, where=where)
        if is_test(cell) or nbg(cell).get("locked"):
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
    return nb


def exercise_sources(root: Path = NOTEBOOKS) -> list[Path]:
    """The answer notebooks that contain exercises."""
    found = []
    for path in sorted(root.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if any(is_solution(c) or is_test(c) for c in nb.cells):
            found.append(path)
    return found


def write_students(sources: list[Path], out_dir: Path, check: bool) -> int:
    """Writes (or with `check`, compares) the student version of each source."""
    stale = 0
    for src in sources:
        nb = student_version(nbformat.read(src, as_version=4), src, out_dir)
        text = nbformat.writes(nb) + "\n"
        target = out_dir / src.name
        if check:
            if not target.exists() or target.read_text() != text:
                print(f"{target} is out of date with {src}: run `make student`", file=sys.stderr)
                stale += 1
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            if not target.exists() or target.read_text() != text:
                target.write_text(text)
                print(f"wrote {target}")
    return 1 if stale else 0


# ---------------------------------------------------------------------------------------------
# Assembling a submission


@dataclass
class Assembled:
    notebook: nbformat.NotebookNode
    notes: list[str] = field(default_factory=list)  # what was replaced or missing
    # exercise (answer grade_id) -> why its tests earn nothing whatever they print
    not_own: dict[str, list[str]] = field(default_factory=dict)


# A test cell ends by defining a variable with an unguessable name; evcxr keeps the variables
# of a cell only when the cell ran to its end (a panic or an early `?` drops them). Right after
# the test cell the grader runs a probe cell of its own that names the variable (it compiles
# only if evcxr kept it) and prints a token made at that moment (the probe's output proves that
# the kernel ran the probe itself, in order; see `run_cells`).
OK_PREFIX = "__nbgrade_ok_"


def ok_line(var: str) -> str:
    return f"\nlet {var}: u8 = 1;"


def ok_var(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrade", {}).get("ok")


def forbidden_items(cell) -> dict[str, str]:
    """What an answer cell's answer may not use: {crate item: why} from its metadata."""
    return dict(cell.get("metadata", {}).get("convlab", {}).get("forbid", {}) or {})


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


def added_cells(source_nb, submitted) -> dict[int, list]:
    """The cells the student added, by the index of the source cell they follow (-1: before
    the first). A cell is the source's own when it has a source cell's id or grade_id (or,
    in a notebook without ids, exactly a source cell's text); every other cell was added."""
    ids = {c.get("id"): i for i, c in enumerate(source_nb.cells) if c.get("id")}
    gids = {grade_id(c): i for i, c in enumerate(source_nb.cells) if grade_id(c)}
    texts = {c.source: i for i, c in enumerate(source_nb.cells)}
    anchor = -1
    added: dict[int, list] = {}
    for cell in submitted.cells if submitted is not None else []:
        gid = grade_id(cell)
        if gid in gids and (is_solution(cell) or is_test(cell) or nbg(cell).get("locked")):
            anchor = gids[gid]
        elif cell.get("id") in ids:
            anchor = ids[cell.get("id")]
        elif not cell.get("id") and cell.source in texts:
            anchor = texts[cell.source]
        else:
            added.setdefault(anchor, []).append(cell)
    return added


def student_check(cell, label: str) -> str | None:
    """Why a cell the student wrote is not run, or None: evcxr commands (`:dep`, `:clear`, …) and
    code that acts outside its own call (threads, processes, unsafe, foreign functions)."""
    cmds = rustscan.evcxr_commands(cell.source)
    if cmds:
        cmd, line = cmds[0]
        return (f"{label} was not run: line {line} is the kernel command `{cmd}`, which grading does not run "
                "(the notebook's own first cells load everything the exercises need)")
    bad = rustscan.denied(rustscan.tokens(cell.source))
    if bad:
        word, line, why = bad[0]
        return (f"{label} was not run: line {line} {why} (`{word}`), which grading does not allow; "
                "the exercises need none of it")
    return None


def assemble(source_nb, source_path: Path, submitted) -> Assembled:
    """The notebook to run for one submission: the source's cells, with the student's answer
    cells put in by grade_id and the cells the student added in their places; a missing answer
    cell gets the student stub. Test cells, hidden tests and every other cell are the source's."""
    answers = {}
    for cell in submitted.cells if submitted is not None else []:
        gid = grade_id(cell)
        if gid and is_solution(cell) and gid not in answers:
            answers[gid] = cell
    added = added_cells(source_nb, submitted)
    src_dir = source_path.parent.resolve()
    notes: list[str] = []
    cells = []
    student_cells: list[ownwork.Cell] = []

    def put_added(anchor: int) -> None:
        for theirs in added.get(anchor, []):
            cell = nbformat.from_dict(copy.deepcopy(dict(theirs)))
            cell.metadata = {"nbgrade": {"added": True}}  # never a test or answer cell
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
                after = f"after cell {anchor}" if anchor >= 0 else "at the top"
                label = f"the cell you added {after}"
                cell.metadata["nbgrade"]["label"] = label
                why = student_check(cell, label)
                if why:
                    cell.metadata["nbgrade"]["skip"] = why
                    notes.append(why)
                else:
                    student_cells.append(ownwork.Cell(label, None, cell.source))
            cells.append(cell)

    put_added(-1)
    for i, cell in enumerate(copy.deepcopy(source_nb.cells)):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.source = rewrite_dep_paths(cell.source, src_dir, None)
        if is_test(cell):
            var = OK_PREFIX + secrets.token_hex(8)
            cell.metadata.setdefault("nbgrade", {})["ok"] = var
            cell.source += ok_line(var)
        if is_solution(cell):
            gid = grade_id(cell)
            theirs = answers.get(gid)
            if theirs is not None and theirs.cell_type == cell.cell_type:
                cell.source = rewrite_dep_paths(theirs.source, src_dir, None)
            else:
                notes.append(f"answer cell {gid!r} is missing from the submission (deleted, or its "
                             "metadata lost); it was graded as not answered")
                cell.source = clear_solutions(cell.source, gid, cell.cell_type == "code", gid)
            if cell.cell_type == "code":
                label = f"your answer cell {gid!r}"
                why = student_check(cell, label)
                if why:
                    cell.metadata.setdefault("nbgrade", {})["skip"] = why
                else:
                    student_cells.append(ownwork.Cell(label, gid, cell.source))
        cells.append(cell)
        put_added(i)
    nb = copy.deepcopy(source_nb)
    nb.cells = cells
    forbid = {grade_id(c): forbidden_items(c) for c in source_nb.cells
              if is_solution(c) and c.cell_type == "code" and forbidden_items(c)}
    context = [c.source for c in source_nb.cells
               if c.cell_type == "code" and not is_solution(c) and not is_test(c)]
    titles = {grade_id(c): exercise_title(c) for c in source_nb.cells if is_solution(c)}
    found = ownwork.check(forbid, student_cells, context)
    not_own = {gid: [v.message(titles.get(gid, gid)) for v in vs] for gid, vs in found.items() if vs}
    return Assembled(nb, notes, not_own)


# ---------------------------------------------------------------------------------------------
# Running one notebook (inside a child process: `nbgrade.py _run`)


DEP_TIMEOUT = 600.0
PROBE_TIMEOUT = 60
TERMINATED = 143  # exit status of a `_run` child that was asked to stop: not retried
PROBE_PREFIX = "nbgrade-probe-"

# Run before the notebook: what the student's code writes on stderr goes to stdout, which
# evcxr reads in order with the cell's end, so a debug print shows under the cell that made it
# (evcxr forwards stderr on a path of its own, and a late line lands under the next cell).
STDERR_TO_STDOUT = """unsafe extern "C" { fn dup2(old: i32, new: i32) -> i32; }
if unsafe { dup2(1, 2) } < 0 { panic!("grading could not send stderr to stdout"); }"""


def is_dep_cell(cell) -> bool:
    return any(l.strip().startswith(":dep") for l in cell.source.splitlines())


def run_extra(client, nb, source: str, at: int, timeout: int) -> nbformat.NotebookNode:
    """Executes a cell of the grader's own, not kept in `nb` (nbclient stores the executed
    cell at its index, so it is put there for the time of the run)."""
    cell = nbformat.v4.new_code_cell(source)
    nb.cells.insert(at, cell)
    old = client.timeout
    client.timeout = timeout
    try:
        client.execute_cell(cell, at)
    finally:
        client.timeout = old
        nb.cells.pop(at)
    return cell


def probe(client, nb, index: int, var: str) -> tuple[bool, str, list]:
    """Did the test cell at `index` run to its end? (passed, why not, outputs to give back to
    the test cell). The probe compiles only if evcxr kept the test's last variable, and must
    print a token made now: a test cut short, or a kernel whose output is out of step with its
    cells (a forged end-of-cell line), fails it."""
    token = PROBE_PREFIX + secrets.token_hex(12)
    cell = run_extra(client, nb, f'let _ = &{var};\nprintln!("{token}");', index + 1, PROBE_TIMEOUT)
    errors = error_text(cell)
    said = stream_text(cell, "stdout")
    rest = []
    for o in cell.outputs:  # late output of the test cell: keep it with the test
        if o.get("output_type") == "stream":
            text = "".join(l for l in o.get("text", "").splitlines(keepends=True) if token not in l)
            if text:
                rest.append(nbformat.v4.new_output("stream", name=o.get("name"), text=text))
        elif o.get("output_type") != "error":
            rest.append(o)
    if errors:
        return False, "the test did not reach its end", rest
    if token not in said:
        return False, "the kernel's output was out of step with its cells after this test (did your code print a line of the kernel's own protocol, EVCXR_…?)", rest
    return True, "", rest


def run_cells(nb, cell_timeout: float, notebook_timeout: float, cwd: Path) -> dict:
    """Executes every code cell in order and returns {index: {"status", "seconds", …}}.
    status: ok | failed (error output or a panic) | timeout | dead | not-run | skipped.
    Test cells also get "passed": whether the probe after them proved they ran to their end."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from nbrun import cell_problem, install_panic_hook, promote_panic_report

    client = NotebookClient(nb, kernel_name=KERNEL, timeout=int(cell_timeout), allow_errors=True,
                            shutdown_kernel="immediate", startup_timeout=120,
                            resources={"metadata": {"path": str(cwd)}})
    deadline = time.monotonic() + notebook_timeout
    status: dict[int, dict] = {}
    stop: str | None = None
    with client.setup_kernel():
        client.timeout = int(max(cell_timeout, 120))
        setup = run_extra(client, nb, STDERR_TO_STDOUT, 0, int(max(cell_timeout, 120)))
        if cell_problem(0, setup):
            raise RuntimeError(f"grading's first cell failed: {cell_problem(0, setup)}")
        install_panic_hook(client, nb)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            skip = cell.get("metadata", {}).get("nbgrade", {}).get("skip")
            if skip:
                status[index] = {"status": "skipped", "seconds": 0.0, "why": skip}
                continue
            if stop:
                status[index] = {"status": "not-run", "seconds": 0.0, "why": stop}
                continue
            left = deadline - time.monotonic()
            if left <= 1:
                stop = f"the notebook ran past its {notebook_timeout:.0f} s limit"
                status[index] = {"status": "not-run", "seconds": 0.0, "why": stop}
                continue
            # `:dep` cells build the crates (not the student's code): they get a longer limit.
            own = max(cell_timeout, DEP_TIMEOUT) if is_dep_cell(cell) else cell_timeout
            limit = min(own, left)
            client.timeout = max(1, int(limit))
            t0 = time.monotonic()
            try:
                client.execute_cell(cell, index)
                var = ok_var(cell)
                passed, why, late = probe(client, nb, index, var) if var else (None, "", [])
            except CellTimeoutError:
                secs = time.monotonic() - t0
                hit_notebook = limit < own
                what = (f"the notebook ran past its {notebook_timeout:.0f} s limit" if hit_notebook
                        else f"this cell ran past its {own:.0f} s limit")
                status[index] = {"status": "timeout", "seconds": secs, "why": what}
                stop = f"not run: cell {index} ran past its time limit, so its kernel was stopped"
                continue
            except DeadKernelError as e:
                status[index] = {"status": "dead", "seconds": time.monotonic() - t0,
                                 "why": f"the kernel died: {e}"}
                stop = f"not run: the kernel died in cell {index}"
                continue
            cell.outputs.extend(late)
            secs = time.monotonic() - t0
            promote_panic_report(cell)
            problem = cell_problem(index, cell)
            status[index] = {"status": "failed" if problem else "ok", "seconds": secs}
            if var:
                status[index]["passed"] = bool(passed)
                if not passed:
                    status[index]["probe"] = why
    return status


def child_main(args) -> int:
    """`_run`: execute an assembled notebook; write the executed notebook and a status file."""
    def on_term(signum, frame):  # let the kernel be shut down on the way out
        raise SystemExit(TERMINATED)
    signal.signal(signal.SIGTERM, on_term)
    nb = nbformat.read(args.notebook, as_version=4)
    status = run_cells(nb, args.cell_timeout, args.notebook_timeout, Path(args.cwd))
    nbformat.write(nb, args.notebook)
    Path(args.status).write_text(json.dumps({str(k): v for k, v in status.items()}))
    return 0


# ---------------------------------------------------------------------------------------------
# Feedback


def stream_text(cell, name: str) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


def error_text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            tb = "\n".join(o.get("traceback", [])) or f"{o.get('ename')}: {o.get('evalue')}"
            parts.append(ANSI.sub("", tb))
    return "\n".join(parts)


def panic_message(stderr: str) -> str:
    """The message of a Rust panic as evcxr prints it on stderr, without the boilerplate."""
    lines = ANSI.sub("", stderr).splitlines()
    msg: list[str] = []
    capture = False
    for line in lines:
        if re.match(r"thread '.*?'.*? panicked at", line):
            capture = True
            rest = line.split("panicked at", 1)[1]
            # old format: "panicked at 'message', src/lib.rs:1:2"
            m = re.match(r"\s*'(.*)',\s*\S+:\d+:\d+\s*$", rest)
            if m:
                msg.append(m.group(1))
            continue
        if line.startswith("note: run with") or line.startswith("stack backtrace"):
            capture = False
            continue
        if capture:
            msg.append(line)
    text = "\n".join(msg).strip()
    return text or ANSI.sub("", stderr).strip()


def shorten(text: str, limit: int = 600) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compile_error(text: str) -> str:
    """The compiler's messages from an evcxr error output, without the code excerpts and the
    drawings around them: at most four distinct ones."""
    keep: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        label = re.search(r"[\^─┬╰]+\s+(\S.*)$", s)  # "^^^^ not found in this scope"
        if label and re.match(r"^[\s\^─┬╰│|]*[\^─╰]", s):
            msg = label.group(1)
        elif re.match(r"^(error|Error|help:|note:)", s):
            msg = s
        elif re.match(r"^[a-z][a-z ,`'’]*[a-z`']", s) and not re.search(r"[;{}=]|\b(let|fn)\b", s):
            msg = s  # plain message lines, e.g. "cannot find function `double` in this scope"
        else:
            continue
        if msg not in keep:
            keep.append(msg)
        if len(keep) >= 4:
            break
    return "\n".join(keep) or text


def hide_ok(cell) -> None:
    """Removes the grader's last line from a test cell's source."""
    var = ok_var(cell)
    if var and cell.source.endswith(ok_line(var)):
        cell.source = cell.source[: -len(ok_line(var))]
    cell.get("metadata", {}).pop("nbgrade", None)


def describe_failure(cell, st: dict) -> str:
    """Feedback a student can act on for a test or answer cell that did not pass."""
    kind = st.get("status")
    if kind in ("timeout", "dead", "not-run", "skipped"):
        why = st.get("why", kind)
        if kind == "timeout":
            return f"{why} (an endless loop, or far too slow?); its kernel was stopped"
        return why
    err = error_text(cell)
    if not err and not stream_text(cell, "stderr") and st.get("why"):
        return st["why"]
    if err:
        return "did not compile or run: " + shorten(compile_error(err))
    stderr = stream_text(cell, "stderr")
    msg = panic_message(stderr)
    if "not yet implemented" in msg:
        return "not answered yet: replace the todo!() in the answer cell with your code"
    return shorten(msg)


Row = gradebook.Row


def passed_line(cell) -> str:
    """What a passed test said: its last ✓ line."""
    said = [l for l in stream_text(cell, "stdout").splitlines() if l.strip().startswith("✓")]
    return said[-1].strip() if said else "passed"


def grade_executed(nb, status: dict[int, dict], notes: list[str],
                   not_own: dict[str, list[str]] | None = None) -> list[Row]:
    """Points and feedback for each test cell of an executed, assembled notebook. A test earns
    its points only when the probe after it proved it ran to its end (status "passed"), and its
    exercise's answer is the student's own (`not_own`: exercise -> why not). What a cell printed
    never decides a test."""
    rows = []
    not_own = not_own or {}
    exercise = exercise_of_tests(nb)
    answer_problems: list[str] = []  # failures of answer cells since the last test cell
    stubbed = False  # an answer cell since the last test cell still has its todo!() stub
    for index, cell in enumerate(nb.cells):
        st = status.get(index, {"status": "not-run", "why": "not run"})
        if is_solution(cell) and cell.cell_type == "code":
            stubbed = stubbed or f'todo!("{grade_id(cell)}:' in cell.source
            if st["status"] == "skipped":
                answer_problems.append(st["why"])
            elif st["status"] not in ("ok", "not-run"):
                answer_problems.append(f"your answer cell {grade_id(cell)!r} failed: {describe_failure(cell, st)}")
            continue
        if nbg(cell) == {} and cell.get("metadata", {}).get("nbgrade", {}).get("skip"):
            answer_problems.append(cell.metadata["nbgrade"]["skip"])
            continue
        if not is_test(cell):
            continue
        maxp = float(nbg(cell)["points"])
        task = exercise.get(index) or ""
        if task in not_own:
            rows.append(Row("", grade_id(cell), 0.0, maxp, " | ".join(not_own[task]), task))
        elif st.get("passed"):
            rows.append(Row("", grade_id(cell), maxp, maxp, passed_line(cell), task))
        else:
            if st["status"] == "ok":
                if stubbed:
                    why = "not answered yet: replace the todo!() in the answer cell with your code"
                elif st.get("probe", "").startswith("the kernel's output"):
                    why = st["probe"]
                else:
                    last = printed_lines(cell)
                    why = (f"the test stopped before its end; its last output: {shorten(last[-1], 300)}" if last
                           else "the test stopped before its end without a message (a panic whose message "
                                "was lost?); run it in your notebook to see why")
                st = {"status": "failed", "why": why}
            fb = describe_failure(cell, st)
            if answer_problems:
                fb = " | ".join(answer_problems + [f"test: {fb}"])
            rows.append(Row("", grade_id(cell), 0.0, maxp, fb, task))
        answer_problems = []
        stubbed = False
    if notes and rows:
        rows[0].feedback = " | ".join(notes + [rows[0].feedback])
    return rows


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def printed_lines(cell) -> list[str]:
    """What a test cell printed besides its own ✓ line (the student's debug prints, mostly)."""
    return [l for l in stream_text(cell, "stdout").splitlines() if l.strip() and not l.strip().startswith("✓")]


def feedback_notebook(nb, rows: list[Row], student: str, header: str) -> nbformat.NotebookNode:
    """The executed notebook with hidden tests blanked. It opens with a table per exercise
    (points, verdict, the first line of the reason); under each test cell its verdict, and for a
    failed test the message next to the student's answer code."""
    out = copy.deepcopy(nb)
    by_id = {r.exercise: r for r in rows}
    total = sum(r.points for r in rows)
    most = sum(r.max for r in rows)
    lines = [f"# Feedback for {student}: {total:g} / {most:g} points", "", header, "",
             "| exercise | test | points | verdict | reason |", "|---|---|---|---|---|"]
    titles = {grade_id(c): exercise_title(c) for c in out.cells if is_solution(c)}
    for r in rows:
        verdict = "✓ passed" if r.points == r.max else "✗ failed"
        first = r.feedback.split(" | ")[0].splitlines()[0] if r.feedback else ""
        lines.append(f"| {titles.get(r.task, r.task) or '–'} | {r.exercise} | {r.points:g} / {r.max:g} | {verdict} | {_md_cell(shorten(first, 160))} |")
    cells = [nbformat.v4.new_markdown_cell("\n".join(lines))]
    answers = {grade_id(c): c.source for c in out.cells if is_solution(c) and c.cell_type == "code"}
    for cell in out.cells:
        if is_test(cell):
            cell.source = strip_hidden(cell.source, "// (hidden tests, run by the grader)")
            hide_ok(cell)
        else:
            cell.get("metadata", {}).pop("nbgrade", None)
        cells.append(cell)
        if is_test(cell) and grade_id(cell) in by_id:
            r = by_id[grade_id(cell)]
            mark = "✓" if r.points == r.max else "✗"
            text = f"**{mark} {r.exercise}: {r.points:g} / {r.max:g}** — {r.feedback}"
            extra = printed_lines(cell)
            if extra:
                text += (f"\n\nYour code printed {len(extra)} line(s) in this test (in the output above); "
                         "printing never changes a grade.")
            if r.points < r.max and r.task in answers:
                text += f"\n\nYour answer (`{r.task}`):\n\n```rust\n{answers[r.task]}\n```"
            cells.append(nbformat.v4.new_markdown_cell(text))
    out.cells = cells
    return out


# ---------------------------------------------------------------------------------------------
# Workers and their build folders


def worker_dirs(base: Path, workers: int) -> list[Path]:
    return [base.parent / f"{base.name}-w{i}" for i in range(workers)]


_RUST_LIBDIR: list[str] = []


def rust_libdir() -> str:
    """Where the Rust toolchain keeps libstd-*.so. evcxr's cell libraries find it through a
    relative RUNPATH that is wrong when the build folder sits below the home folder (e.g.
    ~/.cache/...: "dlopen failed" at kernel start), so the kernels get it on LD_LIBRARY_PATH."""
    if not _RUST_LIBDIR:
        try:
            out = subprocess.run(["rustc", "--print", "target-libdir"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = ""
        _RUST_LIBDIR.append(out)
    return _RUST_LIBDIR[0]


def kernel_env(tmpdir: Path) -> dict:
    env = dict(os.environ)
    env["EVCXR_TMPDIR"] = str(tmpdir)
    # Panics print their message only: quick, and the feedback is the message.
    env["RUST_BACKTRACE"] = "0"
    if rust_libdir():
        old = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = rust_libdir() + (":" + old if old else "")
    # evcxr must build in its own folder, not in the clones' shared cargo target folder.
    env.pop("CARGO_TARGET_DIR", None)
    return env


def dep_cells(source_nb, source_path: Path) -> list[str]:
    """The `:dep` lines of a source notebook, with absolute paths (what a kernel compiles first)."""
    deps = []
    for cell in source_nb.cells:
        if cell.cell_type == "code":
            for line in rewrite_dep_paths(cell.source, source_path.parent.resolve(), None).split("\n"):
                if line.strip().startswith(":dep"):
                    deps.append(line.strip())
    return deps


def prewarm_dir(tmpdir: Path, deps: list[str], timeout: float = 3600) -> float:
    """Runs the `:dep` lines once in a kernel using `tmpdir`, so later kernels start quickly."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": KERNEL, "display_name": "Rust",
                                                           "language": "rust"}})
    nb.cells = [nbformat.v4.new_code_cell("\n".join(deps) or ":dep convlab = { path = \"%s\" }" % CRATE),
                nbformat.v4.new_code_cell('println!("warm");')]
    tmpdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "prewarm.ipynb"
        nbformat.write(nb, path)
        status = Path(work) / "status.json"
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, __file__, "_run", str(path), "--status", str(status),
                               "--cwd", work, "--cell-timeout", str(timeout),
                               "--notebook-timeout", str(timeout)],
                              # online: fetch what the local cache lacks (kernels run offline)
                              env={**kernel_env(tmpdir), "CARGO_NET_OFFLINE": "false"},
                              capture_output=True, text=True)
        secs = time.monotonic() - t0
        ran = nbformat.read(path, as_version=4)
        st = json.loads(status.read_text()) if status.exists() else {}
        if proc.returncode != 0 or any(v["status"] != "ok" for v in st.values()) or len(st) != 2:
            detail = proc.stderr[-2000:] + "\n" + "\n".join(
                stream_text(c, "stderr") + error_text(c) for c in ran.cells)
            raise RuntimeError(f"prewarming {tmpdir} failed:\n{detail.strip()}")
    return secs


def copy_dir(src: Path, dst: Path) -> None:
    """cp -a (times kept, so cargo sees the builds as fresh), through a temporary name."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["cp", "-a", str(src), str(tmp)], check=True)
    tmp.rename(dst)


def warm_key(deps: list[str]) -> str:
    """What a warm folder was warmed for: the `:dep` lines and the crates' dependency files
    (when the crate gains a dependency, the folders are warmed again before grading)."""
    import hashlib
    h = hashlib.sha256()
    for f in (ROOT / "Cargo.lock", CRATE / "Cargo.toml"):
        if f.exists():
            h.update(f.read_bytes())
    return "\n".join(deps) + "\n# " + h.hexdigest()


def prepare_workers(base: Path, workers: int, deps: list[str], log=print) -> list[Path]:
    """Warms `base` once, then gives each worker a copy of it (kept and reused across runs)."""
    stamp = base / ".nbgrade-warm"
    if not stamp.exists() or stamp.read_text() != warm_key(deps):
        seed = Path(os.environ.get("CONVLAB_EVCXR_SEED", CACHE / "evcxr-seed"))
        if not base.exists() and (seed / "target").is_dir() and seed.resolve() != base.resolve():
            # setup.sh prewarmed this one for the notebooks: start from a copy of it, under the
            # seed's shared lock as the kernel launcher takes it (the setup may be rewarming it)
            import fcntl
            log(f"copying {seed} -> {base}")
            with open(f"{seed}.lock", "a+") as lock:
                fcntl.flock(lock, fcntl.LOCK_SH)
                copy_dir(seed, base)
        log(f"prewarming {base} (the first time compiles tch: minutes)")
        prewarm_dir(base, deps)
        stamp.write_text(warm_key(deps))
    dirs = worker_dirs(base, workers)
    want = warm_key(deps)
    cold = []
    for d in dirs:
        mark = d / ".nbgrade-warm"
        if d.exists() and mark.exists() and mark.read_text() == want:
            continue
        if not d.exists():
            log(f"copying {base} -> {d}")
            copy_dir(base, d)
        (d / ".nbgrade-warm").unlink(missing_ok=True)
        cold.append(d)
    # A new copy may rebuild a little on its first use (paths changed); do that now, in parallel.
    if cold:
        with concurrent.futures.ThreadPoolExecutor(len(cold)) as pool:
            for d, secs in zip(cold, pool.map(lambda d: prewarm_dir(d, deps), cold)):
                (d / ".nbgrade-warm").write_text(want)
                log(f"worker folder {d} ready ({secs:.0f} s)")
    return dirs


# ---------------------------------------------------------------------------------------------
# Grading a class


def find_submissions(folder: Path, source_name: str) -> list[tuple[str, Path]]:
    """(student, notebook) pairs: `NAME.ipynb` files, or `NAME/` folders holding the notebook."""
    subs = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb":
            subs.append((entry.stem, entry))
        elif entry.is_dir() and not entry.name.startswith("."):
            named = entry / source_name
            nbs = sorted(p for p in entry.glob("*.ipynb"))
            if named.exists():
                subs.append((entry.name, named))
            elif len(nbs) == 1:
                subs.append((entry.name, nbs[0]))
            else:
                subs.append((entry.name, named))  # graded as missing
    return subs


@dataclass
class Graded:
    student: str
    rows: list[Row]
    seconds: float
    status: dict[int, dict] = field(default_factory=dict)  # per code cell, as run_cells says

    def ran_to_the_end(self) -> bool:
        """Every code cell ran (none timed out, killed the kernel, or was skipped)."""
        return bool(self.status) and all(v["status"] in ("ok", "failed") for v in self.status.values())


def zero_rows(source_nb, student: str, why: str) -> list[Row]:
    return [Row(student, grade_id(c), 0.0, float(nbg(c)["points"]), why) for _, c in tests_of(source_nb)]


def grade_one(student: str, path: Path, source_nb, source_path: Path, tmpdir: Path, out: Path,
              cell_timeout: float, notebook_timeout: float, html: bool) -> Graded:
    """Grades one submission in a child process; whatever goes wrong costs this student only."""
    t0 = time.monotonic()
    try:
        submitted = nbformat.read(path, as_version=4)
    except FileNotFoundError:
        return Graded(student, zero_rows(source_nb, student, f"no notebook found at {path}"), 0.0)
    except Exception as e:  # not JSON, not a notebook, unreadable
        why = f"the submitted file is not a valid notebook ({type(e).__name__}: {shorten(str(e), 200)})"
        return Graded(student, zero_rows(source_nb, student, why), 0.0)
    try:
        asm = assemble(source_nb, source_path, submitted)
    except Exception as e:
        return Graded(student, zero_rows(source_nb, student, f"could not read the answer cells: {e}"), 0.0)
    work = out / "work" / student
    shutil.rmtree(work, ignore_errors=True)
    (work / "cwd").mkdir(parents=True)
    nb_path = work / "graded.ipynb"
    status_path = work / "status.json"
    nbformat.write(asm.notebook, nb_path)
    cmd = [sys.executable, __file__, "_run", str(nb_path), "--status", str(status_path),
           "--cwd", str(work / "cwd"), "--cell-timeout", str(cell_timeout),
           "--notebook-timeout", str(notebook_timeout)]
    # The child enforces both limits itself; this outer limit only catches a stuck child.
    outer = notebook_timeout + 180
    env = kernel_env(tmpdir)
    # Each submission trains into its own checkpoint folder: a shared one would let a
    # notebook that trains (03) resume from another student's model.
    env["CONVLAB_CHECKPOINT_DIR"] = str(work / "checkpoints")
    for attempt in (1, 2):
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        stuck = False
        try:
            log_text, _ = proc.communicate(timeout=outer)
        except subprocess.TimeoutExpired:
            stuck = True
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                log_text, _ = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                log_text, _ = proc.communicate()
        (work / f"run{attempt}.log").write_text(log_text or "")
        # No status file and not stuck: the kernel did not start (not the student's doing),
        # so try once more with the notebook as it was before.
        if status_path.exists() or stuck or proc.returncode in (TERMINATED, -signal.SIGTERM, -signal.SIGKILL):
            break
        nbformat.write(asm.notebook, nb_path)
    seconds = time.monotonic() - t0
    if not status_path.exists():
        why = f"grading could not run this notebook (exit {proc.returncode}): {shorten(log_text or '', 300)}"
        return Graded(student, zero_rows(source_nb, student, why), seconds)
    executed = nbformat.read(nb_path, as_version=4)
    status = {int(k): v for k, v in json.loads(status_path.read_text()).items()}
    rows = grade_executed(executed, status, asm.notes, asm.not_own)
    for r in rows:
        r.student = student
    header = (f"Graded from `{source_path.name}`: your answer cells, and the cells you added, ran inside the original notebook "
              "(test cells and all other cells as published). Hidden tests are not shown.")
    fb = feedback_notebook(executed, rows, student, header)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    nbformat.write(fb, out / "feedback" / f"{student}.ipynb")
    if html:
        from nbconvert import HTMLExporter
        body, _ = HTMLExporter().from_notebook_node(fb)
        (out / "feedback" / f"{student}.html").write_text(body)
    return Graded(student, rows, time.monotonic() - t0, status)


def write_gradebook(out: Path, graded: list[Graded]) -> None:
    gradebook.write(out, [{"student": g.student, "rows": g.rows, "seconds": g.seconds} for g in graded])


def grade_class(submissions: Path, source_path: Path, out: Path, workers: int = 2,
                cell_timeout: float = 120, notebook_timeout: float = 900, html: bool = True,
                build_base: Path | None = None, log=print, shard: tuple[int, int] | None = None,
                resume: bool = True) -> list[Graded]:
    """Grades every submission in the folder (or shard K of N of them) into `out`. Each result
    is saved as soon as it is graded; with `resume`, a submission already graded under the same
    source, file and limits is not graded again, so an interrupted run goes on where it stopped."""
    source_nb = nbformat.read(source_path, as_version=4)
    check_source(source_nb, source_path.name)
    if not submissions.is_dir():
        raise SystemExit(f"{submissions}: no such folder of submissions")
    subs = find_submissions(submissions, source_path.name)
    if not subs:
        raise SystemExit(f"no submissions in {submissions}: expected NAME.ipynb or NAME/{source_path.name}")
    if shard:
        subs = gradebook.shard_of(subs, *shard)
        log(f"shard {shard[0]}/{shard[1]}: {len(subs)} submission(s)")
    limits = {"cell": cell_timeout, "notebook": notebook_timeout, "html": html}
    keys = {student: gradebook.key(source_path, path, limits) for student, path in subs}
    graded: dict[str, Graded] = {}
    if resume:
        for student, _ in subs:
            res = gradebook.load(out, student, keys[student])
            if res is not None:
                graded[student] = Graded(student, res["rows"], res["seconds"],
                                         {int(k): v for k, v in res["status"].items()})
        if graded:
            log(f"{len(graded)} submission(s) already graded in {out} (same source, file and limits): kept")
    todo = [s for s in subs if s[0] not in graded]
    if todo:
        base = build_base or Path(os.environ.get("NBGRADE_BUILD_BASE", CACHE / "evcxr-tmp-grade"))
        workers = max(1, min(workers, len(todo)))
        dirs = prepare_workers(base, workers, dep_cells(source_nb, source_path), log)
        free: queue.Queue[Path] = queue.Queue()
        for d in dirs:
            free.put(d)
        lock = threading.Lock()
        t0 = time.monotonic()

        def task(item):
            student, path = item
            d = free.get()
            try:
                g = grade_one(student, path, source_nb, source_path, d, out, cell_timeout,
                              notebook_timeout, html)
            except Exception as e:  # a bug or an OS error: this student only
                g = Graded(student, zero_rows(source_nb, student, f"grading failed: {type(e).__name__}: {e}"), 0.0)
            finally:
                free.put(d)
            with lock:
                gradebook.save(out, student, g.rows, g.seconds, g.status, keys[student])
                graded[student] = g
                done = len(graded) - (len(subs) - len(todo))
                left = len(todo) - done
                per = (time.monotonic() - t0) / done
                eta = f"about {per * left / 60:.0f} min left" if left else "done"
                total = sum(r.points for r in g.rows)
                log(f"[{done}/{len(todo)}] {student}: {total:g} / {sum(r.max for r in g.rows):g} "
                    f"in {g.seconds:.1f} s · {eta}")
                write_gradebook(out, list(graded.values()))
            return g

        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(task, todo))
        wall = time.monotonic() - t0
        log(f"graded {len(todo)} submission(s) with {workers} worker(s) in {wall:.0f} s "
            f"({wall / len(todo):.1f} s per submission)")
    result = [graded[s] for s, _ in subs]
    write_gradebook(out, result)
    log(f"wrote {out / 'gradebook.csv'} ({len(result)} submission(s))")
    return result


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("student", help="generate the student notebooks")
    st.add_argument("sources", nargs="*", type=Path, help="answer notebooks (default: notebooks/*.ipynb with exercises)")
    st.add_argument("--out", type=Path, default=STUDENT_DIR)
    st.add_argument("--check", action="store_true", help="only check that the student notebooks are up to date")
    gr = sub.add_parser("grade", help="grade a folder of submissions")
    gr.add_argument("submissions", type=Path)
    gr.add_argument("--source", type=Path, required=True, help="the answer notebook")
    gr.add_argument("--out", type=Path, default=ROOT / "build" / "grades")
    gr.add_argument("--workers", type=int, default=2)
    gr.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default 120)")
    gr.add_argument("--notebook-timeout", type=float, default=900, help="seconds per notebook (default 900)")
    gr.add_argument("--no-html", action="store_true", help="skip the HTML feedback")
    gr.add_argument("--build-base", type=Path, help="prewarmed evcxr folder (default ~/.cache/convlab/evcxr-tmp-grade)")
    gr.add_argument("--shard", help="grade only shard K/N of the submissions (e.g. 3/8; for a job array)")
    gr.add_argument("--again", action="store_true", help="grade every submission again (default: keep the "
                    "results already in --out for the same source, file and limits)")
    mg = sub.add_parser("merge", help="join the results of shards into one gradebook")
    mg.add_argument("out", type=Path, help="the folder to write (gradebook.csv, totals.csv, feedback/)")
    mg.add_argument("shards", nargs="+", type=Path, help="the shards' --out folders")
    pw = sub.add_parser("prewarm", help="warm the workers' evcxr build folders")
    pw.add_argument("--source", type=Path, help="answer notebook whose :dep lines to compile")
    pw.add_argument("--workers", type=int, default=2)
    pw.add_argument("--build-base", type=Path)
    run = sub.add_parser("_run", help=argparse.SUPPRESS)
    run.add_argument("notebook", type=Path)
    run.add_argument("--status", type=Path, required=True)
    run.add_argument("--cwd", required=True)
    run.add_argument("--cell-timeout", type=float, required=True)
    run.add_argument("--notebook-timeout", type=float, required=True)
    args = ap.parse_args(argv)

    if args.cmd == "_run":
        return child_main(args)
    if args.cmd == "student":
        sources = args.sources or exercise_sources()
        if not sources:
            print("no answer notebooks with exercises in notebooks/", file=sys.stderr)
            return 0
        try:
            return write_students(sources, args.out, args.check)
        except SourceError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if args.cmd == "prewarm":
        deps = [f':dep convlab = {{ path = "{CRATE}" }}']
        if args.source:
            deps = dep_cells(nbformat.read(args.source, as_version=4), args.source)
        base = args.build_base or Path(os.environ.get("NBGRADE_BUILD_BASE", CACHE / "evcxr-tmp-grade"))
        prepare_workers(base, args.workers, deps)
        return 0
    if args.cmd == "grade":
        try:
            shard = gradebook.parse_shard(args.shard) if args.shard else None
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        graded = grade_class(args.submissions, args.source, args.out, args.workers, args.cell_timeout,
                             args.notebook_timeout, not args.no_html, args.build_base, shard=shard,
                             resume=not args.again)
        return 0 if graded else 1
    if args.cmd == "merge":
        merged = gradebook.merge(args.out, args.shards)
        print(f"merged {len(merged)} submission(s) from {len(args.shards)} shard(s) into {args.out / 'gradebook.csv'}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
