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
    planted = next(s for s in secrets if s.where.endswith("(solution)"))
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
    # every file of scripts/ that the setup names (the kernel's build script and its changes)
    named = set(re.findall(r"scripts/[\w.-]+\w", (folder / "scripts" / "setup.sh").read_text()))
    assert named and not named - names, f"the setup needs {sorted(named - names)}, not in the release"
    banned = [n for n in names if n.startswith(("tests/", "docs/", ".ci/", "bench/", "notebooks/student/", "crates/convlab/tests/",
                                                "build/", "target/"))
              or n in ("tools/nbgrade.py", "BENCHMARKS.md") or "__pycache__" in n
              or (n.startswith("data/") and n != "data/README.md")]
    assert not banned, f"instructor or build files in the release: {banned}"
    for name in ("Makefile", "README.md"):
        text = (folder / name).read_text()
        assert not re.search(r"grad(e|ing)|hidden|nbgrade|solution", text, re.I), \
            f"the student {name} speaks of grading: {re.findall(r'.{30}(?:grad|hidden|solution).{30}', text, re.I)}"
    # each notebook is exactly the student version of its answer notebook, written for its place
    answers = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(n.removeprefix("notebooks/") for n in names if n.startswith("notebooks/")) == answers
    for name in answers:
        path = folder / "notebooks" / name
        want = nbgrade.student_version(nbformat.read(ROOT / "notebooks" / name, as_version=4), path, path.parent)
        assert path.read_text() == nbformat.writes(want) + "\n", f"{name} is not the student version"
        deps = [l for c in want.cells for l in c.source.splitlines() if l.strip().startswith(":dep convlab")]
        assert deps and all('path = "${CONVLAB_CRATE}"' in l for l in deps), f"{name}: {deps}"
    assert os.access(folder / "scripts" / "test.sh", os.X_OK)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_student_test_script_passes_shellcheck(built):
    folder = built / release.NAME
    res = subprocess.run(["shellcheck", "-P", "SCRIPTDIR", "-x", "scripts/test.sh"], cwd=folder,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


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
    # Two builds give the same bytes. Others may edit or commit in this checkout meanwhile: two
    # tarballs of different contents are built again; the same contents must be the same bytes.
    for attempt in range(3):
        first, second = (release.build(tmp_path / f"{attempt}-{k}", log=lambda *a: None)[1].read_bytes()
                         for k in "ab")
        if first == second:
            break
        assert members(first) != members(second), "the same files gave two different tarballs"
    else:
        pytest.fail("the project changed during each of 3 pairs of builds; run the test again")


def members(archive: bytes) -> set:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {(m.name, m.mode, m.mtime, m.uid, m.gid, tar.extractfile(m).read() if m.isfile() else b"")
                for m in tar.getmembers()}


# ---------------------------------------------------------------------------------------------
# The release's notebook 1, unanswered, with this project's kernel

CACHE = Path(os.environ.get("CONVLAB_CACHE", Path.home() / ".cache" / "convlab"))


def private_build_folder(parent: Path, name: str) -> Path:
    """A copy of the prewarmed seed that no other kernel uses (two kernels must never share a
    build folder). It lives below $CONVLAB_CACHE, whose .cargo/config.toml keeps the
    dependencies optimised as in the seed: elsewhere cargo would compile them all again."""
    import fcntl
    folder = parent / name
    seed = Path(os.environ.get("CONVLAB_EVCXR_SEED", CACHE / "evcxr-seed"))
    if not (seed / "target").is_dir():
        folder.mkdir()
        return folder
    # as scripts/rust-kernel does: copy under the seed's shared lock (the setup holds it
    # exclusively while it prewarms)
    with open(seed.with_name(seed.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        subprocess.run(["cp", "-a", str(seed), str(folder)], check=True)
    return folder


@pytest.fixture
def private_cache_dir():
    """A folder below $CONVLAB_CACHE for this test's build folders, removed afterwards."""
    import tempfile
    CACHE.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="evcxr-release-test-", dir=CACHE))
    yield folder
    # Some 5 GB of build folders take the disk a minute to free: renamed at once (no kernel
    # can find them), removed in the background while the next tests run.
    trash = folder.with_name(folder.name.replace("evcxr-release-test-", "evcxr-release-trash-"))
    folder.rename(trash)
    subprocess.Popen(["rm", "-rf", str(trash)], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_the_release_notebook_1_runs_unanswered_to_its_end_and_scores_0(built, private_cache_dir, tmp_path):
    """What a student who has not started gets: `make test`'s notebook check runs notebook 1
    from the release to its end (every code cell, with the release's own crate), every
    exercise failing with its todo!() message and no test ✓; graded against the answer
    notebook, the same file scores 0 of the maximum. Both run at once, each with its own
    build folder."""
    from nbgrade_helpers import kernel_ready
    kernel_ready()
    folder = built / release.NAME
    notebook = folder / "notebooks" / "01-convolutions.ipynb"
    answer = ROOT / "notebooks" / "01-convolutions.ipynb"
    env = {**os.environ, "EVCXR_TMPDIR": str(private_build_folder(private_cache_dir, "run"))}
    if not env.get("CONVLAB_DATA_MIRROR") and (ROOT / "data" / "grace_hopper.jpg").is_file():
        env["CONVLAB_DATA_MIRROR"] = str(ROOT / "data")  # the release's data/ has no pictures
    executed = tmp_path / "executed"
    check = subprocess.Popen([sys.executable, str(folder / "tools" / "check.py"), "01", "--out", str(executed)],
                             cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # Meanwhile: grade the unanswered notebook, as handed in, against the answer notebook.
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(notebook, submissions / "nobody.ipynb")
    grade_base = private_cache_dir / "grade"
    grading_error = None
    try:
        graded = nbgrade.grade_class(submissions, answer, tmp_path / "grades", workers=1, html=False,
                                     build_base=grade_base, log=lambda *a: None)
    except Exception as e:  # reported after the notebook check, which is this test's first point
        grading_error = e
    try:
        report, _ = check.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        check.kill()
        report, _ = check.communicate()
        pytest.fail(f"the release's notebook check ran past 15 minutes:\n{report[-3000:]}")

    # 1. It ran to its end, and said so.
    assert check.returncode == 0, f"tools/check.py of the release failed:\n{report[-4000:]}"
    ran = nbformat.read(executed / notebook.name, as_version=4)
    source = nbformat.read(notebook, as_version=4)
    code = [i for i, c in enumerate(source.cells) if c.cell_type == "code"]
    assert len(ran.cells) == len(source.cells)
    not_run = [i for i in code if ran.cells[i].get("execution_count") is None]
    assert not not_run, f"code cells that did not run: {not_run}\n{report[-3000:]}"
    # 2. Every exercise fails with its todo!() message; no test passes.
    stderr = "".join(o.get("text", "") for c in ran.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("name") == "stderr")
    exercises = [nbgrade.grade_id(c) for c in source.cells if nbgrade.is_solution(c) and c.cell_type == "code"]
    assert len(exercises) >= 5
    silent = [g for g in exercises if f"not yet implemented: {g}:" not in stderr]
    assert not silent, f"exercises whose todo!() never reported: {silent}\n{report[-3000:]}"
    tests = [nbgrade.grade_id(c) for c in source.cells if nbgrade.is_test(c)]
    assert f"0 of {len(tests)} test cells pass" in report, report[-3000:]
    for gid in tests:
        assert f"✗ {gid}: " in report, f"{gid} is not listed as failed:\n{report[-3000:]}"
    # 3. Graded against the answer notebook: 0 of the maximum.
    if grading_error is not None:
        pytest.fail("GRADING BROKE (tools/nbgrade.py's grade_class, not the release): "
                    f"{type(grading_error).__name__}: {grading_error}")
    [g] = graded
    points = {r.exercise: r.points for r in g.rows}
    assert sorted(points) == sorted(tests), f"graded {sorted(points)}, the notebook's tests are {sorted(tests)}"
    assert sum(r.max for r in g.rows) > 0
    assert sum(points.values()) == 0, f"an unanswered notebook scored {points}"
