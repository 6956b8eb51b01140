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
import csv
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
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

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


# ---------------------------------------------------------------------------------------------
# Student versions


def code_stub(indent: str, hint: str, gid: str) -> list[str]:
    comment = f"// YOUR CODE HERE: {hint}" if hint else "// YOUR CODE HERE (see the task above)"
    return [indent + comment, f'{indent}todo!("{gid}: write your code here, then run the test cell below")']


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
    nonce: str = ""  # printed at the very end of each test cell: proof that it ran to the end


DONE_PREFIX = "nbgrade-test-done-"


def done_line(nonce: str) -> str:
    return f'\nprintln!("{DONE_PREFIX}{nonce}");'


def assemble(source_nb, source_path: Path, submitted) -> Assembled:
    """The notebook to run for one submission: the source's cells, with the student's answer
    cells put in by grade_id; a missing answer cell gets the student stub."""
    answers = {}
    for cell in submitted.cells if submitted is not None else []:
        gid = grade_id(cell)
        if gid and is_solution(cell) and gid not in answers:
            answers[gid] = cell
    nb = copy.deepcopy(source_nb)
    notes = []
    nonce = secrets.token_hex(8)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.source = rewrite_dep_paths(cell.source, source_path.parent.resolve(), None)
        if is_test(cell):
            # A test passes only when this line is reached: a cell whose panic message got
            # lost, or that was cut short any other way, does not count as passed.
            cell.source += done_line(nonce)
        if is_solution(cell):
            gid = grade_id(cell)
            theirs = answers.get(gid)
            if theirs is not None and theirs.cell_type == cell.cell_type:
                cell.source = rewrite_dep_paths(theirs.source, source_path.parent.resolve(), None)
            else:
                notes.append(f"answer cell {gid!r} is missing from the submission (deleted, or its "
                             "metadata lost); it was graded as not answered")
                cell.source = clear_solutions(cell.source, gid, cell.cell_type == "code", gid)
    return Assembled(nb, notes, nonce)


# ---------------------------------------------------------------------------------------------
# Running one notebook (inside a child process: `nbgrade.py _run`)


DEP_TIMEOUT = 600.0
TERMINATED = 143  # exit status of a `_run` child that was asked to stop: not retried


def is_dep_cell(cell) -> bool:
    return any(l.strip().startswith(":dep") for l in cell.source.splitlines())


def run_cells(nb, cell_timeout: float, notebook_timeout: float, cwd: Path) -> dict:
    """Executes every code cell in order and returns {index: {"status", "seconds"}}.
    status: ok | failed (error output or stderr) | timeout | dead | not-run."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from nbrun import cell_problem, install_panic_hook, promote_panic_report

    client = NotebookClient(nb, kernel_name=KERNEL, timeout=int(cell_timeout), allow_errors=True,
                            shutdown_kernel="immediate", startup_timeout=120,
                            resources={"metadata": {"path": str(cwd)}})
    deadline = time.monotonic() + notebook_timeout
    status: dict[int, dict] = {}
    stop: str | None = None
    with client.setup_kernel():
        client.timeout = int(max(cell_timeout, 120))
        install_panic_hook(client, nb)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
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
            secs = time.monotonic() - t0
            promote_panic_report(cell)
            problem = cell_problem(index, cell)
            status[index] = {"status": "failed" if problem else "ok", "seconds": secs}
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


def hide_done(cell, nonce: str) -> bool:
    """Removes the nonce line from a test cell; True when the cell had printed it."""
    line = done_line(nonce)
    if cell.source.endswith(line):
        cell.source = cell.source[: -len(line)]
    token = f"{DONE_PREFIX}{nonce}\n"
    reached = False
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream" and o.get("name") == "stdout":
            text = o.get("text", "")
            if token in text:
                reached = True
                o["text"] = text.replace(token, "")
    cell.outputs = [o for o in cell.get("outputs", [])
                    if not (o.get("output_type") == "stream" and o.get("text") == "")]
    return reached


def describe_failure(cell, st: dict) -> str:
    """Feedback a student can act on for a test or answer cell that did not pass."""
    kind = st.get("status")
    if kind in ("timeout", "dead", "not-run"):
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


@dataclass
class Row:
    student: str
    exercise: str
    points: float
    max: float
    feedback: str


def grade_executed(nb, status: dict[int, dict], notes: list[str], nonce: str | None = None) -> list[Row]:
    """Points and feedback for each test cell of an executed, assembled notebook. With a
    nonce, a test cell passes only if it also printed the nonce line (it ran to its end);
    the nonce lines are then taken out of the cells' sources and outputs."""
    rows = []
    answer_problems: list[str] = []  # failures of answer cells since the last test cell
    stubbed = False  # an answer cell since the last test cell still has its todo!() stub
    for index, cell in enumerate(nb.cells):
        st = status.get(index, {"status": "not-run", "why": "not run"})
        if is_solution(cell) and cell.cell_type == "code":
            stubbed = stubbed or f'todo!("{grade_id(cell)}:' in cell.source
            if st["status"] != "ok" and st["status"] != "not-run":
                answer_problems.append(f"your answer cell {grade_id(cell)!r} failed: {describe_failure(cell, st)}")
            continue
        if not is_test(cell):
            continue
        maxp = float(nbg(cell)["points"])
        if nonce is not None:
            reached = hide_done(cell, nonce)
            if st["status"] == "ok" and not reached:
                why = ("not answered yet: replace the todo!() in the answer cell with your code"
                       if stubbed else "the test stopped before its end without a message (a panic "
                       "whose message was lost?); run it in your notebook to see why")
                st = {"status": "failed", "why": why}
        if st["status"] == "ok":
            said = stream_text(cell, "stdout").strip().splitlines()
            feedback = said[-1] if said else "passed"
            rows.append(Row("", grade_id(cell), maxp, maxp, feedback))
        else:
            fb = describe_failure(cell, st)
            if answer_problems:
                fb = " | ".join(answer_problems + [f"test: {fb}"])
            rows.append(Row("", grade_id(cell), 0.0, maxp, fb))
        answer_problems = []
        stubbed = False
    if notes and rows:
        rows[0].feedback = " | ".join(notes + [rows[0].feedback])
    return rows


