#!/usr/bin/env python3
"""Notebook latency: how long a student waits, Shift+Enter after Shift+Enter.

Each notebook runs headless, cell by cell, on a fresh kernel (a new one for every run), the
way a student steps through it; the clock is this process's monotonic clock. Measured per run:

- kernel start: `start_kernel` until the reply to the first `kernel_info` request (sent at
  once, so it waits in the socket until the kernel answers): the kernel is ready;
- kernel idle: `start_kernel` until the kernel's first `status: idle` (the indicator JupyterLab
  shows), the one that follows that reply;
- first picture: from ready, and from `start_kernel`, until the end of the first code cell
  that output an `image/png`;
- every code cell: from sending its `execute_request` until both its `execute_reply` and its
  `status: idle` arrived (the cell then shows its number and all its outputs);
- the median "light" cell, and all code cells together.

"Light" cells are those a student feels as instant in Python: a filter literal, a transpose,
a `println!`. A cell is light unless its code (comments and string literals removed) matches
one of the HEAVY patterns below: it loads libraries (`:dep`, `import`), defines a function, loads
a picture or a data set, shows a picture, convolves (or runs a network forward), or builds or
trains a network. The tables name the light cells and say why each other cell is heavy.

Failures fail the benchmark: a cell with an error output, stderr output, a reply that is not
`ok`, or (Rust) a cell that stopped before its last line without a message (nbrun's end
marker, see tools/nbrun.py) stops it with the cell and its message; nothing is written then.

The Python baseline, `bench/python-la1-4.ipynb` (the seed's LA1-LA4 code on Python 3), runs on
a `python3` kernel from a small venv of its own, `$CONVLAB_CACHE/bench-python` (numpy,
matplotlib, scipy, imageio, ipykernel; created and filled here, idempotently), whose kernel spec
lives inside that venv: this process points JUPYTER_PATH at it, so JupyterLab never lists it.

Notebook 2 runs without weights (CONVLAB_VGG_WEIGHTS names an absent file, so it skips the
weight cells); notebook 3 runs in quick mode on 200-picture test batches written by `convlab
make-test-cifar` into build/bench/test-cifar, with a fresh CONVLAB_CHECKPOINT_DIR per run, so
that every run trains from scratch.

Results: one table per notebook (median and min-max over the runs), Rust notebook 1 beside
the Python baseline with ratios, in BENCHMARKS.md (section "## Notebook latency", replaced on
each run) and as raw numbers in build/bench/notebooks.json.

    make bench-notebooks                                         # all three, 3 runs each
    python tools/nbbench.py --notebooks 01 --runs 1 --no-write   # a quick look
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
import zmq
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbrun  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
PYTHON_BASELINE = ROOT / "bench" / "python-la1-4.ipynb"
RUST_BASELINE_TWIN = "01-convolutions"  # the Rust notebook the Python baseline mirrors
OUT_DIR = ROOT / "build" / "bench"
JSON_OUT = OUT_DIR / "notebooks.json"
BENCHMARKS = ROOT / "BENCHMARKS.md"
SECTION = "## Notebook latency"
BENCHMARKS_INTRO = "Benchmarks of the course, each section written by the command it names.\n"
PYTHON_PACKAGES = ["numpy", "matplotlib", "scipy", "imageio", "ipykernel"]
PYTHON_KERNEL = "python3"
RUST_KERNEL = nbrun.KERNEL
CIFAR_PER_BATCH = 200
KERNEL_START_TIMEOUT = 180.0

# What makes a cell heavy: (reason, pattern), matched against the code with comments and
# string literals removed, line by line (re.MULTILINE). Every other cell is light.
HEAVY = [
    ("loads libraries", r"^\s*:dep\b|^\s*import\s|^\s*from\s+[\w.]+\s+import\s|^\s*%"),
    ("defines a function", r"^\s*(pub\s+)?fn\s+\w+|^\s*def\s+\w+"),
    ("loads a picture or data", r"\b(load_grey|load_colour|imread|data::ensure|cifar::load|load_weights)\s*\("),
    ("shows a picture", r"\b(show|show_row|show_titled|imshow|subplots)\s*\(|\bplt\.\w+\s*\("),
    ("convolves", r"(?<!def )\b(convolve|convolve_fast|conv2d|forward|layer_output|predict)\s*\("),
    ("builds or trains a network", r"\b(Model::new|vgg16|add_conv|add_dense|VarStore::new|fit)\s*\("),
]


class BenchError(Exception):
    """A problem that stops the benchmark; its message says what to do."""


@dataclass
class Target:
    """One notebook to bench: where it is, its kernel, and the environment its kernel gets."""
    name: str
    path: Path
    kernel: str
    env: dict = field(default_factory=dict)
    per_run_env: tuple = ()  # names of variables set to a fresh temporary folder per run


@dataclass
class Run:
    """The seconds measured in one run of a notebook on a fresh kernel."""
    kernel_start: float
    kernel_idle: float | None
    first_picture_cell: int | None
    ready_to_picture: float | None
    start_to_picture: float | None
    cells: dict[int, float]
    first_mistake: float | None = None


# ---------------------------------------------------------------------------- the cells


def strip_code(source: str, language: str) -> str:
    """The source without string literals and comments, for the HEAVY patterns."""
    if language == "python":
        source = re.sub(r"'''.*?'''|\"\"\".*?\"\"\"", "", source, flags=re.S)
        source = re.sub(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"", "", source)
        return re.sub(r"#.*$", "", source, flags=re.M)
    source = re.sub(r"\"(?:\\.|[^\"\\])*\"", "", source)
    return re.sub(r"//.*$", "", source, flags=re.M)


def heavy_reasons(source: str, language: str) -> list[str]:
    """Why a cell is heavy (the HEAVY reasons it matches); empty for a light cell."""
    code = strip_code(source, language)
    return [reason for reason, pattern in HEAVY if re.search(pattern, code, flags=re.M)]


def first_line(source: str, width: int = 60) -> str:
    """What names a cell in the tables: its first line of code, or its first comment when
    that line is a lone `{` (a test block), shortened."""
    lines = [l.strip() for l in source.splitlines() if l.strip()] or ["(empty)"]
    code = [l for l in lines if not l.startswith(("//", "#"))]
    comments = [l.lstrip("/# ") for l in lines if l.startswith(("//", "#"))]
    text = code[0] if code and (len(code[0]) > 2 or not comments) else (comments or lines)[0]
    return text if len(text) <= width else text[: width - 1] + "…"


def code_cells(nb) -> list[tuple[int, object]]:
    """(index in the notebook, cell) of every code cell that has code."""
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]


def language_of(kernel: str) -> str:
    """'python' or 'rust', for strip_code."""
    return "rust" if kernel == RUST_KERNEL else "python"


# ---------------------------------------------------------------------------- the kernel


class KernelRun:
    """One fresh kernel running one notebook's cells in order, with their outputs routed by
    the request they answer (a late stderr message still lands on its own cell)."""

    def __init__(self, target: Target, timeout: float, log_path: Path, env: dict):
        self.target = target
        self.timeout = timeout
        self.log_path = log_path
        self.env = env
        self.outputs: dict[str, list] = {}   # msg_id → nbformat outputs
        self.idle: dict[str, float] = {}     # msg_id → when its status: idle arrived
        self.replies: dict[str, dict] = {}   # msg_id → execute_reply content
        self.reply_time: dict[str, float] = {}

    def start(self) -> tuple[float, float, float | None]:
        """Starts the kernel; (t0, ready, idle) on the monotonic clock (idle None when the
        kernel sent none within 10 s of its reply)."""
        self.km = KernelManager(kernel_name=self.target.kernel)
        self.log = open(self.log_path, "w")
        t0 = time.monotonic()
        # JupyterLab names the notebook in the kernel's environment (the Rust kernel then
        # preloads the notebook's convlab, scripts/rust-kernel); the same here.
        env = {**self.env, "JPY_SESSION_NAME": str(self.target.path.resolve())}
        self.km.start_kernel(cwd=str(self.target.path.parent), env=env,
                             stdout=self.log, stderr=subprocess.STDOUT)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.poller = zmq.Poller()
        self.poller.register(self.kc.shell_channel.socket, zmq.POLLIN)
        self.poller.register(self.kc.iopub_channel.socket, zmq.POLLIN)
        info_id = self.kc.kernel_info()
        ready = self.wait_for(lambda: info_id in self.reply_time, KERNEL_START_TIMEOUT,
                              f"the {self.target.kernel} kernel did not answer within {KERNEL_START_TIMEOUT:.0f} s")
        ready = self.reply_time[info_id]
        try:
            self.wait_for(lambda: info_id in self.idle, 10.0, "")
            idle = self.idle[info_id]
        except TimeoutError:
            idle = None
        return t0, ready, idle

    def pump(self, wait_s: float) -> None:
        """Reads every message that arrives within wait_s seconds (or is already there)."""
        for socket, _ in self.poller.poll(int(wait_s * 1000)):
            channel = self.kc.shell_channel if socket is self.kc.shell_channel.socket else self.kc.iopub_channel
            while True:
                try:
                    msg = channel.get_msg(timeout=0)
                except Empty:
                    break
                self.route(msg, time.monotonic())

    def route(self, msg: dict, when: float) -> None:
        """Files one message under the request it answers."""
        parent = msg.get("parent_header", {}).get("msg_id")
        kind = msg["header"]["msg_type"]
        if kind.endswith("_reply"):
            self.replies[parent] = msg["content"]
            self.reply_time.setdefault(parent, when)
        elif kind == "status":
            if msg["content"].get("execution_state") == "idle":
                self.idle.setdefault(parent, when)
        elif kind in ("stream", "display_data", "execute_result", "error"):
            self.outputs.setdefault(parent, []).append(nbformat.v4.output_from_msg(msg))

    def wait_for(self, done, timeout: float, what: str) -> None:
        """Pumps messages until done() or timeout (TimeoutError, or BenchError when the
        kernel died)."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(what)
            self.pump(min(left, 1.0))
            if not done() and not self.km.is_alive():
                raise BenchError(f"the {self.target.kernel} kernel died; its output is in {self.log_path}")

    def execute(self, source: str) -> tuple[str, float, float]:
        """Runs one cell; (msg_id, sent, done) with done when both reply and idle arrived."""
        sent = time.monotonic()
        msg_id = self.kc.execute(source, store_history=True, allow_stdin=False)
        self.wait_for(lambda: msg_id in self.reply_time and msg_id in self.idle, self.timeout,
                      f"timed out after {self.timeout:.0f} s")
        return msg_id, sent, max(self.reply_time[msg_id], self.idle[msg_id])

    def drain(self, seconds: float = 1.0) -> None:
        """Collects what arrives in the next seconds (a late stderr report)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.pump(left)

    def stop(self) -> None:
        """Shuts the kernel down (it gives its build folder back as it exits)."""
        try:
            if hasattr(self, "kc"):
                self.kc.stop_channels()
            if hasattr(self, "km") and self.km.has_kernel:
                self.km.shutdown_kernel()
        finally:
            if hasattr(self, "log"):
                self.log.close()


def cell_with_outputs(cell, outputs: list, reply: dict | None):
    """A copy of the cell holding the outputs (and a failed reply as an error output)."""
    copy = nbformat.from_dict(dict(cell, outputs=list(outputs)))
    if reply and reply.get("status") != "ok" and not any(o.output_type == "error" for o in outputs):
        copy.outputs.append(nbformat.v4.new_output(
            "error", ename=reply.get("ename", "error"), evalue=reply.get("evalue", reply.get("status", "")),
            traceback=reply.get("traceback", [])))
    return copy


def check_cell(name: str, index: int, cell, outputs: list, reply: dict | None, guarded: bool) -> None:
    """Raises BenchError when the cell failed (see the module docstring)."""
    done = cell_with_outputs(cell, outputs, reply)
    reached_end = nbrun.strip_guard(done) if guarded else True
    problem = nbrun.cell_problem(index, done)
    if problem is None and not reached_end:
        problem = nbrun.CellProblem(index, cell.source, "the cell stopped before its last line without a "
                                    "message (a panic whose report evcxr lost)")
    if problem:
        raise BenchError(f"{name}: a cell failed, so its time would mean nothing:\n  {problem}")


def run_once(target: Target, number: int, timeout: float) -> Run:
    """Runs the notebook once on a fresh kernel and measures it."""
    nb = nbformat.read(target.path, as_version=4)
    env = dict(os.environ, **target.env)
    with tempfile.TemporaryDirectory(prefix="nbbench-") as tmp:
        for name in target.per_run_env:
            env[name] = str(Path(tmp) / name.lower())
        log_path = OUT_DIR / "logs" / f"{target.name}-run{number}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        kr = KernelRun(target, timeout, log_path, env)
        try:
            t0, ready, idle = kr.start()
            return run_cells(kr, nb, target, t0, ready, idle)
        except TimeoutError as e:
            raise BenchError(f"{target.name}: {e}") from None
        finally:
            kr.stop()


def run_cells(kr: KernelRun, nb, target: Target, t0: float, ready: float, idle: float | None) -> Run:
    """Executes the code cells in order, checking each; the run's measurements."""
    rust = target.kernel == RUST_KERNEL
    cells: dict[int, float] = {}
    sent_ids: dict[int, tuple[str, bool]] = {}
    picture: tuple[int, float] | None = None
    for index, cell in code_cells(nb):
        run_cell = nbformat.from_dict(dict(cell))
        guarded = rust and nbrun.end_guard(run_cell)
        try:
            msg_id, sent, done = kr.execute(run_cell.source)
        except TimeoutError as e:
            raise BenchError(f"{target.name}: cell {index} ({first_line(cell.source)}): {e}") from None
        cells[index] = done - sent
        sent_ids[index] = (msg_id, guarded)
        outputs = kr.outputs.get(msg_id, [])
        check_cell(target.name, index, cell, outputs, kr.replies.get(msg_id), guarded)
        if picture is None and nbrun.png_outputs({"outputs": outputs}):
            picture = (index, done)
    kr.drain()
    for index, cell in code_cells(nb):  # a report that came late still fails its cell
        msg_id, guarded = sent_ids[index]
        check_cell(target.name, index, cell, kr.outputs.get(msg_id, []), kr.replies.get(msg_id), guarded)
    mistake = first_mistake(kr, target)
    return Run(
        kernel_start=ready - t0,
        kernel_idle=None if idle is None else idle - t0,
        first_picture_cell=picture[0] if picture else None,
        ready_to_picture=picture[1] - ready if picture else None,
        start_to_picture=picture[1] - t0 if picture else None,
        cells=cells,
        first_mistake=mistake,
    )


