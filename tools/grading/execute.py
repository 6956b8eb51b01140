"""The Execute step: runs an assembled notebook in a `rust` kernel (tools/nbrun.py's executor),
every code cell in order under the per-cell and per-notebook limits, each test cell checked
for its end line (reached_end). It runs inside a child process of its own (`nbgrade.py _run`), so a kernel that
hangs or a grader that is stopped costs one submission only."""
from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import nbformat

import rustscan
from grading.markup import END_PREFIX, dep_lines, end_line, end_token, is_dep_cell, is_solution
from grading.score import error_text, stream_text

from nbrun import PANIC_HOOK, Kernel

KERNEL = "rust"
DEP_TIMEOUT = 600.0
CELL_TIMEOUT = 60.0  # the default limit of a cell (docs/grading.md: the answers' slowest take seconds)
TERMINATED = 143  # exit status of a `_run` child that was asked to stop: not retried
OUT_OF_STEP = ("the kernel's output was out of step with its cells at this test (did your code print a "
               "line of the kernel's own protocol, EVCXR_…?)")

# Run before the notebook, in the kernel's child process (which runs the cells):
# - what the student's code writes on stderr goes to stdout, which evcxr reads in order with
#   the cell's end, so a debug print shows under the cell that made it (evcxr forwards stderr
#   on a path of its own, and a late line lands under the next cell);
# - the student's code runs at a lower priority (nice 10) than the grader's own work (evcxr,
#   cargo, rustc, the other workers' compiles): an endless loop then takes only the processor
#   time nothing else wants while it waits out its cell's limit, instead of a whole core.
#   Threads started later inherit it, and an answer cannot raise it again (no `unsafe`).
# - the process may use at most MEMORY_LIMIT bytes of data (RLIMIT_DATA): code that asks for
#   more gets an allocation error that ends the process, which grading treats as a fault of
#   that one cell (run_notebook), instead of the machine running out of memory.
MEMORY_LIMIT = int(float(os.environ.get("NBGRADE_MEMORY_GB", "4")) * 2**30)
CHILD_SETUP = f"""unsafe extern "C" {{ fn dup2(old: i32, new: i32) -> i32; fn setpriority(which: i32, who: u32, prio: i32) -> i32; fn setrlimit(resource: i32, limit: *const [u64; 2]) -> i32; }}
if unsafe {{ dup2(1, 2) }} < 0 {{ ::core::panic!("grading could not send stderr to stdout"); }}
if unsafe {{ setpriority(0, 0, 10) }} != 0 {{ ::core::panic!("grading could not lower the priority of the submission's code"); }}
if unsafe {{ setrlimit(2, &[{MEMORY_LIMIT}u64, {MEMORY_LIMIT}u64]) }} != 0 {{ ::core::panic!("grading could not limit the submission's memory"); }}"""