def feedback_notebook(nb, rows: list[Row], student: str, header: str) -> nbformat.NotebookNode:
    """The executed notebook with hidden tests blanked and a verdict after each test cell."""
    out = copy.deepcopy(nb)
    by_id = {r.exercise: r for r in rows}
    cells = []
    total = sum(r.points for r in rows)
    most = sum(r.max for r in rows)
    lines = [f"# Feedback for {student}: {total:g} / {most:g} points", "", header, "",
             "| exercise | points | feedback |", "|---|---|---|"]
    for r in rows:
        fb = r.feedback.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r.exercise} | {r.points:g} / {r.max:g} | {fb} |")
    cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
    for cell in out.cells:
        if is_test(cell):
            cell.source = strip_hidden(cell.source, "// (hidden tests, run by the grader)")
        cells.append(cell)
        if is_test(cell) and grade_id(cell) in by_id:
            r = by_id[grade_id(cell)]
            mark = "✓" if r.points == r.max else "✗"
            cells.append(nbformat.v4.new_markdown_cell(
                f"**{mark} {r.exercise}: {r.points:g} / {r.max:g}** — {r.feedback}"))
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
            # setup.sh prewarmed this one for the notebooks: start from a copy of it
            log(f"copying {seed} -> {base}")
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
    rows = grade_executed(executed, status, asm.notes, asm.nonce)
    for r in rows:
        r.student = student
    header = (f"Graded from `{source_path.name}`: your answer cells ran inside the original notebook "
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
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "gradebook.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "exercise", "points", "max", "feedback"])
        for g in sorted(graded, key=lambda g: g.student):
            for r in g.rows:
                w.writerow([g.student, r.exercise, f"{r.points:g}", f"{r.max:g}", r.feedback])
    with open(out / "totals.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "points", "max", "seconds"])
        for g in sorted(graded, key=lambda g: g.student):
            w.writerow([g.student, f"{sum(r.points for r in g.rows):g}",
                        f"{sum(r.max for r in g.rows):g}", f"{g.seconds:.1f}"])


def grade_class(submissions: Path, source_path: Path, out: Path, workers: int = 2,
                cell_timeout: float = 120, notebook_timeout: float = 900, html: bool = True,
                build_base: Path | None = None, log=print) -> list[Graded]:
    source_nb = nbformat.read(source_path, as_version=4)
    check_source(source_nb, source_path.name)
    subs = find_submissions(submissions, source_path.name)
    if not subs:
        raise SystemExit(f"no submissions in {submissions}: expected NAME.ipynb or NAME/{source_path.name}")
    base = build_base or Path(os.environ.get("NBGRADE_BUILD_BASE", CACHE / "evcxr-tmp-grade"))
    workers = max(1, min(workers, len(subs)))
    dirs = prepare_workers(base, workers, dep_cells(source_nb, source_path), log)
    free: queue.Queue[Path] = queue.Queue()
    for d in dirs:
        free.put(d)

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
        total = sum(r.points for r in g.rows)
        log(f"{student}: {total:g} / {sum(r.max for r in g.rows):g} in {g.seconds:.1f} s")
        return g

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        graded = list(pool.map(task, subs))
    wall = time.monotonic() - t0
    write_gradebook(out, graded)
    log(f"graded {len(graded)} submission(s) with {workers} worker(s) in {wall:.0f} s "
        f"({wall / len(graded):.1f} s per submission); wrote {out / 'gradebook.csv'}")
    return graded


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
        graded = grade_class(args.submissions, args.source, args.out, args.workers, args.cell_timeout,
                             args.notebook_timeout, not args.no_html, args.build_base)
        return 0 if graded else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
