"""The course image (Containerfile), as a class meets it: JupyterLab in a container started from
the image, driven from outside by a real (headless) Chromium, with tests/test_browser.py's
checks. Run by `make test-image` after `make image`; skipped without CONVLAB_TEST_IMAGE.

- Each answer notebook, in a fresh container, Run All: every cell ran, no error or stderr, the
  pictures (the answers reach the image only for this test, mounted from the repository).
- Each student notebook, as the image gives it to the student, in a fresh container, Run All:
  everything before the first exercise runs clean and shows its pictures; what fails after it
  fails in an exercise (a `todo!()`, a test of it, or a cell that uses its result) while the
  kernel lives on. Run All stops at the first cell that does not compile, as in JupyterLab.
- Two notebooks at once in one container (answer notebooks 2 and 3): both pass.
- Outside the image, the same answer and student notebooks in a JupyterLab of this checkout:
  the time from opening each one to its first picture, to compare with the container's.
- Nothing the student can do reaches the image's caches: no file under them is writable by
  the student, and a kernel started after the student emptied its build folder still works.

While each notebook runs, the container's kernel process tree (evcxr_jupyter, its child
process, cargo, rustc, the linker) is sampled from outside every 0.25 s: its peak memory (RSS
and PSS summed over the tree), its CPU seconds, and the disk the container wrote (its writable
layer). The answer and student notebooks each run in a container limited to Binder's 2 GB
(`--memory 2g`), so passing means fitting. Figures land in build/image/results.json;
tools/imagebench.py turns them into BENCHMARKS.md's section "Course image".
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
import pytest

import test_browser as tb

IMAGE = os.environ.get("CONVLAB_TEST_IMAGE")
if not IMAGE:
    pytest.skip("the course image's test: `make image`, then `make test-image`", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
ENGINE = os.environ.get("CONTAINER_ENGINE") or ("podman" if shutil.which("podman") else "docker")
OUT = ROOT / "build" / "image"
RESULTS = OUT / "results.json"
tb.OUT = OUT / "browser"  # test_browser's screenshots and timings go here
HOME = "/home/jovyan"
BINDER_MEMORY = "2g"
SAMPLE_EVERY = 0.25  # seconds

ANSWERS = {e.name: e for e in tb.NOTEBOOKS}  # what test_browser expects of each answer notebook


def record(key: str, value: dict) -> None:
    """Adds one entry to build/image/results.json."""
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        results = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        results = {}
    results[key] = value
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def engine(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([ENGINE, *args], capture_output=True, text=True, check=check, timeout=timeout)


# ------------------------------------------------------------------------------------------
# A container of the image, serving JupyterLab on a port of this machine


@dataclass
class ContainerLab:
    """What tests/test_browser.py's check_notebook needs of a JupyterLab, for one container."""
    name: str
    port: int
    token: str
    upper: Path | None = None  # the container's writable layer, seen from here (podman, docker)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        return f"{self.base}/lab/tree/{name}.ipynb?token={self.token}&reset"

    def api(self, method: str, path: str, timeout: float = 30) -> object:
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        res = engine("logs", "--tail", str(lines), self.name, check=False)
        return res.stdout + res.stderr

    def shut_down_sessions(self) -> None:
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def exec(self, script: str, user: str = "1000") -> subprocess.CompletedProcess:
        return engine("exec", "-u", user, self.name, "bash", "-c", script, check=False, timeout=600)

    def init_pid(self) -> int:
        return int(engine("inspect", "-f", "{{.State.Pid}}", self.name).stdout.strip())

    def written_bytes(self) -> int | None:
        """The size of what the container wrote (its writable layer)."""
        if self.upper is None or not self.upper.exists():
            return None
        out = subprocess.run(["du", "-sb", str(self.upper)], capture_output=True, text=True)
        return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout else None


