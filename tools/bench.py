#!/usr/bin/env python3
"""`make bench`: the course's speed figures beside the Python stack, written to BENCHMARKS.md.

One run measures, side by side on this machine:

1. Convolution (section "## Convolution"): the seed's Python loop, `scipy.signal.correlate2d`,
   `scipy.ndimage.correlate`, `cv2.filter2D` and `torch.nn.functional.conv2d` (measured here), and
   convlab's `convolve` and `convolve_fast` (`cargo bench --bench convolve`, the notebooks' build:
   dev profile, opt-level 2), on the portrait and on a 4096x4096 picture, grey and colour, on one
   thread and on every core; with the memory-copy floor of the large picture.
2. Networks (section "## Networks"): VGG-16 forward and the CIFAR model's training step against
   PyTorch, and augmentation against the training step (`cargo bench --bench vgg`, `--bench cifar`).

Each command replaces only its own sections of BENCHMARKS.md ("## Notebook latency" belongs to
`make bench-notebooks`). SciPy and OpenCV are not part of the course's environment: they are
installed, once, into `$CONVLAB_CACHE/bench-peers` (pip --target, without dependencies: they use
the environment's NumPy) and put on `sys.path` for this command only.

    python tools/bench.py               # everything (about 10 minutes on 2 cores)
    python tools/bench.py --quick       # fewer, shorter samples (a smoke test)
    python tools/bench.py --only conv   # one part: conv or networks
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
OUT_DIR = ROOT / "build" / "bench"
INTRO = "# Benchmarks\n\nBenchmarks of the course, each section written by the command it names.\n"
PEER_PACKAGES = ["scipy", "opencv-python-headless"]
CONV_SECTION = "## Convolution"
NET_SECTION = "## Networks"
LARGE = 4096
# The seed's loop takes seconds per megapixel: on the large picture it runs on a band of rows.
LOOP_BAND_ROWS = 16


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------- environment


def cache_dir() -> Path:
    """$CONVLAB_CACHE, default ~/.cache/convlab (as scripts/env.sh)."""
    return Path(os.environ.get("CONVLAB_CACHE") or Path.home() / ".cache" / "convlab")


def ensure_peers() -> Path:
    """SciPy and OpenCV in $CONVLAB_CACHE/bench-peers (installed when missing); returns the folder."""
    target = cache_dir() / "bench-peers"
    probe = [sys.executable, "-c", "import scipy.signal, scipy.ndimage, cv2"]
    env = dict(os.environ, PYTHONPATH=str(target))
    if subprocess.run(probe, env=env, capture_output=True).returncode != 0:
        print(f"bench: installing {' '.join(PEER_PACKAGES)} into {target}", flush=True)
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--upgrade", "--no-deps",
               "--target", str(target), *PEER_PACKAGES]
        if subprocess.run(cmd).returncode != 0:
            raise BenchError(f"pip could not install {' '.join(PEER_PACKAGES)} into {target}")
        check = subprocess.run(probe, env=env, capture_output=True, text=True)
        if check.returncode != 0:
            raise BenchError(f"{target}: SciPy or OpenCV does not import with this NumPy:\n"
                             f"{check.stderr.strip()[-1500:]}\nremove {target} and run again")
    return target


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
              if l.startswith("MemTotal"))
    flags = Path("/proc/cpuinfo").read_text()
    simd = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "SSE2"
    return {"cores": len(os.sched_getaffinity(0)), "cpu": model, "memory_gib": round(kb / 2**20, 1),
            "simd": simd, "l2_bytes": l2_cache_bytes()}


def l2_cache_bytes() -> int | None:
    """The second-level cache of the first processor, in bytes (None where Linux does not say)."""
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip()
                return int(size.rstrip("KM")) * (1024 if size.endswith("K") else 2**20)
        except (OSError, ValueError):
            continue  # an entry Linux did not fill in: look at the others
    return None


def cargo_bench(name: str, args: list[str], env: dict | None = None) -> str:
    """Runs one cargo bench (dev profile, as the notebooks build the crate) and returns its output."""
    cmd = ["cargo", "bench", "--profile", "dev", "-p", "convlab", "--features", "bench", "--bench", name, "--", *args]
    print(f"bench: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, **(env or {})), text=True,
                          stdout=subprocess.PIPE)
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        raise BenchError(f"cargo bench --bench {name} failed (exit {proc.returncode})")
    return proc.stdout


# ---------------------------------------------------------------------------- timing


def timing(f, samples: int, sample_secs: float) -> dict:
    """Median, fastest and slowest seconds per call over `samples` samples, each of as many calls
    as fill `sample_secs` (at least one), after one warm-up call (none when `sample_secs` is 0), as
    the Rust benches do."""
    calls = 1
    if sample_secs > 0:  # one call per sample (slow cases) needs no warm-up
        t = time.perf_counter()
        f()
        calls = max(int(sample_secs / max(time.perf_counter() - t, 1e-9)), 1)
    per_call = []
    for _ in range(samples):
        t = time.perf_counter()
        for _ in range(calls):
            f()
        per_call.append((time.perf_counter() - t) / calls)
    per_call.sort()
    return {"median_s": per_call[samples // 2], "min_s": per_call[0], "max_s": per_call[-1],
            "samples": samples}


# ---------------------------------------------------------------------------- convolution


def seed_convolve(image, filter):
    """The seed's LA3 code, as written there (numpy patch times filter, summed, pixel by pixel)."""
    import numpy as np

    def multiply_sum(patch, filter):
        assert patch.shape == filter.shape
        return np.sum(patch * filter)

    filter_height = filter.shape[0]
    filter_width = filter.shape[1]
    filtered_image = np.ndarray(shape=(image.shape[0] - filter_height + 1,
                                       image.shape[1] - filter_width + 1))
    for x in range(0, filtered_image.shape[0]):
        for y in range(0, filtered_image.shape[1]):
            patch = image[x: x + filter_height, y: y + filter_width]
            filtered_image[x, y] = multiply_sum(patch, filter)
    return filtered_image


