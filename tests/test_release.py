"""The student release (`make release`, tools/release.py) carries no answer.

**What counts as an answer line.** From each answer notebook in notebooks/: every line inside
a `// BEGIN SOLUTION` … `// END SOLUTION` region of a solution cell, the whole text of a
written-answer (markdown) solution cell without such a region (the student version blanks
all of it), and every line inside `// BEGIN HIDDEN TESTS` … `// END HIDDEN TESTS` of a test
cell. Each line is stripped and its runs of white space made one space; it is left out when it
is blank, a comment only (`//`), punctuation only (`}`, `});`), shorter than 12 non-space
characters (`f`, `out`: too common to mean anything), a lone name (`filtered_image`:
the value a block returns), one of the few Rust idioms in COMMON_LINES (each with its reason),
or when it occurs in the student version of the same notebook (set-up code that both versions
show, e.g. a visible test line repeated in the hidden part).

**What counts as a leak.** An answer line that occurs inside any line of any file of the
release — the folder and every member of the .tar.gz — with that line's white space
normalised the same way; JSON files (the notebooks) are read both as text and as the strings
they hold, so an answer cannot hide behind JSON escapes.

`test_the_checker_finds_a_planted_answer_line` shows the check can fail. The slow test then
runs the release's notebook 1, unanswered, with this project's `rust` kernel in a private
copy of the prewarmed build folder: it must run to its end, every exercise failing with its
todo!() message, and score 0 when graded against the answer notebook.
"""
from __future__ import annotations

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
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))

import nbgrade  # noqa: E402
import release  # noqa: E402

MIN_CHARS = 12
SPACE = re.compile(r"\s+")
WORDLESS = re.compile(r"^[^0-9A-Za-z]*$")
LONE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*;?$")
# Answer lines that are idioms any Rust file may hold: no answer can be read from them.
COMMON_LINES = {
    "..Default::default()": "struct update syntax: the other fields keep their defaults",
    "tch::manual_seed(1);": "seeds libtorch's random generator",
    "let mut channels = 3;": "a channel counter that starts at the 3 colour channels",
}


def normalise(line: str) -> str:
    return SPACE.sub(" ", line.strip())


def region_lines(source: str, begin, end) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if begin.match(line):
            inside = True
        elif end.match(line):
            inside = False
        elif inside:
            lines.append(line)
    return lines


@dataclass(frozen=True)
class Secret:
    text: str  # normalised
    where: str  # notebook, cell and kind


def answer_lines(answer_path: Path) -> list[Secret]:
    """The answer lines of one answer notebook, by the rule in this module's docstring."""
    answer = nbformat.read(answer_path, as_version=4)
    student = nbgrade.student_version(answer, answer_path, nbgrade.STUDENT_DIR)
    shown = "\n".join(normalise(l) for c in student.cells for l in c.source.splitlines())
    found: dict[str, Secret] = {}
    for i, cell in enumerate(answer.cells):
        where = f"{answer_path.name}, cell {i}"
        raw: list[tuple[str, str]] = []
        if nbgrade.is_solution(cell):
            if cell.cell_type == "code" or "BEGIN SOLUTION" in cell.source:
                begin = nbgrade.BEGIN_SOLUTION if cell.cell_type == "code" else re.compile(r".*BEGIN SOLUTION")
                end = nbgrade.END_SOLUTION if cell.cell_type == "code" else re.compile(r".*END SOLUTION")
                raw += [(l, "solution") for l in region_lines(cell.source, begin, end)]
            else:
                raw += [(l, "written answer") for l in cell.source.splitlines()]
        if nbgrade.is_test(cell):
            raw += [(l, "hidden test")
                    for l in region_lines(cell.source, nbgrade.BEGIN_HIDDEN, nbgrade.END_HIDDEN)]
        for line, kind in raw:
            text = normalise(line)
            if (text.startswith("//") or WORDLESS.match(text) or LONE_NAME.match(text)
                    or len(text.replace(" ", "")) < MIN_CHARS or text in COMMON_LINES or text in shown):
                continue
            found.setdefault(text, Secret(text, f"{where} ({kind})"))
    return list(found.values())


