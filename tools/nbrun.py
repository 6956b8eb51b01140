#!/usr/bin/env python3
"""Execute notebooks headless with the `rust` (evcxr) kernel and fail for real.

evcxr catches panics: the cell "succeeds" and the panic shows only on stderr. This runner
counts as a failure every cell that produced an error output *or wrote to stderr*, and
prints which cell and what it said.

    python tools/nbrun.py notebooks/01-convolutions.ipynb            # run, report
    python tools/nbrun.py NB --out build/executed --html build/html  # keep the results
    python tools/nbrun.py --prewarm                                  # warm evcxr's build folder
"""
from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "rust"


@dataclass
class CellProblem:
    index: int
    source: str
    message: str

    def __str__(self) -> str:
        first = self.source.strip().splitlines()[0] if self.source.strip() else "(empty)"
        return f"cell {self.index} ({first[:60]}): {self.message.strip()[:2000]}"


@dataclass
class Result:
    path: Path
    notebook: nbformat.NotebookNode
    seconds: float
    problems: list[CellProblem] = field(default_factory=list)
    cell_seconds: dict[int, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def cell_problem(index: int, cell) -> CellProblem | None:
    """The error outputs and stderr text of one executed code cell, or None when clean."""
    messages = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            tb = "\n".join(out.get("traceback", [])) or f"{out.get('ename')}: {out.get('evalue')}"
            messages.append(tb)
        elif out.get("output_type") == "stream" and out.get("name") == "stderr":
            messages.append(out.get("text", ""))
    if not messages:
        return None
    return CellProblem(index, cell.get("source", ""), "\n".join(messages))


# evcxr prints a panic's report on stderr, which reaches Jupyter by a path of its own: under
# load the report can come after the cell's reply (lost, or shown with the next cell). The
# runners therefore first install a panic hook that writes the report to stdout, each line
# behind PANIC_MARK, and waits a moment so the lines are sent before the cell ends; stdout
# reaches evcxr in order with the cell's end. After each cell the marked lines are turned
# back into a stderr output, so a panic looks as it does in JupyterLab, only reliably.
PANIC_MARK = "nbrun-panic| "
# (In braces: evcxr reads a cell's first lines that start with `:` as its own commands.)
PANIC_HOOK = """{ ::std::panic::set_hook(::std::boxed::Box::new(|info| {
    use ::std::io::Write;
    let payload = info.payload();
    let message = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<::std::string::String>()) {
        (::core::option::Option::Some(s), _) => ::std::string::ToString::to_string(s),
        (_, ::core::option::Option::Some(s)) => ::core::clone::Clone::clone(s),
        _ => ::std::string::String::from("Box<dyn Any>"),
    };
    let place = match info.location() {
        ::core::option::Option::Some(l) => ::std::format!("{}:{}:{}", l.file(), l.line(), l.column()),
        ::core::option::Option::None => ::std::string::String::from("<unknown>"),
    };
    let thread = ::std::thread::current();
    let report = ::std::format!("thread '{}' panicked at {}:\n{}", thread.name().unwrap_or("<unnamed>"), place, message);
    let mut out = ::std::io::stdout().lock();
    for line in report.lines() {
        let _ = ::std::writeln!(out, "%s{}", line);
    }
    let _ = out.flush();
    ::core::mem::drop(out);
    ::std::thread::sleep(::std::time::Duration::from_millis(200));
})); }""" % PANIC_MARK


def promote_panic_report(cell) -> bool:
    """Moves PANIC_MARK lines from the cell's stdout into a stderr output (where evcxr shows
    a panic); True when there were any."""
    report = []
    kept = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout" and PANIC_MARK in out.get("text", ""):
            lines = out["text"].splitlines(keepends=True)
            report += [l.split(PANIC_MARK, 1)[1] for l in lines if PANIC_MARK in l]
            out["text"] = "".join(l for l in lines if PANIC_MARK not in l)
            if not out["text"]:
                continue
        kept.append(out)
    if not report:
        return False
    text = "".join(l if l.endswith("\n") else l + "\n" for l in report)
    already = "".join(o.get("text", "") for o in kept
                      if o.get("output_type") == "stream" and o.get("name") == "stderr")
    if text.strip() not in already:
        kept.append(nbformat.v4.new_output("stream", name="stderr", text=text))
    cell["outputs"] = kept
    return True


# evcxr can lose a panic's report: the cell then looks clean. So each Rust cell gets a last
# line that prints this marker; a cell whose output lacks it did not reach its end.
END_MARKER = f"nbrun-end-{uuid.uuid4().hex}"


def end_guard(cell) -> bool:
    """Appends the end marker to a cell that ends with a statement (`;`: a cell ending in an
    expression or a block may yield a value, and a line after it would change its type);
    True when it did."""
    src = cell.source.rstrip()
    if not src or src.lstrip().startswith(":") or not src.endswith(";"):
        return False
    cell.source = src + f'\nprintln!("{END_MARKER}");'
    return True


def strip_guard(cell) -> bool:
    """Removes the end marker from the outputs; True when it was there."""
    found = False
    kept = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and END_MARKER in out.get("text", ""):
            found = True
            out["text"] = "".join(l for l in out["text"].splitlines(keepends=True) if END_MARKER not in l)
            if not out["text"]:
                continue
        kept.append(out)
    cell["outputs"] = kept
    return found


def png_outputs(cell) -> list[bytes]:
    """The PNG pictures a code cell displayed, decoded from base64."""
    pngs = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if "image/png" in data:
            pngs.append(base64.b64decode(data["image/png"]))
    return pngs


class Kernel:
    """The one cell executor of the course's tools (this runner, the grader, the release's
    checker): a `rust` kernel running the cells of one notebook in order, each under a time
    limit, its panic report brought back where evcxr shows it.

        with Kernel(nb, cwd, timeout=300) as k:
            ran = k.run(cell, index)          # Ran: status ok | failed | timeout | dead
            extra = k.run_extra(source, at)   # a cell of the caller's own, not kept in nb

    `setup`: cells of the caller's own run first, before the panic hook (PANIC_HOOK); `env`:
    the kernel's environment (default: this process's); `shutdown`: nbclient's way to stop it."""

    def __init__(self, nb, cwd: Path, timeout: float = 900, startup_timeout: int = 120,
                 env: dict | None = None, setup: tuple[str, ...] = (), shutdown: str = "graceful"):
        self.nb = nb
        self.timeout = timeout
        self.env = env
        self.setup = setup
        self.client = NotebookClient(nb, kernel_name=KERNEL, timeout=int(timeout), allow_errors=True,
                                     shutdown_kernel=shutdown, startup_timeout=startup_timeout,
                                     resources={"metadata": {"path": str(cwd)}})
        self._context = None

    def __enter__(self) -> "Kernel":
        self._context = self.client.setup_kernel(**({"env": self.env} if self.env is not None else {}))
        self._context.__enter__()
        try:
            self._first_cells()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _first_cells(self) -> None:
        """The caller's first cells and the panic hook, as one cell (one compile)."""
        cell = self.run_extra("\n".join((*self.setup, PANIC_HOOK)), 0, self.timeout)
        problem = cell_problem(0, cell)
        if problem:
            raise RuntimeError(f"could not install the first cells (panic hook included): "
                               f"{problem.message.strip()[:2000]}")

    def reset(self, nb, setup: tuple[str, ...] = ()) -> None:
        """Makes the running kernel ready for another notebook `nb`: evcxr's `:clear` (a fresh
        child process: no variables, items, dependencies, environment changes, working folder
        or panic hook of the last notebook; the compiled crates and rust-analyzer's state are
        kept, which saves seconds), then the first cells `setup` and the panic hook again."""
        cell = self.run_extra(":clear", 0, self.timeout)
        problem = cell_problem(0, cell)
        if problem:
            raise RuntimeError(f"could not clear the kernel: {problem.message.strip()[:2000]}")
        self.nb = self.client.nb = nb
        self.setup = setup
        self._first_cells()

    def __exit__(self, *exc) -> None:
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(*exc)

    def run_extra(self, source: str, at: int, timeout: float) -> nbformat.NotebookNode:
        """Executes a cell of the caller's own, not kept in the notebook (nbclient stores the
        executed cell at its index, so it is put there for the time of the run)."""
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.insert(at, cell)
        old = self.client.timeout
        self.client.timeout = max(1, int(timeout))
        try:
            self.client.execute_cell(cell, at)
        finally:
            self.client.timeout = old
            self.nb.cells.pop(at)
        return cell

    def run(self, cell, index: int, timeout: float | None = None) -> "Ran":
        """Executes the notebook's cell `index` under `timeout` seconds (default: the kernel's).
        A timeout or a dead kernel is reported, not raised; after either, the kernel is gone."""
        self.client.timeout = max(1, int(timeout if timeout is not None else self.timeout))
        t0 = time.monotonic()
        try:
            self.client.execute_cell(cell, index)
        except CellTimeoutError:
            return Ran("timeout", time.monotonic() - t0)
        except DeadKernelError as e:
            return Ran("dead", time.monotonic() - t0, f"the kernel died: {e}")
        seconds = time.monotonic() - t0
        promote_panic_report(cell)
        problem = cell_problem(index, cell)
        return Ran("failed" if problem else "ok", seconds, problem.message if problem else "", problem)


@dataclass
class Ran:
    """How one cell ran: status ok | failed (an error output or stderr) | timeout | dead."""
    status: str
    seconds: float
    message: str = ""
    problem: CellProblem | None = None


def execute(path: Path | str, timeout: int = 900, cwd: Path | None = None,
            notebook: nbformat.NotebookNode | None = None, startup_timeout: int = 120) -> Result:
    """Runs every cell (going on after failures) and collects the problems. `startup_timeout`:
    seconds for the kernel to start (it compiles the crate first when the crate changed)."""
    path = Path(path)
    nb = notebook if notebook is not None else nbformat.read(path, as_version=4)
    start = time.monotonic()
    cell_seconds: dict[int, float] = {}
    problems: list[CellProblem] = []
    # JupyterLab names the notebook in the kernel's environment; scripts/rust-kernel then
    # preloads the notebook's convlab (tools/preload.py). The same here, as students get it.
    env = {**os.environ, "JPY_SESSION_NAME": str(path.resolve())}
    with Kernel(nb, cwd or path.parent, timeout, startup_timeout, env) as kernel:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            original = cell.source
            guarded = end_guard(cell)
            try:
                ran = kernel.run(cell, index)
            finally:
                cell.source = original
            if ran.status in ("timeout", "dead"):
                problems.append(CellProblem(index, original, ran.message or f"timed out after {timeout} s"))
                break
            cell_seconds[index] = ran.seconds
            reached_end = strip_guard(cell) if guarded else True
            problem = cell_problem(index, cell)
            if problem:
                problems.append(problem)
            elif not reached_end:
                problems.append(CellProblem(
                    index, original,
                    "the cell stopped before its last line without a message (a panic whose report evcxr lost)"))
    return Result(path, nb, time.monotonic() - start, problems, cell_seconds)


# A student's first mistake in a `let` (a misspelt name) makes evcxr run `cargo check`, which
# checks every dependency once per build folder: tens of seconds for the first error, unless a
# prewarm made this mistake on purpose (the setup's seed, below, and the grader's folders).
CHECK_ONCE = "let prewarm_mistake = convlab::no_such_function();"


def prewarm() -> int:
    """Runs `:dep convlab` in a kernel with and without libtorch (the `torch` feature), so
    both builds land in EVCXR_TMPDIR (the setup points it at the seed build folder), and
    `cargo check` once with each (a compile error in a `let`). The kernels resolve crates offline (see setup.sh);
    the prewarm may go online, to fetch what the local cache lacks."""
    crate = ROOT / "crates" / "convlab"
    variants = [
        ("with libtorch", f':dep convlab = {{ path = "{crate}" }}',
         "let t = convlab::tch::Tensor::from_slice(&[1.0f32, 2.0]);\n"
         "let g = convlab::filters::horizontal_edge();\n"
         'println!("{} {}", t.sum(convlab::tch::Kind::Float).double_value(&[]), g.sum());'),
        ("without libtorch", f':dep convlab = {{ path = "{crate}", default-features = false }}',
         "let g = convlab::filters::horizontal_edge();\n"
         'println!("{}", g.sum());'),
    ]
    os.environ["CARGO_NET_OFFLINE"] = "false"
    for name, dep, cell in variants:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in (dep, cell, CHECK_ONCE)]
        with tempfile.TemporaryDirectory() as tmp:
            res = execute(Path(tmp) / "prewarm.ipynb", timeout=3600, notebook=nb, cwd=Path(tmp))
        expected = [p for p in res.problems if p.index == 2 and "no_such_function" in p.message]
        if len(expected) != 1 or len(res.problems) != 1:
            for p in res.problems:
                print(f"prewarm: {p}", file=sys.stderr)
            if not expected:
                print("prewarm: the deliberate mistake of the last cell gave no compile error", file=sys.stderr)
            return 1
        print(f"prewarm: kernel ready, convlab {name} ({res.seconds:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, help="write the executed notebooks here")
    ap.add_argument("--html", type=Path, help="write the executed notebooks as HTML here")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    ap.add_argument("--prewarm", action="store_true", help="warm evcxr's build folder and exit")
    args = ap.parse_args(argv)
    if args.prewarm:
        return prewarm()
    if not args.notebooks:
        ap.error("name at least one notebook")
    failed = 0
    for path in args.notebooks:
        res = execute(path, timeout=args.timeout)
        status = "ok" if res.ok else f"{len(res.problems)} failing cell(s)"
        print(f"{path}: {status} in {res.seconds:.1f} s")
        for p in res.problems:
            print(f"  {p}")
        failed += not res.ok
        for folder, fmt in ((args.out, "ipynb"), (args.html, "html")):
            if folder is None:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{path.stem}.{fmt}"
            if fmt == "ipynb":
                nbformat.write(res.notebook, target)
            else:
                from nbconvert import HTMLExporter
                body, _ = HTMLExporter().from_notebook_node(res.notebook)
                target.write_text(body)
            print(f"  wrote {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