def python_pictures():
    """The portrait (RGB, float32, 0-255) and a random 4096x4096 colour picture, with grey versions."""
    import numpy as np
    import cv2
    path = ROOT / "data" / "grace_hopper.jpg"
    bgr = cv2.imread(str(path))
    if bgr is None:
        print(f"bench: ({path} missing: a random picture of the same size)", flush=True)
        portrait = np.random.default_rng(1).uniform(0, 255, (606, 517, 3)).astype(np.float32)
    else:
        portrait = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
    large = np.random.default_rng(0).integers(0, 256, (LARGE, LARGE, 3)).astype(np.float32)
    grey = lambda c: np.ascontiguousarray(c @ np.array([0.299, 0.587, 0.114], np.float32))
    return {"portrait": (grey(portrait), portrait), str(LARGE): (grey(large), large)}


def peer_rows(filters: dict, cores: int, quick: bool, fast_only: bool = False) -> list[dict]:
    """Times the Python stack's convolutions on both pictures, grey and colour (`fast_only`: only
    OpenCV, PyTorch and `scipy.ndimage`, for the second round). Long on purpose: one `add` line
    per peer, in the order of BENCHMARKS.md's tables, reads better than a table of lambdas."""
    import numpy as np
    import cv2
    import scipy.ndimage
    import scipy.signal
    import torch

    gk = np.array(filters["grey"]["values"], np.float32).reshape(filters["grey"]["shape"])
    ck = np.array(filters["colour"]["values"], np.float32).reshape(filters["colour"]["shape"])
    samples, secs = (3, 0.05) if quick else (7, 0.25)
    rows = []

    def add(picture, kind, method, threads, pixels, f, n=samples, s=secs, note=""):
        t = timing(f, n, s)
        row = dict(picture=picture, kind=kind, method=method, threads=threads, pixels=pixels,
                   load=load_average(), note=note, **t)
        rows.append(row)
        print(f"{picture:<9} {kind:<7} {method:<26} {threads:>2} {pixels / t['median_s'] / 1e6:>10.1f} MP/s"
              f"  load {row['load']}", flush=True)

    for picture, (grey, colour) in python_pictures().items():
        pixels = grey.size
        # torch takes channels first: converted once, outside the timing.
        tg = torch.from_numpy(grey)[None, None]
        tc = torch.from_numpy(np.ascontiguousarray(colour.transpose(2, 0, 1)))[None]
        tgk = torch.from_numpy(gk)[None, None]
        tck = torch.from_numpy(np.ascontiguousarray(ck.transpose(2, 0, 1)))[None]

        def cv2_colour():
            # From the same interleaved (H, W, 3) picture as convlab gets: split, filter, add.
            planes = cv2.split(colour)
            out = cv2.filter2D(planes[0], -1, ck[:, :, 0])
            for c in (1, 2):
                out += cv2.filter2D(planes[c], -1, ck[:, :, c])
            return out

        # The seed's loop, on a band of rows of the large picture (same cost per pixel).
        if picture == "portrait":
            band, note, n = (grey, colour), "", 1 if quick else 3
        else:
            band = (grey[: LOOP_BAND_ROWS + 2], colour[: LOOP_BAND_ROWS + 2])
            note, n = f"on a {LOOP_BAND_ROWS}-row band", 1 if quick else 3
        band_pixels = band[0].size
        if not fast_only:
            add(picture, "grey", "python-loop", 1, band_pixels, lambda: seed_convolve(band[0], gk), n, 0, note)
            add(picture, "colour", "python-loop", 1, band_pixels, lambda: seed_convolve(band[1], ck), n, 0, note)
            few = (1 if quick else 3) if picture != "portrait" else samples
            add(picture, "grey", "scipy.signal.correlate2d", 1, pixels,
                lambda: scipy.signal.correlate2d(grey, gk, mode="valid"), few)
            add(picture, "colour", "scipy.signal.correlate2d", 1, pixels,
                lambda: sum(scipy.signal.correlate2d(colour[:, :, c], ck[:, :, c], mode="valid") for c in range(3)),
                few)
        add(picture, "grey", "scipy.ndimage.correlate", 1, pixels, lambda: scipy.ndimage.correlate(grey, gk))
        add(picture, "colour", "scipy.ndimage.correlate", 1, pixels,
            lambda: sum(scipy.ndimage.correlate(colour[:, :, c], ck[:, :, c]) for c in range(3)))
        for threads in sorted({1, cores}):
            cv2.setNumThreads(threads)
            torch.set_num_threads(threads)
            add(picture, "grey", "cv2.filter2D", threads, pixels, lambda: cv2.filter2D(grey, -1, gk))
            add(picture, "colour", "cv2.filter2D", threads, pixels, cv2_colour)
            with torch.no_grad():
                add(picture, "grey", "torch conv2d", threads, pixels,
                    lambda: torch.nn.functional.conv2d(tg, tgk))
                add(picture, "colour", "torch conv2d", threads, pixels,
                    lambda: torch.nn.functional.conv2d(tc, tck))
    cv2.setNumThreads(cores)
    torch.set_num_threads(cores)
    return rows


