"""Opens the course notebooks in a real JupyterLab, in a real (headless) Chromium, as a student
would, and runs them with the menu Run → Run All Cells.

For each notebook it checks that the toolbar shows the "Rust" kernel, that every code cell ran
(has an execution count), that no cell shows an error or anything on stderr, and that the
pictures render as <img> elements that decoded (naturalWidth > 0), at least as many as the
headless tests expect, the portrait of notebook 1 at its real size (517×606).

JupyterLab serves a copy of the notebooks in a temporary folder (with `crates` beside it, a
link to the repository's crates/), so nothing the browser saves reaches the committed
notebooks; its settings live in a temporary folder too: no autosave, no news, and no cell
windowing (every cell in the DOM).

It records, and prints, how long each notebook takes from opening to an idle kernel, to the
first picture and to the end of Run All: build/browser/timings.json. It asserts nothing on
them (speed is the benchmarks' business). A full-page screenshot of each notebook lands in
build/browser/<notebook>.png.

Needs Chromium (`apt-get install chromium`) and Playwright (`pip install -r requirements.txt`);
Playwright's own browser downloads are not used. Run after `. scripts/env.sh`:

    python -m pytest tests/test_browser.py
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "browser"

KERNEL_DISPLAY_NAME = "Rust"
SERVER_START_TIMEOUT = 120  # seconds until JupyterLab answers
KERNEL_IDLE_TIMEOUT = 180  # seconds from opening a notebook to an idle kernel
RUN_ALL_TIMEOUT = 15 * 60  # seconds for Run All (notebook 3 trains a small network)
LATE_OUTPUT_WAIT = 3  # seconds to wait after Run All for late stderr (evcxr's panic reports)
MAX_SCREENSHOT_HEIGHT = 32000  # px; Chromium renders pages this tall correctly

# JupyterLab 4.6 renders stderr and errors (tracebacks) alike, as stderr; the error MIME
# type is listed too in case a later version tells them apart.
PROBLEM_SELECTOR = ('[data-mime-type="application/vnd.jupyter.stderr"], '
                    '[data-mime-type="application/vnd.jupyter.error"]')

# User settings for the JupyterLab under test (names checked against JupyterLab 4.6's schemas).
LAB_SETTINGS = {
    # Never write back into the served notebooks behind the test's back.
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # No "Would you like to receive official Jupyter news?" toast, no update check.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    # Every cell in the DOM (JupyterLab 4 attaches only the cells in view by default).
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass(frozen=True)
class Expected:
    """What a notebook must show once Run All is over."""
    name: str
    min_pictures: int  # as many as the headless test checks for (tests/test_*notebook*.py)
    first_picture: tuple[int, int] | None = None  # (naturalWidth, naturalHeight)


NOTEBOOKS = [
    Expected("01-convolutions", min_pictures=9, first_picture=(517, 606)),  # the portrait
    Expected("02-vgg16", min_pictures=9),  # run with (random) weights: no cell skipped
    Expected("03-cifar10", min_pictures=5),
]


# ------------------------------------------------------------------------------------------
# JupyterLab


@dataclass
class LabServer:
    """A running JupyterLab: where it listens, and where its notebooks and log are."""
    process: subprocess.Popen
    port: int
    token: str
    notebooks: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        # `reset`: start from an empty workspace, without what an earlier page left open.
        return f"{self.base}/lab/tree/{name}.ipynb?token={self.token}&reset"

    def api(self, method: str, path: str, timeout: float = 30) -> object:
        """Calls the server's REST API; returns the decoded JSON answer (None when empty)."""
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def shut_down_sessions(self) -> None:
        """Closes every notebook session, and so shuts its kernel down."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")


def free_port() -> int:
    """A TCP port nobody listens on at the moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    """Writes LAB_SETTINGS as JupyterLab user settings under `settings_dir`."""
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n")


def copy_notebooks(folder: Path) -> Path:
    """Copies notebooks/*.ipynb to `folder`/notebooks, beside a `crates` link to the repository's
    crates/ (the notebooks `:dep` the crate at ../crates/convlab); returns the notebook folder."""
    notebooks = folder / "notebooks"
    notebooks.mkdir(parents=True)
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(path, notebooks / path.name)
    (folder / "crates").symlink_to(ROOT / "crates", target_is_directory=True)
    return notebooks


