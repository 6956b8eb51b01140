"""The workers' evcxr build folders and the kernels' environment.

evcxr compiles every cell in its build folder (EVCXR_TMPDIR), and two kernels must never share
one: each worker gets its own copy of one prewarmed folder, made once and reused. The kernel
itself is the course's launcher (scripts/rust-kernel, the `rust` kernel): it sets what evcxr
and tch need at run time (the toolchain's library folder, no CARGO_TARGET_DIR, offline crates);
grading adds only the build folder and quiet panics."""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

from grading.markup import CRATE_DEFAULT_DEP, ROOT
from nbrun import CHECK_ONCE
from grading.score import error_text, stream_text

CRATE = ROOT / "crates" / "convlab"
CACHE = Path(os.environ.get("CONVLAB_CACHE", Path.home() / ".cache" / "convlab"))
NBGRADE = ROOT / "tools" / "nbgrade.py"  # its `_run` command executes one notebook


def default_workers() -> int:
    """One worker more than the cores this process may use: a worker spends part of each cell
    waiting (on the kernel's messages, cargo, the linker), which another worker's compile fills
    (measured on 2 cores: 3 workers 10.3 s per submission, 2 workers 10.9 s). Each worker keeps
    a build folder of its own (about 2.5 GB) and a kernel (about 1.5 GB of memory)."""
    return len(os.sched_getaffinity(0)) + 1


def default_base() -> Path:
    """The prewarmed folder the workers' copies are made from."""
    return Path(os.environ.get("NBGRADE_BUILD_BASE", CACHE / "evcxr-tmp-grade"))


def worker_dirs(base: Path, workers: int) -> list[Path]:
    return [base.parent / f"{base.name}-w{i}" for i in range(workers)]


def kernel_env(tmpdir: Path) -> dict:
    """The environment of a grading kernel: this one, with its own build folder and panics that
    print their message only (quick, and the feedback is the message)."""
    return {**os.environ, "EVCXR_TMPDIR": str(tmpdir), "RUST_BACKTRACE": "0"}


def run_child(nb_path: Path, status: Path, cwd: Path, cell_timeout: float, notebook_timeout: float,
              env: dict, **popen) -> subprocess.Popen:
    """Starts `nbgrade.py _run` on an assembled notebook, in a session of its own."""
    cmd = [sys.executable, str(NBGRADE), "_run", str(nb_path), "--status", str(status),
           "--cwd", str(cwd), "--cell-timeout", str(cell_timeout), "--notebook-timeout", str(notebook_timeout)]
    return subprocess.Popen(cmd, env=env, text=True, **popen)