def versions() -> str:
    import numpy
    import scipy
    import cv2
    import torch
    return (f"Python {sys.version.split()[0]}, NumPy {numpy.__version__}, SciPy {scipy.__version__}, "
            f"OpenCV {cv2.__version__}, PyTorch {torch.__version__}")


def run_convolution(quick: bool, cores: int) -> dict:
    peers = ensure_peers()
    sys.path.insert(0, str(peers))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rust_json = OUT_DIR / "convolve-rust.json"
    start = load_average()
    # Two rounds, Rust then Python, so that a machine busy in one stretch favours neither side:
    # the slow methods once, the fast ones twice, each fast figure the better of its two rounds.
    rounds = []
    for fast_only in (False, True):
        args = ["--json", str(rust_json)] + (["--quick"] if quick else []) + (["--fast-only"] if fast_only else [])
        cargo_bench("convolve", args)
        rust = json.loads(rust_json.read_text())
        rounds += rust["rows"] + peer_rows(rust["filters"], cores, quick, fast_only)
    best = {}
    for row in rounds:
        key = (row["picture"], row["kind"], row["method"], row["threads"])
        if key not in best or row["median_s"] < best[key]["median_s"]:
            best[key] = row
    rows = list(best.values())
    return {"load_start": start, "load_end": load_average(), "rust": [r for r in rows if "note" not in r],
            "python": [r for r in rows if "note" in r], "rounds": rounds, "versions": versions(), "quick": quick}


