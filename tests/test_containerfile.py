"""The course image's recipe (Containerfile, docs/deploy.md), read without building it: what
JupyterHub and Binder expect of an image, the rules the issue set for this one, and the
entry point that puts the notebooks in a home folder. `make test-image` builds nothing either:
it checks a built image; `make image` builds it.

Each rule is a function of the recipe's text that returns what is wrong, so that the test of
the real recipe is joined by tests of recipes broken on purpose, one rule at a time: a rule
that could not fail would be caught here.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTAINERFILE = ROOT / "Containerfile"
DOCKERFILE = ROOT / "Dockerfile"
START = ROOT / "image" / "start"


@dataclass
class Instruction:
    keyword: str  # FROM, RUN, ... (upper case)
    args: str  # the rest, continuation lines joined
    line: int  # where it starts, 1-based


def parse(text: str) -> list[Instruction]:
    """The recipe's instructions, comments dropped and `\\` continuations joined (the syntax of
    Containerfiles without heredocs, which this recipe does not use)."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(part.strip() for part in pending if part.strip())
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions grouped by stage (each list starts with its FROM); global ARGs before
    the first FROM form a stage of their own, first."""
    groups: list[list[Instruction]] = [[]]
    for ins in instructions:
        if ins.keyword == "FROM":
            groups.append([])
        groups[-1].append(ins)
    return groups


def env_values(stage: list[Instruction]) -> dict[str, str]:
    """The stage's ENV settings (`ENV A=1 B=2` and `ENV A 1`), later ones winning."""
    values: dict[str, str] = {}
    for ins in stage:
        if ins.keyword != "ENV":
            continue
        words = shlex.split(ins.args)
        if words and "=" not in words[0]:
            values[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            name, _, value = word.partition("=")
            values[name] = value
    return values


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    values = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            values[name.strip()] = value.strip()
    return values


def expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), value)


# ------------------------------------------------------------------------------------------
# The rules; each returns a list of problems (empty: the rule holds)


def rule_base_is_an_argument(text: str) -> list[str]:
    """The final image starts FROM ${BASE}, an ARG declared before any FROM whose default is a
    Debian image (debian:bookworm-slim on a normal machine)."""
    instructions = parse(text)
    groups = stages(instructions)
    problems = []
    defaults = arg_defaults(groups[0])
    if not defaults.get("BASE", "").startswith("debian:"):
        problems.append("no `ARG BASE=debian:...` before the first FROM")
    final_from = groups[-1][0].args.split()[0] if len(groups) > 1 else ""
    if final_from not in ("${BASE}", "$BASE"):
        problems.append(f"the final stage starts FROM {final_from!r}, not FROM ${{BASE}}")
    for group in groups[1:]:
        image = group[0].args.split()[0]
        named = {g[0].args.split()[-1] for g in groups[1:] if " AS " in g[0].args.upper()}
        if image not in ("${BASE}", "$BASE") and image not in named and not image.startswith("rust-$"):
            problems.append(f"line {group[0].line}: FROM {image} is neither ${{BASE}} nor a stage")
    return problems


def rule_student_user_and_port(text: str) -> list[str]:
    """The last USER is uid 1000 (jovyan, the name JupyterHub and Binder use), and JupyterLab
    on port 8888 is the default command."""
    instructions = parse(text)
    final = stages(instructions)[-1]
    defaults = arg_defaults(final)
    problems = []
    users = [expand(i.args, defaults) for i in final if i.keyword == "USER"]
    if not users or users[-1] not in ("1000", "jovyan"):
        problems.append(f"the last USER is {users[-1] if users else None!r}, not 1000 (jovyan)")
    if defaults.get("NB_USER") != "jovyan" or defaults.get("NB_UID") != "1000":
        problems.append("NB_USER/NB_UID do not default to jovyan/1000")
    if "useradd" not in text or "--uid" not in text:
        problems.append("no account is made with useradd --uid")
    exposed = [i.args for i in final if i.keyword == "EXPOSE"]
    if "8888" not in " ".join(exposed):
        problems.append("port 8888 is not exposed")
    cmd = [i.args for i in final if i.keyword == "CMD"]
    if not cmd or not re.search(r'"jupyter",\s*"lab"', cmd[-1]) or "--port=8888" not in cmd[-1] \
            or "--ip=0.0.0.0" not in cmd[-1]:
        problems.append(f"the default command is not JupyterLab on 0.0.0.0:8888: {cmd[-1] if cmd else None}")
    if env_values(final).get("HOME") != "/home/${NB_USER}" and env_values(final).get("HOME") != "/home/jovyan":
        problems.append("HOME is not the student's /home folder")
    return problems


