#!/usr/bin/env python3
"""The student release: the course as students get it, without the answers.

    python tools/release.py [--out build/release]     # `make release`

writes OUT/convlab-student/ (a folder to push as the students' repository) and
OUT/convlab-student.tar.gz (the same folder, to unpack). A student runs it with the same two
commands as this project: `make lab` (set up, then JupyterLab on notebooks/) and `make test`
(the crate's tests, then every notebook top to bottom with each test cell listed ✓/✗).

What goes in (RELEASE below): the student version of every notebook at notebooks/ (solutions
stubbed, hidden tests removed, `:dep` paths written for that place: tools/nbgrade.py's
student_version), the crate, the workspace's Cargo.toml and Cargo.lock, the setup and the
kernel's launcher with what they use (scripts/, tools/nbrun.py, tools/preload.py),
requirements.txt, environment.yml, data/README.md, and from tools/release/ the student's
Makefile, README, test script and notebook checker. What stays out: the answer notebooks,
tests/ and its fixtures, tools/nbgrade.py (grading), docs/, .ci, the benchmarks, build
outputs, target folders, data files, caches.

The tarball is reproducible: entries sorted, owner root, modes 0644/0755, and one time for
every entry (SOURCE_DATE_EPOCH when set, else the time of the last commit), in a gzip stream
without name or time. The same tree gives the same bytes.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "tools" / "release"
NAME = "convlab-student"
DEFAULT_OUT = ROOT / "build" / "release"
FALLBACK_EPOCH = 1_767_225_600  # 2026-01-01 00:00 UTC, when neither of the above is known

# Copied as they are: files, or folders (every file git would carry, see project_files).
COPIED = [
    "Cargo.toml",
    "Cargo.lock",
    "crates/convlab",
    "requirements.txt",
    "environment.yml",
    "data/README.md",
    ".gitignore",
    "scripts/env.sh",
    "scripts/steps.sh",
    "scripts/setup.sh",
    "scripts/build-evcxr.sh",  # the setup builds the kernel with the five changes below
    "scripts/evcxr-let-only.patch",
    "scripts/evcxr-library-roots.patch",
    "scripts/evcxr-dep-env.patch",
    "scripts/evcxr-output-order.patch",
    "scripts/evcxr-error-reply.patch",
    "scripts/rust-kernel",
    "scripts/convlab",
    "scripts/check-cuda.sh",
    "scripts/convert-vgg-weights.py",  # included by the crate (weights::CONVERTER)
    "tools/nbrun.py",  # the setup's prewarm, and the notebook checker's runner
    "tools/preload.py",  # the kernel launcher's preload
]
# From tools/release/: the student's own versions (release path <- template, mode).
TEMPLATED = {
    "Makefile": ("Makefile", 0o644),
    "README.md": ("README.md", 0o644),
    "scripts/test.sh": ("test.sh", 0o755),
    "tools/check.py": ("check.py", 0o755),
}
# Never in a release, whatever a listing says (build outputs and caches).
NEVER = re.compile(r"(^|/)(target|build|__pycache__|\.ipynb_checkpoints)(/|$)|\.pyc$|~$|\.swp$"
                   # the crate's integration tests: the instructors' (students run its unit tests)
                   r"|^crates/convlab/tests/")


class ReleaseError(RuntimeError):
    """A release that cannot be made as promised; the message names the file."""


@dataclass(frozen=True)
class Entry:
    path: str  # inside the release, with / separators
    data: bytes
    mode: int  # 0o644 or 0o755


def project_files(prefix: str) -> list[str]:
    """The files under `prefix` (a file or a folder) that git would carry: tracked and not
    deleted, or new and not ignored. Without git: every file, build outputs left out."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                              "--", prefix], cwd=ROOT, capture_output=True, check=True).stdout
        names = sorted({n for n in out.decode().split("\0") if n})
    except (OSError, subprocess.CalledProcessError):
        base = ROOT / prefix
        names = [prefix] if base.is_file() else sorted(
            p.relative_to(ROOT).as_posix() for p in base.rglob("*") if p.is_file())
    return [n for n in names if (ROOT / n).is_file() and not NEVER.search(n)]


def mode_of(path: Path) -> int:
    return 0o755 if os.access(path, os.X_OK) else 0o644