LABELS = {
    "python-loop": "Python loop, the seed's `convolve` (NumPy per pixel)",
    "scipy.signal.correlate2d": "`scipy.signal.correlate2d` (valid)",
    "scipy.ndimage.correlate": "`scipy.ndimage.correlate`",
    "cv2.filter2D": "OpenCV `cv2.filter2D`",
    "torch conv2d": "PyTorch `conv2d` (CPU)",
    "direct": "convlab `convolve` (the seed's direct method)",
    "fast": "convlab `convolve_fast` / `convolve_fast_threads`",
    "into": "convlab `convolve_fast_into` (into an output already in memory)",
}
PEERS = ["python-loop", "scipy.signal.correlate2d", "scipy.ndimage.correlate", "cv2.filter2D", "torch conv2d"]


def mpix(row: dict, key: str = "median_s") -> float:
    return row["pixels"] / row[key] / 1e6


def cell(row: dict | None) -> str:
    if row is None:
        return "–"
    # The fastest sample is the largest rate.
    return f"{mpix(row):,.0f} ({mpix(row, 'max_s'):,.0f}–{mpix(row, 'min_s'):,.0f})" if mpix(row) >= 100 \
        else f"{mpix(row):.2f} ({mpix(row, 'max_s'):.2f}–{mpix(row, 'min_s'):.2f})"