class Worker:
    """A `nbgrade.py _serve` child process: one kernel in the build folder `tmpdir`, reused
    from submission to submission (grading.execute.ReusedKernel). A job that runs past its
    outer limit gets the child's whole session killed; the next job starts a new child."""

    def __init__(self, tmpdir: Path, home: Path, log_path: Path):
        self.tmpdir, self.home, self.log_path = tmpdir, home, log_path
        self.proc: subprocess.Popen | None = None
        self.answers: "queue.Queue[str | None]" = queue.Queue()

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen([sys.executable, str(NBGRADE), "_serve", "--home", str(self.home)],
                                         env=kernel_env(self.tmpdir), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        self.answers = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.answers), daemon=True).start()

    @staticmethod
    def _read(proc: subprocess.Popen, answers) -> None:
        for line in proc.stdout:
            answers.put(line)
        answers.put(None)

    def run(self, job: dict, timeout: float) -> tuple[dict | None, int | None, bool]:
        """Sends one job: (the answer, or None; the child's exit status when it ended; whether
        it was stuck and killed)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            self.stop(kill=True)
            return None, None, True
        except OSError:
            line = None
        if line is None:  # the child ended
            code = self.proc.wait()
            self.proc = None
            return None, code, False
        return json.loads(line), None, False

    def stop(self, kill: bool = False) -> None:
        """Ends the child (and its kernel): at once with `kill`, else by closing its input."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        if not kill:
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
                return
            except subprocess.TimeoutExpired:
                pass
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def prewarm_dir(tmpdir: Path, deps: list[str], timeout: float = 3600) -> float:
    """Runs the `:dep` lines once in a kernel using `tmpdir`, so later kernels start quickly."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "rust", "display_name": "Rust",
                                                           "language": "rust"}})
    # The last cell runs `cargo check` once (nbrun.CHECK_ONCE), here instead of in the first
    # submission whose answer has a compile error.
    nb.cells = [nbformat.v4.new_code_cell("\n".join(deps) or CRATE_DEFAULT_DEP),
                nbformat.v4.new_code_cell('println!("warm");'),
                nbformat.v4.new_code_cell(CHECK_ONCE)]
    tmpdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "prewarm.ipynb"
        nbformat.write(nb, path)
        status = Path(work) / "status.json"
        t0 = time.monotonic()
        # online: fetch what the local cache lacks (kernels run offline)
        proc = run_child(path, status, Path(work), timeout, timeout,
                         {**kernel_env(tmpdir), "CARGO_NET_OFFLINE": "false"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, stderr = proc.communicate()
        secs = time.monotonic() - t0
        ran = nbformat.read(path, as_version=4)
        st = json.loads(status.read_text()) if status.exists() else {}
        expected = {"0": "ok", "1": "ok", "2": "failed"}
        if proc.returncode != 0 or {k: v["status"] for k, v in st.items()} != expected:
            detail = stderr[-2000:] + "\n" + "\n".join(
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
    h = hashlib.sha256()
    for f in (ROOT / "Cargo.lock", CRATE / "Cargo.toml"):
        if f.exists():
            h.update(f.read_bytes())
    return "\n".join(deps) + "\n# " + h.hexdigest()


WARM_STAMP = ".nbgrade-warm"


def warm_keys(folder: Path) -> list[str]:
    """The keys (warm_key) that `folder` was warmed for."""
    try:
        return json.loads((folder / WARM_STAMP).read_text())
    except (OSError, ValueError):  # none yet, or a stamp of an older grader (one key, not JSON)
        return []


def is_warm(folder: Path, deps: list[str]) -> bool:
    """Whether `folder` was warmed for `deps` (and the crates' dependency files as they are)."""
    return warm_key(deps) in warm_keys(folder)


def mark_warm(folder: Path, deps: list[str]) -> None:
    """Records that `folder` is warm for `deps`, keeping the other `:dep` lines it was warmed
    for: notebook 1's crate (without default features) and notebooks 2 and 3's are built side
    by side in one folder, so grading one notebook after another warms each folder once per
    set of `:dep` lines, not at every switch. Keys of older dependency files are dropped."""
    want = warm_key(deps)
    digest = want.rsplit("\n# ", 1)[1]
    keys = [k for k in warm_keys(folder) if k.endswith("\n# " + digest) and k != want] + [want]
    (folder / WARM_STAMP).write_text(json.dumps(keys))


def warm_base(base: Path, deps: list[str], log=print) -> None:
    """Makes `base` a warm folder for `deps`: a copy of the setup's seed, when there is one,
    taken under the seed's shared lock as the kernel launcher takes it (the setup may be
    rewarming it), then prewarmed."""
    if is_warm(base, deps):
        return
    seed = Path(os.environ.get("CONVLAB_EVCXR_SEED", CACHE / "evcxr-seed"))
    if not base.exists() and (seed / "target").is_dir() and seed.resolve() != base.resolve():
        import fcntl
        log(f"copying {seed} -> {base}")
        with open(f"{seed}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            copy_dir(seed, base)
    log(f"prewarming {base} (the first time compiles tch: minutes)")
    prewarm_dir(base, deps)
    mark_warm(base, deps)


def prepare_workers(base: Path, workers: int, deps: list[str], log=print) -> list[Path]:
    """Warms `base` once, then gives each worker a copy of it (kept and reused across runs)."""
    warm_base(base, deps, log)
    dirs = worker_dirs(base, workers)
    cold = []
    for d in dirs:
        if d.exists() and is_warm(d, deps):
            continue
        if not d.exists():
            log(f"copying {base} -> {d}")
            copy_dir(base, d)
            (d / WARM_STAMP).unlink(missing_ok=True)  # the base's stamp: paths changed
        cold.append(d)
    # A new copy may rebuild a little on its first use (paths changed); do that now, in parallel.
    if cold:
        with concurrent.futures.ThreadPoolExecutor(len(cold)) as pool:
            for d, secs in zip(cold, pool.map(lambda d: prewarm_dir(d, deps), cold)):
                mark_warm(d, deps)
                log(f"worker folder {d} ready ({secs:.0f} s)")
    return dirs
