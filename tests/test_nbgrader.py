"""The course in nbgrader, unchanged: nbgrader 0.9.6 in an environment of its own runs its whole
cycle on notebook 1 (validate, generate_assignment, autograde, generate_feedback, export) with the
course's preprocessors (tools/grading/nbgrader_plugin.py) and no shim, on four submissions whose
scores are exact; the release it generates is notebooks/student/ but for the stubs' wording."""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from nbgrade_helpers import ROOT, cell_by_id, edit, kernel_ready, nbgrade

NBGRADER = "nbgrader==0.9.6"
VENV = nbgrade.CACHE / "nbgrader-venv"
NB1 = nbgrade.NOTEBOOKS / "01-convolutions.ipynb"
FULL = {"test-multiply-sum": 2, "test-convolve-size": 2, "test-convolve-reference": 3, "test-vertical-filter": 1,
        "test-transpose": 1, "test-shoulder-filter": 2, "test-brown-transpose": 1}
EXPECTED = {
    "correct": FULL,
    "unanswered": {k: 0 for k in FULL},
    # multiply_sum does not compile: it and the convolve that calls it lose, the rest is scored
    "no_compile": dict(FULL, **{"test-multiply-sum": 0, "test-convolve-size": 0, "test-convolve-reference": 0}),
    # convolve calls the crate's reference: the own-work rule, inside nbgrader
    "calls_reference": dict(FULL, **{"test-convolve-size": 0, "test-convolve-reference": 0}),
}


def nbgrader_env() -> Path:
    """nbgrader in an environment of its own ($CONVLAB_CACHE/nbgrader-venv), installed once."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".convlab-nbgrader"
    if not (python.exists() and stamp.exists() and stamp.read_text() == NBGRADER):
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", NBGRADER],
                       check=True, timeout=900)
        stamp.write_text(NBGRADER)
    return VENV


CONFIG = """\
import sys
sys.path.insert(0, {tools!r})
from nbgrader.preprocessors import *  # noqa: F401,F403
from nbconvert.preprocessors import ClearMetadataPreprocessor
from grading.nbgrader_plugin import ConvlabChecks, ConvlabVerdicts

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "convlab"
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_assignments = [dict(name="ps1")]
c.CourseDirectory.db_students = [dict(id=s) for s in {students!r}]
c.ClearSolutions.code_stub = {{"rust": "// YOUR CODE HERE\\ntodo!(\\"write your code here\\");"}}
c.Execute.timeout = 300
c.Execute.startup_timeout = 300
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
                                      CheckCellMetadata, ConvlabChecks]
