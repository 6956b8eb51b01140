"""Grading a class: each submission through the GRADE pipeline, `workers` at a time, each result
saved as soon as it is graded (tools/gradebook.py), so an interrupted run resumes.

    GRADE = [Read, Assemble (steps.ASSEMBLE), Execute (in a child process), Score, Feedback]

Whatever goes wrong with one submission costs that student only."""
from __future__ import annotations

import concurrent.futures
import os
import queue
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import json

import nbformat

import gradebook
from grading.execute import CELL_TIMEOUT, TERMINATED
from grading.markup import check_source, dep_cells, grade_id, nbg, tests_of
from grading.score import Row, feedback_notebook, grade_executed, shorten
from grading.steps import Assembled, assemble
from grading.workers import Worker, default_base, prepare_workers


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


@dataclass
class Submission:
    """One student's way through the GRADE pipeline."""
    student: str
    path: Path
    source_nb: nbformat.NotebookNode
    source_path: Path
    out: Path
    assembled: Assembled | None = None
    executed: nbformat.NotebookNode | None = None
    status: dict[int, dict] = field(default_factory=dict)
    failed: str | None = None  # why it scores 0 without a run (or after a failed one)
    t0: float = field(default_factory=time.monotonic)

    @property
    def work(self) -> Path:
        return self.out / "work" / self.student


def read_step(sub: Submission) -> None:
    """Read + Assemble: the submitted notebook, rebuilt from the source (steps.ASSEMBLE)."""
    try:
        submitted = nbformat.read(sub.path, as_version=4)
    except FileNotFoundError:
        sub.failed = f"no notebook found at {sub.path}"
        return
    except Exception as e:  # not JSON, not a notebook, unreadable
        sub.failed = f"the submitted file is not a valid notebook ({type(e).__name__}: {shorten(str(e), 200)})"
        return
    try:
        sub.assembled = assemble(sub.source_nb, sub.source_path, submitted)
    except Exception as e:
        sub.failed = f"could not read the answer cells: {e}"


def execute_step(sub: Submission, worker: Worker, cell_timeout: float, notebook_timeout: float,
                 fresh: bool = False) -> None:
    """Execute: the assembled notebook runs in the worker's kernel (a child process; see
    workers.Worker), in its own working folder and checkpoint folder; a kernel that did not
    start is tried once more. `fresh`: a kernel of its own, not reused after."""
    if sub.failed:
        return
    work = sub.work
    shutil.rmtree(work, ignore_errors=True)
    (work / "cwd").mkdir(parents=True)
    nb_path, status_path = work / "graded.ipynb", work / "status.json"
    # Each submission trains into its own checkpoint folder: a shared one would let a
    # notebook that trains (03) resume from another student's model.
    job = {"notebook": str(nb_path), "status": str(status_path), "cwd": str(work / "cwd"),
           "checkpoints": str(work / "checkpoints"), "cell_timeout": cell_timeout,
           "notebook_timeout": notebook_timeout, "fresh": fresh}
    for attempt in (1, 2):
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
        nbformat.write(sub.assembled.notebook, nb_path)
        # The kernel enforces both limits itself; this outer limit only catches a stuck one.
        answer, code, stuck = worker.run(job, notebook_timeout + 180)
        said = json.dumps(answer) if answer else f"worker ended (exit {code})" if not stuck else "stuck: killed"
        (work / f"run{attempt}.log").write_text(said + "\n")
        # No status file and not stuck: the kernel did not start (not the student's doing),
        # so try once more with the notebook as it was before.
        if status_path.exists() or stuck or code in (TERMINATED, -signal.SIGTERM, -signal.SIGKILL):
            break
    if not status_path.exists():
        why = (answer or {}).get("error") or f"see {worker.log_path}"
        sub.failed = f"grading could not run this notebook (exit {code}): {shorten(why, 300)}"
        return
    sub.executed = nbformat.read(nb_path, as_version=4)
    sub.status = {int(k): v for k, v in json.loads(status_path.read_text()).items()}


_EXPORTERS = threading.local()


def html_exporter():
    """nbconvert's HTML exporter, one per thread (making one loads its templates: a second),
    remembering the published cells' highlighting (grading.feedback_html)."""
    if not hasattr(_EXPORTERS, "html"):
        from grading.feedback_html import FeedbackExporter
        _EXPORTERS.html = FeedbackExporter()
    return _EXPORTERS.html


