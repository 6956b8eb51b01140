#!/usr/bin/env python3
"""BENCHMARKS.md's section "Course image", from what `make test-image` measured:

- build/image/size.txt, layers.txt, parts.txt (scripts/image.sh sizes): the image's size, each
  layer's, and the big parts inside it (the torch wheel, CUDA's libraries, the caches, the
  toolchain);
- build/image/results.json (tests/test_image.py): for each notebook, inside a fresh container
  limited to 2 GB and outside it in a JupyterLab of the checkout, the seconds from opening it
  to an idle kernel, to the first picture and to the end of Run All; inside, what the kernel
  process tree took (peak RSS and PSS, CPU seconds) and what the container wrote; and two
  notebooks at once in one container.

From them it derives the per-student resources for Zero to JupyterHub (docs/deploy.md quotes
them): the memory guarantee covers the largest single notebook's whole container (JupyterLab
included) with a quarter more, the limit the two heaviest notebooks at once with a quarter
more; CPU: the guarantee is what the heaviest notebook used on average over its Run All, the
limit two cores (the machine measured on).

    python tools/imagebench.py            # after make test-image (scripts/image.sh runs it)
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from nbbench import BENCHMARKS, BENCHMARKS_INTRO, replace_section  # noqa: E402

OUT = ROOT / "build" / "image"
SECTION = "## Course image"
GiB = 2 ** 30
MiB = 2 ** 20
NOTEBOOKS = ["01-convolutions", "02-vgg16", "03-cifar10"]
TARGET_RATIO = 1.5  # issue: notebook 1's first picture inside within 1.5x of outside


def size(n: float | None) -> str:
    if n is None:
        return "—"
    return f"{n / GiB:.2f} GB" if n >= GiB else f"{n / MiB:.0f} MB"


def human_to_bytes(text: str) -> float:
    """'1.23GB', '512MB', '0B' (podman and docker history) as bytes."""
    text = text.strip().replace(" ", "")
    for unit, factor in (("kB", 1e3), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1)):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * factor
            except ValueError:
                return 0.0
    return 0.0


def layer_rows() -> list[str]:
    rows = []
    path = OUT / "layers.txt"
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        amount, _, command = line.partition("\t")
        if human_to_bytes(amount) < 1e6:  # metadata-only and tiny layers
            continue
        command = " ".join(command.replace("/bin/sh -c ", "").split())
        if "setup.sh --through python" in command:
            what = "1. Python environment (setup.sh --through python)"
        elif "setup.sh --through evcxr" in command:
            what = "2. evcxr_jupyter (setup.sh --through evcxr)"
        elif "setup.sh" in command:
            what = "3. the rest of setup.sh: kernel, pictures, prewarmed build folder, crates"
        elif "image/requirements.txt" in command and "pip" in command:
            what = "4. jupyterhub, notebook, nbgitpuller"
        elif "/opt/rust" in command:
            what = "Rust toolchain (/opt/rust)"
        elif "apt-get" in command:
            what = "Debian packages (python3, g++, git, ccache, fonts, tini)"
        elif "import" in command.lower() or command.startswith("ADD file") or not command:
            what = "base image"
        else:
            what = command[:70]
        rows.append(f"| {what} | {amount.strip()} |")
    return rows


def part_rows() -> list[str]:
    path = OUT / "parts.txt"
    if not path.exists():
        return []
    names = {
        "/torch": "torch wheel (libtorch, CPU and CUDA kernels)",
        "/nvidia": "CUDA libraries (the nvidia-* wheels torch pulls in)",
        "/triton": "triton (torch's GPU compiler)",
        "/venv": "the whole Python environment",
        "/evcxr": "evcxr_jupyter",
        "/evcxr-seed": "prewarmed kernel build folder (copied per kernel)",
        "/cargo": "crate sources the kernels resolve offline (CARGO_HOME)",
        "/opt/rust": "Rust toolchain (rustc, cargo, std, rust-src)",
        "/opt/convlab": "the course (release files, student notebooks, pictures)",
        "/usr": "Debian system (/usr)",
    }
    rows = []
    for line in path.read_text().splitlines():
        amount, _, where = line.partition("\t")
        label = next((v for k, v in names.items() if where.endswith(k)), where)
        rows.append(f"| {label} | `{where}` | {size(float(amount))} |")
    return rows


def ceil_to(n: float, step: float) -> float:
    return math.ceil(n / step) * step


def section_text(results: dict) -> str:
    total = (OUT / "size.txt").read_text().strip() if (OUT / "size.txt").exists() else None
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        SECTION, "",
        f"Written by `make test-image` (tools/imagebench.py) on {now}: {platform.machine()}, "
        f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GiB:.0f} GiB, "
        f"image `{os.environ.get('IMAGE', 'localhost/convlab:latest')}`"
        f"{f', {size(float(total))}' if total else ''} uncompressed.", "",
        "### Image size", "",
        "Layers bigger than 1 MB, oldest first:", "",
        "| layer | size |", "|---|---|",
        *reversed(layer_rows()), "",
        "Inside it:", "",
        "| part | where | size |", "|---|---|---|",
        *part_rows(), "",
    ]

    body = [
        "### Each notebook, inside a fresh container (2 GB limit) and outside", "",
        "Opening the notebook in a headless Chromium (its URL) until the first picture decodes, as "
        "tests/test_browser.py times it; *outside* is a JupyterLab of this checkout on the same "
        "machine (its kernel build folder already made), *inside* a new container of the image "
        "limited to Binder's 2 GB, whose first kernel copies the prewarmed build folder first. "
        "Student notebooks run until their first exercise stops Run All (a `todo!()` the student "
        "replaces); the answer notebooks run to their end. Memory: the kernel process tree "
        "(evcxr_jupyter, its child process, cargo, rustc, the linker) summed, sampled every "
        "0.25 s; *container* adds JupyterLab. CPU: the tree's seconds, its finished children "
        "included. Disk: what the container wrote (its writable layer).", "",
        "| notebook | first picture inside | outside | ratio | Run All inside | kernel peak RSS | PSS | "
        "container peak | CPU s | disk written |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    peak_single, peak_cpu_rate, fits = 0, 0.0, []
    for kind in ("answers", "notebooks/student"):
        for nb in NOTEBOOKS:
            name = f"{kind}/{nb}"
            inside = results.get(f"inside:{name}")
            outside = results.get(f"outside:{name}")
            label = f"{'answer' if kind == 'answers' else 'student'} {nb}"
            if not inside:
                body.append(f"| {label} | did not pass | | | | | | | | |")
                fits.append((label, False))
                continue
            t, u = inside["timings"], inside["usage"]
            fp_in = t.get("first_picture_s")
            fp_out = (outside or {}).get("timings", {}).get("first_picture_s")
            ratio = f"{fp_in / fp_out:.2f}×" if fp_in and fp_out else "—"
            body.append(
                f"| {label} | {fp_in if fp_in is not None else '—'} s | "
                f"{fp_out if fp_out is not None else '—'} s | {ratio} | {t.get('run_all_done_s')} s | "
                f"{size(u['peak_rss'])} | {size(u['peak_pss'])} | {size(u['peak_container_rss'])} | "
                f"{u['cpu_seconds']:.0f} | {size(u.get('written'))} |")
            peak_single = max(peak_single, u["peak_container_rss"])
            if t.get("run_all_done_s"):
                peak_cpu_rate = max(peak_cpu_rate, u["cpu_seconds"] / t["run_all_done_s"])
            fits.append((label, u["peak_container_rss"] < 2 * GiB))
    body.append("")

    nb1_in = results.get("inside:answers/01-convolutions", {}).get("timings", {}).get("first_picture_s")
    nb1_out = results.get("outside:answers/01-convolutions", {}).get("timings", {}).get("first_picture_s")
    if nb1_in and nb1_out:
        verdict = "met" if nb1_in <= TARGET_RATIO * nb1_out else "missed"
        body += [f"Target (notebook 1's first picture inside within {TARGET_RATIO}× of outside): "
                 f"**{verdict}**, {nb1_in} s against {nb1_out} s ({nb1_in / nb1_out:.2f}×).", ""]

    two = results.get("inside:two-at-once")
    if two:
        u = two["usage"]
        body += ["### Two notebooks at once", "",
                 f"{' and '.join(two['notebooks'])} opened in one container (no memory limit), Run All in "
                 f"both: both done {two['both_done_s']} s after Run All, {two['build_folders']} kernel "
                 f"build folders, kernel trees' peak {size(u['peak_rss'])} RSS ({size(u['peak_pss'])} PSS), "
                 f"container peak {size(u['peak_container_rss'])}, {u['cpu_seconds']:.0f} CPU s, "
                 f"{size(u.get('written'))} written.", ""]

    if peak_single:
        guarantee = ceil_to(peak_single * 1.25, 0.25 * GiB)
        two_peak = two["usage"]["peak_container_rss"] if two else peak_single * 2
        limit = max(guarantee, ceil_to(two_peak * 1.25, 0.5 * GiB))
        cpu_guarantee = max(0.5, ceil_to(peak_cpu_rate, 0.25))
        body += ["### Per-student resources (derived)", "",
                 f"- memory guarantee {guarantee / GiB:.2f} GiB: the largest single notebook's container "
                 f"peak ({size(peak_single)}) with a quarter more;",
                 f"- memory limit {limit / GiB:.1f} GiB: two notebooks at once ({size(two_peak)}) with a "
                 f"quarter more;",
                 f"- CPU guarantee {cpu_guarantee:.2f}: the heaviest notebook's average over its Run All "
                 f"({peak_cpu_rate:.2f} cores); CPU limit 2 (the cores these figures were measured on);",
                 "- Binder's 2 GB: " + "; ".join(f"{label} {'fits' if ok else 'does NOT fit'}"
                                                 for label, ok in fits) + ".", ""]
    return "\n".join(head + body).rstrip() + "\n"


def main() -> int:
    path = OUT / "results.json"
    if not path.exists():
        print(f"imagebench: no {path.relative_to(ROOT)}: run `make test-image`", file=sys.stderr)
        return 1
    results = json.loads(path.read_text())
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\n" + BENCHMARKS_INTRO
    BENCHMARKS.write_text(replace_section(text, section_text(results)))
    print(f"imagebench: wrote {BENCHMARKS.relative_to(ROOT)} (section '{SECTION}')")
    print(section_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