@contextlib.contextmanager
def container(test_data: dict[str, Path], memory: str | None = None, tag: str = "lab"):
    """Starts a container of the image with JupyterLab on a free port of 127.0.0.1, the lab
    settings of tests/test_browser.py (no autosave, every cell in the DOM), the test data
    mounted read-only, and the answer notebooks mounted at ~/answers (they reach the image for
    this test only; their `:dep` names the image's crate through CONVLAB_CRATE, as the student
    notebooks' does); removes it at the end."""
    folder = Path(test_data["tmp"]) / f"{tag}-{secrets.token_hex(4)}"
    answers = folder / "answers"
    answers.mkdir(parents=True)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(path, answers / path.name)
    tb.write_lab_settings(folder / "settings")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, 1000, 1000)  # the student's files, as on a JupyterHub volume
    name = f"convlab-test-{tag}-{secrets.token_hex(3)}"
    port, token = tb.free_port(), secrets.token_hex(16)
    args = ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8888",
            "-e", f"JUPYTER_TOKEN={token}",
            "-e", "JUPYTERLAB_SETTINGS_DIR=/lab-settings",
            "-e", "CONVLAB_VGG_WEIGHTS=/test-data/vgg/" + test_data["vgg"].name,
            "-e", "CONVLAB_CIFAR_DIR=/test-data/cifar",
            "-e", "CONVLAB_DEVICE=cpu",
            "-v", f"{folder / 'settings'}:/lab-settings",
            "-v", f"{answers}:{HOME}/answers",
            "-v", f"{test_data['vgg'].parent}:/test-data/vgg:ro",
            "-v", f"{test_data['cifar']}:/test-data/cifar:ro"]
    if memory:
        args += ["--memory", memory, "--memory-swap", memory]
    engine(*args, IMAGE)
    lab = ContainerLab(name, port, token)
    try:
        upper = engine("inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", name, check=False).stdout.strip()
        lab.upper = Path(upper) if upper else None
        deadline = time.monotonic() + tb.SERVER_START_TIMEOUT
        while True:
            try:
                urllib.request.urlopen(f"{lab.base}/api/status?token={token}", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab in {name} did not answer within {tb.SERVER_START_TIMEOUT} s:\n"
                                f"{lab.log_tail()}")
                time.sleep(0.5)
        yield lab
    finally:
        engine("rm", "-f", "-t", "5", name, check=False)


@pytest.fixture(scope="module")
def test_data(tmp_path_factory, vgg_test_weights, cifar_test_batches):
    tmp = tmp_path_factory.mktemp("image")
    return {"tmp": tmp, "vgg": vgg_test_weights, "cifar": cifar_test_batches}


# ------------------------------------------------------------------------------------------
# What the kernel process tree takes, sampled from outside the container


def is_kernel(process: psutil.Process) -> bool:
    try:
        return "evcxr_jupyter" in " ".join(process.cmdline()[:1]) or process.name() == "evcxr_jupyter"
    except psutil.Error:
        return False


@dataclass
class Usage:
    peak_rss: int = 0  # bytes, the kernel trees summed
    peak_pss: int = 0
    cpu_seconds: float = 0.0  # the kernel trees, their finished children included
    kernels_seen: int = 0
    peak_container_rss: int = 0  # every process of the container (JupyterLab included)
    samples: int = 0
    written: int | None = None  # bytes the container wrote (its writable layer grew by)
    cgroup_peak: int | None = None  # the container's memory cgroup at its peak (page cache included)
    cgroup_cpu_seconds: float | None = None  # everything in the container, JupyterLab included
    limit_hits: int | None = None  # times the container's memory reached its limit