def score_and_feedback(sub: Submission, html: bool) -> Graded:
    """Score + Feedback: the rows, and the feedback notebook (and page) of an executed one."""
    if sub.failed:
        seconds = time.monotonic() - sub.t0 if sub.assembled is not None else 0.0
        return Graded(sub.student, zero_rows(sub.source_nb, sub.student, sub.failed), seconds)
    rows = grade_executed(sub.executed, sub.status, sub.assembled.notes, sub.assembled.not_own)
    for r in rows:
        r.student = sub.student
    header = (f"Graded from `{sub.source_path.name}`: your answer cells, and the cells you added, ran inside the original notebook "
              "(test cells and all other cells as published). Hidden tests are not shown.")
    fb = feedback_notebook(sub.executed, rows, sub.student, header)
    (sub.out / "feedback").mkdir(parents=True, exist_ok=True)
    nbformat.write(fb, sub.out / "feedback" / f"{sub.student}.ipynb")
    if html:
        body, _ = html_exporter().from_notebook_node(fb)
        (sub.out / "feedback" / f"{sub.student}.html").write_text(body)
    return Graded(sub.student, rows, time.monotonic() - sub.t0, sub.status)


def new_worker(tmpdir: Path, out: Path) -> Worker:
    """The worker of build folder `tmpdir` for a run writing into `out` (its log: work/)."""
    return Worker(tmpdir, out / "work" / f".kernel-{tmpdir.name}", out / "work" / f".kernel-{tmpdir.name}.log")


def run_one(student: str, path: Path, source_nb, source_path: Path, out: Path, worker: Worker,
            cell_timeout: float, notebook_timeout: float, fresh: bool = False) -> Submission:
    """Read, Assemble and Execute one submission in `worker`'s kernel."""
    sub = Submission(student, path, source_nb, source_path, out)
    read_step(sub)
    execute_step(sub, worker, cell_timeout, notebook_timeout, fresh)
    return sub


def grade_one(student: str, path: Path, source_nb, source_path: Path, tmpdir: Path, out: Path,
              cell_timeout: float, notebook_timeout: float, html: bool, worker: Worker | None = None,
              fresh: bool = False) -> Graded:
    """Grades one submission (the GRADE pipeline); whatever goes wrong costs this student only.
    `worker`: the kernel to run it in (default: a kernel of its own in `tmpdir`)."""
    own = worker is None
    worker = worker or new_worker(tmpdir, out)
    try:
        sub = run_one(student, path, source_nb, source_path, out, worker, cell_timeout, notebook_timeout,
                      fresh or own)
    finally:
        if own:
            worker.stop()
    return score_and_feedback(sub, html)


def write_gradebook(out: Path, graded: list[Graded]) -> None:
    gradebook.write(out, [{"student": g.student, "rows": g.rows, "seconds": g.seconds} for g in graded])


def load_graded(subs, out: Path, keys: dict, log) -> dict[str, Graded]:
    """The results already in `out` under the same source, file and limits (resuming)."""
    graded: dict[str, Graded] = {}
    for student, _ in subs:
        res = gradebook.load(out, student, keys[student])
        if res is not None:
            graded[student] = Graded(student, res["rows"], res["seconds"],
                                     {int(k): v for k, v in res["status"].items()})
    if graded:
        log(f"{len(graded)} submission(s) already graded in {out} (same source, file and limits): kept")
    return graded


def grade_in_parallel(todo, dirs: list[Path], run, finish, saved) -> None:
    """Runs `run(student, path, build folder)` for each of `todo`, one per folder of `dirs` at a
    time, then `finish(what run gave)` once the folder is free again (so a submission's feedback
    is written while the next one runs), and `saved(graded)` after each (serialised)."""
    free: queue.Queue[Path] = queue.Queue()
    for d in dirs:
        free.put(d)
    lock = threading.Lock()

    def task(item):
        student, path = item
        d = free.get()
        try:
            ran = run(student, path, d)
        finally:
            free.put(d)
        g = finish(ran)
        with lock:
            saved(g)

    with concurrent.futures.ThreadPoolExecutor(2 * len(dirs)) as pool:
        list(pool.map(task, todo))


def select_submissions(submissions: Path, source_name: str, shard: tuple[int, int] | None,
                       log) -> list[tuple[str, Path]]:
    """The submissions of the folder (or of shard K of N) to grade."""
    if not submissions.is_dir():
        raise SystemExit(f"{submissions}: no such folder of submissions")
    subs = find_submissions(submissions, source_name)
    if not subs:
        raise SystemExit(f"no submissions in {submissions}: expected NAME.ipynb or NAME/{source_name}")
    if shard:
        subs = gradebook.shard_of(subs, *shard)
        log(f"shard {shard[0]}/{shard[1]}: {len(subs)} submission(s)")
    return subs