def rule_setup_is_called_not_copied(text: str) -> list[str]:
    """The installing is done by scripts/setup.sh, not by a second copy of its steps."""
    runs = [i.args for i in parse(text) if i.keyword == "RUN"]
    problems = []
    if not any(re.search(r"scripts/setup\.sh(\s|$)(?!\S*--)", r) or r.rstrip().endswith("scripts/setup.sh")
               for r in runs):
        problems.append("no RUN calls scripts/setup.sh (without options) to finish the setup")
    copies = {
        r"pip\S* install[^&|;]*-r\s+\S*/?requirements\.txt(?!\s*-c)": "installs requirements.txt itself",
        r"build-evcxr\.sh": "builds evcxr itself",
        r"cargo\s+install": "installs a crate with cargo itself",
        r"nbrun\.py\s+--prewarm": "prewarms the kernel itself",
        r"kernel\.json": "writes the kernel's spec itself",
        r"fetch-data": "fetches the pictures itself",
    }
    for pattern, what in copies.items():
        for r in runs:
            if re.search(pattern, r):
                problems.append(f"a RUN {what} (that is setup.sh's)")
    return problems


def rule_caches_outside_home_and_read_only(text: str) -> list[str]:
    """The prebuilt caches live outside $HOME (JupyterHub mounts the student's volume over it),
    the build folders of the kernels in a writable place apart from them, and the student is
    made the user only after the caches were built (so they belong to root)."""
    final = stages(parse(text))[-1]
    env = env_values(final)
    problems = []
    for name in ("CONVLAB_CACHE", "CARGO_HOME"):
        value = env.get(name, "")
        if not value.startswith("/opt/"):
            problems.append(f"{name}={value!r} is not a folder of its own outside the home folder")
    pool = env.get("CONVLAB_EVCXR_POOL", "")
    cache = env.get("CONVLAB_CACHE", "")
    if not pool.startswith("/tmp/") or (cache and pool.startswith(cache)):
        problems.append(f"CONVLAB_EVCXR_POOL={pool!r} is not a writable place apart from the caches")
    keywords = [i.keyword for i in final]
    first_user = keywords.index("USER") if "USER" in keywords else len(keywords)
    setup_runs = [n for n, i in enumerate(final) if i.keyword == "RUN" and "setup.sh" in i.args]
    if not setup_runs or max(setup_runs) > first_user:
        problems.append("setup.sh does not run as root before USER: the caches would be the student's")
    if re.search(r"chown\b[^\n]*(/opt/convlab|\$CONVLAB_CACHE)", text) or "chmod -R a+w" in text:
        problems.append("the caches are handed to the student (chown/chmod a+w)")
    return problems


CERT_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
            "CARGO_HTTP_CAINFO", "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS")


def rule_no_certificate_baked_in(text: str) -> list[str]:
    """A CA bundle reaches the download steps as a build secret, mounted for the step alone:
    no COPY/ADD of a certificate, no ENV or ARG naming one."""
    problems = []
    for ins in parse(text):
        if ins.keyword in ("COPY", "ADD") and re.search(r"\.(crt|pem|cer)\b|ca-certificates|/certs?\b", ins.args):
            problems.append(f"line {ins.line}: {ins.keyword} {ins.args} copies a certificate")
        if ins.keyword in ("ENV", "ARG"):
            for name in CERT_ENV:
                if re.search(rf"\b{name}\b", ins.args):
                    problems.append(f"line {ins.line}: {ins.keyword} sets {name}")
        if ins.keyword == "RUN" and "certs" in ins.args and "type=secret" not in ins.args \
                and "convlab-with-certs" not in ins.args:
            problems.append(f"line {ins.line}: RUN uses a certificate that is not a build secret")
    return problems


def rule_rust_from_rustup_or_the_host(text: str) -> list[str]:
    """One recipe for both places: RUST=rustup downloads the toolchain, RUST=host takes the
    build context host-rust; the toolchain stage is chosen by the argument."""
    instructions = parse(text)
    groups = stages(instructions)
    problems = []
    names = {g[0].args.split()[-1] for g in groups[1:]}
    for stage in ("rust-rustup", "rust-host"):
        if stage not in names:
            problems.append(f"no stage {stage}")
    if arg_defaults(groups[0]).get("RUST") != "rustup":
        problems.append("ARG RUST does not default to rustup")
    if not any(g[0].args.startswith("rust-${RUST}") for g in groups[1:]):
        problems.append("no `FROM rust-${RUST}` choosing the toolchain")
    host = [g for g in groups[1:] if g[0].args.split()[-1] == "rust-host"]
    if host and not any(i.keyword == "COPY" and "--from=host-rust" in i.args for i in host[0]):
        problems.append("the stage rust-host does not copy the build context host-rust")
    rustup = [g for g in groups[1:] if g[0].args.split()[-1] == "rust-rustup"]
    if rustup and not any("rust-src" in i.args for i in rustup[0]):
        problems.append("rustup does not install rust-src (evcxr's rust-analyzer reads it)")
    return problems