def cgroup_file(pid: int, controller: str, name: str) -> Path | None:
    """A file of the process's cgroup (v1: per controller; v2: the unified one)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            found = Path(f"/sys/fs/cgroup/{controllers}{path}") / name
            return found if found.exists() else None
    return None


def read_number(path: Path | None) -> int | None:
    try:
        return int(path.read_text().split()[0]) if path else None
    except (OSError, ValueError, IndexError):
        return None


class Sampler:
    """Samples the container's process tree until stopped."""

    def __init__(self, lab: ContainerLab):
        self.lab = lab
        self.usage = Usage()
        self._stop = threading.Event()
        self._cpu: dict[int, float] = {}  # kernel pid -> its tree's CPU seconds at the last look
        self._written0 = lab.written_bytes()
        pid = lab.init_pid()
        self._peak_file = cgroup_file(pid, "memory", "memory.max_usage_in_bytes")
        self._failcnt_file = cgroup_file(pid, "memory", "memory.failcnt")
        self._cpu_file = cgroup_file(pid, "cpuacct", "cpuacct.usage")
        self._cpu0 = read_number(self._cpu_file)
        if self._peak_file:  # from now on: the notebook's own peak, not the start's
            with contextlib.suppress(OSError):
                self._peak_file.write_text("0")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        written = self.lab.written_bytes()
        if written is not None and self._written0 is not None:
            self.usage.written = written - self._written0
        self.usage.cgroup_peak = read_number(self._peak_file)
        self.usage.limit_hits = read_number(self._failcnt_file)
        cpu = read_number(self._cpu_file)
        if cpu is not None and self._cpu0 is not None:
            self.usage.cgroup_cpu_seconds = round((cpu - self._cpu0) / 1e9, 1)

    def _run(self) -> None:
        init = psutil.Process(self.lab.init_pid())
        while not self._stop.is_set():
            self.sample(init)
            self._stop.wait(SAMPLE_EVERY)

    def sample(self, init: psutil.Process) -> None:
        try:
            everything = [init, *init.children(recursive=True)]
        except psutil.Error:
            return
        kernels = [p for p in everything if is_kernel(p) and not is_kernel_parent(p)]
        rss = pss = 0
        for kernel in kernels:
            try:
                tree = [kernel, *kernel.children(recursive=True)]
            except psutil.Error:
                continue
            cpu = 0.0
            for p in tree:
                with contextlib.suppress(psutil.Error):
                    info = p.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
                    t = p.cpu_times()
                    cpu += t.user + t.system + t.children_user + t.children_system
            self._cpu[kernel.pid] = max(self._cpu.get(kernel.pid, 0.0), cpu)
        total = 0
        for p in everything:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        u = self.usage
        u.peak_rss, u.peak_pss = max(u.peak_rss, rss), max(u.peak_pss, pss)
        u.peak_container_rss = max(u.peak_container_rss, total)
        u.cpu_seconds = sum(self._cpu.values())
        u.kernels_seen = len(self._cpu)
        u.samples += 1


def is_kernel_parent(process: psutil.Process) -> bool:
    """evcxr_jupyter's own child process (it runs the compiled cells) is an evcxr_jupyter too."""
    with contextlib.suppress(psutil.Error):
        parent = process.parent()
        return parent is not None and is_kernel(parent)
    return False


# ------------------------------------------------------------------------------------------
# Student notebooks: clean up to the first exercise, then only the exercises fail


