"""Two notebooks open at once: two `rust` kernels, started as JupyterLab starts them (from the
kernel spec, through scripts/rust-kernel), each lease a build folder of their own. evcxr
compiles every cell in its build folder; with one folder for both, one kernel loaded the
other's code (measured before the pool: 11 of 14 cells wrong)."""
import fcntl
import os
import threading
import time
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from conftest import ROOT

CRATE = ROOT / "crates" / "convlab"
STEPS = 6


class Kernel:
    """A `rust` kernel and the text its cells printed."""

    def __init__(self):
        self.manager = KernelManager(kernel_name="rust")
        self.manager.start_kernel(cwd=str(ROOT))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 600) -> tuple[str, str]:
        """Runs one cell; (stdout, stderr + errors)."""
        out, err = [], []

        def collect(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif kind == "error":
                err.append(f"{content['ename']}: {content['evalue']}")

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=collect)
        if reply["content"]["status"] != "ok":
            err.append(f"status {reply['content']['status']}: {reply['content'].get('evalue', '')}")
        return "".join(out), "".join(err)

    def build_folder(self) -> str:
        out, err = self.run('println!("{}", std::env::var("EVCXR_TMPDIR").unwrap());')
        assert not err, err
        return out.strip()

    def pid(self) -> int:
        return self.manager.provisioner.process.pid

    def stop(self, now: bool = False):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=now)


@pytest.fixture
def kernels():
    started = []
    yield started
    for k in started:
        try:
            k.stop(now=True)
        except Exception:
            pass


def test_two_kernels_at_once_each_see_their_own_values(kernels):
    kernels += [Kernel(), Kernel()]
    folders = [k.build_folder() for k in kernels]
    assert folders[0] != folders[1], f"both kernels build in {folders[0]}"

    dep = f':dep convlab = {{ path = "{CRATE}", default-features = false }}'
    results: dict[tuple[int, int], tuple[str, str]] = {}
    barrier = threading.Barrier(2)

    def session(i: int):
        k = kernels[i]
        barrier.wait()
        results[i, -1] = k.run(dep)
        for s in range(STEPS):
            barrier.wait()  # both kernels compile step s at the same time
            earlier = " + ".join(f"k{i}_{t}" for t in range(s + 1))
            results[i, s] = k.run(f"let k{i}_{s}: u64 = {1000 * (i + 1) + s};\n"
                                  f'println!("kernel {i} step {s}: {{}}", {earlier});')

    threads = [threading.Thread(target=session, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1800)

    wrong = []
    for i in range(2):
        assert not results[i, -1][1], results[i, -1][1]
        for s in range(STEPS):
            out, err = results[i, s]
            want = sum(1000 * (i + 1) + t for t in range(s + 1))
            if err or out.strip() != f"kernel {i} step {s}: {want}":
                wrong.append(f"kernel {i} step {s}: printed {out.strip()!r}, errors {err.strip()[:300]!r}")
    assert not wrong, "\n".join(wrong)


def lock_is_free(lock: Path) -> bool:
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_a_crashed_kernel_gives_its_build_folder_back(kernels):
    first = Kernel()
    kernels.append(first)
    folder = Path(first.build_folder())
    lock = folder.with_name(folder.name + ".lock")
    assert lock.exists() and not lock_is_free(lock), "the running kernel holds its folder's lock"
    os.kill(first.pid(), 9)  # a crash: no shutdown, no clean-up
    deadline = time.monotonic() + 30
    while not lock_is_free(lock):
        assert time.monotonic() < deadline, f"{lock} still held 30 s after the kernel was killed"
        time.sleep(0.5)
    # The next kernel starts and leases a folder: the freed one when it is the lowest free.
    second = Kernel()
    kernels.append(second)
    again = Path(second.build_folder())
    assert again == folder or lock_is_free(lock)