c.Autograde.autograde_preprocessors = [Execute, ConvlabVerdicts, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
"""

SCORES = """\
import json, sys
from nbgrader.api import Gradebook
with Gradebook("sqlite:///" + sys.argv[1] + "/gradebook.db") as gb:
    out = {}
    for s in sys.argv[2:]:
        nb = gb.find_submission_notebook("01-convolutions", "ps1", s)
        out[s] = {g.name: g.auto_score for g in nb.grades if g.cell_type == "code"}
print(json.dumps(out))
"""


def run(venv: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JUPYTER_PATH": str(nbgrade.CACHE / "venv" / "share" / "jupyter"),
           "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    env.pop("JPY_SESSION_NAME", None)
    res = subprocess.run([str(venv / "bin" / "nbgrader"), *args], cwd=root, env=env, capture_output=True,
                         text=True, timeout=1800)
    assert res.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res


def submission(release, answer, student: str):
    """A student's notebook: the released one with the answer cells filled in."""
    nb = copy.deepcopy(release)
    if student == "unanswered":
        return nb
    source = answer
    if student == "no_compile":
        source = edit(answer, "multiply-sum", "(patch * filter).sum()", "(patch * filter).sum() as f64")
    if student == "calls_reference":
        source = edit(answer, "convolve", "    let filter_height = filter.shape()[0];",
                      "    return convlab::conv::convolve(image, filter).unwrap();\n    #[allow(unreachable_code)]\n"
                      "    let filter_height = filter.shape()[0];")
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell.source = cell_by_id(source, gid).source
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    kernel_ready()
    venv = nbgrader_env()
    root = tmp_path_factory.mktemp("course")
    (root / "source" / "ps1").mkdir(parents=True)
    (root / "source" / "ps1" / NB1.name).write_text(NB1.read_text())
    (root / "nbgrader_config.py").write_text(CONFIG.format(tools=str(ROOT / "tools"), root=str(root),
                                                           students=sorted(EXPECTED)))
    run(venv, root, "validate", str(root / "source" / "ps1" / NB1.name))
    run(venv, root, "generate_assignment", "ps1", "--force")
    release = nbformat.read(root / "release" / "ps1" / NB1.name, as_version=4)
    answer = nbformat.read(NB1, as_version=4)
    for student in EXPECTED:
        folder = root / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        nbformat.write(submission(release, answer, student), folder / NB1.name)
        (folder / "timestamp.txt").write_text("2026-12-04 12:00:00.000000 UTC")
    autograde = run(venv, root, "autograde", "ps1", "--force")
    run(venv, root, "generate_feedback", "ps1", "--force")
    run(venv, root, "export")
    scores = subprocess.run([str(venv / "bin" / "python"), "-c", SCORES, str(root), *EXPECTED],
                            capture_output=True, text=True, check=True)
    return root, json.loads(scores.stdout), autograde.stdout + autograde.stderr


def test_nbgrader_cycle_gives_the_exact_scores(course):
    root, scores, log = course
    assert "Removing failed assignment" not in log, log[-3000:]
    assert scores == EXPECTED, scores


def test_nbgrader_feedback_and_export(course):
    root, _, _ = course
    for student in EXPECTED:
        assert (root / "feedback" / student / "ps1" / "01-convolutions.html").exists(), student
    export = (root / "grades.csv").read_text()
    assert "correct" in export and "calls_reference" in export
    fb = (root / "feedback" / "calls_reference" / "ps1" / "01-convolutions.html").read_text()
    assert "write convolve yourself" in fb and "convlab::conv" in fb


def test_the_kernel_spec_survives_nbgrader(course):
    """JUPYTER_PATH names the course's kernel folder: evcxr_jupyter did not install itself over it."""
    spec = json.loads((nbgrade.CACHE / "venv" / "share" / "jupyter" / "kernels" / "rust" / "kernel.json").read_text())
    assert spec["argv"][0].endswith("scripts/rust-kernel"), spec


def _normalised(nb) -> list[tuple[str, str, str]]:
    """(type, id, source) of each cell, the stubs of both generators written alike."""
    out = []
    for cell in nb.cells:
        src = re.sub(r"// YOUR CODE HERE[^\n]*\n\s*todo!\([^\n]*\);", "<stub>", cell.source)
        out.append((cell.cell_type, cell.get("id", ""), src))
    return out


def test_generate_assignment_release_is_the_student_notebook(course):
    root, _, _ = course
    release = nbformat.read(root / "release" / "ps1" / NB1.name, as_version=4)
    student = nbformat.read(nbgrade.STUDENT_DIR / NB1.name, as_version=4)
    assert _normalised(release) == _normalised(student)


def test_config_in_the_docs_is_the_one_tested():
    """docs/grading.md shows an instructor the two lists this test configures."""
    docs = (ROOT / "docs" / "grading.md").read_text()
    for line in ("c.Autograde.sanitize_preprocessors", "ConvlabChecks]", "c.Autograde.autograde_preprocessors",
                 "[Execute, ConvlabVerdicts,"):
        assert line in docs, line
    assert textwrap.dedent("from grading.nbgrader_plugin import ConvlabChecks, ConvlabVerdicts") in docs