def conv_section(r: dict, m: dict, date: str) -> str:
    rows = r["rust"] + r["python"]
    cores = m["cores"]
    find = lambda p, k, meth, t: next((x for x in rows if (x["picture"], x["kind"], x["method"], x["threads"])
                                       == (p, k, meth, t)), None)
    out = [CONV_SECTION, "",
           f"`make bench` (`tools/bench.py`), {date}{' (quick mode)' if r['quick'] else ''}. Machine: "
           f"{cores} cores (`nproc`), {m['cpu']} ({m['simd']}), {m['memory_gib']} GiB memory; load average "
           f"(1, 5, 15 min) {r['load_start']} at the start, {r['load_end']} at the end, and in the last column "
           f"after each figure. Other work on the machine slows every column alike only roughly: the "
           f"ratios within one table, measured minutes apart, are the figures to trust.", "",
           f"convlab: `cargo bench --profile dev --bench convolve`, the crate built as the notebooks build it "
           f"(dev profile, every crate at opt-level 2, default target CPU: `convolve_fast` picks AVX-512, "
           f"AVX2 or plain code when it runs). Python: {r['versions']}; SciPy and OpenCV from "
           f"`$CONVLAB_CACHE/bench-peers`, installed for this command only.", "",
           "Megapixels of *input* per second (so that valid and same-size outputs compare on the same "
           "work): the median over several samples, each of as many calls as fill a quarter of a second, "
           "with the slowest and fastest sample in brackets. Two rounds, convlab then Python and again: the "
           "slow methods (the seed's loop and `convolve`, `correlate2d`) run in the first only; every other "
           "figure is the better median of its two rounds, and the load shown is that round's. Grey: the quiz's 3×3 horizontal-edge filter "
           "(3 of its 9 weights are zero; OpenCV and convlab skip them). Colour: the seed's 3×3×3 brown "
           "filter, one output channel, from the interleaved (H, W, 3) picture (OpenCV splits it with `cv2.split` "
           "and SciPy takes channel views, both filter the three planes and add them up, inside the timing; "
           "PyTorch gets the picture channels-first, converted outside the timing). SciPy's `ndimage`, OpenCV and "
           "the seed's loop differ in their borders (same-size output), which does not change their speed. "
           "*vs best peer*: the rate divided by the best rate of the Python stack in the same column.", ""]
    for picture in ["portrait", str(LARGE)]:
        size = "606×517 portrait" if picture == "portrait" else f"{LARGE}×{LARGE} picture (random values)"
        for kind in ["grey", "colour"]:
            out += [f"### {size}, {kind}", "",
                    f"| method | 1 thread, MP/s | vs best peer | {cores} threads, MP/s | vs best peer | load |",
                    "|---|---:|---:|---:|---:|---|"]
            best = {t: max((mpix(x) for x in rows if x["picture"] == picture and x["kind"] == kind
                            and x["method"] in PEERS and x["threads"] == t), default=None) for t in (1, cores)}
            for method in PEERS + ["direct", "fast", "into"]:
                one, many = find(picture, kind, method, 1), find(picture, kind, method, cores)
                if one is None and many is None:
                    continue
                ratio = lambda x, t: "–" if x is None or not best[t] else f"{mpix(x) / best[t]:.2f}×"
                label = LABELS[method] + (f" ({one['note']})" if one and one.get("note") else "")
                if method == "fast":
                    label = f"**{label}**"
                load = (one or many)["load"]
                out.append(f"| {label} | {cell(one)} | {ratio(one, 1)} | "
                           f"{cell(many) if cores > 1 else '–'} | {ratio(many, cores) if cores > 1 else '–'} | {load} |")
            out.append("")
    out += targets(rows, cores, m.get("l2_bytes"))
    return "\n".join(out).rstrip() + "\n"


