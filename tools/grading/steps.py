"""The steps of student generation and of assembling a submission, one small function per step
(nbgrader's preprocessors), and the pipelines composed of them.

A step takes a `Job` (the notebook being made, the answer notebook it comes from, what the
steps found so far) and changes it in place. `run(steps, job)` runs a pipeline in order:

    STUDENT  = [CheckSource, ClearOutput, RewriteDepPaths, ClearSolutions, ClearHiddenTests,
                LockCells, ClearCellMetadata]
    ASSEMBLE = [OverwriteCells, RewriteDepPaths, InsertAddedCells, ClearOutput, AddEndLines,
                CheckStudentCode, CheckOwnWork, CheckNames, StopAfterLastTest]

(the rest of grading, Execute, Score and Feedback, lives in grading.classroom)."""
from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

import ownwork
import rustscan
from grading import crate_api
from grading.markup import (END_PREFIX, TEXT_STUB, check_source, clear_solutions, context_of,
                            exercise_title, forbidden_of, grade_id, is_solution, is_test, nbg, end_line,
                            rewrite_dep_paths, strip_hidden)


@dataclass
class Job:
    """What flows through a pipeline."""
    source_nb: nbformat.NotebookNode  # the answer notebook, never changed
    source_path: Path
    notebook: nbformat.NotebookNode  # the notebook being made
    dep_dir: Path | None = None  # :dep paths relative to this folder (None: absolute)
    submitted: nbformat.NotebookNode | None = None  # grading: the student's notebook
    notes: list[str] = field(default_factory=list)  # grading: what was replaced or missing
    # grading: exercise (answer grade_id) -> why its tests earn nothing whatever they print
    not_own: dict[str, list[str]] = field(default_factory=dict)

    def where(self, index: int) -> str:
        return f"{self.source_path.name}, cell {index}"


Step = Callable[[Job], None]


def run(steps: list[Step], job: Job) -> Job:
    for step in steps:
        step(job)
    return job


def nbgrade_meta(cell) -> dict:
    """The grader's own metadata of a cell (`nbgrade`: added, label, skip, missing, ok)."""
    return cell.setdefault("metadata", {}).setdefault("nbgrade", {})


# ---------------------------------------------------------------------------------------------
# Steps of both pipelines


def check_source_step(job: Job) -> None:
    """CheckSource: refuses an answer notebook whose markup is broken."""
    check_source(job.source_nb, job.source_path.name)


def clear_output(job: Job) -> None:
    """ClearOutput: no outputs and no execution counts in code cells."""
    for cell in job.notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None


def rewrite_dep_paths_step(job: Job) -> None:
    """RewriteDepPaths: `:dep … path = "…"` of the notebook's own code cells, written for
    `job.dep_dir` (absolute when it is None). Cells a student added keep theirs (not run)."""
    old = job.source_path.parent.resolve()
    new = job.dep_dir.resolve() if job.dep_dir is not None else None
    for cell in job.notebook.cells:
        if cell.cell_type == "code" and not nbgrade_meta_get(cell, "added"):
            cell.source = rewrite_dep_paths(cell.source, old, new)


def nbgrade_meta_get(cell, key: str):
    return cell.get("metadata", {}).get("nbgrade", {}).get(key)


# ---------------------------------------------------------------------------------------------
# Student generation


def clear_solutions_step(job: Job) -> None:
    """ClearSolutions: each solution region becomes a stub (a written answer without a marked
    region: all of it)."""
    for i, cell in enumerate(job.notebook.cells):
        if not is_solution(cell):
            continue
        if cell.cell_type != "code" and "BEGIN SOLUTION" not in cell.source:
            cell.source = TEXT_STUB
        else:
            cell.source = clear_solutions(cell.source, grade_id(cell), cell.cell_type == "code", job.where(i))


def clear_hidden_tests(job: Job) -> None:
    """ClearHiddenTests: hidden test regions are removed from the test cells."""
    for i, cell in enumerate(job.notebook.cells):
        if is_test(cell):
            cell.source = strip_hidden(cell.source, where=job.where(i))


def lock_cells(job: Job) -> None:
    """LockCells: test cells and locked cells cannot be edited or deleted in JupyterLab."""
    for cell in job.notebook.cells:
        if is_test(cell) or nbg(cell).get("locked"):
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False


def clear_cell_metadata(job: Job) -> None:
    """ClearCellMetadata: no execution timings, no collapsed outputs."""
    for cell in job.notebook.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)


STUDENT: list[Step] = [check_source_step, clear_output, rewrite_dep_paths_step, clear_solutions_step,
                       clear_hidden_tests, lock_cells, clear_cell_metadata]


def student_version(source_nb, source_path: Path, out_dir: Path) -> nbformat.NotebookNode:
    """The student notebook of an answer notebook (the STUDENT pipeline): solutions stubbed,
    hidden tests removed, outputs cleared, test cells locked, `:dep` paths rewritten for `out_dir`."""
    job = Job(source_nb, source_path, copy.deepcopy(source_nb), dep_dir=out_dir)
    return run(STUDENT, job).notebook