def all_answer_lines() -> list[Secret]:
    secrets = []
    for src in nbgrade.exercise_sources():
        secrets += answer_lines(src)
    return secrets


def texts_of(name: str, data: bytes):
    """(name, text) views of a file: its text, the strings of a JSON file, the members of a
    tar (.tar.gz, .tgz, .tar) archive."""
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    yield from texts_of(f"{name}!{member.name}", tar.extractfile(member).read())
        return
    text = data.decode("utf-8", errors="replace")
    yield name, text
    if name.endswith((".ipynb", ".json")):
        try:
            doc = json.loads(text)
        except ValueError:
            return
        strings: list[str] = []

        def walk(v):
            if isinstance(v, str):
                strings.append(v)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
            elif isinstance(v, dict):
                for k, x in v.items():
                    strings.append(k)
                    walk(x)
        walk(doc)
        yield f"{name} (JSON strings)", "".join(s if s.endswith("\n") else s + "\n" for s in strings)


def find_leaks(release_files: list[Path], base: Path, secrets: list[Secret]) -> list[str]:
    """'file:line: answer line (where it comes from)' for every answer line in the files."""
    leaks = []
    for path in release_files:
        for name, text in texts_of(path.relative_to(base).as_posix(), path.read_bytes()):
            for number, line in enumerate(text.splitlines(), 1):
                line = normalise(line)
                if len(line.replace(" ", "")) < MIN_CHARS:
                    continue
                for s in secrets:
                    if s.text in line:
                        leaks.append(f"{name}:{number}: {s.text!r} ({s.where})")
    return leaks


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A release built into a temporary folder: OUT/convlab-student/ and the .tar.gz."""
    out = tmp_path_factory.mktemp("release")
    release.build(out, log=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def secrets() -> list[Secret]:
    found = all_answer_lines()
    assert len(found) >= 40, f"only {len(found)} answer lines found: has the exercise markup changed?"
    return found


def test_no_answer_line_anywhere_in_the_release(built, secrets):
    leaks = find_leaks(files_under(built), built, secrets)
    # one line per place: the folder and the tarball normally hold the same files
    tar_prefix = f"{release.NAME}.tar.gz!"
    places: dict[str, list[str]] = {}
    for leak in leaks:
        where = "tarball" if leak.startswith(tar_prefix) else "folder"
        places.setdefault(leak.removeprefix(tar_prefix), []).append(where)
    report = [f"{leak}   [{' and '.join(w)}]" for leak, w in places.items()]
    assert not leaks, (f"{len(report)} answer lines in the student release (file:line: answer line "
                       "(its notebook and cell)):\n" + "\n".join(report[:80])
                       + (f"\n… and {len(report) - 80} more" if len(report) > 80 else ""))


def test_the_checker_finds_a_planted_answer_line(built, secrets, tmp_path):
    """The check above can fail: one answer line copied into a crate file of a built release,
    in the folder and in the tarball, is reported with the file it is in."""
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    planted = next(s for s in secrets if "convolve" in s.where or "multiply" in s.text)
    target = copy / release.NAME / "crates" / "convlab" / "src" / "lib.rs"
    target.write_text(target.read_text() + "\n    " + planted.text + "   // planted\n")
    leaks = find_leaks(files_under(copy), copy, [planted])
    assert any(l.startswith(f"{release.NAME}/crates/convlab/src/lib.rs:") for l in leaks), leaks
    # the same line inside the tarball, with white space spread differently
    archive = copy / f"{release.NAME}.tar.gz"
    data = archive.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for m, body in members:
            if m.name.endswith("/src/lib.rs"):
                body += ("\n" + planted.text.replace(" ", "\t  ") + "\n").encode()
                m.size = len(body)
            tar.addfile(m, io.BytesIO(body) if body is not None else None)
    archive.write_bytes(buf.getvalue())
    leaks = find_leaks([archive], copy, [planted])
    assert any(f"convlab-student.tar.gz!{release.NAME}/crates/convlab/src/lib.rs:" in l for l in leaks), leaks
    # and a notebook that shows an answer in a cell is caught through its JSON as well
    nb_path = copy / release.NAME / "notebooks" / "01-convolutions.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[-1].source += '\nlet s = "' + planted.text + '";'
    nbformat.write(nb, nb_path)
    assert find_leaks([nb_path], copy, [planted])


def test_answer_lines_follow_the_rule():
    """The rule's edges on one notebook: a solution line and a hidden-test line are in; a
    comment, a short line and a line the student version shows too are out."""
    secrets = {s.text: s for s in answer_lines(ROOT / "notebooks" / "01-convolutions.ipynb")}
    assert "assert_eq!(patch.shape(), filter.shape(), \"patch and filter must have the same shape\");" in secrets
    assert any("hidden test" in s.where for s in secrets.values())
    assert not any(t.startswith("//") for t in secrets)
    assert "let mut f = Array3::<f32>::zeros((3, 3, 3));" in secrets
    assert "f" not in secrets  # too short
    assert "filtered_image" not in secrets  # a lone name
    assert "horizontal.t().to_owned()" in secrets
    assert all(len(t.replace(" ", "")) >= MIN_CHARS for t in secrets)
    student = nbgrade.student_version(nbformat.read(ROOT / "notebooks" / "01-convolutions.ipynb", as_version=4),
                                      ROOT / "notebooks" / "01-convolutions.ipynb", nbgrade.STUDENT_DIR)
    shown = {normalise(l) for c in student.cells for l in c.source.splitlines()}
    assert not (set(secrets) & shown)


def test_the_release_holds_what_a_student_needs_and_nothing_of_the_instructor(built):
    folder = built / release.NAME
    names = {p.relative_to(folder).as_posix() for p in files_under(folder)}
    for need in ["Makefile", "README.md", "Cargo.toml", "Cargo.lock", "crates/convlab/Cargo.toml",
                 "crates/convlab/src/lib.rs", "scripts/setup.sh", "scripts/env.sh", "scripts/steps.sh",
                 "scripts/rust-kernel", "scripts/convlab", "scripts/test.sh", "tools/nbrun.py",
                 "tools/preload.py", "tools/check.py", "requirements.txt", "environment.yml",
                 "data/README.md", "notebooks/01-convolutions.ipynb", "notebooks/02-vgg16.ipynb",
                 "notebooks/03-cifar10.ipynb"]:
        assert need in names, f"{need} is missing from the release"
    banned = [n for n in names if n.startswith(("tests/", "docs/", ".ci/", "bench/", "notebooks/student/",
                                                "build/", "target/"))
              or n in ("tools/nbgrade.py", "BENCHMARKS.md") or "__pycache__" in n
              or (n.startswith("data/") and n != "data/README.md")]
    assert not banned, f"instructor or build files in the release: {banned}"
    for name in ("Makefile", "README.md"):
        text = (folder / name).read_text()
        assert not re.search(r"grad(e|ing)|hidden|nbgrade|solution", text, re.I), \
            f"the student {name} speaks of grading: {re.findall(r'.{30}(?:grad|hidden|solution).{30}', text, re.I)}"
    for nb in ("01-convolutions", "02-vgg16", "03-cifar10"):
        text = (folder / "notebooks" / f"{nb}.ipynb").read_text()
        assert '"../crates/convlab"' in text.replace('\\"', '"'), f"{nb}: its :dep does not name the release's crate"
    assert os.access(folder / "scripts" / "test.sh", os.X_OK)


def test_the_tarball_is_the_folder_and_reproducible(built, tmp_path):
    folder = built / release.NAME
    archive = (built / f"{release.NAME}.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names) and names[0] == release.NAME
        assert {m.uid for m in members} == {0} and {m.uname for m in members} == {""}
        assert len({m.mtime for m in members}) == 1
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in members if m.isfile()}
    assert files == {p.relative_to(folder).as_posix(): p.read_bytes() for p in files_under(folder)}
    again = tmp_path / "again"
    release.build(again, log=lambda *a: None)
    assert (again / f"{release.NAME}.tar.gz").read_bytes() == archive, "two builds gave different tarballs"