def targets(rows: list[dict], cores: int, l2_bytes: int | None = None) -> list[str]:
    """The issue's targets, computed from the rows; for each one missed, its measured floor and
    the reason, from the `in-cache` rows (the convolution on a band of the picture that stays in
    the second-level cache)."""
    find = lambda p, k, meth, t=1: next((x for x in rows if (x["picture"], x["kind"], x["method"], x["threads"])
                                         == (p, k, meth, t)), None)
    verdict = lambda ok: "**met**" if ok else "**not met**"
    out = ["### Targets", "", "| target | measured | |", "|---|---|---|"]
    missed = []  # (target, floor and reason) for the notes below the table
    for picture in ["portrait", str(LARGE)]:
        for kind in ["grey", "colour"]:
            fast, cv = find(picture, kind, "fast"), find(picture, kind, "cv2.filter2D")
            if fast and cv:
                ratio = mpix(fast) / mpix(cv)
                out.append(f"| `convolve_fast` ≥ 1.0× `cv2.filter2D`, one thread, {picture} {kind} | "
                           f"{mpix(fast):,.0f} vs {mpix(cv):,.0f} MP/s: **{ratio:.2f}×** | {verdict(ratio >= 1.0)} |")
    for picture in ["portrait", str(LARGE)]:
        grey, dense, colour = (find(picture, k, "fast") for k in ("grey", "grey-dense", "colour"))
        cached = {k: find(picture, k, "in-cache") for k in ("grey-dense", "colour")}
        if grey and dense and colour:
            per_channel = 3 * mpix(colour)
            ok = per_channel >= mpix(dense)
            in_cache = ""
            if all(cached.values()):
                c_colour, c_dense = 3 * mpix(cached["colour"]), mpix(cached["grey-dense"])
                in_cache = (f"; in cache, {c_colour:,.0f} vs {c_dense:,.0f}: **{c_colour / c_dense:.2f}×**")
            out.append(f"| colour no slower per channel than grey, {picture} | 3 × {mpix(colour):,.0f} = "
                       f"{per_channel:,.0f} MP/s per channel vs grey {mpix(dense):,.0f} (dense 3×3 outline "
                       f"filter; {mpix(grey):,.0f} with the horizontal-edge filter's 6 weights): "
                       f"**{per_channel / mpix(dense):.2f}×**{in_cache} | {verdict(ok)} |")
            if not ok and all(cached.values()):
                colour_mb, grey_mb = 3 * 4 * dense["pixels"] / 1e6, 4 * dense["pixels"] / 1e6
                cache = (f"the {l2_bytes / 2**20:g} MB second-level cache" if l2_bytes
                         else "the second-level cache")
                fits = lambda mb: l2_bytes is not None and mb * 1e6 < l2_bytes
                missed.append((
                    f"colour no slower per channel than grey, {picture}",
                    f"measured floor: the two on the same rows in cache (a band of the picture "
                    f"convolved again and again), where neither waits for memory: colour "
                    f"{c_colour / c_dense:.2f}× grey per channel ({c_colour:,.0f} vs {c_dense:,.0f} MP/s). "
                    f"Reason: the colour picture has three times the grey one's bytes "
                    f"({colour_mb:.1f} MB against {grey_mb:.1f} MB), so it "
                    + (f"comes from memory further out than {cache}, which holds the grey one; "
                       if fits(grey_mb) and not fits(colour_mb) else "waits longer for memory; ")
                    + f"what remains in cache ({max(0.0, 1 - c_colour / c_dense):.0%}) is the colour pass's "
                    f"own work beyond grey's multiply-adds: a partial sum per sample, written, read back by the "
                    f"second group of weights (a 3×3×3 filter's 9 places take two passes of at most 5), and "
                    f"each pixel's 3 sums added."))
    for kind, samples in [("grey", 1), ("colour", 3)]:
        into, fast, copy = (find(str(LARGE), kind, m) for m in ("into", "fast", "copy"))
        cached = find(str(LARGE), "grey-dense" if kind == "grey" else kind, "in-cache")
        if into and fast and copy:
            # copy moves 2 × samples × 4 bytes per pixel; the convolution reads samples and writes 1.
            bandwidth = 2 * samples * 4 * copy["pixels"] / copy["median_s"]
            floor = (samples + 1) * 4 * into["pixels"] / bandwidth
            ratio = into["median_s"] / floor
            out.append(f"| {LARGE}² {kind}: within 2× of the memory-bandwidth floor | `convolve_fast_into` "
                       f"{into['median_s'] * 1e3:.1f} ms vs {floor * 1e3:.1f} ms (its {samples + 1} × 4 bytes per "
                       f"pixel at the copy's {bandwidth / 1e9:.1f} GB/s): **{ratio:.2f}×**; `convolve_fast`, "
                       f"with a new output, {fast['median_s'] * 1e3:.1f} ms: {fast['median_s'] / floor:.2f}× "
                       f"| {verdict(ratio <= 2.0)} |")
            if ratio > 2.0 and cached and kind == "colour":
                compute = into["pixels"] / (mpix(cached) * 1e6)  # the whole picture at the in-cache rate
                threads = find(str(LARGE), kind, "fast", cores)
                scaling = (f" Two threads give {mpix(threads) / mpix(fast):.2f}× one (table above), as work "
                           f"bound by arithmetic does." if threads and cores > 1 else "")
                picture_mb = samples * 4 * into["pixels"] / 1e6
                reason = (
                    f"the 27 multiply-adds of each pixel (3×3 places × 3 channels) take longer by themselves "
                    f"than twice the memory floor on one core, however the memory is read; "
                    f"`convolve_fast_into` takes {into['median_s'] / compute:.2f}× its in-cache time, the rest "
                    f"being the {picture_mb:,.0f} MB picture read from memory while it computes."
                    if compute > 2 * floor else
                    f"the arithmetic alone fits within twice the memory floor, but `convolve_fast_into` takes "
                    f"{into['median_s'] / compute:.2f}× its in-cache time: reading the {picture_mb:,.0f} MB "
                    f"picture from memory does not overlap with the arithmetic.")
                missed.append((
                    f"{LARGE}² {kind} within 2× of the memory-bandwidth floor",
                    f"measured floor: {max(compute, floor) * 1e3:.1f} ms, the larger of the memory floor "
                    f"({floor * 1e3:.1f} ms) and the convolution's own time at its in-cache rate "
                    f"({mpix(cached):,.0f} MP/s on a band of the picture that stays in the second-level "
                    f"cache: {compute * 1e3:.1f} ms for the whole picture, **{compute / floor:.2f}×** the memory "
                    f"floor). Reason: {reason}{scaling}"))
    for picture in ["portrait", str(LARGE)]:
        for kind in ["grey", "colour"]:
            one, many = find(picture, kind, "fast"), find(picture, kind, "fast", cores)
            if one and many and cores > 1:
                out.append(f"| threads ({cores}), {picture} {kind} (reported, no target) | "
                           f"{mpix(many):,.0f} vs {mpix(one):,.0f} MP/s: {mpix(many) / mpix(one):.2f}× | |")
    out += ["", "The floor: `copy` in `benches/convolve.rs` copies a buffer the size of the grey (colour) "
            "picture into another one already in memory, reading and writing every byte once; its rate "
            "in bytes read + written per second is the bandwidth a single thread gets, and the floor of a "
            "convolution is its own bytes (the picture read, the grey output written) at that rate. "
            "`convolve_fast_into` is measured against it, since it too writes into memory already in use. "
            "A function that returns a new picture also pays the kernel for fresh pages (zeroing them): "
            "`convolve_fast` asks for 2 MB pages for large outputs, as NumPy does, which makes that cost "
            "smaller but not small. *In cache*: `convolve_fast_into` on the picture's first rows (1 MB of "
            "colour, the same rows for grey), convolved again and again so that they stay in the "
            "second-level cache: the convolution's own speed, with memory out of the picture.", ""]
    if missed:
        out += ["Targets not met, each with its measured floor and the reason:", ""]
        out += [f"- **{target}**: {why}" for target, why in missed]
        out.append("")
    return out