def reached_end(cell, token: str) -> tuple[bool, str]:
    """Did the test cell run to its end? (passed, why not). Its last line prints `token`, made
    when the submission was assembled: the line must be in the cell's own output (run_one then
    takes it out, with hide_end_lines)."""
    if any(token in o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream"):
        return True, ""
    if error_text(cell) or stream_text(cell, "stderr"):
        return False, "the test did not reach its end"
    # No end line and no error: the cell's output is someone else's (a forged end of cell).
    return False, OUT_OF_STEP


def hide_end_lines(cell) -> None:
    """Takes the test cells' end lines out of a cell's output (after a forged end of cell, one
    may land under a later cell)."""
    for o in cell.outputs:
        if o.get("output_type") == "stream" and END_PREFIX in o.get("text", ""):
            o["text"] = "".join(l for l in o["text"].splitlines(keepends=True) if END_PREFIX not in l)
    cell.outputs = [o for o in cell.outputs if o.get("output_type") != "stream" or o.get("text")]


def not_running(cell, stop: str | None, deadline: float, notebook_timeout: float) -> dict | None:
    """The status of a code cell that is not run (skipped, after a stop, past the notebook's
    limit), or None when it runs."""
    skip = cell.get("metadata", {}).get("nbgrade", {}).get("skip")
    if skip:
        return {"status": "skipped", "seconds": 0.0, "why": skip}
    if stop:
        return {"status": "not-run", "seconds": 0.0, "why": stop}
    if deadline - time.monotonic() <= 1:
        return {"status": "not-run", "seconds": 0.0,
                "why": f"the notebook ran past its {notebook_timeout:.0f} s limit"}
    return None


# evcxr's error when the process running the cells ended (a stack overflow, an abort, memory
# refused): the kernel lives on with a new process, but every variable is gone.
CHILD_DIED = ("Subprocess terminated with status", "Subprocess didn't start")


def child_died(cell) -> bool:
    """Did the cell end the kernel's process? (evcxr's own error output says so; what a cell
    prints cannot, since it is a stream, not an error.)"""
    return any(w in error_text(cell) for w in CHILD_DIED)


def run_one(kernel: Kernel, cell, index: int, cell_timeout: float, left: float,
            notebook_timeout: float) -> dict:
    """Runs one code cell (a test cell checked for its end line) and returns its status. A
    status "timeout" or "dead" means the kernel must be started anew (see Session)."""
    # `:dep` cells build the crates (not the student's code): they get a longer limit.
    own = max(cell_timeout, DEP_TIMEOUT) if is_dep_cell(cell) else cell_timeout
    limit = min(own, left)
    ran = kernel.run(cell, index, limit)
    token = end_token(cell)
    if token and ran.status in ("ok", "failed"):
        passed, why = reached_end(cell, token)
    hide_end_lines(cell)
    if ran.status == "timeout":
        what = (f"the notebook ran past its {notebook_timeout:.0f} s limit" if limit < own
                else f"this cell ran past its {own:.0f} s limit")
        return {"status": "timeout", "seconds": ran.seconds, "why": what}
    if ran.status == "dead" or (ran.status == "failed" and child_died(cell)):
        said = re.search(r"Subprocess terminated with status: ([^\n]+)", error_text(cell))
        what = f" ({said.group(1).strip()})" if said else ""
        return {"status": "dead", "seconds": ran.seconds,
                "why": f"the process running the cells ended here{what}: a stack overflow, an abort, or more than "
                       f"the {MEMORY_LIMIT / 2**30:g} GiB of memory grading allows; every variable was lost"}
    if not token:
        return {"status": ran.status, "seconds": ran.seconds}
    status = {"status": ran.status, "seconds": ran.seconds, "passed": passed}
    if not passed:
        status["probe"] = why
    return status


class Session:
    """The kernel a notebook runs in, and how to go on after a fault: a cell that runs past its
    limit or ends the kernel's process loses its own work only. `restart()` gives a fresh
    kernel (None: the rest of the notebook is not run); the cells that ran before the fault
    are run again in it, their outputs not kept (Faults)."""

    def __init__(self, kernel: Kernel, restart=None):
        self.kernel = kernel
        self.restart = restart


class Faults:
    """What a faulty cell takes with it: the names it defined or used that the student wrote,
    and the names of the student's cells that use those (their functions would run the same
    code). A later cell that uses one of them is not run, so one endless loop costs one
    exercise and what depends on it, not one time limit per cell."""

    def __init__(self, nb):
        student = [c for c in nb.cells if c.cell_type == "code" and (is_solution(c) or
                   c.get("metadata", {}).get("nbgrade", {}).get("added"))]
        self.student_cells = [(self.defined(c.source), self.used(c.source)) for c in student]
        self.student_names = set().union(*(d for d, _ in self.student_cells)) if student else set()
        self.suspects: dict[str, str] = {}  # name -> why a cell that uses it is not run

    @staticmethod
    def defined(source: str) -> set[str]:
        return {d.name for d in rustscan.definitions(rustscan.tokens(source))}

    @staticmethod
    def used(source: str) -> set[str]:
        return {t.text for t in rustscan.tokens(source) if t.is_ident}

    def add(self, cell, index: int, what: str) -> None:
        names = self.defined(cell.source) | (self.used(cell.source) & self.student_names)
        why = f"not run: it uses `{{}}`, which {what} in cell {index}"
        for name in names:
            self.suspects.setdefault(name, why)
        changed = True
        while changed:  # the student's cells that use a suspect name carry its fault
            changed = False
            for defined, used in self.student_cells:
                if used & set(self.suspects) and not defined <= set(self.suspects):
                    for name in defined:
                        self.suspects.setdefault(name, why)
                    changed = True

    def why_not(self, cell) -> str | None:
        hit = sorted(self.used(cell.source) & set(self.suspects))
        return self.suspects[hit[0]].format(hit[0]) if hit else None


def replay(session: Session, nb, ran: list[int], deadline: float, cell_timeout: float) -> str | None:
    """Runs again, in the fresh kernel, the cells that ran before a fault (outputs dropped);
    None when they all ran, else why the rest of the notebook cannot run."""
    for j in ran:
        cell = nb.cells[j]
        own = max(cell_timeout, DEP_TIMEOUT) if is_dep_cell(cell) else cell_timeout
        left = deadline - time.monotonic()
        if left <= 1:
            return "not run: the notebook ran past its time limit while grading started it again after a fault"
        try:
            again = session.kernel.run_extra(cell.source, j, min(own, left))
        except Exception as e:  # a time limit, or the kernel gone: the notebook cannot go on
            return f"not run: cell {j} did not run again after a fault ({type(e).__name__})"
        if child_died(again):
            return f"not run: cell {j} ended the kernel's process when it was run again after a fault"
    return None


def run_notebook(session: Session | Kernel, nb, cell_timeout: float, notebook_timeout: float) -> dict:
    """Executes every code cell of `nb` in order and returns {index: {"status", "seconds", …}}.
    status: ok | failed (error output or a panic) | timeout | dead | not-run | skipped. Test
    cells also get "passed": whether their end line proved they ran to their end
    (reached_end). A cell that times out or ends the kernel's process loses its own work: the
    kernel is started anew (session.restart), the cells that ran before it run again, and the
    cells that use what the faulty cell defined or ran (Faults) are not run; without a restart
    the rest is not run. Cells marked `after_tests` (steps.stop_after_last_test) are not run
    and get no status."""
    if isinstance(session, Kernel):
        session = Session(session)
    deadline = time.monotonic() + notebook_timeout
    status: dict[int, dict] = {}
    stop: str | None = None
    faults = Faults(nb)
    ran: list[int] = []  # the cells that ran, in order (run again after a fault)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.get("metadata", {}).get("nbgrade", {}).get("after_tests"):
            continue
        status[index] = not_running(cell, stop, deadline, notebook_timeout)
        if status[index] is None and (why := faults.why_not(cell)):
            status[index] = {"status": "not-run", "seconds": 0.0, "why": why}
            continue
        if status[index] is not None:
            stop = stop or (status[index]["why"] if status[index]["status"] == "not-run" else None)
            continue
        status[index] = st = run_one(session.kernel, cell, index, cell_timeout, deadline - time.monotonic(),
                                     notebook_timeout)
        if st["status"] not in ("timeout", "dead"):
            ran.append(index)
            continue
        faults.add(cell, index, "ran past its time limit" if st["status"] == "timeout" else "ended the kernel's process")
        t0 = time.monotonic()
        kernel = session.restart() if session.restart is not None else None
        if kernel is None:
            stop = (f"not run: cell {index} ran past its time limit, so its kernel was stopped" if st["status"] == "timeout"
                    else f"not run: the kernel died in cell {index}")
            continue
        session.kernel = kernel
        stop = replay(session, nb, ran, deadline, cell_timeout)
        st["recovery_seconds"] = round(time.monotonic() - t0, 2)  # the fresh kernel and the replay
    return status


def run_cells(nb, cell_timeout: float, notebook_timeout: float, cwd: Path) -> dict:
    """run_notebook in a kernel of its own, started in `cwd` (and stopped after); after a fault
    it goes on in a new kernel."""
    def start() -> Kernel:
        return Kernel(nb, cwd, max(cell_timeout, 120), startup_timeout=120, setup=(CHILD_SETUP,),
                      shutdown="immediate").__enter__()

    session = Session(start())

    def restart() -> Kernel:
        session.kernel.__exit__(None, None, None)
        return start()

    session.restart = restart
    try:
        return run_notebook(session, nb, cell_timeout, notebook_timeout)
    finally:
        session.kernel.__exit__(None, None, None)


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
# One kernel for many submissions (`nbgrade.py _serve`)


def rust_str(text: str) -> str:
    """A Rust raw string literal holding `text`."""
    hashes = "#" * (max((len(m) for m in re.findall(r'"(#*)', text)), default=0) + 1)
    return f'r{hashes}"{text}"{hashes}'


def submission_cell(cwd: Path, checkpoints: Path) -> str:
    """The first hidden cell of a submission in a reused kernel: stderr to stdout and a lower
    priority (see CHILD_SETUP), and the submission's own working folder and checkpoint folder,
    set in the kernel's fresh child process (through the C library: the same in every Rust
    edition)."""
    return CHILD_SETUP + f"""
unsafe extern "C" {{ fn chdir(path: *const ::std::ffi::c_char) -> i32; fn setenv(k: *const ::std::ffi::c_char, v: *const ::std::ffi::c_char, o: i32) -> i32; }}
{{
    let dir = ::std::ffi::CString::new({rust_str(str(cwd))}).unwrap();
    let key = ::std::ffi::CString::new("CONVLAB_CHECKPOINT_DIR").unwrap();
    let val = ::std::ffi::CString::new({rust_str(str(checkpoints))}).unwrap();
    if unsafe {{ chdir(dir.as_ptr()) }} != 0 || unsafe {{ setenv(key.as_ptr(), val.as_ptr(), 1) }} != 0 {{
        ::core::panic!("grading could not enter the submission's folder");
    }}
}}"""


def grader_lines() -> str:
    """Every line the grader itself runs in a submission's kernel: the first hidden cells, the
    panic hook and a test cell's end line. They name things by absolute paths (`::std::…`),
    and no student's cell may define a name they use (steps.check_names)."""
    return "\n".join((submission_cell(Path("/"), Path("/")), PANIC_HOOK, end_line("nbgrade-end-0")))


def needs_fresh_kernel(nb, status: dict) -> str | None:
    """Why the kernel that ran `nb` must not run another submission, or None: it timed out or
    died, its output went out of step with its cells, or a student's cell holds an evcxr
    command (never run, but a kernel is not trusted after one)."""
    for st in status.values():
        if st["status"] in ("timeout", "dead"):
            return st["status"]
        if "out of step" in st.get("probe", ""):
            return "out of step"
    for cell in nb.cells:
        mine = cell.get("metadata", {}).get("nbgrade", {}).get("added") or is_solution(cell)
        if cell.cell_type == "code" and mine and rustscan.evcxr_commands(cell.source):
            return "an evcxr command"
    return None


def source_deps(nb) -> list[str]:
    """The `:dep` lines of the notebook's own cells (a student's added cells are not run). The
    first hidden cell of each submission starts with them: `:clear` empties the kernel's
    dependencies, and a first cell compiled without them would make evcxr's rust-analyzer load
    the standard library and every dependency again (about a second) after the notebook's
    `:dep` cell. With them, the build folder's `Cargo.toml` stays the same from one submission
    to the next, and the notebook's own `:dep` cell then changes nothing."""
    return [line for cell in nb.cells
            if cell.cell_type == "code" and not cell.get("metadata", {}).get("nbgrade", {}).get("added")
            for line in dep_lines(cell.source)]


class ReusedKernel:
    """One kernel that runs submission after submission, cleared (`:clear`) in between, and
    started anew when the last one left it untrusted (needs_fresh_kernel) or asked for it."""

    def __init__(self, home: Path):
        self.home = home  # the kernel's own working folder (each submission enters its own)
        self.kernel: Kernel | None = None

    def run(self, job: dict) -> dict:
        nb = nbformat.read(job["notebook"], as_version=4)
        setup = (*source_deps(nb), submission_cell(Path(job["cwd"]), Path(job["checkpoints"])))
        first = max(job["cell_timeout"], DEP_TIMEOUT)  # the first cells load the dependencies
        if self.kernel is not None:
            try:
                self.kernel.reset(nb, setup)
            except Exception:
                self.close()
        def start() -> Kernel:
            return Kernel(nb, self.home, first, startup_timeout=120, setup=setup,
                          shutdown="immediate").__enter__()

        def restart() -> Kernel:
            self.close()
            self.kernel = start()
            return self.kernel

        if self.kernel is None:
            self.kernel = start()
        status = run_notebook(Session(self.kernel, restart), nb, job["cell_timeout"], job["notebook_timeout"])
        nbformat.write(nb, job["notebook"])
        Path(job["status"]).write_text(json.dumps({str(k): v for k, v in status.items()}))
        if job.get("fresh") or needs_fresh_kernel(nb, status):
            self.close()
        return status

    def close(self) -> None:
        kernel, self.kernel = self.kernel, None
        if kernel is not None:
            kernel.__exit__(None, None, None)


def serve_main(args) -> int:
    """`_serve`: runs the jobs it reads on stdin (a JSON object a line: notebook, status, cwd,
    checkpoints, cell_timeout, notebook_timeout, fresh) in one reused kernel, and answers each
    with a line on stdout ({"ok": true} or {"ok": false, "error": …})."""
    def on_term(signum, frame):  # let the kernel be shut down on the way out
        raise SystemExit(TERMINATED)
    signal.signal(signal.SIGTERM, on_term)
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever else prints goes to the log, not into the answers
    worker = ReusedKernel(Path(args.home))
    try:
        for line in sys.stdin:
            job = json.loads(line)
            try:
                worker.run(job)
                answer = {"ok": True}
            except Exception as e:  # the kernel did not start, or grading broke: this one only
                worker.close()
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            replies.write(json.dumps(answer) + "\n")
            replies.flush()
    finally:
        worker.close()
    return 0
