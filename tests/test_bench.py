"""tools/bench.py (make bench) without running a benchmark: its sections of BENCHMARKS.md and the
targets it computes from measured rows."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench", ROOT / "tools" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

DOC = """# Benchmarks

Intro.

## Convolution

old figures

## Notebook latency

latency table, written by make bench-notebooks
"""


def test_replacing_a_section_keeps_the_others():
    new = bench.replace_section(DOC, "## Convolution", "## Convolution\n\nnew figures\n")
    assert "new figures" in new and "old figures" not in new
    assert new.endswith("## Notebook latency\n\nlatency table, written by make bench-notebooks\n")
    # A section that is not there yet is appended, the rest unchanged.
    more = bench.replace_section(new, "## Networks", "## Networks\n\nVGG\n")
    assert more.startswith(new.rstrip("\n")) and more.endswith("## Networks\n\nVGG\n")
    # The last section of the document is replaced up to its end.
    last = bench.replace_section(more, "## Networks", "## Networks\n\nVGG again\n")
    assert last.count("## Networks") == 1 and last.endswith("VGG again\n")


def row(picture, kind, method, seconds, threads=1, pixels=1_000_000):
    return dict(picture=picture, kind=kind, method=method, threads=threads, pixels=pixels,
                median_s=seconds, min_s=seconds * 0.9, max_s=seconds * 1.1, samples=3, load="1.00 1.00 1.00")


def test_targets_compare_with_opencv_the_floor_and_grey():
    rows = [
        row("portrait", "grey", "fast", 0.001), row("portrait", "grey", "cv2.filter2D", 0.002),
        row("portrait", "colour", "fast", 0.004), row("portrait", "colour", "cv2.filter2D", 0.003),
        row("portrait", "grey-dense", "fast", 0.0015),
        # Copy of 4 MB (1 M pixels × 4 bytes) in 1 ms: 8 GB/s read + written; a grey convolution
        # moves the same 8 MB, so its floor is 1 ms.
        # convolve_fast_into, into memory already in use, is held to the floor; convolve_fast,
        # which also pays for a new output, is shown beside it.
        row("4096", "grey", "copy", 0.001), row("4096", "grey", "into", 0.0025),
        row("4096", "grey", "fast", 0.004),
        row("4096", "colour", "copy", 0.003), row("4096", "colour", "into", 0.0015),
        row("4096", "colour", "fast", 0.0016),
    ]
    text = "\n".join(bench.targets(rows, cores=2))
    assert "portrait grey | 1,000 vs 500 MP/s: **2.00×** | **met**" in text
    assert "portrait colour | 250 vs 333 MP/s: **0.75×** | **not met**" in text
    # 3 × 250 = 750 MP/s per channel against 667 for the dense grey filter.
    assert "**1.12×** | **met**" in text
    assert "`convolve_fast_into` 2.5 ms vs 1.0 ms" in text and "**2.50×**; `convolve_fast`, with a new output, 4.0 ms: 4.00× | **not met**" in text
    # Colour: 3 M samples copied in 3 ms (8 GB/s); 1 M pixels × 16 bytes read + written = 2 ms.
    assert "`convolve_fast_into` 1.5 ms vs 2.0 ms" in text and "**0.75×**; `convolve_fast`, with a new output, 1.6 ms: 0.80× | **met**" in text


def test_a_missed_target_gets_its_measured_floor_and_reason():
    px = 300_000  # 1.2 MB grey, 3.6 MB colour: only grey fits a 2 MB second-level cache
    rows = [
        row("portrait", "grey", "fast", 0.0002, pixels=px), row("portrait", "grey-dense", "fast", 0.0003, pixels=px),
        # 3 × 75 = 225 MP/s per channel against 1,000: not met.
        row("portrait", "colour", "fast", 0.004, pixels=px),
        # In cache (a band of 100,000 pixels): 3 × 250 = 750 against 1,000.
        row("portrait", "colour", "in-cache", 0.0004, pixels=100_000),
        row("portrait", "grey-dense", "in-cache", 0.0001, pixels=100_000),
        # 4096 colour: copy at 8 GB/s, so a floor of 2 ms; into 6 ms (3×); in cache 222 MP/s, so the
        # whole 1 M pixels take 4.5 ms of arithmetic: 2.25× the floor by itself.
        row("4096", "colour", "copy", 0.003), row("4096", "colour", "into", 0.006),
        row("4096", "colour", "fast", 0.0065), row("4096", "colour", "fast", 0.0034, threads=2),
        row("4096", "colour", "in-cache", 0.00045, pixels=100_000),
    ]
    text = "\n".join(bench.targets(rows, cores=2, l2_bytes=2 * 2**20))
    assert "**0.22×**; in cache, 750 vs 1,000: **0.75×** | **not met**" in text
    notes = text.split("Targets not met, each with its measured floor and the reason:")[1]
    per_channel = next(line for line in notes.splitlines() if "per channel than grey, portrait" in line)
    assert "colour 0.75× grey per channel (750 vs 1,000 MP/s)" in per_channel
    assert "(3.6 MB against 1.2 MB)" in per_channel and "further out than the 2 MB second-level cache" in per_channel
    assert "what remains in cache (25%)" in per_channel
    floor = next(line for line in notes.splitlines() if "memory-bandwidth floor" in line)
    assert "measured floor: 4.5 ms, the larger of the memory floor (2.0 ms)" in floor
    assert "4.5 ms for the whole picture, **2.25×** the memory floor" in floor
    assert "take longer by themselves than twice the memory floor" in floor
    assert "takes 1.33× its in-cache time" in floor and "the 12 MB picture" in floor
    assert "Two threads give 1.91× one" in floor
    # Arithmetic within 2× of the floor: then the reason is memory not overlapped with it.
    quick = [r if r["method"] != "in-cache" or r["picture"] != "4096" else {**r, "median_s": 0.0001}
             for r in rows]
    floor = "\n".join(bench.targets(quick, cores=2, l2_bytes=2 * 2**20)).split("memory-bandwidth floor**: ")[1]
    assert floor.startswith("measured floor: 2.0 ms") and "does not overlap with the arithmetic" in floor
    # Met targets get no note; without in-cache rows there is no floor to state.
    assert "colour no slower per channel than grey, 4096" not in notes
    plain = "\n".join(bench.targets([r for r in rows if r["method"] != "in-cache"], cores=2))
    assert "**not met**" in plain and "measured floor" not in plain