# ---------------------------------------------------------------------------------------------
# Assembling a submission


def overwrite_cells(job: Job) -> None:
    """OverwriteCells: the answer notebook's cells, with the student's answer cells put in by
    grade_id; a missing answer cell (or one of another type) gets the student stub."""
    answers = {}
    for cell in job.submitted.cells if job.submitted is not None else []:
        gid = grade_id(cell)
        if gid and is_solution(cell) and gid not in answers:
            answers[gid] = cell
    for cell in job.notebook.cells:
        if not is_solution(cell):
            continue
        gid = grade_id(cell)
        theirs = answers.get(gid)
        if theirs is not None and theirs.cell_type == cell.cell_type:
            cell.source = theirs.source
        else:
            nbgrade_meta(cell)["missing"] = (
                f"answer cell {gid!r} is missing from the submission (deleted, or its "
                "metadata lost); it was graded as not answered")
            cell.source = clear_solutions(cell.source, gid, cell.cell_type == "code", gid)


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


def insert_added_cells(job: Job) -> None:
    """InsertAddedCells: the cells the student added, each after the source cell it followed,
    stripped of any nbgrader metadata (an added cell never counts as a test or an answer)."""
    added = added_cells(job.source_nb, job.submitted)
    cells = []
    for anchor in range(-1, len(job.notebook.cells)):
        if anchor >= 0:
            cells.append(job.notebook.cells[anchor])
        for theirs in added.get(anchor, []):
            cell = nbformat.from_dict(copy.deepcopy(dict(theirs)))
            cell.metadata = {"nbgrade": {"added": True}}
            if cell.cell_type == "code":
                after = f"after cell {anchor}" if anchor >= 0 else "at the top"
                cell.metadata["nbgrade"]["label"] = f"the cell you added {after}"
            cells.append(cell)
    job.notebook.cells = cells


def add_end_lines(job: Job) -> None:
    """AddEndLines: each test cell ends by printing a token of its own, made now (see
    markup.END_PREFIX; grading.execute looks for it in the cell's output)."""
    for cell in job.notebook.cells:
        if is_test(cell):
            token = END_PREFIX + secrets.token_hex(12)
            nbgrade_meta(cell)["end"] = token
            cell.source += end_line(token)


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


