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
        --out build/grades                            # gradebook.csv + feedback per student
    python tools/nbgrade.py grade SUBMISSIONS --source NB --out build/grades/shard-3 --shard 3/8
    python tools/nbgrade.py merge build/grades/all build/grades/shard-*   # one gradebook
    python tools/nbgrade.py prewarm                   # warm each worker's evcxr build folder

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

The work is done by the steps of tools/grading/ (one small function per step, composed in the
lists grading.steps.STUDENT and grading.steps.ASSEMBLE, and Execute, Score and Feedback in
grading.classroom); this file is the command line, and keeps their names for its callers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gradebook  # noqa: E402
from grading.classroom import (Graded, find_submissions, grade_class, grade_one, write_gradebook,  # noqa: E402,F401
                               zero_rows)
from grading.execute import (CELL_TIMEOUT, CHILD_SETUP, DEP_TIMEOUT,  # noqa: E402,F401
                             TERMINATED, child_main, reached_end, run_cells, serve_main)
from grading.markup import (BEGIN_HIDDEN, BEGIN_SOLUTION, DEP_PATH, END_HIDDEN, END_SOLUTION,  # noqa: E402,F401
                            END_PREFIX, TEXT_STUB, SourceError, check_source, clear_solutions, code_stub,
                            dep_cells, exercise_of_tests, exercise_title, forbidden_items, grade_id,
                            is_dep_cell, is_solution, is_test, nbg, end_line, end_token, rewrite_dep_paths,
                            strip_hidden, tests_of)
from grading.score import (ANSI, Row, compile_error, describe_failure, error_text,  # noqa: E402,F401
                           feedback_notebook, grade_executed, hide_ok, panic_message, passed_line,
                           printed_lines, shorten, stream_text)
from grading.steps import (ASSEMBLE, STUDENT, Assembled, added_cells, assemble,  # noqa: E402,F401
                           student_check, student_version)
from grading.workers import (CACHE, copy_dir, default_base, default_workers, kernel_env, prepare_workers,  # noqa: E402,F401
                             prewarm_dir, warm_key, worker_dirs)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STUDENT_DIR = NOTEBOOKS / "student"
CRATE = ROOT / "crates" / "convlab"
KERNEL = "rust"


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


def parser() -> argparse.ArgumentParser:
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
    gr.add_argument("--workers", type=int, default=default_workers(),
                    help="submissions graded at a time (default: the cores + 1)")
    gr.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT,
                    help=f"seconds per cell (default {CELL_TIMEOUT:.0f})")
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
    pw.add_argument("--workers", type=int, default=default_workers())
    pw.add_argument("--build-base", type=Path)
    gr.add_argument("--fresh-kernels", action="store_true", help="a new kernel for every submission "
                    "(default: each worker clears and reuses its kernel; the same scores, quicker)")
    serve = sub.add_parser("_serve", help=argparse.SUPPRESS)
    serve.add_argument("--home", required=True)
    run = sub.add_parser("_run", help=argparse.SUPPRESS)
    run.add_argument("notebook", type=Path)
    run.add_argument("--status", type=Path, required=True)
    run.add_argument("--cwd", required=True)
    run.add_argument("--cell-timeout", type=float, required=True)
    run.add_argument("--notebook-timeout", type=float, required=True)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    if args.cmd == "_run":
        return child_main(args)
    if args.cmd == "_serve":
        return serve_main(args)
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
        base = args.build_base or default_base()
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
                             resume=not args.again, reuse_kernels=not args.fresh_kernels)
        return 0 if graded else 1
    if args.cmd == "merge":
        merged = gradebook.merge(args.out, args.shards)
        print(f"merged {len(merged)} submission(s) from {len(args.shards)} shard(s) into {args.out / 'gradebook.csv'}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