MISTAKE = {"rust": "let misspelt = convlab::no_such_function();", "python": "misspelt = no_such_function()"}


def first_mistake(kr: KernelRun, target: Target) -> float:
    """Seconds until the kernel reports a student's first mistake, a misspelt name on the
    right of a `let` (Rust) or an assignment (Python), run after the notebook's cells. In
    evcxr that is the first error its type analysis cannot settle: it then runs `cargo check`,
    which in a build folder that never checked its dependencies checks all of them first."""
    source = MISTAKE[language_of(target.kernel)]
    try:
        msg_id, sent, done = kr.execute(source)
    except TimeoutError as e:
        raise BenchError(f"{target.name}: the deliberate mistake ({source}): {e}") from None
    text = " ".join(o.get("evalue", "") + o.get("text", "") for o in kr.outputs.get(msg_id, []))
    if "no_such_function" not in text:
        raise BenchError(f"{target.name}: the deliberate mistake ({source}) gave no error naming it: {text[:300]!r}")
    return done - sent


# ---------------------------------------------------------------------------- set-up


def cache_dir() -> Path:
    """$CONVLAB_CACHE, default ~/.cache/convlab (as scripts/env.sh)."""
    return Path(os.environ.get("CONVLAB_CACHE") or Path.home() / ".cache" / "convlab")


