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