def rule_no_answer_in_the_image(text: str) -> list[str]:
    """The image takes from the build context (which .dockerignore keeps to the student
    release's files, see below) named folders and files, never the whole context nor a
    notebook other than the student ones."""
    problems = []
    for group in stages(parse(text))[1:]:
        for ins in group:
            if ins.keyword == "ADD":
                problems.append(f"line {ins.line}: ADD (COPY says what it takes)")
            if ins.keyword != "COPY" or "--from=" in ins.args:
                continue
            sources = [w for w in ins.args.split()[:-1] if not w.startswith("--")]
            for source in sources:
                if source in (".", "./", "*") or (source.startswith("notebooks")
                                                  and not source.startswith("notebooks/student/")):
                    problems.append(f"line {ins.line}: COPY {source} from the build context")
    return problems


RULES = [rule_base_is_an_argument, rule_student_user_and_port, rule_setup_is_called_not_copied,
         rule_caches_outside_home_and_read_only, rule_no_certificate_baked_in,
         rule_rust_from_rustup_or_the_host, rule_no_answer_in_the_image]


# ------------------------------------------------------------------------------------------
# The real recipe


def recipe() -> str:
    return CONTAINERFILE.read_text()


def test_containerfile_and_dockerfile_are_one_file():
    # Docker (and Binder) read Dockerfile, podman Containerfile first: a link, so they never
    # drift apart (BuildKit does not follow a Dockerfile that is itself a link).
    assert DOCKERFILE.is_file() and not DOCKERFILE.is_symlink(), "Dockerfile is the file itself"
    assert CONTAINERFILE.is_symlink() and os.readlink(CONTAINERFILE) == "Dockerfile"


@pytest.mark.parametrize("rule", RULES, ids=[r.__name__[5:] for r in RULES])
def test_the_recipe_keeps_the_rule(rule):
    assert rule(recipe()) == []


def test_the_pinned_rust_is_new_enough_for_the_crate():
    version = arg_defaults(stages(parse(recipe()))[0])["RUST_VERSION"]
    major, minor = (int(x) for x in version.split(".")[:2])
    assert (major, minor) >= (1, 88), "slice::as_chunks needs Rust 1.88 (setup.sh checks it too)"


def dockerignore_admits(patterns: list[str], path: str) -> bool:
    """Whether a build context with these .dockerignore lines holds `path` (the last pattern
    that matches the path, or a folder above it, decides; `!` lets in)."""
    def matches(pattern: str, name: str) -> bool:
        pattern = pattern.rstrip("/")
        if pattern.startswith("**/"):
            return any(fnmatch.fnmatchcase("/".join(name.split("/")[i:]), pattern[3:])
                       for i in range(name.count("/") + 1))
        return fnmatch.fnmatchcase(name, pattern)

    admitted = True
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for line in patterns:
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        if any(matches(pattern, prefix) for prefix in prefixes):
            admitted = negated
    return admitted


def context_files() -> set[str]:
    """The repository's files (tracked, or new and not ignored) that the build context holds."""
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {n for n in names if (ROOT / n).is_file() and dockerignore_admits(patterns, n)}


def test_the_build_context_holds_the_release_and_no_answer():
    sys.path.insert(0, str(ROOT / "tools"))
    import release  # the student release's list of files (tools/release.py)

    held = context_files()
    released = {n for item in release.COPIED for n in release.project_files(item)}
    not_needed = {"environment.yml", ".gitignore"}  # conda users' pins, git's list
    missing = released - held - not_needed
    assert not missing, f"the release holds {sorted(missing)}, the image's build context does not"
    student = {n for n in held if n.startswith("notebooks/student/") and n.endswith(".ipynb")}
    assert len(student) == 3, f"the student notebooks in the build context: {sorted(student)}"
    extra = {n for n in held - released - student if not n.startswith("image/")}
    assert not extra, f"the build context holds {sorted(extra)}, which the student release does not"
    for never in ("notebooks/01-convolutions.ipynb", "tools/nbgrade.py", "tests/conftest.py",
                  "crates/convlab/tests/vgg_torchvision.rs", "BENCHMARKS.md"):
        assert (ROOT / never).exists() and never not in held, f"{never} reaches the build"