def wait_for_server(server: LabServer, timeout: float) -> None:
    """Polls /api/status until the server answers; fails with its log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"JupyterLab exited with status {server.process.returncode}:\n"
                        f"{server.log_tail()}")
        try:
            urllib.request.urlopen(f"{server.base}/api/status?token={server.token}", timeout=5)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout} s:\n{server.log_tail()}")


def descendants(pid: int) -> list:
    """The processes started by `pid`, and theirs (kernels run in sessions of their own, so
    the server's process group does not hold them)."""
    try:
        import psutil  # comes with ipykernel, hence with JupyterLab
        return psutil.Process(pid).children(recursive=True)
    except Exception:
        return []


def stop_server(server: LabServer) -> None:
    """Shuts the kernels and the server down, politely first, then kills what is left of the
    processes it started."""
    started = descendants(server.process.pid)
    if server.process.poll() is None:
        try:
            server.shut_down_sessions()
            for kernel in server.api("GET", "/api/kernels"):
                server.api("DELETE", f"/api/kernels/{kernel['id']}")
            server.api("POST", "/api/shutdown")
        except Exception:
            pass
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGTERM)
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()
    for process in started:
        try:
            process.kill()
        except Exception:
            pass  # already gone


@contextlib.contextmanager
def running_lab(notebooks: Path, folder: Path, env_extra: dict[str, str]):
    """Runs JupyterLab on `notebooks`, with its settings, workspaces, config, runtime files and
    log in `folder` and `env_extra` in its environment; stops it, and its kernels, at the end."""
    jupyter = shutil.which("jupyter")
    if jupyter is None:
        pytest.fail("no `jupyter` on PATH: run `. scripts/env.sh` first (after scripts/setup.sh)")
    write_lab_settings(folder / "settings")
    for name in ("workspaces", "config", "runtime"):
        (folder / name).mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({
        "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(folder / "config"),  # none of the user's ~/.jupyter config
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        **env_extra,
    })
    port, token = free_port(), secrets.token_hex(16)
    command = [jupyter, "lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1",
               "--ServerApp.open_browser=False", f"--ServerApp.root_dir={notebooks}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = folder / "jupyterlab.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=notebooks, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    server = LabServer(process, port, token, notebooks, log)
    try:
        wait_for_server(server, SERVER_START_TIMEOUT)
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, vgg_test_weights, cifar_test_batches):
    """JupyterLab from the course environment, serving a copy of the notebooks, with the data
    the notebooks need in its environment (its kernels inherit it)."""
    folder = tmp_path_factory.mktemp("lab")
    notebooks = copy_notebooks(folder)
    with running_lab(notebooks, folder, {
        # Notebook 2: random VGG-16-shaped weights, so that every cell runs (as in
        # test_vgg_notebook.py); notebook 3: small CIFAR-10 batches, its own checkpoints, on
        # the CPU (as in test_cifar_notebook.py).
        "CONVLAB_VGG_WEIGHTS": str(vgg_test_weights),
        "CONVLAB_CIFAR_DIR": str(cifar_test_batches),
        "CONVLAB_CHECKPOINT_DIR": str(folder / "checkpoints"),
        "CONVLAB_DEVICE": "cpu",
    }) as server:
        yield server


# ------------------------------------------------------------------------------------------
# The browser