@dataclass
class ClassRun:
    """One run of grade_class over the submissions still to grade (`todo`)."""
    source_nb: nbformat.NotebookNode
    source_path: Path
    out: Path
    limits: tuple[float, float, bool]  # cell timeout, notebook timeout, html
    reuse_kernels: bool
    keys: dict[str, str]
    graded: dict[str, Graded]  # saved results, also those kept from an earlier run
    todo: list[tuple[str, Path]]
    log: object
    kernels: dict[Path, Worker] = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic)

    def failed(self, student: str, e: Exception) -> Graded:  # a bug or an OS error: this student only
        why = f"grading failed: {type(e).__name__}: {e}"
        return Graded(student, zero_rows(self.source_nb, student, why), 0.0)

    def run(self, student: str, path: Path, d: Path):
        try:
            return run_one(student, path, self.source_nb, self.source_path, self.out, self.kernels[d],
                           self.limits[0], self.limits[1], fresh=not self.reuse_kernels)
        except Exception as e:
            return self.failed(student, e)

    def finish(self, sub) -> Graded:
        try:
            return sub if isinstance(sub, Graded) else score_and_feedback(sub, self.limits[2])
        except Exception as e:
            return self.failed(sub.student, e)

    def saved(self, g: Graded) -> None:
        gradebook.save(self.out, g.student, g.rows, g.seconds, g.status, self.keys[g.student])
        self.graded[g.student] = g
        done = sum(s in self.graded for s, _ in self.todo)
        left = len(self.todo) - done
        eta = f"about {(time.monotonic() - self.t0) / done * left / 60:.0f} min left" if left else "done"
        self.log(f"[{done}/{len(self.todo)}] {g.student}: {sum(r.points for r in g.rows):g} / "
                 f"{sum(r.max for r in g.rows):g} in {g.seconds:.1f} s · {eta}")
        write_gradebook(self.out, list(self.graded.values()))

    def grade(self, dirs: list[Path]) -> None:
        """Grades `todo` with one worker (and its kernel) per build folder of `dirs`."""
        self.kernels = {d: new_worker(d, self.out) for d in dirs}
        try:
            grade_in_parallel(self.todo, dirs, self.run, self.finish, self.saved)
        finally:
            for worker in self.kernels.values():
                worker.stop()
        wall = time.monotonic() - self.t0
        self.log(f"graded {len(self.todo)} submission(s) with {len(dirs)} worker(s) in {wall:.0f} s "
                 f"({wall / len(self.todo):.1f} s per submission)")


def grade_class(submissions: Path, source_path: Path, out: Path, workers: int = 2,
                cell_timeout: float = CELL_TIMEOUT, notebook_timeout: float = 900, html: bool = True,
                build_base: Path | None = None, log=print, shard: tuple[int, int] | None = None,
                resume: bool = True, reuse_kernels: bool = True) -> list[Graded]:
    """Grades every submission in the folder (or shard K of N of them) into `out`. Each result
    is saved as soon as it is graded; with `resume`, a submission already graded under the same
    source, file and limits is not graded again, so an interrupted run goes on where it stopped.
    `reuse_kernels`: each worker runs one kernel, cleared between submissions (else a new
    kernel for every submission; the scores are the same, tested)."""
    source_nb = nbformat.read(source_path, as_version=4)
    check_source(source_nb, source_path.name)
    subs = select_submissions(submissions, source_path.name, shard, log)
    limits = {"cell": cell_timeout, "notebook": notebook_timeout, "html": html}
    keys = {student: gradebook.key(source_path, path, limits) for student, path in subs}
    graded = load_graded(subs, out, keys, log) if resume else {}
    todo = [s for s in subs if s[0] not in graded]
    if todo:
        workers = max(1, min(workers, len(todo)))
        dirs = prepare_workers(build_base or default_base(), workers, dep_cells(source_nb, source_path), log)
        ClassRun(source_nb, source_path, out, (cell_timeout, notebook_timeout, html), reuse_kernels, keys,
                 graded, todo, log).grade(dirs)
    result = [graded[s] for s, _ in subs]
    write_gradebook(out, result)
    log(f"wrote {out / 'gradebook.csv'} ({len(result)} submission(s))")
    return result