# ---------------------------------------------------------------------------- networks


def bench_json(output: str) -> dict:
    line = next((l for l in output.splitlines() if l.startswith("BENCH-JSON ")), None)
    if line is None:
        raise BenchError("the bench printed no BENCH-JSON line")
    return json.loads(line[len("BENCH-JSON "):])


def run_networks(quick: bool) -> dict:
    env = {"CONVLAB_BENCH_RUNS": "3" if quick else "5", "CONVLAB_BENCH_SECONDS": "2" if quick else "5"}
    start = load_average()
    vgg = bench_json(cargo_bench("vgg", [], env))
    vgg_load = load_average()
    cifar = bench_json(cargo_bench("cifar", [], env))
    return {"load_start": start, "vgg_load": vgg_load, "load_end": load_average(), "vgg": vgg, "cifar": cifar,
            "quick": quick}


def spread(t: list[float], digits: int = 3) -> str:
    return f"{t[0]:.{digits}f} ({t[1]:.{digits}f}–{t[2]:.{digits}f})"


def net_section(r: dict, m: dict, date: str) -> str:
    vgg, cifar = r["vgg"], r["cifar"]
    out = [NET_SECTION, "",
           f"`make bench` (`tools/bench.py`), {date}{' (quick mode)' if r['quick'] else ''}. Machine: "
           f"{m['cores']} cores, {m['cpu']}, {m['memory_gib']} GiB memory; load average {r['load_start']} at "
           f"the start, {r['vgg_load']} after VGG-16, {r['load_end']} at the end. `cargo bench --profile dev` "
           f"(`benches/vgg.rs`, `benches/cifar.rs`); PyTorch runs the same networks from the course's "
           f"environment with the same number of threads.", "",
           f"### VGG-16 forward pass, {vgg['device']}", "",
           f"224×224, softmax, no gradients, random weights; median of {vgg['runs']} runs after a warm-up "
           f"(fastest–slowest).", "",
           "| batch | convlab s | PyTorch s | convlab / PyTorch (time) | target |", "|---:|---:|---:|---:|---|"]
    for row in vgg["rows"]:
        py = row["pytorch"]
        ratio = row["convlab"][0] / py[0] if py else None
        out.append(f"| {row['batch']} | {spread(row['convlab'])} | {spread(py) if py else '–'} | "
                   f"{f'**{ratio:.2f}×**' if ratio else '–'} | ≤ 1.05×: "
                   f"{'met' if ratio and ratio <= 1.05 else 'not met' if ratio else '–'} |")
    ours, theirs, aug = cifar["convlab"], cifar["pytorch"], cifar["augmentation"]
    out += ["", f"### CIFAR-10 model, one training step, CPU, batch {cifar['batch']}, {cifar['threads']} threads",
            "", f"Pictures per second; median of 3 rounds of {cifar['seconds']:g} s, the two sides alternating "
            f"(slowest–fastest round). PyTorch: {cifar['about'] or '–'}.", "",
            "| implementation | images/s | ratio | target |", "|---|---:|---:|---|",
            f"| convlab (tch, `KerasSgd`) | {spread(ours, 1)} | | |"]
    if theirs:
        ratio = ours[0] / theirs[0]
        out += [f"| PyTorch (`torch.optim.SGD`, Nesterov) | {spread(theirs, 1)} | convlab / PyTorch "
                f"**{ratio:.2f}×** | ≥ 1.0×: {'met' if ratio >= 1.0 else 'not met'} |"]
    ratio = aug[0] / ours[0]
    out += [f"| augmentation (shift 0.1, flip, standardise; one thread) | {spread(aug, 1)} | augmentation / "
            f"training **{ratio:.0f}×** | ≥ 5×: {'met' if ratio >= 5 else 'not met'} |", ""]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------- BENCHMARKS.md