def chromium_launch_options() -> dict:
    """How to start Debian's Chromium through Playwright (no downloaded browser)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Chromium is missing: install it (`apt-get install chromium`)")
    args = ["--disable-dev-shm-usage"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to sandbox itself as root
    return {"executable_path": executable, "headless": True, "args": args}


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `pip install -r requirements.txt` "
                    "(in the course environment: `. scripts/env.sh` first)")
    options = chromium_launch_options()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(**options)
        try:
            yield chromium
        finally:
            chromium.close()


# ------------------------------------------------------------------------------------------
# Looking at the notebook in the page

# One look at the open notebook: kernel, prompts, pictures, problems, dialogs.
STATE_JS = """(problemSelector) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const text = (e) => (e ? e.textContent.trim() : null);
  const statusBar = Array.from(document.querySelectorAll('.jp-StatusBar-TextItem'))
    .map((e) => e.textContent.trim()).find((t) => / \\| /.test(t)) || null;
  const cells = Array.from(panel.querySelectorAll('.jp-Notebook .jp-CodeCell'));
  return {
    kernel: text(panel.querySelector('.jp-Toolbar-kernelName')),
    indicator: panel.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') ?? null,
    statusBar: statusBar,
    prompts: cells.map((c) => text(c.querySelector('.jp-InputPrompt'))),
    pictures: Array.from(panel.querySelectorAll('.jp-OutputArea-output img')).map((img) => ({
      width: img.naturalWidth, height: img.naturalHeight, complete: img.complete})),
    problems: cells.flatMap((c, index) =>
      Array.from(c.querySelectorAll(problemSelector)).map((o) => ({
        cell: index, prompt: text(c.querySelector('.jp-InputPrompt')),
        source: text(c.querySelector('.jp-InputArea-editor'))?.slice(0, 80),
        output: o.textContent.slice(0, 2000)}))),
    dialogs: Array.from(document.querySelectorAll('.jp-Dialog')).map((d) => d.textContent.trim().slice(0, 500)),
  };
}"""


def notebook_state(page) -> dict | None:
    """What the open notebook shows now (None before the notebook panel exists)."""
    return page.evaluate(STATE_JS, PROBLEM_SELECTOR)


def kernel_idle(state: dict | None) -> bool:
    """True when a kernel (not "No Kernel") is attached and idle: the toolbar's indicator says
    idle even with no kernel at all, so the status bar's "<kernel> | Idle" is checked too."""
    return bool(state and state["kernel"] and state["kernel"] != "No Kernel"
                and state["indicator"] == "idle" and state["statusBar"] == f"{state['kernel']} | Idle")


def loaded_pictures(state: dict | None) -> int:
    return sum(1 for p in (state or {}).get("pictures", []) if p["complete"] and p["width"] > 0)


def fail_on_dialog(state: dict | None, what: str) -> None:
    """A dialog (kernel chooser, "Kernel Restarting", an error) means the student is stuck."""
    if state and state["dialogs"]:
        pytest.fail(f"{what}: JupyterLab shows a dialog: {state['dialogs'][0]!r}")


def open_notebook(page, lab: LabServer, name: str) -> tuple[float, float]:
    """Opens the notebook as a student would (its URL) and waits for its kernel to be idle;
    returns (time.monotonic() at the start, seconds until the kernel was idle)."""
    start = time.monotonic()
    page.goto(lab.notebook_url(name))
    while time.monotonic() - start < KERNEL_IDLE_TIMEOUT:
        state = notebook_state(page)
        fail_on_dialog(state, f"opening {name}")
        if kernel_idle(state):
            return start, time.monotonic() - start
        time.sleep(0.2)
    pytest.fail(f"{name}: no idle kernel {KERNEL_IDLE_TIMEOUT} s after opening it "
                f"(last state: {notebook_state(page)})\n{lab.log_tail()}")


def run_all_cells(page) -> None:
    """Run → Run All Cells, through the menu bar."""
    page.locator(".lm-MenuBar-item", has=page.get_by_text("Run", exact=True)).click()
    page.locator(".lm-Menu-item", has=page.get_by_text("Run All Cells", exact=True)).click()


def wait_for_run_all(page, start: float, timeout: float) -> tuple[dict, float | None, float]:
    """Waits until no cell is queued or running and the kernel is idle; returns the last state,
    the seconds from `start` to the first decoded picture (None if none) and to the end."""
    first_picture = None
    started = False
    settled_since = None
    deadline = time.monotonic() + timeout
    while True:
        state = notebook_state(page)
        now = time.monotonic()
        fail_on_dialog(state, "during Run All")
        if first_picture is None and loaded_pictures(state):
            first_picture = now - start
        prompts = state["prompts"]
        if any(p == "[*]:" for p in prompts):
            started = True
        done = started or all(p not in (None, "", "[ ]:") for p in prompts)
        if done and kernel_idle(state) and "[*]:" not in prompts:
            # Idle for a second in a row: not just between two cells.
            settled_since = settled_since or now
            if now - settled_since >= 1.0:
                return state, first_picture, settled_since - start
        else:
            settled_since = None
        if now > deadline:
            pytest.fail(f"Run All not over after {timeout} s: prompts {prompts}, "
                        f"kernel {state['statusBar']!r}")
        time.sleep(0.25)


