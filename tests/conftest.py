"""Shared helpers for the Python-side tests: the notebook runner, PNG sizes, and the data the
notebooks need, written by the tests in the real formats (real weights and CIFAR-10 cannot be
downloaded here)."""
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails on anything that is not a PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert png[12:16] == b"IHDR", "PNG without IHDR"
    return struct.unpack(">II", png[16:24])


CIFAR_PER_BATCH = 200  # 1 000 training and 200 test pictures: quick mode stays quick on 2 cores


def convlab_cli(*args: str) -> None:
    subprocess.run(["cargo", "run", "--quiet", "-p", "convlab", "--bin", "convlab", "--", *args],
                   cwd=ROOT, check=True)


@pytest.fixture(scope="session")
def vgg_test_weights(tmp_path_factory) -> Path:
    """Random VGG-16-shaped weights in the notebook's format (`convlab make-test-weights`)."""
    path = tmp_path_factory.mktemp("vgg") / "vgg16-test.safetensors"
    convlab_cli("make-test-weights", str(path))
    assert path.stat().st_size > 500_000_000, "VGG-16-shaped: 138 million float32 weights"
    return path


@pytest.fixture(scope="session")
def cifar_test_batches(tmp_path_factory) -> Path:
    """Small CIFAR-10 batches in the official binary format (`convlab make-test-cifar`)."""
    data = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-bin"
    convlab_cli("make-test-cifar", str(data), "--per-batch", str(CIFAR_PER_BATCH))
    assert (data / "data_batch_5.bin").stat().st_size == CIFAR_PER_BATCH * 3073
    return data