def replace_section(text: str, heading: str, section: str) -> str:
    """The document with the section from `heading` to the next level-2 heading replaced (or appended)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == heading), None)
    if start is None:
        return text.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + after if after else "")


def write_sections(sections: dict[str, str]) -> None:
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else INTRO
    for heading, section in sections.items():
        text = replace_section(text, heading, section)
    BENCHMARKS.write_text(text)
    print(f"bench: wrote {', '.join(repr(h) for h in sections)} in {BENCHMARKS.relative_to(ROOT)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer and shorter samples (a smoke test)")
    ap.add_argument("--only", choices=["conv", "networks"], help="run one part only")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = ap.parse_args(argv)
    m = machine()
    date = datetime.datetime.now().astimezone().isoformat(timespec="minutes")
    sections = {}
    try:
        if args.only in (None, "conv"):
            conv = run_convolution(args.quick, m["cores"])
            (OUT_DIR / "convolution.json").write_text(json.dumps(conv, indent=1) + "\n")
            sections[CONV_SECTION] = conv_section(conv, m, date)
        if args.only in (None, "networks"):
            nets = run_networks(args.quick)
            (OUT_DIR / "networks.json").write_text(json.dumps(nets, indent=1) + "\n")
            sections[NET_SECTION] = net_section(nets, m, date)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    for section in sections.values():
        print("\n" + section)
    if not args.no_write:
        write_sections(sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