def full_page_screenshot(page, path: Path) -> None:
    """Screenshots the whole notebook: JupyterLab fills the window and scrolls inside, so the
    left sidebar is closed and the window made as tall as the notebook, scrolled to its top."""
    current_tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current_tab.count():
        current_tab.first.click()  # clicking the open sidebar's tab closes the sidebar
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    extra = page.evaluate("(s) => { const e = document.querySelector(s); "
                          "return e ? e.scrollHeight - e.clientHeight : 0; }", scroller)
    viewport = page.viewport_size
    height = viewport["height"] + extra + 50
    if height > MAX_SCREENSHOT_HEIGHT:
        print(f"\n[browser] {path.name}: the notebook is {height} px tall, "
              f"the screenshot shows its first {MAX_SCREENSHOT_HEIGHT} px")
    path.parent.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": viewport["width"], "height": min(height, MAX_SCREENSHOT_HEIGHT)})
    try:
        page.evaluate("(s) => { const e = document.querySelector(s); if (e) e.scrollTop = 0; }", scroller)
        page.wait_for_timeout(500)  # let the layout follow
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(viewport)


def record_timings(name: str, timings: dict) -> str:
    """Adds one notebook's timings to build/browser/timings.json; returns them as a line."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "timings.json"
    try:
        everything = json.loads(path.read_text())
    except (OSError, ValueError):
        everything = {}
    everything[name] = timings
    path.write_text(json.dumps(everything, indent=2) + "\n")
    shown = ", ".join(f"{k[:-2]} {v:.1f} s" if k.endswith("_s") and v is not None else f"{k} {v}"
                      for k, v in timings.items())
    return f"[browser] {name}: {shown}"


def problems_report(problems: list[dict]) -> str:
    return "\n".join(f"cell {p['cell']} {p['prompt']} {p['source']!r}:\n{p['output']}"
                     for p in problems)


# ------------------------------------------------------------------------------------------
# The test


def check_notebook(browser, lab: LabServer, expected: Expected, kernel: str = KERNEL_DISPLAY_NAME,
                   timeout: float = RUN_ALL_TIMEOUT, report=print) -> None:
    """Opens one notebook, runs all its cells from the menu, saves its screenshot and timings
    (`report` gets the timings line), then checks what the page shows."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    screenshot = OUT / f"{expected.name}.png"
    shot = False
    try:
        start, idle_s = open_notebook(page, lab, expected.name)
        assert notebook_state(page)["kernel"] == kernel, "the notebook's kernel in the toolbar"
        run_all_cells(page)
        state, first_picture_s, end_s = wait_for_run_all(page, start, timeout)
        page.wait_for_timeout(LATE_OUTPUT_WAIT * 1000)
        state = notebook_state(page)
        full_page_screenshot(page, screenshot)
        shot = True
        report(record_timings(expected.name, {
            "kernel_idle_s": round(idle_s, 2),
            "first_picture_s": round(first_picture_s, 2) if first_picture_s is not None else None,
            "run_all_done_s": round(end_s, 2),
            "pictures": len(state["pictures"]),
        }))

        assert state["kernel"] == kernel, "the notebook's kernel in the toolbar"
        assert not state["problems"], "errors or stderr in the page:\n" + problems_report(state["problems"])
        not_run = [i for i, p in enumerate(state["prompts"]) if not (p and p[1:-2].isdigit())]
        assert not not_run, f"code cells without an execution count: {not_run} (prompts {state['prompts']})"
        pictures = state["pictures"]
        broken = [i for i, p in enumerate(pictures) if not (p["complete"] and p["width"] > 0)]
        assert not broken, f"pictures that did not decode: {broken} of {pictures}"
        assert len(pictures) >= expected.min_pictures, \
            f"{len(pictures)} pictures, expected at least {expected.min_pictures}"
        if expected.first_picture:
            first = pictures[0]
            assert (first["width"], first["height"]) == expected.first_picture, \
                f"first picture {first['width']}×{first['height']}, expected {expected.first_picture}"
    finally:
        if not shot:  # what the page showed when it went wrong
            try:
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
            except Exception:
                pass
        context.close()
        try:
            lab.shut_down_sessions()  # one kernel at a time: the notebooks are timed on 2 cores
        except Exception:
            pass


@pytest.mark.parametrize("expected", NOTEBOOKS, ids=[e.name for e in NOTEBOOKS])
def test_notebook_in_jupyterlab(browser, lab, expected, capsys):
    def report(line: str) -> None:
        with capsys.disabled():  # shown even when pytest captures the output
            print(f"\n{line}")
    check_notebook(browser, lab, expected, report=report)