def student_code(nb) -> list[tuple[nbformat.NotebookNode, str, str | None]]:
    """The code cells a student wrote, in order: (cell, label, answer grade_id or None)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if nbgrade_meta_get(cell, "added"):
            out.append((cell, nbgrade_meta_get(cell, "label"), None))
        elif is_solution(cell):
            out.append((cell, f"your answer cell {grade_id(cell)!r}", grade_id(cell)))
    return out


def check_student_code(job: Job) -> None:
    """CheckStudentCode: a student's code cell that reaches outside the exercise is marked
    `skip` (not run, and said why). The notes, in cell order: missing answers, and added cells
    that are not run."""
    for cell in job.notebook.cells:
        missing = nbgrade_meta_get(cell, "missing")
        if missing:
            job.notes.append(missing)
            del cell.metadata["nbgrade"]["missing"]
            if not cell.metadata["nbgrade"]:
                del cell.metadata["nbgrade"]
        if cell.cell_type != "code":
            continue
        if nbgrade_meta_get(cell, "added"):
            label = nbgrade_meta_get(cell, "label")
        elif is_solution(cell):
            label = f"your answer cell {grade_id(cell)!r}"
        else:
            continue
        why = student_check(cell, label)
        if why:
            nbgrade_meta(cell)["skip"] = why
            if nbgrade_meta_get(cell, "added"):
                job.notes.append(why)


def check_own_work(job: Job) -> None:
    """CheckOwnWork: an exercise whose answer (or a helper it uses) reaches an item its answer
    cell forbids earns nothing (tools/ownwork.py): job.not_own[exercise] says why."""
    cells = [ownwork.Cell(label, gid, cell.source) for cell, label, gid in student_code(job.notebook)
             if not nbgrade_meta_get(cell, "skip")]
    titles = {grade_id(c): exercise_title(c) for c in job.source_nb.cells if is_solution(c)}
    found = ownwork.check(forbidden_of(job.source_nb), cells, context_of(job.source_nb),
                          crate_api.for_notebook(job.source_nb), asked_names(job.source_nb))
    job.not_own = {gid: [v.message(titles.get(gid, gid)) for v in vs] for gid, vs in found.items() if vs}


# Kinds of definition that can give an exercise its asked-for name (a value or a function the
# tests call), as opposed to importing it or making it a macro or a module.
VALUE_KINDS = {"fn", "let", "const", "static"}


def asked_names(source_nb) -> dict[str, set[str]]:
    """{answer grade_id: the names its exercise asks for}: what the answer cell of the answer
    notebook defines for the cells after it (`convolve`, `vertical`, …)."""
    return {grade_id(c): {d.name for d in rustscan.definitions(rustscan.tokens(c.source)) if d.kind in VALUE_KINDS}
            for c in source_nb.cells if is_solution(c) and c.cell_type == "code"}


def protected_names(source_nb) -> set[str]:
    """Every name the notebook's own code cells (setup and tests, hidden tests included) and the
    grader's own lines use: a student's definition of one of them would change what they run."""
    from grading.execute import grader_lines  # the first hidden cells and the end line

    names = {t.text for t in rustscan.tokens(grader_lines()) if t.is_ident}
    for cell in source_nb.cells:
        if cell.cell_type == "code" and not is_solution(cell):
            names |= {t.text for t in rustscan.tokens(cell.source) if t.is_ident}
    return names - rustscan.KEYWORDS


def name_rule_break(source: str, exercise: str | None, asked: dict[str, set[str]], protected: set[str],
                    titles: dict[str, str]) -> str | None:
    """Why a student's cell breaks the naming rule (docs/grading.md, "Your names"), or None. A
    student's cell may define only the names its exercise asks for and names of its own that no
    test cell, course cell or grader line uses, each written where it is defined."""
    toks = rustscan.tokens(source)
    hidden = rustscan.hidden_definitions(toks)
    if hidden:
        word, line, why = hidden[0]
        return f"line {line} {why}"
    mine = asked.get(exercise, set()) if exercise else set()
    others = {n: gid for gid, names in asked.items() if gid != exercise for n in names}
    for d in rustscan.definitions(toks):
        if d.name in mine and d.kind in VALUE_KINDS:
            continue
        if d.name in mine:
            return (f"line {d.line} makes `{d.name}` a {d.kind} item: the exercise asks you to define it "
                    f"yourself ({'a function' if d.kind == 'use' else 'with fn or let'}), as the stub does")
        if d.name in others:
            return (f"line {d.line} defines `{d.name}`, the name that exercise {titles.get(others[d.name], others[d.name])!r} "
                    "asks for: define it only in that exercise's answer cell")
        if d.name in protected:
            return (f"line {d.line} defines `{d.name}` ({d.kind}), a name the tests or the course's cells use, "
                    f"so the tests would run your `{d.name}` instead of theirs: give it a name of your own, "
                    f"such as `my_{d.name.lstrip('_')}`")
    return None


def check_names(job: Job) -> None:
    """CheckNames: a student's cell that breaks the naming rule (name_rule_break) is marked
    `skip`, not run (what it defines would be in scope in the tests after it); an answer cell
    that breaks it earns nothing for its exercise."""
    asked = asked_names(job.source_nb)
    protected = protected_names(job.source_nb)
    titles = {grade_id(c): exercise_title(c) for c in job.source_nb.cells if is_solution(c)}
    for cell, label, gid in student_code(job.notebook):
        if nbgrade_meta_get(cell, "skip"):
            continue
        why = name_rule_break(cell.source, gid, asked, protected, titles)
        if why is None:
            continue
        why = f"{label} was not run: {why}"
        nbgrade_meta(cell)["skip"] = why
        if gid is None:
            job.notes.append(why)
        else:
            job.not_own.setdefault(gid, []).append(why)


def stop_after_last_test(job: Job) -> None:
    """StopAfterLastTest: the code cells after the last test cell are marked `after_tests` and
    not run (nothing after the last test can change a score: notebook 3's training is there)."""
    last = max((i for i, c in enumerate(job.notebook.cells) if is_test(c)), default=None)
    if last is None:
        return
    for cell in job.notebook.cells[last + 1:]:
        if cell.cell_type == "code":
            nbgrade_meta(cell)["after_tests"] = True


ASSEMBLE: list[Step] = [overwrite_cells, rewrite_dep_paths_step, insert_added_cells, clear_output,
                        add_end_lines, check_student_code, check_own_work, check_names, stop_after_last_test]


@dataclass
class Assembled:
    notebook: nbformat.NotebookNode
    notes: list[str] = field(default_factory=list)  # what was replaced or missing
    # exercise (answer grade_id) -> why its tests earn nothing whatever they print
    not_own: dict[str, list[str]] = field(default_factory=dict)


def assemble(source_nb, source_path: Path, submitted) -> Assembled:
    """The notebook to run for one submission (the ASSEMBLE pipeline): the source's cells, with
    the student's answer cells put in by grade_id and the cells the student added in their
    places; a missing answer cell gets the student stub. Test cells, hidden tests and every
    other cell are the source's."""
    job = Job(source_nb, source_path, copy.deepcopy(source_nb), dep_dir=None, submitted=submitted)
    run(ASSEMBLE, job)
    return Assembled(job.notebook, job.notes, job.not_own)