def test_the_ignore_rules_are_read_as_docker_reads_them():
    rules = ["*", "!crates/convlab/", "crates/convlab/tests/", "!notebooks/student/*.ipynb", "**/target"]
    assert dockerignore_admits(rules, "crates/convlab/src/lib.rs")
    assert not dockerignore_admits(rules, "crates/convlab/tests/a.rs")
    assert not dockerignore_admits(rules, "crates/convlab/target/x")
    assert dockerignore_admits(rules, "notebooks/student/01.ipynb")
    assert not dockerignore_admits(rules, "notebooks/01.ipynb")
    assert not dockerignore_admits(rules, "README.md")


# ------------------------------------------------------------------------------------------
# Recipes broken on purpose: each rule finds its own mistake

BROKEN = [
    (rule_base_is_an_argument, "FROM ${BASE}\nARG NB_USER", "FROM debian:bookworm-slim\nARG NB_USER"),
    (rule_student_user_and_port, "USER ${NB_UID}", "USER root"),
    (rule_student_user_and_port, '"--port=8888"', '"--port=8000"'),
    (rule_setup_is_called_not_copied, "/opt/convlab/scripts/setup.sh && \\",
     "pip install -r /opt/convlab/requirements.txt && \\"),
    (rule_caches_outside_home_and_read_only, "CONVLAB_CACHE=/opt/convlab-cache",
     "CONVLAB_CACHE=/home/jovyan/.cache/convlab"),
    (rule_caches_outside_home_and_read_only, "CONVLAB_EVCXR_POOL=/tmp/convlab-pool",
     "CONVLAB_EVCXR_POOL=/opt/convlab-cache/evcxr-pool"),
    (rule_no_certificate_baked_in, "COPY image/with-certs /usr/local/bin/convlab-with-certs\n\n# 1.",
     "COPY image/with-certs /usr/local/bin/convlab-with-certs\nCOPY ca.crt /etc/ssl/certs/ca.crt\n\n# 1."),
    (rule_no_certificate_baked_in, "    LANG=C.UTF-8 \\", "    SSL_CERT_FILE=/run/secrets/certs \\\n    LANG=C.UTF-8 \\"),
    (rule_rust_from_rustup_or_the_host, "FROM rust-${RUST} AS rust", "FROM rust-rustup AS rust"),
    (rule_no_answer_in_the_image, "COPY notebooks/student/ /opt/convlab/notebooks/student/",
     "COPY notebooks/ /opt/convlab/notebooks/"),
    (rule_no_answer_in_the_image, "COPY tools/ /opt/convlab/tools/", "COPY . /opt/convlab/"),
]


@pytest.mark.parametrize("rule,good,bad", BROKEN, ids=[f"{r.__name__[5:]}-{i}" for i, (r, _, _) in enumerate(BROKEN)])
def test_a_broken_recipe_is_caught(rule, good, bad):
    text = recipe()
    assert text.count(good) == 1, f"the recipe no longer holds {good!r}: update this test"
    assert rule(text.replace(good, bad)), f"{rule.__name__} missed {bad!r}"


# ------------------------------------------------------------------------------------------
# The entry point: notebooks into the home folder, never over the student's own


def run_start(home: Path, release: Path, *command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), "CONVLAB_RELEASE": str(release)}
    return subprocess.run(["bash", str(START), *command], env=env, capture_output=True, text=True)


def test_start_fills_an_empty_home_and_keeps_what_the_student_changed(tmp_path):
    release = tmp_path / "opt-convlab"
    (release / "notebooks" / "student").mkdir(parents=True)
    for name in ("01-convolutions.ipynb", "02-vgg16.ipynb"):
        (release / "notebooks" / "student" / name).write_text(f"image's {name}")
    home = tmp_path / "home"
    home.mkdir()

    res = run_start(home, release, "echo", "ran")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "ran\n", "the command runs after the copy"
    assert (home / "notebooks" / "01-convolutions.ipynb").read_text() == "image's 01-convolutions.ipynb"

    (home / "notebooks" / "01-convolutions.ipynb").write_text("the student's work")
    (home / "notebooks" / "02-vgg16.ipynb").unlink()
    (release / "notebooks" / "student" / "03-cifar10.ipynb").write_text("a new notebook")
    res = run_start(home, release, "true")
    assert res.returncode == 0, res.stderr
    assert (home / "notebooks" / "01-convolutions.ipynb").read_text() == "the student's work"
    assert (home / "notebooks" / "02-vgg16.ipynb").exists(), "a deleted notebook comes back"
    assert (home / "notebooks" / "03-cifar10.ipynb").read_text() == "a new notebook"