def student_notebooks(release_root: Path) -> list[Entry]:
    """Every notebook of notebooks/ in its student version, for notebooks/ of the release.

    student_version rewrites a `:dep` path from the answer notebook's folder to the output
    folder; the answer notebook is therefore handed over as if it sat in the release's
    notebooks/, so that `path = "../crates/convlab"` names the release's own crate."""
    sys.path.insert(0, str(ROOT / "tools"))
    from nbgrade import student_version

    out_dir = release_root / "notebooks"
    entries = []
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not sources:
        raise ReleaseError(f"no notebooks in {ROOT / 'notebooks'}")
    for src in sources:
        nb = student_version(nbformat.read(src, as_version=4), out_dir / src.name, out_dir)
        text = nbformat.writes(nb) + "\n"
        entries.append(Entry(f"notebooks/{src.name}", text.encode(), 0o644))
    return entries


def collect(release_root: Path) -> list[Entry]:
    """What the release holds, sorted by path."""
    entries: dict[str, Entry] = {}
    for item in COPIED:
        files = project_files(item)
        if not files:
            raise ReleaseError(f"{item} is missing from {ROOT}; the release needs it")
        for name in files:
            src = ROOT / name
            entries[name] = Entry(name, src.read_bytes(), mode_of(src))
    for target, (template, mode) in TEMPLATED.items():
        src = TEMPLATES / template
        if not src.is_file():
            raise ReleaseError(f"the template {src} is missing")
        entries[target] = Entry(target, src.read_bytes(), mode)
    for e in student_notebooks(release_root):
        entries[e.path] = e
    return [entries[k] for k in sorted(entries)]


DEP = re.compile(r'^\s*:dep\s+[\w-]+\s*=\s*\{.*?\bpath\s*=\s*"([^"]+)"')
MARKERS = re.compile(r"//\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)")


def check(entries: list[Entry], release_root: Path) -> None:
    """The release's own promises, checked before anything is written: no exercise markers
    anywhere, and each notebook's `:dep` path names a crate inside the release."""
    paths = {e.path for e in entries}
    for e in entries:
        text = e.data.decode("utf-8", errors="replace")
        if MARKERS.search(text):
            raise ReleaseError(f"{e.path} contains an exercise marker ({MARKERS.search(text).group(0)})")
        if e.path.endswith(".ipynb"):
            for cell in json.loads(text)["cells"]:
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                for line in source.splitlines():
                    m = DEP.match(line)
                    if not m:
                        continue
                    # `${CONVLAB_CRATE}`: the release's env.sh sets it to its own crates/convlab
                    where = m.group(1).replace("${CONVLAB_CRATE}", "/crates/convlab")
                    base = Path(".") if where.startswith("/") else Path(e.path).parent
                    crate = os.path.normpath(base / where.lstrip("/")).replace(os.sep, "/")
                    if f"{crate}/Cargo.toml" not in paths:
                        raise ReleaseError(f"{e.path}: `{line.strip()}` names {crate}, which is not "
                                           "a crate of the release")


def source_date_epoch() -> int:
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        return int(out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return FALLBACK_EPOCH


def tarball(entries: list[Entry], mtime: int) -> bytes:
    """The entries under NAME/, folders included, as reproducible .tar.gz bytes."""
    folders = set()
    for e in entries:
        parts = e.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    items = [(f, None) for f in folders] + [(e.path, e) for e in entries]
    items.sort(key=lambda item: item[0])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        top = tarfile.TarInfo(NAME)
        tar.addfile(_fixed(top, tarfile.DIRTYPE, 0o755, mtime))
        for path, e in items:
            info = tarfile.TarInfo(f"{NAME}/{path}")
            if e is None:
                tar.addfile(_fixed(info, tarfile.DIRTYPE, 0o755, mtime))
            else:
                info.size = len(e.data)
                tar.addfile(_fixed(info, tarfile.REGTYPE, e.mode, mtime), io.BytesIO(e.data))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, compresslevel=9, mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def _fixed(info: tarfile.TarInfo, kind: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    info.type = kind
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build(out: Path = DEFAULT_OUT, log=print) -> tuple[Path, Path]:
    """Writes OUT/NAME/ and OUT/NAME.tar.gz afresh; returns both paths."""
    out = out.resolve()
    folder = out / NAME
    entries = collect(folder)
    check(entries, folder)
    shutil.rmtree(folder, ignore_errors=True)
    for e in entries:
        target = folder / e.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(e.data)
        target.chmod(e.mode)
    archive = out / f"{NAME}.tar.gz"
    archive.write_bytes(tarball(entries, source_date_epoch()))
    size = sum(len(e.data) for e in entries)
    log(f"release: {len(entries)} files ({size / 1024:.0f} KiB) in {folder}")
    log(f"release: {archive} ({archive.stat().st_size / 1024:.0f} KiB)")
    return folder, archive


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write (default build/release)")
    args = ap.parse_args(argv)
    try:
        build(args.out)
    except (ReleaseError, ValueError) as e:  # ValueError: nbgrade.SourceError
        print(f"release: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