def sh(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    """Runs a command; BenchError naming `what` and the command when it fails."""
    try:
        return subprocess.run(cmd, check=True, **kw)
    except FileNotFoundError:
        raise BenchError(f"{what}: {cmd[0]} not found") from None
    except subprocess.CalledProcessError as e:
        out = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise BenchError(f"{what} failed: {' '.join(map(str, cmd))}\n{out.strip()[-2000:]}") from None


def ensure_python_env(venv: Path) -> Path:
    """Creates the baseline's venv with PYTHON_PACKAGES and its `python3` kernel spec inside
    it, when missing; returns the folder to put on JUPYTER_PATH."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"bench: creating the Python baseline's venv {venv}", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        sh([base, "-m", "venv", str(venv)], "creating the baseline venv")
    probe = [str(python), "-c", "import " + ", ".join(PYTHON_PACKAGES)]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        print(f"bench: installing {' '.join(PYTHON_PACKAGES)} into {venv}", flush=True)
        sh([str(python), "-m", "pip", "install", "--quiet", *PYTHON_PACKAGES], "pip install into the baseline venv")
    share = venv / "share" / "jupyter"
    spec = share / "kernels" / PYTHON_KERNEL / "kernel.json"
    if not spec.exists() or json.loads(spec.read_text())["argv"][0] != str(python):
        sh([str(python), "-m", "ipykernel", "install", "--prefix", str(venv), "--name", PYTHON_KERNEL,
            "--display-name", "Python 3 (nbbench baseline)"], "registering the baseline kernel",
           capture_output=True)
    # matplotlib builds its font cache on its first import (and says so on stderr).
    sh([str(python), "-c", "import matplotlib.pyplot"], "warming matplotlib",
       env=dict(os.environ, MPLBACKEND="Agg", **python_kernel_env(venv)), capture_output=True)
    return share


def python_kernel_env(venv: Path) -> dict:
    """The baseline kernel's own settings: matplotlib's config and cache inside its venv."""
    return {"MPLCONFIGDIR": str(venv / "mplconfig")}


def python_versions(venv: Path) -> str:
    """'Python 3.11.7, numpy 2.x, matplotlib 3.x' of the baseline venv."""
    code = ("import sys, numpy, matplotlib; "
            "print(f'Python {sys.version.split()[0]}, NumPy {numpy.__version__}, matplotlib {matplotlib.__version__}')")
    return sh([str(venv / "bin" / "python"), "-c", code], "reading versions", capture_output=True,
              text=True).stdout.strip()


def check_kernel(name: str, expect_in: Path | None, hint: str) -> None:
    """BenchError with `hint` unless the kernel spec exists (and starts a program under
    expect_in, when given)."""
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise BenchError(f"no Jupyter kernel '{name}': {hint}") from None
    if expect_in is not None and not spec.argv[0].startswith(str(expect_in)):
        raise BenchError(f"kernel '{name}' resolves to {spec.argv[0]}, not the baseline venv {expect_in}: {hint}")


def ensure_test_cifar(folder: Path) -> Path:
    """Small CIFAR-10 batches in the official format (as scripts/html.sh writes them)."""
    if not (folder / "test_batch.bin").is_file():
        print(f"bench: writing CIFAR-10 test batches to {folder}", flush=True)
        sh(["cargo", "run", "--quiet", "-p", "convlab", "--bin", "convlab", "--", "make-test-cifar",
            str(folder), "--per-batch", str(CIFAR_PER_BATCH)],
           "writing the CIFAR-10 test batches (run it through `make bench-notebooks`, which sources scripts/env.sh)",
           cwd=ROOT)
    return folder


def resolve_notebooks(names: list[str]) -> list[Path]:
    """notebooks/*.ipynb named by a prefix ('01') or stem, in the order given."""
    found = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            found.append(path.resolve())
            continue
        matches = sorted(NOTEBOOK_DIR.glob(f"{name}*.ipynb"))
        if len(matches) != 1:
            raise BenchError(f"--notebooks {name}: matches {len(matches)} notebooks in {NOTEBOOK_DIR}, not one")
        found.append(matches[0])
    return found


def targets_for(paths: list[Path], python_share: Path | None, venv: Path) -> list[Target]:
    """The Rust notebooks with their environments, and the Python baseline when wanted."""
    targets = []
    for path in paths:
        target = Target(path.stem, path, RUST_KERNEL)
        if path.stem.startswith("02"):
            target.per_run_env = ("CONVLAB_VGG_WEIGHTS",)  # an absent file: the no-weights path
        if path.stem.startswith("03"):
            target.env["CONVLAB_CIFAR_DIR"] = str(ensure_test_cifar(OUT_DIR / "test-cifar"))
            target.per_run_env = ("CONVLAB_CHECKPOINT_DIR",)
        targets.append(target)
    if python_share is not None:
        targets.append(Target("python-la1-4", PYTHON_BASELINE, PYTHON_KERNEL, python_kernel_env(venv)))
    return targets


# ---------------------------------------------------------------------------- numbers and tables


def spread(values: list[float | None]) -> dict | None:
    """Median, min and max of the values that exist."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "runs": vals}


def summarise(target: Target, runs: list[Run]) -> dict:
    """The per-notebook summary: medians and ranges, light cells, per-cell times."""
    nb = nbformat.read(target.path, as_version=4)
    lang = language_of(target.kernel)
    cells = []
    for index, cell in code_cells(nb):
        reasons = heavy_reasons(cell.source, lang)
        cells.append({
            "index": index, "id": cell.get("id"), "first_line": first_line(cell.source),
            "light": not reasons, "heavy_because": reasons,
            "mirrors": cell.get("metadata", {}).get("bench", {}).get("mirrors", []),
            "seconds": spread([r.cells[index] for r in runs]),
        })
    light = [c["index"] for c in cells if c["light"]]
    pictures = {r.first_picture_cell for r in runs}
    return {
        "notebook": str(target.path.relative_to(ROOT)),
        "kernel": target.kernel,
        "kernel_start": spread([r.kernel_start for r in runs]),
        "kernel_idle": spread([r.kernel_idle for r in runs]),
        "first_picture_cell": pictures.pop() if len(pictures) == 1 else sorted(pictures, key=str),
        "ready_to_picture": spread([r.ready_to_picture for r in runs]),
        "start_to_picture": spread([r.start_to_picture for r in runs]),
        "light_cells": light,
        "median_light_cell": spread([statistics.median(r.cells[i] for i in light) if light else None
                                     for r in runs]),
        "all_cells": spread([sum(r.cells.values()) for r in runs]),
        "first_mistake": spread([r.first_mistake for r in runs]),
        "code_cells": len(cells),
        "cells": cells,
        "raw_runs": [asdict(r) for r in runs],
    }


def fmt(s: dict | None, key: str = "median") -> str:
    """Seconds for a table: 1 decimal from 10 s, else 2."""
    if s is None:
        return "n/a"
    v = s[key]
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_range(s: dict | None) -> str:
    """'min–max' of a spread."""
    return "n/a" if s is None else f"{fmt(s, 'min')}–{fmt(s, 'max')}"


def notebook_table(name: str, summary: dict) -> str:
    """The markdown table of one notebook, with its per-cell times folded away."""
    pic = summary["first_picture_cell"]
    pic_cell = next((c for c in summary["cells"] if c["index"] == pic), None)
    pic_note = f" (cell {pic}, `{pic_cell['first_line']}`)" if pic_cell else ""
    rows = [
        ("kernel start: start → ready (first `kernel_info` reply)", summary["kernel_start"]),
        ("kernel idle: start → first `idle` status", summary["kernel_idle"]),
        (f"first picture, after ready{pic_note}", summary["ready_to_picture"]),
        ("first picture, after start", summary["start_to_picture"]),
        (f"median light cell ({len(summary['light_cells'])} light cells)", summary["median_light_cell"]),
        (f"all {summary['code_cells']} code cells", summary["all_cells"]),
        ("then a misspelt name, `" + MISTAKE[language_of(summary["kernel"])] + "`, until its error",
         summary.get("first_mistake")),
    ]
    lines = [f"### {name} (`{summary['notebook']}`, kernel `{summary['kernel']}`)", "",
             "| measure | median s | min–max s |", "|---|---:|---:|"]
    lines += [f"| {label} | {fmt(s)} | {fmt_range(s)} |" for label, s in rows]
    lines += ["", "<details><summary>each code cell</summary>", "",
              "| cell | code | light? | median s | min–max s |", "|---:|---|---|---:|---:|"]
    for c in summary["cells"]:
        kind = "light" if c["light"] else "heavy: " + ", ".join(c["heavy_because"])
        code = c["first_line"].replace("|", "\\|")
        lines.append(f"| {c['index']} | `{code}` | {kind} | {fmt(c['seconds'])} | {fmt_range(c['seconds'])} |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def mirrored_total(rust: dict, python: dict) -> tuple[dict | None, dict | None, int, int]:
    """Seconds of the Rust cells that have a Python twin, and of those twins, per run."""
    ids = {m for c in python["cells"] for m in c["mirrors"]}
    rust_idx = [c["index"] for c in rust["cells"] if c["id"] in ids]
    py_idx = [c["index"] for c in python["cells"] if c["mirrors"]]
    rust_runs = [sum(r["cells"][i] for i in rust_idx) for r in rust["raw_runs"]]
    py_runs = [sum(r["cells"][i] for i in py_idx) for r in python["raw_runs"]]
    return spread(rust_runs), spread(py_runs), len(rust_idx), len(py_idx)


def ratio(a: dict | None, b: dict | None) -> str:
    """Rust median / Python median."""
    if a is None or b is None or b["median"] <= 0:
        return "n/a"
    r = a["median"] / b["median"]
    return f"**{r:.1f}×**" if r < 100 else f"**{r:.0f}×**"


def comparison_table(rust: dict, python: dict) -> str:
    """Rust notebook 1 beside the Python baseline, medians with ranges and ratios."""
    mr, mp, nr, npy = mirrored_total(rust, python)
    rows = [
        ("kernel start", rust["kernel_start"], python["kernel_start"]),
        ("first picture after ready", rust["ready_to_picture"], python["ready_to_picture"]),
        (f"median light cell ({len(rust['light_cells'])} vs {len(python['light_cells'])} light cells)",
         rust["median_light_cell"], python["median_light_cell"]),
        (f"all code cells ({rust['code_cells']} vs {python['code_cells']})", rust["all_cells"], python["all_cells"]),
        (f"only the cells with a twin ({nr} vs {npy})", mr, mp),
        ("then a misspelt name, until its error", rust.get("first_mistake"), python.get("first_mistake")),
    ]
    lines = [f"### Rust notebook 1 beside the Python baseline", "",
             "| measure | Rust `01-convolutions` s | Python baseline s | Rust / Python |", "|---|---:|---:|---:|"]
    for label, a, b in rows:
        lines.append(f"| {label} | {fmt(a)} ({fmt_range(a)}) | {fmt(b)} ({fmt_range(b)}) | {ratio(a, b)} |")
    lines += ["", "Medians, with min–max over the runs in brackets. The Python baseline has no counterpart "
              "of the Rust notebook's test cells and extras (naive-vs-fast timing, vertical filter, channel "
              "sums, error handling): the last row compares only cells that do the same thing.", ""]
    return "\n".join(lines)


def machine() -> dict:
    """nproc, CPU model, memory and load average of this machine."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
        mem_gib = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model, "memory_gib": mem_gib,
            "loadavg_at_start": os.getloadavg()}


def section_text(results: dict) -> str:
    """The whole '## Notebook latency' section of BENCHMARKS.md."""
    m = results["machine"]
    load = ", ".join(f"{x:.2f}" for x in m["loadavg_at_start"])
    runs = f"{results['runs']} run" + ("s" if results["runs"] != 1 else "")
    head = [
        SECTION, "",
        f"`make bench-notebooks` (`tools/nbbench.py`), {results['date']}: {runs} of each notebook, "
        f"each on a fresh kernel, cells run in order as with Shift+Enter. Machine: {m['nproc']} cores "
        f"(`nproc`), {m['cpu']}, {m['memory_gib']} GiB memory; load average at the start {load}.",
        "",
        "Kernel start is `start_kernel` until the first `kernel_info` reply (ready); a cell's time runs from "
        "its `execute_request` until its reply and its `idle` status; the first picture is the end of the first "
        "cell that outputs a PNG. Light cells are the ones a student feels as instant in Python (a filter "
        "literal, a transpose, a print): every cell except those that load libraries (`:dep`, `import`), define "
        "a function, load a picture or data set, show a picture, convolve or run a network forward, or build or "
        "train a network (the patterns `HEAVY` in `tools/nbbench.py`; the per-cell tables say which). "
        "Notebook 2 runs without weights (its weight cells skip themselves); notebook 3 runs in quick mode on "
        f"{CIFAR_PER_BATCH}-picture test batches, training from scratch each run.",
        "",
    ]
    if results.get("python"):
        head += [f"Python baseline: `bench/python-la1-4.ipynb`, the seed's LA1–LA4 code on Python 3 "
                 f"({results['python']}), `python3` kernel of its own venv `$CONVLAB_CACHE/bench-python`.", ""]
    body = []
    nbs = results["notebooks"]
    if RUST_BASELINE_TWIN in nbs and "python-la1-4" in nbs:
        body.append(comparison_table(nbs[RUST_BASELINE_TWIN], nbs["python-la1-4"]))
    for name, summary in nbs.items():
        body.append(notebook_table(name, summary))
    return "\n".join(head + body).rstrip() + "\n"


def replace_section(text: str, section: str, heading: str = SECTION) -> str:
    """The document with a section replaced (or appended): it runs from `heading` to the next
    level-2 heading."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == heading), None)
    if start is None:
        return text.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + after if after else "")


def write_results(results: dict) -> None:
    """BENCHMARKS.md's section and build/bench/notebooks.json."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps(results, indent=1) + "\n")
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\n" + BENCHMARKS_INTRO
    BENCHMARKS.write_text(replace_section(text, section_text(results)))
    print(f"bench: wrote {BENCHMARKS.relative_to(ROOT)} (section '{SECTION}') and {JSON_OUT.relative_to(ROOT)}")


# ---------------------------------------------------------------------------- main


def bench(args) -> int:
    """Sets up, runs every target args.runs times, prints and writes the results."""
    if not args.skip_python and not PYTHON_BASELINE.exists():
        raise BenchError(f"{PYTHON_BASELINE} is missing")
    check_kernel(RUST_KERNEL, None, "run `make setup` (scripts/setup.sh registers it)")
    venv = cache_dir() / "bench-python"
    share = None
    if not args.skip_python:
        share = ensure_python_env(venv)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(share), os.environ.get("JUPYTER_PATH")]))
        check_kernel(PYTHON_KERNEL, venv, f"remove {venv} and run the benchmark again to recreate it")
    targets = targets_for(resolve_notebooks(args.notebooks), share, venv)
    results = {"date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
               "machine": machine(), "runs": args.runs,
               "python": python_versions(venv) if share else None, "notebooks": {}}
    for target in targets:
        runs = []
        for n in range(1, args.runs + 1):
            print(f"bench: {target.name}, run {n}/{args.runs} …", flush=True)
            run = run_once(target, n, args.timeout)
            print(f"bench:   ready after {run.kernel_start:.2f} s, all cells {sum(run.cells.values()):.1f} s", flush=True)
            runs.append(run)
        results["notebooks"][target.name] = summarise(target, runs)
    print()
    print(section_text(results))
    if not args.no_write:
        write_results(results)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notebooks", nargs="*", default=["01", "02", "03"],
                    help="notebooks to bench, by prefix or stem (default: 01 02 03; none: the Python "
                    "baseline alone)")
    ap.add_argument("--runs", type=int, default=3, help="fresh-kernel runs per notebook (default 3)")
    ap.add_argument("--skip-python", action="store_true", help="leave out the Python baseline")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per cell (default 900)")
    ap.add_argument("--no-write", action="store_true", help="print the tables only; leave BENCHMARKS.md and the JSON")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    try:
        return bench(args)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