def code_cells(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def first_exercise(path: Path) -> int:
    """The index, among the code cells, of the first solution or test cell."""
    for i, cell in enumerate(code_cells(path)):
        nbg = cell.metadata.get("nbgrader", {})
        if nbg.get("solution") or nbg.get("grade"):
            return i
    raise AssertionError(f"{path.name} has no exercise")


# An exercise's own failures as the student sees them: a `todo!()` or a failed assert (a panic
# on stderr), or a cell that does not compile because an exercise's value is missing.
EXERCISE_FAILURE = ("panicked at", "not yet implemented", "cannot find value", "cannot find function",
                    "assertion", "E0425", "E0433")
KERNEL_FAILURE = ("could not compile `convlab`", "Kernel died", "Child process terminated",
                  "Subprocess terminated", "No such file or directory", "Permission denied",
                  "Read-only file system")


def check_student_notebook(browser, lab, name: str, source: Path, report=print) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        start, idle_s = tb.open_notebook(page, lab, name)
        assert tb.notebook_state(page)["kernel"] == tb.KERNEL_DISPLAY_NAME
        tb.run_all_cells(page)
        state, first_picture_s, end_s = tb.wait_for_run_all(page, start, tb.RUN_ALL_TIMEOUT)
        page.wait_for_timeout(tb.LATE_OUTPUT_WAIT * 1000)
        state = tb.notebook_state(page)
        tb.full_page_screenshot(page, tb.OUT / f"{name}.png")
        timings = {"kernel_idle_s": round(idle_s, 2),
                   "first_picture_s": round(first_picture_s, 2) if first_picture_s is not None else None,
                   "run_all_done_s": round(end_s, 2), "pictures": len(state["pictures"])}
        report(tb.record_timings(name, timings))

        first = first_exercise(source)
        ran_before = state["prompts"][:first]
        assert all(p and p[1:-2].isdigit() for p in ran_before), \
            f"cells before the first exercise (code cell {first}) that did not run: {ran_before}"
        early = [p for p in state["problems"] if p["cell"] < first]
        assert not early, "errors before the first exercise:\n" + tb.problems_report(early)
        broken = [p for p in state["problems"]
                  if any(k in p["output"] for k in KERNEL_FAILURE)
                  or not any(k in p["output"] for k in EXERCISE_FAILURE)]
        assert not broken, "failures that are not an exercise's:\n" + tb.problems_report(broken)
        assert tb.loaded_pictures(state) >= 1, "no picture before the first exercise"
        if name.endswith("01-convolutions"):
            first_pic = state["pictures"][0]
            assert (first_pic["width"], first_pic["height"]) == (517, 606), "the portrait at its size"
        assert tb.kernel_idle(state), f"the kernel is not alive and idle at the end: {state['statusBar']}"
        return timings
    finally:
        context.close()
        with contextlib.suppress(Exception):
            lab.shut_down_sessions()


# ------------------------------------------------------------------------------------------
# The tests

STUDENT = [f"notebooks/{e.name}" for e in tb.NOTEBOOKS]  # where image/start puts them
ANSWER = [f"answers/{e.name}" for e in tb.NOTEBOOKS]


def run_one(browser, lab: ContainerLab, name: str, capsys) -> dict:
    def report(line: str) -> None:
        with capsys.disabled():
            print(f"\n[image] {line}")

    stem = name.rsplit("/", 1)[1]
    if name.startswith("answers/"):
        expected = ANSWERS[stem]
        tb.check_notebook(browser, lab, tb.Expected(name, expected.min_pictures, expected.first_picture),
                          report=report)
        return json.loads((tb.OUT / "timings.json").read_text())[name]
    return check_student_notebook(browser, lab, name, ROOT / "notebooks" / "student" / f"{stem}.ipynb",
                                  report=report)


@pytest.mark.parametrize("name", ANSWER + STUDENT)
def test_notebook_in_a_fresh_container_within_binders_memory(browser, test_data, name, capsys):
    with container(test_data, memory=BINDER_MEMORY, tag=name.split("/")[0].replace("notebooks", "student")) as lab:
        with Sampler(lab) as sampler:
            timings = run_one(browser, lab, name, capsys)
        record(f"inside:{name}", {"timings": timings, "usage": vars(sampler.usage), "memory_limit": BINDER_MEMORY})
        assert sampler.usage.kernels_seen >= 1 and sampler.usage.samples > 10, "the sampler saw no kernel"


def test_two_notebooks_at_once_in_one_container(browser, test_data, capsys):
    names = ["answers/02-vgg16", "answers/03-cifar10"]
    with container(test_data, tag="two") as lab, Sampler(lab) as sampler:
        pages = []
        for name in names:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            start, _ = tb.open_notebook(page, lab, name)
            pages.append((name, context, page, start))
        for _, _, page, _ in pages:
            tb.run_all_cells(page)
        t0 = time.monotonic()
        try:
            for name, _, page, start in pages:
                state, _, _ = tb.wait_for_run_all(page, start, tb.RUN_ALL_TIMEOUT)
                page.wait_for_timeout(tb.LATE_OUTPUT_WAIT * 1000)
                state = tb.notebook_state(page)
                assert not state["problems"], f"{name}:\n" + tb.problems_report(state["problems"])
                not_run = [i for i, p in enumerate(state["prompts"]) if not (p and p[1:-2].isdigit())]
                assert not not_run, f"{name}: cells that did not run: {not_run}"
                assert tb.loaded_pictures(state) >= ANSWERS[name.split("/")[1]].min_pictures
            both_s = time.monotonic() - t0
        finally:
            for _, context, _, _ in pages:
                context.close()
        slots = lab.exec("ls -d /tmp/convlab-pool/[0-9]* 2>/dev/null | wc -l").stdout.strip()
    record("inside:two-at-once", {"notebooks": names, "both_done_s": round(both_s, 1),
                                  "usage": vars(sampler.usage), "build_folders": int(slots or 0)})
    with capsys.disabled():
        print(f"\n[image] two at once: both done {both_s:.0f} s after Run All, "
              f"peak kernel memory {sampler.usage.peak_rss / 2**30:.2f} GiB, {slots} build folders")
    assert sampler.usage.kernels_seen == 2, "two kernels, each with a build folder of its own"


def test_the_student_cannot_change_the_image_caches(browser, test_data, capsys):
    with container(test_data, tag="caches") as lab:
        writable = lab.exec("find /opt/convlab /opt/convlab-cache /opt/rust /usr -writable "
                            "-not -type l 2>/dev/null | head -20")
        assert writable.returncode == 0 and writable.stdout.strip() == "", \
            f"the student can write these: {writable.stdout}"
        # What a student may try from a terminal or a cell, and what must refuse it.
        attempts = lab.exec("rm -rf /opt/convlab-cache/evcxr-seed/* 2>&1; "
                            "echo x > /opt/convlab-cache/cargo/registry/oops 2>&1; "
                            "pip install --no-deps six 2>&1 | tail -1; true")
        for path in ("/opt/convlab-cache/evcxr-seed/.convlab-warm", "/opt/convlab-cache/cargo/registry/oops"):
            exists = lab.exec(f"test -e {path} && echo yes || echo no").stdout.strip()
            assert exists == ("yes" if path.endswith("warm") else "no"), f"{path}: {attempts.stdout}"
        assert lab.exec("python -c 'import six'").returncode != 0, "pip installed into the image's environment"
        # The student empties the build folder of a first kernel; the next kernel starts from the
        # image's seed and shows notebook 1's portrait.
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            tb.open_notebook(page, lab, "notebooks/01-convolutions")
        finally:
            context.close()
        lab.shut_down_sessions()
        time.sleep(2)
        lab.exec("rm -rf /tmp/convlab-pool/0/* /tmp/convlab-pool/0/.convlab-warm")
        timings = check_student_notebook(browser, lab, "notebooks/01-convolutions",
                                         ROOT / "notebooks" / "student" / "01-convolutions.ipynb")
        assert timings["first_picture_s"] is not None


# ------------------------------------------------------------------------------------------
# Outside the image: the same notebooks in a JupyterLab of this checkout, for the comparison


@pytest.fixture(scope="module")
def outside_lab(tmp_path_factory, test_data):
    folder = tmp_path_factory.mktemp("outside")
    notebooks = tb.copy_notebooks(folder)
    (notebooks / "student").mkdir()
    for path in sorted((ROOT / "notebooks" / "student").glob("*.ipynb")):
        shutil.copy2(path, notebooks / "student" / path.name)
    with tb.running_lab(notebooks, folder, {
        "CONVLAB_VGG_WEIGHTS": str(test_data["vgg"]),
        "CONVLAB_CIFAR_DIR": str(test_data["cifar"]),
        "CONVLAB_CHECKPOINT_DIR": str(folder / "checkpoints"),
        "CONVLAB_DEVICE": "cpu",
    }) as server:
        yield server


@pytest.mark.parametrize("name", ANSWER + STUDENT)
def test_the_same_notebook_outside_the_image(browser, outside_lab, name, capsys):
    stem = name.rsplit("/", 1)[1]
    served = stem if name.startswith("answers/") else f"student/{stem}"

    def report(line: str) -> None:
        with capsys.disabled():
            print(f"\n[outside] {line}")

    if name.startswith("answers/"):
        expected = ANSWERS[stem]
        tb.check_notebook(browser, outside_lab, tb.Expected(served, expected.min_pictures, expected.first_picture),
                          report=report)
        timings = json.loads((tb.OUT / "timings.json").read_text())[served]
    else:
        timings = check_student_notebook(browser, outside_lab, served,
                                         ROOT / "notebooks" / "student" / f"{stem}.ipynb", report=report)
    record(f"outside:{name}", {"timings": timings})


def test_the_gpu_check_runs_in_the_image_as_the_student(test_data, capsys):
    """scripts/check-cuda.sh, as the GPU node pool of docs/deploy.md runs it: torch is a CUDA
    build (the same image trains on a GPU where there is one), and VGG-16 runs forward; on this
    machine without a GPU, on the CPU."""
    with container(test_data, tag="cuda") as lab:
        res = lab.exec("/opt/convlab/scripts/check-cuda.sh 2>&1")
    with capsys.disabled():
        print(f"\n[image] check-cuda.sh:\n{res.stdout}")
    record("inside:check-cuda", {"output": res.stdout[-2000:], "returncode": res.returncode})
    assert res.returncode == 0, res.stdout
    assert re.search(r"CUDA build \d+\.\d+", res.stdout), "torch in the image is not a CUDA build"
